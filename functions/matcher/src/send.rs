//! The second half of a batch: the jobs of all its records leave together, in full
//! `SendMessageBatch` calls per context queue (ten entries, 256 KiB), and the recent log is
//! written in one `BatchWriteItem`, so that a batch of ten bus messages costs a few requests
//! rather than a few per message (issue 18). A record still fails exactly when one of its
//! own jobs (or its quarantine) was not accepted.

use std::collections::BTreeMap;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use fmn_queue::{Outgoing, Queue, RecordError};
use fmn_rules::ContextKind;

use crate::{MatcherFn, PreferenceSource};

/// What matching one record came to, waiting to be sent with the rest of its batch.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// The normalised message, for the recent-messages log (none when quarantined).
    pub(crate) message: Option<fmn_messages::Message>,
    /// The raw message and its reason, for the quarantine queue.
    pub(crate) quarantine: Option<Outgoing>,
    /// One job per (user, context), with its context.
    pub(crate) jobs: Vec<(ContextKind, Outgoing)>,
}

impl<P: PreferenceSource + Sync, Q: Queue + Sync> MatcherFn<P, Q> {
    /// Sends every prepared record's jobs, grouped by queue across the batch, and reports
    /// the records that failed: in preparing, or because a message of theirs was refused.
    pub(crate) async fn send_prepared(
        &self,
        prepared: Vec<(String, Result<Prepared, RecordError>)>,
    ) -> SqsBatchResponse {
        let mut failed: BTreeMap<usize, String> = BTreeMap::new();
        let mut messages = Vec::new();
        let mut quarantine: Vec<(usize, Outgoing)> = Vec::new();
        let mut by_context: BTreeMap<ContextKind, Vec<(usize, Outgoing)>> = BTreeMap::new();
        let mut ids = Vec::with_capacity(prepared.len());
        for (owner, (id, result)) in prepared.into_iter().enumerate() {
            ids.push(id);
            match result {
                Err(e) => {
                    failed.insert(owner, e.0);
                }
                Ok(p) => {
                    messages.extend(p.message);
                    quarantine.extend(p.quarantine.map(|q| (owner, q)));
                    for (context, job) in p.jobs {
                        by_context.entry(context).or_default().push((owner, job));
                    }
                }
            }
        }
        // Best effort: a preview missing a message is better than retried records.
        if let Err(e) = self.prefs.record_recent(&messages).await {
            tracing::warn!(error = %e, messages = messages.len(), "cannot log the messages for previews");
        }
        let mut sends: Vec<(&Q, Vec<(usize, Outgoing)>)> = Vec::new();
        if !quarantine.is_empty() {
            sends.push((&self.quarantine, quarantine));
        }
        for (context, jobs) in by_context {
            match self.queues.get(&context) {
                Some(queue) => sends.push((queue, jobs)),
                None => tracing::warn!(
                    context = context.as_str(),
                    dropped = jobs.len(),
                    "no sender deployed for this context"
                ),
            }
        }
        let refused =
            futures::future::join_all(sends.into_iter().map(|(queue, jobs)| async move {
                let (owners, outgoing): (Vec<usize>, Vec<Outgoing>) = jobs.into_iter().unzip();
                queue
                    .send_each(outgoing)
                    .await
                    .into_iter()
                    .filter_map(|(i, why)| owners.get(i).map(|owner| (*owner, why)))
                    .collect::<Vec<_>>()
            }))
            .await;
        for (owner, why) in refused.into_iter().flatten() {
            failed.entry(owner).or_insert(why);
        }
        fmn_queue::batch_response(ids.into_iter().enumerate().map(|(owner, id)| {
            let result = match failed.remove(&owner) {
                Some(why) => Err(RecordError(why)),
                None => Ok(()),
            };
            (id, result)
        }))
    }
}
