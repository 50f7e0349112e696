//! The small expression and template language of the catalog.
//!
//! An expression reads values out of a message (`/comment/user/name`, `@seg(1)`) and passes
//! them through filters (`|user`, `|join(", ")`); `a || b` takes the first alternative that
//! yields something. A template is text with `{expression}` placeholders. A condition is
//! `expr`, `!expr`, `expr == "text"`, `expr != "text"` or `expr ~ "regex"`, joined by `&&`.
//! The catalog README documents the language for the people who write catalog entries.
//!
//! The parts, each depending only on those listed before it:
//! - `ast`: the compiled forms (expressions, filters, conditions, templates);
//! - `lexer` and `parser`: text to those forms;
//! - `value`: the values flowing through an expression, and paths into JSON;
//! - `scope`: what an expression can see of the message being normalised;
//! - `filters`: the `|filter` steps applied to values;
//! - `eval`: evaluating expressions, conditions and templates.

mod ast;
mod eval;
mod filters;
mod lexer;
mod parser;
mod scope;
mod value;

pub(crate) use ast::{Cond, Expr, Template};
pub(crate) use lexer::ParseError;
pub(crate) use scope::{Bound, Ctx};

#[cfg(test)]
mod tests;
