//! The steps every sender shares: parse, gate, claim, send, mark, report.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use fmn_digest::{Admission, Admit, NoGate};
use fmn_queue::{ContextJob, RecordError};
use fmn_store::{Delivered, DeliveryLog, SendResult, deliver_once};

use crate::history::{self, Outcome};
use crate::{AddressBook, Channel, History, Item, NoHistory, SendError, Target, Unchecked};

/// Secrets of a record's addresses, by address, as the batch's address check read them.
type Secrets = std::collections::HashMap<String, crate::Secret>;

/// Reads a job from a context queue's record. A job that cannot be read never will be: the
/// record fails, and after the queue's receive limit SQS moves it to the DLQ where an
/// operator sees it.
pub fn parse_job(record: &SqsMessage) -> Result<ContextJob, RecordError> {
    // A job whose message carries characters SQS refuses travels encoded (`fmn_queue::wire`).
    let body = fmn_queue::wire::record_body(record)?;
    let job: ContextJob =
        serde_json::from_str(&body).map_err(|e| RecordError(format!("unreadable job: {e}")))?;
    if let ContextJob::Notification(n) = &job {
        fmn_queue::record_bus_id(&n.message.id);
    }
    Ok(job)
}

/// A sender: a [`Channel`] with delivery records `D`, a digest and flood gate `G`, an
/// [`AddressBook`] `A` checking a notification's addresses just before sending, and the
/// users' delivery [`History`] `H`.
#[derive(Debug)]
pub struct Pipeline<C, D, G = NoGate, A = Unchecked, H = NoHistory> {
    channel: C,
    deliveries: D,
    gate: G,
    book: A,
    history: H,
}

impl<C, D> Pipeline<C, D> {
    /// A sender through `channel`, recording deliveries in `deliveries`, everything at once.
    pub fn new(channel: C, deliveries: D) -> Self {
        Pipeline {
            channel,
            deliveries,
            gate: NoGate,
            book: Unchecked,
            history: NoHistory,
        }
    }
}

impl<C, D, G, A, H> Pipeline<C, D, G, A, H> {
    /// Holds digests and floods with `gate`.
    pub fn with_gate<G2>(self, gate: G2) -> Pipeline<C, D, G2, A, H> {
        Pipeline {
            channel: self.channel,
            deliveries: self.deliveries,
            gate,
            book: self.book,
            history: self.history,
        }
    }

    /// Sends a notification only to those of its addresses `book` still lists as
    /// deliverable (one removed or disabled after matching is not sent to).
    pub fn with_addresses<B>(self, book: B) -> Pipeline<C, D, G, B, H> {
        Pipeline {
            channel: self.channel,
            deliveries: self.deliveries,
            gate: self.gate,
            book,
            history: self.history,
        }
    }

    /// Records each notification's outcome (sent, held, failed and why) in `history`.
    pub fn with_history<H2>(self, history: H2) -> Pipeline<C, D, G, A, H2> {
        Pipeline {
            channel: self.channel,
            deliveries: self.deliveries,
            gate: self.gate,
            book: self.book,
            history,
        }
    }

    /// The history outcomes are recorded in.
    pub fn history(&self) -> &H {
        &self.history
    }

    /// The channel it sends through.
    pub fn channel(&self) -> &C {
        &self.channel
    }

    /// The gate notifications pass.
    pub fn gate(&self) -> &G {
        &self.gate
    }
}

impl<C, D, G, A, H> Pipeline<C, D, G, A, H>
where
    C: Channel + Sync,
    D: DeliveryLog + Sync,
    G: Admit + Sync,
    A: AddressBook + Sync,
    H: History + Sync,
{
    /// Handles one SQS batch from the channel's queue; one bad record never fails the
    /// others.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_until(event, None).await
    }

    /// [`Pipeline::handle`], giving up at `deadline` on the sends still waiting (their
    /// records fail and SQS retries them): a hanging target never times the invocation out.
    ///
    /// The batch moves through the steps together (issue 18), so its DynamoDB calls are
    /// per batch, not per notification: parse every record; check every notification's
    /// addresses in one look-up ([`AddressBook::deliverable_many`]); pass them through the
    /// gate together ([`Admit::admit_all`]); then claim every delivery key, send, and mark
    /// the sent ones, in [`fmn_store::deliver_all`]. A record fails exactly when one of its
    /// own steps did.
    pub async fn handle_until(
        &self,
        event: SqsEvent,
        deadline: Option<std::time::Instant>,
    ) -> SqsBatchResponse {
        let parsed = fmn_queue::map_batch(event, |record| async move { parse_job(&record) }).await;
        let mut ids = Vec::with_capacity(parsed.len());
        let mut failures: Vec<Vec<String>> = Vec::with_capacity(parsed.len());
        let mut jobs: Vec<Option<ContextJob>> = Vec::with_capacity(parsed.len());
        for (id, job) in parsed {
            ids.push(id);
            match job {
                Ok(job) => {
                    jobs.push(Some(job));
                    failures.push(Vec::new());
                }
                Err(e) => {
                    jobs.push(None);
                    failures.push(vec![e.0]);
                }
            }
        }
        let secrets = self.check_addresses(&mut jobs, &mut failures).await;
        self.pass_gate(&mut jobs, &mut failures).await;
        self.deliver_batch(&jobs, &secrets, &mut failures, deadline)
            .await;
        fmn_queue::batch_response(ids.into_iter().zip(failures).map(|(id, f)| {
            let result = if f.is_empty() {
                Ok(())
            } else {
                Err(RecordError(f.join("; ")))
            };
            (id, result)
        }))
    }

    /// Drops the addresses of notifications that are no longer deliverable (one look-up for
    /// the batch); a notification left without any is done. Returns, per record, the
    /// secrets the look-up read for its addresses (kept here, never in the job).
    async fn check_addresses(
        &self,
        jobs: &mut [Option<ContextJob>],
        failures: &mut [Vec<String>],
    ) -> Vec<Secrets> {
        let mut secrets: Vec<Secrets> = jobs.iter().map(|_| Secrets::new()).collect();
        let wanted: Vec<(usize, (String, fmn_rules::ContextKind))> = jobs
            .iter()
            .enumerate()
            .filter_map(|(i, job)| match job {
                Some(ContextJob::Notification(n)) => Some((i, (n.user.clone(), n.context))),
                _ => None,
            })
            .collect();
        if wanted.is_empty() {
            return secrets;
        }
        let keys: Vec<(String, fmn_rules::ContextKind)> =
            wanted.iter().map(|(_, k)| k.clone()).collect();
        let answers = self.book.deliverable_many(&keys).await;
        for ((i, _), answer) in wanted.into_iter().zip(answers) {
            let Some(ContextJob::Notification(n)) = &mut jobs[i] else {
                continue;
            };
            match answer {
                Err(e) => {
                    failures[i].push(e);
                    jobs[i] = None;
                }
                Ok(None) => {}
                Ok(Some(now)) => {
                    let before = n.addresses.len();
                    n.addresses.retain(|a| now.iter().any(|d| d.address == *a));
                    if n.addresses.len() < before {
                        tracing::info!(user = %n.user, id = %n.message.id,
                            dropped = before - n.addresses.len(),
                            "addresses no longer deliverable since matching: not sent to");
                    }
                    if n.addresses.is_empty() {
                        jobs[i] = None;
                    }
                    secrets[i] = (now.into_iter())
                        .filter_map(|d| Some((d.address, d.secret?)))
                        .collect();
                }
            }
        }
        secrets
    }

    /// Holds notifications for digests and floods (only notifications: a confirmation or a
    /// notice is wanted now), the batch's admissions together ([`Admit::admit_all`]); a held
    /// one is done.
    async fn pass_gate(&self, jobs: &mut [Option<ContextJob>], failures: &mut [Vec<String>]) {
        let (indices, notifications): (Vec<usize>, Vec<&fmn_queue::NotificationJob>) =
            (jobs.iter().enumerate())
                .filter_map(|(i, job)| match job {
                    Some(ContextJob::Notification(n)) => Some((i, n)),
                    _ => None,
                })
                .unzip();
        if notifications.is_empty() {
            return;
        }
        let admissions = self.gate.admit_all(&notifications).await;
        let mut held = Vec::new();
        for (i, admission) in indices.into_iter().zip(admissions) {
            match admission {
                Ok(Admission::Send) => {}
                Ok(Admission::Held) => {
                    if let Some(ContextJob::Notification(n)) = &jobs[i] {
                        tracing::info!(user = %n.user, id = %n.message.id, "held for a digest");
                        held.push(history::entry(n, fmn_store::HistoryState::Held, None));
                    }
                    jobs[i] = None;
                }
                Err(e) => {
                    failures[i].push(e.to_string());
                    jobs[i] = None;
                }
            }
        }
        self.remember_all(&held).await;
    }

    /// Delivers every remaining job to each of its addresses, once: one claim and one mark
    /// for the whole batch ([`fmn_store::deliver_all`]), each item rendered once, every send
    /// at once and given up at `deadline`.
    async fn deliver_batch(
        &self,
        jobs: &[Option<ContextJob>],
        secrets: &[Secrets],
        failures: &mut [Vec<String>],
        deadline: Option<std::time::Instant>,
    ) {
        let mut items: Vec<Option<Item<'_>>> = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let item = job.as_ref().map(Item::from_job);
            match item.map(|item| self.channel.accepts(&item)) {
                Some(Err(e)) => {
                    failures[i].push(e);
                    items.push(None);
                }
                _ => items.push(item),
            }
        }
        // (record, address, key); a key twice in one batch (a job redelivered into the same
        // batch) is delivered once and its outcome given to both records.
        let mut deliveries: Vec<(usize, String)> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(item) = item else { continue };
            for address in item.addresses() {
                let key = item.delivery_key(&address);
                match keys.iter().position(|k| *k == key) {
                    Some(k) => owners[k].push(i),
                    None => {
                        keys.push(key);
                        owners.push(vec![i]);
                        deliveries.push((i, address));
                    }
                }
            }
        }
        if keys.is_empty() {
            return;
        }
        let messages: Vec<Option<C::Message>> = items
            .iter()
            .map(|item| item.as_ref().map(|item| self.channel.render(item)))
            .collect();
        let (items, messages, deliveries, keys_ref) = (&items, &messages, &deliveries, &keys);
        let outcomes = fmn_store::deliver_all(&self.deliveries, &keys, |k| async move {
            let (i, address) = &deliveries[k];
            let (Some(item), Some(message)) = (&items[*i], &messages[*i]) else {
                return SendResult::Temporary("nothing to send".into());
            };
            let target = Target {
                item,
                address,
                key: &keys_ref[k],
                secret: secrets[*i].get(address),
            };
            let send = self.channel.send(&target, message);
            let sent = match deadline {
                Some(at) => match tokio::time::timeout_at(at.into(), send).await {
                    Ok(sent) => sent,
                    Err(_) => {
                        tracing::warn!(
                            key = keys_ref[k],
                            "{} not sent before the deadline",
                            C::NAME
                        );
                        return SendResult::Abandoned(
                            "not finished before the invocation's deadline".into(),
                        );
                    }
                },
                None => send.await,
            };
            match sent {
                Ok(()) => {
                    tracing::info!(key = keys_ref[k], kind = item.kind(), "{} sent", C::NAME);
                    SendResult::Sent
                }
                Err(SendError::Permanent(e)) => SendResult::Undeliverable(e),
                Err(SendError::Temporary(e)) => SendResult::Temporary(e),
                Err(SendError::Gone(e)) => SendResult::Skipped(e),
            }
        })
        .await;
        // Each item's history entry: the outcomes of its own addresses.
        let mut per_item: Vec<Vec<(String, Outcome)>> = items.iter().map(|_| Vec::new()).collect();
        for (k, outcome) in outcomes.iter().enumerate() {
            let (first, address) = &deliveries[k];
            per_item[*first].push((address.clone(), Outcome::of(outcome)));
        }
        let entries: Vec<fmn_store::HistoryEntry> = (items.iter().zip(&per_item))
            .filter_map(|(item, outcomes)| match (item, outcomes.is_empty()) {
                (Some(item), false) => history::delivered(item, outcomes),
                _ => None,
            })
            .collect();
        self.remember_all(&entries).await;
        for (k, outcome) in outcomes.into_iter().enumerate() {
            if let Err(e) = outcome {
                let address = &deliveries[k].1;
                for i in &owners[k] {
                    failures[*i].push(format!("{address}: {e}"));
                }
            }
        }
    }

    /// Records a batch's history entries together; a failure is logged, never the
    /// delivery's.
    async fn remember_all(&self, entries: &[fmn_store::HistoryEntry]) {
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.history.record_all(entries).await {
            tracing::warn!(entries = entries.len(), error = %e, "history not recorded");
        }
    }

    /// Records a history entry; a failure is logged, never the delivery's.
    async fn remember(&self, entry: fmn_store::HistoryEntry) {
        if let Err(e) = self.history.record(&entry).await {
            tracing::warn!(user = %entry.user, error = %e, "history not recorded");
        }
    }

    /// Delivers `item` once to each of its addresses; fails (to be retried) if any address
    /// failed temporarily, naming each.
    pub async fn deliver(&self, item: &Item<'_>) -> Result<(), RecordError> {
        self.deliver_until(item, None).await
    }

    /// [`Pipeline::deliver`] to every address at once, each given up at `deadline` if it
    /// has not finished by then (a failure: SQS retries the record; the claim's lease keeps
    /// a retry from sending while the abandoned attempt might still).
    pub async fn deliver_until(
        &self,
        item: &Item<'_>,
        deadline: Option<std::time::Instant>,
    ) -> Result<(), RecordError> {
        self.channel.accepts(item).map_err(RecordError)?;
        let message = self.channel.render(item);
        let message = &message;
        let addresses = item.addresses();
        let results = futures::future::join_all(addresses.iter().map(|address| async move {
            let key = item.delivery_key(address);
            let target = Target {
                item,
                address,
                key: &key,
                secret: None,
            };
            let one = self.deliver_one(&target, message);
            let outcome = match deadline {
                Some(at) => tokio::time::timeout_at(at.into(), one)
                    .await
                    .unwrap_or_else(|_| {
                        tracing::warn!(key, "{} not sent before the deadline", C::NAME);
                        Err(fmn_store::DeliveryError::Temporary(
                            "not finished before the invocation's deadline".into(),
                        ))
                    }),
                None => one.await,
            };
            (address.clone(), outcome)
        }))
        .await;
        let outcomes: Vec<(String, Outcome)> = results
            .iter()
            .map(|(address, r)| (address.clone(), Outcome::of(r)))
            .collect();
        if let Some(entry) = history::delivered(item, &outcomes) {
            self.remember(entry).await;
        }
        let failures: Vec<String> = results
            .into_iter()
            .filter_map(|(address, r)| r.err().map(|e| format!("{address}: {e}")))
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RecordError(failures.join("; ")))
        }
    }

    async fn deliver_one(
        &self,
        target: &Target<'_>,
        message: &C::Message,
    ) -> Result<Delivered, fmn_store::DeliveryError> {
        let outcome = deliver_once(&self.deliveries, target.key, || async {
            match self.channel.send(target, message).await {
                Ok(()) => SendResult::Sent,
                Err(SendError::Permanent(e)) => SendResult::Undeliverable(e),
                Err(SendError::Temporary(e)) => SendResult::Temporary(e),
                Err(SendError::Gone(e)) => SendResult::Skipped(e),
            }
        })
        .await?;
        if outcome == Delivered::Sent {
            tracing::info!(
                key = target.key,
                kind = target.item.kind(),
                "{} sent",
                C::NAME
            );
        }
        Ok(outcome)
    }
}

impl<C, D, G, A, H> fmn_lambda::SqsFunction for Pipeline<C, D, G, A, H>
where
    C: Channel + Send + Sync + 'static,
    D: DeliveryLog + Send + Sync + 'static,
    G: Admit + Send + Sync + 'static,
    A: AddressBook + Send + Sync + 'static,
    H: History + Send + Sync + 'static,
{
    async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        Pipeline::handle(self, event).await
    }

    async fn handle_until(
        &self,
        event: SqsEvent,
        deadline: Option<std::time::Instant>,
    ) -> SqsBatchResponse {
        Pipeline::handle_until(self, event, deadline).await
    }
}

#[cfg(test)]
mod tests;
