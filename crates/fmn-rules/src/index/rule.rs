//! A rule compiled onto interned names, and the index keys a rule set is filed under.

use serde::{Deserialize, Serialize};

use crate::compile::FieldTest;
use crate::intern::{OWNER, Sym};

use super::keys::{
    AGENT, APP, APP_SEV, ARTIFACT, ARTIFACT_TYPES, GROUP, OWNED, REGEX_TOPIC, SEV, USER, bits, key,
    with_severity,
};
use super::view::View;

/// How a topic glob is tested.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum TopicTest {
    Exact(Box<str>),
    Prefix(Box<str>),
    Regex(#[serde(with = "crate::snapshot::regex_source")] regex::Regex),
}

/// One compiled rule, on interned names. User lists may hold [`OWNER`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum FastTest {
    Topic(TopicTest),
    App(Box<[Sym]>),
    /// A bit per severity.
    Sev(u8),
    User(Box<[Sym]>),
    Agent(Box<[Sym]>),
    Artifact(Box<[(u8, Sym)]>),
    ArtifactRegex(
        u8,
        #[serde(with = "crate::snapshot::regex_source")] regex::Regex,
    ),
    OwnedBy(Box<[Sym]>),
    Group(Box<[Sym]>),
    Field(Box<str>, FieldTest),
    Body(#[serde(with = "crate::snapshot::regex_source")] regex::Regex),
}

/// A rule: its test and whether it is negated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FastRule {
    pub(crate) negate: bool,
    pub(crate) test: FastTest,
    /// For topic globs: the index key (rank, key), when the glob has a usable literal part.
    pub(crate) topic_key: Option<(u8, u64)>,
}

/// What identifies a rule for deduplication: its arguments, interned, with the owner as
/// [`OWNER`] and lists sorted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// Picks a rule set's index keys: those of its most selective positive rule.
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
