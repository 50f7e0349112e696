//! Rendering notifications, digests and confirmations into an [`Email`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use fmn_queue::{ConfirmationJob, NotificationJob};
use fmn_rules::{ContextKind, ContextSettings, FilterRef};

use crate::Links;

/// Longest subject or header value written (characters); longer ones are cut with `…`.
const MAX_HEADER_CHARS: usize = 200;
/// Most `X-Fedmsg-Package` headers on one message.
const MAX_PACKAGE_HEADERS: usize = 20;
/// Most notifications listed in one digest email.
pub const MAX_DIGEST_ITEMS: usize = 100;

/// A rendered email (the mailer adds From and To).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// One line, without control characters.
    pub subject: String,
    /// The text body.
    pub text: String,
    /// The HTML alternative, when the context wants markup.
    pub html: Option<String>,
    /// Extra headers (`X-Fedmsg-*`), values one line without control characters.
    pub headers: Vec<(&'static str, String)>,
    /// The RFC 8058 one-click unsubscribe URL, if links are configured.
    pub unsubscribe_url: Option<String>,
}

/// Removes CR, LF and other control characters and collapses white space, so message
/// content can never add a header; cuts to [`MAX_HEADER_CHARS`].
pub(crate) fn one_line(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let joined = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > MAX_HEADER_CHARS {
        let mut cut: String = joined.chars().take(MAX_HEADER_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        joined
    }
}

/// Removes control characters but line breaks and tabs (for bodies).
fn body_text(text: &str) -> String {
    text.chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .collect()
}

fn escape_html(text: &str) -> String {
    html_escape::encode_quoted_attribute(&body_text(text)).into_owned()
}

/// Only http(s) links become clickable; anything else is shown as text.
fn is_web_link(link: &str) -> bool {
    link.starts_with("https://") || link.starts_with("http://")
}

fn subject(settings: &ContextSettings, text: &str) -> String {
    match settings.subject_prefix.as_deref().map(one_line) {
        Some(prefix) if !prefix.is_empty() => one_line(&format!("{prefix} {text}")),
        _ => one_line(text),
    }
}

/// The "why did I get this" footer, text and HTML.
struct Footer {
    text: String,
    html: String,
}

fn footer(
    user: &str,
    context: ContextKind,
    filters: &[FilterRef],
    settings: &ContextSettings,
    links: Option<&Links>,
) -> Footer {
    let mut text = String::from("\n-- \n");
    let mut html = String::from("<hr><p style=\"color:#666;font-size:small\">");
    if settings.triggered_by && !filters.is_empty() {
        text.push_str("You received this because of your fmn filter(s):\n");
        html.push_str("You received this because of your fmn filter(s):<br>");
        for f in filters {
            match links {
                Some(l) => {
                    let url = l.filter(user, context, &f.id);
                    let _ = writeln!(text, "  - {}: {url}", one_line(&f.name));
                    let _ = write!(
                        html,
                        "&nbsp;&nbsp;• <a href=\"{}\">{}</a><br>",
                        escape_html(&url),
                        escape_html(&one_line(&f.name))
                    );
                }
                None => {
                    let _ = writeln!(text, "  - {}", one_line(&f.name));
                    let _ = write!(
                        html,
                        "&nbsp;&nbsp;• {}<br>",
                        escape_html(&one_line(&f.name))
                    );
                }
            }
        }
    }
    if let (Some(l), Some(first)) = (links, filters.first()) {
        let url = l.unsubscribe(user, context, &first.id);
        let _ = writeln!(
            text,
            "Stop these (deactivate \"{}\"): {url}",
            one_line(&first.name)
        );
        let _ = write!(
            html,
            "<a href=\"{}\">Stop these</a> (deactivates \"{}\")",
            escape_html(&url),
            escape_html(&one_line(&first.name))
        );
    }
    html.push_str("</p>");
    Footer { text, html }
}

fn html_page(inner: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n{inner}\n</body></html>\n"
    )
}

/// Renders the email for `job`: short (summary and link) or verbose (every detail) per its
/// settings, with an HTML alternative when `settings.markup`.
pub fn render(job: &NotificationJob, links: Option<&Links>) -> Email {
    let m = &job.message;
    let s = &job.settings;
    let summary = if one_line(&m.summary).is_empty() {
        one_line(&m.topic)
    } else {
        body_text(m.summary.trim())
    };
    let mut text = format!("{summary}\n");
    let mut html = format!("<p>{}</p>\n", escape_html(&summary));
    if let Some(link) = &m.link {
        let _ = write!(text, "\n{}\n", one_line(link));
        if is_web_link(link) {
            let _ = writeln!(
                html,
                "<p><a href=\"{0}\">{0}</a></p>",
                escape_html(&one_line(link))
            );
        } else {
            let _ = writeln!(html, "<p>{}</p>", escape_html(&one_line(link)));
        }
    }
    if s.verbose {
        let mut details: Vec<(&str, String)> =
            vec![("Topic", m.topic.clone()), ("Application", m.app.clone())];
        if let Some(agent) = &m.agent {
            details.push(("Done by", agent.clone()));
        }
        if !m.usernames.is_empty() {
            details.push(("Users", join(&m.usernames)));
        }
        if !m.packages.is_empty() {
            details.push(("Packages", join(&m.packages)));
        }
        if let Some(t) = m.timestamp {
            details.push(("Time (UTC)", format_time(t)));
        }
        details.push(("Message id", m.id.clone()));
        text.push('\n');
        html.push_str("<table>\n");
        for (k, v) in details {
            let v = one_line(&v);
            let _ = writeln!(text, "{k}: {v}");
            let _ = writeln!(
                html,
                "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
                escape_html(&v)
            );
        }
        html.push_str("</table>\n");
    }
    let foot = footer(&job.user, job.context, &job.filters, s, links);
    text.push_str(&foot.text);
    html.push_str(&foot.html);

    let mut headers = vec![
        ("X-Fedmsg-Topic", one_line(&m.topic)),
        ("X-Fedmsg-Category", one_line(&m.app)),
    ];
    if let Some(agent) = &m.agent {
        headers.push(("X-Fedmsg-Username", one_line(agent)));
    }
    for package in m.packages.iter().take(MAX_PACKAGE_HEADERS) {
        headers.push(("X-Fedmsg-Package", one_line(package)));
    }
    headers.retain(|(_, v)| !v.is_empty());
    Email {
        subject: subject(
            s,
            if summary.is_empty() {
                &m.topic
            } else {
                &m.summary
            },
        ),
        text,
        html: s.markup.then(|| html_page(&html)),
        headers,
        unsubscribe_url: links
            .zip(job.filters.first())
            .map(|(l, f)| l.unsubscribe(&job.user, job.context, &f.id)),
    }
}

fn join(items: &std::collections::BTreeSet<String>) -> String {
    items.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) for seconds since the epoch.
fn format_time(secs: f64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// One email listing several held notifications of one user, grouped by application (at most
/// [`MAX_DIGEST_ITEMS`]; the caller sends the rest in a later digest). `flood` says the
/// notifications were held because too many arrived at once rather than by the user's
/// digest setting.
pub fn render_digest(
    user: &str,
    jobs: &[NotificationJob],
    settings: &ContextSettings,
    flood: bool,
    links: Option<&Links>,
) -> Email {
    let jobs = &jobs[..jobs.len().min(MAX_DIGEST_ITEMS)];
    let mut by_app: BTreeMap<String, Vec<&NotificationJob>> = BTreeMap::new();
    for job in jobs {
        by_app
            .entry(one_line(&job.message.app))
            .or_default()
            .push(job);
    }
    let mut filters: Vec<FilterRef> = Vec::new();
    for f in jobs.iter().flat_map(|j| &j.filters) {
        if !filters.iter().any(|g| g.id == f.id) {
            filters.push(f.clone());
        }
    }
    let n = jobs.len();
    let heading = if flood {
        format!("{n} notifications arrived at once; here they are in one message.")
    } else {
        format!("Your digest: {n} notifications.")
    };
    let mut text = format!("{heading}\n");
    let mut html = format!("<p>{}</p>\n", escape_html(&heading));
    for (app, items) in &by_app {
        let _ = write!(text, "\n{app} ({})\n", items.len());
        let _ = writeln!(
            html,
            "<h3>{} ({})</h3>\n<ul>",
            escape_html(app),
            items.len()
        );
        for job in items {
            let summary = one_line(&job.message.summary);
            let _ = writeln!(text, "  - {summary}");
            match job.message.link.as_deref().filter(|l| is_web_link(l)) {
                Some(link) => {
                    let _ = writeln!(text, "    {}", one_line(link));
                    let _ = writeln!(
                        html,
                        "<li><a href=\"{}\">{}</a></li>",
                        escape_html(&one_line(link)),
                        escape_html(&summary)
                    );
                }
                None => {
                    let _ = writeln!(html, "<li>{}</li>", escape_html(&summary));
                }
            }
        }
        html.push_str("</ul>\n");
    }
    let context = jobs.first().map_or(ContextKind::Email, |j| j.context);
    let foot = footer(user, context, &filters, settings, links);
    text.push_str(&foot.text);
    html.push_str(&foot.html);
    let what = if flood { "fmn" } else { "fmn digest" };
    Email {
        subject: subject(settings, &format!("{what}: {n} notifications")),
        text,
        html: settings.markup.then(|| html_page(&html)),
        headers: vec![("X-Fedmsg-Category", "fmn.digest".into())],
        unsubscribe_url: None,
    }
}

/// The email asking its recipient to confirm the address (the only email ever sent to an
/// unconfirmed address).
pub fn render_confirmation(job: &ConfirmationJob) -> Email {
    let mut text = format!(
        "Someone (hopefully {}) asked fmn, Fedora's notification service, to send \
         notifications to this address.\n\n",
        one_line(&job.user)
    );
    let mut html = format!("<p>{}</p>", escape_html(text.trim()));
    if let Some(link) = &job.link {
        let _ = writeln!(text, "To confirm, open: {}", one_line(link));
        let _ = write!(
            html,
            "<p><a href=\"{}\">Confirm this address</a></p>",
            escape_html(&one_line(link))
        );
    }
    if let Some(code) = &job.code {
        let _ = writeln!(text, "Your confirmation code: {}", one_line(code));
        let _ = write!(
            html,
            "<p>Your confirmation code: <b>{}</b></p>",
            escape_html(&one_line(code))
        );
    }
    text.push_str("\nIf you did not ask for this, ignore this email: nothing will be sent.\n");
    Email {
        subject: "fmn: confirm your email address".into(),
        text,
        html: Some(html_page(&html)),
        headers: Vec::new(),
        unsubscribe_url: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn job(summary: &str) -> NotificationJob {
        let mut job: NotificationJob = serde_json::from_str(include_str!(
            "../../fmn-queue/tests/fixtures/email-job.json"
        ))
        .unwrap();
        job.message.summary = summary.into();
        job
    }

    fn links() -> Links {
        Links::new("https://fmn.example.org", b"secret")
    }

    #[test]
    fn short_email_has_summary_link_and_filter_footer() {
        let email = render(&job("bob's kernel-6.1-1.fc40 completed"), Some(&links()));
        assert_eq!(email.subject, "bob's kernel-6.1-1.fc40 completed");
        assert!(
            email
                .text
                .contains("https://koji.fedoraproject.org/koji/buildinfo?buildID=7")
        );
        assert!(email.text.contains(
            "kernel builds: https://fmn.example.org/users/alice/contexts/email/filters/f1"
        ));
        assert!(!email.text.contains("Topic:"), "short form has no details");
        let html = email.html.unwrap();
        assert!(
            html.contains("<a href=\"https://koji.fedoraproject.org/koji/buildinfo?buildID=7\">")
        );
        let unsubscribe = email.unsubscribe_url.unwrap();
        assert!(unsubscribe.starts_with("https://fmn.example.org/unsubscribe/"));
        assert!(email.text.contains(&unsubscribe));
        assert_eq!(
            email.headers,
            [
                (
                    "X-Fedmsg-Topic",
                    "org.fedoraproject.prod.buildsys.build.state.change".into()
                ),
                ("X-Fedmsg-Category", "buildsys".into()),
                ("X-Fedmsg-Username", "bob".into()),
                ("X-Fedmsg-Package", "kernel".into()),
            ]
        );
    }

    #[test]
    fn verbose_plain_email_with_prefix_and_no_triggered_by() {
        let mut j = job("bob's kernel-6.1-1.fc40 completed");
        j.settings.verbose = true;
        j.settings.markup = false;
        j.settings.triggered_by = false;
        j.settings.subject_prefix = Some("[fmn]".into());
        let email = render(&j, None);
        assert_eq!(email.subject, "[fmn] bob's kernel-6.1-1.fc40 completed");
        assert!(
            email
                .text
                .contains("Topic: org.fedoraproject.prod.buildsys.build.state.change")
        );
        assert!(email.text.contains("Time (UTC): 2023-11-14 22:13:20"));
        assert!(email.text.contains("Packages: kernel"));
        assert!(!email.text.contains("kernel builds"));
        assert_eq!(email.html, None);
        assert_eq!(email.unsubscribe_url, None);
    }

    #[test]
    fn no_header_injection_through_the_subject() {
        let email = render(&job("evil\r\nBcc: victim@example.org\u{0}"), None);
        assert_eq!(email.subject, "evil Bcc: victim@example.org");
    }

    #[test]
    fn html_escapes_message_content() {
        let email = render(&job("<script>alert(1)</script> & co"), None);
        let html = email.html.unwrap();
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn digest_groups_by_application() {
        let mut a = job("one");
        a.message.app = "bodhi".into();
        let b = job("two");
        let mut c = job("three");
        c.message.app = "bodhi".into();
        c.filters[0].id = "f2".into();
        c.filters[0].name = "updates".into();
        let email = render_digest(
            "alice",
            &[a, b, c],
            &ContextSettings::default(),
            false,
            Some(&links()),
        );
        assert_eq!(email.subject, "fmn digest: 3 notifications");
        let bodhi = email.text.find("bodhi (2)").unwrap();
        let buildsys = email.text.find("buildsys (1)").unwrap();
        assert!(bodhi < buildsys);
        assert!(email.text.contains("  - one\n") && email.text.contains("  - three\n"));
        assert!(email.text.contains("kernel builds") && email.text.contains("updates"));
    }

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_time(0.0), "1970-01-01 00:00:00");
        assert_eq!(format_time(951_782_400.0), "2000-02-29 00:00:00");
        assert_eq!(format_time(1_700_000_000.0), "2023-11-14 22:13:20");
    }
}
