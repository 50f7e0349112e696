//! The edge of every fmn Lambda function, written once.
//!
//! - [`Vars`]: a function's configuration is read from a variables map, the process
//!   environment on Lambda ([`Vars::from_env`]) or the deployed function's environment in the
//!   local runtime; every error names the variable ([`ConfigError`]).
//! - [`secrets`]: secrets come from SSM Parameter Store, named by `*_SSM_PARAMETER`
//!   variables, read once at start ([`Vars::load`]).
//! - [`SqsFunction`] and [`ScheduledFunction`]: what a function's state does per invocation,
//!   so that a `main` ([`serve_sqs`], [`serve_scheduled`]) and the local runtime drive it the
//!   same way.
//!
//! ```
//! use std::collections::HashMap;
//! let vars = fmn_lambda::Vars::new(HashMap::from([("FMN_TABLE".to_owned(), "t".to_owned())]));
//! assert_eq!(vars.required("FMN_TABLE").unwrap(), "t");
//! let missing = vars.required("FMN_QUEUE_URL").unwrap_err();
//! assert_eq!(missing.to_string(), "missing environment variable FMN_QUEUE_URL");
//! assert_eq!(vars.parse_or("FMN_MAX", 5_u64).unwrap(), 5);
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

pub mod secrets;

/// A setting is missing or malformed; always names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("missing environment variable {0}")]
    Missing(String),
    /// A variable's value is not what it must be.
    #[error("environment variable {name}: {problem}")]
    Invalid {
        /// The variable.
        name: String,
        /// What is wrong with its value.
        problem: String,
    },
}

impl ConfigError {
    /// `name`'s value is wrong because of `problem`.
    pub fn invalid(name: &str, problem: impl ToString) -> Self {
        ConfigError::Invalid {
            name: name.to_owned(),
            problem: problem.to_string(),
        }
    }
}

/// A function's environment variables. An empty value counts as unset (CloudFormation
/// passes empty strings for unset optional parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(HashMap<String, String>);

impl Vars {
    /// The variables in `map`.
    pub fn new(map: HashMap<String, String>) -> Self {
        Vars(map)
    }

    /// The process environment (on Lambda, the function's configuration).
    pub fn from_env() -> Self {
        Vars(std::env::vars().collect())
    }

    /// The value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// The value of `name`, which must be set.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::Missing(name.to_owned()))
    }

    /// The value of `name` parsed, or `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e| ConfigError::invalid(name, format!("{v:?}: {e}"))),
        }
    }

    /// Whether the switch `name` is on (`1`, `true` or `yes`; anything else is off).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
    }

    /// A lookup function over these variables, for readers that take one.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name: &str| self.get(name)
    }
}

/// An SQS-triggered function's state: handles one batch, reporting the failed records.
pub trait SqsFunction: Send + Sync + 'static {
    /// Handles one batch.
    fn handle(&self, event: SqsEvent) -> impl Future<Output = SqsBatchResponse> + Send;

    /// Handles one batch, giving up on what is still unfinished at `deadline` (reported as
    /// failed records, so SQS retries them) rather than letting the invocation time out.
    /// [`serve_sqs`] takes it from the Lambda's remaining time ([`deadline_from`]). By
    /// default the deadline is ignored.
    fn handle_until(
        &self,
        event: SqsEvent,
        deadline: Option<Instant>,
    ) -> impl Future<Output = SqsBatchResponse> + Send {
        let _ = deadline;
        self.handle(event)
    }
}

/// How much of an invocation's time is kept back for reporting the batch (at most; a
/// tenth of the remaining time when that is shorter).
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// The instant a handler should be done by, for an invocation whose Lambda deadline is
/// `deadline_ms` (epoch milliseconds, `Context::deadline`), keeping [`DEADLINE_MARGIN`].
pub fn deadline_from(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let remaining = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Instant::now() + remaining - DEADLINE_MARGIN.min(remaining / 10)
}

/// A scheduled function's state: one run, saying what it did.
pub trait ScheduledFunction: Send + Sync + 'static {
    /// Runs once.
    fn run_once(&self) -> impl Future<Output = anyhow::Result<String>> + Send;
}

/// Starts tracing as Lambda wants it: JSON lines, no timestamps (Lambda adds them), the
/// level from `RUST_LOG`.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
}

/// Logs one invocation's summary: its records, the failed ones, and the AWS requests it
/// made by operation (`fmn_calls`; on Lambda a process serves one invocation at a time, so
/// the difference of two snapshots is this invocation's).
pub fn log_invocation(records: usize, failed: usize, before: &fmn_calls::Counts) {
    let calls = fmn_calls::snapshot().since(before);
    tracing::info!(
        records,
        failed,
        aws_requests = calls.total(),
        calls = %calls,
        "invocation done"
    );
}

/// Serves `function` for SQS batches until Lambda stops the environment; the state is built
/// once and kept across warm invocations.
pub async fn serve_sqs<F: SqsFunction>(function: F) -> Result<(), lambda_runtime::Error> {
    let function = &function;
    let service = service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from(event.context.deadline);
        let records = event.payload.records.len();
        let before = fmn_calls::snapshot();
        let response = function.handle_until(event.payload, Some(deadline)).await;
        log_invocation(records, response.batch_item_failures.len(), &before);
        Ok::<_, lambda_runtime::Error>(response)
    });
    // Boxed: the runtime's future around a handler's is deep (the matcher's hot loop), and
    // `main`'s future would otherwise embed it whole, past the compiler's query depth.
    let run: Pin<Box<dyn Future<Output = Result<(), lambda_runtime::Error>> + '_>> =
        Box::pin(lambda_runtime::run(service));
    run.await
}

/// Serves `function` for schedule events; each invocation answers `{"outcome": "…"}`.
pub async fn serve_scheduled<F: ScheduledFunction>(
    function: F,
) -> Result<(), lambda_runtime::Error> {
    let function = &function;
    let service = service_fn(move |_event: LambdaEvent<serde_json::Value>| async move {
        let before = fmn_calls::snapshot();
        let outcome = function.run_once().await;
        log_invocation(0, usize::from(outcome.is_err()), &before);
        let outcome = outcome?;
        Ok::<_, lambda_runtime::Error>(serde_json::json!({ "outcome": outcome }))
    });
    let run: Pin<Box<dyn Future<Output = Result<(), lambda_runtime::Error>> + '_>> =
        Box::pin(lambda_runtime::run(service));
    run.await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_keeps_a_margin() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = deadline_from(now_ms + 60_000) - Instant::now();
        assert!(
            left > Duration::from_secs(55) && left <= Duration::from_secs(58),
            "{left:?}"
        );
        let short = deadline_from(now_ms + 1_000) - Instant::now();
        assert!(short <= Duration::from_millis(900), "{short:?}");
        // A deadline already past: now.
        assert!(deadline_from(0) <= Instant::now());
    }

    #[test]
    fn errors_name_the_variable() {
        let vars = Vars::new(HashMap::from([
            ("N".to_owned(), "many".to_owned()),
            ("EMPTY".to_owned(), String::new()),
            ("ON".to_owned(), "1".to_owned()),
        ]));
        let e = vars.parse_or("N", 1_u64).unwrap_err();
        assert!(e.to_string().contains("N: \"many\""), "{e}");
        assert_eq!(vars.get("EMPTY"), None);
        assert!(vars.flag("ON"));
        assert!(!vars.flag("EMPTY"));
    }
}
