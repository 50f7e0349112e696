//! What the HTTP tests share: one moto server for the whole run (`fmn-emulator`'s), and
//! the API served on 127.0.0.1 over tables and queues of the test's own.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use fmn_api::{ApiConfig, AppState};
use fmn_queue::ContextJob;
use fmn_rules::ContextKind;
use reqwest::Method;
use serde_json::Value;

pub const LINK_SECRET: &[u8] = b"api test link secret, 32 bytes!!";

/// The moto server the tests of this binary share (one for the whole run, across nextest's
/// processes: see `fmn_emulator::SharedMoto`).
async fn shared_moto() -> fmn_emulator::SharedMoto {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fmn-api-moto");
    fmn_emulator::SharedMoto::get(&root, &dir)
        .await
        .expect("a shared moto server")
}

/// The API serving on 127.0.0.1, over the test's own tables and queues on the shared moto.
pub struct Api {
    pub aws: aws_config::SdkConfig,
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    pub email_queue: String,
    pub irc_queue: String,
    /// The push context's queue (the pages test confirms a phone through it).
    #[allow(dead_code)]
    pub push_queue: String,
    /// The test's table names.
    pub prefs_table: String,
    pub api_table: String,
    pub owners_table: String,
}

async fn table(aws: &aws_config::SdkConfig, name: &str) {
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    aws_sdk_dynamodb::Client::new(aws)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .send()
        .await
        .unwrap();
}

async fn queue(aws: &aws_config::SdkConfig, name: &str) -> String {
    aws_sdk_sqs::Client::new(aws)
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// The API's tables (the template's keys) and three context queues, named for this test alone
/// on the shared moto server, and the API serving on 127.0.0.1.
pub async fn start_api(tweak: impl FnOnce(&mut ApiConfig)) -> Api {
    static TESTS: AtomicUsize = AtomicUsize::new(0);
    let moto = shared_moto().await;
    let aws = fmn_emulator::config(&moto.endpoint).await;
    let prefix = format!(
        "t{}-{}",
        std::process::id(),
        TESTS.fetch_add(1, Ordering::Relaxed)
    );
    let name = |what: &str| format!("{prefix}-{what}");
    for t in ["prefs", "api", "feed", "owners"] {
        table(&aws, &name(t)).await;
    }
    let email_queue = queue(&aws, &name("email")).await;
    let irc_queue = queue(&aws, &name("irc")).await;
    let push_queue = queue(&aws, &name("push")).await;
    let mut config = ApiConfig::new(&name("prefs"), &name("api"), LINK_SECRET);
    config.feed_table = Some(name("feed"));
    config.ownership_table = Some(name("owners"));
    config
        .context_queues
        .insert(ContextKind::Email, email_queue.clone());
    config
        .context_queues
        .insert(ContextKind::Irc, irc_queue.clone());
    config
        .context_queues
        .insert(ContextKind::Push, push_queue.clone());
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    config.base_url = base.clone();
    let state = AppState::new(&aws, config);
    let app = fmn_api::router(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Api {
        aws,
        base,
        state,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        server,
        email_queue,
        irc_queue,
        push_queue,
        prefs_table: name("prefs"),
        api_table: name("api"),
        owners_table: name("owners"),
    }
}
impl Api {
    /// Mints a personal token directly in the store (as `fmn token create` does).
    pub async fn token(&self, user: &str, admin: bool, expires_in: Option<i64>) -> String {
        let (secret, record) = fmn_api::auth::mint(user, admin, None, expires_in);
        self.state.tokens().insert(&record).await.unwrap();
        secret
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, headers)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (s, v, _) = self
            .raw(method, path, Some(token), body.map(|b| b.to_string()), &[])
            .await;
        // Every error is the API's JSON error.
        if s >= 400 {
            assert!(
                v["error"].is_string() && v["message"].is_string(),
                "{s} {v}"
            );
        }
        (s, v)
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, token, None).await
    }

    /// Adds an IRC address to the context of the user at `user_path`
    /// (`/api/v1/users/<name>`) and returns the code its confirmation carries.
    pub async fn irc_code(&self, token: &str, user_path: &str, address: &str) -> String {
        self.call(
            Method::POST,
            &format!("{user_path}/contexts/irc/addresses"),
            token,
            Some(serde_json::json!({"address": address})),
        )
        .await;
        confirmation(self.job(&self.irc_queue).await).code.unwrap()
    }

    /// The next job on a queue.
    pub async fn job(&self, url: &str) -> ContextJob {
        let sqs = aws_sdk_sqs::Client::new(&self.aws);
        for _ in 0..10 {
            let out = sqs
                .receive_message()
                .queue_url(url)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            if let Some(m) = out.messages.unwrap_or_default().into_iter().next() {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
                return serde_json::from_str(&m.body.unwrap()).unwrap();
            }
        }
        panic!("no job on {url}");
    }

    pub async fn stop(self) {
        self.server.abort();
    }
}

pub fn confirmation(job: ContextJob) -> fmn_queue::ConfirmationJob {
    match job {
        ContextJob::Confirmation { confirmation } => confirmation,
        other => panic!("not a confirmation: {other:?}"),
    }
}
