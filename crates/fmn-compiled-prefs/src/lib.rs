//! Every user's preferences compiled for matching ([`CompiledPrefs`]): the index of every
//! filter and each user's context settings, with the version stamp they reflect.
//!
//! Two functions keep one: the matcher, warm between batches, and the snapshot function,
//! which saves one to S3 every few minutes so that a cold matcher reads it back
//! ([`snapshot`]) instead of scanning the table and compiling a million filters. Both bring
//! it up to date the same way ([`CompiledPrefs::update_to`]): only the users the change log
//! names are re-read and replaced, unless the log cannot tell (too many changes, or older
//! than it is kept), and then everything is read again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use fmn_rules::{BuildError, ContextKind, ContextSettings, Matcher, Ownership, Preferences};

pub mod snapshot;

/// Each user's context settings (jobs carry them to the senders).
pub type Settings = HashMap<String, Arc<BTreeMap<ContextKind, ContextSettings>>>;

/// One user's context settings.
pub fn settings_of(prefs: &Preferences) -> Arc<BTreeMap<ContextKind, ContextSettings>> {
    Arc::new(
        prefs
            .contexts
            .iter()
            .map(|(kind, context)| (*kind, context.settings.clone()))
            .collect(),
    )
}

/// Where the preferences are read from (the preferences table; a fake in unit tests).
pub trait PreferenceReader {
    /// Every user's preferences that can be read (a full scan).
    fn load_all(&self) -> impl Future<Output = anyhow::Result<Vec<Preferences>>> + Send;
    /// One user's preferences.
    fn get(&self, user: &str) -> impl Future<Output = anyhow::Result<Option<Preferences>>> + Send;
    /// Users whose preferences changed at or after `since_ms` (epoch ms); `None` when more
    /// than `limit` did.
    fn changed_since(
        &self,
        since_ms: u128,
        limit: usize,
    ) -> impl Future<Output = anyhow::Result<Option<Vec<String>>>> + Send;
}

/// How far back the change log is read again, for writers' clock skew.
pub const CHANGE_SKEW_MS: u128 = 10_000;
/// More changed users than this since the last update: read everything instead.
pub const MAX_INCREMENTAL_USERS: usize = 500;
/// Compiled preferences older than this are read again whole: the change log is kept a day
/// (`fmn_store`'s `CHANGE_LOG_TTL_SECS`), so it can only tell what changed since well within
/// that.
pub const MAX_CHANGE_LOG_AGE_MS: u128 = 12 * 3600 * 1000;

/// Every user's compiled preferences, as of a version stamp.
#[derive(Debug, Clone, Default)]
pub struct CompiledPrefs {
    /// The preferences' version stamp this reflects (none: nothing loaded yet).
    pub version: Option<u64>,
    /// Changes logged at or after this time (epoch ms) may not be applied yet.
    pub changes_from_ms: u128,
    /// Every active filter, indexed.
    pub matcher: Arc<Matcher>,
    /// Each user's context settings.
    pub settings: Arc<Settings>,
}

/// What [`CompiledPrefs::update_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Already at that version.
    Unchanged,
    /// Re-read this many users named by the change log.
    Changed(usize),
    /// Read and compiled every user (this many).
    Reloaded(usize),
}

/// The time now, in epoch milliseconds.
pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

impl CompiledPrefs {
    /// Every user of `all` compiled, with `ownership` for the `owned_by` rules, and why each
    /// user left out was (their preferences do not compile). Its version is not set.
    pub fn compile(
        all: Vec<Preferences>,
        ownership: &Arc<Ownership>,
    ) -> (CompiledPrefs, Vec<BuildError>) {
        let settings = all
            .iter()
            .map(|p| (p.user.clone(), settings_of(p)))
            .collect();
        let (matcher, skipped) = Matcher::build_lenient(all, ownership.clone());
        let compiled = CompiledPrefs {
            matcher: Arc::new(matcher),
            settings: Arc::new(settings),
            ..CompiledPrefs::default()
        };
        (compiled, skipped)
    }

    /// Brings these preferences to `version` (read just before, so that nothing written
    /// after it is missed): from the change log when it can tell what changed, else by
    /// reading and compiling everyone, with `ownership` for the `owned_by` rules. A user
    /// whose preferences do not compile is left out, with a warning.
    pub async fn update_to(
        &mut self,
        reader: &impl PreferenceReader,
        version: u64,
        ownership: &Arc<Ownership>,
    ) -> anyhow::Result<Update> {
        if self.version == Some(version) {
            return Ok(Update::Unchanged);
        }
        let started = now_ms();
        let recent = started.saturating_sub(self.changes_from_ms) < MAX_CHANGE_LOG_AGE_MS;
        let changed = match self.version {
            Some(_) if recent => {
                reader
                    .changed_since(
                        self.changes_from_ms.saturating_sub(CHANGE_SKEW_MS),
                        MAX_INCREMENTAL_USERS,
                    )
                    .await?
            }
            _ => None,
        };
        let update = match changed {
            Some(users) => {
                // Changed on copies (the shared bulk of the index is not copied), so that
                // a failure halfway leaves these preferences as they were.
                let mut matcher = (*self.matcher).clone();
                let mut settings = (*self.settings).clone();
                for user in &users {
                    match reader.get(user).await? {
                        Some(prefs) => {
                            if let Err(e) = matcher.upsert_user(&prefs) {
                                tracing::warn!(error = %e, "skipping invalid preferences");
                                matcher.remove_user(user);
                            }
                            settings.insert(user.clone(), settings_of(&prefs));
                        }
                        None => {
                            matcher.remove_user(user);
                            settings.remove(user);
                        }
                    }
                }
                let stats = matcher.stats();
                if stats.pending > stats.filters / 4 + 10_000 {
                    matcher = matcher.compacted();
                }
                self.matcher = Arc::new(matcher);
                self.settings = Arc::new(settings);
                Update::Changed(users.len())
            }
            None => {
                let all = reader.load_all().await?;
                let users = all.len();
                let (fresh, skipped) = CompiledPrefs::compile(all, ownership);
                for e in &skipped {
                    tracing::warn!(error = %e, "skipping invalid preferences");
                }
                self.matcher = fresh.matcher;
                self.settings = fresh.settings;
                Update::Reloaded(users)
            }
        };
        self.version = Some(version);
        self.changes_from_ms = started;
        Ok(update)
    }
}

impl PreferenceReader for fmn_store::PreferenceTable {
    async fn load_all(&self) -> anyhow::Result<Vec<Preferences>> {
        let (all, unreadable) = self.load_all_readable().await?;
        for e in &unreadable {
            // Reported, and skipped: everyone else's preferences still apply.
            tracing::error!(error = %e, "unreadable preferences document skipped");
        }
        Ok(all)
    }
    async fn get(&self, user: &str) -> anyhow::Result<Option<Preferences>> {
        match fmn_store::PreferenceTable::get(self, user).await {
            Err(e @ fmn_store::StoreError::Corrupt { .. }) => {
                tracing::error!(error = %e, user, "unreadable preferences document skipped");
                Ok(None)
            }
            other => Ok(other?),
        }
    }
    async fn changed_since(
        &self,
        since_ms: u128,
        limit: usize,
    ) -> anyhow::Result<Option<Vec<String>>> {
        Ok(fmn_store::PreferenceTable::changed_since(self, since_ms, limit).await?)
    }
}
