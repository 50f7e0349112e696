//! The matcher's cold start at scale (issue 18): a preferences table of N seeded Fedora-like
//! users (the rules benchmark's generator: ten filters each) in a moto server, then a fresh
//! matcher's first batch, timed in its parts: fetching the items (a scan of the emulator's
//! table), then the work after the fetch (parsing them, the users' context settings,
//! building the index); and the whole first batch as the function runs it, with and
//! without its fetch (the fetch timed just before it, on the same table). The items' bytes
//! give the pages a real DynamoDB scan would take (1 MB each).
//!
//! Then the same first batch from the saved snapshot of the compiled preferences
//! (`fmn_compiled_prefs::snapshot`), as a deployed matcher starts: the snapshot is compiled
//! and saved in S3 as the snapshot function saves it, and a fresh matcher fetches it
//! (`GetObject`) and reads it back, which is the work after its fetch.
//!
//! `FMN_COLD_START_USERS=10000,100000 cargo bench -p fmn-matcher-fn --bench cold_start`
//! (needs the project's `.venv` with moto, which `localstack/bootstrap.sh` creates). moto
//! pages a scan by walking the table from its start for every page, so its scan grows with
//! the square of the table: populations over `FMN_COLD_START_SCAN_MAX` users (default
//! 10,000) are measured from the snapshot only.

#[path = "../../../crates/fmn-rules/benches/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use fmn_compiled_prefs::snapshot::SnapshotStore;
use fmn_rules::ContextKind;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("FMN_COLD_START_USERS")
        .unwrap_or_else(|_| "10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let moto = fmn_emulator::Moto::start(&root, 5197).await?;
    let aws = fmn_emulator::config(&moto.endpoint).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let demo = std::fs::read_to_string(root.join("localstack/demo/messages.jsonl"))?;
    let batch: Vec<String> = demo.lines().take(10).map(str::to_owned).collect();
    println!(
        "users | items fetched (scan) | bytes fetched | scan pages (1 MB) | parse | settings | \
         build | work after the fetch | first batch (10 messages) in all | first batch less the fetch"
    );
    let scan_max: usize = std::env::var("FMN_COLD_START_SCAN_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let s3 = aws_sdk_s3::Client::new(&aws);
    let bucket = "cold-start-snapshots";
    s3.create_bucket().bucket(bucket).send().await?;
    let mut from_snapshot = Vec::new();
    for users in sizes {
        let table = format!("cold-start-{users}");
        create_table(&dynamo, &table).await?;
        let scanned = users <= scan_max;
        populate(&dynamo, &table, if scanned { users } else { 0 }).await?;
        from_snapshot
            .push(snapshot_start(&dynamo, &sqs, &s3, bucket, &table, users, &batch).await?);
        if !scanned {
            continue;
        }

        // The parts, as the first batch does them.
        let started = Instant::now();
        let items = scan(&dynamo, &table).await?;
        let fetch = started.elapsed();
        let started = Instant::now();
        let prefs: Vec<fmn_rules::Preferences> = items
            .iter()
            .filter_map(|item| match item.get("doc") {
                Some(AttributeValue::S(doc)) => serde_json::from_str(doc).ok(),
                _ => None,
            })
            .collect();
        let parse = started.elapsed();
        // The users' context settings the jobs carry, as `refresh` keeps them.
        let started = Instant::now();
        let settings: HashMap<String, BTreeMap<ContextKind, fmn_rules::ContextSettings>> = prefs
            .iter()
            .map(|p| {
                let of = (p.contexts.iter()).map(|(kind, c)| (*kind, c.settings.clone()));
                (p.user.clone(), of.collect())
            })
            .collect();
        let settings_time = started.elapsed();
        let started = Instant::now();
        let (matcher, _) = fmn_rules::Matcher::build_lenient(prefs, Default::default());
        let build = started.elapsed();
        drop((matcher, settings));
        // What DynamoDB would bill and page: the items' sizes (names and values).
        let bytes: usize = items.iter().map(item_bytes).sum();
        let pages = bytes.div_ceil(1 << 20);

        // The whole first batch of a fresh matcher (scan, parse, build, match, send).
        let first = first_batch(
            &dynamo,
            &sqs,
            &table,
            None,
            &format!("email-{users}"),
            &batch,
        )
        .await?;
        let work = parse + settings_time + build;
        println!(
            "{users} | {} in {:.2} s | {:.1} MB | {pages} | {:.3} s | {:.3} s | {:.3} s | {:.3} s | \
             {:.2} s | {:.2} s",
            items.len(),
            fetch.as_secs_f64(),
            bytes as f64 / 1e6,
            parse.as_secs_f64(),
            settings_time.as_secs_f64(),
            build.as_secs_f64(),
            work.as_secs_f64(),
            first.as_secs_f64(),
            first.saturating_sub(fetch).as_secs_f64(),
        );
    }
    println!(
        "\nFrom the snapshot:\nusers | filters | snapshot bytes | save (compile, encode, PutObject) | \
         fetch (GetObject) | read back (work after the fetch) | first batch (10 messages) in all \
         | first batch less the fetch"
    );
    for line in from_snapshot {
        println!("{line}");
    }
    moto.stop().await;
    Ok(())
}

async fn create_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    dynamo
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await?;
    Ok(())
}

/// The cold start from the snapshot of `users` seeded users: compiled and saved as the
/// snapshot function does, then a fresh matcher's first batch; returns the table's line.
async fn snapshot_start(
    dynamo: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    table: &str,
    users: usize,
    batch: &[String],
) -> anyhow::Result<String> {
    let pop = common::Population::for_filters(users * 10);
    let mut rng = common::Rng(0x18c0_1d57);
    let all: Vec<fmn_rules::Preferences> = (0..users).map(|u| pop.prefs(u, &mut rng)).collect();
    let started = Instant::now();
    let (mut compiled, _) = fmn_compiled_prefs::CompiledPrefs::compile(all, &Default::default());
    compiled.version = Some(1);
    compiled.changes_from_ms = fmn_compiled_prefs::now_ms();
    let filters = compiled.matcher.stats().filters;
    let store = SnapshotStore::new(s3.clone(), bucket);
    let bytes = store.put(&compiled).await?;
    let save = started.elapsed();
    drop(compiled);

    // The parts: the fetch, then reading it back.
    let started = Instant::now();
    let fetched = store.get().await?.unwrap_or_default();
    let fetch = started.elapsed();
    let started = Instant::now();
    let read = fmn_compiled_prefs::CompiledPrefs::decode(&fetched, Default::default())?;
    let work = started.elapsed();
    anyhow::ensure!(read.matcher.stats().filters == filters, "filters lost");
    drop((read, fetched));

    // The whole first batch of a fresh matcher reading the snapshot.
    let name = format!("snapshot-{users}");
    let first = first_batch(dynamo, sqs, table, Some(store), &name, batch).await?;
    Ok(format!(
        "{users} | {filters} | {:.1} MB | {:.2} s | {:.2} s | {:.3} s | {:.2} s | {:.2} s",
        bytes as f64 / 1e6,
        save.as_secs_f64(),
        fetch.as_secs_f64(),
        work.as_secs_f64(),
        first.as_secs_f64(),
        first.saturating_sub(fetch).as_secs_f64(),
    ))
}

/// The first batch of a fresh matcher on `table` (reading `snapshot` first when given),
/// its jobs sent to a new queue named after `name`: how long it took.
async fn first_batch(
    dynamo: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    table: &str,
    snapshot: Option<SnapshotStore>,
    name: &str,
    batch: &[String],
) -> anyhow::Result<std::time::Duration> {
    let queue = sqs
        .create_queue()
        .queue_name(format!("cold-start-{name}"))
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    let tables = fmn_matcher_fn::Tables {
        preferences: fmn_store::PreferenceTable::new(dynamo.clone(), table),
        ownership: None,
        recent: None,
        snapshot,
    };
    let queues = BTreeMap::from([(
        ContextKind::Email,
        fmn_queue::SqsQueue::new(sqs.clone(), &queue),
    )]);
    let function = fmn_matcher_fn::MatcherFn::new(
        tables,
        fmn_queue::SqsQueue::new(sqs.clone(), &queue),
        queues,
    );
    let started = Instant::now();
    let response = function.handle(event(batch)).await;
    let first = started.elapsed();
    anyhow::ensure!(response.batch_item_failures.is_empty(), "records failed");
    Ok(first)
}

/// `users` seeded users' preferences, as `PreferenceTable::put` stores them, written with
/// `BatchWriteItem` a few calls at a time; the version stamp last.
async fn populate(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    users: usize,
) -> anyhow::Result<()> {
    let pop = common::Population::for_filters(users * 10);
    let mut rng = common::Rng(0x18c0_1d57);
    let mut writes = Vec::with_capacity(users);
    for u in 0..users {
        let prefs = pop.prefs(u, &mut rng);
        let item = HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S(format!("USER#{}", prefs.user)),
            ),
            ("sk".to_owned(), AttributeValue::S("PREFS".into())),
            (
                "doc".to_owned(),
                AttributeValue::S(serde_json::to_string(&prefs)?),
            ),
        ]);
        let put = PutRequest::builder().set_item(Some(item)).build()?;
        writes.push(WriteRequest::builder().put_request(put).build());
    }
    let started = Instant::now();
    let chunks: Vec<Vec<WriteRequest>> = writes.chunks(25).map(<[_]>::to_vec).collect();
    for group in chunks.chunks(8) {
        let calls = group.iter().map(|chunk| {
            dynamo
                .batch_write_item()
                .request_items(table, chunk.clone())
                .send()
        });
        for out in futures::future::join_all(calls).await {
            let out = out?;
            anyhow::ensure!(
                out.unprocessed_items.is_none_or(|u| u.is_empty()),
                "moto left items unprocessed"
            );
        }
    }
    dynamo
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("META".into()))
        .item("sk", AttributeValue::S("VERSION".into()))
        .item("version", AttributeValue::N("1".into()))
        .send()
        .await?;
    eprintln!(
        "{users} users written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every item of `table`, page by page, as the matcher's full load reads them.
async fn scan(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
) -> anyhow::Result<Vec<HashMap<String, AttributeValue>>> {
    let mut out = Vec::new();
    let mut pages = dynamo
        .scan()
        .table_name(table)
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        out.push(item?);
    }
    Ok(out)
}

/// An item's size as DynamoDB counts it: attribute names plus values (strings as UTF-8).
fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    _ => 8,
                }
        })
        .sum()
}

/// An SQS event of `bodies`, as Lambda delivers a first receive.
fn event(bodies: &[String]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("r{i}"));
            record.body = Some(body.clone());
            record
                .attributes
                .insert("ApproximateReceiveCount".into(), "1".into());
            record
        })
        .collect();
    event
}
