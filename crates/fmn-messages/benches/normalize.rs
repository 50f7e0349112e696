//! Normalisation throughput over the corpus: parse (bytes → JSON) + normalise, one core.
//!
//! `cargo bench -p fmn-messages --bench normalize` prints messages per second (median of
//! several rounds after a warm-up). A plain harness keeps the crate free of extra
//! dependencies; each round runs over every corpus message in order.

use std::hint::black_box;
use std::time::{Duration, Instant};

use fmn_messages::Catalog;

const CORPUS: [&str; 2] = [
    include_str!("../tests/fixtures/fedmsg-examples.jsonl"),
    include_str!("../tests/fixtures/fedora-messaging-examples.jsonl"),
];

fn round(catalog: &Catalog, lines: &[&[u8]]) -> (usize, Duration) {
    let start = Instant::now();
    let mut ok = 0;
    for line in lines {
        if catalog.normalize_bytes(black_box(line)).is_ok() {
            ok += 1;
        }
    }
    (black_box(ok), start.elapsed())
}

fn report(name: &str, catalog: &Catalog, lines: &[&[u8]]) {
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    // Warm up (also loads the builtin catalog), then time rounds of at least ~0.2 s each.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(300) {
        round(catalog, lines);
    }
    let mut rates = Vec::new();
    for _ in 0..15 {
        let mut n = 0;
        let mut took = Duration::ZERO;
        while took < Duration::from_millis(200) {
            let (_, t) = round(catalog, lines);
            n += lines.len();
            took += t;
        }
        rates.push(n as f64 / took.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{name}: {} messages ({:.0} bytes avg): median {:.0} msg/s on one core \
         ({:.2} µs/msg; min {:.0}, max {:.0})",
        lines.len(),
        bytes as f64 / lines.len() as f64,
        median,
        1e6 / median,
        rates[0],
        rates[rates.len() - 1],
    );
}

/// The corpus lines carry the reference implementations' expectations beside the message;
/// keep only what the bus delivers (the fedmsg envelope, or fedora-messaging's topic, headers,
/// body and id), as the bridge would hand it over.
fn as_on_the_bus(line: &str) -> Vec<u8> {
    const KEEP: &[&str] = &[
        "topic",
        "msg",
        "msg_id",
        "timestamp",
        "i",
        "username",
        "crypto",
        "signature",
        "certificate",
        "headers",
        "body",
        "id",
    ];
    let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_str(line) else {
        return line.as_bytes().to_vec();
    };
    obj.retain(|k, _| KEEP.contains(&k.as_str()));
    serde_json::to_vec(&obj).unwrap_or_else(|_| line.as_bytes().to_vec())
}

fn main() {
    let catalog = Catalog::builtin();
    let fedmsg: Vec<Vec<u8>> = CORPUS[0].lines().map(as_on_the_bus).collect();
    let fm: Vec<Vec<u8>> = CORPUS[1].lines().map(as_on_the_bus).collect();
    let fedmsg: Vec<&[u8]> = fedmsg.iter().map(Vec::as_slice).collect();
    let fm: Vec<&[u8]> = fm.iter().map(Vec::as_slice).collect();
    let all: Vec<&[u8]> = fedmsg.iter().chain(&fm).copied().collect();
    report("parse+normalize fedmsg corpus", catalog, &fedmsg);
    report("parse+normalize fedora-messaging corpus", catalog, &fm);
    report("parse+normalize whole corpus", catalog, &all);
    let raw: Vec<&[u8]> = CORPUS
        .iter()
        .flat_map(|c| c.lines())
        .map(str::as_bytes)
        .collect();
    report(
        "parse+normalize corpus lines as stored (with expectations)",
        catalog,
        &raw,
    );
}
