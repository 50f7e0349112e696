//! A small HTTP server on 127.0.0.1 for files the stack fetches from the outside world,
//! such as dist-git's maintainer data: the local run and the tests never leave loopback.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use tokio_util::sync::CancellationToken;

/// The path dist-git publishes its maintainer data at.
pub const OWNERS_PATH: &str = "extras/pagure_owner_alias.json";

type Files = Arc<RwLock<HashMap<String, Arc<Vec<u8>>>>>;

/// A running file server; its files can be replaced while it runs.
#[derive(Debug, Clone)]
pub struct FileServer {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    files: Files,
}

impl FileServer {
    /// Starts serving on a free loopback port until `stop`.
    pub async fn start(stop: CancellationToken) -> std::io::Result<FileServer> {
        let files: Files = Arc::default();
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::get(serve))
            .with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "file server stopped");
            }
        });
        Ok(FileServer { base_url, files })
    }

    /// Serves `body` at `path` (replacing what was there).
    pub fn put(&self, path: &str, body: impl Into<Vec<u8>>) {
        if let Ok(mut files) = self.files.write() {
            files.insert(
                path.trim_start_matches('/').to_owned(),
                Arc::new(body.into()),
            );
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path.trim_start_matches('/'))
    }
}

async fn serve(State(files): State<Files>, Path(path): Path<String>) -> impl IntoResponse {
    let body = files.read().ok().and_then(|f| f.get(&path).cloned());
    match body {
        Some(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.as_ref().clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
