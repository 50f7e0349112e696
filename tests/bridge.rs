//! The bridge against a real RabbitMQ (127.0.0.1:5672, guest/guest; started with
//! `rabbitmq-server -detached` when none answers) and a real moto server: fedora-messaging
//! messages published to `amq.topic` reach `incoming` exactly as sent, and a bridge killed
//! mid-stream loses nothing (the broker redelivers what it had not acknowledged).

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fmn_bridge::{AmqpConfig, Config, QueueName};
use fmn_e2e::Harness;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The corpus messages, each `{topic, headers, body, id}`.
fn corpus() -> Vec<Value> {
    include_str!("fixtures/fedora-messaging-examples.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `rounds` copies of the corpus, each copy's ids made unique to this run and round.
fn messages(run: &str, rounds: usize) -> Vec<Value> {
    let corpus = corpus();
    (0..rounds)
        .flat_map(|round| {
            corpus.iter().map(move |m| {
                let mut m = m.clone();
                m["id"] = format!("{run}-{round}-{}", m["id"].as_str().unwrap()).into();
                m
            })
        })
        .collect()
}

/// Makes sure a RabbitMQ answers on 127.0.0.1:5672, starting one if needed.
async fn ensure_rabbitmq() {
    let answers = || async {
        tokio::net::TcpStream::connect("127.0.0.1:5672")
            .await
            .is_ok()
    };
    if answers().await {
        return;
    }
    let status = tokio::process::Command::new("rabbitmq-server")
        .arg("-detached")
        .status()
        .await
        .expect("rabbitmq-server (run localstack/bootstrap.sh)");
    assert!(status.success(), "rabbitmq-server -detached failed");
    for _ in 0..120 {
        if answers().await {
            // The port opens a little before the broker accepts logins.
            tokio::time::sleep(Duration::from_secs(2)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("RabbitMQ did not start on 127.0.0.1:5672");
}

async fn connect() -> Connection {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    Connection::connect(BROKER, properties).await.unwrap()
}

/// Publishes like fedora-messaging does: to `amq.topic`, the topic as routing key, headers,
/// message id, JSON body; waits for the broker's confirmations.
async fn publish(connection: &Connection, messages: &[Value]) {
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut confirms = Vec::new();
    for m in messages {
        let properties = BasicProperties::default()
            .with_headers(fmn_bridge::amqp::headers::from_json(&m["headers"]))
            .with_message_id(ShortString::from(m["id"].as_str().unwrap()))
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        let confirm = channel
            .basic_publish(
                "amq.topic",
                m["topic"].as_str().unwrap(),
                BasicPublishOptions::default(),
                m["body"].to_string().as_bytes(),
                properties,
            )
            .await
            .unwrap();
        confirms.push(confirm);
    }
    for c in confirms {
        c.await.unwrap();
    }
}

/// A bridge consuming the durable `queue`, bound to every corpus topic.
fn bridge_config(h: &Harness, queue: &str) -> Config {
    let mut amqp = AmqpConfig::new(BROKER, QueueName::Durable(queue.into()));
    amqp.routing_keys = corpus()
        .iter()
        .map(|m| m["topic"].as_str().unwrap().to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    amqp.prefetch = 50;
    Config {
        amqp: Some(amqp),
        queue_url: h.stack.output("IncomingQueueUrl").unwrap().to_owned(),
        ..Default::default()
    }
}

fn start_bridge(
    h: &Harness,
    config: Config,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let sqs = aws_sdk_sqs::Client::new(&h.aws);
    tokio::spawn(async move {
        fmn_bridge::run(config, sqs, stop).await.unwrap();
    })
}

/// Receives (and deletes) from `incoming` until `enough` of `ids` have arrived or nothing
/// came for `idle`; returns every message of this run by id, with how many times it arrived.
async fn drain_incoming(
    h: &Harness,
    run: &str,
    ids: &BTreeSet<String>,
    enough: usize,
    idle: Duration,
) -> BTreeMap<String, Vec<(String, Value)>> {
    let sqs = aws_sdk_sqs::Client::new(&h.aws);
    let url = h.stack.output("IncomingQueueUrl").unwrap().to_owned();
    let mut seen: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    let mut last = tokio::time::Instant::now();
    while last.elapsed() < idle && ids.iter().filter(|id| seen.contains_key(*id)).count() < enough {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if !messages.is_empty() {
            last = tokio::time::Instant::now();
        }
        for m in messages {
            let topic = m
                .message_attributes()
                .and_then(|a| a.get(fmn_queue::TOPIC_ATTRIBUTE))
                .and_then(|a| a.string_value())
                .unwrap_or_default()
                .to_owned();
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            if let Some(id) = body["id"].as_str().filter(|id| id.starts_with(run)) {
                seen.entry(id.to_owned()).or_default().push((topic, body));
            }
        }
    }
    seen
}

fn run_id(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedora_messaging_reaches_incoming_exactly_as_sent() {
    ensure_rabbitmq().await;
    let h = Harness::deploy(&[]).await.expect("emulator and stack");
    let run = run_id("exact");
    let sent = messages(&run, 2);
    let stop = CancellationToken::new();
    let bridge = start_bridge(&h, bridge_config(&h, &run), stop.clone());
    let broker = connect().await;
    // Let the bridge declare and bind its queue before publishing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    publish(&broker, &sent).await;

    let ids: BTreeSet<String> = sent
        .iter()
        .map(|m| m["id"].as_str().unwrap().into())
        .collect();
    let seen = drain_incoming(&h, &run, &ids, ids.len(), Duration::from_secs(20)).await;
    assert_eq!(seen.len(), sent.len(), "every message reaches incoming");
    for m in &sent {
        let arrivals = &seen[m["id"].as_str().unwrap()];
        assert_eq!(arrivals.len(), 1, "{} arrives once", m["id"]);
        let (topic, body) = &arrivals[0];
        assert_eq!(topic, m["topic"].as_str().unwrap());
        assert_eq!(body, m, "forwarded exactly as sent");
    }
    stop.cancel();
    bridge.await.unwrap();
    let _ = broker.close(200, "done").await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_bridge_loses_nothing() {
    ensure_rabbitmq().await;
    let h = Harness::deploy(&[]).await.expect("emulator and stack");
    let run = run_id("killed");
    let sent = messages(&run, 2);
    let ids: BTreeSet<String> = sent
        .iter()
        .map(|m| m["id"].as_str().unwrap().into())
        .collect();

    // The first bridge declares the durable queue, takes part of the stream, then dies
    // without a chance to acknowledge what it holds.
    let first = start_bridge(&h, bridge_config(&h, &run), CancellationToken::new());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A steady stream (10 messages every 50 ms), so that the kill lands in the middle of it.
    let stream = {
        let sent = sent.clone();
        let broker = connect().await;
        tokio::spawn(async move {
            for chunk in sent.chunks(10) {
                publish(&broker, chunk).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = broker.close(200, "done").await;
        })
    };
    let before = drain_incoming(&h, &run, &ids, 100, Duration::from_secs(20)).await;
    first.abort();
    let _ = first.await;
    assert!(before.len() < ids.len(), "killed mid-stream");

    stream.await.unwrap();
    let stop = CancellationToken::new();
    let second = start_bridge(&h, bridge_config(&h, &run), stop.clone());
    let mut seen = drain_incoming(&h, &run, &ids, ids.len(), Duration::from_secs(20)).await;
    for (id, arrivals) in before {
        seen.entry(id).or_default().extend(arrivals);
    }
    let missing: Vec<_> = ids.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    stop.cancel();
    second.await.unwrap();
    h.shutdown().await;
}
