//! The AWS emulator and what fmn does on it: deploying the stack, reading the emails its
//! SES accepted, and probing whether it can host the stack.

pub mod deploy;
pub mod emails;
mod probe;

pub use probe::{
    EmulatorError, LocalStack, Moto, Unfit, free_port, lambda_works, localstack_at, unfit_message,
};

/// An AWS configuration for an emulator at `endpoint` (dummy credentials, us-east-1).
pub async fn emulator_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "fmn-local",
        ))
        .load()
        .await
}
