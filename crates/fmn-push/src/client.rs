//! One POST to a push endpoint, through the webhook sender's target guard, its answer
//! classified by the UnifiedPush server rules.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fmn_webhook::PostError;

use crate::{Ntfy, Push};

/// Delivering a push failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The target is not allowed (private address, bad URL): retrying cannot help.
    #[error("refused target: {0}")]
    Refused(String),
    /// 404 or 410: the endpoint is gone (the app was uninstalled, the topic deleted).
    #[error("the push server answered {0}: the endpoint is gone")]
    Gone(u16),
    /// 429: too many pushes; try again later (`Retry-After` seconds, if given).
    #[error("the push server answered 429 (too many requests)")]
    Throttled(Option<u64>),
    /// Another 4xx: the server will not take this push (e.g. 401 on a protected topic).
    #[error("the push server refused it with {0}")]
    Rejected(u16),
    /// 5xx or 408: the server is in trouble; try again later.
    #[error("the push server answered {0}")]
    Status(u16),
    /// No answer (connection, TLS, timeout).
    #[error("transport: {0}")]
    Transport(String),
}

impl From<PostError> for PushError {
    fn from(e: PostError) -> Self {
        match e {
            PostError::Refused(r) => PushError::Refused(r),
            PostError::Status(s) => PushError::Status(s),
            PostError::Transport(t) => PushError::Transport(t),
        }
    }
}

/// How long what an origin answered to the ntfy question is remembered.
const PROBE_TTL: Duration = Duration::from_secs(3600);

/// POSTs pushes, one attempt each (SQS redelivers what failed for now).
#[derive(Debug)]
pub struct PushClient {
    http: reqwest::Client,
    allow_private: bool,
    extra_ports: Vec<u16>,
    /// origin → (is ntfy, when asked).
    ntfy: Mutex<HashMap<String, (bool, Instant)>>,
}

impl PushClient {
    /// A client; `allow_private` lets it reach private, loopback and link-local addresses
    /// (tests and the local run only), `extra_ports` ports besides 80 and 443.
    pub fn new(allow_private: bool, extra_ports: Vec<u16>) -> Result<Self, PushError> {
        let http = fmn_webhook::guarded_client(
            allow_private,
            Duration::from_secs(10),
            concat!("fmn-push/", env!("CARGO_PKG_VERSION")),
        )?;
        Ok(PushClient {
            http,
            allow_private,
            extra_ports,
            ntfy: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `url` is a topic on an ntfy server (not a UnifiedPush registration through
    /// one, `up=1`): asks its origin's `GET /v1/health` once an hour (ntfy answers
    /// `{"healthy": …}`); no answer means no.
    pub async fn is_ntfy(&self, url: &url::Url) -> bool {
        if url
            .query_pairs()
            .any(|(k, v)| matches!(&*k, "up" | "unifiedpush") && v == "1")
        {
            return false;
        }
        let origin = url.origin().ascii_serialization();
        if let Ok(cache) = self.ntfy.lock()
            && let Some((known, at)) = cache.get(&origin)
            && at.elapsed() < PROBE_TTL
        {
            return *known;
        }
        let answer = self
            .http
            .get(format!("{origin}/v1/health"))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        let known = match answer {
            Ok(r) if r.status().is_success() => r
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|v| v.get("healthy").is_some_and(serde_json::Value::is_boolean)),
            Ok(_) => false,
            // Not remembered: the POST will tell whether the server is there at all.
            Err(_) => return false,
        };
        if let Ok(mut cache) = self.ntfy.lock() {
            cache.insert(origin, (known, Instant::now()));
        }
        known
    }

    /// POSTs `push` to `url`: the ntfy form to an ntfy topic, the JSON body otherwise.
    pub async fn post(&self, url: &str, push: &Push) -> Result<(), PushError> {
        let target =
            fmn_webhook::check_resolved_target(url, self.allow_private, &self.extra_ports).await?;
        let request = if self.is_ntfy(&target).await {
            ntfy_request(self.http.post(target), &push.ntfy)
        } else {
            self.http
                .post(target)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                // RFC 8030's TTL, which WebPush-style distributors require: a day.
                .header("TTL", "86400")
                .body(push.json.clone())
        };
        let response = request
            .send()
            .await
            .map_err(|e| PushError::from(fmn_webhook::transport_error(url, &e)))?;
        let status = response.status();
        match status.as_u16() {
            200..=299 => Ok(()),
            404 | 410 => Err(PushError::Gone(status.as_u16())),
            429 => Err(PushError::Throttled(
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
            )),
            s if status.is_server_error() || s == 408 => Err(PushError::Status(s)),
            s => Err(PushError::Rejected(s)),
        }
    }
}

/// A header value as ntfy reads it: ASCII as is, anything else as an RFC 2047 encoded word.
fn encoded(value: &str) -> String {
    if value.is_ascii() {
        value.to_owned()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

fn ntfy_request(request: reqwest::RequestBuilder, n: &Ntfy) -> reqwest::RequestBuilder {
    let mut request = request
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("Title", encoded(&n.title))
        .header("Priority", n.priority.to_string())
        .body(n.message.clone());
    if !n.tags.is_empty() {
        request = request.header("Tags", encoded(&n.tags.join(",")));
    }
    if let Some(click) = &n.click {
        request = request.header("Click", encoded(click));
    }
    request
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex as StdMutex};

    use axum::http::{HeaderMap, StatusCode};

    use super::*;

    /// A loopback server: `/v1/health` as ntfy when `ntfy`, and POSTs answered from
    /// `answers` (then 201), each request's headers and body kept.
    async fn server(
        ntfy: bool,
        answers: Vec<u16>,
    ) -> (String, Arc<StdMutex<Vec<(HeaderMap, String)>>>) {
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let answers = Arc::new(StdMutex::new(answers));
        let kept = seen.clone();
        let app = axum::Router::new()
            .route(
                "/v1/health",
                axum::routing::get(move || async move {
                    if ntfy {
                        (StatusCode::OK, r#"{"healthy":true}"#)
                    } else {
                        (StatusCode::NOT_FOUND, "")
                    }
                }),
            )
            .route(
                "/{topic}",
                axum::routing::post(move |headers: HeaderMap, body: String| {
                    let (kept, answers) = (kept.clone(), answers.clone());
                    async move {
                        kept.lock().unwrap().push((headers, body));
                        let next = {
                            let mut a = answers.lock().unwrap();
                            if a.is_empty() { 201 } else { a.remove(0) }
                        };
                        StatusCode::from_u16(next).unwrap()
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, seen)
    }

    fn push() -> Push {
        let job: fmn_queue::NotificationJob = serde_json::from_str(include_str!(
            "../../fmn-queue/tests/fixtures/email-job.json"
        ))
        .unwrap();
        Push::notification(&job)
    }

    #[tokio::test]
    async fn answers_are_classified_by_the_unifiedpush_rules() {
        let (base, seen) = server(false, vec![201, 200, 429, 404, 410, 503, 401]).await;
        let client = PushClient::new(true, Vec::new()).unwrap();
        let url = format!("{base}/up123");
        let mut got = Vec::new();
        for _ in 0..7 {
            got.push(client.post(&url, &push()).await);
        }
        assert_eq!(
            got,
            [
                Ok(()),
                Ok(()),
                Err(PushError::Throttled(None)),
                Err(PushError::Gone(404)),
                Err(PushError::Gone(410)),
                Err(PushError::Status(503)),
                Err(PushError::Rejected(401)),
            ]
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0["content-type"], "application/json");
        assert!(seen[0].0.get("Title").is_none());
        assert!(seen[0].1.starts_with(r#"{"kind":"notification""#));
    }

    #[tokio::test]
    async fn an_ntfy_topic_gets_ntfy_headers() {
        let (base, seen) = server(true, Vec::new()).await;
        let client = PushClient::new(true, Vec::new()).unwrap();
        let mut p = push();
        p.ntfy.title = "Grüße".into();
        client.post(&format!("{base}/alice"), &p).await.unwrap();
        // A UnifiedPush registration through ntfy gets the JSON form.
        client
            .post(&format!("{base}/upAbc?up=1"), &p)
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let (h, body) = &seen[0];
        assert_eq!(h["Title"], "=?UTF-8?B?R3LDvMOfZQ==?=");
        assert_eq!(h["Priority"], "3");
        assert_eq!(h["Tags"], "buildsys");
        assert_eq!(
            h["Click"],
            "https://koji.fedoraproject.org/koji/buildinfo?buildID=7"
        );
        assert!(body.starts_with("bob's kernel-6.1-1.fc40 completed"));
        assert!(seen[1].0.get("Title").is_none());
        assert!(seen[1].1.starts_with('{'));
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let client = PushClient::new(false, Vec::new()).unwrap();
        let e = client
            .post("http://127.0.0.1:9/topic", &push())
            .await
            .unwrap_err();
        assert!(matches!(e, PushError::Refused(_)), "{e:?}");
    }
}
