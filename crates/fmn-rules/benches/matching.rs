//! Matching against seeded, Fedora-like populations, one core.
//!
//! `cargo bench -p fmn-rules --bench matching` runs 10k and 100k filters
//! (`FMN_BENCH_FILTERS=10000,100000,1000000` to choose; `FMN_BENCH_MESSAGES` for the stream
//! length, 20,000 by default). Per size it reports the index build time, heap bytes per
//! filter (counted by the allocator: live bytes after the build, the preferences it consumed
//! freed), messages per second normalised (`matches`, which copies the notifications' strings
//! out, and `for_each_match`, which does not) and from raw JSON (parse, normalise, match),
//! per-message latency percentiles, and the cost of replacing one user's preferences in the
//! warm index. The generator is in `common/`: seeded, so runs are reproducible.

mod common;

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Population, Rng};
use fmn_messages::Catalog;
use fmn_rules::Matcher;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn live_bytes() -> isize {
    let s = GLOBAL.stats();
    // `bytes_reallocated` is already part of the other two.
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("FMN_BENCH_FILTERS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let n: usize = std::env::var("FMN_BENCH_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let corpus = common::corpus();
    println!("corpus: {} messages", corpus.len());
    let mut medians = Vec::new();
    for filters in sizes {
        let mut rng = Rng(0x5eed_f00d ^ filters as u64);
        let pop = Population::for_filters(filters);
        let owners = Arc::new(pop.ownership(&mut rng));
        let stream = common::stream(&corpus, &pop, n, &mut rng);
        let before = live_bytes();
        let prefs: Vec<_> = (0..pop.users).map(|u| pop.prefs(u, &mut rng)).collect();
        let start = Instant::now();
        let matcher = Matcher::build_with(prefs, owners.clone()).unwrap_or_else(|e| panic!("{e}"));
        let built = start.elapsed();
        let bytes = live_bytes() - before;
        let stats = matcher.stats();

        if std::env::var_os("FMN_BENCH_PROFILE").is_some() {
            // Only the index's own work, for `valgrind --tool=callgrind`.
            let mut count = 0usize;
            for _ in 0..5 {
                for (_, m) in &stream {
                    matcher.for_each_match(black_box(m), |hit| count += hit.filter_count());
                }
            }
            println!("{filters} filters: {count} filters matched");
            continue;
        }
        // Throughput: normalised, with and without copying strings out; raw JSON.
        let mut notified = 0usize;
        let start = Instant::now();
        for (_, m) in &stream {
            notified += black_box(matcher.matches(black_box(m))).len();
        }
        let normalised = stream.len() as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        for (_, m) in &stream {
            black_box(matcher.matches_borrowed(black_box(m)));
        }
        let borrowed = stream.len() as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut count = 0usize;
        for (_, m) in &stream {
            matcher.for_each_match(black_box(m), |hit| count += hit.filter_count());
        }
        let lean = stream.len() as f64 / start.elapsed().as_secs_f64();
        black_box(count);
        let catalog = Catalog::builtin();
        let start = Instant::now();
        for (raw, _) in &stream {
            if let Ok(m) = catalog.normalize_bytes(black_box(raw.as_bytes())) {
                black_box(matcher.matches(&m));
            }
        }
        let raw = stream.len() as f64 / start.elapsed().as_secs_f64();
        let mut lat: Vec<Duration> = stream
            .iter()
            .map(|(_, m)| {
                let t = Instant::now();
                black_box(matcher.matches(black_box(m)));
                t.elapsed()
            })
            .collect();
        if std::env::var_os("FMN_BENCH_SLOWEST").is_some() {
            let mut worst: Vec<(Duration, usize)> = lat.iter().copied().zip(0..).collect();
            worst.sort();
            for &(d, i) in worst.iter().rev().take(5) {
                let m = &stream[i].1;
                println!(
                    "  slow: {d:.2?} {} users {} rpms {} groups {} severity {:?}: {} notifications",
                    m.topic,
                    m.usernames.len(),
                    m.artifacts.rpms.len(),
                    m.groups.len(),
                    m.severity,
                    matcher.matches(m).len()
                );
            }
        }
        lat.sort();
        // The decision alone (`for_each_match`, no strings copied), per message, and where
        // its time goes by fan-out: the profile behind the throughput figures.
        let decisions: Vec<(usize, Duration)> = stream
            .iter()
            .map(|(_, m)| {
                let mut k = 0usize;
                let t = Instant::now();
                matcher.for_each_match(black_box(m), |_| k += 1);
                (k, t.elapsed())
            })
            .collect();
        let mut lean_lat: Vec<Duration> = decisions.iter().map(|&(_, d)| d).collect();
        lean_lat.sort();
        medians.push((filters, pct(&lat, 50), pct(&lean_lat, 50)));
        let total: Duration = lean_lat.iter().sum();
        let mut by_fanout = Vec::new();
        for (label, lo, hi) in [
            ("0", 0, 0),
            ("1-10", 1, 10),
            ("11-100", 11, 100),
            ("101-1000", 101, 1000),
            (">1000", 1001, usize::MAX),
        ] {
            let (n, t) = decisions
                .iter()
                .filter(|&&(k, _)| (lo..=hi).contains(&k))
                .fold((0usize, Duration::ZERO), |(n, t), &(_, d)| (n + 1, t + d));
            if n > 0 {
                by_fanout.push(format!(
                    "{label}: {:.0}% of messages, {:.0}% of time, {:.0} msg/s",
                    100.0 * n as f64 / decisions.len() as f64,
                    100.0 * t.as_secs_f64() / total.as_secs_f64(),
                    n as f64 / t.as_secs_f64()
                ));
            }
        }

        // One preference change at a time, into the warm index.
        let mut warm = matcher;
        let mut changes: Vec<Duration> = (0..1000)
            .map(|_| {
                let u = rng.below(pop.users);
                let p = pop.prefs(u, &mut rng);
                let t = Instant::now();
                warm.upsert_user(&p).unwrap_or_else(|e| panic!("{e}"));
                t.elapsed()
            })
            .collect();
        changes.sort();
        let removals: Vec<Duration> = (0..100)
            .map(|_| {
                let u = format!("u{}", rng.below(pop.users));
                let t = Instant::now();
                warm.remove_user(&u);
                t.elapsed()
            })
            .collect();
        let start = Instant::now();
        for (_, m) in &stream {
            black_box(warm.matches(black_box(m)));
        }
        let after_changes = stream.len() as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        let compacted = warm.compacted();
        let compaction = start.elapsed();
        black_box(compacted);

        println!(
            "{filters:>8} filters ({} users): build {built:.2?}, {:.0} bytes/filter (allocator; {:.0} \
             by the index's own count), {} rules, {} rule sets, {} residual filters",
            pop.users,
            bytes as f64 / filters as f64,
            stats.heap_bytes as f64 / filters as f64,
            stats.rules,
            stats.rule_sets,
            stats.residual,
        );
        println!(
            "          normalised {normalised:.0} msg/s (matches), {borrowed:.0} msg/s \
             (matches_borrowed), {lean:.0} msg/s (for_each_match); \
             raw JSON {raw:.0} msg/s; p50 {:.2?} p90 {:.2?} p99 {:.2?}; {:.1} notifications/msg",
            pct(&lat, 50),
            pct(&lat, 90),
            pct(&lat, 99),
            notified as f64 / stream.len() as f64,
        );
        println!(
            "          decision only (for_each_match): p50 {:.2?} p90 {:.2?} p99 {:.2?}",
            pct(&lean_lat, 50),
            pct(&lean_lat, 90),
            pct(&lean_lat, 99),
        );
        println!(
            "          by notifications per message: {}",
            by_fanout.join("; ")
        );
        println!(
            "          one user replaced: p50 {:.1?} p99 {:.1?} max {:.1?}; removed: max {:.1?}; \
             after 1,000 changes {after_changes:.0} msg/s; compaction {compaction:.2?}",
            pct(&changes, 50),
            pct(&changes, 99),
            changes[changes.len() - 1],
            removals.iter().max().copied().unwrap_or_default(),
        );
    }
    if let (Some((small, a, lean_a)), Some((large, b, lean_b))) = (medians.first(), medians.last())
        && small != large
    {
        println!(
            "median per message, {large} vs {small} filters: {:.2}x (matches), {:.2}x (for_each_match)",
            b.as_secs_f64() / a.as_secs_f64(),
            lean_b.as_secs_f64() / lean_a.as_secs_f64()
        );
    }
}
