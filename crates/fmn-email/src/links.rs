//! The links a notification carries: the filter that fired, and its one-click unsubscribe.

use fmn_links::LinkSigner;
use fmn_rules::ContextKind;

/// Builds the API links written into notifications (env `FMN_API_BASE_URL` and
/// `FMN_LINK_SECRET`, shared with the API that verifies the tokens).
#[derive(Debug, Clone)]
pub struct Links {
    base_url: String,
    signer: LinkSigner,
}

impl Links {
    /// Links under `base_url`, tokens signed with `secret`.
    pub fn new(base_url: impl Into<String>, secret: &[u8]) -> Self {
        Links {
            base_url: base_url.into(),
            signer: LinkSigner::new(secret),
        }
    }

    /// From `FMN_API_BASE_URL` and `FMN_LINK_SECRET` read through `var` (a function's
    /// configuration), when both are set and not empty; the one place they are read. A
    /// secret anyone could guess ([`fmn_links::check_secret`]) is an error.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Links>, fmn_links::WeakSecret> {
        let (Some(base), Some(secret)) = (
            var(fmn_links::API_BASE_URL_ENV).filter(|v| !v.is_empty()),
            var(fmn_links::LINK_SECRET_ENV).filter(|v| !v.is_empty()),
        ) else {
            return Ok(None);
        };
        fmn_links::check_secret(secret.as_bytes())?;
        Ok(Some(Links::new(base, secret.as_bytes())))
    }

    /// The one-click unsubscribe URL deactivating one filter.
    pub fn unsubscribe(&self, user: &str, context: ContextKind, filter_id: &str) -> String {
        let token = self.signer.unsubscribe_token(user, context, filter_id);
        fmn_links::unsubscribe_url(&self.base_url, &token)
    }

    /// The URL of a filter ("why did I get this?").
    pub fn filter(&self, user: &str, context: ContextKind, filter_id: &str) -> String {
        fmn_links::filter_url(&self.base_url, user, context, filter_id)
    }
}
