//! Oneshot filters: deactivated by the bus message that fires them, atomically with every
//! other write of the user's preferences, and the win remembered for that message's retries.

use aws_sdk_dynamodb::types::AttributeValue;

use aws_sdk_dynamodb::types::Put;

use super::{PreferenceTable, conflict_pause, expires_in};
use crate::StoreError;

/// How long a oneshot filter's win is remembered: SQS's longest retention (a retry of the
/// message cannot come later).
pub const ONESHOT_WIN_TTL_SECS: u64 = 14 * 24 * 3600;

/// The key of the record of a oneshot filter's win for a bus message.
fn win_key_of(
    message_id: &str,
    user: &str,
    context: fmn_rules::ContextKind,
    filter_id: &str,
) -> (String, String) {
    (
        format!("ONESHOT#{message_id}"),
        format!("{user}#{}#{filter_id}", context.as_str()),
    )
}

impl PreferenceTable {
    /// Deactivates one oneshot filter for the bus message `message_id` if it is still
    /// active, atomically with respect to every other write of the user's preferences: of
    /// several concurrent callers exactly one gets `true` (how a oneshot filter fires once).
    /// The win is recorded with the deactivation, in the same transaction (`pk =
    /// ONESHOT#<message id>`, `sk = <user>#<context>#<filter>`, expiring after
    /// [`ONESHOT_WIN_TTL_SECS`]), so that a retry of the same message, after its job could
    /// not be queued, finds it already won and gets `true` again. `false` when the filter is
    /// inactive (for another message) or gone.
    pub async fn deactivate_filter(
        &self,
        user: &str,
        context: fmn_rules::ContextKind,
        filter_id: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        const ATTEMPTS: usize = 5;
        let (win_pk, win_sk) = win_key_of(message_id, user, context, filter_id);
        for attempt in 0..ATTEMPTS {
            let Some((mut prefs, old_doc)) = self.get_versioned(user).await? else {
                return Ok(false);
            };
            let Some(filter) = prefs
                .contexts
                .get_mut(&context)
                .and_then(|c| c.filters.iter_mut().find(|f| f.id == filter_id))
            else {
                return Ok(false);
            };
            if !filter.active {
                return self.won(&win_pk, &win_sk).await;
            }
            filter.active = false;
            let win = Put::builder()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(win_pk.clone()))
                .item("sk", AttributeValue::S(win_sk.clone()))
                .item(
                    "expires_at",
                    AttributeValue::N(expires_in(ONESHOT_WIN_TTL_SECS)),
                )
                .build()
                .map_err(StoreError::dynamo)?;
            match self.put_if_with(&prefs, Some(&old_doc), Some(win)).await {
                Ok(()) => return Ok(true),
                Err(StoreError::Conflict(_)) => conflict_pause(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "preferences of {user} kept changing during {ATTEMPTS} attempts"
        )))
    }

    /// Whether the win record exists (the filter fired for this very message).
    async fn won(&self, pk: &str, sk: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(out.item.is_some())
    }

    /// The oneshot filters the bus message `message_id` fired (won), as (user, context,
    /// filter id): a retry of the message delivers them again.
    pub async fn oneshot_wins(
        &self,
        message_id: &str,
    ) -> Result<Vec<(String, fmn_rules::ContextKind, String)>, StoreError> {
        let (pk, _) = win_key_of(message_id, "", fmn_rules::ContextKind::Email, "");
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        let mut wins = Vec::new();
        for item in out.items() {
            let Some(AttributeValue::S(sk)) = item.get("sk") else {
                continue;
            };
            // `<user>#<context>#<filter>`: user names and contexts have no `#`.
            let mut parts = sk.splitn(3, '#');
            if let (Some(user), Some(context), Some(filter)) =
                (parts.next(), parts.next(), parts.next())
                && let Some(context) = fmn_rules::ContextKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == context)
            {
                wins.push((user.to_owned(), context, filter.to_owned()));
            }
        }
        Ok(wins)
    }
}
