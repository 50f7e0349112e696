//! Lambda entry point of the digest function (fired by an EventBridge schedule).

use lambda_runtime::{LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let config = fmn_digest_fn::Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let digests = fmn_digest_fn::deployed(&aws, &aws, &config);
    let digests = &digests;
    run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            let outcome = digests.run().await?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({ "outcome": outcome.to_string() }))
        },
    ))
    .await
}
