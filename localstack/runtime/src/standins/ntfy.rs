//! A loopback stand-in for an ntfy server, for the local run: it answers `GET /v1/health`
//! as ntfy does (so the push sender sends it ntfy's headers), takes a POST to any topic as
//! ntfy publishes one (200 with the message as JSON), and hands each push on to be printed.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One push the stand-in got.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The topic (the URL's path).
    pub topic: String,
    /// The `Title` header (RFC 2047 words left as they came).
    pub title: String,
    /// The `Priority` header.
    pub priority: String,
    /// The `Click` header.
    pub click: String,
    /// The `Tags` header.
    pub tags: String,
    /// The body.
    pub message: String,
}

/// Listens on 127.0.0.1:`port` until `stop`; returns the server's base URL (topics are
/// `<base>/<topic>`) and the pushes as they arrive.
pub async fn serve(
    port: u16,
    stop: CancellationToken,
) -> anyhow::Result<(String, mpsc::Receiver<Pushed>)> {
    let (tx, rx) = mpsc::channel(256);
    let app = axum::Router::new()
        .route(
            "/v1/health",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"healthy": true})) }),
        )
        .route(
            "/{topic}",
            axum::routing::post(
                move |Path(topic): Path<String>, headers: HeaderMap, body: String| {
                    let tx = tx.clone();
                    async move {
                        let header = |name: &str| {
                            headers
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let pushed = Pushed {
                            topic: topic.clone(),
                            title: header("Title"),
                            priority: header("Priority"),
                            click: header("Click"),
                            tags: header("Tags"),
                            message: body.clone(),
                        };
                        // A full channel (nobody reading) drops the printout, not the push.
                        let _ = tx.try_send(pushed);
                        let time = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        (
                            StatusCode::OK,
                            axum::Json(serde_json::json!({"id": format!("local{time}"),
                                "time": time, "event": "message", "topic": topic,
                                "message": body})),
                        )
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "ntfy stand-in stopped");
        }
    });
    Ok((url, rx))
}
