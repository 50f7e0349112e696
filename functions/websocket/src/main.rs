//! Lambda entry point of the WebSocket API's function ($connect, $disconnect, ping,
//! $default).

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    fmn_lambda::init_tracing();
    let aws = aws_config::load_from_env().await;
    let config = fmn_websocket_fn::Config::from_vars(&fmn_lambda::Vars::load(&aws).await?)?;
    let socket: &'static fmn_websocket_fn::Socket =
        Box::leak(Box::new(fmn_websocket_fn::deployed(&aws, &config)));
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, lambda_runtime::Error>(socket.handle(event.payload).await)
        },
    ))
    .await
}
