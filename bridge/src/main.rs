//! `fmn-bridge`: subscribe to fedmsg endpoints and a fedora-messaging broker, and forward to
//! the `incoming` queue (settings: `fmn_bridge::settings`, docs/bridge.md).

use clap::Parser;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = fmn_bridge::settings::Args::parse();
    let (config, log_json) = args.resolve()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let aws = aws_config::load_from_env().await;
    if let Some(n) = args.bench {
        let report = fmn_bridge::bench::run(&aws, &config.queue_url, n).await?;
        println!("{report}");
        return Ok(());
    }
    if config.fedmsg.is_empty() && config.amqp.is_none() {
        anyhow::bail!("nothing to bridge: give --fedmsg and/or --amqp-url (or a --config file)");
    }
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        // Ctrl-C by hand, SIGTERM from systemd: either drains in-flight work and stops.
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    fmn_bridge::Bridge::from_aws(config, &aws)
        .run(shutdown)
        .await
}
