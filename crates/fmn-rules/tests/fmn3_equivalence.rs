//! After importing FMN 3's rules, fmn notifies exactly the (message, protocol, address)
//! triples FMN 3.4.0 itself produced on the same messages and maintainer data
//! (fixtures/fmn3, see its README).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a broken fixture should fail loudly"
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use fmn_rules::{Matcher, Ownership, fmn3};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fmn3");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()
}

#[test]
fn fmn3_decisions_are_reproduced_exactly() {
    let rules = fmn3::parse(&read("rules-api.json")).unwrap();
    let prefs = fmn3::import(&rules).unwrap();
    let ownership = Arc::new(Ownership::from_json(&read("owners.json")).unwrap());
    let matcher = Matcher::build_with(prefs, ownership).unwrap();
    let catalog = fmn_messages::Catalog::builtin();
    let mut got = BTreeSet::new();
    for line in read("messages.jsonl").lines() {
        let raw: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = catalog.normalize(&raw).unwrap();
        for n in matcher.matches(&message) {
            for a in n.addresses {
                got.insert(format!("{}\t{}\t{a}", message.id, n.context.as_str()));
            }
        }
    }
    let expected: BTreeSet<String> = read("expected.tsv").lines().map(str::to_owned).collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} expected, {} produced\nmissing ({}): {missing:#?}\nextra ({}): {extra:#?}",
        expected.len(),
        got.len(),
        missing.len(),
        extra.len()
    );
}
