//! A user's inbox (the `inbox` context's items, written by the inbox sender,
//! `fmn_inbox::store::InboxStore`): list, mark read, mark all read; and where the live
//! WebSocket is.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use fmn_inbox::{InboxPage, SocketInfo};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::UserAccess;
use crate::state::AppState;

/// The query of [`list_inbox`].
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Only items created after the item with this id (ids sort by creation time): what a
    /// client that reconnects missed.
    pub after: Option<String>,
    /// At most this many items, newest first (default 50, at most 200).
    pub limit: Option<usize>,
}

/// One inbox item (`fmn_inbox::InboxItem`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct InboxItemDoc {
    /// Time-sortable id: 13 digits of creation milliseconds, `-`, 12 hex digits.
    pub id: String,
    /// The bus message's id.
    pub message_id: String,
    /// The message's topic.
    pub topic: String,
    /// The message's summary.
    pub summary: String,
    /// Where to read more.
    pub link: Option<String>,
    /// The name of the filter that fired.
    pub filter: Option<String>,
    /// The web app's page of that filter.
    pub filter_url: Option<String>,
    /// `debug`, `info`, `warning` or `error`.
    pub severity: String,
    /// When the item was created (RFC 3339).
    pub created: String,
    /// Whether it was marked read.
    pub read: bool,
}

/// A page of the inbox (`fmn_inbox::InboxPage`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct InboxPageDoc {
    /// Items, newest first.
    pub items: Vec<InboxItemDoc>,
    /// Unread items in the whole inbox.
    pub unread: u64,
}

/// Where the WebSocket is (`fmn_inbox::SocketInfo`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SocketInfoDoc {
    /// The WebSocket URL to connect to (with `Authorization: Bearer <token>`, `?token=` or
    /// the web app's session cookie).
    pub url: String,
}

/// How many items were marked read.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MarkedDoc {
    /// Items marked read by this request.
    pub marked: u64,
    /// Unread items left.
    pub unread: u64,
}

fn store(state: &AppState) -> ApiResult<&fmn_inbox::store::InboxStore> {
    state
        .inbox()
        .ok_or_else(|| ApiError::not_found("no inbox is deployed"))
}

fn store_error(e: fmn_inbox::store::InboxError) -> ApiError {
    ApiError::internal(&e)
}

/// The user's inbox page (empty where no inbox is deployed).
pub(crate) async fn page(
    state: &AppState,
    user: &str,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<InboxPage> {
    let Some(inbox) = state.inbox() else {
        return Ok(InboxPage::default());
    };
    inbox.page(user, after, limit).await.map_err(store_error)
}

/// The user's unread count (0 where no inbox is deployed).
pub(crate) async fn unread(state: &AppState, user: &str) -> ApiResult<u64> {
    match state.inbox() {
        Some(inbox) => inbox.unread(user).await.map_err(store_error),
        None => Ok(0),
    }
}

/// The user's inbox, newest first, with the unread count; with `after`, only the items
/// created since that one (what a reconnecting client missed).
#[utoipa::path(get, path = "/api/v1/users/{user}/inbox", tag = "inbox",
    params(("user" = crate::model::UserName, Path), InboxQuery),
    responses((status = 200, body = InboxPageDoc), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_inbox(
    access: UserAccess,
    State(state): State<AppState>,
    query: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<InboxPage>> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()).at("query"))?;
    let limit = q.limit.unwrap_or(fmn_inbox::DEFAULT_PAGE_LIMIT);
    if !(1..=fmn_inbox::MAX_PAGE_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: between 1 and {}",
            fmn_inbox::MAX_PAGE_LIMIT
        ))
        .at("limit"));
    }
    if let Some(after) = &q.after
        && !fmn_inbox::valid_item_id(after)
    {
        return Err(ApiError::bad_request("not an inbox item id").at("after"));
    }
    Ok(Json(
        page(&state, &access.user, q.after.as_deref(), limit).await?,
    ))
}

/// Marks one item read.
#[utoipa::path(post, path = "/api/v1/users/{user}/inbox/{id}/read", tag = "inbox",
    params(("user" = crate::model::UserName, Path), ("id" = String, Path, description = "the item's id")),
    responses((status = 200, body = MarkedDoc), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn mark_read(
    access: UserAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<MarkedDoc>> {
    let id = access.params().raw("id")?;
    if !fmn_inbox::valid_item_id(&id) {
        return Err(ApiError::not_found("no such inbox item").at("id"));
    }
    let inbox = store(&state)?;
    if !inbox
        .mark_read(&access.user, &id)
        .await
        .map_err(store_error)?
    {
        return Err(ApiError::not_found("no such inbox item").at("id"));
    }
    let unread = inbox.unread(&access.user).await.map_err(store_error)?;
    Ok(Json(MarkedDoc { marked: 1, unread }))
}

/// Marks every item read.
#[utoipa::path(post, path = "/api/v1/users/{user}/inbox/read-all", tag = "inbox",
    params(("user" = crate::model::UserName, Path)),
    responses((status = 200, body = MarkedDoc), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn mark_all_read(
    access: UserAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<MarkedDoc>> {
    let marked = store(&state)?
        .mark_all_read(&access.user)
        .await
        .map_err(store_error)?;
    Ok(Json(MarkedDoc { marked, unread: 0 }))
}

/// Where clients open the inbox's WebSocket (`{"url": "wss://…"}`); it sends a
/// `{"type":"item","item":{…}}` frame for each new item and answers `{"action":"ping"}`
/// with `{"type":"pong"}`.
#[utoipa::path(get, path = "/api/v1/inbox/socket", tag = "inbox",
    responses((status = 200, body = SocketInfoDoc), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn socket(
    _caller: crate::auth::Caller,
    State(state): State<AppState>,
) -> ApiResult<(StatusCode, Json<SocketInfo>)> {
    match &state.config().inbox_socket_url {
        Some(url) => Ok((StatusCode::OK, Json(SocketInfo { url: url.clone() }))),
        None => Err(ApiError::not_found("no WebSocket is deployed")),
    }
}
