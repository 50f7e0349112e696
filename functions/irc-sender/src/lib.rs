//! The IRC sender: for each job on the IRC queue, one PRIVMSG line (split if long) to each
//! confirmed nick, exactly once in effect. A delivery record per (message, user, context,
//! nick) is claimed before sending and marked sent once the server acknowledged the lines,
//! so a redelivered job sends nothing twice. Confirmation codes go the same way to the nick
//! being confirmed, the only thing ever sent to an unconfirmed nick.
//!
//! One [`IrcClient`] connection serves a whole batch, and the next warm invocations while it
//! stays fresh.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_digest::{Admission, Admit};
use fmn_irc::{IrcClient, IrcConfig, IrcLink, Outcome};
use fmn_queue::{ContextJob, RecordError};
use fmn_store::{Delivered, DeliveryLog, SendResult, deliver_once};

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_DELIVERIES_TABLE`.
    pub deliveries_table: String,
    /// The IRC network (`FMN_IRC_*`, see [`IrcConfig::from_vars`]).
    pub irc: IrcConfig,
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
    /// An IRC setting is wrong.
    #[error(transparent)]
    Irc(#[from] fmn_irc::ConfigError),
}

impl Config {
    /// Reads the configuration through `var` (e.g. `|n| std::env::var(n).ok()`, or a deployed
    /// function's environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Ok(Config {
            deliveries_table: var("FMN_DELIVERIES_TABLE")
                .ok_or(ConfigError::Missing("FMN_DELIVERIES_TABLE"))?,
            irc: IrcConfig::from_vars(&var)?,
            held_table: var("FMN_HELD_TABLE").filter(|t| !t.is_empty()),
            flood: fmn_digest::FloodLimit::from_vars(&var).map_err(ConfigError::Flood)?,
        })
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }
}

/// The IRC sender's state.
#[derive(Debug)]
pub struct IrcSender<D, L, G = fmn_digest::NoGate> {
    deliveries: D,
    link: L,
    gate: G,
}

impl<D: DeliveryLog + Sync, L: IrcLink + Sync> IrcSender<D, L> {
    /// A sender recording deliveries in `deliveries` and sending through `link`, everything
    /// at once.
    pub fn new(deliveries: D, link: L) -> Self {
        IrcSender {
            deliveries,
            link,
            gate: fmn_digest::NoGate,
        }
    }
}

impl<D: DeliveryLog + Sync, L: IrcLink + Sync, G: Admit + Sync> IrcSender<D, L, G> {
    /// Holds digests and floods with `gate`.
    pub fn with_gate<H: Admit + Sync>(self, gate: H) -> IrcSender<D, L, H> {
        IrcSender {
            deliveries: self.deliveries,
            link: self.link,
            gate,
        }
    }

    /// The link it sends through.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// Handles one SQS batch from the IRC queue.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        fmn_queue::process_batch(event, |record| self.handle_record(record)).await
    }

    async fn handle_record(&self, record: SqsMessage) -> Result<(), RecordError> {
        let body = record.body.unwrap_or_default();
        // A job we cannot read will never become readable: fail it, and after the queue's
        // receive limit SQS moves it to the DLQ where an operator sees it.
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
        let deliveries: Vec<(String, String, String)> = match &job {
            ContextJob::Notification(n) => {
                let text = fmn_irc::notification_text(n);
                n.addresses
                    .iter()
                    .map(|a| (n.delivery_key(a), a.clone(), text.clone()))
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
                fmn_irc::confirmation_text(c),
            )],
        };
        let mut failures = Vec::new();
        for (key, nick, text) in deliveries {
            if let Err(e) = self.deliver_once(&key, &nick, &text).await {
                failures.push(format!("{nick}: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RecordError(failures.join("; ")))
        }
    }

    async fn deliver_once(&self, key: &str, nick: &str, text: &str) -> Result<(), RecordError> {
        let mut lines = 0;
        let sent_lines = &mut lines;
        let outcome = deliver_once(&self.deliveries, key, || async move {
            match self.link.deliver(nick, text).await {
                Ok(Outcome::Delivered { lines }) => {
                    *sent_lines = lines;
                    SendResult::Sent
                }
                // IRC keeps nothing for people who are not online, and retrying for the
                // hours someone may be away would only delay everything behind it.
                Ok(Outcome::NoSuchNick) => SendResult::Undeliverable("nick not online".into()),
                Err(e) if e.is_permanent() => SendResult::Undeliverable(e.to_string()),
                Err(e) => SendResult::Temporary(e.to_string()),
            }
        })
        .await
        .map_err(|e| RecordError(e.to_string()))?;
        if outcome == Delivered::Sent {
            tracing::info!(key, nick, lines, "IRC message sent");
        }
        Ok(())
    }
}

/// The sender as deployed: DynamoDB delivery records, a real IRC connection.
pub type DeployedSender = IrcSender<fmn_store::DeliveryTable, IrcClient, Option<fmn_digest::Gate>>;

/// Builds the deployed sender from an AWS configuration and [`Config`].
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> DeployedSender {
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    IrcSender::new(
        fmn_store::DeliveryTable::new(dynamo.clone(), &config.deliveries_table),
        IrcClient::new(config.irc.clone()),
    )
    .with_gate(fmn_digest::Gate::from_table(
        dynamo,
        config.held_table.as_deref(),
        config.flood,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use fmn_irc::IrcError;

    use super::*;

    #[derive(Default)]
    struct Wire {
        sent: Mutex<Vec<(String, String)>>,
        down: Mutex<bool>,
    }

    impl IrcLink for Wire {
        async fn deliver(&self, nick: &str, text: &str) -> Result<Outcome, IrcError> {
            if !fmn_irc::valid_nick(nick) {
                return Err(IrcError::InvalidNick(nick.into()));
            }
            if *self.down.lock().unwrap() {
                return Err(IrcError::Connect("refused".into()));
            }
            self.sent.lock().unwrap().push((nick.into(), text.into()));
            Ok(Outcome::Delivered { lines: 1 })
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

    fn job(nick: &str) -> String {
        let text = include_str!("../../../crates/fmn-queue/tests/fixtures/email-job.json");
        let mut job: serde_json::Value = serde_json::from_str(text).unwrap();
        job["context"] = "irc".into();
        job["addresses"] = serde_json::json!([nick]);
        job.to_string()
    }

    #[tokio::test]
    async fn redelivery_sends_once_and_a_bad_record_fails_alone() {
        let sender = IrcSender::new(fmn_store::MemoryDeliveryLog::default(), Wire::default());
        let good = job("alice");
        let response = sender.handle(event(&[&good, "{", &good])).await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["r1"]);
        sender.handle(event(&[&good])).await;
        assert_eq!(sender.link.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn server_down_fails_the_record_and_the_retry_delivers() {
        let sender = IrcSender::new(fmn_store::MemoryDeliveryLog::default(), Wire::default());
        *sender.link.down.lock().unwrap() = true;
        let good = job("alice");
        assert_eq!(
            sender
                .handle(event(&[&good]))
                .await
                .batch_item_failures
                .len(),
            1
        );
        *sender.link.down.lock().unwrap() = false;
        assert!(
            sender
                .handle(event(&[&good]))
                .await
                .batch_item_failures
                .is_empty()
        );
        assert_eq!(sender.link.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_impossible_nick_is_not_retried_and_a_confirmation_goes_to_its_nick() {
        let sender = IrcSender::new(fmn_store::MemoryDeliveryLog::default(), Wire::default());
        let bad = job("bad nick\r\nQUIT");
        assert!(
            sender
                .handle(event(&[&bad]))
                .await
                .batch_item_failures
                .is_empty()
        );
        let confirmation = r#"{"confirmation": {"user": "alice", "context": "irc",
            "address": "alice_", "code": "482913", "expires_at": 1764000000}}"#;
        assert!(
            sender
                .handle(event(&[confirmation, confirmation]))
                .await
                .batch_item_failures
                .is_empty()
        );
        let sent = sender.link.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "alice_");
        assert!(sent[0].1.contains("482913"), "{}", sent[0].1);
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
        let sender = IrcSender::new(fmn_store::MemoryDeliveryLog::default(), Wire::default())
            .with_gate(HoldAll(Mutex::default()));
        let confirmation = r#"{"confirmation": {"user": "alice", "context": "irc",
            "address": "alice", "code": "482913", "expires_at": 1764000000}}"#;
        let response = sender.handle(event(&[&job("alice"), confirmation])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(sender.gate.0.lock().unwrap().len(), 1);
        let sent = sender.link.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].1.contains("482913"), "{}", sent[0].1);
    }
}
