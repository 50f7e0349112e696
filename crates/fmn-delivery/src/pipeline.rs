//! The steps every sender shares: parse, gate, claim, send, mark, report.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_digest::{Admission, Admit, NoGate};
use fmn_queue::{ContextJob, RecordError};
use fmn_store::{Delivered, DeliveryLog, SendResult, deliver_once};

use crate::{Channel, Item, SendError, Target};

/// Reads a job from a context queue's record. A job that cannot be read never will be: the
/// record fails, and after the queue's receive limit SQS moves it to the DLQ where an
/// operator sees it.
pub fn parse_job(record: &SqsMessage) -> Result<ContextJob, RecordError> {
    serde_json::from_str(record.body.as_deref().unwrap_or_default())
        .map_err(|e| RecordError(format!("unreadable job: {e}")))
}

/// A sender: a [`Channel`] with delivery records `D` and a digest and flood gate `G`.
#[derive(Debug)]
pub struct Pipeline<C, D, G = NoGate> {
    channel: C,
    deliveries: D,
    gate: G,
}

impl<C, D> Pipeline<C, D> {
    /// A sender through `channel`, recording deliveries in `deliveries`, everything at once.
    pub fn new(channel: C, deliveries: D) -> Self {
        Pipeline {
            channel,
            deliveries,
            gate: NoGate,
        }
    }
}

impl<C, D, G> Pipeline<C, D, G> {
    /// Holds digests and floods with `gate`.
    pub fn with_gate<H>(self, gate: H) -> Pipeline<C, D, H> {
        Pipeline {
            channel: self.channel,
            deliveries: self.deliveries,
            gate,
        }
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

impl<C, D, G> Pipeline<C, D, G>
where
    C: Channel + Sync,
    D: DeliveryLog + Sync,
    G: Admit + Sync,
{
    /// Handles one SQS batch from the channel's queue; one bad record never fails the
    /// others.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        fmn_queue::process_batch(event, |record| async move {
            let job = parse_job(&record)?;
            if let ContextJob::Notification(n) = &job {
                // Only notifications are held: a confirmation or a notice is wanted now.
                match self.gate.admit(n).await {
                    Ok(Admission::Held) => {
                        tracing::info!(user = %n.user, id = %n.message.id, "held for a digest");
                        return Ok(());
                    }
                    Ok(Admission::Send) => {}
                    Err(e) => return Err(RecordError(e.to_string())),
                }
            }
            self.deliver(&Item::from_job(&job)).await
        })
        .await
    }

    /// Delivers `item` once to each of its addresses; fails (to be retried) if any address
    /// failed temporarily, naming each.
    pub async fn deliver(&self, item: &Item<'_>) -> Result<(), RecordError> {
        self.channel.accepts(item).map_err(RecordError)?;
        let message = self.channel.render(item);
        let mut failures = Vec::new();
        for address in item.addresses() {
            let key = item.delivery_key(&address);
            let target = Target {
                item,
                address: &address,
                key: &key,
            };
            if let Err(e) = self.deliver_one(&target, &message).await {
                failures.push(format!("{address}: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RecordError(failures.join("; ")))
        }
    }

    async fn deliver_one(
        &self,
        target: &Target<'_>,
        message: &C::Message,
    ) -> Result<(), fmn_store::DeliveryError> {
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
        Ok(())
    }
}

impl<C, D, G> fmn_lambda::SqsFunction for Pipeline<C, D, G>
where
    C: Channel + Send + Sync + 'static,
    D: DeliveryLog + Send + Sync + 'static,
    G: Admit + Send + Sync + 'static,
{
    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        Pipeline::handle(self, event).await
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
}
