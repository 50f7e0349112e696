//! Templates: ready-made filters a user starts from.

use fmn_rules::{Filter, Rule, RuleKind};

/// A template: a name, what it is for, and its filters.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The name, for applying it.
    pub name: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Its filters (ids are replaced when applied).
    pub filters: Vec<Filter>,
}

fn rule(negate: bool, kind: RuleKind) -> Rule {
    Rule { negate, kind }
}

/// The noisy build-system chatter a packager does not want: scratch builds and repository
/// regenerations in koji (`buildsys.task.*`, `buildsys.repo.*`), copr, and CI results.
fn quiet() -> Vec<Rule> {
    vec![
        rule(
            true,
            RuleKind::TopicRegex {
                regex: r"\.buildsys\.(task|repo)\.".into(),
            },
        ),
        rule(
            true,
            RuleKind::TopicRegex {
                regex: r"\.(copr|ci)\.".into(),
            },
        ),
    ]
}

/// Every template.
pub fn templates() -> Vec<Template> {
    let not_mine = || rule(true, RuleKind::Agent { usernames: vec![] });
    let mut packages = vec![
        rule(false, RuleKind::OwnedBy { usernames: vec![] }),
        not_mine(),
    ];
    packages.extend(quiet());
    let mut mentions = vec![
        rule(false, RuleKind::User { usernames: vec![] }),
        not_mine(),
    ];
    mentions.extend(quiet());
    vec![Template {
        name: "packager",
        description: "Events on packages I maintain and events mentioning me, minus my own \
                      actions and the noisy build-system chatter (koji scratch builds and repo \
                      regenerations, copr, CI).",
        filters: vec![
            Filter {
                id: "my-packages".into(),
                name: "My packages".into(),
                active: true,
                oneshot: false,
                rules: packages,
                addresses: None,
            },
            Filter {
                id: "mentions-me".into(),
                name: "Mentions me".into(),
                active: true,
                oneshot: false,
                rules: mentions,
                addresses: None,
            },
        ],
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packager_template_matches_what_it_says() {
        use fmn_rules::{Context, ContextKind, Matcher, Ownership, Preferences};
        let t = templates().remove(0);
        let prefs = Preferences {
            user: "alice".into(),
            contexts: [(
                ContextKind::Email,
                Context {
                    addresses: vec![fmn_rules::Address {
                        address: "a@example.org".into(),
                        confirmed: true,
                        disabled: None,
                        secret: None,
                    }],
                    filters: t.filters,
                    ..Context::default()
                },
            )]
            .into(),
        };
        let mut ownership = Ownership::default();
        ownership.add("rpms", "kernel", "alice");
        let m = Matcher::build_with([prefs], std::sync::Arc::new(ownership)).unwrap();
        let msg = |topic: &str, owner: &str| {
            let raw = serde_json::json!({"topic": topic, "msg_id": "m",
                "msg": {"owner": owner, "name": "kernel", "version": "1", "release": "1",
                        "build_id": 1, "new": 1, "attribute": "state", "instance": "primary",
                        "method": "build", "srpm": "kernel-1-1.src.rpm"}});
            fmn_messages::Catalog::builtin().normalize(&raw).unwrap()
        };
        let build = "org.fedoraproject.prod.buildsys.build.state.change";
        assert_eq!(
            m.matches(&msg(build, "bob")).len(),
            1,
            "bob built my package"
        );
        assert!(m.matches(&msg(build, "alice")).is_empty(), "my own action");
        let scratch = "org.fedoraproject.prod.buildsys.task.state.change";
        assert!(
            m.matches(&msg(scratch, "bob")).is_empty(),
            "scratch build chatter"
        );
    }
}
