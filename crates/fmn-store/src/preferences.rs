//! The preferences table: `pk = USER#<name>`, `sk = PREFS`, the document as JSON in `doc`;
//! `pk = META`, `sk = VERSION` holds a counter bumped with every write; `pk = CHANGES`,
//! `sk = <epoch ms>#<user>` records whose preferences each write changed (the matcher applies
//! just those), expiring after a day.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use fmn_rules::Preferences;

use crate::StoreError;

const PREFS_SK: &str = "PREFS";
const CHANGES_PK: &str = "CHANGES";
/// How long change-log records live: a matcher that slept longer reloads everything.
pub const CHANGE_LOG_TTL_SECS: u64 = 24 * 3600;

/// Preferences of every user, in DynamoDB.
#[derive(Debug, Clone)]
pub struct PreferenceTable {
    client: Client,
    table: String,
}

fn user_key(user: &str) -> String {
    format!("USER#{user}")
}

impl PreferenceTable {
    /// The table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        PreferenceTable {
            client,
            table: table.into(),
        }
    }

    /// Stores one user's preferences (replacing them) and bumps the version, atomically.
    pub async fn put(&self, prefs: &Preferences) -> Result<(), StoreError> {
        let doc = serde_json::to_string(prefs).map_err(|e| StoreError::Corrupt {
            key: user_key(&prefs.user),
            problem: e.to_string(),
        })?;
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(user_key(&prefs.user)))
            .item("sk", AttributeValue::S(PREFS_SK.into()))
            .item("doc", AttributeValue::S(doc))
            .build()
            .map_err(StoreError::dynamo)?;
        let bump = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S("META".into()))
            .key("sk", AttributeValue::S("VERSION".into()))
            .update_expression("ADD version :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(StoreError::dynamo)?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(bump).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.change(&prefs.user)?)
                    .build(),
            )
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(())
    }

    /// The change-log record of a write of `user`'s preferences: `pk = CHANGES`,
    /// `sk = <epoch ms, 13 digits>#<user>`, expiring after [`CHANGE_LOG_TTL_SECS`].
    fn change(&self, user: &str) -> Result<Put, StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ms = now.as_millis();
        Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(CHANGES_PK.into()))
            .item("sk", AttributeValue::S(format!("{ms:013}#{user}")))
            .item("user", AttributeValue::S(user.to_owned()))
            .item(
                "expires_at",
                AttributeValue::N((now.as_secs() + CHANGE_LOG_TTL_SECS).to_string()),
            )
            .build()
            .map_err(StoreError::dynamo)
    }

    /// Users whose preferences were written at or after `since_ms` (epoch milliseconds),
    /// oldest first, from the change log; `None` when more than `limit` changed (reload
    /// everything instead).
    pub async fn changed_since(
        &self,
        since_ms: u128,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut users: Vec<String> = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :changes AND sk >= :since")
            .expression_attribute_values(":changes", AttributeValue::S(CHANGES_PK.into()))
            .expression_attribute_values(":since", AttributeValue::S(format!("{since_ms:013}")))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(StoreError::dynamo)?;
            if let Some(AttributeValue::S(user)) = item.get("user") {
                if !users.contains(user) {
                    if users.len() == limit {
                        return Ok(None);
                    }
                    users.push(user.clone());
                }
            }
        }
        Ok(Some(users))
    }

    /// Deactivates one filter if it is still active, atomically with respect to every other
    /// write of the user's preferences: of several concurrent callers exactly one gets
    /// `true` (how a oneshot filter fires once). `false` when the filter is already inactive
    /// or gone.
    pub async fn deactivate_filter(
        &self,
        user: &str,
        context: fmn_rules::ContextKind,
        filter_id: &str,
    ) -> Result<bool, StoreError> {
        const ATTEMPTS: usize = 5;
        for _ in 0..ATTEMPTS {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(user_key(user)))
                .key("sk", AttributeValue::S(PREFS_SK.into()))
                .consistent_read(true)
                .send()
                .await
                .map_err(StoreError::dynamo)?;
            let Some(item) = out.item else {
                return Ok(false);
            };
            let Some(AttributeValue::S(old_doc)) = item.get("doc").cloned() else {
                return Err(StoreError::Corrupt {
                    key: user_key(user),
                    problem: "no doc attribute".into(),
                });
            };
            let mut prefs = parse(&item)?;
            let Some(filter) = prefs
                .contexts
                .get_mut(&context)
                .and_then(|c| c.filters.iter_mut().find(|f| f.id == filter_id))
                .filter(|f| f.active)
            else {
                return Ok(false);
            };
            filter.active = false;
            match self.put_if(&prefs, Some(&old_doc)).await {
                Ok(()) => return Ok(true),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "preferences of {user} kept changing during {ATTEMPTS} attempts"
        )))
    }

    /// Stores preferences only if the stored document is still `expected` (`None`: absent),
    /// bumping the version; [`StoreError::Conflict`] otherwise.
    pub async fn put_if(
        &self,
        prefs: &Preferences,
        expected: Option<&str>,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(prefs).map_err(|e| StoreError::Corrupt {
            key: user_key(&prefs.user),
            problem: e.to_string(),
        })?;
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(user_key(&prefs.user)))
            .item("sk", AttributeValue::S(PREFS_SK.into()))
            .item("doc", AttributeValue::S(doc));
        let put = match expected {
            Some(old) => put
                .condition_expression("doc = :old")
                .expression_attribute_values(":old", AttributeValue::S(old.to_owned())),
            None => put.condition_expression("attribute_not_exists(pk)"),
        }
        .build()
        .map_err(StoreError::dynamo)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(self.bump()?).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.change(&prefs.user)?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Err(StoreError::Conflict(format!(
                    "preferences of {} changed meanwhile",
                    prefs.user
                )))
            }
            Err(e) => Err(StoreError::dynamo(e)),
        }
    }

    fn bump(&self) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S("META".into()))
            .key("sk", AttributeValue::S("VERSION".into()))
            .update_expression("ADD version :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(StoreError::dynamo)
    }

    /// One user's preferences, if stored.
    pub async fn get(&self, user: &str) -> Result<Option<Preferences>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(user_key(user)))
            .key("sk", AttributeValue::S(PREFS_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        out.item.as_ref().map(parse).transpose()
    }

    /// The version stamp: changes whenever any user's preferences change.
    pub async fn version(&self) -> Result<u64, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S("META".into()))
            .key("sk", AttributeValue::S("VERSION".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(out
            .item
            .and_then(|item| match item.get("version") {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            })
            .unwrap_or(0))
    }

    /// Every user's preferences (a full scan; the matcher does this only when the version
    /// changed).
    pub async fn load_all(&self) -> Result<Vec<Preferences>, StoreError> {
        let mut all = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :prefs")
            .expression_attribute_values(":prefs", AttributeValue::S(PREFS_SK.into()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            all.push(parse(&item.map_err(StoreError::dynamo)?)?);
        }
        Ok(all)
    }
}

fn parse(item: &HashMap<String, AttributeValue>) -> Result<Preferences, StoreError> {
    let key = match item.get("pk") {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => "?".into(),
    };
    let Some(AttributeValue::S(doc)) = item.get("doc") else {
        return Err(StoreError::Corrupt {
            key,
            problem: "no doc attribute".into(),
        });
    };
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt {
        key,
        problem: e.to_string(),
    })
}
