//! The admins' page: find a user, and "why did (not) user U get message M?" for a message
//! of the recent-messages log, every rule of every filter evaluated (the explain machinery
//! the CLI's `fmn explain` uses).

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use fmn_store::SessionRecord;

use super::views::render;
use super::{Nav, error_page, session};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::load;
use crate::state::AppState;

/// A signed-in admin.
#[derive(Debug)]
pub(crate) struct Admin {
    session: SessionRecord,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let found = session(parts, state)
            .await
            .map_err(|e| error_page(None, &e).into_response())?;
        let Some(session) = found else {
            return Err(super::see_other("/sign-in?return_to=%2Fadmin"));
        };
        let nav = Nav::of(&session);
        let caller = Caller::from_request_parts(parts, state)
            .await
            .map_err(|e| error_page(Some(nav.clone()), &e).into_response())?;
        if !caller.admin {
            let e = ApiError::forbidden("this page is for admins");
            return Err(error_page(Some(nav), &e).into_response());
        }
        Ok(Admin { session })
    }
}

/// One rule's verdict, as the page shows it.
#[derive(Debug)]
struct Verdict {
    context: String,
    filter: String,
    active: bool,
    rule: String,
    held: bool,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Nav,
    title: String,
    find: String,
    users: Vec<String>,
    user: String,
    message: String,
    summary: Option<String>,
    notified: Vec<String>,
    verdicts: Vec<Verdict>,
    error: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct AdminQuery {
    #[serde(default)]
    find: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    message: String,
}

/// `GET /admin?find=&user=&message=`.
pub(crate) async fn admin(
    admin: Admin,
    State(state): State<AppState>,
    Query(q): Query<AdminQuery>,
) -> Response {
    let nav = Nav::of(&admin.session);
    match build(&state, nav.clone(), q).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(Some(nav), &e).into_response(),
    }
}

async fn build(state: &AppState, nav: Nav, q: AdminQuery) -> ApiResult<AdminPage> {
    let find = q.find.trim().chars().take(64).collect::<String>();
    let users = if find.is_empty() {
        Vec::new()
    } else {
        let mut all: Vec<String> = state
            .prefs()
            .load_all()
            .await?
            .into_iter()
            .map(|p| p.user)
            .filter(|u| u.contains(find.as_str()))
            .collect();
        all.sort();
        all.truncate(50);
        all
    };
    let mut page = AdminPage {
        nav,
        title: "Administration".into(),
        find,
        users,
        user: q.user.trim().chars().take(64).collect(),
        message: q.message.trim().chars().take(200).collect(),
        summary: None,
        notified: Vec::new(),
        verdicts: Vec::new(),
        error: None,
    };
    if page.user.is_empty() || page.message.is_empty() {
        return Ok(page);
    }
    let limits = &state.config().limits;
    let recent = state.recent().recent(limits.preview_messages).await?;
    let Some(message) = recent.iter().find(|m| m.id == page.message) else {
        page.error = Some(format!(
            "no message {} among the {} most recent",
            page.message,
            recent.len()
        ));
        return Ok(page);
    };
    let prefs = load(state, &page.user).await?;
    let owners = state.ownership().await?;
    let verdicts = fmn_rules::explain(&prefs, &owners, message)
        .map_err(|e| ApiError::invalid("user", e.to_string()))?;
    page.summary = Some(message.summary.clone());
    for c in &verdicts {
        if !c.addresses.is_empty() {
            page.notified.push(format!(
                "{}: {}",
                c.context.as_str(),
                c.addresses.join(", ")
            ));
        }
        for f in &c.filters {
            for r in &f.rules {
                let (kind, args, negate) =
                    super::filters::describe(&serde_json::to_value(&r.rule).unwrap_or_default());
                page.verdicts.push(Verdict {
                    context: format!(
                        "{}{}",
                        c.context.as_str(),
                        if c.enabled { "" } else { " (off)" }
                    ),
                    filter: f.name.clone(),
                    active: f.active,
                    rule: format!("{}{kind} ({args})", if negate { "not " } else { "" }),
                    held: r.held,
                });
            }
        }
    }
    Ok(page)
}
