//! What a push carries: a JSON body for UnifiedPush apps, and ntfy's form (a text body and
//! headers) for ntfy topics, both bounded.

use fmn_messages::Severity;
use fmn_queue::{ConfirmationJob, NotificationJob};
use serde::Serialize;

/// The largest body a UnifiedPush server must accept, in bytes.
pub const MAX_BODY: usize = 4096;

/// The longest header value fmn puts on an ntfy request, in characters.
const MAX_HEADER: usize = 200;

/// One push, rendered once for every address of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The JSON body for a UnifiedPush endpoint (at most [`MAX_BODY`] bytes).
    pub json: Vec<u8>,
    /// The ntfy form.
    pub ntfy: Ntfy,
}

/// A push as an ntfy server takes it: headers and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ntfy {
    /// `Title` (no control characters, at most 200 characters).
    pub title: String,
    /// The body the ntfy app shows (at most [`MAX_BODY`] bytes).
    pub message: String,
    /// `Click`: opened when the notification is tapped.
    pub click: Option<String>,
    /// `Tags` (comma-separated on the wire; ntfy shows known ones as emoji).
    pub tags: Vec<String>,
    /// `Priority`, 1 (min) to 5 (max).
    pub priority: u8,
}

/// ntfy's priority for a severity: debug 2 (low), info 3 (default), warning 4 (high), error
/// 5 (max); unknown 3.
pub fn priority(severity: Option<Severity>) -> u8 {
    match severity {
        Some(Severity::Debug) => 2,
        None | Some(Severity::Info) => 3,
        Some(Severity::Warning) => 4,
        Some(Severity::Error) => 5,
    }
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Body<'a> {
    Notification {
        id: &'a str,
        topic: &'a str,
        app: &'a str,
        summary: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        link: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        severity: Option<&'static str>,
        filters: Vec<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        timestamp: Option<f64>,
        user: &'a str,
    },
    Confirmation {
        user: &'a str,
        code: Option<&'a str>,
        expires_at: i64,
    },
}

/// `s` cut to at most `max` bytes, on a character boundary, with "…" when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A header value: control characters (CR and LF among them) become spaces, at most
/// [`MAX_HEADER`] characters.
fn header_text(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_HEADER)
        .collect();
    clean.trim().to_owned()
}

impl Push {
    /// The push for a notification (a notice or a digest summary is one too).
    pub fn notification(job: &NotificationJob) -> Push {
        let m = &job.message;
        let filters: Vec<&str> = job.filters.iter().map(|f| f.name.as_str()).collect();
        let body = |summary: String, link| Body::Notification {
            id: &m.id,
            topic: &m.topic,
            app: &m.app,
            summary,
            link,
            agent: m.agent.as_deref(),
            severity: m.severity.map(Severity::as_str),
            filters: filters.clone(),
            timestamp: m.timestamp,
            user: &job.user,
        };
        let mut json = to_vec(&body(m.summary.clone(), m.link.as_deref()));
        if json.len() > MAX_BODY {
            // Only the summary (and, past that, a huge link) can be long: shorten them.
            let over = json.len() - MAX_BODY;
            let summary = cut(&m.summary, m.summary.len().saturating_sub(over + 8));
            json = to_vec(&body(summary.clone(), m.link.as_deref()));
            if json.len() > MAX_BODY {
                json = to_vec(&body(cut(&summary, 256), None));
            }
        }
        let mut message = m.summary.clone();
        if job.settings.triggered_by && !filters.is_empty() {
            message.push_str(&format!("\n(fmn: {})", filters.join(", ")));
        }
        let mut tags = vec![header_text(&m.app)];
        if let Some(s @ (Severity::Warning | Severity::Error)) = m.severity {
            tags.push(s.as_str().to_owned());
        }
        Push {
            json,
            ntfy: Ntfy {
                title: header_text(&format!("{}: {}", m.app, short_topic(&m.topic))),
                message: cut(&message, MAX_BODY),
                click: m.link.as_deref().map(header_text),
                tags,
                priority: priority(m.severity),
            },
        }
    }

    /// The push carrying a confirmation code, to enter in the web app.
    pub fn confirmation(c: &ConfirmationJob) -> Push {
        let json = to_vec(&Body::Confirmation {
            user: &c.user,
            code: c.code.as_deref(),
            expires_at: c.expires_at,
        });
        let code = c.code.as_deref().unwrap_or_default();
        Push {
            json,
            ntfy: Ntfy {
                title: "fmn confirmation code".into(),
                message: format!(
                    "Your fmn confirmation code for {} is {code}. Enter it in fmn's web app \
                     to receive notifications here.",
                    header_text(&c.user)
                ),
                click: None,
                tags: vec!["key".into()],
                priority: 4,
            },
        }
    }
}

/// The topic without its environment prefix (`org.fedoraproject.prod.`), for titles.
fn short_topic(topic: &str) -> &str {
    let parts: Vec<&str> = topic.splitn(4, '.').collect();
    match parts.as_slice() {
        [_, _, "prod" | "stg" | "dev", rest] => rest,
        _ => topic,
    }
}

fn to_vec(body: &Body<'_>) -> Vec<u8> {
    // Serialising these plain fields cannot fail; an empty body would still be a push.
    serde_json::to_vec(body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> NotificationJob {
        serde_json::from_str(include_str!(
            "../../fmn-queue/tests/fixtures/email-job.json"
        ))
        .unwrap()
    }

    #[test]
    fn a_notification_has_both_forms() {
        let mut j = job();
        j.message.severity = Some(Severity::Error);
        let p = Push::notification(&j);
        let v: serde_json::Value = serde_json::from_slice(&p.json).unwrap();
        assert_eq!(v["kind"], "notification");
        assert_eq!(v["summary"], "bob's kernel-6.1-1.fc40 completed");
        assert_eq!(v["severity"], "error");
        assert_eq!(v["filters"][0], "kernel builds");
        assert_eq!(p.ntfy.title, "buildsys: buildsys.build.state.change");
        assert_eq!(p.ntfy.priority, 5);
        assert_eq!(p.ntfy.tags, ["buildsys", "error"]);
        assert_eq!(
            p.ntfy.click.as_deref(),
            Some("https://koji.fedoraproject.org/koji/buildinfo?buildID=7")
        );
        assert!(p.ntfy.message.ends_with("(fmn: kernel builds)"));
    }

    #[test]
    fn bodies_stay_within_4096_bytes_and_headers_on_one_line() {
        let mut j = job();
        j.message.summary = "ü\r\nX-Evil: 1 ".repeat(2000);
        j.message.app = "app\r\nInjected: yes".into();
        let p = Push::notification(&j);
        assert!(p.json.len() <= MAX_BODY, "{}", p.json.len());
        serde_json::from_slice::<serde_json::Value>(&p.json).unwrap();
        assert!(p.ntfy.message.len() <= MAX_BODY);
        for h in [&p.ntfy.title, &p.ntfy.tags[0]] {
            assert!(!h.contains(['\r', '\n']), "{h:?}");
        }
        j.message.link = Some(format!("https://x.example/{}", "a".repeat(5000)));
        assert!(Push::notification(&j).json.len() <= MAX_BODY);
    }

    #[test]
    fn severities_map_to_ntfy_priorities() {
        let table = [
            (None, 3),
            (Some(Severity::Debug), 2),
            (Some(Severity::Info), 3),
            (Some(Severity::Warning), 4),
            (Some(Severity::Error), 5),
        ];
        for (s, p) in table {
            assert_eq!(priority(s), p, "{s:?}");
        }
    }

    #[test]
    fn a_confirmation_carries_its_code() {
        let c: ConfirmationJob = serde_json::from_str(
            r#"{"user": "alice", "context": "push", "address": "https://ntfy.sh/a",
                "code": "482913", "expires_at": 1764000000}"#,
        )
        .unwrap();
        let p = Push::confirmation(&c);
        let v: serde_json::Value = serde_json::from_slice(&p.json).unwrap();
        assert_eq!(v["kind"], "confirmation");
        assert_eq!(v["code"], "482913");
        assert!(p.ntfy.message.contains("482913"));
    }
}
