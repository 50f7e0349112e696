//! Matrix delivery against a real homeserver: Synapse (from the project venv) on 127.0.0.1
//! with a generated configuration and a low message rate limit, a bot account for the
//! sender and a recipient account that checks what it sees; delivery records and rooms in
//! a moto server.

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use aws_lambda_events::event::sqs::SqsEvent;
use std::time::{Duration, Instant};

use fmn_e2e::{Harness, publish};
use fmn_local::standins::matrix::{Account, Recipient, Synapse};
use fmn_matrix::{DirectMessenger, DynamoRooms, MatrixClient, MatrixConfig};
use fmn_matrix_sender_fn::DeployedSender;
use fmn_queue::NotificationJob;
use fmn_rules::Preferences;
use serde_json::json;
use zeromq::Socket;

const JOB: &str = include_str!("../crates/fmn-queue/tests/fixtures/email-job.json");

fn job(id: &str, user_id: &str, summary: &str) -> String {
    let mut job: NotificationJob = serde_json::from_str(JOB).unwrap();
    job.message.id = id.into();
    job.message.summary = summary.into();
    job.message.link = Some(format!("https://bodhi.fedoraproject.org/updates/{id}"));
    job.context = fmn_rules::ContextKind::Matrix;
    job.addresses = vec![user_id.into()];
    serde_json::to_string(&job).unwrap()
}

fn event(bodies: &[String]) -> SqsEvent {
    fmn_queue::test_util::sqs_event(bodies)
}

fn new_sender(h: &Harness, synapse: &Synapse, bot: &Account) -> DeployedSender {
    let dynamo = aws_sdk_dynamodb::Client::new(&h.aws);
    let table = h.stack.output("DeliveriesTableName").unwrap();
    fmn_matrix_sender_fn::sender(
        fmn_store::DeliveryTable::new(dynamo.clone(), table),
        DirectMessenger::new(
            MatrixClient::new(MatrixConfig::new(&synapse.url, &bot.access_token)).unwrap(),
            DynamoRooms::new(dynamo.clone(), table),
        ),
    )
    .with_gate(fmn_digest::Gate::from_table(
        dynamo.clone(),
        h.stack.output("HeldTableName").ok(),
        fmn_digest::FloodLimit::default(),
    ))
    // The jobs here are made by the test, for users without stored preferences.
    .with_addresses(None)
    .with_history(fmn_store::HistoryLog::new(dynamo, table))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_one_direct_room_once_despite_rate_limits() {
    let h = Harness::deploy(&[])
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    let port = fmn_emulator::free_port().unwrap();
    // Two messages at once, then one per 2 s: a batch of four is rate-limited.
    let synapse = Synapse::start(port, 0.5, 2)
        .await
        .expect("Synapse (run localstack/bootstrap.sh)");
    let bot = synapse.register("fmnbot", "bot-password-1").await.unwrap();
    let alice = synapse.register("alice", "alice-password-1").await.unwrap();
    let recipient = Recipient::new(&synapse.url, alice.clone());

    let sender = new_sender(&h, &synapse, &bot);
    let jobs: Vec<String> = (0..4)
        .map(|i| {
            job(
                &format!("m{i}"),
                &alice.user_id,
                &format!("update {i} <pushed> & stable"),
            )
        })
        .collect();
    let mut batch = jobs.clone();
    batch.push(jobs[0].clone()); // the same job twice in one batch
    let response = sender.handle(event(&batch)).await;
    // Of the two copies of m0, one delivers; the other finds it sent, or in flight (a live
    // claim) and fails alone, to be redelivered by SQS: then it finds it sent.
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert!(
        failed.is_empty() || failed == ["r0"] || failed == ["r4"],
        "{failed:?}"
    );
    if !failed.is_empty() {
        let again = sender.handle(event(&batch[4..])).await;
        assert!(
            again.batch_item_failures.is_empty(),
            "{:?}",
            again.batch_item_failures
        );
    }
    assert!(
        sender.channel().link().client().rate_limited_retries() > 0,
        "the homeserver never rate-limited us: the test does not test retries"
    );

    // One direct room, invited once; in it, each notification exactly once.
    let invites = recipient.invites().await.unwrap();
    assert_eq!(invites.len(), 1, "{invites:?}");
    let (room, direct) = invites[0].clone();
    assert!(direct, "the invite is not marked is_direct");
    recipient.join(&room).await.unwrap();
    let seen = |messages: Vec<(String, serde_json::Value)>| -> Vec<serde_json::Value> {
        messages
            .into_iter()
            .filter(|(sender, _)| *sender == bot.user_id)
            .map(|(_, content)| content)
            .collect()
    };
    let messages = seen(recipient.messages(&room).await.unwrap());
    let mut bodies: Vec<String> = messages
        .iter()
        .map(|c| c["body"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    let expected: Vec<String> = (0..4)
        .map(|i| {
            format!(
                "update {i} <pushed> & stable https://bodhi.fedoraproject.org/updates/m{i} \
                 (triggered by kernel builds)"
            )
        })
        .collect();
    assert_eq!(bodies, expected);
    let html = messages[0]["formatted_body"].as_str().unwrap();
    assert!(html.contains("&lt;pushed&gt; &amp; stable</a>"), "{html}");
    assert_eq!(messages[0]["format"], "org.matrix.custom.html");
    assert_eq!(messages[0]["msgtype"], "m.notice");

    // Redelivery sends nothing; a fresh sender (a cold Lambda) reuses the remembered room.
    assert!(
        sender
            .handle(event(&jobs))
            .await
            .batch_item_failures
            .is_empty()
    );
    let cold = new_sender(&h, &synapse, &bot);
    let next = job("m9", &alice.user_id, "one more");
    assert!(
        cold.handle(event(&[next]))
            .await
            .batch_item_failures
            .is_empty()
    );
    let messages = seen(recipient.messages(&room).await.unwrap());
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert!(
        messages[4]["body"]
            .as_str()
            .unwrap()
            .starts_with("one more ")
    );
    assert!(
        recipient.invites().await.unwrap().is_empty(),
        "a second room was made"
    );
    let bot_view = Recipient::new(&synapse.url, bot.clone());
    assert_eq!(bot_view.joined_rooms().await.unwrap(), vec![room.clone()]);

    synapse.stop().await;
    h.shutdown().await;
}

/// Waits (bounded) until `room` holds `n` messages from `sender`; returns their contents.
async fn wait_for_messages(
    recipient: &Recipient,
    room: &str,
    sender: &str,
    n: usize,
) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    for _ in 0..1200 {
        seen = recipient
            .messages(room)
            .await
            .unwrap()
            .into_iter()
            .filter(|(from, _)| from == sender)
            .map(|(_, content)| content)
            .collect();
        if seen.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    seen
}

/// From a ZeroMQ publish to the message the recipient reads in its direct room: bridge,
/// incoming queue, matcher, Matrix queue and Matrix sender in the local runtime, Synapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_message_reaches_the_direct_room() {
    let port = fmn_emulator::free_port().unwrap();
    let synapse = Synapse::start(port, 100.0, 100)
        .await
        .expect("Synapse (run localstack/bootstrap.sh)");
    let bot = synapse.register("fmnbot", "bot-password-1").await.unwrap();
    let alice = synapse.register("alice", "alice-password-1").await.unwrap();
    let mallory = synapse
        .register("mallory", "mallory-password-1")
        .await
        .unwrap();
    let prefs: Preferences = serde_json::from_value(json!({"user": "alice", "contexts": {
        "matrix": {
            "addresses": [{"address": alice.user_id, "confirmed": true},
                          {"address": mallory.user_id}],
            "filters": [{"id": "f", "name": "nethack builds", "rules": [
                {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "nethack"}]}]}]}}}))
    .unwrap();
    let mut h = Harness::deploy(&[prefs])
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    h.set_function_env(
        "MatrixSenderFunctionName",
        &[
            ("FMN_MATRIX_HOMESERVER", synapse.url.as_str()),
            ("FMN_MATRIX_ACCESS_TOKEN", bot.access_token.as_str()),
        ],
    )
    .await
    .unwrap();
    h.start_functions().await.unwrap();
    let zmq_port = fmn_emulator::free_port().unwrap();
    let mut publisher = zeromq::PubSocket::new();
    publisher
        .bind(&format!("tcp://127.0.0.1:{zmq_port}"))
        .await
        .unwrap();
    h.start_bridge(vec![format!("tcp://127.0.0.1:{zmq_port}").parse().unwrap()])
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await; // ZeroMQ's slow joiner

    let corpus = include_str!("../crates/fmn-messages/tests/fixtures/fedmsg-examples.jsonl");
    let catalog = fmn_messages::Catalog::builtin();
    let (envelope, message) = corpus
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|e| {
            let m = catalog.normalize(&e).ok()?;
            m.artifacts.rpms.contains("nethack").then_some((e, m))
        })
        .expect("a nethack message in the corpus");
    let frames = |envelope: &serde_json::Value| {
        (
            envelope["topic"].as_str().unwrap().to_owned(),
            serde_json::to_vec(envelope).unwrap(),
        )
    };
    let (topic, bytes) = frames(&envelope);
    publish(&mut publisher, &topic, &bytes).await.unwrap();

    let recipient = Recipient::new(&synapse.url, alice.clone());
    let mut invites = Vec::new();
    for _ in 0..1200 {
        invites = recipient.invites().await.unwrap();
        if !invites.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(invites.len(), 1, "no direct room: {invites:?}");
    let room = invites[0].0.clone();
    recipient.join(&room).await.unwrap();
    let got = wait_for_messages(&recipient, &room, &bot.user_id, 1).await;
    assert_eq!(got.len(), 1, "no message arrived");
    let body = got[0]["body"].as_str().unwrap();
    assert!(body.starts_with(&message.summary), "{body}");
    assert!(body.ends_with("(triggered by nethack builds)"), "{body}");

    // Latency, published to read, one message at a time (new ids, same content): a
    // measurement printed for the README, not a pass/fail threshold.
    let mut latencies = Vec::new();
    // 15: with the first, 16 notifications stay under the flood limit of 20 per window.
    for i in 0..15 {
        let mut copy = envelope.clone();
        copy["msg_id"] =
            format!("latency-{i}-{}", envelope["msg_id"].as_str().unwrap_or("x")).into();
        let (topic, bytes) = frames(&copy);
        let started = Instant::now();
        publish(&mut publisher, &topic, &bytes).await.unwrap();
        let got = wait_for_messages(&recipient, &room, &bot.user_id, i + 2).await;
        assert_eq!(got.len(), i + 2, "message {i} did not arrive");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "Matrix delivery latency, ZeroMQ publish to message read, {} messages: median {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        p(0.5),
        p(0.99),
        latencies[latencies.len() - 1]
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all: Vec<_> = recipient
        .messages(&room)
        .await
        .unwrap()
        .into_iter()
        .filter(|(from, _)| *from == bot.user_id)
        .collect();
    assert_eq!(all.len(), 16, "a message arrived twice");
    let unconfirmed = Recipient::new(&synapse.url, mallory.clone());
    assert!(
        unconfirmed.invites().await.unwrap().is_empty(),
        "sent to an unconfirmed Matrix account"
    );
    synapse.stop().await;
    h.shutdown().await;
}
