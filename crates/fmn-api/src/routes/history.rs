//! A user's delivery history: what fmn sent them, where, when, which filter fired, and how
//! the delivery went (written by the senders, `fmn_store::HistoryLog`).

use axum::Json;
use axum::extract::{Query, State};
use fmn_store::HistoryEntry;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::UserAccess;
use crate::state::AppState;

/// Most entries one request returns.
pub const MAX_LIMIT: usize = 200;

/// The query of [`list_history`].
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this context's entries (`email`, `irc`, …).
    pub context: Option<String>,
    /// At most this many entries, newest first (default 50, at most 200).
    pub limit: Option<usize>,
}

/// A filter that fired.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FiredFilterDoc {
    /// The filter's id.
    pub id: String,
    /// Its name when it fired.
    pub name: String,
}

/// One notification's outcome.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryEntryDoc {
    /// When, seconds since the epoch.
    pub at: i64,
    /// The delivery context.
    pub context: String,
    /// The bus message's id (a digest's batch id for a digest).
    pub message_id: String,
    /// The message's topic.
    pub topic: String,
    /// The message's application.
    pub app: String,
    /// The message's summary.
    pub summary: String,
    /// The message's link.
    pub link: Option<String>,
    /// The filters that fired.
    pub filters: Vec<FiredFilterDoc>,
    /// The addresses it went to.
    pub addresses: Vec<String>,
    /// `sent`, `held` (for a digest), `failed` (never retried), `retrying` or `skipped`.
    pub state: String,
    /// Why it failed or was skipped, per address.
    pub reason: Option<String>,
}

impl From<HistoryEntry> for HistoryEntryDoc {
    fn from(e: HistoryEntry) -> Self {
        HistoryEntryDoc {
            at: e.at,
            state: e.state.as_str().to_owned(),
            context: e.context,
            message_id: e.message_id,
            topic: e.topic,
            app: e.app,
            summary: e.summary,
            link: e.link,
            filters: e
                .filters
                .into_iter()
                .map(|f| FiredFilterDoc {
                    id: f.id,
                    name: f.name,
                })
                .collect(),
            addresses: e.addresses,
            reason: e.reason,
        }
    }
}

/// The history's entries, newest first.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryList {
    /// Days the history covers (older entries have expired).
    pub days: i64,
    /// The entries.
    pub entries: Vec<HistoryEntryDoc>,
}

/// The user's entries, newest first, optionally of one context; empty where no history is
/// deployed.
pub(crate) async fn entries(
    state: &AppState,
    user: &str,
    context: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<HistoryEntry>> {
    let Some(log) = state.history() else {
        return Ok(Vec::new());
    };
    let mut all = log
        .recent(user, fmn_store::HistoryLog::RETENTION_DAYS + 1)
        .await?;
    all.retain(|e| context.is_none_or(|c| e.context == c));
    all.truncate(limit);
    Ok(all)
}

/// What fmn delivered to the user in the last days: where, when, which filter fired, and
/// the delivery's state (sent, held for a digest, failed and why).
#[utoipa::path(get, path = "/api/v1/users/{user}/history", tag = "history",
    params(("user" = crate::model::UserName, Path), HistoryQuery),
    responses((status = 200, body = HistoryList), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_history(
    access: UserAccess,
    State(state): State<AppState>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<HistoryList>> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()).at("query"))?;
    if let Some(c) = &q.context
        && crate::extract::context_kind(c).is_none()
    {
        return Err(ApiError::bad_request(format!("no context {c}")).at("context"));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit: between 1 and {MAX_LIMIT}")).at("limit"));
    }
    let list = entries(&state, &access.user, q.context.as_deref(), limit).await?;
    Ok(Json(HistoryList {
        days: fmn_store::HistoryLog::RETENTION_DAYS + 1,
        entries: list.into_iter().map(Into::into).collect(),
    }))
}
