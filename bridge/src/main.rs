//! `fmn-bridge`: subscribe to fedmsg endpoints and a fedora-messaging broker, and forward to
//! the `incoming` queue.

use std::path::PathBuf;

use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Forwards Fedora bus messages into fmn's incoming SQS queue.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// fedmsg endpoint, `[connect:|bind:]tcp://HOST:PORT`; repeat for several.
    #[arg(long = "fedmsg", env = "FMN_FEDMSG_ENDPOINTS", value_delimiter = ',')]
    fedmsg: Vec<fmn_bridge::Endpoint>,
    /// fedora-messaging broker, `amqp://…` or `amqps://…`.
    #[arg(long, env = "FMN_AMQP_URL")]
    amqp_url: Option<String>,
    /// The exchange to bind to.
    #[arg(long, env = "FMN_AMQP_EXCHANGE", default_value = "amq.topic")]
    amqp_exchange: String,
    /// A durable queue to consume from; without it, a server-named exclusive queue.
    #[arg(long, env = "FMN_AMQP_QUEUE")]
    amqp_queue: Option<String>,
    /// Routing keys to bind, comma-separated.
    #[arg(
        long,
        env = "FMN_AMQP_ROUTING_KEYS",
        value_delimiter = ',',
        default_value = "#"
    )]
    amqp_routing_keys: Vec<String>,
    /// Unacknowledged deliveries in flight at most.
    #[arg(long, env = "FMN_AMQP_PREFETCH", default_value_t = 100)]
    amqp_prefetch: u16,
    /// CA certificates (PEM) for `amqps://`.
    #[arg(long, env = "FMN_AMQP_CA_CERT")]
    amqp_ca_cert: Option<PathBuf>,
    /// Client certificate and key (PKCS#12) for `amqps://`.
    #[arg(long, env = "FMN_AMQP_CLIENT_P12")]
    amqp_client_p12: Option<PathBuf>,
    /// The PKCS#12 password.
    #[arg(long, env = "FMN_AMQP_CLIENT_P12_PASSWORD", default_value = "")]
    amqp_client_p12_password: String,
    /// The incoming queue URL.
    #[arg(long, env = "FMN_INCOMING_QUEUE_URL")]
    queue_url: String,
    /// Spool directory for batches SQS refuses (drained in order when it is back).
    #[arg(long, env = "FMN_SPOOL_DIR")]
    spool_dir: Option<PathBuf>,
    /// The spool's bound in bytes.
    #[arg(long, env = "FMN_SPOOL_MAX_BYTES", default_value_t = 1 << 30)]
    spool_max_bytes: u64,
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
    if args.fedmsg.is_empty() && args.amqp_url.is_none() {
        anyhow::bail!("nothing to bridge: give --fedmsg and/or --amqp-url");
    }
    let aws = aws_config::load_from_env().await;
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
    let amqp = args.amqp_url.map(|url| fmn_bridge::AmqpConfig {
        url,
        exchange: args.amqp_exchange,
        queue: args.amqp_queue.map_or(
            fmn_bridge::QueueName::ServerNamed,
            fmn_bridge::QueueName::Durable,
        ),
        routing_keys: args.amqp_routing_keys,
        prefetch: args.amqp_prefetch,
        tls: fmn_bridge::amqp::Tls {
            ca_certificates: args.amqp_ca_cert,
            client_identity: args.amqp_client_p12,
            client_identity_password: args.amqp_client_p12_password,
        },
    });
    let config = fmn_bridge::Config {
        fedmsg: args.fedmsg,
        amqp,
        queue_url: args.queue_url,
        spool_dir: args.spool_dir,
        spool_max_bytes: args.spool_max_bytes,
    };
    fmn_bridge::run(config, aws_sdk_sqs::Client::new(&aws), shutdown).await
}
