//! IRC on one machine: Debian's `ngircd` on 127.0.0.1 with a generated configuration, and a
//! watcher, a real IRC client registered as a nick that reports every private message it
//! receives (what the tests assert on, and `fmn-local irc-watch`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use irc::client::prelude::{Client, Command, Config, Response};
use tokio::sync::mpsc;

/// A running ngircd (killed on drop).
#[derive(Debug)]
pub struct Ngircd {
    child: tokio::process::Child,
    /// Its plain-text port on 127.0.0.1.
    pub port: u16,
    /// Its TLS port on 127.0.0.1, when started with a certificate.
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
}

/// A certificate and key (PEM files) for ngircd's TLS port.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

fn binary() -> anyhow::Result<PathBuf> {
    for candidate in [
        "/usr/sbin/ngircd",
        "/usr/bin/ngircd",
        "/usr/local/sbin/ngircd",
    ] {
        if std::path::Path::new(candidate).exists() {
            return Ok(candidate.into());
        }
    }
    bail!("ngircd is not installed: run localstack/bootstrap.sh (apt-get install ngircd)")
}

impl Ngircd {
    /// Starts ngircd listening on 127.0.0.1:`port` (and on `tls.1` with TLS when given),
    /// and waits until it accepts connections.
    pub async fn start(port: u16, tls: Option<(TlsFiles, u16)>) -> anyhow::Result<Ngircd> {
        let binary = binary()?;
        let dir = tempfile::tempdir()?;
        let ssl = match &tls {
            Some((files, tls_port)) => format!(
                "[SSL]\n\tCertFile = {}\n\tKeyFile = {}\n\tPorts = {tls_port}\n",
                files.cert.display(),
                files.key.display()
            ),
            None => String::new(),
        };
        // Run as root, ngircd drops to `nobody`: nothing it needs after startup is in `dir`.
        let config = format!(
            "[Global]\n\tName = irc.fmn.test\n\tInfo = fmn local IRC server\n\
             \tAdminInfo1 = fmn\n\tAdminInfo2 = localhost\n\tAdminEMail = fmn@localhost\n\
             \tListen = 127.0.0.1\n\tPorts = {port}\n\tMotdPhrase = \"fmn local IRC server\"\n\
             \tPidFile = {pid}\n\
             [Limits]\n\tMaxConnectionsIP = 0\n\tMaxNickLength = 30\n\tPingTimeout = 120\n\
             \tPongTimeout = 20\n\
             [Options]\n\tDNS = no\n\tIdent = no\n\tPAM = no\n{ssl}",
            pid = dir.path().join("ngircd.pid").display(),
        );
        let path = dir.path().join("ngircd.conf");
        std::fs::write(&path, config)?;
        let child = tokio::process::Command::new(&binary)
            .arg("--nodaemon")
            .arg("--config")
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Ngircd {
            child,
            port,
            tls_port: tls.map(|(_, p)| p),
            dir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("ngircd exited at startup ({status}); is port {port} free?");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("ngircd did not listen on 127.0.0.1:{port} within 5 s")
    }

    /// Where its configuration lives.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops it and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// A private message a [`Watcher`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The sender's nick.
    pub from: String,
    /// The text, exactly as it arrived.
    pub text: String,
    /// The whole protocol line as relayed to us, CR LF included.
    pub line: String,
}

/// A real IRC client registered as a nick, collecting the private messages sent to it.
#[derive(Debug)]
pub struct Watcher {
    /// The nick it registered as.
    pub nick: String,
    received: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// Connects to 127.0.0.1:`port` as `nick` and waits until registered (at most 10 s).
    pub async fn connect(port: u16, nick: &str) -> anyhow::Result<Watcher> {
        let config = Config {
            nickname: Some(nick.to_owned()),
            username: Some(nick.to_owned()),
            realname: Some("fmn watcher".into()),
            server: Some("127.0.0.1".into()),
            port: Some(port),
            use_tls: Some(false),
            ..Config::default()
        };
        let mut client = Client::from_config(config)
            .await
            .with_context(|| format!("connecting to IRC on 127.0.0.1:{port}"))?;
        client.identify()?;
        let mut stream = client.stream()?;
        let (registered_tx, registered_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
        let (tx, received) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut registered = Some(registered_tx);
            while let Some(Ok(message)) = stream.next().await {
                match &message.command {
                    Command::Response(Response::RPL_ENDOFMOTD | Response::ERR_NOMOTD, _) => {
                        if let Some(r) = registered.take() {
                            let _ = r.send(Ok(()));
                        }
                    }
                    Command::Response(Response::ERR_NICKNAMEINUSE, _) => {
                        if let Some(r) = registered.take() {
                            let _ = r.send(Err("nick in use".into()));
                        }
                    }
                    Command::PRIVMSG(_, text) => {
                        let received = Received {
                            from: message.source_nickname().unwrap_or_default().to_owned(),
                            text: text.clone(),
                            line: message.to_string(),
                        };
                        if tx.send(received).is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        });
        match tokio::time::timeout(Duration::from_secs(10), registered_rx).await {
            Ok(Ok(Ok(()))) => Ok(Watcher {
                nick: nick.to_owned(),
                received,
                task,
            }),
            Ok(Ok(Err(e))) => bail!("IRC watcher {nick}: {e}"),
            _ => bail!("IRC watcher {nick}: not registered within 10 s"),
        }
    }

    /// The next private message, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Received> {
        tokio::time::timeout(timeout, self.received.recv())
            .await
            .ok()
            .flatten()
    }

    /// Private messages until `n` arrived or `timeout` passed.
    pub async fn collect(&mut self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            match tokio::time::timeout_at(deadline, self.received.recv()).await {
                Ok(Some(r)) => out.push(r),
                _ => break,
            }
        }
        out
    }

    /// Everything that arrives within `period` (to show that nothing more does).
    pub async fn drain(&mut self, period: Duration) -> Vec<Received> {
        self.collect(usize::MAX, period).await
    }
}
