//! A development OpenID Connect provider on 127.0.0.1, for the web app's sign-in in local
//! runs and tests: discovery, an authorization page offering each demo user as a button
//! named with the user name, the token endpoint (authorization code with PKCE S256, codes
//! used once) and the JWKS. The web app talks to it exactly as to Fedora's accounts: the
//! production code path, not a bypass.
//!
//! It signs with the test key of `tests/fixtures/api/` (public in this repository): it is
//! for loopback development only, and refuses redirect URIs that are not loopback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const KEY: &str = include_str!("../../../../tests/fixtures/api/issuer-key.pem");
const JWKS: &str = include_str!("../../../../tests/fixtures/api/jwks.json");
const KID: &str = "test-key-1";
/// The client id the local run's web app is registered with.
pub const CLIENT_ID: &str = "fmn-local";
/// How many codes may wait for their exchange at once.
const MAX_CODES: usize = 1000;

/// A running development provider.
#[derive(Debug, Clone)]
pub struct DevIssuer {
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub url: String,
}

impl DevIssuer {
    /// The API's OpenID Connect configuration for this issuer, and the web app's client id.
    pub fn configure(&self, config: &mut fmn_api::ApiConfig) {
        config.oidc = Some(fmn_api::OidcConfig {
            issuer: self.url.clone(),
            audience: None,
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
        });
        config.web.client_id = Some(CLIENT_ID.into());
    }
}

/// A code waiting for its exchange.
#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    nonce: Option<String>,
    challenge: String,
    user: String,
}

#[derive(Debug)]
struct Inner {
    url: String,
    users: Vec<String>,
    admins: Vec<String>,
    codes: Mutex<HashMap<String, Grant>>,
}

type Shared = Arc<Inner>;

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// Set by the page's buttons.
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    client_id: String,
    code_verifier: String,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn loopback(uri: &str) -> bool {
    [
        "http://127.0.0.1:",
        "http://localhost:",
        "http://127.0.0.1/",
    ]
    .iter()
    .any(|p| uri.starts_with(p))
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, Html(format!("<!doctype html><html lang=\"en\"><head><title>Refused</title></head><body><main><h1>Refused</h1><p>{}</p></main></body></html>", esc(why)))).into_response()
}

/// `GET /authorize`: one button per user (a `GET` form back here with `user`), then the
/// redirect with a code.
async fn authorize(State(s): State<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.response_type != "code" || !loopback(&q.redirect_uri) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "only response_type=code to a loopback redirect_uri",
        );
    }
    let Some(challenge) = q
        .code_challenge
        .clone()
        .filter(|_| q.code_challenge_method.as_deref() == Some("S256"))
    else {
        return refuse(StatusCode::BAD_REQUEST, "PKCE with S256 is required");
    };
    let Some(user) = q.user.clone() else {
        let hidden: String = [
            ("response_type", Some(q.response_type.as_str())),
            ("client_id", Some(q.client_id.as_str())),
            ("redirect_uri", Some(q.redirect_uri.as_str())),
            ("state", q.state.as_deref()),
            ("nonce", q.nonce.as_deref()),
            ("code_challenge", Some(challenge.as_str())),
            ("code_challenge_method", Some("S256")),
        ]
        .iter()
        .filter_map(|(k, v)| {
            v.map(|v| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v)))
        })
        .collect();
        let buttons: String = s
            .users
            .iter()
            .map(|u| {
                format!(
                    "<button type=\"submit\" name=\"user\" value=\"{0}\">{0}</button> ",
                    esc(u)
                )
            })
            .collect();
        return Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Sign in (development)</title></head><body><main>\
             <h1>Sign in to fmn</h1><p>Development identity provider: choose who you are.</p>\
             <form method=\"get\" action=\"/authorize\">{hidden}{buttons}</form></main></body></html>"
        ))
        .into_response();
    };
    if !s.users.contains(&user) {
        return refuse(StatusCode::BAD_REQUEST, "no such demo user");
    }
    let code = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    {
        let mut codes = s.codes.lock().unwrap_or_else(|e| e.into_inner());
        if codes.len() >= MAX_CODES {
            codes.clear();
        }
        codes.insert(
            code.clone(),
            Grant {
                client_id: q.client_id.clone(),
                redirect_uri: q.redirect_uri.clone(),
                nonce: q.nonce.clone(),
                challenge,
                user,
            },
        );
    }
    let mut to = q.redirect_uri.clone();
    to.push(if to.contains('?') { '&' } else { '?' });
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .extend_pairs(q.state.iter().map(|st| ("state", st.as_str())))
        .finish();
    Redirect::to(&format!("{to}{query}")).into_response()
}

fn token_error(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": error}))).into_response()
}

/// `POST /token`: a code, once, with the PKCE verifier → ID and access tokens.
async fn token(State(s): State<Shared>, Form(f): Form<TokenForm>) -> Response {
    if f.grant_type != "authorization_code" {
        return token_error("unsupported_grant_type");
    }
    let grant = s
        .codes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&f.code);
    let Some(g) = grant else {
        return token_error("invalid_grant");
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(f.code_verifier.as_bytes()));
    if g.client_id != f.client_id || g.redirect_uri != f.redirect_uri || g.challenge != challenge {
        return token_error("invalid_grant");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let groups: Vec<&str> = if s.admins.contains(&g.user) {
        vec!["sysadmin-main"]
    } else {
        vec![]
    };
    let mut claims = json!({
        "iss": s.url, "sub": g.user, "aud": g.client_id, "iat": now, "exp": now + 3600,
        "preferred_username": g.user, "groups": groups,
    });
    let access = sign(&claims);
    if let Some(n) = g.nonce {
        claims["nonce"] = n.into();
    }
    match (sign(&claims), access) {
        (Ok(id_token), Ok(access_token)) => axum::Json(json!({
            "access_token": access_token, "id_token": id_token,
            "token_type": "Bearer", "expires_in": 3600,
        }))
        .into_response(),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "development issuer: signing");
            token_error("server_error")
        }
    }
}

fn sign(claims: &Value) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(KID.into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(KEY.as_bytes())?;
    jsonwebtoken::encode(&header, claims, &key)
}

/// Serves the provider on 127.0.0.1:`port` (0: any free port) until `stop`, offering
/// `users` on its sign-in page; `admins` get the `sysadmin-main` group.
pub async fn serve(
    port: u16,
    users: Vec<String>,
    admins: Vec<String>,
    stop: CancellationToken,
) -> anyhow::Result<DevIssuer> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let jwks: Value = serde_json::from_str(JWKS)?;
    let discovery = json!({
        "issuer": url,
        "authorization_endpoint": format!("{url}/authorize"),
        "token_endpoint": format!("{url}/token"),
        "jwks_uri": format!("{url}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
    });
    let shared = Arc::new(Inner {
        url: url.clone(),
        users,
        admins,
        codes: Mutex::default(),
    });
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { axum::Json(discovery) }),
        )
        .route("/jwks", get(move || async move { axum::Json(jwks) }))
        .route("/authorize", get(authorize))
        .route("/token", axum::routing::post(token))
        .with_state(shared);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "development OpenID provider stopped");
        }
    });
    Ok(DevIssuer { url })
}
