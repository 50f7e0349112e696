//! The pipeline over an in-memory channel and delivery log.

use std::sync::Mutex;

use fmn_queue::test_util::{failed_ids, sqs_event};

use super::*;

/// Sends to every address but `down` (temporarily) and `bad` (permanently).
#[derive(Default)]
struct Wire(Mutex<Vec<String>>);

impl Channel for Wire {
    type Message = ();
    const NAME: &'static str = "test message";
    fn render(&self, _: &Item<'_>) {}
    async fn send(&self, target: &Target<'_>, _: &()) -> Result<(), SendError> {
        match target.address {
            "hang" => std::future::pending().await,
            "down" => Err(SendError::Temporary("refused".into())),
            "bad" => Err(SendError::Permanent("no such user".into())),
            a => {
                self.0.lock().unwrap().push(a.to_owned());
                Ok(())
            }
        }
    }
}

fn job(addresses: &[&str]) -> String {
    let text = include_str!("../../../fmn-queue/tests/fixtures/email-job.json");
    let mut job: serde_json::Value = serde_json::from_str(text).unwrap();
    job["addresses"] = serde_json::json!(addresses);
    job.to_string()
}

#[tokio::test]
async fn one_failed_address_fails_the_record_and_the_retry_sends_only_it() {
    let sender = Pipeline::new(Wire::default(), fmn_store::MemoryDeliveryLog::default());
    let job = job(&["a", "down", "bad"]);
    let response = sender.handle(sqs_event(&[job.as_str(), "{"])).await;
    assert_eq!(failed_ids(&response), ["r0", "r1"]);
    assert_eq!(*sender.channel().0.lock().unwrap(), ["a"]);
    // Redelivered: "a" and "bad" are done, "down" still fails.
    let again = sender.handle(sqs_event(&[job.as_str()])).await;
    assert_eq!(failed_ids(&again), ["r0"]);
    assert_eq!(sender.channel().0.lock().unwrap().len(), 1);
}

/// Issue 17 item 5: before, addresses went one after another without a deadline, so the
/// hanging target came first and held every other (and the invocation) forever.
#[tokio::test]
async fn a_hanging_target_among_fast_ones_fails_alone_at_the_deadline() {
    let sender = Pipeline::new(Wire::default(), fmn_store::MemoryDeliveryLog::default());
    let job = job(&["hang", "a", "b"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
    let handled = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        sender.handle_until(sqs_event(&[job.as_str()]), Some(deadline)),
    )
    .await
    .expect("the batch ends at its deadline");
    assert_eq!(failed_ids(&handled), ["r0"]);
    let mut sent = sender.channel().0.lock().unwrap().clone();
    sent.sort();
    assert_eq!(sent, ["a", "b"]);
}

/// The address book of a user who removed "b" after matching.
struct OnlyA;

impl AddressBook for OnlyA {
    async fn deliverable(
        &self,
        _: &str,
        _: fmn_rules::ContextKind,
    ) -> Result<Option<Vec<String>>, String> {
        Ok(Some(vec!["a".to_owned()]))
    }
}

/// Issue 17 item 6: before, the job's addresses, as matched, were all sent to.
#[tokio::test]
async fn an_address_removed_after_matching_is_not_sent_to() {
    let sender = Pipeline::new(Wire::default(), fmn_store::MemoryDeliveryLog::default())
        .with_addresses(OnlyA);
    let response = sender.handle(sqs_event(&[job(&["a", "b"]).as_str()])).await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!(*sender.channel().0.lock().unwrap(), ["a"]);
}

/// Delivery records in memory that count the batch calls.
#[derive(Default)]
struct CountingLog {
    inner: fmn_store::MemoryDeliveryLog,
    claim_calls: std::sync::atomic::AtomicUsize,
    mark_calls: std::sync::atomic::AtomicUsize,
}

impl DeliveryLog for CountingLog {
    async fn claim(&self, key: &str) -> Result<fmn_store::Claim, fmn_store::StoreError> {
        self.inner.claim(key).await
    }
    async fn mark_sent(&self, key: &str) -> Result<(), fmn_store::StoreError> {
        self.inner.mark_sent(key).await
    }
    async fn release(&self, key: &str) -> Result<(), fmn_store::StoreError> {
        self.inner.release(key).await
    }
    async fn claim_all(
        &self,
        keys: &[String],
    ) -> Vec<Result<fmn_store::Claim, fmn_store::StoreError>> {
        self.claim_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        futures::future::join_all(keys.iter().map(|k| self.inner.claim(k))).await
    }
    async fn mark_all_sent(&self, keys: &[String]) -> Result<(), fmn_store::StoreError> {
        self.mark_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for key in keys {
            self.inner.mark_sent(key).await?;
        }
        Ok(())
    }
}

/// Issue 18: before, every address of every record made its own claim and mark; now a
/// batch claims once and marks once, and a job twice in the batch is sent once.
#[tokio::test]
async fn a_batch_claims_once_and_marks_once() {
    let sender = Pipeline::new(Wire::default(), CountingLog::default());
    let (one, two) = (job(&["a", "b"]), job(&["c"]));
    let response = sender
        .handle(sqs_event(&[one.as_str(), two.as_str(), one.as_str()]))
        .await;
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    let mut sent = sender.channel().0.lock().unwrap().clone();
    sent.sort();
    assert_eq!(sent, ["a", "b", "c"]);
    let calls = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(calls(&sender.deliveries.claim_calls), 1);
    assert_eq!(calls(&sender.deliveries.mark_calls), 1);
}

#[tokio::test]
async fn each_notification_outcome_goes_to_the_history_once() {
    let sender = Pipeline::new(Wire::default(), fmn_store::MemoryDeliveryLog::default())
        .with_history(crate::MemoryHistory::default());
    let job = job(&["a", "bad"]);
    sender.handle(sqs_event(&[job.as_str()])).await;
    // Redelivered: nothing new happened, nothing new recorded.
    sender.handle(sqs_event(&[job.as_str()])).await;
    let entries = sender.history().0.lock().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].state, fmn_store::HistoryState::Failed);
    assert_eq!(entries[0].reason.as_deref(), Some("bad: no such user"));
    assert_eq!(entries[0].addresses, ["a", "bad"]);
}
