//! The held table (env `FMN_HELD_TABLE`): `pk` and `sk` strings, `expires_at` its TTL.
//!
//! | pk | sk | what |
//! | --- | --- | --- |
//! | `HELD#<user>#<context>` | `ITEM#<message id>` | a held job (`job`, `held_at` ms, `state` = `held` or `sent`) |
//! | `HELD#<user>#<context>` | `META` | the group exists: `user`, `context`, latest `settings`, `flood_until`, `updated` |
//! | `HELD#<user>#<context>` | `BATCH` | the batch being delivered: `id`, `keys`, `flood` |
//! | `RATE#<user>#<context>` | window start | the flood counter `n` |
//!
//! Items a digest delivered are kept as `sent` for a week, so a redelivered job is not held
//! (and sent) again.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use fmn_queue::{MessageDigest, NotificationJob};
use fmn_rules::{ContextKind, ContextSettings, FilterRef};

use crate::DigestError;

mod flood;

pub use flood::FloodAdmission;

/// Topic of the summary job a digest puts on a context's queue; the [`Gate`](crate::Gate)
/// lets it through.
pub const DIGEST_TOPIC: &str = "fmn.digest";
/// Most notifications in one digest; the rest wait for the next run.
pub const MAX_BATCH: usize = 100;
/// How long a held notification waits at most (seconds).
const HELD_RETENTION: u64 = 14 * 24 * 3600;
/// How long a delivered one is remembered (seconds).
const SENT_RETENTION: u64 = 7 * 24 * 3600;

type Item = HashMap<String, AttributeValue>;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn get_n(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn group_key(user: &str, context: ContextKind) -> String {
    format!("HELD#{user}#{}", context.as_str())
}

fn context_named(name: &str) -> Option<ContextKind> {
    serde_json::from_value(serde_json::Value::String(name.into())).ok()
}

/// A (user, context) with held notifications that should be delivered now.
#[derive(Debug, Clone, PartialEq)]
pub struct DueGroup {
    /// The recipient.
    pub user: String,
    /// The context.
    pub context: ContextKind,
    /// How many are held.
    pub held: usize,
}

/// A bounded set of held notifications of one (user, context), delivered as one digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Stable id: the same batch keeps it across reruns (the delivery key of the digest).
    pub id: String,
    /// The recipient.
    pub user: String,
    /// The context.
    pub context: ContextKind,
    /// The context's settings, from the latest held notification.
    pub settings: ContextSettings,
    /// Held because of the flood limit rather than a digest setting.
    pub flood: bool,
    /// The notifications, oldest first.
    pub jobs: Vec<NotificationJob>,
    keys: Vec<String>,
}

impl Batch {
    /// A batch of `jobs` (held items keyed by their message ids, as the store keys them).
    pub fn new(
        id: impl Into<String>,
        user: impl Into<String>,
        context: ContextKind,
        settings: ContextSettings,
        flood: bool,
        jobs: Vec<NotificationJob>,
    ) -> Self {
        let keys = jobs
            .iter()
            .map(|j| format!("ITEM#{}", j.message.id))
            .collect();
        Batch {
            id: id.into(),
            user: user.into(),
            context,
            settings,
            flood,
            jobs,
            keys,
        }
    }

    /// Every address the notifications were for, in first-seen order.
    pub fn addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in self.jobs.iter().flat_map(|j| &j.addresses) {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
        out
    }

    /// One notification summarising the batch ("12 notifications: 7 bodhi, 5 koji"), for
    /// contexts that get a short line rather than a list; `link` is where to read them all
    /// (the user's feed or preferences page).
    pub fn summary_job(&self, link: Option<&str>) -> NotificationJob {
        let mut per_app: Vec<(String, usize)> = Vec::new();
        for job in &self.jobs {
            match per_app.iter_mut().find(|(a, _)| *a == job.message.app) {
                Some((_, count)) => *count += 1,
                None => per_app.push((job.message.app.clone(), 1)),
            }
        }
        per_app.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let parts: Vec<String> = per_app.iter().map(|(a, c)| format!("{c} {a}")).collect();
        let what = if self.flood {
            "fmn: flood of"
        } else {
            "fmn digest:"
        };
        let mut filters: Vec<FilterRef> = Vec::new();
        for f in self.jobs.iter().flat_map(|j| &j.filters) {
            if !filters.iter().any(|g| g.id == f.id) {
                filters.push(f.clone());
            }
        }
        let mut settings = self.settings.clone();
        settings.digest_count = None;
        settings.digest_interval_secs = None;
        NotificationJob {
            message: MessageDigest {
                id: self.id.clone(),
                topic: DIGEST_TOPIC.into(),
                app: "fmn".into(),
                summary: format!(
                    "{what} {} notifications ({})",
                    self.jobs.len(),
                    parts.join(", ")
                ),
                link: link
                    .map(str::to_owned)
                    .or_else(|| self.jobs.last().and_then(|j| j.message.link.clone())),
                agent: None,
                usernames: Default::default(),
                packages: Default::default(),
                timestamp: Some(now_ms() as f64 / 1000.0),
                severity: None,
            },
            user: self.user.clone(),
            context: self.context,
            addresses: self.addresses(),
            filters,
            settings,
        }
    }
}

/// What the digest function needs of the held notifications ([`HeldStore`] deployed).
pub trait Held {
    /// The groups with notifications due at `now_secs`.
    fn due(&self, now_secs: u64)
    -> impl Future<Output = Result<Vec<DueGroup>, DigestError>> + Send;
    /// The batch to deliver for `group` (the one recorded before, if a run failed midway).
    fn take_batch(
        &self,
        group: &DueGroup,
    ) -> impl Future<Output = Result<Option<Batch>, DigestError>> + Send;
    /// Records `batch` as delivered.
    fn finish(&self, batch: &Batch) -> impl Future<Output = Result<(), DigestError>> + Send;
}

impl Held for HeldStore {
    async fn due(&self, now_secs: u64) -> Result<Vec<DueGroup>, DigestError> {
        HeldStore::due(self, now_secs).await
    }
    async fn take_batch(&self, group: &DueGroup) -> Result<Option<Batch>, DigestError> {
        HeldStore::take_batch(self, group).await
    }
    async fn finish(&self, batch: &Batch) -> Result<(), DigestError> {
        HeldStore::finish(self, batch).await
    }
}

/// Held notifications in DynamoDB.
#[derive(Debug, Clone)]
pub struct HeldStore {
    client: Client,
    table: String,
}

impl HeldStore {
    /// The held table named `table`.
    pub fn new(client: Client, table: &str) -> Self {
        HeldStore {
            client,
            table: table.into(),
        }
    }

    /// Holds `job` for a digest (`flood_until`: held by the flood limit until then, seconds
    /// since the epoch). Returns false when it was held (or delivered in a digest) before:
    /// a redelivered job is held once.
    pub async fn hold(
        &self,
        job: &NotificationJob,
        flood_until: Option<u64>,
    ) -> Result<bool, DigestError> {
        let pk = group_key(&job.user, job.context);
        let now = now_ms();
        let doc = serde_json::to_string(job).map_err(|e| DigestError::Corrupt {
            key: pk.clone(),
            problem: e.to_string(),
        })?;
        // The item and its group's META in one transaction: a retry after a partial write
        // would otherwise find the item and skip META, orphaning the item.
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s(format!("ITEM#{}", job.message.id)))
            .item("job", s(doc))
            .item("held_at", n(now))
            .item("state", s("held"))
            .item("expires_at", n(now / 1000 + HELD_RETENTION))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(DigestError::dynamo)?;
        let settings = serde_json::to_string(&job.settings).unwrap_or_default();
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s("META"))
            .expression_attribute_names("#user", "user")
            .expression_attribute_values(":user", s(&job.user))
            .expression_attribute_values(":context", s(job.context.as_str()))
            .expression_attribute_values(":settings", s(settings))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(now / 1000 + HELD_RETENTION));
        let update = match flood_until {
            Some(until) => update
                .update_expression(
                    "SET #user = :user, context = :context, settings = :settings, \
                     updated = :now, expires_at = :exp, flood_until = :until",
                )
                .expression_attribute_values(":until", n(until)),
            None => update.update_expression(
                "SET #user = :user, context = :context, settings = :settings, \
                 updated = :now, expires_at = :exp REMOVE flood_until",
            ),
        }
        .build()
        .map_err(DigestError::dynamo)?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            // The item's condition: held before (a redelivered job), META with it.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(DigestError::dynamo(e)),
        }
    }

    /// Admits one notification, the bus message `message_id`, to the flood window of
    /// (user, context) starting at `window_start`: `true` while fewer than `max` other
    /// messages were admitted in it. Idempotent per message: the window records the ids it
    /// admitted (at most `max`), so a redelivered job is admitted again and never counted
    /// twice.
    pub async fn admit_once(
        &self,
        user: &str,
        context: ContextKind,
        window_start: u64,
        window_secs: u64,
        message_id: &str,
        max: u64,
    ) -> Result<bool, DigestError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("RATE#{user}#{}", context.as_str())))
            .key("sk", s(window_start.to_string()))
            .update_expression("ADD ids :id SET expires_at = :exp")
            .condition_expression(
                "attribute_not_exists(ids) OR size(ids) < :max OR contains(ids, :id_s)",
            )
            .expression_attribute_values(":id", AttributeValue::Ss(vec![message_id.to_owned()]))
            .expression_attribute_values(":id_s", s(message_id))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":exp", n(window_start + 2 * window_secs))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if fmn_store::is_condition_failure(&e) => Ok(false),
            Err(e) => Err(DigestError::dynamo(e)),
        }
    }

    async fn query_items(&self, pk: &str, only_held: bool) -> Result<Vec<Item>, DigestError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :item)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":item", s("ITEM#"))
            .consistent_read(true);
        if only_held {
            query = query
                .filter_expression("#state = :held")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":held", s("held"));
        }
        let mut pages = query.into_paginator().items().send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            out.push(item.map_err(DigestError::dynamo)?);
        }
        Ok(out)
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, DigestError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(DigestError::dynamo)?
            .item)
    }

    /// The groups to deliver at `now_secs`: a digest whose count or interval is reached, a
    /// flood whose window ended, or a pending batch. Groups left empty are forgotten.
    pub async fn due(&self, now_secs: u64) -> Result<Vec<DueGroup>, DigestError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :meta")
            .expression_attribute_values(":meta", s("META"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut metas = Vec::new();
        while let Some(item) = pages.next().await {
            metas.push(item.map_err(DigestError::dynamo)?);
        }
        let mut due = Vec::new();
        for meta in metas {
            let (Some(pk), Some(user), Some(context)) = (
                get_s(&meta, "pk"),
                get_s(&meta, "user"),
                get_s(&meta, "context").and_then(context_named),
            ) else {
                tracing::warn!(?meta, "skipping a malformed held group");
                continue;
            };
            let settings: ContextSettings = get_s(&meta, "settings")
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            let pending_batch = self.get(pk, "BATCH").await?.is_some();
            let held = self.query_items(pk, true).await?;
            if held.is_empty() && !pending_batch {
                // Forget the group, unless a notification was held since we looked.
                let forget = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s("META"))
                    .condition_expression("updated = :seen")
                    .expression_attribute_values(
                        ":seen",
                        meta.get("updated").cloned().unwrap_or(n(0)),
                    )
                    .send()
                    .await;
                if let Err(e) = forget
                    && !fmn_store::is_condition_failure(&e)
                {
                    return Err(DigestError::dynamo(e));
                }
                continue;
            }
            let oldest_secs = held
                .iter()
                .filter_map(|i| get_n(i, "held_at"))
                .min()
                .map_or(now_secs, |ms| ms / 1000);
            let count = held.len();
            let is_due = pending_batch
                || if settings.is_digest() {
                    settings
                        .digest_count
                        .is_some_and(|c| count >= c.max(1) as usize)
                        || settings
                            .digest_interval_secs
                            .is_some_and(|i| now_secs >= oldest_secs + u64::from(i))
                        || count >= MAX_BATCH
                } else {
                    // Flood (or digests switched off since): due when the window ended.
                    get_n(&meta, "flood_until").is_none_or(|until| now_secs >= until)
                };
            if is_due {
                due.push(DueGroup {
                    user: user.to_owned(),
                    context,
                    held: count,
                });
            }
        }
        Ok(due)
    }

    /// The batch to deliver for `group`: the pending one if a previous run stopped midway,
    /// else the oldest [`MAX_BATCH`] held notifications, recorded before delivery.
    pub async fn take_batch(&self, group: &DueGroup) -> Result<Option<Batch>, DigestError> {
        let pk = group_key(&group.user, group.context);
        let meta = self.get(&pk, "META").await?.unwrap_or_default();
        let settings: ContextSettings = get_s(&meta, "settings")
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        for _attempt in 0..2 {
            if let Some(batch) = self.get(&pk, "BATCH").await? {
                return self.load(&pk, group, &batch, settings).await.map(Some);
            }
            let mut held = self.query_items(&pk, true).await?;
            if held.is_empty() {
                return Ok(None);
            }
            held.sort_by_key(|i| (get_n(i, "held_at"), get_s(i, "sk").map(str::to_owned)));
            held.truncate(MAX_BATCH);
            let keys: Vec<String> = held
                .iter()
                .filter_map(|i| get_s(i, "sk").map(str::to_owned))
                .collect();
            let first = held.first().and_then(|i| get_n(i, "held_at")).unwrap_or(0);
            let id = format!(
                "digest:{}:{}:{first}:{}",
                group.user,
                group.context.as_str(),
                keys.len()
            );
            let flood = !settings.is_digest();
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("sk", s("BATCH"))
                .item("id", s(&id))
                .item("keys", AttributeValue::L(keys.iter().map(s).collect()))
                .item("flood", AttributeValue::Bool(flood))
                .item("expires_at", n(now_ms() / 1000 + HELD_RETENTION))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match put {
                Ok(_) => {}
                // Another run recorded one first: deliver that one.
                Err(e) if fmn_store::is_condition_failure(&e) => {
                    continue;
                }
                Err(e) => return Err(DigestError::dynamo(e)),
            }
        }
        match self.get(&pk, "BATCH").await? {
            Some(batch) => self.load(&pk, group, &batch, settings).await.map(Some),
            None => Ok(None),
        }
    }

    async fn load(
        &self,
        pk: &str,
        group: &DueGroup,
        batch: &Item,
        settings: ContextSettings,
    ) -> Result<Batch, DigestError> {
        let corrupt = |problem: &str| DigestError::Corrupt {
            key: format!("{pk}/BATCH"),
            problem: problem.into(),
        };
        let id = get_s(batch, "id").ok_or_else(|| corrupt("no id"))?;
        let Some(AttributeValue::L(keys)) = batch.get("keys") else {
            return Err(corrupt("no keys"));
        };
        let keys: Vec<String> = keys
            .iter()
            .filter_map(|k| match k {
                AttributeValue::S(k) => Some(k.clone()),
                _ => None,
            })
            .collect();
        let flood = matches!(batch.get("flood"), Some(AttributeValue::Bool(true)));
        // Every item of the batch, whatever its state: a rerun after a partial finish must
        // still see them (their delivery is deduplicated by the batch id).
        let items: HashMap<String, Item> = self
            .query_items(pk, false)
            .await?
            .into_iter()
            .filter_map(|i| Some((get_s(&i, "sk")?.to_owned(), i)))
            .collect();
        let mut jobs = Vec::new();
        for key in &keys {
            let Some(item) = items.get(key) else { continue };
            let job = get_s(item, "job")
                .and_then(|t| serde_json::from_str::<NotificationJob>(t).ok())
                .ok_or_else(|| DigestError::Corrupt {
                    key: format!("{pk}/{key}"),
                    problem: "unreadable job".into(),
                })?;
            jobs.push(job);
        }
        Ok(Batch {
            id: id.to_owned(),
            user: group.user.clone(),
            context: group.context,
            settings,
            flood,
            jobs,
            keys,
        })
    }

    /// Records `batch` as delivered: its notifications are remembered as sent for a week,
    /// and the batch record goes.
    pub async fn finish(&self, batch: &Batch) -> Result<(), DigestError> {
        let pk = group_key(&batch.user, batch.context);
        let exp = now_ms() / 1000 + SENT_RETENTION;
        for key in &batch.keys {
            let marked = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(key))
                .update_expression("SET #state = :sent, expires_at = :exp")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":sent", s("sent"))
                .expression_attribute_values(":exp", n(exp))
                .condition_expression("attribute_exists(pk)")
                .send()
                .await;
            match marked {
                Ok(_) => {}
                // Expired meanwhile: nothing to remember.
                Err(e) if fmn_store::is_condition_failure(&e) => {}
                Err(e) => return Err(DigestError::dynamo(e)),
            }
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s("BATCH"))
            .send()
            .await
            .map_err(DigestError::dynamo)?;
        Ok(())
    }
}
