//! Routes without bearer authentication, where an unguessable or signed token in the URL is
//! the authority: feeds, one-click unsubscribe, email confirmation links. A `GET` never
//! changes anything (mail scanners prefetch links): it shows a page whose button `POST`s.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::auth::hash_secret;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Params;
use crate::state::AppState;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    html_escape::encode_quoted_attribute(s).into_owned()
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    ))
}

/// How many feed items a feed shows.
const FEED_ITEMS: usize = 50;

async fn feed(state: &AppState, token: &str, atom: bool) -> ApiResult<Response> {
    let feeds = state
        .feeds()
        .ok_or_else(|| ApiError::not_found("feeds are not deployed"))?;
    if token.len() > 200 {
        return Err(ApiError::not_found("no such feed"));
    }
    let user = state
        .tokens()
        .feed_user(&hash_secret(token))
        .await?
        .ok_or_else(|| ApiError::not_found("no such feed"))?;
    let items = feeds.recent(&user, FEED_ITEMS).await.map_err(|e| {
        tracing::error!(error = %e, "feed table unavailable");
        ApiError::unavailable("feeds are unavailable, retry later")
    })?;
    let base = &state.config().base_url;
    let title = format!("fmn notifications for {user}");
    let (text, kind) = if atom {
        let url = format!("{base}/feeds/{token}/atom.xml");
        (fmn_feed::atom(&title, &url, &items), "application/atom+xml")
    } else {
        let url = format!("{base}/feeds/{token}/rss.xml");
        (fmn_feed::rss(&title, &url, &items), "application/rss+xml")
    };
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(kind))],
        text,
    )
        .into_response())
}

/// A user's notifications as RSS 2.0, behind the secret feed URL.
#[utoipa::path(get, path = "/feeds/{token}/rss.xml", tag = "feeds",
    params(("token" = String, Path)),
    responses((status = 200, content_type = "application/rss+xml", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn rss(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    feed(&state, &p.raw("token")?, false).await
}

/// A user's notifications as Atom 1.0, behind the secret feed URL.
#[utoipa::path(get, path = "/feeds/{token}/atom.xml", tag = "feeds",
    params(("token" = String, Path)),
    responses((status = 200, content_type = "application/atom+xml", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn atom(State(state): State<AppState>, p: Params) -> ApiResult<Response> {
    feed(&state, &p.raw("token")?, true).await
}

fn verify_unsubscribe(state: &AppState, token: &str) -> ApiResult<fmn_links::UnsubscribeLink> {
    state
        .links()
        .verify_unsubscribe(token)
        .map_err(|_| ApiError::not_found("this unsubscribe link is not valid"))
}

/// The unsubscribe page: says which filter the link stops, with a button (changes nothing).
#[utoipa::path(get, path = "/api/v1/unsubscribe/{token}", tag = "links",
    params(("token" = String, Path)),
    responses((status = 200, content_type = "text/html", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn unsubscribe_page(State(state): State<AppState>, p: Params) -> ApiResult<Html<String>> {
    let token = p.raw("token")?;
    let link = verify_unsubscribe(&state, &token)?;
    Ok(page(
        "Unsubscribe",
        &format!(
            "<p>Stop the {} filter <code>{}</code> of {}?</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" \
             value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>",
            esc(link.context.as_str()),
            esc(&link.filter_id),
            esc(&link.user)
        ),
    ))
}

/// The form a mail client posts for one-click unsubscribe (RFC 8058). Documents the request
/// body only: the signed link is the authority, whatever the form says.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct OneClickForm {
    /// Always `One-Click`.
    #[allow(dead_code)] // never read: the link decides
    #[serde(rename = "List-Unsubscribe")]
    #[schema(example = "One-Click")]
    pub list_unsubscribe: String,
}

/// One-click unsubscribe (RFC 8058): deactivates the filter the signed link names.
#[utoipa::path(post, path = "/api/v1/unsubscribe/{token}", tag = "links",
    params(("token" = String, Path)),
    request_body(content = OneClickForm, content_type = "application/x-www-form-urlencoded",
        description = "List-Unsubscribe=One-Click"),
    responses((status = 200, content_type = "text/html", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn unsubscribe(State(state): State<AppState>, p: Params) -> ApiResult<Html<String>> {
    let token = p.raw("token")?;
    let link = verify_unsubscribe(&state, &token)?;
    let headers = axum::http::HeaderMap::new();
    let (name, _) = super::modify(&state, &headers, &link.user, |prefs| {
        let f = super::context_mut(prefs, link.context)?
            .filters
            .iter_mut()
            .find(|f| f.id == link.filter_id)
            .ok_or_else(|| ApiError::not_found("this filter no longer exists"))?;
        f.active = false;
        Ok(f.name.clone())
    })
    .await?;
    Ok(page(
        "Unsubscribed",
        &format!(
            "<p>The filter “{}” is off: it sends nothing more until you activate it again.</p>",
            esc(&name)
        ),
    ))
}

/// The email confirmation page: a button that confirms (changes nothing by itself).
#[utoipa::path(get, path = "/api/v1/confirm/{token}", tag = "links",
    params(("token" = String, Path)),
    responses((status = 200, content_type = "text/html", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn confirm_page(State(state): State<AppState>, p: Params) -> ApiResult<Html<String>> {
    let token = p.raw("token")?;
    let pending = state
        .confirmations()
        .lookup_link(&hash_secret(&token))
        .await?
        .ok_or_else(|| ApiError::not_found("this link has expired or was already used"))?;
    Ok(page(
        "Confirm your address",
        &format!(
            "<p>Confirm that {} may receive notifications for {}?</p>\
             <form method=\"post\"><button type=\"submit\">Confirm</button></form>",
            esc(&pending.address),
            esc(&pending.user)
        ),
    ))
}

/// Confirms an email address from its one-time link.
#[utoipa::path(post, path = "/api/v1/confirm/{token}", tag = "links",
    params(("token" = String, Path)),
    responses((status = 200, content_type = "text/html", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn confirm(
    State(state): State<AppState>,
    p: Params,
) -> ApiResult<(StatusCode, Html<String>)> {
    let token = p.raw("token")?;
    let (user, address) = super::addresses::confirm_link(&state, &token).await?;
    Ok((
        StatusCode::OK,
        page(
            "Address confirmed",
            &format!(
                "<p>{} now receives {}'s notifications.</p>",
                esc(&address),
                esc(&user)
            ),
        ),
    ))
}
