//! The session cookie, and CSRF: every state-changing request a session authenticates must
//! prove it came from one of our pages (a `csrf` form field, or an `X-CSRF-Token` header for
//! scripts in the page), checked against the token stored with the session.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fmn_store::SessionRecord;

use crate::auth::hash_secret;
use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "fmn_session";
/// The cookie binding a sign-in in progress to the browser that started it.
pub const LOGIN_COOKIE: &str = "fmn_login";
/// The form field and header carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
const CSRF_HEADER: &str = "x-csrf-token";

/// The session of a request, looked up once (cached in the request's extensions).
#[derive(Debug, Clone)]
struct Looked(Option<SessionRecord>);

/// Set by [`csrf_guard`] once the form's token was checked.
#[derive(Debug, Clone, Copy)]
struct CsrfChecked;

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 200)
}

async fn lookup(headers: &HeaderMap, state: &AppState) -> Result<Option<SessionRecord>, ApiError> {
    match cookie(headers, SESSION_COOKIE) {
        Some(secret) => Ok(state.sessions().lookup(&hash_secret(secret)).await?),
        None => Ok(None),
    }
}

/// The live session the request's cookie names, if any.
pub(crate) async fn session(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<SessionRecord>, ApiError> {
    if let Some(Looked(s)) = parts.extensions.get::<Looked>() {
        return Ok(s.clone());
    }
    let found = lookup(&parts.headers, state).await?;
    parts.extensions.insert(Looked(found.clone()));
    Ok(found)
}

/// Equal, in time independent of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses a state-changing request authenticated by `session` unless it proved its origin:
/// checked by [`csrf_guard`] (forms), or the `X-CSRF-Token` header (scripts).
pub(crate) fn check_csrf_done(parts: &Parts, session: &SessionRecord) -> Result<(), ApiError> {
    if safe(&parts.method) || parts.extensions.get::<CsrfChecked>().is_some() {
        return Ok(());
    }
    let header = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if same(header, &session.csrf) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this form is not from this site (missing or wrong CSRF token); reload the page",
        ))
    }
}

/// The fields of a urlencoded form, in order (repeated names kept).
pub(crate) fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Middleware of the signed-in pages: a state-changing request that carries a live
/// session must carry its CSRF token as the form field `csrf` (or the header); otherwise
/// 403 and nothing runs. Requests without a session pass (the pages send them to sign-in).
pub(crate) async fn csrf_guard(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if safe(request.method()) {
        return next.run(request).await;
    }
    let session = match lookup(request.headers(), &state).await {
        Ok(Some(s)) => s,
        Ok(None) => return next.run(request).await,
        Err(e) => return super::error_page(None, &e).into_response(),
    };
    let (mut parts, body) = request.into_parts();
    let limit = state.config().limits.max_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let e = ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the form is too large",
        );
        return super::error_page(None, &e).into_response();
    };
    let from_form = form_fields(&bytes)
        .into_iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .is_some_and(|(_, v)| same(&v, &session.csrf));
    if from_form {
        parts.extensions.insert(CsrfChecked);
    }
    if let Err(e) = check_csrf_done(&parts, &session) {
        tracing::info!(user = %session.user, path = %parts.uri.path(), "CSRF check refused a form");
        return super::error_page(None, &e).into_response();
    }
    parts.extensions.insert(Looked(Some(session)));
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether cookies may go without `Secure`: only for a plain-HTTP loopback base URL.
fn loopback(base_url: &str) -> bool {
    let Some(rest) = base_url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix("[::1]") {
        Some(port) if port.is_empty() || port.starts_with(':') => return true,
        _ => authority.split(':').next().unwrap_or_default(),
    };
    matches!(host, "127.0.0.1" | "localhost")
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Secure` outside loopback.
pub(crate) fn set_cookie(
    base_url: &str,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> String {
    let secure = if loopback(base_url) { "" } else { "; Secure" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; fmn_session=abc".parse().unwrap());
        h.append(header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn cookie_flags_depend_on_the_base_url() {
        let local = set_cookie("http://127.0.0.1:8080", "n", "v", "/", 60);
        assert_eq!(local, "n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
        let public = set_cookie("https://fmn.example.org", "n", "v", "/", 60);
        assert!(public.ends_with("; HttpOnly; SameSite=Lax; Secure"));
        // A look-alike host is not loopback.
        assert!(set_cookie("http://127.0.0.1.example.org", "n", "v", "/", 1).contains("Secure"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }
}
