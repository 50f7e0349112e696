//! Lambda entry point of the inbox sender.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    fmn_lambda::init_tracing();
    let aws = aws_config::load_from_env().await;
    let config = fmn_inbox_sender_fn::Config::from_vars(&fmn_lambda::Vars::load(&aws).await?)?;
    fmn_lambda::serve_sqs(fmn_inbox_sender_fn::deployed(&aws, &config)).await
}
