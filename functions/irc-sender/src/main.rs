//! Lambda entry point of the IRC sender.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    fmn_lambda::init_tracing();
    let aws = aws_config::load_from_env().await;
    let config = fmn_irc_sender_fn::Config::from_vars(&fmn_lambda::Vars::load(&aws).await?)?;
    // Built once per execution environment: its IRC connection survives warm invocations.
    fmn_lambda::serve_sqs(fmn_irc_sender_fn::deployed(&aws, &config)).await
}
