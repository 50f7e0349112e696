//! The matcher: for each bus message in an `incoming` batch, normalise it, find who wants it
//! where, and send one [`NotificationJob`] per (message, user, context) to that context's
//! queue. Malformed messages are quarantined with the reason; a failure to reach a queue or
//! the table fails only that record, which SQS retries.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_compiled_prefs::snapshot::SnapshotStore;
use fmn_compiled_prefs::{CompiledPrefs, PreferenceReader, Settings, Update};
use fmn_lambda::{ConfigError, Vars};
use fmn_messages::Catalog;
use fmn_queue::{NotificationJob, Outgoing, QUARANTINE_REASON_ATTRIBUTE, Queue, RecordError};
use fmn_rules::{ContextKind, Matcher, Ownership, Preferences};
use tokio::sync::RwLock;

/// Where the matcher reads its state from: preferences (what [`PreferenceReader`] reads,
/// and more) and maintainer data.
pub trait PreferenceSource: PreferenceReader {
    /// A stamp that changes whenever any preference changes.
    fn version(&self) -> impl Future<Output = anyhow::Result<u64>> + Send;
    /// [`PreferenceSource::version`] and [`PreferenceSource::ownership_id`] together (the
    /// deployed source reads both in one call).
    fn stamps(&self) -> impl Future<Output = anyhow::Result<(u64, Option<String>)>> + Send
    where
        Self: Sync,
    {
        async move { Ok((self.version().await?, self.ownership_id().await?)) }
    }
    /// Records a batch's normalised messages in the recent-messages log the API previews
    /// against.
    fn record_recent(
        &self,
        messages: &[fmn_messages::Message],
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Deactivates a oneshot filter for bus message `message_id`; `true` for the one caller
    /// that did it, and again for a retry of that same message.
    fn deactivate_filter(
        &self,
        user: &str,
        context: ContextKind,
        filter_id: &str,
        message_id: &str,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;
    /// The oneshot filters bus message `message_id` fired: (user, context, filter id).
    fn oneshot_wins(
        &self,
        message_id: &str,
    ) -> impl Future<Output = anyhow::Result<Vec<(String, ContextKind, String)>>> + Send;
    /// The live maintainer snapshot's id, if any.
    fn ownership_id(&self) -> impl Future<Output = anyhow::Result<Option<String>>> + Send;
    /// The live maintainer snapshot, with its id.
    fn load_ownership(
        &self,
    ) -> impl Future<Output = anyhow::Result<Option<(String, Ownership)>>> + Send;
    /// The saved snapshot of the compiled preferences
    /// ([`fmn_compiled_prefs::snapshot`]), if there is one; read on a cold start.
    fn load_snapshot(&self) -> impl Future<Output = anyhow::Result<Option<Vec<u8>>>> + Send {
        async { Ok(None) }
    }
}

/// The deployed state: the preferences table and, when configured, the ownership table.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Preferences.
    pub preferences: fmn_store::PreferenceTable,
    /// Maintainer snapshots (without them, `owned_by` rules match nothing).
    pub ownership: Option<fmn_store::OwnershipTable>,
    /// The recent-messages log (the API's previews read it).
    pub recent: Option<fmn_store::RecentMessages>,
    /// The compiled preferences' snapshot a cold start reads (without it, a cold start scans
    /// the table).
    pub snapshot: Option<SnapshotStore>,
}

impl PreferenceReader for Tables {
    async fn load_all(&self) -> anyhow::Result<Vec<Preferences>> {
        PreferenceReader::load_all(&self.preferences).await
    }
    async fn get(&self, user: &str) -> anyhow::Result<Option<Preferences>> {
        PreferenceReader::get(&self.preferences, user).await
    }
    async fn changed_since(
        &self,
        since_ms: u128,
        limit: usize,
    ) -> anyhow::Result<Option<Vec<String>>> {
        PreferenceReader::changed_since(&self.preferences, since_ms, limit).await
    }
}

impl PreferenceSource for Tables {
    async fn version(&self) -> anyhow::Result<u64> {
        Ok(self.preferences.version().await?)
    }
    async fn stamps(&self) -> anyhow::Result<(u64, Option<String>)> {
        let (version, snapshot) = self.preferences.stamps(self.ownership.as_ref()).await?;
        Ok((version, snapshot.map(|s| s.id)))
    }
    async fn record_recent(&self, messages: &[fmn_messages::Message]) -> anyhow::Result<()> {
        if let Some(recent) = &self.recent
            && !messages.is_empty()
        {
            recent.record_all(messages).await?;
        }
        Ok(())
    }
    async fn load_snapshot(&self) -> anyhow::Result<Option<Vec<u8>>> {
        match &self.snapshot {
            Some(store) => Ok(store.get().await?),
            None => Ok(None),
        }
    }
    async fn deactivate_filter(
        &self,
        user: &str,
        context: ContextKind,
        filter_id: &str,
        message_id: &str,
    ) -> anyhow::Result<bool> {
        Ok(self
            .preferences
            .deactivate_filter(user, context, filter_id, message_id)
            .await?)
    }
    async fn oneshot_wins(
        &self,
        message_id: &str,
    ) -> anyhow::Result<Vec<(String, ContextKind, String)>> {
        Ok(self.preferences.oneshot_wins(message_id).await?)
    }
    async fn ownership_id(&self) -> anyhow::Result<Option<String>> {
        Ok(match &self.ownership {
            Some(table) => table.current().await?.map(|s| s.id),
            None => None,
        })
    }
    async fn load_ownership(&self) -> anyhow::Result<Option<(String, Ownership)>> {
        let Some(table) = &self.ownership else {
            return Ok(None);
        };
        let Some(snapshot) = table.current().await? else {
            return Ok(None);
        };
        let text = table.load(&snapshot).await?;
        Ok(Some((snapshot.id, Ownership::from_json(&text)?)))
    }
}

/// The matcher's configuration, from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_PREFERENCES_TABLE`.
    pub preferences_table: String,
    /// `FMN_OWNERSHIP_TABLE` (optional): maintainer snapshots for `owned_by` rules.
    pub ownership_table: Option<String>,
    /// `FMN_API_TABLE` (optional): where recent messages are logged for the API's previews.
    pub recent_table: Option<String>,
    /// `FMN_PREFERENCES_SNAPSHOT_BUCKET` (optional): where the compiled preferences'
    /// snapshot is kept; a cold start reads it instead of scanning the table.
    pub snapshot_bucket: Option<String>,
    /// `FMN_QUARANTINE_QUEUE_URL`: the incoming DLQ.
    pub quarantine_queue_url: String,
    /// `FMN_<CONTEXT>_QUEUE_URL` for each context that has a sender.
    pub context_queues: BTreeMap<ContextKind, String>,
    /// `FMN_PREFERENCES_MAX_STALE_SECONDS` (default 900): how long the matcher keeps
    /// matching with its last good view of the preferences while the table cannot be read.
    pub max_stale: std::time::Duration,
}

impl Config {
    /// Reads the configuration from `vars` (the process environment on Lambda, the deployed
    /// function's environment locally).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        // One queue per deployed context: `FMN_EMAIL_QUEUE_URL`, `FMN_IRC_QUEUE_URL`, …
        // (email is required; a context without a queue is not deployed).
        let mut context_queues = BTreeMap::new();
        context_queues.insert(ContextKind::Email, vars.required("FMN_EMAIL_QUEUE_URL")?);
        for kind in ContextKind::ALL {
            let name = format!("FMN_{}_QUEUE_URL", kind.as_str().to_ascii_uppercase());
            if let Some(url) = vars.get(&name) {
                context_queues.insert(kind, url);
            }
        }
        Ok(Config {
            preferences_table: vars.required("FMN_PREFERENCES_TABLE")?,
            ownership_table: vars.get("FMN_OWNERSHIP_TABLE"),
            recent_table: vars.get("FMN_API_TABLE"),
            snapshot_bucket: vars.get("FMN_PREFERENCES_SNAPSHOT_BUCKET"),
            quarantine_queue_url: vars.required("FMN_QUARANTINE_QUEUE_URL")?,
            context_queues,
            max_stale: std::time::Duration::from_secs(vars.parse_or(
                "FMN_PREFERENCES_MAX_STALE_SECONDS",
                DEFAULT_MAX_STALE_SECONDS,
            )?),
        })
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_env())
    }
}

/// A warm, compiled view of every preference and the maintainer data, kept up to date from
/// the change log between batches.
#[derive(Debug, Default)]
struct Compiled {
    prefs: CompiledPrefs,
    ownership_id: Option<String>,
    ownership: Arc<Ownership>,
    /// When the view was last brought up to date (none: never).
    refreshed_at: Option<std::time::Instant>,
}

/// The compiled state one batch is matched against.
#[derive(Debug, Clone)]
struct View {
    matcher: Arc<Matcher>,
    settings: Arc<Settings>,
    ownership: Arc<Ownership>,
}

impl Compiled {
    fn view(&self) -> View {
        View {
            matcher: self.prefs.matcher.clone(),
            settings: self.prefs.settings.clone(),
            ownership: self.ownership.clone(),
        }
    }
}

/// How long the last good view is used while the preferences cannot be read, by default.
pub const DEFAULT_MAX_STALE_SECONDS: u64 = 900;

/// The matcher function's state: clients, and the compiled preferences kept warm across
/// invocations.
#[derive(Debug)]
pub struct MatcherFn<P, Q> {
    prefs: P,
    quarantine: Q,
    queues: BTreeMap<ContextKind, Q>,
    catalog: &'static Catalog,
    /// Follows the pointers the bridge puts on `incoming` for oversized messages.
    pointers: fmn_queue::oversize::Resolver,
    compiled: RwLock<Compiled>,
    /// How long the last good view serves while the preferences cannot be read.
    max_stale: std::time::Duration,
}

impl<P: PreferenceSource + Sync, Q: Queue + Sync> MatcherFn<P, Q> {
    /// A matcher reading `prefs`, quarantining to `quarantine`, and sending jobs to `queues`.
    pub fn new(prefs: P, quarantine: Q, queues: BTreeMap<ContextKind, Q>) -> Self {
        MatcherFn {
            prefs,
            quarantine,
            queues,
            catalog: Catalog::builtin(),
            pointers: fmn_queue::oversize::Resolver::default(),
            compiled: RwLock::new(Compiled::default()),
            max_stale: std::time::Duration::from_secs(DEFAULT_MAX_STALE_SECONDS),
        }
    }

    /// Keeps matching with the last good view for at most `max_stale` while the
    /// preferences cannot be read (zero: fail every record at once, as before).
    pub fn with_max_stale(mut self, max_stale: std::time::Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// Handles one SQS batch from `incoming`.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let view = match self.refresh().await {
            Ok(m) => m,
            Err(e) => match self.stale_view().await {
                // A short outage of the table: the last good view still decides.
                Some((view, age)) => {
                    tracing::warn!(error = %e, stale_seconds = age.as_secs(),
                        "cannot read preferences; matching with the last good view");
                    view
                }
                None => {
                    // Without preferences nothing can be decided: fail every record, SQS
                    // retries.
                    tracing::error!(error = %e, "cannot load preferences");
                    return fmn_queue::process_batch(event, |_| async {
                        Err(RecordError("preferences unavailable".into()))
                    })
                    .await;
                }
            },
        };
        // Each record is matched on its own; their jobs then leave together (`send`).
        let prepared = fmn_queue::map_batch(event, |record| self.prepare(&view, record)).await;
        self.send_prepared(prepared).await
    }

    /// The last good view and its age, if it is younger than `max_stale`.
    async fn stale_view(&self) -> Option<(View, std::time::Duration)> {
        let compiled = self.compiled.read().await;
        let age = compiled.refreshed_at?.elapsed();
        (age <= self.max_stale).then(|| (compiled.view(), age))
    }

    /// Brings the compiled view up to date: one consistent read per batch when nothing
    /// changed; when preferences changed, only the users in the change log are re-read and
    /// replaced in the warm index; when the maintainer data changed, the index's ownership
    /// is swapped. Everything is recompiled only on the first batch, after a long sleep or a
    /// burst of changes.
    async fn refresh(&self) -> anyhow::Result<View> {
        // One read per batch when nothing changed (issue 18).
        let (version, ownership_id) = self.prefs.stamps().await?;
        let mut compiled = self.compiled.write().await;
        let same_prefs = compiled.prefs.version == Some(version);
        let same_owners = compiled.ownership_id == ownership_id;
        if same_prefs && same_owners {
            compiled.refreshed_at = Some(std::time::Instant::now());
            return Ok(compiled.view());
        }
        if !same_owners {
            let (id, owners) = match self.prefs.load_ownership().await? {
                Some((id, owners)) => (Some(id), owners),
                None => (None, Ownership::default()),
            };
            tracing::info!(snapshot = ?id, artifacts = owners.len(), "maintainer data loaded");
            let owners = Arc::new(owners);
            Arc::make_mut(&mut compiled.prefs.matcher).set_ownership(owners.clone());
            compiled.ownership = owners;
            compiled.ownership_id = id;
        }
        if compiled.prefs.version.is_none() {
            // A cold start: from the saved snapshot when there is a readable one, then only
            // what changed since it was taken.
            self.load_snapshot(&mut compiled).await;
        }
        if !same_prefs {
            let ownership = compiled.ownership.clone();
            let update = (compiled.prefs)
                .update_to(&self.prefs, version, &ownership)
                .await?;
            match update {
                Update::Unchanged => {}
                Update::Changed(changed) => {
                    tracing::info!(version, changed, "preferences updated");
                }
                Update::Reloaded(users) => tracing::info!(version, users, "preferences compiled"),
            }
        }
        compiled.refreshed_at = Some(std::time::Instant::now());
        Ok(compiled.view())
    }

    /// Starts from the saved snapshot, if one can be read; a missing or unreadable one is
    /// reported and left for the full load.
    async fn load_snapshot(&self, compiled: &mut Compiled) {
        let started = std::time::Instant::now();
        let bytes = match self.prefs.load_snapshot().await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "preferences snapshot unavailable; loading the table");
                return;
            }
        };
        let fetched = started.elapsed();
        match CompiledPrefs::decode(&bytes, compiled.ownership.clone()) {
            Ok(prefs) => {
                tracing::info!(
                    version = prefs.version,
                    bytes = bytes.len(),
                    fetch_ms = fetched.as_millis() as u64,
                    load_ms = (started.elapsed() - fetched).as_millis() as u64,
                    "preferences snapshot loaded"
                );
                compiled.prefs = prefs;
            }
            Err(e) => {
                tracing::warn!(error = %e, "preferences snapshot unreadable; loading the table");
            }
        }
    }

    /// Matches one record: its message (for the recent log), its quarantine or its jobs.
    async fn prepare(&self, view: &View, record: SqsMessage) -> Result<Prepared, RecordError> {
        // Lambda always says; without it (a hand-made event) the record may be a retry.
        let retry = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse::<u32>().ok())
            .is_none_or(|n| n > 1);
        let encoding = fmn_queue::wire::attribute(&record, fmn_queue::wire::ENCODING_ATTRIBUTE);
        let body = record.body.clone().unwrap_or_default();
        let body = (self.pointers.resolve(body).await).map_err(|e| RecordError(e.to_string()))?;
        // A body SQS would have refused comes base64-encoded (the bridge's `fmn_queue::wire`).
        let body = fmn_queue::wire::decode_body(body, encoding)?;
        let message = match self.catalog.normalize_bytes(body.as_bytes()) {
            Ok(m) => {
                fmn_queue::record_bus_id(&m.id);
                m
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(reason, "quarantining malformed bus message");
                let quarantined =
                    Outgoing::new(body).with_attribute(QUARANTINE_REASON_ATTRIBUTE, reason);
                return Ok(Prepared {
                    message: None,
                    quarantine: Some(quarantined),
                    jobs: Vec::new(),
                });
            }
        };
        let mut notifications = view.matcher.matches(&message);
        if retry {
            self.add_won_oneshots(view, &message, &mut notifications)
                .await?;
        }
        let mut jobs = Vec::new();
        for mut notification in notifications {
            let key = (notification.user.clone(), notification.context);
            // A oneshot filter fires once: of concurrent matches, only the one that
            // deactivates it keeps it.
            let mut kept = Vec::with_capacity(notification.filters.len());
            for filter in std::mem::take(&mut notification.filters) {
                if filter.oneshot {
                    let won = self
                        .prefs
                        .deactivate_filter(&key.0, key.1, &filter.id, &message.id)
                        .await
                        .map_err(|e| RecordError(e.to_string()))?;
                    tracing::info!(user = %key.0, filter = %filter.id, won, "oneshot filter fired");
                    if !won {
                        continue;
                    }
                }
                kept.push(filter);
            }
            if kept.is_empty() {
                continue;
            }
            notification.filters = kept;
            let mut job = NotificationJob::new(&message, notification);
            if let Some(settings) = view.settings.get(&key.0).and_then(|s| s.get(&key.1)) {
                job.settings = settings.clone();
            }
            let body = serde_json::to_string(&job).map_err(|e| RecordError(e.to_string()))?;
            jobs.push((
                job.context,
                Outgoing::new(body).with_attribute(fmn_queue::BUS_ID_ATTRIBUTE, &message.id),
            ));
        }
        if jobs.is_empty() {
            tracing::debug!(id = %message.id, topic = %message.topic, "no one wants it");
        } else {
            tracing::info!(id = %message.id, topic = %message.topic, jobs = jobs.len(), "matched");
        }
        Ok(Prepared {
            message: Some(message),
            quarantine: None,
            jobs,
        })
    }
}

/// The matcher as deployed: DynamoDB preferences, SQS queues.
pub type DeployedMatcher = MatcherFn<Tables, fmn_queue::SqsQueue>;

/// Builds the deployed matcher from an AWS configuration and [`Config`].
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> DeployedMatcher {
    let sqs = fmn_calls::client!(aws_sdk_sqs, aws);
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    let tables = Tables {
        preferences: fmn_store::PreferenceTable::new(dynamo.clone(), &config.preferences_table),
        ownership: config
            .ownership_table
            .as_ref()
            .map(|t| fmn_store::OwnershipTable::new(dynamo.clone(), t)),
        recent: config
            .recent_table
            .as_ref()
            .map(|t| fmn_store::RecentMessages::new(dynamo, t)),
        snapshot: (config.snapshot_bucket.as_ref())
            .map(|b| SnapshotStore::new(fmn_calls::client!(aws_sdk_s3, aws), b)),
    };
    let queues = config
        .context_queues
        .iter()
        .map(|(k, url)| (*k, fmn_queue::SqsQueue::new(sqs.clone(), url)))
        .collect();
    let mut matcher = MatcherFn::new(
        tables,
        fmn_queue::SqsQueue::new(sqs, &config.quarantine_queue_url),
        queues,
    );
    matcher.pointers = fmn_queue::oversize::Resolver::from_conf(aws);
    matcher.with_max_stale(config.max_stale)
}

impl<P, Q> fmn_lambda::SqsFunction for MatcherFn<P, Q>
where
    P: PreferenceSource + Send + Sync + 'static,
    Q: Queue + Send + Sync + 'static,
{
    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        MatcherFn::handle(self, event).await
    }
}

mod oneshot;
mod send;
use send::Prepared;
#[cfg(test)]
mod tests;
