//! The SQS sink: batches bus messages into the `incoming` queue, then acknowledges them to
//! their sources.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use fmn_queue::{BUS_ID_ATTRIBUTE, Outgoing, Queue, TOPIC_ATTRIBUTE};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::spool::Spool;
use crate::{BusMessage, Delivery};

/// The longest a received message waits for its batch to fill.
const LINGER: Duration = Duration::from_millis(100);
/// How often a non-empty spool is offered to SQS while no new message arrives.
const DRAIN_INTERVAL: Duration = Duration::from_secs(1);

/// Forwards everything from `rx` to `queue` in batches of up to ten, until `rx` closes.
/// Each delivery's acknowledgement fires once SQS accepted its batch. A batch that SQS
/// refuses is retried with backoff until it is accepted or `shutdown` has been requested and
/// a final attempt failed; its acknowledgements are then dropped, so acknowledging sources
/// get it redelivered, and the loss of unacknowledged (fedmsg) messages is logged loudly.
pub async fn forward<Q: Queue>(
    mut rx: mpsc::Receiver<Delivery>,
    queue: Q,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    mut spool: Option<Spool>,
) -> anyhow::Result<()> {
    let mut batch: Vec<Delivery> = Vec::with_capacity(10);
    let mut forwarded: u64 = 0;
    if let Some(s) = &spool {
        metrics.spool_depth.store(s.messages(), Relaxed);
    }
    // After SQS refused a spooled batch, leave it alone for DRAIN_INTERVAL: new batches go
    // straight to the spool meanwhile, instead of each waiting for SQS's retries.
    let mut drain_at = tokio::time::Instant::now();
    loop {
        let first = match spool.as_mut() {
            Some(s) if !s.is_empty() => {
                match tokio::time::timeout(DRAIN_INTERVAL, rx.recv()).await {
                    Ok(m) => m,
                    Err(_) => {
                        drain_gated(&queue, s, &metrics, &mut drain_at).await;
                        continue;
                    }
                }
            }
            _ => rx.recv().await,
        };
        let Some(first) = first else { break };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < 10 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => batch.push(m),
                Ok(None) | Err(_) => break,
            }
        }
        let accepted = match spool.as_mut() {
            Some(s) => {
                // Older spooled batches go first, so that order is kept.
                drain_gated(&queue, s, &metrics, &mut drain_at).await;
                let sent = s.is_empty() && queue.send_all(outgoing(&batch)).await.is_ok();
                if sent {
                    count_forwarded(&metrics, &batch);
                    true
                } else {
                    metrics.sqs_refusals.fetch_add(1, Relaxed);
                    let messages: Vec<BusMessage> =
                        batch.iter().map(|d| d.message.clone()).collect();
                    match s.push(&messages) {
                        Ok(()) => {
                            metrics.spooled.fetch_add(batch.len() as u64, Relaxed);
                            metrics.spool_depth.store(s.messages(), Relaxed);
                            tracing::info!(depth = s.messages(), "spool: batch spooled");
                            true
                        }
                        Err(e) => {
                            // Full or failing disk: back-pressure instead.
                            tracing::warn!(error = %e, "spool: cannot spool; retrying SQS");
                            send_with_backoff(&queue, &batch, &shutdown, &metrics).await
                        }
                    }
                }
            }
            None => send_with_backoff(&queue, &batch, &shutdown, &metrics).await,
        };
        if accepted {
            forwarded += batch.len() as u64;
            for d in batch.drain(..) {
                if let Some(ack) = d.ack {
                    // The source may have gone (its connection dropped): it gets a redelivery.
                    let _ = ack.send(());
                }
            }
            tracing::debug!(forwarded, "sink: batch accepted");
        } else {
            let unacknowledged = batch.iter().filter(|d| d.ack.is_none()).count();
            tracing::error!(
                lost = unacknowledged,
                redelivered = batch.len() - unacknowledged,
                "sqs: giving up at shutdown"
            );
            batch.clear();
        }
    }
    if let Some(s) = spool.as_mut() {
        if !drain(&queue, s, &metrics).await {
            tracing::warn!(depth = s.messages(), "spool: left for the next start");
        }
    }
    tracing::info!(forwarded, "sqs: sink drained");
    Ok(())
}

/// [`drain`], unless SQS refused less than [`DRAIN_INTERVAL`] ago.
async fn drain_gated<Q: Queue>(
    queue: &Q,
    spool: &mut Spool,
    metrics: &Metrics,
    drain_at: &mut tokio::time::Instant,
) {
    if spool.is_empty() || tokio::time::Instant::now() < *drain_at {
        return;
    }
    if !drain(queue, spool, metrics).await {
        *drain_at = tokio::time::Instant::now() + DRAIN_INTERVAL;
    }
}

/// Sends spooled batches, oldest first, until the spool is empty (true) or SQS refuses one.
async fn drain<Q: Queue>(queue: &Q, spool: &mut Spool, metrics: &Metrics) -> bool {
    loop {
        let (seq, batch) = match spool.oldest() {
            Ok(Some(oldest)) => oldest,
            Ok(None) => return true,
            Err(e) => {
                tracing::error!(error = %e, "spool: cannot read the oldest batch");
                return false;
            }
        };
        let outgoing = batch.iter().map(to_outgoing).collect();
        if let Err(e) = queue.send_all(outgoing).await {
            tracing::debug!(error = %e, depth = spool.messages(), "spool: SQS still refuses");
            return false;
        }
        if let Err(e) = spool.remove(seq, batch.len()) {
            tracing::error!(error = %e, "spool: cannot remove a sent batch");
            return false;
        }
        metrics.drained.fetch_add(batch.len() as u64, Relaxed);
        metrics.spool_depth.store(spool.messages(), Relaxed);
        tracing::info!(
            sent = batch.len(),
            depth = spool.messages(),
            "spool: drained a batch"
        );
    }
}

/// Outgoing SQS messages for a batch of deliveries.
pub fn outgoing(batch: &[Delivery]) -> Vec<Outgoing> {
    batch.iter().map(|d| to_outgoing(&d.message)).collect()
}

/// The `incoming` message for a bus message: its body, the `topic` attribute and, when the
/// body names one, the bus message id in the `bus_id` attribute (every function's logs carry
/// it). What SQS would refuse is encoded by the queue (`fmn_queue::wire`), never retried.
pub fn to_outgoing(m: &BusMessage) -> Outgoing {
    let out = Outgoing::new(m.body.clone()).with_attribute(TOPIC_ATTRIBUTE, m.topic.clone());
    match bus_id(&m.body) {
        Some(id) => {
            tracing::debug!(bus_id = %id, topic = %m.topic, "sink: forwarding");
            out.with_attribute(BUS_ID_ATTRIBUTE, id)
        }
        None => out,
    }
}

/// The bus message id a body carries: fedora-messaging's `id`, fedmsg's `msg_id`.
fn bus_id(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Ids {
        id: Option<serde_json::Value>,
        msg_id: Option<serde_json::Value>,
    }
    let ids: Ids = serde_json::from_str(body).ok()?;
    match ids.id.or(ids.msg_id)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn count_forwarded(metrics: &Metrics, batch: &[Delivery]) {
    for d in batch {
        metrics.source(d.source).forwarded.fetch_add(1, Relaxed);
    }
}

/// Whether SQS accepted the batch.
async fn send_with_backoff<Q: Queue>(
    queue: &Q,
    batch: &[Delivery],
    shutdown: &CancellationToken,
    metrics: &Metrics,
) -> bool {
    let mut delay = Duration::from_millis(500);
    for attempt in 1u32.. {
        match queue.send_all(outgoing(batch)).await {
            Ok(()) => {
                count_forwarded(metrics, batch);
                return true;
            }
            Err(e) if shutdown.is_cancelled() && attempt > 3 => {
                tracing::error!(error = %e, "sqs: batch refused at shutdown");
                return false;
            }
            Err(e) => {
                metrics.sqs_refusals.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, attempt, "sqs: batch refused; backing off");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use fmn_queue::QueueError;

    use super::*;

    /// A queue that refuses while `down`, and records what it accepted.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        accepted: Mutex<Vec<String>>,
    }

    impl Queue for &Flaky {
        async fn send_all(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(QueueError {
                    queue: "q".into(),
                    message: "unreachable".into(),
                    failed: messages.len(),
                });
            }
            let mut accepted = self.accepted.lock().unwrap();
            accepted.extend(messages.into_iter().map(|m| m.body));
            Ok(())
        }
    }

    fn delivery(n: usize) -> (Delivery, tokio::sync::oneshot::Receiver<()>) {
        let (ack, acked) = tokio::sync::oneshot::channel();
        let message = BusMessage {
            topic: "t".into(),
            body: n.to_string(),
        };
        (
            Delivery {
                message,
                ack: Some(ack),
                source: crate::Source::Amqp,
            },
            acked,
        )
    }

    #[tokio::test]
    async fn spools_while_sqs_is_down_acks_and_drains_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let queue: &'static Flaky = Box::leak(Box::default());
        queue.down.store(true, Ordering::SeqCst);
        let metrics = Arc::new(Metrics::default());
        let (tx, rx) = mpsc::channel(100);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let sink = tokio::spawn(forward(
            rx,
            queue,
            CancellationToken::new(),
            metrics.clone(),
            Some(spool),
        ));
        for n in 0..25 {
            let (d, acked) = delivery(n);
            tx.send(d).await.unwrap();
            // Acknowledged although SQS is down: it is on disk.
            acked.await.unwrap();
        }
        assert_eq!(metrics.spool_depth.load(Relaxed), 25);
        assert!(queue.accepted.lock().unwrap().is_empty());
        queue.down.store(false, Ordering::SeqCst);
        let (d, acked) = delivery(25);
        tx.send(d).await.unwrap();
        acked.await.unwrap();
        drop(tx);
        sink.await.unwrap().unwrap();
        let expected: Vec<String> = (0..26).map(|n| n.to_string()).collect();
        assert_eq!(*queue.accepted.lock().unwrap(), expected, "in order, once");
        assert_eq!(metrics.spool_depth.load(Relaxed), 0);
        // The last one went straight to SQS, or behind the others if SQS refused recently.
        assert!(metrics.spooled.load(Relaxed) >= 25);
        assert_eq!(metrics.drained.load(Relaxed), metrics.spooled.load(Relaxed));
        assert_eq!(metrics.sqs_out(), 26);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// Issue 17 item 14: the bus message id travels on `incoming` as the `bus_id` attribute
    /// (fedora-messaging's `id`, fedmsg's `msg_id`), where every function's record span
    /// reads it; without it, the matcher's logs could not be joined to the bridge's.
    #[test]
    fn the_bus_id_travels_as_an_attribute() {
        let attribute = |body: &str| {
            to_outgoing(&BusMessage {
                topic: "t".into(),
                body: body.into(),
            })
            .attributes
            .into_iter()
            .find(|(name, _)| name == BUS_ID_ATTRIBUTE)
            .map(|(_, value)| value)
        };
        assert_eq!(
            attribute(r#"{"topic": "t", "headers": {}, "body": {}, "id": "amqp-1"}"#).as_deref(),
            Some("amqp-1")
        );
        assert_eq!(
            attribute(r#"{"topic": "t", "msg": {}, "msg_id": "2026-fedmsg-2"}"#).as_deref(),
            Some("2026-fedmsg-2")
        );
        assert_eq!(attribute(r#"{"id": null}"#), None);
        assert_eq!(attribute("not json"), None);
    }
}
