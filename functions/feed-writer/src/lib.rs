//! The feed context's sender: each notification on the feed queue becomes a
//! [`FeedItem`] in its user's feed. Pushing is idempotent (an item is keyed by the message
//! id), so a redelivered job appears once; feeds are never digested or flood-limited (a feed
//! reader already aggregates). A confirmation job needs no delivery (a feed has no address
//! to confirm) and is acknowledged.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_feed::FeedItem;
use fmn_queue::{ContextJob, NotificationJob, RecordError};

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_FEED_TABLE`.
    pub feed_table: String,
}

/// A required setting is missing.
#[derive(Debug, thiserror::Error)]
#[error("missing environment variable {0}")]
pub struct ConfigError(&'static str);

impl Config {
    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Ok(Config {
            feed_table: std::env::var("FMN_FEED_TABLE")
                .map_err(|_| ConfigError("FMN_FEED_TABLE"))?,
        })
    }
}

/// Where items go ([`fmn_feed::FeedStore`] deployed).
pub trait Feeds {
    /// Adds `item` to `user`'s feed.
    fn push(&self, user: &str, item: &FeedItem) -> impl Future<Output = anyhow::Result<()>> + Send;
}

impl Feeds for fmn_feed::FeedStore {
    async fn push(&self, user: &str, item: &FeedItem) -> anyhow::Result<()> {
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

/// The feed writer's state.
#[derive(Debug)]
pub struct FeedWriter<F> {
    feeds: F,
}

impl<F: Feeds + Sync> FeedWriter<F> {
    /// A writer pushing into `feeds`.
    pub fn new(feeds: F) -> Self {
        FeedWriter { feeds }
    }

    /// Handles one SQS batch from the feed queue.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        fmn_queue::process_batch(event, |record| self.handle_record(record)).await
    }

    async fn handle_record(&self, record: SqsMessage) -> Result<(), RecordError> {
        let body = record.body.unwrap_or_default();
        let job: ContextJob =
            serde_json::from_str(&body).map_err(|e| RecordError(format!("unreadable job: {e}")))?;
        match job {
            ContextJob::Confirmation { confirmation } => {
                tracing::info!(user = %confirmation.user, "feed confirmation: nothing to deliver");
                Ok(())
            }
            ContextJob::Notification(job) => self
                .feeds
                .push(&job.user, &item(&job))
                .await
                .map_err(|e| RecordError(format!("{e:#}"))),
        }
    }
}

/// The writer as deployed.
pub type DeployedWriter = FeedWriter<fmn_feed::FeedStore>;

/// Builds the deployed writer.
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> DeployedWriter {
    FeedWriter::new(fmn_feed::FeedStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        &config.feed_table,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Memory(Mutex<Vec<(String, FeedItem)>>);

    impl Feeds for Memory {
        async fn push(&self, user: &str, item: &FeedItem) -> anyhow::Result<()> {
            let mut v = self.0.lock().unwrap();
            v.retain(|(u, i)| !(u == user && i.id == item.id));
            v.push((user.into(), item.clone()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn notifications_become_items_once() {
        let writer = FeedWriter::new(Memory::default());
        let job = include_str!("../../../crates/fmn-queue/tests/fixtures/email-job.json");
        let mut event = SqsEvent::default();
        event.records = [job, job, "nope"]
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("r{i}"));
                m.body = Some((*b).into());
                m
            })
            .collect();
        let response = writer.handle(event).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        let items = writer.feeds.0.lock().unwrap().clone();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].0, "alice");
        assert_eq!(items[0].1.title, "bob's kernel-6.1-1.fc40 completed");
        assert_eq!(items[0].1.published, 1_700_000_000);
        assert_eq!(items[0].1.filters, ["kernel builds"]);
    }
}
