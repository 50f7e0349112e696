//! Per-user feeds of recent notifications.
//!
//! The feed context's sender [`FeedStore::push`]es one [`FeedItem`] per notification; the
//! API reads a user's [`FeedStore::recent`] items and serves them as [`rss`] 2.0 or
//! [`atom`] 1.0 behind the user's unguessable token URL.
//!
//! ```
//! let item = fmn_feed::FeedItem {
//!     id: "2024-abc".into(),
//!     title: "bob's kernel-6.1-1.fc40 completed".into(),
//!     summary: "bob's kernel-6.1-1.fc40 completed".into(),
//!     link: Some("https://koji.fedoraproject.org/koji/buildinfo?buildID=7".into()),
//!     published: 1_700_000_000,
//!     app: "buildsys".into(),
//!     topic: "org.fedoraproject.prod.buildsys.build.state.change".into(),
//!     filters: vec!["kernel builds".into()],
//! };
//! let xml = fmn_feed::atom("alice's notifications", "https://fmn.example/feeds/t/atom.xml", &[item]);
//! assert!(xml.contains("kernel-6.1-1.fc40"));
//! ```

mod render;
mod store;

pub use render::{atom, rss};
pub use store::{FeedError, FeedStore};

use serde::{Deserialize, Serialize};

/// One notification in a user's feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedItem {
    /// The bus message id (unique per user's feed: pushing it again replaces it).
    pub id: String,
    /// One line: the message summary.
    pub title: String,
    /// The longer description (the summary, with what triggered it).
    pub summary: String,
    /// Where to read more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// When the message was published, seconds since the epoch.
    pub published: i64,
    /// The message's application.
    pub app: String,
    /// The message's topic.
    pub topic: String,
    /// Names of the filters that matched.
    #[serde(default)]
    pub filters: Vec<String>,
}
