//! Personal API tokens and feed tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::auth::{hash_secret, mint, random_token};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, UserAccess};
use crate::model::{FeedUrls, TokenCreated, TokenDoc, TokenIn};
use crate::state::AppState;

/// Default token lifetime: 90 days.
const DEFAULT_TTL: i64 = 90 * 24 * 3600;

/// A user's live tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/users/{user}/tokens", tag = "tokens",
    params(("user" = crate::model::UserName, Path)),
    responses((status = 200, body = Vec<TokenDoc>), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_tokens(
    access: UserAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<TokenDoc>>> {
    let user = &access.user;
    let list = state.tokens().list(user).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// Mints a personal token for scripts; the secret is in this response only. Admin rights
/// are never granted this way (an operator mints admin tokens with `fmn token create`).
/// A token minted with a personal token expires no later than that token (its
/// `expires_at` says when): a leaked token cannot make itself permanent.
#[utoipa::path(post, path = "/api/v1/users/{user}/tokens", tag = "tokens",
    params(("user" = crate::model::UserName, Path)),
    request_body = TokenIn,
    responses((status = 201, body = TokenCreated), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_token(
    access: UserAccess,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TokenIn>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let user = &access.user;
    if let Some(name) = &body.name {
        crate::validate::check_name("name", name, state.config().limits.max_name_chars)?;
    }
    let ttl = body.expires_in_secs.unwrap_or(DEFAULT_TTL);
    if !(60..=365 * 24 * 3600).contains(&ttl) {
        return Err(ApiError::invalid(
            "expires_in_secs",
            "must be between 60 and 31536000 seconds",
        ));
    }
    let max = state.config().limits.max_tokens_per_user;
    if state.tokens().list(user).await?.len() >= max {
        return Err(ApiError::limit(
            "",
            format!("at most {max} live tokens per user: revoke one first"),
        ));
    }
    let ttl = match access.token_expires_at() {
        Some(cap) => ttl.min(cap - crate::auth::now()),
        None => ttl,
    };
    if ttl <= 0 {
        return Err(ApiError::unauthorized("the token used has expired"));
    }
    let (secret, record) = mint(user, false, body.name, Some(ttl));
    state.tokens().insert(&record).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token: secret,
            info: record.into(),
        }),
    ))
}

/// Revokes a token.
#[utoipa::path(delete, path = "/api/v1/users/{user}/tokens/{id}", tag = "tokens",
    params(("user" = crate::model::UserName, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_token(
    access: UserAccess,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    let user = &access.user;
    let id = access.params().id("id")?;
    if state.tokens().revoke(user, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such token").at("id"))
    }
}

/// Makes a new secret feed URL (the previous one stops working); shown this once.
#[utoipa::path(post, path = "/api/v1/users/{user}/feed-token", tag = "feeds",
    params(("user" = crate::model::UserName, Path)),
    responses((status = 201, body = FeedUrls), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rotate_feed_token(
    access: UserAccess,
    State(state): State<AppState>,
) -> ApiResult<(StatusCode, Json<FeedUrls>)> {
    let user = &access.user;
    let token = random_token(32);
    state
        .tokens()
        .set_feed_token(user, &hash_secret(&token))
        .await?;
    let base = &state.config().base_url;
    Ok((
        StatusCode::CREATED,
        Json(FeedUrls {
            rss: format!("{base}/feeds/{token}/rss.xml"),
            atom: format!("{base}/feeds/{token}/atom.xml"),
        }),
    ))
}
