//! Validation of a user's whole preferences after every change: documented bounds, address
//! syntax per context, and the rules engine's own compile step (bad regexes, unknown
//! severities, addresses a filter names but the context lacks).

use fmn_rules::{ContextKind, Matcher, Preferences, RuleKind};

use crate::config::Limits;
use crate::error::ApiError;

/// A Fedora account name (also group names and filter ids): 1–64 of `A-Za-z0-9._-`.
pub fn valid_username(s: &str) -> bool {
    valid_id(s)
}

/// An identifier: 1–64 of `A-Za-z0-9._-`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Checks a name (filter, token): 1 to `max` characters, no control characters.
pub fn check_name(field: &str, s: &str, max: usize) -> Result<(), ApiError> {
    let chars = s.chars().count();
    if s.trim().is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if chars > max {
        return Err(ApiError::limit(
            field,
            format!("at most {max} characters (got {chars})"),
        ));
    }
    if has_control(s) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks an address's syntax for its context.
pub fn check_address(field: &str, kind: ContextKind, a: &str) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::invalid(field, why.to_owned()));
    // Addresses become part of DynamoDB keys: the store's cap keeps those within limits.
    if a.len() > fmn_store::MAX_ADDRESS_BYTES {
        return bad(&format!(
            "at most {} bytes (got {}): addresses are part of storage keys",
            fmn_store::MAX_ADDRESS_BYTES,
            a.len()
        ));
    }
    if a.is_empty() || has_control(a) || a.chars().any(char::is_whitespace) {
        return bad("must not be empty, nor hold spaces or control characters");
    }
    match kind {
        ContextKind::Email => {
            let Some((local, domain)) = a.rsplit_once('@') else {
                return bad("not an email address (user@domain)");
            };
            if local.is_empty()
                || domain.is_empty()
                || a.len() > 254
                || !domain.contains('.')
                || domain.starts_with('.')
                || domain.ends_with('.')
                || local.contains('@')
                || a.contains(['<', '>', ',', ';', '"', '\\', '(', ')', '[', ']'])
            {
                return bad("not an email address (user@domain)");
            }
        }
        ContextKind::Irc => {
            let first_ok = a
                .chars()
                .next()
                .is_some_and(|c| !c.is_ascii_digit() && c != '-');
            if a.len() > 32
                || !first_ok
                || !a.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(
                            c,
                            '_' | '-' | '[' | ']' | '\\' | '^' | '{' | '}' | '|' | '`'
                        )
                })
            {
                return bad("not an IRC nick (letters, digits, _-[]\\^{}|`, at most 32)");
            }
        }
        ContextKind::Matrix => {
            let ok = a.len() <= 255
                && a.strip_prefix('@')
                    .and_then(|rest| rest.split_once(':'))
                    .is_some_and(|(local, server)| !local.is_empty() && !server.is_empty());
            if !ok {
                return bad("not a Matrix user id (@user:server)");
            }
        }
        ContextKind::Webhook | ContextKind::Push => {
            let rest = a
                .strip_prefix("https://")
                .or_else(|| a.strip_prefix("http://"));
            let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
            if host.is_none_or(str::is_empty) {
                return bad("not an http(s) URL");
            }
        }
        ContextKind::Feed => return bad("feed contexts have no addresses"),
        ContextKind::Inbox => return bad("the inbox is its own address: it takes no others"),
    }
    Ok(())
}

fn check_str(field: &str, s: &str, limits: &Limits) -> Result<(), ApiError> {
    let chars = s.chars().count();
    if chars > limits.max_arg_chars {
        return Err(ApiError::limit(
            field,
            format!("at most {} characters (got {chars})", limits.max_arg_chars),
        ));
    }
    Ok(())
}

fn check_list(field: &str, n: usize, limits: &Limits) -> Result<(), ApiError> {
    if n > limits.max_list_items {
        return Err(ApiError::limit(
            field,
            format!("at most {} items (got {n})", limits.max_list_items),
        ));
    }
    Ok(())
}

fn check_users(field: &str, users: &[String], limits: &Limits) -> Result<(), ApiError> {
    check_list(field, users.len(), limits)?;
    for (i, u) in users.iter().enumerate() {
        if !valid_username(u) {
            return Err(ApiError::invalid(
                format!("{field}[{i}]"),
                "not a user or group name (1-64 of A-Z a-z 0-9 . _ -)",
            ));
        }
    }
    Ok(())
}

fn check_json(field: &str, v: &serde_json::Value, limits: &Limits) -> Result<(), ApiError> {
    let len = serde_json::to_string(v)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if len > limits.max_json_bytes {
        return Err(ApiError::limit(
            field,
            format!("at most {} bytes of JSON", limits.max_json_bytes),
        ));
    }
    Ok(())
}

/// Checks one rule's arguments against the bounds; `at` is the rule's path.
pub fn check_rule(at: &str, kind: &RuleKind, limits: &Limits) -> Result<(), ApiError> {
    let f = |name: &str| format!("{at}.{name}");
    match kind {
        RuleKind::Topic { glob } => check_str(&f("glob"), glob, limits),
        RuleKind::TopicRegex { regex } | RuleKind::BodyRegex { regex } => {
            check_str(&f("regex"), regex, limits)
        }
        RuleKind::Application { names } => {
            check_list(&f("names"), names.len(), limits)?;
            for (i, n) in names.iter().enumerate() {
                check_str(&format!("{at}.names[{i}]"), n, limits)?;
            }
            Ok(())
        }
        RuleKind::Severity { levels } => check_list(&f("levels"), levels.len(), limits),
        RuleKind::User { usernames }
        | RuleKind::Agent { usernames }
        | RuleKind::OwnedBy { usernames } => check_users(&f("usernames"), usernames, limits),
        RuleKind::OwnedByGroup { groups } => check_users(&f("groups"), groups, limits),
        RuleKind::Artifact { artifacts } => {
            check_list(&f("artifacts"), artifacts.len(), limits)?;
            for (i, a) in artifacts.iter().enumerate() {
                check_str(&format!("{at}.artifacts[{i}].name"), &a.name, limits)?;
                if !matches!(
                    a.kind.as_str(),
                    "rpms" | "containers" | "modules" | "flatpaks"
                ) {
                    return Err(ApiError::invalid(
                        format!("{at}.artifacts[{i}].type"),
                        "expected rpms, containers, modules or flatpaks",
                    ));
                }
            }
            Ok(())
        }
        RuleKind::ArtifactRegex {
            artifact_type,
            regex,
        } => {
            check_str(&f("type"), artifact_type, limits)?;
            check_str(&f("regex"), regex, limits)
        }
        RuleKind::Field {
            pointer,
            equals,
            one_of,
            regex,
        } => {
            check_str(&f("pointer"), pointer, limits)?;
            if let Some(v) = equals {
                check_json(&f("equals"), v, limits)?;
            }
            if let Some(list) = one_of {
                check_list(&f("one_of"), list.len(), limits)?;
                for (i, v) in list.iter().enumerate() {
                    check_json(&format!("{at}.one_of[{i}]"), v, limits)?;
                }
            }
            if let Some(r) = regex {
                check_str(&f("regex"), r, limits)?;
            }
            Ok(())
        }
    }
}

/// Checks a user's preferences as they would be stored; the error names the field as a
/// path into the preferences document (`contexts.email.filters[0].rules[1].regex`).
pub fn check_preferences(prefs: &Preferences, limits: &Limits) -> Result<(), ApiError> {
    let mut total = 0;
    for (kind, ctx) in &prefs.contexts {
        let at = format!("contexts.{}", kind.as_str());
        if ctx.addresses.len() > limits.max_addresses_per_context {
            return Err(ApiError::limit(
                format!("{at}.addresses"),
                format!(
                    "at most {} addresses per context",
                    limits.max_addresses_per_context
                ),
            ));
        }
        for (i, a) in ctx.addresses.iter().enumerate() {
            check_address(&format!("{at}.addresses[{i}]"), *kind, &a.address)?;
            if ctx.addresses[..i].iter().any(|b| b.address == a.address) {
                return Err(ApiError::invalid(
                    format!("{at}.addresses[{i}]"),
                    "duplicate address",
                ));
            }
        }
        let s = &ctx.settings;
        if s.digest_interval_secs
            .is_some_and(|secs| !(60..=604_800).contains(&secs))
        {
            return Err(ApiError::invalid(
                format!("{at}.settings.digest_interval_secs"),
                "must be between 60 and 604800 seconds",
            ));
        }
        if s.digest_count.is_some_and(|n| !(1..=1000).contains(&n)) {
            return Err(ApiError::invalid(
                format!("{at}.settings.digest_count"),
                "must be between 1 and 1000",
            ));
        }
        if let Some(p) = &s.subject_prefix {
            check_name(
                &format!("{at}.settings.subject_prefix"),
                p,
                limits.max_name_chars,
            )?;
        }
        if ctx.filters.len() > limits.max_filters_per_context {
            return Err(ApiError::limit(
                format!("{at}.filters"),
                format!(
                    "at most {} filters per context",
                    limits.max_filters_per_context
                ),
            ));
        }
        total += ctx.filters.len();
        for (i, filter) in ctx.filters.iter().enumerate() {
            let fat = format!("{at}.filters[{i}]");
            if !valid_id(&filter.id) {
                return Err(ApiError::invalid(
                    format!("{fat}.id"),
                    "1-64 of A-Z a-z 0-9 . _ -",
                ));
            }
            if ctx.filters[..i].iter().any(|g| g.id == filter.id) {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "conflict",
                    format!("a filter with id {} already exists", filter.id),
                )
                .at(format!("{fat}.id")));
            }
            check_name(&format!("{fat}.name"), &filter.name, limits.max_name_chars)?;
            if filter.rules.len() > limits.max_rules_per_filter {
                return Err(ApiError::limit(
                    format!("{fat}.rules"),
                    format!("at most {} rules per filter", limits.max_rules_per_filter),
                ));
            }
            for (r, rule) in filter.rules.iter().enumerate() {
                check_rule(&format!("{fat}.rules[{r}]"), &rule.kind, limits)?;
            }
            if let Some(addrs) = &filter.addresses {
                check_list(&format!("{fat}.addresses"), addrs.len(), limits)?;
            }
        }
    }
    check_regex_budget(prefs, limits)?;
    if total > limits.max_filters_per_user {
        return Err(ApiError::limit(
            "contexts",
            format!("at most {} filters per user", limits.max_filters_per_user),
        ));
    }
    if let Err(e) = Matcher::build([prefs.clone()]) {
        let kind = prefs.contexts.keys().find(|k| k.as_str() == e.context);
        let index = kind
            .and_then(|k| prefs.contexts.get(k))
            .and_then(|c| c.filters.iter().position(|f| f.id == e.filter));
        let mut field = format!("contexts.{}.filters", e.context);
        if let Some(i) = index {
            field.push_str(&format!("[{i}]"));
            if e.rule == 0 {
                field.push_str(".addresses");
            } else {
                field.push_str(&format!(".rules[{}]", e.rule - 1));
                // The problem reads `kind: argument: why`; name the argument when it does.
                if let Some(arg) = e.problem.split(": ").nth(1).filter(|a| valid_id(a)) {
                    field.push('.');
                    field.push_str(arg);
                }
            }
        }
        return Err(ApiError::invalid(field, e.problem));
    }
    Ok(())
}

/// Whether a rule is a regex run against bus traffic (counted by the per-user cap).
fn is_regex(kind: &RuleKind) -> bool {
    matches!(
        kind,
        RuleKind::TopicRegex { .. }
            | RuleKind::ArtifactRegex { .. }
            | RuleKind::BodyRegex { .. }
            | RuleKind::Field { regex: Some(_), .. }
    )
}

/// Whether a rule, not negated, narrows the messages a filter is evaluated for: the index
/// looks messages up by these, so a `body_regex` beside one runs only on what it selects.
fn is_selective(kind: &RuleKind) -> bool {
    matches!(
        kind,
        RuleKind::Topic { .. }
            | RuleKind::TopicRegex { .. }
            | RuleKind::Application { .. }
            | RuleKind::Artifact { .. }
            | RuleKind::ArtifactRegex { .. }
            | RuleKind::User { .. }
            | RuleKind::Agent { .. }
            | RuleKind::OwnedBy { .. }
            | RuleKind::OwnedByGroup { .. }
    )
}

/// The regex budget (each pattern's compiled size is the rules engine's,
/// [`fmn_rules::REGEX_SIZE_LIMIT`]): at most `max_regex_rules_per_user` regex rules, and a
/// `body_regex` only in a filter with a selective rule that is not negated.
pub fn check_regex_budget(prefs: &Preferences, limits: &Limits) -> Result<(), ApiError> {
    let mut count = 0;
    for (kind, ctx) in &prefs.contexts {
        for (i, filter) in ctx.filters.iter().enumerate() {
            let fat = format!("contexts.{}.filters[{i}]", kind.as_str());
            let selective = filter
                .rules
                .iter()
                .any(|r| !r.negate && is_selective(&r.kind));
            for (r, rule) in filter.rules.iter().enumerate() {
                if !is_regex(&rule.kind) {
                    continue;
                }
                count += 1;
                if count > limits.max_regex_rules_per_user {
                    return Err(ApiError::limit(
                        format!("{fat}.rules[{r}]"),
                        format!(
                            "at most {} regex rules per user (topic_regex, artifact_regex, \
                             body_regex, field with a regex), over all contexts",
                            limits.max_regex_rules_per_user
                        ),
                    ));
                }
                if matches!(rule.kind, RuleKind::BodyRegex { .. }) && !selective {
                    return Err(ApiError::limit(
                        format!("{fat}.rules[{r}].regex"),
                        "body_regex needs a rule that selects messages in the same filter, \
                         not negated (topic, application, artifact, user, agent, owned_by): \
                         alone it would run on every bus message",
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_per_context() {
        let ok = [
            (ContextKind::Email, "alice@example.org"),
            (ContextKind::Irc, "alice_"),
            (ContextKind::Matrix, "@alice:fedora.im"),
            (ContextKind::Webhook, "https://ntfy.sh/alice"),
            (ContextKind::Push, "https://ntfy.sh/upAbC123?up=1"),
        ];
        for (k, a) in ok {
            assert!(check_address("a", k, a).is_ok(), "{a}");
        }
        let bad = [
            (ContextKind::Email, "alice"),
            (ContextKind::Email, "a@b@c.org"),
            (ContextKind::Email, "alice@example.org\r\nBcc: x@y.z"),
            (ContextKind::Irc, "1alice"),
            (ContextKind::Irc, "al ice"),
            (ContextKind::Matrix, "alice:fedora.im"),
            (ContextKind::Webhook, "ftp://x"),
            (ContextKind::Webhook, "https://"),
            (ContextKind::Push, "ntfy.sh/alice"),
            (ContextKind::Feed, "anything"),
        ];
        for (k, a) in bad {
            let e = check_address("a", k, a).unwrap_err();
            assert_eq!(e.status, 422, "{a}");
        }
    }
}
