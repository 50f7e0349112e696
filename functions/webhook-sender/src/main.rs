//! Lambda entry point of the webhook sender.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let config = fmn_webhook_sender_fn::Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let sender = fmn_webhook_sender_fn::deployed(&aws, &config)?;
    let sender = &sender;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(sender.handle(event.payload).await)
    }))
    .await
}
