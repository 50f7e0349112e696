//! The IRC sender: the sender pipeline ([`fmn_delivery::Pipeline`]) with the IRC channel
//! ([`IrcChannel`]): for each job on the IRC queue, one PRIVMSG line (split if long) to each
//! confirmed nick, exactly once in effect (a delivery record per nick is claimed before
//! sending and marked sent once the server acknowledged the lines). Confirmation codes go
//! the same way to the nick being confirmed, the only thing ever sent to an unconfirmed nick.
//!
//! One [`IrcClient`] connection serves a whole batch, and the next warm invocations while it
//! stays fresh.

use fmn_delivery::{Channel, Content, Item, Pipeline, SendError, Target};
use fmn_irc::{IrcClient, IrcConfig, IrcLink, Outcome};
use fmn_lambda::{ConfigError, Vars};

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
            irc: IrcConfig::from_vars(vars.lookup())
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

/// IRC's part of the pipeline: one sanitized text per item, private messages through `L`.
#[derive(Debug)]
pub struct IrcChannel<L>(L);

impl<L> IrcChannel<L> {
    /// The link it sends through.
    pub fn link(&self) -> &L {
        &self.0
    }
}

impl<L: IrcLink + Sync> Channel for IrcChannel<L> {
    type Message = String;
    const NAME: &'static str = "IRC message";

    fn render(&self, item: &Item<'_>) -> String {
        match item.content() {
            Content::Confirmation(c) => fmn_irc::confirmation_text(c),
            Content::Notification(n) => fmn_irc::notification_text(&n),
        }
    }

    async fn send(&self, target: &Target<'_>, text: &String) -> Result<(), SendError> {
        match self.0.deliver(target.address, text).await {
            Ok(Outcome::Delivered { lines }) => {
                tracing::debug!(nick = target.address, lines, "IRC lines acknowledged");
                Ok(())
            }
            // IRC keeps nothing for people who are not online, and retrying for the hours
            // someone may be away would only delay everything behind it.
            Ok(Outcome::NoSuchNick) => Err(SendError::Permanent("nick not online".into())),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }
}

/// The IRC sender over delivery records `D`, link `L` and gate `G`.
pub type IrcSender<
    D,
    L,
    G = fmn_digest::NoGate,
    A = fmn_delivery::Unchecked,
    H = fmn_delivery::NoHistory,
> = Pipeline<IrcChannel<L>, D, G, A, H>;

/// A sender recording deliveries in `deliveries` and sending through `link`, everything at
/// once (add a gate with [`Pipeline::with_gate`]).
pub fn sender<D, L>(deliveries: D, link: L) -> IrcSender<D, L> {
    Pipeline::new(IrcChannel(link), deliveries)
}

/// The sender as deployed: DynamoDB delivery records, a real IRC connection.
pub type DeployedSender = IrcSender<
    fmn_store::DeliveryTable,
    IrcClient,
    Option<fmn_digest::Gate>,
    Option<fmn_store::PreferenceTable>,
    fmn_store::HistoryLog,
>;

/// Builds the deployed sender from an AWS configuration and [`Config`].
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> DeployedSender {
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    sender(
        fmn_store::DeliveryTable::new(dynamo.clone(), &config.deliveries_table),
        IrcClient::new(config.irc.clone()),
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
    .with_history(fmn_store::HistoryLog::new(dynamo, &config.deliveries_table))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use fmn_digest::{Admission, Admit};
    use fmn_irc::IrcError;
    use fmn_queue::test_util::{failed_ids, sqs_event as event};

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

    fn job(nick: &str) -> String {
        let text = include_str!("../../../crates/fmn-queue/tests/fixtures/email-job.json");
        let mut job: serde_json::Value = serde_json::from_str(text).unwrap();
        job["context"] = "irc".into();
        job["addresses"] = serde_json::json!([nick]);
        job.to_string()
    }

    fn new_sender() -> IrcSender<fmn_store::MemoryDeliveryLog, Wire> {
        sender(fmn_store::MemoryDeliveryLog::default(), Wire::default())
    }

    #[tokio::test]
    async fn redelivery_sends_once_and_a_bad_record_fails_alone() {
        let sender = new_sender();
        let good = job("alice");
        let response = sender.handle(event(&[good.as_str(), "{", &good])).await;
        assert_eq!(failed_ids(&response), ["r1"]);
        sender.handle(event(&[&good])).await;
        assert_eq!(sender.channel().link().sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn server_down_fails_the_record_and_the_retry_delivers() {
        let sender = new_sender();
        *sender.channel().link().down.lock().unwrap() = true;
        let good = job("alice");
        assert_eq!(
            sender
                .handle(event(&[&good]))
                .await
                .batch_item_failures
                .len(),
            1
        );
        *sender.channel().link().down.lock().unwrap() = false;
        assert!(
            sender
                .handle(event(&[&good]))
                .await
                .batch_item_failures
                .is_empty()
        );
        assert_eq!(sender.channel().link().sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_impossible_nick_is_not_retried_and_a_confirmation_goes_to_its_nick() {
        let sender = new_sender();
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
        let sent = sender.channel().link().sent.lock().unwrap();
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
        let sender = new_sender().with_gate(HoldAll(Mutex::default()));
        let confirmation = r#"{"confirmation": {"user": "alice", "context": "irc",
            "address": "alice", "code": "482913", "expires_at": 1764000000}}"#;
        let response = sender
            .handle(event(&[job("alice").as_str(), confirmation]))
            .await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(sender.gate().0.lock().unwrap().len(), 1);
        let sent = sender.channel().link().sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].1.contains("482913"), "{}", sent[0].1);
    }
}
