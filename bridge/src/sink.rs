//! The SQS sink: batches bus messages into the `incoming` queue, then acknowledges them to
//! their sources.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use fmn_queue::{Outgoing, Queue, TOPIC_ATTRIBUTE};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Delivery;
use crate::metrics::Metrics;

/// The longest a received message waits for its batch to fill.
const LINGER: Duration = Duration::from_millis(100);

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
) -> anyhow::Result<()> {
    let mut batch: Vec<Delivery> = Vec::with_capacity(10);
    let mut forwarded: u64 = 0;
    loop {
        let first = rx.recv().await;
        let Some(first) = first else { break };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < 10 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => batch.push(m),
                Ok(None) | Err(_) => break,
            }
        }
        if send_with_backoff(&queue, &batch, &shutdown).await {
            forwarded += batch.len() as u64;
            metrics.sqs_out.fetch_add(batch.len() as u64, Relaxed);
            for d in batch.drain(..) {
                if let Some(ack) = d.ack {
                    // The source may have gone (its connection dropped): it gets a redelivery.
                    let _ = ack.send(());
                }
            }
            tracing::debug!(forwarded, "sqs: batch accepted");
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
    tracing::info!(forwarded, "sqs: sink drained");
    Ok(())
}

/// Outgoing SQS messages for a batch of deliveries.
pub fn outgoing(batch: &[Delivery]) -> Vec<Outgoing> {
    batch
        .iter()
        .map(|d| {
            Outgoing::new(d.message.body.clone())
                .with_attribute(TOPIC_ATTRIBUTE, d.message.topic.clone())
        })
        .collect()
}

/// Whether SQS accepted the batch.
async fn send_with_backoff<Q: Queue>(
    queue: &Q,
    batch: &[Delivery],
    shutdown: &CancellationToken,
) -> bool {
    let mut delay = Duration::from_millis(500);
    for attempt in 1u32.. {
        match queue.send_all(outgoing(batch)).await {
            Ok(()) => return true,
            Err(e) if shutdown.is_cancelled() && attempt > 3 => {
                tracing::error!(error = %e, "sqs: batch refused at shutdown");
                return false;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "sqs: batch refused; backing off");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
    false
}
