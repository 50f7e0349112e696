//! A compiled matcher saved as bytes and loaded back without compiling again: what lets a
//! cold matcher start from a snapshot of every preference instead of scanning and building
//! (issue 18).
//!
//! The tables are written with [`postcard`] (a compact, documented binary serde format) as
//! they are in memory, after folding the update layer in. Loading reads them back and then
//! does only what cannot be stored: the lookup tables of the interned names are refilled,
//! the regex rules and the regex sets are compiled from their sources, and the maintainer
//! index is built from the ownership data given (maintainer data changes on its own schedule,
//! so it is not part of a preferences snapshot).
//!
//! The bytes are only meant for a matcher of the same [`SNAPSHOT_FORMAT`]: a snapshot of
//! another format is refused, and its reader falls back to building.

use std::sync::Arc;

use crate::index::{OwnerIndex, Tables};
use crate::matcher::Matcher;
use crate::ownership::Ownership;

/// The layout of the snapshot bytes; bumped whenever a type they hold changes (a test pins
/// the layout, and fails until this is bumped).
pub const SNAPSHOT_FORMAT: u32 = 1;

const MAGIC: [u8; 8] = *b"fmn-idx\0";

/// A snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not a matcher snapshot.
    #[error("not a matcher snapshot")]
    NotASnapshot,
    /// The snapshot was written in another layout.
    #[error("snapshot format {found}; this matcher reads format {SNAPSHOT_FORMAT}")]
    Format {
        /// The snapshot's format.
        found: u32,
    },
    /// The bytes are damaged or cut short.
    #[error("snapshot unreadable: {0}")]
    Decode(#[from] postcard::Error),
}

impl Matcher {
    /// Appends this matcher's snapshot to `out` (its update layer folded in first, as
    /// [`Matcher::compacted`] does; the ownership data is not included).
    pub fn write_snapshot(&self, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
        let compacted;
        let m = if self.stats().pending == 0 {
            self
        } else {
            compacted = self.compacted();
            &compacted
        };
        let header = (MAGIC, SNAPSHOT_FORMAT, m.live_filters as u64);
        let taken = std::mem::take(out);
        let with_header = postcard::to_extend(&header, taken)?;
        *out = postcard::to_extend(&*m.base, with_header)?;
        Ok(())
    }

    /// Reads a snapshot written by [`Matcher::write_snapshot`] from the start of `bytes`,
    /// with `ownership` for the `owned_by` rules; returns the matcher and the bytes after
    /// the snapshot.
    pub fn read_snapshot(
        bytes: &[u8],
        ownership: Arc<Ownership>,
    ) -> Result<(Matcher, &[u8]), SnapshotError> {
        let ((magic, format), rest): (([u8; 8], u32), &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|_| SnapshotError::NotASnapshot)?;
        if magic != MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        if format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format { found: format });
        }
        let ((live, mut tables), rest): ((u64, Tables), &[u8]) = postcard::take_from_bytes(rest)?;
        let owners = OwnerIndex::build(&ownership, &mut |s| tables.syms.intern(s));
        tables.regex_index =
            tables.compile_regexes(&|s| tables.syms.name(s).unwrap_or_default().to_owned());
        let live = usize::try_from(live).map_err(|_| SnapshotError::NotASnapshot)?;
        Ok((Matcher::from_tables(tables, ownership, owners, live), rest))
    }
}

/// A regex as its source; compiled on load within the rules' budget (or, for the regexes
/// fmn writes itself from topic globs, without it).
pub(crate) mod regex_source {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(re: &regex::Regex, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(re.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<regex::Regex, D::Error> {
        let source = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        crate::compile::build_regex(&source)
            .or_else(|_| regex::Regex::new(&source))
            .map_err(serde::de::Error::custom)
    }
}

/// A JSON value as its text (the binary format cannot carry self-describing values).
pub(crate) mod json_text {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(v).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Preferences;

    fn small() -> Vec<Preferences> {
        serde_json::from_value(serde_json::json!([
            {"user": "alice", "contexts": {
                "email": {
                    "addresses": [{"address": "alice@example.org", "confirmed": true}],
                    "settings": {"digest_count": 5},
                    "filters": [
                        {"id": "f1", "name": "kernel", "rules": [
                            {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]},
                            {"kind": "agent", "negate": true}]},
                        {"id": "f2", "name": "mine", "oneshot": true, "rules": [
                            {"kind": "owned_by"},
                            {"kind": "topic", "glob": "org.*.bodhi.update.*"}]}
                    ]},
                "irc": {
                    "addresses": [{"address": "alice", "confirmed": true}],
                    "filters": [{"id": "f3", "name": "fields", "rules": [
                        {"kind": "field", "pointer": "/update/status", "one_of": ["stable", 3]},
                        {"kind": "topic_regex", "regex": "^org\\.fedoraproject\\..*koji"},
                        {"kind": "body_regex", "regex": "(?i)cve-\\d+"}]}]}
            }},
            {"user": "bob", "contexts": {"feed": {"filters": [
                {"id": "g", "name": "group", "rules": [{"kind": "owned_by_group", "groups": ["@python"]},
                    {"kind": "severity", "levels": ["error"]}]},
                {"id": "r", "name": "re", "rules": [
                    {"kind": "artifact_regex", "type": "rpms", "regex": "^python3-"}]}
            ]}}}
        ]))
        .unwrap()
    }

    /// FNV-1a: stable across platforms and Rust versions, unlike `std`'s hashers.
    fn fnv(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    #[test]
    fn the_snapshot_layout_is_pinned() {
        let mut bytes = Vec::new();
        (Matcher::build(small()).unwrap().write_snapshot(&mut bytes)).unwrap();
        // When this changes, a reader of the old format would misread the new one: bump
        // SNAPSHOT_FORMAT, then update the fingerprint.
        assert_eq!(
            (SNAPSHOT_FORMAT, bytes.len(), fnv(&bytes)),
            (1, 798, 16_159_560_510_341_658_891),
            "the snapshot layout changed: bump SNAPSHOT_FORMAT and update this test"
        );
    }

    #[test]
    fn damaged_or_foreign_bytes_are_refused_without_panicking() {
        let mut bytes = Vec::new();
        (Matcher::build(small()).unwrap().write_snapshot(&mut bytes)).unwrap();
        let read = |b: &[u8]| Matcher::read_snapshot(b, Arc::default()).map(|_| ());
        assert!(read(&bytes).is_ok());
        assert!(matches!(read(b""), Err(SnapshotError::NotASnapshot)));
        assert!(matches!(
            read(b"{\"user\":1}"),
            Err(SnapshotError::NotASnapshot)
        ));
        let mut other = bytes.clone();
        other[8] = 9;
        assert!(matches!(
            read(&other),
            Err(SnapshotError::Format { found: 9 })
        ));
        for cut in [9, bytes.len() / 2, bytes.len() - 1] {
            assert!(read(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
