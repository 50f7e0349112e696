//! The push sender against a real loopback UnifiedPush receiver (axum on 127.0.0.1) and the
//! stack on moto: the receiver answers 201, then 429, then 201, then 410. Each notification
//! is pushed once (a redelivered job sends nothing), the throttled one is sent when SQS
//! delivers it again, and the 410 disables the endpoint in the owner's preferences and
//! tells the owner on their email queue; nothing more is pushed there.

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use fmn_e2e::Harness;
use fmn_queue::test_util::{failed_ids, sqs_event};
use serde_json::{Value, json};

/// What the receiver was sent: (path, body), and what it answers next.
#[derive(Default)]
struct Receiver {
    answers: Vec<u16>,
    posts: Vec<(String, Value)>,
}

async fn start_receiver(
    state: Arc<Mutex<Receiver>>,
    stop: tokio_util::sync::CancellationToken,
) -> String {
    let app = axum::Router::new()
        // A UnifiedPush distributor that is not ntfy: it has no /v1/health.
        .route(
            "/v1/health",
            axum::routing::get(|| async { StatusCode::NOT_FOUND }),
        )
        .route(
            "/{endpoint}",
            axum::routing::post(
                move |axum::extract::Path(endpoint): axum::extract::Path<String>,
                      body: axum::body::Bytes| {
                    let state = state.clone();
                    async move {
                        let mut s = state.lock().unwrap();
                        assert!(body.len() <= 4096, "a body of {} bytes", body.len());
                        let payload = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        s.posts.push((endpoint, payload));
                        let next = if s.answers.is_empty() {
                            201
                        } else {
                            s.answers.remove(0)
                        };
                        StatusCode::from_u16(next).unwrap()
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/upDoraPhone", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    url
}

fn job(id: &str, endpoint: &str) -> String {
    let mut job: Value = serde_json::from_str(include_str!(
        "../crates/fmn-queue/tests/fixtures/email-job.json"
    ))
    .unwrap();
    job["message"]["id"] = id.into();
    job["user"] = "dora".into();
    job["context"] = "push".into();
    job["addresses"] = json!([endpoint]);
    job.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_once_retries_after_429_and_disables_a_gone_endpoint() {
    let stop = tokio_util::sync::CancellationToken::new();
    let state = Arc::new(Mutex::new(Receiver {
        answers: vec![201, 429, 201, 410],
        ..Default::default()
    }));
    let endpoint = start_receiver(state.clone(), stop.clone()).await;
    let dora: fmn_rules::Preferences = serde_json::from_value(json!({"user": "dora", "contexts": {
        "email": {"addresses": [{"address": "dora@example.org", "confirmed": true}]},
        "push": {"addresses": [{"address": endpoint, "confirmed": true}]}
    }}))
    .unwrap();
    let h = Harness::deploy(&[dora])
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    let out = |name: &str| h.stack.output(name).unwrap().to_owned();
    let config = fmn_push_sender_fn::Config {
        common: fmn_push_sender_fn::HttpSenderConfig {
            deliveries_table: out("DeliveriesTableName"),
            preferences_table: out("PreferencesTableName"),
            held_table: Some(out("HeldTableName")),
            email_queue_url: Some(out("EmailQueueUrl")),
            feed_queue_url: Some(out("FeedQueueUrl")),
            // The receiver is on loopback.
            allow_private: true,
            allow_ports: Vec::new(),
            flood: fmn_digest::FloodLimit::default(),
        },
    };
    let sender = fmn_push_sender_fn::deployed(&h.aws, &config).unwrap();
    let handle = |body: String| {
        let sender = &sender;
        async move {
            let response = sender.handle(sqs_event(&[body])).await;
            failed_ids(&response)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<String>>()
        }
    };
    let posts = || state.lock().unwrap().posts.len();

    // 201: delivered; the same job again (SQS may redeliver) sends nothing.
    assert!(handle(job("m1", &endpoint)).await.is_empty());
    assert!(handle(job("m1", &endpoint)).await.is_empty());
    assert_eq!(posts(), 1);
    // 429: the record fails, and SQS's redelivery sends it, once.
    assert_eq!(handle(job("m2", &endpoint)).await, ["r0"]);
    assert!(handle(job("m2", &endpoint)).await.is_empty());
    assert!(handle(job("m2", &endpoint)).await.is_empty());
    assert_eq!(posts(), 3);
    // 410: gone. Not retried, the address disabled, its owner told.
    assert!(handle(job("m3", &endpoint)).await.is_empty());
    let prefs = fmn_store::PreferenceTable::new(
        aws_sdk_dynamodb::Client::new(&h.aws),
        out("PreferencesTableName"),
    )
    .get("dora")
    .await
    .unwrap()
    .unwrap();
    let address = &prefs.contexts[&fmn_rules::ContextKind::Push].addresses[0];
    let reason = address.disabled.clone().expect("the endpoint is disabled");
    assert!(reason.contains("410"), "{reason}");
    let notices = aws_sdk_sqs::Client::new(&h.aws)
        .receive_message()
        .queue_url(out("EmailQueueUrl"))
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let notices: Vec<Value> = (notices.messages())
        .iter()
        .filter_map(|m| serde_json::from_str(m.body()?).ok())
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let notice = &notices[0]["notice"];
    assert_eq!(notice["topic"], "fmn.push.disabled");
    assert_eq!(notice["addresses"], json!(["dora@example.org"]));
    assert!(notice["text"].as_str().unwrap().contains(&endpoint));
    // Nothing more goes there: neither the gone job again nor a new one.
    assert!(handle(job("m3", &endpoint)).await.is_empty());
    assert!(handle(job("m4", &endpoint)).await.is_empty());
    {
        let s = state.lock().unwrap();
        let ids: Vec<&str> = s
            .posts
            .iter()
            .map(|(_, p)| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["m1", "m2", "m2", "m3"]);
        assert!(s.posts.iter().all(|(path, p)| path == "upDoraPhone"
            && p["kind"] == "notification"
            && p["summary"] == "bob's kernel-6.1-1.fc40 completed"));
    }
    stop.cancel();
    h.shutdown().await;
}
