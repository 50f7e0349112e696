//! The Matrix sender: for each job on the Matrix queue, one message into the direct room
//! with each confirmed Matrix user, exactly once in effect. A delivery record per (message,
//! user, context, address) is claimed before sending and marked sent after, and the
//! message's transaction id is derived from the same key, so a retry after a crash between
//! sending and marking is deduplicated by the homeserver too. Confirmation codes go the same
//! way to the account being confirmed.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_matrix::{DirectMessenger, DynamoRooms, MatrixClient, MatrixConfig, MatrixLink};
use fmn_queue::{ContextJob, RecordError};
use fmn_store::Claim;
use serde_json::Value;

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
    /// `FMN_DELIVERIES_TABLE` (delivery records and remembered rooms).
    pub deliveries_table: String,
    /// The homeserver (`FMN_MATRIX_HOMESERVER`, `FMN_MATRIX_ACCESS_TOKEN`).
    pub matrix: MatrixConfig,
}

/// A required setting is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is missing.
    #[error("missing environment variable {0}")]
    Missing(&'static str),
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
        })
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }
}

/// The Matrix sender's state.
#[derive(Debug)]
pub struct MatrixSender<D, L> {
    deliveries: D,
    link: L,
}

impl<D: DeliveryLog + Sync, L: MatrixLink + Sync> MatrixSender<D, L> {
    /// A sender recording deliveries in `deliveries` and sending through `link`.
    pub fn new(deliveries: D, link: L) -> Self {
        MatrixSender { deliveries, link }
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
        let store = |e: anyhow::Error| RecordError(e.to_string());
        match self.deliveries.claim(key).await.map_err(store)? {
            Claim::AlreadySent => {
                tracing::info!(key, "already sent; skipping redelivered job");
                return Ok(());
            }
            Claim::InProgress => return Err(RecordError("another attempt is sending".into())),
            Claim::Acquired => {}
        }
        match self
            .link
            .deliver(user_id, &fmn_matrix::txn_id(key), content)
            .await
        {
            Ok(()) => {
                self.deliveries.mark_sent(key).await.map_err(store)?;
                tracing::info!(key, user_id, "matrix message sent");
                Ok(())
            }
            Err(e) if e.is_permanent() => {
                self.deliveries.mark_sent(key).await.map_err(store)?;
                tracing::error!(key, error = %e, "matrix delivery refused permanently");
                Ok(())
            }
            Err(e) => {
                if let Err(release) = self.deliveries.release(key).await {
                    tracing::warn!(key, error = %release, "could not release claim");
                }
                Err(RecordError(e.to_string()))
            }
        }
    }
}

/// The sender as deployed: DynamoDB delivery records and rooms, the real homeserver.
pub type DeployedSender = MatrixSender<fmn_store::DeliveryTable, DirectMessenger<DynamoRooms>>;

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
            DynamoRooms::new(dynamo, &config.deliveries_table),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use fmn_matrix::MatrixError;

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
        let sender = MatrixSender::new(MemoryLog::default(), Homeserver::default());
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
}
