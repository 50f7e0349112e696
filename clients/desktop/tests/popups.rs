//! The display layer of the real `fmn-desktop` binary against a private D-Bus session bus
//! (Debian's `dbus-daemon`) and a notification server of the test's own: each item becomes
//! exactly one popup with its summary, body, urgency and "Open" action; clicking a popup
//! opens its link (a script stands in for `xdg-open`) and does not hold up the next popups.
#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

#[path = "support/bus.rs"]
#[allow(dead_code)] // shared with the system test
mod bus;

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn id(n: u32) -> String {
    fmn_inbox::item_id(1_765_000_000_000 + u64::from(n), &format!("m{n}"), None)
}

fn item(n: u32, link: Option<&str>, severity: &str) -> String {
    json!({
        "id": id(n),
        "message_id": format!("m{n}"),
        "topic": "org.fedoraproject.prod.bodhi.update.comment",
        "summary": format!("dora commented on FEDORA-2026-{n}"),
        "link": link,
        "filter": "My updates",
        "filter_url": null,
        "severity": severity,
        "created": "2026-12-06T15:00:00Z",
        "read": false,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_item_is_one_popup_and_its_action_opens_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let bus = bus::Bus::start(dir.path()).await;
    let opened = dir.path().join("opened");
    let opener = dir.path().join("open.sh");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$1\" >> {}\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fmn-desktop"))
        .args(["--open-command", opener.to_str().unwrap(), "show"])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env("RUST_LOG", "fmn_desktop=debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut shown = BufReader::new(child.stdout.take().unwrap()).lines();

    let link = "https://bodhi.fedoraproject.org/updates/FEDORA-2026-1";
    let first = [
        item(1, Some(link), "info"),
        item(2, None, "error"),
        item(3, Some("file:///etc/passwd"), "debug"),
    ];
    for line in &first {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    let calls = bus.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0].summary, "dora commented on FEDORA-2026-1");
    assert_eq!(
        calls[0].body,
        "org.fedoraproject.prod.bodhi.update.comment\nfilter: My updates"
    );
    assert_eq!(calls[0].app_name, "fmn");
    assert_eq!(calls[0].actions, ["default", "Open"]);
    assert_eq!(calls[0].urgency, Some(1));
    // No link, or one that is not a web link: no action.
    assert!(calls[1].actions.is_empty(), "{:?}", calls[1]);
    assert_eq!(calls[1].urgency, Some(2));
    assert!(calls[2].actions.is_empty(), "{:?}", calls[2]);
    assert_eq!(calls[2].urgency, Some(0));
    for n in 1..=3 {
        let line = shown.next_line().await.unwrap().unwrap();
        assert!(line.starts_with(&format!("{} ", id(n))), "{line}");
    }

    // The user clicks the first popup: its link opens, and popups go on meanwhile. (The
    // click is repeated until the link opens: the client listens for it from just after the
    // popup was shown; once it opened, further clicks open nothing.)
    bus.invoke(calls[0].id, "default").await;
    stdin
        .write_all(format!("{}\n", item(4, Some(link), "warning")).as_bytes())
        .await
        .unwrap();
    let calls = bus.wait_for(4, Duration::from_secs(20)).await;
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[3].summary, "dora commented on FEDORA-2026-4");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&opened)
        .unwrap_or_default()
        .is_empty()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        bus.invoke(calls[0].id, "default").await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        std::fs::read_to_string(&opened).unwrap(),
        format!("{link}\n")
    );
    // Another popup's action (not clicked) opened nothing more.
    bus.invoke(calls[1].id, "default").await;
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(
        std::fs::read_to_string(&opened).unwrap(),
        format!("{link}\n")
    );
    assert_eq!(bus.calls().len(), 4, "exactly one popup per item");
}
