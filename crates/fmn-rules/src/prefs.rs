//! The preference model as stored and exchanged (JSON).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything one user wants: a context per delivery channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// The Fedora account name.
    pub user: String,
    /// Contexts by channel.
    #[serde(default)]
    pub contexts: BTreeMap<ContextKind, Context>,
}

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextKind {
    /// Email through SES.
    Email,
    /// IRC private message.
    Irc,
    /// Matrix direct room.
    Matrix,
    /// Signed HTTPS POST.
    Webhook,
    /// RSS/Atom feed.
    Feed,
}

impl ContextKind {
    /// The lowercase name (`"email"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Irc => "irc",
            Self::Matrix => "matrix",
            Self::Webhook => "webhook",
            Self::Feed => "feed",
        }
    }
}

fn yes() -> bool {
    true
}

/// One delivery channel of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// A disabled context notifies nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where to deliver; only confirmed addresses are ever used.
    #[serde(default)]
    pub addresses: Vec<Address>,
    /// Filters, OR'ed.
    #[serde(default)]
    pub filters: Vec<Filter>,
}

/// A delivery address (email address, IRC nick, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// The address itself.
    pub address: String,
    /// Whether its owner confirmed it; nothing is sent to an unconfirmed address.
    #[serde(default)]
    pub confirmed: bool,
}

/// A named set of rules, AND'ed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Stable identifier, unique within the user.
    pub id: String,
    /// Human name, shown in notifications ("why did I get this?").
    pub name: String,
    /// Inactive filters match nothing.
    #[serde(default = "yes")]
    pub active: bool,
    /// Deactivate after the first match.
    #[serde(default)]
    pub oneshot: bool,
    /// Rules, all of which must hold.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One condition on a message, possibly negated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// True when the rule's result is inverted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negate: bool,
    /// What the rule tests.
    #[serde(flatten)]
    pub kind: RuleKind,
}

/// The rule kinds and their arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// The topic matches an fnmatch glob (`*` crosses dots).
    Topic {
        /// The glob.
        glob: String,
    },
    /// The message's application is one of these (case-insensitive).
    Application {
        /// Application names.
        names: Vec<String>,
    },
    /// The message concerns one of these users (default: the owner).
    User {
        /// Usernames; empty means the filter's owner.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        usernames: Vec<String>,
    },
    /// One of these users performed the action (default: the owner).
    Agent {
        /// Usernames; empty means the filter's owner.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        usernames: Vec<String>,
    },
    /// The message concerns one of these artifacts.
    Artifact {
        /// Artifacts by type and name.
        artifacts: Vec<ArtifactRef>,
    },
}

/// An artifact named in a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    /// `rpms`, `containers`, `modules` or `flatpaks`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The artifact's name.
    pub name: String,
}

/// A filter named in a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRef {
    /// The filter's id.
    pub id: String,
    /// The filter's name.
    pub name: String,
}
