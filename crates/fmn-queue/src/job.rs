//! The notification job: the body of a message on a delivery context's queue.

use std::collections::BTreeSet;

use fmn_messages::Message;
use fmn_rules::{ContextKind, ContextSettings, FilterRef, Notification};
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
    /// The message's severity (push notifications set their priority from it); absent in
    /// jobs queued before it was carried, and in fmn's own notices and digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<fmn_messages::Severity>,
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
            severity: Some(m.severity),
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
    /// The context's settings when the message matched (verbose, markup, digest, …).
    #[serde(default)]
    pub settings: ContextSettings,
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
            settings: ContextSettings::default(),
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

/// A confirmation code or link to deliver to a not yet confirmed address: the only thing
/// ever sent to an unconfirmed address, and only on its owner's request through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationJob {
    /// The user who added the address.
    pub user: String,
    /// The context the address belongs to (which queue this is on).
    pub context: ContextKind,
    /// The address to confirm.
    pub address: String,
    /// The one-time code to enter through the API (IRC, Matrix), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The one-time link to open (email), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// When the code or link stops working, seconds since the epoch.
    pub expires_at: i64,
}

/// A notice from fmn itself to a user (e.g. "your webhook was disabled"), delivered on one of
/// the user's contexts like a notification, but never held for a digest nor linked to a
/// filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeJob {
    /// Unique id of the notice (its delivery key and feed item id).
    pub id: String,
    /// The recipient.
    pub user: String,
    /// The context it is for (which queue this is on).
    pub context: ContextKind,
    /// Confirmed addresses to deliver to.
    pub addresses: Vec<String>,
    /// What kind of notice (`fmn.webhook.disabled`), as a topic.
    pub topic: String,
    /// One line: an email's subject, a feed item's title.
    pub title: String,
    /// The text.
    pub text: String,
    /// When it was written, seconds since the epoch.
    pub created_at: i64,
}

/// A message on a delivery context's queue: a notification, a confirmation request
/// (`{"confirmation": {...}}`) or a notice from fmn (`{"notice": {...}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
// One job is parsed at a time and matched on at once: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum ContextJob {
    /// Deliver a confirmation code or link.
    Confirmation {
        /// What to deliver.
        confirmation: ConfirmationJob,
    },
    /// Deliver a notice from fmn.
    Notice {
        /// What to deliver.
        notice: NoticeJob,
    },
    /// Deliver a notification.
    Notification(NotificationJob),
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
        assert!(matches!(
            serde_json::from_str::<ContextJob>(text).unwrap(),
            ContextJob::Notification(n) if n == job
        ));
    }

    #[test]
    fn confirmation_jobs_are_told_apart() {
        let text = r#"{"confirmation": {"user": "alice", "context": "irc", "address": "alice_",
            "code": "482913", "expires_at": 1764000000}}"#;
        let ContextJob::Confirmation { confirmation } = serde_json::from_str(text).unwrap() else {
            panic!("not a confirmation");
        };
        assert_eq!(confirmation.address, "alice_");
        assert_eq!(confirmation.code.as_deref(), Some("482913"));
        assert!(serde_json::from_str::<ContextJob>(r#"{"confirmation": {"user": "a"}}"#).is_err());
    }

    #[test]
    fn notice_jobs_are_told_apart() {
        let text = r#"{"notice": {"id": "n1", "user": "alice", "context": "email",
            "addresses": ["alice@example.org"], "topic": "fmn.webhook.disabled",
            "title": "Your webhook was disabled", "text": "fix it", "created_at": 1764000000}}"#;
        let ContextJob::Notice { notice } = serde_json::from_str(text).unwrap() else {
            panic!("not a notice");
        };
        assert_eq!(notice.addresses, ["alice@example.org"]);
        let again = serde_json::to_string(&ContextJob::Notice {
            notice: notice.clone(),
        })
        .unwrap();
        assert!(
            matches!(serde_json::from_str(&again).unwrap(), ContextJob::Notice { notice: n } if n == notice)
        );
    }
}
