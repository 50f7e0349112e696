//! Email: [`render`] a [`NotificationJob`](fmn_queue::NotificationJob) into an [`Email`], send it with a [`Mailer`]
//! ([`SesMailer`] in production).

mod render;
mod ses;

pub use render::{Email, render};
pub use ses::SesMailer;

/// Sending failed.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth retrying later (throttling, network, service errors).
    #[error("temporary: {0}")]
    Temporary(String),
    /// Retrying will not help (rejected address, unverified sender).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Something that delivers an [`Email`] to one recipient.
pub trait Mailer {
    /// Sends `email` to `to`.
    fn send(&self, to: &str, email: &Email) -> impl Future<Output = Result<(), MailError>> + Send;
}
