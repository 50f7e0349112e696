//! The inbox context's contract, shared by the inbox sender, the API, the web app's script
//! and clients such as `fmn-desktop`:
//!
//! - [`InboxItem`]: one notification in a user's inbox, with a time-sortable [`item_id`]
//!   (string order is creation order, so `after=<id>` asks for what came later);
//! - [`Frame`]: what the server sends on the WebSocket (`{"type":"item","item":{…}}`,
//!   `{"type":"pong"}`), and [`ClientFrame`]: what a client may send (`{"action":"ping"}`;
//!   API Gateway routes on [`ROUTE_SELECTION_EXPRESSION`], anything else is ignored);
//! - [`InboxPage`]: the inbox API's answer (`GET /api/v1/users/{user}/inbox`), newest
//!   first, with the unread count; [`SocketInfo`]: where the WebSocket is
//!   (`GET /api/v1/inbox/socket`).
//!
//! With the `store` feature, `store` holds the DynamoDB tables: `InboxStore` (per user,
//! TTL, bounded, read/unread) and `ConnectionStore` (open WebSocket connections by user).
//! Without it this crate depends on serde and sha2 only.
//!
//! ```
//! use fmn_inbox::{Frame, InboxItem, item_id};
//! let id = item_id(1_700_000_000_123, "2024-abc", Some("my builds"));
//! assert!(id.starts_with("1700000000123-"));
//! let item = InboxItem {
//!     id: id.clone(),
//!     message_id: "2024-abc".into(),
//!     topic: "org.fedoraproject.prod.buildsys.build.state.change".into(),
//!     summary: "bob's kernel-6.1-1.fc40 completed".into(),
//!     link: None,
//!     filter: Some("my builds".into()),
//!     filter_url: None,
//!     severity: "info".into(),
//!     created: fmn_inbox::rfc3339(1_700_000_000_123),
//!     read: false,
//! };
//! let text = Frame::Item { item }.to_text();
//! assert!(text.starts_with(r#"{"type":"item","item":{"id":"1700000000123-"#));
//! assert_eq!(Frame::from_text(&text).unwrap().item().unwrap().id, id);
//! assert_eq!(Frame::Pong.to_text(), r#"{"type":"pong"}"#);
//! assert_eq!(fmn_inbox::ClientFrame::from_text(r#"{"action":"ping"}"#), Some(fmn_inbox::ClientFrame::Ping));
//! assert_eq!(fmn_inbox::ClientFrame::from_text(r#"{"action":"dance"}"#), None);
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[cfg(feature = "store")]
pub mod store;

/// The inbox context's one address: every user has exactly one inbox, so its notifications
/// carry this implicit address (confirmed by nature, never entered by anyone).
pub const INBOX_ADDRESS: &str = "inbox";

/// API Gateway's route selection expression for the WebSocket API.
pub const ROUTE_SELECTION_EXPRESSION: &str = "$request.body.action";
/// The route of a client's keepalive ([`ClientFrame::Ping`]).
pub const PING_ROUTE: &str = "ping";
/// How long API Gateway keeps a WebSocket connection at most (2 hours): the connections
/// table's rows live this long.
pub const CONNECTION_MAX_SECS: u64 = 2 * 3600;
/// How long API Gateway keeps an idle WebSocket connection (10 minutes): a client pings
/// more often than this.
pub const IDLE_TIMEOUT_SECS: u64 = 10 * 60;
/// Items an inbox page holds by default.
pub const DEFAULT_PAGE_LIMIT: usize = 50;
/// Items an inbox page holds at most.
pub const MAX_PAGE_LIMIT: usize = 200;
/// The query parameter a WebSocket client may pass its personal token in
/// (`wss://…/?token=fmn_…`) when it cannot set an `Authorization` header (browsers).
pub const TOKEN_QUERY_PARAMETER: &str = "token";

/// One notification in a user's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    /// Time-sortable id ([`item_id`]): zero-padded creation milliseconds, `-`, a short hash
    /// of (message id, filter). String order is creation order.
    pub id: String,
    /// The bus message's id.
    pub message_id: String,
    /// The bus message's topic.
    pub topic: String,
    /// The message's one-line summary.
    pub summary: String,
    /// Where to read more about the message.
    #[serde(default)]
    pub link: Option<String>,
    /// The name of the filter that fired (the first, when several did).
    #[serde(default)]
    pub filter: Option<String>,
    /// The web app's page of that filter.
    #[serde(default)]
    pub filter_url: Option<String>,
    /// The message's severity as fmn names it: `debug`, `info`, `warning` or `error`.
    pub severity: String,
    /// When the item was created, RFC 3339 (UTC).
    pub created: String,
    /// Whether its owner marked it read.
    #[serde(default)]
    pub read: bool,
}

impl InboxItem {
    /// The creation time in milliseconds since the epoch, read from the id.
    pub fn created_ms(&self) -> Option<u64> {
        self.id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
    }
}

/// The id of the inbox item created at `created_ms` (milliseconds since the epoch) for
/// message `message_id` through filter `filter`: 13 zero-padded digits of milliseconds,
/// `-`, 12 hex digits of SHA-256 of (message id, filter).
pub fn item_id(created_ms: u64, message_id: &str, filter: Option<&str>) -> String {
    format!("{created_ms:013}-{}", item_hash(message_id, filter))
}

/// The hash part of an item's id: the same for every delivery of one message through one
/// filter (what a redelivered job is recognised by).
pub fn item_hash(message_id: &str, filter: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(message_id.as_bytes());
    h.update([0u8]);
    h.update(filter.unwrap_or_default().as_bytes());
    h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `id` has the shape of an [`item_id`] (what the API accepts for `after` and
/// `{id}`).
pub fn valid_item_id(id: &str) -> bool {
    match id.split_once('-') {
        Some((ms, hash)) => {
            ms.len() == 13
                && ms.bytes().all(|b| b.is_ascii_digit())
                && hash.len() == 12
                && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }
        None => false,
    }
}

/// `ms` milliseconds since the epoch as RFC 3339 in UTC, with milliseconds
/// (`2023-11-14T22:13:20.123Z`).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// A frame the server sends on the WebSocket (a JSON text frame tagged by `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// Made and sent (or received and matched on) at once: boxing the item buys nothing and
// makes every client write `Box`.
#[allow(clippy::large_enum_variant)]
pub enum Frame {
    /// A new item in the connected user's inbox.
    Item {
        /// The item.
        item: InboxItem,
    },
    /// The answer to a [`ClientFrame::Ping`].
    Pong,
}

impl Frame {
    /// The frame's JSON text.
    pub fn to_text(&self) -> String {
        // Serialising these types cannot fail (string keys, no maps of other keys).
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A frame from its JSON text; `None` for anything else (a newer server's frame kinds
    /// included: clients skip what they do not know).
    pub fn from_text(text: &str) -> Option<Frame> {
        serde_json::from_str(text).ok()
    }

    /// The item, for an item frame.
    pub fn item(&self) -> Option<&InboxItem> {
        match self {
            Frame::Item { item } => Some(item),
            Frame::Pong => None,
        }
    }
}

/// A frame a client sends (JSON tagged by `action`, which API Gateway routes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Keepalive: answered with [`Frame::Pong`].
    Ping,
}

impl ClientFrame {
    /// The frame's JSON text (`{"action":"ping"}`).
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A client frame from its text; `None` for anything else, which the server ignores.
    pub fn from_text(text: &str) -> Option<ClientFrame> {
        serde_json::from_str(text).ok()
    }

    /// The route API Gateway selects for `text` by [`ROUTE_SELECTION_EXPRESSION`]: the
    /// body's `action` when it is a JSON object with a string `action`, else `$default`.
    pub fn route_of(text: &str) -> String {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("action")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| "$default".to_owned())
    }
}

/// The inbox API's answer: `GET /api/v1/users/{user}/inbox`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InboxPage {
    /// Items, newest first (only those after `after` when it was given).
    pub items: Vec<InboxItem>,
    /// How many of the user's items are unread (all of them, not just this page's).
    pub unread: u64,
}

/// `GET /api/v1/inbox/socket`: where clients open the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketInfo {
    /// The WebSocket URL (`wss://…` in AWS, `ws://127.0.0.1:8081/` locally).
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_are_stable_per_message_and_filter() {
        let a = item_id(999, "m1", Some("f"));
        let b = item_id(1_000, "m0", None);
        let c = item_id(1_700_000_000_000, "m0", None);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a.len(), 26);
        assert!(valid_item_id(&a) && valid_item_id(&c));
        assert_eq!(item_hash("m1", Some("f")), a[14..]);
        assert_ne!(item_hash("m1", Some("f")), item_hash("m1", Some("g")));
        assert_ne!(item_hash("m1", None), item_hash("m", Some("1")));
        for bad in [
            "",
            "1-2",
            "170000000000-abcdefabcdef",
            "1700000000000-ABCDEFABCDEF",
        ] {
            assert!(!valid_item_id(bad), "{bad}");
        }
    }

    #[test]
    fn rfc3339_is_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn frames_are_tagged_json() {
        assert_eq!(Frame::from_text(r#"{"type":"pong"}"#), Some(Frame::Pong));
        assert_eq!(Frame::from_text(r#"{"type":"other"}"#), None);
        assert_eq!(ClientFrame::Ping.to_text(), r#"{"action":"ping"}"#);
        assert_eq!(ClientFrame::route_of(r#"{"action":"ping"}"#), "ping");
        assert_eq!(ClientFrame::route_of("ping"), "$default");
        assert_eq!(ClientFrame::route_of(r#"{"action":3}"#), "$default");
        let page: InboxPage = serde_json::from_str(r#"{"items":[],"unread":3}"#).unwrap();
        assert_eq!(page.unread, 3);
    }
}
