//! The inbox's DynamoDB tables (feature `store`).
//!
//! **Inbox table** (`FMN_INBOX_TABLE`, keys `pk`/`sk`, TTL attribute `expires_at`), per user
//! `pk = <user>`:
//! - `ITEM#<id>`: the item (`doc`, JSON); ids sort by time, so a page is one `Query`;
//! - `UNREAD#<id>`: present while the item is unread (tiny, so counting them is cheap);
//! - `MSG#<hash>`: the item a (message, filter) became ([`crate::item_hash`]), written in
//!   the same transaction as the item, so a redelivered job adds nothing;
//!
//! About one addition in [`TRIM_EVERY`], chosen by its item's hash (SHA-256, so uniformly),
//! trims the inbox to its newest [`MAX_ITEMS`]: an inbox holds `MAX_ITEMS` plus the
//! additions since the last trim, about `TRIM_EVERY`, more than 100 with a chance of 0.6 %
//! and more than 200 with one of 0.004 %. (A counter of additions made the bound exact,
//! at one more write per item: issue 18's request budget.)
//!
//! Everything expires [`RETENTION_SECS`] after it was written.
//!
//! **Connections table** (`FMN_CONNECTIONS_TABLE`, keys `pk`/`sk`, TTL `expires_at`,
//! [`crate::CONNECTION_MAX_SECS`]): `pk = <user>`, `sk = CONN#<connection id>` (the sender
//! finds a user's connections with one `Query`), and `pk = CONN#<connection id>`,
//! `sk = CONN` naming its user (`$disconnect` knows only the connection id).

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, TransactWriteItem, WriteRequest,
};

use crate::{InboxItem, InboxPage};

/// Items kept per user (the newest); more are trimmed.
pub const MAX_ITEMS: usize = 200;
/// Every how many additions, on average, the inbox is trimmed.
pub const TRIM_EVERY: u64 = 20;

/// Whether adding the item whose id hash is `hash` trims the inbox: about one addition in
/// [`TRIM_EVERY`], without a write to count them.
fn trims(hash: &str) -> bool {
    let head = hash.get(..8).and_then(|h| u64::from_str_radix(h, 16).ok());
    head.is_none_or(|h| h % TRIM_EVERY == 0)
}
/// How long an item stays (seconds).
pub const RETENTION_SECS: u64 = 30 * 24 * 3600;

type Row = HashMap<String, AttributeValue>;

/// An inbox or connections table operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// DynamoDB answered with an error or could not be reached; worth retrying.
    #[error("dynamodb: {0}")]
    Dynamo(String),
    /// A stored item is not what fmn writes.
    #[error("corrupt inbox item {key}: {problem}")]
    Corrupt {
        /// The item's key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl InboxError {
    fn dynamo<E: std::error::Error>(e: E) -> Self {
        InboxError::Dynamo(fmn_store::dynamo_error_text(&e))
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn now() -> u64 {
    crate::now_ms() / 1000
}

fn get_s<'a>(row: &'a Row, name: &str) -> Option<&'a str> {
    match row.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn live(row: &Row, now: u64) -> bool {
    // TTL deletion is lazy (and moto never does it): expired means absent.
    match row.get("expires_at") {
        Some(AttributeValue::N(t)) => t.parse::<u64>().is_ok_and(|t| t > now),
        _ => true,
    }
}

/// What [`InboxStore::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// The item is new in the inbox.
    New,
    /// This (message, filter) was already in the inbox, under this id: nothing added.
    Already(String),
}

/// Every user's inbox, in one table.
#[derive(Debug, Clone)]
pub struct InboxStore {
    client: Client,
    table: String,
}

impl InboxStore {
    /// The inbox table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        InboxStore {
            client,
            table: table.into(),
        }
    }

    fn put(&self, row: Row, condition: Option<&str>) -> Result<TransactWriteItem, InboxError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(row))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(InboxError::dynamo)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Adds `item` to `user`'s inbox, once per (message, filter) whose hash is the id's
    /// second part: the item, its unread mark and the (message, filter) record in one
    /// transaction. Trims the inbox about every [`TRIM_EVERY`]th addition.
    pub async fn add(&self, user: &str, item: &InboxItem) -> Result<Added, InboxError> {
        let corrupt = |problem: String| InboxError::Corrupt {
            key: item.id.clone(),
            problem,
        };
        let hash = item
            .id
            .split_once('-')
            .map(|(_, h)| h.to_owned())
            .ok_or_else(|| corrupt("not an inbox item id".into()))?;
        let doc = serde_json::to_string(item).map_err(|e| corrupt(e.to_string()))?;
        let expires = n(now() + RETENTION_SECS);
        let row = |sk: String, extra: &[(&str, AttributeValue)]| {
            let mut r: Row = HashMap::new();
            r.insert("pk".into(), s(user));
            r.insert("sk".into(), s(sk));
            r.insert("expires_at".into(), expires.clone());
            for (k, v) in extra {
                r.insert((*k).into(), v.clone());
            }
            r
        };
        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(self.put(
                row(format!("MSG#{hash}"), &[("id", s(&item.id))]),
                Some("attribute_not_exists(pk)"),
            )?)
            .transact_items(self.put(row(format!("ITEM#{}", item.id), &[("doc", s(doc))]), None)?);
        if !item.read {
            tx = tx.transact_items(self.put(row(format!("UNREAD#{}", item.id), &[]), None)?);
        }
        match tx.send().await {
            Ok(_) => {}
            Err(e) if fmn_store::is_condition_failure(&e) => {
                // Which part failed is read back: the (message, filter) record means the
                // item was added before; otherwise the transaction lost a race: retry.
                let got = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(user))
                    .key("sk", s(format!("MSG#{hash}")))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(InboxError::dynamo)?;
                return match got.item.as_ref().and_then(|r| get_s(r, "id")) {
                    Some(id) => Ok(Added::Already(id.to_owned())),
                    None => Err(InboxError::dynamo(e)),
                };
            }
            Err(e) => return Err(InboxError::dynamo(e)),
        }
        if trims(&hash)
            && let Err(e) = self.trim(user).await
        {
            // The item is in; trimming waits for a later addition.
            tracing::warn!(user, error = %e, "inbox not trimmed");
        }
        Ok(Added::New)
    }

    /// Keys (`sk`) of `user`'s rows starting with `prefix`, with their rows' other
    /// projected attributes, oldest first (live ones only).
    async fn rows(
        &self,
        user: &str,
        prefix: &str,
        projection: Option<&str>,
    ) -> Result<Vec<Row>, InboxError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(user))
            .expression_attribute_values(":p", s(prefix));
        if let Some(p) = projection {
            query = query.projection_expression(p);
        }
        let mut pages = query.into_paginator().items().send();
        let mut rows = Vec::new();
        let now = now();
        while let Some(row) = pages.next().await {
            let row = row.map_err(InboxError::dynamo)?;
            if live(&row, now) {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// Drops `user`'s items beyond the newest [`MAX_ITEMS`] (and their unread marks).
    pub async fn trim(&self, user: &str) -> Result<usize, InboxError> {
        let items = self.rows(user, "ITEM#", Some("sk, expires_at")).await?;
        if items.len() <= MAX_ITEMS {
            return Ok(0);
        }
        let excess = items.len() - MAX_ITEMS;
        let mut keys = Vec::with_capacity(excess * 2);
        for row in items.iter().take(excess) {
            if let Some(sk) = get_s(row, "sk") {
                let id = sk.trim_start_matches("ITEM#");
                keys.push(sk.to_owned());
                keys.push(format!("UNREAD#{id}"));
            }
        }
        self.delete_all(user, keys).await?;
        Ok(excess)
    }

    async fn delete_all(&self, user: &str, keys: Vec<String>) -> Result<(), InboxError> {
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|sk| {
                    let delete = DeleteRequest::builder()
                        .key("pk", s(user))
                        .key("sk", s(sk))
                        .build()
                        .map_err(InboxError::dynamo)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, InboxError>>()?;
            for attempt in 0..5u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(InboxError::dynamo)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                tokio_sleep_ms(50 << attempt).await;
            }
            if !requests.is_empty() {
                return Err(InboxError::Dynamo(format!(
                    "{} deletions left unprocessed",
                    requests.len()
                )));
            }
        }
        Ok(())
    }

    /// The ids of `user`'s unread items.
    async fn unread_ids(&self, user: &str) -> Result<HashSet<String>, InboxError> {
        Ok(self
            .rows(user, "UNREAD#", Some("sk, expires_at"))
            .await?
            .iter()
            .filter_map(|r| get_s(r, "sk"))
            .map(|sk| sk.trim_start_matches("UNREAD#").to_owned())
            .collect())
    }

    /// How many of `user`'s items are unread.
    pub async fn unread(&self, user: &str) -> Result<u64, InboxError> {
        Ok(self.unread_ids(user).await?.len() as u64)
    }

    /// `user`'s newest items (at most `limit`), newest first, only those whose id is after
    /// `after` when given; and the unread count.
    pub async fn page(
        &self,
        user: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<InboxPage, InboxError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .expression_attribute_values(":pk", s(user));
        query = match after {
            // Ids are digits, `-` and lowercase hex: every later id sorts below `ITEM#~`.
            Some(after) => query
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":lo", s(format!("ITEM#{after}")))
                .expression_attribute_values(":hi", s("ITEM#~")),
            None => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":p", s("ITEM#")),
        };
        let mut pages = query.into_paginator().items().send();
        let now = now();
        let mut items = Vec::new();
        while let Some(row) = pages.next().await {
            let row = row.map_err(InboxError::dynamo)?;
            if !live(&row, now) {
                continue;
            }
            let key = get_s(&row, "sk").unwrap_or("?").to_owned();
            if after.is_some_and(|a| key == format!("ITEM#{a}")) {
                continue;
            }
            let doc = get_s(&row, "doc").ok_or_else(|| InboxError::Corrupt {
                key: key.clone(),
                problem: "no doc attribute".into(),
            })?;
            let item: InboxItem = serde_json::from_str(doc).map_err(|e| InboxError::Corrupt {
                key,
                problem: e.to_string(),
            })?;
            items.push(item);
            if items.len() >= limit {
                break;
            }
        }
        let unread = self.unread_ids(user).await?;
        for item in &mut items {
            item.read = !unread.contains(&item.id);
        }
        Ok(InboxPage {
            items,
            unread: unread.len() as u64,
        })
    }

    /// Marks `user`'s item `id` read; `false` when there is no such item.
    pub async fn mark_read(&self, user: &str, id: &str) -> Result<bool, InboxError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(user))
            .key("sk", s(format!("ITEM#{id}")))
            .projection_expression("sk, expires_at")
            .send()
            .await
            .map_err(InboxError::dynamo)?;
        if !got.item.is_some_and(|r| live(&r, now())) {
            return Ok(false);
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(user))
            .key("sk", s(format!("UNREAD#{id}")))
            .send()
            .await
            .map_err(InboxError::dynamo)?;
        Ok(true)
    }

    /// Marks every item of `user` read; returns how many were unread.
    pub async fn mark_all_read(&self, user: &str) -> Result<u64, InboxError> {
        let keys: Vec<String> = self
            .unread_ids(user)
            .await?
            .into_iter()
            .map(|id| format!("UNREAD#{id}"))
            .collect();
        let count = keys.len() as u64;
        self.delete_all(user, keys).await?;
        Ok(count)
    }
}

async fn tokio_sleep_ms(ms: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// The open WebSocket connections, by user.
#[derive(Debug, Clone)]
pub struct ConnectionStore {
    client: Client,
    table: String,
}

impl ConnectionStore {
    /// The connections table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        ConnectionStore {
            client,
            table: table.into(),
        }
    }

    /// Records connection `id` of `user` (both rows, for [`crate::CONNECTION_MAX_SECS`]).
    pub async fn add(&self, id: &str, user: &str) -> Result<(), InboxError> {
        let expires = n(now() + crate::CONNECTION_MAX_SECS);
        let mut tx = self.client.transact_write_items();
        for (pk, sk) in [
            (user.to_owned(), format!("CONN#{id}")),
            (format!("CONN#{id}"), "CONN".to_owned()),
        ] {
            let put = Put::builder()
                .table_name(&self.table)
                .item("pk", s(pk))
                .item("sk", s(sk))
                .item("user", s(user))
                .item("connection", s(id))
                .item("expires_at", expires.clone())
                .build()
                .map_err(InboxError::dynamo)?;
            tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
        }
        tx.send().await.map_err(InboxError::dynamo)?;
        Ok(())
    }

    /// The user of connection `id`, if it is recorded.
    pub async fn user_of(&self, id: &str) -> Result<Option<String>, InboxError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("CONN#{id}")))
            .key("sk", s("CONN"))
            .consistent_read(true)
            .send()
            .await
            .map_err(InboxError::dynamo)?;
        Ok(got
            .item
            .filter(|r| live(r, now()))
            .and_then(|r| get_s(&r, "user").map(str::to_owned)))
    }

    /// `user`'s open connections.
    pub async fn of_user(&self, user: &str) -> Result<Vec<String>, InboxError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :c)")
            .expression_attribute_values(":pk", s(user))
            .expression_attribute_values(":c", s("CONN#"))
            .into_paginator()
            .items()
            .send();
        let now = now();
        let mut ids = Vec::new();
        while let Some(row) = pages.next().await {
            let row = row.map_err(InboxError::dynamo)?;
            if live(&row, now)
                && let Some(sk) = get_s(&row, "sk")
            {
                ids.push(sk.trim_start_matches("CONN#").to_owned());
            }
        }
        Ok(ids)
    }

    /// Forgets connection `id` of `user`.
    pub async fn remove(&self, id: &str, user: &str) -> Result<(), InboxError> {
        for (pk, sk) in [
            (user.to_owned(), format!("CONN#{id}")),
            (format!("CONN#{id}"), "CONN".to_owned()),
        ] {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .send()
                .await
                .map_err(InboxError::dynamo)?;
        }
        Ok(())
    }

    /// Forgets connection `id` (its user looked up); returns that user.
    pub async fn disconnect(&self, id: &str) -> Result<Option<String>, InboxError> {
        let user = self.user_of(id).await?;
        if let Some(user) = &user {
            self.remove(id, user).await?;
        }
        Ok(user)
    }
}
