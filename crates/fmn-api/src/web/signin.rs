//! Signing in with OpenID Connect (authorization code with PKCE, RFC 7636) against the
//! configured issuer, and signing out.
//!
//! `GET /sign-in` stores a pending sign-in (state, nonce, PKCE verifier; by the hash of the
//! state, ten minutes), binds it to the browser with a short cookie holding the state, and
//! redirects to the issuer's authorization endpoint. `GET /auth/callback` takes the pending
//! sign-in once, exchanges the code (with the verifier) at the token endpoint, verifies the
//! ID token against the issuer's JWKS (the API's own verifier: issuer, audience = our
//! client id, expiry, nonce), and starts a session.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fmn_store::{PendingLogin, SessionRecord};
use sha2::{Digest, Sha256};

use super::session::{LOGIN_COOKIE, SESSION_COOKIE, cookie, set_cookie};
use super::{Page, error_page};
use crate::auth::{hash_secret, now, random_token};
use crate::config::OidcConfig;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a sign-in may take at the issuer, seconds.
const LOGIN_TTL: i64 = 600;
const CALLBACK: &str = "/auth/callback";

#[derive(serde::Deserialize)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
}

/// The issuer and our client id, or why signing in is not possible.
fn client(state: &AppState) -> Result<(&OidcConfig, &str), ApiError> {
    let config = state.config();
    match (&config.oidc, &config.web.client_id) {
        (Some(oidc), Some(id)) => Ok((oidc, id)),
        _ => Err(ApiError::unavailable(
            "signing in is not configured here (FMN_OIDC_ISSUER and FMN_OIDC_CLIENT_ID); \
             scripts can still use personal tokens",
        )),
    }
}

async fn discover(issuer: &str) -> Result<Discovery, ApiError> {
    let unreachable = |e: reqwest::Error| {
        tracing::warn!(error = %e, issuer, "cannot read the issuer's discovery document");
        ApiError::unavailable("the identity provider is unreachable, retry later")
    };
    reqwest::Client::new()
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(unreachable)?
        .json()
        .await
        .map_err(unreachable)
}

/// A local path to return to: starts with one `/`, bounded; anything else is `/`.
pub(crate) fn local_path(p: Option<&str>) -> String {
    match p {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.len() <= 500
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct SignInQuery {
    return_to: Option<String>,
}

/// `GET /sign-in`: off to the issuer.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    Query(q): Query<SignInQuery>,
) -> Response {
    match begin(&state, q.return_to.as_deref()).await {
        Ok(r) => r,
        Err(e) => error_page(None, &e).into_response(),
    }
}

async fn begin(state: &AppState, return_to: Option<&str>) -> Result<Response, ApiError> {
    let (oidc, client_id) = client(state)?;
    let endpoints = discover(&oidc.issuer).await?;
    let login_state = random_token(32);
    let verifier = random_token(32);
    let nonce = random_token(16);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    state
        .sessions()
        .begin_login(&PendingLogin {
            state_hash: hash_secret(&login_state),
            verifier,
            nonce: nonce.clone(),
            return_to: local_path(return_to),
            expires_at: now() + LOGIN_TTL,
        })
        .await?;
    let base = &state.config().base_url;
    let url = url_with(
        &endpoints.authorization_endpoint,
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", &format!("{base}{CALLBACK}")),
            ("scope", "openid profile email"),
            ("state", &login_state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let bind = set_cookie(base, LOGIN_COOKIE, &login_state, CALLBACK, LOGIN_TTL);
    Ok(see_other(&url, &[bind]))
}

/// `base` with query parameters appended.
fn url_with(base: &str, params: &[(&str, &str)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{query}")
}

/// A 303 to `location`, setting cookies.
fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = Redirect::to(location).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

#[derive(serde::Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback`: back from the issuer.
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    match finish(&state, &headers, q).await {
        Ok(r) => r,
        Err(e) => error_page(None, &e).into_response(),
    }
}

async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    q: CallbackQuery,
) -> Result<Response, ApiError> {
    let (oidc, client_id) = client(state)?;
    if let Some(error) = q.error {
        return Err(ApiError::unauthorized(format!(
            "the identity provider refused the sign-in: {}",
            error.chars().take(200).collect::<String>()
        )));
    }
    let expired = || ApiError::bad_request("this sign-in expired or began in another browser");
    let (Some(code), Some(login_state)) = (q.code, q.state) else {
        return Err(ApiError::bad_request(
            "no code or state from the identity provider",
        ));
    };
    if !cookie(headers, LOGIN_COOKIE).is_some_and(|c| super::session::same(c, &login_state)) {
        return Err(expired());
    }
    let pending = state
        .sessions()
        .take_login(&hash_secret(&login_state))
        .await?
        .ok_or_else(expired)?;
    let endpoints = discover(&oidc.issuer).await?;
    let base = &state.config().base_url;
    let redirect_uri = format!("{base}{CALLBACK}");
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", &redirect_uri),
            ("client_id", client_id),
            ("code_verifier", &pending.verifier),
        ])
        .finish();
    let mut request = reqwest::Client::new()
        .post(&endpoints.token_endpoint)
        .timeout(Duration::from_secs(10))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form);
    if let Some(secret) = &state.config().web.client_secret {
        request = request.basic_auth(client_id, Some(secret));
    }
    #[derive(serde::Deserialize)]
    struct Tokens {
        id_token: String,
    }
    let response = request.send().await.map_err(|e| {
        tracing::warn!(error = %e, "token endpoint unreachable");
        ApiError::unavailable("the identity provider is unreachable, retry later")
    })?;
    if !response.status().is_success() {
        tracing::info!(status = %response.status(), "the token endpoint refused the code");
        return Err(ApiError::unauthorized(
            "the identity provider refused the sign-in",
        ));
    }
    let tokens: Tokens = response
        .json()
        .await
        .map_err(|_| ApiError::unauthorized("the identity provider sent no ID token"))?;
    let id_config = OidcConfig {
        audience: Some(client_id.to_owned()),
        ..oidc.clone()
    };
    let claims = state.jwks().verify(&id_config, &tokens.id_token).await?;
    if claims.get("nonce").and_then(|v| v.as_str()) != Some(pending.nonce.as_str()) {
        return Err(ApiError::unauthorized(
            "the ID token is not for this sign-in (nonce)",
        ));
    }
    let caller = crate::auth::caller_from_claims(state, oidc, &claims)?;
    let secret = random_token(32);
    let ttl = state.config().web.session_ttl_secs;
    state
        .sessions()
        .create(&SessionRecord {
            hash: hash_secret(&secret),
            user: caller.user.clone(),
            admin: caller.admin,
            csrf: random_token(24),
            expires_at: now() + ttl,
        })
        .await?;
    tracing::info!(user = %caller.user, "signed in");
    Ok(see_other(
        &pending.return_to,
        &[
            set_cookie(base, SESSION_COOKIE, &secret, "/", ttl),
            set_cookie(base, LOGIN_COOKIE, "", CALLBACK, 0),
        ],
    ))
}

/// `POST /sign-out` (CSRF-checked): ends the session.
pub(crate) async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.sessions().delete(&hash_secret(secret)).await {
            return error_page(None, &e.into()).into_response();
        }
    }
    let base = &state.config().base_url;
    see_other(
        "/?signed-out=1",
        &[set_cookie(base, SESSION_COOKIE, "", "/", 0)],
    )
}

/// The landing page of a visitor who is not signed in.
pub(crate) fn landing(signed_out: bool) -> Page {
    Page::message(
        "Fedora notifications",
        if signed_out {
            "You are signed out."
        } else {
            "Choose which events of Fedora's message bus reach you, and where: email, IRC, \
             Matrix, webhooks, feeds."
        },
    )
    .with_link("/sign-in", "Sign in")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path(Some("/users/alice")), "/users/alice");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "", "x"] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn authorization_urls_keep_the_issuers_query() {
        assert_eq!(
            url_with("https://id.example/auth?x=1", &[("a", "b c")]),
            "https://id.example/auth?x=1&a=b+c"
        );
        assert_eq!(
            url_with("https://id.example/auth", &[("a", "&")]),
            "https://id.example/auth?a=%26"
        );
    }
}
