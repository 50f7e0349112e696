//! The ownership sync: fetches the distribution's maintainer data as dist-git publishes it
//! (`extras/pagure_owner_alias.json`: namespace → package → maintainers, groups written
//! `@group`), checks it, and makes it the live snapshot of the ownership table, which the
//! matcher reads for `owned_by` and `owned_by_group` rules.
//!
//! A snapshot that is not the expected shape, is empty, or names far fewer artifacts than
//! the live one (a truncated download, a broken export) is refused and the live snapshot
//! kept: stale maintainer data is better than none.

use std::time::Duration;

use fmn_lambda::{ConfigError, Vars};
use fmn_rules::Ownership;
use fmn_store::{OwnershipTable, Replaced, Snapshot, StoreError};

/// Where Fedora publishes its maintainer data.
pub const FEDORA_SOURCE: &str = "https://src.fedoraproject.org/extras/pagure_owner_alias.json";
/// The largest download accepted (Fedora's file is a few MB).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Configuration from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_OWNERSHIP_TABLE`.
    pub table: String,
    /// `FMN_OWNERSHIP_URL` (default: Fedora's dist-git).
    pub source_url: String,
    /// `FMN_OWNERSHIP_MIN_RATIO` (default 0.5): refuse a snapshot naming fewer than this
    /// fraction of the live snapshot's artifacts.
    pub min_ratio: f64,
}

impl Config {
    /// Reads the configuration from `vars` (the process environment on Lambda, the deployed
    /// function's environment locally).
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        let min_ratio: f64 = vars.parse_or("FMN_OWNERSHIP_MIN_RATIO", 0.5)?;
        if !(0.0..=1.0).contains(&min_ratio) {
            return Err(ConfigError::invalid(
                "FMN_OWNERSHIP_MIN_RATIO",
                "not a number in 0..=1",
            ));
        }
        Ok(Config {
            table: vars.required("FMN_OWNERSHIP_TABLE")?,
            source_url: vars
                .get("FMN_OWNERSHIP_URL")
                .unwrap_or_else(|| FEDORA_SOURCE.to_owned()),
            min_ratio,
        })
    }

    /// Reads the configuration from environment variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_env())
    }
}

/// Why a sync did not replace the snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source could not be fetched.
    #[error("fetching {url}: {problem}")]
    Fetch {
        /// The source URL.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// The source is not maintainer data, or implausible.
    #[error("refusing the snapshot from {url}: {problem}")]
    Refused {
        /// The source URL.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The table could not be read or written.
    #[error(transparent)]
    Store(#[from] fmn_store::StoreError),
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The source has not changed since the live snapshot.
    Unchanged {
        /// Artifacts in the live snapshot.
        artifacts: usize,
    },
    /// The source became the live snapshot.
    Replaced {
        /// Artifacts in the new snapshot.
        artifacts: usize,
        /// Artifacts in the one it replaced.
        previous: Option<usize>,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Unchanged { artifacts } => write!(f, "unchanged ({artifacts} artifacts)"),
            Outcome::Replaced {
                artifacts,
                previous,
            } => match previous {
                Some(p) => write!(f, "replaced ({p} → {artifacts} artifacts)"),
                None => write!(f, "first snapshot ({artifacts} artifacts)"),
            },
        }
    }
}

/// Where the snapshots live ([`OwnershipTable`] deployed).
pub trait Snapshots {
    /// The live snapshot, if any.
    fn current(&self) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;
    /// Makes `text` (naming `artifacts` artifacts) the live snapshot at `now`.
    fn replace(
        &self,
        text: &str,
        artifacts: usize,
        now: i64,
    ) -> impl Future<Output = Result<Replaced, StoreError>> + Send;
}

impl Snapshots for OwnershipTable {
    async fn current(&self) -> Result<Option<Snapshot>, StoreError> {
        OwnershipTable::current(self).await
    }
    async fn replace(
        &self,
        text: &str,
        artifacts: usize,
        now: i64,
    ) -> Result<Replaced, StoreError> {
        OwnershipTable::replace(self, text, artifacts, now).await
    }
}

/// Where the maintainer data comes from ([`HttpSource`] deployed).
pub trait Source {
    /// The text at `url`, or what went wrong.
    fn fetch(&self, url: &str) -> impl Future<Output = Result<String, String>> + Send;
}

/// Downloads over HTTP(S), at most [`MAX_BYTES`].
#[derive(Debug, Clone)]
pub struct HttpSource(reqwest::Client);

impl HttpSource {
    /// A client with a 120 s timeout (10 s to connect).
    pub fn new() -> Result<HttpSource, reqwest::Error> {
        Ok(HttpSource(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .connect_timeout(Duration::from_secs(10))
                .build()?,
        ))
    }
}

impl Source for HttpSource {
    async fn fetch(&self, url: &str) -> Result<String, String> {
        let mut response = self
            .0
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(format!("larger than {MAX_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| "not UTF-8".into())
    }
}

/// The sync's state: the snapshots `T` and the source `S`.
#[derive(Debug, Clone)]
pub struct OwnershipSync<T = OwnershipTable, S = HttpSource> {
    table: T,
    source: S,
    config: Config,
}

/// The sync as deployed.
pub fn deployed(
    aws: &aws_config::SdkConfig,
    config: &Config,
) -> Result<OwnershipSync, reqwest::Error> {
    let table = OwnershipTable::new(fmn_calls::client!(aws_sdk_dynamodb, aws), &config.table);
    OwnershipSync::new(table, config.clone())
}

impl<T> OwnershipSync<T, HttpSource> {
    /// A sync into `table` from `config.source_url` over HTTP.
    pub fn new(table: T, config: Config) -> Result<Self, reqwest::Error> {
        Ok(OwnershipSync::with_source(
            table,
            HttpSource::new()?,
            config,
        ))
    }
}

impl<T, S> OwnershipSync<T, S> {
    /// A sync into `table` from `source`.
    pub fn with_source(table: T, source: S, config: Config) -> Self {
        OwnershipSync {
            table,
            source,
            config,
        }
    }
}

impl<T: Snapshots + Sync, S: Source + Sync> OwnershipSync<T, S> {
    /// Fetches, checks and stores the maintainer data once.
    pub async fn run(&self) -> Result<Outcome, SyncError> {
        let url = &self.config.source_url;
        let text = self
            .source
            .fetch(url)
            .await
            .map_err(|problem| SyncError::Fetch {
                url: url.clone(),
                problem,
            })?;
        let refused = |problem: String| SyncError::Refused {
            url: url.clone(),
            problem,
        };
        let ownership = Ownership::from_json(&text).map_err(|e| refused(e.to_string()))?;
        let artifacts = ownership.len();
        if artifacts == 0 {
            return Err(refused("it names no artifacts".into()));
        }
        let live = self.table.current().await?;
        if let Some(live) = &live {
            // Truncation guard: a usable export does not lose half the distribution.
            let floor = live.artifacts as f64 * self.config.min_ratio;
            if (artifacts as f64) < floor {
                return Err(refused(format!(
                    "it names {artifacts} artifacts, the live snapshot {}",
                    live.artifacts
                )));
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let outcome = match self.table.replace(&text, artifacts, now).await? {
            Replaced::Unchanged(s) => Outcome::Unchanged {
                artifacts: s.artifacts,
            },
            Replaced::Replaced { current, previous } => Outcome::Replaced {
                artifacts: current.artifacts,
                previous: previous.map(|p| p.artifacts),
            },
        };
        tracing::info!(%outcome, source = %url, "ownership sync");
        Ok(outcome)
    }
}

impl<T, S> fmn_lambda::ScheduledFunction for OwnershipSync<T, S>
where
    T: Snapshots + Send + Sync + 'static,
    S: Source + Send + Sync + 'static,
{
    async fn run_once(&self) -> anyhow::Result<String> {
        Ok(self.run().await?.to_string())
    }
}

#[cfg(test)]
mod tests;
