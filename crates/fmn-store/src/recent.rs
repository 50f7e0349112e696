//! The rolling log of recent bus messages (normalised), which the API's preview matches
//! filters against. The matcher appends every message it normalises.
//!
//! Items: `RECENT`/`<ms since epoch, 15 digits>#<message id>`, the message as JSON in
//! `doc`, expiring after the log's retention. Reads return the newest first, skip expired
//! items and are bounded by a count; messages larger than a bound are not logged.

use aws_sdk_dynamodb::Client;
use fmn_messages::Message;

use crate::StoreError;
use crate::api_table::{expired, get_s, key, n, now, s};

/// The recent-messages log in the API table.
#[derive(Debug, Clone)]
pub struct RecentMessages {
    client: Client,
    table: String,
    retention_secs: i64,
    max_bytes: usize,
}

impl RecentMessages {
    /// The API table named `table`; messages are kept 24 hours, messages over 64 KiB of
    /// JSON are not kept.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        RecentMessages {
            client,
            table: table.into(),
            retention_secs: 24 * 3600,
            max_bytes: 64 * 1024,
        }
    }

    /// Keeps messages for `secs` seconds.
    pub fn with_retention(mut self, secs: i64) -> Self {
        self.retention_secs = secs;
        self
    }

    /// Appends a message; returns false when it was too large to keep.
    pub async fn record(&self, message: &Message) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(message).map_err(|e| StoreError::Corrupt {
            key: message.id.clone(),
            problem: e.to_string(),
        })?;
        if doc.len() > self.max_bytes {
            return Ok(false);
        }
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let mut item = key("RECENT", format!("{ms:015}#{}", message.id));
        item.insert("doc".into(), s(doc));
        item.insert("expires_at".into(), n(now() + self.retention_secs));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(true)
    }

    /// Appends several messages (a matcher batch's) in `BatchWriteItem` calls of up to 25
    /// items, retrying unprocessed items twice; a message logged twice in one call is
    /// written once. Returns how many were kept (too large ones are not).
    pub async fn record_all(&self, messages: &[Message]) -> Result<usize, StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        let mut writes = Vec::new();
        for message in messages {
            if !seen.insert(message.id.as_str()) {
                continue;
            }
            let doc = serde_json::to_string(message).map_err(|e| StoreError::Corrupt {
                key: message.id.clone(),
                problem: e.to_string(),
            })?;
            if doc.len() > self.max_bytes {
                continue;
            }
            let mut item = key("RECENT", format!("{ms:015}#{}", message.id));
            item.insert("doc".into(), s(doc));
            item.insert("expires_at".into(), n(now() + self.retention_secs));
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(StoreError::dynamo)?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        let kept = writes.len();
        crate::dynamo::write_batches(&self.client, &self.table, writes, 3, "recent messages")
            .await?;
        Ok(kept)
    }

    /// Up to `limit` of the most recent messages still retained, newest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<Message>, StoreError> {
        let now = now();
        let mut out = Vec::new();
        let mut start = None;
        // Bounded: each page holds at most `limit` items and we stop once we have enough.
        for _ in 0..100 {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s("RECENT"))
                .scan_index_forward(false)
                .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::dynamo)?;
            for item in page.items() {
                if expired(item, now) {
                    continue;
                }
                let doc = get_s(item, "doc")?;
                match serde_json::from_str::<Message>(&doc) {
                    Ok(m) => out.push(m),
                    Err(e) => tracing::warn!(error = %e, "skipping unreadable recent message"),
                }
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(out)
    }
}
