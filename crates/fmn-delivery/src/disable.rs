//! Disabling an address that cannot be delivered to any more (a webhook failing again and
//! again, a push endpoint its distributor says is gone) and telling its owner, the same way
//! for every sender that does it.

use std::time::{SystemTime, UNIX_EPOCH};

use fmn_queue::{ContextJob, NoticeJob, Outgoing, Queue as _, SqsQueue};
use fmn_rules::{ContextKind, Preferences};
use fmn_store::{PreferenceTable, StoreError};

/// What people call an address of `kind` in a notice ("webhook", "push endpoint").
fn noun(kind: ContextKind) -> &'static str {
    match kind {
        ContextKind::Push => "push endpoint",
        other => other.as_str(),
    }
}

/// The notices telling the owner (`prefs`) that their `kind` address `address` was
/// disabled: an email to their first confirmed email address if they have one, and a feed
/// item (used when no email can be sent), in that order of preference. Topic
/// `fmn.<kind>.disabled`.
pub fn disabled_notices(
    prefs: &Preferences,
    kind: ContextKind,
    address: &str,
    reason: &str,
    now: u64,
) -> Vec<NoticeJob> {
    let what = noun(kind);
    let text = format!(
        "fmn stopped sending to your {what} {address}: {reason}. Fix it, then enable it \
         again in your {} settings.",
        kind.as_str()
    );
    let notice = |context: ContextKind, addresses: Vec<String>, title: String| NoticeJob {
        id: format!("{}-disabled:{address}:{now}", kind.as_str()),
        user: prefs.user.clone(),
        context,
        addresses,
        topic: format!("fmn.{}.disabled", kind.as_str()),
        title,
        text: text.clone(),
        created_at: now as i64,
    };
    let email_to = prefs
        .contexts
        .get(&ContextKind::Email)
        .and_then(|c| c.addresses.iter().find(|a| a.deliverable()))
        .map(|a| a.address.clone());
    let mut out = Vec::new();
    if let Some(to) = email_to {
        out.push(notice(
            ContextKind::Email,
            vec![to],
            format!("fmn: your {what} was disabled"),
        ));
    }
    out.push(notice(
        ContextKind::Feed,
        vec!["feed".into()],
        format!("Your {what} {address} was disabled"),
    ));
    out
}

/// Disables addresses in the preferences table and tells their owners on their email
/// queue, else their feed queue (the email sender and the feed writer deliver the notice
/// like any notification).
#[derive(Debug, Clone)]
pub struct AddressDisabler {
    prefs: PreferenceTable,
    email_queue: Option<SqsQueue>,
    feed_queue: Option<SqsQueue>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl AddressDisabler {
    /// Disables in `prefs`, tells owners on `email_queue` or `feed_queue` (either may be
    /// absent: that way is not used).
    pub fn new(
        prefs: PreferenceTable,
        email_queue: Option<SqsQueue>,
        feed_queue: Option<SqsQueue>,
    ) -> Self {
        AddressDisabler {
            prefs,
            email_queue,
            feed_queue,
        }
    }

    /// Sets `disabled = reason` on `user`'s `kind` address `address` (a conditional
    /// read-modify-write, retried on a concurrent change) and tells the owner. Nothing
    /// happens when the address is gone or already disabled.
    pub async fn disable(
        &self,
        kind: ContextKind,
        user: &str,
        address: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        for _attempt in 0..5 {
            let Some(prefs) = self.prefs.get(user).await? else {
                return Ok(());
            };
            let old = serde_json::to_string(&prefs).map_err(|e| StoreError::Corrupt {
                key: user.to_owned(),
                problem: e.to_string(),
            })?;
            let mut new = prefs.clone();
            let Some(a) = new
                .contexts
                .get_mut(&kind)
                .and_then(|c| c.addresses.iter_mut().find(|a| a.address == address))
            else {
                return Ok(());
            };
            if a.disabled.is_some() {
                return Ok(());
            }
            a.disabled = Some(reason.to_owned());
            match self.prefs.put_if(&new, Some(&old)).await {
                Ok(()) => {
                    self.tell_owner(&new, kind, address, reason).await;
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "preferences of {user} kept changing; {} {address} not disabled yet",
            kind.as_str()
        )))
    }

    /// Puts the first notice there is a queue for on it.
    async fn tell_owner(
        &self,
        prefs: &Preferences,
        kind: ContextKind,
        address: &str,
        reason: &str,
    ) {
        for notice in disabled_notices(prefs, kind, address, reason, now()) {
            let queue = match notice.context {
                ContextKind::Email => &self.email_queue,
                _ => &self.feed_queue,
            };
            let Some(queue) = queue else { continue };
            let context = notice.context;
            let body = match serde_json::to_string(&ContextJob::Notice { notice }) {
                Ok(body) => body,
                Err(e) => {
                    tracing::warn!(error = %e, "could not write the notice");
                    continue;
                }
            };
            match queue.send_all(vec![Outgoing::new(body)]).await {
                Ok(()) => {
                    tracing::warn!(user = %prefs.user, address, reason, kind = kind.as_str(),
                        context = context.as_str(), "owner told: address disabled");
                    return;
                }
                Err(e) => {
                    tracing::warn!(user = %prefs.user, error = %e, "could not queue the notice")
                }
            }
        }
        tracing::warn!(user = %prefs.user, address, reason, kind = kind.as_str(),
            "address disabled; owner not told");
    }
}
