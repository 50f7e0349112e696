//! The webhook sender: the sender pipeline ([`fmn_delivery::Pipeline`]) with the webhook
//! channel ([`WebhookChannel`]): each notification on the webhook queue is POSTed to each of
//! its addresses (URLs), signed with the address's secret, once in effect. A delivery that
//! still fails after the client's bounded retries fails the record, so SQS retries it later
//! and finally moves it to the DLQ; after [`Config::max_failures`] consecutive failed
//! deliveries (or one refusal) the address is disabled in the user's preferences and its
//! owner told by a notice job ([`fmn_queue::NoticeJob`]) on the owner's email queue (to a
//! confirmed address), else feed queue, delivered there like any other notification. A
//! confirmation job POSTs its code to the (unconfirmed) URL and nothing else.

pub use fmn_delivery::HttpSenderConfig;
use fmn_delivery::{Channel, Content, Item, Pipeline, SendError, Target};
use fmn_lambda::{ConfigError, Vars};
use fmn_rules::ContextKind;
use fmn_webhook::{Payload, PostError};

mod accounts;

pub use accounts::{Accounts, DeployedAccounts, notices};

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// The settings shared with the push sender ([`HttpSenderConfig`]); the switches are
    /// `FMN_WEBHOOK_ALLOW_PRIVATE` and `FMN_WEBHOOK_ALLOW_PORTS`.
    pub common: HttpSenderConfig,
    /// `FMN_WEBHOOK_MAX_FAILURES` (default 5): consecutive failed deliveries before the
    /// address is disabled.
    pub max_failures: u64,
}

impl Config {
    /// Reads the configuration from `vars` (the process environment on Lambda, the deployed
    /// function's environment locally).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        Ok(Config {
            common: HttpSenderConfig::from_vars(vars, "WEBHOOK")?,
            max_failures: vars.parse_or("FMN_WEBHOOK_MAX_FAILURES", 5)?,
        })
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_env())
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

/// The webhook's part of the pipeline: a signed POST per address, counting consecutive
/// failures and disabling the address after too many.
#[derive(Debug)]
pub struct WebhookChannel<A, P> {
    accounts: A,
    poster: P,
    max_failures: u64,
}

impl<A, P> WebhookChannel<A, P> {
    /// A channel; `max_failures` consecutive failed deliveries disable an address.
    pub fn new(accounts: A, poster: P, max_failures: u64) -> Self {
        WebhookChannel {
            accounts,
            poster,
            max_failures,
        }
    }
}

fn temporary(e: anyhow::Error) -> SendError {
    SendError::Temporary(format!("{e:#}"))
}

impl<A: Accounts + Sync, P: Poster + Sync> Channel for WebhookChannel<A, P> {
    type Message = Payload;
    const NAME: &'static str = "webhook";

    fn accepts(&self, item: &Item<'_>) -> Result<(), String> {
        match item {
            Item::Notification(job) if job.context != ContextKind::Webhook => Err(format!(
                "a {} job on the webhook queue",
                job.context.as_str()
            )),
            _ => Ok(()),
        }
    }

    fn render(&self, item: &Item<'_>) -> Payload {
        match item.content() {
            Content::Confirmation(c) => Payload::from(c),
            Content::Notification(n) => Payload::from(&*n),
        }
    }

    async fn send(&self, target: &Target<'_>, payload: &Payload) -> Result<(), SendError> {
        let user = target.item.user();
        let address = target.address;
        let confirmation = matches!(target.item, Item::Confirmation(_));
        // A notification's secret came with the batch's address check (issue 18); what the
        // check did not cover (a confirmation) is read here.
        let read;
        let secret = match target.secret {
            Some(secret) => secret.expose(),
            None => {
                read = match self.accounts.secret(user, address, confirmation).await {
                    Ok(Some(secret)) => secret,
                    // A confirmation goes to an address being added, secret or not.
                    Ok(None) if confirmation => String::new(),
                    Ok(None) => return Err(SendError::Gone("address gone or disabled".into())),
                    Err(e) => return Err(temporary(e)),
                };
                read.as_str()
            }
        };
        let e = match self.poster.post(address, secret.as_bytes(), payload).await {
            Ok(()) => {
                if !confirmation && let Err(e) = self.accounts.clear_failures(user, address).await {
                    tracing::warn!(user, address, error = %format!("{e:#}"), "could not clear the failure count");
                }
                return Ok(());
            }
            Err(e) => e,
        };
        let permanent = e.is_permanent();
        if confirmation {
            return Err(if permanent {
                SendError::Permanent(e.to_string())
            } else {
                SendError::Temporary(e.to_string())
            });
        }
        let failures = self
            .accounts
            .record_failure(user, address)
            .await
            .map_err(temporary)?;
        if permanent || failures >= self.max_failures {
            let reason = if permanent {
                format!("refused: {e}")
            } else {
                format!("{failures} consecutive failed deliveries, last: {e}")
            };
            self.accounts
                .disable(user, address, &reason)
                .await
                .map_err(temporary)?;
            tracing::warn!(user, address, %reason, "webhook disabled");
            // Nothing more will be sent there: never retried.
            return Err(SendError::Permanent(reason));
        }
        Err(SendError::Temporary(e.to_string()))
    }
}

/// The webhook sender over delivery records `D`, accounts `A`, poster `P`, gate `G`,
/// history `H` and address book `B` (whose check supplies the secrets).
pub type WebhookSender<
    D,
    A,
    P,
    G = fmn_digest::NoGate,
    H = fmn_delivery::NoHistory,
    B = fmn_delivery::Unchecked,
> = Pipeline<WebhookChannel<A, P>, D, G, B, H>;

/// The sender as deployed.
pub type DeployedSender = WebhookSender<
    fmn_store::DeliveryTable,
    DeployedAccounts,
    fmn_webhook::WebhookClient,
    Option<fmn_digest::Gate>,
    fmn_store::HistoryLog,
    fmn_store::PreferenceTable,
>;

/// Builds the deployed sender.
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> anyhow::Result<DeployedSender> {
    let client = fmn_webhook::WebhookClient::new(
        config.common.allow_private,
        fmn_webhook::RetryPolicy::default(),
    )?
    .with_ports(config.common.allow_ports.clone());
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    let gate = fmn_digest::Gate::from_table(
        dynamo.clone(),
        config.common.held_table.as_deref(),
        config.common.flood,
    );
    let channel = WebhookChannel::new(
        DeployedAccounts::new(aws, config),
        client,
        config.max_failures,
    );
    let history = fmn_store::HistoryLog::new(dynamo.clone(), &config.common.deliveries_table);
    // The batch's address check reads each address's secret with it: one `BatchGetItem`
    // for the batch instead of a `GetItem` per send.
    let book = fmn_store::PreferenceTable::new(dynamo.clone(), &config.common.preferences_table);
    Ok(Pipeline::new(
        channel,
        fmn_store::DeliveryTable::new(dynamo, &config.common.deliveries_table),
    )
    .with_gate(gate)
    .with_addresses(book)
    .with_history(history))
}

#[cfg(test)]
mod tests;
