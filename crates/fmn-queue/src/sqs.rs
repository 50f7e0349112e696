//! Sending to a queue: a small trait, and its SQS implementation with batching and retries.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

/// One message to send: a body and string attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outgoing {
    /// The message body.
    pub body: String,
    /// String message attributes.
    pub attributes: Vec<(String, String)>,
}

impl Outgoing {
    /// A message with a body and no attributes.
    pub fn new(body: impl Into<String>) -> Self {
        Outgoing {
            body: body.into(),
            attributes: Vec::new(),
        }
    }

    /// Adds a string attribute.
    pub fn with_attribute(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes.push((name.to_owned(), value.into()));
        self
    }
}

/// Sending failed even after retries; the caller decides (report a batch failure, spool…).
#[derive(Debug, thiserror::Error)]
#[error("sending to {queue}: {message}")]
pub struct QueueError {
    /// The queue URL.
    pub queue: String,
    /// What went wrong.
    pub message: String,
    /// How many of the messages were not accepted.
    pub failed: usize,
}

/// A queue that accepts messages.
pub trait Queue {
    /// Sends every message, or fails (some may have been sent: consumers are idempotent).
    fn send_all(
        &self,
        messages: Vec<Outgoing>,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Sends every message and answers which were not accepted: each one's index in
    /// `messages` and why, so that a caller sending for several owners at once (the matcher,
    /// for the records of a batch) fails exactly the owners of those. By default all or
    /// nothing, through [`Queue::send_all`].
    fn send_each(
        &self,
        messages: Vec<Outgoing>,
    ) -> impl Future<Output = Vec<(usize, String)>> + Send
    where
        Self: Sync,
    {
        async move {
            let n = messages.len();
            match self.send_all(messages).await {
                Ok(()) => Vec::new(),
                Err(e) => {
                    let why = e.to_string();
                    (0..n).map(|i| (i, why.clone())).collect()
                }
            }
        }
    }
}

/// An SQS queue, sent to in batches of ten with retries and backoff on failed entries;
/// every message is made [safe for SQS](Outgoing::sqs_safe) first.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    attempts: u32,
}

impl SqsQueue {
    /// The queue at `url`, with 4 attempts per batch.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            url: url.into(),
            attempts: 4,
        }
    }

    /// Sets how many times a batch is tried before giving up (at least 1).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn send_batch(&self, batch: &[Outgoing]) -> Result<(), QueueError> {
        let failed = self.send_batch_each(batch).await;
        match failed.first() {
            None => Ok(()),
            Some((_, why)) => Err(self.error(why.clone(), failed.len())),
        }
    }

    /// Sends one batch (within SQS's limits) with retries; answers the entries not
    /// accepted in the end, by index in `batch`, with the last error.
    async fn send_batch_each(&self, batch: &[Outgoing]) -> Vec<(usize, String)> {
        let mut pending: HashMap<String, &Outgoing> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| (i.to_string(), m))
            .collect();
        let mut last_error = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
            }
            let mut request = self.client.send_message_batch().queue_url(&self.url);
            let mut broken = None;
            for (id, m) in &pending {
                match entry(id, m) {
                    Ok(entry) => request = request.entries(entry),
                    Err(e) => broken = Some(e.to_string()),
                }
            }
            if let Some(e) = broken {
                // An entry that cannot be built never will be: no retry.
                last_error = e;
                break;
            }
            match request.send().await {
                Ok(out) => {
                    for ok in out.successful {
                        pending.remove(&ok.id);
                    }
                    if let Some(f) = out.failed.first() {
                        last_error =
                            format!("{}: {}", f.code, f.message.clone().unwrap_or_default());
                    }
                    if pending.is_empty() {
                        return Vec::new();
                    }
                }
                Err(e) => last_error = error_chain(&e),
            }
            tracing::debug!(queue = %self.url, attempt, error = %last_error, "send_message_batch incomplete");
        }
        let mut failed: Vec<(usize, String)> = pending
            .keys()
            .filter_map(|id| id.parse().ok())
            .map(|i| (i, last_error.clone()))
            .collect();
        failed.sort();
        failed
    }

    fn error(&self, message: String, failed: usize) -> QueueError {
        QueueError {
            queue: self.url.clone(),
            message,
            failed,
        }
    }
}

/// One batch entry with the message's string attributes.
fn entry(
    id: &str,
    m: &Outgoing,
) -> Result<SendMessageBatchRequestEntry, aws_sdk_sqs::error::BuildError> {
    let mut entry = SendMessageBatchRequestEntry::builder()
        .id(id)
        .message_body(&m.body);
    for (name, value) in &m.attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()?;
        entry = entry.message_attributes(name, attribute);
    }
    entry.build()
}

/// SQS's limits on one `SendMessageBatch`: ten entries, 256 KiB of payload in all.
const MAX_BATCH_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;

impl Outgoing {
    /// What SQS counts towards its size limits: the body and the attributes.
    fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + "String".len())
                .sum::<usize>()
    }
}

/// Splits messages, in order, into batches within SQS's count and size limits. A message
/// that is too big on its own gets a batch of its own (and SQS's answer for it).
fn batches(messages: &[Outgoing]) -> Vec<&[Outgoing]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, m) in messages.iter().enumerate() {
        let size = m.size();
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES) {
            out.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

impl Queue for SqsQueue {
    async fn send_all(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        // What SQS would refuse forever is encoded first (`crate::wire`), never retried as is.
        let messages: Vec<Outgoing> = messages.into_iter().map(Outgoing::sqs_safe).collect();
        for batch in batches(&messages) {
            self.send_batch(batch).await?;
        }
        Ok(())
    }

    async fn send_each(&self, messages: Vec<Outgoing>) -> Vec<(usize, String)> {
        let messages: Vec<Outgoing> = messages.into_iter().map(Outgoing::sqs_safe).collect();
        // Full batches, a few at a time: one record's jobs share calls with the others'.
        let mut starts = Vec::new();
        let mut offset = 0;
        for batch in batches(&messages) {
            starts.push((offset, batch));
            offset += batch.len();
        }
        let mut failed = Vec::new();
        for group in starts.chunks(4) {
            let sent =
                futures::future::join_all(group.iter().map(|(_, b)| self.send_batch_each(b))).await;
            for ((offset, _), refused) in group.iter().zip(sent) {
                failed.extend(refused.into_iter().map(|(i, why)| (offset + i, why)));
            }
        }
        failed
    }
}

/// An error with its sources, joined by `: `, for logs and error texts (an SDK's or HTTP
/// client's `Display` alone is terse: the sources say what happened).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_size() {
        let small: Vec<Outgoing> = (0..25).map(|i| Outgoing::new(i.to_string())).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);

        let big = |n: usize| Outgoing::new("x".repeat(n));
        let mixed = vec![
            big(100_000),
            big(100_000),
            big(100_000),
            big(300_000),
            big(10),
        ];
        let sizes: Vec<usize> = batches(&mixed).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 1, 1, 1]);
        assert!(batches(&[]).is_empty());
    }
}
