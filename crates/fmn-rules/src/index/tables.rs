//! The numbered tables: rules, rule sets, contexts, filters and their postings.

use serde::{Deserialize, Serialize};

use crate::intern::{FxMap, FxSet, Interner, Sym};
use crate::prefs::ContextKind;

use super::keys::{REGEX, len32, resolve};
use super::patterns::{RegexIndex, compile_alone};
use super::rule::{FastRule, RuleKey};

/// A distinct rule set (a filter's rules), shared by every filter with the same rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RuleSet {
    /// Ids of the rules that do not read the owner, cheapest first: their conjunction is the
    /// same for every filter with this set, so it is computed once per message.
    pub(crate) indep: Box<[u32]>,
    /// Ids of the rules that read the owner ("not my actions"), checked per filter.
    pub(crate) rel: Box<[u32]>,
    /// Index key templates; empty: residual.
    pub(crate) keys: Box<[u64]>,
}

/// A delivery context of a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ctx {
    pub(crate) user: Sym,
    pub(crate) kind: ContextKind,
    pub(crate) addresses: Box<[Box<str>]>,
    /// Its filters: ids `filters.0..filters.1`.
    pub(crate) filters: (u32, u32),
}

/// Chosen addresses: all of the context's confirmed ones.
pub(crate) const ALL_ADDRESSES: u32 = u32::MAX;

/// A compiled filter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FilterRec {
    pub(crate) set: u32,
    pub(crate) ctx: u32,
    /// Its id then its name, in the text arena.
    pub(crate) text: u32,
    pub(crate) id_len: u32,
    pub(crate) name_len: u32,
    /// Indexes into the context's addresses (`addr_len` of them from `addr_start` in the
    /// address arena), or [`ALL_ADDRESSES`].
    pub(crate) addr_start: u32,
    pub(crate) addr_len: u32,
    pub(crate) oneshot: bool,
}

/// Rules, rule sets, contexts, filters and postings numbered from the `first_*` ids on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Tables {
    pub(crate) syms: Interner,
    pub(crate) first_rule: u32,
    pub(crate) rules: Vec<FastRule>,
    pub(crate) rule_ids: FxMap<(bool, RuleKey), u32>,
    pub(crate) first_set: u32,
    pub(crate) sets: Vec<RuleSet>,
    pub(crate) set_ids: FxMap<Box<[u32]>, u32>,
    pub(crate) first_ctx: u32,
    pub(crate) contexts: Vec<Ctx>,
    pub(crate) first_filter: u32,
    pub(crate) filters: Vec<FilterRec>,
    pub(crate) text: String,
    pub(crate) addr_idx: Vec<u16>,
    /// Frozen postings: key → range in `ids`.
    pub(crate) csr: FxMap<u64, (u32, u32)>,
    pub(crate) ids: Vec<u32>,
    /// Growing postings.
    pub(crate) grow: FxMap<u64, Vec<u32>>,
    /// Filters without keys, grouped by rule set, so a set whose owner-independent rules
    /// fail skips all its filters at once.
    pub(crate) residual: Vec<(u32, Vec<u32>)>,
    residual_at: FxMap<u32, usize>,
    /// Each user's contexts (in either layer; an empty list: removed).
    pub(crate) users: FxMap<Sym, Vec<u32>>,
    /// Which key kinds have postings, so a message skips lookups that cannot hit.
    pub(crate) has_kind: u16,
    /// Patterns filed under `REGEX` keys in this layer: (target, pattern symbol, pattern).
    regex_patterns: Vec<(u8, Sym)>,
    regex_seen: FxSet<(u8, Sym)>,
    /// The patterns compiled together, per target (not in snapshots: compiled on load).
    #[serde(skip)]
    pub(crate) regex_index: Vec<RegexIndex>,
    /// How many of `regex_patterns` `add_regexes` has seen.
    regex_compiled: usize,
}

impl Tables {
    /// Empty tables numbering on from where `base` stops.
    pub(crate) fn above(base: &Tables) -> Tables {
        Tables {
            syms: Interner::starting_at(base.syms.end()),
            first_rule: base.first_rule + len32(base.rules.len()),
            first_set: base.first_set + len32(base.sets.len()),
            first_ctx: base.first_ctx + len32(base.contexts.len()),
            first_filter: base.first_filter + len32(base.filters.len()),
            ..Tables::default()
        }
    }

    pub(crate) fn end_filter(&self) -> u32 {
        self.first_filter + len32(self.filters.len())
    }

    pub(crate) fn end_ctx(&self) -> u32 {
        self.first_ctx + len32(self.contexts.len())
    }

    /// Files filter `id` (owned by `owner`) under its set's keys.
    pub(crate) fn post(&mut self, id: u32, set: u32, keys: &[u64], owner: Sym) {
        if keys.is_empty() {
            let at = *self.residual_at.entry(set).or_insert_with(|| {
                self.residual.push((set, Vec::new()));
                self.residual.len() - 1
            });
            self.residual[at].1.push(id);
            return;
        }
        for &k in keys {
            let k = resolve(k, owner);
            if (k >> 56) as u8 == REGEX {
                let target = (k >> 48) as u8;
                let sym = (k & 0xffff_ffff) as Sym;
                if self.regex_seen.insert((target, sym)) {
                    self.regex_patterns.push((target, sym));
                }
            }
            self.has_kind |= 1 << (k >> 56);
            let list = self.grow.entry(k).or_default();
            if list.last() != Some(&id) {
                list.push(id);
            }
        }
    }

    /// Moves growing postings into the compact layout.
    pub(crate) fn freeze(&mut self) {
        let grow = std::mem::take(&mut self.grow);
        let total: usize = grow.values().map(Vec::len).sum();
        self.ids.reserve_exact(total);
        self.csr.reserve(grow.len());
        for (k, list) in grow {
            let start = len32(self.ids.len());
            self.ids.extend_from_slice(&list);
            self.csr.insert(k, (start, len32(self.ids.len())));
        }
        self.residual
            .iter_mut()
            .for_each(|(_, list)| list.shrink_to_fit());
        self.residual.shrink_to_fit();
        self.filters.shrink_to_fit();
        self.contexts.shrink_to_fit();
        self.rules.shrink_to_fit();
        self.sets.shrink_to_fit();
        self.text.shrink_to_fit();
        self.addr_idx.shrink_to_fit();
    }

    /// Compiles this layer's `REGEX` patterns (`name` gives a pattern's text).
    pub(crate) fn compile_regexes(&self, name: &dyn Fn(Sym) -> String) -> Vec<RegexIndex> {
        let mut out = Vec::new();
        for target in 0..=4u8 {
            let syms: Vec<Sym> = self
                .regex_patterns
                .iter()
                .filter(|(t, _)| *t == target)
                .map(|(_, s)| *s)
                .collect();
            if syms.is_empty() {
                continue;
            }
            let patterns: Vec<String> = syms.iter().map(|&s| name(s)).collect();
            let set = regex::RegexSetBuilder::new(&patterns)
                .size_limit(64 << 20)
                .build()
                .ok();
            let each = if set.is_some() {
                Vec::new()
            } else {
                patterns.iter().filter_map(|p| compile_alone(p)).collect()
            };
            out.push(RegexIndex {
                target,
                set,
                each,
                syms,
            });
        }
        out
    }

    /// The patterns this layer gained since the last [`Tables::add_regexes`] that `base`
    /// does not already find.
    pub(crate) fn new_regexes(&self, base: &Tables) -> Vec<(u8, Sym)> {
        self.regex_patterns[self.regex_compiled..]
            .iter()
            .copied()
            .filter(|p| !base.regex_seen.contains(p))
            .collect()
    }

    /// Adds patterns compiled one by one: cheap enough for one user's change (a `RegexSet`
    /// of every pattern would be rebuilt whole each time).
    pub(crate) fn add_regexes(&mut self, compiled: Vec<(u8, Sym, regex::Regex)>) {
        self.regex_compiled = self.regex_patterns.len();
        for (target, sym, re) in compiled {
            let at = match self.regex_index.iter().position(|r| r.target == target) {
                Some(at) => at,
                None => {
                    self.regex_index.push(RegexIndex {
                        target,
                        set: None,
                        each: Vec::new(),
                        syms: Vec::new(),
                    });
                    self.regex_index.len() - 1
                }
            };
            self.regex_index[at].each.push(re);
            self.regex_index[at].syms.push(sym);
        }
    }

    #[inline]
    pub(crate) fn postings(&self, k: u64) -> &[u32] {
        if let Some(&(a, b)) = self.csr.get(&k) {
            return &self.ids[a as usize..b as usize];
        }
        if self.grow.is_empty() {
            return &[];
        }
        self.grow.get(&k).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn filter_text(&self, f: &FilterRec) -> (&str, &str) {
        let a = f.text as usize;
        let b = a + f.id_len as usize;
        let c = b + f.name_len as usize;
        (&self.text[a..b], &self.text[b..c])
    }

    /// Heap bytes held, approximately (capacity of every table; regexes not counted).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        fn map<K, V>(m: &FxMap<K, V>) -> usize {
            m.capacity() * (size_of::<(K, V)>() + 1)
        }
        let sets: usize = self
            .sets
            .iter()
            .map(|s| 4 * (s.indep.len() + s.rel.len()) + 8 * s.keys.len())
            .sum();
        let ctxs: usize = self
            .contexts
            .iter()
            .map(|c| c.addresses.iter().map(|a| 16 + a.len()).sum::<usize>())
            .sum();
        let users: usize = self.users.values().map(|v| 4 * v.capacity()).sum();
        self.syms.heap_bytes()
            + self.rules.capacity() * size_of::<FastRule>()
            + map(&self.rule_ids)
            + self.sets.capacity() * size_of::<RuleSet>()
            + sets
            + map(&self.set_ids)
            + self.set_ids.len() * 16
            + self.contexts.capacity() * size_of::<Ctx>()
            + ctxs
            + self.filters.capacity() * size_of::<FilterRec>()
            + self.text.capacity()
            + self.addr_idx.capacity() * 2
            + map(&self.csr)
            + self.ids.capacity() * 4
            + map(&self.grow)
            + self.grow.values().map(|v| 4 * v.capacity()).sum::<usize>()
            + self.residual.capacity() * 32
            + self
                .residual
                .iter()
                .map(|(_, l)| 4 * l.capacity())
                .sum::<usize>()
            + map(&self.residual_at)
            + map(&self.users)
            + users
    }
}
