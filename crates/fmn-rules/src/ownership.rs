//! Who maintains which artifact: the data `owned_by` and `owned_by_group` rules read.

use std::collections::{BTreeMap, HashMap};

/// The maintainers of one artifact: users and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// Maintainers' usernames.
    pub users: Vec<String>,
    /// Maintaining groups (without the `@`).
    pub groups: Vec<String>,
}

/// Maintainership of every artifact, by artifact type and name.
///
/// Loaded from dist-git's `extras/pagure_owner_alias.json` shape: namespace → package → list
/// of maintainers, groups written `@group`. The namespace `container` is dist-git's name for
/// the `containers` artifact type. Matching never makes a remote call: this table is synced
/// on a schedule and handed to the matcher whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Type → name → maintainers (nested so a lookup borrows `&str`s, allocating nothing).
    by_artifact: HashMap<String, HashMap<String, Owners>>,
}

/// Ownership data that does not have the expected shape.
#[derive(Debug, thiserror::Error)]
#[error("ownership data: {0}")]
pub struct OwnershipError(String);

impl Ownership {
    /// Parses the `pagure_owner_alias.json` shape.
    pub fn from_json(text: &str) -> Result<Ownership, OwnershipError> {
        let raw: BTreeMap<String, BTreeMap<String, Vec<String>>> =
            serde_json::from_str(text).map_err(|e| OwnershipError(e.to_string()))?;
        let mut ownership = Ownership::default();
        for (namespace, packages) in raw {
            let kind = match namespace.as_str() {
                "container" => "containers".to_owned(),
                _ => namespace,
            };
            for (name, maintainers) in packages {
                for m in maintainers {
                    ownership.add(&kind, &name, &m);
                }
            }
        }
        Ok(ownership)
    }

    /// Records `maintainer` (a username, or `@group`) for an artifact.
    pub fn add(&mut self, kind: &str, name: &str, maintainer: &str) {
        let owners = self
            .by_artifact
            .entry(kind.to_owned())
            .or_default()
            .entry(name.to_owned())
            .or_default();
        match maintainer.strip_prefix('@') {
            Some(group) => owners.groups.push(group.to_owned()),
            None => owners.users.push(maintainer.to_owned()),
        }
    }

    /// The maintainers of an artifact, if any are known.
    pub fn owners(&self, kind: &str, name: &str) -> Option<&Owners> {
        self.by_artifact.get(kind)?.get(name)
    }

    /// Every artifact with known maintainers, as (type, name, maintainers).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Owners)> {
        self.by_artifact.iter().flat_map(|(kind, names)| {
            names
                .iter()
                .map(move |(name, owners)| (kind.as_str(), name.as_str(), owners))
        })
    }

    /// How many artifacts have known maintainers.
    pub fn len(&self) -> usize {
        self.by_artifact.values().map(HashMap::len).sum()
    }

    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.by_artifact.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pagure_owner_alias() {
        let o = Ownership::from_json(
            r#"{"rpms": {"kernel": ["alice", "@kernel-sig"]}, "container": {"httpd": ["bob"]}}"#,
        )
        .unwrap();
        let k = o.owners("rpms", "kernel").unwrap();
        assert_eq!(
            (k.users.as_slice(), k.groups.as_slice()),
            (&["alice".to_owned()][..], &["kernel-sig".to_owned()][..])
        );
        assert_eq!(o.owners("containers", "httpd").unwrap().users, ["bob"]);
        assert!(o.owners("rpms", "httpd").is_none());
        assert!(Ownership::from_json("[1]").is_err());
    }
}
