//! The HTTP API, served locally with `axum::serve` on 127.0.0.1 over the deployed stack.

use fmn_rules::ContextKind;
use tokio_util::sync::CancellationToken;

pub use crate::emulator::deploy::LOCAL_LINK_SECRET;

/// The API's configuration from the deployed stack's outputs: its tables and every
/// context queue the stack has. `base_url` is set by [`serve`].
pub fn config(stack: &crate::Stack) -> anyhow::Result<fmn_api::ApiConfig> {
    let mut config = fmn_api::ApiConfig::new(
        stack.output("PreferencesTableName")?,
        stack.output("ApiTableName")?,
        LOCAL_LINK_SECRET.as_bytes(),
    );
    config.feed_table = stack.output("FeedTableName").ok().map(str::to_owned);
    config.ownership_table = stack.output("OwnershipTableName").ok().map(str::to_owned);
    // The senders' delivery history, for the history page (issue 14).
    config.deliveries_table = stack.output("DeliveriesTableName").ok().map(str::to_owned);
    // The inbox (its WebSocket URL is the local gateway's, set by whoever starts it).
    config.inbox_table = stack.output("InboxTableName").ok().map(str::to_owned);
    for (kind, output) in [
        (ContextKind::Email, "EmailQueueUrl"),
        (ContextKind::Irc, "IrcQueueUrl"),
        (ContextKind::Matrix, "MatrixQueueUrl"),
        (ContextKind::Webhook, "WebhookQueueUrl"),
        (ContextKind::Push, "PushQueueUrl"),
    ] {
        if let Ok(url) = stack.output(output) {
            config.context_queues.insert(kind, url.to_owned());
        }
    }
    Ok(config)
}

/// Serves the API on 127.0.0.1:`port` (0: any free port) until `stop`; returns the base
/// URL and the state (for minting tokens).
pub async fn serve(
    aws: &aws_config::SdkConfig,
    mut config: fmn_api::ApiConfig,
    port: u16,
    stop: CancellationToken,
) -> anyhow::Result<(String, fmn_api::AppState)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    config.base_url = base.clone();
    let state = fmn_api::AppState::new(aws, config);
    let app = fmn_api::router(state.clone());
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "API server stopped");
        }
    });
    Ok((base, state))
}

/// Mints a personal token (as `fmn token create` does).
pub async fn mint(
    state: &fmn_api::AppState,
    user: &str,
    admin: bool,
    expires_in_secs: Option<i64>,
) -> anyhow::Result<String> {
    let (secret, record) =
        fmn_api::auth::mint(user, admin, Some("fmn-local".into()), expires_in_secs);
    state.tokens().insert(&record).await?;
    Ok(secret)
}
