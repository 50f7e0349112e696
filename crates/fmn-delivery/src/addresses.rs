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

    /// [`AddressBook::deliverable`] for every (user, context) of a batch at once (each
    /// answered; an error fails only the jobs of its user). By default one look-up each,
    /// concurrently; the preferences table reads a batch in one call.
    fn deliverable_many(
        &self,
        wanted: &[(String, ContextKind)],
    ) -> impl Future<Output = Vec<Result<Option<Vec<String>>, String>>> + Send
    where
        Self: Sync,
    {
        futures::future::join_all(wanted.iter().map(|(u, c)| self.deliverable(u, *c)))
    }
}

/// The deliverable addresses of one context of `prefs`.
fn deliverable_in(prefs: Option<&fmn_rules::Preferences>, context: ContextKind) -> Vec<String> {
    let context_now = prefs
        .and_then(|p| p.contexts.get(&context))
        .filter(|c| c.enabled);
    context_now.map_or_else(Vec::new, |c| {
        c.deliverable_addresses(context)
            .into_iter()
            .map(str::to_owned)
            .collect()
    })
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
        Ok(Some(deliverable_in(prefs.as_ref(), context)))
    }

    /// One consistent `BatchGetItem` for the whole batch's users (issue 18).
    async fn deliverable_many(
        &self,
        wanted: &[(String, ContextKind)],
    ) -> Vec<Result<Option<Vec<String>>, String>> {
        let mut users: Vec<String> = wanted.iter().map(|(u, _)| u.clone()).collect();
        users.sort();
        users.dedup();
        match self.get_many(&users).await {
            Err(e) => wanted.iter().map(|_| Err(e.to_string())).collect(),
            Ok(found) => wanted
                .iter()
                .map(|(user, context)| match found.get(user) {
                    Some(Err(e)) => Err(e.to_string()),
                    Some(Ok(prefs)) => Ok(Some(deliverable_in(prefs.as_ref(), *context))),
                    None => Ok(Some(Vec::new())),
                })
                .collect(),
        }
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

    async fn deliverable_many(
        &self,
        wanted: &[(String, ContextKind)],
    ) -> Vec<Result<Option<Vec<String>>, String>> {
        match self {
            Some(book) => book.deliverable_many(wanted).await,
            None => wanted.iter().map(|_| Ok(None)).collect(),
        }
    }
}
