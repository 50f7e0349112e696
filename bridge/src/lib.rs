//! The bridge: the one long-running piece of fmn.
//!
//! Sources ([`fedmsg`]) receive bus messages and hand them over a bounded channel to the
//! sink ([`sink`]), which sends them to the `incoming` SQS queue in batches, retrying with
//! backoff. [`run`] wires them together and stops cleanly on a shutdown signal, flushing
//! what it has received.

pub mod fedmsg;
pub mod sink;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use fedmsg::{Endpoint, EndpointMode};

/// One message received from a bus, as it will be put on the `incoming` queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    /// The bus topic.
    pub topic: String,
    /// The JSON text of the message (the fedmsg envelope).
    pub body: String,
}

/// What the bridge reads from and writes to.
#[derive(Debug, Clone)]
pub struct Config {
    /// fedmsg ZeroMQ endpoints to subscribe to.
    pub fedmsg: Vec<Endpoint>,
    /// The `incoming` queue URL.
    pub queue_url: String,
}

/// Runs the bridge until `shutdown` is cancelled, then drains and flushes.
pub async fn run(
    config: Config,
    sqs: aws_sdk_sqs::Client,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel(1000);
    let mut sources = tokio::task::JoinSet::new();
    for endpoint in config.fedmsg {
        let tx = tx.clone();
        let stop = shutdown.clone();
        sources.spawn(async move { fedmsg::subscribe(endpoint, tx, stop).await });
    }
    drop(tx);
    let queue = fmn_queue::SqsQueue::new(sqs, config.queue_url);
    let sink = tokio::spawn(sink::forward(rx, queue, shutdown.clone()));
    while let Some(done) = sources.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "fedmsg source stopped"),
            Err(e) => tracing::error!(error = %e, "fedmsg source panicked"),
        }
    }
    // Every sender is gone: the sink drains the channel, flushes and returns.
    sink.await??;
    Ok(())
}
