//! What the webhook sender reads and writes besides the webhook itself: secrets, failure
//! counters, disabling an address, and telling its owner.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;
use fmn_delivery::AddressDisabler;
use fmn_queue::{NoticeJob, SqsQueue};
use fmn_rules::{ContextKind, Preferences};
use fmn_store::PreferenceTable;

use crate::Config;

/// Secrets, failure counters and disabling, behind one trait so the channel is tested
/// without DynamoDB.
pub trait Accounts {
    /// The secret of `user`'s webhook `address` (empty if it has none); `None` when the
    /// address is gone, or not deliverable (unless `unconfirmed_ok`, for confirmations).
    /// Only for sends the batch's address check did not cover (a notification's secret
    /// comes with the check, [`fmn_delivery::Target::secret`]).
    fn secret(
        &self,
        user: &str,
        address: &str,
        unconfirmed_ok: bool,
    ) -> impl Future<Output = anyhow::Result<Option<String>>> + Send;
    /// Counts one more consecutive failure; returns the count.
    fn record_failure(
        &self,
        user: &str,
        address: &str,
    ) -> impl Future<Output = anyhow::Result<u64>> + Send;
    /// Resets the failure count after a success.
    fn clear_failures(
        &self,
        user: &str,
        address: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Disables the address (`Address.disabled = reason`) and tells its owner.
    fn disable(
        &self,
        user: &str,
        address: &str,
        reason: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The deployed accounts: DynamoDB, and the owner's email or feed queue to tell them.
#[derive(Debug, Clone)]
pub struct DeployedAccounts {
    deliveries_table: String,
    dynamo: aws_sdk_dynamodb::Client,
    prefs: PreferenceTable,
    disabler: AddressDisabler,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn failures_key(user: &str, address: &str) -> String {
    format!("webhook-failures|{user}|{address}")
}

/// The notices telling the owner (`prefs`) that their webhook `address` was disabled
/// ([`fmn_delivery::disabled_notices`], shared with the other senders that disable).
pub fn notices(prefs: &Preferences, address: &str, reason: &str, now: u64) -> Vec<NoticeJob> {
    fmn_delivery::disabled_notices(prefs, ContextKind::Webhook, address, reason, now)
}

impl DeployedAccounts {
    /// From the function's configuration.
    pub fn new(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
        let sqs = fmn_calls::client!(aws_sdk_sqs, aws);
        let queue = |url: &Option<String>| url.as_ref().map(|u| SqsQueue::new(sqs.clone(), u));
        let prefs = PreferenceTable::new(dynamo.clone(), &config.common.preferences_table);
        DeployedAccounts {
            deliveries_table: config.common.deliveries_table.clone(),
            disabler: AddressDisabler::new(
                prefs.clone(),
                queue(&config.common.email_queue_url),
                queue(&config.common.feed_queue_url),
            ),
            prefs,
            dynamo,
        }
    }
}

impl Accounts for DeployedAccounts {
    async fn secret(
        &self,
        user: &str,
        address: &str,
        unconfirmed_ok: bool,
    ) -> anyhow::Result<Option<String>> {
        let Some(prefs) = self.prefs.get(user).await? else {
            return Ok(None);
        };
        Ok(prefs
            .contexts
            .get(&ContextKind::Webhook)
            .and_then(|c| c.addresses.iter().find(|a| a.address == address))
            .filter(|a| unconfirmed_ok || a.deliverable())
            .map(|a| a.secret.clone().unwrap_or_default()))
    }

    async fn record_failure(&self, user: &str, address: &str) -> anyhow::Result<u64> {
        let out = self
            .dynamo
            .update_item()
            .table_name(&self.deliveries_table)
            .key("pk", AttributeValue::S(failures_key(user, address)))
            .update_expression("ADD failures :one SET expires_at = :exp")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":exp",
                AttributeValue::N((now() + 7 * 86_400).to_string()),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .context("counting a webhook failure")?;
        Ok(
            match out.attributes.as_ref().and_then(|a| a.get("failures")) {
                Some(AttributeValue::N(n)) => n.parse().unwrap_or(1),
                _ => 1,
            },
        )
    }

    async fn clear_failures(&self, user: &str, address: &str) -> anyhow::Result<()> {
        self.dynamo
            .delete_item()
            .table_name(&self.deliveries_table)
            .key("pk", AttributeValue::S(failures_key(user, address)))
            .send()
            .await
            .context("clearing webhook failures")?;
        Ok(())
    }

    async fn disable(&self, user: &str, address: &str, reason: &str) -> anyhow::Result<()> {
        Ok(self
            .disabler
            .disable(ContextKind::Webhook, user, address, reason)
            .await?)
    }
}
