//! The inbox sender: the sender pipeline ([`fmn_delivery::Pipeline`]) with the inbox channel
//! ([`InboxChannel`]). Each notification on the inbox queue becomes one
//! [`fmn_inbox::InboxItem`] in its user's inbox (once: the pipeline's delivery record per
//! (message, user, context, address), and the inbox's own record per (message, filter)
//! written with the item), and each new item is posted as a [`fmn_inbox::Frame::Item`] to
//! every open WebSocket connection of the user through API Gateway's management API
//! (`PostToConnection`); a connection API Gateway answers `GoneException` (410) for is
//! deleted from the connections table.
//!
//! - The inbox takes every item: no digest, no flood limit (the pipeline has no gate).
//! - Its one address is the user's inbox ([`fmn_rules::OWN_INBOX`]), so there is nothing to
//!   confirm: a confirmation job is refused (it would be a bug upstream).
//! - The item is what counts: when storing fails the job is retried; when a post fails
//!   otherwise than 410 it is logged and not retried (the client fetches what it missed
//!   from the inbox API when it reconnects).
//! - An item already in the inbox (a job redelivered after the item was stored but before
//!   its delivery was recorded) is neither stored nor posted again.

use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use fmn_delivery::{Channel, Content, Item, Pipeline, SendError, Target};
use fmn_inbox::store::{Added, ConnectionStore, InboxStore};
use fmn_inbox::{Frame, InboxItem};
use fmn_lambda::{ConfigError, Vars};
use fmn_rules::ContextKind;

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_DELIVERIES_TABLE`: idempotency records and the delivery history.
    pub deliveries_table: String,
    /// `FMN_INBOX_TABLE`: the users' inboxes.
    pub inbox_table: String,
    /// `FMN_CONNECTIONS_TABLE`: the open WebSocket connections.
    pub connections_table: String,
    /// `FMN_SOCKET_ENDPOINT` (optional): the WebSocket API's management endpoint
    /// (`https://<api id>.execute-api.<region>.amazonaws.com/<stage>`; locally the local
    /// gateway, `http://127.0.0.1:8081`). Without it items are stored and not posted.
    pub socket_endpoint: Option<String>,
    /// `FMN_API_BASE_URL` (optional): the web app, for the links to the filter that fired.
    pub api_base_url: Option<String>,
}

impl Config {
    /// Reads the configuration from `vars` (the process environment on Lambda, the deployed
    /// function's environment locally).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        Ok(Config {
            deliveries_table: vars.required("FMN_DELIVERIES_TABLE")?,
            inbox_table: vars.required("FMN_INBOX_TABLE")?,
            connections_table: vars.required("FMN_CONNECTIONS_TABLE")?,
            socket_endpoint: vars.get("FMN_SOCKET_ENDPOINT"),
            api_base_url: vars.get("FMN_API_BASE_URL"),
        })
    }
}

/// Why a post to a connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// API Gateway answered `GoneException` (410): the connection is closed.
    Gone,
    /// Anything else (throttled, unreachable, …).
    Other(String),
}

/// Posts frames to WebSocket connections (API Gateway's management API deployed).
pub trait Poster {
    /// Posts `text` to connection `id`.
    fn post(&self, id: &str, text: &str) -> impl Future<Output = Result<(), PostError>> + Send;
}

impl Poster for aws_sdk_apigatewaymanagement::Client {
    async fn post(&self, id: &str, text: &str) -> Result<(), PostError> {
        let sent = self
            .post_to_connection()
            .connection_id(id)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
                text.as_bytes(),
            ))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(PostToConnectionError::GoneException(_)) => Err(PostError::Gone),
                _ => Err(PostError::Other(fmn_store::dynamo_error_text(&e))),
            },
        }
    }
}

/// No WebSocket API deployed: nothing is posted.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSockets;

impl Poster for NoSockets {
    async fn post(&self, _: &str, _: &str) -> Result<(), PostError> {
        Ok(())
    }
}

/// An item rendered once, before its id and time are given at storing.
#[derive(Debug, Clone)]
pub struct Draft {
    message_id: String,
    topic: String,
    summary: String,
    link: Option<String>,
    filter_id: Option<String>,
    filter: Option<String>,
    filter_url: Option<String>,
    severity: String,
}

impl Draft {
    /// The item as created at `created_ms`.
    pub fn item(&self, created_ms: u64) -> InboxItem {
        InboxItem {
            id: fmn_inbox::item_id(created_ms, &self.message_id, self.filter_id.as_deref()),
            message_id: self.message_id.clone(),
            topic: self.topic.clone(),
            summary: self.summary.clone(),
            link: self.link.clone(),
            filter: self.filter.clone(),
            filter_url: self.filter_url.clone(),
            severity: self.severity.clone(),
            created: fmn_inbox::rfc3339(created_ms),
            read: false,
        }
    }
}

/// The inbox context's part of the pipeline: store, then post to every connection.
#[derive(Debug)]
pub struct InboxChannel<P> {
    inbox: InboxStore,
    connections: ConnectionStore,
    poster: P,
    base_url: Option<String>,
}

impl<P> InboxChannel<P> {
    /// A channel storing in `inbox`, posting with `poster` to the connections in
    /// `connections`, linking filters to the web app at `base_url`.
    pub fn new(
        inbox: InboxStore,
        connections: ConnectionStore,
        poster: P,
        base_url: Option<String>,
    ) -> Self {
        InboxChannel {
            inbox,
            connections,
            poster,
            base_url,
        }
    }

    /// The poster (tests look at it).
    pub fn poster(&self) -> &P {
        &self.poster
    }
}

impl<P: Poster + Sync> InboxChannel<P> {
    /// Posts `item` to every open connection of `user`; forgets the gone ones. Returns how
    /// many connections got it.
    pub async fn broadcast(&self, user: &str, item: &InboxItem) -> usize {
        let ids = match self.connections.of_user(user).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(user, error = %e, "connections not read: the item waits in the inbox");
                return 0;
            }
        };
        let text = Frame::Item { item: item.clone() }.to_text();
        let text = &text;
        let posts = futures::future::join_all(ids.iter().map(|id| async move {
            match self.poster.post(id, text).await {
                Ok(()) => true,
                Err(PostError::Gone) => {
                    tracing::info!(user, connection = %id, "connection gone: forgotten");
                    if let Err(e) = self.connections.remove(id, user).await {
                        tracing::warn!(user, connection = %id, error = %e, "gone connection not removed");
                    }
                    false
                }
                Err(PostError::Other(e)) => {
                    tracing::warn!(user, connection = %id, error = %e, "post to connection failed");
                    false
                }
            }
        }))
        .await;
        posts.into_iter().filter(|ok| *ok).count()
    }
}

impl<P: Poster + Sync> Channel for InboxChannel<P> {
    type Message = Draft;
    const NAME: &'static str = "inbox item";

    fn accepts(&self, item: &Item<'_>) -> Result<(), String> {
        match item {
            Item::Notification(job) if job.context != ContextKind::Inbox => {
                Err(format!("a {} job on the inbox queue", job.context.as_str()))
            }
            Item::Confirmation(_) => Err("an inbox has no address to confirm".into()),
            _ => Ok(()),
        }
    }

    fn render(&self, item: &Item<'_>) -> Draft {
        let user = item.user();
        match item.content() {
            // Refused by `accepts`; rendered as its own kind of item all the same.
            Content::Confirmation(c) => Draft {
                message_id: format!("confirm|{}", c.expires_at),
                topic: "fmn.confirmation".into(),
                summary: "confirmation".into(),
                link: None,
                filter_id: None,
                filter: None,
                filter_url: None,
                severity: "info".into(),
            },
            Content::Notification(n) => {
                let first = n.filters.first();
                Draft {
                    message_id: n.message.id.clone(),
                    topic: n.message.topic.clone(),
                    summary: n.message.summary.clone(),
                    link: n.message.link.clone(),
                    filter_id: first.map(|f| f.id.clone()),
                    filter: first.map(|f| f.name.clone()),
                    filter_url: match (first, &self.base_url) {
                        (Some(f), Some(base)) => {
                            Some(fmn_links::filter_url(base, user, ContextKind::Inbox, &f.id))
                        }
                        _ => None,
                    },
                    severity: n.message.severity.map_or("info", |s| s.as_str()).to_owned(),
                }
            }
        }
    }

    async fn send(&self, target: &Target<'_>, draft: &Draft) -> Result<(), SendError> {
        let user = target.item.user();
        let item = draft.item(fmn_inbox::now_ms());
        match self.inbox.add(user, &item).await {
            Ok(Added::New) => {}
            Ok(Added::Already(id)) => {
                tracing::info!(user, %id, "already in the inbox: not stored or posted again");
                return Ok(());
            }
            Err(e) => return Err(SendError::Temporary(e.to_string())),
        }
        let posted = self.broadcast(user, &item).await;
        tracing::info!(user, id = %item.id, posted, "inbox item stored");
        Ok(())
    }
}

/// The inbox sender over delivery records `D`, poster `P` and history `H`; no gate (the
/// inbox takes every item).
pub type InboxSender<D, P, H = fmn_delivery::NoHistory> =
    Pipeline<InboxChannel<P>, D, fmn_digest::NoGate, fmn_delivery::Unchecked, H>;

/// The sender as deployed.
pub type DeployedSender = InboxSender<
    fmn_store::DeliveryTable,
    Option<aws_sdk_apigatewaymanagement::Client>,
    fmn_store::HistoryLog,
>;

impl<P: Poster + Sync> Poster for Option<P> {
    async fn post(&self, id: &str, text: &str) -> Result<(), PostError> {
        match self {
            Some(p) => p.post(id, text).await,
            None => NoSockets.post(id, text).await,
        }
    }
}

/// The management API's client for the WebSocket API at `endpoint`.
pub fn socket_client(
    aws: &aws_config::SdkConfig,
    endpoint: &str,
) -> aws_sdk_apigatewaymanagement::Client {
    aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(aws)
            .endpoint_url(endpoint)
            .interceptor(fmn_calls::CountCalls)
            .build(),
    )
}

/// Builds the deployed sender.
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> DeployedSender {
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    let poster = config
        .socket_endpoint
        .as_deref()
        .map(|e| socket_client(aws, e));
    Pipeline::new(
        InboxChannel::new(
            InboxStore::new(dynamo.clone(), &config.inbox_table),
            ConnectionStore::new(dynamo.clone(), &config.connections_table),
            poster,
            config.api_base_url.clone(),
        ),
        fmn_store::DeliveryTable::new(dynamo.clone(), &config.deliveries_table),
    )
    .with_history(fmn_store::HistoryLog::new(dynamo, &config.deliveries_table))
}
