//! Delivery addresses: add (sends a confirmation), remove, confirm.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use fmn_queue::{ConfirmationJob, ContextJob, Outgoing, Queue};
use fmn_rules::{Address, ContextKind};
use fmn_store::{ConfirmOutcome, Limited, PendingConfirmation};

use super::{context, context_mut, etag_header, modify, remove_where};
use crate::auth::{hash_secret, now, random_token};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, UserAccess};
use crate::model::{AddressAdded, AddressDoc, AddressIn, ConfirmIn};
use crate::state::AppState;

/// A fresh 8-digit code.
fn code() -> String {
    use rand::Rng;
    format!("{:08}", rand::rng().random_range(0..100_000_000u32))
}

/// The 429 for a confirmation limit, naming it and when to retry.
fn limited(state: &AppState, limit: Limited) -> ApiError {
    let limits = state.config().confirmation_limits;
    let wait = limit.retry_at() - now();
    let (field, what) = match limit {
        Limited::Address { .. } => (
            "address",
            format!(
                "a confirmation was sent to this address less than {} seconds ago \
                 (one per address per {} seconds)",
                limits.address_interval_secs, limits.address_interval_secs
            ),
        ),
        Limited::User { .. } => (
            "address",
            format!(
                "you asked for {} confirmations today, the most per user per day",
                limits.user_daily
            ),
        ),
        Limited::WrongCodes { .. } => (
            "code",
            format!(
                "{} wrong codes for this address today, the most per day: no code is \
                 checked until tomorrow (UTC), not even after adding the address again",
                limits.wrong_codes_daily
            ),
        ),
    };
    ApiError::rate_limited(format!("{what}; retry in {} seconds", wait.max(1)), wait).at(field)
}

/// Sends a new confirmation for an address (replacing any earlier one), if the limits on
/// confirmations per address and per user allow it (429 otherwise).
pub(crate) async fn send_confirmation(
    state: &AppState,
    user: &str,
    kind: ContextKind,
    address: &str,
) -> ApiResult<i64> {
    let queue = state.queue(kind).ok_or_else(|| {
        ApiError::unavailable(format!(
            "no {} sender is deployed: addresses of this context cannot be confirmed",
            kind.as_str()
        ))
    })?;
    if let Err(limit) = state
        .confirmations()
        .reserve_send(user, kind, address)
        .await?
    {
        return Err(limited(state, limit));
    }
    let expires_at = now() + state.config().confirmation_ttl_secs;
    let email = kind == ContextKind::Email;
    let secret = if email { random_token(32) } else { code() };
    state
        .confirmations()
        .put(
            &PendingConfirmation {
                user: user.to_owned(),
                context: kind,
                address: address.to_owned(),
                code_hash: hash_secret(&secret),
                expires_at,
            },
            email,
        )
        .await?;
    let job = ContextJob::Confirmation {
        confirmation: ConfirmationJob {
            user: user.to_owned(),
            context: kind,
            address: address.to_owned(),
            code: (!email).then(|| secret.clone()),
            link: email.then(|| fmn_links::confirm_url(&state.config().base_url, &secret)),
            expires_at,
        },
    };
    let body = serde_json::to_string(&job).map_err(|e| ApiError::internal(&e))?;
    queue
        .send_all(vec![Outgoing::new(body)])
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot queue a confirmation");
            ApiError::unavailable("cannot send the confirmation now, retry later")
        })?;
    Ok(expires_at)
}

/// Adds an address to a context (created if missing) and sends it a confirmation: a link
/// for email, a code otherwise. Adding an address that is already there unconfirmed sends a
/// new confirmation. Confirmations are limited per address (one per 10 minutes by default,
/// whoever asks) and per user (10 a day): past a limit the address is kept, unconfirmed, and
/// the answer is 429 naming the limit, with `Retry-After`.
#[utoipa::path(post, path = "/api/v1/users/{user}/contexts/{context}/addresses", tag = "addresses",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path)),
    request_body = AddressIn,
    responses((status = 202, body = AddressAdded), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Already confirmed"),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "A confirmation limit was reached (Retry-After)"),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_address(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AddressIn>,
) -> ApiResult<impl IntoResponse> {
    let user = &access.user;
    let kind = access.context()?;
    crate::validate::check_address("address", kind, &body.address)?;
    if state.queue(kind).is_none() {
        return Err(ApiError::unavailable(format!(
            "no {} sender is deployed: addresses of this context cannot be confirmed",
            kind.as_str()
        )));
    }
    let address = body.address;
    let (added, prefs) = modify(&state, &headers, user, |prefs| {
        let ctx = prefs.contexts.entry(kind).or_default();
        if let Some(a) = ctx.addresses.iter().find(|a| a.address == address) {
            if a.confirmed {
                return Err(ApiError::conflict("this address is already confirmed").at("address"));
            }
            return Ok(a.clone());
        }
        let a = Address {
            address: address.clone(),
            confirmed: false,
            disabled: None,
            // Webhooks sign their body with a per-address secret, made here.
            secret: (kind == ContextKind::Webhook).then(|| random_token(24)),
        };
        ctx.addresses.push(a.clone());
        Ok(a)
    })
    .await?;
    let expires_at = send_confirmation(&state, user, kind, &address).await?;
    Ok((
        StatusCode::ACCEPTED,
        etag_header(&prefs),
        Json(AddressAdded {
            address: added.into(),
            confirmation_expires_at: expires_at,
            confirm_with: if kind == ContextKind::Email {
                "link"
            } else {
                "code"
            }
            .into(),
        }),
    ))
}

/// A context's addresses.
#[utoipa::path(get, path = "/api/v1/users/{user}/contexts/{context}/addresses", tag = "addresses",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path)),
    responses((status = 200, body = Vec<AddressDoc>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_addresses(
    access: UserAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<AddressDoc>>> {
    let user = &access.user;
    let kind = access.context()?;
    let prefs = super::load(&state, user).await?;
    let ctx = context(&prefs, kind)?;
    Ok(Json(
        ctx.addresses.iter().cloned().map(Into::into).collect(),
    ))
}

/// Removes an address (and any filter's reference to it).
#[utoipa::path(delete, path = "/api/v1/users/{user}/contexts/{context}/addresses/{address}",
    tag = "addresses",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path),
        ("address" = String, Path, description = "The address, percent-encoded")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_address(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let user = &access.user;
    let kind = access.context()?;
    let address = access.params().raw("address")?;
    modify(&state, &headers, user, |prefs| {
        let ctx = context_mut(prefs, kind)?;
        remove_where(
            &mut ctx.addresses,
            |a| a.address != address,
            ApiError::not_found("no such address").at("address"),
        )?;
        for f in &mut ctx.filters {
            if let Some(list) = &mut f.addresses {
                list.retain(|a| a != &address);
                if list.is_empty() {
                    // It named only this address: deliver to none rather than to all.
                    f.active = false;
                    f.addresses = None;
                }
            }
        }
        Ok(())
    })
    .await?;
    state.confirmations().remove(user, kind, &address).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks an address confirmed in the stored preferences.
async fn mark_confirmed(
    state: &AppState,
    user: &str,
    kind: ContextKind,
    address: &str,
) -> ApiResult<AddressDoc> {
    let (a, _) = modify(state, &HeaderMap::new(), user, |prefs| {
        let a = context_mut(prefs, kind)?
            .addresses
            .iter_mut()
            .find(|a| a.address == address)
            .ok_or_else(|| ApiError::not_found("the address was removed"))?;
        a.confirmed = true;
        Ok(a.clone())
    })
    .await?;
    Ok(a.into())
}

/// Confirms an address with the code it received.
#[utoipa::path(post,
    path = "/api/v1/users/{user}/contexts/{context}/addresses/{address}/confirm",
    tag = "addresses",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path),
        ("address" = String, Path, description = "The address, percent-encoded")),
    request_body = ConfirmIn,
    responses((status = 200, body = AddressDoc), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No live confirmation (expired, used, never asked, too many attempts)"),
        (status = 422, body = ErrorBody, description = "Wrong code"),
        (status = 429, body = ErrorBody, description = "Too many wrong codes for this address today (Retry-After)")),
    security(("bearer" = [])))]
pub async fn confirm_address(
    access: UserAccess,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConfirmIn>,
) -> ApiResult<Json<AddressDoc>> {
    let user = &access.user;
    let kind = access.context()?;
    let address = access.params().raw("address")?;
    if body.code.is_empty() || body.code.len() > 100 {
        return Err(ApiError::invalid("code", "wrong code"));
    }
    let prefs = super::load(&state, user).await?;
    if !context(&prefs, kind)?
        .addresses
        .iter()
        .any(|a| a.address == address)
    {
        return Err(ApiError::not_found("no such address").at("address"));
    }
    match state
        .confirmations()
        .confirm(user, kind, &address, &hash_secret(body.code.trim()))
        .await?
    {
        ConfirmOutcome::Confirmed => Ok(Json(mark_confirmed(&state, user, kind, &address).await?)),
        ConfirmOutcome::WrongCode => Err(ApiError::invalid("code", "wrong code")),
        ConfirmOutcome::NotPending => Err(ApiError::not_found(
            "no confirmation is pending for this address (expired or used): add it again for a new one",
        )),
        ConfirmOutcome::TooManyAttempts(limit) => Err(limited(&state, limit)),
    }
}

/// Confirms an email address from its one-time link (called by the link's page).
pub(crate) async fn confirm_link(state: &AppState, token: &str) -> ApiResult<(String, String)> {
    let hash = hash_secret(token);
    let pending = state
        .confirmations()
        .lookup_link(&hash)
        .await?
        .ok_or_else(|| ApiError::not_found("this link has expired or was already used"))?;
    match state
        .confirmations()
        .confirm(&pending.user, pending.context, &pending.address, &hash)
        .await?
    {
        ConfirmOutcome::Confirmed => {
            mark_confirmed(state, &pending.user, pending.context, &pending.address).await?;
            Ok((pending.user, pending.address))
        }
        _ => Err(ApiError::not_found(
            "this link has expired or was already used",
        )),
    }
}
