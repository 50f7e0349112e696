//! The values flowing through an expression, and paths into the JSON body.

use std::borrow::Cow;

use serde_json::Value;

use super::ast::Seg;

/// One value flowing through an expression: a borrowed piece of the body or a computed text.
#[derive(Debug, Clone)]
pub(crate) enum V<'a> {
    J(&'a Value),
    S(Cow<'a, str>),
}

impl<'a> V<'a> {
    /// The text of a scalar; `None` for null, objects and arrays.
    pub(super) fn text(&self) -> Option<Cow<'a, str>> {
        match self {
            V::S(s) => Some(s.clone()),
            V::J(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
            V::J(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            V::J(Value::Bool(b)) => Some(Cow::Borrowed(if *b { "True" } else { "False" })),
            V::J(_) => None,
        }
    }

    /// Python's truthiness, which is what the reference processors test.
    pub(super) fn truthy(&self) -> bool {
        match self {
            V::S(s) => !s.is_empty(),
            V::J(Value::Null) => false,
            V::J(Value::Bool(b)) => *b,
            V::J(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            V::J(Value::String(s)) => !s.is_empty(),
            V::J(Value::Array(a)) => !a.is_empty(),
            V::J(Value::Object(o)) => !o.is_empty(),
        }
    }
}

/// Calls `f` with each non-empty text of a value (an array's elements one level down).
pub(super) fn push_texts<'a>(v: &V<'a>, f: &mut impl FnMut(Cow<'a, str>)) {
    match v {
        V::J(Value::Array(items)) => {
            for item in items {
                if let Some(s) = V::J(item).text().filter(|s| !s.is_empty()) {
                    f(s);
                }
            }
        }
        v => {
            if let Some(s) = v.text().filter(|s| !s.is_empty()) {
                f(s);
            }
        }
    }
}

/// The values at a path below `value` (`*` fans out over arrays and objects).
pub(super) fn walk<'a>(value: &'a Value, segs: &[Seg], out: &mut Vec<V<'a>>) {
    let Some((seg, rest)) = segs.split_first() else {
        out.push(V::J(value));
        return;
    };
    match seg {
        Seg::Star => match value {
            Value::Array(items) => items.iter().for_each(|v| walk(v, rest, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, rest, out)),
            _ => {}
        },
        Seg::Key(key, index) => match value {
            Value::Object(map) => {
                if let Some(v) = map.get(key) {
                    walk(v, rest, out);
                }
            }
            Value::Array(items) => {
                if let Some(i) = *index {
                    let i = if i < 0 { items.len() as isize + i } else { i };
                    if let Some(v) = usize::try_from(i).ok().and_then(|i| items.get(i)) {
                        walk(v, rest, out);
                    }
                }
            }
            _ => {}
        },
    }
}
