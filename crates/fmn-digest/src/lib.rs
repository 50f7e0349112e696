//! Held notifications: digests and the flood limit.
//!
//! Every sender asks its [`Gate`] before delivering a notification:
//! - when the context's settings ask for a digest ([`ContextSettings::is_digest`]), the
//!   notification is *held* in the held table instead of sent;
//! - otherwise, when more than [`FloodLimit::max`] notifications for the same (user, context)
//!   arrived in the current window, the rest are held too and sent as one summary when the
//!   window ends.
//!
//! The scheduled digest function finds the groups that are [`HeldStore::due`], takes a
//! bounded [`Batch`] of each ([`HeldStore::take_batch`]), delivers it (email: one message
//! grouped by application; other contexts: [`Batch::summary_job`] on the context's queue),
//! and only then [`HeldStore::finish`]es it. A batch is recorded before delivery and resumed by
//! a rerun, and its id is the delivery key senders claim, so a failure midway loses nothing
//! and a rerun never sends twice.
//!
//! [`ContextSettings::is_digest`]: fmn_rules::ContextSettings::is_digest

mod gate;
mod store;

pub use gate::{Admission, Admit, FloodLimit, Gate, NoGate};
pub use store::{Batch, DIGEST_TOPIC, DueGroup, FloodAdmission, Held, HeldStore, MAX_BATCH};

/// A held-table operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// DynamoDB answered with an error or could not be reached; worth retrying.
    #[error("dynamodb: {0}")]
    Dynamo(String),
    /// A stored item is not what fmn writes.
    #[error("corrupt held item {key}: {problem}")]
    Corrupt {
        /// The item's key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl DigestError {
    pub(crate) fn dynamo<E: std::error::Error>(e: E) -> Self {
        DigestError::Dynamo(fmn_store::dynamo_error_text(&e))
    }
}
