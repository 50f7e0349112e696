//! A private D-Bus session bus (Debian's `dbus-daemon`) with a notification server of the
//! test's own on it (`org.freedesktop.Notifications` implemented with zbus), which records
//! every `Notify` call and can invoke a popup's action as a desktop does when it is clicked.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedValue;

const PATH: &str = "/org/freedesktop/Notifications";

/// One `Notify` call.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: u32,
    pub app_name: String,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
    /// The `urgency` hint: 0 low, 1 normal, 2 critical.
    pub urgency: Option<u8>,
    pub at: std::time::Instant,
}

#[derive(Debug, Default)]
struct Server {
    calls: Arc<Mutex<Vec<Call>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &mut self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
        let mut calls = self.calls.lock().expect("calls");
        let id = u32::try_from(calls.len()).unwrap_or(u32::MAX - 1) + 1;
        calls.push(Call {
            id,
            app_name,
            summary,
            body,
            actions,
            urgency,
            at: std::time::Instant::now(),
        });
        id
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("fmn-test".into(), "fmn".into(), "1".into(), "1.2".into())
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        Self::notification_closed(&emitter, id, 3).await?;
        Ok(())
    }

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

/// The bus and the server on it; both end on drop.
pub struct Bus {
    /// `DBUS_SESSION_BUS_ADDRESS` for the client.
    pub address: String,
    calls: Arc<Mutex<Vec<Call>>>,
    connection: zbus::Connection,
    _daemon: tokio::process::Child,
}

impl Bus {
    /// Starts `dbus-daemon` on a socket in `dir` and registers the notification server.
    pub async fn start(dir: &Path) -> Bus {
        let config = dir.join("session.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.join("bus").display()
            ),
        )
        .expect("bus config");
        let mut daemon = tokio::process::Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "dbus-daemon (Debian's dbus-daemon package; localstack/bootstrap.sh installs it)",
            );
        let stdout = daemon.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let address = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("dbus-daemon prints its address")
            .expect("reading dbus-daemon")
            .expect("an address");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let server = Server {
            calls: calls.clone(),
        };
        let connection = zbus::connection::Builder::address(address.trim())
            .expect("address")
            .name("org.freedesktop.Notifications")
            .expect("name")
            .serve_at(PATH, server)
            .expect("serve")
            .build()
            .await
            .expect("the notification server on the bus");
        Bus {
            address: address.trim().to_owned(),
            calls,
            connection,
            _daemon: daemon,
        }
    }

    /// Every `Notify` call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    /// Waits until `n` popups were shown (or `timeout`); returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls();
            if calls.len() >= n || tokio::time::Instant::now() >= deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What a desktop does when the user clicks popup `id`.
    pub async fn invoke(&self, id: u32, action: &str) {
        let iface = self
            .connection
            .object_server()
            .interface::<_, Server>(PATH)
            .await
            .expect("the server");
        Server::action_invoked(iface.signal_emitter(), id, action)
            .await
            .expect("ActionInvoked");
    }
}
