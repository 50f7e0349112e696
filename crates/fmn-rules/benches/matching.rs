//! Matching throughput against seeded, Fedora-like populations, one core.
//!
//! `cargo bench -p fmn-rules --bench matching` builds populations of 10k and 100k filters
//! (`FMN_BENCH_FILTERS=10000,100000,1000000` to choose) and reports build time, bytes per
//! filter (resident-memory growth while building: approximate), messages per second
//! and per-message latency percentiles over the same message stream. A plain harness keeps the
//! crate free of extra dependencies; the generator is a seeded xorshift, so runs are
//! reproducible.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use fmn_messages::{Artifacts, Generation, Message, Severity};
use fmn_rules::{Matcher, Ownership, Preferences};
use serde_json::json;

/// Resident memory in bytes (Linux), to estimate what the matcher holds.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
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
        (self.next() % n as u64) as usize
    }
}

const APPS: [&str; 8] = [
    "bodhi",
    "koji",
    "pagure",
    "copr",
    "anitya",
    "discourse",
    "fas",
    "mdapi",
];
const PACKAGES: usize = 60_000;

fn pkg(i: usize) -> String {
    format!("pkg{i}")
}

/// `filters` filters for `filters / 10` users, Fedora-like: packages followed, packages
/// maintained minus own actions, mentions, a few application and topic filters, rare
/// negation-only ones.
fn population(filters: usize, rng: &mut Rng) -> Vec<Preferences> {
    let users = (filters / 10).max(1);
    (0..users)
        .map(|u| {
            let fs: Vec<_> = (0..10)
                .map(|f| {
                    let rules = match rng.below(100) {
                        0..40 => json!([{"kind": "artifact", "artifacts": [
                            {"type": "rpms", "name": pkg(rng.below(PACKAGES))}]}]),
                        40..65 => json!([{"kind": "owned_by"}, {"kind": "agent", "negate": true}]),
                        65..80 => json!([{"kind": "user"}]),
                        80..88 => json!([{"kind": "application", "names": [APPS[rng.below(8)]]},
                                         {"kind": "severity", "levels": ["error"]}]),
                        88..98 => json!([{"kind": "topic", "glob": format!(
                            "org.fedoraproject.prod.{}.*", APPS[rng.below(8)])},
                            {"kind": "user"}]),
                        _ => json!([{"kind": "agent", "usernames": [format!("u{}", rng.below(users))]}]),
                    };
                    json!({"id": format!("f{f}"), "name": "f", "rules": rules})
                })
                .collect();
            serde_json::from_value(json!({"user": format!("u{u}"), "contexts": {"email": {
                "addresses": [{"address": format!("u{u}@example.org"), "confirmed": true}],
                "filters": fs}}}))
            .unwrap_or_else(|e| panic!("generator: {e}"))
        })
        .collect()
}

fn ownership(users: usize, rng: &mut Rng) -> Ownership {
    let mut o = Ownership::default();
    for p in 0..PACKAGES {
        for _ in 0..2 {
            o.add("rpms", &pkg(p), &format!("u{}", rng.below(users)));
        }
    }
    o
}

fn messages(n: usize, users: usize, rng: &mut Rng) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let app = APPS[rng.below(8)];
            let agent = format!("u{}", rng.below(users));
            let mut artifacts = Artifacts::default();
            artifacts.rpms.insert(pkg(rng.below(PACKAGES)));
            Message {
                id: format!("m{i}"),
                topic: format!("org.fedoraproject.prod.{app}.thing.happened"),
                app: app.to_owned(),
                generation: Generation::FedoraMessaging,
                timestamp: None,
                body: json!({"agent": agent}),
                usernames: [agent.clone(), format!("u{}", rng.below(users))].into(),
                agent: Some(agent),
                artifacts,
                groups: Default::default(),
                severity: Severity::Info,
                title: String::new(),
                summary: String::new(),
                link: None,
                long_form: None,
            }
        })
        .collect()
}

fn main() {
    let sizes: Vec<usize> = std::env::var("FMN_BENCH_FILTERS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut medians = BTreeMap::new();
    for filters in sizes {
        let mut rng = Rng(0x5eed_f00d ^ filters as u64);
        let users = filters / 10;
        let owners = Arc::new(ownership(users, &mut rng));
        let stream = messages(20_000, users, &mut rng);
        let prefs = population(filters, &mut rng);
        let before = rss();
        let start = Instant::now();
        let matcher = Matcher::build_with(prefs, owners).unwrap_or_else(|e| panic!("{e}"));
        let built = start.elapsed();
        let bytes = rss().saturating_sub(before);
        let mut lat = Vec::with_capacity(stream.len());
        let mut notified = 0;
        let start = Instant::now();
        for m in &stream {
            let t = Instant::now();
            notified += black_box(matcher.matches(black_box(m))).len();
            lat.push(t.elapsed());
        }
        let total = start.elapsed();
        lat.sort();
        let pct = |p: usize| lat[(lat.len() - 1) * p / 100];
        medians.insert(filters, pct(50));
        println!(
            "{filters:>8} filters ({users} users): build {built:.2?}, {:.0} bytes/filter (resident growth while building; prefs stay resident until freed, so approximate), {:.0} msg/s, p50 {:.2?} p90 {:.2?} p99 {:.2?}, {:.1} notifications/msg",
            bytes as f64 / filters as f64,
            stream.len() as f64 / total.as_secs_f64(),
            pct(50),
            pct(90),
            pct(99),
            notified as f64 / stream.len() as f64,
        );
        drop(black_box(matcher));
    }
    if let (Some((small, a)), Some((large, b))) =
        (medians.first_key_value(), medians.last_key_value())
        && small != large
    {
        println!(
            "median per message, {large} vs {small} filters: {:.2}x",
            b.as_secs_f64() / a.as_secs_f64()
        );
    }
}
