//! What travels on fmn's queues, owned by one crate so producers and consumers agree.
//!
//! - `incoming`: the raw bus message as received (a fedmsg envelope or a fedora-messaging
//!   `{topic, headers, body, id}` object), with the topic in the [`TOPIC_ATTRIBUTE`] message
//!   attribute. The matcher normalises it.
//! - one queue per delivery context: a [`ContextJob`] as JSON (a [`NotificationJob`], or a
//!   [`ConfirmationJob`] wrapped as `{"confirmation": …}`, or a [`NoticeJob`] as
//!   `{"notice": …}`).
//!
//! [`process_batch`] runs a per-record handler over an SQS event and reports the records
//! that failed, so one bad record never fails its batch.

mod batch;
mod job;
pub mod oversize;
mod sqs;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod wire;

pub use batch::{RecordError, batch_response, map_batch, process_batch, record_bus_id};
pub use job::{ConfirmationJob, ContextJob, MessageDigest, NoticeJob, NotificationJob};
pub use sqs::{Outgoing, Queue, QueueError, SqsQueue, error_chain};

/// Message attribute carrying the bus topic on the `incoming` queue.
pub const TOPIC_ATTRIBUTE: &str = "topic";
/// Message attribute carrying the bus message's id (set by the bridge on `incoming` and by
/// the matcher on jobs), so that every function's logs name it (see [`process_batch`]).
pub const BUS_ID_ATTRIBUTE: &str = "bus_id";
/// Message attribute carrying why a message was quarantined (on the incoming DLQ).
pub const QUARANTINE_REASON_ATTRIBUTE: &str = "quarantine_reason";
