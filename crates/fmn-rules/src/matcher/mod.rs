//! Compiled preferences and message matching: [`Matcher`].
//!
//! The parts, each depending only on those listed before it (and on this file's types):
//! - `output`: what a match yields ([`Notification`], [`NotificationRef`], [`Match`]);
//! - `writer`: compiles one user's preferences into the index tables (`crate::index`);
//! - `lifecycle`: building a matcher, changing it while it serves, compacting it;
//! - `run`: the hot loop that matches one message.

mod lifecycle;
mod output;
mod run;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::index::{Ctx, FastRule, FilterRec, OwnerIndex, RuleSet, Tables};
use crate::intern::{FxSet, Layered, Sym};
use crate::ownership::Ownership;

pub use output::{FilterName, Match, Notification, NotificationRef};

/// Preferences that cannot be compiled, naming where the problem is: the user, context, filter,
/// rule (its position from 1 and its kind; 0 for the filter itself) and argument.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("user {user}, {context} filter {filter:?}, rule {rule}: {problem}")]
pub struct BuildError {
    /// The owner.
    pub user: String,
    /// The context.
    pub context: &'static str,
    /// The filter id.
    pub filter: String,
    /// The rule's position in the filter, from 1 (0: the filter itself, e.g. its addresses).
    pub rule: usize,
    /// What is wrong: the rule kind, the argument, the problem (`topic_regex: regex: …`).
    pub problem: String,
}

/// Every user's active filters, compiled and indexed. Shareable across threads; see
/// [`Matcher::upsert_user`] for changing it while it serves.
///
/// The bulk of the tables is immutable and shared behind an `Arc` (cloning a matcher is
/// cheap); changes since the last build or [`Matcher::compacted`] live in a small layer on
/// top, and replaced users' old contexts are tombstoned.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub(crate) base: Arc<Tables>,
    top: Tables,
    /// Contexts of replaced or removed users.
    dead: FxSet<u32>,
    pub(crate) live_filters: usize,
    ownership: Arc<Ownership>,
    owners: Arc<OwnerIndex>,
    /// Changes with every change, for per-thread caches.
    epoch: u64,
}

/// Figures about a matcher, for operators and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MatcherStats {
    /// Active filters that can match (inactive, rule-less and address-less ones are dropped).
    pub filters: usize,
    /// Distinct compiled rules (rules shared by many filters are stored once).
    pub rules: usize,
    /// Distinct rule sets (a filter's rules; shared the same way).
    pub rule_sets: usize,
    /// Filters evaluated for every message (no selective positive rule).
    pub residual: usize,
    /// Filters and contexts in the update layer, and tombstoned contexts, since the last
    /// build or compaction.
    pub pending: usize,
    /// Heap bytes of the index, approximately (regex programs not counted).
    pub heap_bytes: usize,
}

/// Numbers matcher states, so per-thread caches know when they are stale.
static EPOCHS: AtomicU64 = AtomicU64::new(1);

fn next_epoch() -> u64 {
    EPOCHS.fetch_add(1, Ordering::Relaxed)
}

impl Matcher {
    /// Figures about the index.
    pub fn stats(&self) -> MatcherStats {
        let (b, t) = (&*self.base, &self.top);
        MatcherStats {
            filters: self.live_filters,
            rules: b.rules.len() + t.rules.len(),
            rule_sets: b.sets.len() + t.sets.len(),
            residual: b
                .residual
                .iter()
                .chain(&t.residual)
                .map(|(_, l)| l.len())
                .sum(),
            pending: t.filters.len() + t.contexts.len() + self.dead.len(),
            heap_bytes: b.heap_bytes() + t.heap_bytes() + self.owners.heap_bytes(),
        }
    }

    fn syms(&self) -> Layered<'_> {
        Layered {
            base: &self.base.syms,
            top: &self.top.syms,
        }
    }

    fn name(&self, sym: Sym) -> &str {
        self.syms().name(sym)
    }

    #[inline]
    fn ctx(&self, id: u32) -> &Ctx {
        match id.checked_sub(self.top.first_ctx) {
            Some(i) => &self.top.contexts[i as usize],
            None => &self.base.contexts[id as usize],
        }
    }

    #[inline]
    fn filter(&self, id: u32) -> (&Tables, &FilterRec) {
        match id.checked_sub(self.top.first_filter) {
            Some(i) => (&self.top, &self.top.filters[i as usize]),
            None => (&self.base, &self.base.filters[id as usize]),
        }
    }

    #[inline]
    fn set(&self, id: u32) -> &RuleSet {
        match id.checked_sub(self.top.first_set) {
            Some(i) => &self.top.sets[i as usize],
            None => &self.base.sets[id as usize],
        }
    }

    #[inline]
    fn rule(&self, id: u32) -> &FastRule {
        match id.checked_sub(self.top.first_rule) {
            Some(i) => &self.top.rules[i as usize],
            None => &self.base.rules[id as usize],
        }
    }
}

#[cfg(test)]
mod tests;
