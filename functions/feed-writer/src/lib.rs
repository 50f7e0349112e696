//! The feed context's sender: each notification on the feed queue becomes a
//! [`FeedItem`] in its user's feed. Pushing is idempotent (an item is keyed by the message
//! id), so a redelivered job appears once; feeds are never digested or flood-limited (a feed
//! reader already aggregates). A notice from fmn becomes an item too. A confirmation job
//! needs no delivery (a feed has no address to confirm) and is acknowledged. Each new item
//! of a notification goes to its user's delivery history as sent (a redelivery, which
//! replaces its item, adds nothing); a history write that fails is logged, never retried.
//!
//! It is not a [`fmn_delivery::Pipeline`]: it has no addresses to deliver to one by one,
//! no delivery records (the push is idempotent by item id) and no gate; it shares the
//! pipeline's job parsing.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_delivery::History;
use fmn_feed::FeedItem;
use fmn_lambda::{ConfigError, Vars};
use fmn_queue::{ContextJob, NoticeJob, NotificationJob, RecordError};
use fmn_store::HistoryState;

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_FEED_TABLE`.
    pub feed_table: String,
    /// `FMN_DELIVERIES_TABLE`: where the delivery history is kept.
    pub deliveries_table: String,
}

impl Config {
    /// Reads the configuration from `vars` (the process environment on Lambda, the deployed
    /// function's environment locally).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        Ok(Config {
            feed_table: vars.required("FMN_FEED_TABLE")?,
            deliveries_table: vars.required("FMN_DELIVERIES_TABLE")?,
        })
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_env())
    }
}

/// Where items go ([`fmn_feed::FeedStore`] deployed).
pub trait Feeds {
    /// Adds `item` to `user`'s feed; answers whether it is new (false when it replaced
    /// itself).
    fn push(
        &self,
        user: &str,
        item: &FeedItem,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;
}

impl Feeds for fmn_feed::FeedStore {
    async fn push(&self, user: &str, item: &FeedItem) -> anyhow::Result<bool> {
        Ok(fmn_feed::FeedStore::push(self, user, item).await?)
    }
}

/// The feed item for a notification.
pub fn item(job: &NotificationJob) -> FeedItem {
    let m = &job.message;
    let published = m.timestamp.map(|t| t as i64).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    });
    let mut summary = m.summary.clone();
    if let Some(agent) = &m.agent {
        summary.push_str(&format!(" (by {agent})"));
    }
    FeedItem {
        id: m.id.clone(),
        title: m.summary.clone(),
        summary,
        link: m.link.clone(),
        published,
        app: m.app.clone(),
        topic: m.topic.clone(),
        filters: job.filters.iter().map(|f| f.name.clone()).collect(),
    }
}

/// The feed item for a notice from fmn (e.g. "your webhook was disabled").
pub fn notice_item(notice: &NoticeJob) -> FeedItem {
    FeedItem {
        id: notice.id.clone(),
        title: notice.title.clone(),
        summary: notice.text.clone(),
        link: None,
        published: notice.created_at,
        app: "fmn".into(),
        topic: notice.topic.clone(),
        filters: Vec::new(),
    }
}

/// The feed writer's state: the feeds `F`, and the delivery history `H`.
#[derive(Debug)]
pub struct FeedWriter<F, H = fmn_delivery::NoHistory> {
    feeds: F,
    history: H,
}

impl<F: Feeds + Sync> FeedWriter<F> {
    /// A writer pushing into `feeds`, keeping no history.
    pub fn new(feeds: F) -> Self {
        FeedWriter {
            feeds,
            history: fmn_delivery::NoHistory,
        }
    }

    /// Records each new notification item in `history`.
    pub fn with_history<H: History + Sync>(self, history: H) -> FeedWriter<F, H> {
        FeedWriter {
            feeds: self.feeds,
            history,
        }
    }
}

impl<F: Feeds + Sync, H: History + Sync> FeedWriter<F, H> {
    /// Handles one SQS batch from the feed queue.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        fmn_queue::process_batch(event, |record| self.handle_record(record)).await
    }

    async fn handle_record(&self, record: SqsMessage) -> Result<(), RecordError> {
        let (user, item, job) = match fmn_delivery::parse_job(&record)? {
            ContextJob::Confirmation { confirmation } => {
                tracing::info!(user = %confirmation.user, "feed confirmation: nothing to deliver");
                return Ok(());
            }
            ContextJob::Notification(job) => (job.user.clone(), item(&job), Some(job)),
            ContextJob::Notice { notice } => (notice.user.clone(), notice_item(&notice), None),
        };
        let new = self
            .feeds
            .push(&user, &item)
            .await
            .map_err(|e| RecordError(format!("{e:#}")))?;
        if let (true, Some(job)) = (new, job) {
            let entry = fmn_delivery::history_entry(&job, HistoryState::Sent, None);
            if let Err(e) = self.history.record(&entry).await {
                tracing::warn!(%user, error = %e, "history not recorded");
            }
        }
        Ok(())
    }
}

impl<F: Feeds + Send + Sync + 'static, H: History + Send + Sync + 'static> fmn_lambda::SqsFunction
    for FeedWriter<F, H>
{
    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        FeedWriter::handle(self, event).await
    }
}

/// The writer as deployed.
pub type DeployedWriter = FeedWriter<fmn_feed::FeedStore, fmn_store::HistoryLog>;

/// Builds the deployed writer.
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> DeployedWriter {
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    FeedWriter::new(fmn_feed::FeedStore::new(dynamo.clone(), &config.feed_table))
        .with_history(fmn_store::HistoryLog::new(dynamo, &config.deliveries_table))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Memory(Mutex<Vec<(String, FeedItem)>>);

    impl Feeds for Memory {
        async fn push(&self, user: &str, item: &FeedItem) -> anyhow::Result<bool> {
            let mut v = self.0.lock().unwrap();
            let before = v.len();
            v.retain(|(u, i)| !(u == user && i.id == item.id));
            let new = v.len() == before;
            v.push((user.into(), item.clone()));
            Ok(new)
        }
    }

    #[tokio::test]
    async fn notifications_become_items_once() {
        let writer =
            FeedWriter::new(Memory::default()).with_history(fmn_delivery::MemoryHistory::default());
        let job = include_str!("../../../crates/fmn-queue/tests/fixtures/email-job.json");
        let event = fmn_queue::test_util::sqs_event(&[job, job, "nope"]);
        let response = writer.handle(event).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        let items = writer.feeds.0.lock().unwrap().clone();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].0, "alice");
        assert_eq!(items[0].1.title, "bob's kernel-6.1-1.fc40 completed");
        assert_eq!(items[0].1.published, 1_700_000_000);
        assert_eq!(items[0].1.filters, ["kernel builds"]);
        let history = writer.history.0.lock().unwrap().clone();
        assert_eq!(history.len(), 1, "the redelivery adds no history entry");
        assert_eq!(history[0].state, HistoryState::Sent);
        assert_eq!(history[0].filters[0].name, "kernel builds");
    }

    #[tokio::test]
    async fn a_notice_becomes_an_item() {
        let writer = FeedWriter::new(Memory::default());
        let notice = r#"{"notice": {"id": "webhook-disabled:h:7", "user": "bob",
            "context": "feed", "addresses": ["feed"], "topic": "fmn.webhook.disabled",
            "title": "Your webhook h was disabled", "text": "fix it", "created_at": 7}}"#;
        let response = writer
            .handle(fmn_queue::test_util::sqs_event(&[notice]))
            .await;
        assert!(response.batch_item_failures.is_empty());
        let items = writer.feeds.0.lock().unwrap().clone();
        assert_eq!(items[0].0, "bob");
        assert_eq!(items[0].1.title, "Your webhook h was disabled");
        assert_eq!(items[0].1.published, 7);
    }
}
