//! Faults the end-to-end tests inject: a relay whose stop cuts the network path to a
//! service, and a RabbitMQ node of the test's own that can be stopped and restarted.

use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

/// A TCP relay on loopback standing for the network path to a service (DynamoDB, the whole
/// emulator): stopping it makes the
/// table unreachable (connections refused, open ones cut), starting it again on the same
/// port brings it back with its data.
#[derive(Debug)]
pub struct Relay {
    /// Where clients connect.
    pub addr: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying from a free loopback port to `upstream`.
    pub async fn start(upstream: std::net::SocketAddr) -> anyhow::Result<Relay> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut relay = Relay {
            addr: listener.local_addr()?,
            upstream,
            task: None,
        };
        relay.serve(listener);
        Ok(relay)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream;
        self.task = Some(tokio::spawn(async move {
            // Dropped with the task: stopping the relay cuts the open connections too.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// Stops accepting and cuts the open connections.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Accepts again, on the same port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        tokio::task::yield_now().await;
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }
}

/// A RabbitMQ node of the test's own (its own name, ports, data and config in a temp dir,
/// bound to 127.0.0.1), so that it can be stopped and restarted without touching the
/// machine's broker (127.0.0.1:5672, shared). Its data survives a restart: durable queues and persistent messages.
#[derive(Debug)]
pub struct OwnBroker {
    dir: tempfile::TempDir,
    name: String,
    port: u16,
    dist_port: u16,
    child: Option<tokio::process::Child>,
}

impl Default for OwnBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl OwnBroker {
    /// A node in a new temporary directory, on free loopback ports (not started).
    pub fn new() -> OwnBroker {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = fmn_emulator::free_port().expect("a free port");
        let dist_port = fmn_emulator::free_port().expect("a free port");
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .expect("the node's files");
        std::fs::write(dir.path().join("rabbitmq-env.conf"), "").expect("the node's files");
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("the node's files");
        OwnBroker {
            name: format!("fmn-test-{}-{port}@localhost", std::process::id()),
            dir,
            port,
            dist_port,
            child: None,
        }
    }

    /// Its AMQP URL.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node (the server script itself, not the wrapper that switches user) and
    /// waits until it accepts AMQP logins.
    pub async fn start(&mut self) {
        let d = self.dir.path();
        let server = ["/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("rabbitmq-server");
        let child = tokio::process::Command::new(server)
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_CONF_ENV_FILE", d.join("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("rabbitmq-server (run localstack/bootstrap.sh)");
        self.child = Some(child);
        let properties = || {
            ConnectionProperties::default()
                .with_executor(tokio_executor_trait::Tokio::current())
                .with_reactor(tokio_reactor_trait::Tokio)
        };
        for _ in 0..240 {
            if let Ok(c) = Connection::connect(&self.url(), properties()).await {
                let _ = c.close(200, "ready").await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("own RabbitMQ node did not start on 127.0.0.1:{}", self.port);
    }

    /// Stops the node: SIGTERM (RabbitMQ shuts down cleanly on it), then waits for it to exit.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}
