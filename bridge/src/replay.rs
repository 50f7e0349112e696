//! Replaying recorded bus traffic into `incoming` through the bridge's own sink (same
//! batching, size limits, oversize offload and spool): for backfills and load tests.
//!
//! Input is JSON lines, each one of:
//! - a fedmsg envelope (`topic`, `msg`, …): forwarded verbatim, as the fedmsg source does;
//! - a fedora-messaging message `{topic, headers, body, id}`: forwarded as the AMQP source
//!   forwards a delivery (those four members, nothing else);
//! - a datagrepper page `{"raw_messages": [...]}`: each item as above; an item with
//!   non-empty `headers` is a fedora-messaging message whose `msg` is the body and `msg_id`
//!   the id.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, Source};
use crate::{Bridge, BusMessage, Delivery};

/// A line that is not a bus message in a known format.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ReplayError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The bus messages in one line of input.
pub fn parse_line(line_number: usize, line: &str) -> Result<Vec<BusMessage>, ReplayError> {
    let error = |message: String| ReplayError {
        line: line_number,
        message,
    };
    let value: Value = serde_json::from_str(line).map_err(|e| error(e.to_string()))?;
    if let Some(items) = value.get("raw_messages") {
        let items = items
            .as_array()
            .ok_or_else(|| error("raw_messages is not a list".into()))?;
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                from_value(item, None).map_err(|m| error(format!("raw_messages[{i}]: {m}")))
            })
            .collect();
    }
    from_value(&value, Some(line))
        .map(|m| vec![m])
        .map_err(error)
}

/// One message; `text` is the value's original JSON text when there is one (fedmsg
/// envelopes are forwarded byte for byte).
fn from_value(value: &Value, text: Option<&str>) -> Result<BusMessage, String> {
    let Some(object) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    let topic = object
        .get("topic")
        .and_then(Value::as_str)
        .ok_or("no topic")?
        .to_owned();
    let headers = object
        .get("headers")
        .filter(|h| h.as_object().is_some_and(|h| !h.is_empty()));
    let fedora_messaging = |body: &Value, id: Option<&Value>| BusMessage {
        topic: topic.clone(),
        body: json!({
            "topic": topic,
            "headers": headers.cloned().unwrap_or_else(|| json!({})),
            "body": body,
            "id": id.cloned().unwrap_or(Value::Null),
        })
        .to_string(),
    };
    if let Some(body) = object.get("body") {
        return Ok(fedora_messaging(body, object.get("id")));
    }
    let Some(msg) = object.get("msg") else {
        return Err("neither a fedmsg envelope (msg) nor a fedora-messaging message (body)".into());
    };
    if headers.is_some() {
        return Ok(fedora_messaging(msg, object.get("msg_id")));
    }
    Ok(BusMessage {
        topic: topic.clone(),
        body: text.map_or_else(|| value.to_string(), str::to_owned),
    })
}

/// Every message of a JSON-lines file (blank lines skipped); the first bad line is an error.
pub fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<BusMessage>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let mut messages = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed =
            parse_line(i + 1, line).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        messages.extend(parsed);
    }
    Ok(messages)
}

/// Parses a `--rate` value: `N` or `N/s`, messages per second, positive.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.strip_suffix("/s").unwrap_or(s);
    match n.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("bad rate {s:?}: expected N or N/s, N > 0")),
    }
}

/// Sends `messages` through `bridge`'s sink, at most `rate` a second, and returns once SQS
/// (or the spool) has accepted every one of them: how many.
pub async fn replay(
    bridge: Bridge,
    messages: impl IntoIterator<Item = BusMessage>,
    rate: Option<f64>,
) -> anyhow::Result<u64> {
    let spool = bridge.open_spool()?;
    let queue = bridge.queue();
    let metrics: Arc<Metrics> = bridge.metrics.clone();
    metrics
        .replay
        .configured
        .store(1, std::sync::atomic::Ordering::Relaxed);
    metrics
        .replay
        .connected
        .store(1, std::sync::atomic::Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(1000);
    let stop = CancellationToken::new();
    let sink = tokio::spawn(crate::sink::forward(
        rx,
        queue,
        stop.clone(),
        metrics.clone(),
        spool,
    ));
    let mut interval = rate.map(|r| {
        let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        i
    });
    let mut acks = Vec::new();
    let mut sent = 0u64;
    for message in messages {
        if let Some(i) = interval.as_mut() {
            i.tick().await;
        }
        metrics.received(Source::Replay);
        let (ack, accepted) = oneshot::channel();
        let delivery = Delivery {
            message,
            ack: Some(ack),
            source: Source::Replay,
        };
        if tx.send(delivery).await.is_err() {
            anyhow::bail!("the sink stopped");
        }
        acks.push(accepted);
        sent += 1;
    }
    drop(tx);
    sink.await??;
    let accepted = futures::future::join_all(acks)
        .await
        .into_iter()
        .filter(Result::is_ok)
        .count() as u64;
    if accepted < sent {
        anyhow::bail!("{} of {sent} messages were not accepted", sent - accepted);
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_generation_and_datagrepper_pages_parse() {
        let fedmsg = r#"{"topic": "org.fedoraproject.prod.bodhi.update.comment", "msg": {"x": 1}, "msg_id": "a"}"#;
        let m = parse_line(1, fedmsg).unwrap();
        assert_eq!(m[0].body, fedmsg, "fedmsg envelopes are forwarded verbatim");

        let fm = r#"{"topic": "t.a", "headers": {"sent-at": "x"}, "body": {"k": 2}, "id": "i", "schema": "s"}"#;
        let m = parse_line(2, fm).unwrap();
        let v: Value = serde_json::from_str(&m[0].body).unwrap();
        assert_eq!(
            v,
            json!({"topic": "t.a", "headers": {"sent-at": "x"}, "body": {"k": 2}, "id": "i"})
        );

        let page = json!({"raw_messages": [
            {"topic": "t.new", "headers": {"fedora_messaging_schema": "s"}, "msg": {"k": 3},
             "msg_id": "n", "i": 0, "signature": null},
            {"topic": "t.old", "headers": null, "msg": {"k": 4}, "msg_id": "o", "i": 1},
        ], "count": 2})
        .to_string();
        let m = parse_line(3, &page).unwrap();
        assert_eq!(m.len(), 2);
        let new: Value = serde_json::from_str(&m[0].body).unwrap();
        assert_eq!(new["body"], json!({"k": 3}));
        assert_eq!(new["id"], "n");
        let old: Value = serde_json::from_str(&m[1].body).unwrap();
        assert_eq!(old["msg"], json!({"k": 4}));
        assert_eq!(m[1].topic, "t.old");
    }

    #[test]
    fn bad_lines_and_rates_are_clear_errors() {
        for (line, expected) in [
            ("not json", "line 7"),
            ("[1]", "not a JSON object"),
            (r#"{"msg": {}}"#, "no topic"),
            (r#"{"topic": "t"}"#, "neither"),
            (r#"{"raw_messages": 3}"#, "not a list"),
            (r#"{"raw_messages": [1]}"#, "raw_messages[0]"),
        ] {
            let err = parse_line(7, line).unwrap_err().to_string();
            assert!(err.contains(expected), "{line}: {err}");
        }
        assert_eq!(parse_rate("50/s"), Ok(50.0));
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
