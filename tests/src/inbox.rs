//! The whole local system with the inbox context live, as the inbox and desktop tests start
//! it: the [`Harness`] (moto, the deployed template, the functions in the local runtime),
//! the local WebSocket gateway over the deployed WebSocket function (the inbox sender posts
//! through it) and the HTTP API, which points inbox clients at the gateway.

use fmn_local::gateway::{self, Gateway};

use crate::Harness;

/// A running system with the inbox live (see the module doc).
#[derive(Debug)]
pub struct InboxSystem {
    /// The stack, its functions started.
    pub h: Harness,
    /// The local WebSocket gateway.
    pub gateway: Gateway,
    /// The HTTP API's base URL (`http://127.0.0.1:PORT`).
    pub api: String,
    /// The API's state (to mint tokens).
    pub state: fmn_api::AppState,
}

impl InboxSystem {
    /// Deploys with `prefs`, starts the gateway, the functions (the inbox sender with
    /// `inbox_env` besides its `FMN_SOCKET_ENDPOINT`) and the API.
    pub async fn start(
        prefs: &[fmn_rules::Preferences],
        inbox_env: &[(&str, &str)],
    ) -> anyhow::Result<InboxSystem> {
        let mut h = Harness::deploy(prefs).await?;
        let configs = fmn_local::lambda::functions::AwsConfigs::same(&h.aws);
        let gateway = gateway::start(&configs, &h.stack, 0, h.stop.clone()).await?;
        let env = [
            &[("FMN_SOCKET_ENDPOINT", gateway.endpoint.as_str())],
            inbox_env,
        ]
        .concat();
        h.set_function_env("InboxSenderFunctionName", &env).await?;
        h.start_functions().await?;
        let mut config = fmn_local::api::config(&h.stack)?;
        config.inbox_socket_url = Some(gateway.url.clone());
        let (api, state) = crate::start_api(&h.aws, config, h.stop.clone()).await?;
        Ok(InboxSystem {
            h,
            gateway,
            api,
            state,
        })
    }
}
