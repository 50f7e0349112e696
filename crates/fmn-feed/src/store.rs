//! Feed items in DynamoDB: `pk = FEED#<user>`, `sk = ITEM#<message id>`, the item as JSON in
//! `doc`, `published` (number) for ordering and `expires_at` (the table's TTL attribute).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::FeedItem;

/// Items kept per user: pushing more drops the oldest.
pub const MAX_ITEMS_PER_USER: usize = 100;
/// How long an item stays in a feed (seconds).
pub const RETENTION_SECS: u64 = 30 * 24 * 3600;

/// A feed table operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// DynamoDB answered with an error or could not be reached; worth retrying.
    #[error("dynamodb: {0}")]
    Dynamo(String),
    /// A stored item is not what fmn writes.
    #[error("corrupt feed item {key}: {problem}")]
    Corrupt {
        /// The item's sort key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl FeedError {
    fn dynamo<E: std::error::Error>(e: E) -> Self {
        FeedError::Dynamo(fmn_store::dynamo_error_text(&e))
    }
}

/// Every user's feed, in one DynamoDB table (env `FMN_FEED_TABLE` in the functions).
#[derive(Debug, Clone)]
pub struct FeedStore {
    client: Client,
    table: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn user_key(user: &str) -> String {
    format!("FEED#{user}")
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

impl FeedStore {
    /// The feed table named `table`.
    pub fn new(client: Client, table: &str) -> Self {
        FeedStore {
            client,
            table: table.into(),
        }
    }

    /// Adds `item` to `user`'s feed (replacing an item with the same id, so a redelivered
    /// notification appears once), then drops the oldest items beyond
    /// [`MAX_ITEMS_PER_USER`] and the expired ones. Answers whether the item is new (false
    /// for a redelivery that replaced itself).
    pub async fn push(&self, user: &str, item: &FeedItem) -> Result<bool, FeedError> {
        let doc = serde_json::to_string(item).map_err(|e| FeedError::Corrupt {
            key: item.id.clone(),
            problem: e.to_string(),
        })?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(user_key(user)))
            .item("sk", AttributeValue::S(format!("ITEM#{}", item.id)))
            .item("doc", AttributeValue::S(doc))
            .item("published", AttributeValue::N(item.published.to_string()))
            .item(
                "expires_at",
                AttributeValue::N((now() + RETENTION_SECS).to_string()),
            )
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(FeedError::dynamo)?;
        self.trim(user).await?;
        Ok(put.attributes().is_none_or(|old| old.is_empty()))
    }

    async fn items(
        &self,
        user: &str,
        projection: Option<&str>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, FeedError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(user_key(user)))
            .consistent_read(true);
        if let Some(projection) = projection {
            query = query.projection_expression(projection);
        }
        let mut pages = query.into_paginator().items().send();
        let mut all = Vec::new();
        let now = now() as i64;
        while let Some(item) = pages.next().await {
            let item = item.map_err(FeedError::dynamo)?;
            // TTL deletion is lazy (and moto never does it): expired means absent.
            if number(&item, "expires_at").is_none_or(|t| t > now) {
                all.push(item);
            }
        }
        Ok(all)
    }

    async fn trim(&self, user: &str) -> Result<(), FeedError> {
        let mut keys: Vec<(i64, String)> = self
            .items(user, Some("sk, published, expires_at"))
            .await?
            .iter()
            .filter_map(|i| Some((number(i, "published")?, string(i, "sk")?.to_owned())))
            .collect();
        if keys.len() <= MAX_ITEMS_PER_USER {
            return Ok(());
        }
        keys.sort();
        let excess = keys.len() - MAX_ITEMS_PER_USER;
        for (_, sk) in keys.into_iter().take(excess) {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(user_key(user)))
                .key("sk", AttributeValue::S(sk))
                .send()
                .await
                .map_err(FeedError::dynamo)?;
        }
        Ok(())
    }

    /// `user`'s newest items, newest first, at most `limit`.
    pub async fn recent(&self, user: &str, limit: usize) -> Result<Vec<FeedItem>, FeedError> {
        let mut items = self
            .items(user, None)
            .await?
            .iter()
            .map(|i| {
                let key = string(i, "sk").unwrap_or("?").to_owned();
                let doc = string(i, "doc").ok_or_else(|| FeedError::Corrupt {
                    key: key.clone(),
                    problem: "no doc attribute".into(),
                })?;
                serde_json::from_str::<FeedItem>(doc).map_err(|e| FeedError::Corrupt {
                    key,
                    problem: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_by(|a, b| b.published.cmp(&a.published).then(b.id.cmp(&a.id)));
        items.truncate(limit);
        Ok(items)
    }
}
