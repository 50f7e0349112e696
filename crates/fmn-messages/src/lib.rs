//! Fedora bus messages of both generations, normalised into one [`Message`].
//!
//! A raw bus message is either a fedmsg envelope (`topic`, `msg`, `msg_id`, `timestamp`, …)
//! or a fedora-messaging message (`topic`, `headers`, `body`, `id`). [`Catalog::normalize`]
//! turns either into a [`Message`]: who it concerns, who did it, which artifacts it is about,
//! and how to say it in one line. What to extract for each topic is data (the catalog files
//! under `catalog/`), not code.
//!
//! ```
//! let raw = serde_json::json!({
//!     "topic": "org.fedoraproject.prod.buildsys.build.state.change",
//!     "msg_id": "2024-abc",
//!     "timestamp": 1700000000,
//!     "msg": {"owner": "alice", "name": "kernel", "version": "6.1", "release": "1.fc40",
//!             "new": 1, "instance": "primary", "build_id": 1, "task_id": 2},
//! });
//! let message = fmn_messages::Catalog::builtin().normalize(&raw).unwrap();
//! assert_eq!(message.app, "buildsys");
//! assert!(message.artifacts.rpms.contains("kernel"));
//! ```
//!
//! [`meta_line`] / [`meta_line_json`] produce what `fmn meta` prints for one input line, and
//! [`Catalog::applications`] lists the applications the catalog knows.

mod catalog;
mod expr;
mod message;
mod meta;
mod schema;

pub use catalog::{Catalog, CatalogError};
pub use message::{Artifacts, Generation, Message, MessageError, Severity};
pub use meta::{meta_line, meta_line_json};
