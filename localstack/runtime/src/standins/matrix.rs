//! Matrix on one machine: a real Synapse homeserver (from the project venv) on 127.0.0.1
//! with a generated configuration and a sqlite database in a temporary directory, and the
//! few client calls a recipient makes (log in, accept an invite, read a room).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A running Synapse (killed on drop).
#[derive(Debug)]
pub struct Synapse {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The server name user ids end with (`localhost`).
    pub server_name: String,
    secret: String,
    dir: tempfile::TempDir,
}

/// A logged-in account.
#[derive(Debug, Clone)]
pub struct Account {
    /// `@name:localhost`.
    pub user_id: String,
    /// Its access token.
    pub access_token: String,
}

fn python() -> anyhow::Result<PathBuf> {
    let python = crate::repo_root().join(".venv/bin/python");
    if !python.exists() {
        bail!(
            "{} is missing: run localstack/bootstrap.sh",
            python.display()
        );
    }
    Ok(python)
}

impl Synapse {
    /// Starts Synapse on 127.0.0.1:`port`. `messages_per_second` and `burst` set its
    /// message rate limit (`rc_message`), so rate-limited answers can be provoked.
    pub async fn start(port: u16, messages_per_second: f64, burst: u32) -> anyhow::Result<Synapse> {
        let python = python()?;
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let config = format!(
            r#"server_name: "localhost"
pid_file: "{d}/homeserver.pid"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{d}/homeserver.db"
media_store_path: "{d}/media"
signing_key_path: "{d}/signing.key"
registration_shared_secret: "{secret}"
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
enable_metrics: false
# No cached /sync answers: a client asking twice sees the room's state as it is now, not
# the answer to its identical request of up to two minutes ago.
caches:
  sync_response_cache_duration: 0
rc_message:
  per_second: {messages_per_second}
  burst_count: {burst}
rc_login:
  address: {{per_second: 100, burst_count: 100}}
  account: {{per_second: 100, burst_count: 100}}
rc_registration:
  per_second: 100
  burst_count: 100
rc_joins:
  local: {{per_second: 100, burst_count: 100}}
rc_invites:
  per_room: {{per_second: 100, burst_count: 100}}
  per_user: {{per_second: 100, burst_count: 100}}
"#,
            d = d.display()
        );
        let path = d.join("homeserver.yaml");
        std::fs::write(&path, config)?;
        let keys = tokio::process::Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "--generate-keys", "-c"])
            .arg(&path)
            .output()
            .await
            .context("generating Synapse's signing key")?;
        if !keys.status.success() {
            bail!(
                "synapse --generate-keys: {}",
                String::from_utf8_lossy(&keys.stderr)
            );
        }
        let log = std::fs::File::create(d.join("synapse.log"))?;
        let child = tokio::process::Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting Synapse")?;
        let mut synapse = Synapse {
            child,
            url: format!("http://127.0.0.1:{port}"),
            server_name: "localhost".into(),
            secret,
            dir,
        };
        let http = reqwest::Client::new();
        for _ in 0..600 {
            let up = http
                .get(format!("{}/_matrix/client/versions", synapse.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return Ok(synapse);
            }
            if let Some(status) = synapse.child.try_wait()? {
                let log = std::fs::read_to_string(synapse.dir.path().join("synapse.log"))
                    .unwrap_or_default();
                bail!("Synapse exited at startup ({status}):\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("Synapse did not answer on {} within 60 s", synapse.url)
    }

    /// Registers `name` (shared-secret registration, as `register_new_matrix_user` does)
    /// and logs it in.
    pub async fn register(&self, name: &str, password: &str) -> anyhow::Result<Account> {
        let script = crate::repo_root().join(".venv/bin/register_new_matrix_user");
        let out = tokio::process::Command::new(&script)
            .args([
                "-u",
                name,
                "-p",
                password,
                "--no-admin",
                "-k",
                &self.secret,
                &self.url,
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "registering {name}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let login: Value = reqwest::Client::new()
            .post(format!("{}/_matrix/client/v3/login", self.url))
            .json(&json!({"type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": name}, "password": password}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(Account {
            user_id: login["user_id"].as_str().unwrap_or_default().to_owned(),
            access_token: login["access_token"]
                .as_str()
                .context("login: no access_token")?
                .to_owned(),
        })
    }

    /// Stops it and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// One answer of [`Recipient::sync`].
#[derive(Debug, Clone, Default)]
pub struct SyncBatch {
    /// The token to ask from next time.
    pub next: String,
    /// Rooms the account is invited to.
    pub invites: Vec<String>,
    /// New messages in joined rooms: (room, sender, content).
    pub messages: Vec<(String, String, Value)>,
}

/// What a recipient sees: the rooms it is invited to (with whether the invite is marked
/// direct), and the messages of a room.
#[derive(Debug, Clone)]
pub struct Recipient {
    url: String,
    account: Account,
    http: reqwest::Client,
}

impl Recipient {
    /// A recipient logged in as `account` on the homeserver at `url`.
    pub fn new(url: &str, account: Account) -> Self {
        Recipient {
            url: url.to_owned(),
            account,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.account.access_token)
            .timeout(Duration::from_secs(30))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Rooms this account is invited to: (room id, whether the invite says `is_direct`).
    pub async fn invites(&self) -> anyhow::Result<Vec<(String, bool)>> {
        let sync = self.get("/_matrix/client/v3/sync?timeout=0").await?;
        let mut out = Vec::new();
        if let Some(rooms) = sync["rooms"]["invite"].as_object() {
            for (room, state) in rooms {
                let direct = state["invite_state"]["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| {
                        e["type"] == "m.room.member"
                            && e["state_key"] == self.account.user_id.as_str()
                            && e["content"]["is_direct"] == true
                    });
                out.push((room.clone(), direct));
            }
        }
        Ok(out)
    }

    /// What happened since `since` (a previous answer's token; none: everything recent):
    /// the next token, the rooms it is invited to, and the new `m.room.message` events of
    /// its joined rooms as (room, sender, content).
    pub async fn sync(&self, since: Option<&str>) -> anyhow::Result<SyncBatch> {
        let since = since
            .map(|s| {
                format!(
                    "&since={}",
                    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .unwrap_or_default();
        let v = self
            .get(&format!("/_matrix/client/v3/sync?timeout=0{since}"))
            .await?;
        let mut batch = SyncBatch {
            next: v["next_batch"].as_str().unwrap_or_default().to_owned(),
            ..Default::default()
        };
        if let Some(rooms) = v["rooms"]["invite"].as_object() {
            batch.invites = rooms.keys().cloned().collect();
        }
        if let Some(rooms) = v["rooms"]["join"].as_object() {
            for (room, state) in rooms {
                for e in state["timeline"]["events"].as_array().into_iter().flatten() {
                    if e["type"] == "m.room.message" {
                        batch.messages.push((
                            room.clone(),
                            e["sender"].as_str().unwrap_or_default().to_owned(),
                            e["content"].clone(),
                        ));
                    }
                }
            }
        }
        Ok(batch)
    }

    /// The account's user id.
    pub fn user_id(&self) -> &str {
        &self.account.user_id
    }

    /// The rooms this account has joined.
    pub async fn joined_rooms(&self) -> anyhow::Result<Vec<String>> {
        let v = self.get("/_matrix/client/v3/joined_rooms").await?;
        Ok(v["joined_rooms"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect())
    }

    /// Joins (accepts the invite to) `room`.
    pub async fn join(&self, room: &str) -> anyhow::Result<()> {
        let room = percent_encoding::utf8_percent_encode(room, percent_encoding::NON_ALPHANUMERIC);
        self.http
            .post(format!("{}/_matrix/client/v3/join/{room}", self.url))
            .bearer_auth(&self.account.access_token)
            .json(&json!({}))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The `m.room.message` contents in `room`, oldest first (up to 100).
    pub async fn messages(&self, room: &str) -> anyhow::Result<Vec<(String, Value)>> {
        let room = percent_encoding::utf8_percent_encode(room, percent_encoding::NON_ALPHANUMERIC);
        let v = self
            .get(&format!(
                "/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100"
            ))
            .await?;
        let mut out: Vec<(String, Value)> = v["chunk"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "m.room.message")
            .map(|e| {
                (
                    e["sender"].as_str().unwrap_or_default().to_owned(),
                    e["content"].clone(),
                )
            })
            .collect();
        out.reverse();
        Ok(out)
    }
}
