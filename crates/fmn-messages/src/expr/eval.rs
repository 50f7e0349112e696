//! Evaluation: an expression's values, a condition's truth, a template's text.

use std::borrow::Cow;

use serde_json::Value;

use super::ast::{Alt, Cond, Expr, Filter, Piece, Source, Template, Test};
use super::filters::apply;
use super::scope::Ctx;
use super::value::{V, push_texts, walk};

impl Expr {
    /// The values of the first alternative that yields any.
    pub(crate) fn eval<'a>(&self, ctx: &Ctx<'_, 'a>) -> Vec<V<'a>> {
        for alt in &self.alts {
            let values = alt.eval(ctx);
            // An alternative that finds only nulls (`"alias": null`) yields nothing.
            if values.iter().any(|v| !matches!(v, V::J(Value::Null))) {
                return values;
            }
        }
        Vec::new()
    }

    /// The texts the expression yields (null, objects, empty strings dropped; arrays
    /// flattened one level).
    pub(crate) fn strings(&self, ctx: &Ctx<'_, '_>, out: &mut Vec<String>) {
        for v in self.eval(ctx) {
            push_texts(&v, &mut |s| out.push(s.into_owned()));
        }
    }

    /// The first text the expression yields.
    pub(crate) fn first(&self, ctx: &Ctx<'_, '_>) -> Option<String> {
        let mut first = None;
        for v in self.eval(ctx) {
            push_texts(&v, &mut |s| {
                if first.is_none() {
                    first = Some(s.into_owned());
                }
            });
            if first.is_some() {
                break;
            }
        }
        first
    }

    fn truthy(&self, ctx: &Ctx<'_, '_>) -> bool {
        self.eval(ctx).iter().any(V::truthy)
    }
}

/// The `index`th dot-separated segment of the short topic (from the end when negative).
fn segment(short: &str, index: isize) -> Option<&str> {
    if index >= 0 {
        short.split('.').nth(index as usize)
    } else {
        short.rsplit('.').nth((-index - 1) as usize)
    }
}

impl Alt {
    fn eval<'a>(&self, ctx: &Ctx<'_, 'a>) -> Vec<V<'a>> {
        let mut values = Vec::new();
        match &self.source {
            Source::Path(segs) => walk(ctx.body, segs, &mut values),
            Source::Lit(s) => values.push(V::S(Cow::Owned(s.clone()))),
            Source::Group(e) => values = e.eval(ctx),
            Source::Var(name, path) => {
                if let Some(b) = ctx.vars.iter().rev().find(|b| b.name == name.as_str()) {
                    if path.is_empty() {
                        values.extend(b.values.iter().cloned());
                    } else {
                        for v in &b.values {
                            if let V::J(j) = v {
                                walk(j, path, &mut values);
                            }
                        }
                    }
                }
            }
            Source::Topic => values.push(V::S(Cow::Borrowed(ctx.topic))),
            Source::Short => values.push(V::S(Cow::Borrowed(ctx.short))),
            Source::Seg(i) => {
                if let Some(s) = segment(ctx.short, *i) {
                    values.push(V::S(Cow::Borrowed(s)));
                }
            }
            Source::Agent => {
                if let Some(a) = ctx.agent {
                    values.push(V::S(Cow::Borrowed(a)));
                }
            }
            Source::Key => {
                if let Some(k) = ctx.key {
                    values.push(V::S(Cow::Borrowed(k)));
                }
            }
        }
        for filter in &self.filters {
            values = match filter {
                Filter::Lookup(segs) => {
                    let mut tables = Vec::new();
                    walk(ctx.body, segs, &mut tables);
                    let mut out = Vec::new();
                    for v in &values {
                        push_texts(v, &mut |key| {
                            for t in &tables {
                                if let V::J(Value::Object(map)) = t {
                                    if let Some(found) = map.get(key.as_ref()) {
                                        out.push(V::J(found));
                                    }
                                }
                            }
                        });
                    }
                    out
                }
                Filter::Each(t) => each(t, ctx, &values),
                f => apply(f, values),
            };
        }
        values
    }
}

/// `each(template)`: the template rendered against each element of the arrays and each entry
/// of the objects among the values (objects in key order, with the key as `@key`).
fn each<'a>(t: &Template, ctx: &Ctx<'_, 'a>, values: &[V<'a>]) -> Vec<V<'a>> {
    let mut out = Vec::new();
    let mut render = |body: &'a Value, key: Option<&'a str>| {
        let sub = Ctx { body, key, ..*ctx };
        if let Some(s) = t.render(&sub) {
            out.push(V::S(Cow::Owned(s)));
        }
    };
    for v in values {
        match v {
            V::J(Value::Object(map)) => {
                let mut entries: Vec<(&'a String, &'a Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (k, item) in entries {
                    render(item, Some(k.as_str()));
                }
            }
            V::J(Value::Array(items)) => items.iter().for_each(|item| render(item, None)),
            V::J(other) => render(other, None),
            V::S(_) => {}
        }
    }
    out
}

impl Cond {
    /// Whether every clause holds.
    pub(crate) fn holds(&self, ctx: &Ctx<'_, '_>) -> bool {
        self.clauses.iter().all(|c| {
            let result = match &c.test {
                Test::Truthy => c.expr.truthy(ctx),
                Test::Eq(s) | Test::Ne(s) => {
                    let equal = c.expr.eval(ctx).iter().any(|v| match v {
                        V::J(Value::Null) => s == "None",
                        v => v.text().is_some_and(|t| t == s.as_str()),
                    });
                    equal == matches!(c.test, Test::Eq(_))
                }
                Test::EqExpr(other, eq) => {
                    let a = c.expr.first(ctx);
                    (a.is_some() && a == other.first(ctx)) == *eq
                }
                Test::Match(re) => c
                    .expr
                    .eval(ctx)
                    .iter()
                    .any(|v| v.text().is_some_and(|t| re.is_match(&t))),
            };
            result != c.negate
        })
    }
}

impl Template {
    /// The rendered text, or `None` when a hole yields nothing.
    pub(crate) fn render(&self, ctx: &Ctx<'_, '_>) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole(e) => {
                    let values = e.eval(ctx);
                    // A hole is missing when it yields nothing (or only nulls); an empty text
                    // (`|default('')`) is a present, empty value.
                    if values.iter().all(|v| matches!(v, V::J(Value::Null))) {
                        return None;
                    }
                    let mut first = true;
                    for v in values {
                        push_texts(&v, &mut |s| {
                            if !first {
                                out.push_str(", ");
                            }
                            out.push_str(&s);
                            first = false;
                        });
                    }
                }
            }
        }
        Some(out)
    }
}
