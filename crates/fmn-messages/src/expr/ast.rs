//! The compiled forms of the language: expressions (alternatives of a source and filters),
//! conditions and templates. Parsed by `parser`, evaluated by `eval`.

use regex::Regex;

#[derive(Debug, Clone)]
pub(super) enum Seg {
    /// An object key; when it is a number, also an array index.
    Key(String, Option<isize>),
    /// Every element of an array (or every value of an object).
    Star,
}

#[derive(Debug, Clone)]
pub(super) enum Source {
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
pub(super) enum Filter {
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
    Shorten(usize, String),
    Get(Vec<Seg>),
    /// Each text parsed as JSON, then the values at a path of it, as texts (an array's
    /// elements each): `/IPA_API_PARAMS|json(/cn)`. Texts that are not JSON are dropped.
    Json(Vec<Seg>),
    /// Each text used as a key into the object at a path of the body (`lookup(/fas_usernames)`);
    /// texts without an entry are dropped.
    Lookup(Vec<Seg>),
    /// Keeps the values whose text at a path matches a regex (`where(/distro, '^Fedora$')`),
    /// or with `true`, those whose text there does not (`where_not`: Python's `else` branch).
    Where(Vec<Seg>, Regex, bool),
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

#[derive(Debug, Clone)]
pub(super) struct Alt {
    pub(super) source: Source,
    pub(super) filters: Vec<Filter>,
}

/// A compiled expression: alternatives separated by `||`.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub(super) alts: Vec<Alt>,
}

/// How a clause tests its expression.
#[derive(Debug, Clone)]
pub(super) enum Test {
    Truthy,
    Eq(String),
    Ne(String),
    /// Equal to the first text of another expression (`/agent == /update/user/name`).
    EqExpr(Expr, bool),
    Match(Regex),
}

/// One `&&`-joined clause of a condition.
#[derive(Debug, Clone)]
pub(super) struct Clause {
    pub(super) negate: bool,
    pub(super) expr: Expr,
    pub(super) test: Test,
}

/// A compiled condition: clauses joined by `&&`.
#[derive(Debug, Clone)]
pub(crate) struct Cond {
    pub(super) clauses: Vec<Clause>,
}

/// A piece of a template.
#[derive(Debug, Clone)]
pub(super) enum Piece {
    Text(String),
    Hole(Expr),
}

/// A compiled template: text with `{expression}` holes (`{{` and `}}` for braces).
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(super) pieces: Vec<Piece>,
}
