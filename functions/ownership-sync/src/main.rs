//! Lambda entry point of the ownership sync (fired by a schedule).

use lambda_runtime::{LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let config = fmn_ownership_sync_fn::Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let sync = fmn_ownership_sync_fn::deployed(&aws, &config)?;
    let sync = &sync;
    run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            let outcome = sync.run().await?;
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(outcome.to_string())?)
        },
    ))
    .await
}
