//! End to end: real fedmsg messages published on real ZeroMQ sockets become emails in the
//! emulator's SES, through the bridge, the incoming queue, the matcher, the email queue and
//! the email sender, all against a moto server with the template deployed.

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fmn_e2e::{Harness, publish};
use fmn_rules::{ContextKind, Notification, Preferences};
use serde_json::{Value, json};
use zeromq::Socket;

const CORPUS: &str = include_str!("../crates/fmn-messages/tests/fixtures/fedmsg-examples.jsonl");

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// A corpus message with what the reference implementation computed for it.
struct Example {
    envelope: Value,
    usernames: BTreeSet<String>,
    packages: BTreeSet<String>,
    agent: Option<String>,
    app: String,
    subject: String,
}

/// bodhi, buildsys, pagure and dist-git messages with unique ids on which fmn's catalog
/// agrees with the reference (the catalog's accuracy is measured by its own tests; this
/// test is about the pipeline).
fn examples() -> Vec<Example> {
    let catalog = fmn_messages::Catalog::builtin();
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for line in CORPUS.lines() {
        let mut e: Value = serde_json::from_str(line).unwrap();
        let app = e["app"].as_str().unwrap_or_default().to_owned();
        let id = e["msg_id"].as_str().unwrap_or_default().to_owned();
        if !["bodhi", "buildsys", "pagure", "git"].contains(&app.as_str()) || !ids.insert(id) {
            continue;
        }
        let computed = e["computed"].clone();
        let Ok(m) = catalog.normalize(&e) else {
            continue;
        };
        let usernames = set(&computed["usernames"]);
        let packages = set(&computed["packages"]);
        let agent = computed["agent"].as_str().map(str::to_owned);
        if m.usernames != usernames || m.artifacts.rpms != packages || m.agent != agent {
            continue;
        }
        let subject = m.summary.split_whitespace().collect::<Vec<_>>().join(" ");
        let envelope = e.as_object_mut().unwrap();
        for k in [
            "expected",
            "expected_ok",
            "computed",
            "source",
            "app",
            "time_dependent",
        ] {
            envelope.remove(k);
        }
        out.push(Example {
            envelope: Value::Object(envelope.clone()),
            usernames,
            packages,
            agent,
            app: m.app,
            subject,
        });
    }
    out
}

fn prefs() -> Vec<Preferences> {
    let email = |user: &str, extra: Value, filters: Value| -> Preferences {
        let mut addresses =
            vec![json!({"address": format!("{user}@example.org"), "confirmed": true})];
        if !extra.is_null() {
            addresses.push(extra);
        }
        serde_json::from_value(json!({"user": user, "contexts": {"email": {
            "addresses": addresses, "filters": filters}}}))
        .unwrap()
    };
    vec![
        email(
            "alice",
            Value::Null,
            json!([
                {"id": "pkgs", "name": "Packages I follow", "rules": [{"kind": "artifact", "artifacts": [
                    {"type": "rpms", "name": "nethack"}, {"type": "rpms", "name": "valgrind"},
                    {"type": "rpms", "name": "fedmsg"}]}]},
                {"id": "lmacken", "name": "Whatever lmacken does", "rules": [
                    {"kind": "agent", "usernames": ["lmacken"]}]},
            ]),
        ),
        email(
            "ralph",
            json!({"address": "ralph@unconfirmed.example.org", "confirmed": false}),
            json!([
                {"id": "mine", "name": "My builds and updates", "rules": [
                    {"kind": "user"}, {"kind": "application", "names": ["Bodhi", "buildsys"]}]},
            ]),
        ),
        email(
            "pingou",
            Value::Null,
            json!([
                {"id": "me", "name": "About me, not by me", "rules": [
                    {"kind": "user"}, {"kind": "agent", "negate": true}]},
                {"id": "pr", "name": "My pull requests", "rules": [
                    {"kind": "topic", "glob": "*.pagure.pull-request.*"}, {"kind": "user"}]},
                {"id": "off", "name": "Inactive", "active": false, "rules": [{"kind": "topic", "glob": "*"}]},
            ]),
        ),
        email(
            "dave",
            Value::Null,
            json!([
                {"id": "koji", "name": "Every koji build, task and tag", "rules": [
                    {"kind": "topic", "glob": "org.fedoraproject.*.buildsys.[bt]*"}]},
            ]),
        ),
        email(
            "carol",
            Value::Null,
            json!([
                {"id": "none", "name": "Nothing", "rules": [{"kind": "topic", "glob": "*.nothing.*"}]},
                {"id": "empty", "name": "No rules", "rules": []},
            ]),
        ),
    ]
}

/// Who should get each example, written out plainly from the reference data.
fn expected(examples: &[Example]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for e in examples {
        let topic = e.envelope["topic"].as_str().unwrap_or_default();
        let alice = ["nethack", "valgrind", "fedmsg"]
            .iter()
            .any(|p| e.packages.contains(*p))
            || e.agent.as_deref() == Some("lmacken");
        let ralph =
            e.usernames.contains("ralph") && ["bodhi", "buildsys"].contains(&e.app.as_str());
        let pingou_mine = e.usernames.contains("pingou") && e.agent.as_deref() != Some("pingou");
        let pingou_pr = topic.contains(".pagure.pull-request.") && e.usernames.contains("pingou");
        let dave = topic.starts_with("org.fedoraproject.")
            && (topic.contains(".buildsys.b") || topic.contains(".buildsys.t"));
        for (user, wants) in [
            ("alice", alice),
            ("ralph", ralph),
            ("pingou", pingou_mine || pingou_pr),
            ("dave", dave),
        ] {
            if wants {
                *out.entry((format!("{user}@example.org"), e.subject.clone()))
                    .or_default() += 1;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedmsg_messages_become_emails_once() {
    let examples = examples();
    assert!(
        examples.len() >= 30,
        "only {} usable corpus examples",
        examples.len()
    );
    let expected = expected(&examples);
    let total: usize = expected.values().sum();
    assert!(
        total >= 15,
        "the chosen preferences match too little ({total})"
    );

    let mut h = Harness::deploy(&prefs())
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    h.start_functions().await.unwrap();

    // Both fedmsg modes: the bridge connects to one publisher, and binds for another.
    let connect_port = fmn_emulator::free_port().unwrap();
    let bind_port = fmn_emulator::free_port().unwrap();
    let mut publisher = zeromq::PubSocket::new();
    publisher
        .bind(&format!("tcp://127.0.0.1:{connect_port}"))
        .await
        .unwrap();
    h.start_bridge(vec![
        format!("tcp://127.0.0.1:{connect_port}").parse().unwrap(),
        format!("bind:tcp://127.0.0.1:{bind_port}").parse().unwrap(),
    ])
    .unwrap();
    let mut active = zeromq::PubSocket::new();
    tokio::time::sleep(Duration::from_millis(500)).await;
    active
        .connect(&format!("tcp://127.0.0.1:{bind_port}"))
        .await
        .unwrap();
    // Let the subscriptions reach both publishers (ZeroMQ's slow joiner).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let half = examples.len() / 2;
    for (i, e) in examples.iter().enumerate() {
        let topic = e.envelope["topic"].as_str().unwrap();
        let body = serde_json::to_vec(&e.envelope).unwrap();
        let socket = if i < half {
            &mut publisher
        } else {
            &mut active
        };
        publish(socket, topic, &body).await.unwrap();
        if i == 5 {
            // Malformed input in the middle of real traffic.
            publish(
                &mut publisher,
                "org.fedoraproject.prod.bodhi.update.comment",
                b"not json {",
            )
            .await
            .unwrap();
            publish(
                &mut active,
                "org.fedoraproject.prod.git.receive",
                br#"{"topic": "x", "i": 1}"#,
            )
            .await
            .unwrap();
        }
    }

    let emails = h
        .wait_for_emails(total, Duration::from_secs(120))
        .await
        .unwrap();
    // Anything extra would arrive within a few more batches.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let emails = {
        let again = h.emails().await.unwrap();
        assert!(again.len() >= emails.len());
        again
    };
    let mut got: BTreeMap<(String, String), usize> = BTreeMap::new();
    for email in &emails {
        assert_eq!(email.to.len(), 1, "one recipient per email: {:?}", email.to);
        assert_eq!(email.source, fmn_local::demo::SENDER);
        *got.entry((email.to[0].clone(), email.subject.clone()))
            .or_default() += 1;
    }
    assert_eq!(
        got, expected,
        "emails differ from what the preferences ask for"
    );
    assert!(!emails.iter().any(|e| {
        e.to.iter()
            .any(|t| t.contains("unconfirmed") || t.starts_with("carol"))
    }));

    // An email from two matching filters names both, once.
    if let Some(both) = examples.iter().find(|e| {
        e.envelope["topic"]
            .as_str()
            .unwrap()
            .contains(".pagure.pull-request.")
            && e.usernames.contains("pingou")
            && e.agent.as_deref() != Some("pingou")
    }) {
        let email = emails
            .iter()
            .find(|m| m.to[0] == "pingou@example.org" && m.subject == both.subject)
            .unwrap();
        assert!(
            email.body.contains("About me, not by me") && email.body.contains("My pull requests"),
            "{}",
            email.body
        );
    }

    // The malformed messages were quarantined with a reason, and blocked nothing.
    let sqs = aws_sdk_sqs::Client::new(&h.aws);
    let dlq = h
        .stack
        .output("IncomingDeadLetterQueueUrl")
        .unwrap()
        .to_owned();
    let mut reasons = Vec::new();
    for _ in 0..10 {
        let out = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            let attrs = m.message_attributes.unwrap_or_default();
            let reason = attrs
                .get(fmn_queue::QUARANTINE_REASON_ATTRIBUTE)
                .and_then(|a| a.string_value.clone())
                .unwrap_or_default();
            reasons.push((m.body.unwrap_or_default(), reason));
        }
        if reasons.len() >= 2 {
            break;
        }
    }
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    let reason_of = |body: &str| {
        reasons
            .iter()
            .find(|(b, _)| b == body)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    assert!(reason_of("not json {").contains("JSON"), "{reasons:?}");
    assert!(
        reason_of(r#"{"topic": "x", "i": 1}"#).contains("bus message"),
        "{reasons:?}"
    );

    // A redelivered job (twice, concurrently) sends nothing again.
    let sent = emails.len();
    let (key, _) = expected.keys().next().map(|k| (k.clone(), ())).unwrap();
    let example = examples.iter().find(|e| e.subject == key.1).unwrap();
    let message = fmn_messages::Catalog::builtin()
        .normalize(&example.envelope)
        .unwrap();
    let user = key.0.split('@').next().unwrap().to_owned();
    let job = fmn_queue::NotificationJob::new(
        &message,
        Notification {
            user,
            context: ContextKind::Email,
            addresses: vec![key.0.clone()],
            filters: vec![],
        },
    );
    let email_queue = h.stack.output("EmailQueueUrl").unwrap().to_owned();
    for _ in 0..2 {
        sqs.send_message()
            .queue_url(&email_queue)
            .message_body(serde_json::to_string(&job).unwrap())
            .send()
            .await
            .unwrap();
    }
    for _ in 0..240 {
        if h.queue_depth(&email_queue).await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        h.queue_depth(&email_queue).await.unwrap(),
        0,
        "redelivered jobs were not consumed"
    );
    assert_eq!(
        h.emails().await.unwrap().len(),
        sent,
        "a redelivered job sent again"
    );

    h.shutdown().await;
}

/// The matcher's own binary, run by `cargo lambda watch` as the Lambda runtime would run it
/// (configuration and endpoints from the environment only), invoked with an SQS event that
/// holds one real message and one malformed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matcher_binary_runs_as_a_real_lambda() {
    let example = examples()
        .into_iter()
        .find(|e| e.packages.contains("nethack"))
        .expect("a nethack message in the corpus");
    let prefs: Preferences =
        serde_json::from_value(json!({"user": "alice", "contexts": {"email": {
        "addresses": [{"address": "alice@example.org", "confirmed": true}],
        "filters": [{"id": "f", "name": "nethack", "rules": [
            {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "nethack"}]}]}]}}}))
        .unwrap();
    let h = Harness::deploy(&[prefs]).await.expect("emulator and stack");
    let root = fmn_local::repo_root();
    let port = fmn_emulator::free_port().unwrap();
    let cargo_lambda = root.join(".venv/bin/cargo-lambda");
    assert!(
        cargo_lambda.exists(),
        "cargo-lambda missing: run localstack/bootstrap.sh"
    );
    let env = [
        (
            "FMN_PREFERENCES_TABLE",
            h.stack.output("PreferencesTableName").unwrap().to_owned(),
        ),
        (
            "FMN_EMAIL_QUEUE_URL",
            h.stack.output("EmailQueueUrl").unwrap().to_owned(),
        ),
        (
            "FMN_QUARANTINE_QUEUE_URL",
            h.stack
                .output("IncomingDeadLetterQueueUrl")
                .unwrap()
                .to_owned(),
        ),
        ("AWS_ENDPOINT_URL", h.moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let mut watch = tokio::process::Command::new(&cargo_lambda);
    watch
        .current_dir(&root)
        .args(["lambda", "watch", "--ignore-changes"])
        .args([
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .args(["--package", "fmn-matcher-fn", "--bin", "fmn-matcher"])
        // The target directory this test was built in (`<target>/debug/deps/e2e-…`): the
        // function is already built there (tests/run.sh builds it before the tests), and
        // `cargo nextest` does not hold its lock while tests run.
        .env("CARGO_TARGET_DIR", target_dir())
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null());
    for (k, v) in &env {
        watch.arg("--env-var").arg(format!("{k}={v}"));
    }
    let mut watch = watch.spawn().expect("cargo lambda watch");

    let mut bad = aws_lambda_sqs_record("bad", "{\"topic\": \"org.fedoraproject.prod.x\"}");
    bad["messageAttributes"] = json!({});
    let event = json!({"Records": [
        aws_lambda_sqs_record("good", &serde_json::to_string(&example.envelope).unwrap()),
        bad,
    ]});
    let dir = tempfile_dir();
    let event_file = dir.join("event.json");
    std::fs::write(&event_file, serde_json::to_vec(&event).unwrap()).unwrap();

    // The first invocation waits for the build; retry while the runtime comes up.
    let mut response = None;
    for _ in 0..120 {
        let out = tokio::process::Command::new(&cargo_lambda)
            .current_dir(&root)
            .args([
                "lambda",
                "invoke",
                "fmn-matcher",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args([
                "--invoke-port",
                &port.to_string(),
                "--output-format",
                "json",
            ])
            .arg("--data-file")
            .arg(&event_file)
            .output()
            .await
            .unwrap();
        if out.status.success() {
            response = Some(String::from_utf8_lossy(&out.stdout).into_owned());
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let _ = watch.kill().await;
    let response: Value =
        serde_json::from_str(&response.expect("cargo lambda invoke never succeeded")).unwrap();
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");

    let sqs = aws_sdk_sqs::Client::new(&h.aws);
    let jobs = sqs
        .receive_message()
        .queue_url(h.stack.output("EmailQueueUrl").unwrap())
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(jobs.len(), 1);
    let job: fmn_queue::NotificationJob = serde_json::from_str(jobs[0].body().unwrap()).unwrap();
    assert_eq!(
        (job.user.as_str(), job.addresses.as_slice()),
        ("alice", ["alice@example.org".to_owned()].as_slice())
    );
    assert_eq!(
        Some(job.message.id.as_str()),
        example.envelope["msg_id"].as_str()
    );
    let quarantined = sqs
        .receive_message()
        .queue_url(h.stack.output("IncomingDeadLetterQueueUrl").unwrap())
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(quarantined.len(), 1);
    h.shutdown().await;
}

fn aws_lambda_sqs_record(id: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("receipt-{id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {"topic": {"stringValue": "org.fedoraproject.prod.x", "dataType": "String"}},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:incoming",
        "awsRegion": "us-east-1"
    })
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fmn-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The real fedmsg library's publisher, in both of its modes, reaches `incoming` through the
/// bridge: the envelope as fedmsg wrote it, with the topic as a message attribute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_fedmsg_publishers_reach_incoming() {
    let mut h = Harness::deploy(&[]).await.expect("emulator and stack");
    let root = fmn_local::repo_root();
    let python = root.join(".venv/bin/python");
    let connect_port = fmn_emulator::free_port().unwrap();
    let bind_port = fmn_emulator::free_port().unwrap();
    h.start_bridge(vec![
        format!("tcp://127.0.0.1:{connect_port}").parse().unwrap(),
        format!("bind:tcp://127.0.0.1:{bind_port}").parse().unwrap(),
    ])
    .unwrap();
    let per_publisher = 5;
    let publishers = [
        ("bind", connect_port), // fedmsg binds, the bridge connects
        ("connect", bind_port), // fedmsg connects (active), the bridge binds
    ];
    for (mode, port) in publishers {
        let status = tokio::process::Command::new(&python)
            .arg(root.join("tests/fedmsg_publisher.py"))
            .args([
                mode,
                &format!("tcp://127.0.0.1:{port}"),
                &per_publisher.to_string(),
            ])
            .status()
            .await
            .expect("python from the project venv (run localstack/bootstrap.sh)");
        assert!(status.success(), "fedmsg publisher ({mode}) failed");
    }

    let sqs = aws_sdk_sqs::Client::new(&h.aws);
    let incoming = h.stack.output("IncomingQueueUrl").unwrap().to_owned();
    let mut received = Vec::new();
    for _ in 0..30 {
        let out = sqs
            .receive_message()
            .queue_url(&incoming)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        received.extend(out.messages.unwrap_or_default());
        if received.len() >= 2 * per_publisher {
            break;
        }
    }
    assert_eq!(
        received.len(),
        2 * per_publisher,
        "every fedmsg message arrives once"
    );
    let mut seqs = Vec::new();
    for m in &received {
        let topic = m
            .message_attributes()
            .and_then(|a| a.get(fmn_queue::TOPIC_ATTRIBUTE))
            .and_then(|a| a.string_value())
            .unwrap();
        assert_eq!(topic, "org.fedoraproject.dev.bodhi.update.comment");
        let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
        assert_eq!(envelope["topic"], topic);
        assert!(envelope["msg_id"].as_str().is_some_and(|id| !id.is_empty()));
        assert_eq!(envelope["msg"]["text"], "caf\u{e9} \u{2603} 1e+16 -0.0");
        let message = fmn_messages::Catalog::builtin()
            .normalize(&envelope)
            .unwrap();
        assert!(message.usernames.contains("alice"), "{message:?}");
        seqs.push(envelope["msg"]["seq"].as_u64().unwrap());
    }
    seqs.sort_unstable();
    let mut expected: Vec<u64> = (0..per_publisher as u64)
        .chain(0..per_publisher as u64)
        .collect();
    expected.sort_unstable();
    assert_eq!(seqs, expected);
    h.shutdown().await;
}

/// The target directory the running test binary was built in.
fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("<target>/<profile>/deps/<test>")
        .to_path_buf()
}
