//! The display layer: one inbox item → one popup through the freedesktop notification
//! service (`notify-rust` over zbus: no libdbus), with an "Open" action that opens the link.
//!
//! Each popup with a link is watched by a task of its own (notify-rust's handle listens on
//! the connection that sent the popup, which is where desktops such as Plasma send
//! `ActionInvoked`), the [`MAX_WATCHED`] newest at once: the loop that shows popups never
//! waits for a click.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use notify_rust::{ActionResponse, Notification, Urgency};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use fmn_inbox::InboxItem;

/// Popups whose action is watched at once; past this, the oldest one's click does nothing.
pub const MAX_WATCHED: usize = 64;

/// The action that opens the link: "default" is what clicking the popup itself invokes.
pub const OPEN_ACTION: &str = "default";

/// How long one `Notify` call may take before it counts as failed.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// What one popup shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popup {
    /// The item's id (for the log).
    pub id: String,
    pub summary: String,
    /// Plain text: the topic and the filter that fired.
    pub body: String,
    pub urgency: Severity,
    /// An http(s) link, opened by the action.
    pub link: Option<String>,
}

/// The urgency of a popup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Low,
    Normal,
    Critical,
}

impl Severity {
    /// From a bus message's severity (debug, info, warning, error).
    pub fn from_message(severity: &str) -> Severity {
        match severity.to_ascii_lowercase().as_str() {
            "debug" => Severity::Low,
            "error" | "critical" => Severity::Critical,
            _ => Severity::Normal,
        }
    }

    fn urgency(self) -> Urgency {
        match self {
            Severity::Low => Urgency::Low,
            Severity::Normal => Urgency::Normal,
            Severity::Critical => Urgency::Critical,
        }
    }
}

/// Only web links are opened: a link that names a local file or another scheme is not.
pub fn web_link(link: Option<&str>) -> Option<String> {
    let url = url::Url::parse(link?.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

impl Popup {
    /// The popup of one inbox item.
    pub fn from_item(item: &InboxItem) -> Popup {
        let mut body = item.topic.clone();
        if let Some(filter) = item.filter.as_deref().filter(|f| !f.is_empty()) {
            body.push_str("\nfilter: ");
            body.push_str(filter);
        }
        Popup {
            id: item.id.clone(),
            summary: clip(&item.summary, 200),
            body: clip(&body, 1000),
            urgency: Severity::from_message(&item.severity),
            link: web_link(item.link.as_deref()),
        }
    }
}

fn clip(s: &str, max: usize) -> String {
    let s: String = s
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect();
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// Escapes text for a server that reads the body as markup.
fn escape_markup(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The notification service of the session, as the client uses it.
#[derive(Debug, Clone)]
pub struct Display {
    app_name: String,
    markup: bool,
    actions: bool,
    watched: Arc<Mutex<VecDeque<AbortHandle>>>,
    open: mpsc::UnboundedSender<String>,
}

impl Display {
    /// Asks the session's notification server what it supports and starts the task that
    /// opens links with `open_command` (a program and its arguments, the link appended).
    pub async fn connect(open_command: &str) -> anyhow::Result<Display> {
        let capabilities = tokio::task::spawn_blocking(notify_rust::get_capabilities)
            .await
            .context("asking the notification server")?
            .context("no notification server on the session bus (org.freedesktop.Notifications)")?;
        tracing::debug!(?capabilities, "notification server");
        let (open, links) = mpsc::unbounded_channel();
        tokio::spawn(open_links(open_command.to_owned(), links));
        Ok(Display {
            app_name: "fmn".to_owned(),
            markup: capabilities.iter().any(|c| c == "body-markup"),
            actions: capabilities.iter().any(|c| c == "actions"),
            watched: Arc::default(),
            open,
        })
    }

    /// Shows `popup`; returns the server's id of it.
    pub async fn show(&self, popup: &Popup) -> anyhow::Result<u32> {
        let mut n = Notification::new();
        n.appname(&self.app_name)
            .summary(&popup.summary)
            .body(&if self.markup {
                escape_markup(&popup.body)
            } else {
                popup.body.clone()
            })
            .icon("mail-unread")
            .urgency(popup.urgency.urgency());
        let link = popup.link.clone().filter(|_| self.actions);
        if link.is_some() {
            n.action(OPEN_ACTION, "Open");
        }
        let handle = tokio::time::timeout(NOTIFY_TIMEOUT, n.show_async())
            .await
            .context("the notification server did not answer")?
            .context("showing a popup")?;
        let id = handle.id();
        if let Some(link) = link {
            let open = self.open.clone();
            let task = tokio::spawn(async move {
                handle
                    .wait_for_action_async(|action| {
                        if let ActionResponse::Custom(OPEN_ACTION) = action {
                            let _ = open.send(link);
                        }
                    })
                    .await;
            });
            let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
            watched.retain(|t| !t.is_finished());
            watched.push_back(task.abort_handle());
            if watched.len() > MAX_WATCHED
                && let Some(oldest) = watched.pop_front()
            {
                tracing::debug!(
                    "{MAX_WATCHED} popups are open: the oldest one's click is no longer watched"
                );
                oldest.abort();
            }
        }
        Ok(id)
    }
}

/// Opens each link it is sent, one process each, never waiting on one before the next.
async fn open_links(command: String, mut links: mpsc::UnboundedReceiver<String>) {
    let mut words = command.split_whitespace();
    let Some(program) = words.next().map(str::to_owned) else {
        tracing::warn!("open_command is empty: links are not opened");
        return;
    };
    let args: Vec<String> = words.map(str::to_owned).collect();
    while let Some(link) = links.recv().await {
        tracing::info!(%link, "opening");
        let child = tokio::process::Command::new(&program)
            .args(&args)
            .arg(&link)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(false)
            .spawn();
        match child {
            Ok(mut child) => {
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
            }
            Err(e) => tracing::warn!("running {program}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> InboxItem {
        InboxItem {
            id: "01".into(),
            message_id: "m".into(),
            topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
            summary: "dora commented on FEDORA-2026-1 <b>".into(),
            link: Some("https://bodhi.fedoraproject.org/updates/FEDORA-2026-1".into()),
            filter: Some("My packages".into()),
            filter_url: None,
            severity: "error".into(),
            created: "2026-12-06T15:00:00Z".into(),
            read: false,
        }
    }

    #[test]
    fn an_item_makes_its_popup() {
        let p = Popup::from_item(&item());
        assert_eq!(p.summary, "dora commented on FEDORA-2026-1 <b>");
        assert_eq!(
            p.body,
            "org.fedoraproject.prod.bodhi.update.comment\nfilter: My packages"
        );
        assert_eq!(p.urgency, Severity::Critical);
        assert_eq!(
            escape_markup("a <b> & c"),
            "a &lt;b&gt; &amp; c",
            "a markup server shows the text as written"
        );
    }

    #[test]
    fn only_web_links_are_opened() {
        assert!(web_link(Some("https://x.org/a")).is_some());
        assert!(web_link(Some("http://x.org/a")).is_some());
        for bad in ["file:///etc/passwd", "javascript:alert(1)", "x", ""] {
            assert_eq!(web_link(Some(bad)), None, "{bad}");
        }
        assert_eq!(Severity::from_message("debug"), Severity::Low);
        assert_eq!(Severity::from_message("info"), Severity::Normal);
        assert_eq!(Severity::from_message("WARNING"), Severity::Normal);
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
