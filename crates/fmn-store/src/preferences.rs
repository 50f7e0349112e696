//! The preferences table: `pk = USER#<name>`, `sk = PREFS`, the document as JSON in `doc`;
//! `pk = META`, `sk = VERSION` holds a counter bumped with every write; `pk = CHANGES`,
//! `sk = <epoch ms>#<user>` records whose preferences each write changed (the matcher applies
//! just those), expiring after a day; `pk = ONESHOT#<message id>`, `sk =
//! <user>#<context>#<filter>` records which oneshot filters a bus message fired (the
//! matcher's retries of that message deliver them again), expiring after 14 days.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use fmn_rules::Preferences;

use crate::StoreError;

const PREFS_SK: &str = "PREFS";

mod oneshot;

/// The longest delivery address a stored document may hold, in bytes. Addresses become part
/// of DynamoDB keys (the deliveries table's `<message id>|<user>|<context>|<address>`, the
/// API table's `CONFIRM#<context>#<address>`), whose limits are 2,048 bytes for a partition
/// key and 1,024 for a sort key; 500 keeps every such key within them. The API refuses
/// longer addresses with a 422 naming the field; the table refuses them from every writer.
pub const MAX_ADDRESS_BYTES: usize = 500;

/// Refuses a document holding an address longer than [`MAX_ADDRESS_BYTES`].
fn check_addresses(prefs: &Preferences) -> Result<(), StoreError> {
    for (kind, context) in &prefs.contexts {
        if let Some(a) = context
            .addresses
            .iter()
            .find(|a| a.address.len() > MAX_ADDRESS_BYTES)
        {
            return Err(StoreError::Corrupt {
                key: user_key(&prefs.user),
                problem: format!(
                    "a {} address of {} bytes (at most {MAX_ADDRESS_BYTES}): it would not fit \
                     in DynamoDB keys",
                    kind.as_str(),
                    a.address.len()
                ),
            });
        }
    }
    Ok(())
}
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

/// `expires_at` for an item living `secs` from now.
fn expires_in(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() + secs).to_string()
}

impl PreferenceTable {
    /// The table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        PreferenceTable {
            client,
            table: table.into(),
        }
    }

    /// Stores one user's preferences, replacing whatever is stored without a condition, and
    /// bumps the version, atomically. For whole-document replacement by an operator (`fmn
    /// prefs put`, seeding a test or demo stack); every read-modify-write goes through
    /// [`PreferenceTable::put_if`] or [`PreferenceTable::update`], so that a concurrent write
    /// (an unsubscribe, a oneshot deactivation, a disabled address) is never undone.
    pub async fn put(&self, prefs: &Preferences) -> Result<(), StoreError> {
        check_addresses(prefs)?;
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

    /// Stores preferences only if the stored document is still `expected` (`None`: absent),
    /// bumping the version; [`StoreError::Conflict`] otherwise.
    pub async fn put_if(
        &self,
        prefs: &Preferences,
        expected: Option<&str>,
    ) -> Result<(), StoreError> {
        self.put_if_with(prefs, expected, None).await
    }

    /// [`PreferenceTable::put_if`], writing `also` in the same transaction.
    async fn put_if_with(
        &self,
        prefs: &Preferences,
        expected: Option<&str>,
        also: Option<Put>,
    ) -> Result<(), StoreError> {
        check_addresses(prefs)?;
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
        let mut transaction = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(self.bump()?).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.change(&prefs.user)?)
                    .build(),
            );
        if let Some(also) = also {
            transaction =
                transaction.transact_items(TransactWriteItem::builder().put(also).build());
        }
        let result = transaction.send().await;
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

    /// One user's preferences and the stored document's text (what
    /// [`PreferenceTable::put_if`] expects to find for a write to succeed), if stored.
    pub async fn get_versioned(
        &self,
        user: &str,
    ) -> Result<Option<(Preferences, String)>, StoreError> {
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
            return Ok(None);
        };
        let prefs = parse(&item)?;
        match item.get("doc") {
            Some(AttributeValue::S(doc)) => Ok(Some((prefs, doc.clone()))),
            _ => Err(StoreError::Corrupt {
                key: user_key(user),
                problem: "no doc attribute".into(),
            }),
        }
    }

    /// Read-modify-write of one user's stored preferences, conditional on the document
    /// read, re-read and re-applied on a conflict, at most `attempts` times (then
    /// [`StoreError::Conflict`]). `change` returns `None` when there is nothing to write
    /// (the answer is then `Ok(None)`, as when the user has no preferences). How writers
    /// other than the API (a sender disabling an address) change preferences without
    /// undoing a concurrent change.
    pub async fn update<T>(
        &self,
        user: &str,
        attempts: usize,
        mut change: impl FnMut(&mut Preferences) -> Option<T>,
    ) -> Result<Option<(T, Preferences)>, StoreError> {
        for attempt in 0..attempts.max(1) {
            let Some((mut prefs, old)) = self.get_versioned(user).await? else {
                return Ok(None);
            };
            let Some(out) = change(&mut prefs) else {
                return Ok(None);
            };
            match self.put_if(&prefs, Some(&old)).await {
                Ok(()) => return Ok(Some((out, prefs))),
                Err(StoreError::Conflict(_)) => conflict_pause(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "preferences of {user} kept changing during {attempts} attempts"
        )))
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

    /// Several users' preferences with consistent `BatchGetItem` reads (100 users a call;
    /// unprocessed keys are asked again): each user's, `None` when they have none, or the
    /// error that kept it from being read.
    pub async fn get_many(
        &self,
        users: &[String],
    ) -> Result<HashMap<String, Result<Option<Preferences>, StoreError>>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut out: HashMap<String, Result<Option<Preferences>, StoreError>> =
            users.iter().map(|u| (u.clone(), Ok(None))).collect();
        for chunk in users.chunks(100) {
            let mut wanted = KeysAndAttributes::builder().consistent_read(true);
            for user in chunk {
                wanted = wanted.keys(HashMap::from([
                    ("pk".to_owned(), AttributeValue::S(user_key(user))),
                    ("sk".to_owned(), AttributeValue::S(PREFS_SK.into())),
                ]));
            }
            let mut request = Some(wanted.build().map_err(StoreError::dynamo)?);
            for attempt in 0..4 {
                let Some(wanted) = request.take() else { break };
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                let got = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, wanted)
                    .send()
                    .await
                    .map_err(StoreError::dynamo)?;
                let items = got.responses.and_then(|mut r| r.remove(&self.table));
                for item in items.unwrap_or_default() {
                    let Some(AttributeValue::S(pk)) = item.get("pk") else {
                        continue;
                    };
                    let Some(user) = pk.strip_prefix("USER#") else {
                        continue;
                    };
                    out.insert(user.to_owned(), parse(&item).map(Some));
                }
                request = got
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
            }
            if request.is_some() {
                return Err(StoreError::Dynamo("preferences left unprocessed".into()));
            }
        }
        Ok(out)
    }

    /// The version stamp ([`PreferenceTable::version`]) and, when `ownership` is given, its
    /// live snapshot ([`crate::OwnershipTable::current`]) in one consistent `BatchGetItem`
    /// across both tables: what the matcher checks once per batch.
    pub async fn stamps(
        &self,
        ownership: Option<&crate::OwnershipTable>,
    ) -> Result<(u64, Option<crate::Snapshot>), StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let Some(ownership) = ownership else {
            return Ok((self.version().await?, None));
        };
        let version_key = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("META".into())),
            ("sk".to_owned(), AttributeValue::S("VERSION".into())),
        ]);
        let mut request = self.client.batch_get_item().request_items(
            &self.table,
            KeysAndAttributes::builder()
                .keys(version_key)
                .consistent_read(true)
                .build()
                .map_err(StoreError::dynamo)?,
        );
        request = request.request_items(
            &ownership.table,
            KeysAndAttributes::builder()
                .keys(crate::ownership::current_key())
                .consistent_read(true)
                .build()
                .map_err(StoreError::dynamo)?,
        );
        let out = request.send().await.map_err(StoreError::dynamo)?;
        if out.unprocessed_keys.as_ref().is_some_and(|u| !u.is_empty()) {
            // Throttled: read them one by one instead.
            return Ok((self.version().await?, ownership.current().await?));
        }
        let mut responses = out.responses.unwrap_or_default();
        let version = (responses.remove(&self.table).unwrap_or_default().first())
            .and_then(|item| match item.get("version") {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            })
            .unwrap_or(0);
        let snapshot = (responses
            .remove(&ownership.table)
            .unwrap_or_default()
            .first())
        .map(crate::ownership::parse_current)
        .transpose()?;
        Ok((version, snapshot))
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
        let (all, unreadable) = self.load_all_readable().await?;
        match unreadable.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(all),
        }
    }

    /// Every user's preferences that can be read, and the errors for the documents that
    /// cannot (each a [`StoreError::Corrupt`] naming its key): one bad document must not
    /// keep the matcher from everyone else's.
    pub async fn load_all_readable(
        &self,
    ) -> Result<(Vec<Preferences>, Vec<StoreError>), StoreError> {
        let mut all = Vec::new();
        let mut unreadable = Vec::new();
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
            match parse(&item.map_err(StoreError::dynamo)?) {
                Ok(prefs) => all.push(prefs),
                Err(e) => unreadable.push(e),
            }
        }
        Ok((all, unreadable))
    }
}

/// A short, growing, jittered pause after losing a conditional write: concurrent writers
/// of one document then retry apart rather than in step.
pub async fn conflict_pause(attempt: usize) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos()
        % 20;
    let ms = 10 * (1 << attempt.min(4)) as u64 + u64::from(jitter);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
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
