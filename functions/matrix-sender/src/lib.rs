//! The Matrix sender: for each job on the Matrix queue, one message into the direct room
//! with each confirmed Matrix user, exactly once in effect. A delivery record per (message,
//! user, context, address) is claimed before sending and marked sent after, and the
//! message's transaction id is derived from the same key, so a retry after a crash between
//! sending and marking is deduplicated by the homeserver too. Confirmation codes go the same
//! way to the account being confirmed.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_digest::{Admission, Admit};
use fmn_matrix::{DirectMessenger, DynamoRooms, MatrixClient, MatrixConfig, MatrixLink};
use fmn_queue::{ContextJob, RecordError};
use fmn_store::{Delivered, DeliveryLog, SendResult, deliver_once};
use serde_json::Value;

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_DELIVERIES_TABLE` (delivery records and remembered rooms).
    pub deliveries_table: String,
    /// The homeserver (`FMN_MATRIX_HOMESERVER`, `FMN_MATRIX_ACCESS_TOKEN`).
    pub matrix: MatrixConfig,
    /// `FMN_HELD_TABLE`: where digests and floods are held; without it every notification
    /// is sent at once.
    pub held_table: Option<String>,
    /// `FMN_FLOOD_MAX` and `FMN_FLOOD_WINDOW_SECS`: the flood limit.
    pub flood: fmn_digest::FloodLimit,
}

/// A required setting is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is missing.
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    /// The flood limit is malformed.
    #[error("{0}")]
    Flood(String),
    /// A Matrix setting is wrong.
    #[error(transparent)]
    Matrix(#[from] fmn_matrix::ConfigError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] fmn_matrix::MatrixError),
}

impl Config {
    /// Reads the configuration through `var` (e.g. `|n| std::env::var(n).ok()`, or a deployed
    /// function's environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Ok(Config {
            deliveries_table: var("FMN_DELIVERIES_TABLE")
                .ok_or(ConfigError::Missing("FMN_DELIVERIES_TABLE"))?,
            matrix: MatrixConfig::from_vars(&var)?,
            held_table: var("FMN_HELD_TABLE").filter(|t| !t.is_empty()),
            flood: fmn_digest::FloodLimit::from_vars(&var).map_err(ConfigError::Flood)?,
        })
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }
}

/// The Matrix sender's state.
#[derive(Debug)]
pub struct MatrixSender<D, L, G = fmn_digest::NoGate> {
    deliveries: D,
    link: L,
    gate: G,
}

impl<D: DeliveryLog + Sync, L: MatrixLink + Sync> MatrixSender<D, L> {
    /// A sender recording deliveries in `deliveries` and sending through `link`, everything
    /// at once.
    pub fn new(deliveries: D, link: L) -> Self {
        MatrixSender {
            deliveries,
            link,
            gate: fmn_digest::NoGate,
        }
    }
}

impl<D: DeliveryLog + Sync, L: MatrixLink + Sync, G: Admit + Sync> MatrixSender<D, L, G> {
    /// Holds digests and floods with `gate`.
    pub fn with_gate<H: Admit + Sync>(self, gate: H) -> MatrixSender<D, L, H> {
        MatrixSender {
            deliveries: self.deliveries,
            link: self.link,
            gate,
        }
    }

    /// The link it sends through.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// Handles one SQS batch from the Matrix queue.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        fmn_queue::process_batch(event, |record| self.handle_record(record)).await
    }

    async fn handle_record(&self, record: SqsMessage) -> Result<(), RecordError> {
        let body = record.body.unwrap_or_default();
        let job: ContextJob =
            serde_json::from_str(&body).map_err(|e| RecordError(format!("unreadable job: {e}")))?;
        if let ContextJob::Notification(n) = &job {
            match self.gate.admit(n).await {
                Ok(Admission::Held) => {
                    tracing::info!(user = %n.user, id = %n.message.id, "held for a digest");
                    return Ok(());
                }
                Ok(Admission::Send) => {}
                Err(e) => return Err(RecordError(e.to_string())),
            }
        }
        let deliveries: Vec<(String, String, Value)> = match &job {
            ContextJob::Notification(n) => {
                let content = fmn_matrix::notification_content(n);
                n.addresses
                    .iter()
                    .map(|a| (n.delivery_key(a), a.clone(), content.clone()))
                    .collect()
            }
            ContextJob::Confirmation { confirmation: c } => vec![(
                format!(
                    "confirmation|{}|{}|{}|{}",
                    c.user,
                    c.context.as_str(),
                    c.address,
                    c.code.as_deref().or(c.link.as_deref()).unwrap_or_default()
                ),
                c.address.clone(),
                fmn_matrix::confirmation_content(c),
            )],
        };
        let mut failures = Vec::new();
        for (key, user_id, content) in deliveries {
            if let Err(e) = self.deliver_once(&key, &user_id, &content).await {
                failures.push(format!("{user_id}: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RecordError(failures.join("; ")))
        }
    }

    async fn deliver_once(
        &self,
        key: &str,
        user_id: &str,
        content: &Value,
    ) -> Result<(), RecordError> {
        let outcome = deliver_once(&self.deliveries, key, || async {
            match self
                .link
                .deliver(user_id, &fmn_matrix::txn_id(key), content)
                .await
            {
                Ok(()) => SendResult::Sent,
                Err(e) if e.is_permanent() => SendResult::Undeliverable(e.to_string()),
                Err(e) => SendResult::Temporary(e.to_string()),
            }
        })
        .await
        .map_err(|e| RecordError(e.to_string()))?;
        if outcome == Delivered::Sent {
            tracing::info!(key, user_id, "matrix message sent");
        }
        Ok(())
    }
}

/// The sender as deployed: DynamoDB delivery records and rooms, the real homeserver.
pub type DeployedSender =
    MatrixSender<fmn_store::DeliveryTable, DirectMessenger<DynamoRooms>, Option<fmn_digest::Gate>>;

/// Builds the deployed sender from an AWS configuration and [`Config`].
pub fn deployed(
    aws: &aws_config::SdkConfig,
    config: &Config,
) -> Result<DeployedSender, ConfigError> {
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    Ok(MatrixSender::new(
        fmn_store::DeliveryTable::new(dynamo.clone(), &config.deliveries_table),
        DirectMessenger::new(
            MatrixClient::new(config.matrix.clone())?,
            DynamoRooms::new(dynamo.clone(), &config.deliveries_table),
        ),
    )
    .with_gate(fmn_digest::Gate::from_table(
        dynamo,
        config.held_table.as_deref(),
        config.flood,
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use fmn_matrix::MatrixError;

    use super::*;

    #[derive(Default)]
    struct Homeserver {
        sent: Mutex<Vec<(String, String)>>,
        fail_next: Mutex<bool>,
    }

    impl MatrixLink for Homeserver {
        async fn deliver(&self, user_id: &str, txn_id: &str, _: &Value) -> Result<(), MatrixError> {
            if std::mem::take(&mut *self.fail_next.lock().unwrap()) {
                return Err(MatrixError::Temporary("503".into()));
            }
            self.sent
                .lock()
                .unwrap()
                .push((user_id.into(), txn_id.into()));
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

    fn job() -> String {
        let text = include_str!("../../../crates/fmn-queue/tests/fixtures/email-job.json");
        let mut job: Value = serde_json::from_str(text).unwrap();
        job["context"] = "matrix".into();
        job["addresses"] = serde_json::json!(["@alice:example.org"]);
        job.to_string()
    }

    #[tokio::test]
    async fn a_failed_delivery_is_retried_with_the_same_transaction_then_never_again() {
        let sender = MatrixSender::new(
            fmn_store::MemoryDeliveryLog::default(),
            Homeserver::default(),
        );
        *sender.link.fail_next.lock().unwrap() = true;
        let job = job();
        assert_eq!(
            sender
                .handle(event(&[&job, "nope"]))
                .await
                .batch_item_failures
                .len(),
            2
        );
        assert!(
            sender
                .handle(event(&[&job]))
                .await
                .batch_item_failures
                .is_empty()
        );
        assert!(
            sender
                .handle(event(&[&job]))
                .await
                .batch_item_failures
                .is_empty()
        );
        let sent = sender.link.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "@alice:example.org");
    }

    struct HoldAll(Mutex<Vec<String>>);

    impl Admit for HoldAll {
        async fn admit(
            &self,
            job: &fmn_queue::NotificationJob,
        ) -> Result<Admission, fmn_digest::DigestError> {
            self.0.lock().unwrap().push(job.message.id.clone());
            Ok(Admission::Held)
        }
    }

    #[tokio::test]
    async fn held_notifications_are_not_sent_but_confirmations_are() {
        let sender = MatrixSender::new(
            fmn_store::MemoryDeliveryLog::default(),
            Homeserver::default(),
        )
        .with_gate(HoldAll(Mutex::default()));
        let confirmation = r#"{"confirmation": {"user": "alice", "context": "matrix",
            "address": "@alice:example.org", "code": "482913", "expires_at": 1764000000}}"#;
        let response = sender.handle(event(&[&job(), confirmation])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(sender.gate.0.lock().unwrap().len(), 1);
        assert_eq!(sender.link.sent.lock().unwrap().len(), 1);
    }
}
