//! The `|filter` steps: each takes the values so far and gives new ones.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::Value;

use super::ast::Filter;
use super::value::{V, push_texts, walk};

/// `alice@fedoraproject.org` → `alice`; `http://alice.id.fedoraproject.org/` → `alice`;
/// any other address is not a Fedora account and yields nothing.
fn username(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_suffix("@fedoraproject.org") {
        return Some(rest);
    }
    if s.contains('@') {
        return None;
    }
    let trimmed = s
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if let Some(user) = trimmed.strip_suffix(".id.fedoraproject.org") {
        return Some(user);
    }
    Some(s)
}

/// `name-version-release` → `name`.
fn nvr_split(s: &str) -> Option<(&str, &str)> {
    let (nv, _release) = s.rsplit_once('-')?;
    let (name, version) = nv.rsplit_once('-')?;
    Some((name, version))
}

fn python_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => {
            out.push_str("u'");
            out.push_str(s);
            out.push('\'');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(_) => out.push_str("{...}"),
    }
}

/// Applies a per-value text transform; values without text are dropped.
fn map_text<'a>(
    values: Vec<V<'a>>,
    f: impl Fn(Cow<'a, str>) -> Option<Cow<'a, str>>,
) -> Vec<V<'a>> {
    let mut out = Vec::with_capacity(values.len());
    for v in &values {
        push_texts(v, &mut |s| {
            if let Some(t) = f(s) {
                out.push(V::S(t));
            }
        });
    }
    out
}

/// Applies one filter (all but `lookup` and `each`, which read the scope: see `eval`).
pub(super) fn apply<'a>(filter: &Filter, values: Vec<V<'a>>) -> Vec<V<'a>> {
    use Filter as F;
    match filter {
        F::User => map_text(values, |s| match s {
            Cow::Borrowed(b) => username(b).map(Cow::Borrowed),
            Cow::Owned(o) => username(&o).map(|u| Cow::Owned(u.to_owned())),
        }),
        F::Local => map_text(values, |s| {
            Some(match s.split_once('@') {
                Some((local, _)) => Cow::Owned(local.to_owned()),
                None => s,
            })
        }),
        F::Lower => map_text(values, |s| Some(Cow::Owned(s.to_lowercase()))),
        F::Upper => map_text(values, |s| Some(Cow::Owned(s.to_uppercase()))),
        F::Trim => map_text(values, |s| Some(Cow::Owned(s.trim().to_owned()))),
        F::Title => map_text(values, |s| {
            let mut c = s.chars();
            Some(Cow::Owned(match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }))
        }),
        F::Basename => map_text(values, |s| {
            let t = s.trim_end_matches('/');
            Some(Cow::Owned(t.rsplit('/').next().unwrap_or(t).to_owned()))
        }),
        F::NvrName => map_text(values, |s| {
            Some(Cow::Owned(
                nvr_split(&s).map_or(s.as_ref(), |(n, _)| n).to_owned(),
            ))
        }),
        F::NvrVersion => map_text(values, |s| {
            nvr_split(&s).map(|(_, v)| Cow::Owned(v.to_owned()))
        }),
        F::FirstLine => map_text(values, |s| {
            Some(Cow::Owned(s.lines().next().unwrap_or_default().to_owned()))
        }),
        F::Prefix(p) => map_text(values, |s| Some(Cow::Owned(format!("{p}{s}")))),
        F::Suffix(p) => map_text(values, |s| Some(Cow::Owned(format!("{s}{p}")))),
        F::StripPrefix(p) => map_text(values, |s| {
            Some(Cow::Owned(
                s.strip_prefix(p.as_str()).unwrap_or(&s).to_owned(),
            ))
        }),
        F::StripSuffix(p) => map_text(values, |s| {
            Some(Cow::Owned(
                s.strip_suffix(p.as_str()).unwrap_or(&s).to_owned(),
            ))
        }),
        F::Replace(a, b) => map_text(values, |s| Some(Cow::Owned(s.replace(a.as_str(), b)))),
        F::Truncate(n) => map_text(values, |s| {
            Some(match s.char_indices().nth(*n) {
                Some((i, _)) => Cow::Owned(s[..i].to_owned()),
                None => s,
            })
        }),
        F::Ellipsis(n, suffix) => map_text(values, |s| {
            Some(match s.char_indices().nth(*n) {
                Some((i, _)) => Cow::Owned(format!("{}{suffix}", &s[..i])),
                None => s,
            })
        }),
        F::English => {
            let mut parts: Vec<Cow<'a, str>> = Vec::new();
            for v in &values {
                push_texts(v, &mut |s| parts.push(s));
            }
            let text = match parts.as_slice() {
                [] => return Vec::new(),
                [a] => a.to_string(),
                [a, b] => format!("{a} and {b}"),
                [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
            };
            vec![V::S(Cow::Owned(text))]
        }
        F::Sub(re, rep) => map_text(values, |s| {
            Some(Cow::Owned(re.replace_all(&s, rep.as_str()).into_owned()))
        }),
        F::Capture(re) => map_text(values, |s| {
            let caps = re.captures(&s)?;
            let m = caps.get(1).or_else(|| caps.get(0))?;
            Some(Cow::Owned(m.as_str().to_owned()))
        }),
        F::FindAll(re) => {
            let mut out = Vec::new();
            for v in &values {
                push_texts(v, &mut |s| {
                    for caps in re.captures_iter(&s) {
                        if let Some(m) = caps.get(1).or_else(|| caps.get(0)) {
                            out.push(V::S(Cow::Owned(m.as_str().to_owned())));
                        }
                    }
                });
            }
            out
        }
        F::Shorten(n, suffix) => map_text(values, |s| {
            Some(if s.chars().count() >= *n {
                let end = s.char_indices().nth(*n).map_or(s.len(), |(i, _)| i);
                Cow::Owned(format!("{}{suffix}", &s[..end]))
            } else {
                s
            })
        }),
        F::Split(sep) => {
            let mut out = Vec::new();
            for v in &values {
                push_texts(v, &mut |s| {
                    for part in s.split(sep.as_str()) {
                        let part = part.trim();
                        if !part.is_empty() {
                            out.push(V::S(Cow::Owned(part.to_owned())));
                        }
                    }
                });
            }
            out
        }
        F::Map(pairs, default) => {
            let mut out = Vec::new();
            for v in &values {
                let key = v.text().unwrap_or(Cow::Borrowed(match v {
                    V::J(Value::Null) => "None",
                    _ => "",
                }));
                match pairs.iter().find(|(k, _)| *k == key) {
                    Some((_, m)) => out.push(V::S(Cow::Owned(m.clone()))),
                    None => {
                        if let Some(d) = default {
                            out.push(V::S(Cow::Owned(d.clone())));
                        }
                    }
                }
            }
            out
        }
        F::Py => values
            .into_iter()
            .map(|v| match v {
                V::J(Value::Null) => V::S(Cow::Borrowed("None")),
                V::J(Value::Bool(b)) => V::S(Cow::Borrowed(if *b { "True" } else { "False" })),
                v => v,
            })
            .collect(),
        F::Int => map_text(values, |s| {
            let f: f64 = s.parse().ok()?;
            Some(Cow::Owned(format!("{}", f.trunc() as i64)))
        }),
        F::Str => map_text(values, Some),
        F::PyList => {
            let mut out = String::new();
            for v in &values {
                match v {
                    V::J(j) => python_repr(j, &mut out),
                    V::S(s) => out.push_str(s),
                }
            }
            vec![V::S(Cow::Owned(out))]
        }
        F::Get(segs) => {
            let mut out = Vec::new();
            for v in values {
                if let V::J(j) = v {
                    walk(j, segs, &mut out);
                }
            }
            out
        }
        F::Json(segs) => {
            let mut out = Vec::new();
            for v in &values {
                let Some(text) = v.text() else { continue };
                let Ok(parsed) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let mut found = Vec::new();
                walk(&parsed, segs, &mut found);
                for f in &found {
                    push_texts(f, &mut |s| out.push(V::S(Cow::Owned(s.into_owned()))));
                }
            }
            out
        }
        // Needs the body: applied in `Alt::eval`.
        F::Lookup(_) | F::Each(_) => values,
        F::Where(segs, re, negated) => {
            let mut out = Vec::new();
            for v in values {
                let mut items = Vec::new();
                if let V::J(Value::Array(a)) = v {
                    items.extend(a.iter());
                } else if let V::J(j) = v {
                    items.push(j);
                }
                for item in items {
                    let mut found = Vec::new();
                    walk(item, segs, &mut found);
                    let matched = found
                        .iter()
                        .any(|f| f.text().is_some_and(|t| re.is_match(&t)));
                    if matched != *negated {
                        out.push(V::J(item));
                    }
                }
            }
            out
        }
        F::Keys | F::Values => {
            let mut out = Vec::new();
            for v in values {
                if let V::J(Value::Object(map)) = v {
                    if matches!(filter, F::Keys) {
                        out.extend(map.keys().map(|k| V::S(Cow::Borrowed(k.as_str()))));
                    } else {
                        out.extend(map.values().filter(|v| !v.is_null()).map(V::J));
                    }
                }
            }
            out
        }
        F::Join(sep) => {
            let mut parts: Vec<Cow<'a, str>> = Vec::new();
            for v in &values {
                push_texts(v, &mut |s| parts.push(s));
            }
            if parts.is_empty() {
                Vec::new()
            } else {
                vec![V::S(Cow::Owned(parts.join(sep)))]
            }
        }
        F::First | F::Last => {
            let mut parts: Vec<Cow<'a, str>> = Vec::new();
            for v in &values {
                push_texts(v, &mut |s| parts.push(s));
            }
            let pick = if matches!(filter, F::First) {
                parts.into_iter().next()
            } else {
                parts.pop()
            };
            pick.map(V::S).into_iter().collect()
        }
        F::Count => {
            let mut n = 0usize;
            for v in &values {
                match v {
                    V::J(Value::Array(a)) => n += a.len(),
                    V::J(Value::Object(o)) => n += o.len(),
                    _ => n += 1,
                }
            }
            vec![V::S(Cow::Owned(n.to_string()))]
        }
        F::Unique | F::Sort => {
            let mut parts: Vec<Cow<'a, str>> = Vec::new();
            for v in &values {
                push_texts(v, &mut |s| parts.push(s));
            }
            if matches!(filter, F::Sort) {
                parts.sort();
            }
            let mut seen = std::collections::HashSet::new();
            parts
                .into_iter()
                .filter(|p| seen.insert(p.clone()))
                .map(V::S)
                .collect()
        }
        F::Keep(re) | F::Reject(re) => {
            let keep = matches!(filter, F::Keep(_));
            map_text(values, |s| (re.is_match(&s) == keep).then_some(s))
        }
        F::Default(d) => {
            if values.iter().any(|v| {
                let mut any = false;
                push_texts(v, &mut |_| any = true);
                any
            }) {
                values
            } else {
                vec![V::S(Cow::Owned(d.clone()))]
            }
        }
        F::Not => {
            let t = values.iter().any(V::truthy);
            if t {
                Vec::new()
            } else {
                vec![V::S(Cow::Borrowed("True"))]
            }
        }
    }
}
