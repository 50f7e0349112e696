//! The small expression and template language of the catalog.
//!
//! An expression reads values out of a message (`/comment/user/name`, `@seg(1)`) and passes
//! them through filters (`|user`, `|join(", ")`); `a || b` takes the first alternative that
//! yields something. A template is text with `{expression}` placeholders. A condition is
//! `expr`, `!expr`, `expr == "text"`, `expr != "text"` or `expr ~ "regex"`, joined by `&&`.
//! The catalog README documents the language for the people who write catalog entries.

use std::borrow::Cow;
use std::fmt::Write as _;

use regex::Regex;
use serde_json::Value;

/// What an expression can see of the message being normalised.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'v, 'a> {
    pub body: &'a Value,
    pub topic: &'a str,
    /// The topic without its `org.<domain>.<env>.` prefix.
    pub short: &'a str,
    pub agent: Option<&'a str>,
    /// Inside `each(template)` over an object: the key of the entry being rendered (`@key`).
    pub key: Option<&'a str>,
    /// The values of the file's `[[var]]` definitions computed so far (`$name`).
    pub vars: &'v [Bound<'a>],
}

/// A named value computed once per message (`[[var]]` in a catalog file).
#[derive(Debug, Clone)]
pub(crate) struct Bound<'a> {
    pub name: &'a str,
    pub values: Vec<V<'a>>,
}

impl<'a> Bound<'a> {
    /// A var holding one rendered text.
    pub(crate) fn text(name: &'a str, text: Option<String>) -> Self {
        Bound {
            name,
            values: text.map(|t| V::S(Cow::Owned(t))).into_iter().collect(),
        }
    }
}

/// One value flowing through an expression: a borrowed piece of the body or a computed text.
#[derive(Debug, Clone)]
pub(crate) enum V<'a> {
    J(&'a Value),
    S(Cow<'a, str>),
}

impl<'a> V<'a> {
    /// The text of a scalar; `None` for null, objects and arrays.
    fn text(&self) -> Option<Cow<'a, str>> {
        match self {
            V::S(s) => Some(s.clone()),
            V::J(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
            V::J(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            V::J(Value::Bool(b)) => Some(Cow::Borrowed(if *b { "True" } else { "False" })),
            V::J(_) => None,
        }
    }

    /// Python's truthiness, which is what the reference processors test.
    fn truthy(&self) -> bool {
        match self {
            V::S(s) => !s.is_empty(),
            V::J(Value::Null) => false,
            V::J(Value::Bool(b)) => *b,
            V::J(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            V::J(Value::String(s)) => !s.is_empty(),
            V::J(Value::Array(a)) => !a.is_empty(),
            V::J(Value::Object(o)) => !o.is_empty(),
        }
    }
}

/// A parse error in a catalog expression, template or condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Pipe,
    OrOr,
    AndAnd,
    LParen,
    RParen,
    Comma,
    Colon,
    EqEq,
    NotEq,
    Tilde,
    Bang,
}

fn lex(input: &str) -> Result<Vec<Tok>, ParseError> {
    let mut toks = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '"' | '\'' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some((_, d)) = chars.next() {
                    if d == '\\' {
                        if let Some((_, e)) = chars.next() {
                            // `\n`, `\t` and escaped quotes or backslashes are read;
                            // any other escape (`\s`, `\d`, `\.`) is kept for regexes.
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                '\\' | '"' | '\'' => s.push(e),
                                e => {
                                    s.push('\\');
                                    s.push(e);
                                }
                            }
                        }
                    } else if d == c {
                        closed = true;
                        break;
                    } else {
                        s.push(d);
                    }
                }
                if !closed {
                    return Err(ParseError(format!("unclosed string in {input:?}")));
                }
                toks.push(Tok::Str(s));
            }
            '|' | '&' | '=' | '!' => {
                chars.next();
                let next = chars.peek().map(|&(_, d)| d);
                let tok = match (c, next) {
                    ('|', Some('|')) => Some(Tok::OrOr),
                    ('&', Some('&')) => Some(Tok::AndAnd),
                    ('=', Some('=')) => Some(Tok::EqEq),
                    ('!', Some('=')) => Some(Tok::NotEq),
                    _ => None,
                };
                match tok {
                    Some(t) => {
                        chars.next();
                        toks.push(t);
                    }
                    None => match c {
                        '|' => toks.push(Tok::Pipe),
                        '!' => toks.push(Tok::Bang),
                        _ => return Err(ParseError(format!("stray {c:?} at {i} in {input:?}"))),
                    },
                }
            }
            '(' | ')' | ',' | ':' | '~' => {
                chars.next();
                toks.push(match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    ':' => Tok::Colon,
                    _ => Tok::Tilde,
                });
            }
            _ => {
                let mut s = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_whitespace() || "\"'|&=!(),:~".contains(d) {
                        break;
                    }
                    s.push(d);
                    chars.next();
                }
                toks.push(Tok::Word(s));
            }
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    src: String,
}

impl Parser {
    fn new(src: &str) -> Result<Self, ParseError> {
        Ok(Parser {
            toks: lex(src)?,
            pos: 0,
            src: src.to_owned(),
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn err(&self, what: &str) -> ParseError {
        ParseError(format!("{what} in {:?}", self.src))
    }

    fn done(&self) -> Result<(), ParseError> {
        if self.pos < self.toks.len() {
            Err(self.err(&format!("unexpected {:?}", self.toks[self.pos])))
        } else {
            Ok(())
        }
    }

    /// `( arg, arg, key:value )` after a name; empty when there are no parentheses.
    fn args(&mut self) -> Result<Vec<(Option<String>, String)>, ParseError> {
        let mut args = Vec::new();
        if !self.eat(&Tok::LParen) {
            return Ok(args);
        }
        if self.eat(&Tok::RParen) {
            return Ok(args);
        }
        loop {
            let first = match self.next() {
                Some(Tok::Word(w) | Tok::Str(w)) => w,
                _ => return Err(self.err("expected an argument")),
            };
            if self.eat(&Tok::Colon) {
                let value = match self.next() {
                    Some(Tok::Word(w) | Tok::Str(w)) => w,
                    _ => return Err(self.err("expected a value after ':'")),
                };
                args.push((Some(first), value));
            } else {
                args.push((None, first));
            }
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            if !self.eat(&Tok::Comma) {
                return Err(self.err("expected ',' or ')'"));
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut alts = vec![self.alt()?];
        while self.eat(&Tok::OrOr) {
            alts.push(self.alt()?);
        }
        Ok(Expr { alts })
    }

    fn alt(&mut self) -> Result<Alt, ParseError> {
        let source = match self.next() {
            Some(Tok::LParen) => {
                let inner = self.expr()?;
                if !self.eat(&Tok::RParen) {
                    return Err(self.err("expected ')'"));
                }
                Source::Group(Box::new(inner))
            }
            Some(Tok::Str(s)) => Source::Lit(s),
            Some(Tok::Word(w)) if w.starts_with('/') => Source::Path(parse_path(&w)),
            Some(Tok::Word(w)) if w.starts_with('$') => {
                let (name, path) = match w[1..].find('/') {
                    Some(i) => (&w[1..=i], parse_path(&w[i + 1..])),
                    None => (&w[1..], Vec::new()),
                };
                if name.is_empty() {
                    return Err(self.err("expected a name after '$'"));
                }
                Source::Var(name.to_owned(), path)
            }
            Some(Tok::Word(w)) if w.starts_with('@') => {
                let args = self.args()?;
                let index = |default: isize| -> Result<isize, ParseError> {
                    match args.first() {
                        None => Ok(default),
                        Some((_, a)) => a
                            .parse()
                            .map_err(|_| self.err(&format!("@{w}: bad index {a:?}"))),
                    }
                };
                match &w[1..] {
                    "topic" => Source::Topic,
                    "subtopic" => Source::Short,
                    "seg" => Source::Seg(index(0)?),
                    "agent" => Source::Agent,
                    "key" => Source::Key,
                    other => return Err(self.err(&format!("unknown source @{other}"))),
                }
            }
            other => return Err(self.err(&format!("expected a source, got {other:?}"))),
        };
        let mut filters = Vec::new();
        while self.eat(&Tok::Pipe) {
            let name = match self.next() {
                Some(Tok::Word(w)) => w,
                _ => return Err(self.err("expected a filter name after '|'")),
            };
            let args = self.args()?;
            filters.push(Filter::build(&name, args).map_err(|e| self.err(&e))?);
        }
        Ok(Alt { source, filters })
    }

    fn cond(&mut self) -> Result<Cond, ParseError> {
        let mut clauses = Vec::new();
        loop {
            let negate = self.eat(&Tok::Bang);
            let expr = self.expr()?;
            let test = match self.peek() {
                Some(Tok::EqEq | Tok::NotEq | Tok::Tilde) => {
                    let op = self.next();
                    let operand_is_expr = match self.peek() {
                        Some(Tok::LParen) => true,
                        Some(Tok::Word(w)) => {
                            w.starts_with('/') || w.starts_with('@') || w.starts_with('$')
                        }
                        _ => false,
                    };
                    if operand_is_expr && matches!(op, Some(Tok::EqEq | Tok::NotEq)) {
                        let other = self.expr()?;
                        clauses.push(Clause {
                            negate,
                            expr,
                            test: Test::EqExpr(other, matches!(op, Some(Tok::EqEq))),
                        });
                        if !self.eat(&Tok::AndAnd) {
                            break;
                        }
                        continue;
                    }
                    let (operand, is_expr) = match self.next() {
                        Some(Tok::Word(w)) => {
                            let is_expr = w.starts_with('/') || w.starts_with('@');
                            (w, is_expr)
                        }
                        Some(Tok::Str(w)) => (w, false),
                        _ => return Err(self.err("expected a value to compare with")),
                    };
                    match op {
                        Some(Tok::EqEq | Tok::NotEq) if is_expr => {
                            Test::EqExpr(Expr::parse(&operand)?, matches!(op, Some(Tok::EqEq)))
                        }
                        Some(Tok::EqEq) => Test::Eq(operand),
                        Some(Tok::NotEq) => Test::Ne(operand),
                        _ => {
                            Test::Match(Regex::new(&operand).map_err(|e| self.err(&e.to_string()))?)
                        }
                    }
                }
                _ => Test::Truthy,
            };
            clauses.push(Clause { negate, expr, test });
            if !self.eat(&Tok::AndAnd) {
                break;
            }
        }
        Ok(Cond { clauses })
    }
}

// ---------------------------------------------------------------- expressions

#[derive(Debug, Clone)]
enum Seg {
    /// An object key; when it is a number, also an array index.
    Key(String, Option<isize>),
    /// Every element of an array (or every value of an object).
    Star,
}

fn parse_path(path: &str) -> Vec<Seg> {
    if path == "/" {
        return Vec::new();
    }
    path.split('/')
        .skip(1)
        .map(|s| {
            if s == "*" {
                Seg::Star
            } else {
                let key = s.replace("~1", "/").replace("~0", "~");
                let index = key.parse().ok();
                Seg::Key(key, index)
            }
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Source {
    Path(Vec<Seg>),
    Lit(String),
    /// `$name` or `$name/a/b`: a var of the file, or a path into its values.
    Var(String, Vec<Seg>),
    /// `(a || b)`: a parenthesised expression, so that filters apply to every alternative.
    Group(Box<Expr>),
    Topic,
    Short,
    Seg(isize),
    Agent,
    Key,
}

#[derive(Debug, Clone)]
enum Filter {
    /// Per value.
    User,
    Local,
    Lower,
    Upper,
    Trim,
    Title,
    Basename,
    NvrName,
    NvrVersion,
    FirstLine,
    Py,
    Int,
    Str,
    Prefix(String),
    Suffix(String),
    StripPrefix(String),
    StripSuffix(String),
    Replace(String, String),
    Truncate(usize),
    Ellipsis(usize, String),
    Map(Vec<(String, String)>, Option<String>),
    Sub(Regex, String),
    Capture(Regex),
    /// Every match of a regex (group 1 when it has one), one value each.
    FindAll(Regex),
    /// Python's `s[:n] + '...'` when `len(s) >= n` (fedmsg.meta's `truncate`).
    Shorten(usize),
    Get(Vec<Seg>),
    /// Each text used as a key into the object at a path of the body (`lookup(/fas_usernames)`);
    /// texts without an entry are dropped.
    Lookup(Vec<Seg>),
    /// Keeps the values whose text at a path matches a regex (`where(/distro, '^Fedora$')`).
    Where(Vec<Seg>, Regex),
    /// A template rendered against each element of an array or each entry of an object (in
    /// key order, the key as `@key`); elements for which it fails are dropped.
    Each(Box<Template>),
    Split(String),
    Keys,
    Values,
    /// Over the whole list.
    Join(String),
    First,
    Last,
    Count,
    Unique,
    Sort,
    Default(String),
    Not,
    Keep(Regex),
    Reject(Regex),
    PyList,
    English,
}

impl Filter {
    fn build(name: &str, args: Vec<(Option<String>, String)>) -> Result<Filter, String> {
        let pos: Vec<&str> = args
            .iter()
            .filter(|(k, _)| k.is_none())
            .map(|(_, v)| v.as_str())
            .collect();
        let one = |what: &str| -> Result<String, String> {
            match pos.as_slice() {
                [a] => Ok((*a).to_owned()),
                _ => Err(format!("filter {name} takes one argument ({what})")),
            }
        };
        let regex = |s: String| Regex::new(&s).map_err(|e| format!("filter {name}: {e}"));
        Ok(match name {
            "user" => Filter::User,
            "local" => Filter::Local,
            "lower" => Filter::Lower,
            "upper" => Filter::Upper,
            "trim" => Filter::Trim,
            "title" => Filter::Title,
            "basename" => Filter::Basename,
            "nvr_name" => Filter::NvrName,
            "nvr_version" => Filter::NvrVersion,
            "firstline" => Filter::FirstLine,
            "py" => Filter::Py,
            "int" => Filter::Int,
            "str" => Filter::Str,
            "keys" => Filter::Keys,
            "values" => Filter::Values,
            "first" => Filter::First,
            "last" => Filter::Last,
            "count" => Filter::Count,
            "unique" => Filter::Unique,
            "sort" => Filter::Sort,
            "not" => Filter::Not,
            "pylist" => Filter::PyList,
            "english" => Filter::English,
            "ellipsis" => match pos.as_slice() {
                [n] | [n, _] => Filter::Ellipsis(
                    n.parse()
                        .map_err(|_| format!("filter {name}: length must be a number"))?,
                    pos.get(1).map_or("\u{2026}", |s| s).to_owned(),
                ),
                _ => {
                    return Err(format!(
                        "filter {name} takes a length and an optional suffix"
                    ));
                }
            },
            "prefix" => Filter::Prefix(one("text")?),
            "suffix" => Filter::Suffix(one("text")?),
            "strip_prefix" => Filter::StripPrefix(one("text")?),
            "strip_suffix" => Filter::StripSuffix(one("text")?),
            "default" => Filter::Default(one("text")?),
            "split" => Filter::Split(one("separator")?),
            "join" => Filter::Join(one("separator")?),
            "get" => Filter::Get(parse_path(&one("path")?)),
            "lookup" => Filter::Lookup(parse_path(&one("path")?)),
            "where" => match pos.as_slice() {
                [p, r] => Filter::Where(parse_path(p), regex((*r).to_owned())?),
                _ => return Err(format!("filter {name} takes a path and a regex")),
            },
            "each" => Filter::Each(Box::new(
                Template::parse(&one("template")?).map_err(|e| format!("filter {name}: {e}"))?,
            )),
            "filter" => Filter::Keep(regex(one("regex")?)?),
            "reject" => Filter::Reject(regex(one("regex")?)?),
            "capture" => Filter::Capture(regex(one("regex")?)?),
            "findall" => Filter::FindAll(regex(one("regex")?)?),
            "shorten" => Filter::Shorten(
                one("length")?
                    .parse()
                    .map_err(|_| format!("filter {name}: length must be a number"))?,
            ),
            "truncate" => Filter::Truncate(
                one("length")?
                    .parse()
                    .map_err(|_| format!("filter {name}: length must be a number"))?,
            ),
            "replace" | "sub" => match pos.as_slice() {
                [a, b] if name == "replace" => Filter::Replace((*a).to_owned(), (*b).to_owned()),
                [a, b] => Filter::Sub(regex((*a).to_owned())?, (*b).to_owned()),
                _ => return Err(format!("filter {name} takes two arguments")),
            },
            "map" => {
                let mut pairs = Vec::new();
                let mut default = None;
                for (k, v) in args {
                    match k.as_deref() {
                        Some("_") => default = Some(v),
                        Some(k) => pairs.push((k.to_owned(), v)),
                        None => return Err("map takes key:value pairs".into()),
                    }
                }
                Filter::Map(pairs, default)
            }
            other => return Err(format!("unknown filter {other}")),
        })
    }
}

#[derive(Debug, Clone)]
struct Alt {
    source: Source,
    filters: Vec<Filter>,
}

/// A compiled expression: alternatives separated by `||`.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    alts: Vec<Alt>,
}

impl Expr {
    pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
        let mut p = Parser::new(src)?;
        let e = p.expr()?;
        p.done()?;
        Ok(e)
    }

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

fn push_texts<'a>(v: &V<'a>, f: &mut impl FnMut(Cow<'a, str>)) {
    match v {
        V::J(Value::Array(items)) => {
            for item in items {
                if let Some(s) = V::J(item).text().filter(|s| !s.is_empty()) {
                    f(s);
                }
            }
        }
        v => {
            if let Some(s) = v.text().filter(|s| !s.is_empty()) {
                f(s);
            }
        }
    }
}

fn walk<'a>(value: &'a Value, segs: &[Seg], out: &mut Vec<V<'a>>) {
    let Some((seg, rest)) = segs.split_first() else {
        out.push(V::J(value));
        return;
    };
    match seg {
        Seg::Star => match value {
            Value::Array(items) => items.iter().for_each(|v| walk(v, rest, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, rest, out)),
            _ => {}
        },
        Seg::Key(key, index) => match value {
            Value::Object(map) => {
                if let Some(v) = map.get(key) {
                    walk(v, rest, out);
                }
            }
            Value::Array(items) => {
                if let Some(i) = *index {
                    let i = if i < 0 { items.len() as isize + i } else { i };
                    if let Some(v) = usize::try_from(i).ok().and_then(|i| items.get(i)) {
                        walk(v, rest, out);
                    }
                }
            }
            _ => {}
        },
    }
}

fn segment(short: &str, index: isize) -> Option<&str> {
    if index >= 0 {
        short.split('.').nth(index as usize)
    } else {
        short.rsplit('.').nth((-index - 1) as usize)
    }
}

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

fn apply<'a>(filter: &Filter, values: Vec<V<'a>>) -> Vec<V<'a>> {
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
        F::Shorten(n) => map_text(values, |s| {
            Some(if s.chars().count() >= *n {
                let end = s.char_indices().nth(*n).map_or(s.len(), |(i, _)| i);
                Cow::Owned(format!("{}...", &s[..end]))
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
        // Needs the body: applied in `Alt::eval`.
        F::Lookup(_) | F::Each(_) => values,
        F::Where(segs, re) => {
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
                    if found
                        .iter()
                        .any(|f| f.text().is_some_and(|t| re.is_match(&t)))
                    {
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

// ---------------------------------------------------------------- conditions

#[derive(Debug, Clone)]
enum Test {
    Truthy,
    Eq(String),
    Ne(String),
    /// Equal to the first text of another expression (`/agent == /update/user/name`).
    EqExpr(Expr, bool),
    Match(Regex),
}

#[derive(Debug, Clone)]
struct Clause {
    negate: bool,
    expr: Expr,
    test: Test,
}

/// A compiled condition: clauses joined by `&&`.
#[derive(Debug, Clone)]
pub(crate) struct Cond {
    clauses: Vec<Clause>,
}

impl Cond {
    pub(crate) fn parse(src: &str) -> Result<Cond, ParseError> {
        let mut p = Parser::new(src)?;
        let c = p.cond()?;
        p.done()?;
        Ok(c)
    }

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

// ---------------------------------------------------------------- templates

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Hole(Expr),
}

/// A compiled template: text with `{expression}` holes (`{{` and `}}` for braces).
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    pub(crate) fn parse(src: &str) -> Result<Template, ParseError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = src.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut inner = String::new();
                    let mut quote = None;
                    let mut closed = false;
                    while let Some(d) = chars.next() {
                        match (quote, d) {
                            (None, '}') => {
                                closed = true;
                                break;
                            }
                            (None, '"' | '\'') => quote = Some(d),
                            (Some(q), d) if d == q => quote = None,
                            (Some(_), '\\') => {
                                inner.push(d);
                                if let Some(e) = chars.next() {
                                    inner.push(e);
                                }
                                continue;
                            }
                            _ => {}
                        }
                        inner.push(d);
                    }
                    if !closed {
                        return Err(ParseError(format!("unclosed '{{' in template {src:?}")));
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Hole(Expr::parse(&inner)?));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { pieces })
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(body: &Value) -> Ctx<'_, '_> {
        Ctx {
            body,
            topic: "org.fedoraproject.prod.bodhi.update.comment",
            short: "bodhi.update.comment",
            agent: Some("alice"),
            key: None,
            vars: &[],
        }
    }

    fn render(t: &str, body: &Value) -> Option<String> {
        Template::parse(t).unwrap().render(&ctx(body))
    }

    #[test]
    fn each_renders_a_template_per_entry() {
        let body = json!({"d": {"b": {"x": [1, 2], "y": []}, "a": {"x": [], "y": [3]},
                                "c": {"x": [], "y": []}},
                          "l": [{"n": "p"}, {"m": 1}, {"n": "q"}]});
        assert_eq!(
            render(
                "{/d|each('{@key}: +{/x|count}/-{/y|count}')|reject('\\+0/-0$')|join('; ')}",
                &body
            )
            .as_deref(),
            Some("a: +0/-1; b: +2/-0")
        );
        // Elements for which the template fails are dropped; no `@key` outside `each`.
        assert_eq!(
            render("{/l|each('<{/n}>')}", &body).as_deref(),
            Some("<p>, <q>")
        );
        assert_eq!(render("{@key}", &body), None);
    }

    #[test]
    fn templates_paths_and_filters() {
        let body = json!({"a": {"b": "x@fedoraproject.org", "n": 3},
                          "list": ["p-1.0-1.fc40", "q-2-3"], "s": "a, b,c", "nul": null});
        assert_eq!(render("{/a/b|user}!", &body).as_deref(), Some("x!"));
        assert_eq!(render("{/list/*|nvr_name}", &body).as_deref(), Some("p, q"));
        assert_eq!(
            render("{/list|join(' ')}", &body).as_deref(),
            Some("p-1.0-1.fc40 q-2-3")
        );
        assert_eq!(render("{/s|split(',')|last}", &body).as_deref(), Some("c"));
        assert_eq!(render("{/nul}", &body), None);
        assert_eq!(render("{/nul|py}", &body).as_deref(), Some("None"));
        assert_eq!(
            render("{/missing || @agent}", &body).as_deref(),
            Some("alice")
        );
        assert_eq!(
            render("{@seg(-1)} {@seg(0)}", &body).as_deref(),
            Some("comment bodhi")
        );
        assert_eq!(
            render("{/a/n|map(3:three, _:many)}", &body).as_deref(),
            Some("three")
        );
        assert_eq!(render("{{{/a/n}}}", &body).as_deref(), Some("{3}"));
        assert_eq!(render("{/list|count}", &body).as_deref(), Some("2"));
    }

    #[test]
    fn conditions() {
        let body = json!({"new": 1, "s": "open", "e": []});
        let holds = |c: &str| Cond::parse(c).unwrap().holds(&ctx(&body));
        assert!(holds("/new == 1"));
        assert!(holds("/new == 1 && /s ~ '^op'"));
        assert!(!holds("/e"));
        assert!(holds("!/e"));
        assert!(holds("/s != closed"));
        assert!(!holds("/missing"));
    }

    #[test]
    fn parse_errors_are_reported() {
        assert!(Template::parse("{/a").is_err());
        assert!(Expr::parse("/a|nope").is_err());
        assert!(Cond::parse("/a ==").is_err());
    }
}
