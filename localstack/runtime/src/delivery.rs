//! The webhook sender, the feed writer and the digest function in the local runtime, each
//! configured from its deployed function's environment, as on Lambda (a test points the
//! webhook sender at a loopback receiver by setting `FMN_WEBHOOK_ALLOW_PRIVATE=1` there).

use std::sync::Arc;

use anyhow::Context;
use futures::future::BoxFuture;

use crate::deploy::function_environment;
use crate::runtime::Handler;

/// A scheduled handler (as `crate::schedule` runs them): returns what it did.
pub type ScheduledHandler =
    Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<String>> + Send + Sync>;

/// The webhook and feed job queues the stack has, for the matcher.
pub fn queues(stack: &crate::Stack) -> Vec<(fmn_rules::ContextKind, String)> {
    [
        (fmn_rules::ContextKind::Webhook, "WebhookQueueUrl"),
        (fmn_rules::ContextKind::Feed, "FeedQueueUrl"),
    ]
    .into_iter()
    .filter_map(|(kind, output)| Some((kind, stack.output(output).ok()?.to_owned())))
    .collect()
}

/// The links the deployed email sender writes (its `FMN_API_BASE_URL` and
/// `FMN_LINK_SECRET`), if it has them.
pub async fn links(aws: &aws_config::SdkConfig, stack: &crate::Stack) -> Option<fmn_email::Links> {
    let function = stack.output("EmailSenderFunctionName").ok()?;
    let env = function_environment(aws, function).await.ok()?;
    let base = env.get("FMN_API_BASE_URL").filter(|v| !v.is_empty())?;
    let secret = env.get("FMN_LINK_SECRET").filter(|v| !v.is_empty())?;
    Some(fmn_email::Links::new(base.clone(), secret.as_bytes()))
}

/// The webhook sender and feed writer handlers, keyed by function name.
pub async fn handlers(
    aws: &aws_config::SdkConfig,
    ses: &aws_config::SdkConfig,
    stack: &crate::Stack,
    sender_address: &str,
) -> anyhow::Result<Vec<(String, Handler)>> {
    let mut out = Vec::new();
    if let Ok(function) = stack.output("WebhookSenderFunctionName") {
        let env = function_environment(aws, function).await?;
        let mut config = fmn_webhook_sender_fn::Config::from_vars(|k| env.get(k).cloned())
            .with_context(|| format!("configuring {function}"))?;
        config.sender_address = Some(sender_address.to_owned());
        let allow_private = env
            .get("FMN_WEBHOOK_ALLOW_PRIVATE")
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        let client =
            fmn_webhook::WebhookClient::new(allow_private, fmn_webhook::RetryPolicy::default())?;
        let sender = fmn_webhook_sender_fn::deployed_with(aws, ses, &config, client)?;
        let handler = crate::runtime::handler(sender, |s, e| async move { s.handle(e).await });
        out.push((function.to_owned(), handler));
    }
    if let Ok(function) = stack.output("FeedWriterFunctionName") {
        let env = function_environment(aws, function).await?;
        let config = fmn_feed_writer_fn::Config {
            feed_table: env
                .get("FMN_FEED_TABLE")
                .cloned()
                .with_context(|| format!("{function} has no FMN_FEED_TABLE"))?,
        };
        let writer = fmn_feed_writer_fn::deployed(aws, &config);
        let handler = crate::runtime::handler(writer, |s, e| async move { s.handle(e).await });
        out.push((function.to_owned(), handler));
    }
    Ok(out)
}

/// The digest function as a scheduled handler, keyed by function name (the scheduler fires
/// it on the stack's `DigestSchedule` rule).
pub async fn scheduled(
    aws: &aws_config::SdkConfig,
    stack: &crate::Stack,
) -> anyhow::Result<Vec<(String, ScheduledHandler)>> {
    let Ok(function) = stack.output("DigestFunctionName") else {
        return Ok(Vec::new());
    };
    let env = function_environment(aws, function).await?;
    let config = fmn_digest_fn::Config::from_vars(|k| env.get(k).cloned())
        .with_context(|| format!("configuring {function}"))?;
    let digests = Arc::new(fmn_digest_fn::deployed(aws, aws, &config));
    let handler: ScheduledHandler = Arc::new(move || {
        let d = digests.clone();
        Box::pin(async move { Ok(d.run().await?.to_string()) })
    });
    Ok(vec![(function.to_owned(), handler)])
}
