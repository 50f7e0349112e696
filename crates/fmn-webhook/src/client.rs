//! POSTing a signed payload, with bounded retries.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::guard::{GuardedResolver, allowed_ip, check_target_with};
use crate::{Payload, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// Delivering to a webhook failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The target is not allowed (private address, bad URL): retrying cannot help.
    #[error("refused target: {0}")]
    Refused(String),
    /// The receiver answered with this status on the last attempt.
    #[error("receiver answered {0}")]
    Status(u16),
    /// No answer (connection, TLS, timeout).
    #[error("transport: {0}")]
    Transport(String),
}

impl PostError {
    /// Retrying (later) cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, PostError::Refused(_))
    }
}

/// How often and how patiently one delivery is tried within one invocation (SQS redelivery
/// retries again later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least one).
    pub attempts: u32,
    /// Wait before the second attempt; doubled after each.
    pub first_backoff: Duration,
    /// Longest wait between attempts (also caps a receiver's `Retry-After`).
    pub max_backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// POSTs signed payloads to users' webhooks.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    allow_private: bool,
    /// Ports allowed besides 80 and 443.
    extra_ports: Vec<u16>,
    retry: RetryPolicy,
}

impl WebhookClient {
    /// A client; `allow_private` lets it reach private, loopback and link-local addresses.
    pub fn new(allow_private: bool, retry: RetryPolicy) -> Result<Self, PostError> {
        let http = guarded_client(
            allow_private,
            retry.timeout,
            concat!("fmn-webhook/", env!("CARGO_PKG_VERSION")),
        )?;
        Ok(WebhookClient {
            http,
            allow_private,
            extra_ports: Vec::new(),
            retry,
        })
    }

    /// Also allows targets on `ports` (besides 80 and 443).
    pub fn with_ports(mut self, ports: Vec<u16>) -> Self {
        self.extra_ports = ports;
        self
    }

    /// POSTs `payload` to `url`, signed with `secret`, retrying server errors, rate limits
    /// and transport failures with backoff up to the policy's attempts.
    pub async fn post(&self, url: &str, secret: &[u8], payload: &Payload) -> Result<(), PostError> {
        let target = check_resolved_target(url, self.allow_private, &self.extra_ports).await?;
        let body = serde_json::to_vec(payload).map_err(|e| PostError::Transport(e.to_string()))?;
        let mut backoff = self.retry.first_backoff;
        let mut last = PostError::Transport("not attempted".into());
        for attempt in 1..=self.retry.attempts.max(1) {
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let sent = self
                .http
                .post(target.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, sign(secret, timestamp, &body))
                .body(body.clone())
                .send()
                .await;
            let mut wait = backoff;
            match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    last = PostError::Status(status.as_u16());
                    let retryable = status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                    if !retryable {
                        return Err(last);
                    }
                    if let Some(after) = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                    {
                        wait = Duration::from_secs(after);
                    }
                }
                Err(e) => {
                    last = transport_error(url, &e);
                    if last.is_permanent() {
                        return Err(last);
                    }
                }
            }
            tracing::debug!(url, attempt, error = %last, "webhook attempt failed");
            if attempt < self.retry.attempts {
                tokio::time::sleep(wait.min(self.retry.max_backoff)).await;
                backoff = (backoff * 2).min(self.retry.max_backoff);
            }
        }
        Err(last)
    }
}

/// An HTTP client whose resolver is the target guard (every address a name resolves to must
/// be allowed, checked at connect time), with no proxy (it would resolve past the guard) and
/// no redirects (they could point anywhere). Shared by every sender that POSTs to a URL a
/// user gave (webhooks, UnifiedPush).
pub fn guarded_client(
    allow_private: bool,
    timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client, PostError> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .user_agent(user_agent)
        .build()
        .map_err(|e| PostError::Transport(fmn_queue::error_chain(&e)))
}

/// [`check_target_with`], and when private targets are refused, a clear refusal up front
/// if the host resolves to one (the [`guarded_client`]'s resolver checks again when
/// connecting).
pub async fn check_resolved_target(
    url: &str,
    allow_private: bool,
    extra_ports: &[u16],
) -> Result<url::Url, PostError> {
    let target = check_target_with(url, allow_private, extra_ports)?;
    if !allow_private && let Some(host) = target.host_str() {
        let port = target.port_or_known_default().unwrap_or(443);
        if let Ok(addrs) = tokio::net::lookup_host((host, port)).await
            && let Some(bad) = addrs.into_iter().find(|a| !allowed_ip(a.ip()))
        {
            return Err(PostError::Refused(format!(
                "{url}: resolves to {}, a private, loopback or link-local address",
                bad.ip()
            )));
        }
    }
    Ok(target)
}

/// A failed request as a [`PostError`]: a refusal by the guard's resolver is permanent,
/// anything else a transport error.
pub fn transport_error(url: &str, e: &reqwest::Error) -> PostError {
    let text = fmn_queue::error_chain(e);
    if text.contains("private, loopback or link-local") {
        PostError::Refused(format!("{url}: {text}"))
    } else {
        PostError::Transport(text)
    }
}
