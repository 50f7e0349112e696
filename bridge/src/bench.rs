//! `fmn-bridge --bench N`: the bridge's throughput into SQS beside a plain `SendMessageBatch`
//! loop against the same queue, in the same run, and the process's peak memory.
//!
//! The bridge side feeds N fedora-messaging corpus messages (unique ids) through the bridge's
//! sink exactly as a source does (a delivery per message, acknowledged once SQS accepted
//! it); the baseline sends the same bodies in batches of ten, one batch at a time, as the
//! sink does. Both then read as messages per second.

use std::fmt;
use std::time::Instant;

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use crate::{Bridge, BusMessage, Config};

/// The fedora-messaging corpus, `{topic, headers, body, id, …}` per line.
const CORPUS: &str = include_str!("../../tests/fixtures/fedora-messaging-examples.jsonl");

/// What a bench run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Messages per run.
    pub messages: usize,
    /// The bridge's sink, messages per second.
    pub bridge_per_second: f64,
    /// The plain loop, messages per second.
    pub plain_per_second: f64,
    /// Peak resident memory of this process (VmHWM), in KiB.
    pub peak_rss_kib: Option<u64>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "messages: {}", self.messages)?;
        writeln!(
            f,
            "bridge (sink, batches of 10, ack after accept): {:.0} messages/s",
            self.bridge_per_second
        )?;
        writeln!(
            f,
            "plain SendMessageBatch loop (batches of 10):    {:.0} messages/s",
            self.plain_per_second
        )?;
        match self.peak_rss_kib {
            Some(kib) => write!(f, "peak RSS: {:.1} MiB", kib as f64 / 1024.0),
            None => write!(f, "peak RSS: unknown"),
        }
    }
}

/// `n` corpus messages as the AMQP source forwards them, ids made unique.
pub fn corpus_messages(n: usize) -> Vec<BusMessage> {
    let corpus: Vec<serde_json::Value> = CORPUS
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let run = uuid::Uuid::new_v4();
    (0..n)
        .map(|i| {
            let m = &corpus[i % corpus.len()];
            let topic = m["topic"].as_str().unwrap_or_default().to_owned();
            let body = serde_json::json!({
                "topic": topic,
                "headers": m["headers"],
                "body": m["body"],
                "id": format!("bench-{run}-{i}"),
            })
            .to_string();
            BusMessage { topic, body }
        })
        .collect()
}

/// Peak resident set size of this process, from `/proc/self/status`.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs both measurements against `queue_url`.
pub async fn run(aws: &aws_config::SdkConfig, queue_url: &str, n: usize) -> anyhow::Result<Report> {
    anyhow::ensure!(n > 0, "--bench needs at least one message");
    let messages = corpus_messages(n);

    let config = Config {
        queue_url: queue_url.to_owned(),
        ..Default::default()
    };
    let bridge = Bridge::from_aws(config, aws);
    let started = Instant::now();
    let sent = crate::replay::replay(bridge, messages.clone(), None).await?;
    let bridge_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(sent as usize == n, "the bridge sent {sent} of {n}");

    let sqs = aws_sdk_sqs::Client::new(aws);
    let plain_seconds = send_plain(&sqs, queue_url, &messages).await?;
    Ok(Report {
        messages: n,
        bridge_per_second: n as f64 / bridge_seconds,
        plain_per_second: n as f64 / plain_seconds,
        peak_rss_kib: peak_rss_kib(),
    })
}

/// Sends `messages` to `queue_url` with a plain `SendMessageBatch` loop, ten a call, one call
/// at a time (as the bridge sends): the queue's own rate to compare with. Returns the seconds
/// it took.
pub async fn send_plain(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[BusMessage],
) -> anyhow::Result<f64> {
    let started = Instant::now();
    for chunk in messages.chunks(10) {
        let mut request = sqs.send_message_batch().queue_url(queue_url);
        for (i, m) in chunk.iter().enumerate() {
            request = request.entries(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .message_attributes(
                        fmn_queue::TOPIC_ATTRIBUTE,
                        MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value(&m.topic)
                            .build()?,
                    )
                    .build()?,
            );
        }
        let out = request.send().await?;
        anyhow::ensure!(out.failed.is_empty(), "SQS refused part of a batch");
    }
    Ok(started.elapsed().as_secs_f64())
}
