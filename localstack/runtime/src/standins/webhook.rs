//! A loopback webhook receiver for the local run: it checks each request's signature
//! against the address's secret, answers 204, and hands the payload on.

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Whether the signature and timestamp headers verified against the secret.
    pub verified: bool,
    /// The JSON payload (null if the body was not JSON).
    pub payload: Value,
}

/// Listens on 127.0.0.1:`port` at `/hook` until `stop`; returns the hook's URL and the
/// requests as they arrive (a request with a bad signature is answered 401).
pub async fn serve(
    port: u16,
    secret: String,
    stop: CancellationToken,
) -> anyhow::Result<(String, mpsc::Receiver<Received>)> {
    let (tx, rx) = mpsc::channel(256);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (tx, secret) = (tx.clone(), secret.clone());
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let verified = fmn_webhook::verify(
                    secret.as_bytes(),
                    &header(fmn_webhook::TIMESTAMP_HEADER),
                    &body,
                    &header(fmn_webhook::SIGNATURE_HEADER),
                );
                let payload = serde_json::from_slice(&body).unwrap_or(Value::Null);
                // A full channel (nobody reading) drops the printout, not the request.
                let _ = tx.try_send(Received { verified, payload });
                if verified {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "webhook receiver stopped");
        }
    });
    Ok((url, rx))
}
