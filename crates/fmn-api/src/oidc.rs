//! OpenID Connect access tokens: the issuer's signing keys (JWKS), cached, and verifying a
//! token against them. Knows nothing of the API's state or its callers.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::RwLock;

use crate::config::OidcConfig;
use crate::error::ApiError;

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
            .get_json(&format!("{issuer}/.well-known/openid-configuration"))
            .await
            .map_err(unavailable)?;
        self.get_json(&discovery.jwks_uri)
            .await
            .map_err(unavailable)
    }

    /// A JSON document from the issuer.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> reqwest::Result<T> {
        self.http
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
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
