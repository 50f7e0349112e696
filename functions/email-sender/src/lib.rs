//! The email sender: for each [`NotificationJob`] on the email queue, send one email to each
//! of its addresses, exactly once in effect: a delivery record per (message, user, context,
//! address) is claimed before sending and marked sent after, so a redelivered job sends
//! nothing twice.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_email::{MailError, Mailer};
use fmn_queue::{NotificationJob, RecordError};
use fmn_store::Claim;

/// Delivery records: the idempotency of sending.
pub trait DeliveryLog {
    /// Claims a delivery before sending.
    fn claim(&self, key: &str) -> impl Future<Output = anyhow::Result<Claim>> + Send;
    /// Records a delivery as sent.
    fn mark_sent(&self, key: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Gives a claim up after a failed send.
    fn release(&self, key: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
}

impl DeliveryLog for fmn_store::DeliveryTable {
    async fn claim(&self, key: &str) -> anyhow::Result<Claim> {
        Ok(fmn_store::DeliveryTable::claim(self, key).await?)
    }
    async fn mark_sent(&self, key: &str) -> anyhow::Result<()> {
        Ok(fmn_store::DeliveryTable::mark_sent(self, key).await?)
    }
    async fn release(&self, key: &str) -> anyhow::Result<()> {
        Ok(fmn_store::DeliveryTable::release(self, key).await?)
    }
}

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_DELIVERIES_TABLE`.
    pub deliveries_table: String,
    /// `FMN_SENDER_ADDRESS`: the verified From address.
    pub sender_address: String,
}

/// A required setting is missing.
#[derive(Debug, thiserror::Error)]
#[error("missing environment variable {0}")]
pub struct ConfigError(&'static str);

impl Config {
    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        let var = |name: &'static str| std::env::var(name).map_err(|_| ConfigError(name));
        Ok(Config {
            deliveries_table: var("FMN_DELIVERIES_TABLE")?,
            sender_address: var("FMN_SENDER_ADDRESS")?,
        })
    }
}

/// The email sender's state.
#[derive(Debug)]
pub struct EmailSender<D, M> {
    deliveries: D,
    mailer: M,
}

impl<D: DeliveryLog + Sync, M: Mailer + Sync> EmailSender<D, M> {
    /// A sender recording deliveries in `deliveries` and sending with `mailer`.
    pub fn new(deliveries: D, mailer: M) -> Self {
        EmailSender { deliveries, mailer }
    }

    /// Handles one SQS batch from the email queue.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        fmn_queue::process_batch(event, |record| self.handle_record(record)).await
    }

    async fn handle_record(&self, record: SqsMessage) -> Result<(), RecordError> {
        let body = record.body.unwrap_or_default();
        // A job we cannot read will never become readable: fail it, and after the queue's
        // receive limit SQS moves it to the DLQ where an operator sees it.
        let job: NotificationJob =
            serde_json::from_str(&body).map_err(|e| RecordError(format!("unreadable job: {e}")))?;
        let email = fmn_email::render(&job);
        let mut failures = Vec::new();
        for address in &job.addresses {
            let key = job.delivery_key(address);
            match self
                .deliveries
                .claim(&key)
                .await
                .map_err(|e| RecordError(e.to_string()))?
            {
                Claim::AlreadySent => {
                    tracing::info!(key, "already sent; skipping redelivered job");
                    continue;
                }
                Claim::InProgress => {
                    failures.push(format!("{address}: another attempt is sending"));
                    continue;
                }
                Claim::Acquired => {}
            }
            match self.mailer.send(address, &email).await {
                Ok(()) => {
                    self.deliveries
                        .mark_sent(&key)
                        .await
                        .map_err(|e| RecordError(e.to_string()))?;
                    tracing::info!(key, subject = %email.subject, "email sent");
                }
                Err(MailError::Permanent(e)) => {
                    // Retrying cannot help; keep the claim so we never retry it, and say so.
                    self.deliveries
                        .mark_sent(&key)
                        .await
                        .map_err(|e| RecordError(e.to_string()))?;
                    tracing::error!(key, error = %e, "email rejected permanently");
                }
                Err(MailError::Temporary(e)) => {
                    if let Err(release) = self.deliveries.release(&key).await {
                        tracing::warn!(key, error = %release, "could not release claim");
                    }
                    failures.push(format!("{address}: {e}"));
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RecordError(failures.join("; ")))
        }
    }
}

/// The sender as deployed: DynamoDB delivery records, SES v2.
pub type DeployedSender = EmailSender<fmn_store::DeliveryTable, fmn_email::SesMailer>;

/// Builds the deployed sender from an AWS configuration and [`Config`].
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> DeployedSender {
    EmailSender::new(
        fmn_store::DeliveryTable::new(aws_sdk_dynamodb::Client::new(aws), &config.deliveries_table),
        fmn_email::SesMailer::new(aws_sdk_sesv2::Client::new(aws), &config.sender_address),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use aws_lambda_events::event::sqs::SqsMessage;
    use fmn_email::Email;

    use super::*;

    #[derive(Default)]
    struct MemoryLog(Mutex<HashMap<String, bool>>);

    impl DeliveryLog for MemoryLog {
        async fn claim(&self, key: &str) -> anyhow::Result<Claim> {
            let mut map = self.0.lock().unwrap();
            Ok(match map.get(key) {
                Some(true) => Claim::AlreadySent,
                Some(false) => Claim::InProgress,
                None => {
                    map.insert(key.into(), false);
                    Claim::Acquired
                }
            })
        }
        async fn mark_sent(&self, key: &str) -> anyhow::Result<()> {
            self.0.lock().unwrap().insert(key.into(), true);
            Ok(())
        }
        async fn release(&self, key: &str) -> anyhow::Result<()> {
            self.0.lock().unwrap().remove(key);
            Ok(())
        }
    }

    #[derive(Default)]
    struct Outbox {
        sent: Mutex<Vec<(String, String)>>,
        fail_next: Mutex<bool>,
    }

    impl Mailer for Outbox {
        async fn send(&self, to: &str, email: &Email) -> Result<(), MailError> {
            if std::mem::take(&mut *self.fail_next.lock().unwrap()) {
                return Err(MailError::Temporary("throttled".into()));
            }
            self.sent
                .lock()
                .unwrap()
                .push((to.into(), email.subject.clone()));
            Ok(())
        }
    }

    fn event(bodies: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("r{i}"));
                m.body = Some((*b).to_owned());
                m
            })
            .collect();
        event
    }

    const JOB: &str = include_str!("../../../crates/fmn-queue/tests/fixtures/email-job.json");

    #[tokio::test]
    async fn redelivered_job_sends_once_and_bad_record_fails_alone() {
        let sender = EmailSender::new(MemoryLog::default(), Outbox::default());
        let response = sender.handle(event(&[JOB, "not json", JOB])).await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["r1"]);
        assert_eq!(sender.mailer.sent.lock().unwrap().len(), 1);
        sender.handle(event(&[JOB])).await;
        assert_eq!(sender.mailer.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn temporary_failure_is_retried_then_sent() {
        let sender = EmailSender::new(MemoryLog::default(), Outbox::default());
        *sender.mailer.fail_next.lock().unwrap() = true;
        assert_eq!(
            sender.handle(event(&[JOB])).await.batch_item_failures.len(),
            1
        );
        assert!(
            sender
                .handle(event(&[JOB]))
                .await
                .batch_item_failures
                .is_empty()
        );
        assert_eq!(sender.mailer.sent.lock().unwrap().len(), 1);
    }
}
