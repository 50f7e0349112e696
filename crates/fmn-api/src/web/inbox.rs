//! The inbox page: the `inbox` context's items, newest first, with forms to mark one or all
//! read (they call the API's handlers), links to each message and to the filter that
//! fired. `/static/fmn.js` adds new items live from the WebSocket; without JavaScript the
//! page is complete as served.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::views::render;
use super::{Nav, Signed, api_result, see_other};
use crate::routes::inbox;
use crate::state::AppState;

/// Items the inbox page shows.
const PAGE_ITEMS: usize = 100;

/// One item as the page shows it.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub id: String,
    pub summary: String,
    pub link: Option<String>,
    pub filter: Option<String>,
    /// The filter's page in this app (a path), when the item names one.
    pub filter_url: Option<String>,
    pub severity: String,
    /// `2026-12-06 12:34 UTC`, and the RFC 3339 time for `<time datetime>`.
    pub when: String,
    pub created: String,
    pub read: bool,
    pub topic: String,
}

fn row(item: fmn_inbox::InboxItem) -> Row {
    let when = chrono::DateTime::parse_from_rfc3339(&item.created)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| item.created.clone());
    // The item carries the web app's absolute URL; the page links the path (same app).
    let filter_url = item.filter_url.map(|u| match u.find("/users/") {
        Some(i) => u[i..].to_owned(),
        None => u,
    });
    Row {
        id: item.id,
        summary: item.summary,
        link: item.link,
        filter: item.filter,
        filter_url,
        severity: item.severity,
        when,
        created: item.created,
        read: item.read,
        topic: item.topic,
    }
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    nav: Nav,
    title: String,
    user: String,
    unread: u64,
    /// The newest item's id, from which the script asks for what it missed.
    newest: String,
    rows: Vec<Row>,
}

/// `GET /users/{user}/inbox`.
pub(crate) async fn page(signed: Signed, State(state): State<AppState>) -> Response {
    let user = signed.access.user.clone();
    let found = inbox::page(&state, &user, None, PAGE_ITEMS).await;
    let page = match found {
        Ok(p) => p,
        Err(e) => return super::error_page(Some(signed.nav()), &e).into_response(),
    };
    let mut nav = signed.nav();
    nav.unread = Some(page.unread);
    render(
        StatusCode::OK,
        &InboxPage {
            nav,
            title: "Inbox".into(),
            unread: page.unread,
            newest: page.items.first().map(|i| i.id.clone()).unwrap_or_default(),
            rows: page.items.into_iter().map(row).collect(),
            user,
        },
    )
}

/// `POST /users/{user}/inbox/{id}/read`: back to the inbox.
pub(crate) async fn mark_read(signed: Signed, State(state): State<AppState>) -> Response {
    let back = format!("{}/inbox", signed.home());
    let nav = signed.nav();
    match api_result(inbox::mark_read(signed.access, State(state)).await).await {
        Ok(_) => see_other(&back),
        Err(e) => super::error_page(Some(nav), &e).into_response(),
    }
}

/// `POST /users/{user}/inbox/read-all`: back to the inbox.
pub(crate) async fn mark_all_read(signed: Signed, State(state): State<AppState>) -> Response {
    let back = format!("{}/inbox", signed.home());
    let nav = signed.nav();
    match api_result(inbox::mark_all_read(signed.access, State(state)).await).await {
        Ok(_) => see_other(&back),
        Err(e) => super::error_page(Some(nav), &e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_link_the_filter_within_the_app() {
        let r = row(fmn_inbox::InboxItem {
            id: "1765000000000-0123456789ab".into(),
            message_id: "m1".into(),
            topic: "t".into(),
            summary: "s".into(),
            link: None,
            filter: Some("Mine".into()),
            filter_url: Some(
                "https://fmn.example.org/users/alice/contexts/inbox/filters/f-1".into(),
            ),
            severity: "info".into(),
            created: fmn_inbox::rfc3339(1_765_000_000_000),
            read: false,
        });
        assert_eq!(r.when, "2025-12-06 05:46 UTC");
        assert_eq!(
            r.filter_url.as_deref(),
            Some("/users/alice/contexts/inbox/filters/f-1")
        );
    }
}
