//! The one mapping of DynamoDB SDK errors used by every table crate (store, held, feed),
//! and the store's one `BatchWriteItem` loop ([`write_batches`]).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::WriteRequest;

use crate::StoreError;

/// `BatchWriteItem` takes at most 25 requests.
const BATCH: usize = 25;

/// The text of an SDK error with its whole source chain: the SDK's `Display` is terse
/// ("service error"), the chain says what actually happened.
pub fn error_text<E: std::error::Error + ?Sized>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether an SDK error is a failed condition check (of a put, update, delete or
/// transaction): a conditional write lost to a concurrent one, or found the item otherwise.
pub fn is_condition_failure<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| {
            c == "ConditionalCheckFailedException" || c == "TransactionCanceledException"
        })
}

/// Writes `requests` to `table` in `BatchWriteItem` calls of up to 25 requests, in order. A
/// call's unprocessed items (DynamoDB under load) are sent again after a pause (100 ms,
/// doubling, at most 3.2 s), up to `attempts` calls per batch; items still unprocessed then
/// are an error naming how many `what` (e.g. "sent marks") were left.
pub(crate) async fn write_batches(
    client: &Client,
    table: &str,
    requests: Vec<WriteRequest>,
    attempts: usize,
    what: &str,
) -> Result<(), StoreError> {
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        let mut pending: Vec<WriteRequest> = requests.by_ref().take(BATCH).collect();
        for attempt in 0..attempts {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                let backoff = 50u64 << attempt.min(6);
                tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
            }
            let out = client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(StoreError::dynamo)?;
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(table))
                .unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(StoreError::Dynamo(format!(
                "{} {what} left unprocessed after {attempts} attempts",
                pending.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
        PutRequest, ScalarAttributeType, WriteRequest,
    };

    /// The items of `table`, by `pk`.
    async fn keys(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
        let out = client.scan().table_name(table).send().await.unwrap();
        let mut keys: Vec<String> = out
            .items()
            .iter()
            .filter_map(|i| i.get("pk")?.as_s().ok().cloned())
            .collect();
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn writes_go_25_a_call_in_order() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        // A unit test has no CARGO_TARGET_TMPDIR; the workspace's target/tmp is the same.
        let dir = root.join("target/tmp/fmn-store-moto");
        let moto = fmn_emulator::SharedMoto::get(&root, &dir)
            .await
            .expect("moto (run localstack/bootstrap.sh)");
        let aws = fmn_emulator::config(&moto.endpoint).await;
        let client = fmn_calls::client!(aws_sdk_dynamodb, &aws);
        // Writes `requests` to `table`; how many calls that took (counted in this process:
        // nextest runs each test in its own).
        let write = async |table: &str, requests: Vec<WriteRequest>| {
            let before = fmn_calls::snapshot();
            super::write_batches(&client, table, requests, 3, "writes")
                .await
                .unwrap();
            fmn_calls::snapshot()
                .since(&before)
                .by_operation()
                .get("DynamoDB.BatchWriteItem")
                .copied()
                .unwrap_or(0)
        };
        let table = format!("fmn-store-batches-{}", std::process::id());
        client
            .create_table()
            .table_name(&table)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap();
        let pk = |i: usize| format!("k{i:03}");
        let puts = (0..60)
            .map(|i| {
                let put = PutRequest::builder()
                    .item("pk", AttributeValue::S(pk(i)))
                    .build()
                    .unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        assert_eq!(write(&table, puts).await, 3, "25 + 25 + 10");
        assert_eq!(
            keys(&client, &table).await,
            (0..60).map(pk).collect::<Vec<_>>()
        );
        let deletes = (0..51)
            .map(|i| {
                let delete = DeleteRequest::builder()
                    .key("pk", AttributeValue::S(pk(i)))
                    .build()
                    .unwrap();
                WriteRequest::builder().delete_request(delete).build()
            })
            .collect();
        assert_eq!(write(&table, deletes).await, 3, "25 + 25 + 1");
        assert_eq!(
            keys(&client, &table).await,
            (51..60).map(pk).collect::<Vec<_>>()
        );
        // Nothing to write: no call.
        assert_eq!(write("no-such-table", Vec::new()).await, 0);
        client
            .delete_table()
            .table_name(&table)
            .send()
            .await
            .unwrap();
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_source_chain_is_kept() {
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(super::error_text(&e), "outer: connection refused");
    }
}
