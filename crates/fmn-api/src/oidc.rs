//! OpenID Connect access tokens: the issuer's signing keys (JWKS), cached, and verifying a
//! token against them. Knows nothing of the API's state or its callers.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::RwLock;

use crate::config::OidcConfig;
use crate::error::ApiError;

/// The issuer's signing keys, fetched on first use and refreshed when a token names an
/// unknown key (at most once a minute) or after an hour. A failed refresh keeps the keys
/// it has: a token signed by a cached key still verifies while the issuer is unreachable.
#[derive(Debug)]
pub struct Jwks {
    cache: RwLock<Option<(Instant, JwkSet)>>,
    http: reqwest::Client,
    max_age: Duration,
    min_refresh: Duration,
}

const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(60);

impl Default for Jwks {
    fn default() -> Self {
        Jwks::with_ages(JWKS_MAX_AGE, JWKS_MIN_REFRESH)
    }
}

impl Jwks {
    /// Keys refreshed after `max_age`, and not more often than every `min_refresh` for an
    /// unknown key.
    pub fn with_ages(max_age: Duration, min_refresh: Duration) -> Self {
        Jwks {
            cache: RwLock::default(),
            http: reqwest::Client::default(),
            max_age,
            min_refresh,
        }
    }

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
        let (stale, cached) = {
            let cache = self.cache.read().await;
            match &*cache {
                Some((at, set)) => {
                    let cached = find(set);
                    if let Some(k) = cached.clone().filter(|_| at.elapsed() < self.max_age) {
                        return Ok(k);
                    }
                    (at.elapsed() >= self.min_refresh, cached)
                }
                None => (true, None),
            }
        };
        if stale {
            match self.fetch(issuer).await {
                Ok(set) => {
                    let mut cache = self.cache.write().await;
                    *cache = Some((Instant::now(), set));
                }
                // The issuer is down: a key it published is still its key.
                Err(e) => match cached {
                    Some(k) => {
                        tracing::warn!(issuer, "JWKS refresh failed; using the cached keys");
                        return Ok(k);
                    }
                    None => return Err(e),
                },
            }
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
        // A token not valid yet (`nbf` in the future, beyond the default 60 s leeway) is refused.
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(bad)?;
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../../tests/fixtures/api/issuer-key.pem");
    const JWKS: &str = include_str!("../../../tests/fixtures/api/jwks.json");

    /// A local issuer on 127.0.0.1 serving discovery and the fixture JWKS until aborted.
    async fn issuer() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let discovery = serde_json::json!({"issuer": base, "jwks_uri": format!("{base}/jwks")});
        let jwks: serde_json::Value = serde_json::from_str(JWKS).unwrap();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || async move { axum::Json(jwks) }),
            );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (base, server)
    }

    fn token(issuer: &str, extra: serde_json::Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims = serde_json::json!({"iss": issuer, "aud": "fmn", "exp": now + 600,
            "preferred_username": "alice"});
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            c.extend(e.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("test-key-1".into());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(KEY.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn config(issuer: &str) -> OidcConfig {
        OidcConfig {
            issuer: issuer.to_owned(),
            audience: Some("fmn".into()),
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
        }
    }

    #[tokio::test]
    async fn cached_keys_outlive_an_issuer_outage_and_nbf_is_checked() {
        let (base, server) = issuer().await;
        let oidc = config(&base);
        // Every use counts as stale: each verification tries to refresh.
        let jwks = Jwks::with_ages(Duration::ZERO, Duration::ZERO);
        jwks.verify(&oidc, &token(&base, serde_json::json!({})))
            .await
            .expect("verified while the issuer is up");
        server.abort();
        let _ = server.await;
        jwks.verify(&oidc, &token(&base, serde_json::json!({})))
            .await
            .expect("a cached key still verifies while the issuer is down");

        let later = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let e = jwks
            .verify(&oidc, &token(&base, serde_json::json!({"nbf": later})))
            .await
            .expect_err("not valid before an hour from now");
        assert_eq!(e.status, axum::http::StatusCode::UNAUTHORIZED);

        // Without any cached key, an unreachable issuer is a 503, not a 401.
        let cold = Jwks::default();
        let e = cold
            .verify(&oidc, &token(&base, serde_json::json!({})))
            .await
            .expect_err("nothing cached, issuer down");
        assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    }
}
