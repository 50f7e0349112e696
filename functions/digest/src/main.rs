//! Lambda entry point of the digest function (fired by an EventBridge schedule).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    fmn_lambda::init_tracing();
    let aws = aws_config::load_from_env().await;
    let config = fmn_digest_fn::Config::from_vars(&fmn_lambda::Vars::load(&aws).await?)?;
    fmn_lambda::serve_scheduled(fmn_digest_fn::deployed(&aws, &aws, &config)).await
}
