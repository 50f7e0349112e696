//! The preferences snapshot: every few minutes, brings the saved snapshot of the compiled
//! preferences up to the table's version stamp and saves it again, so that a cold matcher
//! reads one object instead of scanning the table and compiling every filter
//! (`fmn_compiled_prefs::snapshot`; issue 18).
//!
//! Each run: the version stamp (one `GetItem`) and the saved snapshot's (one `HeadObject`);
//! when they are equal, nothing else. Otherwise it reads the saved snapshot, applies the
//! change log since it was taken (a full scan and build when there is none, when it is
//! unreadable, or when the log cannot tell), and saves it with one `PutObject`. The
//! deployed function runs with a reserved concurrency of 1, but two runs at once would
//! still be safe: each saves a consistent snapshot, and a reader applies the change log
//! from whichever it reads.

use std::sync::Arc;

use fmn_compiled_prefs::snapshot::SnapshotStore;
use fmn_compiled_prefs::{CompiledPrefs, Update};
use fmn_lambda::{ConfigError, Vars};

/// The function's configuration, from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FMN_PREFERENCES_TABLE`.
    pub preferences_table: String,
    /// `FMN_PREFERENCES_SNAPSHOT_BUCKET`: where the snapshot is kept.
    pub bucket: String,
}

impl Config {
    /// Reads the configuration from `vars`.
    pub fn from_vars(vars: &Vars) -> Result<Config, ConfigError> {
        Ok(Config {
            preferences_table: vars.required("FMN_PREFERENCES_TABLE")?,
            bucket: vars.required("FMN_PREFERENCES_SNAPSHOT_BUCKET")?,
        })
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The saved snapshot already had the table's version.
    Current {
        /// The version.
        version: u64,
    },
    /// A new snapshot was saved.
    Saved {
        /// Its version stamp.
        version: u64,
        /// Its size.
        bytes: usize,
        /// How it was brought up to date.
        update: Update,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Current { version } => write!(f, "snapshot current at version {version}"),
            Outcome::Saved {
                version,
                bytes,
                update,
            } => {
                let how = match update {
                    Update::Unchanged => "as read".to_owned(),
                    Update::Changed(n) => format!("{n} changed users applied"),
                    Update::Reloaded(n) => format!("{n} users compiled"),
                };
                write!(
                    f,
                    "snapshot saved at version {version}: {bytes} bytes, {how}"
                )
            }
        }
    }
}

/// The function's state: the table and the bucket.
#[derive(Debug, Clone)]
pub struct PreferencesSnapshot {
    table: fmn_store::PreferenceTable,
    store: SnapshotStore,
}

impl PreferencesSnapshot {
    /// Snapshots `table` into `store`.
    pub fn new(table: fmn_store::PreferenceTable, store: SnapshotStore) -> Self {
        PreferencesSnapshot { table, store }
    }

    /// One run (see the module doc).
    pub async fn run(&self) -> anyhow::Result<Outcome> {
        // The stamp first: whatever is written after it is in the change log from here on.
        let version = self.table.version().await?;
        if self.store.version().await? == Some(version) {
            return Ok(Outcome::Current { version });
        }
        // The maintainer data is not part of the snapshot: readers bring their own.
        let ownership = Arc::default();
        let mut prefs = match self.store.get().await? {
            Some(bytes) => match CompiledPrefs::decode(&bytes, Arc::clone(&ownership)) {
                Ok(prefs) => prefs,
                Err(e) => {
                    tracing::warn!(error = %e, "saved snapshot unreadable; compiling the table");
                    CompiledPrefs::default()
                }
            },
            None => CompiledPrefs::default(),
        };
        let update = prefs.update_to(&self.table, version, &ownership).await?;
        let bytes = self.store.put(&prefs).await?;
        let outcome = Outcome::Saved {
            version,
            bytes,
            update,
        };
        tracing::info!(%outcome, "preferences snapshot");
        Ok(outcome)
    }
}

/// Builds the deployed function from an AWS configuration and [`Config`].
pub fn deployed(aws: &aws_config::SdkConfig, config: &Config) -> PreferencesSnapshot {
    let dynamo = fmn_calls::client!(aws_sdk_dynamodb, aws);
    let s3 = fmn_calls::client!(aws_sdk_s3, aws);
    PreferencesSnapshot::new(
        fmn_store::PreferenceTable::new(dynamo, &config.preferences_table),
        SnapshotStore::new(s3, &config.bucket),
    )
}

impl fmn_lambda::ScheduledFunction for PreferencesSnapshot {
    async fn run_once(&self) -> anyhow::Result<String> {
        Ok(self.run().await?.to_string())
    }
}
