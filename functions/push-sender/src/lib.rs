//! The push sender: the sender pipeline ([`fmn_delivery::Pipeline`]) with the push channel
//! ([`PushChannel`]): each notification on the push queue is POSTed once in effect to each
//! of its addresses (UnifiedPush endpoints, ntfy topics) by [`fmn_push::PushClient`], after
//! the digest and flood gate and a fresh look at which addresses are still deliverable.
//!
//! - 2xx: delivered.
//! - 429, 5xx, 408, no answer: the record fails and SQS delivers it again after the push
//!   queue's visibility timeout (the claim is released, so the retry sends it).
//! - 404 or 410 (gone), or a target the guard refuses: the address is disabled in the
//!   user's preferences and its owner told ([`fmn_delivery::AddressDisabler`], as the
//!   webhook sender does); never retried.
//! - another 4xx: recorded as undeliverable, not retried.
//!
//! A confirmation job pushes its code to the (unconfirmed) endpoint and nothing else.

pub use fmn_delivery::HttpSenderConfig;
use fmn_delivery::{AddressDisabler, Channel, Content, Item, Pipeline, SendError, Target};
use fmn_lambda::{ConfigError, Vars};
use fmn_push::{Push, PushClient, PushError};
use fmn_rules::ContextKind;

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// The settings shared with the webhook sender ([`HttpSenderConfig`]); the switches
    /// are `FMN_PUSH_ALLOW_PRIVATE` and `FMN_PUSH_ALLOW_PORTS`.
    pub common: HttpSenderConfig,
}

impl Config {
    /// Reads the configuration from `vars` (the process environment on Lambda, the deployed
    /// function's environment locally).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        Ok(Config {
            common: HttpSenderConfig::from_vars(vars, "PUSH")?,
        })
    }
}

/// Something that POSTs a push ([`PushClient`] deployed).
pub trait Pusher {
    /// POSTs `push` to `url`.
    fn push(&self, url: &str, push: &Push) -> impl Future<Output = Result<(), PushError>> + Send;
}

impl Pusher for PushClient {
    async fn push(&self, url: &str, push: &Push) -> Result<(), PushError> {
        self.post(url, push).await
    }
}

/// Disables an address and tells its owner ([`AddressDisabler`] deployed).
pub trait Disable {
    /// Disables `user`'s push address `address` for `reason`.
    fn disable(
        &self,
        user: &str,
        address: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

impl Disable for AddressDisabler {
    async fn disable(&self, user: &str, address: &str, reason: &str) -> Result<(), String> {
        AddressDisabler::disable(self, ContextKind::Push, user, address, reason)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The push context's part of the pipeline: one POST per address, a gone endpoint
/// disabled.
#[derive(Debug)]
pub struct PushChannel<P, X> {
    pusher: P,
    disabler: X,
}

impl<P, X> PushChannel<P, X> {
    /// A channel pushing with `pusher`, disabling gone endpoints with `disabler`.
    pub fn new(pusher: P, disabler: X) -> Self {
        PushChannel { pusher, disabler }
    }

    /// The pusher (tests look at what it sent).
    pub fn pusher(&self) -> &P {
        &self.pusher
    }
}

impl<P: Pusher + Sync, X: Disable + Sync> Channel for PushChannel<P, X> {
    type Message = Push;
    const NAME: &'static str = "push";

    fn accepts(&self, item: &Item<'_>) -> Result<(), String> {
        match item {
            Item::Notification(job) if job.context != ContextKind::Push => {
                Err(format!("a {} job on the push queue", job.context.as_str()))
            }
            _ => Ok(()),
        }
    }

    fn render(&self, item: &Item<'_>) -> Push {
        match item.content() {
            Content::Confirmation(c) => Push::confirmation(c),
            Content::Notification(n) => Push::notification(&n),
        }
    }

    async fn send(&self, target: &Target<'_>, push: &Push) -> Result<(), SendError> {
        let e = match self.pusher.push(target.address, push).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let reason = match &e {
            PushError::Gone(_) | PushError::Refused(_) => e.to_string(),
            PushError::Rejected(_) => return Err(SendError::Permanent(e.to_string())),
            PushError::Throttled(after) => {
                tracing::info!(address = target.address, retry_after = ?after,
                    "push throttled: SQS delivers the job again after the visibility timeout");
                return Err(SendError::Temporary(e.to_string()));
            }
            PushError::Status(_) | PushError::Transport(_) => {
                return Err(SendError::Temporary(e.to_string()));
            }
        };
        // Gone or refused: nothing will ever reach it. A confirmation's address is not in
        // use yet; a notification's is disabled and its owner told.
        if !matches!(target.item, Item::Confirmation(_)) {
            let user = target.item.user();
            self.disabler
                .disable(user, target.address, &reason)
                .await
                .map_err(SendError::Temporary)?;
            tracing::warn!(user, address = target.address, %reason, "push endpoint disabled");
        }
        Err(SendError::Permanent(reason))
    }
}

/// The push sender over delivery records `D`, pusher `P`, disabler `X`, gate `G`,
/// address book `A` and history `H`.
pub type PushSender<
    D,
    P,
    X,
    G = fmn_digest::NoGate,
    A = fmn_delivery::Unchecked,
    H = fmn_delivery::NoHistory,
> = Pipeline<PushChannel<P, X>, D, G, A, H>;

/// The sender as deployed.
pub type DeployedSender = PushSender<
    fmn_store::DeliveryTable,
    PushClient,
    AddressDisabler,
    Option<fmn_digest::Gate>,
    fmn_store::PreferenceTable,
    fmn_store::HistoryLog,
>;

/// Builds the deployed sender.
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> anyhow::Result<DeployedSender> {
    let config = &config.common;
    let client = PushClient::new(config.allow_private, config.allow_ports.clone())?;
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    let sqs = fmn_calls::client!(aws_sdk_sqs, aws);
    let queue = |url: &Option<String>| {
        url.as_ref()
            .map(|u| fmn_queue::SqsQueue::new(sqs.clone(), u))
    };
    let prefs = fmn_store::PreferenceTable::new(dynamo.clone(), &config.preferences_table);
    let disabler = AddressDisabler::new(
        prefs.clone(),
        queue(&config.email_queue_url),
        queue(&config.feed_queue_url),
    );
    let gate =
        fmn_digest::Gate::from_table(dynamo.clone(), config.held_table.as_deref(), config.flood);
    let history = fmn_store::HistoryLog::new(dynamo.clone(), &config.deliveries_table);
    Ok(Pipeline::new(
        PushChannel::new(client, disabler),
        fmn_store::DeliveryTable::new(dynamo, &config.deliveries_table),
    )
    .with_gate(gate)
    .with_addresses(prefs)
    .with_history(history))
}

#[cfg(test)]
mod tests;
