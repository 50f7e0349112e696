//! Request extractors whose failures are [`ApiError`]s naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use fmn_rules::ContextKind;
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate::valid_id;

/// A JSON body: unknown fields refused, errors name the field
/// (`{"error": "bad_request", "field": "rules[0].kind", …}`).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            ApiError::new(status, crate::error::code_for(status), e.body_text())
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, naming the field where it fails.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let err = ApiError::bad_request(format!("invalid JSON body: {inner}"));
        if path == "." { err } else { err.at(path) }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

/// Path parameters, each checked: `user` and filter ids are identifiers, `context` a
/// context name, `n` a rule index.
#[derive(Debug, Default, Clone)]
pub struct Params {
    raw: Vec<(String, String)>,
}

impl FromRequestParts<AppState> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let raw = axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|p| p.0)
            .map_err(|_| ApiError::bad_request("path parameters are not valid UTF-8"))?;
        Ok(Params { raw })
    }
}

impl Params {
    fn has(&self, name: &str) -> bool {
        self.raw.iter().any(|(k, _)| k == name)
    }

    fn get(&self, name: &str) -> &str {
        self.raw
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// The `user` parameter.
    pub fn user(&self) -> Result<String, ApiError> {
        let u = self.get("user");
        if valid_id(u) {
            Ok(u.to_owned())
        } else {
            Err(ApiError::bad_request("not a user name (1-64 of A-Z a-z 0-9 . _ -)").at("user"))
        }
    }

    /// The `context` parameter.
    pub fn context(&self) -> Result<ContextKind, ApiError> {
        context_kind(self.get("context")).ok_or_else(|| {
            ApiError::not_found(
                "no such context: expected email, irc, matrix, webhook, feed, push or inbox",
            )
            .at("context")
        })
    }

    /// An identifier parameter (`filter`, `id`).
    pub fn id(&self, name: &str) -> Result<String, ApiError> {
        let v = self.get(name);
        if valid_id(v) {
            Ok(v.to_owned())
        } else {
            Err(ApiError::not_found(format!("no such {name}")).at(name))
        }
    }

    /// A raw parameter (addresses, tokens), bounded.
    pub fn raw(&self, name: &str) -> Result<String, ApiError> {
        let v = self.get(name);
        if v.is_empty() || v.len() > 2048 {
            Err(ApiError::not_found(format!("no such {name}")).at(name))
        } else {
            Ok(v.to_owned())
        }
    }

    /// An index parameter.
    pub fn index(&self, name: &str) -> Result<usize, ApiError> {
        self.get(name)
            .parse()
            .map_err(|_| ApiError::not_found(format!("no such {name}")).at(name))
    }
}

/// A request acting on the data of the user its path names (`{user}`): the caller is
/// authenticated, the path's user (and `{context}`, where the path has one) are valid, and the
/// caller is that user or an admin. Checked in that order (401, 400, 404, 403), before the
/// body is read; the handler reads any other path parameter from [`UserAccess::params`].
#[derive(Debug, Clone)]
pub struct UserAccess {
    /// The user whose data the request reads or changes.
    pub user: String,
    params: Params,
    token_expires_at: Option<i64>,
}

impl FromRequestParts<AppState> for UserAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let params = Params::from_request_parts(parts, state).await?;
        let user = params.user()?;
        if params.has("context") {
            params.context()?;
        }
        caller.check(&user)?;
        Ok(UserAccess {
            user,
            params,
            token_expires_at: caller.token_expires_at,
        })
    }
}

impl UserAccess {
    /// The `{context}` path parameter (checked on extraction where the path has one).
    pub fn context(&self) -> Result<ContextKind, ApiError> {
        self.params.context()
    }

    /// The other path parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The expiry of the personal token the request came with, if it has one (a token may
    /// not mint tokens that outlive it).
    pub fn token_expires_at(&self) -> Option<i64> {
        self.token_expires_at
    }
}

/// A context name.
pub fn context_kind(s: &str) -> Option<ContextKind> {
    crate::config::CONTEXTS
        .into_iter()
        .find(|k| k.as_str() == s)
}
