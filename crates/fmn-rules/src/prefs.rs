//! The preference model as stored and exchanged (JSON).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything one user wants: a context per delivery channel.
///
/// The stored form is read leniently: fields this version does not know (written by a newer
/// one, before a rollback) are ignored, here and in [`Context`], [`ContextSettings`],
/// [`Address`] and [`Filter`], so that an older matcher keeps reading newer documents. The
/// HTTP API refuses unknown fields in what clients send with its own models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preferences {
    /// The Fedora account name.
    pub user: String,
    /// Contexts by channel.
    #[serde(default)]
    pub contexts: BTreeMap<ContextKind, Context>,
}

impl Preferences {
    /// Parses a preferences file: one user's preferences, or a list of them.
    pub fn parse_many(text: &str) -> Result<Vec<Preferences>, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            Many(Vec<Preferences>),
            One(Box<Preferences>),
        }
        Ok(match serde_json::from_str(text)? {
            OneOrMany::Many(v) => v,
            OneOrMany::One(p) => vec![*p],
        })
    }

    /// Reads a preferences file (one user's preferences, or a list) and checks that each
    /// compiles, with the same message the matcher would give.
    pub fn read_file(path: &Path) -> Result<Vec<Preferences>, PreferencesFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| PreferencesFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let all = Preferences::parse_many(&text).map_err(|source| PreferencesFileError::Parse {
            path: path.to_owned(),
            source,
        })?;
        crate::Matcher::build(all.iter().cloned())?;
        Ok(all)
    }
}

/// A preferences file could not be read ([`Preferences::read_file`]).
#[derive(Debug, thiserror::Error)]
pub enum PreferencesFileError {
    /// The file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not preferences JSON.
    #[error("parsing {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A filter does not compile.
    #[error(transparent)]
    Build(#[from] crate::BuildError),
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
    /// UnifiedPush POST to a phone's (or desktop's) push endpoint, e.g. an ntfy topic.
    Push,
    /// The web app's inbox, pushed live over a WebSocket (and to `fmn-desktop`).
    Inbox,
}

impl ContextKind {
    /// Every context kind.
    pub const ALL: [ContextKind; 7] = [
        Self::Email,
        Self::Irc,
        Self::Matrix,
        Self::Webhook,
        Self::Feed,
        Self::Push,
        Self::Inbox,
    ];

    /// The lowercase name (`"email"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Irc => "irc",
            Self::Matrix => "matrix",
            Self::Webhook => "webhook",
            Self::Feed => "feed",
            Self::Push => "push",
            Self::Inbox => "inbox",
        }
    }
}

fn yes() -> bool {
    true
}

/// One delivery channel of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// How notifications are shaped and batched.
    #[serde(default)]
    pub settings: ContextSettings,
}

/// Where a feed context without addresses delivers: its user's own feed.
pub const OWN_FEED: &str = "feed";

/// Where an inbox context delivers: its user's one inbox (an implicit address, confirmed by
/// nature; an inbox context has no addresses of its own).
pub const OWN_INBOX: &str = "inbox";

impl Context {
    /// The addresses notifications of this context go to: the confirmed, enabled ones. A
    /// `feed` context needs none: without any it delivers to its user's own feed
    /// ([`OWN_FEED`]); an `inbox` context always delivers to its user's inbox
    /// ([`OWN_INBOX`]) and to nothing else.
    pub fn deliverable_addresses(&self, kind: ContextKind) -> Vec<&str> {
        if kind == ContextKind::Inbox {
            return vec![OWN_INBOX];
        }
        let confirmed: Vec<&str> = self
            .addresses
            .iter()
            .filter(|a| a.deliverable())
            .map(|a| a.address.as_str())
            .collect();
        if confirmed.is_empty() && kind == ContextKind::Feed {
            vec![OWN_FEED]
        } else {
            confirmed
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Self {
            enabled: true,
            addresses: Vec::new(),
            filters: Vec::new(),
            settings: ContextSettings::default(),
        }
    }
}

/// A context's settings.
///
/// With `digest_interval_secs` and/or `digest_count` set, notifications are held and sent as
/// one digest when either limit is reached; with neither, each is sent at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextSettings {
    /// Send a digest once the oldest held notification is this many seconds old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_interval_secs: Option<u32>,
    /// Send a digest once this many notifications are held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_count: Option<u32>,
    /// The long form (message details) rather than one line.
    #[serde(default)]
    pub verbose: bool,
    /// Include the "triggered by" part: which filters fired, with a link to them.
    #[serde(default = "yes")]
    pub triggered_by: bool,
    /// Use the channel's markup (HTML mail alternative, Matrix formatted body); plain text
    /// otherwise.
    #[serde(default = "yes")]
    pub markup: bool,
    /// Prefix for email subjects, e.g. `[fmn]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
}

impl Default for ContextSettings {
    fn default() -> Self {
        Self {
            digest_interval_secs: None,
            digest_count: None,
            verbose: false,
            triggered_by: true,
            markup: true,
            subject_prefix: None,
        }
    }
}

impl ContextSettings {
    /// Whether notifications of this context are held for a digest.
    pub fn is_digest(&self) -> bool {
        self.digest_interval_secs.is_some() || self.digest_count.is_some()
    }
}

/// A delivery address (email address, IRC nick, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// The address itself.
    pub address: String,
    /// Whether its owner confirmed it; nothing is sent to an unconfirmed address.
    #[serde(default)]
    pub confirmed: bool,
    /// Why delivery to this address is paused (e.g. a webhook that failed repeatedly); a
    /// disabled address receives nothing until its owner enables it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<String>,
    /// The per-address secret (webhooks sign their body with it, HMAC-SHA256). Visible to
    /// the address's owner and admins only, like the address itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl Address {
    /// A confirmed, enabled address: one the matcher may deliver to.
    pub fn deliverable(&self) -> bool {
        self.confirmed && self.disabled.is_none()
    }
}

/// A named set of rules, AND'ed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Which of the context's addresses this filter delivers to; absent means all of them.
    /// Each must be one of the context's addresses (only confirmed ones are ever used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
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
    /// The topic matches a regular expression (unanchored; use `^…$` to anchor).
    TopicRegex {
        /// The regex (Rust `regex` syntax).
        regex: String,
    },
    /// The message's application is one of these (case-insensitive).
    Application {
        /// Application names.
        names: Vec<String>,
    },
    /// The message's severity is one of these (`debug`, `info`, `warning`, `error`).
    Severity {
        /// Severity names.
        levels: Vec<String>,
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
    /// One of the message's artifacts of this type matches a regular expression.
    ArtifactRegex {
        /// `rpms`, `containers`, `modules` or `flatpaks`.
        #[serde(rename = "type")]
        artifact_type: String,
        /// The regex, matched against the artifact's name (unanchored).
        regex: String,
    },
    /// One of the message's artifacts is maintained by one of these users (default: the
    /// owner), according to the ownership data.
    OwnedBy {
        /// Usernames; empty means the filter's owner.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        usernames: Vec<String>,
    },
    /// One of the message's artifacts is maintained by one of these groups.
    OwnedByGroup {
        /// Group names, without the `@`.
        groups: Vec<String>,
    },
    /// A field of the body, found by a JSON pointer (RFC 6901), satisfies exactly one of
    /// `equals`, `one_of` or `regex` (a regex applies to strings, numbers and booleans as text).
    Field {
        /// The JSON pointer, e.g. `/update/status`.
        pointer: String,
        /// The field equals this JSON value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        equals: Option<serde_json::Value>,
        /// The field equals one of these JSON values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        one_of: Option<Vec<serde_json::Value>>,
        /// The field's text matches this regex.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        regex: Option<String>,
    },
    /// The body's JSON text matches a regex (the legacy "regex filter").
    BodyRegex {
        /// The regex.
        regex: String,
    },
}

impl RuleKind {
    /// The kind's name as written in JSON (`"topic_regex"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Topic { .. } => "topic",
            Self::TopicRegex { .. } => "topic_regex",
            Self::Application { .. } => "application",
            Self::Severity { .. } => "severity",
            Self::User { .. } => "user",
            Self::Agent { .. } => "agent",
            Self::Artifact { .. } => "artifact",
            Self::ArtifactRegex { .. } => "artifact_regex",
            Self::OwnedBy { .. } => "owned_by",
            Self::OwnedByGroup { .. } => "owned_by_group",
            Self::Field { .. } => "field",
            Self::BodyRegex { .. } => "body_regex",
        }
    }
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
    /// A oneshot filter: whoever applies the match deactivates it (absent in JSON: false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oneshot: bool,
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn read_file_reads_the_demo_preferences_and_names_a_missing_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let demo = Preferences::read_file(&root.join("localstack/demo/preferences.json")).unwrap();
        assert!(demo.iter().any(|p| p.user == "ralph"));
        let missing = root.join("localstack/demo/no-such-preferences.json");
        let err = Preferences::read_file(&missing).unwrap_err();
        assert!(matches!(err, PreferencesFileError::Read { .. }));
        assert_eq!(err.to_string(), format!("reading {}", missing.display()));
    }
}
