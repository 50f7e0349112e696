//! A local Lambda runtime for SQS-triggered functions.
//!
//! For each event-source mapping deployed in the emulator, pollers (as many as the mapping's
//! maximum concurrency, at most [`MAX_LOCAL_POLLERS`]; all but the first only while the
//! queue has a backlog) long-poll the queue; each
//! gathers up to the mapping's batch size within its batching window, invokes the handler
//! in-process with a real `SqsEvent`, and deletes the records the handler did not report as
//! failed. Failed records become visible again after the queue's visibility timeout, and SQS
//! itself moves them to the DLQ after `maxReceiveCount` receives, as with Lambda.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use tokio_util::sync::CancellationToken;

pub use super::functions::Handler;
use super::functions::{AwsConfigs, Function};

/// How Lambda would feed one function from one queue.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The function's name.
    pub function: String,
    /// The queue's ARN.
    pub queue_arn: String,
    /// The queue's URL.
    pub queue_url: String,
    /// Records per invocation (at most 10 per receive call).
    pub batch_size: i32,
    /// How long to gather a batch.
    pub batching_window: Duration,
    /// The queue's visibility timeout (seconds).
    pub visibility_timeout: i32,
    /// The function's configured timeout: each invocation gets the deadline Lambda would
    /// give it (less [`fmn_lambda::DEADLINE_MARGIN`]); `None`: no deadline.
    pub timeout: Option<Duration>,
    /// Pollers feeding the function at once: the mapping's `ScalingConfig.MaximumConcurrency`,
    /// at most [`MAX_LOCAL_POLLERS`] (Lambda starts an SQS mapping at five concurrent
    /// batches and scales up to that maximum while the queue has a backlog).
    pub concurrency: usize,
}

/// The most pollers (concurrent invocations) the local runtime runs per mapping: Lambda's
/// starting concurrency for an SQS mapping, and about what one machine's emulator serves.
pub const MAX_LOCAL_POLLERS: usize = 5;

/// Reads the event-source mappings of `function` as deployed.
pub async fn mappings(aws: &aws_config::SdkConfig, function: &str) -> anyhow::Result<Vec<Mapping>> {
    let lambda = aws_sdk_lambda::Client::new(aws);
    let sqs = aws_sdk_sqs::Client::new(aws);
    let listed = lambda
        .list_event_source_mappings()
        .function_name(function)
        .send()
        .await
        .with_context(|| format!("listing event source mappings of {function}"))?;
    let timeout = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .with_context(|| format!("reading the configuration of {function}"))?
        .timeout()
        .map(|t| Duration::from_secs(t.max(1) as u64));
    let mut out = Vec::new();
    for esm in listed.event_source_mappings() {
        let Some(arn) = esm.event_source_arn() else {
            continue;
        };
        let Some(name) = arn.rsplit(':').next() else {
            continue;
        };
        let url = sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await?
            .queue_url
            .unwrap_or_default();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await?;
        let visibility_timeout = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse().ok())
            .unwrap_or(30);
        out.push(Mapping {
            function: function.to_owned(),
            queue_arn: arn.to_owned(),
            queue_url: url,
            batch_size: esm.batch_size().unwrap_or(10).clamp(1, 10_000),
            batching_window: Duration::from_secs(
                esm.maximum_batching_window_in_seconds().unwrap_or(0).max(0) as u64,
            ),
            visibility_timeout,
            timeout,
            concurrency: esm
                .scaling_config()
                .and_then(|c| c.maximum_concurrency())
                .map_or(MAX_LOCAL_POLLERS, |n| n.max(1) as usize)
                .min(MAX_LOCAL_POLLERS),
        });
    }
    Ok(out)
}

fn to_event_record(m: aws_sdk_sqs::types::Message, mapping: &Mapping) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = m.message_id;
    record.receipt_handle = m.receipt_handle;
    record.body = m.body;
    record.md5_of_body = m.md5_of_body;
    record.md5_of_message_attributes = m.md5_of_message_attributes;
    record.attributes = m
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    record.message_attributes = m
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let mut a = SqsMessageAttribute::default();
            a.string_value = v.string_value;
            a.data_type = Some(v.data_type);
            (k, a)
        })
        .collect();
    record.event_source_arn = Some(mapping.queue_arn.clone());
    record.event_source = Some("aws:sqs".into());
    record.aws_region = Some("us-east-1".into());
    record
}

/// Feeds `handler` from `mapping` until `stop` is cancelled (one poller).
pub async fn poll(
    sqs: aws_sdk_sqs::Client,
    mapping: Mapping,
    handler: Handler,
    stop: CancellationToken,
) {
    poll_scaled(sqs, mapping, handler, stop, 0, Arc::default()).await;
}

/// The poller `rank` of a mapping's pollers, sharing `backlog` with them: the first always
/// polls; the others only while the queue has a backlog (the last batch anyone gathered was
/// full), as Lambda adds concurrent batches when a queue backs up, so a trickle is not
/// spread over several half-empty batches.
pub async fn poll_scaled(
    sqs: aws_sdk_sqs::Client,
    mapping: Mapping,
    handler: Handler,
    stop: CancellationToken,
    rank: usize,
    backlog: Arc<AtomicBool>,
) {
    tracing::debug!(function = %mapping.function, queue = %mapping.queue_url,
        batch_size = mapping.batch_size, rank, "local runtime: polling");
    while !stop.is_cancelled() {
        if rank > 0 && !backlog.load(Ordering::Relaxed) {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(100)) => continue,
            }
        }
        let batch = tokio::select! {
            () = stop.cancelled() => break,
            b = gather(&sqs, &mapping) => b,
        };
        if let Ok(m) = &batch {
            backlog.store(m.len() >= mapping.batch_size as usize, Ordering::Relaxed);
        }
        let messages = match batch {
            Ok(m) if m.is_empty() => continue,
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(queue = %mapping.queue_url, error = %e, "local runtime: receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let receipts: HashMap<String, String> = messages
            .iter()
            .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
            .collect();
        let mut event = SqsEvent::default();
        event.records = messages
            .into_iter()
            .map(|m| to_event_record(m, &mapping))
            .collect();
        // The deadline Lambda's context would carry: now plus the function's timeout.
        let deadline = mapping.timeout.map(|t| {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            fmn_lambda::deadline_from(now_ms + t.as_millis() as u64)
        });
        // A panicking handler fails the whole batch, as a crashed Lambda invocation would.
        // Its AWS requests are counted under the function's name (`fmn_calls`). A poller
        // dropped mid-invocation (its task aborted: the runtime killed) kills the invocation
        // with it, as the end of a Lambda environment does; a cancelled `stop` lets it finish.
        let invoked = std::time::Instant::now();
        let invocation = tokio::spawn(fmn_calls::scope(
            mapping.function.clone(),
            (handler)(event, deadline),
        ));
        let _killed_with_the_poller = AbortOnDrop(invocation.abort_handle());
        let response = invocation.await;
        let failed: Vec<String> = match response {
            Ok(r) => r
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(e) => {
                tracing::error!(function = %mapping.function, error = %e, "handler crashed");
                receipts.keys().cloned().collect()
            }
        };
        record_invocation(
            &mapping.function,
            receipts.len(),
            failed.len(),
            invoked.elapsed(),
        );
        let done: Vec<_> = receipts
            .iter()
            .filter(|(id, _)| !failed.contains(id))
            .collect();
        for chunk in done.chunks(10) {
            let mut request = sqs.delete_message_batch().queue_url(&mapping.queue_url);
            for (i, (_, receipt)) in chunk.iter().enumerate() {
                if let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt.as_str())
                    .build()
                {
                    request = request.entries(entry);
                }
            }
            if let Err(e) = request.send().await {
                tracing::warn!(error = %e, "local runtime: delete failed; records will be redelivered");
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the local runtime's invocations of one function came to (for `fmn-local up
/// --bench`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Invocations {
    /// Invocations.
    pub invocations: u64,
    /// Records handed to them.
    pub records: u64,
    /// Records they reported as failed.
    pub failed: u64,
    /// Their time in all (what Lambda would bill, give or take the emulator's latency).
    pub busy: Duration,
    /// When the last one returned.
    pub last_done: Option<std::time::Instant>,
}

static INVOCATIONS: std::sync::Mutex<std::collections::BTreeMap<String, Invocations>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn record_invocation(function: &str, records: usize, failed: usize, busy: Duration) {
    let mut all = INVOCATIONS.lock().unwrap_or_else(|p| p.into_inner());
    let entry = all.entry(function.to_owned()).or_default();
    entry.invocations += 1;
    entry.records += records as u64;
    entry.failed += failed as u64;
    entry.busy += busy;
    entry.last_done = Some(std::time::Instant::now());
}

/// Every SQS function's invocations so far, by function name.
pub fn invocations() -> std::collections::BTreeMap<String, Invocations> {
    INVOCATIONS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Receives up to a batch: one long poll, then, once something arrived, more until the
/// batch is full or the batching window has passed.
async fn gather(
    sqs: &aws_sdk_sqs::Client,
    mapping: &Mapping,
) -> anyhow::Result<Vec<aws_sdk_sqs::types::Message>> {
    let batch_size = mapping.batch_size as usize;
    let receive = |want: usize, wait: i32| {
        sqs.receive_message()
            .queue_url(&mapping.queue_url)
            .max_number_of_messages(want.min(10) as i32)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
    };
    let mut out = receive(batch_size, 1).await?.messages.unwrap_or_default();
    if out.is_empty() {
        return Ok(out);
    }
    let deadline = tokio::time::Instant::now() + mapping.batching_window;
    while out.len() < batch_size && tokio::time::Instant::now() < deadline {
        let got = receive(batch_size - out.len(), 0)
            .await?
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        out.extend(got);
    }
    Ok(out)
}

/// Builds every function of the stack from its deployed environment
/// ([`super::functions::FUNCTIONS`]) and starts a poller for every mapping of each SQS
/// function and a runner for every schedule of each scheduled one; returns their tasks.
pub async fn start(
    aws: &AwsConfigs,
    stack: &crate::Stack,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinSet<()>> {
    let sqs = aws_sdk_sqs::Client::new(&aws.aws);
    let mut tasks = tokio::task::JoinSet::new();
    for (function, built) in super::functions::build_all(aws, stack).await? {
        match built {
            Function::Sqs(handler) => {
                for mapping in mappings(&aws.aws, &function).await? {
                    // As Lambda scales a mapping: several batches of one queue at once
                    // while it has a backlog.
                    let backlog = Arc::new(AtomicBool::new(false));
                    for rank in 0..mapping.concurrency {
                        tasks.spawn(poll_scaled(
                            sqs.clone(),
                            mapping.clone(),
                            handler.clone(),
                            stop.clone(),
                            rank,
                            backlog.clone(),
                        ));
                    }
                }
            }
            // Started with the local gateway (`crate::gateway::start`), which invokes it.
            Function::WebSocket(_) => {}
            Function::Scheduled(handler) => {
                for schedule in super::schedule::schedules(&aws.aws, &function).await? {
                    tasks.spawn(super::schedule::run(
                        schedule,
                        handler.clone(),
                        stop.clone(),
                    ));
                }
            }
        }
    }
    Ok(tasks)
}
