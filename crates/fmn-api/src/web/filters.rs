//! The filter editor: name, switches, addresses, rules as rows from the rule catalog, and
//! beside it the preview (recent bus messages the filter matches, and for those it does
//! not, which rule said no).

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use fmn_rules::{Address, Context, ContextKind, Filter, Matcher, Preferences};
use serde_json::{Value, json};

use super::pages::{FieldError, label};
use super::views::render;
use super::{Form, Nav, Signed, api_body, api_result, see_other};
use crate::error::{ApiError, ApiResult};
use crate::routes::{load, prefs};
use crate::state::AppState;

/// A rule as the editor lists it.
#[derive(Debug)]
struct RuleRow {
    index: usize,
    kind: String,
    args: String,
    negate: bool,
}

/// An address the filter may be limited to.
#[derive(Debug)]
struct Choice {
    address: String,
    chosen: bool,
}

/// A recent message in the preview.
#[derive(Debug)]
struct Seen {
    summary: String,
    topic: String,
    link: Option<String>,
    /// For a message the filter did not match: the rule that said no.
    refused_by: Option<String>,
}

#[derive(Template)]
#[template(path = "filter.html")]
struct Editor {
    nav: Nav,
    title: String,
    base: String,
    back: String,
    context_label: &'static str,
    filter: Filter,
    addresses: Vec<Choice>,
    rules: Vec<RuleRow>,
    kinds: Vec<(&'static str, &'static str)>,
    /// The application catalog (`GET /api/v1/applications`), for application rules.
    applications: Vec<String>,
    levels: [&'static str; 4],
    artifact_types: [&'static str; 4],
    form: Vec<(String, String)>,
    error: Option<FieldError>,
    scanned: usize,
    matches: Vec<Seen>,
    misses: Vec<Seen>,
}

impl Editor {
    fn err(&self, form: &str, field: &str) -> Option<String> {
        self.error
            .as_ref()
            .filter(|e| e.form == form && (e.field == field || field.is_empty()))
            .map(|e| e.message.clone())
    }
    /// The add-rule form's previous value of `name` (after an error).
    fn value(&self, name: &str) -> String {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    fn selected(&self, name: &str, value: &str) -> bool {
        self.form.iter().any(|(k, v)| k == name && v == value)
    }
}

/// A rule's arguments, compactly (`glob: org.fedoraproject.*`).
pub(crate) fn describe(rule: &Value) -> (String, String, bool) {
    let kind = rule["kind"].as_str().unwrap_or("?").to_owned();
    let negate = rule["negate"].as_bool().unwrap_or(false);
    let args = rule
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| *k != "kind" && *k != "negate")
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}: {s}"),
                    other => format!("{k}: {other}"),
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let args = if args.is_empty() {
        "(you)".into()
    } else {
        args
    };
    (kind, args, negate)
}

/// The add-rule form as a rule for the API.
fn rule_from(f: &Form) -> Value {
    let kind = f.get("kind");
    let value = f.get("value");
    let list: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut r = json!({ "kind": kind });
    if f.checked("negate") {
        r["negate"] = true.into();
    }
    match kind {
        "topic" => r["glob"] = value.into(),
        "topic_regex" | "body_regex" => r["regex"] = value.into(),
        "application" => {
            // Names typed in, and those picked from the application catalog.
            let mut names = list.clone();
            names.extend(f.all("applications").into_iter().filter(|a| !a.is_empty()));
            names.dedup();
            r["names"] = json!(names);
        }
        "severity" => r["levels"] = json!(f.all("levels")),
        "user" | "agent" | "owned_by" if !list.is_empty() => r["usernames"] = json!(list),
        "owned_by_group" => r["groups"] = json!(list),
        "artifact" => {
            let t = f.get("artifact_type");
            r["artifacts"] = list.iter().map(|n| json!({"type": t, "name": n})).collect();
        }
        "artifact_regex" => {
            r["type"] = f.get("artifact_type").into();
            r["regex"] = value.into();
        }
        "field" => {
            r["pointer"] = f.get("pointer").into();
            if f.get("field_op") == "regex" {
                r["regex"] = value.into();
            } else {
                r["equals"] = serde_json::from_str(value).unwrap_or_else(|_| value.into());
            }
        }
        _ => {}
    }
    r
}

/// Which input of the add-rule form an API error's field is about.
fn rule_input(field: &str) -> &'static str {
    match field {
        "kind" => "kind",
        "levels" => "levels",
        "type" => "artifact_type",
        "pointer" => "pointer",
        _ => "value",
    }
}

/// The filter's preview against the recent messages: matches, and the newest misses with
/// the rule that refused each.
async fn preview(
    state: &AppState,
    user: &str,
    filter: &Filter,
) -> ApiResult<(usize, Vec<Seen>, Vec<Seen>)> {
    let mut f = filter.clone();
    f.active = true;
    f.addresses = None;
    let ctx = Context {
        enabled: true,
        addresses: vec![Address {
            address: "preview@fmn.invalid".into(),
            confirmed: true,
            disabled: None,
            secret: None,
        }],
        filters: vec![f],
        ..Context::default()
    };
    let prefs = Preferences {
        user: user.to_owned(),
        contexts: [(ContextKind::Email, ctx)].into(),
    };
    let limits = &state.config().limits;
    let owners: Arc<fmn_rules::Ownership> = state.ownership().await?;
    let matcher = Matcher::build_with([prefs.clone()], owners.clone())
        .map_err(|e| ApiError::invalid("filter", e.to_string()))?;
    let recent = state.recent().recent(limits.preview_messages).await?;
    let (mut matches, mut misses) = (Vec::new(), Vec::new());
    for m in &recent {
        let seen = |refused_by| Seen {
            summary: m.summary.clone(),
            topic: m.topic.clone(),
            link: m.link.clone(),
            refused_by,
        };
        if !matcher.matches(m).is_empty() {
            if matches.len() < limits.preview_results {
                matches.push(seen(None));
            }
        } else if misses.len() < 10 && !filter.rules.is_empty() {
            let verdicts = fmn_rules::explain(&prefs, &owners, m)
                .map_err(|e| ApiError::invalid("filter", e.to_string()))?;
            let refused = verdicts
                .iter()
                .flat_map(|c| &c.filters)
                .flat_map(|f| &f.rules)
                .find(|r| !r.held)
                .map(|r| {
                    let (kind, args, negate) =
                        describe(&serde_json::to_value(&r.rule).unwrap_or_default());
                    format!("{}{kind} ({args})", if negate { "not " } else { "" })
                });
            misses.push(seen(refused));
        }
    }
    Ok((recent.len(), matches, misses))
}

async fn editor_view(
    state: &AppState,
    signed: &Signed,
    form: Vec<(String, String)>,
    error: Option<FieldError>,
) -> ApiResult<Response> {
    let user = &signed.access.user;
    let kind = signed.access.context()?;
    let id = signed.access.params().id("filter")?;
    let prefs = load(state, user).await?;
    let ctx = crate::routes::context(&prefs, kind)?;
    let filter = ctx
        .filters
        .iter()
        .find(|f| f.id == id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no filter {id}")).at("filter"))?;
    let chosen = filter.addresses.clone().unwrap_or_default();
    let addresses = ctx
        .addresses
        .iter()
        .map(|a| Choice {
            address: a.address.clone(),
            chosen: chosen.contains(&a.address),
        })
        .collect();
    let rules = filter
        .rules
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let (kind, args, negate) = describe(&serde_json::to_value(r).unwrap_or_default());
            RuleRow {
                index,
                kind,
                args,
                negate,
            }
        })
        .collect();
    let (scanned, matches, misses) = preview(state, user, &filter).await?;
    let back = format!("/users/{user}/contexts/{}", kind.as_str());
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &Editor {
            nav: signed.nav(),
            title: format!("Filter “{}”", filter.name),
            base: format!("{back}/filters/{}", filter.id),
            back,
            context_label: label(kind),
            addresses,
            rules,
            kinds: crate::catalog::rule_kinds()
                .into_iter()
                .map(|k| (k.kind, k.description))
                .collect(),
            applications: crate::routes::catalog::applications().await.0.applications,
            levels: ["debug", "info", "warning", "error"],
            artifact_types: ["rpms", "containers", "modules", "flatpaks"],
            form,
            error,
            scanned,
            matches,
            misses,
            filter,
        },
    ))
}

fn page_or_error(signed: &Signed, r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(|e| super::error_page(Some(signed.nav()), &e).into_response())
}

/// `GET …/filters/{filter}`: the editor and its preview.
pub(crate) async fn editor(signed: Signed, State(state): State<AppState>) -> Response {
    let r = editor_view(&state, &signed, Vec::new(), None).await;
    page_or_error(&signed, r)
}

/// After an API call of the editor: the editor again, or with the error at its field.
async fn after(
    state: &AppState,
    signed: Signed,
    form_name: &str,
    form: Vec<(String, String)>,
    outcome: ApiResult<Value>,
) -> Response {
    match outcome {
        Ok(_) => {
            let path = format!(
                "{}/contexts/{}/filters/{}",
                signed.home(),
                signed
                    .access
                    .context()
                    .map(|k| k.as_str())
                    .unwrap_or("email"),
                signed.access.params().id("filter").unwrap_or_default()
            );
            see_other(&path)
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
            let mut error = FieldError::from_api(form_name, &e);
            if form_name == "rule" {
                error.field = rule_input(&error.field).to_owned();
            }
            let r = editor_view(state, &signed, form, Some(error)).await;
            page_or_error(&signed, r)
        }
        Err(e) => super::error_page(Some(signed.nav()), &e).into_response(),
    }
}

/// `POST …/filters`: a new filter, then its editor.
pub(crate) async fn create(signed: Signed, State(state): State<AppState>, body: Bytes) -> Response {
    let f = Form::parse(&body);
    let doc = json!({"name": f.get("name")});
    let outcome = match api_body(&doc) {
        Ok(b) => {
            let access = signed.access.clone();
            api_result(
                prefs::create_filter(access, State(state.clone()), HeaderMap::new(), b).await,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(created) => {
            let kind = signed
                .access
                .context()
                .map(|k| k.as_str())
                .unwrap_or("email");
            let id = created["id"].as_str().unwrap_or_default();
            see_other(&format!("{}/contexts/{kind}/filters/{id}", signed.home()))
        }
        Err(e) => super::pages::after_error(&state, signed, "filter", e).await,
    }
}

/// `POST …/filters/{filter}`: name, switches, addresses.
pub(crate) async fn save(signed: Signed, State(state): State<AppState>, body: Bytes) -> Response {
    let f = Form::parse(&body);
    let doc = json!({
        "name": f.get("name"),
        "active": f.checked("active"),
        "oneshot": f.checked("oneshot"),
        "addresses": f.all("addresses"),
    });
    let outcome = match api_body(&doc) {
        Ok(b) => {
            let access = signed.access.clone();
            api_result(prefs::patch_filter(access, State(state.clone()), HeaderMap::new(), b).await)
                .await
        }
        Err(e) => Err(e),
    };
    after(&state, signed, "filter", f.0, outcome).await
}

/// `POST …/filters/{filter}/rules`: append a rule.
pub(crate) async fn add_rule(
    signed: Signed,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let outcome = match api_body(&rule_from(&f)) {
        Ok(b) => {
            let access = signed.access.clone();
            api_result(prefs::add_rule(access, State(state.clone()), HeaderMap::new(), b).await)
                .await
        }
        Err(e) => Err(e),
    };
    after(&state, signed, "rule", f.0, outcome).await
}

/// `POST …/filters/{filter}/rules/{index}/delete`.
pub(crate) async fn delete_rule(signed: Signed, State(state): State<AppState>) -> Response {
    let access = signed.access.clone();
    let outcome =
        api_result(prefs::delete_rule(access, State(state.clone()), HeaderMap::new()).await).await;
    after(&state, signed, "rules", Vec::new(), outcome).await
}

/// `POST …/filters/{filter}/move` (`direction` = `up` | `down`): one place up or down in
/// the context's order (the API's `PUT …/filter-order`).
pub(crate) async fn move_filter(
    signed: Signed,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let access = signed.access.clone();
    let kind = access.context().map(|k| k.as_str()).unwrap_or("email");
    let to = format!("{}/contexts/{kind}?ok=moved", signed.home());
    let outcome = async {
        let id = access.params().id("filter")?;
        let kind = access.context()?;
        let prefs = load(&state, &access.user).await?;
        let mut ids: Vec<String> = crate::routes::context(&prefs, kind)?
            .filters
            .iter()
            .map(|f| f.id.clone())
            .collect();
        let at = (ids.iter().position(|i| *i == id))
            .ok_or_else(|| ApiError::not_found(format!("no filter {id}")).at("filter"))?;
        let other = match f.get("direction") {
            "up" => at.checked_sub(1),
            "down" => Some(at + 1).filter(|i| *i < ids.len()),
            _ => return Err(ApiError::invalid("direction", "up or down")),
        };
        if let Some(other) = other {
            ids.swap(at, other);
            let b = api_body(&json!({ "ids": ids }))?;
            api_result(
                prefs::order_filters(access.clone(), State(state.clone()), HeaderMap::new(), b)
                    .await,
            )
            .await?;
        }
        Ok::<(), ApiError>(())
    }
    .await;
    match outcome {
        Ok(()) => see_other(&to),
        Err(e) => super::error_page(Some(signed.nav()), &e).into_response(),
    }
}

/// `POST …/filters/{filter}/delete`.
pub(crate) async fn delete(signed: Signed, State(state): State<AppState>) -> Response {
    let access = signed.access.clone();
    let kind = access.context().map(|k| k.as_str()).unwrap_or("email");
    let to = format!("{}/contexts/{kind}?ok=deleted", signed.home());
    let outcome =
        api_result(prefs::delete_filter(access, State(state.clone()), HeaderMap::new()).await)
            .await;
    match outcome {
        Ok(_) => see_other(&to),
        Err(e) => super::error_page(Some(signed.nav()), &e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn rule_forms_become_the_apis_rules() {
        let r = rule_from(&form(&[("kind", "agent"), ("value", ""), ("negate", "on")]));
        assert_eq!(r, json!({"kind": "agent", "negate": true}));
        let r = rule_from(&form(&[
            ("kind", "artifact"),
            ("artifact_type", "rpms"),
            ("value", "kernel, glibc"),
        ]));
        assert_eq!(
            r,
            json!({"kind": "artifact", "artifacts": [
                {"type": "rpms", "name": "kernel"}, {"type": "rpms", "name": "glibc"}]})
        );
        let r = rule_from(&form(&[
            ("kind", "severity"),
            ("levels", "error"),
            ("levels", "warning"),
        ]));
        assert_eq!(
            r,
            json!({"kind": "severity", "levels": ["error", "warning"]})
        );
        let r = rule_from(&form(&[
            ("kind", "field"),
            ("pointer", "/a"),
            ("value", "3"),
        ]));
        assert_eq!(r, json!({"kind": "field", "pointer": "/a", "equals": 3}));
    }

    #[test]
    fn rules_are_described_compactly() {
        let (kind, args, negate) = describe(&json!({"kind": "topic", "glob": "a.*"}));
        assert_eq!(
            (kind.as_str(), args.as_str(), negate),
            ("topic", "glob: a.*", false)
        );
        assert_eq!(
            describe(&json!({"kind": "agent", "negate": true})).1,
            "(you)"
        );
    }
}
