//! The email sender: for each [`NotificationJob`] on the email queue, send one email to each
//! of its addresses, exactly once in effect: a delivery record per (message, user, context,
//! address) is claimed before sending and marked sent after, so a redelivered job sends
//! nothing twice. Notifications of a digest context, and those past the flood limit, are
//! held for the digest function instead ([`fmn_digest::Gate`]). A confirmation job sends the
//! confirmation email to its (unconfirmed) address and nothing else.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_digest::{Admission, Admit};
use fmn_email::{Email, Links, MailError, Mailer};
use fmn_queue::{ConfirmationJob, ContextJob, NotificationJob, RecordError};
use fmn_store::{Delivered, DeliveryLog, SendResult, deliver_once};

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_DELIVERIES_TABLE`.
    pub deliveries_table: String,
    /// `FMN_SENDER_ADDRESS`: the verified From address.
    pub sender_address: String,
    /// `FMN_HELD_TABLE`: where digests and floods are held; without it every notification
    /// is sent at once.
    pub held_table: Option<String>,
    /// `FMN_API_BASE_URL` and `FMN_LINK_SECRET`: filter and one-click unsubscribe links;
    /// without them emails carry neither.
    pub links: Option<Links>,
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
        let var = |name: &'static str| {
            std::env::var(name)
                .map_err(|_| ConfigError(format!("missing environment variable {name}")))
        };
        Ok(Config {
            deliveries_table: var("FMN_DELIVERIES_TABLE")?,
            sender_address: var("FMN_SENDER_ADDRESS")?,
            held_table: std::env::var("FMN_HELD_TABLE")
                .ok()
                .filter(|t| !t.is_empty()),
            links: Links::from_env(),
            flood: fmn_digest::FloodLimit::from_vars(|k| std::env::var(k).ok())
                .map_err(ConfigError)?,
        })
    }
}

/// The email sender's state.
#[derive(Debug)]
pub struct EmailSender<D, M, G = fmn_digest::NoGate> {
    deliveries: D,
    mailer: M,
    gate: G,
    links: Option<Links>,
}

impl<D: DeliveryLog + Sync, M: Mailer + Sync> EmailSender<D, M> {
    /// A sender recording deliveries in `deliveries` and sending with `mailer`, everything at
    /// once and without links.
    pub fn new(deliveries: D, mailer: M) -> Self {
        EmailSender {
            deliveries,
            mailer,
            gate: fmn_digest::NoGate,
            links: None,
        }
    }
}

impl<D: DeliveryLog + Sync, M: Mailer + Sync, G: Admit + Sync> EmailSender<D, M, G> {
    /// Holds digests and floods with `gate`.
    pub fn with_gate<H: Admit + Sync>(self, gate: H) -> EmailSender<D, M, H> {
        EmailSender {
            deliveries: self.deliveries,
            mailer: self.mailer,
            gate,
            links: self.links,
        }
    }

    /// Writes filter and unsubscribe links with `links`.
    pub fn with_links(mut self, links: Option<Links>) -> Self {
        self.links = links;
        self
    }

    /// Handles one SQS batch from the email queue.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        fmn_queue::process_batch(event, |record| self.handle_record(record)).await
    }

    async fn handle_record(&self, record: SqsMessage) -> Result<(), RecordError> {
        let body = record.body.unwrap_or_default();
        // A job we cannot read will never become readable: fail it, and after the queue's
        // receive limit SQS moves it to the DLQ where an operator sees it.
        let job: ContextJob =
            serde_json::from_str(&body).map_err(|e| RecordError(format!("unreadable job: {e}")))?;
        match job {
            ContextJob::Confirmation { confirmation } => self.confirm(&confirmation).await,
            ContextJob::Notification(job) => self.notify(&job).await,
        }
    }

    async fn confirm(&self, job: &ConfirmationJob) -> Result<(), RecordError> {
        let key = format!(
            "confirm|{}|email|{}|{}",
            job.user, job.address, job.expires_at
        );
        let email = fmn_email::render_confirmation(job);
        self.deliver(&key, &job.address, &email).await
    }

    async fn notify(&self, job: &NotificationJob) -> Result<(), RecordError> {
        match self.gate.admit(job).await {
            Ok(Admission::Held) => {
                tracing::info!(user = %job.user, id = %job.message.id, "held for a digest");
                return Ok(());
            }
            Ok(Admission::Send) => {}
            Err(e) => return Err(RecordError(e.to_string())),
        }
        let email = fmn_email::render(job, self.links.as_ref());
        let mut failures = Vec::new();
        for address in &job.addresses {
            if let Err(e) = self
                .deliver(&job.delivery_key(address), address, &email)
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

    /// Sends `email` to `address` once in effect under the idempotency `key`.
    async fn deliver(&self, key: &str, address: &str, email: &Email) -> Result<(), RecordError> {
        let outcome = deliver_once(&self.deliveries, key, || async {
            match self.mailer.send(address, email).await {
                Ok(()) => SendResult::Sent,
                // Retrying cannot help: recorded as done, so it is never retried.
                Err(MailError::Permanent(e)) => SendResult::Undeliverable(e),
                Err(MailError::Temporary(e)) => SendResult::Temporary(e),
            }
        })
        .await
        .map_err(|e| RecordError(format!("{address}: {e}")))?;
        if outcome == Delivered::Sent {
            tracing::info!(key, subject = %email.subject, "email sent");
        }
        Ok(())
    }
}

/// The sender as deployed: DynamoDB delivery records, SES v2, digests and the flood limit
/// when a held table is configured.
pub type DeployedSender =
    EmailSender<fmn_store::DeliveryTable, fmn_email::SesMailer, Option<fmn_digest::Gate>>;

/// Builds the deployed sender from an AWS configuration (`ses` for SES v2, which may be
/// another endpoint) and [`Config`].
pub fn deployed(
    aws: &aws_config::SdkConfig,
    ses: &aws_config::SdkConfig,
    config: &Config,
) -> DeployedSender {
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    let gate =
        fmn_digest::Gate::from_table(dynamo.clone(), config.held_table.as_deref(), config.flood);
    EmailSender::new(
        fmn_store::DeliveryTable::new(dynamo, &config.deliveries_table),
        fmn_email::SesMailer::new(aws_sdk_sesv2::Client::new(ses), &config.sender_address),
    )
    .with_gate(gate)
    .with_links(config.links.clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_lambda_events::event::sqs::SqsMessage;
    use fmn_email::Email;

    use super::*;

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
        let sender = EmailSender::new(fmn_store::MemoryDeliveryLog::default(), Outbox::default());
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
        let sender = EmailSender::new(fmn_store::MemoryDeliveryLog::default(), Outbox::default());
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

    #[tokio::test]
    async fn confirmation_goes_to_its_address_once() {
        let sender = EmailSender::new(fmn_store::MemoryDeliveryLog::default(), Outbox::default());
        let job = r#"{"confirmation": {"user": "alice", "context": "email",
            "address": "new@example.org", "link": "https://fmn.example.org/api/v1/confirm/t",
            "expires_at": 1764000000}}"#;
        sender.handle(event(&[job, job])).await;
        let sent = sender.mailer.sent.lock().unwrap().clone();
        assert_eq!(
            sent,
            [(
                "new@example.org".to_owned(),
                "fmn: confirm your email address".to_owned()
            )]
        );
    }

    struct HoldAll(Mutex<Vec<String>>);

    impl Admit for HoldAll {
        async fn admit(&self, job: &NotificationJob) -> Result<Admission, fmn_digest::DigestError> {
            self.0.lock().unwrap().push(job.message.id.clone());
            Ok(Admission::Held)
        }
    }

    #[tokio::test]
    async fn held_notifications_are_not_sent() {
        let sender = EmailSender::new(fmn_store::MemoryDeliveryLog::default(), Outbox::default())
            .with_gate(HoldAll(Mutex::default()));
        let response = sender.handle(event(&[JOB])).await;
        assert!(response.batch_item_failures.is_empty());
        assert!(sender.mailer.sent.lock().unwrap().is_empty());
        assert_eq!(sender.gate.0.lock().unwrap().len(), 1);
    }
}
