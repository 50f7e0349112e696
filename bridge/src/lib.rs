//! The bridge: the one long-running piece of fmn.
//!
//! Sources ([`fedmsg`] over ZeroMQ, [`amqp`] for fedora-messaging) receive bus messages and
//! hand each one, as a [`Delivery`], over a bounded channel to the sink ([`sink`]), which
//! sends them to the `incoming` SQS queue in batches, retrying with backoff, and then fires
//! each delivery's acknowledgement: the AMQP source acknowledges the broker only then.
//! [`run`] wires them together and stops cleanly on a shutdown signal, flushing what it has
//! received.

pub mod amqp;
pub mod bench;
pub mod cloudwatch;
pub mod fedmsg;
pub mod health;
pub mod metrics;
pub mod oversize;
pub mod replay;
pub mod settings;
pub mod signature;
pub mod sink;
pub mod spool;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use amqp::{AmqpConfig, QueueName};
pub use fedmsg::{Endpoint, EndpointMode};
pub use metrics::{Metrics, Source};
pub use signature::SignatureConfig;

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
    /// Where it came from (for the metrics).
    pub source: Source,
}

impl Delivery {
    /// A delivery nobody waits on (fedmsg cannot acknowledge).
    pub fn unacknowledged(message: BusMessage, source: Source) -> Self {
        Delivery {
            message,
            ack: None,
            source,
        }
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
    /// Where to serve `/healthz` and `/metrics` (none: not served).
    pub metrics_addr: Option<SocketAddr>,
    /// How to validate `signed:` fedmsg endpoints' signatures.
    pub fedmsg_signatures: Option<SignatureConfig>,
    /// Where messages rejected at the edge go (the incoming DLQ), with the reason.
    pub quarantine_queue_url: Option<String>,
    /// The S3 bucket for messages over SQS's size limit (none: such messages cannot be
    /// forwarded; they are kept in the spool's `oversize/` folder when there is a spool).
    pub oversize_bucket: Option<String>,
    /// The CloudWatch namespace to publish health metrics to every minute (none: not
    /// published; [`cloudwatch`]).
    pub cloudwatch_namespace: Option<String>,
}

/// A task of the bridge's, aborted when dropped: dropping [`Bridge::run`]'s future (its task
/// aborted) stops everything it started, as killing the process would, so that a bridge
/// started again never shares its spool or its health port with a leftover sink or endpoint.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the bridge until `shutdown` is cancelled, then drains and flushes.
pub async fn run(
    config: Config,
    sqs: aws_sdk_sqs::Client,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Bridge::new(config, sqs).run(shutdown).await
}

/// [`run`], counting into `metrics`.
pub async fn run_with_metrics(
    config: Config,
    sqs: aws_sdk_sqs::Client,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    Bridge::new(config, sqs)
        .with_metrics(metrics)
        .run(shutdown)
        .await
}

/// The bridge, ready to run: its configuration, AWS clients and metrics.
#[derive(Debug)]
pub struct Bridge {
    config: Config,
    sqs: aws_sdk_sqs::Client,
    s3: Option<aws_sdk_s3::Client>,
    cloudwatch: Option<aws_sdk_cloudwatch::Client>,
    metrics: Arc<Metrics>,
}

impl Bridge {
    /// A bridge sending with `sqs` (no S3: oversized messages are kept in the spool folder).
    pub fn new(config: Config, sqs: aws_sdk_sqs::Client) -> Self {
        Bridge {
            config,
            sqs,
            s3: None,
            cloudwatch: None,
            metrics: Arc::default(),
        }
    }

    /// A bridge with SQS and S3 clients from one AWS configuration. Their requests are
    /// counted under `bridge` (`fmn_calls`), also those made from the tasks the bridge
    /// spawns.
    pub fn from_aws(config: Config, aws: &aws_config::SdkConfig) -> Self {
        Bridge::new(config, fmn_calls::client!(aws_sdk_sqs, aws, "bridge"))
            .with_s3(fmn_calls::client!(aws_sdk_s3, aws, "bridge"))
            .with_cloudwatch(fmn_calls::client!(aws_sdk_cloudwatch, aws, "bridge"))
    }

    /// Uses `cloudwatch` to publish health metrics in `Config::cloudwatch_namespace`.
    pub fn with_cloudwatch(mut self, cloudwatch: aws_sdk_cloudwatch::Client) -> Self {
        self.cloudwatch = Some(cloudwatch);
        self
    }

    /// Uses `s3` to store messages over SQS's size limit in `Config::oversize_bucket`.
    pub fn with_s3(mut self, s3: aws_sdk_s3::Client) -> Self {
        self.s3 = Some(s3);
        self
    }

    /// Counts into `metrics` (shared with the caller).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The queue the sink sends to: `incoming`, offloading oversized bodies.
    pub fn queue(&self) -> oversize::OversizeQueue<fmn_queue::SqsQueue> {
        let offloader = match (&self.s3, &self.config.oversize_bucket) {
            (Some(s3), Some(bucket)) => Some(fmn_queue::oversize::Offloader::new(
                s3.clone(),
                bucket.clone(),
            )),
            _ => None,
        };
        oversize::OversizeQueue::new(
            fmn_queue::SqsQueue::new(self.sqs.clone(), self.config.queue_url.clone()),
            offloader,
            self.config.spool_dir.as_ref().map(|d| d.join("oversize")),
            self.metrics.clone(),
        )
    }

    /// Opens the spool, if one is configured.
    pub fn open_spool(&self) -> Result<Option<spool::Spool>, spool::SpoolError> {
        match &self.config.spool_dir {
            Some(dir) => {
                let max = if self.config.spool_max_bytes == 0 {
                    1 << 30
                } else {
                    self.config.spool_max_bytes
                };
                Ok(Some(spool::Spool::open(dir, max)?))
            }
            None => Ok(None),
        }
    }

    /// Runs until `shutdown` is cancelled: stops the sources, lets the sink send (or spool)
    /// what they handed over, acknowledges it, and returns once every task has ended. Dropped
    /// before that (its task aborted), it stops every task at once, acknowledging nothing
    /// more: the broker redelivers what was not acknowledged, as after a killed process.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let spool = self.open_spool()?;
        let queue = self.queue();
        let Bridge {
            config,
            metrics,
            sqs,
            cloudwatch,
            ..
        } = self;
        // The endpoint outlives the sources by a little: it stops with the sink.
        let health_stop = CancellationToken::new();
        let health = match config.metrics_addr {
            Some(addr) => {
                let listener = health::bind(addr).await?;
                Some(AbortOnDrop(tokio::spawn(health::serve(
                    listener,
                    metrics.clone(),
                    health_stop.clone(),
                ))))
            }
            None => None,
        };
        let publisher = match (cloudwatch, &config.cloudwatch_namespace) {
            (Some(client), Some(namespace)) => Some(AbortOnDrop(tokio::spawn(
                cloudwatch::Publisher::new(client, namespace.clone(), metrics.clone())
                    .run(cloudwatch::INTERVAL, health_stop.clone()),
            ))),
            _ => None,
        };
        let checks = Arc::new(fedmsg::Checks {
            validator: match &config.fedmsg_signatures {
                Some(c) => Some(signature::Validator::load(c)?),
                None => None,
            },
            quarantine: config
                .quarantine_queue_url
                .as_ref()
                .map(|url| fmn_queue::SqsQueue::new(sqs.clone(), url.clone())),
        });
        if let Some(e) = config.fedmsg.iter().find(|e| e.signed)
            && checks.validator.is_none()
        {
            anyhow::bail!(
                "fedmsg endpoint {} is signed: give the signature configuration (CA)",
                e.address
            );
        }
        let (tx, rx) = mpsc::channel(1000);
        let mut sources = tokio::task::JoinSet::new();
        for endpoint in config.fedmsg {
            let tx = tx.clone();
            let stop = shutdown.clone();
            let metrics = metrics.clone();
            let checks = checks.clone();
            metrics.fedmsg.configured.fetch_add(1, Relaxed);
            sources.spawn(async move {
                fedmsg::subscribe_checked(endpoint, tx, stop, metrics, checks).await
            });
        }
        if let Some(amqp) = config.amqp {
            let tx = tx.clone();
            let stop = shutdown.clone();
            let metrics = metrics.clone();
            metrics.amqp.configured.fetch_add(1, Relaxed);
            sources.spawn(async move { amqp::consume(amqp, tx, stop, metrics).await });
        }
        drop(tx);
        let mut sink = AbortOnDrop(tokio::spawn(sink::forward(
            rx,
            queue,
            shutdown.clone(),
            metrics.clone(),
            spool,
        )));
        while let Some(done) = sources.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "source stopped"),
                Err(e) => tracing::error!(error = %e, "source panicked"),
            }
        }
        // Every sender is gone: the sink drains the channel, flushes and returns.
        let sunk = (&mut sink.0).await;
        health_stop.cancel();
        if let Some(mut h) = health
            && let Ok(Err(e)) = (&mut h.0).await
        {
            tracing::warn!(error = %e, "health endpoint failed");
        }
        if let Some(mut p) = publisher {
            let _ = (&mut p.0).await;
        }
        sunk??;
        Ok(())
    }
}
