//! The `fmn meta` output: one JSON object per input line.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::message::{Artifacts, Message, MessageError};

/// The `fmn meta` object for one message, fields in the documented order.
#[derive(Debug, Serialize)]
struct MetaOut<'a> {
    id: &'a str,
    topic: &'a str,
    app: &'a str,
    usernames: &'a BTreeSet<String>,
    agent: Option<&'a str>,
    artifacts: &'a Artifacts,
    groups: &'a BTreeSet<String>,
    severity: &'static str,
    title: &'a str,
    summary: &'a str,
    link: Option<&'a str>,
    long_form: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct MetaError<'a> {
    error: &'a str,
}

impl<'a> From<&'a Message> for MetaOut<'a> {
    fn from(m: &'a Message) -> Self {
        MetaOut {
            id: &m.id,
            topic: &m.topic,
            app: &m.app,
            usernames: &m.usernames,
            agent: m.agent.as_deref(),
            artifacts: &m.artifacts,
            groups: &m.groups,
            severity: m.severity.as_str(),
            title: &m.title,
            summary: &m.summary,
            link: m.link.as_deref(),
            long_form: m.long_form.as_deref(),
        }
    }
}

fn normalize_line(line: &str) -> Result<Message, MessageError> {
    Catalog::builtin().normalize_bytes(line.trim().as_bytes())
}

/// The `fmn meta` output for one input line (a fedmsg envelope or a fedora-messaging
/// `{topic, headers, body, id}` object), as a JSON value: `id`, `topic`, `app`, `usernames`,
/// `agent`, `artifacts`, `groups`, `severity`, `title`, `summary`, `link`, `long_form`; or
/// `{"error": "..."}` when the line is not a bus message or its body breaks its schema.
///
/// A `serde_json::Value` object sorts its keys; [`meta_line_json`] keeps the documented order.
pub fn meta_line(line: &str) -> serde_json::Value {
    let out = match normalize_line(line) {
        Ok(m) => serde_json::to_value(MetaOut::from(&m)),
        Err(e) => serde_json::to_value(MetaError {
            error: &e.to_string(),
        }),
    };
    out.unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
}

/// The `fmn meta` output for one input line as compact JSON text (no newline), fields in the
/// documented order. What the CLI prints, one line per input line.
pub fn meta_line_json(line: &str) -> String {
    let out = match normalize_line(line) {
        Ok(m) => serde_json::to_string(&MetaOut::from(&m)),
        Err(e) => serde_json::to_string(&MetaError {
            error: &e.to_string(),
        }),
    };
    out.unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_error_objects() {
        let v = meta_line("not json");
        assert!(v["error"].as_str().unwrap().starts_with("not valid JSON"));
        assert!(meta_line_json("{}").starts_with("{\"error\":"));
    }

    #[test]
    fn fields_in_order() {
        let line = r#"{"topic": "org.fedoraproject.prod.x.y", "msg": {}, "msg_id": "1"}"#;
        let json = meta_line_json(line);
        assert!(json.starts_with(r#"{"id":"1","topic":"org.fedoraproject.prod.x.y","app":"x","#));
        assert!(json.ends_with(r#""long_form":null}"#), "{json}");
        assert_eq!(meta_line(line)["app"], "x");
    }
}
