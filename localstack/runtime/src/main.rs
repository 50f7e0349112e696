//! `fmn-local`: the whole of fmn on one machine.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fmn_local::{demo, deploy, emails, emulator, runtime};
use tokio_util::sync::CancellationToken;

/// Runs fmn locally against an AWS emulator.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start everything: emulator, stack, functions, bridge, demo traffic; print emails.
    Up {
        /// Port of the embedded moto server.
        #[arg(long, default_value_t = 5100)]
        moto_port: u16,
        /// Port the demo fedmsg publisher binds on 127.0.0.1.
        #[arg(long, default_value_t = 9940)]
        fedmsg_port: u16,
        /// Pause between demo messages, in milliseconds.
        #[arg(long, default_value_t = 1500)]
        interval_ms: u64,
        /// Stack name.
        #[arg(long, default_value = "fmn-local")]
        stack: String,
        /// Preferences to load (a JSON list).
        #[arg(long)]
        preferences: Option<PathBuf>,
        /// Messages to replay (fedmsg envelopes, JSON lines).
        #[arg(long)]
        messages: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws=warn")),
        )
        .init();
    let Command::Up {
        moto_port,
        fedmsg_port,
        interval_ms,
        stack,
        preferences,
        messages,
    } = Args::parse().command;
    let root = fmn_local::repo_root();
    let stop = CancellationToken::new();

    // The emulator: a LocalStack already on 4566, else the embedded moto server. SES v2 is
    // not in LocalStack's free tier, so it always goes to moto.
    let moto = emulator::Moto::start(&root, moto_port).await?;
    let localstack = "http://127.0.0.1:4566";
    let (aws, emulator_name) = if emulator::localstack_at(localstack).await {
        (
            fmn_local::emulator_config(localstack).await,
            "LocalStack on 127.0.0.1:4566 (SES v2 on moto)",
        )
    } else {
        (
            fmn_local::emulator_config(&moto.endpoint).await,
            "moto server",
        )
    };
    let ses = fmn_local::emulator_config(&moto.endpoint).await;
    tracing::info!(emulator = emulator_name, "deploying infra/template.yaml");
    let template = std::fs::read_to_string(root.join("infra/template.yaml"))?;
    let deployed = deploy::deploy(&aws, &template, &stack, demo::SENDER).await?;
    // SES identities live where SES does.
    deploy::verify_sender(&ses, demo::SENDER).await?;

    let prefs_path = preferences.unwrap_or_else(|| root.join("localstack/demo/preferences.json"));
    let table = fmn_store::PreferenceTable::new(
        aws_sdk_dynamodb::Client::new(&aws),
        deployed.output("PreferencesTableName")?,
    );
    for prefs in demo::read_preferences(&prefs_path)? {
        table.put(&prefs).await?;
    }

    let mut tasks = runtime::start(&aws, &ses, &deployed, demo::SENDER, stop.clone()).await?;
    let address = format!("tcp://127.0.0.1:{fedmsg_port}");
    let bridge = fmn_bridge::Config {
        fedmsg: vec![address.parse()?],
        queue_url: deployed.output("IncomingQueueUrl")?.to_owned(),
        ..Default::default()
    };
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let bridge_stop = stop.clone();
    tasks.spawn(async move {
        if let Err(e) = fmn_bridge::run(bridge, sqs, bridge_stop).await {
            tracing::error!(error = %e, "bridge stopped");
        }
    });
    let sample = demo::read_messages(
        &messages.unwrap_or_else(|| root.join("localstack/demo/messages.jsonl")),
    )?;
    let publisher_stop = stop.clone();
    tasks.spawn(async move {
        let interval = Duration::from_millis(interval_ms);
        if let Err(e) = demo::publish_forever(&address, sample, interval, publisher_stop).await {
            tracing::error!(error = %e, "demo publisher stopped");
        }
    });

    println!(
        "\nfmn is running on {emulator_name}.\n\
         - AWS endpoint:   {}\n\
         - emails also at: {}/moto-api/data.json (or: AWS_ENDPOINT_URL={} cargo run -q -p fmn-cli -- emails --follow)\n\
         - preferences:    {}\n\
         New emails are printed below. Ctrl-C stops everything.\n",
        aws.endpoint_url().unwrap_or_default(),
        moto.endpoint,
        moto.endpoint,
        prefs_path.display(),
    );
    let watch_stop = stop.clone();
    let ses_endpoint = moto.endpoint.clone();
    tasks.spawn(async move {
        let mut seen = 0;
        while !watch_stop.is_cancelled() {
            if let Ok(all) = emails::list(&ses_endpoint).await {
                for email in all.iter().skip(seen) {
                    println!("📧 to {}: {}", email.to.join(", "), email.subject);
                }
                seen = all.len().max(seen);
            }
            tokio::select! {
                () = watch_stop.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });

    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("stopping");
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    moto.stop().await;
    Ok(())
}
