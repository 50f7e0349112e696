//! The bridge against a real RabbitMQ (127.0.0.1:5672, guest/guest; started with
//! `rabbitmq-server -detached` when none answers) and a real moto server: fedora-messaging
//! messages published to `amq.topic` reach `incoming` exactly as sent, and a bridge killed
//! mid-stream loses nothing (the broker redelivers what it had not acknowledged).

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fmn_bridge::{AmqpConfig, Config, QueueName};
use fmn_e2e::Harness;
use fmn_e2e::faults::OwnBroker;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use zeromq::Socket;

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

/// Declares a topic exchange of this test's own, so that concurrent tests (and other users of
/// the broker) never see each other's messages.
async fn declare_exchange(connection: &Connection, name: &str) {
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_declare(
            name,
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = channel.close(200, "declared").await;
}

/// Publishes like fedora-messaging does (to the run's exchange, standing for `amq.topic`): the
/// topic as routing key, headers, message id, JSON body; waits for the broker's confirmations.
async fn publish(connection: &Connection, exchange: &str, messages: &[Value]) {
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
                exchange,
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

/// A bridge consuming the durable queue named `run`, bound to every corpus topic on the
/// exchange named `run`.
fn bridge_config(h: &Harness, run: &str) -> Config {
    let mut amqp = AmqpConfig::new(BROKER, QueueName::Durable(run.into()));
    amqp.exchange = run.into();
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

/// `GET path` on the bridge's health endpoint: the status code and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .expect("health endpoint answers")
            .expect("health endpoint accepts");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .expect("health endpoint responds")
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The value of one sample (`name{labels}`) in Prometheus text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

fn metrics_addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], fmn_emulator::free_port().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedora_messaging_reaches_incoming_exactly_as_sent() {
    ensure_rabbitmq().await;
    let h = Harness::deploy(&[]).await.expect("emulator and stack");
    let run = run_id("exact");
    let sent = messages(&run, 2);
    let stop = CancellationToken::new();
    let health = metrics_addr();
    let mut config = bridge_config(&h, &run);
    config.metrics_addr = Some(health);
    let broker = connect().await;
    declare_exchange(&broker, &run).await;
    let bridge = start_bridge(&h, config, stop.clone());
    // Let the bridge declare and bind its queue before publishing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = http_get(health, "/healthz").await;
    assert_eq!(status, 200, "healthy once connected: {body}");
    let healthz: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(healthz["sources"]["amqp"]["connected"], 1, "{healthz}");
    assert_eq!(healthz["last_message_age_seconds"], Value::Null);
    publish(&broker, &run, &sent).await;

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
    // The metrics count what happened, per source.
    let (status, text) = http_get(health, "/metrics").await;
    assert_eq!(status, 200);
    let n = sent.len() as f64;
    assert_eq!(
        sample(&text, "fmn_bridge_messages_received_total{source=\"amqp\"}"),
        n
    );
    assert_eq!(
        sample(
            &text,
            "fmn_bridge_messages_forwarded_total{source=\"amqp\"}"
        ),
        n
    );
    assert_eq!(
        sample(
            &text,
            "fmn_bridge_messages_received_total{source=\"fedmsg\"}"
        ),
        0.0
    );
    assert_eq!(sample(&text, "fmn_bridge_sqs_messages_sent_total"), n);
    assert_eq!(
        sample(&text, "fmn_bridge_source_connected{source=\"amqp\"}"),
        1.0
    );
    assert_eq!(sample(&text, "fmn_bridge_spool_depth"), 0.0);
    assert!(sample(&text, "fmn_bridge_last_message_age_seconds") < 60.0);
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

    declare_exchange(&connect().await, &run).await;
    // The first bridge declares the durable queue, takes part of the stream, then dies
    // without a chance to acknowledge what it holds.
    let first = start_bridge(&h, bridge_config(&h, &run), CancellationToken::new());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A steady stream (10 messages every 50 ms), so that the kill lands in the middle of it.
    let stream = {
        let sent = sent.clone();
        let broker = connect().await;
        let exchange = run.clone();
        tokio::spawn(async move {
            for chunk in sent.chunks(10) {
                publish(&broker, &exchange, chunk).await;
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

/// A moto server with only an `incoming` queue: what the bridge needs, quick to (re)start.
struct Emulator {
    moto: fmn_emulator::Moto,
    port: u16,
    aws: aws_config::SdkConfig,
    queue_url: String,
}

const OUTAGE_QUEUE: &str = "fmn-outage-incoming";

impl Emulator {
    /// Starts moto on `port` and creates the queue (the same URL every time).
    async fn start(port: u16) -> Emulator {
        let root = fmn_local::repo_root();
        let moto = fmn_emulator::Moto::start(&root, port)
            .await
            .expect("moto server (run localstack/bootstrap.sh)");
        let aws = fmn_emulator::config(&moto.endpoint).await;
        let queue_url = aws_sdk_sqs::Client::new(&aws)
            .create_queue()
            .queue_name(OUTAGE_QUEUE)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        Emulator {
            moto,
            port,
            aws,
            queue_url,
        }
    }
}

/// Receives (and deletes) from `url` until `want` distinct messages of this run arrived or
/// nothing came for `idle`; every arrival by id, with its body.
async fn receive_run(
    aws: &aws_config::SdkConfig,
    url: &str,
    run: &str,
    want: usize,
    idle: Duration,
) -> BTreeMap<String, Vec<Value>> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let mut seen: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut last = tokio::time::Instant::now();
    while last.elapsed() < idle && seen.len() < want {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            last = tokio::time::Instant::now();
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            // As the matcher reads it: an encoded body decoded (`fmn_queue::wire`).
            let encoding = m
                .message_attributes()
                .and_then(|a| a.get(fmn_queue::wire::ENCODING_ATTRIBUTE))
                .and_then(|a| a.string_value());
            let text =
                fmn_queue::wire::decode_body(m.body().unwrap().to_owned(), encoding).unwrap();
            let body: Value = serde_json::from_str(&text).unwrap();
            if let Some(id) = body["id"].as_str().filter(|id| id.starts_with(run)) {
                seen.entry(id.to_owned()).or_default().push(body);
            }
        }
    }
    seen
}

/// Polls `cond` on the metrics every 100 ms for up to `timeout`.
async fn wait_for(
    metrics: &fmn_bridge::Metrics,
    timeout: Duration,
    what: &str,
    cond: impl Fn(&fmn_bridge::Metrics) -> bool,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond(metrics) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            metrics.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_outage_is_spooled_and_drained_exactly_once() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    ensure_rabbitmq().await;
    let port = fmn_emulator::free_port().unwrap();
    let emulator = Emulator::start(port).await;
    let run = run_id("outage");
    let sent = messages(&run, 2);
    let thirds: Vec<&[Value]> = sent.chunks(sent.len().div_ceil(3)).collect();
    let spool = tempfile::tempdir().unwrap();
    // The queue URL and the client configuration stay valid across emulator restarts (same
    // port, same queue name).
    let queue_url = emulator.queue_url.clone();
    let aws = emulator.aws.clone();
    let config = |health| {
        let mut amqp = AmqpConfig::new(BROKER, QueueName::Durable(run.clone()));
        amqp.exchange = run.clone();
        amqp.prefetch = 50;
        Config {
            amqp: Some(amqp),
            queue_url: queue_url.clone(),
            spool_dir: Some(spool.path().to_owned()),
            metrics_addr: Some(health),
            ..Default::default()
        }
    };
    let start = |config: Config, metrics: Arc<fmn_bridge::Metrics>, stop: CancellationToken| {
        let sqs = aws_sdk_sqs::Client::new(&aws);
        tokio::spawn(async move {
            fmn_bridge::run_with_metrics(config, sqs, stop, metrics)
                .await
                .unwrap();
        })
    };
    let broker = connect().await;
    declare_exchange(&broker, &run).await;

    // 1. SQS up: the first third goes straight through.
    let health = metrics_addr();
    let metrics = Arc::new(fmn_bridge::Metrics::default());
    let stop = CancellationToken::new();
    let first = start(config(health), metrics.clone(), stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    publish(&broker, &run, thirds[0]).await;
    let mut seen = receive_run(
        &emulator.aws,
        &emulator.queue_url,
        &run,
        thirds[0].len(),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(seen.len(), thirds[0].len(), "first third before the outage");

    // 2. The emulator goes away; the stream goes on, into the spool.
    let Emulator { moto, .. } = emulator;
    moto.stop().await;
    publish(&broker, &run, thirds[1]).await;
    let spooled_all = (thirds[0].len() + thirds[1].len()) as u64;
    wait_for(
        &metrics,
        Duration::from_secs(120),
        "the second third spooled",
        |m| {
            m.amqp.received.load(Relaxed) == spooled_all
                && m.spool_depth.load(Relaxed) == thirds[1].len() as u64
        },
    )
    .await;
    let (_, text) = http_get(health, "/metrics").await;
    assert_eq!(
        sample(&text, "fmn_bridge_spool_depth"),
        thirds[1].len() as f64
    );
    assert_eq!(
        sample(&text, "fmn_bridge_spooled_total"),
        thirds[1].len() as f64
    );
    assert!(sample(&text, "fmn_bridge_sqs_refusals_total") >= 1.0);

    // 3. The bridge stops with a non-empty spool (SQS still down): the spool stays on disk.
    stop.cancel();
    first.await.unwrap();
    let batches = std::fs::read_dir(spool.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "batch")
        })
        .count();
    assert!(batches > 0, "the spool survives the bridge");

    // 4. The emulator comes back on the same port (its queue recreated, same URL), and a new
    //    bridge resumes from the spool while the last third streams in.
    let emulator = Emulator::start(port).await;
    assert_eq!(emulator.queue_url, queue_url);
    let health = metrics_addr();
    let metrics = Arc::new(fmn_bridge::Metrics::default());
    let stop = CancellationToken::new();
    let second = start(config(health), metrics.clone(), stop.clone());
    assert_eq!(emulator.port, port);
    publish(&broker, &run, thirds[2]).await;
    let rest = receive_run(
        &emulator.aws,
        &emulator.queue_url,
        &run,
        thirds[1].len() + thirds[2].len(),
        Duration::from_secs(30),
    )
    .await;
    for (id, arrivals) in rest {
        seen.entry(id).or_default().extend(arrivals);
    }
    for m in &sent {
        let id = m["id"].as_str().unwrap();
        let arrivals = seen.get(id).map_or(0, Vec::len);
        assert_eq!(arrivals, 1, "{id} arrives exactly once");
        assert_eq!(&seen[id][0], m, "{id} exactly as sent");
    }
    wait_for(
        &metrics,
        Duration::from_secs(10),
        "the spool drained",
        |m| m.spool_depth.load(Relaxed) == 0,
    )
    .await;
    assert_eq!(
        metrics.drained.load(Relaxed),
        thirds[1].len() as u64,
        "resumed from the spool"
    );
    stop.cancel();
    second.await.unwrap();
    let left = std::fs::read_dir(spool.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert_eq!(left, 0, "spool empty on disk");
    let _ = broker.close(200, "done").await;
    emulator.moto.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_arrives_whole() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    let h = Harness::deploy(&[]).await.expect("emulator and stack");
    let run = run_id("oversize");
    let port = fmn_emulator::free_port().unwrap();
    let metrics = Arc::new(fmn_bridge::Metrics::default());
    let config = Config {
        fedmsg: vec![format!("bind:tcp://127.0.0.1:{port}").parse().unwrap()],
        queue_url: h.stack.output("IncomingQueueUrl").unwrap().to_owned(),
        oversize_bucket: Some(h.stack.output("OversizeBucketName").unwrap().to_owned()),
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let bridge = {
        let bridge = fmn_bridge::Bridge::from_aws(config, &h.aws).with_metrics(metrics.clone());
        let stop = stop.clone();
        tokio::spawn(async move { bridge.run(stop).await.unwrap() })
    };
    let mut publisher = zeromq::PubSocket::new();
    zeromq::Socket::connect(&mut publisher, &format!("tcp://127.0.0.1:{port}"))
        .await
        .unwrap();
    // A fedmsg envelope of `bytes` bytes (non-ASCII text included), forwarded verbatim.
    let envelope = |name: &str, bytes: usize| {
        let head = format!(
            r#"{{"topic": "org.fedoraproject.prod.buildsys.build.state.change", "msg_id": "{run}-{name}", "i": 1, "timestamp": 1700000000.0, "msg": {{"owner": "jędrzej ☃", "log": ""#
        );
        let tail = r#""}}"#;
        let fill = "é☃ build log line\n".replace('\n', "\\n");
        let mut text = head;
        while text.len() + fill.len() + tail.len() <= bytes {
            text.push_str(&fill);
        }
        text.push_str(&"x".repeat(bytes - text.len() - tail.len()));
        text.push_str(tail);
        assert_eq!(text.len(), bytes);
        serde_json::from_str::<Value>(&text).expect("valid JSON");
        text
    };
    // ZeroMQ drops what is published before the subscription arrives: a marker first.
    let marker = envelope("marker", 200);
    let topic = "org.fedoraproject.prod.buildsys.build.state.change";
    for _ in 0..100 {
        fmn_e2e::publish(&mut publisher, topic, marker.as_bytes())
            .await
            .unwrap();
        if metrics.fedmsg.received.load(Relaxed) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics.fedmsg.received.load(Relaxed) > 0,
        "the bridge subscribed"
    );
    let big = envelope("big", 600 * 1024);
    let inline = envelope("inline", fmn_queue::oversize::MAX_INLINE_BYTES);
    for body in [&big, &inline] {
        fmn_e2e::publish(&mut publisher, topic, body.as_bytes())
            .await
            .unwrap();
    }

    let sqs = aws_sdk_sqs::Client::new(&h.aws);
    let url = h.stack.output("IncomingQueueUrl").unwrap();
    let resolver = fmn_queue::oversize::Resolver::new(aws_sdk_s3::Client::new(&h.aws));
    let mut arrived: BTreeMap<String, (String, bool)> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while arrived.len() < 2 && tokio::time::Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            let raw = m.body().unwrap().to_owned();
            assert!(raw.len() <= 256 * 1024, "within SQS's limit");
            let topic_attribute = m
                .message_attributes()
                .and_then(|a| a.get(fmn_queue::TOPIC_ATTRIBUTE))
                .and_then(|a| a.string_value());
            assert_eq!(topic_attribute, Some(topic));
            let pointer = fmn_queue::oversize::Pointer::from_body(&raw).is_some();
            // What the matcher does with every body before normalising it.
            let body = resolver.resolve(raw).await.unwrap();
            let v: Value = serde_json::from_str(&body).unwrap();
            let id = v["msg_id"].as_str().unwrap().to_owned();
            if id.ends_with("-big") || id.ends_with("-inline") {
                arrived.insert(id, (body, pointer));
            }
        }
    }
    let (body, pointer) = &arrived[&format!("{run}-big")];
    assert!(*pointer, "over the limit: a pointer on the queue");
    assert_eq!(body.as_bytes(), big.as_bytes(), "resolved byte for byte");
    let (body, pointer) = &arrived[&format!("{run}-inline")];
    assert!(!*pointer, "at the limit: inline");
    assert_eq!(body.as_bytes(), inline.as_bytes());
    assert_eq!(metrics.offloaded.load(Relaxed), 1);
    stop.cancel();
    bridge.await.unwrap();
    h.shutdown().await;
}

/// Every message on `url` (received and deleted) until `idle` passes without one: each body
/// with its message attributes.
async fn receive_all(
    aws: &aws_config::SdkConfig,
    url: &str,
    want: usize,
    idle: Duration,
) -> Vec<(String, BTreeMap<String, String>)> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let mut all = Vec::new();
    let mut last = tokio::time::Instant::now();
    while last.elapsed() < idle && all.len() < want {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            last = tokio::time::Instant::now();
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            let attributes = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            all.push((m.body().unwrap().to_owned(), attributes));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_fedmsg_invalid_signatures_are_quarantined_with_the_reason() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    let h = Harness::deploy(&[]).await.expect("emulator and stack");
    let fixtures = fmn_local::repo_root().join("bridge/tests/fixtures");
    let vectors: Vec<Value> = std::fs::read_to_string(fixtures.join("fedmsg-signed-vectors.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let port = fmn_emulator::free_port().unwrap();
    let metrics = Arc::new(fmn_bridge::Metrics::default());
    let incoming = h.stack.output("IncomingQueueUrl").unwrap().to_owned();
    let dlq = h
        .stack
        .output("IncomingDeadLetterQueueUrl")
        .unwrap()
        .to_owned();
    let config = Config {
        fedmsg: vec![
            format!("signed:bind:tcp://127.0.0.1:{port}")
                .parse()
                .unwrap(),
        ],
        fedmsg_signatures: Some(fmn_bridge::SignatureConfig {
            ca: fixtures.join("ca.crt"),
            crl: Some(fixtures.join("crl.pem")),
            ..Default::default()
        }),
        queue_url: incoming.clone(),
        quarantine_queue_url: Some(dlq.clone()),
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let bridge = {
        let sqs = aws_sdk_sqs::Client::new(&h.aws);
        let (stop, metrics) = (stop.clone(), metrics.clone());
        tokio::spawn(async move {
            fmn_bridge::run_with_metrics(config, sqs, stop, metrics)
                .await
                .unwrap()
        })
    };
    let mut publisher = zeromq::PubSocket::new();
    zeromq::Socket::connect(&mut publisher, &format!("tcp://127.0.0.1:{port}"))
        .await
        .unwrap();
    // ZeroMQ drops what is published before the subscription arrives: an (unsigned, so
    // quarantined) marker until the bridge sees one.
    let marker = r#"{"topic": "t", "msg_id": "subscription-marker", "msg": {}}"#;
    for _ in 0..100 {
        fmn_e2e::publish(&mut publisher, "t", marker.as_bytes())
            .await
            .unwrap();
        if metrics.fedmsg.received.load(Relaxed) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics.fedmsg.received.load(Relaxed) > 0,
        "the bridge subscribed"
    );
    let mut expected_valid = Vec::new();
    let mut expected_invalid = Vec::new();
    for v in &vectors {
        let wire = v["envelope"].to_string();
        let topic = v["envelope"]["topic"].as_str().unwrap_or("none");
        fmn_e2e::publish(&mut publisher, topic, wire.as_bytes())
            .await
            .unwrap();
        // Under one CA and its CRL, no routing policy: the routing cases are valid, and a
        // revoked certificate is not.
        let case = v["case"].as_str().unwrap();
        if (v["expect_valid"] == true && case != "revoked_cert_without_crl")
            || case.starts_with("routing_")
        {
            expected_valid.push(wire);
        } else {
            expected_invalid.push(wire);
        }
    }
    let mut forwarded: Vec<String> = receive_all(
        &h.aws,
        &incoming,
        expected_valid.len(),
        Duration::from_secs(10),
    )
    .await
    .into_iter()
    .map(|(body, _)| body)
    .collect();
    // Every marker too (how many were seen is known only now): until the DLQ goes quiet.
    let quarantined = receive_all(&h.aws, &dlq, usize::MAX, Duration::from_secs(5)).await;
    forwarded.sort();
    expected_valid.sort();
    assert_eq!(
        forwarded, expected_valid,
        "valid signatures forwarded, verbatim"
    );
    let mut rejected = Vec::new();
    let mut markers = 0;
    for (body, attributes) in quarantined {
        let reason = &attributes[fmn_queue::QUARANTINE_REASON_ATTRIBUTE];
        assert!(reason.starts_with("fedmsg signature: "), "{reason}");
        if body == marker {
            markers += 1;
        } else {
            rejected.push(body);
        }
    }
    rejected.sort();
    expected_invalid.sort();
    assert_eq!(
        rejected, expected_invalid,
        "invalid ones quarantined, never forwarded"
    );
    assert_eq!(
        metrics.fedmsg.quarantined.load(Relaxed) as usize,
        expected_invalid.len() + markers
    );
    stop.cancel();
    bridge.await.unwrap();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_feeds_both_generations_and_datagrepper_pages_into_incoming() {
    use std::io::Write;

    let port = fmn_emulator::free_port().unwrap();
    let emulator = Emulator::start(port).await;
    let run = run_id("replay");
    // fedora-messaging corpus lines (with the corpus' extra members), ids made unique.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut expected: BTreeMap<String, Value> = BTreeMap::new();
    for m in messages(&run, 1).into_iter().take(20) {
        let mut line = m.clone();
        line["expected"] = serde_json::json!({"summary": "dropped on the way"});
        writeln!(file, "{line}").unwrap();
        let id = m["id"].as_str().unwrap().to_owned();
        let forwarded = serde_json::json!({
            "topic": m["topic"], "headers": m["headers"], "body": m["body"], "id": m["id"],
        });
        expected.insert(id, forwarded);
    }
    // fedmsg envelopes, verbatim (the signed vectors' envelopes, ids made unique).
    let fixtures = fmn_local::repo_root().join("bridge/tests/fixtures");
    let vectors = std::fs::read_to_string(fixtures.join("fedmsg-signed-vectors.jsonl")).unwrap();
    for (i, line) in vectors.lines().take(3).enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        let mut envelope = v["envelope"].clone();
        let id = format!("{run}-fedmsg-{i}");
        envelope["id"] = id.clone().into();
        writeln!(file, "{envelope}").unwrap();
        expected.insert(id, envelope);
    }
    // A datagrepper page: one fedora-messaging-era item, one fedmsg-era item.
    let new_id = format!("{run}-dg-new");
    let old_id = format!("{run}-dg-old");
    let page = serde_json::json!({"raw_messages": [
        {"topic": "org.fedoraproject.prod.bodhi.update.comment", "msg_id": new_id,
         "headers": {"fedora_messaging_schema": "bodhi.update.comment.v1", "sent-at": "2024-01-01T00:00:00+00:00"},
         "msg": {"comment": {"text": "LGTM"}}, "i": 0, "signature": null, "certificate": null},
        {"topic": "org.fedoraproject.prod.git.receive", "msg_id": old_id, "id": old_id,
         "headers": null, "msg": {"commit": {"repo": "foo"}}, "i": 1, "timestamp": 1344447839.0},
    ], "count": 2, "pages": 1});
    writeln!(file, "{page}").unwrap();
    expected.insert(
        new_id.clone(),
        serde_json::json!({"topic": "org.fedoraproject.prod.bodhi.update.comment",
            "headers": page["raw_messages"][0]["headers"],
            "body": {"comment": {"text": "LGTM"}}, "id": new_id}),
    );
    expected.insert(old_id.clone(), page["raw_messages"][1].clone());
    file.flush().unwrap();

    let messages = fmn_bridge::replay::read_file(file.path()).unwrap();
    assert_eq!(messages.len(), expected.len());
    let config = Config {
        queue_url: emulator.queue_url.clone(),
        ..Default::default()
    };
    let rate = 40.0;
    let started = std::time::Instant::now();
    let sent = fmn_bridge::replay::replay(
        fmn_bridge::Bridge::from_aws(config, &emulator.aws),
        messages,
        Some(rate),
    )
    .await
    .unwrap();
    assert_eq!(sent as usize, expected.len());
    // Paced: n messages at `rate` a second take at least (n - 1) / rate.
    assert!(started.elapsed().as_secs_f64() >= (expected.len() - 1) as f64 / rate);
    let arrived = receive_all(
        &emulator.aws,
        &emulator.queue_url,
        expected.len(),
        Duration::from_secs(10),
    )
    .await;
    let mut seen: BTreeMap<String, Value> = BTreeMap::new();
    for (body, attributes) in arrived {
        let v: Value = serde_json::from_str(&body).unwrap();
        let id = v["id"].as_str().unwrap().to_owned();
        assert_eq!(
            attributes
                .get(fmn_queue::TOPIC_ATTRIBUTE)
                .map(String::as_str),
            v["topic"].as_str()
        );
        assert!(seen.insert(id.clone(), v).is_none(), "{id} arrives once");
    }
    assert_eq!(
        seen, expected,
        "each message as the bridge would have forwarded it"
    );
    emulator.moto.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_restart_loses_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    let mut broker = OwnBroker::new();
    broker.start().await;
    let port = fmn_emulator::free_port().unwrap();
    let emulator = Emulator::start(port).await;
    let run = run_id("restart");
    let sent = messages(&run, 6); // 1,092 messages
    let properties = || {
        ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio)
    };
    let metrics = Arc::new(fmn_bridge::Metrics::default());
    let mut amqp = AmqpConfig::new(broker.url(), QueueName::Durable(run.clone()));
    amqp.prefetch = 50;
    let config = Config {
        amqp: Some(amqp),
        queue_url: emulator.queue_url.clone(),
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let bridge = {
        let sqs = aws_sdk_sqs::Client::new(&emulator.aws);
        let (stop, metrics) = (stop.clone(), metrics.clone());
        tokio::spawn(async move {
            fmn_bridge::run_with_metrics(config, sqs, stop, metrics)
                .await
                .unwrap()
        })
    };
    wait_for(
        &metrics,
        Duration::from_secs(30),
        "the bridge connected",
        |m| m.amqp.connected.load(Relaxed) == 1,
    )
    .await;
    // First half, then the broker restarts while the bridge holds unacknowledged deliveries,
    // then the second half.
    let (first, second) = sent.split_at(sent.len() / 2);
    let publisher = Connection::connect(&broker.url(), properties())
        .await
        .unwrap();
    publish(&publisher, "amq.topic", first).await;
    let _ = publisher.close(200, "restarting").await;
    wait_for(
        &metrics,
        Duration::from_secs(60),
        "part of the stream",
        |m| m.amqp.received.load(Relaxed) >= 100,
    )
    .await;
    broker.stop().await;
    broker.start().await;
    let publisher = Connection::connect(&broker.url(), properties())
        .await
        .unwrap();
    publish(&publisher, "amq.topic", second).await;
    let seen = receive_run(
        &emulator.aws,
        &emulator.queue_url,
        &run,
        sent.len(),
        Duration::from_secs(60),
    )
    .await;
    // Deliveries in flight when the connection dropped come back: duplicates are allowed
    // (the matcher's idempotency makes them harmless), so the assertion is on the set of ids.
    let missing: Vec<&str> = sent
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "lost {} messages: {missing:?}",
        missing.len()
    );
    for m in &sent {
        assert_eq!(&seen[m["id"].as_str().unwrap()][0], m, "forwarded as sent");
    }
    assert!(
        metrics.amqp.reconnects.load(Relaxed) >= 1,
        "the bridge reconnected"
    );
    stop.cancel();
    bridge.await.unwrap();
    let _ = publisher.close(200, "done").await;
    broker.stop().await;
    emulator.moto.stop().await;
}

/// Characters SQS refuses in a message body (outside `#x9 | #xA | #xD | #x20-#xD7FF |
/// #xE000-#xFFFD | #x10000-#x10FFFF`), and neighbours it accepts.
const SQS_REFUSED: [char; 6] = ['\u{0}', '\u{8}', '\u{B}', '\u{1F}', '\u{FFFE}', '\u{FFFF}'];
const SQS_ACCEPTED: [char; 8] = [
    '\u{9}',
    '\u{A}',
    '\u{D}',
    '\u{20}',
    '\u{D7FF}',
    '\u{E000}',
    '\u{FFFD}',
    '\u{10FFFF}',
];

/// Sends `a<c>b` to `url` for each of `chars`; the characters refused, with the error code.
async fn refused_by(sqs: &aws_sdk_sqs::Client, url: &str, chars: &[char]) -> Vec<(char, String)> {
    let mut refused = Vec::new();
    for &c in chars {
        if let Err(e) = sqs
            .send_message()
            .queue_url(url)
            .message_body(format!("a{c}b"))
            .send()
            .await
        {
            let code = e
                .as_service_error()
                .and_then(aws_sdk_sqs::error::ProvideErrorMetadata::code)
                .unwrap_or("?")
                .to_owned();
            refused.push((c, code));
        }
    }
    refused
}

/// LocalStack's SQS validates as AWS does, where moto's accepts anything: the bridge's
/// traffic goes through it as on moto, and what SQS refuses is pinned down. One LocalStack
/// start (localstack-core on the host, `.venv-localstack`) serves the whole test.
///
/// A bus message carrying U+FFFE or U+FFFF reaches SQS unescaped (serde_json escapes only
/// control characters) and SQS refuses it as it is: the bridge sends it base64-encoded
/// (`fmn_queue::wire`), and the 1,000 messages behind it arrive too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_localstack_sqs_refuses_what_moto_accepts_and_the_bridge_forwards_the_corpus() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    ensure_rabbitmq().await;
    let root = fmn_local::repo_root();
    let started = std::time::Instant::now();
    let localstack = fmn_emulator::LocalStack::start(&root, fmn_emulator::free_port().unwrap())
        .await
        .expect("LocalStack (run localstack/bootstrap.sh)");
    let healthy = started.elapsed();
    let aws = fmn_emulator::config(&localstack.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let url = sqs
        .create_queue()
        .queue_name("fmn-localstack-incoming")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    eprintln!(
        "LocalStack: health check after {healthy:?}, first queue after {:?}",
        started.elapsed()
    );

    // 1. The characters: LocalStack refuses each as AWS does; moto accepts them all.
    let refused = refused_by(&sqs, &url, &SQS_REFUSED).await;
    assert_eq!(
        refused.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        SQS_REFUSED,
        "LocalStack refuses these"
    );
    assert!(
        refused
            .iter()
            .all(|(_, code)| code == "InvalidMessageContents"),
        "{refused:?}"
    );
    assert_eq!(refused_by(&sqs, &url, &SQS_ACCEPTED).await, vec![]);
    let moto = fmn_emulator::Moto::start(&root, fmn_emulator::free_port().unwrap())
        .await
        .unwrap();
    let moto_sqs = aws_sdk_sqs::Client::new(&fmn_emulator::config(&moto.endpoint).await);
    let moto_url = moto_sqs
        .create_queue()
        .queue_name("q")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert_eq!(
        refused_by(&moto_sqs, &moto_url, &SQS_REFUSED).await,
        vec![],
        "moto accepts what SQS refuses (why this test runs on LocalStack)"
    );
    moto.stop().await;
    // Purge what step 1 left behind.
    while let Some(ms) = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
    {
        for m in ms {
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }

    // 2. The bridge forwards the real corpus through LocalStack's SQS exactly as sent.
    let run = run_id("localstack");
    let sent = messages(&run, 1);
    let spool = tempfile::tempdir().unwrap();
    let mut amqp = AmqpConfig::new(BROKER, QueueName::Durable(run.clone()));
    amqp.exchange = run.clone();
    amqp.prefetch = 50;
    let config = Config {
        amqp: Some(amqp),
        queue_url: url.clone(),
        spool_dir: Some(spool.path().to_owned()),
        ..Default::default()
    };
    let metrics = Arc::new(fmn_bridge::Metrics::default());
    let stop = CancellationToken::new();
    let bridge = {
        let (sqs, stop, metrics) = (sqs.clone(), stop.clone(), metrics.clone());
        tokio::spawn(async move {
            fmn_bridge::run_with_metrics(config, sqs, stop, metrics)
                .await
                .unwrap();
        })
    };
    let broker = connect().await;
    declare_exchange(&broker, &run).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    publish(&broker, &run, &sent).await;
    let seen = receive_run(&aws, &url, &run, sent.len(), Duration::from_secs(30)).await;
    for m in &sent {
        let id = m["id"].as_str().unwrap();
        assert_eq!(seen.get(id).map_or(0, Vec::len), 1, "{id} arrives once");
        assert_eq!(&seen[id][0], m, "{id} exactly as sent");
    }
    assert_eq!(metrics.sqs_refusals.load(Relaxed), 0);

    // 3. Issue 17 item 1: a message with U+FFFE in its body and a topic with U+FFFF, which
    //    SQS refuses as they are, then 1,000 good ones. Before the fix the poison was
    //    refused forever, spooled at the head of the spool, and none of the 1,000 arrived;
    //    now it travels base64-encoded (`fmn_queue::wire`) and everything arrives, once,
    //    exactly as sent, without a single refusal.
    let mut poison = sent[0].clone();
    poison["id"] = format!("{run}-poison").into();
    poison["body"]["fmn_test"] = "not a character: \u{FFFE}".into();
    poison["topic"] = format!("{}.\u{FFFF}", poison["topic"].as_str().unwrap()).into();
    let behind: Vec<Value> = messages(&format!("{run}-behind"), 1000 / sent.len() + 1)
        .into_iter()
        .take(1000)
        .collect();
    let mut wave = vec![poison.clone()];
    wave.extend(behind.iter().cloned());
    // (The bridge here is bound with `#`: the poison's odd routing key reaches it too.)
    publish(&broker, &run, &wave).await;
    let after = receive_run(&aws, &url, &run, wave.len(), Duration::from_secs(30)).await;
    for m in &wave {
        let id = m["id"].as_str().unwrap();
        assert_eq!(after.get(id).map_or(0, Vec::len), 1, "{id} arrives once");
        assert_eq!(&after[id][0], m, "{id} exactly as sent");
    }
    assert_eq!(metrics.sqs_refusals.load(Relaxed), 0, "SQS refused nothing");
    eprintln!("poison + {} behind it: all arrived", behind.len());
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), bridge).await;
    let _ = broker.close(200, "done").await;
    localstack.stop().await;
}
