//! Pending address confirmations: one item per (user, context, address) holding the
//! SHA-256 of the one-time code and its expiry; for email, a lookup item from the link
//! token's hash to that key. Confirming deletes the pending item with a condition, so a code
//! works once.
//!
//! Limits ([`ConfirmationLimits`]), each one atomic counter or stamp written with a
//! condition, so parallel requests count, and kept apart from the pending item, so removing
//! and adding an address again resets none of them:
//! - one confirmation per address per interval, whoever asks: `CONFIRMRATE#<context>#<sha256
//!   of the address>`/`CONFIRMRATE` with `next_at`;
//! - confirmations per user per UTC day: `USER#<u>`/`CONFIRMSENT#<day>` with `sends`;
//! - wrong codes per address per UTC day: `USER#<u>`/`CONFIRMFAIL#<context>#<sha256 of the
//!   address>#<day>` with `attempts`.
//!
//! Items: `USER#<u>`/`CONFIRM#<context>#<address>` and `CONFIRMLINK#<hash>`/`CONFIRMLINK`,
//! plus the limits' items above (all with `expires_at`, the table's TTL).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};
use fmn_rules::ContextKind;
use sha2::{Digest, Sha256};

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
}

/// Bounds on confirmations: how often one may be sent, and how many wrong codes count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmationLimits {
    /// Seconds between two confirmations sent to one address (by any user); 0: no wait.
    pub address_interval_secs: i64,
    /// Confirmations one user may have sent per UTC day.
    pub user_daily: u32,
    /// Wrong codes accepted per (user, context, address) per UTC day, over every code sent
    /// to it that day; then none is checked until the next day.
    pub wrong_codes_daily: u32,
}

impl Default for ConfirmationLimits {
    /// One per 10 minutes per address, 10 per day per user, 5 wrong codes per address.
    fn default() -> Self {
        ConfirmationLimits {
            address_interval_secs: 600,
            user_daily: 10,
            wrong_codes_daily: 5,
        }
    }
}

/// A confirmation limit that was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// One confirmation per address per [`ConfirmationLimits::address_interval_secs`].
    Address {
        /// When the next one may be sent, seconds since the epoch.
        retry_at: i64,
    },
    /// [`ConfirmationLimits::user_daily`] confirmations per user per day.
    User {
        /// When the next one may be sent (the next UTC day), seconds since the epoch.
        retry_at: i64,
    },
    /// [`ConfirmationLimits::wrong_codes_daily`] wrong codes per address per day.
    WrongCodes {
        /// When codes are checked again (the next UTC day), seconds since the epoch.
        retry_at: i64,
    },
}

impl Limited {
    /// When to try again, seconds since the epoch.
    pub fn retry_at(&self) -> i64 {
        match *self {
            Limited::Address { retry_at }
            | Limited::User { retry_at }
            | Limited::WrongCodes { retry_at } => retry_at,
        }
    }
}

const DAY: i64 = 86_400;

/// The UTC day number of `t` and the start of the next day.
fn day(t: i64) -> (i64, i64) {
    let d = t.div_euclid(DAY);
    (d, (d + 1) * DAY)
}

/// SHA-256 (hex) of an address: limit keys stay short whatever the address.
fn address_hash(address: &str) -> String {
    Sha256::digest(address.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How using a code went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// The code was right: the confirmation is used up.
    Confirmed,
    /// Wrong code (one more attempt counted).
    WrongCode,
    /// No live confirmation: never asked, expired or used.
    NotPending,
    /// The day's wrong codes for this address are used up: no code is checked.
    TooManyAttempts(Limited),
}

/// Pending confirmations in the API table.
#[derive(Debug, Clone)]
pub struct ConfirmationStore {
    client: Client,
    table: String,
    limits: ConfirmationLimits,
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

fn address_rate_key(context: ContextKind, address: &str) -> Item {
    key(
        format!("CONFIRMRATE#{}#{}", context.as_str(), address_hash(address)),
        "CONFIRMRATE",
    )
}

fn user_sends_key(user: &str, day: i64) -> Item {
    key(format!("USER#{user}"), format!("CONFIRMSENT#{day}"))
}

fn wrong_codes_key(user: &str, context: ContextKind, address: &str, day: i64) -> Item {
    key(
        format!("USER#{user}"),
        format!(
            "CONFIRMFAIL#{}#{}#{day}",
            context.as_str(),
            address_hash(address)
        ),
    )
}

impl ConfirmationStore {
    /// The API table named `table`, with the default [`ConfirmationLimits`].
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        ConfirmationStore {
            client,
            table: table.into(),
            limits: ConfirmationLimits::default(),
        }
    }

    /// The same store with other limits.
    pub fn with_limits(mut self, limits: ConfirmationLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Counts a confirmation to be sent to `address` for `user` against both send limits,
    /// atomically (one transaction of two conditional updates): either both count it, or
    /// neither does and the answer names the limit reached and when to retry.
    pub async fn reserve_send(
        &self,
        user: &str,
        context: ContextKind,
        address: &str,
    ) -> Result<Result<(), Limited>, StoreError> {
        let now = now();
        let (today, tomorrow) = day(now);
        let next = now + self.limits.address_interval_secs.max(0);
        let address_stamp = Update::builder()
            .table_name(&self.table)
            .set_key(Some(address_rate_key(context, address)))
            .update_expression("SET next_at = :next, expires_at = :next")
            .condition_expression("attribute_not_exists(next_at) OR next_at <= :now")
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(StoreError::dynamo)?;
        let user_count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_sends_key(user, today)))
            .update_expression("ADD sends :one SET expires_at = :tomorrow")
            .condition_expression("attribute_not_exists(sends) OR sends < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":tomorrow", n(tomorrow + DAY))
            .expression_attribute_values(":max", n(i64::from(self.limits.user_daily)))
            .build()
            .map_err(StoreError::dynamo)?;
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(address_stamp).build())
            .transact_items(TransactWriteItem::builder().update(user_count).build())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Ok(())),
            Err(e) if is_condition_failure(&e) => {
                // Which one: the address's stamp, read back (the user's count otherwise).
                let stamp = self.read(address_rate_key(context, address)).await?;
                match stamp.and_then(|i| get_n_opt(&i, "next_at")) {
                    Some(at) if at > now => Ok(Err(Limited::Address { retry_at: at })),
                    _ => Ok(Err(Limited::User { retry_at: tomorrow })),
                }
            }
            Err(e) => Err(StoreError::dynamo(e)),
        }
    }

    /// Wrong codes counted today for an address.
    pub async fn wrong_codes(
        &self,
        user: &str,
        context: ContextKind,
        address: &str,
    ) -> Result<u32, StoreError> {
        let item = self
            .read(wrong_codes_key(user, context, address, day(now()).0))
            .await?;
        Ok(item
            .and_then(|i| get_n_opt(&i, "attempts"))
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or_default())
    }

    async fn read(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(out.item)
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
            Some(item) if !expired(&item, now()) => Ok(Some(pending(&item)?)),
            _ => Ok(None),
        }
    }

    /// Checks `code_hash` against the address's live confirmation and uses it up when it
    /// matches (at most once, even under concurrent attempts). A wrong code is counted with
    /// a conditional `ADD`, so of parallel guesses at most
    /// [`ConfirmationLimits::wrong_codes_daily`] a day are checked at all; past that every
    /// attempt, right or wrong, is [`ConfirmOutcome::TooManyAttempts`].
    pub async fn confirm(
        &self,
        user: &str,
        context: ContextKind,
        address: &str,
        code_hash: &str,
    ) -> Result<ConfirmOutcome, StoreError> {
        let now = now();
        let (today, tomorrow) = day(now);
        let too_many = ConfirmOutcome::TooManyAttempts(Limited::WrongCodes { retry_at: tomorrow });
        let max = i64::from(self.limits.wrong_codes_daily);
        let Some(p) = self.get(user, context, address).await? else {
            return Ok(ConfirmOutcome::NotPending);
        };
        let fails = wrong_codes_key(user, context, address, today);
        if p.code_hash != code_hash {
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(fails))
                .update_expression("ADD attempts :one SET expires_at = :exp")
                .condition_expression("attribute_not_exists(attempts) OR attempts < :max")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":exp", n(tomorrow + DAY))
                .expression_attribute_values(":max", n(max))
                .send()
                .await;
            return match counted {
                Ok(_) => Ok(ConfirmOutcome::WrongCode),
                Err(e) if is_condition_failure(&e) => Ok(too_many),
                Err(e) => Err(StoreError::dynamo(e)),
            };
        }
        let k = pending_key(user, context, address);
        let tx = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(k))
                            .condition_expression("code_hash = :h AND expires_at > :now")
                            .expression_attribute_values(":h", s(code_hash))
                            .expression_attribute_values(":now", n(now))
                            .build()
                            .map_err(StoreError::dynamo)?,
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(link_key(code_hash)))
                            .build()
                            .map_err(StoreError::dynamo)?,
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(fails))
                            .condition_expression(
                                "attribute_not_exists(attempts) OR attempts < :max",
                            )
                            .expression_attribute_values(":max", n(max))
                            .build()
                            .map_err(StoreError::dynamo)?,
                    )
                    .build(),
            );
        match tx.send().await {
            Ok(_) => Ok(ConfirmOutcome::Confirmed),
            Err(e) if is_condition_failure(&e) => {
                if i64::from(self.wrong_codes(user, context, address).await?) >= max {
                    Ok(too_many)
                } else {
                    Ok(ConfirmOutcome::NotPending)
                }
            }
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
    })
}
