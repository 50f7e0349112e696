//! Bearer authentication: personal API tokens (`fmn_…`, stored hashed) and OpenID Connect
//! access tokens (JWTs verified against the issuer's JWKS).

use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use crate::config::OidcConfig;
use crate::error::ApiError;
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
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
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
            });
        }
        let Some(oidc) = &state.config().oidc else {
            return Err(ApiError::unauthorized(
                "not a personal token, and no OpenID Connect issuer is configured",
            ));
        };
        let claims = state.jwks().verify(oidc, token).await?;
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
        Ok(Caller { user, admin })
    }
}

/// The issuer's signing keys, fetched on first use and refreshed when a token names an
/// unknown key (at most once a minute) or after an hour.
#[derive(Debug, Default)]
pub struct Jwks {
    cache: RwLock<Option<(Instant, JwkSet)>>,
    http: reqwest::Client,
}

const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(60);

impl Jwks {
    async fn fetch(&self, issuer: &str) -> Result<JwkSet, ApiError> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        let unavailable = |e: reqwest::Error| {
            tracing::warn!(error = %e, issuer, "cannot reach the OpenID Connect issuer");
            ApiError::unavailable("the identity provider is unreachable, retry later")
        };
        let discovery: Discovery = self
            .http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        self.http
            .get(&discovery.jwks_uri)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }

    async fn key(
        &self,
        issuer: &str,
        kid: Option<&str>,
    ) -> Result<jsonwebtoken::DecodingKey, ApiError> {
        let find = |set: &JwkSet| {
            set.keys
                .iter()
                .find(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
                .and_then(|k| jsonwebtoken::DecodingKey::from_jwk(k).ok())
        };
        let stale = {
            let cache = self.cache.read().await;
            match &*cache {
                Some((at, set)) => {
                    if let Some(k) = find(set).filter(|_| at.elapsed() < JWKS_MAX_AGE) {
                        return Ok(k);
                    }
                    at.elapsed() >= JWKS_MIN_REFRESH
                }
                None => true,
            }
        };
        if stale {
            let set = self.fetch(issuer).await?;
            let mut cache = self.cache.write().await;
            *cache = Some((Instant::now(), set));
        }
        let cache = self.cache.read().await;
        cache
            .as_ref()
            .and_then(|(_, set)| find(set))
            .ok_or_else(|| ApiError::unauthorized("the token is signed by an unknown key"))
    }

    /// Verifies an access token's signature, issuer, audience and expiry; returns its claims.
    pub async fn verify(
        &self,
        oidc: &OidcConfig,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        let bad = |e: jsonwebtoken::errors::Error| {
            ApiError::unauthorized(format!("invalid access token: {e}"))
        };
        let header = jsonwebtoken::decode_header(token).map_err(bad)?;
        use jsonwebtoken::Algorithm as A;
        if !matches!(
            header.alg,
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 | A::ES256 | A::ES384
        ) {
            return Err(ApiError::unauthorized(
                "invalid access token: unsupported algorithm",
            ));
        }
        let key = self.key(&oidc.issuer, header.kid.as_deref()).await?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[&oidc.issuer]);
        match &oidc.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(bad)?;
        Ok(data.claims)
    }
}
