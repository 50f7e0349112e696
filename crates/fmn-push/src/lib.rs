//! Push notifications to phones (and desktops) through UnifiedPush: the user's address is a
//! push endpoint URL their distributor gave them (an ntfy topic URL, or any distributor's),
//! and delivering is one POST to it, following the UnifiedPush server rules:
//!
//! - the body is at most [`MAX_BODY`] (4096) bytes ([`Push`] fits it);
//! - any 2xx is delivered (201 per the rules; ntfy answers 200);
//! - 404 or 410: the endpoint is gone for good ([`PushError::Gone`]: the sender disables
//!   the address and tells its owner);
//! - 429: slow down ([`PushError::Throttled`]: the sender fails the job and SQS delivers it
//!   again after the queue's visibility timeout; no waiting in the function).
//!
//! An endpoint on an **ntfy** server gets ntfy's headers too (`Title`, `Click`, `Tags`,
//! `Priority` from the message's severity) and a plain-text body, which the ntfy app shows
//! as is. Whether a server is ntfy is asked once per origin and remembered for an hour: ntfy
//! answers `GET /v1/health` with `{"healthy":true}` ([`PushClient::is_ntfy`]). An endpoint
//! with `up=1` in its query is a UnifiedPush registration through ntfy: its body goes to the
//! app that registered it, so it is sent the JSON form like any other distributor's.
//!
//! The [`PushClient`] uses the webhook sender's target guard ([`fmn_webhook::guarded_client`]):
//! no private, loopback or link-local targets unless the operator allows them.
//!
//! ```
//! use fmn_push::{Push, MAX_BODY};
//! let job: fmn_queue::NotificationJob = serde_json::from_str(
//!     include_str!("../../fmn-queue/tests/fixtures/email-job.json")).unwrap();
//! let push = Push::notification(&job);
//! assert!(push.json.len() <= MAX_BODY);
//! assert_eq!(push.ntfy.priority, 3);
//! ```

mod client;
mod payload;

pub use client::{PushClient, PushError};
pub use payload::{MAX_BODY, Ntfy, Push, priority};
