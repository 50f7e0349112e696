//! Scheduled functions, fired locally as EventBridge would fire them.
//!
//! For each scheduled function of the stack, the runner reads the EventBridge rules that
//! target it (their `rate(...)` expressions) from the emulator and invokes its handler
//! (built by [`super::functions`]) once at start and then at every period.

use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use super::functions::ScheduledHandler;

/// One schedule of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The function's name.
    pub function: String,
    /// The EventBridge rule's name.
    pub rule: String,
    /// The rule's period.
    pub period: Duration,
}

/// The period of an EventBridge `rate(...)` expression; `None` for anything else (cron
/// expressions are not run locally).
pub fn parse_rate(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (value, unit) = inner.trim().split_once(' ')?;
    let value: u64 = value.parse().ok().filter(|v| *v > 0)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(value.checked_mul(seconds)?))
}

/// The schedules targeting `function`, read from the emulator.
pub async fn schedules(
    aws: &aws_config::SdkConfig,
    function: &str,
) -> anyhow::Result<Vec<Schedule>> {
    let lambda = aws_sdk_lambda::Client::new(aws);
    let arn = lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .with_context(|| format!("looking up {function}"))?
        .configuration
        .and_then(|c| c.function_arn)
        .with_context(|| format!("{function} has no ARN"))?;
    let events = aws_sdk_eventbridge::Client::new(aws);
    let rules = events.list_rules().send().await.context("listing rules")?;
    let mut out = Vec::new();
    for rule in rules.rules() {
        let (Some(name), Some(expression)) = (rule.name(), rule.schedule_expression()) else {
            continue;
        };
        let targets = events
            .list_targets_by_rule()
            .rule(name)
            .send()
            .await
            .with_context(|| format!("listing the targets of {name}"))?;
        if !targets.targets().iter().any(|t| t.arn() == arn) {
            continue;
        }
        match parse_rate(expression) {
            Some(period) => out.push(Schedule {
                function: function.to_owned(),
                rule: name.to_owned(),
                period,
            }),
            None => tracing::warn!(rule = name, expression, "schedule not run locally"),
        }
    }
    Ok(out)
}

/// Fires `handler` now and then every `schedule.period` until `stop`.
pub async fn run(schedule: Schedule, handler: ScheduledHandler, stop: CancellationToken) {
    loop {
        match fmn_calls::scope(schedule.function.as_str(), handler()).await {
            Ok(outcome) => {
                tracing::info!(function = %schedule.function, rule = %schedule.rule, %outcome, "scheduled run");
            }
            Err(e) => {
                tracing::warn!(function = %schedule.function, rule = %schedule.rule, error = %e, "scheduled run failed");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(schedule.period) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_other_expressions_do_not() {
        assert_eq!(parse_rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_rate("rate(30 minutes)"),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(parse_rate("rate(2 hours)"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_rate("rate(1 day)"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_rate("rate(0 minutes)"), None);
        assert_eq!(parse_rate("rate(5 fortnights)"), None);
        assert_eq!(parse_rate("cron(0 12 * * ? *)"), None);
    }
}
