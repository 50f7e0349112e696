//! Index keys: a kind, an extra byte and a symbol packed into a `u64`.

use fmn_messages::Severity;

use crate::intern::{OWNER, Sym};

/// The artifact types, by index.
pub(crate) const ARTIFACT_TYPES: [&str; 4] = ["rpms", "containers", "modules", "flatpaks"];

pub(crate) fn artifact_type_index(kind: &str) -> Option<u8> {
    ARTIFACT_TYPES
        .iter()
        .position(|k| *k == kind)
        .and_then(|i| u8::try_from(i).ok())
}

pub(crate) fn severity_bit(s: Severity) -> u8 {
    match s {
        Severity::Debug => 0,
        Severity::Info => 1,
        Severity::Warning => 2,
        Severity::Error => 3,
    }
}

// Key kinds, packed with an extra byte and a symbol into a `u64`.
pub(super) const ARTIFACT: u8 = 1;
pub(super) const OWNED: u8 = 2;
pub(super) const GROUP: u8 = 3;
pub(super) const USER: u8 = 4;
pub(super) const AGENT: u8 = 5;
pub(super) const APP: u8 = 6;
pub(super) const APP_SEV: u8 = 7;
pub(super) const TOPIC: u8 = 8;
pub(super) const TOPIC_SEG: u8 = 9;
pub(super) const SEV: u8 = 10;
/// A regex (extra: its target, [`REGEX_TOPIC`] or 1 + an artifact type index; symbol: the
/// interned pattern), found by running every layer's patterns as one `RegexSet`.
pub(crate) const REGEX: u8 = 11;
pub(crate) const REGEX_TOPIC: u8 = 0;

#[inline]
pub(crate) fn key(kind: u8, extra: u8, sym: Sym) -> u64 {
    (u64::from(kind) << 56) | (u64::from(extra) << 48) | u64::from(sym)
}

/// The key with `OWNER` replaced by the filter's owner.
#[inline]
pub(super) fn resolve(k: u64, owner: Sym) -> u64 {
    if k & 0xffff_ffff == u64::from(OWNER) {
        (k & !0xffff_ffff) | u64::from(owner)
    } else {
        k
    }
}

/// The extra byte of a topic key restricted to one severity (0: any severity).
pub(super) fn with_severity(bit: u8) -> u64 {
    u64::from(bit + 1) << 48
}

pub(super) fn bits(mask: u8) -> impl Iterator<Item = u8> {
    (0..4u8).filter(move |b| mask & (1 << b) != 0)
}

/// A glob's index key: the whole topic, its literal prefix cut at a dot, or else a whole
/// dot-delimited segment from one of its literal runs.
pub(crate) fn glob_key(glob: &str, syms: &mut dyn FnMut(&str) -> Sym) -> Option<(u8, u64)> {
    let special = |c: char| matches!(c, '*' | '?' | '[');
    let Some(first) = glob.find(special) else {
        return Some((3, key(TOPIC, 0, syms(glob))));
    };
    let literal = &glob[..first];
    if let Some(cut) = literal.rfind('.') {
        return Some((4, key(TOPIC, 0, syms(&literal[..=cut]))));
    }
    // A run between wildcards: ".seg." proves the topic has the segment `seg`.
    for run in glob.split(special).skip(1) {
        let mut parts = run.split('.');
        parts.next();
        let inner: Vec<&str> = parts.collect();
        if inner.len() >= 2 {
            let seg = inner[0];
            // `[...]` classes were split apart: only trust runs without brackets' content.
            if !seg.is_empty() && !glob.contains('[') {
                return Some((5, key(TOPIC_SEG, 0, syms(seg))));
            }
        }
    }
    None
}

/// A length or position as a table id (ids are `u32`; tables never get that large).
pub(crate) fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
