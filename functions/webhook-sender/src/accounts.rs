//! What the webhook sender reads and writes besides the webhook itself.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;
use fmn_email::Mailer as _;
use fmn_rules::{ContextKind, Preferences};
use fmn_store::{Claim, DeliveryTable, PreferenceTable, StoreError};

use crate::Config;

/// Delivery records, secrets, failure counters and disabling, behind one trait so the
/// handler is tested without DynamoDB.
pub trait Accounts {
    /// Claims a delivery before sending.
    fn claim(&self, key: &str) -> impl Future<Output = anyhow::Result<Claim>> + Send;
    /// Records a delivery as sent.
    fn mark_sent(&self, key: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Gives a claim up after a failed send.
    fn release(&self, key: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// The secret of `user`'s webhook `address` (empty if it has none); `None` when the
    /// address is gone, or not deliverable (unless `unconfirmed_ok`, for confirmations).
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

/// The deployed accounts: DynamoDB, and SES or the feed to tell owners.
#[derive(Debug, Clone)]
pub struct DeployedAccounts {
    deliveries: DeliveryTable,
    deliveries_table: String,
    dynamo: aws_sdk_dynamodb::Client,
    prefs: PreferenceTable,
    mailer: Option<fmn_email::SesMailer>,
    feed: Option<fmn_feed::FeedStore>,
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

impl DeployedAccounts {
    /// From the function's configuration.
    pub fn new(aws: &aws_config::SdkConfig, ses: &aws_config::SdkConfig, config: &Config) -> Self {
        let dynamo = aws_sdk_dynamodb::Client::new(aws);
        DeployedAccounts {
            deliveries: DeliveryTable::new(dynamo.clone(), &config.deliveries_table),
            deliveries_table: config.deliveries_table.clone(),
            prefs: PreferenceTable::new(dynamo.clone(), &config.preferences_table),
            mailer: config
                .sender_address
                .as_deref()
                .map(|from| fmn_email::SesMailer::new(aws_sdk_sesv2::Client::new(ses), from)),
            feed: config
                .feed_table
                .as_deref()
                .map(|t| fmn_feed::FeedStore::new(dynamo.clone(), t)),
            dynamo,
        }
    }

    async fn tell_owner(&self, prefs: &Preferences, address: &str, reason: &str) {
        let text = format!(
            "fmn stopped sending to your webhook {address}: {reason}. Fix it, then enable it \
             again in your webhook settings."
        );
        let email_to = prefs
            .contexts
            .get(&ContextKind::Email)
            .and_then(|c| c.addresses.iter().find(|a| a.deliverable()))
            .map(|a| a.address.clone());
        if let (Some(mailer), Some(to)) = (&self.mailer, email_to) {
            let email = fmn_email::Email {
                subject: "fmn: your webhook was disabled".into(),
                text: format!("{text}\n"),
                html: None,
                headers: Vec::new(),
                unsubscribe_url: None,
            };
            match mailer.send(&to, &email).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(user = %prefs.user, error = %e, "could not email the owner")
                }
            }
        }
        if let Some(feed) = &self.feed {
            let item = fmn_feed::FeedItem {
                id: format!("webhook-disabled:{address}:{}", now()),
                title: format!("Your webhook {address} was disabled"),
                summary: text.clone(),
                link: None,
                published: now() as i64,
                app: "fmn".into(),
                topic: "fmn.webhook.disabled".into(),
                filters: Vec::new(),
            };
            if let Err(e) = feed.push(&prefs.user, &item).await {
                tracing::warn!(user = %prefs.user, error = %e, "could not tell the owner in their feed");
            }
        }
        tracing::warn!(user = %prefs.user, address, reason, "owner told: webhook disabled");
    }
}

impl Accounts for DeployedAccounts {
    async fn claim(&self, key: &str) -> anyhow::Result<Claim> {
        Ok(self.deliveries.claim(key).await?)
    }

    async fn mark_sent(&self, key: &str) -> anyhow::Result<()> {
        Ok(self.deliveries.mark_sent(key).await?)
    }

    async fn release(&self, key: &str) -> anyhow::Result<()> {
        Ok(self.deliveries.release(key).await?)
    }

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
        for _attempt in 0..5 {
            let Some(prefs) = self.prefs.get(user).await? else {
                return Ok(());
            };
            let old = serde_json::to_string(&prefs)?;
            let mut new = prefs.clone();
            let Some(a) = new
                .contexts
                .get_mut(&ContextKind::Webhook)
                .and_then(|c| c.addresses.iter_mut().find(|a| a.address == address))
            else {
                return Ok(());
            };
            if a.disabled.is_some() {
                return Ok(());
            }
            a.disabled = Some(reason.to_owned());
            match self.prefs.put_if(&new, Some(&old)).await {
                Ok(()) => {
                    self.tell_owner(&new, address, reason).await;
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("preferences of {user} kept changing; webhook {address} not disabled yet")
    }
}
