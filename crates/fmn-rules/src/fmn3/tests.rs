//! Crafted cases: each tracking rule and each generation filter, as FMN 3 decides them.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::{Matcher, Ownership};

/// A fedora-messaging Koji build message by `agent` about rpm `pkg`.
fn koji(agent: &str, pkg: &str, severity: i64) -> fmn_messages::Message {
    let raw = json!({
        "id": "m1",
        "topic": "org.fedoraproject.prod.buildsys.build.state.change",
        "headers": {"fedora_messaging_schema": "koji_fedoramessaging.build.BuildStateChangeV1",
                    "fedora_messaging_severity": severity,
                    format!("fedora_messaging_user_{agent}"): true,
                    format!("fedora_messaging_rpm_{pkg}"): true},
        "body": {"owner": agent, "name": pkg, "version": "1", "release": "1", "epoch": null,
                 "build_id": 1, "task_id": 2, "new": 0, "old": null, "attribute": "state",
                 "instance": "primary", "request": [], "base_url": "https://koji",
                 "callback": null, "task": null, "creation_time": "2025-01-01 00:00:00",
                 "completion_time": null},
    });
    fmn_messages::Catalog::builtin().normalize(&raw).unwrap()
}

fn fmn3_rule(tracking: Value, filters: Value) -> Value {
    json!({"id": 1, "name": "r", "disabled": false, "user": {"name": "alice"},
           "tracking_rule": tracking,
           "generation_rules": [{"id": 1, "filters": filters,
               "destinations": [{"protocol": "email", "address": "alice@example.org"},
                                {"protocol": "irc", "address": "alice"}]}]})
}

fn notified(rules: Value, m: &fmn_messages::Message) -> Vec<(String, String)> {
    let rules = parse(&rules.to_string()).unwrap();
    let ownership = Ownership::from_json(
        r#"{"rpms": {"kernel": ["alice", "@kernel-sig"], "glibc": ["carol"]}}"#,
    )
    .unwrap();
    let matcher = Matcher::build_with(import(&rules).unwrap(), Arc::new(ownership)).unwrap();
    let mut out: Vec<(String, String)> = matcher
        .matches(m)
        .into_iter()
        .flat_map(|n| {
            n.addresses
                .into_iter()
                .map(move |a| (n.context.as_str().to_owned(), a))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn tracking_rules() {
    let everything = json!({"my_actions": true});
    let cases = [
        (
            json!({"name": "artifacts-owned", "params": ["alice"]}),
            koji("bob", "kernel", 20),
            true,
        ),
        (
            json!({"name": "artifacts-owned", "params": ["alice"]}),
            koji("bob", "glibc", 20),
            false,
        ),
        (
            json!({"name": "artifacts-owned", "params": []}),
            koji("bob", "kernel", 20),
            false,
        ),
        (
            json!({"name": "artifacts-group-owned", "params": ["kernel-sig"]}),
            koji("bob", "kernel", 20),
            true,
        ),
        (
            json!({"name": "artifacts-group-owned", "params": ["python-sig"]}),
            koji("bob", "kernel", 20),
            false,
        ),
        (
            json!({"name": "artifacts-followed", "params": [{"name": "glibc", "type": "rpms"}]}),
            koji("bob", "glibc", 20),
            true,
        ),
        (
            json!({"name": "artifacts-followed", "params": [{"name": "glibc", "type": "modules"}]}),
            koji("bob", "glibc", 20),
            false,
        ),
        (
            json!({"name": "related-events", "params": null}),
            koji("alice", "glibc", 20),
            true,
        ),
        (
            json!({"name": "related-events", "params": null}),
            koji("bob", "glibc", 20),
            false,
        ),
        (
            json!({"name": "users-followed", "params": ["bob"]}),
            koji("bob", "glibc", 20),
            true,
        ),
        (
            json!({"name": "users-followed", "params": ["carol"]}),
            koji("bob", "glibc", 20),
            false,
        ),
    ];
    for (i, (tracking, m, expected)) in cases.into_iter().enumerate() {
        let got = notified(fmn3_rule(tracking, everything.clone()), &m);
        assert_eq!(!got.is_empty(), expected, "case {i}: {got:?}");
        if expected {
            assert_eq!(got.len(), 2, "both destinations, case {i}");
        }
    }
}

#[test]
fn generation_filters() {
    let track =
        json!({"name": "artifacts-followed", "params": [{"name": "glibc", "type": "rpms"}]});
    let cases = [
        // severities: absent means info and up
        (json!({}), koji("bob", "glibc", 10), false),
        (json!({}), koji("bob", "glibc", 20), true),
        (json!({"severities": null}), koji("bob", "glibc", 10), false),
        (
            json!({"severities": ["debug"]}),
            koji("bob", "glibc", 10),
            true,
        ),
        (
            json!({"severities": ["error"]}),
            koji("bob", "glibc", 20),
            false,
        ),
        // my_actions: false drops the owner's own actions
        (
            json!({"my_actions": false}),
            koji("alice", "glibc", 20),
            false,
        ),
        (json!({"my_actions": false}), koji("bob", "glibc", 20), true),
        (
            json!({"my_actions": true}),
            koji("alice", "glibc", 20),
            true,
        ),
        // applications: case-insensitive against the schema's application
        (
            json!({"applications": ["KOJI"]}),
            koji("bob", "glibc", 20),
            true,
        ),
        (
            json!({"applications": ["bodhi"]}),
            koji("bob", "glibc", 20),
            false,
        ),
        (json!({"applications": []}), koji("bob", "glibc", 20), true),
        (
            json!({"excluded_applications": ["koji"]}),
            koji("bob", "glibc", 20),
            false,
        ),
        (
            json!({"excluded_applications": ["bodhi"]}),
            koji("bob", "glibc", 20),
            true,
        ),
        // topic: an fnmatch glob over the full topic
        (
            json!({"topic": "org.fedoraproject.*.buildsys.*"}),
            koji("bob", "glibc", 20),
            true,
        ),
        (
            json!({"topic": "*.bodhi.*"}),
            koji("bob", "glibc", 20),
            false,
        ),
        (json!({"topic": null}), koji("bob", "glibc", 20), true),
    ];
    for (i, (filters, m, expected)) in cases.into_iter().enumerate() {
        let got = notified(fmn3_rule(track.clone(), filters), &m);
        assert_eq!(!got.is_empty(), expected, "case {i}: {got:?}");
    }
}

#[test]
fn duplicates_collapse_and_disabled_rules_notify_nothing() {
    let track =
        json!({"name": "artifacts-followed", "params": [{"name": "glibc", "type": "rpms"}]});
    let mut a = fmn3_rule(track.clone(), json!({}));
    let mut b = fmn3_rule(
        json!({"name": "users-followed", "params": ["bob"]}),
        json!({}),
    );
    b["id"] = json!(2);
    let m = koji("bob", "glibc", 20);
    let rules = parse(&json!([a.clone(), b.clone()]).to_string()).unwrap();
    let matcher = Matcher::build(import(&rules).unwrap()).unwrap();
    let hits = matcher.matches(&m);
    assert_eq!(hits.len(), 2, "one notification per context: {hits:?}");
    assert!(
        hits.iter()
            .all(|n| n.filters.len() == 2 && n.addresses.len() == 1)
    );
    a["disabled"] = json!(true);
    b["disabled"] = json!(true);
    assert!(notified(json!([a, b]), &m).is_empty());
}

#[test]
fn generation_rules_deliver_to_their_own_destinations() {
    let rule = json!({"id": 7, "name": "r", "disabled": false, "user": {"name": "alice"},
        "tracking_rule": {"name": "users-followed", "params": ["bob"]},
        "generation_rules": [
            {"id": 1, "filters": {"severities": ["error"]},
             "destinations": [{"protocol": "email", "address": "urgent@example.org"}]},
            {"id": 2, "filters": {},
             "destinations": [{"protocol": "email", "address": "all@example.org"},
                              {"protocol": "matrix", "address": "@alice:fedora.im"}]}]});
    assert_eq!(
        notified(rule.clone(), &koji("bob", "glibc", 20)),
        [
            ("email".into(), "all@example.org".into()),
            ("matrix".into(), "@alice:fedora.im".into())
        ]
    );
    assert_eq!(notified(rule, &koji("bob", "glibc", 40)).len(), 3);
}

#[test]
fn bad_input_is_named() {
    let bad = fmn3_rule(json!({"name": "nobody-knows", "params": []}), json!({}));
    let err = import(&parse(&bad.to_string()).unwrap()).unwrap_err();
    assert_eq!((err.rule.as_str(), err.user.as_str()), ("1", "alice"));
    assert!(err.problem.contains("nobody-knows"), "{err}");
    let mut bad = fmn3_rule(json!({"name": "related-events"}), json!({}));
    bad["generation_rules"][0]["destinations"][0]["protocol"] = json!("pigeon");
    let err = import(&parse(&bad.to_string()).unwrap()).unwrap_err();
    assert!(err.problem.contains("destinations.protocol"), "{err}");
}
