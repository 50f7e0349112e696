//! Regex rules' patterns, run together: one `RegexSet` per layer and target finds every
//! pattern a message's topic or artifact names match, so regex-only filters need not be
//! evaluated for every message.

use fmn_messages::Message;

use crate::intern::Sym;

use super::keys::{ARTIFACT_TYPES, REGEX, REGEX_TOPIC, key};

/// A pattern compiled alone (as it was when its rule compiled); should it not compile now,
/// one matching everything keeps the index a superset.
pub(crate) fn compile_alone(pattern: &str) -> Option<regex::Regex> {
    crate::compile::build_regex(pattern)
        .or_else(|_| regex::Regex::new(""))
        .ok()
}

/// A layer's patterns for one target, compiled as one `RegexSet` (or one by one when the
/// set would be too large).
#[derive(Debug, Clone)]
pub(crate) struct RegexIndex {
    pub(super) target: u8,
    pub(super) set: Option<regex::RegexSet>,
    pub(super) each: Vec<regex::Regex>,
    pub(super) syms: Vec<Sym>,
}

impl RegexIndex {
    /// Calls `look` with the key of each pattern matching the message's topic or artifacts.
    pub(crate) fn for_message(
        &self,
        m: &Message,
        hits: &mut Vec<bool>,
        look: &mut impl FnMut(u64),
    ) {
        if self.target == REGEX_TOPIC {
            self.matching(&m.topic, hits, look);
        } else if let Some(names) = m
            .artifacts
            .of_type(ARTIFACT_TYPES[usize::from(self.target - 1)])
        {
            for n in names {
                self.matching(n, hits, look);
            }
        }
    }

    /// Calls `look` with the key of each pattern matching `text`.
    pub(crate) fn matching(&self, text: &str, hits: &mut Vec<bool>, look: &mut impl FnMut(u64)) {
        match &self.set {
            Some(set) => {
                hits.clear();
                hits.resize(set.len(), false);
                if set.matches_read_at(hits, text, 0) {
                    for (i, _) in hits.iter().enumerate().filter(|(_, h)| **h) {
                        look(key(REGEX, self.target, self.syms[i]));
                    }
                }
            }
            None => {
                for (re, &sym) in self.each.iter().zip(&self.syms) {
                    if re.is_match(text) {
                        look(key(REGEX, self.target, sym));
                    }
                }
            }
        }
    }
}
