//! Loading catalog files (raw TOML → validated → compiled) into a [`Catalog`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use super::entry::{Entry, Glob, Text, Var, VarBody};
use super::spec::{EntrySpec, FileSpec, GenerationSpec, TextSpec};
use super::{BUILTIN, Catalog, CatalogError, is_fm};
use crate::expr::{Cond, Expr, ParseError};
use crate::message::Generation;

impl Catalog {
    /// The catalog shipped with fmn (the files under `catalog/`), loaded once.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            // The builtin files are checked by a unit test, so failure here is a build bug.
            #[allow(clippy::expect_used)]
            Catalog::from_sources(BUILTIN).expect("builtin catalog is valid")
        })
    }

    /// Loads a catalog from `(file name, TOML text)` pairs.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        let mut entries = Vec::new();
        let mut apps = BTreeSet::new();
        for (file, text) in sources {
            let err = |message: String| CatalogError {
                file: (*file).to_owned(),
                message,
            };
            let mut parsed: FileSpec = toml::from_str(text).map_err(|e| err(e.to_string()))?;
            let generation = match parsed.generation {
                GenerationSpec::Fedmsg => Generation::Fedmsg,
                GenerationSpec::FedoraMessaging => Generation::FedoraMessaging,
            };
            let mut vars = Vec::new();
            for v in std::mem::take(&mut parsed.vars) {
                let body = match (v.expr, v.text) {
                    (Some(e), None) => VarBody::Expr(Expr::parse(&e).map_err(|e| err(e.0))?),
                    (None, Some(t)) => VarBody::Text(Text::compile(t).map_err(|e| err(e.0))?),
                    _ => return Err(err(format!("var {:?} needs one of expr or text", v.name))),
                };
                vars.push(Var { name: v.name, body });
            }
            let vars = Arc::new(vars);
            for spec in std::mem::take(&mut parsed.entries) {
                let topic = spec.topic.clone();
                let entry = compile_entry(spec, generation, &parsed, &vars, &mut apps)
                    .map_err(|e| err(format!("entry {topic:?}: {e}")))?;
                entries.push(entry);
            }
        }
        let mut by_app: HashMap<(bool, String), Vec<usize>> = HashMap::new();
        let mut wildcard: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        let mut by_schema: HashMap<String, Vec<usize>> = HashMap::new();
        // Specific entries first, fallbacks last, whatever the file order.
        let order = (0..entries.len())
            .filter(|&i| !entries[i].fallback)
            .chain((0..entries.len()).filter(|&i| entries[i].fallback));
        for i in order {
            let e = &entries[i];
            let fm = is_fm(e.generation);
            for s in &e.schemas {
                by_schema.entry(s.clone()).or_default().push(i);
            }
            let head = &e.topic.head;
            if e.topic.pieces.len() == 1 || head.contains('.') {
                let app = head.split('.').next().unwrap_or_default().to_owned();
                by_app.entry((fm, app)).or_default().push(i);
            } else {
                wildcard[usize::from(fm)].push(i);
            }
        }
        Ok(Catalog {
            entries,
            by_app,
            wildcard,
            by_schema,
            applications: apps.into_iter().collect(),
        })
    }
}

fn compile_entry(
    spec: EntrySpec,
    generation: Generation,
    file: &FileSpec,
    vars: &Arc<Vec<Var>>,
    apps: &mut BTreeSet<String>,
) -> Result<Entry, String> {
    let e = |p: ParseError| p.0;
    let exprs = |v: &Option<Vec<String>>| -> Result<Option<Vec<Expr>>, String> {
        v.as_ref()
            .map(|v| v.iter().map(|s| Expr::parse(s).map_err(e)).collect())
            .transpose()
    };
    let text = |t: Option<TextSpec>| t.map(Text::compile).transpose().map_err(e);
    let app = spec.app.clone().or_else(|| file.app.clone());
    if generation == Generation::FedoraMessaging && spec.schema.is_empty() && !file.fallback {
        return Err("fedora-messaging entries need a schema".into());
    }
    // Every entry names what it mirrors: its schema classes, or a fedmsg.meta processor.
    if generation == Generation::Fedmsg
        && !file.fallback
        && spec.mirrors.is_none()
        && file.mirrors.is_none()
    {
        return Err("fedmsg entries need `mirrors` (the fedmsg.meta processor)".into());
    }
    match &app {
        Some(a) => {
            apps.insert(a.clone());
        }
        None if !file.fallback => {
            let head = spec.topic.split(['.', '*']).next().unwrap_or_default();
            if !head.is_empty() {
                apps.insert(head.to_owned());
            }
        }
        None => {}
    }
    Ok(Entry {
        generation,
        vars: vars.clone(),
        fallback: file.fallback,
        mirrors: spec.mirrors.clone().or_else(|| file.mirrors.clone()),
        topic: Glob::new(&spec.topic),
        schemas: spec.schema,
        when: spec
            .when
            .as_deref()
            .map(Cond::parse)
            .transpose()
            .map_err(e)?,
        app,
        agent: spec
            .agent
            .as_deref()
            .map(Expr::parse)
            .transpose()
            .map_err(e)?,
        agent_when: spec
            .agent_when
            .as_deref()
            .map(Cond::parse)
            .transpose()
            .map_err(e)?,
        facts: [
            exprs(&spec.usernames)?,
            exprs(&spec.rpms)?,
            exprs(&spec.containers)?,
            exprs(&spec.modules)?,
            exprs(&spec.flatpaks)?,
            exprs(&spec.groups)?,
        ],
        title: text(spec.title)?,
        summary: text(spec.summary)?,
        link: text(spec.link)?,
        long_form: text(spec.long_form)?,
    })
}
