//! Partial batch failures for SQS-triggered functions.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

/// Why one record failed. Retryable failures go back to the queue (and, after the queue's
/// `maxReceiveCount`, to its DLQ); a handler deals with permanent failures itself, e.g. by
/// quarantining, and reports success.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// Runs `handle` on every record concurrently and reports the ones that failed, so that SQS
/// retries only those.
pub async fn process_batch<F, Fut>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), RecordError>>,
{
    let results = futures::future::join_all(event.records.into_iter().map(|record| {
        let id = record.message_id.clone().unwrap_or_default();
        let fut = handle(record);
        async move { (id, fut.await) }
    }))
    .await;
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
}
