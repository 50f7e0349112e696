//! The digest function: on its schedule, for every (user, context) whose held notifications
//! are due ([`fmn_digest::HeldStore::due`]), take a bounded batch, deliver it, then mark it
//! delivered. Email gets one message grouped by application ([`fmn_email::render_digest`]),
//! sent here once per address under the batch's delivery key; every other context gets one
//! summary line ([`fmn_digest::Batch::summary_job`]) on its own queue, whose sender delivers
//! it once (its message id is the batch id). A run that fails midway leaves the batch
//! recorded; the next run resumes it, and the delivery keys keep it from being sent twice.

use std::collections::BTreeMap;

use fmn_digest::{Batch, HeldStore};
use fmn_email::{Links, Mailer};
use fmn_queue::{Outgoing, Queue};
use fmn_rules::ContextKind;
use fmn_store::{Claim, DeliveryTable};

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_HELD_TABLE`.
    pub held_table: String,
    /// `FMN_DELIVERIES_TABLE`.
    pub deliveries_table: String,
    /// `FMN_SENDER_ADDRESS`: From of digest emails.
    pub sender_address: String,
    /// `FMN_<CONTEXT>_QUEUE_URL` of every context but email.
    pub context_queues: BTreeMap<ContextKind, String>,
    /// `FMN_API_BASE_URL` and `FMN_LINK_SECRET`, for filter links in digest emails.
    pub links: Option<Links>,
}

/// A required setting is missing.
#[derive(Debug, thiserror::Error)]
#[error("missing environment variable {0}")]
pub struct ConfigError(&'static str);

impl Config {
    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let required = |k: &'static str| var(k).filter(|v| !v.is_empty()).ok_or(ConfigError(k));
        let context_queues = ContextKind::ALL
            .into_iter()
            .filter(|k| *k != ContextKind::Email)
            .filter_map(|k| {
                let name = format!("FMN_{}_QUEUE_URL", k.as_str().to_ascii_uppercase());
                Some((k, var(&name).filter(|v| !v.is_empty())?))
            })
            .collect();
        let links = match (var("FMN_API_BASE_URL"), var("FMN_LINK_SECRET")) {
            (Some(base), Some(secret)) if !base.is_empty() && !secret.is_empty() => {
                Some(Links::new(base, secret.as_bytes()))
            }
            _ => None,
        };
        Ok(Config {
            held_table: required("FMN_HELD_TABLE")?,
            deliveries_table: required("FMN_DELIVERIES_TABLE")?,
            sender_address: required("FMN_SENDER_ADDRESS")?,
            context_queues,
            links,
        })
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Digests delivered.
    pub digests: usize,
    /// Notifications they carried.
    pub notifications: usize,
    /// Groups that failed (left for the next run).
    pub failed: usize,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} digests ({} notifications), {} failed",
            self.digests, self.notifications, self.failed
        )
    }
}

/// The digest function's state.
#[derive(Debug)]
pub struct Digests<M, Q> {
    held: HeldStore,
    deliveries: DeliveryTable,
    mailer: M,
    queues: BTreeMap<ContextKind, Q>,
    links: Option<Links>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl<M: Mailer + Sync, Q: Queue + Sync> Digests<M, Q> {
    /// Sends every due digest.
    pub async fn run(&self) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome::default();
        for group in self.held.due(now()).await? {
            match self.send_group(&group).await {
                Ok(Some(n)) => {
                    outcome.digests += 1;
                    outcome.notifications += n;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(user = %group.user, context = group.context.as_str(),
                        error = %format!("{e:#}"), "digest failed; the next run resumes it");
                    outcome.failed += 1;
                }
            }
        }
        Ok(outcome)
    }

    async fn send_group(&self, group: &fmn_digest::DueGroup) -> anyhow::Result<Option<usize>> {
        let Some(batch) = self.held.take_batch(group).await? else {
            return Ok(None);
        };
        if batch.jobs.is_empty() {
            self.held.finish(&batch).await?;
            return Ok(None);
        }
        match batch.context {
            ContextKind::Email => self.email(&batch).await?,
            other => {
                let queue = self
                    .queues
                    .get(&other)
                    .ok_or_else(|| anyhow::anyhow!("no queue for {} digests", other.as_str()))?;
                let job = fmn_queue::ContextJob::Notification(batch.summary_job(None));
                queue
                    .send_all(vec![Outgoing::new(serde_json::to_string(&job)?)])
                    .await?;
            }
        }
        self.held.finish(&batch).await?;
        tracing::info!(user = %batch.user, context = batch.context.as_str(),
            notifications = batch.jobs.len(), id = %batch.id, "digest sent");
        Ok(Some(batch.jobs.len()))
    }

    async fn email(&self, batch: &Batch) -> anyhow::Result<()> {
        let email = fmn_email::render_digest(
            &batch.user,
            &batch.jobs,
            &batch.settings,
            batch.flood,
            self.links.as_ref(),
        );
        for address in batch.addresses() {
            let key = format!("{}|{address}", batch.id);
            match self.deliveries.claim(&key).await? {
                Claim::AlreadySent => continue,
                Claim::InProgress => anyhow::bail!("{key}: another run is sending it"),
                Claim::Acquired => {}
            }
            match self.mailer.send(&address, &email).await {
                Ok(()) => self.deliveries.mark_sent(&key).await?,
                Err(fmn_email::MailError::Permanent(e)) => {
                    self.deliveries.mark_sent(&key).await?;
                    tracing::error!(key, error = %e, "digest rejected permanently");
                }
                Err(e) => {
                    let _ = self.deliveries.release(&key).await;
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }
}

/// The function as deployed.
pub type DeployedDigests = Digests<fmn_email::SesMailer, fmn_queue::SqsQueue>;

/// Builds the deployed function (`ses` for SES v2, which may be another endpoint).
pub fn deployed(
    aws: &aws_config::SdkConfig,
    ses: &aws_config::SdkConfig,
    config: &Config,
) -> DeployedDigests {
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    let sqs = aws_sdk_sqs::Client::new(aws);
    Digests {
        held: HeldStore::new(dynamo.clone(), &config.held_table),
        deliveries: DeliveryTable::new(dynamo, &config.deliveries_table),
        mailer: fmn_email::SesMailer::new(aws_sdk_sesv2::Client::new(ses), &config.sender_address),
        queues: config
            .context_queues
            .iter()
            .map(|(k, url)| (*k, fmn_queue::SqsQueue::new(sqs.clone(), url)))
            .collect(),
        links: config.links.clone(),
    }
}
