//! What every page shares: the navigation, rendering a template into a response, and the
//! page of a message or an error.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fmn_store::SessionRecord;

use crate::error::ApiError;

/// The navigation bar: who is signed in, and the token of the sign-out form.
#[derive(Debug, Clone, Default)]
pub(crate) struct Nav {
    /// The signed-in user.
    pub user: Option<String>,
    /// Whether they are an admin.
    pub admin: bool,
    /// The session's CSRF token, for every form of the page.
    pub csrf: String,
    /// The signed-in user's unread inbox items (the bell), where known.
    pub unread: Option<u64>,
    /// The inbox's WebSocket URL, for the script that keeps the bell and the inbox live.
    pub socket: Option<String>,
}

impl Nav {
    /// The unread count the bell shows (0 when unknown).
    pub fn unread_count(&self) -> u64 {
        self.unread.unwrap_or_default()
    }

    /// The navigation of a session.
    pub fn of(s: &SessionRecord) -> Nav {
        Nav {
            user: Some(s.user.clone()),
            admin: s.admin,
            csrf: s.csrf.clone(),
            unread: None,
            socket: None,
        }
    }
}

/// Renders a template with a status.
pub(crate) fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = (status, html).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A button posting a form (with hidden fields).
#[derive(Debug, Clone)]
pub(crate) struct Button {
    pub action: String,
    pub label: String,
    pub hidden: Vec<(String, String)>,
}

/// A link styled as a button.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub href: String,
    pub label: String,
}

/// A page saying one thing, with a link or a button.
#[derive(Debug, Template)]
#[template(path = "message.html")]
pub(crate) struct Page {
    pub nav: Nav,
    pub title: String,
    pub text: String,
    pub link: Option<Link>,
    pub button: Option<Button>,
    pub status: StatusCode,
}

impl Page {
    /// A page with a title and a sentence.
    pub fn message(title: &str, text: &str) -> Page {
        Page {
            nav: Nav::default(),
            title: title.to_owned(),
            text: text.to_owned(),
            link: None,
            button: None,
            status: StatusCode::OK,
        }
    }
    /// Adds a link.
    pub fn with_link(mut self, href: &str, label: &str) -> Page {
        self.link = Some(Link {
            href: href.to_owned(),
            label: label.to_owned(),
        });
        self
    }
    /// Adds a button posting to `action`.
    pub fn with_button(mut self, action: &str, label: &str, hidden: &[(&str, &str)]) -> Page {
        self.button = Some(Button {
            action: action.to_owned(),
            label: label.to_owned(),
            hidden: hidden
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        });
        self
    }
    /// Sets the navigation.
    pub fn with_nav(mut self, nav: Nav) -> Page {
        self.nav = nav;
        self
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        render(self.status, &self)
    }
}

/// The page of an error (its status, and the API's message).
pub(crate) fn error_page(nav: Option<Nav>, e: &ApiError) -> Page {
    let title = match e.status.as_u16() {
        401 => "Please sign in",
        403 => "Not allowed",
        404 => "Not found",
        503 => "Unavailable",
        s if s >= 500 => "Something went wrong",
        _ => "That did not work",
    };
    let mut page = Page::message(title, &e.body.message).with_nav(nav.unwrap_or_default());
    page.status = e.status;
    page.with_link("/", "Back to the overview")
}
