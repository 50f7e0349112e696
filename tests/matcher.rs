//! The matcher's state against a real moto server: maintainer data synced on a schedule
//! from a loopback stand-in for dist-git, `owned_by` rules reading it, oneshot filters
//! firing once, and preferences it cannot read (a bad document, DynamoDB gone for a while).

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use fmn_e2e::Harness;
use fmn_e2e::faults::Relay;
use fmn_local::standins::files::OWNERS_PATH;
use fmn_ownership_sync_fn::{Config, Outcome, OwnershipSync, SyncError};
use fmn_rules::Preferences;
use fmn_store::OwnershipTable;
use serde_json::json;

fn koji_build(id: &str, owner: &str, package: &str) -> String {
    json!({
        "topic": "org.fedoraproject.prod.buildsys.build.state.change",
        "msg_id": id,
        "timestamp": 1_700_000_000,
        "msg": {"owner": owner, "name": package, "version": "6.1", "release": "1.fc40",
                "build_id": 7, "new": 1, "old": 0, "instance": "primary"},
    })
    .to_string()
}

fn prefs(value: serde_json::Value) -> Preferences {
    serde_json::from_value(value).expect("valid preferences")
}

async fn send_incoming(h: &Harness, bodies: &[String]) -> anyhow::Result<()> {
    let sqs = aws_sdk_sqs::Client::new(&h.aws);
    for body in bodies {
        sqs.send_message()
            .queue_url(h.stack.output("IncomingQueueUrl")?)
            .message_body(body)
            .send()
            .await?;
    }
    Ok(())
}

/// Waits until `incoming` and the email queue are drained (nothing visible or in flight).
async fn drained(h: &Harness) -> anyhow::Result<()> {
    for _ in 0..240 {
        let incoming = h.queue_depth(h.stack.output("IncomingQueueUrl")?).await?;
        let email = h.queue_depth(h.stack.output("EmailQueueUrl")?).await?;
        if incoming == 0 && email == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("queues did not drain")
}

fn sync_for(h: &Harness, path: &str) -> anyhow::Result<(OwnershipSync, OwnershipTable)> {
    let table = OwnershipTable::new(
        aws_sdk_dynamodb::Client::new(&h.aws),
        h.stack.output("OwnershipTableName")?,
    );
    let config = Config {
        table: h.stack.output("OwnershipTableName")?.to_owned(),
        source_url: h.files.url(path),
        min_ratio: 0.5,
    };
    Ok((OwnershipSync::new(table.clone(), config)?, table))
}

/// Snapshot ids with chunk items in the table.
async fn stored_snapshots(h: &Harness) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let out = aws_sdk_dynamodb::Client::new(&h.aws)
        .scan()
        .table_name(h.stack.output("OwnershipTableName")?)
        .send()
        .await?;
    Ok(out
        .items()
        .iter()
        .filter_map(|item| match item.get("pk") {
            Some(AttributeValue::S(pk)) => pk.strip_prefix("SNAPSHOT#").map(str::to_owned),
            _ => None,
        })
        .collect())
}

/// A dist-git-sized export: tens of thousands of packages, several namespaces.
fn large_export(packages: usize) -> String {
    let mut rpms = serde_json::Map::new();
    for i in 0..packages {
        rpms.insert(
            format!("python-package-number-{i}"),
            json!([format!("packager{}", i % 997), format!("@group{}", i % 13)]),
        );
    }
    rpms.insert("kernel".into(), json!(["jforbes", "@kernel-maint"]));
    json!({"rpms": rpms, "container": {"toolbox": ["debarshir"]}, "modules": {"nodejs": ["sgallagh"]}})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ownership_sync_replaces_snapshots_whole_and_refuses_bad_data() -> anyhow::Result<()> {
    let h = Harness::deploy(&[]).await?;
    let (sync, table) = sync_for(&h, OWNERS_PATH)?;
    let small = std::fs::read_to_string(
        fmn_local::repo_root().join("localstack/demo/pagure_owner_alias.json"),
    )?;

    // First sync: the file becomes the live snapshot, intact.
    let first = sync.run().await?;
    assert_eq!(
        first,
        Outcome::Replaced {
            artifacts: 228,
            previous: None
        }
    );
    let live = table.current().await?.expect("a live snapshot");
    assert_eq!(table.load(&live).await?, small);
    // Unchanged source: nothing written.
    assert_eq!(sync.run().await?, Outcome::Unchanged { artifacts: 228 });

    // A dist-git-sized export spans several items and replaces the old snapshot, whose
    // items are gone afterwards.
    let large = large_export(40_000);
    h.files.put(OWNERS_PATH, large.clone());
    assert_eq!(
        sync.run().await?,
        Outcome::Replaced {
            artifacts: 40_003,
            previous: Some(228)
        }
    );
    let live = table.current().await?.expect("a live snapshot");
    assert!(live.chunks > 1, "{live:?}");
    assert_eq!(table.load(&live).await?, large);
    assert_eq!(
        stored_snapshots(&h).await?,
        [live.id.clone()].into_iter().collect()
    );

    // Broken or implausible data is refused and the live snapshot kept.
    for bad in [
        &large[..large.len() / 2],              // truncated download
        r#"{"rpms": {"kernel": "jforbes"}}"#,   // wrong shape
        r#"{"rpms": {}}"#,                      // empty
        r#"{"rpms": {"kernel": ["jforbes"]}}"#, // lost most of the distribution
    ] {
        h.files.put(OWNERS_PATH, bad);
        let err = sync.run().await.expect_err(bad.get(..40).unwrap_or(bad));
        assert!(matches!(err, SyncError::Refused { .. }), "{err}");
        assert_eq!(table.current().await?.as_ref(), Some(&live));
    }
    // An unreachable source changes nothing either.
    let (missing, _) = sync_for(&h, "extras/nowhere.json")?;
    assert!(matches!(missing.run().await, Err(SyncError::Fetch { .. })));
    assert_eq!(table.current().await?.as_ref(), Some(&live));
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owned_by_rules_read_the_synced_maintainers_and_oneshot_filters_fire_once()
-> anyhow::Result<()> {
    // user52 maintains kernel (and R-gdtools) in the demo's maintainer data.
    let maintainer = prefs(json!({"user": "user52", "contexts": {"email": {
        "addresses": [{"address": "user52@example.org", "confirmed": true}],
        "settings": {"verbose": true},
        "filters": [{"id": "mine", "name": "my packages", "rules": [
            {"kind": "owned_by"}, {"kind": "agent", "negate": true}]}]}}}));
    let once = prefs(json!({"user": "carol", "contexts": {"email": {
        "addresses": [{"address": "carol@example.org", "confirmed": true}],
        "filters": [{"id": "first", "name": "first chromium build", "oneshot": true, "rules": [
            {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "chromium"}]}]}]}}}));
    let mut h = Harness::deploy(&[maintainer, once]).await?;
    // The runtime fires the ownership sync on start, as its schedule would.
    h.start_functions().await?;
    let table = OwnershipTable::new(
        aws_sdk_dynamodb::Client::new(&h.aws),
        h.stack.output("OwnershipTableName")?,
    );
    let mut synced = None;
    for _ in 0..120 {
        synced = table.current().await?;
        if synced.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(synced.map(|s| s.artifacts), Some(228));

    send_incoming(
        &h,
        &[
            koji_build("m-kernel", "bob", "kernel"), // user52's package
            koji_build("m-own", "user52", "kernel"), // user52's own action
            koji_build("m-other", "bob", "AnyEvent-DBus"), // someone else's package
            koji_build("m-chromium-1", "bob", "chromium"), // carol's oneshot
            koji_build("m-chromium-2", "alice", "chromium"), // … only once
        ],
    )
    .await?;
    h.wait_for_emails(2, Duration::from_secs(60)).await?;
    drained(&h).await?;
    let emails = h.emails().await?;
    let mut to: Vec<_> = emails.iter().map(|e| e.to.join(",")).collect();
    to.sort();
    assert_eq!(
        to,
        ["carol@example.org", "user52@example.org"],
        "{emails:#?}"
    );
    let kernel = emails
        .iter()
        .find(|e| e.to == ["user52@example.org"])
        .expect("user52's email");
    assert!(kernel.subject.contains("kernel"), "{kernel:?}");

    // The oneshot filter deactivated itself in the stored preferences.
    let stored = fmn_store::PreferenceTable::new(
        aws_sdk_dynamodb::Client::new(&h.aws),
        h.stack.output("PreferencesTableName")?,
    )
    .get("carol")
    .await?
    .expect("carol's preferences");
    let filter = &stored.contexts[&fmn_rules::ContextKind::Email].filters[0];
    assert!(!filter.active, "{filter:?}");

    // Another chromium build after the change reaches no one.
    send_incoming(&h, &[koji_build("m-chromium-3", "bob", "chromium")]).await?;
    drained(&h).await?;
    assert_eq!(h.emails().await?.len(), 2);

    // A preference write applies from the next batch, through the change log: carol
    // follows chromium for good now.
    let mut follow = stored.clone();
    if let Some(ctx) = follow.contexts.get_mut(&fmn_rules::ContextKind::Email) {
        ctx.filters[0].oneshot = false;
        ctx.filters[0].active = true;
    }
    fmn_store::PreferenceTable::new(
        aws_sdk_dynamodb::Client::new(&h.aws),
        h.stack.output("PreferencesTableName")?,
    )
    .put(&follow)
    .await?;
    send_incoming(&h, &[koji_build("m-chromium-4", "bob", "chromium")]).await?;
    let emails = h.wait_for_emails(3, Duration::from_secs(60)).await?;
    drained(&h).await?;
    assert_eq!(h.emails().await?.len(), 3, "{emails:#?}");
    assert_eq!(emails[2].to, ["carol@example.org"]);
    h.shutdown().await;
    Ok(())
}

/// A bus message as Lambda hands it over on its first delivery.
fn first_delivery(body: &str) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut event = fmn_queue::test_util::sqs_event(&[body]);
    for record in &mut event.records {
        record
            .attributes
            .insert("ApproximateReceiveCount".into(), "1".into());
    }
    event
}

/// Receives (and deletes) every job on the email queue: the users they are for, sorted.
async fn email_job_users(h: &Harness) -> anyhow::Result<Vec<String>> {
    let mut users: Vec<String> = (email_jobs(h).await?.into_iter())
        .map(|job| job.user)
        .collect();
    users.sort();
    Ok(users)
}

/// The jobs on the email queue, taken off it.
async fn email_jobs(h: &Harness) -> anyhow::Result<Vec<fmn_queue::NotificationJob>> {
    let sqs = aws_sdk_sqs::Client::new(&h.aws);
    let url = h.stack.output("EmailQueueUrl")?;
    let mut jobs = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            jobs.push(serde_json::from_str(m.body().unwrap_or(""))?);
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or(""))
                .send()
                .await?;
        }
    }
    Ok(jobs)
}

/// Issue 17 item 2. Before: one unreadable document (or one with a field from a newer
/// version) failed every record of every batch, and so did DynamoDB being unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_preferences_are_skipped_and_an_outage_is_bridged() -> anyhow::Result<()> {
    let builds = |user: &str| {
        prefs(json!({"user": user, "contexts": {"email": {
            "addresses": [{"address": format!("{user}@example.org"), "confirmed": true}],
            "filters": [{"id": "b", "name": "builds", "rules": [
                {"kind": "topic", "glob": "*.buildsys.build.state.change"}]}]}}}))
    };
    let h = Harness::deploy(&[builds("alice")]).await?;
    let table_name = h.stack.output("PreferencesTableName")?.to_owned();
    let dynamo = aws_sdk_dynamodb::Client::new(&h.aws);
    // A hand edit gone wrong, and a document from a newer version.
    let mut newer = serde_json::to_value(builds("carol"))?;
    newer["theme"] = json!("dark");
    newer["contexts"]["email"]["snooze_until"] = json!(0);
    newer["contexts"]["email"]["filters"][0]["priority"] = json!(3);
    for (user, doc) in [
        ("bob", "{\"user\": \"bob\", \"contexts\": ".to_owned()),
        ("carol", newer.to_string()),
    ] {
        dynamo
            .put_item()
            .table_name(&table_name)
            .item("pk", AttributeValue::S(format!("USER#{user}")))
            .item("sk", AttributeValue::S("PREFS".into()))
            .item("doc", AttributeValue::S(doc))
            .send()
            .await?;
    }
    // The matcher reaches DynamoDB through the relay, SQS directly.
    let moto_addr: std::net::SocketAddr = h.moto.endpoint.trim_start_matches("http://").parse()?;
    let mut relay = Relay::start(moto_addr).await?;
    let relayed = aws_sdk_dynamodb::config::Builder::from(&h.aws)
        .endpoint_url(format!("http://{}", relay.addr))
        .build();
    let tables = fmn_matcher_fn::Tables {
        preferences: fmn_store::PreferenceTable::new(
            aws_sdk_dynamodb::Client::from_conf(relayed),
            &table_name,
        ),
        ownership: None,
        recent: None,
        snapshot: None,
    };
    let sqs = aws_sdk_sqs::Client::new(&h.aws);
    let queue = |name: &str| -> anyhow::Result<fmn_queue::SqsQueue> {
        Ok(fmn_queue::SqsQueue::new(sqs.clone(), h.stack.output(name)?))
    };
    let matcher = fmn_matcher_fn::MatcherFn::new(
        tables,
        queue("IncomingDeadLetterQueueUrl")?,
        std::collections::BTreeMap::from([(
            fmn_rules::ContextKind::Email,
            queue("EmailQueueUrl")?,
        )]),
    );

    // 1. The bad document is skipped (and logged); the newer one is read.
    let response = matcher
        .handle(first_delivery(&koji_build("u-1", "x", "kernel")))
        .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(email_job_users(&h).await?, ["alice", "carol"]);

    // 2. DynamoDB unreachable: the last good view keeps matching.
    relay.stop();
    for n in 2..5 {
        let response = matcher
            .handle(first_delivery(&koji_build(
                &format!("u-{n}"),
                "x",
                "kernel",
            )))
            .await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    assert_eq!(email_job_users(&h).await?.len(), 6);

    // 3. Back, with a change made meanwhile: applied from the next batch.
    fmn_store::PreferenceTable::new(dynamo, &table_name)
        .put(&builds("dave"))
        .await?;
    relay.restart().await?;
    let response = matcher
        .handle(first_delivery(&koji_build("u-5", "x", "kernel")))
        .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(email_job_users(&h).await?, ["alice", "carol", "dave"]);
    relay.stop();
    h.shutdown().await;
    Ok(())
}

/// Creates the preferences table (the template's key schema) on `aws`.
async fn preferences_table(aws: &aws_config::SdkConfig, name: &str) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let mut create = aws_sdk_dynamodb::Client::new(aws)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attribute, key) in [("pk", KeyType::Hash), ("sk", KeyType::Range)] {
        create = create
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(attribute)
                    .key_type(key)
                    .build()?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            );
    }
    create.send().await?;
    Ok(())
}

/// Issue 17, tests: "DynamoDB stopped (the emulator killed) and restarted mid-stream". The
/// test above cuts the network path; here the emulator process holding the preferences is
/// killed, the stream goes on (matched with the last good view), and a new emulator on the
/// same port (empty, as after losing the table; restored here by writing the documents
/// again, with one more user) serves the traffic after it. The queues live on the shared
/// moto server, which stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_dynamodb_is_bridged() -> anyhow::Result<()> {
    let builds = |user: &str| {
        prefs(json!({"user": user, "contexts": {"email": {
            "addresses": [{"address": format!("{user}@example.org"), "confirmed": true}],
            "filters": [{"id": "b", "name": "builds", "rules": [
                {"kind": "topic", "glob": "*.buildsys.build.state.change"}]}]}}}))
    };
    let root = fmn_local::repo_root();
    let shared = fmn_emulator::SharedMoto::get(
        &root,
        &std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fmn-e2e-moto"),
    )
    .await?;
    let queues_aws = fmn_emulator::config(&shared.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&queues_aws);
    let run = format!("killed-db-{}", std::process::id());
    let mut urls = Vec::new();
    for name in ["email", "dlq"] {
        let out = sqs
            .create_queue()
            .queue_name(format!("{run}-{name}"))
            .send()
            .await?;
        urls.push(out.queue_url.unwrap_or_default());
    }
    let port = fmn_emulator::free_port()?;
    let db = fmn_emulator::Moto::start(&root, port).await?;
    let db_aws = fmn_emulator::config(&db.endpoint).await;
    let store = || fmn_store::PreferenceTable::new(aws_sdk_dynamodb::Client::new(&db_aws), "prefs");
    preferences_table(&db_aws, "prefs").await?;
    store().put(&builds("alice")).await?;
    let matcher = fmn_matcher_fn::MatcherFn::new(
        fmn_matcher_fn::Tables {
            preferences: store(),
            ownership: None,
            recent: None,
            snapshot: None,
        },
        fmn_queue::SqsQueue::new(sqs.clone(), &urls[1]),
        std::collections::BTreeMap::from([(
            fmn_rules::ContextKind::Email,
            fmn_queue::SqsQueue::new(sqs.clone(), &urls[0]),
        )]),
    );
    let jobs = || async {
        let mut users = Vec::new();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&urls[0])
                .max_number_of_messages(10)
                .send()
                .await?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                users.sort();
                return anyhow::Ok(users);
            }
            for m in messages {
                let job: fmn_queue::NotificationJob = serde_json::from_str(m.body().unwrap_or(""))?;
                users.push(job.user);
                sqs.delete_message()
                    .queue_url(&urls[0])
                    .receipt_handle(m.receipt_handle().unwrap_or(""))
                    .send()
                    .await?;
            }
        }
    };
    let batch = |n: usize| first_delivery(&koji_build(&format!("k-{n}"), "x", "kernel"));

    assert!(
        matcher
            .handle(batch(1))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(jobs().await?, ["alice"]);

    // The emulator is killed: the stream goes on with the last good view.
    db.stop().await;
    for n in 2..4 {
        let response = matcher.handle(batch(n)).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    assert_eq!(jobs().await?, ["alice", "alice"]);

    // A new emulator on the same port; the documents are written again, with dave's.
    let db = fmn_emulator::Moto::start(&root, port).await?;
    preferences_table(&db_aws, "prefs").await?;
    store().put(&builds("alice")).await?;
    store().put(&builds("dave")).await?;
    let response = matcher.handle(batch(4)).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(jobs().await?, ["alice", "dave"]);
    db.stop().await;
    Ok(())
}

/// Issue 18: a cold matcher reads the compiled preferences the snapshot function saved, then
/// only what changed after it; without a readable snapshot it scans the table, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_matcher_starts_from_the_saved_snapshot_and_what_changed_after_it()
-> anyhow::Result<()> {
    use fmn_local::lambda::functions::{AwsConfigs, scheduled_handler};
    let builds = |user: &str| {
        prefs(json!({"user": user, "contexts": {"email": {
            "addresses": [{"address": format!("{user}@example.org"), "confirmed": true}],
            "settings": {"digest_count": 3},
            "filters": [{"id": "b", "name": "builds", "rules": [
                {"kind": "topic", "glob": "*.buildsys.build.state.change"}]}]}}}))
    };
    let h = Harness::deploy(&[builds("alice"), builds("bob")]).await?;
    let aws = AwsConfigs::same(&h.aws);
    let table = fmn_store::PreferenceTable::new(
        aws_sdk_dynamodb::Client::new(&h.aws),
        h.stack.output("PreferencesTableName")?,
    );
    let snapshot = scheduled_handler(&aws, &h.stack, "PreferencesSnapshotFunctionName").await?;
    let saved = snapshot().await?;
    assert!(saved.contains(", 2 users compiled"), "{saved}");
    assert!(snapshot().await?.starts_with("snapshot current at"));
    // After the snapshot: carol arrives, bob leaves.
    table.put(&builds("carol")).await?;
    table
        .put(&prefs(json!({"user": "bob", "contexts": {}})))
        .await?;

    let calls = cold_first_batch(&aws, &h, "s-1").await?;
    assert_eq!(calls.get("S3.GetObject"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DynamoDB.Scan"), None, "{calls:?}");
    // The users' settings came with it.
    let jobs = email_jobs(&h).await?;
    let mut users: Vec<&str> = jobs.iter().map(|j| j.user.as_str()).collect();
    users.sort();
    assert_eq!(users, ["alice", "carol"]);
    assert!(
        jobs.iter().all(|j| j.settings.digest_count == Some(3)),
        "{jobs:?}"
    );

    // A damaged snapshot: reported, and the table is scanned instead.
    aws_sdk_s3::Client::new(&h.aws)
        .put_object()
        .bucket(h.stack.output("PreferencesSnapshotBucketName")?)
        .key(fmn_compiled_prefs::snapshot::KEY)
        .body(b"not a snapshot".to_vec().into())
        .send()
        .await?;
    let calls = cold_first_batch(&aws, &h, "s-2").await?;
    assert!(
        calls.get("DynamoDB.Scan").is_some_and(|n| *n >= 1),
        "{calls:?}"
    );
    assert_eq!(email_job_users(&h).await?, ["alice", "carol"]);
    // The next run replaces it.
    let saved = snapshot().await?;
    assert!(saved.contains(", 3 users compiled"), "{saved}");
    h.shutdown().await;
    Ok(())
}

/// A cold matcher, as Lambda starts one, with its first batch (a kernel build): the AWS
/// requests it made, by operation.
async fn cold_first_batch(
    aws: &fmn_local::lambda::functions::AwsConfigs,
    h: &Harness,
    id: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    use fmn_local::lambda::functions::{Function, build};
    let (_, Function::Sqs(matcher)) = build(aws, &h.stack, "MatcherFunctionName").await? else {
        anyhow::bail!("the matcher is fed from a queue");
    };
    let before = fmn_calls::snapshot();
    let event = first_delivery(&koji_build(id, "x", "kernel"));
    let response = fmn_calls::scope("cold-matcher", matcher(event, None)).await;
    anyhow::ensure!(response.batch_item_failures.is_empty(), "{response:?}");
    let calls = fmn_calls::snapshot().since(&before);
    Ok(calls.of(|c| c == "cold-matcher").by_operation())
}
