//! The SES v2 mailer: the MIME message as raw content.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{EmailContent, RawMessage};

use crate::{Email, MailError, Mailer};

/// Sends through SES v2 from a verified sender address.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    /// A mailer sending as `from`.
    pub fn new(client: Client, from: impl Into<String>) -> Self {
        SesMailer {
            client,
            from: from.into(),
        }
    }
}

impl Mailer for SesMailer {
    async fn send(&self, to: &str, email: &Email) -> Result<(), MailError> {
        let raw = RawMessage::builder()
            .data(Blob::new(email.to_mime(&self.from, to)?))
            .build()
            .map_err(|e| MailError::Permanent(e.to_string()))?;
        // No Destination: with raw content SES takes the recipients from the To header.
        let result = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let permanent = e.as_service_error().is_some_and(|s| {
                    s.is_message_rejected()
                        || s.is_mail_from_domain_not_verified_exception()
                        || s.is_account_suspended_exception()
                        || s.is_bad_request_exception()
                });
                let text = format!("{e}: {:?}", e.as_service_error().map(|s| s.to_string()));
                Err(if permanent {
                    MailError::Permanent(text)
                } else {
                    MailError::Temporary(text)
                })
            }
        }
    }
}
