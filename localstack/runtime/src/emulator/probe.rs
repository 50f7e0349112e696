//! Whether an emulator can host fmn's stack: LocalStack without Docker cannot create
//! Lambda functions.

use std::time::Duration;

/// Why an emulator cannot host fmn's stack.
#[derive(Debug, thiserror::Error)]
pub enum Unfit {
    /// Lambda functions end in state Failed (LocalStack without Docker).
    #[error("cannot create Lambda functions ({0})")]
    NoLambda(String),
    /// The probe itself failed.
    #[error("did not answer a Lambda CreateFunction as expected ({0})")]
    Probe(String),
}

/// Creates (and deletes) a throw-away Lambda function to learn whether the emulator at
/// `aws` can create functions. LocalStack without Docker accepts CreateFunction and then
/// puts the function in state Failed ("Installation of lambda-runtime ... failed").
pub async fn lambda_works(aws: &aws_config::SdkConfig) -> Result<(), Unfit> {
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{FunctionCode, Runtime, State};
    let lambda = aws_sdk_lambda::Client::new(aws);
    let name = format!("fmn-probe-{}", uuid::Uuid::new_v4().simple());
    let zip = super::deploy::placeholder_zip().map_err(|e| Unfit::Probe(e.to_string()))?;
    lambda
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role("arn:aws:iam::000000000000:role/fmn-probe")
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
        .map_err(|e| Unfit::Probe(format!("{}", aws_sdk_lambda::error::DisplayErrorContext(e))))?;
    let mut verdict = Err(Unfit::NoLambda(
        "the function did not become Active within 30 s".into(),
    ));
    for _ in 0..300 {
        let state = lambda
            .get_function_configuration()
            .function_name(&name)
            .send()
            .await
            .map_err(|e| {
                Unfit::Probe(format!("{}", aws_sdk_lambda::error::DisplayErrorContext(e)))
            });
        match state {
            Ok(c) if c.state() == Some(&State::Active) => {
                verdict = Ok(());
                break;
            }
            Ok(c) if c.state() == Some(&State::Failed) => {
                verdict = Err(Unfit::NoLambda(
                    c.state_reason().unwrap_or("state Failed").to_owned(),
                ));
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => {
                verdict = Err(e);
                break;
            }
        }
    }
    let _ = lambda.delete_function().function_name(&name).send().await;
    verdict
}

/// The one sentence `fmn-local up` prints when the LocalStack at `endpoint` cannot host
/// fmn's stack, with how to proceed.
pub fn unfit_message(endpoint: &str, why: &Unfit) -> String {
    format!(
        "The LocalStack at {endpoint} {why}, which it needs Docker for: start LocalStack with \
         Docker (docker run --rm -p 127.0.0.1:4566:4566 -v /var/run/docker.sock:/var/run/docker.sock \
         localstack/localstack:4.9.2), or stop it to use the embedded moto server."
    )
}
