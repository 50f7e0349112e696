//! A message as the index sees it, and the keys it is looked up by.

use std::cell::OnceCell;

use fmn_messages::Message;

use crate::intern::{FxMap, Sym};
use crate::ownership::Ownership;

use super::keys::{
    AGENT, APP, APP_SEV, ARTIFACT, GROUP, OWNED, SEV, TOPIC, TOPIC_SEG, USER, artifact_type_index,
    key, len32, severity_bit, with_severity,
};

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
    pub(crate) fn build(ownership: &Ownership, intern: &mut dyn FnMut(&str) -> Sym) -> OwnerIndex {
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
