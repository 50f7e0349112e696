//! Compiled preferences and message matching.

use std::cell::{OnceCell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fmn_messages::{Message, Severity};
use serde::{Deserialize, Serialize};

use crate::index::{
    self, ALL_ADDRESSES, Ctx, FastRule, FastTest, FilterRec, OwnerIndex, RuleKey, RuleSet, Tables,
    TopicTest, ViewBufs, artifact_type_index, glob_key, len32,
};
use crate::intern::{FxMap, FxSet, Layered, OWNER, Sym, intern_layered};
use crate::ownership::Ownership;
use crate::prefs::{ContextKind, FilterRef, Preferences, Rule, RuleKind};

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

/// One notification: a message for one user in one context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The recipient user.
    pub user: String,
    /// The delivery context.
    pub context: ContextKind,
    /// The confirmed addresses to deliver to.
    pub addresses: Vec<String>,
    /// Every filter that matched.
    pub filters: Vec<FilterRef>,
}

/// A field condition.
#[derive(Debug, Clone)]
pub(crate) enum FieldTest {
    Equals(serde_json::Value),
    OneOf(Vec<serde_json::Value>),
    Regex(regex::Regex),
}

impl FieldTest {
    pub(crate) fn holds(&self, v: &serde_json::Value) -> bool {
        match self {
            FieldTest::Equals(want) => v == want,
            FieldTest::OneOf(wants) => wants.contains(v),
            FieldTest::Regex(re) => match v {
                serde_json::Value::String(t) => re.is_match(t),
                serde_json::Value::Number(n) => re.is_match(&n.to_string()),
                serde_json::Value::Bool(b) => re.is_match(if *b { "true" } else { "false" }),
                _ => false,
            },
        }
    }
}

/// One compiled rule (without its negation).
#[derive(Debug)]
pub(crate) enum Test {
    /// The compiled glob and the glob itself.
    Topic(regex::Regex, Option<String>),
    TopicRegex(regex::Regex),
    /// Lowercased names.
    Application(Vec<String>),
    Severity(Vec<Severity>),
    User(Vec<String>),
    Agent(Vec<String>),
    Artifact(Vec<(String, String)>),
    ArtifactRegex(String, regex::Regex),
    OwnedBy(Vec<String>),
    OwnedByGroup(Vec<String>),
    Field(String, FieldTest),
    BodyRegex(regex::Regex),
}

/// A message being matched, with what is derived from it lazily and at most once.
pub(crate) struct Subject<'a> {
    pub(crate) m: &'a Message,
    pub(crate) ownership: &'a Ownership,
    app_lower: String,
    body_text: OnceCell<String>,
}

impl<'a> Subject<'a> {
    pub(crate) fn new(m: &'a Message, ownership: &'a Ownership) -> Self {
        Subject {
            m,
            ownership,
            app_lower: m.app.to_lowercase(),
            body_text: OnceCell::new(),
        }
    }

    /// Every (type, name) artifact of the message.
    pub(crate) fn artifacts(&self) -> impl Iterator<Item = (&'static str, &'a str)> + 'a {
        let a = &self.m.artifacts;
        [
            ("rpms", &a.rpms),
            ("containers", &a.containers),
            ("modules", &a.modules),
            ("flatpaks", &a.flatpaks),
        ]
        .into_iter()
        .flat_map(|(k, set)| set.iter().map(move |n| (k, n.as_str())))
    }

    fn owners(&self) -> impl Iterator<Item = &'a crate::ownership::Owners> + '_ {
        self.artifacts()
            .filter_map(|(k, n)| self.ownership.owners(k, n))
    }
}

impl Test {
    pub(crate) fn holds(&self, s: &Subject<'_>) -> bool {
        let m = s.m;
        match self {
            Test::Topic(re, _) | Test::TopicRegex(re) => re.is_match(&m.topic),
            Test::Application(names) => names.contains(&s.app_lower),
            Test::Severity(levels) => levels.contains(&m.severity),
            Test::User(users) => users.iter().any(|u| m.usernames.contains(u)),
            Test::Agent(users) => m.agent.as_ref().is_some_and(|a| users.contains(a)),
            Test::Artifact(refs) => refs.iter().any(|(kind, name)| {
                m.artifacts
                    .of_type(kind)
                    .is_some_and(|set| set.contains(name))
            }),
            Test::ArtifactRegex(kind, re) => m
                .artifacts
                .of_type(kind)
                .is_some_and(|set| set.iter().any(|n| re.is_match(n))),
            Test::OwnedBy(users) => s
                .owners()
                .any(|o| o.users.iter().any(|u| users.contains(u))),
            Test::OwnedByGroup(groups) => s
                .owners()
                .any(|o| o.groups.iter().any(|g| groups.contains(g))),
            Test::Field(pointer, test) => m.body.pointer(pointer).is_some_and(|v| test.holds(v)),
            Test::BodyRegex(re) => re.is_match(
                s.body_text
                    .get_or_init(|| serde_json::to_string(&m.body).unwrap_or_default()),
            ),
        }
    }
}

/// Every user's active filters, compiled and indexed. Shareable across threads; see
/// [`Matcher::upsert_user`] for changing it while it serves.
///
/// The bulk of the tables is immutable and shared behind an `Arc` (cloning a matcher is
/// cheap); changes since the last build or [`Matcher::compacted`] live in a small layer on
/// top, and replaced users' old contexts are tombstoned.
#[derive(Debug, Clone)]
pub struct Matcher {
    base: Arc<Tables>,
    top: Tables,
    /// Contexts of replaced or removed users.
    dead: FxSet<u32>,
    live_filters: usize,
    ownership: Arc<Ownership>,
    owners: Arc<OwnerIndex>,
    /// Changes with every change, for per-thread caches.
    epoch: u64,
}

impl Default for Matcher {
    fn default() -> Self {
        Self::from_tables(Tables::default(), Arc::default(), OwnerIndex::default(), 0)
    }
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

/// One matched (user, context): which filters matched, as references into the matcher.
/// [`Matcher::for_each_match`] hands these out without allocating.
#[derive(Debug, Clone, Copy)]
pub struct Match<'a> {
    matcher: &'a Matcher,
    ctx: u32,
    filters: &'a [u32],
}

impl<'a> Match<'a> {
    /// The recipient user.
    pub fn user(&self) -> &'a str {
        self.matcher.name(self.matcher.ctx(self.ctx).user)
    }

    /// The delivery context.
    pub fn context(&self) -> ContextKind {
        self.matcher.ctx(self.ctx).kind
    }

    /// How many filters matched.
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// The notification, with owned strings.
    pub fn to_notification(&self) -> Option<Notification> {
        self.matcher
            .borrowed(self.ctx, self.filters)
            .map(|n| n.to_owned())
    }
}

/// A notification whose strings borrow from the matcher ([`Matcher::matches_borrowed`]):
/// the same as a [`Notification`] without copying a string. Serialises like one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationRef<'a> {
    /// The recipient user.
    pub user: &'a str,
    /// The delivery context.
    pub context: ContextKind,
    /// The confirmed addresses to deliver to.
    pub addresses: Vec<&'a str>,
    /// Every filter that matched.
    pub filters: Vec<FilterName<'a>>,
}

/// A filter named in a [`NotificationRef`]; serialises like a [`FilterRef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FilterName<'a> {
    /// The filter's id.
    pub id: &'a str,
    /// The filter's name.
    pub name: &'a str,
    /// A oneshot filter (absent in JSON: false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub oneshot: bool,
}

impl NotificationRef<'_> {
    /// The notification with owned strings.
    pub fn to_owned(&self) -> Notification {
        Notification {
            user: self.user.to_owned(),
            context: self.context,
            addresses: self.addresses.iter().map(|a| (*a).to_owned()).collect(),
            filters: self
                .filters
                .iter()
                .map(|f| FilterRef {
                    id: f.id.to_owned(),
                    name: f.name.to_owned(),
                    oneshot: f.oneshot,
                })
                .collect(),
        }
    }
}

/// Per-thread buffers reused from message to message.
#[derive(Debug, Default)]
struct Scratch {
    view: ViewBufs,
    cands: Vec<u32>,
    hits: Vec<u32>,
    /// Rule-set results memoised for the current message: valid where `memo_gen` is `generation`.
    memo_gen: Vec<u32>,
    memo: Vec<bool>,
    generation: u32,
    regex_hits: Vec<bool>,
    /// Topic → its index keys, for the matcher of `topics_epoch` (topics are few: a bus has
    /// a few thousand).
    topics: FxMap<Box<str>, Box<[u64]>>,
    topics_epoch: u64,
}

/// Numbers matcher states, so per-thread caches know when they are stale.
static EPOCHS: AtomicU64 = AtomicU64::new(1);

fn next_epoch() -> u64 {
    EPOCHS.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A context compiled but not yet added.
struct StagedCtx {
    kind: ContextKind,
    addresses: Box<[Box<str>]>,
    filters: Vec<StagedFilter>,
}

struct StagedFilter {
    set: u32,
    id: String,
    name: String,
    oneshot: bool,
    /// `None`: all addresses.
    addresses: Option<Vec<u16>>,
}

/// Adds to `top`, reading `base` for what is already there.
struct Writer<'a> {
    base: &'a Tables,
    top: &'a mut Tables,
}

impl Writer<'_> {
    fn sym(&mut self, s: &str) -> Sym {
        intern_layered(&self.base.syms, &mut self.top.syms, s)
    }

    fn who(&mut self, users: &[String], owner: Sym) -> Box<[Sym]> {
        let mut out: Vec<Sym> = if users.is_empty() {
            vec![OWNER]
        } else {
            users
                .iter()
                .map(|u| {
                    let s = self.sym(u);
                    if s == owner { OWNER } else { s }
                })
                .collect()
        };
        out.sort_unstable();
        out.dedup();
        out.into()
    }

    fn sorted(&mut self, names: impl Iterator<Item = String>) -> Box<[Sym]> {
        let mut out: Vec<Sym> = names.map(|n| self.sym(&n)).collect();
        out.sort_unstable();
        out.dedup();
        out.into()
    }

    fn rule_key(&mut self, owner: Sym, kind: &RuleKind) -> RuleKey {
        match kind {
            RuleKind::Topic { glob } => RuleKey::Topic(glob.as_str().into()),
            RuleKind::TopicRegex { regex } => RuleKey::TopicRegex(regex.as_str().into()),
            RuleKind::Application { names } => {
                RuleKey::App(self.sorted(names.iter().map(|n| n.to_lowercase())))
            }
            RuleKind::Severity { levels } => RuleKey::Sev(levels.iter().fold(0, |mask, l| {
                mask | match l.to_ascii_lowercase().as_str() {
                    "debug" => 1,
                    "info" => 2,
                    "warning" => 4,
                    "error" => 8,
                    _ => 0x80,
                }
            })),
            RuleKind::User { usernames } => RuleKey::User(self.who(usernames, owner)),
            RuleKind::Agent { usernames } => RuleKey::Agent(self.who(usernames, owner)),
            RuleKind::OwnedBy { usernames } => RuleKey::OwnedBy(self.who(usernames, owner)),
            RuleKind::Artifact { artifacts } => {
                let mut out: Vec<(u8, Sym)> = artifacts
                    .iter()
                    .map(|a| {
                        (
                            artifact_type_index(&a.kind).unwrap_or(255),
                            self.sym(&a.name),
                        )
                    })
                    .collect();
                out.sort_unstable();
                out.dedup();
                RuleKey::Artifact(out.into())
            }
            RuleKind::ArtifactRegex {
                artifact_type,
                regex,
            } => RuleKey::ArtifactRegex(artifact_type.as_str().into(), regex.as_str().into()),
            RuleKind::OwnedByGroup { groups } => RuleKey::Group(
                self.sorted(
                    groups
                        .iter()
                        .map(|g| g.strip_prefix('@').unwrap_or(g).to_owned()),
                ),
            ),
            RuleKind::Field { .. } | RuleKind::BodyRegex { .. } => {
                RuleKey::Other(serde_json::to_string(kind).unwrap_or_default().into())
            }
        }
    }

    /// The id of a rule, compiling it if it is new.
    fn rule(&mut self, owner: &str, owner_sym: Sym, rule: &Rule) -> Result<u32, String> {
        let k = (rule.negate, self.rule_key(owner_sym, &rule.kind));
        if let Some(&id) = self
            .base
            .rule_ids
            .get(&k)
            .or_else(|| self.top.rule_ids.get(&k))
        {
            return Ok(id);
        }
        let compiled = compile(owner, &rule.kind)?;
        let mut topic_key = None;
        let test = match (compiled, &k.1) {
            (Test::Topic(re, glob), _) => {
                let glob = glob.unwrap_or_default();
                topic_key = glob_key(&glob, &mut |s| self.sym(s));
                let special = glob.find(['*', '?', '[']);
                FastTest::Topic(match special {
                    None => TopicTest::Exact(glob.into()),
                    Some(i) if i == glob.len() - 1 && glob.ends_with('*') => {
                        TopicTest::Prefix(glob[..i].into())
                    }
                    Some(_) => TopicTest::Regex(re),
                })
            }
            (Test::TopicRegex(re), _) => FastTest::Topic(TopicTest::Regex(re)),
            (Test::Application(_), RuleKey::App(names)) => FastTest::App(names.clone()),
            (Test::Severity(_), RuleKey::Sev(mask)) => FastTest::Sev(*mask),
            (Test::User(_), RuleKey::User(l)) => FastTest::User(l.clone()),
            (Test::Agent(_), RuleKey::Agent(l)) => FastTest::Agent(l.clone()),
            (Test::OwnedBy(_), RuleKey::OwnedBy(l)) => FastTest::OwnedBy(l.clone()),
            (Test::OwnedByGroup(_), RuleKey::Group(l)) => FastTest::Group(l.clone()),
            (Test::Artifact(_), RuleKey::Artifact(l)) => FastTest::Artifact(l.clone()),
            (Test::ArtifactRegex(t, re), _) => {
                FastTest::ArtifactRegex(artifact_type_index(&t).unwrap_or(0), re)
            }
            (Test::Field(p, t), _) => FastTest::Field(p.into(), t),
            (Test::BodyRegex(re), _) => FastTest::Body(re),
            _ => return Err("internal: rule key and rule disagree".into()),
        };
        let id = self.top.first_rule + len32(self.top.rules.len());
        self.top.rules.push(FastRule {
            negate: rule.negate,
            test,
            topic_key,
        });
        self.top.rule_ids.insert(k, id);
        Ok(id)
    }

    fn rule_ref(&self, id: u32) -> &FastRule {
        match id.checked_sub(self.top.first_rule) {
            Some(i) => &self.top.rules[i as usize],
            None => &self.base.rules[id as usize],
        }
    }

    /// The id of a rule set, creating it if it is new.
    fn set(&mut self, mut rules: Vec<u32>) -> u32 {
        rules.sort_unstable_by_key(|&r| (self.rule_ref(r).cost(), r));
        rules.dedup();
        if let Some(&id) = self
            .base
            .set_ids
            .get(rules.as_slice())
            .or_else(|| self.top.set_ids.get(rules.as_slice()))
        {
            return id;
        }
        let refs: Vec<&FastRule> = rules.iter().map(|&r| self.rule_ref(r)).collect();
        let mut keys = index::set_keys(&refs);
        let fallback = if keys.is_empty() {
            index::regex_fallback(&refs)
        } else {
            None
        };
        if let Some((target, pattern)) = fallback {
            keys.push(index::key(index::REGEX, target, self.sym(&pattern)));
        }
        let set = RuleSet {
            keys: keys.into(),
            indep: rules
                .iter()
                .copied()
                .filter(|&r| !self.rule_ref(r).owner_relative())
                .collect(),
            rel: rules
                .iter()
                .copied()
                .filter(|&r| self.rule_ref(r).owner_relative())
                .collect(),
        };
        let id = self.top.first_set + len32(self.top.sets.len());
        self.top.sets.push(set);
        self.top.set_ids.insert(rules.into(), id);
        id
    }

    /// Compiles one user's contexts without adding them.
    fn stage(&mut self, prefs: &Preferences) -> Result<(Sym, Vec<StagedCtx>), BuildError> {
        let user = prefs.user.as_str();
        let owner = self.sym(user);
        let mut out = Vec::new();
        for (&kind, context) in &prefs.contexts {
            let err = |filter: &str, rule: usize, problem: String| BuildError {
                user: user.to_owned(),
                context: kind.as_str(),
                filter: filter.to_owned(),
                rule,
                problem,
            };
            let confirmed = context.deliverable_addresses(kind);
            if confirmed.len() > usize::from(u16::MAX) {
                return Err(err("", 0, "addresses: too many".into()));
            }
            let mut filters = Vec::new();
            for filter in &context.filters {
                let mut rules = Vec::with_capacity(filter.rules.len());
                for (i, rule) in filter.rules.iter().enumerate() {
                    rules.push(self.rule(user, owner, rule).map_err(|p| {
                        err(&filter.id, i + 1, format!("{}: {p}", rule.kind.name()))
                    })?);
                }
                let addresses = match &filter.addresses {
                    None => None,
                    Some(chosen) => {
                        for a in chosen {
                            if !context.addresses.iter().any(|c| &c.address == a) {
                                return Err(err(
                                    &filter.id,
                                    0,
                                    format!(
                                        "addresses: {a:?} is not one of the context's addresses"
                                    ),
                                ));
                            }
                        }
                        let picked: Vec<u16> = confirmed
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| chosen.iter().any(|a| a == *c))
                            .filter_map(|(i, _)| u16::try_from(i).ok())
                            .collect();
                        (picked.len() < confirmed.len()).then_some(picked)
                    }
                };
                let reaches = match &addresses {
                    None => !confirmed.is_empty(),
                    Some(picked) => !picked.is_empty(),
                };
                if filter.active && !rules.is_empty() && reaches {
                    filters.push(StagedFilter {
                        set: self.set(rules),
                        id: filter.id.clone(),
                        name: filter.name.clone(),
                        oneshot: filter.oneshot,
                        addresses,
                    });
                }
            }
            if context.enabled && !filters.is_empty() {
                out.push(StagedCtx {
                    kind,
                    addresses: confirmed.into_iter().map(Box::from).collect(),
                    filters,
                });
            }
        }
        Ok((owner, out))
    }

    fn set_keys_of(&self, set: u32) -> Box<[u64]> {
        match set.checked_sub(self.top.first_set) {
            Some(i) => self.top.sets[i as usize].keys.clone(),
            None => self.base.sets[set as usize].keys.clone(),
        }
    }

    /// Adds staged contexts; returns their ids and how many filters were added.
    fn commit(&mut self, owner: Sym, staged: Vec<StagedCtx>) -> (Vec<u32>, usize) {
        let mut ids = Vec::with_capacity(staged.len());
        let mut added = 0;
        for c in staged {
            let ctx_id = self.top.end_ctx();
            let first = self.top.end_filter();
            for f in c.filters {
                let id = self.top.end_filter();
                let text = len32(self.top.text.len());
                self.top.text.push_str(&f.id);
                self.top.text.push_str(&f.name);
                let (addr_start, addr_len) = match f.addresses {
                    None => (0, ALL_ADDRESSES),
                    Some(list) => {
                        let start = len32(self.top.addr_idx.len());
                        self.top.addr_idx.extend_from_slice(&list);
                        (start, len32(list.len()))
                    }
                };
                self.top.filters.push(FilterRec {
                    set: f.set,
                    ctx: ctx_id,
                    text,
                    id_len: len32(f.id.len()),
                    name_len: len32(f.name.len()),
                    addr_start,
                    addr_len,
                    oneshot: f.oneshot,
                });
                let keys = self.set_keys_of(f.set);
                self.top.post(id, f.set, &keys, owner);
                added += 1;
            }
            self.top.contexts.push(Ctx {
                user: owner,
                kind: c.kind,
                addresses: c.addresses,
                filters: (first, self.top.end_filter()),
            });
            ids.push(ctx_id);
        }
        (ids, added)
    }
}

impl Matcher {
    /// Compiles preferences without ownership data (`owned_by` rules then match nothing); a
    /// bad rule fails with an error naming it.
    pub fn build(all: impl IntoIterator<Item = Preferences>) -> Result<Matcher, BuildError> {
        Self::build_with(all, Arc::default())
    }

    /// Compiles preferences; `owned_by` and `owned_by_group` rules read `ownership`.
    pub fn build_with(
        all: impl IntoIterator<Item = Preferences>,
        ownership: Arc<Ownership>,
    ) -> Result<Matcher, BuildError> {
        Self::assemble(all, ownership, Err)
    }

    /// Compiles preferences, leaving out every user whose preferences do not compile (one
    /// user's mistake must not stop everyone else's notifications); returns why each was
    /// left out.
    pub fn build_lenient(
        all: impl IntoIterator<Item = Preferences>,
        ownership: Arc<Ownership>,
    ) -> (Matcher, Vec<BuildError>) {
        let mut skipped = Vec::new();
        let matcher = Self::assemble(all, ownership, |e| {
            skipped.push(e);
            Ok(())
        });
        // `assemble` fails only through the callback, which never fails here.
        (matcher.unwrap_or_default(), skipped)
    }

    /// Compiles every user; a user who fails goes to `on_error`, which either stops the build
    /// (returns the error) or lets it go on without that user.
    fn assemble(
        all: impl IntoIterator<Item = Preferences>,
        ownership: Arc<Ownership>,
        mut on_error: impl FnMut(BuildError) -> Result<(), BuildError>,
    ) -> Result<Matcher, BuildError> {
        let empty = Tables::default();
        let mut t = Tables::default();
        let mut live = 0;
        let mut w = Writer {
            base: &empty,
            top: &mut t,
        };
        for prefs in all {
            match w.stage(&prefs) {
                Ok((owner, staged)) => {
                    let (ids, added) = w.commit(owner, staged);
                    if u32::try_from(w.top.filters.len()).is_err() {
                        return Err(BuildError {
                            user: prefs.user,
                            context: "",
                            filter: String::new(),
                            rule: 0,
                            problem: "too many filters".into(),
                        });
                    }
                    live += added;
                    if !ids.is_empty() {
                        w.top.users.entry(owner).or_default().extend(ids);
                    }
                }
                Err(e) => on_error(e)?,
            }
        }
        let owners = OwnerIndex::build(&ownership, &mut |s| t.syms.intern(s));
        t.regex_index = t.compile_regexes(&|s| t.syms.name(s).unwrap_or_default().to_owned());
        t.freeze();
        Ok(Self::from_tables(t, ownership, owners, live))
    }

    fn from_tables(
        base: Tables,
        ownership: Arc<Ownership>,
        owners: OwnerIndex,
        live_filters: usize,
    ) -> Matcher {
        let top = Tables::above(&base);
        Matcher {
            base: Arc::new(base),
            top,
            dead: FxSet::default(),
            live_filters,
            ownership,
            owners: Arc::new(owners),
            epoch: next_epoch(),
        }
    }

    /// The ownership data the matcher reads.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// Replaces the ownership data (a new sync of the package database). Costs one pass over
    /// the ownership data; the filters are untouched.
    pub fn set_ownership(&mut self, ownership: Arc<Ownership>) {
        let (base, top) = (&self.base, &mut self.top);
        let owners = OwnerIndex::build(&ownership, &mut |s| {
            intern_layered(&base.syms, &mut top.syms, s)
        });
        self.owners = Arc::new(owners);
        self.ownership = ownership;
        self.epoch = next_epoch();
    }

    /// Replaces one user's preferences (or adds a new user) without rebuilding: the user's
    /// old contexts are tombstoned and the new ones go to a small update layer. Costs what
    /// compiling that one user costs. On error nothing changes.
    ///
    /// A matcher shared behind an `Arc` is changed with `Arc::make_mut` (cloning it copies
    /// only the update layer: the bulk is shared) or under a lock between batches; call
    /// [`Matcher::compacted`] now and then, off the hot path, to fold the layer in.
    pub fn upsert_user(&mut self, prefs: &Preferences) -> Result<(), BuildError> {
        self.epoch = next_epoch();
        let mut w = Writer {
            base: &self.base,
            top: &mut self.top,
        };
        let (owner, staged) = w.stage(prefs)?;
        self.remove_sym(owner);
        let mut w = Writer {
            base: &self.base,
            top: &mut self.top,
        };
        let (ids, added) = w.commit(owner, staged);
        self.live_filters += added;
        self.top.users.insert(owner, ids);
        let new = self.top.new_regexes(&self.base);
        let syms = self.syms();
        let compiled = new
            .into_iter()
            .filter_map(|(target, sym)| Some((target, sym, index::compile_alone(syms.name(sym))?)))
            .collect();
        self.top.add_regexes(compiled);
        Ok(())
    }

    /// Removes one user's preferences (nothing happens for an unknown user).
    pub fn remove_user(&mut self, user: &str) {
        if let Some(sym) = self.syms().get(user) {
            self.remove_sym(sym);
        }
    }

    fn remove_sym(&mut self, user: Sym) {
        self.epoch = next_epoch();
        let ctxs = match self.top.users.get(&user) {
            Some(list) => list.clone(),
            None => self.base.users.get(&user).cloned().unwrap_or_default(),
        };
        for c in ctxs {
            if self.dead.insert(c) {
                let (a, b) = self.ctx(c).filters;
                self.live_filters -= (b - a) as usize;
            }
        }
        self.top.users.insert(user, Vec::new());
    }

    /// The same matcher with the update layer folded into the shared tables and tombstoned
    /// contexts dropped. Takes `&self`: run it on another thread while this one serves, then
    /// swap.
    pub fn compacted(&self) -> Matcher {
        let (base, top) = (&*self.base, &self.top);
        let mut t = Tables::default();
        t.syms = base.syms.clone();
        for name in top.syms.names() {
            t.syms.intern(name);
        }
        t.rules = base.rules.iter().chain(&top.rules).cloned().collect();
        t.rule_ids = base.rule_ids.clone();
        t.rule_ids
            .extend(top.rule_ids.iter().map(|(k, v)| (k.clone(), *v)));
        t.sets = base.sets.iter().chain(&top.sets).cloned().collect();
        t.set_ids = base.set_ids.clone();
        t.set_ids
            .extend(top.set_ids.iter().map(|(k, v)| (k.clone(), *v)));
        let mut live = 0;
        let all = base
            .contexts
            .iter()
            .map(|c| (base, c))
            .chain(top.contexts.iter().map(|c| (top, c)));
        for (old_ctx, (layer, c)) in (0u32..).zip(all) {
            if self.dead.contains(&old_ctx) {
                continue;
            }
            let ctx_id = t.end_ctx();
            let first = t.end_filter();
            for id in c.filters.0..c.filters.1 {
                let f = &layer.filters[(id - layer.first_filter) as usize];
                let (fid, name) = layer.filter_text(f);
                let text = len32(t.text.len());
                t.text.push_str(fid);
                t.text.push_str(name);
                let addr_start = if f.addr_len == ALL_ADDRESSES {
                    0
                } else {
                    let start = len32(t.addr_idx.len());
                    let a = f.addr_start as usize;
                    t.addr_idx
                        .extend_from_slice(&layer.addr_idx[a..a + f.addr_len as usize]);
                    start
                };
                let new_id = t.end_filter();
                t.filters.push(FilterRec {
                    ctx: ctx_id,
                    text,
                    addr_start,
                    ..f.clone()
                });
                let keys = t.sets[f.set as usize].keys.clone();
                t.post(new_id, f.set, &keys, c.user);
                live += 1;
            }
            t.contexts.push(Ctx {
                filters: (first, t.end_filter()),
                ..c.clone()
            });
            t.users.entry(c.user).or_default().push(ctx_id);
        }
        t.regex_index = t.compile_regexes(&|s| t.syms.name(s).unwrap_or_default().to_owned());
        t.freeze();
        Matcher {
            top: Tables::above(&t),
            base: Arc::new(t),
            dead: FxSet::default(),
            live_filters: live,
            ownership: self.ownership.clone(),
            owners: self.owners.clone(),
            epoch: next_epoch(),
        }
    }

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

    /// Who is notified of `message`, where, and because of which filters.
    pub fn matches(&self, message: &Message) -> Vec<Notification> {
        let mut out = Vec::new();
        self.for_each_match(message, |m| out.extend(m.to_notification()));
        out
    }

    /// What [`Matcher::matches`] returns, with strings borrowed from the matcher instead of
    /// copied.
    pub fn matches_borrowed(&self, message: &Message) -> Vec<NotificationRef<'_>> {
        let mut out = Vec::new();
        self.for_each_match(message, |m| out.extend(self.borrowed(m.ctx, m.filters)));
        out
    }

    /// The notification of context `ctx` for the matched `filters` (none if no address is
    /// left to deliver to).
    fn borrowed(&self, ctx: u32, filters: &[u32]) -> Option<NotificationRef<'_>> {
        let c = self.ctx(ctx);
        let mut all = false;
        let mut wanted: Vec<u16> = Vec::new();
        let mut names = Vec::with_capacity(filters.len());
        for &id in filters {
            let (t, f) = self.filter(id);
            if f.addr_len == ALL_ADDRESSES {
                all = true;
            } else if !all {
                let a = f.addr_start as usize;
                wanted.extend_from_slice(&t.addr_idx[a..a + f.addr_len as usize]);
            }
            let (id, name) = t.filter_text(f);
            names.push(FilterName {
                id,
                name,
                oneshot: f.oneshot,
            });
        }
        let addresses: Vec<&str> = if all {
            c.addresses.iter().map(|a| &**a).collect()
        } else {
            wanted.sort_unstable();
            wanted.dedup();
            wanted
                .iter()
                .map(|&i| &*c.addresses[usize::from(i)])
                .collect()
        };
        (!addresses.is_empty()).then(|| NotificationRef {
            user: self.name(c.user),
            context: c.kind,
            addresses,
            filters: names,
        })
    }

    /// Calls `f` for each (user, context) with a matching filter, allocating nothing: what
    /// [`Matcher::matches`] does before it copies the strings out.
    pub fn for_each_match(&self, message: &Message, mut f: impl FnMut(Match<'_>)) {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.run(message, &mut s, &mut f),
            // Re-entered from `f`: use fresh buffers.
            Err(_) => self.run(message, &mut Scratch::default(), &mut f),
        });
    }

    fn run(&self, message: &Message, s: &mut Scratch, f: &mut dyn FnMut(Match<'_>)) {
        let syms = self.syms();
        let lookup = |x: &str| syms.get(x);
        let Scratch {
            view: bufs,
            cands,
            hits,
            memo_gen,
            memo,
            generation,
            regex_hits,
            topics,
            topics_epoch,
        } = s;
        let v = index::view(message, bufs, &lookup, &self.owners);
        cands.clear();
        hits.clear();
        let (base, top) = (&*self.base, &self.top);
        let sets = (top.first_set as usize) + top.sets.len();
        if memo_gen.len() < sets {
            memo_gen.resize(sets, 0);
            memo.resize(sets, false);
        }
        *generation = generation.wrapping_add(1);
        if *generation == 0 {
            memo_gen.iter_mut().for_each(|g| *g = 0);
            *generation = 1;
        }
        // The owner-independent part of a rule set, once per message.
        let mut indep = |id: u32| {
            let i = id as usize;
            if memo_gen[i] != *generation {
                memo_gen[i] = *generation;
                memo[i] = self
                    .set(id)
                    .indep
                    .iter()
                    .all(|&r| self.rule(r).holds(&v, OWNER));
            }
            memo[i]
        };
        for (set, filters) in base.residual.iter().chain(&top.residual) {
            if indep(*set) {
                cands.extend_from_slice(filters);
            }
        }
        let has_kind = base.has_kind | top.has_kind;
        if *topics_epoch != self.epoch || topics.len() > 8192 {
            topics.clear();
            *topics_epoch = self.epoch;
        }
        let topic_keys = match topics.get(message.topic.as_str()) {
            Some(keys) => keys,
            None => topics
                .entry(message.topic.as_str().into())
                .or_insert_with(|| index::topic_keys(&message.topic, has_kind, &lookup)),
        };
        index::message_keys(&v, has_kind, topic_keys, |k| {
            cands.extend_from_slice(base.postings(k));
            if !top.filters.is_empty() {
                cands.extend_from_slice(top.postings(k));
            }
        });
        for layer in [base, top] {
            for ri in &layer.regex_index {
                let mut look = |k: u64| {
                    cands.extend_from_slice(base.postings(k));
                    cands.extend_from_slice(top.postings(k));
                };
                ri.for_message(message, regex_hits, &mut look);
            }
        }
        cands.sort_unstable();
        cands.dedup();
        let check_dead = !self.dead.is_empty();
        for &id in cands.iter() {
            let (_, rec) = self.filter(id);
            if check_dead && self.dead.contains(&rec.ctx) {
                continue;
            }
            if !indep(rec.set) {
                continue;
            }
            let rel = &self.set(rec.set).rel;
            let ok = rel.is_empty() || {
                let owner = self.ctx(rec.ctx).user;
                rel.iter().all(|&r| self.rule(r).holds(&v, owner))
            };
            if ok {
                hits.push(id);
            }
        }
        let mut i = 0;
        while i < hits.len() {
            let ctx = self.filter(hits[i]).1.ctx;
            let mut j = i + 1;
            while j < hits.len() && self.filter(hits[j]).1.ctx == ctx {
                j += 1;
            }
            f(Match {
                matcher: self,
                ctx,
                filters: &hits[i..j],
            });
            i = j;
        }
    }
}

fn or_owner(users: &[String], owner: &str) -> Vec<String> {
    if users.is_empty() {
        vec![owner.to_owned()]
    } else {
        users.to_vec()
    }
}

fn non_empty<T>(arg: &str, v: &[T]) -> Result<(), String> {
    if v.is_empty() {
        Err(format!("{arg}: must not be empty"))
    } else {
        Ok(())
    }
}

fn regex(arg: &str, re: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("{arg}: {e}"))
}

fn artifact_type(arg: &str, kind: &str) -> Result<(), String> {
    if matches!(kind, "rpms" | "containers" | "modules" | "flatpaks") {
        Ok(())
    } else {
        Err(format!(
            "{arg}: {kind:?} is not one of rpms, containers, modules, flatpaks"
        ))
    }
}

pub(crate) fn compile(owner: &str, kind: &RuleKind) -> Result<Test, String> {
    Ok(match kind {
        RuleKind::Topic { glob } => Test::Topic(
            fnmatch(glob).map_err(|e| format!("glob: {e}"))?,
            Some(glob.clone()),
        ),
        RuleKind::TopicRegex { regex: re } => Test::TopicRegex(regex("regex", re)?),
        RuleKind::Application { names } => {
            non_empty("names", names)?;
            Test::Application(names.iter().map(|n| n.to_lowercase()).collect())
        }
        RuleKind::Severity { levels } => {
            non_empty("levels", levels)?;
            let mut out = Vec::new();
            for l in levels {
                out.push(match l.to_ascii_lowercase().as_str() {
                    "debug" => Severity::Debug,
                    "info" => Severity::Info,
                    "warning" => Severity::Warning,
                    "error" => Severity::Error,
                    _ => {
                        return Err(format!(
                            "levels: {l:?} is not one of debug, info, warning, error"
                        ));
                    }
                });
            }
            Test::Severity(out)
        }
        RuleKind::User { usernames } => Test::User(or_owner(usernames, owner)),
        RuleKind::Agent { usernames } => Test::Agent(or_owner(usernames, owner)),
        RuleKind::Artifact { artifacts } => {
            non_empty("artifacts", artifacts)?;
            for a in artifacts {
                artifact_type("artifacts.type", &a.kind)?;
                if a.name.is_empty() {
                    return Err("artifacts.name: must not be empty".into());
                }
            }
            Test::Artifact(
                artifacts
                    .iter()
                    .map(|a| (a.kind.clone(), a.name.clone()))
                    .collect(),
            )
        }
        RuleKind::ArtifactRegex {
            artifact_type: t,
            regex: re,
        } => {
            artifact_type("type", t)?;
            Test::ArtifactRegex(t.clone(), regex("regex", re)?)
        }
        RuleKind::OwnedBy { usernames } => Test::OwnedBy(or_owner(usernames, owner)),
        RuleKind::OwnedByGroup { groups } => {
            non_empty("groups", groups)?;
            Test::OwnedByGroup(
                groups
                    .iter()
                    .map(|g| g.strip_prefix('@').unwrap_or(g).to_owned())
                    .collect(),
            )
        }
        RuleKind::Field {
            pointer,
            equals,
            one_of,
            regex: re,
        } => {
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err(format!(
                    "pointer: {pointer:?} is not a JSON pointer (it starts with '/')"
                ));
            }
            let test = match (equals, one_of, re) {
                (Some(v), None, None) => FieldTest::Equals(v.clone()),
                (None, Some(vs), None) => {
                    non_empty("one_of", vs)?;
                    FieldTest::OneOf(vs.clone())
                }
                (None, None, Some(re)) => FieldTest::Regex(regex("regex", re)?),
                _ => return Err("equals, one_of, regex: give exactly one of them".into()),
            };
            Test::Field(pointer.clone(), test)
        }
        RuleKind::BodyRegex { regex: re } => Test::BodyRegex(regex("regex", re)?),
    })
}

/// Python's fnmatch: `*` any run (dots included), `?` one character, `[...]` a class.
fn fnmatch(glob: &str) -> Result<regex::Regex, regex::Error> {
    let mut re = String::from("(?s)^");
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => match chars[i + 1..]
                .iter()
                .position(|&c| c == ']')
                .map(|p| p + i + 1)
            {
                Some(end) if end > i + 1 => {
                    let mut class: String = chars[i + 1..end].iter().collect();
                    if let Some(rest) = class.strip_prefix('!') {
                        class = format!("^{rest}");
                    }
                    re.push('[');
                    re.push_str(&class.replace('\\', "\\\\").replace('[', "\\["));
                    re.push(']');
                    i = end;
                }
                _ => re.push_str("\\["),
            },
            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
        i += 1;
    }
    re.push('$');
    regex::Regex::new(&re)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefs::Preferences;
    use serde_json::json;

    fn msg(raw: serde_json::Value) -> Message {
        fmn_messages::Catalog::builtin().normalize(&raw).unwrap()
    }

    fn build_msg(owner: &str, name: &str) -> Message {
        msg(json!({
            "topic": "org.fedoraproject.prod.buildsys.build.state.change", "msg_id": "m",
            "msg": {"owner": owner, "name": name, "version": "1", "release": "1", "build_id": 7},
        }))
    }

    fn prefs(filters: serde_json::Value) -> Preferences {
        serde_json::from_value(json!({"user": "alice", "contexts": {"email": {
            "addresses": [{"address": "a@x.org", "confirmed": true},
                          {"address": "b@x.org", "confirmed": false}],
            "filters": filters}}}))
        .unwrap()
    }

    fn hits(filters: serde_json::Value, m: &Message) -> Vec<Vec<String>> {
        Matcher::build([prefs(filters)])
            .unwrap()
            .matches(m)
            .into_iter()
            .map(|n| n.filters.into_iter().map(|f| f.id).collect())
            .collect()
    }

    #[test]
    fn table_of_rules() {
        let kernel_by_bob = build_msg("bob", "kernel");
        let kernel_by_alice = build_msg("alice", "kernel");
        let cases = [
            (
                json!([{"id": "t", "name": "t", "rules": [{"kind": "topic", "glob": "*.buildsys.*"}]}]),
                &kernel_by_bob,
                1,
            ),
            (
                json!([{"id": "t", "name": "t", "rules": [{"kind": "topic", "glob": "*.bodhi.*"}]}]),
                &kernel_by_bob,
                0,
            ),
            (
                json!([{"id": "u", "name": "u", "rules": [{"kind": "user"}]}]),
                &kernel_by_alice,
                1,
            ),
            (
                json!([{"id": "u", "name": "u", "rules": [{"kind": "user"}]}]),
                &kernel_by_bob,
                0,
            ),
            (
                json!([{"id": "u", "name": "u", "rules": [{"kind": "user", "usernames": ["bob"]}]}]),
                &kernel_by_bob,
                1,
            ),
            (
                json!([{"id": "a", "name": "a", "rules": [
                {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]},
                {"kind": "agent", "negate": true}]}]),
                &kernel_by_alice,
                0,
            ),
            (
                json!([{"id": "a", "name": "a", "rules": [
                {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]},
                {"kind": "agent", "negate": true}]}]),
                &kernel_by_bob,
                1,
            ),
            (
                json!([{"id": "e", "name": "no rules", "rules": []}]),
                &kernel_by_bob,
                0,
            ),
            (
                json!([{"id": "i", "name": "inactive", "active": false, "rules": [{"kind": "topic", "glob": "*"}]}]),
                &kernel_by_bob,
                0,
            ),
            (
                json!([{"id": "p", "name": "app", "rules": [{"kind": "application", "names": ["BuildSys"]}]}]),
                &kernel_by_bob,
                1,
            ),
        ];
        for (i, (filters, m, expected)) in cases.into_iter().enumerate() {
            assert_eq!(hits(filters, m).len(), expected, "case {i}");
        }
    }

    fn one(rule: serde_json::Value) -> serde_json::Value {
        json!([{"id": "f", "name": "f", "rules": [rule]}])
    }

    #[test]
    fn table_of_every_rule_kind() {
        let m = build_msg("bob", "kernel");
        let cases = [
            (
                json!({"kind": "topic_regex", "regex": r"buildsys\.build\."}),
                true,
            ),
            (json!({"kind": "topic_regex", "regex": "^buildsys"}), false),
            (
                json!({"kind": "severity", "levels": ["info", "error"]}),
                true,
            ),
            (json!({"kind": "severity", "levels": ["debug"]}), false),
            (
                json!({"kind": "severity", "levels": ["debug"], "negate": true}),
                true,
            ),
            (json!({"kind": "agent", "usernames": ["bob"]}), true),
            (json!({"kind": "agent"}), false),
            (
                json!({"kind": "artifact_regex", "type": "rpms", "regex": "^kern"}),
                true,
            ),
            (
                json!({"kind": "artifact_regex", "type": "modules", "regex": "kern"}),
                false,
            ),
            (
                json!({"kind": "field", "pointer": "/name", "equals": "kernel"}),
                true,
            ),
            (
                json!({"kind": "field", "pointer": "/name", "equals": "glibc"}),
                false,
            ),
            (
                json!({"kind": "field", "pointer": "/build_id", "one_of": [6, 7]}),
                true,
            ),
            (
                json!({"kind": "field", "pointer": "/build_id", "regex": "^7$"}),
                true,
            ),
            (
                json!({"kind": "field", "pointer": "/missing", "one_of": [null]}),
                false,
            ),
            (
                json!({"kind": "body_regex", "regex": r#""owner":"bob""#}),
                true,
            ),
            (json!({"kind": "body_regex", "regex": "carol"}), false),
            (json!({"kind": "owned_by", "usernames": ["bob"]}), false),
        ];
        for (i, (rule, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                hits(one(rule.clone()), &m).len(),
                usize::from(expected),
                "case {i}: {rule}"
            );
        }
    }

    #[test]
    fn ownership_rules_read_the_ownership_data() {
        let m = build_msg("bob", "kernel");
        let ownership = Arc::new(
            Ownership::from_json(r#"{"rpms": {"kernel": ["alice", "@kernel-sig"]}}"#).unwrap(),
        );
        let cases = [
            (json!({"kind": "owned_by"}), true),
            (json!({"kind": "owned_by", "usernames": ["bob"]}), false),
            (
                json!({"kind": "owned_by_group", "groups": ["kernel-sig"]}),
                true,
            ),
            (
                json!({"kind": "owned_by_group", "groups": ["@kernel-sig"]}),
                true,
            ),
            (
                json!({"kind": "owned_by_group", "groups": ["python-sig"]}),
                false,
            ),
        ];
        for (i, (rule, expected)) in cases.into_iter().enumerate() {
            let matcher = Matcher::build_with([prefs(one(rule))], ownership.clone()).unwrap();
            assert_eq!(matcher.matches(&m).len(), usize::from(expected), "case {i}");
        }
    }

    #[test]
    fn validation_names_filter_rule_and_argument() {
        let cases = [
            (
                json!({"kind": "topic_regex", "regex": "("}),
                "topic_regex: regex:",
            ),
            (
                json!({"kind": "severity", "levels": ["loud"]}),
                "severity: levels: \"loud\"",
            ),
            (
                json!({"kind": "severity", "levels": []}),
                "severity: levels: must not be empty",
            ),
            (
                json!({"kind": "application", "names": []}),
                "application: names:",
            ),
            (
                json!({"kind": "artifact_regex", "type": "debs", "regex": "x"}),
                "artifact_regex: type:",
            ),
            (
                json!({"kind": "owned_by_group", "groups": []}),
                "owned_by_group: groups:",
            ),
            (
                json!({"kind": "field", "pointer": "name", "equals": 1}),
                "field: pointer:",
            ),
            (
                json!({"kind": "field", "pointer": "/a"}),
                "field: equals, one_of, regex",
            ),
            (
                json!({"kind": "field", "pointer": "/a", "equals": 1, "regex": "x"}),
                "field: equals, one_of, regex",
            ),
            (
                json!({"kind": "body_regex", "regex": "[a"}),
                "body_regex: regex:",
            ),
        ];
        for (rule, want) in cases {
            let err = Matcher::build([prefs(one(rule.clone()))]).unwrap_err();
            assert_eq!((err.filter.as_str(), err.rule), ("f", 1), "{rule}");
            assert!(err.to_string().contains(want), "{rule}: {err}");
        }
        let err = Matcher::build([prefs(
            json!([{"id": "g", "name": "g", "addresses": ["z@x.org"],
            "rules": [{"kind": "topic", "glob": "*"}]}]),
        )])
        .unwrap_err();
        assert_eq!((err.filter.as_str(), err.rule), ("g", 0));
        assert!(err.problem.contains("addresses: \"z@x.org\""), "{err}");
    }

    #[test]
    fn filters_choose_their_addresses() {
        let m = build_msg("bob", "kernel");
        let p: Preferences = serde_json::from_value(json!({"user": "alice", "contexts": {"email": {
            "addresses": [{"address": "a@x.org", "confirmed": true},
                          {"address": "b@x.org", "confirmed": true},
                          {"address": "c@x.org", "confirmed": false}],
            "filters": [
                {"id": "f1", "name": "f1", "addresses": ["b@x.org"], "rules": [{"kind": "topic", "glob": "*"}]},
                {"id": "f2", "name": "f2", "addresses": ["c@x.org"], "rules": [{"kind": "topic", "glob": "*"}]},
                {"id": "f3", "name": "f3", "addresses": ["a@x.org"], "rules": [{"kind": "topic", "glob": "x"}]}]}}}))
        .unwrap();
        let got = Matcher::build([p]).unwrap().matches(&m);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].addresses, ["b@x.org"]);
        assert_eq!(
            got[0]
                .filters
                .iter()
                .map(|f| f.id.as_str())
                .collect::<Vec<_>>(),
            ["f1"]
        );
    }

    #[test]
    fn a_feed_context_needs_no_address_but_others_do() {
        let m = build_msg("bob", "kernel");
        let any = json!([{"id": "f", "name": "f", "rules": [{"kind": "topic", "glob": "*"}]}]);
        let p: Preferences = serde_json::from_value(json!({"user": "alice", "contexts": {
            "feed": {"filters": any}, "irc": {"filters": any}}}))
        .unwrap();
        let got = Matcher::build([p]).unwrap().matches(&m);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].context, ContextKind::Feed);
        assert_eq!(got[0].addresses, [crate::OWN_FEED]);
    }

    #[test]
    fn one_notification_per_context_naming_every_filter() {
        let m = build_msg("bob", "kernel");
        let got = hits(
            json!([
                {"id": "f1", "name": "all builds", "rules": [{"kind": "topic", "glob": "*build*"}]},
                {"id": "f2", "name": "nothing", "rules": [{"kind": "topic", "glob": "x"}]},
                {"id": "f3", "name": "kernel", "rules": [{"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]}]},
            ]),
            &m,
        );
        assert_eq!(got, vec![vec!["f1".to_owned(), "f3".to_owned()]]);
    }

    #[test]
    fn only_confirmed_addresses() {
        let m = build_msg("bob", "kernel");
        let matcher = Matcher::build([prefs(
            json!([{"id": "f", "name": "f", "rules": [{"kind": "topic", "glob": "*"}]}]),
        )])
        .unwrap();
        assert_eq!(matcher.matches(&m)[0].addresses, ["a@x.org"]);
    }

    #[test]
    fn disabled_addresses_receive_nothing() {
        let m = build_msg("bob", "kernel");
        let p: Preferences = serde_json::from_value(json!({"user": "alice", "contexts": {"webhook": {
            "addresses": [{"address": "https://a.example/hook", "confirmed": true, "disabled": "10 failures"},
                          {"address": "https://b.example/hook", "confirmed": true, "secret": "s"}],
            "filters": [{"id": "f", "name": "f", "rules": [{"kind": "topic", "glob": "*"}]}]}}}))
        .unwrap();
        let got = Matcher::build([p.clone()]).unwrap().matches(&m);
        assert_eq!(got[0].addresses, ["https://b.example/hook"]);
        let mut only_disabled = p;
        if let Some(ctx) = only_disabled.contexts.values_mut().next() {
            ctx.addresses.truncate(1);
        }
        assert!(
            Matcher::build([only_disabled])
                .unwrap()
                .matches(&m)
                .is_empty()
        );
    }

    #[test]
    fn lenient_build_leaves_out_only_the_broken_user() {
        let good =
            prefs(json!([{"id": "f", "name": "f", "rules": [{"kind": "topic", "glob": "*"}]}]));
        let mut broken = good.clone();
        broken.user = "mallory".into();
        if let Some(ctx) = broken.contexts.values_mut().next() {
            ctx.filters[0].rules = vec![
                serde_json::from_value(
                    json!({"kind": "artifact", "artifacts": [{"type": "debs", "name": "x"}]}),
                )
                .unwrap(),
            ];
        }
        assert!(Matcher::build([good.clone(), broken.clone()]).is_err());
        let (matcher, skipped) = Matcher::build_lenient([good, broken], Arc::default());
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].user, "mallory");
        let users: Vec<_> = matcher
            .matches(&build_msg("bob", "kernel"))
            .into_iter()
            .map(|n| n.user)
            .collect();
        assert_eq!(users, ["alice"]);
    }

    #[test]
    fn bad_rules_are_named() {
        let err = Matcher::build([prefs(json!([{"id": "f", "name": "f", "rules": [
            {"kind": "topic", "glob": "*"},
            {"kind": "artifact", "artifacts": [{"type": "debs", "name": "x"}]}]}]))])
        .unwrap_err();
        assert_eq!((err.filter.as_str(), err.rule), ("f", 2));
        assert!(err.problem.contains("artifacts.type"), "{err}");
    }

    #[test]
    fn fnmatch_semantics() {
        let re = fnmatch("org.*.bodhi.update.*").unwrap();
        assert!(re.is_match("org.fedoraproject.prod.bodhi.update.comment"));
        assert!(!re.is_match("org.fedoraproject.prod.bodhi.buildroot"));
        assert!(fnmatch("a.[!b]c").unwrap().is_match("a.xc"));
        assert!(!fnmatch("a.[!b]c").unwrap().is_match("a.bc"));
        assert!(fnmatch("a[").unwrap().is_match("a["));
    }

    #[test]
    fn matcher_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Matcher>();
    }
}
