//! The fedora-messaging source: consumes from a queue bound to `amq.topic` and acknowledges
//! each delivery only once the sink has accepted it (SQS or the disk spool). A delivery the
//! sink did not accept is never acknowledged: the broker redelivers it.

mod config;
pub mod headers;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use config::{AmqpConfig, QueueName, Tls};

use crate::metrics::{Metrics, Source};
use crate::{BusMessage, Delivery};

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for the sink to accept in-flight deliveries.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The `incoming` form of an AMQP delivery: `{"topic", "headers", "body", "id"}`.
/// A body that is not JSON is forwarded as a JSON string (the matcher quarantines it).
pub fn to_bus_message(
    routing_key: &str,
    properties: &lapin::BasicProperties,
    data: &[u8],
) -> BusMessage {
    let body: Value = serde_json::from_slice(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()));
    let mut headers = properties
        .headers()
        .as_ref()
        .map_or_else(|| json!({}), headers::to_json);
    if let (Some(p), Value::Object(h)) = (properties.priority(), &mut headers) {
        h.entry("priority").or_insert(json!(p));
    }
    let id = properties
        .message_id()
        .as_ref()
        .map_or(Value::Null, |s| Value::String(s.as_str().to_owned()));
    BusMessage {
        topic: routing_key.to_owned(),
        body: json!({"topic": routing_key, "headers": headers, "body": body, "id": id}).to_string(),
    }
}

/// How a session with the broker ended.
enum Ended {
    Stopped,
    Lost(String),
}

/// Consumes until `stop`, reconnecting with exponential backoff after any failure.
pub async fn consume(
    config: AmqpConfig,
    out: mpsc::Sender<Delivery>,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    // Fail fast on unreadable TLS files; they are read again on each connection.
    tls_config(&config.tls)?;
    let mut delay = Duration::from_millis(250);
    let mut first = true;
    loop {
        if !first {
            metrics.amqp.reconnects.fetch_add(1, Relaxed);
        }
        first = false;
        let mut consumed = false;
        let ended = match tls_config(&config.tls) {
            Ok(tls) => session(&config, tls, &out, &stop, &metrics, &mut consumed).await,
            Err(e) => Err(e),
        };
        match ended {
            Ok(Ended::Stopped) => break,
            Ok(Ended::Lost(why)) => tracing::warn!(reason = %why, "amqp: connection lost"),
            Err(e) => tracing::warn!(error = %e, "amqp: session failed"),
        }
        if consumed {
            delay = Duration::from_millis(250);
        }
        tracing::info!(delay_ms = delay.as_millis() as u64, "amqp: reconnecting");
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
    tracing::info!("amqp: stopped");
    Ok(())
}

fn tls_config(tls: &Tls) -> anyhow::Result<OwnedTLSConfig> {
    let cert_chain = match &tls.ca_certificates {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let identity = match &tls.client_identity {
        Some(p) => Some(OwnedIdentity {
            der: std::fs::read(p).map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?,
            password: tls.client_identity_password.clone(),
        }),
        None => None,
    };
    Ok(OwnedTLSConfig {
        identity,
        cert_chain,
    })
}

async fn session(
    config: &AmqpConfig,
    tls: OwnedTLSConfig,
    out: &mpsc::Sender<Delivery>,
    stop: &CancellationToken,
    metrics: &Metrics,
    consumed: &mut bool,
) -> anyhow::Result<Ended> {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    let connection = tokio::select! {
        () = stop.cancelled() => return Ok(Ended::Stopped),
        c = tokio::time::timeout(
            CONNECT_TIMEOUT,
            Connection::connect_with_config(&config.url, properties, tls),
        ) => c.map_err(|_| anyhow::anyhow!("connection timed out"))??,
    };
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let (name, options) = match &config.queue {
        QueueName::Durable(name) => (
            name.as_str(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
        ),
        QueueName::ServerNamed => (
            "",
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
        ),
    };
    let queue = channel
        .queue_declare(name, options, FieldTable::default())
        .await?;
    for key in &config.routing_keys {
        channel
            .queue_bind(
                queue.name().as_str(),
                &config.exchange,
                key,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let mut consumer = channel
        .basic_consume(
            queue.name().as_str(),
            "fmn-bridge",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %queue.name(), exchange = %config.exchange,
        keys = ?config.routing_keys, prefetch = config.prefetch, "amqp: consuming");

    metrics.amqp.connected.store(1, Relaxed);
    // One task per unacknowledged delivery (at most `prefetch`), waiting for the sink.
    let mut pending = tokio::task::JoinSet::new();
    let ended = loop {
        tokio::select! {
            () = stop.cancelled() => break Ended::Stopped,
            Some(done) = pending.join_next(), if !pending.is_empty() => {
                if let Ok(Err(e)) = done {
                    tracing::warn!(error = %e, "amqp: acknowledgement failed (the broker redelivers)");
                }
            }
            next = consumer.next() => match next {
                None => break Ended::Lost("consumer cancelled".into()),
                Some(Err(e)) => break Ended::Lost(e.to_string()),
                Some(Ok(d)) => {
                    *consumed = true;
                    metrics.received(Source::Amqp);
                    let message = to_bus_message(d.routing_key.as_str(), &d.properties, &d.data);
                    tracing::debug!(topic = %message.topic, bytes = d.data.len(), "amqp: received");
                    let (ack, accepted) = oneshot::channel();
                    if out.send(Delivery { message, ack: Some(ack), source: Source::Amqp }).await.is_err() {
                        break Ended::Stopped;
                    }
                    let acker = d.acker;
                    pending.spawn(async move {
                        match accepted.await {
                            Ok(()) => acker.ack(BasicAckOptions::default()).await,
                            Err(_) => acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await,
                        }
                    });
                }
            },
        }
    };
    metrics.amqp.connected.store(0, Relaxed);
    if let Ended::Stopped = ended {
        // No new deliveries; let the sink accept the in-flight ones, then acknowledge them.
        let _ = channel
            .basic_cancel(consumer.tag().as_str(), BasicCancelOptions::default())
            .await;
        let waiting = pending.len();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while pending.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                waiting,
                "amqp: in-flight deliveries not accepted in time (the broker redelivers)"
            );
        }
        let _ = connection.close(200, "fmn-bridge shutting down").await;
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::ShortString;

    #[test]
    fn deliveries_become_topic_headers_body_id() {
        let headers = headers::from_json(&json!({"fedora_messaging_severity": 20, "sent-at": "x"}));
        let properties = lapin::BasicProperties::default()
            .with_headers(headers)
            .with_message_id(ShortString::from("abc"))
            .with_priority(0);
        let m = to_bus_message("org.fedoraproject.prod.a", &properties, br#"{"k": [1, 2]}"#);
        assert_eq!(m.topic, "org.fedoraproject.prod.a");
        let v: Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(
            v,
            json!({"topic": "org.fedoraproject.prod.a",
                   "headers": {"fedora_messaging_severity": 20, "sent-at": "x", "priority": 0},
                   "body": {"k": [1, 2]}, "id": "abc"})
        );
        let raw = to_bus_message("t", &lapin::BasicProperties::default(), b"not json \xff");
        let v: Value = serde_json::from_str(&raw.body).unwrap();
        assert_eq!(v["body"], "not json \u{fffd}");
        assert_eq!(v["id"], Value::Null);
    }
}
