//! Addresses checked again just before sending: one removed, unconfirmed or disabled after
//! the matcher queued the job is not sent to.

use std::future::Future;

use fmn_rules::ContextKind;

/// The addresses a user's context may be delivered to now.
pub trait AddressBook {
    /// `user`'s deliverable (confirmed, not disabled) addresses in `context`; `None` when
    /// this book does not check (every address of the job stands).
    fn deliverable(
        &self,
        user: &str,
        context: ContextKind,
    ) -> impl Future<Output = Result<Option<Vec<String>>, String>> + Send;
}

/// No check: the job's addresses stand (unit tests, channels that check in `send`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unchecked;

impl AddressBook for Unchecked {
    async fn deliverable(&self, _: &str, _: ContextKind) -> Result<Option<Vec<String>>, String> {
        Ok(None)
    }
}

/// The preferences table: one consistent read per notification job.
impl AddressBook for fmn_store::PreferenceTable {
    async fn deliverable(
        &self,
        user: &str,
        context: ContextKind,
    ) -> Result<Option<Vec<String>>, String> {
        let prefs = self.get(user).await.map_err(|e| e.to_string())?;
        let context_now = (prefs.as_ref())
            .and_then(|p| p.contexts.get(&context))
            .filter(|c| c.enabled);
        Ok(Some(context_now.map_or_else(Vec::new, |c| {
            c.deliverable_addresses(context)
                .into_iter()
                .map(str::to_owned)
                .collect()
        })))
    }
}

/// An optional book: none checks nothing.
impl<B: AddressBook + Sync> AddressBook for Option<B> {
    async fn deliverable(
        &self,
        user: &str,
        context: ContextKind,
    ) -> Result<Option<Vec<String>>, String> {
        match self {
            Some(book) => book.deliverable(user, context).await,
            None => Ok(None),
        }
    }
}
