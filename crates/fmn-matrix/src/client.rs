//! The client-server API calls the sender needs, over `reqwest`, with rate-limit retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::MatrixConfig;

/// Why a Matrix call failed.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// The homeserver could not be reached, answered 5xx, or kept rate-limiting us past the
    /// retry budget. Worth retrying later.
    #[error("matrix homeserver unavailable: {0}")]
    Temporary(String),
    /// The homeserver refused the request (bad token, unknown user, forbidden). Retrying the
    /// same request will not help.
    #[error("matrix homeserver refused: {status} {errcode}: {error}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The Matrix `errcode` (e.g. `M_FORBIDDEN`).
        errcode: String,
        /// The homeserver's explanation.
        error: String,
    },
    /// The address is not a Matrix user id.
    #[error("not a Matrix user id: {0:?}")]
    InvalidUserId(String),
}

impl MatrixError {
    /// Whether retrying can never help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, MatrixError::Temporary(_))
    }
}

/// A Matrix client-server API client for one account (the bot's access token).
#[derive(Debug, Clone)]
pub struct MatrixClient {
    http: reqwest::Client,
    config: MatrixConfig,
    rate_limited: Arc<AtomicU64>,
}

fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string()
}

impl MatrixClient {
    /// A client for `config`.
    pub fn new(config: MatrixConfig) -> Result<Self, MatrixError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| MatrixError::Temporary(e.to_string()))?;
        Ok(MatrixClient {
            http,
            config,
            rate_limited: Arc::default(),
        })
    }

    /// How many times a request was retried after a rate-limited answer.
    pub fn rate_limited_retries(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Calls `method path` with `body`, retrying `429 M_LIMIT_EXCEEDED` after the
    /// homeserver's `retry_after_ms` (or `Retry-After`), at most
    /// [`MatrixConfig::max_retries`] times and never waiting longer than
    /// [`MatrixConfig::max_retry_wait`] at once.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, MatrixError> {
        let url = format!("{}{path}", self.config.homeserver.trim_end_matches('/'));
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.config.access_token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| MatrixError::Temporary(format!("{method} {path}: {e}")))?;
            let status = response.status();
            let header_wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| s * 1000);
            let text = response
                .text()
                .await
                .map_err(|e| MatrixError::Temporary(format!("{method} {path}: {e}")))?;
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(value);
            }
            let errcode = value["errcode"].as_str().unwrap_or_default().to_owned();
            let error = value["error"].as_str().unwrap_or(&text).to_owned();
            if status == StatusCode::TOO_MANY_REQUESTS || errcode == "M_LIMIT_EXCEEDED" {
                attempt += 1;
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
                if attempt > self.config.max_retries {
                    return Err(MatrixError::Temporary(format!(
                        "{method} {path}: still rate-limited after {} retries",
                        self.config.max_retries
                    )));
                }
                let wait = value["retry_after_ms"]
                    .as_u64()
                    .or(header_wait)
                    .map(Duration::from_millis)
                    .unwrap_or(Duration::from_secs(1))
                    .min(self.config.max_retry_wait);
                tracing::info!(
                    path,
                    wait_ms = wait.as_millis() as u64,
                    attempt,
                    "matrix: rate-limited; waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() {
                return Err(MatrixError::Temporary(format!(
                    "{method} {path}: {status} {errcode} {error}"
                )));
            }
            return Err(MatrixError::Refused {
                status: status.as_u16(),
                errcode,
                error,
            });
        }
    }

    /// The bot's own user id (`GET /account/whoami`).
    pub async fn whoami(&self) -> Result<String, MatrixError> {
        let v = self
            .call(Method::GET, "/_matrix/client/v3/account/whoami", None)
            .await?;
        v["user_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| MatrixError::Temporary("whoami: no user_id".into()))
    }

    /// Creates a private room flagged as direct, inviting `user_id`; returns its id.
    pub async fn create_direct_room(&self, user_id: &str) -> Result<String, MatrixError> {
        let body = json!({
            "preset": "trusted_private_chat",
            "is_direct": true,
            "invite": [user_id],
            "name": "fmn notifications",
            "topic": "Notifications from fmn, as configured in your preferences",
        });
        let v = self
            .call(Method::POST, "/_matrix/client/v3/createRoom", Some(&body))
            .await?;
        v["room_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| MatrixError::Temporary("createRoom: no room_id".into()))
    }

    /// The membership of `user_id` in `room_id` (`join`, `invite`, `leave`, `ban`), if any.
    pub async fn membership(
        &self,
        room_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, MatrixError> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
            encode(room_id),
            encode(user_id)
        );
        match self.call(Method::GET, &path, None).await {
            Ok(v) => Ok(v["membership"].as_str().map(str::to_owned)),
            Err(MatrixError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `content` as an `m.room.message` under transaction id `txn_id` (the homeserver
    /// ignores a repeat of the same transaction); returns the event id.
    pub async fn send_message(
        &self,
        room_id: &str,
        txn_id: &str,
        content: &Value,
    ) -> Result<String, MatrixError> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            encode(room_id),
            encode(txn_id)
        );
        let v = self.call(Method::PUT, &path, Some(content)).await?;
        Ok(v["event_id"].as_str().unwrap_or_default().to_owned())
    }
}
