//! Remembering each user's direct room, so it is created once and reused.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

/// Where the direct room of each user is remembered.
pub trait RoomStore {
    /// The room remembered for `user_id`.
    fn get(&self, user_id: &str) -> impl Future<Output = anyhow::Result<Option<String>>> + Send;
    /// Remembers `room_id` for `user_id` unless one is already remembered (or `replacing` it);
    /// returns the room that is remembered afterwards (the other one if another sender won).
    fn put(
        &self,
        user_id: &str,
        room_id: &str,
        replacing: Option<&str>,
    ) -> impl Future<Output = anyhow::Result<String>> + Send;
}

/// Rooms in the deliveries table, one item per user under `matrix-room|<user id>` (no TTL:
/// a room lives as long as the user keeps it).
#[derive(Debug, Clone)]
pub struct DynamoRooms {
    client: Client,
    table: String,
}

impl DynamoRooms {
    /// Rooms kept in `table` (the deliveries table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoRooms {
            client,
            table: table.into(),
        }
    }
}

fn key(user_id: &str) -> AttributeValue {
    AttributeValue::S(format!("matrix-room|{user_id}"))
}

fn detail<E: std::error::Error>(e: E) -> anyhow::Error {
    anyhow::anyhow!(fmn_queue::error_chain(&e))
}

impl RoomStore for DynamoRooms {
    async fn get(&self, user_id: &str) -> anyhow::Result<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key(user_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(detail)?;
        Ok(out
            .item
            .and_then(|i| i.get("room_id").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn put(
        &self,
        user_id: &str,
        room_id: &str,
        replacing: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", key(user_id))
            .item("room_id", AttributeValue::S(room_id.into()));
        request = match replacing {
            Some(old) => request
                .condition_expression("attribute_not_exists(pk) OR room_id = :old")
                .expression_attribute_values(":old", AttributeValue::S(old.into())),
            None => request.condition_expression("attribute_not_exists(pk)"),
        };
        match request.send().await {
            Ok(_) => Ok(room_id.to_owned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                // Another sender created a room for this user at the same time: use theirs.
                Ok(self
                    .get(user_id)
                    .await?
                    .unwrap_or_else(|| room_id.to_owned()))
            }
            Err(e) => Err(detail(e)),
        }
    }
}
