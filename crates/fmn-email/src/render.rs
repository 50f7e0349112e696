//! Plain-text rendering of a notification.

use fmn_queue::NotificationJob;

/// A rendered email (the sender adds From and To).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// One line: the message summary, without control characters.
    pub subject: String,
    /// The text body.
    pub body: String,
}

/// Removes CR, LF and other control characters, so message content can never add a header.
fn one_line(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Renders the email for `job`.
pub fn render(job: &NotificationJob) -> Email {
    let m = &job.message;
    let mut subject = one_line(&m.summary);
    if subject.is_empty() {
        subject = one_line(&m.topic);
    }
    let mut body = format!("{}\n", m.summary.trim());
    if let Some(link) = &m.link {
        body.push_str(&format!("\n{link}\n"));
    }
    if let Some(agent) = &m.agent {
        body.push_str(&format!("\nTriggered by: {agent}\n"));
    }
    body.push_str(&format!("\n-- \nTopic: {}\n", m.topic));
    let names: Vec<&str> = job.filters.iter().map(|f| f.name.as_str()).collect();
    body.push_str(&format!(
        "You received this because of your fmn filter(s): {}\n",
        names.join(", ")
    ));
    Email { subject, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(summary: &str) -> NotificationJob {
        let mut job: NotificationJob = serde_json::from_str(include_str!(
            "../../fmn-queue/tests/fixtures/email-job.json"
        ))
        .unwrap();
        job.message.summary = summary.into();
        job
    }

    #[test]
    fn subject_is_the_summary_and_body_has_link_and_filters() {
        let email = render(&job("bob's kernel-6.1-1.fc40 completed"));
        assert_eq!(email.subject, "bob's kernel-6.1-1.fc40 completed");
        assert!(
            email
                .body
                .contains("https://koji.fedoraproject.org/koji/buildinfo?buildID=7")
        );
        assert!(email.body.contains("kernel builds"));
    }

    #[test]
    fn no_header_injection_through_the_subject() {
        let email = render(&job("evil\r\nBcc: victim@example.org\u{0}"));
        assert_eq!(email.subject, "evil Bcc: victim@example.org");
    }
}
