//! The web app: server-rendered pages (askama templates, compiled in) served by the API's
//! own Router at `/`, next to the API at `/api/v1`.
//!
//! - Signing in ([`signin`]): OpenID Connect authorization code with PKCE against the
//!   configured issuer; a server-side session in the API table, named by an `HttpOnly`,
//!   `SameSite=Lax` cookie (`Secure` outside loopback).
//! - Authorisation: a page acting on a user's data extracts [`Signed`], which is the API's
//!   own `UserAccess` (the session cookie reaches the same [`Caller`](crate::auth::Caller)
//!   as a bearer token) plus the session for the page's navigation and forms.
//! - Every state-changing form carries the session's CSRF token, checked by
//!   [`session::csrf_guard`] before any handler runs; the handlers behind forms call the
//!   API's handlers, so validation and errors (with the field they name) are the API's.
//! - Every page works without JavaScript; `/static/fmn.js` only adds conveniences. Every
//!   response of the pages carries a Content-Security-Policy without inline scripts,
//!   `frame-ancestors 'none'`, a Referrer-Policy, and `Cache-Control: no-store`.

mod account;
mod admin;
mod filters;
mod history;
mod inbox;
mod pages;
pub(crate) mod session;
mod signin;
mod views;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fmn_store::SessionRecord;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, UserAccess};
use crate::state::AppState;

pub(crate) use session::{check_csrf_done, session};
pub(crate) use views::{Nav, Page, error_page};

/// A signed-in request acting on the data of the user its path names: the API's
/// [`UserAccess`] (so the same checks: 401, 400, 404, 403, in that order), plus the session.
/// Without a session, a page is sent to sign-in (and back afterwards).
#[derive(Debug)]
pub(crate) struct Signed {
    pub access: UserAccess,
    pub session: SessionRecord,
    /// The signed-in user's unread inbox items, where an inbox is deployed.
    pub unread: Option<u64>,
    /// The inbox's WebSocket URL, where one is deployed.
    pub socket: Option<String>,
}

impl Signed {
    /// The navigation of a page for this session.
    pub fn nav(&self) -> Nav {
        let mut nav = Nav::of(&self.session);
        nav.unread = self.unread;
        nav.socket = self.socket.clone();
        nav
    }
    /// The path of the user's pages.
    pub fn home(&self) -> String {
        format!("/users/{}", self.access.user)
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let found = session(parts, state)
            .await
            .map_err(|e| error_page(None, &e).into_response())?;
        let Some(session) = found else {
            let back = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let back = if parts.method == axum::http::Method::GET {
                back
            } else {
                "/"
            };
            let to = format!(
                "/sign-in?return_to={}",
                form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
            );
            return Err(see_other(&to));
        };
        let access = UserAccess::from_request_parts(parts, state)
            .await
            .map_err(|e| error_page(Some(Nav::of(&session)), &e).into_response())?;
        // The bell's count: the signed-in user's own (an admin may be on another's page).
        let unread = match state.inbox() {
            Some(_) => crate::routes::inbox::unread(state, &session.user)
                .await
                .ok(),
            None => None,
        };
        let socket = state.config().inbox_socket_url.clone();
        Ok(Signed {
            access,
            session,
            unread,
            socket,
        })
    }
}

/// A 303 See Other to a local path.
pub(crate) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A request body for an API handler, from JSON built by a form handler: refused as the
/// API refuses it (naming the field).
pub(crate) fn api_body<T: DeserializeOwned>(v: &serde_json::Value) -> ApiResult<ApiJson<T>> {
    crate::extract::parse_json(&serde_json::to_vec(v).unwrap_or_default()).map(ApiJson)
}

/// What an API handler answered, as JSON (`null` when it had no body).
pub(crate) async fn api_result<R: IntoResponse>(r: ApiResult<R>) -> ApiResult<serde_json::Value> {
    let response = r?.into_response();
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// A form's fields (urlencoded; names may repeat).
#[derive(Debug, Default)]
pub(crate) struct Form(pub Vec<(String, String)>);

impl Form {
    /// Parses a urlencoded body.
    pub fn parse(body: &[u8]) -> Self {
        Form(session::form_fields(body))
    }
    /// The first value of `name`, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or_default()
    }
    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// Whether a checkbox `name` was checked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// The pages' Content-Security-Policy; `connect-src` also allows the inbox's WebSocket
/// (another origin: API Gateway's, or the local gateway's port).
fn csp(socket: Option<&str>) -> String {
    let socket = socket
        .and_then(|s| {
            let (scheme, rest) = s.split_once("://")?;
            let host = rest.split('/').next()?;
            // Only what a CSP source can hold.
            let ok = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
            (matches!(scheme, "ws" | "wss") && !host.is_empty() && host.chars().all(ok))
                .then(|| format!(" {scheme}://{host}"))
        })
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'{socket}; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'"
    )
}

/// Security headers on every page.
async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let policy = csp(state.config().inbox_socket_url.as_deref());
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&policy) {
        h.insert("content-security-policy", v);
    }
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

const CSS: &str = include_str!("../../assets/fmn.css");
const JS: &str = include_str!("../../assets/fmn.js");

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
}

/// The pages, to be merged into the API's Router.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    let user = "/users/{user}";
    let ctx = "/users/{user}/contexts/{context}";
    let filter = "/users/{user}/contexts/{context}/filters/{filter}";
    let address = "/users/{user}/contexts/{context}/addresses/{address}";
    let private = Router::new()
        .route(user, get(pages::overview))
        .route(&format!("{user}/history"), get(history::history))
        .route(&format!("{user}/inbox"), get(inbox::page))
        .route(
            &format!("{user}/inbox/read-all"),
            post(inbox::mark_all_read),
        )
        .route(&format!("{user}/inbox/{{id}}/read"), post(inbox::mark_read))
        .route(ctx, get(pages::context_page).post(pages::save_settings))
        .route(
            &format!("{ctx}/templates/{{template}}"),
            post(pages::apply_template),
        )
        .route(&format!("{ctx}/copy"), post(pages::copy_filters))
        .route(&format!("{ctx}/addresses"), post(pages::add_address))
        .route(&format!("{address}/remove"), post(pages::remove_address))
        .route(&format!("{address}/confirm"), post(pages::confirm_code))
        .route(&format!("{ctx}/filters"), post(filters::create))
        .route(filter, get(filters::editor).post(filters::save))
        .route(&format!("{filter}/delete"), post(filters::delete))
        .route(&format!("{filter}/move"), post(filters::move_filter))
        .route(&format!("{filter}/rules"), post(filters::add_rule))
        .route(
            &format!("{filter}/rules/{{index}}/delete"),
            post(filters::delete_rule),
        )
        .route(
            &format!("{user}/tokens"),
            get(account::tokens).post(account::create_token),
        )
        .route(
            &format!("{user}/tokens/{{id}}/revoke"),
            post(account::revoke_token),
        )
        .route(&format!("{user}/feed"), post(account::rotate_feed))
        .route("/sign-out", post(signin::sign_out))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::csrf_guard,
        ));
    let public = Router::new()
        .route("/", get(pages::home))
        .route("/admin", get(admin::admin))
        .route("/sign-in", get(signin::sign_in))
        .route("/auth/callback", get(signin::callback))
        .route(
            "/confirm/{token}",
            get(account::confirm_page).post(account::confirm),
        )
        .route(
            "/unsubscribe/{token}",
            get(account::unsubscribe_page).post(account::unsubscribe),
        );
    private
        .merge(public)
        .route_layer(middleware::from_fn_with_state(state, security_headers))
        .route("/static/fmn.css", get(css))
        .route("/static/fmn.js", get(js))
}
