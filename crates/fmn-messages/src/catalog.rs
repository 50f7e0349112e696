//! The declarative catalog: topic patterns mapped to where a message's metadata lives.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use crate::message::{Artifacts, Generation, Message, MessageError, Severity};

/// The catalog files compiled into the crate, in lookup order.
const BUILTIN: &[(&str, &str)] = &[("core.toml", include_str!("../catalog/core.toml"))];

/// A catalog file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("catalog {file}: {message}")]
pub struct CatalogError {
    file: String,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default, rename = "entry")]
    entries: Vec<EntrySpec>,
}

/// One catalog entry as written in a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySpec {
    /// Glob over the topic with its `org.<domain>.<env>.` prefix removed.
    topic: String,
    #[serde(default)]
    agent: Vec<String>,
    #[serde(default)]
    usernames: Vec<String>,
    #[serde(default)]
    rpms: Vec<String>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Debug)]
struct Entry {
    topic: regex::Regex,
    spec: EntrySpec,
}

/// The loaded catalog. Immutable; share it freely.
#[derive(Debug)]
pub struct Catalog {
    entries: Vec<Entry>,
}

impl Catalog {
    /// The catalog shipped with fmn, loaded once.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            // The builtin files are checked by a unit test, so failure here is a build bug.
            #[allow(clippy::expect_used)]
            Catalog::from_sources(BUILTIN).expect("builtin catalog is valid")
        })
    }

    /// Loads a catalog from `(file name, TOML text)` pairs.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        let mut entries = Vec::new();
        for (file, text) in sources {
            let parsed: CatalogFile = toml::from_str(text).map_err(|e| CatalogError {
                file: (*file).to_owned(),
                message: e.to_string(),
            })?;
            for spec in parsed.entries {
                let topic = glob_regex(&spec.topic).map_err(|e| CatalogError {
                    file: (*file).to_owned(),
                    message: format!("topic {:?}: {e}", spec.topic),
                })?;
                entries.push(Entry { topic, spec });
            }
        }
        Ok(Catalog { entries })
    }

    /// Normalises raw JSON bytes of a bus message.
    pub fn normalize_bytes(&self, raw: &[u8]) -> Result<Message, MessageError> {
        let value: Value =
            serde_json::from_slice(raw).map_err(|e| MessageError::Json(e.to_string()))?;
        self.normalize(&value)
    }

    /// Normalises one raw bus message of either generation.
    pub fn normalize(&self, raw: &Value) -> Result<Message, MessageError> {
        let obj = raw
            .as_object()
            .ok_or_else(|| MessageError::Shape("expected a JSON object".into()))?;
        let topic = obj
            .get("topic")
            .and_then(Value::as_str)
            .ok_or_else(|| MessageError::Shape("missing string field \"topic\"".into()))?;
        let (generation, id, body) = if let Some(msg) = obj.get("msg") {
            let id = obj
                .get("msg_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            (Generation::Fedmsg, id, msg)
        } else if let Some(body) = obj.get("body") {
            let id = obj.get("id").and_then(Value::as_str).unwrap_or_default();
            (Generation::FedoraMessaging, id, body)
        } else {
            return Err(MessageError::Shape(
                "neither a fedmsg envelope (\"msg\") nor a fedora-messaging message (\"body\")"
                    .into(),
            ));
        };
        if id.is_empty() {
            return Err(MessageError::Shape("missing message id".into()));
        }
        let short = short_topic(topic);
        let app = short.split('.').next().unwrap_or(short).to_owned();
        let timestamp = obj.get("timestamp").and_then(Value::as_f64);

        let mut message = Message {
            id: id.to_owned(),
            topic: topic.to_owned(),
            app,
            generation,
            timestamp,
            body: body.clone(),
            usernames: BTreeSet::new(),
            agent: None,
            artifacts: Artifacts::default(),
            groups: BTreeSet::new(),
            severity: Severity::Info,
            title: short.to_owned(),
            summary: String::new(),
            link: None,
            long_form: None,
        };
        if let Some(entry) = self.entries.iter().find(|e| e.topic.is_match(short)) {
            let spec = &entry.spec;
            message.agent = spec
                .agent
                .iter()
                .find_map(|p| strings(body, p).into_iter().next());
            for p in &spec.usernames {
                message.usernames.extend(strings(body, p));
            }
            for p in &spec.rpms {
                message.artifacts.rpms.extend(strings(body, p));
            }
            message.link = spec.link.as_deref().and_then(|t| render(body, t));
            message.summary = spec
                .summary
                .as_deref()
                .and_then(|t| render(body, t))
                .unwrap_or_default();
        }
        if message.summary.is_empty() {
            message.summary = match &message.agent {
                Some(agent) => format!("{agent} sent {short}"),
                None => format!("{short} message"),
            };
        }
        Ok(message)
    }
}

/// The topic without its `org.<domain>.<env>.` prefix (`bodhi.update.comment`).
fn short_topic(topic: &str) -> &str {
    let mut rest = topic;
    for _ in 0..3 {
        match rest.split_once('.') {
            Some((_, tail)) => rest = tail,
            None => return topic,
        }
    }
    rest
}

/// fnmatch-style glob (`*` crosses dots) to an anchored regex.
fn glob_regex(glob: &str) -> Result<regex::Regex, regex::Error> {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re)
}

/// Strings at a JSON pointer; a `*` segment iterates over an array.
fn strings(body: &Value, pointer: &str) -> Vec<String> {
    let mut current = vec![body];
    for segment in pointer.split('/').skip(1) {
        let mut next = Vec::new();
        for value in current {
            if segment == "*" {
                if let Some(items) = value.as_array() {
                    next.extend(items.iter());
                }
            } else if let Some(v) = value.get(segment) {
                next.push(v);
            } else if let (Some(items), Ok(i)) = (value.as_array(), segment.parse::<usize>()) {
                next.extend(items.get(i));
            }
        }
        current = next;
    }
    current
        .into_iter()
        .filter_map(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

/// Renders `{/json/pointer}` placeholders; `None` when one of them is missing.
fn render(body: &Value, template: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let value = strings(body, &rest[start + 1..end]).into_iter().next()?;
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_loads() {
        assert!(!Catalog::from_sources(BUILTIN).unwrap().entries.is_empty());
    }

    #[test]
    fn rejects_non_messages() {
        let catalog = Catalog::builtin();
        assert!(matches!(
            catalog.normalize_bytes(b"{"),
            Err(MessageError::Json(_))
        ));
        assert!(matches!(
            catalog.normalize(&serde_json::json!({"topic": "a.b.c.d"})),
            Err(MessageError::Shape(_))
        ));
    }
}
