//! The bridge: the one long-running piece of fmn.
//!
//! Sources ([`fedmsg`] over ZeroMQ, [`amqp`] for fedora-messaging) receive bus messages and
//! hand each one, as a [`Delivery`], over a bounded channel to the sink ([`sink`]), which
//! sends them to the `incoming` SQS queue in batches, retrying with backoff, and then fires
//! each delivery's acknowledgement: the AMQP source acknowledges the broker only then.
//! [`run`] wires them together and stops cleanly on a shutdown signal, flushing what it has
//! received.

pub mod amqp;
pub mod fedmsg;
pub mod metrics;
pub mod sink;
pub mod spool;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use amqp::{AmqpConfig, QueueName};
pub use fedmsg::{Endpoint, EndpointMode};
pub use metrics::Metrics;

/// One message received from a bus, as it will be put on the `incoming` queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    /// The bus topic.
    pub topic: String,
    /// The JSON text of the message (the fedmsg envelope, or the fedora-messaging
    /// `{topic, headers, body, id}` object).
    pub body: String,
}

/// A message on its way from a source to the sink.
#[derive(Debug)]
pub struct Delivery {
    /// The message.
    pub message: BusMessage,
    /// Fired once the sink has accepted the message; dropped unfired if it never did.
    /// `None` for sources that cannot acknowledge (fedmsg).
    pub ack: Option<oneshot::Sender<()>>,
}

impl From<BusMessage> for Delivery {
    fn from(message: BusMessage) -> Self {
        Delivery { message, ack: None }
    }
}

/// What the bridge reads from and writes to.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// fedmsg ZeroMQ endpoints to subscribe to.
    pub fedmsg: Vec<Endpoint>,
    /// The fedora-messaging broker to consume from, if any.
    pub amqp: Option<AmqpConfig>,
    /// The `incoming` queue URL.
    pub queue_url: String,
    /// Where to spool batches while SQS refuses them (none: retry in memory, back-pressure).
    pub spool_dir: Option<PathBuf>,
    /// The spool's bound in bytes (0: 1 GiB).
    pub spool_max_bytes: u64,
}

/// Runs the bridge until `shutdown` is cancelled, then drains and flushes.
pub async fn run(
    config: Config,
    sqs: aws_sdk_sqs::Client,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_metrics(config, sqs, shutdown, Arc::default()).await
}

/// [`run`], counting into `metrics`.
pub async fn run_with_metrics(
    config: Config,
    sqs: aws_sdk_sqs::Client,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let spool = match &config.spool_dir {
        Some(dir) => {
            let max = if config.spool_max_bytes == 0 {
                1 << 30
            } else {
                config.spool_max_bytes
            };
            Some(spool::Spool::open(dir, max)?)
        }
        None => None,
    };
    let (tx, rx) = mpsc::channel(1000);
    let mut sources = tokio::task::JoinSet::new();
    for endpoint in config.fedmsg {
        let tx = tx.clone();
        let stop = shutdown.clone();
        let metrics = metrics.clone();
        sources.spawn(async move { fedmsg::subscribe(endpoint, tx, stop, metrics).await });
    }
    if let Some(amqp) = config.amqp {
        let tx = tx.clone();
        let stop = shutdown.clone();
        let metrics = metrics.clone();
        sources.spawn(async move { amqp::consume(amqp, tx, stop, metrics).await });
    }
    drop(tx);
    let queue = fmn_queue::SqsQueue::new(sqs, config.queue_url);
    let sink = tokio::spawn(sink::forward(rx, queue, shutdown.clone(), metrics, spool));
    while let Some(done) = sources.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "source stopped"),
            Err(e) => tracing::error!(error = %e, "source panicked"),
        }
    }
    // Every sender is gone: the sink drains the channel, flushes and returns.
    sink.await??;
    Ok(())
}
