//! FMN 3 as the oracle of fmn's decisions (issue 16).
//!
//! A seeded population (5,000 users by default: every tracking rule kind, every filter kind,
//! disabled rules, several destinations; maintainers and groups in dist-git's
//! `pagure_owner_alias.json` shape) and a stream of real fedora-messaging messages from the
//! corpus with their people and packages redrawn from the population are written to a
//! temporary directory. `tests/oracle/fmn3_driver.py`, run with `.venv-fmn3` (FMN 3.4.0,
//! made by `localstack/bootstrap.sh`), prints what FMN 3's own consumer code notifies; fmn
//! imports the same rules (`fmn3::parse` + `fmn3::import`, what `fmn import fmn3` runs) and
//! matches the same messages (`Matcher`, what `fmn match` runs). The test prints both counts,
//! made/missed/extra with percentages, and checks the targets: at least 99.9 % of
//! FMN 3's notifications made, at most 0.1 % extra.
//!
//! `cargo test -p fmn-rules --test fmn3_oracle -- --nocapture` prints the figures;
//! `FMN3_ORACLE_USERS` and `FMN3_ORACLE_MESSAGES` change the sizes (the benchmark-like run);
//! `FMN3_ORACLE_SHOW=1` prints every difference; `FMN3_ORACLE_DIR=dir` keeps the generated
//! files there (for `fmn3_driver.py dir`, `fmn import fmn3`, `fmn match`).

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a test: a panic is a failure with its reason, the figures are its output"
)]

#[path = "../benches/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use common::{Population, Rng};
use fmn_rules::{Matcher, fmn3};
use serde_json::Value;

/// (message id, protocol, address): one notification.
type Decision = (String, String, String);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The population and the stream, written where the driver reads them; returns the rules'
/// JSON, the ownership JSON and the raw messages.
fn generate(users: usize, messages: usize) -> (String, String, Vec<String>) {
    let mut rng = Rng(0x16f3_0ac1);
    let pop = Population::for_filters(users * 10);
    let ownership = pop.ownership(&mut rng);
    let rules = common::fmn3_rules(&pop, &mut rng).to_string();
    // FMN 3 consumes fedora-messaging messages only: the fedmsg-era examples are left out.
    let corpus: Vec<String> = common::corpus()
        .into_iter()
        .filter(|raw| raw.contains("\"fedora_messaging_schema\""))
        .collect();
    let stream = common::stream(&corpus, &pop, messages, &mut rng);
    let raws = stream
        .into_iter()
        .enumerate()
        .map(|(i, (raw, _))| {
            // Corpus messages are drawn more than once: each gets an id of its own.
            let mut v: Value = serde_json::from_str(&raw).unwrap();
            v["id"] = Value::String(format!("00000000-0000-4000-8000-{i:012}"));
            v.to_string()
        })
        .collect();
    (rules, common::owners_json(&ownership), raws)
}

/// What FMN 3 notifies, from `tests/oracle/fmn3_driver.py`.
fn fmn3_decisions(dir: &std::path::Path) -> BTreeSet<Decision> {
    let root = root();
    let python = root.join(".venv-fmn3/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run localstack/bootstrap.sh",
        python.display()
    );
    let out = Command::new(python)
        .arg(root.join("tests/oracle/fmn3_driver.py"))
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the FMN 3 driver failed: {stderr}");
    println!("FMN 3 driver: {}", stderr.lines().last().unwrap_or(""));
    // What FMN 3 crashed on or could not load, each with its reason (the first 20).
    for line in stderr
        .lines()
        .filter(|l| l.starts_with("crashed") || l.starts_with("unloadable"))
        .take(20)
    {
        println!("  {line}");
    }
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("id"), s("protocol"), s("address"))
        })
        .collect()
}

/// A message's facts as one side reads them: usernames, packages, agent.
type Facts = (Vec<String>, Vec<String>, Option<String>);

/// What fmn notifies after importing the same rules, and the facts it read per message.
fn fmn_decisions(
    rules: &str,
    owners: &str,
    raws: &[String],
) -> (BTreeSet<Decision>, BTreeMap<String, Facts>) {
    let parsed = fmn3::parse(rules).unwrap();
    let prefs = fmn3::import(&parsed).unwrap();
    let ownership = Arc::new(fmn_rules::Ownership::from_json(owners).unwrap());
    let matcher = Matcher::build_with(prefs, ownership).unwrap();
    let catalog = fmn_messages::Catalog::builtin();
    let mut got = BTreeSet::new();
    let mut facts = BTreeMap::new();
    for raw in raws {
        let Ok(message) = catalog.normalize_bytes(raw.as_bytes()) else {
            continue;
        };
        let mut usernames: Vec<String> = message.usernames.iter().map(|u| u.to_string()).collect();
        usernames.sort();
        usernames.dedup();
        let mut packages: Vec<String> = message
            .artifacts
            .rpms
            .iter()
            .map(|p| p.to_string())
            .collect();
        packages.sort();
        packages.dedup();
        facts.insert(
            message.id.to_string(),
            (
                usernames,
                packages,
                message.agent.as_ref().map(|a| a.to_string()),
            ),
        );
        for n in matcher.matches(&message) {
            for a in n.addresses {
                got.insert((
                    message.id.to_string(),
                    n.context.as_str().to_owned(),
                    a.to_string(),
                ));
            }
        }
    }
    (got, facts)
}

/// FMN 3's facts per message (`fmn3-facts.jsonl`, written by the driver), and the messages
/// it crashed on.
fn fmn3_facts(dir: &std::path::Path) -> (BTreeMap<String, Facts>, BTreeSet<String>) {
    let text = std::fs::read_to_string(dir.join("fmn3-facts.jsonl")).unwrap();
    let mut facts = BTreeMap::new();
    let mut crashed = BTreeSet::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        if v["crashed"].as_bool() == Some(true) {
            crashed.insert(id.clone());
        }
        let list = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let agent = v["agent"].as_str().map(str::to_owned);
        facts.insert(id, (list("usernames"), list("packages"), agent));
    }
    (facts, crashed)
}

fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        100.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[test]
fn fmn_decides_as_fmn3_on_a_generated_population() {
    let users = env("FMN3_ORACLE_USERS", 5_000);
    let messages = env("FMN3_ORACLE_MESSAGES", 600);
    let (rules, owners, raws) = generate(users, messages);
    let keep = std::env::var_os("FMN3_ORACLE_DIR").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("fmn3-oracle-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules-api.json"), &rules).unwrap();
    std::fs::write(dir.join("owners.json"), &owners).unwrap();
    std::fs::write(dir.join("messages.jsonl"), raws.join("\n") + "\n").unwrap();

    let expected_all = fmn3_decisions(&dir);
    let (fmn3_facts, crashed) = fmn3_facts(&dir);
    let (got_all, fmn_facts) = fmn_decisions(&rules, &owners, &raws);
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Outside the targets: messages FMN 3 crashes on (docs/decisions.md, "FMN 3 as the oracle
    // for decisions": it sends nothing, fmn notifies), and messages whose facts (usernames,
    // packages, agent) the two sides read differently: fmn reads the headers the publisher
    // wrote, FMN 3 its installed class's properties; where the corpus or the generator's
    // redrawing left them disagreeing, the decisions differ for that reason, which the
    // field-by-field differential test (fmn-messages' `oracle`) measures.
    let excluded = |id: &str| -> Option<&'static str> {
        if crashed.contains(id) {
            Some("FMN 3 crashes")
        } else if fmn3_facts.get(id) != fmn_facts.get(id) {
            Some("facts differ")
        } else {
            None
        }
    };
    let mut outside: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for d in &expected_all {
        if let Some(why) = excluded(&d.0) {
            outside.entry(why).or_default().0 += 1;
        }
    }
    for d in &got_all {
        if let Some(why) = excluded(&d.0) {
            outside.entry(why).or_default().1 += 1;
        }
    }
    let inside = |set: &BTreeSet<Decision>| -> BTreeSet<Decision> {
        set.iter()
            .filter(|d| excluded(&d.0).is_none())
            .cloned()
            .collect()
    };
    let expected = inside(&expected_all);
    let got = inside(&got_all);
    let differing = raws.len()
        - fmn3_facts
            .iter()
            .filter(|(id, f)| fmn_facts.get(*id) == Some(f))
            .count();
    println!(
        "outside the targets: {} messages FMN 3 crashed on, {differing} whose facts differ; \
         their notifications (FMN 3, fmn): {outside:?}",
        crashed.len()
    );

    let topics: BTreeMap<String, String> = raws
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(r).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("id"), s("topic"))
        })
        .collect();
    let missed: Vec<&Decision> = expected.difference(&got).collect();
    let extra: Vec<&Decision> = got.difference(&expected).collect();
    let made = expected.len() - missed.len();
    println!(
        "{users} users, {} messages: FMN 3 {} notifications, fmn {}; made {made} ({:.3} %), \
         missed {} ({:.3} %), extra {} ({:.3} %)",
        raws.len(),
        expected.len(),
        got.len(),
        pct(made, expected.len()),
        missed.len(),
        pct(missed.len(), expected.len()),
        extra.len(),
        pct(extra.len(), expected.len()),
    );
    let show = std::env::var_os("FMN3_ORACLE_SHOW").is_some();
    let mut by_topic: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (kind, list) in [("missed", &missed), ("extra", &extra)] {
        for d in list.iter() {
            *by_topic
                .entry((kind, topics.get(&d.0).map_or("", String::as_str)))
                .or_default() += 1;
            if show {
                println!("{kind}: {d:?}");
            }
        }
    }
    for ((kind, topic), n) in &by_topic {
        println!("  {kind} {n:>5}  {topic}");
    }
    assert!(users >= 5_000 || std::env::var_os("FMN3_ORACLE_USERS").is_some());
    assert!(
        expected.len() >= 1_000,
        "too few notifications to judge: {}",
        expected.len()
    );
    assert!(
        pct(made, expected.len()) >= 99.9,
        "fmn made {made} of FMN 3's {} notifications",
        expected.len()
    );
    assert!(
        pct(extra.len(), expected.len()) <= 0.1,
        "fmn made {} notifications FMN 3 did not",
        extra.len()
    );
}
