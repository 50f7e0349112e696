//! SQS events for tests (feature `test-util`): what Lambda hands an SQS-triggered function.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};

/// An event with one record per body, the record ids `r0`, `r1`, … in order.
pub fn sqs_event<B: AsRef<str>>(bodies: &[B]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| sqs_record(&format!("r{i}"), body.as_ref()))
        .collect();
    event
}

/// One record with `id` and `body`.
pub fn sqs_record(id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_owned());
    m.body = Some(body.to_owned());
    m
}

/// The ids of the records a response reports as failed.
pub fn failed_ids(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}
