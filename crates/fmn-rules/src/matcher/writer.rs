//! The index writer: compiles one user's preferences into rules, rule sets, contexts and
//! filters, adding to the top tables while reading the base ones for what is already there.

use super::BuildError;
use crate::compile::{Test, compile};
use crate::index::{
    self, ALL_ADDRESSES, Ctx, FastRule, FastTest, FilterRec, RuleKey, RuleSet, Tables, TopicTest,
    artifact_type_index, glob_key, len32,
};
use crate::intern::{OWNER, Sym, intern_layered};
use crate::prefs::{ContextKind, Preferences, Rule, RuleKind};

/// A context compiled but not yet added.
pub(super) struct StagedCtx {
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
pub(super) struct Writer<'a> {
    pub(super) base: &'a Tables,
    pub(super) top: &'a mut Tables,
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
    pub(super) fn stage(
        &mut self,
        prefs: &Preferences,
    ) -> Result<(Sym, Vec<StagedCtx>), BuildError> {
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
    pub(super) fn commit(&mut self, owner: Sym, staged: Vec<StagedCtx>) -> (Vec<u32>, usize) {
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
