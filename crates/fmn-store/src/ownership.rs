//! The ownership table: snapshots of the distribution's maintainer data, replaced atomically.
//!
//! - `pk = SNAPSHOT#<id>`, `sk = CHUNK#<nnnnn>`: the snapshot's JSON text (dist-git's
//!   `pagure_owner_alias.json` shape) cut into chunks below DynamoDB's 400 KB item limit.
//! - `pk = CURRENT`, `sk = CURRENT`: which snapshot is live (its id, chunk count, size).
//!
//! A sync writes every chunk of the new snapshot first and then moves `CURRENT` with one
//! conditional put, so readers see either the old snapshot or the new one, never a mix; the
//! old snapshot's chunks are deleted afterwards. The id is the SHA-256 of the text, so an
//! unchanged source writes nothing.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// The largest chunk of snapshot text in one item (bytes).
const CHUNK_BYTES: usize = 300_000;
/// How often unprocessed batch items are retried before giving up.
const BATCH_ATTEMPTS: usize = 8;

/// Maintainer snapshots in DynamoDB.
#[derive(Debug, Clone)]
pub struct OwnershipTable {
    client: Client,
    pub(crate) table: String,
}

/// The live snapshot's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// SHA-256 of the text, hex.
    pub id: String,
    /// How many chunk items hold it.
    pub chunks: usize,
    /// Its size in bytes.
    pub bytes: usize,
    /// How many artifacts it names (for the sync's sanity checks).
    pub artifacts: usize,
    /// When it became live, seconds since the epoch.
    pub synced_at: i64,
}

/// What [`OwnershipTable::replace`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replaced {
    /// The text is the live snapshot already; nothing was written.
    Unchanged(Snapshot),
    /// The text is the live snapshot now.
    Replaced {
        /// The new live snapshot.
        current: Snapshot,
        /// The snapshot it replaced, whose chunks were deleted.
        previous: Option<Snapshot>,
    },
}

/// The id of snapshot text.
pub fn snapshot_id(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn chunks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(CHUNK_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    out
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn chunk_key(id: &str, i: usize) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(format!("SNAPSHOT#{id}"))),
        ("sk".to_owned(), s(format!("CHUNK#{i:05}"))),
    ])
}

pub(crate) fn current_key() -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s("CURRENT")),
        ("sk".to_owned(), s("CURRENT")),
    ])
}

impl OwnershipTable {
    /// The table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        OwnershipTable {
            client,
            table: table.into(),
        }
    }

    /// The live snapshot, if any sync ever succeeded.
    pub async fn current(&self) -> Result<Option<Snapshot>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(current_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        out.item.as_ref().map(parse_current).transpose()
    }

    /// The text of a snapshot, reassembled from its chunks.
    pub async fn load(&self, snapshot: &Snapshot) -> Result<String, StoreError> {
        let mut text = String::with_capacity(snapshot.bytes);
        for i in 0..snapshot.chunks {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(chunk_key(&snapshot.id, i)))
                .consistent_read(true)
                .send()
                .await
                .map_err(StoreError::dynamo)?;
            match out.item.as_ref().and_then(|item| item.get("text")) {
                Some(AttributeValue::S(part)) => text.push_str(part),
                _ => {
                    return Err(StoreError::Corrupt {
                        key: format!("SNAPSHOT#{}/CHUNK#{i:05}", snapshot.id),
                        problem: "chunk missing".into(),
                    });
                }
            }
        }
        if snapshot_id(&text) != snapshot.id {
            return Err(StoreError::Corrupt {
                key: format!("SNAPSHOT#{}", snapshot.id),
                problem: "text does not match its id".into(),
            });
        }
        Ok(text)
    }

    /// Makes `text` (already validated by the caller; it names `artifacts` artifacts) the
    /// live snapshot, atomically for readers, then deletes the previous one.
    pub async fn replace(
        &self,
        text: &str,
        artifacts: usize,
        now: i64,
    ) -> Result<Replaced, StoreError> {
        let previous = self.current().await?;
        let id = snapshot_id(text);
        if let Some(p) = previous.as_ref().filter(|p| p.id == id) {
            return Ok(Replaced::Unchanged(p.clone()));
        }
        let parts = chunks(text);
        let puts = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let mut item = chunk_key(&id, i);
                item.insert("text".into(), s(*part));
                let put = PutRequest::builder().set_item(Some(item)).build()?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, aws_sdk_dynamodb::error::BuildError>>()
            .map_err(StoreError::dynamo)?;
        self.write_all(puts).await?;
        let current = Snapshot {
            id,
            chunks: parts.len(),
            bytes: text.len(),
            artifacts,
            synced_at: now,
        };
        let mut item = current_key();
        item.insert("id".into(), s(&current.id));
        item.insert("chunks".into(), n(current.chunks));
        item.insert("bytes".into(), n(current.bytes));
        item.insert("artifacts".into(), n(current.artifacts));
        item.insert("synced_at".into(), n(current.synced_at));
        // Only move CURRENT from the snapshot this sync read: two concurrent syncs cannot
        // both win, and the loser's chunks are cleaned up below.
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match &previous {
            Some(p) => put
                .condition_expression("id = :previous")
                .expression_attribute_values(":previous", s(&p.id)),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        if let Err(e) = put.send().await {
            let lost_race = crate::is_condition_failure(&e);
            self.delete_chunks(&current).await?;
            return Err(if lost_race {
                StoreError::Conflict("another ownership sync replaced the snapshot first".into())
            } else {
                StoreError::dynamo(e)
            });
        }
        if let Some(p) = &previous {
            self.delete_chunks(p).await?;
        }
        Ok(Replaced::Replaced { current, previous })
    }

    async fn delete_chunks(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let deletes = (0..snapshot.chunks)
            .map(|i| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(chunk_key(&snapshot.id, i)))
                    .build()?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, aws_sdk_dynamodb::error::BuildError>>()
            .map_err(StoreError::dynamo)?;
        self.write_all(deletes).await
    }

    async fn write_all(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        crate::dynamo::write_batches(
            &self.client,
            &self.table,
            requests,
            BATCH_ATTEMPTS,
            "writes",
        )
        .await
    }
}

pub(crate) fn parse_current(
    item: &HashMap<String, AttributeValue>,
) -> Result<Snapshot, StoreError> {
    let corrupt = |problem: &str| StoreError::Corrupt {
        key: "CURRENT".into(),
        problem: problem.into(),
    };
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(corrupt(name)),
    };
    let num = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<i64>().map_err(|_| corrupt(name)),
        _ => Err(corrupt(name)),
    };
    let count = |name: &str| num(name).and_then(|v| usize::try_from(v).map_err(|_| corrupt(name)));
    Ok(Snapshot {
        id: text("id")?,
        chunks: count("chunks")?,
        bytes: count("bytes")?,
        artifacts: count("artifacts")?,
        synced_at: num("synced_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cut_at_char_boundaries_and_reassemble() {
        let text = "é".repeat(CHUNK_BYTES); // two bytes each
        let parts = chunks(&text);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.len() <= CHUNK_BYTES));
        assert_eq!(parts.concat(), text);
        assert!(chunks("").is_empty());
    }

    #[test]
    fn ids_are_content_hashes() {
        assert_eq!(snapshot_id("{}"), snapshot_id("{}"));
        assert_ne!(snapshot_id("{}"), snapshot_id("{ }"));
        assert_eq!(snapshot_id("").len(), 64);
    }
}
