//! What an expression can see of the message being normalised.

use std::borrow::Cow;

use serde_json::Value;

use super::value::V;

/// What an expression can see of the message being normalised.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'v, 'a> {
    pub body: &'a Value,
    pub topic: &'a str,
    /// The topic without its `org.<domain>.<env>.` prefix.
    pub short: &'a str,
    pub agent: Option<&'a str>,
    /// Inside `each(template)` over an object: the key of the entry being rendered (`@key`).
    pub key: Option<&'a str>,
    /// The values of the file's `[[var]]` definitions computed so far (`$name`).
    pub vars: &'v [Bound<'a>],
}

/// A named value computed once per message (`[[var]]` in a catalog file).
#[derive(Debug, Clone)]
pub(crate) struct Bound<'a> {
    pub name: &'a str,
    pub values: Vec<V<'a>>,
}

impl<'a> Bound<'a> {
    /// A var holding one rendered text.
    pub(crate) fn text(name: &'a str, text: Option<String>) -> Self {
        Bound {
            name,
            values: text.map(|t| V::S(Cow::Owned(t))).into_iter().collect(),
        }
    }
}
