//! Authentication: personal API tokens (`fmn_…`, stored hashed) and OpenID Connect access
//! tokens (JWTs verified against the issuer's JWKS) as bearer tokens, and the web app's
//! session cookie (see [`crate::web`]): all three end in the same [`Caller`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
pub use crate::oidc::Jwks;
use crate::state::AppState;

/// The prefix of every personal API token.
pub const TOKEN_PREFIX: &str = "fmn_";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account name.
    pub user: String,
    /// Admins may read and change every user's data.
    pub admin: bool,
    /// When the caller authenticated with a personal token that expires: its expiry
    /// (seconds since the epoch). Tokens it mints expire no later.
    pub token_expires_at: Option<i64>,
}

impl Caller {
    /// Refuses access to another user's data unless the caller is an admin.
    pub fn check(&self, user: &str) -> Result<(), ApiError> {
        if self.user == user || self.admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "you may only read and change your own data",
            ))
        }
    }
}

/// SHA-256 of a secret, hex: how tokens and codes are stored.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes, base64url.
pub(crate) fn random_token(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new personal token: (the secret, shown once, and its record to store).
pub fn mint(
    user: &str,
    admin: bool,
    name: Option<String>,
    expires_in_secs: Option<i64>,
) -> (String, fmn_store::TokenRecord) {
    let secret = format!("{TOKEN_PREFIX}{}", random_token(32));
    let now = now();
    let record = fmn_store::TokenRecord {
        id: hex_id(),
        hash: hash_secret(&secret),
        user: user.to_owned(),
        admin,
        name,
        created_at: now,
        expires_at: expires_in_secs.map(|s| now.saturating_add(s)),
    };
    (secret, record)
}

/// A short random hex identifier.
pub(crate) fn hex_id() -> String {
    (0..6)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            // A browser: the web app's session cookie, the same authorisation as a token.
            return match crate::web::session(parts, state).await? {
                Some(session) => {
                    crate::web::check_csrf_done(parts, &session)?;
                    Ok(Caller {
                        admin: session.admin || state.config().admin_users.contains(&session.user),
                        user: session.user,
                        token_expires_at: None,
                    })
                }
                None => Err(ApiError::unauthorized(
                    "missing Authorization: Bearer token (or a web session)",
                )),
            };
        };
        let value = header
            .to_str()
            .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 8192)
            .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))?;
        if token.starts_with(TOKEN_PREFIX) {
            let record = state
                .tokens()
                .lookup(&hash_secret(token))
                .await?
                .ok_or_else(|| ApiError::unauthorized("unknown, expired or revoked token"))?;
            return Ok(Caller {
                admin: record.admin || state.config().admin_users.contains(&record.user),
                user: record.user,
                token_expires_at: record.expires_at,
            });
        }
        let Some(oidc) = &state.config().oidc else {
            return Err(ApiError::unauthorized(
                "not a personal token, and no OpenID Connect issuer is configured",
            ));
        };
        let claims = state.jwks().verify(oidc, token).await?;
        caller_from_claims(state, oidc, &claims)
    }
}

/// The caller a verified token's claims name: the account in the username claim, an admin
/// when listed in `FMN_ADMIN_USERS` or in a group of `FMN_ADMIN_GROUPS`.
pub(crate) fn caller_from_claims(
    state: &AppState,
    oidc: &crate::config::OidcConfig,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<Caller, ApiError> {
    let user = claims
        .get(&oidc.username_claim)
        .and_then(|v| v.as_str())
        .filter(|u| crate::validate::valid_username(u))
        .ok_or_else(|| {
            ApiError::unauthorized(format!(
                "the token has no usable {} claim",
                oidc.username_claim
            ))
        })?
        .to_owned();
    let groups: Vec<&str> = claims
        .get(&oidc.groups_claim)
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|g| g.as_str()).collect())
        .unwrap_or_default();
    let config = state.config();
    let admin = config.admin_users.contains(&user)
        || groups
            .iter()
            .any(|g| config.admin_groups.iter().any(|a| a == g));
    Ok(Caller {
        user,
        admin,
        token_expires_at: None,
    })
}
