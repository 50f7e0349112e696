//! The health and metrics endpoint: `/healthz` (JSON) and `/metrics` (Prometheus text), meant
//! to listen on loopback only (`--metrics-addr`, default `127.0.0.1:9108`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// The endpoint's routes over shared metrics.
pub fn app(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .with_state(metrics)
}

/// `200` with the snapshot while every configured source is connected, `503` otherwise (the
/// body says which is down either way).
async fn healthz(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    let snapshot = metrics.snapshot();
    let all_up = snapshot["sources"].as_object().is_some_and(|sources| {
        sources
            .values()
            .all(|s| s["connected"].as_u64() >= s["configured"].as_u64())
    });
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = snapshot;
    body["status"] = if all_up { "ok" } else { "degraded" }.into();
    (status, axum::Json(body))
}

async fn prometheus(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.prometheus(),
    )
}

/// Serves [`app`] on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app(metrics))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Binds `addr` (loopback, normally) for [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "health: listening (/healthz, /metrics)");
    Ok(listener)
}
