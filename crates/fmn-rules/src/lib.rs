//! Preferences and the rules engine.
//!
//! A user's [`Preferences`] hold one [`Context`] per delivery channel; a context holds
//! [`Filter`]s, a filter holds [`Rule`]s. A filter matches when all its rules match (a filter
//! without rules matches nothing); a context notifies when any active filter matches.
//! [`Matcher`] compiles every user's preferences once and then answers, for each message,
//! who is notified where and because of which filters.
//!
//! ```
//! use fmn_rules::{Matcher, Preferences};
//! let prefs: Preferences = serde_json::from_value(serde_json::json!({
//!     "user": "alice",
//!     "contexts": {"email": {
//!         "addresses": [{"address": "alice@example.org", "confirmed": true}],
//!         "filters": [{"id": "f1", "name": "kernel", "rules": [
//!             {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]},
//!             {"kind": "agent", "negate": true}
//!         ]}]
//!     }}
//! })).unwrap();
//! let matcher = Matcher::build([prefs]).unwrap();
//! let raw = serde_json::json!({
//!     "topic": "org.fedoraproject.prod.buildsys.build.state.change", "msg_id": "m1",
//!     "msg": {"owner": "bob", "name": "kernel", "version": "6.1", "release": "1", "build_id": 1},
//! });
//! let message = fmn_messages::Catalog::builtin().normalize(&raw).unwrap();
//! let hits = matcher.matches(&message);
//! assert_eq!(hits.len(), 1);
//! assert_eq!(hits[0].addresses, ["alice@example.org"]);
//! ```

mod compile;
pub use compile::{REGEX_DFA_LIMIT, REGEX_NEST_LIMIT, REGEX_SIZE_LIMIT};
#[cfg(test)]
mod equivalence;
mod explain;
pub mod fmn3;
mod index;
mod intern;
mod matcher;
mod ownership;
mod prefs;
mod snapshot;

pub use explain::{ContextVerdict, FilterVerdict, RuleVerdict, explain};
pub use matcher::{
    BuildError, FilterName, Match, Matcher, MatcherStats, Notification, NotificationRef,
};
pub use ownership::{Owners, Ownership, OwnershipError};
pub use prefs::{
    Address, ArtifactRef, Context, ContextKind, ContextSettings, Filter, FilterRef, OWN_FEED,
    OWN_INBOX, Preferences, PreferencesFileError, Rule, RuleKind,
};
pub use snapshot::{SNAPSHOT_FORMAT, SnapshotError};
