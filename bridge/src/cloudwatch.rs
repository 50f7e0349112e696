//! Publishes the bridge's health to CloudWatch (`--cloudwatch-namespace`), so the stack's
//! alarms see a bridge that is silent, dead or spooling (infra/template.yaml, "Operations").
//!
//! Every interval (a minute by default) one `PutMetricData` call carries, without dimensions:
//! `BridgeReceived`, `BridgeForwarded`, `BridgeQuarantined` and `BridgeSqsRefusals` (counts
//! since the previous call), `BridgeAwsRequests` (AWS requests the bridge made since the
//! previous call, counted by `fmn_calls`) and `BridgeSpoolDepth` (the spool's messages now). Zeros are
//! published too: a quiet bus reads as zero received, a dead bridge as missing data, and the
//! silence alarm treats both as trouble.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, Source};

/// How often the running bridge publishes.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// The metric names, as the template's alarms name them.
pub const RECEIVED: &str = "BridgeReceived";
/// Messages SQS accepted (directly or from the spool).
pub const FORWARDED: &str = "BridgeForwarded";
/// Messages quarantined at the edge.
pub const QUARANTINED: &str = "BridgeQuarantined";
/// Batches SQS refused.
pub const SQS_REFUSALS: &str = "BridgeSqsRefusals";
/// AWS requests the bridge made (every attempt; `fmn_calls`).
pub const AWS_REQUESTS: &str = "BridgeAwsRequests";
/// Messages waiting in the spool.
pub const SPOOL_DEPTH: &str = "BridgeSpoolDepth";

/// Counter totals at the previous publication.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    received: u64,
    forwarded: u64,
    quarantined: u64,
    refusals: u64,
    aws_requests: u64,
}

impl Totals {
    fn read(metrics: &Metrics) -> Self {
        let sum = |f: fn(&crate::metrics::SourceMetrics) -> u64| -> u64 {
            Source::ALL.iter().map(|s| f(metrics.source(*s))).sum()
        };
        Totals {
            received: sum(|m| m.received.load(Relaxed)),
            forwarded: metrics.sqs_out(),
            quarantined: sum(|m| m.quarantined.load(Relaxed)),
            refusals: metrics.sqs_refusals.load(Relaxed),
            aws_requests: fmn_calls::snapshot().total(),
        }
    }
}

/// Turns the bridge's counters into CloudWatch data points, one call's worth at a time.
#[derive(Debug)]
pub struct Publisher {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
    metrics: Arc<Metrics>,
    last: Totals,
}

impl Publisher {
    /// A publisher into `namespace` (the stack's `BridgeMetricsNamespace` output).
    pub fn new(
        client: aws_sdk_cloudwatch::Client,
        namespace: impl Into<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Publisher {
            client,
            namespace: namespace.into(),
            metrics,
            last: Totals::default(),
        }
    }

    /// The data points since the previous call: counts as deltas, the spool as a gauge.
    pub fn datums(&mut self) -> Vec<MetricDatum> {
        let now = Totals::read(&self.metrics);
        let delta = |a: u64, b: u64| a.saturating_sub(b) as f64;
        let points = [
            (RECEIVED, delta(now.received, self.last.received)),
            (FORWARDED, delta(now.forwarded, self.last.forwarded)),
            (QUARANTINED, delta(now.quarantined, self.last.quarantined)),
            (SQS_REFUSALS, delta(now.refusals, self.last.refusals)),
            (
                AWS_REQUESTS,
                delta(now.aws_requests, self.last.aws_requests),
            ),
            (SPOOL_DEPTH, self.metrics.spool_depth.load(Relaxed) as f64),
        ];
        self.last = now;
        points
            .into_iter()
            .map(|(name, value)| {
                MetricDatum::builder()
                    .metric_name(name)
                    .value(value)
                    .unit(StandardUnit::Count)
                    .build()
            })
            .collect()
    }

    /// Publishes one set of data points. On failure the counts are kept for the next call
    /// (the deltas then cover both intervals), so nothing is lost to a CloudWatch outage.
    pub async fn publish_once(&mut self) -> Result<(), String> {
        let before = self.last;
        let data = self.datums();
        match self
            .client
            .put_metric_data()
            .namespace(&self.namespace)
            .set_metric_data(Some(data))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                self.last = before;
                Err(fmn_queue::error_chain(&e))
            }
        }
    }

    /// Publishes every `interval` until `stop` is cancelled, then once more.
    pub async fn run(mut self, interval: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate: publish after one interval
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.cancelled() => true,
            };
            if let Err(e) = self.publish_once().await {
                tracing::warn!(error = %e, namespace = %self.namespace, "cloudwatch: publishing metrics failed");
            }
            if stopping {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher(metrics: Arc<Metrics>) -> Publisher {
        let conf = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .build();
        Publisher::new(
            aws_sdk_cloudwatch::Client::from_conf(conf),
            "fmn/test",
            metrics,
        )
    }

    fn value(data: &[MetricDatum], name: &str) -> f64 {
        data.iter()
            .find(|d| d.metric_name() == Some(name))
            .and_then(|d| d.value())
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn counts_are_deltas_and_the_spool_is_a_gauge() {
        let metrics = Arc::new(Metrics::default());
        let mut p = publisher(metrics.clone());
        metrics.received(Source::Amqp);
        metrics.received(Source::Fedmsg);
        metrics.amqp.forwarded.fetch_add(1, Relaxed);
        metrics.drained.fetch_add(1, Relaxed);
        metrics.spool_depth.store(4, Relaxed);
        let first = p.datums();
        assert_eq!(value(&first, RECEIVED), 2.0);
        assert_eq!(value(&first, FORWARDED), 2.0);
        assert_eq!(value(&first, SPOOL_DEPTH), 4.0);
        metrics.received(Source::Amqp);
        let second = p.datums();
        assert_eq!(value(&second, RECEIVED), 1.0);
        assert_eq!(value(&second, FORWARDED), 0.0);
        assert_eq!(value(&second, QUARANTINED), 0.0);
        assert_eq!(value(&second, SPOOL_DEPTH), 4.0, "a gauge, not a delta");
    }

    #[tokio::test]
    async fn a_failed_call_keeps_its_counts_for_the_next() {
        // Nothing listens on a port just freed: the call fails as when CloudWatch is down.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let conf = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())
            .build();
        let metrics = Arc::new(Metrics::default());
        let mut p = Publisher::new(
            aws_sdk_cloudwatch::Client::from_conf(conf),
            "fmn/test",
            metrics.clone(),
        );
        metrics.received(Source::Amqp);
        metrics.received(Source::Amqp);
        assert!(p.publish_once().await.is_err(), "nothing listens there");
        metrics.received(Source::Amqp);
        assert_eq!(
            value(&p.datums(), RECEIVED),
            3.0,
            "the failed call's 2 plus 1"
        );
    }
}
