//! The webhook sender: each notification on the webhook queue is POSTed to each of its
//! addresses (URLs), signed with the address's secret, once in effect (claim, send, mark in
//! the deliveries table). A delivery that still fails after the client's bounded retries is
//! reported as a batch failure, so SQS retries it later and finally moves it to the DLQ;
//! after [`Config::max_failures`] consecutive failed deliveries the address is disabled in
//! the user's preferences and its owner told (an email to a confirmed address, else a feed
//! item). A confirmation job POSTs its code to the (unconfirmed) URL and nothing else.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_digest::{Admission, Admit};
use fmn_queue::{ContextJob, NotificationJob, RecordError};
use fmn_rules::ContextKind;
use fmn_store::Claim;
use fmn_webhook::{Payload, PostError};

mod accounts;

pub use accounts::{Accounts, DeployedAccounts};

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_DELIVERIES_TABLE`: idempotency records and failure counters.
    pub deliveries_table: String,
    /// `FMN_PREFERENCES_TABLE`: secrets, and where a failing webhook is disabled.
    pub preferences_table: String,
    /// `FMN_HELD_TABLE` (optional): digests and the flood limit.
    pub held_table: Option<String>,
    /// `FMN_FEED_TABLE` (optional): where owners without email hear about a disabled hook.
    pub feed_table: Option<String>,
    /// `FMN_SENDER_ADDRESS` (optional): From of the "webhook disabled" email.
    pub sender_address: Option<String>,
    /// `FMN_WEBHOOK_MAX_FAILURES` (default 5): consecutive failed deliveries before the
    /// address is disabled.
    pub max_failures: u64,
    /// `FMN_FLOOD_MAX` and `FMN_FLOOD_WINDOW_SECS`: the flood limit.
    pub flood: fmn_digest::FloodLimit,
}

/// A required setting is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `var` (the local runtime passes the deployed
    /// function's environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let optional = |k: &str| var(k).filter(|v| !v.is_empty());
        let missing = |k: &str| ConfigError(format!("missing environment variable {k}"));
        Ok(Config {
            deliveries_table: optional("FMN_DELIVERIES_TABLE")
                .ok_or_else(|| missing("FMN_DELIVERIES_TABLE"))?,
            preferences_table: optional("FMN_PREFERENCES_TABLE")
                .ok_or_else(|| missing("FMN_PREFERENCES_TABLE"))?,
            held_table: optional("FMN_HELD_TABLE"),
            feed_table: optional("FMN_FEED_TABLE"),
            sender_address: optional("FMN_SENDER_ADDRESS"),
            max_failures: optional("FMN_WEBHOOK_MAX_FAILURES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(5),
            flood: fmn_digest::FloodLimit::from_vars(&var).map_err(ConfigError)?,
        })
    }
}

/// Something that POSTs a payload ([`fmn_webhook::WebhookClient`] deployed).
pub trait Poster {
    /// POSTs `payload` to `url` signed with `secret`.
    fn post(
        &self,
        url: &str,
        secret: &[u8],
        payload: &Payload,
    ) -> impl Future<Output = Result<(), PostError>> + Send;
}

impl Poster for fmn_webhook::WebhookClient {
    async fn post(&self, url: &str, secret: &[u8], payload: &Payload) -> Result<(), PostError> {
        fmn_webhook::WebhookClient::post(self, url, secret, payload).await
    }
}

/// The webhook sender's state.
#[derive(Debug)]
pub struct WebhookSender<A, P, G = fmn_digest::NoGate> {
    accounts: A,
    poster: P,
    gate: G,
    max_failures: u64,
}

impl<A: Accounts + Sync, P: Poster + Sync, G: Admit + Sync> WebhookSender<A, P, G> {
    /// A sender; `max_failures` consecutive failed deliveries disable an address.
    pub fn new(accounts: A, poster: P, gate: G, max_failures: u64) -> Self {
        WebhookSender {
            accounts,
            poster,
            gate,
            max_failures,
        }
    }

    /// Handles one SQS batch from the webhook queue.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        fmn_queue::process_batch(event, |record| self.handle_record(record)).await
    }

    async fn handle_record(&self, record: SqsMessage) -> Result<(), RecordError> {
        let body = record.body.unwrap_or_default();
        let job: ContextJob =
            serde_json::from_str(&body).map_err(|e| RecordError(format!("unreadable job: {e}")))?;
        let err = |e: anyhow::Error| RecordError(format!("{e:#}"));
        match job {
            ContextJob::Confirmation { confirmation } => {
                let key = format!(
                    "confirm|{}|webhook|{}|{}",
                    confirmation.user, confirmation.address, confirmation.expires_at
                );
                let secret = self
                    .accounts
                    .secret(&confirmation.user, &confirmation.address, true)
                    .await
                    .map_err(err)?
                    .unwrap_or_default();
                self.deliver(
                    &key,
                    &confirmation.user,
                    &confirmation.address,
                    &secret,
                    &Payload::from(&confirmation),
                    false,
                )
                .await
            }
            ContextJob::Notification(job) => self.notify(&job).await,
        }
    }

    async fn notify(&self, job: &NotificationJob) -> Result<(), RecordError> {
        if job.context != ContextKind::Webhook {
            return Err(RecordError(format!(
                "a {} job on the webhook queue",
                job.context.as_str()
            )));
        }
        match self.gate.admit(job).await {
            Ok(Admission::Held) => return Ok(()),
            Ok(Admission::Send) => {}
            Err(e) => return Err(RecordError(e.to_string())),
        }
        let payload = Payload::from(job);
        let mut failures = Vec::new();
        for address in &job.addresses {
            let secret = match self.accounts.secret(&job.user, address, false).await {
                Ok(Some(secret)) => secret,
                Ok(None) => {
                    tracing::info!(user = %job.user, address, "address gone or disabled; skipping");
                    continue;
                }
                Err(e) => {
                    failures.push(format!("{address}: {e:#}"));
                    continue;
                }
            };
            if let Err(e) = self
                .deliver(
                    &job.delivery_key(address),
                    &job.user,
                    address,
                    &secret,
                    &payload,
                    true,
                )
                .await
            {
                failures.push(e.0);
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RecordError(failures.join("; ")))
        }
    }

    async fn deliver(
        &self,
        key: &str,
        user: &str,
        address: &str,
        secret: &str,
        payload: &Payload,
        count_failures: bool,
    ) -> Result<(), RecordError> {
        let err = |e: anyhow::Error| RecordError(format!("{e:#}"));
        match self.accounts.claim(key).await.map_err(err)? {
            Claim::AlreadySent => return Ok(()),
            Claim::InProgress => {
                return Err(RecordError(format!(
                    "{address}: another attempt is sending"
                )));
            }
            Claim::Acquired => {}
        }
        match self.poster.post(address, secret.as_bytes(), payload).await {
            Ok(()) => {
                self.accounts.mark_sent(key).await.map_err(err)?;
                if count_failures {
                    self.accounts
                        .clear_failures(user, address)
                        .await
                        .map_err(err)?;
                }
                tracing::info!(key, "webhook delivered");
                Ok(())
            }
            Err(e) => {
                if let Err(release) = self.accounts.release(key).await {
                    tracing::warn!(key, error = %release, "could not release claim");
                }
                let permanent = e.is_permanent();
                let failures = if count_failures {
                    self.accounts
                        .record_failure(user, address)
                        .await
                        .map_err(err)?
                } else {
                    0
                };
                if count_failures && (permanent || failures >= self.max_failures) {
                    let reason = if permanent {
                        format!("refused: {e}")
                    } else {
                        format!("{failures} consecutive failed deliveries, last: {e}")
                    };
                    self.accounts
                        .disable(user, address, &reason)
                        .await
                        .map_err(err)?;
                    tracing::warn!(user, address, %reason, "webhook disabled");
                    // Nothing more will be sent there: do not retry.
                    return Ok(());
                }
                if permanent {
                    tracing::error!(key, error = %e, "webhook refused");
                    return Ok(());
                }
                Err(RecordError(format!("{address}: {e}")))
            }
        }
    }
}

/// The sender as deployed.
pub type DeployedSender =
    WebhookSender<DeployedAccounts, fmn_webhook::WebhookClient, Option<fmn_digest::Gate>>;

/// Builds the deployed sender (`FMN_WEBHOOK_ALLOW_PRIVATE` read from the process
/// environment).
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> anyhow::Result<DeployedSender> {
    deployed_with(
        aws,
        aws,
        config,
        fmn_webhook::WebhookClient::from_env(fmn_webhook::RetryPolicy::default())?,
    )
}

/// Builds the deployed sender with `client` (`ses` for SES v2, which may be another
/// endpoint).
pub fn deployed_with(
    aws: &aws_config::SdkConfig,
    ses: &aws_config::SdkConfig,
    config: &Config,
    client: fmn_webhook::WebhookClient,
) -> anyhow::Result<DeployedSender> {
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    let gate = fmn_digest::Gate::from_table(dynamo, config.held_table.as_deref(), config.flood);
    Ok(WebhookSender::new(
        DeployedAccounts::new(aws, ses, config),
        client,
        gate,
        config.max_failures,
    ))
}

#[cfg(test)]
mod tests;
