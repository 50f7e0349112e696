//! Normalising a raw message: finding its catalog entry and building the [`Message`].

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::entry::{Entry, FACTS, Text, VarBody};
use super::envelope::{detect, one_line, parse_rfc3339, short_topic};
use super::{Catalog, is_fm};
use crate::expr::{Bound, Ctx};
use crate::message::{Artifacts, Generation, Message, MessageError, Severity};

impl Catalog {
    /// The application names the catalog knows (fedmsg topic segments and fedora-messaging
    /// schema application names), sorted and deduplicated.
    pub fn applications(&self) -> &[String] {
        &self.applications
    }

    /// True when an entry of the catalog names this fedora-messaging schema (the schema
    /// class it mirrors); messages of other schemas get the generic summary.
    pub fn knows_schema(&self, schema: &str) -> bool {
        self.by_schema.contains_key(schema)
    }

    /// True when an entry of the catalog mirrors this fedmsg.meta processor (its class name,
    /// `BodhiProcessor`, or `module:Class`).
    pub fn mirrors_processor(&self, processor: &str) -> bool {
        self.entries.iter().any(|e| {
            e.mirrors.as_deref().is_some_and(|m| {
                m == processor || m.rsplit_once(':').is_some_and(|(_, c)| c == processor)
            })
        })
    }

    /// Normalises raw JSON bytes of a bus message.
    pub fn normalize_bytes(&self, raw: &[u8]) -> Result<Message, MessageError> {
        let value: Value =
            serde_json::from_slice(raw).map_err(|e| MessageError::Json(e.to_string()))?;
        self.normalize_value(value)
    }

    /// Normalises one raw bus message of either generation.
    pub fn normalize(&self, raw: &Value) -> Result<Message, MessageError> {
        let obj = raw
            .as_object()
            .ok_or_else(|| MessageError::Shape("expected a JSON object".into()))?;
        let (generation, body_key) = detect(obj)?;
        let body = obj.get(body_key).cloned().unwrap_or(Value::Null);
        self.build(obj, generation, body)
    }

    /// Like [`Catalog::normalize`], taking the message by value (no copy of the body).
    pub fn normalize_value(&self, raw: Value) -> Result<Message, MessageError> {
        let Value::Object(mut obj) = raw else {
            return Err(MessageError::Shape("expected a JSON object".into()));
        };
        let (generation, body_key) = detect(&obj)?;
        let body = obj.remove(body_key).unwrap_or(Value::Null);
        self.build(&obj, generation, body)
    }

    /// The message's entry, and whether it was found by its schema (the entry mirrors the
    /// message's own class) rather than by topic.
    fn find(
        &self,
        generation: Generation,
        schema: Option<&str>,
        ctx: &Ctx<'_, '_>,
    ) -> Option<(&Entry, bool)> {
        let holds = |i: &usize| {
            let e = &self.entries[*i];
            e.when.as_ref().is_none_or(|c| c.holds(ctx))
        };
        let fm = is_fm(generation);
        if let Some(schema) = schema {
            if let Some(i) = self
                .by_schema
                .get(schema)
                .and_then(|v| v.iter().find(|i| holds(i)))
            {
                return Some((&self.entries[*i], true));
            }
        }
        let app = ctx.short.split('.').next().unwrap_or_default();
        // A fedora-messaging message whose schema the catalog lacks is looked up by topic, first
        // among fedora-messaging entries, then among fedmsg ones (bridged messages keep the
        // fedmsg body); the fallback entries of its own generation come last.
        let passes: &[(bool, bool)] = if fm {
            &[(true, false), (false, false), (true, true)]
        } else {
            &[(false, false), (false, true)]
        };
        for &(g, fallback) in passes {
            let specific = self.by_app.get(&(g, app.to_owned())).into_iter().flatten();
            let found = specific
                .chain(self.wildcard[usize::from(g)].iter())
                .find(|&&i| {
                    let e = &self.entries[i];
                    e.fallback == fallback && e.topic.matches(ctx.short) && holds(&i)
                });
            if let Some(&i) = found {
                return Some((&self.entries[i], false));
            }
        }
        None
    }

    fn build(
        &self,
        obj: &Map<String, Value>,
        generation: Generation,
        body: Value,
    ) -> Result<Message, MessageError> {
        let topic = obj
            .get("topic")
            .and_then(Value::as_str)
            .ok_or_else(|| MessageError::Shape("missing string field \"topic\"".into()))?;
        let short = short_topic(topic);
        let (id, headers) = match generation {
            Generation::Fedmsg => {
                let id = match obj.get("msg_id").and_then(Value::as_str) {
                    Some(id) if !id.is_empty() => id.to_owned(),
                    // The earliest fedmsg messages carried no id: derive a stable one.
                    _ => format!(
                        "{topic}:{}:{}",
                        obj.get("timestamp").unwrap_or(&Value::Null),
                        obj.get("i").unwrap_or(&Value::Null)
                    ),
                };
                (id, None)
            }
            Generation::FedoraMessaging => {
                let id = obj
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| MessageError::Shape("missing message id".into()))?;
                (id.to_owned(), obj.get("headers").and_then(Value::as_object))
            }
        };
        let timestamp = obj.get("timestamp").and_then(Value::as_f64).or_else(|| {
            headers
                .and_then(|h| h.get("sent-at"))
                .and_then(Value::as_str)
                .and_then(parse_rfc3339)
        });
        let schema = headers
            .and_then(|h| h.get("fedora_messaging_schema"))
            .and_then(Value::as_str);

        let ctx = Ctx {
            body: &body,
            topic,
            short,
            agent: None,
            key: None,
            vars: &[],
        };
        let found = self.find(generation, schema, &ctx);
        let entry = found.map(|(e, _)| e);
        let by_class = found.is_some_and(|(_, by_schema)| by_schema);
        let mut bound: Vec<Bound<'_>> = Vec::new();
        if let Some(e) = entry {
            for v in e.vars.iter() {
                let c = Ctx {
                    vars: &bound,
                    ..ctx
                };
                let b = match &v.body {
                    VarBody::Expr(x) => Bound {
                        name: &v.name,
                        values: x.eval(&c),
                    },
                    VarBody::Text(t) => Bound::text(&v.name, t.render(&c)),
                };
                bound.push(b);
            }
        }
        let ctx = Ctx {
            vars: &bound,
            ..ctx
        };
        let mut ctx = ctx;

        // Validity is the class's own: its body schema, exported from Fedora's packages.
        if is_fm(generation) {
            if let Err(reason) = crate::schema::validate(schema, &body) {
                return Err(MessageError::Invalid {
                    schema: schema.unwrap_or(short).to_owned(),
                    reason,
                });
            }
        }

        // The facts (usernames, artifacts, groups) of a message whose class the catalog
        // mirrors are the class's own, computed from the body as the class's properties
        // compute them (what FMN 3 and every consumer read). The `fedora_messaging_user_*`,
        // `_rpm_*`, … headers are what the publisher's copy of the class computed (maybe
        // another version of it): they stand in only for a schema the catalog does not know,
        // and for a fact its entry does not locate.
        let fm_headers = headers.filter(|h| h.contains_key("fedora_messaging_schema"));
        let mut facts: [BTreeSet<String>; 6] = Default::default();
        let mut from_headers = [false; 6];
        for (i, found) in from_headers.iter_mut().enumerate() {
            *found =
                fm_headers.is_some() && !(by_class && entry.is_some_and(|e| e.facts[i].is_some()));
        }
        if let Some(h) = fm_headers.filter(|_| from_headers.contains(&true)) {
            for key in h.keys() {
                let Some(rest) = key.strip_prefix("fedora_messaging_") else {
                    continue;
                };
                let Some((i, name)) = FACTS.iter().enumerate().find_map(|(i, f)| {
                    rest.strip_prefix(f)
                        .and_then(|r| r.strip_prefix('_'))
                        .map(|n| (i, n))
                }) else {
                    continue;
                };
                if from_headers[i] {
                    facts[i].insert(name.to_owned());
                }
            }
        }

        let mut agent = None;
        let mut app = None;
        let mut summary = None;
        let mut title = None;
        let mut link = None;
        let mut long_form = None;
        if let Some(e) = entry {
            if e.agent_when.as_ref().is_none_or(|c| c.holds(&ctx)) {
                agent = e.agent.as_ref().and_then(|x| x.first(&ctx));
            }
            let facts_ctx = Ctx {
                agent: agent.as_deref(),
                ..ctx
            };
            let mut buf = Vec::new();
            for ((set, exprs), headed) in facts.iter_mut().zip(&e.facts).zip(from_headers) {
                if let Some(exprs) = exprs.as_ref().filter(|_| !headed) {
                    for x in exprs {
                        x.strings(&facts_ctx, &mut buf);
                        set.extend(buf.drain(..));
                    }
                }
            }
            // fedmsg.meta's rule: without an agent of its own, a message's agent is its user
            // when it concerns exactly one.
            if e.agent.is_none() && generation == Generation::Fedmsg && facts[0].len() == 1 {
                agent = facts[0].iter().next().cloned();
            }
            ctx.agent = agent.as_deref();
            // An entry of the other generation (a bridged message) does not name the app.
            if e.generation == generation {
                app.clone_from(&e.app);
            }
            let render = |t: &Option<Text>| t.as_ref().and_then(|t| t.render(&ctx));
            summary = render(&e.summary);
            title = render(&e.title);
            link = render(&e.link);
            long_form = render(&e.long_form);
        }
        let app = app.unwrap_or_else(|| short.split('.').next().unwrap_or(short).to_owned());
        let summary = summary.unwrap_or_else(|| match &agent {
            Some(agent) => format!("{agent} triggered {short} ({app})"),
            None => format!("{app}: {short}"),
        });
        let severity = headers
            .and_then(|h| h.get("fedora_messaging_severity"))
            .and_then(Value::as_i64)
            .and_then(Severity::from_level)
            .unwrap_or(Severity::Info);

        let [usernames, rpms, containers, modules, flatpaks, groups] = facts;
        let artifacts = Artifacts {
            rpms,
            containers,
            modules,
            flatpaks,
        };
        Ok(Message {
            id,
            topic: topic.to_owned(),
            app,
            generation,
            timestamp,
            usernames,
            agent,
            artifacts,
            groups,
            severity,
            title: title.unwrap_or_else(|| short.to_owned()),
            summary: one_line(summary),
            link: link.filter(|l| !l.is_empty()),
            long_form,
            body,
        })
    }
}
