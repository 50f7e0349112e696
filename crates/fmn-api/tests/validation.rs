//! Property tests of the validation layer: whatever a client sends as a filter, parsing and
//! validation answer with a value or a 4xx error naming a field, never a panic or a 5xx;
//! and whatever they accept compiles in the rules engine.
#![allow(clippy::unwrap_used)]

use fmn_api::{ApiError, FilterIn, Limits, parse_json, validate::check_preferences};
use fmn_rules::{Context, ContextKind, Matcher, Preferences};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Arbitrary JSON, biased towards the shapes of rules.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z*.()\\[\\]\\\\^$|?+{}0-9 ]{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("topic"),
            Just("topic_regex"),
            Just("application"),
            Just("severity"),
            Just("user"),
            Just("agent"),
            Just("artifact"),
            Just("artifact_regex"),
            Just("owned_by"),
            Just("owned_by_group"),
            Just("field"),
            Just("body_regex"),
            Just("rpms"),
            Just("error"),
            Just("/a/b"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("kind"),
                    Just("negate"),
                    Just("glob"),
                    Just("regex"),
                    Just("names"),
                    Just("levels"),
                    Just("usernames"),
                    Just("artifacts"),
                    Just("type"),
                    Just("name"),
                    Just("groups"),
                    Just("pointer"),
                    Just("equals"),
                    Just("one_of"),
                    Just("bogus"),
                ]
                .prop_map(str::to_owned),
                inner,
                0..4,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check(body: &Value) -> Result<Preferences, ApiError> {
    let filter: FilterIn = parse_json(body.to_string().as_bytes())?;
    let prefs = Preferences {
        user: "alice".into(),
        contexts: [(
            ContextKind::Email,
            Context {
                filters: vec![filter.into_filter("f1".into())],
                ..Context::default()
            },
        )]
        .into(),
    };
    check_preferences(&prefs, &Limits::default())?;
    Ok(prefs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_filter_body_is_accepted_or_refused_with_a_4xx(rules in prop::collection::vec(json_value(), 0..4), name in ".{0,120}") {
        let body = json!({"name": name, "rules": rules});
        match check(&body) {
            Ok(prefs) => {
                // Accepted preferences always compile, and re-serialise to what was read.
                prop_assert!(Matcher::build([prefs]).is_ok());
            }
            Err(e) => {
                prop_assert!(e.status.is_client_error(), "{:?}", e);
                prop_assert!(!e.body.message.is_empty());
            }
        }
    }

    #[test]
    fn overlong_arguments_are_refused_naming_the_field(len in 501usize..2000) {
        let body = json!({"name": "x", "rules": [{"kind": "topic", "glob": "a".repeat(len)}]});
        let e = check(&body).unwrap_err();
        prop_assert_eq!(e.body.error.as_str(), "limit_exceeded");
        prop_assert_eq!(e.body.field.as_deref(), Some("contexts.email.filters[0].rules[0].glob"));
    }

    #[test]
    fn too_many_rules_are_refused(n in 21usize..40) {
        let rules: Vec<Value> = (0..n).map(|_| json!({"kind": "user"})).collect();
        let e = check(&json!({"name": "x", "rules": rules})).unwrap_err();
        prop_assert_eq!(e.body.error.as_str(), "limit_exceeded");
        prop_assert_eq!(e.body.field.as_deref(), Some("contexts.email.filters[0].rules"));
    }
}

#[test]
fn valid_rules_of_every_kind_are_accepted() {
    for kind in fmn_api::rule_kinds() {
        // body_regex only beside a rule that selects messages (the regex budget).
        let body = json!({"name": "x", "rules": [{"kind": "application", "names": ["bodhi"]}, kind.example]});
        assert!(check(&body).is_ok(), "{}", kind.kind);
    }
}

#[test]
fn the_regex_budget_is_enforced_naming_the_limit() {
    let refused = |body: Value| check(&body).expect_err("refused");
    let body_regex = json!({"kind": "body_regex", "regex": "karma"});
    // Alone, or beside a negated rule, a body_regex would run on every bus message.
    for rules in [
        json!([body_regex]),
        json!([{"kind": "application", "names": ["bodhi"], "negate": true}, body_regex]),
        json!([{"kind": "severity", "levels": ["error"]}, body_regex]),
    ] {
        let e = refused(json!({"name": "x", "rules": rules}));
        assert_eq!(e.body.error, "limit_exceeded", "{rules}");
        let last = rules.as_array().map_or(0, |r| r.len() - 1);
        let field = format!("contexts.email.filters[0].rules[{last}].regex");
        assert_eq!(e.body.field.as_deref(), Some(field.as_str()));
        assert!(
            e.body.message.contains("selects messages"),
            "{}",
            e.body.message
        );
    }
    assert!(
        check(&json!({"name": "x", "rules": [{"kind": "topic", "glob": "*.bodhi.*"}, body_regex]}))
            .is_ok()
    );

    // A pattern that compiles to more than the per-regex budget.
    let e = refused(json!({"name": "x", "rules": [{"kind": "topic_regex", "regex": "\\w{200}"}]}));
    assert_eq!(
        e.body.field.as_deref(),
        Some("contexts.email.filters[0].rules[0].regex")
    );
    assert!(e.body.message.contains("too costly"), "{}", e.body.message);

    // The per-user cap counts regex rules over every context.
    let regex_rules: Vec<Value> = (0..11)
        .map(|i| json!({"kind": "topic_regex", "regex": format!("^org\\.fedoraproject\\.prod\\.app{i}\\.")}))
        .collect();
    let e = refused(json!({"name": "x", "rules": regex_rules}));
    assert_eq!(e.body.error, "limit_exceeded");
    assert_eq!(
        e.body.field.as_deref(),
        Some("contexts.email.filters[0].rules[10]")
    );
    assert!(
        e.body.message.contains("at most 10 regex rules per user"),
        "{}",
        e.body.message
    );
    assert!(check(&json!({"name": "x", "rules": regex_rules[..10]})).is_ok());
}
