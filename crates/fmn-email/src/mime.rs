//! The MIME message: `multipart/alternative` (text, HTML) with fmn's headers.

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::url::URL;

use crate::{Email, MailError};

impl Email {
    /// The complete message from `from` to `to`, ready for SES raw sending.
    pub fn to_mime(&self, from: &str, to: &str) -> Result<Vec<u8>, MailError> {
        let mut message = MessageBuilder::new()
            .from(from)
            .to(to)
            .subject(self.subject.as_str())
            .header("Precedence", Raw::new("bulk"))
            .header("Auto-Submitted", Raw::new("auto-generated"))
            .text_body(self.text.as_str());
        if let Some(html) = &self.html {
            message = message.html_body(html.as_str());
        }
        for (name, value) in &self.headers {
            // Values were made one line by the renderer; Text encodes non-ASCII (RFC 2047).
            message = message.header(*name, Text::new(value.as_str()));
        }
        if let Some(url) = &self.unsubscribe_url {
            // RFC 8058: a POST to the URL with this body unsubscribes, no questions asked.
            message = message
                .header("List-Unsubscribe", URL::new(url.as_str()))
                .header(
                    "List-Unsubscribe-Post",
                    Raw::new("List-Unsubscribe=One-Click"),
                );
        }
        message
            .write_to_vec()
            .map_err(|e| MailError::Permanent(format!("cannot build the message: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use mail_parser::{HeaderValue, MessageParser};

    use crate::{Links, render};

    fn job(summary: &str) -> fmn_queue::NotificationJob {
        let mut job: fmn_queue::NotificationJob = serde_json::from_str(include_str!(
            "../../fmn-queue/tests/fixtures/email-job.json"
        ))
        .unwrap();
        job.message.summary = summary.into();
        job
    }

    fn header_text(m: &mail_parser::Message<'_>, name: &str) -> Vec<String> {
        m.header_values(name)
            .map(|v| match v {
                HeaderValue::Text(t) => t.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn mime_has_both_alternatives_and_every_header() {
        let links = Links::new("https://fmn.example.org", b"secret");
        let email = render(&job("bob's kernel-6.1-1.fc40 completed"), Some(&links));
        let raw = email
            .to_mime("notifications@fmn.example.org", "alice@example.org")
            .unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("\r\nPrecedence: bulk\r\n"));
        assert!(text.contains("\r\nAuto-Submitted: auto-generated\r\n"));
        assert!(text.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        let m = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.subject(), Some("bob's kernel-6.1-1.fc40 completed"));
        assert_eq!(header_text(&m, "X-Fedmsg-Category"), ["buildsys"]);
        assert_eq!(header_text(&m, "X-Fedmsg-Username"), ["bob"]);
        assert_eq!(header_text(&m, "X-Fedmsg-Package"), ["kernel"]);
        let unsubscribe = format!("{:?}", m.header("List-Unsubscribe").unwrap());
        assert!(unsubscribe.contains(email.unsubscribe_url.as_deref().unwrap()));
        assert!(m.body_text(0).unwrap().contains("kernel builds"));
        assert!(m.body_html(0).unwrap().contains("<a href="));
    }

    #[test]
    fn hostile_summaries_never_add_headers() {
        for summary in [
            "evil\r\nBcc: victim@example.org",
            "evil\nX-Injected: yes\n\nbody",
            "évil ünïcode\r\n\tBcc: victim@example.org — ✓",
            "=?utf-8?q?Bcc:_victim@example.org?=\r\n",
        ] {
            let mut j = job(summary);
            j.message.app = "app\r\nBcc: victim@example.org".into();
            j.message.agent = Some("agent\nX-Injected: yes".into());
            let raw = render(&j, None)
                .to_mime("n@fmn.example.org", "alice@example.org")
                .unwrap();
            let text = String::from_utf8(raw.clone()).unwrap();
            let head = &text[..text.find("\r\n\r\n").unwrap()];
            for line in head.split("\r\n") {
                assert!(
                    !line.starts_with("Bcc") && !line.starts_with("X-Injected"),
                    "injected header {line:?} from {summary:?}"
                );
            }
            assert!(text.is_ascii(), "non-ASCII must be encoded");
            let m = MessageParser::default().parse(&raw).unwrap();
            assert!(m.header("Bcc").is_none() && m.header("X-Injected").is_none());
            let subject = m.subject().unwrap();
            assert!(!subject.contains('\n') && !subject.contains('\r'));
            assert_eq!(
                header_text(&m, "X-Fedmsg-Category"),
                ["app Bcc: victim@example.org"]
            );
        }
        let m = MessageParser::default()
            .parse(
                &render(&job("évil ünïcode — ✓"), None)
                    .to_mime("n@fmn.example.org", "alice@example.org")
                    .unwrap(),
            )
            .unwrap()
            .subject()
            .map(str::to_owned);
        assert_eq!(m.as_deref(), Some("évil ünïcode — ✓"));
    }
}
