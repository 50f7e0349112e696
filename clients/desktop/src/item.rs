//! What the inbox API and the WebSocket carry (the `fmn-inbox` contract).

use serde::{Deserialize, Serialize};

/// One notification in a user's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    /// Time-sortable: string order is time order.
    pub id: String,
    pub message_id: String,
    pub topic: String,
    pub summary: String,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub filter_url: Option<String>,
    pub severity: String,
    pub created: String,
    #[serde(default)]
    pub read: bool,
}
