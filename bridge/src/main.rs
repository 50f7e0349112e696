//! `fmn-bridge`: subscribe to fedmsg endpoints and forward to the `incoming` queue.

use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Forwards Fedora bus messages into fmn's incoming SQS queue.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// fedmsg endpoint, `[connect:|bind:]tcp://HOST:PORT`; repeat for several.
    #[arg(
        long = "fedmsg",
        env = "FMN_FEDMSG_ENDPOINTS",
        value_delimiter = ',',
        required = true
    )]
    fedmsg: Vec<fmn_bridge::Endpoint>,
    /// The incoming queue URL.
    #[arg(long, env = "FMN_INCOMING_QUEUE_URL")]
    queue_url: String,
    /// Log as JSON lines.
    #[arg(long, env = "FMN_LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if args.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let aws = aws_config::load_from_env().await;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    let config = fmn_bridge::Config {
        fedmsg: args.fedmsg,
        queue_url: args.queue_url,
    };
    fmn_bridge::run(config, aws_sdk_sqs::Client::new(&aws), shutdown).await
}
