//! The notification job: the body of a message on a delivery context's queue.

use std::collections::BTreeSet;

use fmn_messages::Message;
use fmn_rules::{ContextKind, FilterRef, Notification};
use serde::{Deserialize, Serialize};

/// What a sender needs to know about the bus message, nothing more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDigest {
    /// Bus message id.
    pub id: String,
    /// Full topic.
    pub topic: String,
    /// Application.
    pub app: String,
    /// One-line summary.
    pub summary: String,
    /// Where to read more.
    #[serde(default)]
    pub link: Option<String>,
    /// Who did it.
    #[serde(default)]
    pub agent: Option<String>,
    /// Usernames concerned.
    #[serde(default)]
    pub usernames: BTreeSet<String>,
    /// RPM package names concerned.
    #[serde(default)]
    pub packages: BTreeSet<String>,
    /// Seconds since the epoch, when known.
    #[serde(default)]
    pub timestamp: Option<f64>,
}

impl From<&Message> for MessageDigest {
    fn from(m: &Message) -> Self {
        MessageDigest {
            id: m.id.clone(),
            topic: m.topic.clone(),
            app: m.app.clone(),
            summary: m.summary.clone(),
            link: m.link.clone(),
            agent: m.agent.clone(),
            usernames: m.usernames.clone(),
            packages: m.artifacts.rpms.clone(),
            timestamp: m.timestamp,
        }
    }
}

/// One notification to deliver: a message, for one user, in one context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationJob {
    /// The bus message.
    pub message: MessageDigest,
    /// The recipient.
    pub user: String,
    /// The delivery context (which queue this is on).
    pub context: ContextKind,
    /// Confirmed addresses to deliver to.
    pub addresses: Vec<String>,
    /// The filters that matched, for the "why" footer.
    pub filters: Vec<FilterRef>,
}

impl NotificationJob {
    /// The job for a matched notification.
    pub fn new(message: &Message, notification: Notification) -> Self {
        NotificationJob {
            message: MessageDigest::from(message),
            user: notification.user,
            context: notification.context,
            addresses: notification.addresses,
            filters: notification.filters,
        }
    }

    /// The idempotency key of delivering this job to one address: redelivery of the
    /// same (message, user, context, address) must never send twice.
    pub fn delivery_key(&self, address: &str) -> String {
        format!(
            "{}|{}|{}|{}",
            self.message.id,
            self.user,
            self.context.as_str(),
            address
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_job_round_trips() {
        let text = include_str!("../tests/fixtures/email-job.json");
        let job: NotificationJob = serde_json::from_str(text).unwrap();
        assert_eq!(job.context, ContextKind::Email);
        assert_eq!(job.addresses, ["alice@example.org"]);
        assert_eq!(
            job.delivery_key("alice@example.org"),
            "2019-9fa1f5c6-1d6c-4d3b-9c86-7c6a1b7a9f2e|alice|email|alice@example.org"
        );
        let again: NotificationJob =
            serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
        assert_eq!(again, job);
    }
}
