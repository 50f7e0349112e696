//! fmn on one machine.
//!
//! - [`emulator`]: the embedded AWS emulator (moto server from the project venv, on
//!   127.0.0.1), or a LocalStack that is already listening.
//! - [`deploy`]: deploys `infra/template.yaml` unchanged to the emulator and reads its
//!   outputs ([`Stack`]).
//! - [`functions`]: every function built from its deployed environment, through one table
//!   (stack output → constructor).
//! - [`runtime`]: runs the Lambda handlers in-process, fed from their queues the way
//!   Lambda's SQS event-source mapping would (batch size and window from the deployed
//!   mapping, the queue's visibility timeout, partial batch failures, redrive by SQS).
//! - [`schedule`]: fires the scheduled functions (ownership sync, digests) on their
//!   EventBridge schedule.
//! - [`api`]: the HTTP API served with `axum::serve` on 127.0.0.1.
//! - [`demo`]: demo preferences and a ZeroMQ publisher replaying real bus messages.
//! - [`emails`]: reads back the emails the emulator accepted.
//! - [`irc`]: a local ngircd and an IRC watcher client; [`matrix`]: a local Synapse and a
//!   recipient's client.
//! - [`webhook`]: a loopback webhook receiver that checks signatures.

pub mod api;
pub mod demo;
pub mod deploy;
pub mod emails;
pub mod emulator;
pub mod files;
pub mod functions;
pub mod irc;
pub mod matrix;
pub mod runtime;
pub mod schedule;
pub mod webhook;

pub use deploy::Stack;

/// An AWS configuration for an emulator at `endpoint` (dummy credentials, us-east-1).
pub async fn emulator_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "fmn-local",
        ))
        .load()
        .await
}

/// The repository root (this crate lives in `localstack/runtime`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
