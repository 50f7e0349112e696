//! The client's loop: connect the WebSocket, backfill what was missed from the inbox API,
//! show every new item once, keep the socket alive, and reconnect (with backoff and jitter
//! after a failure, at once before API Gateway's two-hour cap).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
use tokio_util::sync::CancellationToken;

use fmn_inbox::{ClientFrame, Frame, InboxItem};

use crate::api::{Api, ApiError};
use crate::config::Config;
use crate::popup::{Display, Popup, web_link};
use crate::seen::{Cursor, Seen};

/// Exponential backoff with full jitter: a wait drawn from 0 to `min(cap, base · 2ⁿ)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(self.failures.min(20)))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        // At least a tenth of the ceiling, so that a failing server is not hammered.
        let floor = ceiling / 10;
        let span = ceiling.saturating_sub(floor).as_millis().max(1);
        let span = u64::try_from(span).unwrap_or(u64::MAX);
        floor + Duration::from_millis(rand::random_range(0..=span))
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// How one connection ended.
#[derive(Debug)]
enum End {
    /// Asked to stop.
    Stop,
    /// Replaced before the connection cap.
    Renew,
    /// Closed or failed: reconnect after a backoff.
    Lost(String),
}

/// Runs until `stop` (`Ok`) or until the API refuses the token (`Err`).
pub async fn run(config: Config, display: Display, stop: CancellationToken) -> anyhow::Result<()> {
    let api = Api::new(config.api_url.clone(), config.token.clone())?;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
    let mut seen = Seen::load(&config.state_file)?;
    let mut user: Option<String> = None;
    loop {
        let attempt = connect_and_serve(&config, &api, &display, &mut seen, &mut user, &stop);
        // A stop is obeyed while connecting and backfilling too, not only once connected.
        let outcome = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            outcome = attempt => outcome,
        };
        let (end, lasted) = match outcome {
            Ok((end, lasted)) => (end, lasted),
            Err(ApiError::Refused(status)) => {
                return Err(ApiError::Refused(status).into());
            }
            Err(ApiError::Other(e)) => (End::Lost(e), Duration::ZERO),
        };
        match end {
            End::Stop => return Ok(()),
            End::Renew => {
                tracing::info!("renewing the connection before the two-hour cap");
                backoff.reset();
                continue;
            }
            End::Lost(why) => {
                // A connection that lived a while was healthy: start the backoff over.
                if lasted > Duration::from_secs(60) {
                    backoff.reset();
                }
                let wait = backoff.next_wait();
                tracing::warn!("connection lost ({why}); reconnecting in {wait:.1?}");
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect_and_serve(
    config: &Config,
    api: &Api,
    display: &Display,
    seen: &mut Seen,
    user: &mut Option<String>,
    stop: &CancellationToken,
) -> Result<(End, Duration), ApiError> {
    let me = match user {
        Some(u) => u.clone(),
        None => {
            let me = api.me().await?;
            tracing::info!(user = %me.user, "signed in");
            user.insert(me.user).clone()
        }
    };
    let url = match &config.socket_url {
        Some(u) => u.clone(),
        None => api.socket_url().await?,
    };
    let socket = connect(&url, config).await?;
    let started = Instant::now();
    tracing::info!(%url, "connected");
    // The socket is open before the backfill, so nothing falls between the two; frames that
    // arrive meanwhile wait in the socket and are shown once (their ids are seen).
    backfill(config, api, display, seen, &me).await?;
    let end = serve(socket, config, display, seen, stop).await;
    Ok((end, started.elapsed()))
}

async fn connect(url: &str, config: &Config) -> Result<Socket, ApiError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| ApiError::Other(format!("socket URL {url}: {e}")))?;
    let bearer = format!("Bearer {}", config.token.secret());
    request.headers_mut().insert(
        tungstenite::http::header::AUTHORIZATION,
        bearer
            .parse()
            .map_err(|_| ApiError::Other("the token cannot be sent in a header".into()))?,
    );
    if url.starts_with("wss:") {
        // rustls refuses to pick a crypto provider when several are compiled in.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let connecting = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(Duration::from_secs(20), connecting).await {
        Err(_) => Err(ApiError::Other(format!("connecting to {url}: timed out"))),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response)))
            if matches!(response.status().as_u16(), 401 | 403) =>
        {
            Err(ApiError::Refused(response.status().as_u16()))
        }
        Ok(Err(e)) => Err(ApiError::Other(format!("connecting to {url}: {e}"))),
    }
}

/// Shows what arrived since the cursor; a fresh start shows none of the inbox's history.
async fn backfill(
    config: &Config,
    api: &Api,
    display: &Display,
    seen: &mut Seen,
    user: &str,
) -> Result<(), ApiError> {
    let after = match seen.cursor() {
        Cursor::Fresh => {
            let page = api.inbox(user, None, 1).await?;
            seen.start(page.items.first().map(|i| i.id.as_str()));
            save(seen);
            return Ok(());
        }
        Cursor::Empty => None,
        Cursor::After(id) => Some(id.clone()),
    };
    let max = config.max_backfill_popups;
    let page = api.inbox(user, after.as_deref(), max + 1).await?;
    let mut missed: Vec<InboxItem> = (page.items.into_iter())
        .filter(|i| seen.is_new(&i.id))
        .collect();
    missed.sort_by(|a, b| a.id.cmp(&b.id));
    if missed.is_empty() {
        return Ok(());
    }
    tracing::info!(missed = missed.len(), "backfill");
    if missed.len() > max {
        // Too many to pop up one by one: one popup for them all, the inbox a click away.
        let newest = missed.last().map(|i| i.id.clone()).unwrap_or_default();
        for item in &missed {
            seen.admit(&item.id);
        }
        let popup = Popup {
            id: newest,
            summary: format!("{max}+ new notifications"),
            body: "while this computer was offline: see your inbox".to_owned(),
            urgency: crate::popup::Severity::Normal,
            link: inbox_page(config, user),
        };
        if let Err(e) = display.show(&popup).await {
            tracing::warn!("popup: {e:#}");
        }
        save(seen);
        return Ok(());
    }
    for item in missed {
        show(display, seen, &item).await;
    }
    Ok(())
}

/// The web app's inbox page of `user`.
fn inbox_page(config: &Config, user: &str) -> Option<String> {
    let mut url = config.api_url.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["users", user, "inbox"]);
    web_link(Some(url.as_str()))
}

/// Shows `item` unless it was shown (or read in the web app), then records it.
async fn show(display: &Display, seen: &mut Seen, item: &InboxItem) {
    if !seen.admit(&item.id) {
        tracing::debug!(id = %item.id, "already shown");
        return;
    }
    if item.read {
        tracing::debug!(id = %item.id, "already read in the web app");
    } else {
        match display.show(&Popup::from_item(item)).await {
            Ok(popup) => tracing::info!(id = %item.id, popup, "shown"),
            // The popup is lost, not the program: the item stays in the web inbox.
            Err(e) => tracing::warn!(id = %item.id, "popup: {e:#}"),
        }
    }
    save(seen);
}

fn save(seen: &Seen) {
    if let Err(e) = seen.save() {
        tracing::warn!("{e:#}");
    }
}

async fn serve(
    mut socket: Socket,
    config: &Config,
    display: &Display,
    seen: &mut Seen,
    stop: &CancellationToken,
) -> End {
    let renew = tokio::time::sleep(config.reconnect_after);
    tokio::pin!(renew);
    let period = config.ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + period, period);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let _ = socket.close(None).await;
                return End::Stop;
            }
            () = &mut renew => {
                let _ = socket.close(None).await;
                return End::Renew;
            }
            _ = ping.tick() => {
                // Two pings without a word back: the connection is dead though TCP says not.
                if last_heard.elapsed() > period * 2 + Duration::from_secs(5) {
                    return End::Lost("no answer to two pings".into());
                }
                let ping = Message::text(ClientFrame::Ping.to_text());
                if let Err(e) = socket.send(ping).await {
                    return End::Lost(format!("ping: {e}"));
                }
            }
            frame = socket.next() => {
                last_heard = Instant::now();
                match frame {
                    None => return End::Lost("closed".into()),
                    Some(Err(e)) => return End::Lost(e.to_string()),
                    Some(Ok(Message::Close(close))) => {
                        return End::Lost(format!("closed by the server: {close:?}"));
                    }
                    // A frame of a kind this client does not know (a newer server's) is skipped.
                    Some(Ok(Message::Text(text))) => match Frame::from_text(&text) {
                        Some(Frame::Item { item }) => show(display, seen, &item).await,
                        Some(Frame::Pong) => {}
                        None => tracing::debug!("ignored frame: {}", text.chars().take(200).collect::<String>()),
                    },
                    Some(Ok(_)) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let waits: Vec<Duration> = (0..12).map(|_| b.next_wait()).collect();
        assert!(waits[0] <= Duration::from_secs(1));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(300)));
        assert!(waits[11] >= Duration::from_secs(30), "{waits:?}");
        b.reset();
        assert!(b.next_wait() <= Duration::from_secs(1));
    }
}
