//! AMQP header tables to JSON and back. fedora-messaging writes its headers from JSON-like
//! Python values (strings, integers, booleans), so the mapping round-trips those exactly.

use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde_json::{Map, Number, Value};

/// The JSON form of an AMQP header table.
pub fn to_json(table: &FieldTable) -> Value {
    Value::Object(
        table
            .inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), value_to_json(v)))
            .collect::<Map<_, _>>(),
    )
}

fn value_to_json(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        AMQPValue::Timestamp(n) => (*n).into(),
        AMQPValue::Float(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        AMQPValue::Double(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        AMQPValue::DecimalValue(d) => {
            let value = f64::from(d.value) / 10f64.powi(i32::from(d.scale));
            Number::from_f64(value).map_or(Value::Null, Value::Number)
        }
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into()),
        AMQPValue::ByteArray(b) => Value::String(String::from_utf8_lossy(b.as_slice()).into()),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_to_json).collect()),
        AMQPValue::FieldTable(t) => to_json(t),
        AMQPValue::Void => Value::Null,
    }
}

/// The AMQP header table for a JSON object (what a fedora-messaging publisher sends); other
/// JSON values give an empty table.
pub fn from_json(value: &Value) -> FieldTable {
    let mut table = FieldTable::default();
    if let Value::Object(map) = value {
        for (k, v) in map {
            table.insert(ShortString::from(k.as_str()), json_to_value(v));
        }
    }
    table
}

fn json_to_value(v: &Value) -> AMQPValue {
    match v {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AMQPValue::LongLongInt(i),
            (None, Some(f)) => AMQPValue::Double(f),
            (None, None) => AMQPValue::LongString(LongString::from(n.to_string())),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(a) => AMQPValue::FieldArray(FieldArray::from(
            a.iter().map(json_to_value).collect::<Vec<_>>(),
        )),
        Value::Object(_) => AMQPValue::FieldTable(from_json(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fedora_messaging_headers_round_trip() {
        let headers = json!({
            "fedora_messaging_schema": "bodhi.update.comment.v1",
            "fedora_messaging_severity": 20,
            "fedora_messaging_user_alice": true,
            "sent-at": "2025-01-01T00:00:00+00:00",
            "priority": 0,
            "nested": {"a": [1, "b", null, 2.5]},
        });
        assert_eq!(to_json(&from_json(&headers)), headers);
    }

    #[test]
    fn narrow_amqp_types_become_json_numbers() {
        let mut t = FieldTable::default();
        t.insert("i8".into(), AMQPValue::ShortShortInt(-3));
        t.insert("u16".into(), AMQPValue::ShortUInt(7));
        t.insert("s".into(), AMQPValue::ShortString("x".into()));
        assert_eq!(to_json(&t), json!({"i8": -3, "u16": 7, "s": "x"}));
    }
}
