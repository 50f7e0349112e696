//! Tokens to the compiled forms: expressions, conditions, templates, and each filter's
//! arguments.

use regex::Regex;

use super::ast::{Alt, Clause, Cond, Expr, Filter, Piece, Seg, Source, Template, Test};
use super::lexer::{ParseError, Tok, lex};

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
            "json" => Filter::Json(parse_path(&one("path")?)),
            "lookup" => Filter::Lookup(parse_path(&one("path")?)),
            "where" | "where_not" => match pos.as_slice() {
                [p, r] => {
                    Filter::Where(parse_path(p), regex((*r).to_owned())?, name == "where_not")
                }
                _ => return Err(format!("filter {name} takes a path and a regex")),
            },
            "each" => Filter::Each(Box::new(
                Template::parse(&one("template")?).map_err(|e| format!("filter {name}: {e}"))?,
            )),
            "filter" => Filter::Keep(regex(one("regex")?)?),
            "reject" => Filter::Reject(regex(one("regex")?)?),
            "capture" => Filter::Capture(regex(one("regex")?)?),
            "findall" => Filter::FindAll(regex(one("regex")?)?),
            "shorten" => match pos.as_slice() {
                [n] | [n, _] => Filter::Shorten(
                    n.parse()
                        .map_err(|_| format!("filter {name}: length must be a number"))?,
                    pos.get(1).map_or("...", |s| s).to_owned(),
                ),
                _ => {
                    return Err(format!(
                        "filter {name} takes a length and an optional suffix"
                    ));
                }
            },
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

impl Expr {
    pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
        let mut p = Parser::new(src)?;
        let e = p.expr()?;
        p.done()?;
        Ok(e)
    }
}

impl Cond {
    pub(crate) fn parse(src: &str) -> Result<Cond, ParseError> {
        let mut p = Parser::new(src)?;
        let c = p.cond()?;
        p.done()?;
        Ok(c)
    }
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
}
