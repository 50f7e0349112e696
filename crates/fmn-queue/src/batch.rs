//! Partial batch failures for SQS-triggered functions.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::FutureExt;
use tracing::Instrument;

/// Why one record failed. Retryable failures go back to the queue (and, after the queue's
/// `maxReceiveCount`, to its DLQ); a handler deals with permanent failures itself, e.g. by
/// quarantining, and reports success.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// Runs `handle` on every record concurrently and reports the ones that failed, so that SQS
/// retries only those. A handler that panics on a record fails that record alone (the panic
/// is caught and logged with its message), never the batch.
///
/// Each record's handler runs in a `record` span carrying the SQS `sqs_id` and the bus
/// message's `bus_id` (from the record's [`BUS_ID_ATTRIBUTE`](crate::BUS_ID_ATTRIBUTE) when
/// the producer set it; a handler that learns it later records it with
/// [`record_bus_id`]), so every log line of one bus message can be found in every function.
pub async fn process_batch<F, Fut>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), RecordError>>,
{
    batch_response(map_batch(event, handle).await)
}

/// The first half of [`process_batch`], for handlers that finish a batch together (the
/// matcher sends the jobs of all its records in shared calls): runs `handle` on every
/// record concurrently, in the same spans and catching panics the same way, and answers
/// each record's id with its result, in the batch's order.
pub async fn map_batch<T, F, Fut>(
    event: SqsEvent,
    handle: F,
) -> Vec<(String, Result<T, RecordError>)>
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<T, RecordError>>,
{
    futures::future::join_all(event.records.into_iter().map(|record| {
        let id = record.message_id.clone().unwrap_or_default();
        let bus_id = crate::wire::attribute(&record, crate::BUS_ID_ATTRIBUTE).map(str::to_owned);
        let span = tracing::info_span!(
            "record",
            sqs_id = %id,
            bus_id = tracing::field::Empty
        );
        if let Some(bus_id) = &bus_id {
            span.record("bus_id", bus_id.as_str());
        }
        // Catching here, per record: a panic in one record's handler must not take the
        // other records (and the whole invocation) with it.
        let fut = AssertUnwindSafe(handle(record)).catch_unwind();
        async move {
            let result = match fut.await {
                Ok(result) => result,
                Err(panic) => {
                    let what = panic_text(panic.as_ref());
                    tracing::error!(panic = %what, "record handler panicked");
                    Err(RecordError(format!("handler panicked: {what}")))
                }
            };
            (id, result)
        }
        .instrument(span)
    }))
    .await
}

/// The second half of [`process_batch`]: the partial batch response naming every record
/// whose result is an error (each logged).
pub fn batch_response(
    results: impl IntoIterator<Item = (String, Result<(), RecordError>)>,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for (id, result) in results {
        if let Err(e) = result {
            tracing::warn!(message_id = %id, error = %e, "record failed; SQS will retry it");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Records the bus message id on the current `record` span (see [`process_batch`]), once a
/// handler has read it from the record's body.
pub fn record_bus_id(bus_id: &str) {
    tracing::Span::current().record("bus_id", bus_id);
}

/// The text a panic was raised with.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::sqs_record as record;

    #[tokio::test]
    async fn reports_only_the_bad_record() {
        let mut event = SqsEvent::default();
        event.records = vec![
            record("good", "1"),
            record("bad", "x"),
            record("good2", "2"),
        ];
        let response = process_batch(event, |m| async move {
            m.body
                .unwrap_or_default()
                .parse::<u32>()
                .map(drop)
                .map_err(|e| RecordError(e.to_string()))
        })
        .await;
        assert_eq!(crate::test_util::failed_ids(&response), ["bad"]);
    }

    /// Issue 17 item 3: without the per-record catch, the panic unwinds through the whole
    /// batch (the test itself panics).
    #[tokio::test]
    async fn a_panic_fails_only_its_record() {
        let mut event = SqsEvent::default();
        event.records = vec![
            record("good", "1"),
            record("boom", "panic"),
            record("good2", "2"),
        ];
        let handled = std::sync::Mutex::new(Vec::new());
        let response = process_batch(event, |m| {
            let handled = &handled;
            async move {
                let body = m.body.unwrap_or_default();
                assert!(body != "panic", "a bug in the handler");
                handled.lock().unwrap().push(body);
                Ok(())
            }
        })
        .await;
        assert_eq!(crate::test_util::failed_ids(&response), ["boom"]);
        assert_eq!(*handled.lock().unwrap(), ["1", "2"]);
    }

    /// Issue 17 item 14: every log line of a record's handler names the bus message, from
    /// the producer's `bus_id` attribute or from what the handler read in the body. Without
    /// the `record` span (or with the attribute ignored) the lines carry no id.
    #[tokio::test]
    async fn every_log_line_of_a_record_carries_its_bus_id() {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);

        let mut tagged = record("r1", "from the attribute");
        crate::wire::set_attributes(
            &mut tagged,
            &[(crate::BUS_ID_ATTRIBUTE.to_owned(), "bus-1".to_owned())],
        );
        let mut event = SqsEvent::default();
        event.records = vec![tagged, record("r2", "bus-2")];
        let response = process_batch(event, |m| async move {
            let body = m.body.unwrap_or_default();
            if body.starts_with("bus-") {
                record_bus_id(&body);
            }
            tracing::info!("handled {body}");
            Ok(())
        })
        .await;
        assert!(response.batch_item_failures.is_empty());
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        // A `&str` field is written quoted (`bus_id="bus-1"`); the quotes are dropped here.
        let line = |what: &str| {
            text.lines()
                .find(|l| l.contains(what))
                .unwrap_or_else(|| panic!("no line {what:?} in {text}"))
                .replace('"', "")
        };
        let first = line("handled from the attribute");
        assert!(
            first.contains("sqs_id=r1") && first.contains("bus_id=bus-1"),
            "{first}"
        );
        let second = line("handled bus-2");
        assert!(
            second.contains("sqs_id=r2") && second.contains("bus_id=bus-2"),
            "{second}"
        );
    }
}
