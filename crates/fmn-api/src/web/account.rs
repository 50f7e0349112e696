//! Personal tokens and the feed URL (each secret shown once), and the pages that links in
//! notifications open: email confirmation and one-click unsubscribe (a `GET` only shows a
//! button; mail scanners prefetch links).

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::views::render;
use super::{Form, Nav, Page, Signed, api_body, api_result, error_page, see_other};
use crate::auth::hash_secret;
use crate::error::ApiResult;
use crate::extract::Params;
use crate::routes::{addresses, public, tokens as api};
use crate::state::AppState;

/// A token as the page lists it.
#[derive(Debug)]
struct TokenRow {
    id: String,
    name: String,
    created: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    nav: Nav,
    title: String,
    base: String,
    tokens: Vec<TokenRow>,
    created: Option<String>,
    feed: Option<(String, String)>,
    error: Option<String>,
}

/// A date, UTC, from seconds since the epoch.
fn day(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

async fn tokens_view(
    state: &AppState,
    signed: &Signed,
    created: Option<String>,
    feed: Option<(String, String)>,
    error: Option<String>,
) -> ApiResult<Response> {
    let user = &signed.access.user;
    let list = state.tokens().list(user).await?;
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &TokensPage {
            nav: signed.nav(),
            title: "Tokens and feed".into(),
            base: format!("/users/{user}"),
            tokens: list
                .into_iter()
                .map(|t| TokenRow {
                    id: t.id,
                    name: t.name.unwrap_or_else(|| "(no name)".into()),
                    created: day(t.created_at),
                    expires: t.expires_at.map(day).unwrap_or_else(|| "never".into()),
                })
                .collect(),
            created,
            feed,
            error,
        },
    ))
}

fn or_error(signed: &Signed, r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(|e| error_page(Some(signed.nav()), &e).into_response())
}

/// `GET /users/{user}/tokens`.
pub(crate) async fn tokens(signed: Signed, State(state): State<AppState>) -> Response {
    let r = tokens_view(&state, &signed, None, None, None).await;
    or_error(&signed, r)
}

/// `POST /users/{user}/tokens`: a new token, shown on the page this once.
pub(crate) async fn create_token(
    signed: Signed,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let mut doc = json!({});
    if !f.get("name").is_empty() {
        doc["name"] = f.get("name").into();
    }
    if let Ok(days) = f.get("days").parse::<i64>() {
        doc["expires_in_secs"] = days.saturating_mul(86_400).into();
    }
    let outcome = match api_body(&doc) {
        Ok(b) => {
            api_result(api::create_token(signed.access.clone(), State(state.clone()), b).await)
                .await
        }
        Err(e) => Err(e),
    };
    let r = match outcome {
        Ok(v) => {
            let secret = v["token"].as_str().map(str::to_owned);
            tokens_view(&state, &signed, secret, None, None).await
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
            tokens_view(&state, &signed, None, None, Some(e.body.message)).await
        }
        Err(e) => Err(e),
    };
    or_error(&signed, r)
}

/// `POST /users/{user}/tokens/{id}/revoke`.
pub(crate) async fn revoke_token(signed: Signed, State(state): State<AppState>) -> Response {
    match api_result(api::revoke_token(signed.access.clone(), State(state.clone())).await).await {
        Ok(_) => see_other(&format!("{}/tokens", signed.home())),
        Err(e) => error_page(Some(signed.nav()), &e).into_response(),
    }
}

/// `POST /users/{user}/feed`: a new secret feed URL (the old one stops working).
pub(crate) async fn rotate_feed(signed: Signed, State(state): State<AppState>) -> Response {
    let outcome =
        api_result(api::rotate_feed_token(signed.access.clone(), State(state.clone())).await).await;
    let r = match outcome {
        Ok(v) => {
            let urls = (
                v["rss"].as_str().unwrap_or_default().to_owned(),
                v["atom"].as_str().unwrap_or_default().to_owned(),
            );
            tokens_view(&state, &signed, None, Some(urls), None).await
        }
        Err(e) => Err(e),
    };
    or_error(&signed, r)
}

/// `GET /confirm/{token}`: the email confirmation link's page.
pub(crate) async fn confirm_page(State(state): State<AppState>, p: Params) -> Response {
    let r = async {
        let token = p.raw("token")?;
        let pending = state
            .confirmations()
            .lookup_link(&hash_secret(&token))
            .await?
            .ok_or_else(|| {
                crate::error::ApiError::not_found("this link has expired or was already used")
            })?;
        Ok::<_, crate::error::ApiError>(
            Page::message(
                "Confirm your address",
                &format!(
                    "Confirm that {} may receive notifications for {}?",
                    pending.address, pending.user
                ),
            )
            .with_button("", "Confirm", &[]),
        )
    }
    .await;
    r.map(IntoResponse::into_response)
        .unwrap_or_else(|e| error_page(None, &e).into_response())
}

/// `POST /confirm/{token}`: confirms.
pub(crate) async fn confirm(State(state): State<AppState>, p: Params) -> Response {
    let r = async {
        let token = p.raw("token")?;
        addresses::confirm_link(&state, &token).await
    }
    .await;
    match r {
        Ok((user, address)) => Page::message(
            "Address confirmed",
            &format!("{address} now receives {user}'s notifications."),
        )
        .with_link(&format!("/users/{user}"), "Your notifications")
        .into_response(),
        Err(e) => error_page(None, &e).into_response(),
    }
}

/// `GET /unsubscribe/{token}`: what the link stops, with a button.
pub(crate) async fn unsubscribe_page(State(state): State<AppState>, p: Params) -> Response {
    let link = p.raw("token").and_then(|t| {
        state
            .links()
            .verify_unsubscribe(&t)
            .map_err(|_| crate::error::ApiError::not_found("this unsubscribe link is not valid"))
    });
    match link {
        Ok(link) => Page::message(
            "Unsubscribe",
            &format!(
                "Stop the {} filter “{}” of {}? It sends nothing more until you turn it on again.",
                link.context.as_str(),
                link.filter_id,
                link.user
            ),
        )
        .with_button("", "Unsubscribe", &[("List-Unsubscribe", "One-Click")])
        .into_response(),
        Err(e) => error_page(None, &e).into_response(),
    }
}

/// `POST /unsubscribe/{token}`: turns the filter off (RFC 8058 one-click too).
pub(crate) async fn unsubscribe(State(state): State<AppState>, p: Params) -> Response {
    let user = p
        .raw("token")
        .ok()
        .and_then(|t| state.links().verify_unsubscribe(&t).ok())
        .map(|l| l.user);
    match public::unsubscribe(State(state), p).await {
        Ok(_) => {
            let mut page = Page::message(
                "Unsubscribed",
                "That filter is off: it sends nothing more until you turn it on again.",
            );
            if let Some(u) = user {
                page = page.with_link(&format!("/users/{u}"), "Your notifications");
            }
            page.into_response()
        }
        Err(e) => error_page(None, &e).into_response(),
    }
}
