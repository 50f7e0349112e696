//! The SQS sink: batches bus messages into the `incoming` queue.

use std::time::Duration;

use fmn_queue::{Outgoing, Queue, TOPIC_ATTRIBUTE};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::BusMessage;

/// The longest a received message waits for its batch to fill.
const LINGER: Duration = Duration::from_millis(100);

/// Forwards everything from `rx` to `queue` in batches of up to ten, until `rx` closes.
/// A batch that SQS refuses is retried with backoff until it is accepted or `shutdown`
/// has been requested and a final attempt failed (then the loss is logged loudly).
pub async fn forward<Q: Queue>(
    mut rx: mpsc::Receiver<BusMessage>,
    queue: Q,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut batch: Vec<BusMessage> = Vec::with_capacity(10);
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
        send_with_backoff(&queue, &batch, &shutdown).await;
        forwarded += batch.len() as u64;
        tracing::debug!(forwarded, "sqs: batch accepted");
        batch.clear();
    }
    tracing::info!(forwarded, "sqs: sink drained");
    Ok(())
}

async fn send_with_backoff<Q: Queue>(
    queue: &Q,
    batch: &[BusMessage],
    shutdown: &CancellationToken,
) {
    let mut delay = Duration::from_millis(500);
    for attempt in 1u32.. {
        let outgoing = batch
            .iter()
            .map(|m| Outgoing::new(m.body.clone()).with_attribute(TOPIC_ATTRIBUTE, m.topic.clone()))
            .collect();
        match queue.send_all(outgoing).await {
            Ok(()) => return,
            Err(e) if shutdown.is_cancelled() && attempt > 3 => {
                tracing::error!(error = %e, lost = batch.len(), "sqs: giving up at shutdown");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "sqs: batch refused; backing off");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}
