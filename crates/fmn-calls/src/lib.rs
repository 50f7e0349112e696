//! Counting the AWS requests fmn makes, by component, service and operation.
//!
//! Every AWS client of the functions and the bridge is built with [`client!`], which
//! registers the SDK interceptor [`CountCalls`] on the client's configuration. It counts one
//! request per attempt (a retried call counts each attempt, as AWS bills them) in a
//! process-wide table, under the component of the running task ([`scope`]; `-` outside any)
//! and the operation's service and name. [`snapshot`] reads the table; [`Counts::since`]
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
use std::sync::{Arc, Mutex};

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
    /// The service, as the SDK names it (`sqs`, `dynamodb`, `sesv2`, …).
    pub service: String,
    /// The operation (`SendMessageBatch`, `PutItem`, …).
    pub operation: String,
}

/// Request counts by [`Call`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(pub BTreeMap<Call, u64>);

impl Counts {
    /// Every request counted.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// What was counted since `earlier` (a snapshot of the same table).
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts(
            self.0
                .iter()
                .filter_map(|(call, n)| {
                    let d = n.saturating_sub(earlier.0.get(call).copied().unwrap_or(0));
                    (d > 0).then(|| (call.clone(), d))
                })
                .collect(),
        )
    }

    /// The requests of components for which `keep` is true.
    pub fn of(&self, keep: impl Fn(&str) -> bool) -> Counts {
        Counts(
            self.0
                .iter()
                .filter(|(call, _)| keep(&call.component))
                .map(|(c, n)| (c.clone(), *n))
                .collect(),
        )
    }

    /// Totals by `service.operation`, every component together.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (call, n) in &self.0 {
            *out.entry(format!("{}.{}", call.service, call.operation))
                .or_default() += n;
        }
        out
    }

    /// Totals by component.
    pub fn by_component(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (call, n) in &self.0 {
            *out.entry(call.component.clone()).or_default() += n;
        }
        out
    }
}

/// `service.Operation=n` for each operation, every component together, space-separated.
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (op, n) in self.by_operation() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{op}={n}")?;
        }
        Ok(())
    }
}

static COUNTS: Mutex<BTreeMap<Call, u64>> = Mutex::new(BTreeMap::new());

/// Time spent in requests (attempt start to attempt end: signing, the round trip, the
/// service's own time, reading the answer), by [`Call`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waits(pub BTreeMap<Call, std::time::Duration>);

impl Waits {
    /// Every request's time together.
    pub fn total(&self) -> std::time::Duration {
        self.0.values().sum()
    }

    /// The time since `earlier` (a snapshot of the same table).
    pub fn since(&self, earlier: &Waits) -> Waits {
        Waits(
            self.0
                .iter()
                .filter_map(|(call, t)| {
                    let d = t.saturating_sub(earlier.0.get(call).copied().unwrap_or_default());
                    (!d.is_zero()).then(|| (call.clone(), d))
                })
                .collect(),
        )
    }

    /// The time of components for which `keep` is true.
    pub fn of(&self, keep: impl Fn(&str) -> bool) -> Waits {
        Waits(
            self.0
                .iter()
                .filter(|(call, _)| keep(&call.component))
                .map(|(c, t)| (c.clone(), *t))
                .collect(),
        )
    }

    /// Totals by service, every component together.
    pub fn by_service(&self) -> BTreeMap<String, std::time::Duration> {
        let mut out = BTreeMap::new();
        for (call, t) in &self.0 {
            *out.entry(call.service.clone()).or_default() += *t;
        }
        out
    }
}

/// `service=seconds` for each service, every component together, space-separated.
impl fmt::Display for Waits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (service, t) in self.by_service() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{service}={:.2}s", t.as_secs_f64())?;
        }
        Ok(())
    }
}

static WAITS: Mutex<BTreeMap<Call, std::time::Duration>> = Mutex::new(BTreeMap::new());

/// The request times so far, of every client built with [`client!`] in this process.
pub fn waits() -> Waits {
    Waits(WAITS.lock().unwrap_or_else(|p| p.into_inner()).clone())
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

fn started(cfg: &mut ConfigBag) {
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
    let mut waits = WAITS.lock().unwrap_or_else(|p| p.into_inner());
    *waits.entry(call).or_default() += start.0.elapsed();
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
    let mut counts = COUNTS.lock().unwrap_or_else(|p| p.into_inner());
    *counts.entry(call).or_default() += 1;
}

/// The counts so far, of every client built with [`client!`] in this process.
pub fn snapshot() -> Counts {
    Counts(COUNTS.lock().unwrap_or_else(|p| p.into_inner()).clone())
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
        match cfg.load::<Metadata>() {
            Some(m) => record(m.service(), m.name()),
            None => record("unknown", "unknown"),
        }
        started(cfg);
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
        match cfg.load::<Metadata>() {
            Some(m) => record_as(self.0, m.service(), m.name()),
            None => record_as(self.0, "unknown", "unknown"),
        }
        started(cfg);
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
}
