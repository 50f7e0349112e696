//! What a notification looks like in Matrix: an `m.room.message` of type `m.notice` with a
//! plain `body` and, when the context wants markup, an HTML `formatted_body`.

use fmn_queue::{ConfirmationJob, NotificationJob};
use serde_json::{Value, json};

/// Escapes text for HTML (element content and attribute values).
pub fn escape_html(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

/// One line: control characters dropped, whitespace collapsed.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn safe_link(link: &str) -> Option<String> {
    let link = one_line(link);
    (link.starts_with("https://") || link.starts_with("http://")).then_some(link)
}

/// The message content for a notification.
pub fn notification_content(job: &NotificationJob) -> Value {
    let mut summary = one_line(&job.message.summary);
    if summary.is_empty() {
        summary = one_line(&job.message.topic);
    }
    let link = job.message.link.as_deref().and_then(safe_link);
    let filters: Vec<String> = job
        .filters
        .iter()
        .map(|f| one_line(&f.name))
        .filter(|n| !n.is_empty())
        .collect();
    let why = (job.settings.triggered_by && !filters.is_empty())
        .then(|| format!("triggered by {}", filters.join(", ")));
    let mut body = summary.clone();
    if let Some(link) = &link {
        body.push(' ');
        body.push_str(link);
    }
    if let Some(why) = &why {
        body.push_str(&format!(" ({why})"));
    }
    let mut content = json!({"msgtype": "m.notice", "body": body});
    if job.settings.markup {
        let mut html = match &link {
            Some(link) => format!(
                "<a href=\"{}\">{}</a>",
                escape_html(link),
                escape_html(&summary)
            ),
            None => escape_html(&summary),
        };
        if let Some(why) = &why {
            html.push_str(&format!(" <em>({})</em>", escape_html(why)));
        }
        content["format"] = "org.matrix.custom.html".into();
        content["formatted_body"] = html.into();
    }
    content
}

/// The message content for a confirmation code.
pub fn confirmation_content(job: &ConfirmationJob) -> Value {
    let what = match (&job.code, &job.link) {
        (Some(code), _) => format!("your confirmation code is {}", one_line(code)),
        (None, Some(link)) => format!("confirm by opening {}", one_line(link)),
        (None, None) => "a confirmation was requested, but it carries no code".to_owned(),
    };
    json!({"msgtype": "m.notice", "body": format!(
        "fmn: {} asked to receive notifications at this Matrix account; {what}. If that was \
         not you, ignore this message.", one_line(&job.user))})
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = include_str!("../../fmn-queue/tests/fixtures/email-job.json");

    #[test]
    fn body_and_escaped_html() {
        let mut job: NotificationJob = serde_json::from_str(JOB).unwrap();
        job.message.summary = "<b>x</b> & \"y\"\r\nz".into();
        job.message.link = Some("https://x.example/?a=1&b=\"2\"".into());
        let c = notification_content(&job);
        let body = c["body"].as_str().unwrap();
        assert!(
            body.starts_with("<b>x</b> & \"y\" z https://x.example/?a=1&b=\"2\" (triggered by ")
        );
        let html = c["formatted_body"].as_str().unwrap();
        assert!(html.starts_with(
            "<a href=\"https://x.example/?a=1&amp;b=&quot;2&quot;\">&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot; z</a> <em>(triggered by "
        ), "{html}");
        job.settings.markup = false;
        job.message.link = Some("javascript:alert(1)".into());
        let c = notification_content(&job);
        assert!(c.get("formatted_body").is_none());
        assert!(!c["body"].as_str().unwrap().contains("javascript"));
    }
}
