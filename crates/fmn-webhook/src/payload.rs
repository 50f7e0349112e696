//! The JSON body and its signature.

use fmn_queue::{ConfirmationJob, NotificationJob};
use fmn_rules::FilterRef;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What fmn POSTs (`kind` tells a notification from a confirmation request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// A notification.
    Notification {
        /// The bus message id (also the delivery's idempotency key: a receiver seeing it
        /// twice may drop the second).
        id: String,
        /// The bus topic.
        topic: String,
        /// The application that sent it.
        app: String,
        /// One line for people.
        summary: String,
        /// Where to read more.
        link: Option<String>,
        /// Who did it.
        agent: Option<String>,
        /// Usernames concerned.
        usernames: Vec<String>,
        /// Packages concerned.
        packages: Vec<String>,
        /// The filters that matched.
        filters: Vec<FilterRef>,
        /// When the message was published, seconds since the epoch.
        timestamp: Option<f64>,
        /// The fmn user it is for.
        user: String,
    },
    /// Confirm this URL: enter `code` through the API (or tell fmn's API the code your app
    /// received).
    Confirmation {
        /// The fmn user who added the webhook.
        user: String,
        /// The one-time code.
        code: Option<String>,
        /// The one-time link, if any.
        link: Option<String>,
        /// When the code stops working, seconds since the epoch.
        expires_at: i64,
    },
}

impl From<&NotificationJob> for Payload {
    fn from(job: &NotificationJob) -> Self {
        let m = &job.message;
        Payload::Notification {
            id: m.id.clone(),
            topic: m.topic.clone(),
            app: m.app.clone(),
            summary: m.summary.clone(),
            link: m.link.clone(),
            agent: m.agent.clone(),
            usernames: m.usernames.iter().cloned().collect(),
            packages: m.packages.iter().cloned().collect(),
            filters: job.filters.clone(),
            timestamp: m.timestamp,
            user: job.user.clone(),
        }
    }
}

impl From<&ConfirmationJob> for Payload {
    fn from(job: &ConfirmationJob) -> Self {
        Payload::Confirmation {
            user: job.user.clone(),
            code: job.code.clone(),
            link: job.link.clone(),
            expires_at: job.expires_at,
        }
    }
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("sha256={}", hex::encode(tag))
}

/// Checks a signature header against `secret`, the timestamp header and the body, in
/// constant time.
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(tag) = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_payload_is_documented_json() {
        let job: NotificationJob = serde_json::from_str(include_str!(
            "../../fmn-queue/tests/fixtures/email-job.json"
        ))
        .unwrap();
        let value = serde_json::to_value(Payload::from(&job)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "kind": "notification",
                "id": "2019-9fa1f5c6-1d6c-4d3b-9c86-7c6a1b7a9f2e",
                "topic": "org.fedoraproject.prod.buildsys.build.state.change",
                "app": "buildsys",
                "summary": "bob's kernel-6.1-1.fc40 completed",
                "link": "https://koji.fedoraproject.org/koji/buildinfo?buildID=7",
                "agent": "bob",
                "usernames": ["bob"],
                "packages": ["kernel"],
                "filters": [{"id": "f1", "name": "kernel builds"}],
                "timestamp": 1700000000.0,
                "user": "alice"
            })
        );
    }

    #[test]
    fn signature_covers_timestamp_and_body() {
        let sig = sign(b"k", 10, b"{}");
        // Known answer: python3 -c 'import hmac,hashlib;print(hmac.new(b"k",b"10.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            sig,
            "sha256=41fb4a7948d48dbbc0de115d30fd497cd453f3dec35c5dace8584b41ea18aaf9"
        );
        assert!(verify(b"k", "10", b"{}", &sig));
        assert!(!verify(b"k", "11", b"{}", &sig));
        assert!(!verify(b"k", "10", b"{ }", &sig));
        assert!(!verify(b"k", "10", b"{}", "sha256=zz"));
        assert!(!verify(b"k", "10", b"{}", "md5=00"));
    }
}
