//! The seeded, Fedora-like generator shared by the benchmarks: people, packages and their
//! maintainers with skewed popularity, and corpus messages with their people and packages
//! redrawn from the population.

#![allow(dead_code, reason = "each benchmark uses part of it")]

use std::collections::BTreeMap;

use fmn_messages::{Catalog, Message};
use fmn_rules::{
    Address, ArtifactRef, Context, ContextKind, ContextSettings, Filter, Ownership, Preferences,
    Rule, RuleKind,
};
use serde_json::{Value, json};

/// A seeded xorshift: reproducible runs without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Skewed towards 0: the density falls as 1/sqrt(i), so the most popular of 60,000
    /// packages gets about 0.4% of the draws and the top 1% about 10%.
    pub fn skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((u * u * n as f64) as usize).min(n.saturating_sub(1))
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

pub const APPS: [&str; 10] = [
    "bodhi",
    "koji",
    "pagure",
    "copr",
    "anitya",
    "discourse",
    "fas",
    "mdapi",
    "buildsys",
    "distgit",
];
pub const SEGMENTS: [&str; 6] = [
    "update",
    "build",
    "comment",
    "pull-request",
    "compose",
    "tag",
];

/// Users `u0…`, a quarter of them packagers (`u0…` are the busiest), packages `pkg0…` (the
/// lowest numbers are the most popular) and groups `grp0…`. Packages and groups grow with the
/// users (6 packages and one group per 10 and 100 users: 60,000 packages for 100,000 users),
/// so a message concerns about as many people's filters whatever the population size; only
/// the broad filters (a tenth of a percent) notify more people as the population grows.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    pub users: usize,
    pub packagers: usize,
    pub packages: usize,
    pub groups: usize,
}

impl Population {
    pub fn for_filters(filters: usize) -> Population {
        let users = (filters / 10).max(10);
        Population {
            users,
            packagers: (users / 4).max(1),
            packages: (users * 6 / 10).max(100),
            groups: (users / 100).max(10),
        }
    }

    pub fn user(&self, rng: &mut Rng) -> String {
        format!("u{}", rng.below(self.users))
    }
    pub fn packager(&self, rng: &mut Rng) -> String {
        format!("u{}", rng.skewed(self.packagers))
    }
    pub fn package(&self, rng: &mut Rng) -> String {
        format!("pkg{}", rng.skewed(self.packages))
    }
    pub fn group(&self, rng: &mut Rng) -> String {
        format!("grp{}", rng.skewed(self.groups))
    }

    /// Every package has 1–3 maintainers (busy packagers maintain thousands), a quarter
    /// also a group.
    pub fn ownership(&self, rng: &mut Rng) -> Ownership {
        let mut o = Ownership::default();
        for p in 0..self.packages {
            let name = format!("pkg{p}");
            for _ in 0..=rng.below(3) {
                o.add("rpms", &name, &self.packager(rng));
            }
            if rng.chance(25) {
                o.add("rpms", &name, &format!("@{}", self.group(rng)));
            }
        }
        o
    }

    /// One user's preferences: ten filters, eight in email and, for a fifth of the users,
    /// two in IRC.
    pub fn prefs(&self, u: usize, rng: &mut Rng) -> Preferences {
        let user = format!("u{u}");
        let filters: Vec<Filter> = (0..10).map(|f| self.filter(&user, f, rng)).collect();
        let mut contexts = BTreeMap::new();
        let irc = rng.chance(20);
        let (email, rest) = if irc {
            filters.split_at(8)
        } else {
            filters.split_at(10)
        };
        contexts.insert(
            ContextKind::Email,
            context(&format!("{user}@example.org"), email),
        );
        if irc {
            contexts.insert(ContextKind::Irc, context(&user, rest));
        }
        Preferences { user, contexts }
    }

    fn filter(&self, user: &str, f: usize, rng: &mut Rng) -> Filter {
        let not_mine = || neg(RuleKind::Agent { usernames: vec![] });
        let rules = match rng.below(1000) {
            // Packages followed, often without one's own actions.
            0..300 => {
                let artifacts = (0..=rng.below(3))
                    .map(|_| ArtifactRef {
                        kind: "rpms".into(),
                        name: self.package(rng),
                    })
                    .collect();
                let mut r = vec![pos(RuleKind::Artifact { artifacts })];
                if rng.chance(50) {
                    r.push(not_mine());
                }
                r
            }
            // The packager template: my packages, not my actions.
            300..500 => vec![pos(RuleKind::OwnedBy { usernames: vec![] }), not_mine()],
            // Mentions of me.
            500..600 => vec![pos(RuleKind::User { usernames: vec![] })],
            // A group's packages.
            600..660 => vec![
                pos(RuleKind::OwnedByGroup {
                    groups: vec![self.group(rng)],
                }),
                not_mine(),
            ],
            // Someone's actions.
            660..740 => vec![pos(RuleKind::Agent {
                usernames: vec![self.packager(rng)],
            })],
            // One application's events about me.
            740..820 => vec![
                pos(RuleKind::Topic {
                    glob: format!("org.fedoraproject.prod.{}.*", APPS[rng.below(APPS.len())]),
                }),
                pos(RuleKind::User { usernames: vec![] }),
            ],
            // A kind of event on my packages (a `*`-led glob).
            820..880 => vec![
                pos(RuleKind::Topic {
                    glob: format!("*.{}.*", SEGMENTS[rng.below(SEGMENTS.len())]),
                }),
                pos(RuleKind::OwnedBy { usernames: vec![] }),
            ],
            // Warnings and errors of an application, about me.
            880..930 => vec![
                pos(RuleKind::Application {
                    names: vec![APPS[rng.below(APPS.len())].to_uppercase()],
                }),
                pos(RuleKind::Severity {
                    levels: vec!["warning".into(), "error".into()],
                }),
                pos(RuleKind::User { usernames: vec![] }),
            ],
            // A body field on a followed package.
            930..970 => vec![
                pos(RuleKind::Artifact {
                    artifacts: vec![ArtifactRef {
                        kind: "rpms".into(),
                        name: self.package(rng),
                    }],
                }),
                pos(RuleKind::Field {
                    pointer: "/update/status".into(),
                    equals: None,
                    one_of: Some(vec!["stable".into(), "testing".into()]),
                    regex: None,
                }),
            ],
            // Packages by name pattern (no index key: a residual rule set).
            970..995 => vec![
                pos(RuleKind::ArtifactRegex {
                    artifact_type: "rpms".into(),
                    regex: format!("^pkg{}{}$", rng.below(10), rng.below(10)),
                }),
                not_mine(),
            ],
            // Broad: every error of an application, or every message of a topic family.
            _ => {
                if rng.chance(50) {
                    vec![
                        pos(RuleKind::Application {
                            names: vec![APPS[rng.below(APPS.len())].into()],
                        }),
                        pos(RuleKind::Severity {
                            levels: vec!["error".into()],
                        }),
                    ]
                } else {
                    vec![
                        pos(RuleKind::Topic {
                            glob: format!("*.{}.*", SEGMENTS[rng.below(SEGMENTS.len())]),
                        }),
                        pos(RuleKind::Severity {
                            levels: vec!["error".into()],
                        }),
                        not_mine(),
                    ]
                }
            }
        };
        Filter {
            id: format!("f{f}"),
            name: format!("{user}'s filter {f}"),
            active: rng.chance(95),
            oneshot: rng.chance(2),
            rules,
            addresses: None,
        }
    }
}

fn pos(kind: RuleKind) -> Rule {
    Rule {
        negate: false,
        kind,
    }
}

fn neg(kind: RuleKind) -> Rule {
    Rule { negate: true, kind }
}

fn context(address: &str, filters: &[Filter]) -> Context {
    Context {
        enabled: true,
        addresses: vec![Address {
            address: address.into(),
            confirmed: true,
            disabled: None,
            secret: None,
        }],
        filters: filters.to_vec(),
        settings: ContextSettings::default(),
    }
}

/// Raw corpus messages (the crate's FMN 3 fixture and fmn-messages' examples) that
/// normalise, without the reference data the examples carry.
pub fn corpus() -> Vec<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let files = [
        format!("{dir}/tests/fixtures/fmn3/messages.jsonl"),
        format!("{dir}/../fmn-messages/tests/fixtures/fedora-messaging-examples.jsonl"),
        format!("{dir}/../fmn-messages/tests/fixtures/fedmsg-examples.jsonl"),
    ];
    let catalog = Catalog::builtin();
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines() {
            let Ok(serde_json::Value::Object(mut raw)) = serde_json::from_str(line) else {
                continue;
            };
            for k in [
                "expected",
                "expected_ok",
                "computed",
                "time_dependent",
                "schema_validated",
                "schema_validation_note",
                "source",
                "i",
                "dist",
                "schema",
                "schema_topic",
                "queue",
            ] {
                raw.remove(k);
            }
            let raw = serde_json::Value::Object(raw);
            if catalog.normalize(&raw).is_ok() {
                out.push(raw.to_string());
            }
        }
    }
    out
}

/// `n` messages drawn from the corpus, each with its usernames (the agent a packager) and
/// packages replaced by ones drawn from the population, in the raw JSON itself; returns
/// the raw texts and their normalised forms.
pub fn stream(
    corpus: &[String],
    pop: &Population,
    n: usize,
    rng: &mut Rng,
) -> Vec<(String, Message)> {
    let catalog = Catalog::builtin();
    (0..n)
        .filter_map(|_| {
            let raw = &corpus[rng.below(corpus.len())];
            let m = catalog.normalize_bytes(raw.as_bytes()).ok()?;
            let mut text = raw.clone();
            let mut swap = |old: &str, new: &str, header: &str| {
                if old.len() >= 2 {
                    text = text
                        .replace(&format!("\"{old}\""), &format!("\"{new}\""))
                        .replace(&format!("_{header}_{old}\""), &format!("_{header}_{new}\""));
                    if header == "rpm" {
                        // NVRs (`"name-version-release"`), which the packages are read from in
                        // the body (bodhi's builds): the headers and the body must agree.
                        text = text.replace(&format!("\"{old}-"), &format!("\"{new}-"));
                    }
                }
            };
            if let Some(a) = &m.agent {
                swap(a, &pop.packager(rng), "user");
            }
            for u in m.usernames.iter().filter(|u| Some(*u) != m.agent.as_ref()) {
                swap(u, &pop.user(rng), "user");
            }
            // Longest first, so that `foo` does not rename the `foo-bar-1.0-1` of `foo-bar`.
            let mut rpms: Vec<&String> = m.artifacts.rpms.iter().collect();
            rpms.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in rpms {
                swap(p, &pop.package(rng), "rpm");
            }
            let redrawn = catalog.normalize_bytes(text.as_bytes()).ok()?;
            Some((text, redrawn))
        })
        .collect()
}

const SEVERITIES: [&[&str]; 3] = [
    &["warning", "error"],
    &["info", "warning", "error"],
    &["debug", "info", "warning", "error"],
];

/// An FMN 3 rule set (the JSON its API serves) for the population: every tracking rule kind,
/// applications (in either case), excluded applications, topic globs, severities,
/// `my_actions`, disabled rules and several destinations.
pub fn fmn3_rules(pop: &Population, rng: &mut Rng) -> Value {
    let mut out = Vec::new();
    let mut id = 0;
    for u in 0..pop.users {
        let user = format!("u{u}");
        for _ in 0..=rng.below(3) {
            id += 1;
            let tracking = match rng.below(100) {
                0..27 => json!({"name": "artifacts-followed", "params": (0..=rng.below(3))
                    .map(|_| json!({"name": pop.package(rng), "type": "rpms"})).collect::<Vec<_>>()}),
                27..53 => json!({"name": "artifacts-owned", "params": [user]}),
                53..78 => json!({"name": "related-events", "params": null}),
                78..91 => json!({"name": "artifacts-group-owned", "params": [pop.group(rng)]}),
                _ => json!({"name": "users-followed", "params": (0..=rng.below(2))
                    .map(|_| pop.packager(rng)).collect::<Vec<_>>()}),
            };
            let generation: Vec<Value> = (0..=usize::from(rng.chance(30)))
                .map(|g| {
                    let mut filters = json!({
                        "severities": SEVERITIES[rng.below(3)],
                        "my_actions": !rng.chance(35),
                        "topic": null,
                    });
                    if rng.chance(45) {
                        let apps: Vec<String> = (0..=rng.below(3))
                            .map(|_| {
                                let a = APPS[rng.below(APPS.len())];
                                if rng.chance(50) {
                                    a.to_uppercase()
                                } else {
                                    a.to_owned()
                                }
                            })
                            .collect();
                        filters["applications"] = json!(apps);
                    }
                    if rng.chance(10) {
                        filters["excluded_applications"] = json!([APPS[rng.below(APPS.len())]]);
                    }
                    if rng.chance(15) {
                        filters["topic"] = json!(format!(
                            "org.fedoraproject.prod.{}.*",
                            APPS[rng.below(APPS.len())]
                        ));
                    }
                    let mut destinations = vec![json!({"protocol": "email",
                        "address": format!("{user}@fedoraproject.org")})];
                    if rng.chance(35) {
                        destinations.push(
                            json!({"protocol": if rng.chance(50) { "irc" } else { "matrix" },
                            "address": user}),
                        );
                    }
                    json!({"id": g + 1, "destinations": destinations, "filters": filters})
                })
                .collect();
            out.push(
                json!({"id": id, "name": format!("rule {id}"), "disabled": rng.chance(3),
                "user": {"name": user}, "tracking_rule": tracking, "generation_rules": generation}),
            );
        }
    }
    Value::Array(out)
}

/// The ownership in dist-git's `extras/pagure_owner_alias.json` shape (groups as `@group`).
pub fn owners_json(ownership: &Ownership) -> String {
    let mut owners: BTreeMap<&str, BTreeMap<&str, Vec<String>>> = BTreeMap::new();
    for (kind, name, o) in ownership.iter() {
        let list = owners.entry(kind).or_default().entry(name).or_default();
        list.extend(o.users.iter().cloned());
        list.extend(o.groups.iter().map(|g| format!("@{g}")));
    }
    serde_json::to_string(&owners).unwrap_or_default()
}
