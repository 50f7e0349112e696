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

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use common::{Population, Rng, fmn3_rules as rules};
use fmn_rules::{Matcher, fmn3};

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
        write("owners.json", &common::owners_json(&ownership));
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
