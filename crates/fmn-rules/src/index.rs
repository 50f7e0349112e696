//! The compiled, indexed form of every filter: interned, deduplicated, and filed under the
//! keys a message is looked up by.
//!
//! - Names are interned ([`Sym`]); rules are compiled once per distinct rule (owner-relative
//!   rules such as "not my actions" store the owner as [`OWNER`], so every user shares one);
//!   a filter's rules form a rule set, also stored once.
//! - Each filter is filed under the keys of its most selective positive rule (an artifact, a
//!   maintainer or group, a user or agent, an application at a severity, a topic prefix or
//!   segment, a severity); filters without one go to a residual bucket evaluated for every
//!   message. Candidates are then evaluated fully, so the index only has to return a superset.
//! - Postings are sorted `u32` filter ids; frozen tables keep them in one array with a
//!   `key → range` map (CSR), tables still growing keep a vector per key.
//!
//! A [`Tables`] holds everything numbered from its `first_*` ids on: the base tables number
//! from 0 and are shared behind an `Arc`; incremental updates go to a small table on top.

use std::cell::OnceCell;

use fmn_messages::{Message, Severity};

use crate::intern::{FxMap, Interner, OWNER, Sym};
use crate::matcher::FieldTest;
use crate::prefs::ContextKind;

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
const ARTIFACT: u8 = 1;
const OWNED: u8 = 2;
const GROUP: u8 = 3;
const USER: u8 = 4;
const AGENT: u8 = 5;
const APP: u8 = 6;
const APP_SEV: u8 = 7;
const TOPIC: u8 = 8;
const TOPIC_SEG: u8 = 9;
const SEV: u8 = 10;
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
fn resolve(k: u64, owner: Sym) -> u64 {
    if k & 0xffff_ffff == u64::from(OWNER) {
        (k & !0xffff_ffff) | u64::from(owner)
    } else {
        k
    }
}

/// How a topic glob is tested.
#[derive(Debug, Clone)]
pub(crate) enum TopicTest {
    Exact(Box<str>),
    Prefix(Box<str>),
    Regex(regex::Regex),
}

/// One compiled rule, on interned names. User lists may hold [`OWNER`].
#[derive(Debug, Clone)]
pub(crate) enum FastTest {
    Topic(TopicTest),
    App(Box<[Sym]>),
    /// A bit per severity.
    Sev(u8),
    User(Box<[Sym]>),
    Agent(Box<[Sym]>),
    Artifact(Box<[(u8, Sym)]>),
    ArtifactRegex(u8, regex::Regex),
    OwnedBy(Box<[Sym]>),
    Group(Box<[Sym]>),
    Field(Box<str>, FieldTest),
    Body(regex::Regex),
}

/// A rule: its test and whether it is negated.
#[derive(Debug, Clone)]
pub(crate) struct FastRule {
    pub(crate) negate: bool,
    pub(crate) test: FastTest,
    /// For topic globs: the index key (rank, key), when the glob has a usable literal part.
    pub(crate) topic_key: Option<(u8, u64)>,
}

/// What identifies a rule for deduplication: its arguments, interned, with the owner as
/// [`OWNER`] and lists sorted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum RuleKey {
    Topic(Box<str>),
    TopicRegex(Box<str>),
    App(Box<[Sym]>),
    /// A bit per valid severity; bit 7 for an invalid name (never stored: it fails to compile).
    Sev(u8),
    User(Box<[Sym]>),
    Agent(Box<[Sym]>),
    /// Type index (255: invalid) and name.
    Artifact(Box<[(u8, Sym)]>),
    ArtifactRegex(Box<str>, Box<str>),
    OwnedBy(Box<[Sym]>),
    Group(Box<[Sym]>),
    /// The rule kind as JSON (fields, body regexes: rare).
    Other(Box<str>),
}

fn contains_who(list: &[Sym], x: Sym, owner: Sym) -> bool {
    list.iter().any(|&u| u == x || (u == OWNER && x == owner))
}

fn owner_relative(list: &[Sym]) -> bool {
    list.contains(&OWNER)
}

impl FastRule {
    pub(crate) fn owner_relative(&self) -> bool {
        match &self.test {
            FastTest::User(l) | FastTest::Agent(l) | FastTest::OwnedBy(l) => owner_relative(l),
            _ => false,
        }
    }

    /// A rough cost class: integer comparisons first, regexes last.
    pub(crate) fn cost(&self) -> u8 {
        match &self.test {
            FastTest::Sev(_) | FastTest::App(_) | FastTest::Agent(_) => 0,
            FastTest::User(_)
            | FastTest::Artifact(_)
            | FastTest::OwnedBy(_)
            | FastTest::Group(_) => 1,
            FastTest::Topic(TopicTest::Exact(_) | TopicTest::Prefix(_)) => 2,
            FastTest::Field(..) => 3,
            FastTest::Topic(TopicTest::Regex(_)) | FastTest::ArtifactRegex(..) => 4,
            FastTest::Body(_) => 5,
        }
    }

    #[inline]
    pub(crate) fn holds(&self, v: &View<'_>, owner: Sym) -> bool {
        self.test.holds(v, owner) != self.negate
    }

    /// The keys (templates: may hold [`OWNER`]) of this rule when positive, with a rank
    /// (lower is more selective); `sev` is the set's positive severity mask, if any.
    fn keys(&self, sev: Option<u8>) -> Option<(u8, Vec<u64>)> {
        if self.negate {
            return None;
        }
        Some(match &self.test {
            FastTest::Artifact(refs) => {
                (0, refs.iter().map(|&(k, n)| key(ARTIFACT, k, n)).collect())
            }
            FastTest::OwnedBy(users) => (1, users.iter().map(|&u| key(OWNED, 0, u)).collect()),
            FastTest::Group(groups) => (1, groups.iter().map(|&g| key(GROUP, 0, g)).collect()),
            FastTest::User(users) => (2, users.iter().map(|&u| key(USER, 0, u)).collect()),
            FastTest::Agent(users) => (2, users.iter().map(|&u| key(AGENT, 0, u)).collect()),
            FastTest::App(names) => match sev {
                Some(mask) => (
                    3,
                    names
                        .iter()
                        .flat_map(|&n| bits(mask).map(move |b| key(APP_SEV, b, n)))
                        .collect(),
                ),
                None => (4, names.iter().map(|&n| key(APP, 0, n)).collect()),
            },
            FastTest::Topic(_) => {
                let (rank, k) = self.topic_key?;
                match sev {
                    // Like applications: only candidates for messages at their severities.
                    Some(mask) => (rank, bits(mask).map(|b| k | with_severity(b)).collect()),
                    None => (rank, vec![k]),
                }
            }
            FastTest::Sev(mask) => (6, bits(*mask).map(|b| key(SEV, b, 0)).collect()),
            _ => return None,
        })
    }
}

/// The extra byte of a topic key restricted to one severity (0: any severity).
fn with_severity(bit: u8) -> u64 {
    u64::from(bit + 1) << 48
}

fn bits(mask: u8) -> impl Iterator<Item = u8> {
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

impl FastTest {
    #[inline]
    fn holds(&self, v: &View<'_>, owner: Sym) -> bool {
        match self {
            FastTest::Topic(t) => match t {
                TopicTest::Exact(s) => v.m.topic == **s,
                TopicTest::Prefix(p) => v.m.topic.starts_with(&**p),
                TopicTest::Regex(re) => re.is_match(&v.m.topic),
            },
            FastTest::App(names) => v.app.is_some_and(|a| names.contains(&a)),
            FastTest::Sev(mask) => mask & (1 << v.sev) != 0,
            FastTest::User(l) => v.users.iter().any(|&u| contains_who(l, u, owner)),
            FastTest::Agent(l) => v.agent.is_some_and(|a| contains_who(l, a, owner)),
            FastTest::Artifact(refs) => v.artifacts.iter().any(|a| refs.contains(a)),
            FastTest::ArtifactRegex(k, re) => {
                v.m.artifacts
                    .of_type(ARTIFACT_TYPES[usize::from(*k)])
                    .is_some_and(|set| set.iter().any(|n| re.is_match(n)))
            }
            FastTest::OwnedBy(l) => v.owner_users.iter().any(|&u| contains_who(l, u, owner)),
            FastTest::Group(l) => v.owner_groups.iter().any(|g| l.contains(g)),
            FastTest::Field(pointer, test) => {
                v.m.body.pointer(pointer).is_some_and(|x| test.holds(x))
            }
            FastTest::Body(re) => re.is_match(
                v.body
                    .get_or_init(|| serde_json::to_string(&v.m.body).unwrap_or_default()),
            ),
        }
    }
}

/// A distinct rule set (a filter's rules), shared by every filter with the same rules.
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone, Default)]
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
    regex_seen: crate::intern::FxSet<(u8, Sym)>,
    /// The patterns compiled together, per target.
    pub(crate) regex_index: Vec<RegexIndex>,
    /// How many of `regex_patterns` `add_regexes` has seen.
    regex_compiled: usize,
}

/// A pattern compiled alone (as it was when its rule compiled); should it not compile now,
/// one matching everything keeps the index a superset.
pub(crate) fn compile_alone(pattern: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .or_else(|_| regex::Regex::new(""))
        .ok()
}

/// A layer's patterns for one target, compiled as one `RegexSet` (or one by one when the
/// set would be too large).
#[derive(Debug, Clone)]
pub(crate) struct RegexIndex {
    target: u8,
    set: Option<regex::RegexSet>,
    each: Vec<regex::Regex>,
    syms: Vec<Sym>,
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

pub(crate) fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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

/// Picks a rule set's index keys: those of its most selective positive rule.
/// When a set has no key of its own but a positive regex rule: that rule's target and
/// pattern, to be filed under a `REGEX` key.
pub(crate) fn regex_fallback(rules: &[&FastRule]) -> Option<(u8, String)> {
    rules.iter().find_map(|r| match (&r.test, r.negate) {
        (FastTest::Topic(TopicTest::Regex(re)), false) => {
            Some((REGEX_TOPIC, re.as_str().to_owned()))
        }
        (FastTest::ArtifactRegex(t, re), false) => Some((1 + t, re.as_str().to_owned())),
        _ => None,
    })
}

pub(crate) fn set_keys(rules: &[&FastRule]) -> Vec<u64> {
    let sev = rules.iter().find_map(|r| match (&r.test, r.negate) {
        (FastTest::Sev(mask), false) => Some(*mask),
        _ => None,
    });
    let mut best: Option<(u8, Vec<u64>)> = None;
    for r in rules {
        let found = r.keys(sev);
        if let Some((rank, keys)) = found
            && best
                .as_ref()
                .is_none_or(|(b, k)| rank < *b || (rank == *b && keys.len() < k.len()))
        {
            best = Some((rank, keys));
        }
    }
    let mut keys = best.map(|(_, k)| k).unwrap_or_default();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A message as the index sees it: interned, with its maintainers looked up. The buffers
/// are reused from message to message.
#[derive(Debug, Default)]
pub(crate) struct ViewBufs {
    users: Vec<Sym>,
    artifacts: Vec<(u8, Sym)>,
    owner_users: Vec<Sym>,
    owner_groups: Vec<Sym>,
    lower: String,
}

pub(crate) struct View<'a> {
    pub(crate) m: &'a Message,
    pub(crate) app: Option<Sym>,
    pub(crate) sev: u8,
    pub(crate) agent: Option<Sym>,
    pub(crate) users: &'a [Sym],
    pub(crate) artifacts: &'a [(u8, Sym)],
    pub(crate) owner_users: &'a [Sym],
    pub(crate) owner_groups: &'a [Sym],
    pub(crate) body: OnceCell<String>,
}

/// Maintainers by artifact, interned: the data behind `owned_by` keys.
#[derive(Debug, Default, Clone)]
pub(crate) struct OwnerIndex {
    by_type: [FxMap<Box<str>, (u32, u32, u32)>; 4],
    syms: Vec<Sym>,
}

impl OwnerIndex {
    pub(crate) fn build(
        ownership: &crate::Ownership,
        intern: &mut dyn FnMut(&str) -> Sym,
    ) -> OwnerIndex {
        let mut idx = OwnerIndex::default();
        for (kind, name, owners) in ownership.iter() {
            let Some(t) = artifact_type_index(kind) else {
                continue;
            };
            let start = len32(idx.syms.len());
            idx.syms.extend(owners.users.iter().map(|u| intern(u)));
            let mid = len32(idx.syms.len());
            idx.syms.extend(owners.groups.iter().map(|g| intern(g)));
            idx.by_type[usize::from(t)].insert(name.into(), (start, mid, len32(idx.syms.len())));
        }
        idx
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.by_type
            .iter()
            .map(|m| {
                m.capacity() * (std::mem::size_of::<(Box<str>, (u32, u32, u32))>() + 1)
                    + m.keys().map(|k| k.len()).sum::<usize>()
            })
            .sum::<usize>()
            + self.syms.capacity() * 4
    }
}

/// Fills `bufs` for `m` and returns the view.
pub(crate) fn view<'a>(
    m: &'a Message,
    bufs: &'a mut ViewBufs,
    lookup: &dyn Fn(&str) -> Option<Sym>,
    owners: &OwnerIndex,
) -> View<'a> {
    let ViewBufs {
        users,
        artifacts,
        owner_users,
        owner_groups,
        lower,
    } = bufs;
    users.clear();
    artifacts.clear();
    owner_users.clear();
    owner_groups.clear();
    users.extend(m.usernames.iter().filter_map(|u| lookup(u)));
    let app = if m.app.bytes().any(|b| b.is_ascii_uppercase()) || !m.app.is_ascii() {
        lower.clear();
        lower.extend(m.app.chars().flat_map(char::to_lowercase));
        lookup(lower)
    } else {
        lookup(&m.app)
    };
    let types = [
        &m.artifacts.rpms,
        &m.artifacts.containers,
        &m.artifacts.modules,
        &m.artifacts.flatpaks,
    ];
    for (t, set) in (0u8..).zip(types) {
        for name in set {
            if let Some(sym) = lookup(name) {
                artifacts.push((t, sym));
            }
            if let Some(&(a, b, c)) = owners.by_type[usize::from(t)].get(name.as_str()) {
                owner_users.extend_from_slice(&owners.syms[a as usize..b as usize]);
                owner_groups.extend_from_slice(&owners.syms[b as usize..c as usize]);
            }
        }
    }
    View {
        m,
        app,
        sev: severity_bit(m.severity),
        agent: m.agent.as_deref().and_then(lookup),
        users,
        artifacts,
        owner_users,
        owner_groups,
        body: OnceCell::new(),
    }
}

/// Every key a message is looked up by, given which kinds exist.
pub(crate) fn message_keys(
    v: &View<'_>,
    has_kind: u16,
    topic_keys: &[u64],
    mut look: impl FnMut(u64),
) {
    let has = |k: u8| has_kind & (1 << k) != 0;
    if has(ARTIFACT) {
        v.artifacts
            .iter()
            .for_each(|&(t, n)| look(key(ARTIFACT, t, n)));
    }
    if has(OWNED) {
        v.owner_users.iter().for_each(|&u| look(key(OWNED, 0, u)));
    }
    if has(GROUP) {
        v.owner_groups.iter().for_each(|&g| look(key(GROUP, 0, g)));
    }
    if has(USER) {
        v.users.iter().for_each(|&u| look(key(USER, 0, u)));
    }
    if has(AGENT)
        && let Some(a) = v.agent
    {
        look(key(AGENT, 0, a));
    }
    if let Some(app) = v.app {
        if has(APP) {
            look(key(APP, 0, app));
        }
        if has(APP_SEV) {
            look(key(APP_SEV, v.sev, app));
        }
    }
    if has(SEV) {
        look(key(SEV, v.sev, 0));
    }
    for &k in topic_keys {
        look(k);
        look(k | with_severity(v.sev));
    }
}

/// The keys of a topic (its dot-prefixes, itself, its segments), for the kinds that exist.
pub(crate) fn topic_keys(
    topic: &str,
    has_kind: u16,
    lookup: &dyn Fn(&str) -> Option<Sym>,
) -> Box<[u64]> {
    let has = |k: u8| has_kind & (1 << k) != 0;
    let mut out = Vec::new();
    if has(TOPIC) {
        for (i, _) in topic.match_indices('.') {
            if let Some(s) = lookup(&topic[..=i]) {
                out.push(key(TOPIC, 0, s));
            }
        }
        if let Some(s) = lookup(topic) {
            out.push(key(TOPIC, 0, s));
        }
    }
    if has(TOPIC_SEG) {
        for seg in topic.split('.') {
            if let Some(s) = lookup(seg) {
                out.push(key(TOPIC_SEG, 0, s));
            }
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms() -> impl FnMut(&str) -> Sym {
        let mut i = Interner::default();
        move |s| i.intern(s)
    }

    #[test]
    fn glob_keys_cut_at_a_dot_or_take_a_segment() {
        let mut s = syms();
        let k = |g: &str, s: &mut dyn FnMut(&str) -> Sym| glob_key(g, s).map(|(r, _)| r);
        assert_eq!(k("org.fp.prod.bod*", &mut s), Some(4));
        assert_eq!(k("org.fp.prod.x", &mut s), Some(3));
        assert_eq!(k("*.bodhi.*", &mut s), Some(5));
        assert_eq!(k("*bodhi.*", &mut s), None);
        assert_eq!(k("org*", &mut s), None);
        assert_eq!(k("*.b[o]dhi.*", &mut s), None);
    }
}
