//! Importing FMN 3's rules (as its API serves them) into fmn [`Preferences`].
//!
//! An FMN 3 rule is one tracking rule plus generation rules, each with filters and
//! destinations. Each (rule, generation rule) becomes one fmn filter, in the context of each
//! destination's protocol, delivering to that generation rule's addresses only:
//!
//! | FMN 3 | fmn rule |
//! | --- | --- |
//! | `artifacts-owned` [users] | `owned_by` usernames |
//! | `artifacts-group-owned` [groups] | `owned_by_group` groups |
//! | `artifacts-followed` [{name, type}] | `artifact` artifacts |
//! | `related-events` | `user` (the owner) |
//! | `users-followed` [users] | `agent` usernames (they performed the action) |
//! | `applications` [names] | `application` names |
//! | `excluded_applications` [names] | negated `application` names |
//! | `severities` (default: info, warning, error) | `severity` levels |
//! | `my_actions: false` | negated `agent` (the owner) |
//! | `topic` glob | `topic` glob |
//!
//! A tracking rule that selects nothing (no users, groups or artifacts) imports as an
//! inactive filter, as it never matches in FMN 3. Disabled rules import as inactive filters.
//! Destinations are imported as confirmed addresses: FMN 3 only offers confirmed ones.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::prefs::{Address, ArtifactRef, ContextKind, Filter, Preferences, Rule, RuleKind};

/// An FMN 3 rule, as `GET /api/v1/users/{name}/rules` serves it.
#[derive(Debug, Clone, Deserialize)]
pub struct Fmn3Rule {
    /// The rule id.
    pub id: serde_json::Value,
    /// The rule's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Disabled rules notify nothing.
    #[serde(default)]
    pub disabled: bool,
    /// The owner.
    pub user: Fmn3User,
    /// What to track.
    pub tracking_rule: Fmn3TrackingRule,
    /// Filters and destinations.
    #[serde(default)]
    pub generation_rules: Vec<Fmn3GenerationRule>,
}

/// The owner of an FMN 3 rule.
#[derive(Debug, Clone, Deserialize)]
pub struct Fmn3User {
    /// The account name.
    pub name: String,
}

/// An FMN 3 tracking rule: its name and parameters.
#[derive(Debug, Clone, Deserialize)]
pub struct Fmn3TrackingRule {
    /// `artifacts-owned`, `artifacts-group-owned`, `artifacts-followed`, `related-events`,
    /// `users-followed`.
    pub name: String,
    /// Usernames, group names, or `{name, type}` artifacts, depending on the name.
    #[serde(default)]
    pub params: serde_json::Value,
}

/// An FMN 3 generation rule.
#[derive(Debug, Clone, Deserialize)]
pub struct Fmn3GenerationRule {
    /// The id, when served.
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    /// Where to send.
    #[serde(default)]
    pub destinations: Vec<Fmn3Destination>,
    /// The filters.
    #[serde(default)]
    pub filters: Fmn3Filters,
}

/// A destination.
#[derive(Debug, Clone, Deserialize)]
pub struct Fmn3Destination {
    /// `email`, `irc` or `matrix`.
    pub protocol: String,
    /// The address.
    pub address: String,
}

/// The filters of a generation rule.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Fmn3Filters {
    /// Only these applications (empty or absent: all).
    #[serde(default)]
    pub applications: Option<Vec<String>>,
    /// Not these applications.
    #[serde(default)]
    pub excluded_applications: Option<Vec<String>>,
    /// Only these severities (absent or empty: info, warning, error).
    #[serde(default)]
    pub severities: Option<Vec<String>>,
    /// Whether to include the owner's own actions (absent: yes).
    #[serde(default)]
    pub my_actions: Option<bool>,
    /// An fnmatch glob over the topic.
    #[serde(default)]
    pub topic: Option<String>,
}

/// An FMN 3 rule that cannot be imported.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("FMN 3 rule {rule} of {user}: {problem}")]
pub struct ImportError {
    /// The rule id.
    pub rule: String,
    /// The owner.
    pub user: String,
    /// What is wrong.
    pub problem: String,
}

/// Parses FMN 3's API JSON: one rule or a list of rules.
pub fn parse(text: &str) -> Result<Vec<Fmn3Rule>, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Fmn3Rule>),
        One(Box<Fmn3Rule>),
    }
    Ok(match serde_json::from_str(text)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(r) => vec![*r],
    })
}

fn id_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn strings(v: &serde_json::Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::String(s) => Ok(vec![s.clone()]),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("params: expected a list of {what}, found {i}"))
            })
            .collect(),
        other => Err(format!("params: expected a list of {what}, found {other}")),
    }
}

fn rule(kind: RuleKind) -> Rule {
    Rule {
        negate: false,
        kind,
    }
}

fn negated(kind: RuleKind) -> Rule {
    Rule { negate: true, kind }
}

/// The tracking rule as fmn rules; `None` when it can never match.
fn tracking(owner: &str, t: &Fmn3TrackingRule) -> Result<Option<Rule>, String> {
    Ok(match t.name.as_str() {
        "artifacts-owned" => {
            let usernames = strings(&t.params, "usernames")?;
            (!usernames.is_empty()).then(|| rule(RuleKind::OwnedBy { usernames }))
        }
        "artifacts-group-owned" => {
            let groups = strings(&t.params, "groups")?;
            (!groups.is_empty()).then(|| rule(RuleKind::OwnedByGroup { groups }))
        }
        "artifacts-followed" => {
            let artifacts: Vec<ArtifactRef> = match &t.params {
                serde_json::Value::Null => Vec::new(),
                p => serde_json::from_value(p.clone())
                    .map_err(|e| format!("params: expected [{{name, type}}]: {e}"))?,
            };
            (!artifacts.is_empty()).then(|| rule(RuleKind::Artifact { artifacts }))
        }
        "related-events" => Some(rule(RuleKind::User {
            usernames: vec![owner.to_owned()],
        })),
        "users-followed" => {
            let usernames = strings(&t.params, "usernames")?;
            (!usernames.is_empty()).then(|| rule(RuleKind::Agent { usernames }))
        }
        other => return Err(format!("unknown tracking rule {other:?}")),
    })
}

fn generation_filters(owner: &str, f: &Fmn3Filters) -> Vec<Rule> {
    let mut rules = Vec::new();
    if let Some(names) = f.applications.as_ref().filter(|n| !n.is_empty()) {
        rules.push(rule(RuleKind::Application {
            names: names.clone(),
        }));
    }
    if let Some(names) = f.excluded_applications.as_ref().filter(|n| !n.is_empty()) {
        rules.push(negated(RuleKind::Application {
            names: names.clone(),
        }));
    }
    let levels = match f.severities.as_ref().filter(|s| !s.is_empty()) {
        Some(s) => s.clone(),
        None => vec!["info".into(), "warning".into(), "error".into()],
    };
    rules.push(rule(RuleKind::Severity { levels }));
    if f.my_actions == Some(false) {
        rules.push(negated(RuleKind::Agent {
            usernames: vec![owner.to_owned()],
        }));
    }
    if let Some(glob) = f.topic.as_ref().filter(|t| !t.is_empty()) {
        rules.push(rule(RuleKind::Topic { glob: glob.clone() }));
    }
    rules
}

fn context_kind(protocol: &str) -> Option<ContextKind> {
    match protocol {
        "email" => Some(ContextKind::Email),
        "irc" => Some(ContextKind::Irc),
        "matrix" => Some(ContextKind::Matrix),
        _ => None,
    }
}

/// Converts FMN 3 rules into one [`Preferences`] per user (sorted by user).
pub fn import(rules: &[Fmn3Rule]) -> Result<Vec<Preferences>, ImportError> {
    let mut users: BTreeMap<String, Preferences> = BTreeMap::new();
    for r in rules {
        let owner = &r.user.name;
        let err = |problem: String| ImportError {
            rule: id_text(&r.id),
            user: owner.clone(),
            problem,
        };
        let track = tracking(owner, &r.tracking_rule).map_err(err)?;
        let prefs = users.entry(owner.clone()).or_insert_with(|| Preferences {
            user: owner.clone(),
            contexts: BTreeMap::new(),
        });
        for (n, g) in r.generation_rules.iter().enumerate() {
            let mut filter_rules: Vec<Rule> = track.iter().cloned().collect();
            filter_rules.extend(generation_filters(owner, &g.filters));
            let gid = g.id.as_ref().map_or_else(|| (n + 1).to_string(), id_text);
            let mut by_kind: BTreeMap<ContextKind, Vec<String>> = BTreeMap::new();
            for d in &g.destinations {
                let kind = context_kind(&d.protocol).ok_or_else(|| {
                    err(format!(
                        "destinations.protocol: {:?} is not one of email, irc, matrix",
                        d.protocol
                    ))
                })?;
                let list = by_kind.entry(kind).or_default();
                if !list.contains(&d.address) {
                    list.push(d.address.clone());
                }
            }
            for (kind, addresses) in by_kind {
                let context = prefs.contexts.entry(kind).or_default();
                for a in &addresses {
                    if !context.addresses.iter().any(|c| &c.address == a) {
                        context.addresses.push(Address {
                            address: a.clone(),
                            confirmed: true,
                            disabled: None,
                            secret: None,
                        });
                    }
                }
                context.filters.push(Filter {
                    id: format!("fmn3-{}-{gid}", id_text(&r.id)),
                    name: r
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("FMN 3 rule {}", id_text(&r.id))),
                    active: !r.disabled && track.is_some(),
                    oneshot: false,
                    rules: filter_rules.clone(),
                    addresses: Some(addresses),
                });
            }
        }
    }
    Ok(users.into_values().collect())
}

#[cfg(test)]
mod tests;
