//! `fmn-local`: the whole of fmn on one machine.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fmn_local::emulator::{self, deploy, emails};
use fmn_local::{demo, lambda::runtime};
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
    Up(UpArgs),
    /// List the emails the emulator's SES accepted.
    Emails {
        /// The emulator (default: $AWS_ENDPOINT_URL).
        #[arg(long, env = "AWS_ENDPOINT_URL")]
        endpoint: String,
        /// Keep watching and print new emails as they arrive.
        #[arg(long)]
        follow: bool,
        /// Print the text of each email, decoded as a mail client shows it.
        #[arg(long)]
        full: bool,
        /// Print each email's raw MIME message (headers included).
        #[arg(long)]
        raw: bool,
    },
}

/// What `fmn-local up` runs.
#[derive(Debug, clap::Args)]
struct UpArgs {
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
    /// Port of the development OpenID provider the web app signs in with, on 127.0.0.1.
    #[arg(long, default_value_t = 8090)]
    oidc_port: u16,
    /// Port of the local Matrix homeserver (Synapse) on 127.0.0.1.
    #[arg(long, default_value_t = 8008)]
    matrix_port: u16,
    /// Port of the demo webhook receiver on 127.0.0.1 (the demo preferences name
    /// `http://127.0.0.1:9141/hook`).
    #[arg(long, default_value_t = 9141)]
    webhook_port: u16,
    /// Port of the demo ntfy server stand-in on 127.0.0.1 (the demo preferences name
    /// `http://127.0.0.1:9142/ralph-phone`).
    #[arg(long, default_value_t = 9142)]
    ntfy_port: u16,
    /// Port of the local WebSocket gateway on 127.0.0.1 (the inbox, live: API Gateway's
    /// WebSocket protocol and its `@connections` management API).
    #[arg(long, default_value_t = 8081)]
    socket_port: u16,
    /// Where a LocalStack is looked for; when one answers there, it is used instead of
    /// the embedded moto server (SES v2 stays on moto).
    #[arg(
        long,
        env = "FMN_LOCALSTACK_URL",
        default_value = "http://127.0.0.1:4566"
    )]
    localstack_url: String,
    /// Instead of the demo traffic: the throughput benchmark with this many bus messages
    /// (the emulator's raw rate, then the pipeline, with AWS requests counted), then exit.
    /// The flood limit and digests are set out of the way for it.
    #[arg(long)]
    bench: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,fmn_local=info")),
        )
        .init();
    match Args::parse().command {
        Command::Up(args) => up(args).await,
        Command::Emails {
            endpoint,
            follow,
            full,
            raw,
        } => print_emails(&endpoint, follow, full, raw).await,
    }
}

/// Prints the emails the emulator at `endpoint` accepted (and, with `follow`, new ones as
/// they arrive): a line each, and their text (`full`) or raw MIME message (`raw`).
async fn print_emails(endpoint: &str, follow: bool, full: bool, raw: bool) -> anyhow::Result<()> {
    let mut seen = 0;
    loop {
        let all = emails::list(endpoint).await?;
        for e in all.iter().skip(seen) {
            println!("{}  to {}  {}", e.id, e.to.join(","), e.subject);
            if raw {
                println!("{}\n", e.body);
            } else if full {
                println!("{}\n", e.text);
            }
        }
        seen = seen.max(all.len());
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Starts everything and runs until Ctrl-C.
async fn up(args: UpArgs) -> anyhow::Result<()> {
    let UpArgs {
        moto_port,
        fedmsg_port,
        interval_ms,
        stack,
        preferences,
        messages,
        api_port,
        oidc_port,
        irc_port,
        irc_watch,
        matrix_port,
        webhook_port,
        ntfy_port,
        socket_port,
        localstack_url,
        bench,
    } = args;
    let root = fmn_local::repo_root();
    let stop = CancellationToken::new();

    // The emulator: a LocalStack already listening, else the embedded moto server. SES v2
    // is not in LocalStack's free tier, so it always goes to moto. A LocalStack that cannot
    // create Lambda functions (no Docker) cannot host the stack: say so once, and stop.
    let localstack = fmn_emulator::localstack_at(&localstack_url).await;
    if localstack {
        tracing::info!(%localstack_url, "LocalStack found: checking that it can create Lambda functions");
        let aws = fmn_emulator::config(&localstack_url).await;
        if let Err(why) = emulator::lambda_works(&aws).await {
            eprintln!("{}", emulator::unfit_message(&localstack_url, &why));
            std::process::exit(2);
        }
    }
    tracing::info!("starting moto server on 127.0.0.1:{moto_port}");
    let moto = fmn_emulator::Moto::start(&root, moto_port).await?;
    let (aws, emulator_name) = if localstack {
        (
            fmn_emulator::config(&localstack_url).await,
            format!("LocalStack on {localstack_url} (SES v2 on moto)"),
        )
    } else {
        (
            fmn_emulator::config(&moto.endpoint).await,
            "moto server".to_owned(),
        )
    };
    let ses = fmn_emulator::config(&moto.endpoint).await;
    tracing::info!(emulator = %emulator_name, "deploying infra/template.yaml");
    let template = std::fs::read_to_string(root.join("infra/template.yaml"))?;
    // Maintainer data comes from a local stand-in for dist-git, never the internet.
    let files = fmn_local::standins::files::FileServer::start(stop.clone()).await?;
    files.put(
        fmn_local::standins::files::OWNERS_PATH,
        std::fs::read(root.join("localstack/demo/pagure_owner_alias.json"))?,
    );
    let owners_url = files.url(fmn_local::standins::files::OWNERS_PATH);
    // IRC notifications go to a local ngircd, which people can join with any IRC client.
    let ircd = fmn_local::standins::irc::Ngircd::start(irc_port, None).await?;
    let mut watcher = fmn_local::standins::irc::Watcher::connect(irc_port, &irc_watch).await?;
    let irc_port_text = irc_port.to_string();
    // Matrix notifications go to a local Synapse: a bot account sends, the demo user ralph
    // receives (log in with any Matrix client as ralph / ralph-demo-password).
    tracing::info!("starting Synapse on 127.0.0.1:{matrix_port}");
    let synapse = fmn_local::standins::matrix::Synapse::start(matrix_port, 10.0, 50).await?;
    let bot = synapse
        .register("fmnbot", &uuid::Uuid::new_v4().simple().to_string())
        .await?;
    let ralph = synapse.register("ralph", MATRIX_DEMO_PASSWORD).await?;
    // Webhooks go to a loopback receiver that checks their signatures.
    let (hook_url, mut hooks) =
        fmn_local::standins::webhook::serve(webhook_port, WEBHOOK_DEMO_SECRET.into(), stop.clone())
            .await?;
    // Pushes go to a loopback stand-in for an ntfy server, speaking ntfy's HTTP.
    let (ntfy_url, mut pushes) = fmn_local::standins::ntfy::serve(ntfy_port, stop.clone()).await?;
    let matrix_token =
        deploy::put_secret(&aws, &stack, "matrix-access-token", &bot.access_token).await?;
    let mut parameters = vec![
        ("OwnershipSourceUrl", owners_url.as_str()),
        ("IrcServer", "127.0.0.1"),
        ("IrcPort", irc_port_text.as_str()),
        ("IrcTls", "false"),
        ("MatrixHomeserverUrl", synapse.url.as_str()),
        ("MatrixAccessTokenParameter", matrix_token.as_str()),
    ];
    if bench.is_some() {
        // The bench measures throughput: no flood limit holds its notifications back.
        parameters.push(("FloodMax", fmn_local::bench::FLOOD_MAX));
    }
    let deployed = deploy::deploy_with(&aws, &template, &stack, demo::SENDER, &parameters).await?;
    // The demo webhook receiver is on loopback, which the sender refuses unless told.
    fmn_local::emulator::deploy::set_function_environment(
        &aws,
        deployed.output("WebhookSenderFunctionName")?,
        &[("FMN_WEBHOOK_ALLOW_PRIVATE", "1")],
    )
    .await?;
    fmn_local::emulator::deploy::set_function_environment(
        &aws,
        deployed.output("PushSenderFunctionName")?,
        &[("FMN_PUSH_ALLOW_PRIVATE", "1")],
    )
    .await?;
    // SES identities live where SES does.
    deploy::verify_sender(&ses, demo::SENDER).await?;

    let prefs_path = preferences.unwrap_or_else(|| root.join("localstack/demo/preferences.json"));
    let table = fmn_store::PreferenceTable::new(
        aws_sdk_dynamodb::Client::new(&aws),
        deployed.output("PreferencesTableName")?,
    );
    let mut demo_prefs = fmn_rules::Preferences::read_file(&prefs_path)?;
    if bench.is_some() {
        // Nothing is held for a digest during the bench.
        for context in demo_prefs.iter_mut().flat_map(|p| p.contexts.values_mut()) {
            context.settings.digest_interval_secs = None;
            context.settings.digest_count = None;
        }
    }
    for prefs in &demo_prefs {
        table.put(prefs).await?;
    }
    // The web app's sign-in: a development OpenID provider offering each demo user, and
    // `newcomer`, who has no preferences yet.
    let mut users: Vec<String> = demo_prefs.iter().map(|p| p.user.clone()).collect();
    users.push("newcomer".into());
    let issuer =
        fmn_local::standins::oidc::serve(oidc_port, users, Vec::new(), stop.clone()).await?;

    let configs = fmn_local::lambda::functions::AwsConfigs {
        aws: aws.clone(),
        ses: ses.clone(),
    };
    // The inbox's WebSocket: the local gateway over the deployed WebSocket function; the
    // inbox sender posts to it through its management API, as to API Gateway's. Both know
    // the local web app (its origin's session cookie opens a socket; filter links).
    let web = format!("http://127.0.0.1:{api_port}");
    fmn_local::emulator::deploy::set_function_environment(
        &aws,
        deployed.output("WebsocketFunctionName")?,
        &[("FMN_API_BASE_URL", web.as_str())],
    )
    .await?;
    let gateway = fmn_local::gateway::start(&configs, &deployed, socket_port, stop.clone()).await?;
    fmn_local::emulator::deploy::set_function_environment(
        &aws,
        deployed.output("InboxSenderFunctionName")?,
        &[
            ("FMN_SOCKET_ENDPOINT", gateway.endpoint.as_str()),
            ("FMN_API_BASE_URL", web.as_str()),
        ],
    )
    .await?;
    let mut tasks = runtime::start(&configs, &deployed, stop.clone()).await?;
    let messages = messages.unwrap_or_else(|| root.join("localstack/demo/messages.jsonl"));
    if let Some(n) = bench {
        let sample = demo::read_messages(&messages)?;
        let report = fmn_local::bench::run(&aws, &deployed, &sample, n).await;
        stop.cancel();
        while tasks.join_next().await.is_some() {}
        ircd.stop().await;
        synapse.stop().await;
        moto.stop().await;
        println!("\n{}", report?);
        return Ok(());
    }
    // The HTTP API, and a token for the demo user `alice` to try it with.
    let mut api_config = fmn_local::api::config(&deployed)?;
    issuer.configure(&mut api_config);
    api_config.inbox_socket_url = Some(gateway.url.clone());
    let (api_url, api_state) =
        fmn_local::api::serve(&aws, api_config, api_port, stop.clone()).await?;
    let demo_token = fmn_local::api::mint(&api_state, "alice", false, Some(7 * 24 * 3600)).await?;
    let ralph_token = fmn_local::api::mint(&api_state, "ralph", false, Some(24 * 3600)).await?;
    let feed = feed_urls(&api_url, &api_state, "ralph").await?;
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
    let sample = demo::read_messages(&messages)?;
    let publisher_stop = stop.clone();
    tasks.spawn(async move {
        let interval = Duration::from_millis(interval_ms);
        if let Err(e) = demo::publish_forever(&address, sample, interval, publisher_stop).await {
            tracing::error!(error = %e, "demo publisher stopped");
        }
    });

    println!(
        "\nfmn is running on {emulator_name}.\n\
         - web app:        {api_url}/ (sign in as alice, ralph, ... or newcomer at the development identity provider {issuer_url})\n\
         - AWS endpoint:   {}\n\
         - emails also at: {}/moto-api/data.json (or: AWS_ENDPOINT_URL={} cargo run -q -p fmn-local -- emails --follow)\n\
         - preferences:    {}\n\
         - HTTP API:       {api_url}/api/v1 (OpenAPI: {api_url}/api/v1/openapi.json)\n\
         - API token:      {demo_token} (user alice; curl -H \"Authorization: Bearer $TOKEN\" {api_url}/api/v1/me)\n\
         - desktop popups: FMN_TOKEN={ralph_token} cargo run -q -p fmn-desktop -- --api-url {api_url} (ralph's inbox; clients/desktop/README.md)\n\
         New emails are printed below. Ctrl-C stops everything.\n",
        aws.endpoint_url().unwrap_or_default(),
        moto.endpoint,
        moto.endpoint,
        prefs_path.display(),
        issuer_url = issuer.url,
    );
    println!(
        "IRC: ngircd on 127.0.0.1:{irc_port}; notifications to {irc_watch} are printed below \
         (any IRC client can connect and use another nick from the preferences)\n\
         Matrix: Synapse at {matrix_url}; notifications to {ralph_id} are printed below (or log \
         in with a Matrix client as ralph / {MATRIX_DEMO_PASSWORD})\n\
         Webhooks: received at {hook_url} and printed below with their signature check\n\
         Pushes: an ntfy stand-in at {ntfy_url} (topics are its paths) prints them below\n\
         Inbox: live at {api_url}/users/ralph/inbox (sign in as ralph), over the WebSocket \
         gateway {socket_url}; ralph's items are printed below as they arrive\n\
         Feed of ralph: {feed}\n",
        socket_url = gateway.url,
        matrix_url = synapse.url,
        ralph_id = ralph.user_id,
    );
    tasks.spawn(async move {
        while let Some(hook) = hooks.recv().await {
            let p = &hook.payload;
            println!(
                "🪝 webhook for {}: {} ({})",
                p["user"].as_str().unwrap_or("?"),
                p["summary"].as_str().unwrap_or("?"),
                if hook.verified {
                    "signature verified"
                } else {
                    "BAD SIGNATURE"
                }
            );
        }
    });
    tasks.spawn(async move {
        while let Some(p) = pushes.recv().await {
            println!(
                "📱 push to {}: [{} p{}] {} (click: {})",
                p.topic,
                p.title,
                p.priority,
                p.message.lines().next().unwrap_or_default(),
                if p.click.is_empty() { "-" } else { &p.click }
            );
        }
    });
    // ralph's inbox, followed over the gateway like the web app's script follows it.
    let socket_url = gateway.url.clone();
    let inbox_stop = stop.clone();
    tasks.spawn(async move {
        fmn_local::gateway::follow(&socket_url, &ralph_token, inbox_stop, |item| {
            println!("🔔 inbox of ralph: {} ({})", item.summary, item.topic);
        })
        .await;
    });
    let matrix_stop = stop.clone();
    let recipient = fmn_local::standins::matrix::Recipient::new(&synapse.url, ralph.clone());
    let bot_id = bot.user_id.clone();
    tasks.spawn(async move {
        let mut since = None;
        while !matrix_stop.is_cancelled() {
            if let Err(e) = follow_matrix(&recipient, &bot_id, &mut since).await {
                tracing::debug!(error = %e, "reading Matrix");
            }
            tokio::select! {
                () = matrix_stop.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
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
    synapse.stop().await;
    moto.stop().await;
    Ok(())
}

/// The demo Matrix recipient's password (a throw-away homeserver in a temporary directory).
const MATRIX_DEMO_PASSWORD: &str = "ralph-demo-password";
/// The secret of the demo webhook address (`localstack/demo/preferences.json`).
const WEBHOOK_DEMO_SECRET: &str = "demo-webhook-secret";

/// A new secret feed URL for `user`, through the API as its owner would ask for one.
async fn feed_urls(api_url: &str, state: &fmn_api::AppState, user: &str) -> anyhow::Result<String> {
    let token = fmn_local::api::mint(state, user, false, Some(3600)).await?;
    let urls: serde_json::Value = reqwest::Client::new()
        .post(format!("{api_url}/api/v1/users/{user}/feed-token"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(format!(
        "{} (Atom: {})",
        urls["rss"].as_str().unwrap_or_default(),
        urls["atom"].as_str().unwrap_or_default()
    ))
}

/// Accepts the bot's invites and prints the bot's messages that arrived since `since`.
async fn follow_matrix(
    recipient: &fmn_local::standins::matrix::Recipient,
    bot: &str,
    since: &mut Option<String>,
) -> anyhow::Result<()> {
    let batch = recipient.sync(since.as_deref()).await?;
    for room in &batch.invites {
        recipient.join(room).await?;
    }
    for (_, sender, content) in &batch.messages {
        if sender == bot {
            println!(
                "🟩 Matrix to {}: {}",
                recipient.user_id(),
                content["body"].as_str().unwrap_or_default()
            );
        }
    }
    *since = Some(batch.next);
    Ok(())
}
