//! What the HTTP tests share: one moto server for the whole run, and the API served on
//! 127.0.0.1 over tables and queues of the test's own.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use fmn_api::{ApiConfig, AppState};
use fmn_queue::ContextJob;
use fmn_rules::ContextKind;
use reqwest::Method;
use serde_json::Value;

pub const LINK_SECRET: &[u8] = b"api test link secret, 32 bytes!!";

/// Runs moto (`$3 $4`, on 127.0.0.1 port `$2`) and stops it once no lease file in `$1` has
/// named a live process for 30 s; a server no longer advertised keeps serving while any
/// lease is live (a test may have just read its endpoint).
const WATCHDOG: &str = r#"
dir=$1 port=$2 python=$3 server=$4
"$python" "$server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill "$moto" 2>/dev/null' EXIT
trap 'exit 1' HUP INT TERM
live() {
    found=1
    for lease in "$dir"/lease-*; do
        [ -e "$lease" ] || continue
        if kill -0 "${lease##*-}" 2>/dev/null; then found=0; else rm -f "$lease"; fi
    done
    return $found
}
idle=0
while kill -0 "$moto" 2>/dev/null && [ "$idle" -lt 30 ]; do
    sleep 1
    if live; then idle=0; else idle=$((idle + 1)); fi
    if [ "$idle" -ge 30 ]; then
        if [ "$(cat "$dir/endpoint" 2>/dev/null)" = "http://127.0.0.1:$port" ]; then
            rm -f "$dir/endpoint"
        fi
        if live; then idle=0; fi
    fi
done
"#;

/// The moto server the tests of this binary share. nextest runs each test in a process of
/// its own, so the server outlives them: each process leaves a lease file naming its pid,
/// the first to find no live server starts one under [`WATCHDOG`], and the last lease to go
/// stops it. Starting moto costs about two seconds of CPU; one start serves the whole run.
pub struct Moto {
    pub endpoint: String,
}

impl Moto {
    pub async fn shared() -> Moto {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert!(
            root.join(".venv/bin/moto_server").exists(),
            "moto server is missing: run localstack/bootstrap.sh"
        );
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fmn-api-moto");
        std::fs::create_dir_all(&dir).unwrap();
        // The lease first: a server found after it is not stopped under this test.
        static LEASE: OnceLock<()> = OnceLock::new();
        LEASE.get_or_init(|| {
            std::fs::write(dir.join(format!("lease-{}", std::process::id())), "").unwrap();
        });
        let endpoint_file = dir.join("endpoint");
        let claim = dir.join("starting");
        for _ in 0..600 {
            if let Ok(endpoint) = std::fs::read_to_string(&endpoint_file) {
                if answers(&endpoint, 3).await {
                    return Moto { endpoint };
                }
                // Left by a server that is gone.
                if std::fs::read_to_string(&endpoint_file).ok() == Some(endpoint) {
                    let _ = std::fs::remove_file(&endpoint_file);
                }
            }
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&claim)
            {
                Ok(_) => {
                    let started = start(&root, &dir).await;
                    if let Some(endpoint) = &started {
                        let tmp = dir.join(format!("endpoint.{}", std::process::id()));
                        std::fs::write(&tmp, endpoint).unwrap();
                        std::fs::rename(&tmp, &endpoint_file).unwrap();
                    }
                    let _ = std::fs::remove_file(&claim);
                    let endpoint = started.expect("moto server did not start");
                    return Moto { endpoint };
                }
                Err(_) => {
                    // Another test is starting one; a claim left by a test that died expires.
                    if age(&claim) > Duration::from_secs(60) {
                        let _ = std::fs::remove_file(&claim);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("no moto server in {}", dir.display());
    }
}

/// Starts moto under the watchdog, detached (it outlives this test) in a process group of
/// its own (the test's may be killed); returns its endpoint once it answers.
async fn start(root: &Path, dir: &Path) -> Option<String> {
    use std::os::unix::process::CommandExt as _;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let detached = std::process::Command::new("sh")
        .args(["-c", r#"sh -c "$0" watchdog "$@" &"#, WATCHDOG])
        .arg(dir)
        .arg(port.to_string())
        .arg(root.join(".venv/bin/python"))
        .arg(root.join("localstack/moto_server.py"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .status()
        .unwrap();
    assert!(detached.success(), "cannot start the moto watchdog");
    let endpoint = format!("http://127.0.0.1:{port}");
    answers(&endpoint, 300).await.then_some(endpoint)
}

/// Whether moto answers at `endpoint` within `tries` tenths of a second.
async fn answers(endpoint: &str, tries: usize) -> bool {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for _ in 0..tries {
        if http
            .get(format!("{endpoint}/moto-api/"))
            .send()
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn age(path: &Path) -> Duration {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
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

/// The API's tables (the template's keys) and two context queues, named for this test alone
/// on the shared moto server, and the API serving on 127.0.0.1.
pub async fn start_api(tweak: impl FnOnce(&mut ApiConfig)) -> Api {
    static TESTS: AtomicUsize = AtomicUsize::new(0);
    let moto = Moto::shared().await;
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
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
    let mut config = ApiConfig::new(&name("prefs"), &name("api"), LINK_SECRET);
    config.feed_table = Some(name("feed"));
    config.ownership_table = Some(name("owners"));
    config
        .context_queues
        .insert(ContextKind::Email, email_queue.clone());
    config
        .context_queues
        .insert(ContextKind::Irc, irc_queue.clone());
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
