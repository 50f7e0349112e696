//! FMN 3 as the oracle of fmn's decisions (issue 16).
//!
//! A seeded population (5,000 users by default: every tracking rule kind, every filter kind,
//! disabled rules, several destinations; maintainers and groups in dist-git's
//! `pagure_owner_alias.json` shape) and a stream of fedora-messaging messages (real ones from
//! the corpus, then the generated variants of `tests/oracle/cases.py` that their class
//! accepts: other names, fields left out, nulls, non-ASCII, long values, lists of one and of
//! many), their people and packages redrawn from the population, are written to a temporary
//! directory. `tests/oracle/fmn3_driver.py`, run with `.venv-fmn3` (FMN 3.4.0, made by
//! `localstack/bootstrap.sh`), prints what FMN 3's own consumer code notifies; fmn imports the
//! same rules (`fmn3::parse` + `fmn3::import`, what `fmn import fmn3` runs) and matches the
//! same messages (`Catalog::normalize` + `Matcher`, what `fmn match` and the matcher function
//! run). The test prints both counts, made/missed/extra with percentages, the messages whose
//! facts (usernames, artifacts, agent) the two sides computed differently, and checks the
//! issue's targets: at least 99.9 % of FMN 3's notifications made, at most 0.1 % extra, over
//! every message but those FMN 3 crashes on.
//!
//! `cargo test -p fmn-rules --test fmn3_oracle -- --nocapture` prints the figures;
//! `FMN3_ORACLE_USERS`, `FMN3_ORACLE_MESSAGES` (corpus messages) and `FMN3_ORACLE_GENERATED`
//! (generated variants) change the sizes (the benchmark-like run); `FMN3_ORACLE_SHOW=1`
//! prints every difference; `FMN3_ORACLE_DIR=dir` keeps the generated files there (for
//! `fmn3_driver.py dir`, `fmn import fmn3`, `fmn match`).

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

/// The generated variants of `tests/oracle/cases.py` (other people and packages, fields left
/// out, nulls, non-ASCII, long values, lists of one and of many; for classes without an
/// example, a body made from the schema) that their own class accepts: fedora-messaging
/// messages no publisher in the corpus sent.
fn variants() -> Vec<String> {
    let root = root();
    let python = root.join(".venv-oracle/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run localstack/bootstrap.sh",
        python.display()
    );
    let out = Command::new(python)
        .arg(root.join("tests/oracle/oracle.py"))
        .args([
            "cases",
            "--seed",
            "16",
            "--fedora-messaging-only",
            "--fixtures",
        ])
        .arg(root.join("crates/fmn-messages/tests/fixtures"))
        .env("PYTHONHASHSEED", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the oracle's cases failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let case: Value = serde_json::from_str(l).unwrap();
            let generated = case["variant"] != "example" && case["variant"] != "rejected-example";
            (generated && case["oracle"]["valid"] != false).then(|| case["message"].to_string())
        })
        .collect()
}

/// The population and the stream, written where the driver reads them; returns the rules'
/// JSON, the ownership JSON and the raw messages: `messages` drawn from the corpus, then
/// `generated` from the oracle's variants, each with its people and packages redrawn.
fn generate(users: usize, messages: usize, generated: usize) -> (String, String, Vec<String>) {
    let mut rng = Rng(0x16f3_0ac1);
    let pop = Population::for_filters(users * 10);
    let ownership = pop.ownership(&mut rng);
    let rules = common::fmn3_rules(&pop, &mut rng).to_string();
    // FMN 3 consumes fedora-messaging messages only: the fedmsg-era examples are left out.
    let corpus: Vec<String> = common::corpus()
        .into_iter()
        .filter(|raw| raw.contains("\"fedora_messaging_schema\""))
        .collect();
    let mut stream = common::stream(&corpus, &pop, messages, &mut rng);
    if generated > 0 {
        stream.extend(common::stream(&variants(), &pop, generated, &mut rng));
    }
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

/// A message's facts as one side reads them: usernames, packages, the other artifacts
/// (`containers/NAME`, `modules/NAME`, `flatpaks/NAME`), agent.
type Facts = (Vec<String>, Vec<String>, Vec<String>, Option<String>);

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
        let a = &message.artifacts;
        let others = [
            ("containers", &a.containers),
            ("modules", &a.modules),
            ("flatpaks", &a.flatpaks),
        ]
        .into_iter()
        .flat_map(|(kind, names)| names.iter().map(move |n| format!("{kind}/{n}")))
        .collect();
        facts.insert(
            message.id.to_string(),
            (
                usernames,
                packages,
                others,
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

/// FMN 3's facts per message (`fmn3-facts.jsonl`, written by the driver), the messages it
/// crashed on, and why its facts may be missing (its class raised; its install lacks the
/// schema's package, so fedora-messaging's base class answered).
fn fmn3_facts(
    dir: &std::path::Path,
) -> (
    BTreeMap<String, Facts>,
    BTreeSet<String>,
    BTreeMap<String, String>,
) {
    let text = std::fs::read_to_string(dir.join("fmn3-facts.jsonl")).unwrap();
    let mut facts = BTreeMap::new();
    let mut crashed = BTreeSet::new();
    let mut raised = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        if v["crashed"].as_bool() == Some(true) {
            crashed.insert(id.clone());
        }
        if let Some(e) = v["error"].as_str() {
            raised.insert(id.clone(), format!("its class raised {e}"));
        } else if v["class_known"] == false {
            raised.insert(
                id.clone(),
                "its install lacks the schema's package".to_owned(),
            );
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
        facts.insert(
            id,
            (list("usernames"), list("packages"), list("others"), agent),
        );
    }
    (facts, crashed, raised)
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
    let messages = env("FMN3_ORACLE_MESSAGES", 400);
    let generated = env("FMN3_ORACLE_GENERATED", 200);
    let (rules, owners, raws) = generate(users, messages, generated);
    let keep = std::env::var_os("FMN3_ORACLE_DIR").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("fmn3-oracle-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules-api.json"), &rules).unwrap();
    std::fs::write(dir.join("owners.json"), &owners).unwrap();
    std::fs::write(dir.join("messages.jsonl"), raws.join("\n") + "\n").unwrap();

    let expected_all = fmn3_decisions(&dir);
    let (fmn3_facts, crashed, raised) = fmn3_facts(&dir);
    let (got_all, fmn_facts) = fmn_decisions(&rules, &owners, &raws);
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Outside the targets: only the messages FMN 3 crashes on (docs/decisions.md, "FMN 3 as
    // the oracle for decisions": it sends nothing for them, fmn notifies).
    let mut outside = (0, 0);
    outside.0 = expected_all
        .iter()
        .filter(|d| crashed.contains(&d.0))
        .count();
    outside.1 = got_all.iter().filter(|d| crashed.contains(&d.0)).count();
    let inside = |set: &BTreeSet<Decision>| -> BTreeSet<Decision> {
        set.iter()
            .filter(|d| !crashed.contains(&d.0))
            .cloned()
            .collect()
    };
    let expected = inside(&expected_all);
    let got = inside(&got_all);
    println!(
        "outside the targets: {} messages FMN 3 crashed on; their notifications: FMN 3 {}, \
         fmn {}",
        crashed.len(),
        outside.0,
        outside.1
    );

    let topics: BTreeMap<String, String> = raws
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(r).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("id"), s("topic"))
        })
        .collect();
    // Both sides take a message's facts from its class (fmn from the catalog entry that
    // mirrors it): every message is inside the targets; where the facts differ, they are
    // printed (the first ten), with the message's topic.
    let differing: Vec<(&String, &Facts)> = fmn3_facts
        .iter()
        .filter(|(id, f)| fmn_facts.get(*id) != Some(f) && fmn_facts.contains_key(*id))
        .collect();
    println!(
        "facts (usernames, packages, containers/modules/flatpaks, agent) differ on {} of {} \
         messages",
        differing.len(),
        fmn3_facts.len()
    );
    for (id, f) in differing.iter().take(10) {
        println!(
            "  {}: FMN 3 {f:?}{}, fmn {:?}",
            topics.get(*id).map_or("", String::as_str),
            raised
                .get(*id)
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            fmn_facts.get(*id)
        );
    }
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
