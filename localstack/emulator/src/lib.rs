//! Starting the AWS emulator fmn runs against on one machine, for the local runtime
//! (`fmn-local`) and the tests alike: the embedded moto server from the project venv
//! ([`Moto`], one per caller, or [`SharedMoto`], one for every test process of a run), or
//! LocalStack ([`LocalStack`]); each on 127.0.0.1, used through [`config`].

use std::net::TcpListener;
use std::time::Duration;

mod servers;
mod shared;

pub use servers::{LocalStack, Moto, localstack_at};
pub use shared::SharedMoto;

/// The emulator could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The venv is missing moto.
    #[error("{0} not found: run localstack/bootstrap.sh (the README's commands do)")]
    NotInstalled(String),
    /// It started but never answered (which emulator, where).
    #[error("{0} did not become ready")]
    NotReady(String),
    /// Spawning failed.
    #[error("starting the emulator: {0}")]
    Io(#[from] std::io::Error),
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// An AWS configuration for an emulator at `endpoint` (dummy credentials, us-east-1).
pub async fn config(endpoint: &str) -> aws_config::SdkConfig {
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

/// Whether `url` answers with a success within `tries` tenths of a second: the readiness
/// wait of every emulator here (moto at `/moto-api/`, LocalStack at its health check).
async fn ready(url: &str, tries: usize) -> bool {
    let Ok(http) = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return false;
    };
    for attempt in 0..tries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if http
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
    }
    false
}

/// Where moto answers when it is ready.
fn moto_ready_url(endpoint: &str) -> String {
    format!("{endpoint}/moto-api/")
}
