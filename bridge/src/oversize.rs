//! Messages over SQS's size limit: stored in S3 with a pointer on the queue
//! ([`fmn_queue::oversize`] documents the format), so that none is dropped or blocks a batch.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use fmn_queue::oversize::{MAX_INLINE_BYTES, Offloader};
use fmn_queue::{Outgoing, Queue, QueueError};

use crate::metrics::Metrics;

/// A queue that offloads oversized bodies before sending.
#[derive(Debug)]
pub struct OversizeQueue<Q> {
    inner: Q,
    offloader: Option<Offloader>,
    /// Without an offloader: where oversized bodies are kept for an operator (the spool's
    /// `oversize/` folder), rather than blocking the sink forever.
    keep_dir: Option<PathBuf>,
    metrics: Arc<Metrics>,
}

impl<Q> OversizeQueue<Q> {
    /// Sends to `inner`, offloading with `offloader` (or keeping in `keep_dir`).
    pub fn new(
        inner: Q,
        offloader: Option<Offloader>,
        keep_dir: Option<PathBuf>,
        metrics: Arc<Metrics>,
    ) -> Self {
        OversizeQueue {
            inner,
            offloader,
            keep_dir,
            metrics,
        }
    }

    fn keep(&self, message: &Outgoing) {
        let Some(dir) = &self.keep_dir else {
            tracing::error!(
                bytes = message.body.len(),
                "oversize: message over SQS's limit, no bucket and no spool: dropped"
            );
            return;
        };
        let path = dir.join(format!("{}.json", uuid::Uuid::new_v4()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, message.body.as_bytes()));
        match written {
            Ok(()) => tracing::error!(path = %path.display(), bytes = message.body.len(),
                "oversize: message over SQS's limit and no bucket configured: kept on disk"),
            Err(e) => tracing::error!(error = %e, bytes = message.body.len(),
                "oversize: message over SQS's limit, cannot keep it on disk: dropped"),
        }
    }
}

impl<Q: Queue + Sync> Queue for OversizeQueue<Q> {
    async fn send_all(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        let mut out = Vec::with_capacity(messages.len());
        let total = messages.len();
        for m in messages {
            // Encoded before measuring: a base64 body is a third bigger.
            let mut m = m.sqs_safe();
            if m.body.len() > MAX_INLINE_BYTES {
                let Some(offloader) = &self.offloader else {
                    self.keep(&m);
                    continue;
                };
                // A retry stores it again under a new key; the lifecycle rule expires orphans.
                let pointer = offloader.store(&m.body).await.map_err(|e| QueueError {
                    queue: "s3".into(),
                    message: e.to_string(),
                    failed: total,
                })?;
                tracing::info!(bytes = m.body.len(), key = %pointer.key, "oversize: stored in S3");
                self.metrics.offloaded.fetch_add(1, Relaxed);
                m.body = pointer.to_body();
            }
            out.push(m);
        }
        if out.is_empty() {
            return Ok(());
        }
        self.inner.send_all(out).await
    }
}
