//! Test harness: a real moto server on 127.0.0.1, the template deployed to it, and the
//! functions running in the local runtime. A missing emulator fails the test, never skips it.

use std::time::{Duration, Instant};

pub mod faults;
pub mod inbox;

use fmn_local::emulator::deploy;
use fmn_local::{Stack, lambda::runtime};
use tokio_util::sync::CancellationToken;

/// A running stack on a fresh moto server.
#[derive(Debug)]
pub struct Harness {
    /// The emulator (stopped on drop).
    pub moto: fmn_emulator::Moto,
    /// AWS configuration pointing at it.
    pub aws: aws_config::SdkConfig,
    /// The deployed stack's outputs.
    pub stack: Stack,
    /// The loopback stand-in for dist-git (maintainer data at [`fmn_local::standins::files::OWNERS_PATH`]).
    pub files: fmn_local::standins::files::FileServer,
    /// Cancels everything the harness started.
    pub stop: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
}

impl Harness {
    /// Starts moto, deploys the template, verifies the sender, stores `prefs`.
    pub async fn deploy(prefs: &[fmn_rules::Preferences]) -> anyhow::Result<Harness> {
        Self::deploy_with(prefs, &[]).await
    }

    /// [`Harness::deploy`] with template parameters of the test's own (`FloodMax`, …).
    pub async fn deploy_with(
        prefs: &[fmn_rules::Preferences],
        parameters: &[(&str, &str)],
    ) -> anyhow::Result<Harness> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let root = fmn_local::repo_root();
        let moto = fmn_emulator::Moto::start(&root, fmn_emulator::free_port()?).await?;
        let aws = fmn_emulator::config(&moto.endpoint).await;
        let template = std::fs::read_to_string(root.join("infra/template.yaml"))?;
        // dist-git's maintainer data, served on loopback (the demo's realistic file).
        let stop = CancellationToken::new();
        let files = fmn_local::standins::files::FileServer::start(stop.clone()).await?;
        files.put(
            fmn_local::standins::files::OWNERS_PATH,
            std::fs::read(root.join("localstack/demo/pagure_owner_alias.json"))?,
        );
        let owners_url = files.url(fmn_local::standins::files::OWNERS_PATH);
        let stack = deploy::deploy_with(
            &aws,
            &template,
            "fmn-e2e",
            fmn_local::demo::SENDER,
            &[&[("OwnershipSourceUrl", owners_url.as_str())], parameters].concat(),
        )
        .await?;
        deploy::verify_sender(&aws, fmn_local::demo::SENDER).await?;
        let table = fmn_store::PreferenceTable::new(
            aws_sdk_dynamodb::Client::new(&aws),
            stack.output("PreferencesTableName")?,
        );
        for p in prefs {
            table.put(p).await?;
        }
        Ok(Harness {
            moto,
            aws,
            stack,
            files,
            stop,
            tasks: Default::default(),
        })
    }

    /// Starts the functions in the local runtime.
    pub async fn start_functions(&mut self) -> anyhow::Result<()> {
        let pollers = runtime::start(
            &fmn_local::lambda::functions::AwsConfigs::same(&self.aws),
            &self.stack,
            self.stop.clone(),
        )
        .await?;
        self.tasks = pollers;
        Ok(())
    }

    /// Starts the bridge on `endpoints`.
    pub fn start_bridge(&mut self, endpoints: Vec<fmn_bridge::Endpoint>) -> anyhow::Result<()> {
        let config = fmn_bridge::Config {
            fedmsg: endpoints,
            queue_url: self.stack.output("IncomingQueueUrl")?.to_owned(),
            ..Default::default()
        };
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            if let Err(e) = fmn_bridge::run(config, sqs, stop).await {
                panic!("bridge failed: {e}");
            }
        });
        Ok(())
    }

    /// Every email the emulator accepted so far.
    pub async fn emails(&self) -> anyhow::Result<Vec<fmn_local::emulator::emails::SentEmail>> {
        fmn_local::emulator::emails::list(&self.moto.endpoint).await
    }

    /// Waits until at least `n` emails were accepted, or `timeout`.
    pub async fn wait_for_emails(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<fmn_local::emulator::emails::SentEmail>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let emails = self.emails().await?;
            if emails.len() >= n || tokio::time::Instant::now() >= deadline {
                return Ok(emails);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Puts a Koji build of `owner`'s (message `id`, package `<owner>-pkg-<id>`) on the
    /// incoming queue, as the bridge does; returns when.
    pub async fn publish_build(&self, id: &str, owner: &str) -> anyhow::Result<Instant> {
        let body = serde_json::json!({
            "topic": "org.fedoraproject.prod.buildsys.build.state.change",
            "msg_id": id,
            "timestamp": 1_700_000_000,
            "msg": {"owner": owner, "name": format!("{owner}-pkg-{id}"), "version": "1",
                    "release": "1.fc40", "build_id": 7, "new": 1, "old": 0,
                    "instance": "primary"},
        });
        let at = Instant::now();
        aws_sdk_sqs::Client::new(&self.aws)
            .send_message()
            .queue_url(self.stack.output("IncomingQueueUrl")?)
            .message_body(body.to_string())
            .send()
            .await?;
        Ok(at)
    }

    /// Messages on a queue, visible or in flight.
    pub async fn queue_depth(&self, url: &str) -> anyhow::Result<u64> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = aws_sdk_sqs::Client::new(&self.aws)
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        let get = |a: &A| {
            attrs
                .get(a)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(get(&A::ApproximateNumberOfMessages) + get(&A::ApproximateNumberOfMessagesNotVisible))
    }

    /// Sets environment variables of the deployed function named by the stack output
    /// `function_output` (e.g. points the IRC sender at a local server); takes effect for
    /// functions started after it.
    pub async fn set_function_env(
        &self,
        function_output: &str,
        vars: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        fmn_local::emulator::deploy::set_function_environment(
            &self.aws,
            self.stack.output(function_output)?,
            vars,
        )
        .await
    }

    /// Stops everything and waits for it.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.moto.stop().await;
    }
}

/// A fedmsg publisher socket: sends the two fedmsg frames.
pub async fn publish(
    socket: &mut zeromq::PubSocket,
    topic: &str,
    body: &[u8],
) -> anyhow::Result<()> {
    use zeromq::SocketSend;
    let mut frames = zeromq::ZmqMessage::from(topic.to_owned());
    frames.push_back(body.to_vec().into());
    socket.send(frames).await?;
    Ok(())
}

/// Serves the HTTP API's Router on 127.0.0.1 (a free port) until `stop`; returns its base
/// URL (`http://127.0.0.1:PORT`, also set as `config.base_url`) and its state.
pub async fn start_api(
    aws: &aws_config::SdkConfig,
    config: fmn_api::ApiConfig,
    stop: CancellationToken,
) -> anyhow::Result<(String, fmn_api::AppState)> {
    fmn_local::api::serve(aws, config, 0, stop).await
}
