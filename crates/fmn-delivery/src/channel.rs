//! What a delivery context implements: render once, send to one address.

use std::future::Future;

use crate::Item;

/// Why a send failed, as the pipeline needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// It may succeed later (throttled, server down): the claim is given up and the job
    /// fails, so SQS redelivers it.
    Temporary(String),
    /// It never will (rejected, impossible address): recorded as done, never retried.
    Permanent(String),
    /// Nothing to send to this address now (gone, disabled): no record, no retry.
    Gone(String),
}

/// One send: the item, the address and its delivery key (e.g. a Matrix transaction id is
/// derived from it).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// What is delivered.
    pub item: &'a Item<'a>,
    /// To whom.
    pub address: &'a str,
    /// The delivery's idempotency key ([`Item::delivery_key`]).
    pub key: &'a str,
    /// The address's secret as the batch's address check read it
    /// ([`AddressBook::deliverable_many`](crate::AddressBook::deliverable_many)); `None`
    /// when no check read it (a book that does not read secrets, or an item the check does
    /// not cover: confirmations, notices, digests the digest function sends).
    pub secret: Option<&'a crate::Secret>,
}

/// A delivery context's own part of a sender.
pub trait Channel {
    /// An item rendered for this channel, once for all its addresses.
    type Message: Send + Sync;
    /// What the channel sends, for logs ("email", "IRC message", …).
    const NAME: &'static str;

    /// Refuses items that do not belong on this channel's queue (by default none).
    fn accepts(&self, _item: &Item<'_>) -> Result<(), String> {
        Ok(())
    }

    /// Renders `item`.
    fn render(&self, item: &Item<'_>) -> Self::Message;

    /// Sends `message` to `target.address`.
    fn send(
        &self,
        target: &Target<'_>,
        message: &Self::Message,
    ) -> impl Future<Output = Result<(), SendError>> + Send;
}
