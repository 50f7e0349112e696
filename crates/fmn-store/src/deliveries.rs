//! Delivery records: `pk` = the delivery key, `state` = `sending` | `sent`, `lease_until`,
//! and `expires_at` (the table's TTL attribute).
//!
//! A sender first *claims* a delivery (conditional put), sends, then marks it sent. A
//! redelivered job finds it `sent` and skips it. If a sender died between claim and send,
//! the claim's lease expires and a later attempt may send: at-least-once, never twice in
//! the normal course.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::StoreError;

/// Why a claim transaction did not go through.
enum TxFailure {
    /// Cancelled: a reason per key, in order.
    Reasons(Vec<TxReason>),
    /// Failed otherwise (the text).
    Error(String),
}

/// Why one key of a cancelled claim transaction was not written.
enum TxReason {
    /// Its condition failed; the record's state when the emulator returned it.
    Condition(Option<String>),
    /// Another key's condition failed (or a conflict): try it again.
    Retry,
}

/// What an existing record's `state` means for a claim.
fn claim_from_state(state: &str) -> Claim {
    if state == "sent" {
        Claim::AlreadySent
    } else {
        Claim::InProgress
    }
}

/// How a claim went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller owns the delivery now: send, then [`DeliveryTable::mark_sent`].
    Acquired,
    /// It was sent before: do nothing.
    AlreadySent,
    /// Another attempt holds a live lease: retry later.
    InProgress,
}

/// Delivery records in DynamoDB.
#[derive(Debug, Clone)]
pub struct DeliveryTable {
    client: Client,
    table: String,
    /// How long a record is kept (seconds).
    retention: u64,
    /// How long a claim blocks other attempts (seconds).
    lease: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl DeliveryTable {
    /// The table named `table`, keeping records 7 days with 60 s leases.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DeliveryTable {
            client,
            table: table.into(),
            retention: 7 * 24 * 3600,
            lease: 60,
        }
    }

    /// Claims the delivery `key`.
    pub async fn claim(&self, key: &str) -> Result<Claim, StoreError> {
        let now = now();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.into()))
            .item("state", AttributeValue::S("sending".into()))
            .item(
                "lease_until",
                AttributeValue::N((now + self.lease).to_string()),
            )
            .item(
                "expires_at",
                AttributeValue::N((now + self.retention).to_string()),
            )
            .condition_expression(
                "attribute_not_exists(pk) OR (#state = :sending AND lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(e) if crate::is_condition_failure(&e) => {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", AttributeValue::S(key.into()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(StoreError::dynamo)?
                    .item;
                match item.as_ref().and_then(|i| i.get("state")) {
                    Some(AttributeValue::S(s)) if s == "sent" => Ok(Claim::AlreadySent),
                    _ => Ok(Claim::InProgress),
                }
            }
            Err(e) => Err(StoreError::dynamo(e)),
        }
    }

    /// Claims every key of a batch together: `TransactWriteItems` of the same conditional
    /// puts as [`DeliveryTable::claim`], up to 100 a call. A transaction fails whole when one
    /// condition fails; its cancellation reasons say which, those are answered from the item
    /// the condition saw (or one consistent `BatchGetItem` when the emulator does not return
    /// it), and the rest is tried again. `keys` must be distinct.
    pub async fn claim_all(&self, keys: &[String]) -> Vec<Result<Claim, StoreError>> {
        let mut out: Vec<Option<Result<Claim, StoreError>>> = keys.iter().map(|_| None).collect();
        for (chunk_no, chunk) in keys.chunks(100).enumerate() {
            let base = chunk_no * 100;
            let mut pending: Vec<usize> = (0..chunk.len()).collect();
            let mut lookup: Vec<usize> = Vec::new();
            for _attempt in 0..4 {
                if pending.is_empty() {
                    break;
                }
                match self
                    .claim_transaction(pending.iter().map(|i| &chunk[*i]))
                    .await
                {
                    Ok(()) => {
                        for i in pending.drain(..) {
                            out[base + i] = Some(Ok(Claim::Acquired));
                        }
                    }
                    Err(TxFailure::Reasons(reasons)) => {
                        let mut again = Vec::new();
                        for (i, reason) in pending.iter().zip(reasons) {
                            match reason {
                                TxReason::Condition(Some(state)) => {
                                    out[base + i] = Some(Ok(claim_from_state(&state)));
                                }
                                TxReason::Condition(None) => lookup.push(*i),
                                TxReason::Retry => again.push(*i),
                            }
                        }
                        pending = again;
                    }
                    Err(TxFailure::Error(e)) => {
                        // Not a cancellation with reasons (an emulator without them, a
                        // transport error): each key on its own, as `claim` does.
                        tracing::debug!(error = %e, "claim transaction failed; claiming one by one");
                        let keys: Vec<&String> = pending.iter().map(|i| &chunk[*i]).collect();
                        let claims =
                            futures::future::join_all(keys.iter().map(|k| self.claim(k))).await;
                        for (i, claim) in pending.drain(..).zip(claims) {
                            out[base + i] = Some(claim);
                        }
                    }
                }
            }
            for i in pending {
                out[base + i] = Some(Err(StoreError::Dynamo(
                    "claim transaction kept conflicting".into(),
                )));
            }
            if !lookup.is_empty() {
                let keys: Vec<&String> = lookup.iter().map(|i| &chunk[*i]).collect();
                match self.states(&keys).await {
                    Ok(states) => {
                        for i in lookup {
                            let state = states.get(&chunk[i]).map(String::as_str).unwrap_or("");
                            out[base + i] = Some(Ok(claim_from_state(state)));
                        }
                    }
                    Err(e) => {
                        let text = e.to_string();
                        for i in lookup {
                            out[base + i] = Some(Err(StoreError::Dynamo(text.clone())));
                        }
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Dynamo("not claimed".into()))))
            .collect()
    }

    /// One `TransactWriteItems` claiming `keys`.
    async fn claim_transaction<'k>(
        &self,
        keys: impl Iterator<Item = &'k String>,
    ) -> Result<(), TxFailure> {
        use aws_sdk_dynamodb::types::{
            Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
        };
        let now = now();
        let mut request = self.client.transact_write_items();
        for key in keys {
            let put = Put::builder()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(key.clone()))
                .item("state", AttributeValue::S("sending".into()))
                .item(
                    "lease_until",
                    AttributeValue::N((now + self.lease).to_string()),
                )
                .item(
                    "expires_at",
                    AttributeValue::N((now + self.retention).to_string()),
                )
                .condition_expression(
                    "attribute_not_exists(pk) OR (#state = :sending AND lease_until < :now)",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(|e| TxFailure::Error(e.to_string()))?;
            request = request.transact_items(TransactWriteItem::builder().put(put).build());
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = crate::dynamo_error_text(&e);
                let Some(
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                        cancelled,
                    ),
                ) = e.as_service_error()
                else {
                    return Err(TxFailure::Error(text));
                };
                let reasons = cancelled.cancellation_reasons();
                if reasons.is_empty() {
                    return Err(TxFailure::Error(text));
                }
                let reasons = reasons
                    .iter()
                    .map(|r| match r.code() {
                        Some("ConditionalCheckFailed") => {
                            TxReason::Condition(r.item().map(|item| match item.get("state") {
                                Some(AttributeValue::S(s)) => s.clone(),
                                _ => String::new(),
                            }))
                        }
                        _ => TxReason::Retry,
                    })
                    .collect();
                Err(TxFailure::Reasons(reasons))
            }
        }
    }

    /// The `state` of each of `keys` that has a record (one consistent `BatchGetItem` per
    /// 100 keys).
    async fn states(&self, keys: &[&String]) -> Result<HashMap<String, String>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut out = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut wanted = KeysAndAttributes::builder().consistent_read(true);
            for key in chunk {
                wanted = wanted.keys(HashMap::from([(
                    "pk".to_owned(),
                    AttributeValue::S((*key).clone()),
                )]));
            }
            let mut request = Some(wanted.build().map_err(StoreError::dynamo)?);
            for _ in 0..4 {
                let Some(wanted) = request.take() else { break };
                let got = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, wanted)
                    .send()
                    .await
                    .map_err(StoreError::dynamo)?;
                for item in got
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(state))) =
                        (item.get("pk"), item.get("state"))
                    {
                        out.insert(pk.clone(), state.clone());
                    }
                }
                request = got
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
            }
        }
        Ok(out)
    }

    /// Records that every delivery of `keys` was sent: `BatchWriteItem` puts of `sent`
    /// records, 25 a call (unprocessed items are tried again).
    pub async fn mark_all_sent(&self, keys: &[String]) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let expires = (now() + self.retention).to_string();
        let mut puts = Vec::with_capacity(keys.len());
        for key in keys {
            let put = PutRequest::builder()
                .item("pk", AttributeValue::S(key.clone()))
                .item("state", AttributeValue::S("sent".into()))
                .item("expires_at", AttributeValue::N(expires.clone()))
                .build()
                .map_err(StoreError::dynamo)?;
            puts.push(WriteRequest::builder().put_request(put).build());
        }
        crate::dynamo::write_batches(&self.client, &self.table, puts, 4, "sent marks").await
    }

    /// Records that the delivery `key` was sent.
    pub async fn mark_sent(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.into()))
            .update_expression("SET #state = :sent REMOVE lease_until")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", AttributeValue::S("sent".into()))
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(())
    }

    /// Gives up a claim after a failed send, so that a retry can claim it at once.
    pub async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.into()))
            .condition_expression("#state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(())
    }
}
