//! Pending address confirmations: one item per (user, context, address) holding the
//! SHA-256 of the one-time code, its expiry and the failed attempts; for email, a lookup
//! item from the link token's hash to that key.
//!
//! Items: `USER#<u>`/`CONFIRM#<context>#<address>` and `CONFIRMLINK#<hash>`/`CONFIRMLINK`.
//! Confirming deletes the pending item with a condition, so a code works once.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use fmn_rules::ContextKind;

use crate::StoreError;
use crate::api_table::{
    Item, expired, get_n_opt, get_s, get_s_opt, is_condition_failure, key, n, now, s,
};

/// A code or link waiting to be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConfirmation {
    /// The address's owner.
    pub user: String,
    /// The address's context.
    pub context: ContextKind,
    /// The address.
    pub address: String,
    /// SHA-256 (hex) of the code or link token.
    pub code_hash: String,
    /// When it stops working, seconds since the epoch.
    pub expires_at: i64,
    /// Wrong codes entered so far.
    pub attempts: u32,
}

/// How using a code went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// The code was right: the confirmation is used up.
    Confirmed,
    /// Wrong code (one more attempt counted).
    WrongCode,
    /// No live confirmation: never asked, expired, used, or too many wrong attempts.
    NotPending,
}

/// Pending confirmations in the API table.
#[derive(Debug, Clone)]
pub struct ConfirmationStore {
    client: Client,
    table: String,
    max_attempts: u32,
}

fn pending_key(user: &str, context: ContextKind, address: &str) -> Item {
    key(
        format!("USER#{user}"),
        format!("CONFIRM#{}#{address}", context.as_str()),
    )
}

fn link_key(hash: &str) -> Item {
    key(format!("CONFIRMLINK#{hash}"), "CONFIRMLINK")
}

impl ConfirmationStore {
    /// The API table named `table`; a code stops working after 5 wrong attempts.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        ConfirmationStore {
            client,
            table: table.into(),
            max_attempts: 5,
        }
    }

    /// Stores a confirmation, replacing any earlier one for the same address; with
    /// `link` the code also works as a link token (looked up by its hash alone).
    pub async fn put(&self, p: &PendingConfirmation, link: bool) -> Result<(), StoreError> {
        let mut item = pending_key(&p.user, p.context, &p.address);
        item.insert("user".into(), s(&p.user));
        item.insert("context".into(), s(p.context.as_str()));
        item.insert("address".into(), s(&p.address));
        item.insert("code_hash".into(), s(&p.code_hash));
        item.insert("expires_at".into(), n(p.expires_at));
        item.insert("attempts".into(), n(0));
        let mut tx = self.client.transact_write_items().transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item.clone()))
                        .build()
                        .map_err(StoreError::dynamo)?,
                )
                .build(),
        );
        if link {
            let mut lookup = item;
            lookup.extend(link_key(&p.code_hash));
            tx = tx.transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(lookup))
                            .build()
                            .map_err(StoreError::dynamo)?,
                    )
                    .build(),
            );
        }
        tx.send().await.map_err(StoreError::dynamo)?;
        Ok(())
    }

    /// The live confirmation for an address.
    pub async fn get(
        &self,
        user: &str,
        context: ContextKind,
        address: &str,
    ) -> Result<Option<PendingConfirmation>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(pending_key(user, context, address)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        match out.item {
            Some(item) if !expired(&item, now()) => {
                let p = pending(&item)?;
                Ok((p.attempts < self.max_attempts).then_some(p))
            }
            _ => Ok(None),
        }
    }

    /// Checks `code_hash` against the address's live confirmation and uses it up when it
    /// matches (at most once, even under concurrent attempts).
    pub async fn confirm(
        &self,
        user: &str,
        context: ContextKind,
        address: &str,
        code_hash: &str,
    ) -> Result<ConfirmOutcome, StoreError> {
        let Some(p) = self.get(user, context, address).await? else {
            return Ok(ConfirmOutcome::NotPending);
        };
        let k = pending_key(user, context, address);
        if p.code_hash != code_hash {
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(k))
                .update_expression("ADD attempts :one")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":one", n(1))
                .send()
                .await;
            return match counted {
                Ok(_) => Ok(ConfirmOutcome::WrongCode),
                Err(e) if is_condition_failure(&e) => Ok(ConfirmOutcome::NotPending),
                Err(e) => Err(StoreError::dynamo(e)),
            };
        }
        let mut tx = self.client.transact_write_items().transact_items(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(k))
                        .condition_expression("code_hash = :h AND expires_at > :now")
                        .expression_attribute_values(":h", s(code_hash))
                        .expression_attribute_values(":now", n(now()))
                        .build()
                        .map_err(StoreError::dynamo)?,
                )
                .build(),
        );
        tx = tx.transact_items(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(link_key(code_hash)))
                        .build()
                        .map_err(StoreError::dynamo)?,
                )
                .build(),
        );
        match tx.send().await {
            Ok(_) => Ok(ConfirmOutcome::Confirmed),
            Err(e) if is_condition_failure(&e) => Ok(ConfirmOutcome::NotPending),
            Err(e) => Err(StoreError::dynamo(e)),
        }
    }

    /// Which address a link token (by its hash) confirms, if it is live.
    pub async fn lookup_link(
        &self,
        code_hash: &str,
    ) -> Result<Option<PendingConfirmation>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(link_key(code_hash)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        match out.item {
            Some(item) if !expired(&item, now()) => Ok(Some(pending(&item)?)),
            _ => Ok(None),
        }
    }

    /// Forgets the confirmation of an address (when the address is removed).
    pub async fn remove(
        &self,
        user: &str,
        context: ContextKind,
        address: &str,
    ) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(pending_key(user, context, address)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        if let Some(hash) = out
            .attributes
            .as_ref()
            .and_then(|a| get_s_opt(a, "code_hash"))
        {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(link_key(&hash)))
                .send()
                .await
                .map_err(StoreError::dynamo)?;
        }
        Ok(())
    }
}

fn pending(item: &Item) -> Result<PendingConfirmation, StoreError> {
    let context: ContextKind =
        serde_json::from_value(serde_json::Value::String(get_s(item, "context")?))
            .map_err(|e| crate::api_table::corrupt(item, &e.to_string()))?;
    Ok(PendingConfirmation {
        user: get_s(item, "user")?,
        context,
        address: get_s(item, "address")?,
        code_hash: get_s(item, "code_hash")?,
        expires_at: get_n_opt(item, "expires_at").unwrap_or_default(),
        attempts: get_n_opt(item, "attempts")
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or_default(),
    })
}
