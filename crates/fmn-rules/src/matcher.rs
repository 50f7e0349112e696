//! Compiled preferences and message matching.

use fmn_messages::Message;
use serde::{Deserialize, Serialize};

use crate::prefs::{ContextKind, FilterRef, Preferences, RuleKind};

/// Preferences that cannot be compiled, naming where the problem is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("user {user}, {context} filter {filter:?}, rule {rule}: {problem}")]
pub struct BuildError {
    /// The owner.
    pub user: String,
    /// The context.
    pub context: &'static str,
    /// The filter id.
    pub filter: String,
    /// The rule's position in the filter, from 1.
    pub rule: usize,
    /// What is wrong.
    pub problem: String,
}

/// One notification: a message for one user in one context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The recipient user.
    pub user: String,
    /// The delivery context.
    pub context: ContextKind,
    /// The confirmed addresses to deliver to.
    pub addresses: Vec<String>,
    /// Every filter that matched.
    pub filters: Vec<FilterRef>,
}

#[derive(Debug)]
enum Test {
    Topic(regex::Regex),
    Application(Vec<String>),
    User(Vec<String>),
    Agent(Vec<String>),
    Artifact(Vec<(String, String)>),
}

impl Test {
    fn holds(&self, m: &Message) -> bool {
        match self {
            Test::Topic(re) => re.is_match(&m.topic),
            Test::Application(names) => names.iter().any(|n| n.eq_ignore_ascii_case(&m.app)),
            Test::User(users) => users.iter().any(|u| m.usernames.contains(u)),
            Test::Agent(users) => m.agent.as_ref().is_some_and(|a| users.contains(a)),
            Test::Artifact(refs) => refs.iter().any(|(kind, name)| {
                m.artifacts
                    .of_type(kind)
                    .is_some_and(|set| set.contains(name))
            }),
        }
    }
}

#[derive(Debug)]
struct CompiledFilter {
    reference: FilterRef,
    rules: Vec<(bool, Test)>,
}

#[derive(Debug)]
struct CompiledContext {
    user: String,
    kind: ContextKind,
    addresses: Vec<String>,
    filters: Vec<CompiledFilter>,
}

/// Every user's active filters, compiled. Immutable and shareable across threads.
#[derive(Debug, Default)]
pub struct Matcher {
    contexts: Vec<CompiledContext>,
}

impl Matcher {
    /// Compiles preferences; a bad rule fails with an error naming it.
    pub fn build(all: impl IntoIterator<Item = Preferences>) -> Result<Matcher, BuildError> {
        let mut contexts = Vec::new();
        for prefs in all {
            for (kind, context) in &prefs.contexts {
                let addresses: Vec<String> = context
                    .addresses
                    .iter()
                    .filter(|a| a.confirmed)
                    .map(|a| a.address.clone())
                    .collect();
                let mut filters = Vec::new();
                for filter in &context.filters {
                    let mut rules = Vec::new();
                    for (i, rule) in filter.rules.iter().enumerate() {
                        let test =
                            compile(&prefs.user, &rule.kind).map_err(|problem| BuildError {
                                user: prefs.user.clone(),
                                context: kind.as_str(),
                                filter: filter.id.clone(),
                                rule: i + 1,
                                problem,
                            })?;
                        rules.push((rule.negate, test));
                    }
                    if filter.active && !rules.is_empty() {
                        filters.push(CompiledFilter {
                            reference: FilterRef {
                                id: filter.id.clone(),
                                name: filter.name.clone(),
                            },
                            rules,
                        });
                    }
                }
                if context.enabled && !addresses.is_empty() && !filters.is_empty() {
                    contexts.push(CompiledContext {
                        user: prefs.user.clone(),
                        kind: *kind,
                        addresses,
                        filters,
                    });
                }
            }
        }
        Ok(Matcher { contexts })
    }

    /// Who is notified of `message`, where, and because of which filters.
    pub fn matches(&self, message: &Message) -> Vec<Notification> {
        self.contexts
            .iter()
            .filter_map(|ctx| {
                let filters: Vec<FilterRef> = ctx
                    .filters
                    .iter()
                    .filter(|f| {
                        f.rules
                            .iter()
                            .all(|(negate, t)| t.holds(message) != *negate)
                    })
                    .map(|f| f.reference.clone())
                    .collect();
                (!filters.is_empty()).then(|| Notification {
                    user: ctx.user.clone(),
                    context: ctx.kind,
                    addresses: ctx.addresses.clone(),
                    filters,
                })
            })
            .collect()
    }
}

fn or_owner(users: &[String], owner: &str) -> Vec<String> {
    if users.is_empty() {
        vec![owner.to_owned()]
    } else {
        users.to_vec()
    }
}

fn compile(owner: &str, kind: &RuleKind) -> Result<Test, String> {
    Ok(match kind {
        RuleKind::Topic { glob } => Test::Topic(fnmatch(glob).map_err(|e| format!("glob: {e}"))?),
        RuleKind::Application { names } => {
            if names.is_empty() {
                return Err("names: must not be empty".into());
            }
            Test::Application(names.clone())
        }
        RuleKind::User { usernames } => Test::User(or_owner(usernames, owner)),
        RuleKind::Agent { usernames } => Test::Agent(or_owner(usernames, owner)),
        RuleKind::Artifact { artifacts } => {
            if artifacts.is_empty() {
                return Err("artifacts: must not be empty".into());
            }
            for a in artifacts {
                if !matches!(
                    a.kind.as_str(),
                    "rpms" | "containers" | "modules" | "flatpaks"
                ) {
                    return Err(format!(
                        "artifacts.type: {:?} is not one of rpms, containers, modules, flatpaks",
                        a.kind
                    ));
                }
            }
            Test::Artifact(
                artifacts
                    .iter()
                    .map(|a| (a.kind.clone(), a.name.clone()))
                    .collect(),
            )
        }
    })
}

/// Python's fnmatch: `*` any run (dots included), `?` one character, `[...]` a class.
fn fnmatch(glob: &str) -> Result<regex::Regex, regex::Error> {
    let mut re = String::from("(?s)^");
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => match chars[i + 1..]
                .iter()
                .position(|&c| c == ']')
                .map(|p| p + i + 1)
            {
                Some(end) if end > i + 1 => {
                    let mut class: String = chars[i + 1..end].iter().collect();
                    if let Some(rest) = class.strip_prefix('!') {
                        class = format!("^{rest}");
                    }
                    re.push('[');
                    re.push_str(&class.replace('\\', "\\\\").replace('[', "\\["));
                    re.push(']');
                    i = end;
                }
                _ => re.push_str("\\["),
            },
            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
        i += 1;
    }
    re.push('$');
    regex::Regex::new(&re)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefs::Preferences;
    use serde_json::json;

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
    fn bad_rules_are_named() {
        let err = Matcher::build([prefs(json!([{"id": "f", "name": "f", "rules": [
            {"kind": "topic", "glob": "*"},
            {"kind": "artifact", "artifacts": [{"type": "debs", "name": "x"}]}]}]))])
        .unwrap_err();
        assert_eq!((err.filter.as_str(), err.rule), ("f", 2));
        assert!(err.problem.contains("artifacts.type"), "{err}");
    }

    #[test]
    fn fnmatch_semantics() {
        let re = fnmatch("org.*.bodhi.update.*").unwrap();
        assert!(re.is_match("org.fedoraproject.prod.bodhi.update.comment"));
        assert!(!re.is_match("org.fedoraproject.prod.bodhi.buildroot"));
        assert!(fnmatch("a.[!b]c").unwrap().is_match("a.xc"));
        assert!(!fnmatch("a.[!b]c").unwrap().is_match("a.bc"));
        assert!(fnmatch("a[").unwrap().is_match("a["));
    }

    #[test]
    fn matcher_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Matcher>();
    }
}
