//! fmn on one machine, in three roles that do not lean on each other in a circle (the
//! Lambda emulation and the stand-ins may use the emulator module, never each other):
//!
//! - [`emulator`]: the AWS emulator and what fmn does on it. Starting the emulator itself
//!   (moto server from the project venv on 127.0.0.1, or a LocalStack) is the
//!   `fmn-emulator` crate's, shared with the tests; here: [`emulator::deploy`] deploys
//!   `infra/template.yaml` unchanged and reads its outputs ([`Stack`]),
//!   [`emulator::emails`] reads back the emails its SES accepted, and a probe tells whether
//!   a LocalStack can host the stack.
//! - [`lambda`]: the Lambda emulation. [`lambda::functions`] builds every function from its
//!   deployed environment through one table (stack output → constructor);
//!   [`lambda::runtime`] runs the handlers in-process, fed from their queues the way
//!   Lambda's SQS event-source mapping would (batch size and window from the deployed
//!   mapping, the queue's visibility timeout, partial batch failures, redrive by SQS);
//!   [`lambda::schedule`] fires the scheduled functions (ownership sync, digests) on their
//!   EventBridge schedule.
//! - [`standins`]: local stand-ins for the services outside AWS: [`standins::irc`] (ngircd
//!   and an IRC watcher client), [`standins::matrix`] (Synapse and a recipient's client),
//!   [`standins::webhook`] (a loopback receiver that checks signatures), [`standins::ntfy`]
//!   (an ntfy server stand-in that prints pushes),
//!   [`standins::files`] (dist-git's maintainer data) and [`standins::oidc`] (a development
//!   OpenID provider the web app signs in with).
//!
//! And around them: [`api`], the HTTP API and web app served with `axum::serve` on 127.0.0.1,
//! [`gateway`], the WebSocket API (API Gateway's protocol and management API, 410 included)
//! on 127.0.0.1 over the deployed WebSocket function, and
//! [`demo`], demo data and a ZeroMQ publisher replaying real bus messages, and [`bench`],
//! the throughput benchmark (`up --bench N`); the `fmn-local` binary (`up`, `emails`) puts
//! everything together.

pub mod api;
pub mod bench;
pub mod demo;
pub mod emulator;
pub mod gateway;
pub mod lambda;
pub mod standins;

pub use emulator::deploy::Stack;

/// The repository root (this crate lives in `localstack/runtime`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
