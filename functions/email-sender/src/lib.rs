//! The email sender: the sender pipeline ([`fmn_delivery::Pipeline`]) with the email channel
//! ([`fmn_email::EmailChannel`]). For each job on the email queue it sends one email to each
//! address, exactly once in effect (a delivery record per address is claimed before sending
//! and marked sent after, so a redelivered job sends nothing twice). Notifications of a
//! digest context, and those past the flood limit, are held for the digest function
//! instead ([`fmn_digest::Gate`]). A confirmation job sends the confirmation email to its
//! (unconfirmed) address and nothing else; a notice (from fmn) goes like a notification but
//! is never held.

use fmn_delivery::Pipeline;
use fmn_email::{EmailChannel, Links};
use fmn_lambda::{ConfigError, Vars};

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
    /// `FMN_PREFERENCES_TABLE` (optional): where a notification's addresses are checked
    /// again just before sending (one removed or disabled since matching is not sent to).
    pub preferences_table: Option<String>,
    /// `FMN_API_BASE_URL` and `FMN_LINK_SECRET`: filter and one-click unsubscribe links;
    /// without them emails carry neither.
    pub links: Option<Links>,
    /// `FMN_FLOOD_MAX` and `FMN_FLOOD_WINDOW_SECS`: the flood limit.
    pub flood: fmn_digest::FloodLimit,
}

impl Config {
    /// Reads the configuration from `vars` (the process environment on Lambda, the deployed
    /// function's environment locally).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        Ok(Config {
            deliveries_table: vars.required("FMN_DELIVERIES_TABLE")?,
            sender_address: vars.required("FMN_SENDER_ADDRESS")?,
            held_table: vars.get("FMN_HELD_TABLE"),
            preferences_table: vars.get("FMN_PREFERENCES_TABLE"),
            links: Links::from_vars(vars.lookup())
                .map_err(|e| ConfigError::invalid(fmn_links::LINK_SECRET_ENV, e))?,
            flood: fmn_digest::FloodLimit::from_vars(vars)?,
        })
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_env())
    }
}

/// The email sender over delivery records `D`, mailer `M` and gate `G`.
pub type EmailSender<
    D,
    M,
    G = fmn_digest::NoGate,
    A = fmn_delivery::Unchecked,
    H = fmn_delivery::NoHistory,
> = Pipeline<EmailChannel<M>, D, G, A, H>;

/// A sender recording deliveries in `deliveries` and sending with `mailer`, everything at
/// once and without links (add a gate with [`Pipeline::with_gate`]).
pub fn sender<D, M>(deliveries: D, mailer: M, links: Option<Links>) -> EmailSender<D, M> {
    Pipeline::new(EmailChannel::new(mailer, links), deliveries)
}

/// The sender as deployed: DynamoDB delivery records, SES v2, digests and the flood limit
/// when a held table is configured.
pub type DeployedSender = EmailSender<
    fmn_store::DeliveryTable,
    fmn_email::SesMailer,
    Option<fmn_digest::Gate>,
    Option<fmn_store::PreferenceTable>,
    fmn_store::HistoryLog,
>;

/// Builds the deployed sender from an AWS configuration (`ses` for SES v2, which may be
/// another endpoint) and [`Config`].
pub fn deployed(
    aws: &aws_config::SdkConfig,
    ses: &aws_config::SdkConfig,
    config: &Config,
) -> DeployedSender {
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    let gate =
        fmn_digest::Gate::from_table(dynamo.clone(), config.held_table.as_deref(), config.flood);
    let book = (config.preferences_table.as_ref())
        .map(|t| fmn_store::PreferenceTable::new(dynamo.clone(), t));
    let history = fmn_store::HistoryLog::new(dynamo.clone(), &config.deliveries_table);
    sender(
        fmn_store::DeliveryTable::new(dynamo, &config.deliveries_table),
        fmn_email::SesMailer::new(
            fmn_calls::client!(aws_sdk_sesv2, ses),
            &config.sender_address,
        ),
        config.links.clone(),
    )
    .with_gate(gate)
    .with_addresses(book)
    .with_history(history)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use fmn_digest::{Admission, Admit};
    use fmn_email::{Email, MailError, Mailer};
    use fmn_queue::NotificationJob;
    use fmn_queue::test_util::{failed_ids, sqs_event as event};

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

    fn new_sender() -> EmailSender<fmn_store::MemoryDeliveryLog, Outbox> {
        sender(
            fmn_store::MemoryDeliveryLog::default(),
            Outbox::default(),
            None,
        )
    }

    fn outbox<G>(sender: &EmailSender<fmn_store::MemoryDeliveryLog, Outbox, G>) -> &Outbox {
        sender.channel().mailer()
    }

    const JOB: &str = include_str!("../../../crates/fmn-queue/tests/fixtures/email-job.json");

    #[tokio::test]
    async fn redelivered_job_sends_once_and_bad_record_fails_alone() {
        let sender = new_sender();
        let response = sender.handle(event(&[JOB, "not json", JOB])).await;
        assert_eq!(failed_ids(&response), ["r1"]);
        assert_eq!(outbox(&sender).sent.lock().unwrap().len(), 1);
        sender.handle(event(&[JOB])).await;
        assert_eq!(outbox(&sender).sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn temporary_failure_is_retried_then_sent() {
        let sender = new_sender();
        *outbox(&sender).fail_next.lock().unwrap() = true;
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
        assert_eq!(outbox(&sender).sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn confirmation_goes_to_its_address_once() {
        let sender = new_sender();
        let job = r#"{"confirmation": {"user": "alice", "context": "email",
            "address": "new@example.org", "link": "https://fmn.example.org/api/v1/confirm/t",
            "expires_at": 1764000000}}"#;
        sender.handle(event(&[job, job])).await;
        let sent = outbox(&sender).sent.lock().unwrap().clone();
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
        let sender = new_sender().with_gate(HoldAll(Mutex::default()));
        let response = sender.handle(event(&[JOB])).await;
        assert!(response.batch_item_failures.is_empty());
        assert!(outbox(&sender).sent.lock().unwrap().is_empty());
        assert_eq!(sender.gate().0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_notice_is_sent_even_when_notifications_are_held() {
        let sender = new_sender().with_gate(HoldAll(Mutex::default()));
        let notice = r#"{"notice": {"id": "webhook-disabled:h:1", "user": "alice",
            "context": "email", "addresses": ["alice@example.org"],
            "topic": "fmn.webhook.disabled", "title": "fmn: your webhook was disabled",
            "text": "fmn stopped sending to your webhook h.", "created_at": 1764000000}}"#;
        assert!(
            sender
                .handle(event(&[notice, notice]))
                .await
                .batch_item_failures
                .is_empty()
        );
        let sent = outbox(&sender).sent.lock().unwrap().clone();
        assert_eq!(
            sent,
            [(
                "alice@example.org".to_owned(),
                "fmn: your webhook was disabled".to_owned()
            )]
        );
    }
}
