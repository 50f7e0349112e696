//! The one sender pipeline every delivery context shares.
//!
//! A sender is a [`Pipeline`] around a [`Channel`]: the pipeline owns the steps that are the
//! same everywhere (parse the job, pass notifications through the digest and flood
//! [gate](fmn_digest::Admit), then for each address claim the delivery key, send, and mark
//! it sent or give the claim up, and report the failures joined); the channel only renders
//! an [`Item`] once and sends it to one address, saying whether a failure is temporary or
//! permanent ([`SendError`]). Delivery keys come from the item ([`Item::delivery_key`]),
//! one function for every channel. Each notification's outcome (sent, held, failed and
//! why) goes to the user's delivery [`History`] when the pipeline has one
//! ([`Pipeline::with_history`]).
//!
//! ```
//! use fmn_delivery::{Channel, Item, Pipeline, SendError, Target};
//! use std::sync::Mutex;
//!
//! /// Writes one line per address into a list.
//! #[derive(Default)]
//! struct Lines(Mutex<Vec<String>>);
//!
//! impl Channel for Lines {
//!     type Message = String;
//!     const NAME: &'static str = "line";
//!     fn render(&self, item: &Item<'_>) -> String {
//!         format!("a {} for {}", item.kind(), item.user())
//!     }
//!     async fn send(&self, target: &Target<'_>, line: &String) -> Result<(), SendError> {
//!         self.0.lock().unwrap().push(format!("{}: {line}", target.address));
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let sender = Pipeline::new(Lines::default(), fmn_store::MemoryDeliveryLog::default());
//! let job = r#"{"confirmation": {"user": "alice", "context": "irc", "address": "alice_",
//!     "code": "482913", "expires_at": 1764000000}}"#;
//! // Twice: delivered once.
//! sender.handle(fmn_queue::test_util::sqs_event(&[job, job])).await;
//! assert_eq!(*sender.channel().0.lock().unwrap(), ["alice_: a confirmation for alice"]);
//! # });
//! ```

mod addresses;
mod channel;
mod config;
mod disable;
mod history;
mod item;
mod pipeline;

pub use addresses::{AddressBook, Deliverable, Secret, Unchecked};
pub use channel::{Channel, SendError, Target};
pub use config::HttpSenderConfig;
pub use disable::{AddressDisabler, disabled_notices};
pub use history::{History, MemoryHistory, NoHistory, entry as history_entry};
pub use item::{Content, Item};
pub use pipeline::{Pipeline, parse_job};
