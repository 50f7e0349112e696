//! fmn's state in DynamoDB.
//!
//! - [`PreferenceTable`]: each user's [`Preferences`](fmn_rules::Preferences) as one item,
//!   plus a version stamp bumped in the same transaction as every write, so that a warm
//!   matcher re-reads preferences only when something changed.
//! - [`HistoryLog`], in the deliveries table: each user's delivery history (what was sent,
//!   where, which filter fired, how it went), one item per user and day, bounded.
//! - [`DeliveryTable`]: one record per (message, user, context, address) delivery with a TTL,
//!   which makes redelivered jobs send nothing twice.
//! - [`OwnershipTable`]: the distribution's maintainer data, as snapshots replaced
//!   atomically by the scheduled sync and read by the matcher.
//! - The API table: [`TokenStore`] (personal and feed tokens, hashed), [`ConfirmationStore`]
//!   (pending address confirmations), [`RecentMessages`] (the log the API previews
//!   filters against) and [`SessionStore`] (the web app's sessions and sign-ins, hashed).

mod api_table;
mod confirmations;
mod deliveries;
mod delivery_log;
mod dynamo;
mod history;
mod ownership;
mod preferences;
mod recent;
mod sessions;
mod tokens;

pub use confirmations::{
    ConfirmOutcome, ConfirmationLimits, ConfirmationStore, Limited, PendingConfirmation,
};
pub use deliveries::{Claim, DeliveryTable};
pub use delivery_log::{
    Delivered, DeliveryError, DeliveryLog, MemoryDeliveryLog, SendResult, deliver_all, deliver_once,
};
pub use dynamo::{error_text as dynamo_error_text, is_condition_failure};
pub use history::{FiredFilter, HistoryEntry, HistoryLog, HistoryState};
pub use ownership::{OwnershipTable, Replaced, Snapshot, snapshot_id};
pub use preferences::{MAX_ADDRESS_BYTES, PreferenceTable, conflict_pause};
pub use recent::RecentMessages;
pub use sessions::{PendingLogin, SessionRecord, SessionStore};
pub use tokens::{TokenRecord, TokenStore};

/// A table operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB answered with an error or could not be reached; worth retrying.
    #[error("dynamodb: {0}")]
    Dynamo(String),
    /// A conditional write lost to a concurrent one; the caller may retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored item is not what fmn writes.
    #[error("corrupt item {key}: {problem}")]
    Corrupt {
        /// The item's key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl StoreError {
    fn dynamo<E: std::error::Error>(e: E) -> Self {
        StoreError::Dynamo(dynamo_error_text(&e))
    }
}
