//! Finding or starting an AWS emulator.

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A moto server this process started; stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

/// The emulator could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The venv is missing moto.
    #[error("{0} not found: run localstack/bootstrap.sh (the README's commands do)")]
    NotInstalled(String),
    /// It started but never answered.
    #[error("moto server on {0} did not become ready")]
    NotReady(String),
    /// Spawning failed.
    #[error("starting moto server: {0}")]
    Io(#[from] std::io::Error),
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Moto {
    /// Starts moto server from the project venv on 127.0.0.1:`port` and waits until it
    /// answers. It runs through `localstack/moto_server.py`, which is `moto_server` with a
    /// fix that keeps `/moto-api/data.json` readable when Lambda functions exist.
    pub async fn start(root: &Path, port: u16) -> Result<Moto, EmulatorError> {
        let python = root.join(".venv/bin/python");
        if !root.join(".venv/bin/moto_server").exists() {
            return Err(EmulatorError::NotInstalled(
                root.join(".venv/bin/moto_server").display().to_string(),
            ));
        }
        let child = Command::new(python)
            .arg(root.join("localstack/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let moto = Moto { child, endpoint };
        for _ in 0..150 {
            if answers(&format!("{}/moto-api/data.json", moto.endpoint)).await {
                return Ok(moto);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(EmulatorError::NotReady(moto.endpoint.clone()))
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn answers(url: &str) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build();
    match client {
        Ok(c) => c
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()),
        Err(_) => false,
    }
}

/// True when a LocalStack answers its health check at `endpoint`.
pub async fn localstack_at(endpoint: &str) -> bool {
    answers(&format!("{endpoint}/_localstack/health")).await
}
