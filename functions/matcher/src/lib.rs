//! The matcher: for each bus message in an `incoming` batch, normalise it, find who wants it
//! where, and send one [`NotificationJob`] per (message, user, context) to that context's
//! queue. Malformed messages are quarantined with the reason; a failure to reach a queue or
//! the table fails only that record, which SQS retries.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_messages::Catalog;
use fmn_queue::{NotificationJob, Outgoing, QUARANTINE_REASON_ATTRIBUTE, Queue, RecordError};
use fmn_rules::{ContextKind, Matcher, Preferences};
use tokio::sync::RwLock;

/// Where the matcher reads preferences from.
pub trait PreferenceSource {
    /// A stamp that changes whenever any preference changes.
    fn version(&self) -> impl Future<Output = anyhow::Result<u64>> + Send;
    /// Every user's preferences.
    fn load_all(&self) -> impl Future<Output = anyhow::Result<Vec<Preferences>>> + Send;
}

impl PreferenceSource for fmn_store::PreferenceTable {
    async fn version(&self) -> anyhow::Result<u64> {
        Ok(fmn_store::PreferenceTable::version(self).await?)
    }
    async fn load_all(&self) -> anyhow::Result<Vec<Preferences>> {
        Ok(fmn_store::PreferenceTable::load_all(self).await?)
    }
}

/// The matcher's configuration, from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_PREFERENCES_TABLE`.
    pub preferences_table: String,
    /// `FMN_QUARANTINE_QUEUE_URL`: the incoming DLQ.
    pub quarantine_queue_url: String,
    /// `FMN_<CONTEXT>_QUEUE_URL` for each context that has a sender.
    pub context_queues: BTreeMap<ContextKind, String>,
}

/// A required setting is missing.
#[derive(Debug, thiserror::Error)]
#[error("missing environment variable {0}")]
pub struct ConfigError(&'static str);

impl Config {
    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        let var = |name: &'static str| std::env::var(name).map_err(|_| ConfigError(name));
        let mut context_queues = BTreeMap::new();
        context_queues.insert(ContextKind::Email, var("FMN_EMAIL_QUEUE_URL")?);
        Ok(Config {
            preferences_table: var("FMN_PREFERENCES_TABLE")?,
            quarantine_queue_url: var("FMN_QUARANTINE_QUEUE_URL")?,
            context_queues,
        })
    }
}

/// A warm, compiled view of every preference, refreshed when the version stamp moves.
#[derive(Debug)]
struct Compiled {
    version: Option<u64>,
    matcher: Arc<Matcher>,
}

/// The matcher function's state: clients, and the compiled preferences kept warm across
/// invocations.
#[derive(Debug)]
pub struct MatcherFn<P, Q> {
    prefs: P,
    quarantine: Q,
    queues: BTreeMap<ContextKind, Q>,
    catalog: &'static Catalog,
    compiled: RwLock<Compiled>,
}

impl<P: PreferenceSource + Sync, Q: Queue + Sync> MatcherFn<P, Q> {
    /// A matcher reading `prefs`, quarantining to `quarantine`, and sending jobs to `queues`.
    pub fn new(prefs: P, quarantine: Q, queues: BTreeMap<ContextKind, Q>) -> Self {
        MatcherFn {
            prefs,
            quarantine,
            queues,
            catalog: Catalog::builtin(),
            compiled: RwLock::new(Compiled {
                version: None,
                matcher: Arc::default(),
            }),
        }
    }

    /// Handles one SQS batch from `incoming`.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let matcher = match self.refresh().await {
            Ok(m) => m,
            Err(e) => {
                // Without preferences nothing can be decided: fail every record, SQS retries.
                tracing::error!(error = %e, "cannot load preferences");
                return fmn_queue::process_batch(event, |_| async {
                    Err(RecordError("preferences unavailable".into()))
                })
                .await;
            }
        };
        fmn_queue::process_batch(event, |record| self.handle_record(&matcher, record)).await
    }

    /// Re-reads and recompiles preferences if their version changed since the last batch.
    async fn refresh(&self) -> anyhow::Result<Arc<Matcher>> {
        let version = self.prefs.version().await?;
        {
            let compiled = self.compiled.read().await;
            if compiled.version == Some(version) {
                return Ok(compiled.matcher.clone());
            }
        }
        let all = self.prefs.load_all().await?;
        let users = all.len();
        let (matcher, skipped) = Matcher::build_lenient(all, Arc::default());
        for e in &skipped {
            tracing::warn!(error = %e, "skipping invalid preferences");
        }
        let matcher = Arc::new(matcher);
        tracing::info!(version, users, "preferences compiled");
        let mut compiled = self.compiled.write().await;
        *compiled = Compiled {
            version: Some(version),
            matcher: matcher.clone(),
        };
        Ok(matcher)
    }

    async fn handle_record(
        &self,
        matcher: &Matcher,
        record: SqsMessage,
    ) -> Result<(), RecordError> {
        let body = record.body.unwrap_or_default();
        let message = match self.catalog.normalize_bytes(body.as_bytes()) {
            Ok(m) => m,
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(reason, "quarantining malformed bus message");
                let quarantined =
                    Outgoing::new(body).with_attribute(QUARANTINE_REASON_ATTRIBUTE, reason);
                return self
                    .quarantine
                    .send_all(vec![quarantined])
                    .await
                    .map_err(|e| RecordError(e.to_string()));
            }
        };
        let mut by_context: BTreeMap<ContextKind, Vec<Outgoing>> = BTreeMap::new();
        for notification in matcher.matches(&message) {
            let job = NotificationJob::new(&message, notification);
            let body = serde_json::to_string(&job).map_err(|e| RecordError(e.to_string()))?;
            by_context
                .entry(job.context)
                .or_default()
                .push(Outgoing::new(body));
        }
        let jobs = by_context.values().map(Vec::len).sum::<usize>();
        if jobs > 0 {
            tracing::info!(id = %message.id, topic = %message.topic, jobs, "matched");
        } else {
            tracing::debug!(id = %message.id, topic = %message.topic, "no one wants it");
        }
        for (context, jobs) in by_context {
            match self.queues.get(&context) {
                Some(queue) => queue
                    .send_all(jobs)
                    .await
                    .map_err(|e| RecordError(e.to_string()))?,
                None => tracing::warn!(
                    context = context.as_str(),
                    dropped = jobs.len(),
                    "no sender deployed for this context"
                ),
            }
        }
        Ok(())
    }
}

/// The matcher as deployed: DynamoDB preferences, SQS queues.
pub type DeployedMatcher = MatcherFn<fmn_store::PreferenceTable, fmn_queue::SqsQueue>;

/// Builds the deployed matcher from an AWS configuration and [`Config`].
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> DeployedMatcher {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let prefs = fmn_store::PreferenceTable::new(
        aws_sdk_dynamodb::Client::new(aws),
        &config.preferences_table,
    );
    let queues = config
        .context_queues
        .iter()
        .map(|(k, url)| (*k, fmn_queue::SqsQueue::new(sqs.clone(), url)))
        .collect();
    MatcherFn::new(
        prefs,
        fmn_queue::SqsQueue::new(sqs, &config.quarantine_queue_url),
        queues,
    )
}
