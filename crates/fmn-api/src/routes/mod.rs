//! The handlers, grouped by resource, and what they share.

pub mod addresses;
pub mod catalog;
pub mod history;
pub mod prefs;
pub mod preview;
pub mod public;
pub mod tokens;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use fmn_rules::{Context, ContextKind, Preferences};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A user's stored preferences, or empty ones.
pub(crate) async fn load(state: &AppState, user: &str) -> ApiResult<Preferences> {
    Ok(state
        .prefs()
        .get(user)
        .await?
        .unwrap_or_else(|| Preferences {
            user: user.to_owned(),
            contexts: Default::default(),
        }))
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

/// Loads a user's preferences, checks `If-Match`, applies `change`, validates the result
/// and stores it (only if it changed). Returns the change's output and the new preferences.
pub(crate) async fn modify<T>(
    state: &AppState,
    headers: &HeaderMap,
    user: &str,
    change: impl FnOnce(&mut Preferences) -> ApiResult<T>,
) -> ApiResult<(T, Preferences)> {
    let mut prefs = load(state, user).await?;
    if let Some(wanted) = headers.get(header::IF_MATCH) {
        let wanted = wanted.to_str().unwrap_or_default();
        if wanted != "*" && !wanted.split(',').any(|t| t.trim() == etag(&prefs)) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "the preferences changed since they were read (If-Match); read them again",
            ));
        }
    }
    let before = prefs.clone();
    let out = change(&mut prefs)?;
    if prefs != before {
        crate::validate::check_preferences(&prefs, &state.config().limits)?;
        state.prefs().put(&prefs).await?;
    }
    Ok((out, prefs))
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
