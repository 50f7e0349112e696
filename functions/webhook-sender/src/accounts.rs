//! What the webhook sender reads and writes besides the webhook itself: secrets, failure
//! counters, disabling an address, and telling its owner.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;
use fmn_queue::{ContextJob, NoticeJob, Outgoing, Queue as _, SqsQueue};
use fmn_rules::{ContextKind, Preferences};
use fmn_store::{PreferenceTable, StoreError};

use crate::Config;

/// Secrets, failure counters and disabling, behind one trait so the channel is tested
/// without DynamoDB.
pub trait Accounts {
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

/// The deployed accounts: DynamoDB, and the owner's email or feed queue to tell them.
#[derive(Debug, Clone)]
pub struct DeployedAccounts {
    deliveries_table: String,
    dynamo: aws_sdk_dynamodb::Client,
    prefs: PreferenceTable,
    email_queue: Option<SqsQueue>,
    feed_queue: Option<SqsQueue>,
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

/// The notices telling the owner (`prefs`) that their webhook `address` was disabled: an
/// email to their first confirmed email address if they have one, and a feed item (used
/// when no email can be sent), in that order of preference.
pub fn notices(prefs: &Preferences, address: &str, reason: &str, now: u64) -> Vec<NoticeJob> {
    let text = format!(
        "fmn stopped sending to your webhook {address}: {reason}. Fix it, then enable it \
         again in your webhook settings."
    );
    let notice = |context: ContextKind, addresses: Vec<String>, title: String| NoticeJob {
        id: format!("webhook-disabled:{address}:{now}"),
        user: prefs.user.clone(),
        context,
        addresses,
        topic: "fmn.webhook.disabled".into(),
        title,
        text: text.clone(),
        created_at: now as i64,
    };
    let email_to = prefs
        .contexts
        .get(&ContextKind::Email)
        .and_then(|c| c.addresses.iter().find(|a| a.deliverable()))
        .map(|a| a.address.clone());
    let mut out = Vec::new();
    if let Some(to) = email_to {
        out.push(notice(
            ContextKind::Email,
            vec![to],
            "fmn: your webhook was disabled".into(),
        ));
    }
    out.push(notice(
        ContextKind::Feed,
        vec!["feed".into()],
        format!("Your webhook {address} was disabled"),
    ));
    out
}

impl DeployedAccounts {
    /// From the function's configuration.
    pub fn new(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
        let sqs = fmn_calls::client!(aws_sdk_sqs, aws);
        let queue = |url: &Option<String>| url.as_ref().map(|u| SqsQueue::new(sqs.clone(), u));
        DeployedAccounts {
            deliveries_table: config.deliveries_table.clone(),
            prefs: PreferenceTable::new(dynamo.clone(), &config.preferences_table),
            email_queue: queue(&config.email_queue_url),
            feed_queue: queue(&config.feed_queue_url),
            dynamo,
        }
    }

    /// Puts the first notice there is a queue for on it: the owner hears about it like
    /// about any notification.
    async fn tell_owner(&self, prefs: &Preferences, address: &str, reason: &str) {
        for notice in notices(prefs, address, reason, now()) {
            let queue = match notice.context {
                ContextKind::Email => &self.email_queue,
                _ => &self.feed_queue,
            };
            let Some(queue) = queue else { continue };
            let context = notice.context;
            let body = match serde_json::to_string(&ContextJob::Notice { notice }) {
                Ok(body) => body,
                Err(e) => {
                    tracing::warn!(error = %e, "could not write the notice");
                    continue;
                }
            };
            match queue.send_all(vec![Outgoing::new(body)]).await {
                Ok(()) => {
                    tracing::warn!(user = %prefs.user, address, reason,
                        context = context.as_str(), "owner told: webhook disabled");
                    return;
                }
                Err(e) => {
                    tracing::warn!(user = %prefs.user, error = %e, "could not queue the notice")
                }
            }
        }
        tracing::warn!(user = %prefs.user, address, reason, "webhook disabled; owner not told");
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
