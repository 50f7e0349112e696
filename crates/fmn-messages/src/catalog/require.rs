//! fedora-messaging schema checks: `"/path"` (must be present) or `"/path:type|type"`,
//! failing in the words jsonschema uses.

use serde_json::Value;

/// A JSON type a requirement admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    Null,
}

impl JsonType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => Self::String,
            "number" => Self::Number,
            "integer" => Self::Integer,
            "boolean" => Self::Boolean,
            "object" => Self::Object,
            "array" => Self::Array,
            "null" => Self::Null,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Object => "object",
            Self::Array => "array",
            Self::Null => "null",
        }
    }

    fn admits(self, v: &Value) -> bool {
        match self {
            Self::String => v.is_string(),
            Self::Number => v.is_number(),
            Self::Integer => v.is_i64() || v.is_u64(),
            Self::Boolean => v.is_boolean(),
            Self::Object => v.is_object(),
            Self::Array => v.is_array(),
            Self::Null => v.is_null(),
        }
    }
}

#[derive(Debug)]
pub(super) struct Requirement {
    pointer: String,
    types: Vec<JsonType>,
}

impl Requirement {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        let (pointer, types) = match s.split_once(':') {
            Some((p, t)) => (p, t),
            None => (s, ""),
        };
        if !pointer.starts_with('/') {
            return Err(format!("requirement {s:?} must start with '/'"));
        }
        let types = types
            .split('|')
            .filter(|t| !t.is_empty())
            .map(|t| JsonType::parse(t).ok_or_else(|| format!("unknown JSON type {t:?}")))
            .collect::<Result<_, _>>()?;
        Ok(Requirement {
            pointer: pointer.to_owned(),
            types,
        })
    }

    /// Why the body fails this requirement, in the words jsonschema uses.
    pub(super) fn check(&self, body: &Value) -> Option<String> {
        match body.pointer(&self.pointer) {
            None => {
                let name = self.pointer.rsplit('/').next().unwrap_or_default();
                Some(format!(
                    "'{name}' is a required property ({})",
                    self.pointer
                ))
            }
            Some(v) if !self.types.is_empty() && !self.types.iter().any(|t| t.admits(v)) => {
                let names: Vec<String> = self
                    .types
                    .iter()
                    .map(|t| format!("'{}'", t.name()))
                    .collect();
                Some(format!(
                    "{v} is not of type {} ({})",
                    names.join(", "),
                    self.pointer
                ))
            }
            Some(_) => None,
        }
    }
}
