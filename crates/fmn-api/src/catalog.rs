//! The rule catalog: every rule kind with its argument schema, a description and an
//! example. The same schemas describe rules in the OpenAPI document and decide which keys
//! a rule may carry (unknown keys are refused).

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// One rule kind, as `GET /api/v1/rules` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleKindInfo {
    /// The kind, as written in a rule's `kind`.
    pub kind: &'static str,
    /// When a rule of this kind is true.
    pub description: &'static str,
    /// JSON Schema of a rule of this kind (including `kind` and `negate`).
    #[schema(value_type = Object)]
    pub schema: Value,
    /// An example rule.
    #[schema(value_type = Object)]
    pub example: Value,
}

/// Which argument keys a kind takes, each with its schema; `required` lists the mandatory.
struct KindDef {
    kind: &'static str,
    description: &'static str,
    args: &'static [(&'static str, Arg)],
    required: &'static [&'static str],
    example: fn() -> Value,
}

#[derive(Clone, Copy)]
enum Arg {
    Str,
    StrList,
    Levels,
    ArtifactType,
    Artifacts,
    AnyJson,
    JsonList,
}

const STR_MAX: usize = 500;
const LIST_MAX: usize = 100;

/// Any JSON value.
fn any_json() -> Value {
    json!({"type": ["string", "number", "boolean", "object", "array", "null"]})
}

fn arg_schema(a: Arg) -> Value {
    let string = json!({"type": "string", "minLength": 1, "maxLength": STR_MAX});
    match a {
        Arg::Str => string,
        Arg::StrList => json!({"type": "array", "items": string, "maxItems": LIST_MAX}),
        Arg::Levels => json!({"type": "array", "maxItems": 4, "minItems": 1,
            "items": {"type": "string", "enum": ["debug", "info", "warning", "error"]}}),
        Arg::ArtifactType => {
            json!({"type": "string", "enum": ["rpms", "containers", "modules", "flatpaks"]})
        }
        Arg::Artifacts => json!({"type": "array", "maxItems": LIST_MAX, "minItems": 1, "items": {
        "type": "object", "additionalProperties": false, "required": ["type", "name"],
        "properties": {
            "type": {"type": "string", "enum": ["rpms", "containers", "modules", "flatpaks"]},
            "name": string,
        }}}),
        Arg::AnyJson => any_json(),
        Arg::JsonList => json!({"type": "array", "maxItems": LIST_MAX, "items": any_json()}),
    }
}

const KINDS: &[KindDef] = &[
    KindDef {
        kind: "topic",
        description: "The topic matches an fnmatch glob (`*` matches any text, dots included).",
        args: &[("glob", Arg::Str)],
        required: &["glob"],
        example: || json!({"kind": "topic", "glob": "org.fedoraproject.prod.bodhi.update.*"}),
    },
    KindDef {
        kind: "topic_regex",
        description: "The topic matches a regular expression (Rust `regex` syntax, unanchored).",
        args: &[("regex", Arg::Str)],
        required: &["regex"],
        example: || json!({"kind": "topic_regex", "regex": "\\.buildsys\\.(build|task)\\."}),
    },
    KindDef {
        kind: "application",
        description: "The message's application is one of these names (case-insensitive); see GET /api/v1/applications.",
        args: &[("names", Arg::StrList)],
        required: &["names"],
        example: || json!({"kind": "application", "names": ["bodhi", "koji"]}),
    },
    KindDef {
        kind: "severity",
        description: "The message's severity is one of these levels.",
        args: &[("levels", Arg::Levels)],
        required: &["levels"],
        example: || json!({"kind": "severity", "levels": ["warning", "error"]}),
    },
    KindDef {
        kind: "user",
        description: "The message concerns one of these users (default: the filter's owner).",
        args: &[("usernames", Arg::StrList)],
        required: &[],
        example: || json!({"kind": "user"}),
    },
    KindDef {
        kind: "agent",
        description: "One of these users performed the action (default: the owner); negate it for \"not my own actions\".",
        args: &[("usernames", Arg::StrList)],
        required: &[],
        example: || json!({"kind": "agent", "negate": true}),
    },
    KindDef {
        kind: "artifact",
        description: "The message concerns one of these artifacts (rpms, containers, modules, flatpaks).",
        args: &[("artifacts", Arg::Artifacts)],
        required: &["artifacts"],
        example: || json!({"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]}),
    },
    KindDef {
        kind: "artifact_regex",
        description: "One of the message's artifacts of this type has a name matching a regular expression.",
        args: &[("type", Arg::ArtifactType), ("regex", Arg::Str)],
        required: &["type", "regex"],
        example: || json!({"kind": "artifact_regex", "type": "rpms", "regex": "^python-"}),
    },
    KindDef {
        kind: "owned_by",
        description: "One of the message's artifacts is maintained by one of these users (default: the owner).",
        args: &[("usernames", Arg::StrList)],
        required: &[],
        example: || json!({"kind": "owned_by"}),
    },
    KindDef {
        kind: "owned_by_group",
        description: "One of the message's artifacts is maintained by one of these groups (without `@`).",
        args: &[("groups", Arg::StrList)],
        required: &["groups"],
        example: || json!({"kind": "owned_by_group", "groups": ["python-packagers-sig"]}),
    },
    KindDef {
        kind: "field",
        description: "A body field, found by a JSON pointer (RFC 6901), equals a value, is one of values, or matches a regex (exactly one of `equals`, `one_of`, `regex`).",
        args: &[
            ("pointer", Arg::Str),
            ("equals", Arg::AnyJson),
            ("one_of", Arg::JsonList),
            ("regex", Arg::Str),
        ],
        required: &["pointer"],
        example: || json!({"kind": "field", "pointer": "/update/status", "equals": "stable"}),
    },
    KindDef {
        kind: "body_regex",
        description: "The body's JSON text matches a regular expression (FMN's legacy regex filter). Only in a filter that also has a selective rule, not negated (topic, application, artifact, user, agent, owned_by); regex rules count towards a per-user cap.",
        args: &[("regex", Arg::Str)],
        required: &["regex"],
        example: || json!({"kind": "body_regex", "regex": "\"karma\": -"}),
    },
];

fn schema_of(def: &KindDef) -> Value {
    let mut properties = serde_json::Map::new();
    properties.insert("kind".into(), json!({"type": "string", "enum": [def.kind]}));
    properties.insert(
        "negate".into(),
        json!({"type": "boolean", "default": false, "description": "Invert the rule."}),
    );
    for (name, arg) in def.args {
        properties.insert((*name).into(), arg_schema(*arg));
    }
    let mut required = vec!["kind"];
    required.extend(def.required);
    json!({
        "type": "object",
        "title": def.kind,
        "description": def.description,
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

/// Every rule kind.
pub fn rule_kinds() -> Vec<RuleKindInfo> {
    KINDS
        .iter()
        .map(|d| RuleKindInfo {
            kind: d.kind,
            description: d.description,
            schema: schema_of(d),
            example: (d.example)(),
        })
        .collect()
}

/// The keys a rule of `kind` may carry, if the kind exists.
pub(crate) fn allowed_keys(kind: &str) -> Option<Vec<&'static str>> {
    KINDS.iter().find(|d| d.kind == kind).map(|d| {
        let mut keys = vec!["kind", "negate"];
        keys.extend(d.args.iter().map(|(n, _)| *n));
        keys
    })
}

/// Every kind's name.
pub(crate) fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|d| d.kind).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_a_valid_rule_of_its_kind() {
        let kinds = rule_kinds();
        assert_eq!(kinds.len(), 12);
        for k in kinds {
            let rule: fmn_rules::Rule = serde_json::from_value(k.example.clone()).unwrap();
            assert_eq!(rule.kind.name(), k.kind);
            // The OpenAPI document carries the same schema.
            let schema: utoipa::openapi::Schema = serde_json::from_value(k.schema.clone())
                .unwrap_or_else(|e| panic!("{}: {e}", k.kind));
            let back = serde_json::to_value(&schema).unwrap();
            assert_eq!(back["properties"]["kind"]["enum"], json!([k.kind]));
            assert_eq!(back["additionalProperties"], json!(false), "{back}");
            let keys = allowed_keys(k.kind).unwrap();
            for key in k.example.as_object().unwrap().keys() {
                assert!(keys.contains(&key.as_str()), "{key} in {}", k.kind);
            }
        }
    }
}
