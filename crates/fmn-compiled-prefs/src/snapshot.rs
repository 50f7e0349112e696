//! Compiled preferences saved as one S3 object, so that a cold matcher reads them back
//! instead of scanning the preferences table and compiling every filter.
//!
//! The object (`preferences/snapshot.bin` in the snapshot bucket) holds, in order:
//! - a header: [`FILE_FORMAT`], the version stamp and the change-log time the compiled
//!   preferences reflect;
//! - the compiled matcher ([`fmn_rules::Matcher::write_snapshot`]);
//! - the users' context settings, each distinct set of settings stored once.
//!
//! Its user metadata `fmn-version` repeats the version stamp, so the writer can tell with a
//! `HeadObject` that nothing changed. A reader applies the change log from the snapshot's
//! time on ([`crate::CompiledPrefs::update_to`]), so a snapshot minutes old is as good as a
//! fresh one; a missing, damaged or foreign one is reported and the reader scans instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use fmn_rules::{ContextKind, ContextSettings, Matcher, Ownership};
use serde::{Deserialize, Serialize};

use crate::{CompiledPrefs, Settings};

/// The layout of the object's own parts (the matcher's has its own,
/// [`fmn_rules::SNAPSHOT_FORMAT`]).
pub const FILE_FORMAT: u32 = 1;

/// Where in the bucket the snapshot is kept.
pub const KEY: &str = "preferences/snapshot.bin";

/// The object's user metadata holding the version stamp.
pub const VERSION_METADATA: &str = "fmn-version";

const MAGIC: [u8; 8] = *b"fmn-pref";

/// Compiled preferences could not be saved or read back.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not a preferences snapshot.
    #[error("not a preferences snapshot")]
    NotASnapshot,
    /// The snapshot was written in another layout (by another version of fmn).
    #[error("snapshot file format {found}; this version reads format {FILE_FORMAT}")]
    Format {
        /// The snapshot's format.
        found: u32,
    },
    /// Never loaded: there is nothing to save.
    #[error("nothing to save: the preferences were never loaded")]
    Empty,
    /// The matcher part cannot be read.
    #[error(transparent)]
    Matcher(#[from] fmn_rules::SnapshotError),
    /// A part is damaged or cut short.
    #[error("snapshot unreadable: {0}")]
    Decode(#[from] postcard::Error),
    /// S3 failed.
    #[error("s3://{bucket}/{key}: {message}")]
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What S3 said.
        message: String,
    },
}

/// [`ContextSettings`] as the snapshot stores them (the stored JSON form leaves fields out,
/// which a binary encoding cannot).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Packed {
    digest_interval_secs: Option<u32>,
    digest_count: Option<u32>,
    verbose: bool,
    triggered_by: bool,
    markup: bool,
    subject_prefix: Option<String>,
}

impl From<&ContextSettings> for Packed {
    fn from(s: &ContextSettings) -> Self {
        Packed {
            digest_interval_secs: s.digest_interval_secs,
            digest_count: s.digest_count,
            verbose: s.verbose,
            triggered_by: s.triggered_by,
            markup: s.markup,
            subject_prefix: s.subject_prefix.clone(),
        }
    }
}

impl From<Packed> for ContextSettings {
    fn from(p: Packed) -> Self {
        ContextSettings {
            digest_interval_secs: p.digest_interval_secs,
            digest_count: p.digest_count,
            verbose: p.verbose,
            triggered_by: p.triggered_by,
            markup: p.markup,
            subject_prefix: p.subject_prefix,
        }
    }
}

/// The users' settings: each distinct set once, and each user's index into them.
#[derive(Serialize, Deserialize)]
struct PackedSettings {
    distinct: Vec<Vec<(ContextKind, Packed)>>,
    users: Vec<(String, u32)>,
}

impl CompiledPrefs {
    /// The snapshot of these preferences (their update layer folded in).
    pub fn encode(&self) -> Result<Vec<u8>, SnapshotError> {
        let version = self.version.ok_or(SnapshotError::Empty)?;
        let changes_from_ms = u64::try_from(self.changes_from_ms).unwrap_or(u64::MAX);
        let mut out = postcard::to_stdvec(&(MAGIC, FILE_FORMAT, version, changes_from_ms))?;
        self.matcher.write_snapshot(&mut out)?;
        let mut index: HashMap<Vec<(ContextKind, Packed)>, u32> = HashMap::new();
        let mut packed = PackedSettings {
            distinct: Vec::new(),
            users: Vec::with_capacity(self.settings.len()),
        };
        for (user, settings) in self.settings.iter() {
            let set: Vec<(ContextKind, Packed)> =
                settings.iter().map(|(k, s)| (*k, s.into())).collect();
            let at = match index.get(&set) {
                Some(&at) => at,
                None => {
                    let at = u32::try_from(index.len()).unwrap_or(u32::MAX);
                    index.insert(set.clone(), at);
                    packed.distinct.push(set);
                    at
                }
            };
            packed.users.push((user.clone(), at));
        }
        postcard::to_extend(&packed, out).map_err(SnapshotError::from)
    }

    /// Reads a snapshot back, with `ownership` for the `owned_by` rules.
    pub fn decode(bytes: &[u8], ownership: Arc<Ownership>) -> Result<Self, SnapshotError> {
        let ((magic, format), rest): (([u8; 8], u32), &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|_| SnapshotError::NotASnapshot)?;
        if magic != MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        if format != FILE_FORMAT {
            return Err(SnapshotError::Format { found: format });
        }
        let ((version, changes_from_ms), rest): ((u64, u64), &[u8]) =
            postcard::take_from_bytes(rest)?;
        let (matcher, rest) = Matcher::read_snapshot(rest, ownership)?;
        let packed: PackedSettings = postcard::from_bytes(rest)?;
        let distinct: Vec<Arc<BTreeMap<ContextKind, ContextSettings>>> = (packed.distinct)
            .into_iter()
            .map(|set| Arc::new(set.into_iter().map(|(k, p)| (k, p.into())).collect()))
            .collect();
        let mut settings = Settings::with_capacity(packed.users.len());
        for (user, at) in packed.users {
            let set = distinct
                .get(at as usize)
                .ok_or(SnapshotError::NotASnapshot)?;
            settings.insert(user, set.clone());
        }
        Ok(CompiledPrefs {
            version: Some(version),
            changes_from_ms: u128::from(changes_from_ms),
            matcher: Arc::new(matcher),
            settings: Arc::new(settings),
        })
    }
}

/// The snapshot object in its bucket.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl SnapshotStore {
    /// The snapshot kept in `bucket` (under [`KEY`]).
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        SnapshotStore {
            s3,
            bucket: bucket.into(),
        }
    }

    fn error(&self, message: String) -> SnapshotError {
        SnapshotError::S3 {
            bucket: self.bucket.clone(),
            key: KEY.into(),
            message,
        }
    }

    /// The version stamp of the saved snapshot (`HeadObject`); `None` without one.
    pub async fn version(&self) -> Result<Option<u64>, SnapshotError> {
        let head = self.s3.head_object().bucket(&self.bucket).key(KEY).send();
        match head.await {
            Ok(out) => Ok(out
                .metadata
                .and_then(|m| m.get(VERSION_METADATA).and_then(|v| v.parse().ok()))),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(self.error(error_chain(&e))),
        }
    }

    /// The saved snapshot's bytes; `None` without one.
    pub async fn get(&self) -> Result<Option<Vec<u8>>, SnapshotError> {
        let got = self.s3.get_object().bucket(&self.bucket).key(KEY).send();
        let object = match got.await {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(self.error(error_chain(&e))),
        };
        let bytes = (object.body.collect().await).map_err(|e| self.error(e.to_string()))?;
        Ok(Some(bytes.to_vec()))
    }

    /// Saves `prefs` as the snapshot (one `PutObject`; S3 replaces the object whole, so a
    /// reader sees the old one or the new one).
    pub async fn put(&self, prefs: &CompiledPrefs) -> Result<usize, SnapshotError> {
        let bytes = prefs.encode()?;
        let len = bytes.len();
        let version = prefs.version.unwrap_or_default().to_string();
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(KEY)
            .content_type("application/octet-stream")
            .metadata(VERSION_METADATA, version)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| self.error(error_chain(&e)))?;
        Ok(len)
    }
}

/// An error and its sources, one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
