//! The discipline every sender follows to deliver once in effect: claim the delivery key,
//! send, then mark it sent, or give the claim up when the send may succeed later.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{Claim, DeliveryTable, StoreError};

/// Delivery records: the idempotency of sending.
pub trait DeliveryLog {
    /// Claims a delivery before sending.
    fn claim(&self, key: &str) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Records a delivery as sent.
    fn mark_sent(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives a claim up after a failed send.
    fn release(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims every one of `keys` (distinct), answering in order. By default one
    /// [`DeliveryLog::claim`] each, concurrently; the table claims a batch in one call.
    fn claim_all(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Vec<Result<Claim, StoreError>>> + Send
    where
        Self: Sync,
    {
        futures::future::join_all(keys.iter().map(|k| self.claim(k)))
    }

    /// Records every one of `keys` as sent. By default one [`DeliveryLog::mark_sent`] each;
    /// the table marks a batch in one call.
    fn mark_all_sent(&self, keys: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send
    where
        Self: Sync,
    {
        async move {
            for key in keys {
                self.mark_sent(key).await?;
            }
            Ok(())
        }
    }
}

impl DeliveryLog for DeliveryTable {
    async fn claim(&self, key: &str) -> Result<Claim, StoreError> {
        DeliveryTable::claim(self, key).await
    }
    async fn mark_sent(&self, key: &str) -> Result<(), StoreError> {
        DeliveryTable::mark_sent(self, key).await
    }
    async fn release(&self, key: &str) -> Result<(), StoreError> {
        DeliveryTable::release(self, key).await
    }
    async fn claim_all(&self, keys: &[String]) -> Vec<Result<Claim, StoreError>> {
        DeliveryTable::claim_all(self, keys).await
    }
    async fn mark_all_sent(&self, keys: &[String]) -> Result<(), StoreError> {
        DeliveryTable::mark_all_sent(self, keys).await
    }
}

/// Delivery records in memory, for the senders' unit tests.
#[derive(Debug, Default)]
pub struct MemoryDeliveryLog(Mutex<HashMap<String, bool>>);

impl MemoryDeliveryLog {
    /// Whether `key` is recorded as sent.
    pub fn is_sent(&self, key: &str) -> bool {
        self.lock().get(key) == Some(&true)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl DeliveryLog for MemoryDeliveryLog {
    async fn claim(&self, key: &str) -> Result<Claim, StoreError> {
        let mut map = self.lock();
        Ok(match map.get(key) {
            Some(true) => Claim::AlreadySent,
            Some(false) => Claim::InProgress,
            None => {
                map.insert(key.into(), false);
                Claim::Acquired
            }
        })
    }
    async fn mark_sent(&self, key: &str) -> Result<(), StoreError> {
        self.lock().insert(key.into(), true);
        Ok(())
    }
    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }
}

/// What one send attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// The receiver has it.
    Sent,
    /// It can never be delivered (rejected, unknown recipient): recorded as done, so it is
    /// never retried, and logged with the reason.
    Undeliverable(String),
    /// It may succeed later (throttled, server down): the claim is given up and the job
    /// fails, to be retried.
    Temporary(String),
    /// Nothing was sent and nothing is to be sent now (the address is gone or disabled):
    /// the claim is given up and the job succeeds.
    Skipped(String),
    /// The send did not finish before the invocation's deadline and was dropped: it may
    /// have reached the receiver, so the claim is kept (its lease runs out by itself) and
    /// the job fails, to be retried.
    Abandoned(String),
}

/// How [`deliver_once`] ended without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Sent now.
    Sent,
    /// Sent by an earlier attempt: nothing was sent now.
    AlreadySent,
    /// Given up for good (see [`SendResult::Undeliverable`]).
    Undeliverable(String),
    /// Not sent, not recorded (see [`SendResult::Skipped`]).
    Skipped(String),
}

/// Why [`deliver_once`] did not deliver: the job should be retried.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Another attempt holds a live claim on the same delivery.
    #[error("another attempt is sending")]
    InProgress,
    /// The send failed and may succeed later.
    #[error("{0}")]
    Temporary(String),
    /// The delivery records could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Delivers under the idempotency `key` at most once in the normal course: claims the key,
/// runs `send` only if this attempt owns it, and records the result.
pub async fn deliver_once<L, F, Fut>(
    log: &L,
    key: &str,
    send: F,
) -> Result<Delivered, DeliveryError>
where
    L: DeliveryLog + Sync + ?Sized,
    F: FnOnce() -> Fut,
    Fut: Future<Output = SendResult>,
{
    if sent_unmarked(key, false) {
        tracing::info!(
            key,
            "sent before (its mark failed); skipping redelivered job"
        );
        return Ok(Delivered::AlreadySent);
    }
    match log.claim(key).await? {
        Claim::AlreadySent => {
            tracing::info!(key, "already sent; skipping redelivered job");
            return Ok(Delivered::AlreadySent);
        }
        Claim::InProgress => return Err(DeliveryError::InProgress),
        Claim::Acquired => {}
    }
    match send().await {
        SendResult::Sent => {
            mark(log, key).await;
            Ok(Delivered::Sent)
        }
        SendResult::Undeliverable(reason) => {
            mark(log, key).await;
            tracing::warn!(key, reason, "undeliverable; not retried");
            Ok(Delivered::Undeliverable(reason))
        }
        SendResult::Temporary(reason) => {
            release(log, key).await;
            Err(DeliveryError::Temporary(reason))
        }
        SendResult::Skipped(reason) => {
            release(log, key).await;
            tracing::info!(key, reason, "skipped");
            Ok(Delivered::Skipped(reason))
        }
        SendResult::Abandoned(reason) => Err(DeliveryError::Temporary(reason)),
    }
}

/// [`deliver_once`] for a batch of distinct `keys` with as few calls to the log as it
/// allows: every key is claimed together ([`DeliveryLog::claim_all`]), `send(i)` runs for
/// each key `i` this attempt owns (concurrently), and the sent ones are marked together
/// ([`DeliveryLog::mark_all_sent`], retried; when it still fails, each key is remembered
/// as in [`deliver_once`]). Claims given up (temporary failures, skips) are released one
/// by one: those are rare. Answers each key's outcome in order.
///
/// Why two calls per batch is the floor: the claim must be durable before the send (or two
/// attempts could both send) and the mark after it (or an attempt after the claim's lease
/// could not tell "sent" from "died before sending"), and a send cannot be undone; both
/// writes cover the whole batch at once.
pub async fn deliver_all<L, F, Fut>(
    log: &L,
    keys: &[String],
    send: F,
) -> Vec<Result<Delivered, DeliveryError>>
where
    L: DeliveryLog + Sync + ?Sized,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = SendResult>,
{
    let mut out: Vec<Option<Result<Delivered, DeliveryError>>> =
        keys.iter().map(|_| None).collect();
    let mut to_claim = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if sent_unmarked(key, false) {
            tracing::info!(
                key,
                "sent before (its mark failed); skipping redelivered job"
            );
            out[i] = Some(Ok(Delivered::AlreadySent));
        } else {
            to_claim.push(i);
        }
    }
    let claim_keys: Vec<String> = to_claim.iter().map(|i| keys[*i].clone()).collect();
    let claims = log.claim_all(&claim_keys).await;
    let mut owned = Vec::new();
    for (i, claim) in to_claim.into_iter().zip(claims) {
        match claim {
            Ok(Claim::Acquired) => owned.push(i),
            Ok(Claim::AlreadySent) => {
                tracing::info!(key = keys[i], "already sent; skipping redelivered job");
                out[i] = Some(Ok(Delivered::AlreadySent));
            }
            Ok(Claim::InProgress) => out[i] = Some(Err(DeliveryError::InProgress)),
            Err(e) => out[i] = Some(Err(e.into())),
        }
    }
    let results = futures::future::join_all(owned.iter().map(|i| send(*i))).await;
    let mut to_mark = Vec::new();
    let mut to_release = Vec::new();
    for (i, result) in owned.into_iter().zip(results) {
        let key = &keys[i];
        out[i] = Some(match result {
            SendResult::Sent => {
                to_mark.push(key.clone());
                Ok(Delivered::Sent)
            }
            SendResult::Undeliverable(reason) => {
                tracing::warn!(key, reason, "undeliverable; not retried");
                to_mark.push(key.clone());
                Ok(Delivered::Undeliverable(reason))
            }
            SendResult::Temporary(reason) => {
                to_release.push(key.as_str());
                Err(DeliveryError::Temporary(reason))
            }
            SendResult::Skipped(reason) => {
                tracing::info!(key, reason, "skipped");
                to_release.push(key.as_str());
                Ok(Delivered::Skipped(reason))
            }
            SendResult::Abandoned(reason) => Err(DeliveryError::Temporary(reason)),
        });
    }
    if !to_mark.is_empty() {
        mark_all(log, &to_mark).await;
    }
    futures::future::join_all(to_release.into_iter().map(|key| release(log, key))).await;
    out.into_iter()
        .map(|r| r.unwrap_or(Err(DeliveryError::Temporary("not attempted".into()))))
        .collect()
}

/// [`mark`] for a batch: the sends cannot be undone, so a failing mark never fails them.
async fn mark_all<L: DeliveryLog + Sync + ?Sized>(log: &L, keys: &[String]) {
    let mut backoff = std::time::Duration::from_millis(50);
    for attempt in 1..=MARK_ATTEMPTS {
        match log.mark_all_sent(keys).await {
            Ok(()) => return,
            Err(e) if attempt == MARK_ATTEMPTS => {
                tracing::error!(keys = keys.len(), error = %e, "sent, but the sent marks failed");
                for key in keys {
                    sent_unmarked(key, true);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "sent marks failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 4;
            }
        }
    }
}

/// Attempts at marking a delivery done before giving up on the mark.
const MARK_ATTEMPTS: u32 = 3;
/// How many sent-but-unmarked keys this process remembers.
const UNMARKED_KEPT: usize = 10_000;

/// Marks `key` done after a send that happened. The send cannot be undone, so a failing
/// mark must not fail the delivery (its retry would send again once the claim's lease ran
/// out): the mark is retried, and if it still fails the key is remembered in this process
/// (a warm sender skips it when the job comes back) and the failure logged loudly.
async fn mark<L: DeliveryLog + Sync + ?Sized>(log: &L, key: &str) {
    let mut backoff = std::time::Duration::from_millis(50);
    for attempt in 1..=MARK_ATTEMPTS {
        match log.mark_sent(key).await {
            Ok(()) => return,
            Err(e) if attempt == MARK_ATTEMPTS => {
                tracing::error!(key, error = %e, "sent, but the sent mark failed");
                sent_unmarked(key, true);
            }
            Err(e) => {
                tracing::warn!(key, error = %e, attempt, "sent mark failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 4;
            }
        }
    }
}

/// Whether `key` was sent by this process without its mark being stored; `remember`
/// records that it was.
fn sent_unmarked(key: &str, remember: bool) -> bool {
    static KEYS: Mutex<std::collections::VecDeque<String>> =
        Mutex::new(std::collections::VecDeque::new());
    let mut keys = KEYS.lock().unwrap_or_else(|p| p.into_inner());
    if remember {
        if keys.len() == UNMARKED_KEPT {
            keys.pop_front();
        }
        keys.push_back(key.to_owned());
        return true;
    }
    keys.iter().any(|k| k == key)
}

async fn release<L: DeliveryLog + Sync + ?Sized>(log: &L, key: &str) {
    if let Err(release) = log.release(key).await {
        // The claim's lease runs out by itself; a retry before then finds it in progress
        // and waits.
        tracing::warn!(key, error = %release, "could not release claim");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_once_retries_temporary_and_records_undeliverable() {
        let log = MemoryDeliveryLog::default();
        let failed =
            deliver_once(&log, "a", || async { SendResult::Temporary("busy".into()) }).await;
        assert!(matches!(failed, Err(DeliveryError::Temporary(r)) if r == "busy"));
        assert!(!log.is_sent("a"));
        let sent = deliver_once(&log, "a", || async { SendResult::Sent }).await;
        assert_eq!(sent.unwrap(), Delivered::Sent);
        let mut called = false;
        let again = deliver_once(&log, "a", || {
            called = true;
            async { SendResult::Sent }
        })
        .await;
        assert_eq!(again.unwrap(), Delivered::AlreadySent);
        assert!(!called, "sent twice");

        let gone = deliver_once(&log, "b", || async {
            SendResult::Undeliverable("no".into())
        })
        .await;
        assert_eq!(gone.unwrap(), Delivered::Undeliverable("no".into()));
        assert!(log.is_sent("b"));

        let skipped =
            deliver_once(&log, "d", || async { SendResult::Skipped("gone".into()) }).await;
        assert_eq!(skipped.unwrap(), Delivered::Skipped("gone".into()));
        assert_eq!(
            log.claim("d").await.unwrap(),
            Claim::Acquired,
            "a skip leaves no record"
        );

        log.claim("c").await.unwrap();
        let busy = deliver_once(&log, "c", || async { SendResult::Sent }).await;
        assert!(matches!(busy, Err(DeliveryError::InProgress)));
    }

    /// Claims as the table does once a lease has run out; marks fail while `down`.
    #[derive(Default)]
    struct LostMarks {
        sent: Mutex<Vec<String>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl DeliveryLog for LostMarks {
        async fn claim(&self, key: &str) -> Result<Claim, StoreError> {
            let sent = self.sent.lock().unwrap().iter().any(|k| k == key);
            Ok(if sent {
                Claim::AlreadySent
            } else {
                Claim::Acquired
            })
        }
        async fn mark_sent(&self, key: &str) -> Result<(), StoreError> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Dynamo("unreachable".into()));
            }
            self.sent.lock().unwrap().push(key.to_owned());
            Ok(())
        }
        async fn release(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
    }

    /// Issue 17 item 6: before, the failed mark failed the delivery, and its retry (the
    /// lease run out) sent again.
    #[tokio::test]
    async fn a_send_whose_mark_failed_is_not_sent_again() {
        let log = LostMarks::default();
        log.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let sends = std::sync::atomic::AtomicUsize::new(0);
        let send = || async {
            sends.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            SendResult::Sent
        };
        let first = deliver_once(&log, "unmarked-key", send).await;
        assert_eq!(first.unwrap(), Delivered::Sent, "the send happened");
        let again = deliver_once(&log, "unmarked-key", send).await;
        assert_eq!(again.unwrap(), Delivered::AlreadySent);
        assert_eq!(sends.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
