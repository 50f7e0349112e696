//! Preview: which recent bus messages a filter, or a saved context, would have matched.

use axum::Json;
use axum::extract::State;
use fmn_rules::{Address, Context, ContextKind, Matcher, Preferences};

use super::{context, load};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, UserAccess};
use crate::model::{PreviewIn, PreviewMatch, PreviewOut};
use crate::state::AppState;

/// Tries a filter (need not be saved) or a saved context against the recent messages the
/// matcher logged (kept 24 hours, newest first, bounded), with the current maintainer data
/// for `owned_by` and `owned_by_group` rules, as the matcher has it.
#[utoipa::path(post, path = "/api/v1/users/{user}/preview", tag = "preview",
    params(("user" = crate::model::UserName, Path)),
    request_body = PreviewIn,
    responses((status = 200, body = PreviewOut), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn preview(
    access: UserAccess,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PreviewIn>,
) -> ApiResult<Json<PreviewOut>> {
    let user = &access.user;
    let limits = &state.config().limits;
    let mut ctx = match (body.filter, body.context) {
        (Some(filter), None) => {
            let mut f = filter.into_filter("preview".into());
            f.active = true;
            Context {
                filters: vec![f],
                ..Context::default()
            }
        }
        (None, Some(name)) => {
            let kind: ContextKind = name.into();
            let saved = load(&state, user).await?;
            context(&saved, kind)?.clone()
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `filter` (to try) or `context` (a saved one)",
            ));
        }
    };
    // The preview is about which messages match, not where they would go: the context is
    // matched as an email context with one stand-in confirmed address, so unconfirmed
    // addresses or a feed context's lack of any do not hide matches.
    ctx.enabled = true;
    ctx.addresses = vec![Address {
        address: "preview@fmn.invalid".into(),
        confirmed: true,
        disabled: None,
        secret: None,
    }];
    for f in &mut ctx.filters {
        f.addresses = None;
    }
    let prefs = Preferences {
        user: user.clone(),
        contexts: [(ContextKind::Email, ctx)].into(),
    };
    crate::validate::check_preferences(&prefs, limits)?;
    let matcher = Matcher::build_with([prefs], state.ownership().await?)
        .map_err(|e| ApiError::invalid("filter", e.to_string()))?;
    let wanted = body
        .messages
        .unwrap_or(limits.preview_messages)
        .clamp(1, limits.preview_messages);
    let recent = state.recent().recent(wanted).await?;
    let mut matches = Vec::new();
    for m in &recent {
        if let Some(n) = matcher.matches(m).into_iter().next() {
            matches.push(PreviewMatch {
                id: m.id.clone(),
                topic: m.topic.clone(),
                app: m.app.clone(),
                summary: m.summary.clone(),
                link: m.link.clone(),
                timestamp: m.timestamp,
                filters: n.filters.into_iter().map(|f| f.id).collect(),
            });
            if matches.len() >= limits.preview_results {
                break;
            }
        }
    }
    Ok(Json(PreviewOut {
        scanned: recent.len(),
        matches,
    }))
}
