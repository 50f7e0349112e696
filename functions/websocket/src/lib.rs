//! The function behind the WebSocket API (API Gateway in AWS, the local runtime's gateway
//! on 127.0.0.1 locally, which calls this same [`Socket::handle`] with the same events):
//!
//! - `$connect`: authorises the caller with a personal token (`Authorization: Bearer
//!   fmn_…` or `?token=fmn_…`) or the web app's session cookie (`fmn_session`, accepted
//!   only from the web app's own origin, so another site's page cannot open a socket in
//!   its visitor's name), then records the connection under its user in the connections
//!   table; anything else is refused with 401 (API Gateway then refuses the upgrade).
//! - `$disconnect`: forgets the connection.
//! - `ping` (`{"action":"ping"}`): answers `{"type":"pong"}` (the route's response).
//! - `$default`: any other frame, ignored.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::HeaderMap;
use aws_lambda_events::http::header::{AUTHORIZATION, COOKIE, ORIGIN};
use fmn_inbox::Frame;
use fmn_inbox::store::ConnectionStore;
use fmn_lambda::{ConfigError, Vars};
use fmn_store::{SessionStore, TokenStore};
use sha2::{Digest, Sha256};

/// The web app's session cookie (as `fmn-api` names it).
pub const SESSION_COOKIE: &str = "fmn_session";
/// The prefix of personal tokens (as `fmn-api` mints them).
pub const TOKEN_PREFIX: &str = "fmn_";

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_API_TABLE`: personal tokens and web sessions.
    pub api_table: String,
    /// `FMN_CONNECTIONS_TABLE`: the open connections.
    pub connections_table: String,
    /// `FMN_API_BASE_URL` (optional): the web app; its origin is the only one whose
    /// session cookie opens a socket.
    pub api_base_url: Option<String>,
}

impl Config {
    /// Reads the configuration from `vars`.
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        Ok(Config {
            api_table: vars.required("FMN_API_TABLE")?,
            connections_table: vars.required("FMN_CONNECTIONS_TABLE")?,
            api_base_url: vars.get("FMN_API_BASE_URL"),
        })
    }
}

/// The WebSocket API's handler.
#[derive(Debug, Clone)]
pub struct Socket {
    tokens: TokenStore,
    sessions: SessionStore,
    connections: ConnectionStore,
    web_origin: Option<String>,
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (!host.is_empty()).then(|| format!("{}://{}", scheme.to_ascii_lowercase(), host))
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn response(status: i64, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = body.map(Body::Text);
    r
}

/// The value of cookie `name` in `headers`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A token from `?token=` (percent-decoded).
fn query_token(req: &ApiGatewayWebsocketProxyRequest) -> Option<String> {
    let raw = req
        .query_string_parameters
        .first(fmn_inbox::TOKEN_QUERY_PARAMETER)?;
    Some(
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

impl Socket {
    /// The handler over the API table's tokens and sessions and the connections table,
    /// accepting session cookies from `web_origin` only.
    pub fn new(
        tokens: TokenStore,
        sessions: SessionStore,
        connections: ConnectionStore,
        web_origin: Option<String>,
    ) -> Self {
        Socket {
            tokens,
            sessions,
            connections,
            web_origin,
        }
    }

    /// The connections table.
    pub fn connections(&self) -> &ConnectionStore {
        &self.connections
    }

    /// Handles one WebSocket event.
    pub async fn handle(&self, req: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
        let route = req.request_context.route_key.clone().unwrap_or_default();
        let Some(id) = req.request_context.connection_id.clone() else {
            return response(400, Some("no connection id".into()));
        };
        match route.as_str() {
            "$connect" => match self.authorise(&req).await {
                Ok(Some(user)) => match self.connections.add(&id, &user).await {
                    Ok(()) => {
                        tracing::info!(user, connection = %id, "connected");
                        response(200, None)
                    }
                    Err(e) => {
                        tracing::error!(user, error = %e, "connection not recorded");
                        response(500, Some("internal error".into()))
                    }
                },
                Ok(None) => response(401, Some("unauthorized".into())),
                Err(e) => {
                    tracing::error!(error = %e, "authorisation failed");
                    response(500, Some("internal error".into()))
                }
            },
            "$disconnect" => {
                match self.connections.disconnect(&id).await {
                    Ok(user) => tracing::info!(?user, connection = %id, "disconnected"),
                    // The row expires with its TTL; a post to it meanwhile answers 410.
                    Err(e) => tracing::warn!(connection = %id, error = %e, "not forgotten"),
                }
                response(200, None)
            }
            fmn_inbox::PING_ROUTE => response(200, Some(Frame::Pong.to_text())),
            _ => response(200, None),
        }
    }

    /// The user a `$connect` request authenticates as, if any.
    pub async fn authorise(
        &self,
        req: &ApiGatewayWebsocketProxyRequest,
    ) -> Result<Option<String>, fmn_store::StoreError> {
        let bearer = req
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_owned());
        if let Some(token) = bearer.or_else(|| query_token(req)) {
            if !token.starts_with(TOKEN_PREFIX) || token.len() > 8192 {
                return Ok(None);
            }
            return Ok(self
                .tokens
                .lookup(&sha256_hex(&token))
                .await?
                .map(|t| t.user));
        }
        let Some(secret) = cookie(&req.headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let origin = req.headers.get(ORIGIN).and_then(|v| v.to_str().ok());
        let allowed = match (origin, &self.web_origin) {
            // Not a browser (browsers always send Origin on a WebSocket handshake).
            (None, _) => true,
            (Some(o), Some(web)) => o.eq_ignore_ascii_case(web),
            (Some(_), None) => false,
        };
        if !allowed {
            tracing::warn!(?origin, "session cookie from another origin refused");
            return Ok(None);
        }
        Ok(self
            .sessions
            .lookup(&sha256_hex(secret))
            .await?
            .map(|s| s.user))
    }
}

/// Builds the deployed handler.
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> Socket {
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    Socket::new(
        TokenStore::new(dynamo.clone(), &config.api_table),
        SessionStore::new(dynamo.clone(), &config.api_table),
        ConnectionStore::new(dynamo, &config.connections_table),
        config.api_base_url.as_deref().and_then(origin_of),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_cookies() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("HTTPS://fmn.example.org/app?x").as_deref(),
            Some("https://fmn.example.org")
        );
        assert_eq!(origin_of("nonsense"), None);
        let mut h = HeaderMap::new();
        h.append(COOKIE, "a=1; fmn_session=abc".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
