//! `fmn-desktop`: see the crate's documentation and clients/desktop/README.md.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fmn_desktop::api::ApiError;
use fmn_desktop::config::{Config, TOKEN_ENV, default_config_path};
use fmn_desktop::popup::{Display, Popup};
use fmn_inbox::InboxItem;
use tokio_util::sync::CancellationToken;

/// The exit status when the API refuses the token or the configuration is wrong (EX_CONFIG):
/// the systemd unit does not restart on it.
const REFUSED: u8 = 78;

/// Marks an error of the configuration.
#[derive(Debug)]
struct BadConfig;

impl std::fmt::Display for BadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the configuration")
    }
}

#[derive(Debug, Parser)]
#[command(
    version,
    about = "fmn's desktop popups: your notifications, live, through the desktop's notification service"
)]
struct Cli {
    /// The configuration file [default: $XDG_CONFIG_HOME/fmn/desktop.toml]
    #[arg(long, env = "FMN_DESKTOP_CONFIG")]
    config: Option<PathBuf>,
    /// The fmn deployment (overrides api_url of the configuration)
    #[arg(long)]
    api_url: Option<String>,
    /// Where the id of the last item shown is kept [default: $XDG_STATE_HOME/fmn/desktop-last-id]
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// The program that opens links (overrides open_command of the configuration)
    #[arg(long)]
    open_command: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show notifications as they arrive (the default)
    Run,
    /// Check the configuration: who the token belongs to, the socket's URL, one test popup
    Check,
    /// Show inbox items given as JSON lines on standard input, one popup each, and print
    /// "<item id> <popup id>" per popup (the display layer alone; for trying a notification
    /// server)
    Show,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal (not in the journal).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async_main(cli));
    // Threads watching open popups are not waited for.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            let refused = e
                .downcast_ref::<ApiError>()
                .is_some_and(|e| matches!(e, ApiError::Refused(_)));
            if refused || e.downcast_ref::<BadConfig>().is_some() {
                ExitCode::from(REFUSED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn async_main(cli: Cli) -> anyhow::Result<()> {
    let config_path = cli.config.clone().or_else(default_config_path);
    let load = || {
        let env_token = std::env::var(TOKEN_ENV).ok();
        Config::load(
            config_path.as_deref(),
            cli.api_url.as_deref(),
            env_token.as_deref(),
            cli.state_file.clone(),
        )
        .context(BadConfig)
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let mut config = load()?;
            if let Some(c) = &cli.open_command {
                config.open_command = c.clone();
            }
            let display = Display::connect(&config.open_command).await?;
            let stop = CancellationToken::new();
            tokio::spawn(stop_on_signal(stop.clone()));
            fmn_desktop::run::run(config, display, stop).await
        }
        Command::Check => {
            let config = load()?;
            let api = fmn_desktop::api::Api::new(config.api_url.clone(), config.token.clone())?;
            let me = api.me().await?;
            println!(
                "signed in as {}{}",
                me.user,
                if me.admin { " (admin)" } else { "" }
            );
            let socket = match &config.socket_url {
                Some(u) => u.clone(),
                None => api.socket_url().await?,
            };
            println!("socket: {socket}");
            let page = api.inbox(&me.user, None, 1).await?;
            println!("inbox: {} unread", page.unread);
            let display = Display::connect(&config.open_command).await?;
            let popup = Popup {
                id: "check".into(),
                summary: "fmn-desktop works".into(),
                body: format!("signed in as {}", me.user),
                urgency: fmn_desktop::popup::Severity::Low,
                link: None,
            };
            display.show(&popup).await?;
            println!("a test popup was shown");
            Ok(())
        }
        Command::Show => {
            let open = cli
                .open_command
                .clone()
                .unwrap_or_else(|| "xdg-open".into());
            let display = Display::connect(&open).await?;
            let (lines, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if lines.send(line).is_err() {
                        break;
                    }
                }
            });
            while let Some(line) = rx.recv().await {
                if line.trim().is_empty() {
                    continue;
                }
                let item: InboxItem = match serde_json::from_str(&line) {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::warn!("not an inbox item: {e}");
                        continue;
                    }
                };
                let id = display
                    .show(&Popup::from_item(&item))
                    .await
                    .with_context(|| format!("item {}", item.id))?;
                println!("{} {id}", item.id);
            }
            Ok(())
        }
    }
}

async fn stop_on_signal(stop: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("stopping");
    stop.cancel();
}
