//! Delivery records: `pk` = the delivery key, `state` = `sending` | `sent`, `lease_until`,
//! and `expires_at` (the table's TTL attribute).
//!
//! A sender first *claims* a delivery (conditional put), sends, then marks it sent. A
//! redelivered job finds it `sent` and skips it. If a sender died between claim and send,
//! the claim's lease expires and a later attempt may send: at-least-once, never twice in
//! the normal course.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::StoreError;

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
