//! The index against brute force: over generated populations and the FMN 3 corpus messages,
//! [`Matcher::matches`] returns exactly what evaluating every rule of every filter returns,
//! after a build, after incremental updates, after compaction and after an ownership change.

use std::collections::BTreeSet;
use std::sync::Arc;

use fmn_messages::Message;
use serde_json::{Value, json};

use crate::compile::{Subject, compile};
use crate::{FilterRef, Matcher, Notification, Ownership, Preferences};

/// Every filter of every user evaluated on `m`: the specification the index must meet.
fn brute_force(all: &[Preferences], ownership: &Ownership, m: &Message) -> Vec<Notification> {
    let s = Subject::new(m, ownership);
    let mut out = Vec::new();
    for prefs in all {
        for (kind, ctx) in &prefs.contexts {
            if !ctx.enabled {
                continue;
            }
            let confirmed = ctx.deliverable_addresses(*kind);
            let mut wanted = vec![false; confirmed.len()];
            let mut filters = Vec::new();
            for f in &ctx.filters {
                if !f.active || f.rules.is_empty() {
                    continue;
                }
                let chosen: Vec<usize> = (0..confirmed.len())
                    .filter(|&i| {
                        f.addresses
                            .as_ref()
                            .is_none_or(|list| list.iter().any(|a| a == confirmed[i]))
                    })
                    .collect();
                let held = f
                    .rules
                    .iter()
                    .all(|r| compile(&prefs.user, &r.kind).unwrap().holds(&s) != r.negate);
                if held && !chosen.is_empty() {
                    chosen.iter().for_each(|&i| wanted[i] = true);
                    filters.push(FilterRef {
                        id: f.id.clone(),
                        name: f.name.clone(),
                        oneshot: f.oneshot,
                    });
                }
            }
            if !filters.is_empty() {
                out.push(Notification {
                    user: prefs.user.clone(),
                    context: *kind,
                    addresses: confirmed
                        .iter()
                        .zip(&wanted)
                        .filter(|(_, w)| **w)
                        .map(|(a, _)| (*a).to_owned())
                        .collect(),
                    filters,
                });
            }
        }
    }
    out
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Names the generator draws from: the corpus's own plus a small invented pool, so that
/// rules, messages and maintainers collide often.
struct Pool {
    users: Vec<String>,
    groups: Vec<String>,
    packages: Vec<String>,
    apps: Vec<String>,
    topics: Vec<String>,
}

fn corpus() -> Vec<Message> {
    let text = include_str!("../tests/fixtures/fmn3/messages.jsonl");
    let catalog = fmn_messages::Catalog::builtin();
    text.lines()
        .filter_map(|l| catalog.normalize(&serde_json::from_str(l).ok()?).ok())
        .collect()
}

fn pool(messages: &[Message]) -> Pool {
    let mut users: BTreeSet<String> = (0..12).map(|i| format!("u{i}")).collect();
    let mut packages: BTreeSet<String> = (0..8).map(|i| format!("p{i}")).collect();
    let mut apps = BTreeSet::new();
    let mut topics = BTreeSet::new();
    for m in messages.iter().step_by(7) {
        users.extend(m.usernames.iter().take(2).cloned());
        packages.extend(m.artifacts.rpms.iter().take(2).cloned());
        apps.insert(m.app.clone());
        topics.insert(m.topic.clone());
    }
    Pool {
        users: users.into_iter().collect(),
        groups: (0..4).map(|i| format!("g{i}")).collect(),
        packages: packages.into_iter().collect(),
        apps: apps.into_iter().collect(),
        topics: topics.into_iter().collect(),
    }
}

fn glob(rng: &mut Rng, topic: &str) -> String {
    let segs: Vec<&str> = topic.split('.').collect();
    match rng.below(7) {
        0 => topic.to_owned(),
        1 => format!("{}.*", segs[..rng.below(segs.len()) + 1].join(".")),
        2 => format!("*.{}.*", rng.pick(&segs)),
        3 => format!("*{}", segs[segs.len() - 1]),
        4 => topic.replacen('o', "?", 1),
        5 => format!("{}*", &topic[..rng.below(topic.len())]),
        _ => "*".to_owned(),
    }
}

fn rule(rng: &mut Rng, p: &Pool, owner: &str) -> Value {
    let users = |rng: &mut Rng| -> Vec<String> {
        (0..rng.below(3))
            .map(|_| {
                if rng.chance(30) {
                    owner.to_owned()
                } else {
                    rng.pick(&p.users).clone()
                }
            })
            .collect()
    };
    let mut r = match rng.below(13) {
        0 => {
            let topic = rng.pick(&p.topics).clone();
            json!({"kind": "topic", "glob": glob(rng, &topic)})
        }
        1 => json!({"kind": "topic_regex", "regex": format!(r"\.{}\.", rng.pick(&p.apps))}),
        2 => {
            let mut a = rng.pick(&p.apps).clone();
            if rng.chance(30) {
                a = a.to_uppercase();
            }
            json!({"kind": "application", "names": [a, rng.pick(&p.apps)]})
        }
        3 => {
            let all = ["debug", "info", "warning", "error"];
            let levels: Vec<&str> = all.iter().copied().filter(|_| rng.chance(50)).collect();
            json!({"kind": "severity", "levels": if levels.is_empty() { vec!["info"] } else { levels }})
        }
        4 => json!({"kind": "user", "usernames": users(rng)}),
        5 => json!({"kind": "agent", "usernames": users(rng)}),
        6 => {
            let arts: Vec<Value> = (0..rng.below(2) + 1)
                .map(|_| {
                    let t = if rng.chance(85) { "rpms" } else { "modules" };
                    json!({"type": t, "name": rng.pick(&p.packages)})
                })
                .collect();
            json!({"kind": "artifact", "artifacts": arts})
        }
        7 => json!({"kind": "artifact_regex", "type": "rpms",
                    "regex": format!("^{}", &rng.pick(&p.packages)[..1])}),
        8 => json!({"kind": "owned_by", "usernames": users(rng)}),
        9 => {
            let mut g = rng.pick(&p.groups).clone();
            if rng.chance(30) {
                g = format!("@{g}");
            }
            json!({"kind": "owned_by_group", "groups": [g]})
        }
        10 => json!({"kind": "field", "pointer": "/agent", "one_of": [rng.pick(&p.users), owner]}),
        11 => json!({"kind": "body_regex", "regex": rng.pick(&p.users)}),
        _ => json!({"kind": "user"}),
    };
    if rng.chance(25) {
        r["negate"] = json!(true);
    }
    r
}

fn user_prefs(rng: &mut Rng, p: &Pool, user: &str, generation: usize) -> Preferences {
    let mut contexts = serde_json::Map::new();
    for kind in ["email", "irc", "webhook"] {
        if !rng.chance(60) {
            continue;
        }
        let addresses: Vec<Value> = (0..rng.below(3) + 1)
            .map(|i| {
                let mut a =
                    json!({"address": format!("{user}-{kind}-{i}"), "confirmed": rng.chance(85)});
                if rng.chance(10) {
                    a["disabled"] = json!("failing");
                }
                a
            })
            .collect();
        let filters: Vec<Value> = (0..rng.below(5))
            .map(|f| {
                let rules: Vec<Value> = (0..rng.below(4)).map(|_| rule(rng, p, user)).collect();
                let mut filter = json!({"id": format!("f{generation}-{f}"), "name": format!("filter {f}"),
                    "active": rng.chance(90), "oneshot": rng.chance(10), "rules": rules});
                if rng.chance(25) {
                    filter["addresses"] = json!([addresses[0]["address"]]);
                }
                filter
            })
            .collect();
        contexts.insert(
            kind.into(),
            json!({"enabled": rng.chance(90), "addresses": addresses, "filters": filters}),
        );
    }
    serde_json::from_value(json!({"user": user, "contexts": contexts})).unwrap()
}

fn ownership(rng: &mut Rng, p: &Pool) -> Ownership {
    let mut o = Ownership::default();
    for pkg in &p.packages {
        for _ in 0..rng.below(3) {
            let user = rng.pick(&p.users).clone();
            o.add("rpms", pkg, &user);
        }
        if rng.chance(40) {
            o.add("rpms", pkg, &format!("@{}", rng.pick(&p.groups)));
        }
    }
    o
}

/// Corpus messages, half of them with their people and packages redrawn from the pool.
fn messages(rng: &mut Rng, p: &Pool, corpus: &[Message]) -> Vec<Message> {
    corpus
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if rng.chance(50) {
                m.usernames = (0..rng.below(3))
                    .map(|_| rng.pick(&p.users).clone())
                    .collect();
                m.agent = rng.chance(80).then(|| rng.pick(&p.users).clone());
                m.artifacts.rpms = (0..rng.below(3))
                    .map(|_| rng.pick(&p.packages).clone())
                    .collect();
                if let Some(a) = &m.agent {
                    m.body["agent"] = json!(a);
                }
            }
            m
        })
        .collect()
}

fn sorted(mut v: Vec<Notification>) -> Vec<Notification> {
    v.sort_by(|a, b| (&a.user, a.context).cmp(&(&b.user, b.context)));
    v
}

fn check(matcher: &Matcher, all: &[Preferences], o: &Ownership, ms: &[Message], what: &str) {
    for m in ms {
        assert_eq!(
            sorted(matcher.matches(m)),
            sorted(brute_force(all, o, m)),
            "{what}: message {} ({})",
            m.id,
            m.topic
        );
    }
}

#[test]
fn index_equals_brute_force_over_generated_populations() {
    let corpus = corpus();
    assert!(corpus.len() > 300);
    let mut notified = 0;
    for seed in 1..=6u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let p = pool(&corpus);
        let o = Arc::new(ownership(&mut rng, &p));
        let all: Vec<Preferences> = p
            .users
            .iter()
            .map(|u| user_prefs(&mut rng, &p, u, 0))
            .collect();
        let ms = messages(&mut rng, &p, &corpus);
        let matcher = Matcher::build_with(all.clone(), o.clone()).unwrap();
        for m in &ms {
            // A fresh build keeps the input order too.
            let got = matcher.matches(m);
            assert_eq!(
                got,
                brute_force(&all, &o, m),
                "seed {seed}, message {}",
                m.id
            );
            let borrowed: Vec<_> = matcher
                .matches_borrowed(m)
                .iter()
                .map(|n| n.to_owned())
                .collect();
            assert_eq!(borrowed, got, "seed {seed}, message {}", m.id);
            notified += got.len();
        }
    }
    assert!(
        notified > 1000,
        "the generator should notify often: {notified}"
    );
}

#[test]
fn updates_equal_a_rebuild() {
    let corpus = corpus();
    let mut rng = Rng(0x5eed);
    let p = pool(&corpus);
    let o = Arc::new(ownership(&mut rng, &p));
    let mut all: Vec<Preferences> = p
        .users
        .iter()
        .map(|u| user_prefs(&mut rng, &p, u, 0))
        .collect();
    let ms: Vec<Message> = messages(&mut rng, &p, &corpus)
        .into_iter()
        .step_by(3)
        .collect();
    let mut matcher = Matcher::build_with(all.clone(), o.clone()).unwrap();
    for round in 1..=30 {
        let i = rng.below(all.len() + 3);
        if i >= all.len() {
            // A new user.
            let user = format!("new{round}");
            let prefs = user_prefs(&mut rng, &p, &user, round);
            matcher.upsert_user(&prefs).unwrap();
            all.push(prefs);
        } else if rng.chance(20) {
            matcher.remove_user(&all[i].user);
            all.remove(i);
        } else {
            let prefs = user_prefs(&mut rng, &p, &all[i].user.clone(), round);
            matcher.upsert_user(&prefs).unwrap();
            all[i] = prefs;
        }
        if round % 10 == 0 {
            check(&matcher, &all, &o, &ms, &format!("round {round}"));
            let rebuilt = Matcher::build_with(all.clone(), o.clone()).unwrap();
            assert_eq!(matcher.stats().filters, rebuilt.stats().filters);
            matcher = matcher.compacted();
            assert_eq!(matcher.stats().pending, 0);
            check(
                &matcher,
                &all,
                &o,
                &ms,
                &format!("round {round}, compacted"),
            );
        }
    }
    // A broken update changes nothing.
    let mut broken = all[0].clone();
    if let Some(ctx) = broken.contexts.values_mut().next() {
        ctx.filters.push(
            serde_json::from_value(json!({"id": "bad", "name": "bad",
                "rules": [{"kind": "topic_regex", "regex": "("}]}))
            .unwrap(),
        );
        assert!(matcher.upsert_user(&broken).is_err());
    }
    check(&matcher, &all, &o, &ms, "after a failed update");
    // New maintainers.
    let o2 = Arc::new(ownership(&mut rng, &p));
    matcher.set_ownership(o2.clone());
    check(&matcher, &all, &o2, &ms, "new ownership");
}

#[test]
fn a_matcher_read_from_its_snapshot_matches_as_it_did() {
    let corpus = corpus();
    let mut rng = Rng(0x5a7e);
    let p = pool(&corpus);
    let o = Arc::new(ownership(&mut rng, &p));
    let mut all: Vec<Preferences> = p
        .users
        .iter()
        .map(|u| user_prefs(&mut rng, &p, u, 0))
        .collect();
    let ms: Vec<Message> = messages(&mut rng, &p, &corpus)
        .into_iter()
        .step_by(2)
        .collect();
    let mut matcher = Matcher::build_with(all.clone(), o.clone()).unwrap();
    // Pending updates: the snapshot folds them in.
    for (round, slot) in all.iter_mut().enumerate().skip(1).take(5) {
        let prefs = user_prefs(&mut rng, &p, &slot.user.clone(), round);
        matcher.upsert_user(&prefs).unwrap();
        *slot = prefs;
    }
    matcher.remove_user(&all[0].user.clone());
    all.remove(0);
    assert!(matcher.stats().pending > 0);
    let mut bytes = Vec::new();
    matcher.write_snapshot(&mut bytes).unwrap();
    bytes.extend_from_slice(b"after");
    let (mut loaded, rest) = Matcher::read_snapshot(&bytes, o.clone()).unwrap();
    assert_eq!(rest, b"after");
    assert_eq!(loaded.stats().filters, matcher.stats().filters);
    assert_eq!(loaded.stats().pending, 0);
    check(&loaded, &all, &o, &ms, "read from its snapshot");
    let at_snapshot = all.clone();
    // It keeps changing as a built one does.
    for round in 6..=12 {
        let i = rng.below(all.len());
        let prefs = user_prefs(&mut rng, &p, &all[i].user.clone(), round);
        loaded.upsert_user(&prefs).unwrap();
        all[i] = prefs;
    }
    let user = "newcomer";
    let prefs = user_prefs(&mut rng, &p, user, 13);
    loaded.upsert_user(&prefs).unwrap();
    all.push(prefs);
    check(&loaded, &all, &o, &ms, "updated after reading");
    let o2 = Arc::new(ownership(&mut rng, &p));
    loaded.set_ownership(o2.clone());
    check(&loaded, &all, &o2, &ms, "new ownership after reading");
    // A snapshot read with other maintainer data uses that data.
    let (other, _) = Matcher::read_snapshot(&bytes, o2.clone()).unwrap();
    check(
        &other,
        &at_snapshot,
        &o2,
        &ms,
        "read with other maintainers",
    );
}
