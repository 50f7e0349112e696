//! The local WebSocket gateway: what API Gateway's WebSocket API does for the inbox, on
//! 127.0.0.1, calling the deployed WebSocket function's own handler
//! ([`fmn_websocket_fn::Socket::handle`]) with the events API Gateway sends it.
//!
//! - `GET /` with an upgrade: a `$connect` event (headers, query string, a fresh connection
//!   id); anything but 200 refuses the upgrade with that status. Then each text frame is a
//!   message event routed by `$request.body.action` (`ping`, else `$default`); a route
//!   with a route response (`ping`, as the template configures) sends the function's body
//!   back as a frame. Closing (either side), 10 idle minutes or the 2-hour cap end with a
//!   `$disconnect` event.
//! - The management API on the same port, as the inbox sender's SDK client calls it:
//!   `POST /@connections/{id}` (the body is the frame), `GET` (the connection's details),
//!   `DELETE` (closes it); an unknown or closed connection answers 410 `GoneException`,
//!   a frame over 128 KB 413 `PayloadTooLargeException`, as API Gateway does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::lambda::functions::{AwsConfigs, Function};

/// API Gateway's largest frame (128 KB).
pub const MAX_FRAME_BYTES: usize = 128 * 1024;
/// Routes whose function answer goes back to the client (the template's route responses).
const ROUTES_WITH_RESPONSE: &[&str] = &[fmn_inbox::PING_ROUTE];

/// A running gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Where clients connect: `ws://127.0.0.1:PORT/`.
    pub url: String,
    /// The management API's endpoint (`FMN_SOCKET_ENDPOINT`): `http://127.0.0.1:PORT`.
    pub endpoint: String,
    connections: Arc<Connections>,
}

impl Gateway {
    /// Ids of the connections open now.
    pub fn open(&self) -> Vec<String> {
        self.connections.lock().keys().cloned().collect()
    }
}

#[derive(Debug)]
struct Conn {
    tx: mpsc::UnboundedSender<Message>,
    connected_at: String,
    last_active: String,
    source_ip: String,
    user_agent: String,
}

#[derive(Debug, Default)]
struct Connections(Mutex<HashMap<String, Conn>>);

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Conn>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone)]
struct Shared {
    socket: Arc<fmn_websocket_fn::Socket>,
    connections: Arc<Connections>,
    stop: CancellationToken,
}

fn now_iso() -> String {
    fmn_inbox::rfc3339(fmn_inbox::now_ms())
}

/// A fresh connection id, shaped like API Gateway's (`L0SM9cOFvHcCIhw=`).
fn connection_id() -> String {
    use base64::Engine;
    let random = uuid::Uuid::new_v4();
    base64::engine::general_purpose::STANDARD.encode(&random.as_bytes()[..10])
}

/// The event API Gateway sends the function for `route` on connection `id`.
fn event(
    route: &str,
    id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: Option<&str>,
    peer: &SocketAddr,
) -> anyhow::Result<ApiGatewayWebsocketProxyRequest> {
    let event_type = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut single = serde_json::Map::new();
    let mut multi = serde_json::Map::new();
    for (name, value) in headers {
        let Ok(v) = value.to_str() else { continue };
        single.insert(name.as_str().to_owned(), v.into());
        if let Some(values) = multi
            .entry(name.as_str().to_owned())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            .as_array_mut()
        {
            values.push(v.into());
        }
    }
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ms = fmn_inbox::now_ms();
    let value = serde_json::json!({
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": if query.is_empty() { serde_json::Value::Null } else { serde_json::json!(query) },
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "messageDirection": "IN",
            "connectionId": id,
            "connectedAt": ms,
            "requestTimeEpoch": ms,
            "requestId": uuid::Uuid::new_v4().to_string(),
            "extendedRequestId": uuid::Uuid::new_v4().to_string(),
            "stage": "local",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "identity": {"sourceIp": peer.ip().to_string(), "userAgent": user_agent},
        },
        "body": body,
        "isBase64Encoded": false,
    });
    serde_json::from_value(value).context("building the WebSocket event")
}

/// Serves the gateway on 127.0.0.1:`port` (0: any free port) over `socket` until `stop`.
pub async fn serve(
    port: u16,
    socket: Arc<fmn_websocket_fn::Socket>,
    stop: CancellationToken,
) -> anyhow::Result<Gateway> {
    let connections = Arc::new(Connections::default());
    let shared = Shared {
        socket,
        connections: connections.clone(),
        stop: stop.clone(),
    };
    let app = axum::Router::new()
        .route("/", axum::routing::get(connect))
        .route(
            "/@connections/{id}",
            axum::routing::post(post_to)
                .get(get_connection)
                .delete(delete_connection),
        )
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "WebSocket gateway stopped");
        }
    });
    Ok(Gateway {
        url: format!("ws://{addr}/"),
        endpoint: format!("http://{addr}"),
        connections,
    })
}

/// Builds the stack's WebSocket function from its deployed environment (the function
/// table's `WebsocketFunctionName`) and serves the gateway over it.
pub async fn start(
    aws: &AwsConfigs,
    stack: &crate::Stack,
    port: u16,
    stop: CancellationToken,
) -> anyhow::Result<Gateway> {
    match crate::lambda::functions::build(aws, stack, "WebsocketFunctionName").await? {
        (_, Function::WebSocket(socket)) => serve(port, socket, stop).await,
        (name, _) => anyhow::bail!("{name} is not the WebSocket function"),
    }
}

fn gone(id: &str) -> Response {
    (
        StatusCode::GONE,
        [
            ("x-amzn-errortype", "GoneException"),
            ("content-type", "application/json"),
        ],
        serde_json::json!({ "message": format!("connection {id} is gone") }).to_string(),
    )
        .into_response()
}

async fn connect(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return (StatusCode::UPGRADE_REQUIRED, "a WebSocket endpoint").into_response();
    };
    let id = connection_id();
    let connect = match event("$connect", &id, &headers, &query, None, &peer) {
        Ok(e) => e,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let answer = shared.socket.handle(connect).await;
    if answer.status_code != 200 {
        let status = StatusCode::from_u16(u16::try_from(answer.status_code).unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, "connection refused").into_response();
    }
    // Postable from now on, as in API Gateway: frames posted before the upgrade completes
    // wait in the channel.
    let (tx, rx) = mpsc::unbounded_channel();
    let now = now_iso();
    shared.connections.lock().insert(
        id.clone(),
        Conn {
            tx: tx.clone(),
            connected_at: now.clone(),
            last_active: now,
            source_ip: peer.ip().to_string(),
            user_agent: headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        },
    );
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .on_failed_upgrade({
            let shared = shared.clone();
            let id = id.clone();
            move |_| {
                shared.connections.lock().remove(&id);
            }
        })
        .on_upgrade(move |ws| run(shared, id, ws, tx, rx, headers, peer))
}

async fn run(
    shared: Shared,
    id: String,
    ws: WebSocket,
    tx: mpsc::UnboundedSender<Message>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    headers: HeaderMap,
    peer: SocketAddr,
) {
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let closing = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let cap = tokio::time::sleep(Duration::from_secs(fmn_inbox::CONNECTION_MAX_SECS));
    tokio::pin!(cap);
    let idle = Duration::from_secs(fmn_inbox::IDLE_TIMEOUT_SECS);
    let no_query = HashMap::new();
    loop {
        let next = tokio::select! {
            _ = shared.stop.cancelled() => break,
            _ = &mut cap => break,
            next = tokio::time::timeout(idle, stream.next()) => next,
        };
        let text = match next {
            Err(_) | Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(Message::Text(t)))) => t.as_str().to_owned(),
            // Binary frames reach $default as API Gateway passes them; pings are answered
            // by the WebSocket layer.
            Ok(Some(Ok(Message::Binary(b)))) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Some(Ok(_))) => continue,
        };
        if let Some(c) = shared.connections.lock().get_mut(&id) {
            c.last_active = now_iso();
        }
        let route = match fmn_inbox::ClientFrame::route_of(&text) {
            r if r == fmn_inbox::PING_ROUTE => r,
            _ => "$default".to_owned(),
        };
        let Ok(message) = event(&route, &id, &headers, &no_query, Some(&text), &peer) else {
            continue;
        };
        let answer = shared.socket.handle(message).await;
        if ROUTES_WITH_RESPONSE.contains(&route.as_str())
            && let Some(aws_lambda_events::encodings::Body::Text(body)) = answer.body
        {
            let _ = tx.send(Message::Text(body.into()));
        }
    }
    shared.connections.lock().remove(&id);
    let _ = tx.send(Message::Close(None));
    drop(tx);
    let _ = writer.await;
    if let Ok(gone) = event("$disconnect", &id, &headers, &no_query, None, &peer) {
        shared.socket.handle(gone).await;
    }
}

async fn post_to(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    if body.len() > MAX_FRAME_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("x-amzn-errortype", "PayloadTooLargeException")],
            "{\"message\":\"frame over 128 KB\"}",
        )
            .into_response();
    }
    let sent = shared.connections.lock().get(&id).map(|c| {
        c.tx.send(Message::Text(
            String::from_utf8_lossy(&body).into_owned().into(),
        ))
        .is_ok()
    });
    match sent {
        Some(true) => StatusCode::OK.into_response(),
        _ => gone(&id),
    }
}

async fn get_connection(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let found = shared.connections.lock().get(&id).map(|c| {
        serde_json::json!({
            "connectedAt": c.connected_at,
            "lastActiveAt": c.last_active,
            "identity": {"sourceIp": c.source_ip, "userAgent": c.user_agent},
        })
    });
    match found {
        Some(doc) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            doc.to_string(),
        )
            .into_response(),
        None => gone(&id),
    }
}

async fn delete_connection(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let conn = shared.connections.lock().remove(&id);
    match conn {
        Some(c) => {
            let _ = c.tx.send(Message::Close(None));
            StatusCode::NO_CONTENT.into_response()
        }
        None => gone(&id),
    }
}

/// Opens a WebSocket to `url` with the personal token `token` (as a bearer token), the way
/// `fmn-desktop` does.
pub async fn connect_client(
    url: &str,
    token: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(ws)
}

/// Follows an inbox over the WebSocket at `url` until `stop`: each new item is handed to
/// `on_item`; pings inside the idle limit; reconnects with backoff (what it missed while
/// disconnected stays in the inbox: the local run only prints what arrives live).
pub async fn follow(
    url: &str,
    token: &str,
    stop: CancellationToken,
    mut on_item: impl FnMut(&fmn_inbox::InboxItem),
) {
    use tokio_tungstenite::tungstenite::Message as Frame;
    let mut delay = Duration::from_secs(1);
    while !stop.is_cancelled() {
        let mut ws = match connect_client(url, token).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, "inbox socket: connect");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        delay = Duration::from_secs(1);
        let mut ping = tokio::time::interval(Duration::from_secs(fmn_inbox::IDLE_TIMEOUT_SECS / 2));
        ping.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => {
                    let _ = ws.close(None).await;
                    return;
                }
                _ = ping.tick() => {
                    let ping = fmn_inbox::ClientFrame::Ping.to_text();
                    if ws.send(Frame::Text(ping.into())).await.is_err() {
                        break;
                    }
                }
                next = ws.next() => match next {
                    Some(Ok(Frame::Text(t))) => {
                        if let Some(fmn_inbox::Frame::Item { item }) = fmn_inbox::Frame::from_text(&t) {
                            on_item(&item);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
        }
    }
}
