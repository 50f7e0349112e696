use std::sync::Arc;

use fmn_messages::Message;
use serde_json::json;

use super::*;
use crate::ownership::Ownership;
use crate::prefs::{ContextKind, Preferences};

fn msg(raw: serde_json::Value) -> Message {
    fmn_messages::Catalog::builtin().normalize(&raw).unwrap()
}

fn build_msg(owner: &str, name: &str) -> Message {
    msg(json!({
        "topic": "org.fedoraproject.prod.buildsys.build.state.change", "msg_id": "m",
        "msg": {"owner": owner, "name": name, "version": "1", "release": "1", "build_id": 7},
    }))
}

fn prefs(filters: serde_json::Value) -> Preferences {
    serde_json::from_value(json!({"user": "alice", "contexts": {"email": {
        "addresses": [{"address": "a@x.org", "confirmed": true},
                      {"address": "b@x.org", "confirmed": false}],
        "filters": filters}}}))
    .unwrap()
}

fn hits(filters: serde_json::Value, m: &Message) -> Vec<Vec<String>> {
    Matcher::build([prefs(filters)])
        .unwrap()
        .matches(m)
        .into_iter()
        .map(|n| n.filters.into_iter().map(|f| f.id).collect())
        .collect()
}

#[test]
fn table_of_rules() {
    let kernel_by_bob = build_msg("bob", "kernel");
    let kernel_by_alice = build_msg("alice", "kernel");
    let cases = [
        (
            json!([{"id": "t", "name": "t", "rules": [{"kind": "topic", "glob": "*.buildsys.*"}]}]),
            &kernel_by_bob,
            1,
        ),
        (
            json!([{"id": "t", "name": "t", "rules": [{"kind": "topic", "glob": "*.bodhi.*"}]}]),
            &kernel_by_bob,
            0,
        ),
        (
            json!([{"id": "u", "name": "u", "rules": [{"kind": "user"}]}]),
            &kernel_by_alice,
            1,
        ),
        (
            json!([{"id": "u", "name": "u", "rules": [{"kind": "user"}]}]),
            &kernel_by_bob,
            0,
        ),
        (
            json!([{"id": "u", "name": "u", "rules": [{"kind": "user", "usernames": ["bob"]}]}]),
            &kernel_by_bob,
            1,
        ),
        (
            json!([{"id": "a", "name": "a", "rules": [
            {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]},
            {"kind": "agent", "negate": true}]}]),
            &kernel_by_alice,
            0,
        ),
        (
            json!([{"id": "a", "name": "a", "rules": [
            {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]},
            {"kind": "agent", "negate": true}]}]),
            &kernel_by_bob,
            1,
        ),
        (
            json!([{"id": "e", "name": "no rules", "rules": []}]),
            &kernel_by_bob,
            0,
        ),
        (
            json!([{"id": "i", "name": "inactive", "active": false, "rules": [{"kind": "topic", "glob": "*"}]}]),
            &kernel_by_bob,
            0,
        ),
        (
            json!([{"id": "p", "name": "app", "rules": [{"kind": "application", "names": ["BuildSys"]}]}]),
            &kernel_by_bob,
            1,
        ),
    ];
    for (i, (filters, m, expected)) in cases.into_iter().enumerate() {
        assert_eq!(hits(filters, m).len(), expected, "case {i}");
    }
}

fn one(rule: serde_json::Value) -> serde_json::Value {
    json!([{"id": "f", "name": "f", "rules": [rule]}])
}

#[test]
fn table_of_every_rule_kind() {
    let m = build_msg("bob", "kernel");
    let cases = [
        (
            json!({"kind": "topic_regex", "regex": r"buildsys\.build\."}),
            true,
        ),
        (json!({"kind": "topic_regex", "regex": "^buildsys"}), false),
        (
            json!({"kind": "severity", "levels": ["info", "error"]}),
            true,
        ),
        (json!({"kind": "severity", "levels": ["debug"]}), false),
        (
            json!({"kind": "severity", "levels": ["debug"], "negate": true}),
            true,
        ),
        (json!({"kind": "agent", "usernames": ["bob"]}), true),
        (json!({"kind": "agent"}), false),
        (
            json!({"kind": "artifact_regex", "type": "rpms", "regex": "^kern"}),
            true,
        ),
        (
            json!({"kind": "artifact_regex", "type": "modules", "regex": "kern"}),
            false,
        ),
        (
            json!({"kind": "field", "pointer": "/name", "equals": "kernel"}),
            true,
        ),
        (
            json!({"kind": "field", "pointer": "/name", "equals": "glibc"}),
            false,
        ),
        (
            json!({"kind": "field", "pointer": "/build_id", "one_of": [6, 7]}),
            true,
        ),
        (
            json!({"kind": "field", "pointer": "/build_id", "regex": "^7$"}),
            true,
        ),
        (
            json!({"kind": "field", "pointer": "/missing", "one_of": [null]}),
            false,
        ),
        (
            json!({"kind": "body_regex", "regex": r#""owner":"bob""#}),
            true,
        ),
        (json!({"kind": "body_regex", "regex": "carol"}), false),
        (json!({"kind": "owned_by", "usernames": ["bob"]}), false),
    ];
    for (i, (rule, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            hits(one(rule.clone()), &m).len(),
            usize::from(expected),
            "case {i}: {rule}"
        );
    }
}

#[test]
fn ownership_rules_read_the_ownership_data() {
    let m = build_msg("bob", "kernel");
    let ownership = Arc::new(
        Ownership::from_json(r#"{"rpms": {"kernel": ["alice", "@kernel-sig"]}}"#).unwrap(),
    );
    let cases = [
        (json!({"kind": "owned_by"}), true),
        (json!({"kind": "owned_by", "usernames": ["bob"]}), false),
        (
            json!({"kind": "owned_by_group", "groups": ["kernel-sig"]}),
            true,
        ),
        (
            json!({"kind": "owned_by_group", "groups": ["@kernel-sig"]}),
            true,
        ),
        (
            json!({"kind": "owned_by_group", "groups": ["python-sig"]}),
            false,
        ),
    ];
    for (i, (rule, expected)) in cases.into_iter().enumerate() {
        let matcher = Matcher::build_with([prefs(one(rule))], ownership.clone()).unwrap();
        assert_eq!(matcher.matches(&m).len(), usize::from(expected), "case {i}");
    }
}

#[test]
fn validation_names_filter_rule_and_argument() {
    let cases = [
        (
            json!({"kind": "topic_regex", "regex": "("}),
            "topic_regex: regex:",
        ),
        (
            json!({"kind": "severity", "levels": ["loud"]}),
            "severity: levels: \"loud\"",
        ),
        (
            json!({"kind": "severity", "levels": []}),
            "severity: levels: must not be empty",
        ),
        (
            json!({"kind": "application", "names": []}),
            "application: names:",
        ),
        (
            json!({"kind": "artifact_regex", "type": "debs", "regex": "x"}),
            "artifact_regex: type:",
        ),
        (
            json!({"kind": "owned_by_group", "groups": []}),
            "owned_by_group: groups:",
        ),
        (
            json!({"kind": "field", "pointer": "name", "equals": 1}),
            "field: pointer:",
        ),
        (
            json!({"kind": "field", "pointer": "/a"}),
            "field: equals, one_of, regex",
        ),
        (
            json!({"kind": "field", "pointer": "/a", "equals": 1, "regex": "x"}),
            "field: equals, one_of, regex",
        ),
        (
            json!({"kind": "body_regex", "regex": "[a"}),
            "body_regex: regex:",
        ),
    ];
    for (rule, want) in cases {
        let err = Matcher::build([prefs(one(rule.clone()))]).unwrap_err();
        assert_eq!((err.filter.as_str(), err.rule), ("f", 1), "{rule}");
        assert!(err.to_string().contains(want), "{rule}: {err}");
    }
    let err = Matcher::build([prefs(
        json!([{"id": "g", "name": "g", "addresses": ["z@x.org"],
        "rules": [{"kind": "topic", "glob": "*"}]}]),
    )])
    .unwrap_err();
    assert_eq!((err.filter.as_str(), err.rule), ("g", 0));
    assert!(err.problem.contains("addresses: \"z@x.org\""), "{err}");
}

#[test]
fn filters_choose_their_addresses() {
    let m = build_msg("bob", "kernel");
    let p: Preferences = serde_json::from_value(json!({"user": "alice", "contexts": {"email": {
        "addresses": [{"address": "a@x.org", "confirmed": true},
                      {"address": "b@x.org", "confirmed": true},
                      {"address": "c@x.org", "confirmed": false}],
        "filters": [
            {"id": "f1", "name": "f1", "addresses": ["b@x.org"], "rules": [{"kind": "topic", "glob": "*"}]},
            {"id": "f2", "name": "f2", "addresses": ["c@x.org"], "rules": [{"kind": "topic", "glob": "*"}]},
            {"id": "f3", "name": "f3", "addresses": ["a@x.org"], "rules": [{"kind": "topic", "glob": "x"}]}]}}}))
    .unwrap();
    let got = Matcher::build([p]).unwrap().matches(&m);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].addresses, ["b@x.org"]);
    assert_eq!(
        got[0]
            .filters
            .iter()
            .map(|f| f.id.as_str())
            .collect::<Vec<_>>(),
        ["f1"]
    );
}

#[test]
fn a_feed_context_needs_no_address_but_others_do() {
    let m = build_msg("bob", "kernel");
    let any = json!([{"id": "f", "name": "f", "rules": [{"kind": "topic", "glob": "*"}]}]);
    let p: Preferences = serde_json::from_value(json!({"user": "alice", "contexts": {
        "feed": {"filters": any}, "irc": {"filters": any}}}))
    .unwrap();
    let got = Matcher::build([p]).unwrap().matches(&m);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].context, ContextKind::Feed);
    assert_eq!(got[0].addresses, [crate::OWN_FEED]);
}

#[test]
fn an_inbox_context_delivers_to_its_one_implicit_address() {
    let m = build_msg("bob", "kernel");
    let any = json!([{"id": "f", "name": "f", "rules": [{"kind": "topic", "glob": "*"}]}]);
    // Addresses an inbox context somehow holds are never used: the inbox is the address.
    let p: Preferences = serde_json::from_value(json!({"user": "alice", "contexts": {
        "inbox": {"filters": any, "addresses": [{"address": "x", "confirmed": true}]}}}))
    .unwrap();
    let got = Matcher::build([p]).unwrap().matches(&m);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].context, ContextKind::Inbox);
    assert_eq!(got[0].addresses, [crate::OWN_INBOX]);
}

#[test]
fn one_notification_per_context_naming_every_filter() {
    let m = build_msg("bob", "kernel");
    let got = hits(
        json!([
            {"id": "f1", "name": "all builds", "rules": [{"kind": "topic", "glob": "*build*"}]},
            {"id": "f2", "name": "nothing", "rules": [{"kind": "topic", "glob": "x"}]},
            {"id": "f3", "name": "kernel", "rules": [{"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]}]},
        ]),
        &m,
    );
    assert_eq!(got, vec![vec!["f1".to_owned(), "f3".to_owned()]]);
}

#[test]
fn only_confirmed_addresses() {
    let m = build_msg("bob", "kernel");
    let matcher = Matcher::build([prefs(
        json!([{"id": "f", "name": "f", "rules": [{"kind": "topic", "glob": "*"}]}]),
    )])
    .unwrap();
    assert_eq!(matcher.matches(&m)[0].addresses, ["a@x.org"]);
}

#[test]
fn disabled_addresses_receive_nothing() {
    let m = build_msg("bob", "kernel");
    let p: Preferences = serde_json::from_value(json!({"user": "alice", "contexts": {"webhook": {
        "addresses": [{"address": "https://a.example/hook", "confirmed": true, "disabled": "10 failures"},
                      {"address": "https://b.example/hook", "confirmed": true, "secret": "s"}],
        "filters": [{"id": "f", "name": "f", "rules": [{"kind": "topic", "glob": "*"}]}]}}}))
    .unwrap();
    let got = Matcher::build([p.clone()]).unwrap().matches(&m);
    assert_eq!(got[0].addresses, ["https://b.example/hook"]);
    let mut only_disabled = p;
    if let Some(ctx) = only_disabled.contexts.values_mut().next() {
        ctx.addresses.truncate(1);
    }
    assert!(
        Matcher::build([only_disabled])
            .unwrap()
            .matches(&m)
            .is_empty()
    );
}

#[test]
fn lenient_build_leaves_out_only_the_broken_user() {
    let good = prefs(json!([{"id": "f", "name": "f", "rules": [{"kind": "topic", "glob": "*"}]}]));
    let mut broken = good.clone();
    broken.user = "mallory".into();
    if let Some(ctx) = broken.contexts.values_mut().next() {
        ctx.filters[0].rules = vec![
            serde_json::from_value(
                json!({"kind": "artifact", "artifacts": [{"type": "debs", "name": "x"}]}),
            )
            .unwrap(),
        ];
    }
    assert!(Matcher::build([good.clone(), broken.clone()]).is_err());
    let (matcher, skipped) = Matcher::build_lenient([good, broken], Arc::default());
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].user, "mallory");
    let users: Vec<_> = matcher
        .matches(&build_msg("bob", "kernel"))
        .into_iter()
        .map(|n| n.user)
        .collect();
    assert_eq!(users, ["alice"]);
}

#[test]
fn bad_rules_are_named() {
    let err = Matcher::build([prefs(json!([{"id": "f", "name": "f", "rules": [
        {"kind": "topic", "glob": "*"},
        {"kind": "artifact", "artifacts": [{"type": "debs", "name": "x"}]}]}]))])
    .unwrap_err();
    assert_eq!((err.filter.as_str(), err.rule), ("f", 2));
    assert!(err.problem.contains("artifacts.type"), "{err}");
}

#[test]
fn matcher_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Matcher>();
}
