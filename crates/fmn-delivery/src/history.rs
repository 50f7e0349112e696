//! The delivery history a sender keeps for each user: one entry per notification outcome
//! (sent, held for a digest, failed and why), which the web app's history page shows.
//!
//! Kept apart from the claim/send/mark steps: a history write that fails is logged and
//! never fails or repeats a delivery.

use std::future::Future;

use fmn_queue::NotificationJob;
use fmn_store::{FiredFilter, HistoryEntry, HistoryLog, HistoryState};

use crate::Item;

/// Where a sender records its users' delivery history.
pub trait History {
    /// Records one outcome; an error is logged by the caller, never retried.
    fn record(&self, entry: &HistoryEntry) -> impl Future<Output = Result<(), String>> + Send;

    /// Records a batch's outcomes (by default one at a time, all at once); an error is
    /// logged by the caller, never retried.
    fn record_all(
        &self,
        entries: &[HistoryEntry],
    ) -> impl Future<Output = Result<(), String>> + Send
    where
        Self: Sync,
    {
        async move {
            let done = futures::future::join_all(entries.iter().map(|e| self.record(e))).await;
            let errors: Vec<String> = done.into_iter().filter_map(Result::err).collect();
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("; "))
            }
        }
    }
}

/// Keeps no history (unit tests, or a sender without a table).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHistory;

impl History for NoHistory {
    async fn record(&self, _: &HistoryEntry) -> Result<(), String> {
        Ok(())
    }
}

impl History for HistoryLog {
    async fn record(&self, entry: &HistoryEntry) -> Result<(), String> {
        match HistoryLog::record(self, entry).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::warn!(user = %entry.user, "the day's history is full: entry dropped");
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// One `UpdateItem` per user and day of the batch (issue 18).
    async fn record_all(&self, entries: &[HistoryEntry]) -> Result<(), String> {
        match HistoryLog::record_all(self, entries).await {
            Ok(0) => Ok(()),
            Ok(dropped) => {
                tracing::warn!(dropped, "a day's history is full: entries dropped");
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

impl<H: History + Sync> History for Option<H> {
    async fn record(&self, entry: &HistoryEntry) -> Result<(), String> {
        match self {
            Some(h) => h.record(entry).await,
            None => Ok(()),
        }
    }

    async fn record_all(&self, entries: &[HistoryEntry]) -> Result<(), String> {
        match self {
            Some(h) => h.record_all(entries).await,
            None => Ok(()),
        }
    }
}

/// A history kept in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryHistory(pub std::sync::Mutex<Vec<HistoryEntry>>);

impl History for MemoryHistory {
    async fn record(&self, entry: &HistoryEntry) -> Result<(), String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry.clone());
        Ok(())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// The history entry of `job` in state `state` (with `reason` when it was not sent), for a
/// sender outside the [`crate::Pipeline`] (the feed writer).
pub fn entry(job: &NotificationJob, state: HistoryState, reason: Option<String>) -> HistoryEntry {
    HistoryEntry {
        at: now(),
        user: job.user.clone(),
        context: job.context.as_str().to_owned(),
        message_id: job.message.id.clone(),
        topic: job.message.topic.clone(),
        app: job.message.app.clone(),
        summary: job.message.summary.clone(),
        link: job.message.link.clone(),
        filters: job
            .filters
            .iter()
            .map(|f| FiredFilter {
                id: f.id.clone(),
                name: f.name.clone(),
            })
            .collect(),
        addresses: job.addresses.clone(),
        state,
        reason,
    }
}

/// How one address's delivery ended, for the history.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Sent now.
    Sent,
    /// Sent by an earlier attempt (a redelivered job): already in the history.
    Again,
    /// Not sent, for good, or for now, or because the address is gone.
    NotSent(HistoryState, String),
}

impl Outcome {
    /// The outcome of one address's delivery.
    pub(crate) fn of(r: &Result<fmn_store::Delivered, fmn_store::DeliveryError>) -> Outcome {
        use fmn_store::Delivered;
        match r {
            Ok(Delivered::Sent) => Outcome::Sent,
            Ok(Delivered::AlreadySent) => Outcome::Again,
            Ok(Delivered::Undeliverable(why)) => {
                Outcome::NotSent(HistoryState::Failed, why.clone())
            }
            Ok(Delivered::Skipped(why)) => Outcome::NotSent(HistoryState::Skipped, why.clone()),
            // Another attempt is sending it: that attempt records it.
            Err(fmn_store::DeliveryError::InProgress) => Outcome::Again,
            Err(e) => Outcome::NotSent(HistoryState::Retrying, e.to_string()),
        }
    }
}

/// The entry of a delivered item (notifications and digests; confirmations and notices
/// are not part of the history), or none when nothing new happened.
pub(crate) fn delivered(item: &Item<'_>, outcomes: &[(String, Outcome)]) -> Option<HistoryEntry> {
    let job = match item {
        Item::Notification(n) => std::borrow::Cow::Borrowed(*n),
        Item::Digest(b) => std::borrow::Cow::Owned(b.summary_job(None)),
        Item::Confirmation(_) | Item::Notice(_) => return None,
    };
    if outcomes.iter().all(|(_, o)| matches!(o, Outcome::Again)) {
        return None;
    }
    // The worst outcome names the entry; every address that was not sent says why.
    let rank = |s: HistoryState| match s {
        HistoryState::Retrying => 3,
        HistoryState::Failed => 2,
        HistoryState::Skipped => 1,
        _ => 0,
    };
    let mut state = HistoryState::Sent;
    let mut reasons = Vec::new();
    for (address, outcome) in outcomes {
        if let Outcome::NotSent(s, why) = outcome {
            if rank(*s) > rank(state) {
                state = *s;
            }
            reasons.push(format!("{address}: {why}"));
        }
    }
    let reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    Some(entry(&job, state, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> NotificationJob {
        let text = include_str!("../../fmn-queue/tests/fixtures/email-job.json");
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn the_worst_outcome_names_the_entry_and_each_failure_says_why() {
        let job = job();
        let item = Item::Notification(&job);
        let e = delivered(&item, &[("a".into(), Outcome::Sent)]).unwrap();
        assert_eq!((e.state, e.reason), (HistoryState::Sent, None));
        assert!(!e.filters.is_empty(), "the filters that fired are kept");
        let e = delivered(
            &item,
            &[
                ("a".into(), Outcome::Sent),
                (
                    "b".into(),
                    Outcome::NotSent(HistoryState::Failed, "no such user".into()),
                ),
                (
                    "c".into(),
                    Outcome::NotSent(HistoryState::Retrying, "refused".into()),
                ),
            ],
        )
        .unwrap();
        assert_eq!(e.state, HistoryState::Retrying);
        assert_eq!(e.reason.as_deref(), Some("b: no such user; c: refused"));
        assert!(delivered(&item, &[("a".into(), Outcome::Again)]).is_none());
    }
}
