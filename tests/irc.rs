//! IRC delivery against a real IRC server: Debian's ngircd on 127.0.0.1 (a generated
//! configuration, a free port), the IRC sender with its delivery records in a moto server,
//! and a second real IRC client registered as the recipient nick that asserts exactly what
//! arrives.

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use fmn_e2e::{Harness, publish};
use fmn_irc::{IrcClient, IrcConfig};
use fmn_irc_sender_fn::{IrcSender, sender as irc_sender};
use fmn_local::lambda::runtime;
use fmn_local::standins::irc::{Ngircd, Watcher};
use fmn_queue::NotificationJob;
use fmn_rules::Preferences;
use serde_json::json;
use zeromq::Socket;

const JOB: &str = include_str!("../crates/fmn-queue/tests/fixtures/email-job.json");

fn job(id: &str, nick: &str, summary: &str, link: Option<&str>) -> NotificationJob {
    let mut job: NotificationJob = serde_json::from_str(JOB).unwrap();
    job.message.id = id.into();
    job.message.summary = summary.into();
    job.message.link = link.map(str::to_owned);
    job.context = fmn_rules::ContextKind::Irc;
    job.user = "alice".into();
    job.addresses = vec![nick.into()];
    job
}

fn event(bodies: &[String]) -> SqsEvent {
    fmn_queue::test_util::sqs_event(bodies)
}

fn sender(h: &Harness, port: u16) -> IrcSender<fmn_store::DeliveryTable, IrcClient> {
    let mut config = IrcConfig::new("127.0.0.1", port, "fmn");
    config.interval = Duration::from_millis(100);
    irc_sender(
        fmn_store::DeliveryTable::new(
            aws_sdk_dynamodb::Client::new(&h.aws),
            h.stack.output("DeliveriesTableName").unwrap(),
        ),
        IrcClient::new(config),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_arrive_exactly_once_clean_and_within_the_limit() {
    let h = Harness::deploy(&[])
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    let port = fmn_emulator::free_port().unwrap();
    let server = Ngircd::start(port, None).await.unwrap();
    let mut alice = Watcher::connect(port, "alice").await.unwrap();
    // Someone already holds the bot's nick: the sender must register as another one.
    let squatter = Watcher::connect(port, "fmn").await.unwrap();
    let sender = sender(&h, port);

    // A hostile summary: line breaks that would start new protocol lines, CTCP, formatting.
    let hostile = job(
        "m-hostile",
        "alice",
        "koji build failed\r\nPRIVMSG #fedora :pwned \x01ACTION dances\x01\nQUIT :bye\x02\x03",
        Some("https://koji.fedoraproject.org/koji/taskinfo?taskID=1\r\nJOIN #x"),
    );
    let response = sender
        .handle(event(&[serde_json::to_string(&hostile).unwrap()]))
        .await;
    assert!(response.batch_item_failures.is_empty());
    let got = alice.collect(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].from, "fmn_", "the bot took the fallback nick");
    assert_eq!(
        got[0].text,
        "koji build failed PRIVMSG #fedora :pwned ACTION dances QUIT :bye \
         https://koji.fedoraproject.org/koji/taskinfo?taskID=1 JOIN #x \
         (triggered by kernel builds)"
    );

    // A long summary with multi-byte characters: split into lines that each fit in 512
    // bytes as relayed (prefix included), nothing lost, no character cut.
    let long_summary = (0..160)
        .map(|i| format!("pkg-{i}-ünïcødé-✓"))
        .collect::<Vec<_>>()
        .join(" ");
    let long = job(
        "m-long",
        "alice",
        &long_summary,
        Some("https://x.example/long"),
    );
    let expected_text = fmn_irc::notification_text(&long);
    assert!(expected_text.len() > 1500);
    let response = sender
        .handle(event(&[serde_json::to_string(&long).unwrap()]))
        .await;
    assert!(response.batch_item_failures.is_empty());
    let mut lines = alice.collect(usize::MAX, Duration::from_secs(3)).await;
    assert!(lines.len() >= 4, "{} lines", lines.len());
    for line in &lines {
        assert!(
            line.line.len() <= 512,
            "{} bytes: {}",
            line.line.len(),
            line.line
        );
        assert!(!line.text.chars().any(char::is_control));
    }
    let joined = lines
        .drain(..)
        .map(|l| l.text)
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(joined, expected_text);

    // A confirmation code goes to the nick being confirmed.
    let confirmation = json!({"confirmation": {"user": "alice", "context": "irc",
        "address": "alice", "code": "482913", "expires_at": 4_000_000_000_i64}})
    .to_string();
    assert!(
        sender
            .handle(event(std::slice::from_ref(&confirmation)))
            .await
            .batch_item_failures
            .is_empty()
    );
    let got = alice.collect(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].text.contains("482913"), "{}", got[0].text);

    // Redelivered jobs (the same batch twice, concurrently) send nothing.
    let again: Vec<String> = [&hostile, &long, &hostile]
        .iter()
        .map(|j| serde_json::to_string(j).unwrap())
        .chain([confirmation])
        .collect();
    let response = sender.handle(event(&again)).await;
    assert!(response.batch_item_failures.is_empty());
    let extra = alice.drain(Duration::from_secs(2)).await;
    assert!(extra.is_empty(), "redelivery sent again: {extra:?}");

    // One connection served everything.
    assert_eq!(sender.channel().link().connections_opened().await, 1);
    drop(squatter);
    server.stop().await;
    h.shutdown().await;
}

/// The IRC server is down when the job first arrives: the sender fails it, SQS makes it
/// visible again after the visibility timeout, and once the server is back it arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_then_back_delivers_once_through_sqs_redelivery() {
    let h = Harness::deploy(&[])
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    let sqs = aws_sdk_sqs::Client::new(&h.aws);
    // A queue like the template's IRC queue, with a short visibility timeout so the test
    // does not wait minutes for a redelivery.
    let dlq = sqs
        .create_queue()
        .queue_name("irc-test-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = "arn:aws:sqs:us-east-1:123456789012:irc-test-dlq";
    let queue = sqs
        .create_queue()
        .queue_name("irc-test")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "2",
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 10}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let port = fmn_emulator::free_port().unwrap();
    let sender = Arc::new(sender(&h, port));
    let attempts = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let handler: runtime::Handler = {
        let (sender, attempts, failures) = (sender.clone(), attempts.clone(), failures.clone());
        Arc::new(move |event, _deadline| {
            let (sender, attempts, failures) = (sender.clone(), attempts.clone(), failures.clone());
            Box::pin(async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                let response = sender.handle(event).await;
                failures.fetch_add(response.batch_item_failures.len(), Ordering::SeqCst);
                response
            })
        })
    };
    let mapping = runtime::Mapping {
        function: "irc-test".into(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:irc-test".into(),
        queue_url: queue.clone(),
        batch_size: 10,
        batching_window: Duration::ZERO,
        visibility_timeout: 2,
        timeout: Some(Duration::from_secs(30)),
        concurrency: 1,
    };
    let poller = tokio::spawn(runtime::poll(sqs.clone(), mapping, handler, h.stop.clone()));

    let job = job("m-outage", "alice", "bodhi update pushed to stable", None);
    sqs.send_message()
        .queue_url(&queue)
        .message_body(serde_json::to_string(&job).unwrap())
        .send()
        .await
        .unwrap();
    // Wait for two failed attempts (server down), then bring the server back right after a
    // failure: the next attempt comes a visibility timeout later, time enough for the
    // recipient to register.
    for _ in 0..200 {
        if failures.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        failures.load(Ordering::SeqCst) >= 2,
        "the job did not fail while the server was down"
    );
    let server = Ngircd::start(port, None).await.unwrap();
    let mut alice = Watcher::connect(port, "alice").await.unwrap();
    let got = alice.collect(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "not delivered after the server came back");
    assert_eq!(
        got[0].text,
        "bodhi update pushed to stable (triggered by kernel builds)"
    );
    assert!(
        alice.drain(Duration::from_secs(5)).await.is_empty(),
        "delivered twice"
    );
    for _ in 0..100 {
        if h.queue_depth(&queue).await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        h.queue_depth(&queue).await.unwrap(),
        0,
        "the job was not deleted"
    );
    assert_eq!(h.queue_depth(&dlq).await.unwrap(), 0);
    h.stop.cancel();
    poller.await.unwrap();
    server.stop().await;
    h.shutdown().await;
}

/// From a ZeroMQ publish to the line the recipient's IRC client reads: bridge, incoming
/// queue, matcher, IRC queue and IRC sender in the local runtime, ngircd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_message_becomes_an_irc_line() {
    let prefs: Preferences = serde_json::from_value(json!({"user": "alice", "contexts": {"irc": {
        "addresses": [{"address": "alice", "confirmed": true}, {"address": "mallory"}],
        "filters": [{"id": "f", "name": "nethack builds", "rules": [
            {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "nethack"}]}]}]}}}))
    .unwrap();
    let mut h = Harness::deploy(&[prefs])
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    let port = fmn_emulator::free_port().unwrap();
    let server = Ngircd::start(port, None).await.unwrap();
    let mut alice = Watcher::connect(port, "alice").await.unwrap();
    let mut mallory = Watcher::connect(port, "mallory").await.unwrap();
    h.set_function_env(
        "IrcSenderFunctionName",
        &[
            ("FMN_IRC_SERVER", "127.0.0.1"),
            ("FMN_IRC_PORT", &port.to_string()),
            ("FMN_IRC_TLS", "false"),
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
    publish(
        &mut publisher,
        envelope["topic"].as_str().unwrap(),
        &serde_json::to_vec(&envelope).unwrap(),
    )
    .await
    .unwrap();
    let got = alice.collect(1, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 1, "no IRC line arrived");
    let summary = fmn_irc::sanitize(&message.summary);
    assert!(
        got[0].text.starts_with(&summary),
        "{} / {summary}",
        got[0].text
    );
    assert!(
        got[0].text.ends_with("(triggered by nethack builds)"),
        "{}",
        got[0].text
    );
    assert!(alice.drain(Duration::from_secs(3)).await.is_empty());

    // Latency, published to received, one message at a time (new ids, same content): a
    // measurement printed for the README, not a pass/fail threshold.
    let mut latencies = Vec::new();
    // 15: with the first, 16 notifications stay under the flood limit of 20 per window.
    for i in 0..15 {
        let mut copy = envelope.clone();
        copy["msg_id"] =
            format!("latency-{i}-{}", envelope["msg_id"].as_str().unwrap_or("x")).into();
        let started = std::time::Instant::now();
        publish(
            &mut publisher,
            copy["topic"].as_str().unwrap(),
            &serde_json::to_vec(&copy).unwrap(),
        )
        .await
        .unwrap();
        let got = alice.collect(1, Duration::from_secs(60)).await;
        assert_eq!(got.len(), 1, "message {i} did not arrive");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "IRC delivery latency, ZeroMQ publish to line received, {} messages: median {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        p(0.5),
        p(0.99),
        latencies[latencies.len() - 1]
    );
    assert!(
        alice.drain(Duration::from_secs(2)).await.is_empty(),
        "a message arrived twice"
    );
    assert!(
        mallory.drain(Duration::from_millis(100)).await.is_empty(),
        "sent to an unconfirmed nick"
    );
    server.stop().await;
    h.shutdown().await;
}

/// Runs `openssl` with `args` in `dir`.
async fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = tokio::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .await
        .expect("openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Over TLS: ngircd's TLS port with a certificate from a CA of the test's own; the sender
/// trusts that CA through `FMN_IRC_CA_FILE` and delivers; without it the handshake fails and
/// nothing is sent (the job fails, to be retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_tls_and_only_to_a_trusted_server() {
    let h = Harness::deploy(&[])
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=fmn test CA",
        ],
    )
    .await;
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    )
    .await;
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    )
    .await;
    let port = fmn_emulator::free_port().unwrap();
    let tls_port = fmn_emulator::free_port().unwrap();
    let files = fmn_local::standins::irc::TlsFiles {
        cert: d.join("server.pem"),
        key: d.join("server.key"),
    };
    let server = Ngircd::start(port, Some((files, tls_port))).await.unwrap();
    let mut alice = Watcher::connect(port, "alice").await.unwrap();
    let deliveries = || {
        fmn_store::DeliveryTable::new(
            aws_sdk_dynamodb::Client::new(&h.aws),
            h.stack.output("DeliveriesTableName").unwrap(),
        )
    };
    let tls_config = |ca: Option<&str>| {
        let ca = ca.map(str::to_owned);
        IrcConfig::from_vars(|k| match k {
            "FMN_IRC_SERVER" => Some("127.0.0.1".into()),
            "FMN_IRC_PORT" => Some(tls_port.to_string()),
            "FMN_IRC_TLS" => Some("true".into()),
            "FMN_IRC_NICK" => Some("fmnbot".into()),
            "FMN_IRC_CA_FILE" => ca.clone(),
            _ => None,
        })
        .unwrap()
    };

    // Not trusting the test CA: the handshake fails, nothing is sent, the job fails.
    let untrusting = irc_sender(deliveries(), IrcClient::new(tls_config(None)));
    let body = serde_json::to_string(&job("m-tls", "alice", "sent over TLS", None)).unwrap();
    let response = untrusting.handle(event(std::slice::from_ref(&body))).await;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "sent to an untrusted server"
    );
    assert!(alice.drain(Duration::from_secs(1)).await.is_empty());

    // Trusting it: delivered, once.
    let ca = d.join("ca.pem").display().to_string();
    let trusting = irc_sender(deliveries(), IrcClient::new(tls_config(Some(&ca))));
    let response = trusting.handle(event(std::slice::from_ref(&body))).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    let got = alice.collect(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].from, "fmnbot");
    assert!(got[0].text.starts_with("sent over TLS"), "{}", got[0].text);
    server.stop().await;
    h.shutdown().await;
}
