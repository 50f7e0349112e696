//! `fmn-desktop`: desktop popups for fmn. It signs in to the API with a personal token, holds
//! the inbox WebSocket (keepalive pings inside API Gateway's ten-minute idle limit, renewal
//! before its two-hour cap, reconnection with backoff and jitter), backfills from the inbox
//! API after every (re)connect, and shows each new item once through the freedesktop
//! notification service.

pub mod api;
pub mod config;
pub mod popup;
pub mod run;
pub mod seen;

pub use fmn_inbox::InboxItem;
