//! Lambda entry point of the HTTP API: the same Router as `fmn-local`, under `lambda_http`
//! (API Gateway HTTP API payload 2.0, or a function URL).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fmn_lambda::init_tracing();
    let aws = aws_config::load_from_env().await;
    let config = fmn_api::ApiConfig::from_vars(&fmn_lambda::Vars::load(&aws).await?)?;
    let app = fmn_api::router(fmn_api::AppState::new(&aws, config));
    lambda_http::run(app).await
}
