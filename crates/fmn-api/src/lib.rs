//! fmn's preferences HTTP API: one axum [`Router`](axum::Router), served by `lambda_http`
//! in Lambda and by `axum::serve` locally.
//!
//! - [`router`] builds it over an [`AppState`] (clients and an [`ApiConfig`]).
//! - Authentication ([`auth`]): personal tokens (`fmn_…`, stored SHA-256-hashed) or OpenID
//!   Connect access tokens verified against the issuer's JWKS. A user reads and changes
//!   only their own data; admins everyone's.
//! - Every change loads the user's preferences, applies the change, validates the whole
//!   result ([`validate`]: bounds, address syntax, and the rules engine's own compile step)
//!   and stores it through `PreferenceTable::put_if`, conditional on the document read (a
//!   concurrent write is never undone: 412 with `If-Match`, re-applied otherwise), which
//!   bumps the version the matcher watches.
//! - Every error is JSON `{"error", "message", "field"?}` ([`ErrorBody`]).
//! - [`openapi_json`] is the OpenAPI 3 document, also served at `/api/v1/openapi.json`.
//! - The web app's pages are served by the same Router at `/`: OpenID Connect sign-in
//!   (authorization code with PKCE) into a server-side session whose cookie reaches the same
//!   authorisation as a bearer token, CSRF-checked forms that call the API's own handlers,
//!   compiled templates (`templates/`), and a stylesheet and a little script of its own
//!   (`assets/`).
//!
//! ```
//! let doc = fmn_api::openapi_json();
//! assert!(doc.contains("/api/v1/users/{user}/contexts/{context}/filters"));
//! ```

pub mod auth;
mod catalog;
mod config;
mod error;
mod extract;
mod model;
mod oidc;
mod openapi;
mod routes;
mod state;
mod templates;
pub mod validate;
mod web;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

pub use catalog::{RuleKindInfo, rule_kinds};
pub use config::{ApiConfig, ConfigError, Limits, OidcConfig};
pub use error::{ApiError, ErrorBody};
pub use extract::parse_json;
pub use model::*;
pub use openapi::{openapi, openapi_json};
pub use state::AppState;
pub use templates::{Template, templates};

use routes::{addresses, catalog as cat, history, inbox, prefs, preview, public, tokens};

/// Turns any error response that is not already JSON (axum's own rejections, 405s, a
/// panic caught below) into the API's error format.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    // JSON already, or one of the web app's pages (which render their own errors).
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_json || is_html {
        return response;
    }
    let code = error::code_for(status);
    let message = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    ApiError::new(status, code, message).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such resource")
}

async fn openapi_doc() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        openapi_json(),
    )
        .into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

/// The API at `/api/v1` and the web app's pages at `/` (see the `web` module), one Router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().limits.max_body_bytes;
    let user = "/api/v1/users/{user}";
    let ctx = "/api/v1/users/{user}/contexts/{context}";
    let filter = "/api/v1/users/{user}/contexts/{context}/filters/{filter}";
    let address = "/api/v1/users/{user}/contexts/{context}/addresses/{address}";
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_doc))
        .route("/api/v1/me", get(prefs::me))
        .route("/api/v1/users", get(prefs::list_users))
        .route("/api/v1/rules", get(cat::rules))
        .route("/api/v1/applications", get(cat::applications))
        .route("/api/v1/templates", get(cat::templates))
        .route("/api/v1/limits", get(cat::limits))
        .route(&format!("{user}/preferences"), get(prefs::get_preferences))
        .route(&format!("{user}/import/fmn3"), post(prefs::import_fmn3))
        .route(&format!("{user}/preview"), post(preview::preview))
        .route(&format!("{user}/history"), get(history::list_history))
        .route(&format!("{user}/inbox"), get(inbox::list_inbox))
        .route(
            &format!("{user}/inbox/read-all"),
            post(inbox::mark_all_read),
        )
        .route(&format!("{user}/inbox/{{id}}/read"), post(inbox::mark_read))
        .route("/api/v1/inbox/socket", get(inbox::socket))
        .route(
            &format!("{user}/tokens"),
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route(
            &format!("{user}/tokens/{{id}}"),
            axum::routing::delete(tokens::revoke_token),
        )
        .route(
            &format!("{user}/feed-token"),
            post(tokens::rotate_feed_token),
        )
        .route(
            ctx,
            get(prefs::get_context)
                .put(prefs::put_context)
                .delete(prefs::delete_context),
        )
        .route(&format!("{ctx}/copy"), post(prefs::copy_context))
        .route(
            &format!("{ctx}/templates/{{template}}"),
            post(prefs::apply_template),
        )
        .route(
            &format!("{ctx}/filters"),
            get(prefs::list_filters).post(prefs::create_filter),
        )
        .route(&format!("{ctx}/filter-order"), put(prefs::order_filters))
        .route(
            filter,
            get(prefs::get_filter)
                .patch(prefs::patch_filter)
                .delete(prefs::delete_filter),
        )
        .route(&format!("{filter}/rules"), post(prefs::add_rule))
        .route(
            &format!("{filter}/rules/{{index}}"),
            put(prefs::put_rule).delete(prefs::delete_rule),
        )
        .route(
            &format!("{ctx}/addresses"),
            get(addresses::list_addresses).post(addresses::add_address),
        )
        .route(address, axum::routing::delete(addresses::delete_address))
        .route(
            &format!("{address}/confirm"),
            post(addresses::confirm_address),
        )
        .route(
            "/api/v1/unsubscribe/{token}",
            get(public::unsubscribe_page).post(public::unsubscribe),
        )
        .route(
            "/api/v1/confirm/{token}",
            get(public::confirm_page).post(public::confirm),
        )
        .route("/feeds/{token}/rss.xml", get(public::rss))
        .route("/feeds/{token}/atom.xml", get(public::atom))
        .merge(web::routes(state.clone()))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}
