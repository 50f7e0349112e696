//! Demo data and a fedmsg publisher replaying real bus messages.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use zeromq::{Socket, SocketSend, ZmqMessage};

/// The From address of local emails (the template's default `SenderAddress`).
pub const SENDER: &str = "notifications@fmn.example.org";

/// Reads JSON lines of fedmsg envelopes.
pub fn read_messages(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

/// A fedmsg publisher bound at `address`: sends `messages` as fedmsg does (topic frame,
/// JSON envelope frame), one every `interval`, over and over with fresh message ids
/// (`<id>-replay<N>`) until `stop`.
pub async fn publish_forever(
    address: &str,
    messages: Vec<serde_json::Value>,
    interval: Duration,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut socket = zeromq::PubSocket::new();
    socket
        .bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    tracing::info!(address, messages = messages.len(), "demo publisher: bound");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for pass in 0u64.. {
        for message in &messages {
            let mut envelope = message.clone();
            if pass > 0 {
                if let Some(id) = envelope.get("msg_id").and_then(|v| v.as_str()) {
                    envelope["msg_id"] = format!("{id}-replay{pass}").into();
                }
            }
            let topic = envelope
                .get("topic")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let mut frames = ZmqMessage::from(topic.clone());
            frames.push_back(serde_json::to_vec(&envelope)?.into());
            socket.send(frames).await?;
            tracing::debug!(topic, "demo publisher: sent");
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
    Ok(())
}
