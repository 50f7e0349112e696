//! A raw message's envelope: its generation, its short topic, its timestamp.

use serde_json::{Map, Value};

use crate::message::{Generation, MessageError};

/// Which generation a raw message belongs to, and the key of its payload.
pub(super) fn detect(obj: &Map<String, Value>) -> Result<(Generation, &'static str), MessageError> {
    if obj.contains_key("msg") {
        Ok((Generation::Fedmsg, "msg"))
    } else if obj.contains_key("body") {
        Ok((Generation::FedoraMessaging, "body"))
    } else {
        Err(MessageError::Shape(
            "neither a fedmsg envelope (\"msg\") nor a fedora-messaging message (\"body\")".into(),
        ))
    }
}

/// The topic without its `<tld>.<domain>.<env>.` prefix (`bodhi.update.comment`); a topic
/// without such a prefix is returned whole.
pub(super) fn short_topic(topic: &str) -> &str {
    let mut parts = topic.splitn(4, '.');
    let (Some(_), Some(_), Some(env), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return topic;
    };
    match env {
        "prod" | "stg" | "stage" | "staging" | "dev" | "test" | "qa" | "local" => rest,
        _ => topic,
    }
}

/// Collapses a summary onto one line (no CR/LF ever reaches a mail header or IRC line).
pub(super) fn one_line(s: String) -> String {
    if s.contains(['\n', '\r']) {
        s.split(['\n', '\r'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        s
    }
}

/// Seconds since the epoch for `2025-01-01T00:00:00+00:00` (fedora-messaging's `sent-at`).
pub(super) fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut secs = days * 86_400 + h * 3600 + mi * 60 + se;
    let rest = &s[19..];
    let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(sign) = rest.chars().next().filter(|c| *c == '+' || *c == '-') {
        let oh: i64 = rest.get(1..3)?.parse().ok()?;
        let om: i64 = rest.get(4..6).and_then(|m| m.parse().ok()).unwrap_or(0);
        let off = oh * 3600 + om * 60;
        secs -= if sign == '+' { off } else { -off };
    }
    Some(secs as f64)
}
