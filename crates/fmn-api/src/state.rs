//! The API's shared state: clients, configuration, caches. Cheap to clone.

use std::collections::BTreeMap;
use std::sync::Arc;

use fmn_links::LinkSigner;
use fmn_queue::SqsQueue;
use fmn_rules::ContextKind;
use fmn_store::{ConfirmationStore, PreferenceTable, RecentMessages, SessionStore, TokenStore};

use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::oidc::Jwks;

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: ApiConfig,
    prefs: PreferenceTable,
    tokens: TokenStore,
    confirmations: ConfirmationStore,
    recent: RecentMessages,
    sessions: SessionStore,
    feeds: Option<fmn_feed::FeedStore>,
    ownership: Option<fmn_store::OwnershipTable>,
    history: Option<fmn_store::HistoryLog>,
    inbox: Option<fmn_inbox::store::InboxStore>,
    /// The maintainer data last loaded, by snapshot id: loaded again only when it changed.
    owners: tokio::sync::Mutex<Option<(String, Arc<fmn_rules::Ownership>)>>,
    queues: BTreeMap<ContextKind, SqsQueue>,
    links: LinkSigner,
    jwks: Jwks,
}

impl AppState {
    /// The state for `config`, with clients built from an AWS configuration.
    pub fn new(aws: &aws_config::SdkConfig, config: ApiConfig) -> Self {
        let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
        let sqs = fmn_calls::client!(aws_sdk_sqs, aws);
        let queues = config
            .context_queues
            .iter()
            .map(|(k, url)| (*k, SqsQueue::new(sqs.clone(), url)))
            .collect();
        AppState(Arc::new(Inner {
            prefs: PreferenceTable::new(dynamo.clone(), &config.preferences_table),
            tokens: TokenStore::new(dynamo.clone(), &config.api_table),
            confirmations: ConfirmationStore::new(dynamo.clone(), &config.api_table)
                .with_limits(config.confirmation_limits),
            recent: RecentMessages::new(dynamo.clone(), &config.api_table),
            sessions: SessionStore::new(dynamo.clone(), &config.api_table),
            feeds: config
                .feed_table
                .as_deref()
                .map(|t| fmn_feed::FeedStore::new(dynamo.clone(), t)),
            ownership: config
                .ownership_table
                .as_deref()
                .map(|t| fmn_store::OwnershipTable::new(dynamo.clone(), t)),
            history: config
                .deliveries_table
                .as_deref()
                .map(|t| fmn_store::HistoryLog::new(dynamo.clone(), t)),
            inbox: config
                .inbox_table
                .as_deref()
                .map(|t| fmn_inbox::store::InboxStore::new(dynamo.clone(), t)),
            owners: Default::default(),
            queues,
            links: LinkSigner::new(&config.link_secret),
            jwks: Jwks::default(),
            config,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }
    pub(crate) fn prefs(&self) -> &PreferenceTable {
        &self.0.prefs
    }
    /// The token store (the CLI mints through it).
    pub fn tokens(&self) -> &TokenStore {
        &self.0.tokens
    }
    pub(crate) fn confirmations(&self) -> &ConfirmationStore {
        &self.0.confirmations
    }
    pub(crate) fn recent(&self) -> &RecentMessages {
        &self.0.recent
    }
    /// The web app's sessions.
    pub fn sessions(&self) -> &SessionStore {
        &self.0.sessions
    }
    pub(crate) fn feeds(&self) -> Option<&fmn_feed::FeedStore> {
        self.0.feeds.as_ref()
    }
    /// The current maintainer data (empty when none is deployed or synced yet).
    pub(crate) async fn ownership(&self) -> Result<Arc<fmn_rules::Ownership>, ApiError> {
        let Some(table) = &self.0.ownership else {
            return Ok(Arc::default());
        };
        let Some(snapshot) = table.current().await? else {
            return Ok(Arc::default());
        };
        let mut cached = self.0.owners.lock().await;
        if let Some((id, owners)) = cached.as_ref()
            && *id == snapshot.id
        {
            return Ok(owners.clone());
        }
        let text = table.load(&snapshot).await?;
        let owners = Arc::new(
            fmn_rules::Ownership::from_json(&text)
                .map_err(|e| ApiError::internal(&format!("maintainer data: {e}")))?,
        );
        *cached = Some((snapshot.id, owners.clone()));
        Ok(owners)
    }
    /// The users' delivery history, if deployed.
    pub(crate) fn history(&self) -> Option<&fmn_store::HistoryLog> {
        self.0.history.as_ref()
    }
    /// The users' inboxes, if deployed.
    pub(crate) fn inbox(&self) -> Option<&fmn_inbox::store::InboxStore> {
        self.0.inbox.as_ref()
    }
    pub(crate) fn queue(&self, kind: ContextKind) -> Option<&SqsQueue> {
        self.0.queues.get(&kind)
    }
    pub(crate) fn links(&self) -> &LinkSigner {
        &self.0.links
    }
    pub(crate) fn jwks(&self) -> &Jwks {
        &self.0.jwks
    }
}
