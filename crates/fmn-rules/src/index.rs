//! The candidate index: from what a message carries to the filters that could match it.
//!
//! Each filter is filed under the keys of one selective positive rule (an artifact, a
//! maintainer, a user, an agent, an application, or a topic glob's literal prefix cut at a
//! dot). Filters without one (only negations, `*`-led globs, regexes, severity, fields) go
//! into one residual bucket evaluated for every message. Candidates are then evaluated fully,
//! so the index only has to be a superset of what matches.

use std::collections::HashMap;

use fmn_messages::Severity;

use crate::matcher::{Subject, Test};

/// What a filter is filed under and a message is looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Artifact(String, String),
    Owner(String),
    Group(String),
    User(String),
    Agent(String),
    App(String),
    /// An application at one severity (for filters restricting both).
    AppSeverity(String, Severity),
    /// A topic prefix ending in `.`, or a whole topic.
    Topic(String),
}

/// Filters (by global position) under each key, plus the residual bucket.
#[derive(Debug, Default)]
pub(crate) struct Index {
    postings: HashMap<Key, Vec<u32>>,
    residual: Vec<u32>,
}

fn topic_key(glob: &str) -> Option<String> {
    let literal = glob.find(['*', '?', '[']).map_or(glob, |i| &glob[..i]);
    if literal.len() == glob.len() {
        return Some(glob.to_owned());
    }
    literal.rfind('.').map(|i| literal[..=i].to_owned())
}

/// The keys of the most selective positive rule of a filter, if it has one.
pub(crate) fn keys<'a>(rules: impl Iterator<Item = &'a (bool, Test)> + Clone) -> Option<Vec<Key>> {
    let mut best: Option<(u8, Vec<Key>)> = None;
    let severities = rules.clone().find_map(|(negate, t)| match t {
        Test::Severity(levels) if !negate => Some(levels),
        _ => None,
    });
    for (negate, test) in rules {
        if *negate {
            continue;
        }
        let found = match test {
            Test::Artifact(refs) => Some((
                0,
                refs.iter()
                    .map(|(k, n)| Key::Artifact(k.clone(), n.clone()))
                    .collect(),
            )),
            Test::OwnedBy(users) => Some((1, users.iter().cloned().map(Key::Owner).collect())),
            Test::OwnedByGroup(groups) => {
                Some((1, groups.iter().cloned().map(Key::Group).collect()))
            }
            Test::User(users) => Some((2, users.iter().cloned().map(Key::User).collect())),
            Test::Agent(users) => Some((2, users.iter().cloned().map(Key::Agent).collect())),
            Test::Application(names) => Some((
                3,
                match severities {
                    // Only candidates for messages at one of their severities.
                    Some(levels) => names
                        .iter()
                        .flat_map(|n| levels.iter().map(|l| Key::AppSeverity(n.clone(), *l)))
                        .collect(),
                    None => names.iter().cloned().map(Key::App).collect(),
                },
            )),
            Test::Topic(_, Some(glob)) => topic_key(glob).map(|k| (4, vec![Key::Topic(k)])),
            _ => None,
        };
        if let Some((rank, keys)) = found
            && best.as_ref().is_none_or(|(r, _)| rank < *r)
        {
            best = Some((rank, keys));
        }
    }
    best.map(|(_, k)| k)
}

impl Index {
    pub(crate) fn add(&mut self, filter: u32, keys: Option<Vec<Key>>) {
        match keys {
            None => self.residual.push(filter),
            Some(keys) => {
                for k in keys {
                    let list = self.postings.entry(k).or_default();
                    if list.last() != Some(&filter) {
                        list.push(filter);
                    }
                }
            }
        }
    }

    /// The candidates for a message: sorted, without duplicates.
    pub(crate) fn candidates(&self, s: &Subject<'_>) -> Vec<u32> {
        let m = s.m;
        let mut out = self.residual.clone();
        let mut look = |k: Key| {
            if let Some(list) = self.postings.get(&k) {
                out.extend_from_slice(list);
            }
        };
        for (kind, name) in s.artifacts() {
            look(Key::Artifact(kind.to_owned(), name.to_owned()));
            if let Some(o) = s.ownership.owners(kind, name) {
                o.users.iter().for_each(|u| look(Key::Owner(u.clone())));
                o.groups.iter().for_each(|g| look(Key::Group(g.clone())));
            }
        }
        m.usernames.iter().for_each(|u| look(Key::User(u.clone())));
        if let Some(a) = &m.agent {
            look(Key::Agent(a.clone()));
        }
        look(Key::App(m.app.to_lowercase()));
        look(Key::AppSeverity(m.app.to_lowercase(), m.severity));
        for (i, _) in m.topic.match_indices('.') {
            look(Key::Topic(m.topic[..=i].to_owned()));
        }
        look(Key::Topic(m.topic.clone()));
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_keys_cut_at_a_dot() {
        assert_eq!(
            topic_key("org.fp.prod.bodhi.*").as_deref(),
            Some("org.fp.prod.bodhi.")
        );
        assert_eq!(
            topic_key("org.fp.prod.bod*").as_deref(),
            Some("org.fp.prod.")
        );
        assert_eq!(topic_key("org.fp.x").as_deref(), Some("org.fp.x"));
        assert_eq!(topic_key("*.bodhi.*"), None);
        assert_eq!(topic_key("org*"), None);
    }
}
