//! Addresses checked again just before sending: one removed, unconfirmed or disabled after
//! the matcher queued the job is not sent to.

use std::future::Future;

use fmn_rules::ContextKind;

/// An address's secret (webhooks sign their body with it). It never reaches a log or a
/// queue: its `Debug` hides it and it is not serializable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself, to sign with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// An address the batch's check found deliverable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliverable {
    /// The address.
    pub address: String,
    /// Its secret as the check read it (empty when it has none); `None` when the book does
    /// not read secrets.
    pub secret: Option<Secret>,
}

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
    /// answered; an error fails only the jobs of its user), with each address's secret where
    /// the book reads it. By default one look-up each, concurrently, without secrets; the
    /// preferences table reads a batch in one call, secrets included.
    fn deliverable_many(
        &self,
        wanted: &[(String, ContextKind)],
    ) -> impl Future<Output = Vec<Result<Option<Vec<Deliverable>>, String>>> + Send
    where
        Self: Sync,
    {
        async move {
            let answers =
                futures::future::join_all(wanted.iter().map(|(u, c)| self.deliverable(u, *c)))
                    .await;
            answers
                .into_iter()
                .map(|answer| {
                    answer.map(|found| {
                        found.map(|addresses| {
                            (addresses.into_iter())
                                .map(|address| Deliverable {
                                    address,
                                    secret: None,
                                })
                                .collect()
                        })
                    })
                })
                .collect()
        }
    }
}

/// The deliverable addresses of one context of `prefs`, with their secrets.
fn deliverable_with_secrets(
    prefs: Option<&fmn_rules::Preferences>,
    context: ContextKind,
) -> Vec<Deliverable> {
    let addresses = prefs
        .and_then(|p| p.contexts.get(&context))
        .map_or(&[][..], |c| c.addresses.as_slice());
    deliverable_in(prefs, context)
        .into_iter()
        .map(|address| {
            let secret = (addresses.iter())
                .find(|a| a.address == address)
                .and_then(|a| a.secret.clone())
                .unwrap_or_default();
            Deliverable {
                address,
                secret: Some(Secret(secret)),
            }
        })
        .collect()
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

    /// One consistent `BatchGetItem` for the whole batch's users (issue 18), each address
    /// with its secret (the webhook sender signs with it: no read of its own per send).
    async fn deliverable_many(
        &self,
        wanted: &[(String, ContextKind)],
    ) -> Vec<Result<Option<Vec<Deliverable>>, String>> {
        let mut users: Vec<String> = wanted.iter().map(|(u, _)| u.clone()).collect();
        users.sort();
        users.dedup();
        match self.get_many(&users).await {
            Err(e) => wanted.iter().map(|_| Err(e.to_string())).collect(),
            Ok(found) => wanted
                .iter()
                .map(|(user, context)| match found.get(user) {
                    Some(Err(e)) => Err(e.to_string()),
                    Some(Ok(prefs)) => Ok(Some(deliverable_with_secrets(prefs.as_ref(), *context))),
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
    ) -> Vec<Result<Option<Vec<Deliverable>>, String>> {
        match self {
            Some(book) => book.deliverable_many(wanted).await,
            None => wanted.iter().map(|_| Ok(None)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_reads_each_deliverable_address_with_its_secret_and_never_shows_it() {
        let prefs: fmn_rules::Preferences = serde_json::from_value(serde_json::json!({
            "user": "alice",
            "contexts": {"webhook": {"addresses": [
                {"address": "https://a.example/", "confirmed": true, "secret": "hush-hush"},
                {"address": "https://b.example/", "confirmed": true},
                {"address": "https://c.example/", "confirmed": false, "secret": "other"}
            ]}}
        }))
        .unwrap();
        let found = deliverable_with_secrets(Some(&prefs), ContextKind::Webhook);
        let secrets: Vec<(&str, Option<&str>)> = (found.iter())
            .map(|d| (d.address.as_str(), d.secret.as_ref().map(Secret::expose)))
            .collect();
        assert_eq!(
            secrets,
            [
                ("https://a.example/", Some("hush-hush")),
                ("https://b.example/", Some(""))
            ]
        );
        let shown = format!("{found:?}");
        assert!(!shown.contains("hush-hush"), "{shown}");
        assert!(shown.contains("https://a.example/"), "{shown}");
    }
}
