//! Each user's delivery history: what fmn sent them, where, when, which filter fired, and
//! how the delivery went. The senders append, the web app's history page reads.
//!
//! Kept in the deliveries table (the senders already write there, so no sender needs a new
//! table or grant): one item per user and UTC day, `pk` = `history|<user>|<day number>`,
//! whose `entries` list grows by one JSON document per notification outcome (one
//! `UpdateItem` with `list_append`; a batch's entries for one user and day in one,
//! [`HistoryLog::record_all`]), capped at [`HistoryLog::MAX_PER_DAY`] entries (further
//! ones that day are dropped, and logged) and expiring [`HistoryLog::RETENTION_DAYS`] after
//! the day ends. So a user holds at most `RETENTION_DAYS + 1` items of at most
//! `MAX_PER_DAY` entries, whatever their traffic, and reading the history is one
//! `BatchGetItem` of those keys.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use crate::StoreError;
use crate::api_table::now;

/// How a notification's delivery went, as its owner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryState {
    /// Delivered to every address.
    Sent,
    /// Held for a digest (the digest settings or the flood limit).
    Held,
    /// Failed for good (rejected, impossible address): never retried.
    Failed,
    /// Failed for now (server down, throttled): retried.
    Retrying,
    /// Not sent: the address was gone or disabled by then.
    Skipped,
}

impl HistoryState {
    /// The state's name in JSON and on the page.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryState::Sent => "sent",
            HistoryState::Held => "held",
            HistoryState::Failed => "failed",
            HistoryState::Retrying => "retrying",
            HistoryState::Skipped => "skipped",
        }
    }
}

/// A filter that fired, as the history names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FiredFilter {
    /// The filter's id.
    pub id: String,
    /// Its name when it fired.
    pub name: String,
}

/// One notification outcome in a user's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    /// When, epoch seconds.
    pub at: i64,
    /// The recipient.
    pub user: String,
    /// The delivery context (`email`, `irc`, …).
    pub context: String,
    /// The bus message's id (or the digest's batch id).
    pub message_id: String,
    /// The message's topic.
    pub topic: String,
    /// The message's application.
    pub app: String,
    /// The message's one-line summary.
    pub summary: String,
    /// The message's link, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The filters that fired.
    #[serde(default)]
    pub filters: Vec<FiredFilter>,
    /// Where it went.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// How it went.
    pub state: HistoryState,
    /// Why it failed or was skipped, per address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The history in the deliveries table.
#[derive(Debug, Clone)]
pub struct HistoryLog {
    client: Client,
    table: String,
}

const DAY: i64 = 24 * 3600;

impl HistoryLog {
    /// Entries kept per user and day; later ones that day are dropped.
    pub const MAX_PER_DAY: usize = 200;
    /// Days an entry is kept after its day ends.
    pub const RETENTION_DAYS: i64 = 7;

    /// The history in the deliveries table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        HistoryLog {
            client,
            table: table.into(),
        }
    }

    fn pk(user: &str, day: i64) -> String {
        format!("history|{user}|{day}")
    }

    /// Appends `entry` to its user's day; `false` when that day is full (not recorded).
    pub async fn record(&self, entry: &HistoryEntry) -> Result<bool, StoreError> {
        self.append(&[entry]).await
    }

    /// Appends `entries` (in order) to their users' days, one `UpdateItem` per user and day
    /// (a batch's several notifications to one person are one request); the number of
    /// entries dropped because their day was full. A group that does not fit whole is
    /// appended one entry at a time until the day is full (so it fills up to its cap
    /// exactly, and a full day costs two requests per group, not one per entry).
    pub async fn record_all(&self, entries: &[HistoryEntry]) -> Result<usize, StoreError> {
        let mut groups: Vec<((&str, i64), Vec<&HistoryEntry>)> = Vec::new();
        for entry in entries {
            let key = (entry.user.as_str(), entry.at.div_euclid(DAY));
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, group)) => group.push(entry),
                None => groups.push((key, vec![entry])),
            }
        }
        let done = futures::future::join_all(groups.iter().map(|(_, group)| async move {
            if let [one] = group.as_slice() {
                return Ok(usize::from(!self.record(one).await?));
            }
            if self.append(group).await? {
                return Ok(0);
            }
            // Not room for all: one at a time until the day is full.
            for (i, entry) in group.iter().enumerate() {
                if !self.record(entry).await? {
                    return Ok(group.len() - i);
                }
            }
            Ok::<usize, StoreError>(0)
        }))
        .await;
        done.into_iter().sum()
    }

    /// Appends `group` (one user's entries of one day) whole, or not at all (`false`: the
    /// day has no room for all of them).
    async fn append(&self, group: &[&HistoryEntry]) -> Result<bool, StoreError> {
        let Some(first) = group.first() else {
            return Ok(true);
        };
        let docs = group
            .iter()
            .map(|entry| {
                serde_json::to_string(entry)
                    .map(AttributeValue::S)
                    .map_err(|e| StoreError::Corrupt {
                        key: entry.message_id.clone(),
                        problem: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Fits when `size + len <= MAX_PER_DAY`, i.e. `size < MAX_PER_DAY - len + 1`.
        let room = Self::MAX_PER_DAY.saturating_sub(group.len()) + 1;
        let day = first.at.div_euclid(DAY);
        let expires = (day + 1 + Self::RETENTION_DAYS) * DAY;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::pk(&first.user, day)))
            .update_expression(
                "SET entries = list_append(if_not_exists(entries, :empty), :new), \
                 expires_at = :exp",
            )
            .condition_expression("attribute_not_exists(entries) OR size(entries) < :room")
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":new", AttributeValue::L(docs))
            .expression_attribute_values(":exp", AttributeValue::N(expires.to_string()))
            .expression_attribute_values(":room", AttributeValue::N(room.to_string()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if crate::is_condition_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo(e)),
        }
    }

    /// `user`'s entries of the last `days` days (at most `RETENTION_DAYS + 1`), newest
    /// first.
    pub async fn recent(&self, user: &str, days: i64) -> Result<Vec<HistoryEntry>, StoreError> {
        let now = now();
        let today = now.div_euclid(DAY);
        let days = days.clamp(1, Self::RETENTION_DAYS + 1);
        let keys: Vec<HashMap<String, AttributeValue>> = (0..days)
            .map(|back| {
                HashMap::from([(
                    "pk".to_owned(),
                    AttributeValue::S(Self::pk(user, today - back)),
                )])
            })
            .collect();
        let mut wanted = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(StoreError::dynamo)?,
        );
        let mut entries = Vec::new();
        // Unprocessed keys come back under load: asked again, a bounded number of times.
        for _ in 0..5 {
            let Some(request) = wanted.take() else { break };
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(StoreError::dynamo)?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                if crate::api_table::expired(item, now) {
                    continue;
                }
                let Some(AttributeValue::L(list)) = item.get("entries") else {
                    continue;
                };
                for value in list {
                    if let AttributeValue::S(doc) = value {
                        match serde_json::from_str::<HistoryEntry>(doc) {
                            Ok(e) => entries.push(e),
                            Err(e) => tracing::warn!(error = %e, "unreadable history entry"),
                        }
                    }
                }
            }
            wanted = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .filter(|k| !k.keys().is_empty())
                .cloned();
        }
        // Newest first; within a second, the later append first.
        entries.reverse();
        entries.sort_by_key(|e| std::cmp::Reverse(e.at));
        Ok(entries)
    }
}
