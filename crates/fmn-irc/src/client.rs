//! One IRC connection, kept open and reused, that delivers a line to a nick and knows the
//! server received it.
//!
//! `irc`'s client only queues what it is given. To know a line reached the server (and so
//! that marking the delivery sent is honest) each delivery ends with a `PING <token>`: the
//! server answers in order, so its `PONG <token>` means every line before it was processed,
//! and an `ERR_NOSUCHNICK` seen before it means the nick was not online.

use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use irc::client::prelude::{Client, Command, Config as ClientConfig, Message, Response, Sender};
use irc::proto::CapSubCommand;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use crate::format::{ASSUMED_HOST_LEN, max_text_bytes, split};
use crate::{IrcConfig, valid_nick};

/// What became of a delivery the server acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server relayed the text, in this many lines.
    Delivered {
        /// PRIVMSG lines sent.
        lines: usize,
    },
    /// No such nick is online; IRC keeps nothing for later.
    NoSuchNick,
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum IrcError {
    /// The address cannot be a nick (it would not be safe in a protocol line). Permanent.
    #[error("not a valid IRC nick: {0:?}")]
    InvalidNick(String),
    /// Connecting or registering failed. Worth retrying.
    #[error("cannot connect to the IRC server: {0}")]
    Connect(String),
    /// The server refused to identify us (SASL failure, no usable nick). Worth retrying once
    /// the operator fixed the settings; until then the jobs end in the DLQ.
    #[error("the IRC server refused us: {0}")]
    Refused(String),
    /// The connection broke or the server did not acknowledge in time. Worth retrying.
    #[error("IRC connection lost: {0}")]
    Lost(String),
}

impl IrcError {
    /// Whether retrying can never help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, IrcError::InvalidNick(_))
    }
}

/// Something that delivers one notification line to a nick: the real [`IrcClient`], or an
/// in-memory one in unit tests.
pub trait IrcLink {
    /// Sends `text` (one sanitized line, split as needed) to `nick`.
    fn deliver(
        &self,
        nick: &str,
        text: &str,
    ) -> impl Future<Output = Result<Outcome, IrcError>> + Send;
}

/// An IRC client holding one connection, opened on first use and reused while it is alive
/// and not idle longer than [`IrcConfig::max_idle`]. Deliveries are serialized on it and
/// paced by a token bucket ([`IrcConfig::burst`] lines at once, then one per
/// [`IrcConfig::interval`]).
#[derive(Debug)]
pub struct IrcClient {
    config: IrcConfig,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    conn: Option<Connection>,
    pacer: Pacer,
    seq: u64,
    connects: u64,
}

#[derive(Debug)]
struct Connection {
    sender: Sender,
    incoming: mpsc::UnboundedReceiver<Message>,
    reader: tokio::task::JoinHandle<()>,
    nick: String,
    user: String,
    host_len: usize,
    last_used: Instant,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.sender.send_quit("fmn");
        self.reader.abort();
    }
}

fn lost(e: impl std::fmt::Display) -> IrcError {
    IrcError::Lost(e.to_string())
}

impl IrcClient {
    /// A client for `config`; nothing connects until the first delivery.
    pub fn new(config: IrcConfig) -> Self {
        let pacer = Pacer::new(config.burst, config.interval);
        IrcClient {
            config,
            state: Mutex::new(State {
                conn: None,
                pacer,
                seq: 0,
                connects: 0,
            }),
        }
    }

    /// How many connections this client has opened (reuse shows as 1 for many deliveries).
    pub async fn connections_opened(&self) -> u64 {
        self.state.lock().await.connects
    }

    /// The nick the server gave us on the current connection, if connected.
    pub async fn current_nick(&self) -> Option<String> {
        self.state
            .lock()
            .await
            .conn
            .as_ref()
            .map(|c| c.nick.clone())
    }

    async fn deliver_inner(&self, nick: &str, text: &str) -> Result<Outcome, IrcError> {
        if !valid_nick(nick) {
            return Err(IrcError::InvalidNick(nick.to_owned()));
        }
        let mut guard = self.state.lock().await;
        let state = &mut *guard;
        let reusable = state.conn.as_ref().is_some_and(|c| {
            !c.reader.is_finished() && c.last_used.elapsed() < self.config.max_idle
        });
        if !reusable {
            state.conn = None;
            state.connects += 1;
            state.conn = Some(self.connect().await?);
        }
        let Some(conn) = state.conn.as_mut() else {
            return Err(IrcError::Lost("no connection".into()));
        };
        state.seq += 1;
        let token = format!("fmn-{}", state.seq);
        let result = send_acknowledged(
            conn,
            &mut state.pacer,
            &token,
            self.config.reply_timeout,
            nick,
            text,
        )
        .await;
        match result {
            Ok(outcome) => {
                conn.last_used = Instant::now();
                Ok(outcome)
            }
            Err(e) => {
                state.conn = None;
                Err(e)
            }
        }
    }

    async fn connect(&self) -> Result<Connection, IrcError> {
        let c = &self.config;
        let mut alt_nicks = vec![format!("{}_", c.nick)];
        alt_nicks.extend((1..=9).map(|i| format!("{}{i}", c.nick)));
        let config = ClientConfig {
            nickname: Some(c.nick.clone()),
            alt_nicks,
            username: Some(c.nick.clone()),
            realname: Some("fmn notifications".into()),
            server: Some(c.server.clone()),
            port: Some(c.port),
            use_tls: Some(c.tls),
            cert_path: c.ca_file.clone(),
            password: c.server_password.clone(),
            nick_password: c.nickserv_password.clone(),
            ping_time: Some(60),
            ping_timeout: Some(30),
            ..ClientConfig::default()
        };
        if c.tls {
            // rustls needs one process-wide crypto provider and refuses to guess when several
            // are compiled in (the AWS SDK brings aws-lc-rs, other crates ring): it panics.
            // Installing one is a no-op once any is installed.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let deadline = Instant::now() + c.reply_timeout;
        let connect_error =
            |e: irc::error::Error| IrcError::Connect(format!("{}:{}: {e}", c.server, c.port));
        let mut client = tokio::time::timeout_at(deadline, Client::from_config(config))
            .await
            .map_err(|_| IrcError::Connect(format!("{}:{}: timed out", c.server, c.port)))?
            .map_err(connect_error)?;
        let sender = client.sender();
        if c.sasl.is_some() {
            // CAP REQ before NICK/USER holds registration until CAP END (IRCv3).
            sender
                .send(Command::CAP(
                    None,
                    CapSubCommand::REQ,
                    None,
                    Some("sasl".into()),
                ))
                .map_err(lost)?;
            if let Some(password) = &c.server_password {
                sender.send(Command::PASS(password.clone())).map_err(lost)?;
            }
            sender.send(Command::NICK(c.nick.clone())).map_err(lost)?;
            sender
                .send(Command::USER(
                    c.nick.clone(),
                    "0".into(),
                    "fmn notifications".into(),
                ))
                .map_err(lost)?;
        } else {
            client.identify().map_err(lost)?;
        }
        let mut stream = client.stream().map_err(lost)?;
        let (tx, mut incoming) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let _client = client; // owns the connection's state for as long as we read
            while let Some(item) = stream.next().await {
                match item {
                    Ok(message) => {
                        if tx.send(message).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "IRC connection ended");
                        break;
                    }
                }
            }
        });
        let mut conn = Connection {
            sender,
            incoming: mpsc::unbounded_channel().1,
            reader,
            nick: c.nick.clone(),
            user: format!("~{}", c.nick),
            host_len: ASSUMED_HOST_LEN,
            last_used: Instant::now(),
        };
        loop {
            let message = match tokio::time::timeout_at(deadline, incoming.recv()).await {
                Err(_) => return Err(IrcError::Connect("registration timed out".into())),
                Ok(None) => {
                    return Err(IrcError::Connect(
                        "connection closed during registration".into(),
                    ));
                }
                Ok(Some(m)) => m,
            };
            match message.command {
                Command::Response(Response::RPL_WELCOME, ref args) => {
                    if let Some(nick) = args.first() {
                        conn.nick = nick.clone();
                    }
                    // "Welcome to the Internet Relay Network nick!user@host"
                    if let Some(mask) = args.last().and_then(|t| t.rsplit(' ').next()) {
                        if let Some((left, host)) = mask.split_once('@') {
                            if let Some((_, user)) = left.split_once('!') {
                                conn.user = user.to_owned();
                                conn.host_len = host.len();
                            }
                        }
                    }
                }
                Command::Response(Response::RPL_ENDOFMOTD, _)
                | Command::Response(Response::ERR_NOMOTD, _) => break,
                Command::CAP(_, CapSubCommand::ACK, _, _) => {
                    conn.sender
                        .send(Command::AUTHENTICATE("PLAIN".into()))
                        .map_err(lost)?;
                }
                Command::CAP(_, CapSubCommand::NAK, _, _) => {
                    return Err(IrcError::Refused("the server does not offer SASL".into()));
                }
                Command::AUTHENTICATE(ref challenge) if challenge == "+" => {
                    if let Some(sasl) = &c.sasl {
                        let payload = base64::engine::general_purpose::STANDARD
                            .encode(format!("{0}\0{0}\0{1}", sasl.account, sasl.password));
                        if payload.len() >= 400 {
                            return Err(IrcError::Refused("SASL credentials too long".into()));
                        }
                        conn.sender
                            .send(Command::AUTHENTICATE(payload))
                            .map_err(lost)?;
                    }
                }
                Command::Response(Response::RPL_SASLSUCCESS, _) => {
                    conn.sender
                        .send(Command::CAP(None, CapSubCommand::END, None, None))
                        .map_err(lost)?;
                }
                Command::Response(
                    Response::ERR_SASLFAIL
                    | Response::ERR_SASLTOOLONG
                    | Response::ERR_SASLABORT
                    | Response::ERR_NICKLOCKED,
                    ref args,
                ) => {
                    return Err(IrcError::Refused(format!(
                        "SASL authentication failed: {}",
                        args.last().map(String::as_str).unwrap_or_default()
                    )));
                }
                Command::ERROR(ref text) => return Err(IrcError::Connect(text.clone())),
                _ => {}
            }
        }
        conn.incoming = incoming;
        tracing::info!(server = %c.server, port = c.port, nick = %conn.nick, tls = c.tls, "IRC connected");
        Ok(conn)
    }
}

impl IrcLink for IrcClient {
    async fn deliver(&self, nick: &str, text: &str) -> Result<Outcome, IrcError> {
        self.deliver_inner(nick, text).await
    }
}

async fn send_acknowledged(
    conn: &mut Connection,
    pacer: &mut Pacer,
    token: &str,
    reply_timeout: Duration,
    nick: &str,
    text: &str,
) -> Result<Outcome, IrcError> {
    // Whatever arrived while idle (notices, our own nick changes) matters only for errors.
    while let Ok(message) = conn.incoming.try_recv() {
        if let Command::ERROR(text) = message.command {
            return Err(IrcError::Lost(text));
        }
    }
    let max = max_text_bytes(&conn.nick, &conn.user, conn.host_len, nick);
    let lines = split(text, max);
    for line in &lines {
        pacer.wait().await;
        conn.sender.send_privmsg(nick, line).map_err(lost)?;
    }
    conn.sender
        .send(Command::PING(token.to_owned(), None))
        .map_err(lost)?;
    let deadline = Instant::now() + reply_timeout;
    let mut no_such_nick = false;
    loop {
        let message = match tokio::time::timeout_at(deadline, conn.incoming.recv()).await {
            Err(_) => {
                return Err(IrcError::Lost(
                    "the server did not acknowledge in time".into(),
                ));
            }
            Ok(None) => return Err(IrcError::Lost("connection closed".into())),
            Ok(Some(m)) => m,
        };
        match message.command {
            Command::PONG(ref a, ref b) if a == token || b.as_deref() == Some(token) => break,
            Command::Response(Response::ERR_NOSUCHNICK, ref args)
                if args.get(1).is_some_and(|n| n.eq_ignore_ascii_case(nick)) =>
            {
                no_such_nick = true;
            }
            Command::ERROR(text) => return Err(IrcError::Lost(text)),
            _ => {}
        }
    }
    Ok(if no_such_nick {
        Outcome::NoSuchNick
    } else {
        Outcome::Delivered { lines: lines.len() }
    })
}

/// A token bucket: `burst` lines at once, then one per `interval`.
#[derive(Debug)]
pub(crate) struct Pacer {
    burst: f64,
    interval: Duration,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    pub(crate) fn new(burst: u32, interval: Duration) -> Self {
        let burst = f64::from(burst.max(1));
        Pacer {
            burst,
            interval,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Waits until one more line may be sent, and takes its token.
    pub(crate) async fn wait(&mut self) {
        let now = Instant::now();
        if self.interval.is_zero() {
            self.tokens = self.burst;
        } else {
            let earned = now.duration_since(self.last).as_secs_f64() / self.interval.as_secs_f64();
            self.tokens = (self.tokens + earned).min(self.burst);
        }
        self.last = now;
        if self.tokens < 1.0 {
            tokio::time::sleep(self.interval.mul_f64(1.0 - self.tokens)).await;
            self.tokens = 1.0;
            self.last = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacer_allows_a_burst_then_one_per_interval() {
        let mut pacer = Pacer::new(3, Duration::from_secs(2));
        let start = Instant::now();
        for _ in 0..3 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..4 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed().as_secs(), 8);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let again = Instant::now();
        for _ in 0..3 {
            pacer.wait().await;
        }
        assert_eq!(
            again.elapsed(),
            Duration::ZERO,
            "the bucket refills, up to the burst"
        );
    }
}
