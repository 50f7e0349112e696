//! Personal API tokens and feed tokens, stored by the SHA-256 of the secret only.
//!
//! Items: `TOKEN#<hash>`/`TOKEN` (lookup by secret) and `USER#<u>`/`TOKEN#<id>` (a user's
//! list), written together; `FEED#<hash>`/`FEED` (feed URL lookup) and `USER#<u>`/`FEED`
//! (the current one, so rotating deletes the old lookup).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use crate::StoreError;
use crate::api_table::{
    Item, corrupt, expired, get_bool, get_n_opt, get_s, get_s_opt, key, n, now, s,
};

/// A personal API token as stored (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public identifier, used to list and revoke it.
    pub id: String,
    /// The SHA-256 of the secret (hex).
    pub hash: String,
    /// Whose token it is.
    pub user: String,
    /// Whether it grants admin rights.
    pub admin: bool,
    /// A label chosen by its owner.
    pub name: Option<String>,
    /// When it was minted, seconds since the epoch.
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
}

/// Tokens in the API table.
#[derive(Debug, Clone)]
pub struct TokenStore {
    client: Client,
    table: String,
}

fn user_pk(user: &str) -> String {
    format!("USER#{user}")
}

impl TokenStore {
    /// The API table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        TokenStore {
            client,
            table: table.into(),
        }
    }

    fn items(&self, t: &TokenRecord) -> Vec<Item> {
        let mut common = Item::new();
        common.insert("id".into(), s(&t.id));
        common.insert("hash".into(), s(&t.hash));
        common.insert("user".into(), s(&t.user));
        common.insert(
            "admin".into(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(t.admin),
        );
        common.insert("created_at".into(), n(t.created_at));
        if let Some(name) = &t.name {
            common.insert("name".into(), s(name));
        }
        if let Some(e) = t.expires_at {
            common.insert("expires_at".into(), n(e));
        }
        let mut lookup = common.clone();
        lookup.extend(key(format!("TOKEN#{}", t.hash), "TOKEN"));
        let mut listed = common;
        listed.extend(key(user_pk(&t.user), format!("TOKEN#{}", t.id)));
        vec![lookup, listed]
    }

    /// Stores a new token.
    pub async fn insert(&self, t: &TokenRecord) -> Result<(), StoreError> {
        let mut tx = self.client.transact_write_items();
        for item in self.items(t) {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(StoreError::dynamo)?;
            tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
        }
        tx.send().await.map_err(StoreError::dynamo)?;
        Ok(())
    }

    /// The live token whose secret hashes to `hash` (expired tokens are absent).
    pub async fn lookup(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("TOKEN#{hash}"), "TOKEN")))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        match out.item {
            Some(item) if !expired(&item, now()) => Ok(Some(record(&item)?)),
            _ => Ok(None),
        }
    }

    /// A user's live tokens, oldest first.
    pub async fn list(&self, user: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let now = now();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :t)")
            .expression_attribute_values(":pk", s(user_pk(user)))
            .expression_attribute_values(":t", s("TOKEN#"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut all = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(StoreError::dynamo)?;
            if !expired(&item, now) {
                all.push(record(&item)?);
            }
        }
        all.sort_by_key(|t| t.created_at);
        Ok(all)
    }

    /// Revokes one of a user's tokens; false when there is no such token.
    pub async fn revoke(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), format!("TOKEN#{id}"))))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        let Some(item) = out.item else {
            return Ok(false);
        };
        let t = record(&item)?;
        let mut tx = self.client.transact_write_items();
        for k in [
            key(format!("TOKEN#{}", t.hash), "TOKEN"),
            key(user_pk(user), format!("TOKEN#{id}")),
        ] {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(k))
                .build()
                .map_err(StoreError::dynamo)?;
            tx = tx.transact_items(TransactWriteItem::builder().delete(delete).build());
        }
        tx.send().await.map_err(StoreError::dynamo)?;
        Ok(true)
    }

    /// Makes `hash` the user's only feed token (the previous one stops working).
    pub async fn set_feed_token(&self, user: &str, hash: &str) -> Result<(), StoreError> {
        let current = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), "FEED")))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?
            .item
            .and_then(|i| get_s_opt(&i, "hash"));
        let mut tx = self.client.transact_write_items();
        if let Some(old) = current.filter(|old| old != hash) {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("FEED#{old}"), "FEED")))
                .build()
                .map_err(StoreError::dynamo)?;
            tx = tx.transact_items(TransactWriteItem::builder().delete(delete).build());
        }
        for (pk, sk) in [(user_pk(user), "FEED"), (format!("FEED#{hash}"), "FEED")] {
            let mut item = key(pk, sk);
            item.insert("user".into(), s(user));
            item.insert("hash".into(), s(hash));
            item.insert("created_at".into(), n(now()));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(StoreError::dynamo)?;
            tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
        }
        tx.send().await.map_err(StoreError::dynamo)?;
        Ok(())
    }

    /// The user whose feed token hashes to `hash`.
    pub async fn feed_user(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("FEED#{hash}"), "FEED")))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(out.item.and_then(|i| get_s_opt(&i, "user")))
    }
}

fn record(item: &Item) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: get_s(item, "id")?,
        hash: get_s(item, "hash")?,
        user: get_s(item, "user")?,
        admin: get_bool(item, "admin"),
        name: get_s_opt(item, "name"),
        created_at: get_n_opt(item, "created_at").ok_or_else(|| corrupt(item, "no created_at"))?,
        expires_at: get_n_opt(item, "expires_at"),
    })
}
