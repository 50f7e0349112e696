//! The normalised message and the raw envelopes it is made from.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Which bus generation a raw message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    /// fedmsg over ZeroMQ: an envelope with `msg`.
    Fedmsg,
    /// fedora-messaging over AMQP: `headers` and `body`.
    FedoraMessaging,
}

/// Message severity, as fedora-messaging defines it (fedmsg messages are `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 10
    Debug,
    /// 20
    Info,
    /// 30
    Warning,
    /// 40
    Error,
}

impl Severity {
    /// The severity for a fedora-messaging numeric level (10, 20, 30, 40).
    pub fn from_level(level: i64) -> Option<Self> {
        match level {
            10 => Some(Self::Debug),
            20 => Some(Self::Info),
            30 => Some(Self::Warning),
            40 => Some(Self::Error),
            _ => None,
        }
    }

    /// The lowercase name (`"info"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// The artifacts a message concerns, by type. Sets are sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifacts {
    /// RPM package names.
    pub rpms: BTreeSet<String>,
    /// Container names.
    pub containers: BTreeSet<String>,
    /// Module names.
    pub modules: BTreeSet<String>,
    /// Flatpak names.
    pub flatpaks: BTreeSet<String>,
}

impl Artifacts {
    /// True when the message concerns no artifact at all.
    pub fn is_empty(&self) -> bool {
        self.rpms.is_empty()
            && self.containers.is_empty()
            && self.modules.is_empty()
            && self.flatpaks.is_empty()
    }

    /// The set for an artifact type name (`rpms`, `containers`, `modules`, `flatpaks`).
    pub fn of_type(&self, kind: &str) -> Option<&BTreeSet<String>> {
        match kind {
            "rpms" => Some(&self.rpms),
            "containers" => Some(&self.containers),
            "modules" => Some(&self.modules),
            "flatpaks" => Some(&self.flatpaks),
            _ => None,
        }
    }
}

/// One bus message, normalised: the same shape whatever generation it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The bus message id (fedmsg `msg_id`, fedora-messaging `id`).
    pub id: String,
    /// The full topic, e.g. `org.fedoraproject.prod.bodhi.update.comment`.
    pub topic: String,
    /// The application: the schema's declared name for fedora-messaging, the topic's
    /// application segment for fedmsg.
    pub app: String,
    /// Which bus generation it came from.
    pub generation: Generation,
    /// Seconds since the epoch, when known.
    pub timestamp: Option<f64>,
    /// The message payload (fedmsg `msg`, fedora-messaging `body`).
    pub body: serde_json::Value,
    /// Usernames the message concerns, sorted.
    pub usernames: BTreeSet<String>,
    /// Who performed the action, when known.
    pub agent: Option<String>,
    /// Artifacts by type.
    pub artifacts: Artifacts,
    /// Groups the message concerns, sorted.
    pub groups: BTreeSet<String>,
    /// Severity (fedmsg messages are `info`).
    pub severity: Severity,
    /// A short title (fedmsg.meta's `title`, usually the topic without its prefix).
    pub title: String,
    /// One line saying what happened.
    pub summary: String,
    /// Where a person can see more, when known.
    pub link: Option<String>,
    /// A longer description, when the catalog has one.
    pub long_form: Option<String>,
}

/// Why a raw bus message could not be normalised. Such messages are quarantined.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    /// The input is not JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// The input is JSON but neither a fedmsg envelope nor a fedora-messaging message.
    #[error("not a bus message: {0}")]
    Shape(String),
    /// A fedora-messaging body that its schema (as the catalog records it) rejects; the bus
    /// consumer would refuse it too.
    #[error("body invalid for schema {schema}: {reason}")]
    Invalid {
        /// The schema name (or the topic when the message carried none).
        schema: String,
        /// Why, as the class's schema says it, e.g. `'agent' is a required property`.
        reason: String,
    },
}
