//! Email as a delivery channel of the sender pipeline ([`fmn_delivery`]).

use fmn_delivery::{Channel, Item, SendError, Target};

use crate::{Email, Links, MailError, Mailer};

/// Renders items as emails and sends them with a [`Mailer`]: the email sender's channel,
/// and the digest function's for digest emails.
#[derive(Debug, Clone)]
pub struct EmailChannel<M> {
    mailer: M,
    links: Option<Links>,
}

impl<M> EmailChannel<M> {
    /// Sends with `mailer`, writing filter and unsubscribe links with `links`, if any.
    pub fn new(mailer: M, links: Option<Links>) -> Self {
        EmailChannel { mailer, links }
    }

    /// The mailer.
    pub fn mailer(&self) -> &M {
        &self.mailer
    }
}

/// The email of a notice from fmn: its title as subject, its text as body.
pub fn render_notice(notice: &fmn_queue::NoticeJob) -> Email {
    Email {
        subject: crate::render::one_line(&notice.title),
        text: format!("{}\n", notice.text),
        html: None,
        headers: Vec::new(),
        unsubscribe_url: None,
    }
}

impl<M: Mailer + Sync> Channel for EmailChannel<M> {
    type Message = Email;
    const NAME: &'static str = "email";

    fn render(&self, item: &Item<'_>) -> Email {
        match item {
            Item::Notification(job) => crate::render(job, self.links.as_ref()),
            Item::Confirmation(job) => crate::render_confirmation(job),
            Item::Notice(notice) => render_notice(notice),
            Item::Digest(batch) => crate::render_digest(
                &batch.user,
                &batch.jobs,
                &batch.settings,
                batch.flood,
                self.links.as_ref(),
            ),
        }
    }

    async fn send(&self, target: &Target<'_>, email: &Email) -> Result<(), SendError> {
        match self.mailer.send(target.address, email).await {
            Ok(()) => Ok(()),
            Err(MailError::Permanent(e)) => Err(SendError::Permanent(e)),
            Err(MailError::Temporary(e)) => Err(SendError::Temporary(e)),
        }
    }
}
