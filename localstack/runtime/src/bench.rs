//! `fmn-local up --bench N` (issue 18): the pipeline's throughput beside the emulator's own
//! raw SQS rate, in one run, with the AWS requests counted.
//!
//! 1. The emulator alone: N bus messages into a scratch queue with a plain
//!    `SendMessageBatch` loop (batches of ten, one call at a time, as the bridge sends).
//! 2. The pipeline: the same N messages (the demo messages, cycled, each with a fresh id)
//!    through the bridge onto `incoming`, then the matcher and every sender in the local
//!    runtime, until every queue is empty. Bus messages per second run from the first push
//!    to the matcher's last batch; each sender's notifications per second from the first
//!    push to its last batch.
//! 3. The requests every component made ([`fmn_calls`], the event-source mappings' own
//!    receive and delete not included), per bus message and per notification.
//! 4. The matcher fed at the emulator's own rate: N more messages pushed straight onto
//!    `incoming` with the loop of step 1 (so while the functions run, as in issue 18's first
//!    experiment), and the time until `incoming` is empty. The bridge sends one batch at a
//!    time, so in step 2 the matcher can only be as fast as it; here it is fed as fast as the
//!    emulator takes messages.
//!
//! `up` deploys the stack with the flood limit out of the way (`FloodMax`) and loads the
//! preferences without digest settings when it runs the bench, and the report says so.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::Stack;
use crate::lambda::functions::FUNCTIONS;
use crate::lambda::runtime::{Invocations, invocations, mappings};

/// `FloodMax` for a bench run: as high as the template allows.
pub const FLOOD_MAX: &str = "999999";

/// One function's part of a run.
#[derive(Debug, Clone)]
pub struct FunctionRun {
    /// Its role (the stack output naming it, without `FunctionName`).
    pub role: String,
    /// Its invocations during the run.
    pub invocations: Invocations,
    /// Seconds from the first push to its last batch.
    pub seconds: f64,
    /// The AWS requests it made during the run.
    pub calls: fmn_calls::Counts,
    /// The time those requests took (summed over its concurrent invocations).
    pub waits: fmn_calls::Waits,
}

/// What a bench run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Bus messages per run.
    pub messages: usize,
    /// The emulator: messages per second of a plain `SendMessageBatch` loop.
    pub raw_per_second: f64,
    /// Seconds the bridge took to push them all.
    pub push_seconds: f64,
    /// Seconds from the first push to the matcher's last batch.
    pub matcher_seconds: f64,
    /// Every SQS function's part, the matcher first.
    pub functions: Vec<FunctionRun>,
    /// The bridge's requests.
    pub bridge_calls: fmn_calls::Counts,
    /// Seconds from the first push until every queue was empty.
    pub drained_seconds: f64,
    /// Step 4: seconds to push the messages straight onto `incoming` with the raw loop.
    pub direct_push_seconds: f64,
    /// Step 4: seconds from the first push until `incoming` was empty.
    pub direct_drained_seconds: f64,
}

impl Report {
    fn senders(&self) -> impl Iterator<Item = &FunctionRun> {
        self.functions.iter().filter(|f| f.role != "Matcher")
    }

    /// Notifications handled by every sender (records, retries included).
    pub fn notifications(&self) -> u64 {
        self.senders().map(|f| f.invocations.records).sum()
    }

    /// The matcher's AWS requests per bus message.
    pub fn matcher_requests_per_message(&self) -> f64 {
        let matcher: u64 = (self.functions.iter())
            .filter(|f| f.role == "Matcher")
            .map(|f| f.calls.total())
            .sum();
        matcher as f64 / self.messages.max(1) as f64
    }

    /// The senders' AWS requests per notification.
    pub fn sender_requests_per_notification(&self) -> f64 {
        let calls: u64 = self.senders().map(|f| f.calls.total()).sum();
        calls as f64 / self.notifications().max(1) as f64
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.messages;
        writeln!(f, "fmn-local bench: {n} bus messages")?;
        writeln!(
            f,
            "settings: flood limit out of the way (FloodMax={FLOOD_MAX}); digests off (digest \
             settings removed from the loaded preferences)"
        )?;
        writeln!(
            f,
            "emulator, plain SendMessageBatch loop (batches of 10): {:.0} messages/s",
            self.raw_per_second
        )?;
        writeln!(
            f,
            "pipeline: bridge pushed {n} in {:.1} s; matcher done after {:.1} s: {:.0} bus \
             messages/s",
            self.push_seconds,
            self.matcher_seconds,
            n as f64 / self.matcher_seconds.max(1e-9)
        )?;
        let (push, drained) = (self.direct_push_seconds, self.direct_drained_seconds);
        writeln!(
            f,
            "matcher fed at the emulator's rate: {n} more pushed straight onto incoming by the \
             raw loop in {push:.1} s ({:.0} messages/s, while the functions run); incoming \
             empty after {drained:.1} s: {:.0} bus messages/s ({:.2} of the push rate)",
            n as f64 / push.max(1e-9),
            n as f64 / drained.max(1e-9),
            push / drained.max(1e-9)
        )?;
        writeln!(
            f,
            "{:<14} {:>8} {:>7} {:>8} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9} {:>10}",
            "function",
            "records",
            "failed",
            "batches",
            "done (s)",
            "records/s",
            "requests",
            "req/record",
            "rec/batch",
            "ms/batch",
            "AWS ms/b"
        )?;
        for run in &self.functions {
            let i = &run.invocations;
            writeln!(
                f,
                "{:<14} {:>8} {:>7} {:>8} {:>9.1} {:>9.0} {:>9} {:>11.2} {:>9.1} {:>9.1} {:>10.1}",
                run.role,
                i.records,
                i.failed,
                i.invocations,
                run.seconds,
                i.records as f64 / run.seconds.max(1e-9),
                run.calls.total(),
                run.calls.total() as f64 / i.records.max(1) as f64,
                i.records as f64 / i.invocations.max(1) as f64,
                i.busy.as_secs_f64() * 1000.0 / i.invocations.max(1) as f64,
                run.waits.total().as_secs_f64() * 1000.0 / i.invocations.max(1) as f64
            )?;
        }
        writeln!(
            f,
            "notifications: {} ({:.2} per bus message)",
            self.notifications(),
            self.notifications() as f64 / n.max(1) as f64
        )?;
        writeln!(
            f,
            "AWS requests: matcher {:.2} per bus message, bridge {:.2} per bus message, senders \
             {:.2} per notification (the event-source mappings' receive/delete not included)",
            self.matcher_requests_per_message(),
            self.bridge_calls.total() as f64 / n.max(1) as f64,
            self.sender_requests_per_notification()
        )?;
        writeln!(f, "requests by operation:")?;
        writeln!(f, "  Bridge: {}", self.bridge_calls)?;
        for run in &self.functions {
            writeln!(f, "  {}: {}", run.role, run.calls)?;
        }
        // Where the time went: the functions' requests by service, against the run's wall
        // time (moto serves DynamoDB one request at a time: its requests' time summed over
        // every function, queueing included, near the wall time means DynamoDB is saturated).
        let mut waits = fmn_calls::Waits::default();
        for run in &self.functions {
            waits.0.extend(run.waits.0.clone());
        }
        writeln!(
            f,
            "time in AWS requests, every function together: {waits} (run: {:.1} s until every \
             queue was empty; pollers per mapping: its MaximumConcurrency, at most {})",
            self.drained_seconds,
            crate::lambda::runtime::MAX_LOCAL_POLLERS
        )?;
        Ok(())
    }
}

/// `n` bus messages: `sample` (fedmsg envelopes) cycled, each with a fresh id.
pub fn messages(sample: &[serde_json::Value], n: usize) -> Vec<fmn_bridge::BusMessage> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    (0..n)
        .filter_map(|i| {
            let mut envelope = sample.get(i % sample.len().max(1))?.clone();
            let id = envelope
                .get("msg_id")
                .and_then(|v| v.as_str())
                .unwrap_or("m");
            envelope["msg_id"] = format!("{id}-bench-{run}-{i}").into();
            let topic = envelope.get("topic")?.as_str()?.to_owned();
            Some(fmn_bridge::BusMessage {
                topic,
                body: envelope.to_string(),
            })
        })
        .collect()
}

/// The emulator's rate: `messages` into a scratch queue, one `SendMessageBatch` of ten at a
/// time; the queue is deleted after.
async fn raw_rate(
    sqs: &aws_sdk_sqs::Client,
    messages: &[fmn_bridge::BusMessage],
) -> anyhow::Result<f64> {
    let name = format!("fmn-bench-raw-{}", uuid::Uuid::new_v4().simple());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await?
        .queue_url
        .context("no queue URL")?;
    let sent = fmn_bridge::bench::send_plain(sqs, &url, messages).await;
    let _ = sqs.delete_queue().queue_url(&url).send().await;
    Ok(messages.len() as f64 / sent?.max(1e-9))
}

/// Messages in `url`, visible or in flight.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<u64> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?;
    let attributes = out.attributes.unwrap_or_default();
    let read = |name: QueueAttributeName| -> u64 {
        attributes
            .get(&name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(read(QueueAttributeName::ApproximateNumberOfMessages)
        + read(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

/// Waits until every queue of `queues` (in pipeline order: `incoming` first) is empty
/// twice in a row, or `timeout`.
async fn drained(
    sqs: &aws_sdk_sqs::Client,
    queues: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    let mut empty_in_a_row = 0;
    while empty_in_a_row < 2 {
        anyhow::ensure!(
            Instant::now() < until,
            "the queues were not empty after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        // In pipeline order: once `incoming` is empty, every job is on its context queue.
        let mut total = 0;
        for url in queues {
            total += depth(sqs, url).await?;
        }
        empty_in_a_row = if total == 0 { empty_in_a_row + 1 } else { 0 };
    }
    Ok(())
}

/// Runs the bench against the running stack (`up` has started the functions): `n`
/// messages made from `sample`.
pub async fn run(
    aws: &aws_config::SdkConfig,
    stack: &Stack,
    sample: &[serde_json::Value],
    n: usize,
) -> anyhow::Result<Report> {
    anyhow::ensure!(n > 0 && !sample.is_empty(), "the bench needs messages");
    let sqs = aws_sdk_sqs::Client::new(aws);
    let messages = messages(sample, n);
    println!("bench: the emulator's raw rate ({n} messages into a scratch queue)…");
    let raw_per_second = raw_rate(&sqs, &messages).await?;

    // Every SQS function, the matcher first, with the queues that feed it.
    let incoming = stack.output("IncomingQueueUrl")?.to_owned();
    let mut roles: Vec<(String, String)> = Vec::new();
    let mut queues = vec![incoming.clone()];
    for (output, _) in FUNCTIONS {
        let Ok(function) = stack.output(output) else {
            continue;
        };
        let feeding = mappings(aws, function).await?;
        if feeding.is_empty() {
            continue;
        }
        for mapping in feeding {
            if !queues.contains(&mapping.queue_url) {
                queues.push(mapping.queue_url);
            }
        }
        let role = output.trim_end_matches("FunctionName").to_owned();
        roles.push((role, function.to_owned()));
    }

    let calls_before = fmn_calls::snapshot();
    let waits_before = fmn_calls::waits();
    let before = invocations();
    println!("bench: {n} messages through bridge → matcher → senders…");
    let started = Instant::now();
    let bridge = fmn_bridge::Bridge::from_aws(
        fmn_bridge::Config {
            queue_url: incoming,
            ..Default::default()
        },
        aws,
    );
    let pushed =
        fmn_calls::scope("bridge", fmn_bridge::replay::replay(bridge, messages, None)).await?;
    anyhow::ensure!(pushed as usize == n, "the bridge pushed {pushed} of {n}");
    let push_seconds = started.elapsed().as_secs_f64();
    drained(&sqs, &queues, Duration::from_secs(120 + n as u64 / 5)).await?;
    let drained_seconds = started.elapsed().as_secs_f64();

    let calls = fmn_calls::snapshot().since(&calls_before);
    let waits = fmn_calls::waits().since(&waits_before);
    let after = invocations();
    let mut functions = Vec::new();
    for (role, function) in roles {
        let now = after.get(&function).copied().unwrap_or_default();
        let was = before.get(&function).copied().unwrap_or_default();
        let invocations = Invocations {
            invocations: now.invocations - was.invocations,
            records: now.records - was.records,
            failed: now.failed - was.failed,
            busy: now.busy.saturating_sub(was.busy),
            last_done: now.last_done,
        };
        let seconds = match now.last_done {
            Some(done) if invocations.invocations > 0 => {
                done.saturating_duration_since(started).as_secs_f64()
            }
            _ => 0.0,
        };
        functions.push(FunctionRun {
            role,
            invocations,
            seconds,
            calls: calls.of(|c| c == function),
            waits: waits.of(|c| c == function),
        });
    }
    let matcher_seconds = (functions.iter())
        .find(|f| f.role == "Matcher")
        .map_or(0.0, |f| f.seconds);

    println!("bench: {n} more messages straight onto incoming at the emulator's rate…");
    let fresh = self::messages(sample, n);
    let started = Instant::now();
    let direct_push_seconds = fmn_bridge::bench::send_plain(&sqs, &queues[0], &fresh).await?;
    drained(&sqs, &queues[..1], Duration::from_secs(120 + n as u64 / 5)).await?;
    let direct_drained_seconds = started.elapsed().as_secs_f64();
    Ok(Report {
        messages: n,
        raw_per_second,
        push_seconds,
        matcher_seconds,
        functions,
        bridge_calls: calls.of(|c| c == "bridge"),
        drained_seconds,
        direct_push_seconds,
        direct_drained_seconds,
    })
}
