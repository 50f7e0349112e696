//! Every function of the stack, built as on Lambda from its deployed environment, through
//! one table: [`FUNCTIONS`] maps the stack output naming a function to its constructor.
//!
//! A constructor reads the function's own configuration from the environment the template
//! gave it (`Config::from_vars`), so a local run or a test changes a setting the way an
//! operator would: by updating that environment ([`crate::emulator::deploy::set_function_environment`])
//! before the functions start.

use std::sync::Arc;

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use fmn_lambda::{ScheduledFunction, SqsFunction, Vars};
use futures::future::BoxFuture;

use crate::emulator::deploy::function_environment;

/// An SQS-triggered handler, as the function's `main` would run it: a batch, and the
/// instant it should be done by (from the function's timeout, as `serve_sqs` takes it from
/// the Lambda context).
pub type Handler = Arc<
    dyn Fn(SqsEvent, Option<std::time::Instant>) -> BoxFuture<'static, SqsBatchResponse>
        + Send
        + Sync,
>;

/// A scheduled handler, as the function's `main` would run it; returns what it did.
pub type ScheduledHandler =
    Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<String>> + Send + Sync>;

/// A function, by how Lambda invokes it.
#[derive(Clone)]
pub enum Function {
    /// Fed from its queues by event-source mappings.
    Sqs(Handler),
    /// Fired by EventBridge schedules.
    Scheduled(ScheduledHandler),
    /// Invoked by the WebSocket API ($connect, $disconnect, routes): the local gateway
    /// ([`crate::gateway`]) calls it.
    WebSocket(Arc<fmn_websocket_fn::Socket>),
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Function::Sqs(_) => "Function::Sqs",
            Function::Scheduled(_) => "Function::Scheduled",
            Function::WebSocket(_) => "Function::WebSocket",
        })
    }
}

/// The AWS configurations the functions use: everything on `aws`, SES v2 on `ses` (moto,
/// also when the rest runs on a LocalStack without SES v2).
#[derive(Debug, Clone)]
pub struct AwsConfigs {
    /// Everything but SES.
    pub aws: aws_config::SdkConfig,
    /// SES v2.
    pub ses: aws_config::SdkConfig,
}

impl AwsConfigs {
    /// One emulator for everything.
    pub fn same(aws: &aws_config::SdkConfig) -> Self {
        AwsConfigs {
            aws: aws.clone(),
            ses: aws.clone(),
        }
    }
}

/// Builds a function from its deployed environment.
pub type Constructor = fn(&Vars, &AwsConfigs) -> anyhow::Result<Function>;

/// Every function the local runtime runs: (the stack output naming it, its constructor).
pub const FUNCTIONS: &[(&str, Constructor)] = &[
    ("MatcherFunctionName", matcher),
    ("EmailSenderFunctionName", email_sender),
    ("IrcSenderFunctionName", irc_sender),
    ("MatrixSenderFunctionName", matrix_sender),
    ("WebhookSenderFunctionName", webhook_sender),
    ("PushSenderFunctionName", push_sender),
    ("InboxSenderFunctionName", inbox_sender),
    ("WebsocketFunctionName", websocket),
    ("FeedWriterFunctionName", feed_writer),
    ("DigestFunctionName", digest),
    ("OwnershipSyncFunctionName", ownership_sync),
    ("PreferencesSnapshotFunctionName", preferences_snapshot),
];

fn matcher(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_matcher_fn::Config::from_vars(vars)?;
    Ok(sqs(fmn_matcher_fn::deployed(&aws.aws, &config)))
}

fn email_sender(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_email_sender_fn::Config::from_vars(vars)?;
    Ok(sqs(fmn_email_sender_fn::deployed(
        &aws.aws, &aws.ses, &config,
    )))
}

fn irc_sender(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_irc_sender_fn::Config::from_vars(vars)?;
    Ok(sqs(fmn_irc_sender_fn::deployed(&aws.aws, &config)))
}

fn matrix_sender(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_matrix_sender_fn::Config::from_vars(vars)?;
    Ok(sqs(fmn_matrix_sender_fn::deployed(&aws.aws, &config)?))
}

fn webhook_sender(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_webhook_sender_fn::Config::from_vars(vars)?;
    Ok(sqs(fmn_webhook_sender_fn::deployed(&aws.aws, &config)?))
}

fn push_sender(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_push_sender_fn::Config::from_vars(vars)?;
    Ok(sqs(fmn_push_sender_fn::deployed(&aws.aws, &config)?))
}

fn inbox_sender(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_inbox_sender_fn::Config::from_vars(vars)?;
    Ok(sqs(fmn_inbox_sender_fn::deployed(&aws.aws, &config)))
}

fn websocket(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_websocket_fn::Config::from_vars(vars)?;
    Ok(Function::WebSocket(Arc::new(fmn_websocket_fn::deployed(
        &aws.aws, &config,
    ))))
}

fn feed_writer(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_feed_writer_fn::Config::from_vars(vars)?;
    Ok(sqs(fmn_feed_writer_fn::deployed(&aws.aws, &config)))
}

fn digest(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_digest_fn::Config::from_vars(vars)?;
    Ok(scheduled(fmn_digest_fn::deployed(
        &aws.aws, &aws.ses, &config,
    )))
}

fn ownership_sync(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_ownership_sync_fn::Config::from_vars(vars)?;
    Ok(scheduled(fmn_ownership_sync_fn::deployed(
        &aws.aws, &config,
    )?))
}

fn preferences_snapshot(vars: &Vars, aws: &AwsConfigs) -> anyhow::Result<Function> {
    let config = fmn_preferences_snapshot_fn::Config::from_vars(vars)?;
    Ok(scheduled(fmn_preferences_snapshot_fn::deployed(
        &aws.aws, &config,
    )))
}

/// An SQS function's state as a [`Handler`], shared across invocations as a warm Lambda
/// keeps it.
pub fn sqs<F: SqsFunction>(function: F) -> Function {
    let function = Arc::new(function);
    Function::Sqs(Arc::new(move |event, deadline| {
        let function = function.clone();
        Box::pin(async move { function.handle_until(event, deadline).await })
    }))
}

/// A scheduled function's state as a [`ScheduledHandler`].
pub fn scheduled<F: ScheduledFunction>(function: F) -> Function {
    let function = Arc::new(function);
    Function::Scheduled(Arc::new(move || {
        let function = function.clone();
        Box::pin(async move { function.run_once().await })
    }))
}

/// Builds the function the stack output `output` names, from its deployed environment.
pub async fn build(
    aws: &AwsConfigs,
    stack: &crate::Stack,
    output: &str,
) -> anyhow::Result<(String, Function)> {
    let (_, construct) = FUNCTIONS
        .iter()
        .find(|(o, _)| *o == output)
        .with_context(|| format!("no function is built from the output {output}"))?;
    let name = stack.output(output)?;
    // As `main` does on Lambda: secrets named by `*_SSM_PARAMETER` come from SSM.
    let vars = fmn_lambda::secrets::resolve(
        Vars::new(function_environment(&aws.aws, name).await?),
        &aws_sdk_ssm::Client::new(&aws.aws),
    )
    .await
    .with_context(|| format!("reading the secrets of {name}"))?;
    let function = construct(&vars, aws).with_context(|| format!("configuring {name}"))?;
    Ok((name.to_owned(), function))
}

/// Builds every function of [`FUNCTIONS`] the stack deploys, keyed by function name.
pub async fn build_all(
    aws: &AwsConfigs,
    stack: &crate::Stack,
) -> anyhow::Result<Vec<(String, Function)>> {
    let mut out = Vec::new();
    for (output, _) in FUNCTIONS {
        if stack.output(output).is_ok() {
            out.push(build(aws, stack, output).await?);
        }
    }
    Ok(out)
}

/// The scheduled function the stack output `output` names (e.g. `DigestFunctionName`), to
/// fire by hand.
pub async fn scheduled_handler(
    aws: &AwsConfigs,
    stack: &crate::Stack,
    output: &str,
) -> anyhow::Result<ScheduledHandler> {
    match build(aws, stack, output).await? {
        (_, Function::Scheduled(handler)) => Ok(handler),
        (name, _) => anyhow::bail!("{name} is not a scheduled function"),
    }
}
