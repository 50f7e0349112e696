//! Compiled preferences and message matching.

use std::cell::OnceCell;
use std::sync::Arc;

use fmn_messages::{Message, Severity};
use serde::{Deserialize, Serialize};

use crate::index::{Index, keys};
use crate::ownership::Ownership;
use crate::prefs::{Context, ContextKind, FilterRef, Preferences, RuleKind};

/// Preferences that cannot be compiled, naming where the problem is: the user, context, filter,
/// rule (its position from 1 and its kind; 0 for the filter itself) and argument.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("user {user}, {context} filter {filter:?}, rule {rule}: {problem}")]
pub struct BuildError {
    /// The owner.
    pub user: String,
    /// The context.
    pub context: &'static str,
    /// The filter id.
    pub filter: String,
    /// The rule's position in the filter, from 1 (0: the filter itself, e.g. its addresses).
    pub rule: usize,
    /// What is wrong: the rule kind, the argument, the problem (`topic_regex: regex: …`).
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

/// A field condition.
#[derive(Debug)]
pub(crate) enum FieldTest {
    Equals(serde_json::Value),
    OneOf(Vec<serde_json::Value>),
    Regex(regex::Regex),
}

/// One compiled rule (without its negation).
#[derive(Debug)]
pub(crate) enum Test {
    /// The compiled glob and the glob itself.
    Topic(regex::Regex, Option<String>),
    TopicRegex(regex::Regex),
    /// Lowercased names.
    Application(Vec<String>),
    Severity(Vec<Severity>),
    User(Vec<String>),
    Agent(Vec<String>),
    Artifact(Vec<(String, String)>),
    ArtifactRegex(String, regex::Regex),
    OwnedBy(Vec<String>),
    OwnedByGroup(Vec<String>),
    Field(String, FieldTest),
    BodyRegex(regex::Regex),
}

/// A message being matched, with what is derived from it lazily and at most once.
pub(crate) struct Subject<'a> {
    pub(crate) m: &'a Message,
    pub(crate) ownership: &'a Ownership,
    app_lower: String,
    body_text: OnceCell<String>,
}

impl<'a> Subject<'a> {
    pub(crate) fn new(m: &'a Message, ownership: &'a Ownership) -> Self {
        Subject {
            m,
            ownership,
            app_lower: m.app.to_lowercase(),
            body_text: OnceCell::new(),
        }
    }

    /// Every (type, name) artifact of the message.
    pub(crate) fn artifacts(&self) -> impl Iterator<Item = (&'static str, &'a str)> + 'a {
        let a = &self.m.artifacts;
        [
            ("rpms", &a.rpms),
            ("containers", &a.containers),
            ("modules", &a.modules),
            ("flatpaks", &a.flatpaks),
        ]
        .into_iter()
        .flat_map(|(k, set)| set.iter().map(move |n| (k, n.as_str())))
    }

    fn owners(&self) -> impl Iterator<Item = &'a crate::ownership::Owners> + '_ {
        self.artifacts()
            .filter_map(|(k, n)| self.ownership.owners(k, n))
    }
}

impl Test {
    pub(crate) fn holds(&self, s: &Subject<'_>) -> bool {
        let m = s.m;
        match self {
            Test::Topic(re, _) | Test::TopicRegex(re) => re.is_match(&m.topic),
            Test::Application(names) => names.contains(&s.app_lower),
            Test::Severity(levels) => levels.contains(&m.severity),
            Test::User(users) => users.iter().any(|u| m.usernames.contains(u)),
            Test::Agent(users) => m.agent.as_ref().is_some_and(|a| users.contains(a)),
            Test::Artifact(refs) => refs.iter().any(|(kind, name)| {
                m.artifacts
                    .of_type(kind)
                    .is_some_and(|set| set.contains(name))
            }),
            Test::ArtifactRegex(kind, re) => m
                .artifacts
                .of_type(kind)
                .is_some_and(|set| set.iter().any(|n| re.is_match(n))),
            Test::OwnedBy(users) => s
                .owners()
                .any(|o| o.users.iter().any(|u| users.contains(u))),
            Test::OwnedByGroup(groups) => s
                .owners()
                .any(|o| o.groups.iter().any(|g| groups.contains(g))),
            Test::Field(pointer, test) => m.body.pointer(pointer).is_some_and(|v| match test {
                FieldTest::Equals(want) => v == want,
                FieldTest::OneOf(wants) => wants.contains(v),
                FieldTest::Regex(re) => match v {
                    serde_json::Value::String(t) => re.is_match(t),
                    serde_json::Value::Number(n) => re.is_match(&n.to_string()),
                    serde_json::Value::Bool(b) => re.is_match(if *b { "true" } else { "false" }),
                    _ => false,
                },
            }),
            Test::BodyRegex(re) => re.is_match(
                s.body_text
                    .get_or_init(|| serde_json::to_string(&m.body).unwrap_or_default()),
            ),
        }
    }
}

#[derive(Debug)]
pub(crate) struct CompiledFilter {
    pub(crate) reference: FilterRef,
    pub(crate) rules: Vec<(bool, Test)>,
    /// Indexes into the context's confirmed addresses this filter delivers to.
    pub(crate) addresses: Vec<u16>,
}

impl CompiledFilter {
    pub(crate) fn holds(&self, s: &Subject<'_>) -> bool {
        self.rules.iter().all(|(negate, t)| t.holds(s) != *negate)
    }
}

#[derive(Debug)]
pub(crate) struct CompiledContext {
    pub(crate) user: String,
    pub(crate) kind: ContextKind,
    pub(crate) addresses: Vec<String>,
    pub(crate) filters: Vec<CompiledFilter>,
}

/// Every user's active filters, compiled. Immutable and shareable across threads.
#[derive(Debug, Default)]
pub struct Matcher {
    contexts: Vec<CompiledContext>,
    /// Every compiled filter as (context, filter within it), in context order.
    filters: Vec<(u32, u32)>,
    index: Index,
    ownership: Arc<Ownership>,
}

impl Matcher {
    /// Compiles preferences without ownership data (`owned_by` rules then match nothing); a
    /// bad rule fails with an error naming it.
    pub fn build(all: impl IntoIterator<Item = Preferences>) -> Result<Matcher, BuildError> {
        Self::build_with(all, Arc::default())
    }

    /// Compiles preferences; `owned_by` and `owned_by_group` rules read `ownership`.
    pub fn build_with(
        all: impl IntoIterator<Item = Preferences>,
        ownership: Arc<Ownership>,
    ) -> Result<Matcher, BuildError> {
        Self::assemble(all, ownership, Err)
    }

    /// Compiles preferences, leaving out every user whose preferences do not compile (one
    /// user's mistake must not stop everyone else's notifications); returns why each was
    /// left out.
    pub fn build_lenient(
        all: impl IntoIterator<Item = Preferences>,
        ownership: Arc<Ownership>,
    ) -> (Matcher, Vec<BuildError>) {
        let mut skipped = Vec::new();
        let matcher = Self::assemble(all, ownership, |e| {
            skipped.push(e);
            Ok(())
        });
        // `assemble` fails only through the callback, which never fails here.
        (matcher.unwrap_or_default(), skipped)
    }

    /// Compiles every user; a user who fails goes to `on_error`, which either stops the build
    /// (returns the error) or lets it go on without that user.
    fn assemble(
        all: impl IntoIterator<Item = Preferences>,
        ownership: Arc<Ownership>,
        mut on_error: impl FnMut(BuildError) -> Result<(), BuildError>,
    ) -> Result<Matcher, BuildError> {
        let mut contexts = Vec::new();
        for prefs in all {
            let compiled: Result<Vec<_>, BuildError> = prefs
                .contexts
                .iter()
                .filter_map(|(kind, context)| {
                    compile_context(&prefs.user, *kind, context).transpose()
                })
                .collect();
            match compiled {
                Ok(user_contexts) => contexts.extend(user_contexts),
                Err(e) => on_error(e)?,
            }
        }
        let mut filters = Vec::new();
        let mut index = Index::default();
        for (c, ctx) in contexts.iter().enumerate() {
            for (f, filter) in ctx.filters.iter().enumerate() {
                let id = u32::try_from(filters.len()).map_err(|_| BuildError {
                    user: ctx.user.clone(),
                    context: ctx.kind.as_str(),
                    filter: filter.reference.id.clone(),
                    rule: 0,
                    problem: "too many filters".into(),
                })?;
                filters.push((
                    u32::try_from(c).unwrap_or(u32::MAX),
                    u32::try_from(f).unwrap_or(u32::MAX),
                ));
                index.add(id, keys(filter.rules.iter()));
            }
        }
        Ok(Matcher {
            contexts,
            filters,
            index,
            ownership,
        })
    }

    /// The ownership data the matcher reads.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// Who is notified of `message`, where, and because of which filters.
    pub fn matches(&self, message: &Message) -> Vec<Notification> {
        let s = Subject::new(message, &self.ownership);
        let mut out = Vec::new();
        let mut run: Option<(u32, Vec<&CompiledFilter>)> = None;
        // Candidates are sorted, so the filters of one context come together and in order.
        for id in self.index.candidates(&s) {
            let (c, f) = self.filters[id as usize];
            let filter = &self.contexts[c as usize].filters[f as usize];
            if !filter.holds(&s) {
                continue;
            }
            match &mut run {
                Some((rc, list)) if *rc == c => list.push(filter),
                _ => {
                    if let Some((rc, list)) = run.replace((c, vec![filter])) {
                        out.extend(notify(&self.contexts[rc as usize], list.into_iter()));
                    }
                }
            }
        }
        if let Some((rc, list)) = run {
            out.extend(notify(&self.contexts[rc as usize], list.into_iter()));
        }
        out
    }
}

/// The notification for a context given the filters that matched, if any address remains.
pub(crate) fn notify<'f>(
    ctx: &CompiledContext,
    matched: impl Iterator<Item = &'f CompiledFilter>,
) -> Option<Notification> {
    let mut wanted = vec![false; ctx.addresses.len()];
    let mut filters = Vec::new();
    for f in matched {
        for &i in &f.addresses {
            wanted[usize::from(i)] = true;
        }
        filters.push(f.reference.clone());
    }
    let addresses: Vec<String> = ctx
        .addresses
        .iter()
        .zip(&wanted)
        .filter(|(_, w)| **w)
        .map(|(a, _)| a.clone())
        .collect();
    (!addresses.is_empty()).then(|| Notification {
        user: ctx.user.clone(),
        context: ctx.kind,
        addresses,
        filters,
    })
}

fn compile_context(
    user: &str,
    kind: ContextKind,
    context: &Context,
) -> Result<Option<CompiledContext>, BuildError> {
    let err = |filter: &str, rule: usize, problem: String| BuildError {
        user: user.to_owned(),
        context: kind.as_str(),
        filter: filter.to_owned(),
        rule,
        problem,
    };
    let confirmed: Vec<String> = context
        .addresses
        .iter()
        .filter(|a| a.deliverable())
        .map(|a| a.address.clone())
        .collect();
    if confirmed.len() > usize::from(u16::MAX) {
        return Err(err("", 0, "addresses: too many".into()));
    }
    let mut filters = Vec::new();
    for filter in &context.filters {
        let mut rules = Vec::new();
        for (i, rule) in filter.rules.iter().enumerate() {
            let test = compile(user, &rule.kind)
                .map_err(|p| err(&filter.id, i + 1, format!("{}: {p}", rule.kind.name())))?;
            rules.push((rule.negate, test));
        }
        let addresses: Vec<u16> = match &filter.addresses {
            None => (0..confirmed.len())
                .filter_map(|i| u16::try_from(i).ok())
                .collect(),
            Some(chosen) => {
                for a in chosen {
                    if !context.addresses.iter().any(|c| &c.address == a) {
                        return Err(err(
                            &filter.id,
                            0,
                            format!("addresses: {a:?} is not one of the context's addresses"),
                        ));
                    }
                }
                confirmed
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| chosen.contains(c))
                    .filter_map(|(i, _)| u16::try_from(i).ok())
                    .collect()
            }
        };
        if filter.active && !rules.is_empty() && !addresses.is_empty() {
            filters.push(CompiledFilter {
                reference: FilterRef {
                    id: filter.id.clone(),
                    name: filter.name.clone(),
                },
                rules,
                addresses,
            });
        }
    }
    Ok(
        (context.enabled && !filters.is_empty()).then(|| CompiledContext {
            user: user.to_owned(),
            kind,
            addresses: confirmed,
            filters,
        }),
    )
}

fn or_owner(users: &[String], owner: &str) -> Vec<String> {
    if users.is_empty() {
        vec![owner.to_owned()]
    } else {
        users.to_vec()
    }
}

fn non_empty<T>(arg: &str, v: &[T]) -> Result<(), String> {
    if v.is_empty() {
        Err(format!("{arg}: must not be empty"))
    } else {
        Ok(())
    }
}

fn regex(arg: &str, re: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("{arg}: {e}"))
}

fn artifact_type(arg: &str, kind: &str) -> Result<(), String> {
    if matches!(kind, "rpms" | "containers" | "modules" | "flatpaks") {
        Ok(())
    } else {
        Err(format!(
            "{arg}: {kind:?} is not one of rpms, containers, modules, flatpaks"
        ))
    }
}

pub(crate) fn compile(owner: &str, kind: &RuleKind) -> Result<Test, String> {
    Ok(match kind {
        RuleKind::Topic { glob } => Test::Topic(
            fnmatch(glob).map_err(|e| format!("glob: {e}"))?,
            Some(glob.clone()),
        ),
        RuleKind::TopicRegex { regex: re } => Test::TopicRegex(regex("regex", re)?),
        RuleKind::Application { names } => {
            non_empty("names", names)?;
            Test::Application(names.iter().map(|n| n.to_lowercase()).collect())
        }
        RuleKind::Severity { levels } => {
            non_empty("levels", levels)?;
            let mut out = Vec::new();
            for l in levels {
                out.push(match l.to_ascii_lowercase().as_str() {
                    "debug" => Severity::Debug,
                    "info" => Severity::Info,
                    "warning" => Severity::Warning,
                    "error" => Severity::Error,
                    _ => {
                        return Err(format!(
                            "levels: {l:?} is not one of debug, info, warning, error"
                        ));
                    }
                });
            }
            Test::Severity(out)
        }
        RuleKind::User { usernames } => Test::User(or_owner(usernames, owner)),
        RuleKind::Agent { usernames } => Test::Agent(or_owner(usernames, owner)),
        RuleKind::Artifact { artifacts } => {
            non_empty("artifacts", artifacts)?;
            for a in artifacts {
                artifact_type("artifacts.type", &a.kind)?;
                if a.name.is_empty() {
                    return Err("artifacts.name: must not be empty".into());
                }
            }
            Test::Artifact(
                artifacts
                    .iter()
                    .map(|a| (a.kind.clone(), a.name.clone()))
                    .collect(),
            )
        }
        RuleKind::ArtifactRegex {
            artifact_type: t,
            regex: re,
        } => {
            artifact_type("type", t)?;
            Test::ArtifactRegex(t.clone(), regex("regex", re)?)
        }
        RuleKind::OwnedBy { usernames } => Test::OwnedBy(or_owner(usernames, owner)),
        RuleKind::OwnedByGroup { groups } => {
            non_empty("groups", groups)?;
            Test::OwnedByGroup(
                groups
                    .iter()
                    .map(|g| g.strip_prefix('@').unwrap_or(g).to_owned())
                    .collect(),
            )
        }
        RuleKind::Field {
            pointer,
            equals,
            one_of,
            regex: re,
        } => {
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err(format!(
                    "pointer: {pointer:?} is not a JSON pointer (it starts with '/')"
                ));
            }
            let test = match (equals, one_of, re) {
                (Some(v), None, None) => FieldTest::Equals(v.clone()),
                (None, Some(vs), None) => {
                    non_empty("one_of", vs)?;
                    FieldTest::OneOf(vs.clone())
                }
                (None, None, Some(re)) => FieldTest::Regex(regex("regex", re)?),
                _ => return Err("equals, one_of, regex: give exactly one of them".into()),
            };
            Test::Field(pointer.clone(), test)
        }
        RuleKind::BodyRegex { regex: re } => Test::BodyRegex(regex("regex", re)?),
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
        let good =
            prefs(json!([{"id": "f", "name": "f", "rules": [{"kind": "topic", "glob": "*"}]}]));
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
