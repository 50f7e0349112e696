//! FMN 3's workload, 10,000 times faster: an FMN 3 rule set for 5,000 users (the JSON FMN 3's
//! API serves, shaped like the fixture in `tests/fixtures/fmn3`), imported, then 5,000 corpus
//! messages matched. Reports loading (parse + import), building and matching separately; the
//! figure that compares with FMN 3's ~30 msg/s is matching alone.
//!
//! `cargo bench -p fmn-rules --bench fmn3`; `FMN_BENCH_USERS` and `FMN_BENCH_MESSAGES` change
//! the sizes. With `FMN_BENCH_WRITE=DIR` it also writes `DIR/rules-api.json`,
//! `DIR/owners.json` and `DIR/messages.jsonl`, for
//! `fmn import-fmn3 < DIR/rules-api.json > prefs.json` and
//! `fmn match --prefs prefs.json --ownership DIR/owners.json --stats < DIR/messages.jsonl`.

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use common::{APPS, Population, Rng};
use fmn_rules::{Matcher, fmn3};
use serde_json::{Value, json};

const SEVERITIES: [&[&str]; 3] = [
    &["warning", "error"],
    &["info", "warning", "error"],
    &["debug", "info", "warning", "error"],
];

fn rules(pop: &Population, rng: &mut Rng) -> Value {
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

fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let users = env("FMN_BENCH_USERS", 5_000);
    let n = env("FMN_BENCH_MESSAGES", 5_000);
    let mut rng = Rng(0xf3f3_5eed);
    let pop = Population::for_filters(users * 10);
    let ownership = pop.ownership(&mut rng);
    let text = rules(&pop, &mut rng).to_string();
    let corpus = common::corpus();
    let stream = common::stream(&corpus, &pop, n, &mut rng);
    if let Some(dir) = std::env::var_os("FMN_BENCH_WRITE") {
        let dir = std::path::PathBuf::from(dir);
        let write = |name: &str, body: &str| {
            std::fs::write(dir.join(name), body).unwrap_or_else(|e| panic!("{name}: {e}"));
        };
        write("rules-api.json", &text);
        let mut owners: BTreeMap<&str, BTreeMap<&str, Vec<String>>> = BTreeMap::new();
        for (kind, name, o) in ownership.iter() {
            let list = owners.entry(kind).or_default().entry(name).or_default();
            list.extend(o.users.iter().cloned());
            list.extend(o.groups.iter().map(|g| format!("@{g}")));
        }
        write(
            "owners.json",
            &serde_json::to_string(&owners).unwrap_or_default(),
        );
        let lines: Vec<&str> = stream.iter().map(|(raw, _)| raw.as_str()).collect();
        write("messages.jsonl", &(lines.join("\n") + "\n"));
    }

    let start = Instant::now();
    let parsed = fmn3::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let prefs = fmn3::import(&parsed).unwrap_or_else(|e| panic!("{e}"));
    let loading = start.elapsed();
    let start = Instant::now();
    let matcher = Matcher::build_with(prefs, Arc::new(ownership)).unwrap_or_else(|e| panic!("{e}"));
    let building = start.elapsed();
    // Each figure is the median of 11 passes over the stream (one pass takes milliseconds).
    let median_pass = |mut pass: Box<dyn FnMut() -> usize + '_>| {
        let mut runs: Vec<(std::time::Duration, usize)> = (0..11)
            .map(|_| {
                let start = Instant::now();
                let n = pass();
                (start.elapsed(), n)
            })
            .collect();
        runs.sort();
        runs[runs.len() / 2]
    };
    let (matching, notifications) = median_pass(Box::new(|| {
        stream
            .iter()
            .map(|(_, m)| black_box(matcher.matches(black_box(m))).len())
            .sum()
    }));
    let (deciding, _) = median_pass(Box::new(|| {
        let mut n = 0;
        for (_, m) in &stream {
            matcher.for_each_match(black_box(m), |_| n += 1);
        }
        n
    }));
    let rate = stream.len() as f64 / matching.as_secs_f64();
    let lean = stream.len() as f64 / deciding.as_secs_f64();
    println!(
        "FMN 3 rule set: {users} users, {} rules, {} filters; {} messages",
        parsed.len(),
        matcher.stats().filters,
        stream.len()
    );
    println!(
        "loading {loading:.2?}, building {building:.2?}, matching {matching:.2?}: {rate:.0} msg/s \
         ({:.0}x FMN 3's ~30 msg/s), {notifications} notifications; the decision alone \
         (for_each_match, no strings copied) {deciding:.2?}: {lean:.0} msg/s ({:.0}x)",
        rate / 30.0,
        lean / 30.0,
    );
}
