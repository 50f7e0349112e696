//! Lambda entry point of the preferences snapshot (fired by a schedule).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    fmn_lambda::init_tracing();
    let aws = aws_config::load_from_env().await;
    let config =
        fmn_preferences_snapshot_fn::Config::from_vars(&fmn_lambda::Vars::load(&aws).await?)?;
    fmn_lambda::serve_scheduled(fmn_preferences_snapshot_fn::deployed(&aws, &config)).await
}
