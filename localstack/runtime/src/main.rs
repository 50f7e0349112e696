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
        /// Port of the local IRC server (ngircd) on 127.0.0.1.
        #[arg(long, default_value_t = 6667)]
        irc_port: u16,
        /// Nick whose IRC notifications are printed (an IRC address in the preferences).
        #[arg(long, default_value = "ralph")]
        irc_watch: String,
        /// Port of the HTTP API on 127.0.0.1.
        #[arg(long, env = "FMN_API_PORT", default_value_t = 8080)]
        api_port: u16,
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
        api_port,
        irc_port,
        irc_watch,
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
    // Maintainer data comes from a local stand-in for dist-git, never the internet.
    let files = fmn_local::files::FileServer::start(stop.clone()).await?;
    files.put(
        fmn_local::files::OWNERS_PATH,
        std::fs::read(root.join("localstack/demo/pagure_owner_alias.json"))?,
    );
    let owners_url = files.url(fmn_local::files::OWNERS_PATH);
    // IRC notifications go to a local ngircd, which people can join with any IRC client.
    let ircd = fmn_local::irc::Ngircd::start(irc_port, None).await?;
    let mut watcher = fmn_local::irc::Watcher::connect(irc_port, &irc_watch).await?;
    let irc_port_text = irc_port.to_string();
    let deployed = deploy::deploy_with(
        &aws,
        &template,
        &stack,
        demo::SENDER,
        &[
            ("OwnershipSourceUrl", &owners_url),
            ("IrcServer", "127.0.0.1"),
            ("IrcPort", &irc_port_text),
            ("IrcTls", "false"),
        ],
    )
    .await?;
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
    // The HTTP API, and a token for the demo user `alice` to try it with.
    let (api_url, api_state) = fmn_local::api::serve(
        &aws,
        fmn_local::api::config(&deployed)?,
        api_port,
        stop.clone(),
    )
    .await?;
    let demo_token = fmn_local::api::mint(&api_state, "alice", false, Some(7 * 24 * 3600)).await?;
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
         - HTTP API:       {api_url}/api/v1 (OpenAPI: {api_url}/api/v1/openapi.json)\n\
         - API token:      {demo_token} (user alice; curl -H \"Authorization: Bearer $TOKEN\" {api_url}/api/v1/me)\n\
         New emails are printed below. Ctrl-C stops everything.\n",
        aws.endpoint_url().unwrap_or_default(),
        moto.endpoint,
        moto.endpoint,
        prefs_path.display(),
    );
    println!(
        "IRC: ngircd on 127.0.0.1:{irc_port}; notifications to {irc_watch} are printed below \
         (any IRC client can connect and use another nick from the preferences)\n"
    );
    let irc_stop = stop.clone();
    tasks.spawn(async move {
        while !irc_stop.is_cancelled() {
            if let Some(line) = watcher.next(Duration::from_secs(1)).await {
                println!("💬 IRC to {}: {}", watcher.nick, line.text);
            }
        }
    });
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
    ircd.stop().await;
    moto.stop().await;
    Ok(())
}
