//! Finding or starting an AWS emulator: the embedded moto server, or LocalStack
//! (`localstack-core` from its own venv, `.venv-localstack`, in host mode without Docker:
//! its SQS, S3 and CloudFormation validate as AWS does; its Lambda needs Docker).

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
        for _ in 0..600 {
            if localstack_at(&localstack.endpoint).await {
                return Ok(localstack);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
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

/// Why an emulator cannot host fmn's stack.
#[derive(Debug, thiserror::Error)]
pub enum Unfit {
    /// Lambda functions end in state Failed (LocalStack without Docker).
    #[error("cannot create Lambda functions ({0})")]
    NoLambda(String),
    /// The probe itself failed.
    #[error("did not answer a Lambda CreateFunction as expected ({0})")]
    Probe(String),
}

/// Creates (and deletes) a throw-away Lambda function to learn whether the emulator at
/// `aws` can create functions. LocalStack without Docker accepts CreateFunction and then
/// puts the function in state Failed ("Installation of lambda-runtime ... failed").
pub async fn lambda_works(aws: &aws_config::SdkConfig) -> Result<(), Unfit> {
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{FunctionCode, Runtime, State};
    let lambda = aws_sdk_lambda::Client::new(aws);
    let name = format!("fmn-probe-{}", uuid::Uuid::new_v4().simple());
    let zip = super::deploy::placeholder_zip().map_err(|e| Unfit::Probe(e.to_string()))?;
    lambda
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role("arn:aws:iam::000000000000:role/fmn-probe")
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
        .map_err(|e| Unfit::Probe(format!("{}", aws_sdk_lambda::error::DisplayErrorContext(e))))?;
    let mut verdict = Err(Unfit::NoLambda(
        "the function did not become Active within 30 s".into(),
    ));
    for _ in 0..300 {
        let state = lambda
            .get_function_configuration()
            .function_name(&name)
            .send()
            .await
            .map_err(|e| {
                Unfit::Probe(format!("{}", aws_sdk_lambda::error::DisplayErrorContext(e)))
            });
        match state {
            Ok(c) if c.state() == Some(&State::Active) => {
                verdict = Ok(());
                break;
            }
            Ok(c) if c.state() == Some(&State::Failed) => {
                verdict = Err(Unfit::NoLambda(
                    c.state_reason().unwrap_or("state Failed").to_owned(),
                ));
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => {
                verdict = Err(e);
                break;
            }
        }
    }
    let _ = lambda.delete_function().function_name(&name).send().await;
    verdict
}

/// The one sentence `fmn-local up` prints when the LocalStack at `endpoint` cannot host
/// fmn's stack, with how to proceed.
pub fn unfit_message(endpoint: &str, why: &Unfit) -> String {
    format!(
        "The LocalStack at {endpoint} {why}, which it needs Docker for: start LocalStack with \
         Docker (docker run --rm -p 127.0.0.1:4566:4566 -v /var/run/docker.sock:/var/run/docker.sock \
         localstack/localstack:4.9.2), or stop it to use the embedded moto server."
    )
}
