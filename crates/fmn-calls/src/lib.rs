//! Counting the AWS requests fmn makes, by component, service and operation.
//!
//! Every AWS client of the functions and the bridge is built with [`client!`], which
//! registers the SDK interceptor [`CountCalls`] on the client's configuration. It counts one
//! request per attempt (a retried call counts each attempt, as AWS bills them) in a
//! process-wide table, under the component of the running task ([`scope`]; `-` outside any)
//! and the operation's service and name. [`snapshot`] reads the table; [`Tally::since`]
//! gives what happened between two snapshots (one Lambda invocation, one benchmark run).
//! [`waits`] is the time spent in those requests, the same way (where a component's time
//! goes: waiting on AWS or its own work).
//!
//! ```
//! let before = fmn_calls::snapshot();
//! fmn_calls::record("dynamodb", "GetItem");
//! let diff = fmn_calls::snapshot().since(&before);
//! assert_eq!(diff.total(), 1);
//! assert_eq!(diff.to_string(), "dynamodb.GetItem=1");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::iter::Sum;
use std::ops::AddAssign;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// One kind of request: who made it, to which service, which operation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Call {
    /// The component ([`scope`]), `-` when none was set.
    pub component: String,
    /// The service, as the SDK names it (`SQS`, `DynamoDB`, `SESv2`, …).
    pub service: String,
    /// The operation (`SendMessageBatch`, `PutItem`, …).
    pub operation: String,
}

/// A value a [`Tally`] adds up per [`Call`]: a request count (`u64`) or time (`Duration`).
pub trait Amount: Copy + Default + PartialEq + AddAssign + Sum {
    /// `self - earlier`, or nothing (the default) when `earlier` is larger.
    fn saturating_sub(self, earlier: Self) -> Self;
}

impl Amount for u64 {
    fn saturating_sub(self, earlier: Self) -> Self {
        u64::saturating_sub(self, earlier)
    }
}

impl Amount for Duration {
    fn saturating_sub(self, earlier: Self) -> Self {
        Duration::saturating_sub(self, earlier)
    }
}

/// A table of `V` by [`Call`]: [`Counts`] and [`Waits`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally<V>(pub BTreeMap<Call, V>);

/// Request counts by [`Call`].
pub type Counts = Tally<u64>;

/// Time spent in requests (attempt start to attempt end: signing, the round trip, the
/// service's own time, reading the answer), by [`Call`].
pub type Waits = Tally<Duration>;

impl<V: Amount> Tally<V> {
    /// Every call's value together.
    pub fn total(&self) -> V {
        self.0.values().copied().sum()
    }

    /// What was added since `earlier` (a snapshot of the same table).
    pub fn since(&self, earlier: &Tally<V>) -> Tally<V> {
        Tally(
            self.0
                .iter()
                .filter_map(|(call, v)| {
                    let d = v.saturating_sub(earlier.0.get(call).copied().unwrap_or_default());
                    (d != V::default()).then(|| (call.clone(), d))
                })
                .collect(),
        )
    }

    /// The calls of components for which `keep` is true.
    pub fn of(&self, keep: impl Fn(&str) -> bool) -> Tally<V> {
        Tally(
            self.0
                .iter()
                .filter(|(call, _)| keep(&call.component))
                .map(|(c, v)| (c.clone(), *v))
                .collect(),
        )
    }

    /// Totals by `key` of the call, every other part together.
    fn by(&self, key: impl Fn(&Call) -> String) -> BTreeMap<String, V> {
        let mut out = BTreeMap::new();
        for (call, v) in &self.0 {
            *out.entry(key(call)).or_default() += *v;
        }
        out
    }

    /// Totals by `service.operation`, every component together.
    pub fn by_operation(&self) -> BTreeMap<String, V> {
        self.by(|call| format!("{}.{}", call.service, call.operation))
    }

    /// Totals by component.
    pub fn by_component(&self) -> BTreeMap<String, V> {
        self.by(|call| call.component.clone())
    }

    /// Totals by service, every component together.
    pub fn by_service(&self) -> BTreeMap<String, V> {
        self.by(|call| call.service.clone())
    }
}

/// `key=value` for each of `totals`, space-separated, each written by `item`.
fn write_spaced<V>(
    f: &mut fmt::Formatter<'_>,
    totals: BTreeMap<String, V>,
    item: impl Fn(&mut fmt::Formatter<'_>, &str, V) -> fmt::Result,
) -> fmt::Result {
    for (i, (key, v)) in totals.into_iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        item(f, &key, v)?;
    }
    Ok(())
}

/// `service.Operation=n` for each operation, every component together, space-separated.
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_spaced(f, self.by_operation(), |f, op, n| write!(f, "{op}={n}"))
    }
}

/// `service=seconds` for each service, every component together, space-separated.
impl fmt::Display for Waits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_spaced(f, self.by_service(), |f, service, t| {
            write!(f, "{service}={:.2}s", t.as_secs_f64())
        })
    }
}

static COUNTS: Mutex<BTreeMap<Call, u64>> = Mutex::new(BTreeMap::new());
static WAITS: Mutex<BTreeMap<Call, Duration>> = Mutex::new(BTreeMap::new());

/// Adds `v` to `call`'s value in `table`.
fn add<V: Amount>(table: &Mutex<BTreeMap<Call, V>>, call: Call, v: V) {
    *table
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(call)
        .or_default() += v;
}

/// A copy of `table` as it is now.
fn read<V: Clone>(table: &Mutex<BTreeMap<Call, V>>) -> Tally<V> {
    Tally(table.lock().unwrap_or_else(|p| p.into_inner()).clone())
}

/// The request times so far, of every client built with [`client!`] in this process.
pub fn waits() -> Waits {
    read(&WAITS)
}

/// When the current attempt started (kept in the request's config bag).
#[derive(Debug, Clone, Copy)]
struct AttemptStarted(std::time::Instant);

impl Storable for AttemptStarted {
    type Storer = StoreReplace<Self>;
}

fn current_component() -> String {
    COMPONENT
        .try_with(|c| c.to_string())
        .unwrap_or_else(|_| "-".to_owned())
}

/// Counts an attempt under `component`, by the operation's metadata, and notes when it
/// started (for [`finished`]).
fn started(component: &str, cfg: &mut ConfigBag) {
    match cfg.load::<Metadata>() {
        Some(m) => record_as(component, m.service(), m.name()),
        None => record_as(component, "unknown", "unknown"),
    }
    cfg.interceptor_state()
        .store_put(AttemptStarted(std::time::Instant::now()));
}

fn finished(component: &str, cfg: &ConfigBag) {
    let (Some(start), Some(m)) = (cfg.load::<AttemptStarted>(), cfg.load::<Metadata>()) else {
        return;
    };
    let call = Call {
        component: component.to_owned(),
        service: m.service().to_owned(),
        operation: m.name().to_owned(),
    };
    add(&WAITS, call, start.0.elapsed());
}

tokio::task_local! {
    static COMPONENT: Arc<str>;
}

/// Runs `fut` with its requests counted under `component` (the local runtime names each
/// function so; on Lambda a process is one function and needs none).
pub async fn scope<F: Future>(component: impl Into<Arc<str>>, fut: F) -> F::Output {
    COMPONENT.scope(component.into(), fut).await
}

/// Counts one request to `service`'s `operation` under the current [`scope`].
pub fn record(service: &str, operation: &str) {
    record_as(&current_component(), service, operation);
}

/// Counts one request to `service`'s `operation` under `component`, whatever the task.
pub fn record_as(component: &str, service: &str, operation: &str) {
    let component = component.to_owned();
    let call = Call {
        component,
        service: service.to_owned(),
        operation: operation.to_owned(),
    };
    add(&COUNTS, call, 1);
}

/// The counts so far, of every client built with [`client!`] in this process.
pub fn snapshot() -> Counts {
    read(&COUNTS)
}

/// The SDK interceptor counting requests: one per attempt, by the operation's metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountCalls;

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "fmn_calls::CountCalls"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        started(&current_component(), cfg);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        finished(&current_component(), cfg);
        Ok(())
    }
}

/// The SDK interceptor counting a client's requests under one component, whichever task
/// makes them: for a component whose requests leave from tasks it spawns (the bridge's
/// sends), which a task-local [`scope`] does not reach.
#[derive(Debug, Clone, Copy)]
pub struct CountCallsAs(pub &'static str);

impl Intercept for CountCallsAs {
    fn name(&self) -> &'static str {
        "fmn_calls::CountCallsAs"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        started(self.0, cfg);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        finished(self.0, cfg);
        Ok(())
    }
}

/// A client of the SDK crate `$sdk` from an `&SdkConfig`, with [`CountCalls`] registered:
/// `fmn_calls::client!(aws_sdk_sqs, &aws)` instead of `aws_sdk_sqs::Client::new(&aws)`.
/// `fmn_calls::client!(aws_sdk_sqs, &aws, "bridge")` counts every request of the client
/// under `"bridge"` ([`CountCallsAs`]).
#[macro_export]
macro_rules! client {
    ($sdk:ident, $aws:expr, $component:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($aws)
                .interceptor($crate::CountCallsAs($component))
                .build(),
        )
    };
    ($sdk:ident, $aws:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($aws)
                .interceptor($crate::CountCalls)
                .build(),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_by_component_and_operation() {
        let before = snapshot();
        scope("matcher", async {
            record("sqs", "SendMessageBatch");
            record("sqs", "SendMessageBatch");
        })
        .await;
        record("dynamodb", "GetItem");
        // A spawned task is outside the scope; a named client's requests are not.
        scope("matcher", async {
            tokio::spawn(async { record_as("bridge", "sqs", "SendMessageBatch") })
                .await
                .unwrap();
        })
        .await;
        let diff = snapshot().since(&before);
        assert_eq!(diff.by_component()["bridge"], 1);
        let diff = diff.of(|c| c != "bridge");
        assert_eq!(diff.total(), 3);
        assert_eq!(diff.by_component()["matcher"], 2);
        assert_eq!(diff.of(|c| c == "matcher").total(), 2);
        assert_eq!(
            diff.to_string(),
            "dynamodb.GetItem=1 sqs.SendMessageBatch=2"
        );
    }

    #[test]
    fn waits_add_up_by_service() {
        let call = |component: &str, service: &str, operation: &str| Call {
            component: component.to_owned(),
            service: service.to_owned(),
            operation: operation.to_owned(),
        };
        let ms = Duration::from_millis;
        let before: Waits = Tally(
            [(call("matcher", "sqs", "SendMessageBatch"), ms(100))]
                .into_iter()
                .collect(),
        );
        let now: Waits = Tally(
            [
                (call("matcher", "sqs", "SendMessageBatch"), ms(350)),
                (call("matcher", "sqs", "DeleteMessage"), ms(0)),
                (call("digest", "sqs", "SendMessage"), ms(500)),
                (call("digest", "dynamodb", "Query"), ms(1250)),
            ]
            .into_iter()
            .collect(),
        );
        let diff = now.since(&before);
        // Nothing spent since: no entry.
        assert_eq!(diff.0.len(), 3);
        assert_eq!(diff.total(), ms(2000));
        assert_eq!(diff.to_string(), "dynamodb=1.25s sqs=0.75s");
        assert_eq!(diff.of(|c| c == "matcher").total(), ms(250));
        assert_eq!(diff.by_component()["digest"], ms(1750));
    }
}
