//! What a sender delivers, and its delivery keys.

use std::borrow::Cow;

use fmn_digest::Batch;
use fmn_queue::{ConfirmationJob, ContextJob, MessageDigest, NoticeJob, NotificationJob};

/// One thing to deliver to one or more addresses of one user.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// A matched bus message.
    Notification(&'a NotificationJob),
    /// A confirmation code or link, to the unconfirmed address only.
    Confirmation(&'a ConfirmationJob),
    /// A notice from fmn (e.g. "your webhook was disabled").
    Notice(&'a NoticeJob),
    /// Held notifications as one digest (sent by the digest function).
    Digest(&'a Batch),
}

/// What an item shows, for channels with one rendering for notifications ([`Item::content`]).
#[derive(Debug, Clone)]
// Made once per item and matched on at once: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Content<'a> {
    /// A confirmation code or link.
    Confirmation(&'a ConfirmationJob),
    /// A notification (or a notice or digest summary as one).
    Notification(Cow<'a, NotificationJob>),
}

impl<'a> Item<'a> {
    /// The item a job on a context queue carries.
    pub fn from_job(job: &'a ContextJob) -> Self {
        match job {
            ContextJob::Notification(n) => Item::Notification(n),
            ContextJob::Confirmation { confirmation } => Item::Confirmation(confirmation),
            ContextJob::Notice { notice } => Item::Notice(notice),
        }
    }

    /// What kind of item, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Item::Notification(_) => "notification",
            Item::Confirmation(_) => "confirmation",
            Item::Notice(_) => "notice",
            Item::Digest(_) => "digest",
        }
    }

    /// The recipient.
    pub fn user(&self) -> &'a str {
        match *self {
            Item::Notification(n) => &n.user,
            Item::Confirmation(c) => &c.user,
            Item::Notice(n) => &n.user,
            Item::Digest(b) => &b.user,
        }
    }

    /// The addresses to deliver to, in order.
    pub fn addresses(&self) -> Vec<String> {
        match self {
            Item::Notification(n) => n.addresses.clone(),
            Item::Confirmation(c) => vec![c.address.clone()],
            Item::Notice(n) => n.addresses.clone(),
            Item::Digest(b) => b.addresses(),
        }
    }

    /// The item as a confirmation or one notification, for channels that render everything
    /// but confirmations the same way: a notice becomes a notification from the app `fmn`
    /// whose summary is the notice's text, a digest its summary line
    /// ([`Batch::summary_job`]).
    pub fn content(&self) -> Content<'a> {
        match *self {
            Item::Notification(n) => Content::Notification(Cow::Borrowed(n)),
            Item::Confirmation(c) => Content::Confirmation(c),
            Item::Notice(n) => Content::Notification(Cow::Owned(NotificationJob {
                message: MessageDigest {
                    id: n.id.clone(),
                    topic: n.topic.clone(),
                    app: "fmn".into(),
                    summary: n.text.clone(),
                    link: None,
                    agent: None,
                    usernames: Default::default(),
                    packages: Default::default(),
                    timestamp: Some(n.created_at as f64),
                    severity: None,
                },
                user: n.user.clone(),
                context: n.context,
                addresses: n.addresses.clone(),
                filters: Vec::new(),
                settings: Default::default(),
            })),
            Item::Digest(b) => Content::Notification(Cow::Owned(b.summary_job(None))),
        }
    }

    /// The idempotency key of delivering this item to `address`: the same key for a
    /// redelivered job, whatever the channel, so it is never sent twice.
    ///
    /// - notification: `message id|user|context|address` ([`NotificationJob::delivery_key`]);
    ///   a digest's summary on a non-email context is a notification whose message id is
    ///   the batch id;
    /// - confirmation: `confirm|user|context|address|expires_at` (a new request for the
    ///   same address has a new expiry; the code itself is never stored);
    /// - notice: `notice|id|user|context|address`;
    /// - digest (email): `batch id|address`.
    pub fn delivery_key(&self, address: &str) -> String {
        match self {
            Item::Notification(n) => n.delivery_key(address),
            Item::Confirmation(c) => format!(
                "confirm|{}|{}|{}|{}",
                c.user,
                c.context.as_str(),
                address,
                c.expires_at
            ),
            Item::Notice(n) => format!(
                "notice|{}|{}|{}|{address}",
                n.id,
                n.user,
                n.context.as_str()
            ),
            Item::Digest(b) => format!("{}|{address}", b.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_the_job_not_the_channel() {
        let text = include_str!("../../fmn-queue/tests/fixtures/email-job.json");
        let job: ContextJob = serde_json::from_str(text).unwrap();
        let item = Item::from_job(&job);
        assert_eq!(
            item.delivery_key("alice@example.org"),
            "2019-9fa1f5c6-1d6c-4d3b-9c86-7c6a1b7a9f2e|alice|email|alice@example.org"
        );
        let confirmation: ContextJob = serde_json::from_str(
            r#"{"confirmation": {"user": "alice", "context": "irc", "address": "alice_",
                "code": "482913", "expires_at": 1764000000}}"#,
        )
        .unwrap();
        let item = Item::from_job(&confirmation);
        assert_eq!(item.addresses(), ["alice_"]);
        assert_eq!(
            item.delivery_key("alice_"),
            "confirm|alice|irc|alice_|1764000000"
        );
    }
}
