//! The handlers, grouped by resource, and what they share.

pub mod addresses;
pub mod catalog;
pub mod history;
pub mod inbox;
pub mod prefs;
pub mod preview;
pub mod public;
pub mod tokens;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use fmn_rules::{Context, ContextKind, Preferences};
use fmn_store::StoreError;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A user's stored preferences, or empty ones.
pub(crate) async fn load(state: &AppState, user: &str) -> ApiResult<Preferences> {
    Ok(state
        .prefs()
        .get(user)
        .await?
        .unwrap_or_else(|| empty(user)))
}

/// The entity tag of a user's preferences (for `If-Match`).
pub(crate) fn etag(p: &Preferences) -> String {
    let text = serde_json::to_string(p).unwrap_or_default();
    format!("\"{}\"", &crate::auth::hash_secret(&text)[..20])
}

/// `ETag` header for a response.
pub(crate) fn etag_header(p: &Preferences) -> [(header::HeaderName, HeaderValue); 1] {
    let tag = HeaderValue::from_str(&etag(p)).unwrap_or(HeaderValue::from_static("\"\""));
    [(header::ETAG, tag)]
}

/// How often a write without `If-Match` is re-read and re-applied after losing to a
/// concurrent one before the API answers 409.
const WRITE_ATTEMPTS: usize = 5;

/// Loads a user's preferences, checks `If-Match`, applies `change`, validates the result
/// and stores it (only if it changed), conditional on the document read: a concurrent write
/// is never undone. When the condition fails, a request with `If-Match` gets 412 (what it
/// read is no longer there); one without is re-read and `change` applied again, up to
/// [`WRITE_ATTEMPTS`] times, then 409. Returns the change's output and the new preferences.
pub(crate) async fn modify<T>(
    state: &AppState,
    headers: &HeaderMap,
    user: &str,
    mut change: impl FnMut(&mut Preferences) -> ApiResult<T>,
) -> ApiResult<(T, Preferences)> {
    let if_match = headers
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .filter(|v| v.trim() != "*");
    for attempt in 0..WRITE_ATTEMPTS {
        let (mut prefs, old) = match state.prefs().get_versioned(user).await? {
            Some((prefs, doc)) => (prefs, Some(doc)),
            None => (empty(user), None),
        };
        if let Some(wanted) = &if_match
            && !wanted.split(',').any(|t| t.trim() == etag(&prefs))
        {
            return Err(precondition_failed());
        }
        let before = prefs.clone();
        let out = change(&mut prefs)?;
        if prefs == before {
            return Ok((out, prefs));
        }
        crate::validate::check_preferences(&prefs, &state.config().limits)?;
        match state.prefs().put_if(&prefs, old.as_deref()).await {
            Ok(()) => return Ok((out, prefs)),
            Err(StoreError::Conflict(_)) if if_match.is_some() => {
                return Err(precondition_failed());
            }
            Err(StoreError::Conflict(_)) => {
                tracing::info!(
                    user,
                    attempt,
                    "preferences changed meanwhile: applying again"
                );
                fmn_store::conflict_pause(attempt).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!(
        "the preferences kept changing during {WRITE_ATTEMPTS} attempts: retry"
    )))
}

/// Empty preferences of `user`.
fn empty(user: &str) -> Preferences {
    Preferences {
        user: user.to_owned(),
        contexts: Default::default(),
    }
}

/// 412: the preferences are no longer what the client read.
fn precondition_failed() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        "the preferences changed since they were read (If-Match); read them again",
    )
}

/// The context, or 404.
pub(crate) fn context(prefs: &Preferences, kind: ContextKind) -> ApiResult<&Context> {
    prefs
        .contexts
        .get(&kind)
        .ok_or_else(|| ApiError::not_found(format!("no {} context", kind.as_str())))
}

/// The context, mutable, or 404.
pub(crate) fn context_mut(prefs: &mut Preferences, kind: ContextKind) -> ApiResult<&mut Context> {
    prefs
        .contexts
        .get_mut(&kind)
        .ok_or_else(|| ApiError::not_found(format!("no {} context", kind.as_str())))
}

/// Removes the items `keep` refuses from `items`; `missing` when there were none.
pub(crate) fn remove_where<T>(
    items: &mut Vec<T>,
    keep: impl FnMut(&T) -> bool,
    missing: ApiError,
) -> ApiResult<()> {
    let before = items.len();
    items.retain(keep);
    if items.len() == before {
        Err(missing)
    } else {
        Ok(())
    }
}

/// A fresh filter id not used in `ctx`.
pub(crate) fn fresh_filter_id(ctx: &Context, base: &str) -> String {
    if !ctx.filters.iter().any(|f| f.id == base) && crate::validate::valid_id(base) {
        return base.to_owned();
    }
    loop {
        let id = format!("f-{}", crate::auth::hex_id());
        if !ctx.filters.iter().any(|f| f.id == id) {
            return id;
        }
    }
}
