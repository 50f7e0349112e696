//! One rule compiled on its own, and evaluated directly against a message: the validation
//! step every build runs first, and the reference semantics that [`crate::explain`] and the
//! equivalence tests check the indexed matcher against. The index (`crate::index`) turns
//! these into its interned form.

use std::cell::OnceCell;

use fmn_messages::{Message, Severity};

use crate::ownership::{Owners, Ownership};
use crate::prefs::RuleKind;

/// A field condition. (In snapshots, values go as JSON text: the binary encoding cannot
/// carry self-describing values.)
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum FieldTest {
    Equals(#[serde(with = "crate::snapshot::json_text")] serde_json::Value),
    OneOf(#[serde(with = "crate::snapshot::json_text")] Vec<serde_json::Value>),
    Regex(#[serde(with = "crate::snapshot::regex_source")] regex::Regex),
}

impl FieldTest {
    pub(crate) fn holds(&self, v: &serde_json::Value) -> bool {
        match self {
            FieldTest::Equals(want) => v == want,
            FieldTest::OneOf(wants) => wants.contains(v),
            FieldTest::Regex(re) => match v {
                serde_json::Value::String(t) => re.is_match(t),
                serde_json::Value::Number(n) => re.is_match(&n.to_string()),
                serde_json::Value::Bool(b) => re.is_match(if *b { "true" } else { "false" }),
                _ => false,
            },
        }
    }
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

    fn owners(&self) -> impl Iterator<Item = &'a Owners> + '_ {
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
            Test::Field(pointer, test) => m.body.pointer(pointer).is_some_and(|v| test.holds(v)),
            Test::BodyRegex(re) => re.is_match(
                s.body_text
                    .get_or_init(|| serde_json::to_string(&m.body).unwrap_or_default()),
            ),
        }
    }
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

/// Largest compiled program of one rule's regex, bytes: every pattern a user writes is run
/// against bus traffic, so each is kept small (the `regex` crate's default is 10 MiB; this
/// fits the patterns people write, not `\w{200}`; fmn allowed 1 MiB before).
pub const REGEX_SIZE_LIMIT: usize = 128 * 1024;
/// Largest lazy-DFA cache of one rule's regex, bytes (the crate's default is 2 MiB).
pub const REGEX_DFA_LIMIT: usize = 256 * 1024;
/// Deepest nesting of groups and repetitions in one rule's regex.
pub const REGEX_NEST_LIMIT: u32 = 32;

/// A user's regex, compiled within the budget above; the one way rules compile patterns.
pub(crate) fn build_regex(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(re)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
}

fn regex(arg: &str, re: &str) -> Result<regex::Regex, String> {
    build_regex(re).map_err(|e| match e {
        regex::Error::CompiledTooBig(limit) => format!(
            "{arg}: too costly: compiled, it exceeds the {limit}-byte limit per rule's regex; \
             simplify it: fewer counted repetitions such as {{1,64}}, or ASCII classes with (?-u)"
        ),
        e => format!("{arg}: {e}"),
    })
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
    fn the_regex_budget_admits_real_patterns_and_refuses_costly_ones() {
        // What people write in FMN filters: topics, JSON fragments, package name shapes.
        for ok in [
            r"^org\.fedoraproject\.prod\.(bodhi|koji|copr)\..*$",
            r#""owner":\s*"[\w.-]+""#,
            r"\bkernel-\d+\.\d+\.\d+-\d+\.fc\d{2}\b",
            r"[\w.+-]+@fedoraproject\.org",
            r#""karma":\s*-\d+"#,
            r"(?i)security|cve-\d{4}-\d{4,7}",
        ] {
            assert!(build_regex(ok).is_ok(), "{ok}: {:?}", build_regex(ok).err());
        }
        for costly in [
            r"\w{200}",
            r"(\p{L}|\d){100,}x",
            r"((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))",
        ] {
            let e = regex("regex", costly).expect_err(costly);
            assert!(e.starts_with("regex: "), "{e}");
        }
        assert!(
            regex("regex", r"\w{200}")
                .unwrap_err()
                .contains("too costly")
        );
    }
}
