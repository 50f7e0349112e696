//! The history page (what fmn sent me, where, when, which filter fired, how it went) and
//! the overview's last notifications per context, both from the senders' delivery history.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fmn_store::HistoryEntry;

use super::pages::{label, seg};
use super::views::render;
use super::{Nav, Signed};
use crate::config::CONTEXTS;
use crate::routes::history::entries;
use crate::state::AppState;

/// Entries the history page shows.
const PAGE_ENTRIES: usize = 100;
/// Last notifications per context on the overview.
pub(crate) const OVERVIEW_ENTRIES: usize = 3;

/// One entry as the pages show it.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// When, `2026-12-06 12:34 UTC`.
    pub when: String,
    /// The context's name and label.
    pub context: &'static str,
    pub context_label: &'static str,
    pub summary: String,
    pub link: Option<String>,
    pub app: String,
    /// The filters that fired: name and the editor's path.
    pub filters: Vec<(String, String)>,
    pub addresses: String,
    /// `sent`, `held`, `failed`, `retrying`, `skipped`.
    pub state: &'static str,
    /// The state in words.
    pub state_text: &'static str,
    pub reason: Option<String>,
}

fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The page's row of an entry (none for a context this app does not know).
pub(crate) fn row(user: &str, e: HistoryEntry) -> Option<Row> {
    let kind = crate::extract::context_kind(&e.context)?;
    let state = e.state.as_str();
    Some(Row {
        when: when(e.at),
        context: kind.as_str(),
        context_label: label(kind),
        filters: e
            .filters
            .into_iter()
            .map(|f| {
                let path = format!(
                    "/users/{user}/contexts/{}/filters/{}",
                    kind.as_str(),
                    seg(&f.id)
                );
                (f.name, path)
            })
            .collect(),
        summary: e.summary,
        link: e.link,
        app: e.app,
        addresses: e.addresses.join(", "),
        state,
        state_text: match e.state {
            fmn_store::HistoryState::Sent => "sent",
            fmn_store::HistoryState::Held => "held for a digest",
            fmn_store::HistoryState::Failed => "failed",
            fmn_store::HistoryState::Retrying => "failed, will be retried",
            fmn_store::HistoryState::Skipped => "not sent",
        },
        reason: e.reason,
    })
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    nav: Nav,
    title: String,
    user: String,
    days: i64,
    /// The context shown alone, if one was chosen.
    only: Option<&'static str>,
    contexts: Vec<(&'static str, &'static str)>,
    rows: Vec<Row>,
}

/// `GET /users/{user}/history[?context=email]`.
pub(crate) async fn history(
    signed: Signed,
    State(state): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let user = signed.access.user.clone();
    let only = q
        .iter()
        .find(|(k, v)| k == "context" && !v.is_empty())
        .and_then(|(_, v)| crate::extract::context_kind(v))
        .map(|k| k.as_str());
    let found = entries(&state, &user, only, PAGE_ENTRIES).await;
    let list = match found {
        Ok(l) => l,
        Err(e) => return super::error_page(Some(signed.nav()), &e).into_response(),
    };
    render(
        StatusCode::OK,
        &HistoryPage {
            nav: signed.nav(),
            title: "What fmn sent".into(),
            days: fmn_store::HistoryLog::RETENTION_DAYS + 1,
            only,
            contexts: CONTEXTS
                .into_iter()
                .map(|k| (k.as_str(), label(k)))
                .collect(),
            rows: list.into_iter().filter_map(|e| row(&user, e)).collect(),
            user,
        },
    )
}

/// The last notifications of each context, for the overview (empty where none).
pub(crate) async fn last_per_context(
    state: &AppState,
    user: &str,
) -> Result<Vec<(&'static str, Vec<Row>)>, crate::error::ApiError> {
    let all = entries(state, user, None, crate::routes::history::MAX_LIMIT).await?;
    Ok(CONTEXTS
        .into_iter()
        .map(|k| {
            let rows = all
                .iter()
                .filter(|e| e.context == k.as_str())
                .take(OVERVIEW_ENTRIES)
                .filter_map(|e| row(user, e.clone()))
                .collect();
            (k.as_str(), rows)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_link_the_filter_that_fired_and_say_the_state_in_words() {
        let e = HistoryEntry {
            at: 1_765_000_000,
            user: "alice".into(),
            context: "email".into(),
            message_id: "m1".into(),
            topic: "t".into(),
            app: "bodhi".into(),
            summary: "s".into(),
            link: None,
            filters: vec![fmn_store::FiredFilter {
                id: "f-1".into(),
                name: "Mine".into(),
            }],
            addresses: vec!["a@example.org".into()],
            state: fmn_store::HistoryState::Held,
            reason: None,
        };
        let r = row("alice", e).unwrap();
        assert_eq!(r.when, "2025-12-06 05:46 UTC");
        assert_eq!(
            r.filters,
            [(
                "Mine".to_owned(),
                "/users/alice/contexts/email/filters/f-1".to_owned()
            )]
        );
        assert_eq!(r.state_text, "held for a digest");
    }
}
