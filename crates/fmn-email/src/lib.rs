//! Email: [`render`] a [`NotificationJob`](fmn_queue::NotificationJob) (or [`render_digest`]
//! several) into an [`Email`], turn it into a MIME message ([`Email::to_mime`]: text and HTML
//! alternatives, `X-Fedmsg-*` headers for mail filters, RFC 8058 one-click
//! `List-Unsubscribe`), and send it with a [`Mailer`] ([`SesMailer`] in production, as SES v2
//! raw content). [`EmailChannel`] is email's part of the sender pipeline ([`fmn_delivery`]).
//!
//! Nothing from a bus message reaches a header unsanitised: control characters (CR and LF
//! among them) are removed and non-ASCII text is RFC 2047 encoded by the MIME builder.

mod channel;
mod links;
mod mime;
mod render;
mod ses;

pub use channel::{EmailChannel, render_notice};
pub use links::Links;
pub use render::{Email, MAX_DIGEST_ITEMS, render, render_confirmation, render_digest};
pub use ses::SesMailer;

/// Sending failed.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth retrying later (throttling, network, service errors).
    #[error("temporary: {0}")]
    Temporary(String),
    /// Retrying will not help (rejected address, unverified sender, unbuildable message).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Something that delivers an [`Email`] to one recipient.
pub trait Mailer {
    /// Sends `email` to `to`.
    fn send(&self, to: &str, email: &Email) -> impl Future<Output = Result<(), MailError>> + Send;
}
