//! Counters the bridge exposes on its health endpoint: cheap atomics shared by every task.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the bridge has done since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages received from fedmsg endpoints.
    pub fedmsg_in: AtomicU64,
    /// Messages received from the AMQP broker.
    pub amqp_in: AtomicU64,
    /// Messages SQS accepted.
    pub sqs_out: AtomicU64,
    /// Messages written to the disk spool.
    pub spooled: AtomicU64,
    /// Messages in the spool, not yet in SQS.
    pub spool_depth: AtomicU64,
    /// AMQP (re)connections after the first.
    pub amqp_reconnects: AtomicU64,
    /// When the last bus message arrived (Unix milliseconds; 0: none yet).
    pub last_message_ms: AtomicU64,
}

impl Metrics {
    /// Records a received message.
    pub fn received(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
        self.last_message_ms.store(now_ms(), Relaxed);
    }

    /// A JSON snapshot, for the health endpoint.
    pub fn snapshot(&self) -> serde_json::Value {
        let last = self.last_message_ms.load(Relaxed);
        let age = (last > 0).then(|| now_ms().saturating_sub(last) as f64 / 1000.0);
        serde_json::json!({
            "messages_in": {
                "fedmsg": self.fedmsg_in.load(Relaxed),
                "amqp": self.amqp_in.load(Relaxed),
            },
            "messages_out": { "sqs": self.sqs_out.load(Relaxed) },
            "spooled": self.spooled.load(Relaxed),
            "spool_depth": self.spool_depth.load(Relaxed),
            "amqp_reconnects": self.amqp_reconnects.load(Relaxed),
            "last_message_age_seconds": age,
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
