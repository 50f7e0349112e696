//! An emulator of the caller's own: moto server, or LocalStack (`localstack-core` from its
//! own venv, `.venv-localstack`, in host mode without Docker: its SQS, S3 and
//! CloudFormation validate as AWS does; its Lambda needs Docker).

use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::{EmulatorError, moto_ready_url, ready};

/// A moto server this process started; stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
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
        if ready(&moto_ready_url(&moto.endpoint), 150).await {
            return Ok(moto);
        }
        Err(EmulatorError::NotReady(format!(
            "moto server on {}",
            moto.endpoint
        )))
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// True when a LocalStack answers its health check at `endpoint`.
pub async fn localstack_at(endpoint: &str) -> bool {
    ready(&format!("{endpoint}/_localstack/health"), 1).await
}

/// A LocalStack this process started (localstack-core on the host, no Docker), on
/// 127.0.0.1; stopped when dropped. Its state lives in a temporary directory.
#[derive(Debug)]
pub struct LocalStack {
    child: Child,
    _state: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl LocalStack {
    /// Starts `localstack start --host` from `.venv-localstack` (localstack/bootstrap.sh
    /// creates it) on 127.0.0.1:`port` and waits until its health check answers. Queue URLs
    /// are path-style on 127.0.0.1 (no `*.localhost.localstack.cloud` names to resolve).
    pub async fn start(root: &Path, port: u16) -> Result<LocalStack, EmulatorError> {
        let cli = root.join(".venv-localstack/bin/localstack");
        if !cli.exists() {
            return Err(EmulatorError::NotInstalled(cli.display().to_string()));
        }
        let state = tempfile::tempdir()?;
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(cli)
            .args(["start", "--host", "--no-banner"])
            .env("GATEWAY_LISTEN", &listen)
            .env("LOCALSTACK_HOST", &listen)
            .env("SQS_ENDPOINT_STRATEGY", "path")
            .env("DNS_ADDRESS", "0")
            .env("LOCALSTACK_VOLUME_DIR", state.path())
            .env("SKIP_SSL_CERT_DOWNLOAD", "1")
            .env("DISABLE_EVENTS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let endpoint = format!("http://{listen}");
        let localstack = LocalStack {
            child,
            _state: state,
            endpoint,
        };
        if ready(&format!("{}/_localstack/health", localstack.endpoint), 600).await {
            return Ok(localstack);
        }
        Err(EmulatorError::NotReady(format!(
            "LocalStack on {}",
            localstack.endpoint
        )))
    }

    /// Stops it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
