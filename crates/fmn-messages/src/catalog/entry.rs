//! The compiled form of a catalog entry.

use std::sync::Arc;

use super::spec::TextSpec;
use crate::expr::{Cond, Ctx, Expr, ParseError, Template};
use crate::message::Generation;

/// How a var's value is computed.
#[derive(Debug)]
pub(super) enum VarBody {
    Expr(Expr),
    Text(Text),
}

#[derive(Debug)]
pub(super) struct Var {
    pub(super) name: String,
    pub(super) body: VarBody,
}

/// A text: the first case whose condition holds and whose template renders.
#[derive(Debug)]
pub(super) struct Text {
    cases: Vec<(Option<Cond>, Template)>,
}

impl Text {
    pub(super) fn compile(spec: TextSpec) -> Result<Text, ParseError> {
        let cases = match spec {
            TextSpec::One(t) => vec![(None, Template::parse(&t)?)],
            TextSpec::Cases(cases) => cases
                .into_iter()
                .map(|c| {
                    Ok((
                        c.when.as_deref().map(Cond::parse).transpose()?,
                        Template::parse(&c.text)?,
                    ))
                })
                .collect::<Result<_, ParseError>>()?,
        };
        Ok(Text { cases })
    }

    /// The first case whose condition holds and whose template renders.
    pub(super) fn render(&self, ctx: &Ctx<'_, '_>) -> Option<String> {
        self.cases.iter().find_map(|(when, template)| {
            if when.as_ref().is_none_or(|c| c.holds(ctx)) {
                template.render(ctx)
            } else {
                None
            }
        })
    }
}

/// The facts an entry may locate, in the order of [`Entry::facts`] (and of the
/// `fedora_messaging_<fact>_<name>` headers' infixes).
pub(super) const FACTS: [&str; 6] = ["user", "rpm", "container", "module", "flatpak", "group"];

/// A compiled entry.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) generation: Generation,
    /// The file's vars (shared by its entries).
    pub(super) vars: Arc<Vec<Var>>,
    pub(super) fallback: bool,
    /// fedmsg: the fedmsg.meta processor mirrored (`module:Class`).
    pub(super) mirrors: Option<String>,
    pub(super) topic: Glob,
    pub(super) schemas: Vec<String>,
    pub(super) when: Option<Cond>,
    pub(super) app: Option<String>,
    pub(super) agent: Option<Expr>,
    pub(super) agent_when: Option<Cond>,
    /// Where the facts are, in [`FACTS`] order; `None`: the entry does not say (a
    /// fedora-messaging message then takes that fact from its headers).
    pub(super) facts: [Option<Vec<Expr>>; 6],
    pub(super) title: Option<Text>,
    pub(super) summary: Option<Text>,
    pub(super) link: Option<Text>,
    pub(super) long_form: Option<Text>,
}

/// An fnmatch-style glob where `*` crosses dots; compiled to literal pieces.
#[derive(Debug)]
pub(super) struct Glob {
    pub(super) pieces: Vec<String>,
    /// The literal text before the first `*` (used to index entries by application).
    pub(super) head: String,
}

impl Glob {
    pub(super) fn new(glob: &str) -> Glob {
        let pieces: Vec<String> = glob.split('*').map(str::to_owned).collect();
        let head = pieces.first().cloned().unwrap_or_default();
        Glob { pieces, head }
    }

    pub(super) fn matches(&self, s: &str) -> bool {
        let Some((first, rest)) = self.pieces.split_first() else {
            return s.is_empty();
        };
        let Some(mut tail) = s.strip_prefix(first.as_str()) else {
            return false;
        };
        if rest.is_empty() {
            return tail.is_empty();
        }
        let (last, middle) = rest.split_last().unwrap_or((first, &[]));
        for piece in middle {
            match tail.find(piece.as_str()) {
                Some(i) => tail = &tail[i + piece.len()..],
                None => return false,
            }
        }
        tail.len() >= last.len() && tail.ends_with(last.as_str())
    }
}
