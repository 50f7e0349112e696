//! The IRC and Matrix senders in the local runtime. Each is configured, as on Lambda, from
//! its deployed function's environment (the template's parameters); a local run or a test
//! points it at a local server by updating that environment
//! ([`crate::deploy::set_function_environment`]), as an operator would.

use anyhow::Context;

use crate::deploy::function_environment;
use crate::runtime::Handler;

/// The IRC and Matrix job queues the stack has, for the matcher.
pub fn queues(stack: &crate::Stack) -> Vec<(fmn_rules::ContextKind, String)> {
    [
        (fmn_rules::ContextKind::Irc, "IrcQueueUrl"),
        (fmn_rules::ContextKind::Matrix, "MatrixQueueUrl"),
    ]
    .into_iter()
    .filter_map(|(kind, output)| Some((kind, stack.output(output).ok()?.to_owned())))
    .collect()
}

/// The IRC and Matrix sender handlers, keyed by function name.
pub async fn handlers(
    aws: &aws_config::SdkConfig,
    stack: &crate::Stack,
) -> anyhow::Result<Vec<(String, Handler)>> {
    let mut out = Vec::new();
    if let Ok(function) = stack.output("IrcSenderFunctionName") {
        let env = function_environment(aws, function).await?;
        let config = fmn_irc_sender_fn::Config::from_vars(|k| env.get(k).cloned())
            .with_context(|| format!("configuring {function}"))?;
        let sender = fmn_irc_sender_fn::deployed(aws, &config);
        let handler = crate::runtime::handler(sender, |s, e| async move { s.handle(e).await });
        out.push((function.to_owned(), handler));
    }
    if let Ok(function) = stack.output("MatrixSenderFunctionName") {
        let env = function_environment(aws, function).await?;
        let config = fmn_matrix_sender_fn::Config::from_vars(|k| env.get(k).cloned())
            .with_context(|| format!("configuring {function}"))?;
        let sender = fmn_matrix_sender_fn::deployed(aws, &config)?;
        let handler = crate::runtime::handler(sender, |s, e| async move { s.handle(e).await });
        out.push((function.to_owned(), handler));
    }
    Ok(out)
}
