//! The real `fmn-desktop` binary against the whole local system (moto, the deployed template,
//! the functions in the local runtime, the HTTP API, the local WebSocket gateway over the
//! deployed WebSocket function) and a private D-Bus session bus (Debian's `dbus-daemon`) with
//! a notification server of the test's own.
//!
//! One system start for: each bus message (as the bridge queues it) becomes exactly one popup
//! with its summary and "Open" action; killing the WebSocket mid-stream (a relay between the
//! client and the gateway cuts the connection) loses nothing (the client backfills from the
//! inbox API) and duplicates nothing; a restarted client neither repeats nor loses (its
//! last-id file). Prints the latency from the queue to the `Notify` call.
#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

#[path = "support/bus.rs"]
#[allow(dead_code)] // shared with the popups test
mod bus;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fmn_e2e::Harness;
use fmn_e2e::faults::Relay;
use fmn_e2e::inbox::InboxSystem;
use fmn_inbox::InboxPage;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const USER: &str = "dora";

/// Puts one bus message on the incoming queue, as the bridge does; returns when.
async fn publish(h: &Harness, id: &str) -> Instant {
    h.publish_build(id, USER).await.unwrap()
}

/// The client: `fmn-desktop run` on `bus`, its log lines on a channel.
struct Client {
    child: tokio::process::Child,
    log: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Client {
    fn start(dir: &Path, bus: &bus::Bus) -> Client {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fmn-desktop"))
            .arg("--config")
            .arg(dir.join("desktop.toml"))
            .arg("--state-file")
            .arg(dir.join("state/desktop-last-id"))
            .arg("run")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("RUST_LOG", "fmn_desktop=debug")
            .env_remove("FMN_TOKEN")
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (tx, log) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("fmn-desktop: {line}");
                let _ = tx.send(line);
            }
        });
        Client { child, log }
    }

    /// Waits for a log line containing `what`.
    async fn wait_log(&mut self, what: &str) {
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = self.log.recv().await {
                if line.contains(what) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "fmn-desktop never logged {what:?}");
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_messages_become_one_popup_each_across_a_killed_socket_and_a_restart() {
    let prefs: fmn_rules::Preferences = serde_json::from_value(json!({"user": USER, "contexts":
        {"inbox": {"filters": [{"id": "mine", "name": "About me", "rules": [{"kind": "user"}]}]}}}))
    .unwrap();
    let InboxSystem {
        h,
        gateway: gw,
        api,
        state,
    } = InboxSystem::start(&[prefs], &[])
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    let token = fmn_local::api::mint(&state, USER, false, None)
        .await
        .unwrap();
    let inbox = || async {
        reqwest::Client::new()
            .get(format!("{api}/api/v1/users/{USER}/inbox?limit=200"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json::<InboxPage>()
            .await
            .unwrap()
    };
    let wait_inbox = |n: usize| async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while inbox().await.items.len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(inbox().await.items.len(), n);
    };

    // The client reaches the gateway through a relay that the test can cut.
    let gw_addr: std::net::SocketAddr = gw
        .url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut relay = Relay::start(gw_addr).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bus = bus::Bus::start(dir.path()).await;
    std::fs::write(
        dir.path().join("desktop.toml"),
        format!(
            "api_url = \"{api}\"\ntoken = \"{token}\"\nsocket_url = \"ws://{}/\"\n",
            relay.addr
        ),
    )
    .unwrap();
    let mut client = Client::start(dir.path(), &bus);
    client.wait_log("connected").await;

    // Live: three messages, three popups.
    let mut published = Vec::new();
    for n in 1..=3 {
        let id = format!("2026-desktop-{n}");
        published.push((publish(&h, &id).await, id));
    }
    assert_eq!(bus.wait_for(3, Duration::from_secs(60)).await.len(), 3);

    // Mid-stream, the socket dies: three more messages while it is down.
    publish(&h, "2026-desktop-4").await;
    relay.stop();
    publish(&h, "2026-desktop-5").await;
    publish(&h, "2026-desktop-6").await;
    wait_inbox(6).await;
    relay.restart().await.unwrap();
    assert_eq!(bus.wait_for(6, Duration::from_secs(60)).await.len(), 6);

    // The client restarts; a message arrives while it is down.
    // Stopped as systemd stops it (SIGTERM). A SIGKILL between a popup and the write of its
    // cursor repeats that one popup after the restart (docs/decisions.md, fmn-desktop).
    let pid = client.child.id().expect("the client is running");
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    tokio::time::timeout(Duration::from_secs(30), client.child.wait())
        .await
        .expect("the client stops on SIGTERM")
        .unwrap();
    publish(&h, "2026-desktop-7").await;
    wait_inbox(7).await;
    let mut client = Client::start(dir.path(), &bus);
    client.wait_log("connected").await;
    assert_eq!(bus.wait_for(7, Duration::from_secs(60)).await.len(), 7);
    published.push((publish(&h, "2026-desktop-8").await, "2026-desktop-8".into()));
    let calls = bus.wait_for(8, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls_after = bus.calls();
    assert_eq!(
        calls_after.len(),
        8,
        "one popup per message: {calls_after:#?}"
    );

    // Each popup is one item of the inbox, with its summary, body and action.
    let items = inbox().await.items;
    let mut expected: Vec<&str> = items.iter().map(|i| i.summary.as_str()).collect();
    let mut got: Vec<&str> = calls.iter().map(|c| c.summary.as_str()).collect();
    expected.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, expected);
    for call in &calls {
        let item = items.iter().find(|i| i.summary == call.summary).unwrap();
        assert_eq!(
            call.body,
            "org.fedoraproject.prod.buildsys.build.state.change\nfilter: About me"
        );
        let want: &[&str] = if item.link.is_some() {
            &["default", "Open"]
        } else {
            &[]
        };
        assert_eq!(call.actions, want, "{item:?}");
    }

    // Latency of the live ones, from the queue to the Notify call.
    let mut latencies: Vec<Duration> = published
        .iter()
        .map(|(at, id)| {
            let item = items.iter().find(|i| &i.message_id == id).unwrap();
            let call = calls.iter().find(|c| c.summary == item.summary).unwrap();
            call.at.duration_since(*at)
        })
        .collect();
    latencies.sort();
    println!(
        "bus message to popup: median {:?}, max {:?} over {}",
        quantile(&latencies, 0.5),
        latencies[latencies.len() - 1],
        latencies.len()
    );

    // The latency figures of the README: FMN_DESKTOP_LATENCY=N more messages, one at a time.
    let n: usize = std::env::var("FMN_DESKTOP_LATENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if n > 0 {
        let mut more = Vec::new();
        for k in 0..n {
            let at = publish(&h, &format!("2026-desktop-latency-{k}")).await;
            let calls = bus.wait_for(9 + k, Duration::from_secs(60)).await;
            assert_eq!(calls.len(), 9 + k);
            more.push(calls[8 + k].at.duration_since(at));
        }
        more.sort();
        println!(
            "bus message to popup over {n} messages: median {:?}, p99 {:?}, max {:?}",
            quantile(&more, 0.5),
            quantile(&more, 0.99),
            more[n - 1]
        );
    }
    client.child.kill().await.unwrap();
    h.shutdown().await;
}
