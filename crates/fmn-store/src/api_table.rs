//! Helpers shared by the API's item types, which live in one table (`pk`/`sk` strings, TTL
//! on `expires_at`, epoch seconds): personal tokens, feed tokens, pending confirmations and
//! the recent-messages log.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::StoreError;

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(crate) fn get_s(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(corrupt(item, &format!("no string attribute {name}"))),
    }
}

pub(crate) fn get_s_opt(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub(crate) fn get_n_opt(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub(crate) fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

pub(crate) fn corrupt(item: &Item, problem: &str) -> StoreError {
    let pk = get_s_opt(item, "pk").unwrap_or_else(|| "?".into());
    let sk = get_s_opt(item, "sk").unwrap_or_else(|| "?".into());
    StoreError::Corrupt {
        key: format!("{pk}/{sk}"),
        problem: problem.to_owned(),
    }
}

/// An item whose `expires_at` has passed (DynamoDB deletes such items lazily, moto never).
pub(crate) fn expired(item: &Item, now: i64) -> bool {
    get_n_opt(item, "expires_at").is_some_and(|t| t <= now)
}

pub(crate) use crate::dynamo::is_condition_failure;
