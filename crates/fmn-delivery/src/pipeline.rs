//! The steps every sender shares: parse, gate, claim, send, mark, report.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_digest::{Admission, Admit, NoGate};
use fmn_queue::{ContextJob, RecordError};
use fmn_store::{Delivered, DeliveryLog, SendResult, deliver_once};

use crate::history::{self, Outcome};
use crate::{AddressBook, Channel, History, Item, NoHistory, SendError, Target, Unchecked};

/// Reads a job from a context queue's record. A job that cannot be read never will be: the
/// record fails, and after the queue's receive limit SQS moves it to the DLQ where an
/// operator sees it.
pub fn parse_job(record: &SqsMessage) -> Result<ContextJob, RecordError> {
    // A job whose message carries characters SQS refuses travels encoded (`fmn_queue::wire`).
    let body = fmn_queue::wire::record_body(record)?;
    let job: ContextJob =
        serde_json::from_str(&body).map_err(|e| RecordError(format!("unreadable job: {e}")))?;
    if let ContextJob::Notification(n) = &job {
        fmn_queue::record_bus_id(&n.message.id);
    }
    Ok(job)
}

/// A sender: a [`Channel`] with delivery records `D`, a digest and flood gate `G`, an
/// [`AddressBook`] `A` checking a notification's addresses just before sending, and the
/// users' delivery [`History`] `H`.
#[derive(Debug)]
pub struct Pipeline<C, D, G = NoGate, A = Unchecked, H = NoHistory> {
    channel: C,
    deliveries: D,
    gate: G,
    book: A,
    history: H,
}

impl<C, D> Pipeline<C, D> {
    /// A sender through `channel`, recording deliveries in `deliveries`, everything at once.
    pub fn new(channel: C, deliveries: D) -> Self {
        Pipeline {
            channel,
            deliveries,
            gate: NoGate,
            book: Unchecked,
            history: NoHistory,
        }
    }
}

impl<C, D, G, A, H> Pipeline<C, D, G, A, H> {
    /// Holds digests and floods with `gate`.
    pub fn with_gate<G2>(self, gate: G2) -> Pipeline<C, D, G2, A, H> {
        Pipeline {
            channel: self.channel,
            deliveries: self.deliveries,
            gate,
            book: self.book,
            history: self.history,
        }
    }

    /// Sends a notification only to those of its addresses `book` still lists as
    /// deliverable (one removed or disabled after matching is not sent to).
    pub fn with_addresses<B>(self, book: B) -> Pipeline<C, D, G, B, H> {
        Pipeline {
            channel: self.channel,
            deliveries: self.deliveries,
            gate: self.gate,
            book,
            history: self.history,
        }
    }

    /// Records each notification's outcome (sent, held, failed and why) in `history`.
    pub fn with_history<H2>(self, history: H2) -> Pipeline<C, D, G, A, H2> {
        Pipeline {
            channel: self.channel,
            deliveries: self.deliveries,
            gate: self.gate,
            book: self.book,
            history,
        }
    }

    /// The history outcomes are recorded in.
    pub fn history(&self) -> &H {
        &self.history
    }

    /// The channel it sends through.
    pub fn channel(&self) -> &C {
        &self.channel
    }

    /// The gate notifications pass.
    pub fn gate(&self) -> &G {
        &self.gate
    }
}

impl<C, D, G, A, H> Pipeline<C, D, G, A, H>
where
    C: Channel + Sync,
    D: DeliveryLog + Sync,
    G: Admit + Sync,
    A: AddressBook + Sync,
    H: History + Sync,
{
    /// Handles one SQS batch from the channel's queue; one bad record never fails the
    /// others.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_until(event, None).await
    }

    /// [`Pipeline::handle`], giving up at `deadline` on the sends still waiting (their
    /// records fail and SQS retries them): a hanging target never times the invocation out.
    pub async fn handle_until(
        &self,
        event: SqsEvent,
        deadline: Option<std::time::Instant>,
    ) -> SqsBatchResponse {
        fmn_queue::process_batch(event, |record| async move {
            let mut job = parse_job(&record)?;
            if let ContextJob::Notification(n) = &mut job
                && let Some(now) =
                    (self.book.deliverable(&n.user, n.context).await).map_err(RecordError)?
            {
                let before = n.addresses.len();
                n.addresses.retain(|a| now.contains(a));
                if n.addresses.len() < before {
                    tracing::info!(user = %n.user, dropped = before - n.addresses.len(),
                        "addresses no longer deliverable since matching: not sent to");
                }
                if n.addresses.is_empty() {
                    return Ok(());
                }
            }
            if let ContextJob::Notification(n) = &job {
                // Only notifications are held: a confirmation or a notice is wanted now.
                match self.gate.admit(n).await {
                    Ok(Admission::Held) => {
                        tracing::info!(user = %n.user, id = %n.message.id, "held for a digest");
                        self.remember(history::entry(n, fmn_store::HistoryState::Held, None))
                            .await;
                        return Ok(());
                    }
                    Ok(Admission::Send) => {}
                    Err(e) => return Err(RecordError(e.to_string())),
                }
            }
            self.deliver_until(&Item::from_job(&job), deadline).await
        })
        .await
    }

    /// Delivers `item` once to each of its addresses; fails (to be retried) if any address
    /// failed temporarily, naming each.
    pub async fn deliver(&self, item: &Item<'_>) -> Result<(), RecordError> {
        self.deliver_until(item, None).await
    }

    /// [`Pipeline::deliver`] to every address at once, each given up at `deadline` if it
    /// has not finished by then (a failure: SQS retries the record; the claim's lease keeps
    /// a retry from sending while the abandoned attempt might still).
    pub async fn deliver_until(
        &self,
        item: &Item<'_>,
        deadline: Option<std::time::Instant>,
    ) -> Result<(), RecordError> {
        self.channel.accepts(item).map_err(RecordError)?;
        let message = self.channel.render(item);
        let message = &message;
        let addresses = item.addresses();
        let results = futures::future::join_all(addresses.iter().map(|address| async move {
            let key = item.delivery_key(address);
            let target = Target {
                item,
                address,
                key: &key,
            };
            let one = self.deliver_one(&target, message);
            let outcome = match deadline {
                Some(at) => tokio::time::timeout_at(at.into(), one)
                    .await
                    .unwrap_or_else(|_| {
                        tracing::warn!(key, "{} not sent before the deadline", C::NAME);
                        Err(fmn_store::DeliveryError::Temporary(
                            "not finished before the invocation's deadline".into(),
                        ))
                    }),
                None => one.await,
            };
            (address.clone(), outcome)
        }))
        .await;
        let outcomes: Vec<(String, Outcome)> = results
            .iter()
            .map(|(address, r)| (address.clone(), Outcome::of(r)))
            .collect();
        if let Some(entry) = history::delivered(item, &outcomes) {
            self.remember(entry).await;
        }
        let failures: Vec<String> = results
            .into_iter()
            .filter_map(|(address, r)| r.err().map(|e| format!("{address}: {e}")))
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RecordError(failures.join("; ")))
        }
    }

    /// Records a history entry; a failure is logged, never the delivery's.
    async fn remember(&self, entry: fmn_store::HistoryEntry) {
        if let Err(e) = self.history.record(&entry).await {
            tracing::warn!(user = %entry.user, error = %e, "history not recorded");
        }
    }

    async fn deliver_one(
        &self,
        target: &Target<'_>,
        message: &C::Message,
    ) -> Result<Delivered, fmn_store::DeliveryError> {
        let outcome = deliver_once(&self.deliveries, target.key, || async {
            match self.channel.send(target, message).await {
                Ok(()) => SendResult::Sent,
                Err(SendError::Permanent(e)) => SendResult::Undeliverable(e),
                Err(SendError::Temporary(e)) => SendResult::Temporary(e),
                Err(SendError::Gone(e)) => SendResult::Skipped(e),
            }
        })
        .await?;
        if outcome == Delivered::Sent {
            tracing::info!(
                key = target.key,
                kind = target.item.kind(),
                "{} sent",
                C::NAME
            );
        }
        Ok(outcome)
    }
}

impl<C, D, G, A, H> fmn_lambda::SqsFunction for Pipeline<C, D, G, A, H>
where
    C: Channel + Send + Sync + 'static,
    D: DeliveryLog + Send + Sync + 'static,
    G: Admit + Send + Sync + 'static,
    A: AddressBook + Send + Sync + 'static,
    H: History + Send + Sync + 'static,
{
    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        Pipeline::handle(self, event).await
    }

    async fn handle_until(
        &self,
        event: SqsEvent,
        deadline: Option<std::time::Instant>,
    ) -> SqsBatchResponse {
        Pipeline::handle_until(self, event, deadline).await
    }
}

#[cfg(test)]
mod tests {
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
        let text = include_str!("../../fmn-queue/tests/fixtures/email-job.json");
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
}
