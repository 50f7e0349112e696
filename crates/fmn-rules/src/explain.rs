//! "Why did (not) user U get message M?": every rule of every filter, evaluated.

use std::sync::Arc;

use fmn_messages::Message;
use serde::Serialize;

use crate::compile::{Subject, compile};
use crate::matcher::{BuildError, Matcher};
use crate::ownership::Ownership;
use crate::prefs::{ContextKind, Preferences, Rule};

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleVerdict {
    /// The rule as written.
    pub rule: Rule,
    /// Whether it held (after negation).
    pub held: bool,
}

/// One filter's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterVerdict {
    /// The filter id.
    pub id: String,
    /// The filter name.
    pub name: String,
    /// Inactive filters never match.
    pub active: bool,
    /// Every rule, in order.
    pub rules: Vec<RuleVerdict>,
    /// Active, has rules, and all of them held.
    pub matched: bool,
}

/// One context's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextVerdict {
    /// The context.
    pub context: ContextKind,
    /// Disabled contexts notify nothing.
    pub enabled: bool,
    /// Every filter, in order.
    pub filters: Vec<FilterVerdict>,
    /// The final decision: the addresses notified (empty: not notified).
    pub addresses: Vec<String>,
}

/// Evaluates every rule of every filter of `prefs` on `message`, and the final decision per
/// context, which is exactly what [`Matcher::matches`] decides.
pub fn explain(
    prefs: &Preferences,
    ownership: &Arc<Ownership>,
    message: &Message,
) -> Result<Vec<ContextVerdict>, BuildError> {
    let decided = Matcher::build_with([prefs.clone()], ownership.clone())?.matches(message);
    let subject = Subject::new(message, ownership);
    let mut out = Vec::new();
    for (kind, context) in &prefs.contexts {
        let filters = context
            .filters
            .iter()
            .map(|f| {
                let rules: Vec<RuleVerdict> = f
                    .rules
                    .iter()
                    .map(|r| RuleVerdict {
                        rule: r.clone(),
                        // Already validated by the build above.
                        held: compile(&prefs.user, &r.kind)
                            .is_ok_and(|t| t.holds(&subject) != r.negate),
                    })
                    .collect();
                FilterVerdict {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    active: f.active,
                    matched: f.active && !rules.is_empty() && rules.iter().all(|r| r.held),
                    rules,
                }
            })
            .collect();
        out.push(ContextVerdict {
            context: *kind,
            enabled: context.enabled,
            filters,
            addresses: decided
                .iter()
                .find(|n| n.context == *kind)
                .map(|n| n.addresses.clone())
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_rule_is_explained() {
        let prefs: Preferences =
            serde_json::from_value(json!({"user": "alice", "contexts": {"email": {
            "addresses": [{"address": "a@x.org", "confirmed": true}],
            "filters": [{"id": "f", "name": "kernel", "rules": [
                {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]},
                {"kind": "agent", "negate": true}]}]}}}))
            .unwrap();
        let m = fmn_messages::Catalog::builtin()
            .normalize(&json!({
                "topic": "org.fedoraproject.prod.buildsys.build.state.change", "msg_id": "m",
                "msg": {"owner": "alice", "name": "kernel", "version": "1", "release": "1", "build_id": 7},
            }))
            .unwrap();
        let v = explain(&prefs, &Arc::default(), &m).unwrap();
        let held: Vec<bool> = v[0].filters[0].rules.iter().map(|r| r.held).collect();
        assert_eq!(held, [true, false]);
        assert!(!v[0].filters[0].matched);
        assert!(v[0].addresses.is_empty());
    }
}
