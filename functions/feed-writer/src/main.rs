//! Lambda entry point of the feed writer.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    fmn_lambda::init_tracing();
    let aws = aws_config::load_from_env().await;
    let config = fmn_feed_writer_fn::Config::from_vars(&fmn_lambda::Vars::load(&aws).await?)?;
    fmn_lambda::serve_sqs(fmn_feed_writer_fn::deployed(&aws, &config)).await
}
