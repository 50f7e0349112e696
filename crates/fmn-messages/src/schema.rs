//! Fedora's own message schemas: every fedora-messaging class's `body_schema`, exported from
//! the schema packages (`schemas/fedora-messaging.json`, written by
//! `tests/oracle/oracle.py export-schemas`), and the JSON Schema subset they use.
//!
//! A fedora-messaging body is invalid in fmn exactly when its class's `validate()` rejects
//! it: the class's body schema, then the base `Message` schema (an object). A message whose
//! schema is not in the file (unknown, or whose schema files no package installs) is checked
//! against the base schema only, as fedora-messaging's fallback class would. Like Python's
//! `jsonschema.validate`, `format` is not asserted and unknown keywords are ignored; a `$ref`
//! that does not resolve accepts (Python raises a resolution error, not a validation error).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

const FILE: &str = include_str!("../schemas/fedora-messaging.json");

/// The exported schemas, parsed once.
struct Registry {
    schemas: HashMap<String, Value>,
    base: Value,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // The file is generated and checked by the differential test; a broken copy would
        // fail every test, so an empty registry (base checks only) is the safe fallback.
        let doc: Value = serde_json::from_str(FILE).unwrap_or(Value::Null);
        let schemas = doc
            .get("schemas")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.get("body_schema")?.clone())))
                    .collect()
            })
            .unwrap_or_default();
        let base = doc
            .get("base_body_schema")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"type": "object"}));
        Registry { schemas, base }
    })
}

/// Validates a fedora-messaging body as its class would: `Err(reason)` when it rejects it.
pub(crate) fn validate(schema: Option<&str>, body: &Value) -> Result<(), String> {
    let reg = registry();
    if let Some(s) = schema.and_then(|s| reg.schemas.get(s)) {
        Validator::new(s).check(s, body, 0)?;
    }
    Validator::new(&reg.base).check(&reg.base, body, 0)
}

struct Validator<'a> {
    root: &'a Value,
    draft4: bool,
}

/// Deeper than any real schema; bounds a `$ref` cycle.
const MAX_DEPTH: usize = 64;

impl<'a> Validator<'a> {
    fn new(root: &'a Value) -> Self {
        // Python's `jsonschema.validate` picks the validator from `$schema`, the latest draft
        // when there is none.
        let draft4 = root
            .get("$schema")
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains("draft-04") || s.contains("draft-03"));
        Validator { root, draft4 }
    }

    fn check(&self, s: &'a Value, v: &Value, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let s = match s {
            Value::Bool(true) => return Ok(()),
            Value::Bool(false) => return Err(format!("False schema does not allow {}", py(v))),
            Value::Object(o) => o,
            _ => return Ok(()),
        };
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            if let Some(target) = self.resolve(r) {
                self.check(target, v, depth + 1)?;
            }
            if self.draft4 {
                return Ok(());
            }
        }
        if let Some(t) = s.get("type") {
            let ok = match t {
                Value::String(t) => self.is_type(v, t),
                Value::Array(ts) => ts
                    .iter()
                    .any(|t| t.as_str().is_some_and(|t| self.is_type(v, t))),
                _ => true,
            };
            if !ok {
                return Err(format!("{} is not of type {}", py(v), py(t)));
            }
        }
        if let Some(Value::Array(e)) = s.get("enum") {
            if !e.iter().any(|x| py_eq(x, v)) {
                return Err(format!(
                    "{} is not one of {}",
                    py(v),
                    py(&Value::Array(e.clone()))
                ));
            }
        }
        // `const` and `contains` came with draft 6: a draft 4 validator ignores them.
        if let Some(c) = s.get("const").filter(|_| !self.draft4) {
            if !py_eq(c, v) {
                return Err(format!("{} was expected", py(c)));
            }
        }
        if let Value::Object(obj) = v {
            if let Some(Value::Array(req)) = s.get("required") {
                for k in req.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(k) {
                        return Err(format!("'{k}' is a required property"));
                    }
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(props) = props {
                for (k, sub) in props {
                    if let Some(x) = obj.get(k) {
                        self.check(sub, x, depth + 1)?;
                    }
                }
            }
            let patterns = s.get("patternProperties").and_then(Value::as_object);
            let mut compiled = Vec::new();
            for (p, sub) in patterns.into_iter().flatten() {
                if let Ok(re) = regex::Regex::new(p) {
                    compiled.push((re, sub));
                }
            }
            for (k, x) in obj {
                for (re, sub) in &compiled {
                    if re.is_match(k) {
                        self.check(sub, x, depth + 1)?;
                    }
                }
            }
            if let Some(extra) = s.get("additionalProperties") {
                for (k, x) in obj {
                    let declared = props.is_some_and(|p| p.contains_key(k))
                        || compiled.iter().any(|(re, _)| re.is_match(k));
                    if !declared {
                        if extra == &Value::Bool(false) {
                            return Err(format!("Additional properties are not allowed ('{k}')"));
                        }
                        self.check(extra, x, depth + 1)?;
                    }
                }
            }
        }
        if let Value::Array(items) = v {
            match s.get("items") {
                Some(Value::Array(tuple)) => {
                    for (sub, x) in tuple.iter().zip(items) {
                        self.check(sub, x, depth + 1)?;
                    }
                }
                Some(sub) => {
                    for x in items {
                        self.check(sub, x, depth + 1)?;
                    }
                }
                None => {}
            }
            if let Some(sub) = s.get("contains").filter(|_| !self.draft4) {
                if !items.iter().any(|x| self.check(sub, x, depth + 1).is_ok()) {
                    return Err(format!(
                        "{} does not contain items matching the schema",
                        py(v)
                    ));
                }
            }
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            for sub in all {
                self.check(sub, v, depth + 1)?;
            }
        }
        if let Some(Value::Array(any)) = s.get("anyOf") {
            if !any.iter().any(|sub| self.check(sub, v, depth + 1).is_ok()) {
                return Err(format!(
                    "{} is not valid under any of the given schemas",
                    py(v)
                ));
            }
        }
        if let Some(Value::Array(one)) = s.get("oneOf") {
            let n = one
                .iter()
                .filter(|sub| self.check(sub, v, depth + 1).is_ok())
                .count();
            if n == 0 {
                return Err(format!(
                    "{} is not valid under any of the given schemas",
                    py(v)
                ));
            }
            if n > 1 {
                return Err(format!("{} is valid under each of several schemas", py(v)));
            }
        }
        if let Some(sub) = s.get("not") {
            if self.check(sub, v, depth + 1).is_ok() {
                return Err(format!("{} should not be valid under {}", py(v), py(sub)));
            }
        }
        Ok(())
    }

    fn is_type(&self, v: &Value, t: &str) -> bool {
        match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            "number" => v.is_number(),
            // draft 4 counts 1.0 as a number only; later drafts as an integer too.
            "integer" => {
                v.is_i64()
                    || v.is_u64()
                    || (!self.draft4 && v.as_f64().is_some_and(|f| f.fract() == 0.0))
            }
            _ => true,
        }
    }

    /// A local reference: `#`, `#/json/pointer`, or `#anchor` (`$anchor`, or draft 4 `id`).
    fn resolve(&self, r: &str) -> Option<&'a Value> {
        let frag = r.rsplit_once('#').map_or(r, |(_, f)| f);
        if frag.is_empty() {
            return Some(self.root);
        }
        if frag.starts_with('/') {
            let pointer = frag.replace("%25", "%");
            return self.root.pointer(&pointer);
        }
        find_anchor(self.root, frag, 0)
    }
}

fn find_anchor<'a>(v: &'a Value, name: &str, depth: usize) -> Option<&'a Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    match v {
        Value::Object(o) => {
            let hash = format!("#{name}");
            let named = o.get("$anchor").and_then(Value::as_str) == Some(name)
                || o.get("id").and_then(Value::as_str) == Some(hash.as_str());
            if named {
                return Some(v);
            }
            o.values().find_map(|x| find_anchor(x, name, depth + 1))
        }
        Value::Array(a) => a.iter().find_map(|x| find_anchor(x, name, depth + 1)),
        _ => None,
    }
}

/// jsonschema's equality, as `enum` and `const` use it: `1 == 1.0`, but `True != 1`.
fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A value as Python's `repr` would roughly print it, shortened, for a reason text.
fn py(v: &Value) -> String {
    let s = match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::String(s) => format!("'{s}'"),
        Value::Array(a) => format!("[{}]", a.iter().map(py).collect::<Vec<_>>().join(", ")),
        Value::Object(_) => "{...}".to_owned(),
        Value::Number(n) => n.to_string(),
    };
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_exported_schemas_load() {
        assert!(registry().schemas.len() > 150);
        assert!(registry().schemas.contains_key("bodhi.update.comment.v1"));
    }

    #[test]
    fn base_schema_wants_an_object() {
        assert!(validate(None, &json!({})).is_ok());
        assert!(validate(Some("no.such.schema"), &json!([])).is_err());
    }

    #[test]
    fn keywords() {
        let s = json!({"$schema": "https://json-schema.org/draft/2019-09/schema",
            "$defs": {"t": {"$anchor": "t", "type": ["integer", "null"]}},
            "type": "object", "required": ["a"],
            "properties": {"a": {"$ref": "#/$defs/t"}, "b": {"$ref": "#t"},
                           "c": {"oneOf": [{"type": "string"}, {"enum": [1, 2]}]},
                           "d": {"type": "array", "items": {"type": "string"}}}});
        let ok = |v: Value| Validator::new(&s).check(&s, &v, 0);
        assert!(ok(json!({"a": 1, "b": null, "c": "x", "d": ["y"]})).is_ok());
        assert_eq!(ok(json!({})).unwrap_err(), "'a' is a required property");
        assert!(ok(json!({"a": "1"})).is_err());
        assert!(ok(json!({"a": 1, "b": 2.0})).is_ok());
        assert!(ok(json!({"a": 1, "c": 3})).is_err());
        assert!(ok(json!({"a": 1, "d": [1]})).is_err());
    }

    /// As Python's jsonschema decides (checked in `.venv-oracle`): draft 4 counts `1.0` as
    /// no integer, later drafts (and a schema naming none) do; `True` is not `1`.
    #[test]
    fn drafts_and_equality_as_python_has_them() {
        let check = |s: Value, v: Value| Validator::new(&s).check(&s, &v, 0).is_ok();
        let draft4 = "http://json-schema.org/draft-04/schema#";
        assert!(!check(
            json!({"$schema": draft4, "type": "integer"}),
            json!(1.0)
        ));
        assert!(check(json!({"type": "integer"}), json!(1.0)));
        assert!(!check(json!({"enum": [1]}), json!(true)));
        assert!(check(json!({"enum": [1]}), json!(1.0)));
        assert!(check(
            json!({"$schema": draft4, "contains": {"type": "string"}}),
            json!([1])
        ));
    }
}
