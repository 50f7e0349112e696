//! The inbox context end to end, on moto with the functions in the local runtime: bus
//! messages (as the bridge queues them) become inbox items listed by the API and frames on
//! real WebSocket clients (`tokio-tungstenite`) connected through the local gateway, which
//! calls the deployed WebSocket function and serves API Gateway's `@connections` API to the
//! inbox sender's SDK client.
//!
//! One system start for: two sockets of alice (bearer token, `?token=`) each get the item;
//! a socket without a token is refused; ping is answered pong; a connection the gateway
//! answers 410 for is removed from the connections table; a client that reconnects gets
//! what it missed with `after=`; bob's socket never sees alice's items; redelivering the
//! same job stores and sends nothing twice.

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use std::time::Duration;

use fmn_e2e::Harness;
use fmn_e2e::inbox::InboxSystem;
use fmn_inbox::store::{ConnectionStore, InboxStore};
use fmn_inbox::{Frame, InboxPage};
use fmn_local::gateway;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn publish(h: &Harness, id: &str, owner: &str) {
    h.publish_build(id, owner).await.unwrap();
}

/// The next frame on `ws` (text frames only), or `None` after `wait`.
async fn next_frame(ws: &mut Client, wait: Duration) -> Option<Frame> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(Frame::from_text(&t).expect("a frame")),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("socket: {e}"),
            Ok(None) | Err(_) => return None,
        }
    }
}

async fn next_item(ws: &mut Client) -> fmn_inbox::InboxItem {
    match next_frame(ws, Duration::from_secs(60)).await {
        Some(Frame::Item { item }) => item,
        other => panic!("expected an item frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_items_arrive_live_once_and_reconnecting_clients_catch_up() {
    let mine = json!({"inbox": {"filters": [{"id": "mine", "name": "About me",
        "rules": [{"kind": "user"}]}]}});
    let prefs: Vec<fmn_rules::Preferences> = ["alice", "bob"]
        .iter()
        .map(|u| serde_json::from_value(json!({"user": u, "contexts": mine})).unwrap())
        .collect();
    let InboxSystem {
        h,
        gateway: gw,
        api,
        state,
    } = InboxSystem::start(&prefs, &[("FMN_API_BASE_URL", "http://fmn.test")])
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    let alice = fmn_local::api::mint(&state, "alice", false, None)
        .await
        .unwrap();
    let bob = fmn_local::api::mint(&state, "bob", false, None)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let get =
        |path: String, token: &str| http.get(format!("{api}{path}")).bearer_auth(token).send();
    let socket: serde_json::Value = get("/api/v1/inbox/socket".into(), &alice)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(socket["url"], gw.url.as_str());

    // Refused without a token; accepted with one (header or query).
    let refused = tokio_tungstenite::connect_async(gw.url.as_str()).await;
    assert!(refused.is_err(), "a socket without a token was accepted");
    let mut a1 = gateway::connect_client(&gw.url, &alice).await.unwrap();
    let (mut a2, _) = tokio_tungstenite::connect_async(format!("{}?token={alice}", gw.url))
        .await
        .unwrap();
    let mut b = gateway::connect_client(&gw.url, &bob).await.unwrap();
    a1.send(Message::Text(r#"{"action":"ping"}"#.into()))
        .await
        .unwrap();
    assert_eq!(
        next_frame(&mut a1, Duration::from_secs(10)).await,
        Some(Frame::Pong)
    );
    // Another frame is ignored.
    a1.send(Message::Text("hello".into())).await.unwrap();
    // A connection recorded for alice that the gateway no longer has (its $disconnect
    // lost): the first post to it answers 410, and it is forgotten.
    let connections = ConnectionStore::new(
        aws_sdk_dynamodb::Client::new(&h.aws),
        h.stack.output("ConnectionsTableName").unwrap(),
    );
    connections.add("deadConnId=", "alice").await.unwrap();
    assert_eq!(connections.of_user("alice").await.unwrap().len(), 3);

    // A bus message about alice: an item in her inbox, a frame on both her sockets.
    let t0 = std::time::Instant::now();
    publish(&h, "2026-inbox-1", "alice").await;
    let first = next_item(&mut a1).await;
    let latency = t0.elapsed();
    assert_eq!(next_item(&mut a2).await, first);
    assert_eq!(first.message_id, "2026-inbox-1");
    assert_eq!(first.filter.as_deref(), Some("About me"));
    assert_eq!(
        first.filter_url.as_deref(),
        Some("http://fmn.test/users/alice/contexts/inbox/filters/mine")
    );
    assert_eq!(first.severity, "info");
    assert!(!first.read);
    let page: InboxPage = get("/api/v1/users/alice/inbox".into(), &alice)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page.items, std::slice::from_ref(&first));
    assert_eq!(page.unread, 1);
    let mut left = connections.of_user("alice").await.unwrap();
    left.sort();
    assert_eq!(left.len(), 2, "the gone connection is forgotten: {left:?}");
    assert!(!left.contains(&"deadConnId=".to_owned()));

    // a2 drops; a message arrives meanwhile; reconnected, it asks for what it missed.
    a2.close(None).await.unwrap();
    publish(&h, "2026-inbox-2", "alice").await;
    let second = next_item(&mut a1).await;
    assert!(second.id > first.id);
    let (mut a2, _) = tokio_tungstenite::connect_async(format!("{}?token={alice}", gw.url))
        .await
        .unwrap();
    let missed: InboxPage = get(
        format!("/api/v1/users/alice/inbox?after={}", first.id),
        &alice,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(missed.items, std::slice::from_ref(&second));
    assert_eq!(missed.unread, 2);

    // Redelivery of the same job (as SQS may): stored once, posted once.
    let out = |name: &str| h.stack.output(name).unwrap().to_owned();
    let sender = fmn_inbox_sender_fn::deployed(
        &h.aws,
        &fmn_inbox_sender_fn::Config {
            deliveries_table: out("DeliveriesTableName"),
            inbox_table: out("InboxTableName"),
            connections_table: out("ConnectionsTableName"),
            socket_endpoint: Some(gw.endpoint.clone()),
            api_base_url: None,
        },
    );
    let mut job: serde_json::Value = serde_json::from_str(include_str!(
        "../crates/fmn-queue/tests/fixtures/email-job.json"
    ))
    .unwrap();
    job["message"]["id"] = "2026-inbox-3".into();
    job["user"] = "alice".into();
    job["context"] = "inbox".into();
    job["addresses"] = json!([fmn_rules::OWN_INBOX]);
    let job = job.to_string();
    for _ in 0..2 {
        let response = sender
            .handle(fmn_queue::test_util::sqs_event(&[
                job.as_str(),
                job.as_str(),
            ]))
            .await;
        assert!(fmn_queue::test_util::failed_ids(&response).is_empty());
    }
    let third = next_item(&mut a1).await;
    assert_eq!(third.message_id, "2026-inbox-3");
    assert_eq!(next_item(&mut a2).await, third);
    // Bob's socket: only bob's item, which comes after alice's three.
    publish(&h, "2026-inbox-bob", "bob").await;
    assert_eq!(next_item(&mut b).await.message_id, "2026-inbox-bob");
    assert_eq!(next_frame(&mut a1, Duration::from_millis(500)).await, None);
    let inbox = InboxStore::new(aws_sdk_dynamodb::Client::new(&h.aws), out("InboxTableName"));
    let all = inbox.page("alice", None, 200).await.unwrap();
    let ids: Vec<&str> = all.items.iter().map(|i| i.message_id.as_str()).collect();
    assert_eq!(ids, ["2026-inbox-3", "2026-inbox-2", "2026-inbox-1"]);
    assert_eq!(next_frame(&mut b, Duration::from_millis(200)).await, None);

    // Read one, then all (the API's marks).
    let post = |path: String| http.post(format!("{api}{path}")).bearer_auth(&alice).send();
    let r = post(format!("/api/v1/users/alice/inbox/{}/read", first.id))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(inbox.unread("alice").await.unwrap(), 2);
    let r = post("/api/v1/users/alice/inbox/read-all".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(inbox.unread("alice").await.unwrap(), 0);
    // Bob may not read alice's inbox.
    let r = get("/api/v1/users/alice/inbox".into(), &bob).await.unwrap();
    assert_eq!(r.status(), 403);

    // A busy inbox is trimmed to its newest items without a write to count additions.
    let max = fmn_inbox::store::MAX_ITEMS;
    for k in 0..max + 60 {
        let message = format!("2026-inbox-busy-{k}");
        let item = fmn_inbox::InboxItem {
            id: fmn_inbox::item_id(fmn_inbox::now_ms(), &message, Some("f")),
            message_id: message,
            topic: "org.fedoraproject.prod.buildsys.build.state.change".into(),
            summary: "a build".into(),
            link: None,
            filter: Some("f".into()),
            filter_url: None,
            severity: "info".into(),
            created: fmn_inbox::rfc3339(fmn_inbox::now_ms()),
            read: false,
        };
        inbox.add("carol", &item).await.unwrap();
    }
    let kept = inbox.page("carol", None, 200).await.unwrap();
    assert_eq!(
        kept.items[0].message_id,
        format!("2026-inbox-busy-{}", max + 59)
    );
    let unread = inbox.unread("carol").await.unwrap() as usize;
    assert!((max..max + 60).contains(&unread), "{unread} items kept");

    println!("bus message to WebSocket frame: {latency:?}");
    // The README's latency figures: FMN_INBOX_LATENCY=N more messages, one at a time, from
    // the incoming queue to the frame on alice's socket.
    let n: usize = std::env::var("FMN_INBOX_LATENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if n > 0 {
        let mut took = Vec::with_capacity(n);
        for k in 0..n {
            let id = format!("2026-inbox-latency-{k}");
            let t0 = std::time::Instant::now();
            publish(&h, &id, "alice").await;
            assert_eq!(next_item(&mut a1).await.message_id, id);
            took.push(t0.elapsed());
            assert_eq!(next_item(&mut a2).await.message_id, id);
        }
        took.sort();
        let p = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
        println!(
            "inbox latency over {n}: median {:?}, p99 {:?}, max {:?}",
            p(0.5),
            p(0.99),
            took[took.len() - 1]
        );
    }
    for ws in [&mut a1, &mut a2, &mut b] {
        let _ = ws.close(None).await;
    }
    h.shutdown().await;
}
