//! The overview and the context page: addresses, settings, templates, copying filters.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use fmn_rules::{Context, ContextKind};
use serde_json::{Value, json};

use super::views::render;
use super::{Form, Nav, Signed, api_body, api_result, see_other};
use crate::config::CONTEXTS;
use crate::error::{ApiError, ApiResult};
use crate::routes::{addresses, load, prefs};
use crate::state::AppState;

/// What people call a context.
pub(crate) fn label(kind: ContextKind) -> &'static str {
    match kind {
        ContextKind::Email => "Email",
        ContextKind::Irc => "IRC",
        ContextKind::Matrix => "Matrix",
        ContextKind::Webhook => "Webhook",
        ContextKind::Feed => "Feed",
        ContextKind::Push => "Phone (push)",
        ContextKind::Inbox => "Web inbox",
    }
}

/// A path segment, percent-encoded.
pub(crate) fn seg(s: &str) -> String {
    percent_encode(s)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET /`: the signed-in user's overview, or the landing page.
pub(crate) async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let found = match super::session::cookie(&headers, super::session::SESSION_COOKIE) {
        Some(secret) => state
            .sessions()
            .lookup(&crate::auth::hash_secret(secret))
            .await
            .map_err(ApiError::from),
        None => Ok(None),
    };
    match found {
        Ok(Some(s)) => see_other(&format!("/users/{}", s.user)),
        Ok(None) => {
            super::signin::landing(q.iter().any(|(k, _)| k == "signed-out")).into_response()
        }
        Err(e) => super::error_page(None, &e).into_response(),
    }
}

/// One context on the overview.
#[derive(Debug)]
pub(crate) struct ContextCard {
    name: &'static str,
    label: &'static str,
    exists: bool,
    enabled: bool,
    confirmed: usize,
    pending: usize,
    filters: usize,
    /// The last notifications here (the delivery history).
    last: Vec<super::history::Row>,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    nav: Nav,
    title: String,
    user: String,
    cards: Vec<ContextCard>,
    first_run: bool,
}

/// `GET /users/{user}`: every context at a glance, and a first-run offer.
pub(crate) async fn overview(signed: Signed, State(state): State<AppState>) -> Response {
    let user = signed.access.user.clone();
    let prefs = match load(&state, &user).await {
        Ok(p) => p,
        Err(e) => return super::error_page(Some(signed.nav()), &e).into_response(),
    };
    // The history is a convenience here: the overview shows without it.
    let mut last = super::history::last_per_context(&state, &user)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e.body.message, "overview without the history");
            Vec::new()
        });
    let cards: Vec<ContextCard> = CONTEXTS
        .into_iter()
        .map(|kind| {
            let ctx = prefs.contexts.get(&kind);
            let addresses = ctx.map(|c| c.addresses.as_slice()).unwrap_or_default();
            ContextCard {
                name: kind.as_str(),
                label: label(kind),
                exists: ctx.is_some(),
                enabled: ctx.is_some_and(|c| c.enabled),
                confirmed: addresses.iter().filter(|a| a.confirmed).count(),
                pending: addresses.iter().filter(|a| !a.confirmed).count(),
                filters: ctx.map(|c| c.filters.len()).unwrap_or_default(),
                last: last
                    .iter_mut()
                    .find(|(k, _)| *k == kind.as_str())
                    .map(|(_, rows)| std::mem::take(rows))
                    .unwrap_or_default(),
            }
        })
        .collect();
    let first_run = cards.iter().all(|c| c.filters == 0);
    render(
        StatusCode::OK,
        &Overview {
            nav: signed.nav(),
            title: if signed.session.user == user {
                "Your notifications".into()
            } else {
                format!("Notifications of {user}")
            },
            user,
            cards,
            first_run,
        },
    )
}

/// An address as the context page lists it.
#[derive(Debug)]
pub(crate) struct AddressRow {
    address: String,
    segment: String,
    state: String,
    needs_code: bool,
}

/// A filter as the context page lists it.
#[derive(Debug)]
pub(crate) struct FilterRow {
    id: String,
    name: String,
    active: bool,
    oneshot: bool,
    rules: usize,
}

/// An error shown next to a field of one of the page's forms.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldError {
    /// Which form.
    pub form: String,
    /// Which input (the last segment of the API's `field`), "" for the form as a whole.
    pub field: String,
    /// The API's message.
    pub message: String,
}

impl FieldError {
    /// The error of an API call made by `form`, placed at the input the API's `field` names.
    pub fn from_api(form: &str, e: &ApiError) -> FieldError {
        let field = e
            .body
            .field
            .as_deref()
            .and_then(|f| f.rsplit('.').next())
            .map(|f| f.split('[').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        FieldError {
            form: form.to_owned(),
            field,
            message: e.body.message.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "context.html")]
struct ContextPage {
    nav: Nav,
    title: String,
    base: String,
    kind: &'static str,
    has_addresses: bool,
    address_hint: &'static str,
    ctx: Context,
    addresses: Vec<AddressRow>,
    filters: Vec<FilterRow>,
    others: Vec<(&'static str, &'static str)>,
    notice: Option<&'static str>,
    error: Option<FieldError>,
    new_address: String,
}

impl ContextPage {
    /// The error message for `field` of `form`, if that is where the error is.
    fn err(&self, form: &str, field: &str) -> Option<String> {
        self.error
            .as_ref()
            .filter(|e| e.form == form && (e.field == field || field.is_empty()))
            .map(|e| e.message.clone())
    }
    /// An error of the settings form on no input of its own.
    fn rest_of_settings(&self) -> Option<String> {
        self.error
            .as_ref()
            .filter(|e| e.form == "settings")
            .filter(|e| {
                !["digest_interval_secs", "digest_count", "subject_prefix"]
                    .contains(&e.field.as_str())
            })
            .map(|e| e.message.clone())
    }
    fn interval(&self) -> String {
        self.ctx
            .settings
            .digest_interval_secs
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
    fn count(&self) -> String {
        self.ctx
            .settings
            .digest_count
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
    fn prefix(&self) -> String {
        self.ctx.settings.subject_prefix.clone().unwrap_or_default()
    }
}

fn notice(q: &[(String, String)]) -> Option<&'static str> {
    let ok = q.iter().find(|(k, _)| k == "ok").map(|(_, v)| v.as_str())?;
    Some(match ok {
        "added" => "Address added: a confirmation is on its way to it.",
        "confirmed" => "Address confirmed.",
        "removed" => "Address removed.",
        "saved" => "Settings saved.",
        "template" => "Template applied: its filters are below.",
        "copied" => "Filters copied.",
        "deleted" => "Filter deleted.",
        "moved" => "Filter order saved.",
        _ => return None,
    })
}

async fn context_view(
    state: &AppState,
    signed: &Signed,
    notice: Option<&'static str>,
    error: Option<FieldError>,
    new_address: String,
) -> ApiResult<Response> {
    let user = &signed.access.user;
    let kind = signed.access.context()?;
    let prefs = load(state, user).await?;
    let ctx = prefs.contexts.get(&kind).cloned().unwrap_or_default();
    let addresses = ctx
        .addresses
        .iter()
        .map(|a| AddressRow {
            address: a.address.clone(),
            segment: seg(&a.address),
            state: match (&a.disabled, a.confirmed) {
                (Some(why), _) => format!("disabled: {why}"),
                (None, true) => "confirmed".into(),
                (None, false) => "waiting for confirmation".into(),
            },
            needs_code: !a.confirmed && kind != ContextKind::Email,
        })
        .collect();
    let filters = ctx
        .filters
        .iter()
        .map(|f| FilterRow {
            id: f.id.clone(),
            name: f.name.clone(),
            active: f.active,
            oneshot: f.oneshot,
            rules: f.rules.len(),
        })
        .collect();
    let status = match &error {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    Ok(render(
        status,
        &ContextPage {
            nav: signed.nav(),
            title: label(kind).to_owned(),
            base: format!("/users/{}/contexts/{}", user, kind.as_str()),
            kind: kind.as_str(),
            has_addresses: !matches!(kind, ContextKind::Feed | ContextKind::Inbox),
            address_hint: match kind {
                ContextKind::Email => "An email address, e.g. you@example.org",
                ContextKind::Irc => "Your IRC nick on the network fmn uses",
                ContextKind::Matrix => "A Matrix user id, e.g. @you:fedora.im",
                ContextKind::Webhook => "An https URL that receives signed JSON",
                ContextKind::Feed | ContextKind::Inbox => "",
                ContextKind::Push => {
                    "Your UnifiedPush endpoint or ntfy topic URL, e.g. https://ntfy.sh/your-topic"
                }
            },
            ctx,
            addresses,
            filters,
            others: CONTEXTS
                .into_iter()
                .filter(|k| *k != kind)
                .map(|k| (k.as_str(), label(k)))
                .collect(),
            notice,
            error,
            new_address,
        },
    ))
}

/// `GET /users/{user}/contexts/{context}`.
pub(crate) async fn context_page(
    signed: Signed,
    State(state): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    context_view(&state, &signed, notice(&q), None, String::new())
        .await
        .unwrap_or_else(|e| super::error_page(Some(signed.nav()), &e).into_response())
}

/// After a form's API call: back to the context page with a notice, or the page again with
/// the error next to its field.
async fn after(
    state: &AppState,
    signed: Signed,
    form: &str,
    outcome: ApiResult<Value>,
    ok: &str,
    new_address: String,
) -> Response {
    match outcome {
        Ok(_) => {
            let base = signed
                .access
                .context()
                .map(|k| k.as_str())
                .unwrap_or("email");
            see_other(&format!("{}/contexts/{base}?ok={ok}", signed.home()))
        }
        Err(e) => after_error_with(state, signed, form, e, new_address).await,
    }
}

/// The context page again with a form's error next to its field (a 4xx other than 403),
/// or the error's own page.
pub(crate) async fn after_error(
    state: &AppState,
    signed: Signed,
    form: &str,
    e: ApiError,
) -> Response {
    after_error_with(state, signed, form, e, String::new()).await
}

async fn after_error_with(
    state: &AppState,
    signed: Signed,
    form: &str,
    e: ApiError,
    new_address: String,
) -> Response {
    if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN {
        let error = FieldError::from_api(form, &e);
        context_view(state, &signed, None, Some(error), new_address)
            .await
            .unwrap_or_else(|e| super::error_page(Some(signed.nav()), &e).into_response())
    } else {
        super::error_page(Some(signed.nav()), &e).into_response()
    }
}

/// A number input: empty is absent; a non-number goes to the API as text, which refuses
/// it naming the field.
fn number(v: &str) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        v.parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| v.into())
    }
}

/// `POST /users/{user}/contexts/{context}`: the switch and the settings.
pub(crate) async fn save_settings(
    signed: Signed,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let mut settings = json!({
        "verbose": f.checked("verbose"),
        "triggered_by": f.checked("triggered_by"),
        "markup": f.checked("markup"),
    });
    for key in ["digest_interval_secs", "digest_count"] {
        let v = number(f.get(key));
        if !v.is_null() {
            settings[key] = v;
        }
    }
    if !f.get("subject_prefix").is_empty() {
        settings["subject_prefix"] = f.get("subject_prefix").into();
    }
    let doc = json!({"enabled": f.checked("enabled"), "settings": settings});
    let outcome = match api_body(&doc) {
        Ok(b) => {
            let access = signed.access.clone();
            api_result(prefs::put_context(access, State(state.clone()), HeaderMap::new(), b).await)
                .await
        }
        Err(e) => Err(e),
    };
    after(&state, signed, "settings", outcome, "saved", String::new()).await
}

/// `POST …/templates/{template}`: apply a template.
pub(crate) async fn apply_template(signed: Signed, State(state): State<AppState>) -> Response {
    let access = signed.access.clone();
    let outcome =
        api_result(prefs::apply_template(access, State(state.clone()), HeaderMap::new()).await)
            .await;
    after(
        &state,
        signed,
        "template",
        outcome,
        "template",
        String::new(),
    )
    .await
}

/// `POST …/copy`: copy this context's filters to another.
pub(crate) async fn copy_filters(
    signed: Signed,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let outcome = match api_body(&json!({"to": f.get("to")})) {
        Ok(b) => {
            let access = signed.access.clone();
            api_result(prefs::copy_context(access, State(state.clone()), HeaderMap::new(), b).await)
                .await
        }
        Err(e) => Err(e),
    };
    after(&state, signed, "copy", outcome, "copied", String::new()).await
}

/// `POST …/addresses`: add an address (a confirmation goes out).
pub(crate) async fn add_address(
    signed: Signed,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let address = f.get("address").to_owned();
    let outcome = match api_body(&json!({ "address": address })) {
        Ok(b) => {
            let access = signed.access.clone();
            api_result(
                addresses::add_address(access, State(state.clone()), HeaderMap::new(), b).await,
            )
            .await
        }
        Err(e) => Err(e),
    };
    after(&state, signed, "address", outcome, "added", address).await
}

/// `POST …/addresses/{address}/remove`.
pub(crate) async fn remove_address(signed: Signed, State(state): State<AppState>) -> Response {
    let access = signed.access.clone();
    let outcome =
        api_result(addresses::delete_address(access, State(state.clone()), HeaderMap::new()).await)
            .await;
    after(&state, signed, "remove", outcome, "removed", String::new()).await
}

/// `POST …/addresses/{address}/confirm`: the code the address received.
pub(crate) async fn confirm_code(
    signed: Signed,
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    let outcome = match api_body(&json!({"code": f.get("code")})) {
        Ok(b) => {
            let access = signed.access.clone();
            api_result(addresses::confirm_address(access, State(state.clone()), b).await).await
        }
        Err(e) => Err(e),
    };
    after(&state, signed, "code", outcome, "confirmed", String::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_land_on_the_field_the_api_names() {
        let e = ApiError::invalid("contexts.email.filters[2].rules[0].regex", "bad");
        let f = FieldError::from_api("rule", &e);
        assert_eq!((f.form.as_str(), f.field.as_str()), ("rule", "regex"));
        let e = ApiError::invalid("address", "not an email address");
        assert_eq!(FieldError::from_api("address", &e).field, "address");
        let e = ApiError::invalid("contexts.email.addresses[0]", "bad");
        assert_eq!(FieldError::from_api("address", &e).field, "addresses");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("a@b.org"), "a@b.org");
        assert_eq!(seg("https://x/y?z"), "https%3A%2F%2Fx%2Fy%3Fz");
    }
}
