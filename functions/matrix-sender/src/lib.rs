//! The Matrix sender: the sender pipeline ([`fmn_delivery::Pipeline`]) with the Matrix
//! channel ([`MatrixChannel`]): for each job on the Matrix queue, one message into the
//! direct room with each confirmed Matrix user, exactly once in effect. A delivery record per
//! address is claimed before sending and marked sent after, and the message's transaction id
//! is derived from the same key, so a retry after a crash between sending and marking is
//! deduplicated by the homeserver too. Confirmation codes go the same way to the account
//! being confirmed.

use fmn_delivery::{Channel, Content, Item, Pipeline, SendError, Target};
use fmn_lambda::{ConfigError, Vars};
use fmn_matrix::{DirectMessenger, DynamoRooms, MatrixClient, MatrixConfig, MatrixLink};
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
    /// `FMN_PREFERENCES_TABLE` (optional): where a notification's addresses are checked
    /// again just before sending (one removed or disabled since matching is not sent to).
    pub preferences_table: Option<String>,
    /// `FMN_FLOOD_MAX` and `FMN_FLOOD_WINDOW_SECS`: the flood limit.
    pub flood: fmn_digest::FloodLimit,
}

impl Config {
    /// Reads the configuration from `vars` (the process environment on Lambda, the deployed
    /// function's environment locally).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        Ok(Config {
            deliveries_table: vars.required("FMN_DELIVERIES_TABLE")?,
            matrix: MatrixConfig::from_vars(vars.lookup())
                .map_err(|e| ConfigError::invalid(e.name, &e.problem))?,
            held_table: vars.get("FMN_HELD_TABLE"),
            preferences_table: vars.get("FMN_PREFERENCES_TABLE"),
            flood: fmn_digest::FloodLimit::from_vars(vars)?,
        })
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_env())
    }
}

/// Matrix's part of the pipeline: one message content per item, sent through `L` under a
/// transaction id derived from the delivery key.
#[derive(Debug)]
pub struct MatrixChannel<L>(L);

impl<L> MatrixChannel<L> {
    /// The link it sends through.
    pub fn link(&self) -> &L {
        &self.0
    }
}

impl<L: MatrixLink + Sync> Channel for MatrixChannel<L> {
    type Message = Value;
    const NAME: &'static str = "matrix message";

    fn render(&self, item: &Item<'_>) -> Value {
        match item.content() {
            Content::Confirmation(c) => fmn_matrix::confirmation_content(c),
            Content::Notification(n) => fmn_matrix::notification_content(&n),
        }
    }

    async fn send(&self, target: &Target<'_>, content: &Value) -> Result<(), SendError> {
        let txn_id = fmn_matrix::txn_id(target.key);
        match self.0.deliver(target.address, &txn_id, content).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }
}

/// The Matrix sender over delivery records `D`, link `L` and gate `G`.
pub type MatrixSender<
    D,
    L,
    G = fmn_digest::NoGate,
    A = fmn_delivery::Unchecked,
    H = fmn_delivery::NoHistory,
> = Pipeline<MatrixChannel<L>, D, G, A, H>;

/// A sender recording deliveries in `deliveries` and sending through `link`, everything at
/// once (add a gate with [`Pipeline::with_gate`]).
pub fn sender<D, L>(deliveries: D, link: L) -> MatrixSender<D, L> {
    Pipeline::new(MatrixChannel(link), deliveries)
}

/// The sender as deployed: DynamoDB delivery records and rooms, the real homeserver.
pub type DeployedSender = MatrixSender<
    fmn_store::DeliveryTable,
    DirectMessenger<DynamoRooms>,
    Option<fmn_digest::Gate>,
    Option<fmn_store::PreferenceTable>,
    fmn_store::HistoryLog,
>;

/// Builds the deployed sender from an AWS configuration and [`Config`].
pub fn deployed(
    aws: &aws_config::SdkConfig,
    config: &Config,
) -> Result<DeployedSender, fmn_matrix::MatrixError> {
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    Ok(sender(
        fmn_store::DeliveryTable::new(dynamo.clone(), &config.deliveries_table),
        DirectMessenger::new(
            MatrixClient::new(config.matrix.clone())?,
            DynamoRooms::new(dynamo.clone(), &config.deliveries_table),
        ),
    )
    .with_gate(fmn_digest::Gate::from_table(
        dynamo.clone(),
        config.held_table.as_deref(),
        config.flood,
    ))
    .with_addresses(
        (config.preferences_table.as_ref())
            .map(|t| fmn_store::PreferenceTable::new(dynamo.clone(), t)),
    )
    .with_history(fmn_store::HistoryLog::new(dynamo, &config.deliveries_table)))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use fmn_digest::{Admission, Admit};
    use fmn_matrix::MatrixError;
    use fmn_queue::test_util::sqs_event as event;

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

    fn job() -> String {
        let text = include_str!("../../../crates/fmn-queue/tests/fixtures/email-job.json");
        let mut job: Value = serde_json::from_str(text).unwrap();
        job["context"] = "matrix".into();
        job["addresses"] = serde_json::json!(["@alice:example.org"]);
        job.to_string()
    }

    fn new_sender() -> MatrixSender<fmn_store::MemoryDeliveryLog, Homeserver> {
        sender(
            fmn_store::MemoryDeliveryLog::default(),
            Homeserver::default(),
        )
    }

    #[tokio::test]
    async fn a_failed_delivery_is_retried_with_the_same_transaction_then_never_again() {
        let sender = new_sender();
        *sender.channel().link().fail_next.lock().unwrap() = true;
        let job = job();
        assert_eq!(
            sender
                .handle(event(&[job.as_str(), "nope"]))
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
        let sent = sender.channel().link().sent.lock().unwrap();
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
        let sender = new_sender().with_gate(HoldAll(Mutex::default()));
        let confirmation = r#"{"confirmation": {"user": "alice", "context": "matrix",
            "address": "@alice:example.org", "code": "482913", "expires_at": 1764000000}}"#;
        let response = sender.handle(event(&[job().as_str(), confirmation])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(sender.gate().0.lock().unwrap().len(), 1);
        assert_eq!(sender.channel().link().sent.lock().unwrap().len(), 1);
    }
}
