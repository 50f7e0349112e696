//! Counters the bridge exposes on its health endpoint ([`crate::health`]): cheap atomics
//! shared by every task.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A fedmsg ZeroMQ endpoint.
    Fedmsg,
    /// The fedora-messaging AMQP broker.
    Amqp,
    /// A file fed in by `fmn replay`.
    Replay,
}

impl Source {
    /// Every source, in the order the metrics list them.
    pub const ALL: [Source; 3] = [Source::Fedmsg, Source::Amqp, Source::Replay];

    /// The label value used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Fedmsg => "fedmsg",
            Source::Amqp => "amqp",
            Source::Replay => "replay",
        }
    }
}

/// One source's counters.
#[derive(Debug, Default)]
pub struct SourceMetrics {
    /// Messages received.
    pub received: AtomicU64,
    /// Messages SQS accepted directly (not through the spool).
    pub forwarded: AtomicU64,
    /// Endpoints or connections currently up (a gauge).
    pub connected: AtomicU64,
    /// Endpoints or connections configured.
    pub configured: AtomicU64,
    /// Reconnections after a lost connection.
    pub reconnects: AtomicU64,
    /// Messages rejected at the edge and quarantined (an invalid fedmsg signature).
    pub quarantined: AtomicU64,
}

/// What the bridge has done since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    /// fedmsg endpoints.
    pub fedmsg: SourceMetrics,
    /// The AMQP broker.
    pub amqp: SourceMetrics,
    /// `fmn replay`.
    pub replay: SourceMetrics,
    /// Messages written to the disk spool.
    pub spooled: AtomicU64,
    /// Messages sent to SQS from the spool.
    pub drained: AtomicU64,
    /// Messages in the spool, not yet in SQS (a gauge).
    pub spool_depth: AtomicU64,
    /// Messages too big for SQS, stored in S3 with a pointer on the queue.
    pub offloaded: AtomicU64,
    /// Batches SQS refused (each then spooled or retried).
    pub sqs_refusals: AtomicU64,
    /// When the last bus message arrived (Unix milliseconds; 0: none yet).
    pub last_message_ms: AtomicU64,
}

impl Metrics {
    /// One source's counters.
    pub fn source(&self, source: Source) -> &SourceMetrics {
        match source {
            Source::Fedmsg => &self.fedmsg,
            Source::Amqp => &self.amqp,
            Source::Replay => &self.replay,
        }
    }

    /// Records a received message.
    pub fn received(&self, source: Source) {
        self.source(source).received.fetch_add(1, Relaxed);
        self.last_message_ms.store(now_ms(), Relaxed);
    }

    /// Messages SQS accepted, directly or from the spool.
    pub fn sqs_out(&self) -> u64 {
        Source::ALL
            .iter()
            .map(|s| self.source(*s).forwarded.load(Relaxed))
            .sum::<u64>()
            + self.drained.load(Relaxed)
    }

    /// Seconds since the last bus message (`None` before the first).
    pub fn last_message_age(&self) -> Option<f64> {
        let last = self.last_message_ms.load(Relaxed);
        (last > 0).then(|| now_ms().saturating_sub(last) as f64 / 1000.0)
    }

    /// A JSON snapshot, for `/healthz`.
    pub fn snapshot(&self) -> serde_json::Value {
        let sources: serde_json::Map<String, serde_json::Value> = Source::ALL
            .iter()
            .filter(|s| self.source(**s).configured.load(Relaxed) > 0)
            .map(|s| {
                let m = self.source(*s);
                (
                    s.as_str().to_owned(),
                    serde_json::json!({
                        "configured": m.configured.load(Relaxed),
                        "connected": m.connected.load(Relaxed),
                        "received": m.received.load(Relaxed),
                        "forwarded": m.forwarded.load(Relaxed),
                        "reconnects": m.reconnects.load(Relaxed),
                        "quarantined": m.quarantined.load(Relaxed),
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "sources": sources,
            "sqs_out": self.sqs_out(),
            "spooled": self.spooled.load(Relaxed),
            "drained": self.drained.load(Relaxed),
            "spool_depth": self.spool_depth.load(Relaxed),
            "offloaded": self.offloaded.load(Relaxed),
            "sqs_refusals": self.sqs_refusals.load(Relaxed),
            "aws_requests": fmn_calls::snapshot().by_operation(),
            "last_message_age_seconds": self.last_message_age(),
        })
    }

    /// The Prometheus text exposition format (version 0.0.4), for `/metrics`.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        /// (metric name, type, help, the counter of one source)
        type Series = (
            &'static str,
            &'static str,
            &'static str,
            fn(&SourceMetrics) -> &AtomicU64,
        );
        let per_source: [Series; 6] = [
            (
                "fmn_bridge_messages_received_total",
                "counter",
                "Bus messages received, by source.",
                |m| &m.received,
            ),
            (
                "fmn_bridge_messages_forwarded_total",
                "counter",
                "Messages SQS accepted directly (not through the spool), by source.",
                |m| &m.forwarded,
            ),
            (
                "fmn_bridge_messages_quarantined_total",
                "counter",
                "Messages rejected at the edge (invalid signature) and quarantined, by source.",
                |m| &m.quarantined,
            ),
            (
                "fmn_bridge_reconnects_total",
                "counter",
                "Reconnections to the bus after a lost connection, by source.",
                |m| &m.reconnects,
            ),
            (
                "fmn_bridge_source_connected",
                "gauge",
                "Endpoints or connections currently up, by source.",
                |m| &m.connected,
            ),
            (
                "fmn_bridge_source_configured",
                "gauge",
                "Endpoints or connections configured, by source.",
                |m| &m.configured,
            ),
        ];
        for (name, kind, help, field) in per_source {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for s in Source::ALL {
                let v = field(self.source(s)).load(Relaxed);
                let _ = writeln!(out, "{name}{{source=\"{}\"}} {v}", s.as_str());
            }
        }
        let totals: [(&str, &str, &str, u64); 6] = [
            (
                "fmn_bridge_sqs_messages_sent_total",
                "counter",
                "Messages SQS accepted, directly or from the spool.",
                self.sqs_out(),
            ),
            (
                "fmn_bridge_spooled_total",
                "counter",
                "Messages written to the disk spool while SQS refused them.",
                self.spooled.load(Relaxed),
            ),
            (
                "fmn_bridge_drained_total",
                "counter",
                "Messages sent to SQS from the disk spool.",
                self.drained.load(Relaxed),
            ),
            (
                "fmn_bridge_spool_depth",
                "gauge",
                "Messages in the disk spool, not yet in SQS.",
                self.spool_depth.load(Relaxed),
            ),
            (
                "fmn_bridge_offloaded_total",
                "counter",
                "Messages over SQS's size limit stored in S3 behind a pointer.",
                self.offloaded.load(Relaxed),
            ),
            (
                "fmn_bridge_sqs_refusals_total",
                "counter",
                "Batches SQS refused after the client's retries.",
                self.sqs_refusals.load(Relaxed),
            ),
        ];
        for (name, kind, help, v) in totals {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        // Issue 18: every AWS request the bridge's clients made (`fmn_calls`).
        let name = "fmn_bridge_aws_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} AWS requests made (each attempt), by service and operation.\n\
             # TYPE {name} counter"
        );
        for (op, v) in fmn_calls::snapshot().by_operation() {
            let (service, operation) = op.split_once('.').unwrap_or((op.as_str(), ""));
            let _ = writeln!(
                out,
                "{name}{{service=\"{service}\",operation=\"{operation}\"}} {v}"
            );
        }
        let name = "fmn_bridge_last_message_age_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Seconds since the last bus message (NaN before the first).\n\
             # TYPE {name} gauge\n{name} {}",
            self.last_message_age()
                .map_or_else(|| "NaN".to_owned(), |a| format!("{a:.3}"))
        );
        out
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_series() {
        let m = Metrics::default();
        m.received(Source::Amqp);
        m.amqp.forwarded.fetch_add(1, Relaxed);
        m.drained.fetch_add(2, Relaxed);
        let text = m.prometheus();
        assert!(text.contains("fmn_bridge_messages_received_total{source=\"amqp\"} 1\n"));
        assert!(text.contains("fmn_bridge_messages_received_total{source=\"fedmsg\"} 0\n"));
        assert!(text.contains("fmn_bridge_sqs_messages_sent_total 3\n"));
        assert!(text.contains("# TYPE fmn_bridge_spool_depth gauge\n"));
        // Every sample line is `name[{labels}] value`, with a numeric value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        assert!(m.snapshot()["last_message_age_seconds"].as_f64().unwrap() < 5.0);
    }
}
