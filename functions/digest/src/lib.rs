//! The digest function: on its schedule, for every (user, context) whose held notifications
//! are due ([`fmn_digest::Held::due`]), take a bounded batch, deliver it, then mark it
//! delivered. Email gets one message grouped by application, sent through the sender
//! pipeline with the email channel ([`fmn_delivery::Item::Digest`], once per address under
//! the batch's delivery key); every other context gets one summary line
//! ([`fmn_digest::Batch::summary_job`]) on its own queue, whose sender delivers it once (its
//! message id is the batch id). A run that fails midway leaves the batch recorded; the next
//! run resumes it, and the delivery keys keep it from being sent twice.

use std::collections::BTreeMap;

use fmn_delivery::{Channel, History, Item, NoHistory, Pipeline, Unchecked};
use fmn_digest::{Batch, Held, HeldStore, NoGate};
use fmn_email::{EmailChannel, Links};
use fmn_lambda::{ConfigError, Vars};
use fmn_queue::{Outgoing, Queue};
use fmn_rules::ContextKind;
use fmn_store::DeliveryLog;

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

impl Config {
    /// Reads the configuration from `vars` (the process environment on Lambda, the deployed
    /// function's environment locally).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        let context_queues = ContextKind::ALL
            .into_iter()
            .filter(|k| *k != ContextKind::Email)
            .filter_map(|k| {
                let name = format!("FMN_{}_QUEUE_URL", k.as_str().to_ascii_uppercase());
                Some((k, vars.get(&name)?))
            })
            .collect();
        Ok(Config {
            held_table: vars.required("FMN_HELD_TABLE")?,
            deliveries_table: vars.required("FMN_DELIVERIES_TABLE")?,
            sender_address: vars.required("FMN_SENDER_ADDRESS")?,
            context_queues,
            links: Links::from_vars(vars.lookup())
                .map_err(|e| ConfigError::invalid(fmn_links::LINK_SECRET_ENV, e))?,
        })
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_env())
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

/// The digest function's state: held notifications `H`, the email pipeline over channel
/// `C`, delivery records `D` and delivery history `L` (an email digest is one history entry;
/// other contexts' summaries are recorded by their own senders), and the other contexts'
/// queues `Q`.
#[derive(Debug)]
pub struct Digests<H, C, D, Q, L = NoHistory> {
    held: H,
    email: Pipeline<C, D, NoGate, Unchecked, L>,
    queues: BTreeMap<ContextKind, Q>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl<H, C, D, Q, L> Digests<H, C, D, Q, L>
where
    H: Held + Sync,
    C: Channel + Sync,
    D: DeliveryLog + Sync,
    Q: Queue + Sync,
    L: History + Sync,
{
    /// The function over `held`, sending email digests through `email` and summaries of
    /// other contexts to `queues`.
    pub fn new(
        held: H,
        email: Pipeline<C, D, NoGate, Unchecked, L>,
        queues: BTreeMap<ContextKind, Q>,
    ) -> Self {
        Digests {
            held,
            email,
            queues,
        }
    }

    /// Sends every due digest.
    pub async fn run(&self) -> anyhow::Result<Outcome> {
        self.run_at(now()).await
    }

    /// Sends every digest due at `now` (seconds since the epoch).
    pub async fn run_at(&self, now: u64) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome::default();
        for group in self.held.due(now).await? {
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
        self.deliver(&batch).await?;
        self.held.finish(&batch).await?;
        tracing::info!(user = %batch.user, context = batch.context.as_str(),
            notifications = batch.jobs.len(), id = %batch.id, "digest sent");
        Ok(Some(batch.jobs.len()))
    }

    async fn deliver(&self, batch: &Batch) -> anyhow::Result<()> {
        if batch.context == ContextKind::Email {
            return Ok(self.email.deliver(&Item::Digest(batch)).await?);
        }
        let queue = self
            .queues
            .get(&batch.context)
            .ok_or_else(|| anyhow::anyhow!("no queue for {} digests", batch.context.as_str()))?;
        let job = fmn_queue::ContextJob::Notification(batch.summary_job(None));
        queue
            .send_all(vec![Outgoing::new(serde_json::to_string(&job)?)])
            .await?;
        Ok(())
    }
}

impl<H, C, D, Q, L> fmn_lambda::ScheduledFunction for Digests<H, C, D, Q, L>
where
    H: Held + Send + Sync + 'static,
    C: Channel + Send + Sync + 'static,
    D: DeliveryLog + Send + Sync + 'static,
    Q: Queue + Send + Sync + 'static,
    L: History + Send + Sync + 'static,
{
    async fn run_once(&self) -> anyhow::Result<String> {
        Ok(self.run().await?.to_string())
    }
}

/// The function as deployed.
pub type DeployedDigests = Digests<
    HeldStore,
    EmailChannel<fmn_email::SesMailer>,
    fmn_store::DeliveryTable,
    fmn_queue::SqsQueue,
    fmn_store::HistoryLog,
>;

/// Builds the deployed function (`ses` for SES v2, which may be another endpoint).
pub fn deployed(
    aws: &aws_config::SdkConfig,
    ses: &aws_config::SdkConfig,
    config: &Config,
) -> DeployedDigests {
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    let sqs = fmn_calls::client!(aws_sdk_sqs, aws);
    let mailer = fmn_email::SesMailer::new(
        fmn_calls::client!(aws_sdk_sesv2, ses),
        &config.sender_address,
    );
    Digests::new(
        HeldStore::new(dynamo.clone(), &config.held_table),
        Pipeline::new(
            EmailChannel::new(mailer, config.links.clone()),
            fmn_store::DeliveryTable::new(dynamo.clone(), &config.deliveries_table),
        )
        .with_history(fmn_store::HistoryLog::new(dynamo, &config.deliveries_table)),
        config
            .context_queues
            .iter()
            .map(|(k, url)| (*k, fmn_queue::SqsQueue::new(sqs.clone(), url)))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
