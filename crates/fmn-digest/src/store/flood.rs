//! A batch's flood admissions in one `TransactWriteItems` (issue 18).
//!
//! Each flood window a batch touches (`RATE#<user>#<context>`, window start) is one `Update`
//! of the transaction, adding the batch's message ids for that window at once (a transaction
//! may not touch an item twice). Its condition makes the outcome exactly that of one
//! [`HeldStore::admit_once`] per notification, in the batch's order:
//! - a window not seen yet: all its ids, if the window has room for all of them (`size(ids)
//!   <= max - k`); more ids than `max`: the first `max`, if the window is empty;
//! - a window seen (the item a cancelled transaction returned, `ALL_OLD`): the ids it holds
//!   are admitted again, the first of the others while there is room, the rest are over the
//!   limit; written under `size(ids) = <the size seen>` (a window's set only grows, so the
//!   same size is the same set).
//!
//! A cancelled transaction's reasons name the windows whose condition failed, with their
//! items: those are planned again from what they hold, and the others tried again as they
//! were. A window whose failed condition came without its item is read (consistently). What
//! is still undecided after a few rounds, or whose transaction failed without reasons, is
//! admitted one notification at a time, as before.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use fmn_rules::ContextKind;

use super::{HeldStore, Item, n, s};
use crate::DigestError;

/// Most items in one `TransactWriteItems`.
const MAX_TRANSACTION: usize = 100;
/// Transactions tried for one batch before what is undecided goes one at a time.
const ROUNDS: usize = 4;

/// One notification asking to be admitted to the flood window of (user, context) starting
/// at `window_start` ([`HeldStore::admit_all`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodAdmission<'a> {
    /// The recipient.
    pub user: &'a str,
    /// The context.
    pub context: ContextKind,
    /// The window's start (seconds since the Unix epoch).
    pub window_start: u64,
    /// The bus message's id.
    pub message_id: &'a str,
}

/// The condition a window's update is written under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    /// Not seen: the window holds at most this many ids (or none).
    Room(u64),
    /// The window holds no ids.
    Empty,
    /// The window holds exactly this many ids: the set seen.
    Size(u64),
}

/// What to write to one window, and what that decides.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// The ids to add (indices into the window's ids); none: decided without a write.
    add: Vec<usize>,
    /// The condition they are added under.
    condition: Condition,
    /// Each id's admission once the write went through.
    admitted: Vec<bool>,
}

/// The plan for a window's distinct `ids` (in the batch's order), given the ids it was seen
/// holding (`None`: not seen) and the limit `max`.
fn plan(ids: &[&str], seen: Option<&BTreeSet<String>>, max: u64) -> Plan {
    let Some(seen) = seen else {
        let k = ids.len() as u64;
        return if k <= max {
            Plan {
                add: (0..ids.len()).collect(),
                condition: Condition::Room(max - k),
                admitted: vec![true; ids.len()],
            }
        } else {
            let first = (0..ids.len()).map(|i| (i as u64) < max);
            Plan {
                add: (0..ids.len()).filter(|i| (*i as u64) < max).collect(),
                condition: Condition::Empty,
                admitted: first.collect(),
            }
        };
    };
    let mut free = max.saturating_sub(seen.len() as u64);
    let mut add = Vec::new();
    let mut admitted = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if seen.contains(*id) {
            admitted.push(true);
        } else if free > 0 {
            free -= 1;
            add.push(i);
            admitted.push(true);
        } else {
            admitted.push(false);
        }
    }
    let condition = if seen.is_empty() {
        Condition::Empty
    } else {
        Condition::Size(seen.len() as u64)
    };
    Plan {
        add,
        condition,
        admitted,
    }
}

/// The ids a window's item holds.
fn ids_of(item: &Item) -> BTreeSet<String> {
    match item.get("ids") {
        Some(AttributeValue::Ss(ids)) => ids.iter().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

/// One window of the batch.
#[derive(Debug)]
struct Window<'a> {
    user: &'a str,
    context: ContextKind,
    start: u64,
    /// Its distinct message ids, in the batch's order.
    ids: Vec<&'a str>,
    /// The ids it held when last seen.
    seen: Option<BTreeSet<String>>,
    /// Each id's admission, once decided.
    admitted: Option<Vec<bool>>,
    /// Left to one admission per notification.
    one_by_one: bool,
}

impl Window<'_> {
    fn pk(&self) -> String {
        format!("RATE#{}#{}", self.user, self.context.as_str())
    }
}

/// How one window's update in a cancelled transaction went.
enum Reason {
    /// Its condition failed; the item the condition saw, when the service returned it.
    Condition(Option<Item>),
    /// Another window's condition failed, or a conflict: try it again.
    Retry,
}

impl HeldStore {
    /// Admits every notification of `wanted` to its flood window (of `window_secs`, at most
    /// `max` messages each), exactly as one [`HeldStore::admit_once`] each in that order
    /// would, with one `TransactWriteItems` per 100 windows (a second one for the windows
    /// that were fuller than hoped). One notification alone is one `admit_once`.
    pub async fn admit_all(
        &self,
        wanted: &[FloodAdmission<'_>],
        window_secs: u64,
        max: u64,
    ) -> Vec<Result<bool, DigestError>> {
        if let [one] = wanted {
            let admitted = self
                .admit_once(
                    one.user,
                    one.context,
                    one.window_start,
                    window_secs,
                    one.message_id,
                    max,
                )
                .await;
            return vec![admitted];
        }
        // (window, id) of each notification.
        let mut windows: Vec<Window<'_>> = Vec::new();
        let mut slots: Vec<(usize, usize)> = Vec::with_capacity(wanted.len());
        for a in wanted {
            let w = match windows
                .iter()
                .position(|w| (w.user, w.context, w.start) == (a.user, a.context, a.window_start))
            {
                Some(w) => w,
                None => {
                    windows.push(Window {
                        user: a.user,
                        context: a.context,
                        start: a.window_start,
                        ids: Vec::new(),
                        seen: None,
                        admitted: None,
                        one_by_one: false,
                    });
                    windows.len() - 1
                }
            };
            let ids = &mut windows[w].ids;
            let id = match ids.iter().position(|id| *id == a.message_id) {
                Some(id) => id,
                None => {
                    ids.push(a.message_id);
                    ids.len() - 1
                }
            };
            slots.push((w, id));
        }
        for _round in 0..ROUNDS {
            if windows.iter().all(|w| w.admitted.is_some() || w.one_by_one) {
                break;
            }
            self.admission_round(&mut windows, window_secs, max).await;
        }
        // Undecided: one admission per notification, as before.
        let windows = &windows;
        futures::future::join_all(slots.into_iter().map(|(w, id)| async move {
            let window = &windows[w];
            match &window.admitted {
                Some(admitted) => Ok(admitted[id]),
                None => {
                    self.admit_once(
                        window.user,
                        window.context,
                        window.start,
                        window_secs,
                        window.ids[id],
                        max,
                    )
                    .await
                }
            }
        }))
        .await
    }

    /// Plans every undecided window and writes the plans, 100 windows a transaction.
    async fn admission_round(&self, windows: &mut [Window<'_>], window_secs: u64, max: u64) {
        let mut writes: Vec<(usize, Plan)> = Vec::new();
        for (w, window) in windows.iter_mut().enumerate() {
            if window.admitted.is_some() || window.one_by_one {
                continue;
            }
            let plan = plan(&window.ids, window.seen.as_ref(), max);
            if plan.add.is_empty() {
                window.admitted = Some(plan.admitted);
            } else {
                writes.push((w, plan));
            }
        }
        let mut unseen = Vec::new();
        for chunk in writes.chunks(MAX_TRANSACTION) {
            match self
                .admission_transaction(windows, chunk, window_secs)
                .await
            {
                Ok(()) => {
                    for (w, plan) in chunk {
                        windows[*w].admitted = Some(plan.admitted.clone());
                    }
                }
                Err(Some(reasons)) => {
                    for ((w, _), reason) in chunk.iter().zip(reasons) {
                        match reason {
                            Reason::Condition(Some(item)) => windows[*w].seen = Some(ids_of(&item)),
                            Reason::Condition(None) => unseen.push(*w),
                            Reason::Retry => {}
                        }
                    }
                }
                Err(None) => {
                    for (w, _) in chunk {
                        windows[*w].one_by_one = true;
                    }
                }
            }
        }
        for w in unseen {
            let window = &mut windows[w];
            match self.get(&window.pk(), &window.start.to_string()).await {
                Ok(item) => window.seen = Some(item.as_ref().map(ids_of).unwrap_or_default()),
                Err(e) => {
                    tracing::debug!(error = %e, "flood window not read; admitting one by one");
                    window.one_by_one = true;
                }
            }
        }
    }

    /// One `TransactWriteItems` of the `writes`' updates; a cancellation's reasons, one per
    /// write in order (`None`: it failed without them).
    async fn admission_transaction(
        &self,
        windows: &[Window<'_>],
        writes: &[(usize, Plan)],
        window_secs: u64,
    ) -> Result<(), Option<Vec<Reason>>> {
        let mut request = self.client.transact_write_items();
        for (w, plan) in writes {
            let window = &windows[*w];
            let ids = plan.add.iter().map(|i| window.ids[*i].to_owned()).collect();
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(window.pk()))
                .key("sk", s(window.start.to_string()))
                .update_expression("ADD ids :ids SET expires_at = :exp")
                .expression_attribute_values(":ids", AttributeValue::Ss(ids))
                .expression_attribute_values(":exp", n(window.start + 2 * window_secs))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            let update = match plan.condition {
                Condition::Room(room) => update
                    .condition_expression("attribute_not_exists(ids) OR size(ids) <= :n")
                    .expression_attribute_values(":n", n(room)),
                Condition::Empty => update.condition_expression("attribute_not_exists(ids)"),
                Condition::Size(size) => update
                    .condition_expression("size(ids) = :n")
                    .expression_attribute_values(":n", n(size)),
            };
            let update = update.build().map_err(|e| {
                tracing::debug!(error = %e, "flood admission not built");
                None
            })?;
            request = request.transact_items(TransactWriteItem::builder().update(update).build());
        }
        let e = match request.send().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let reasons = match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                c.cancellation_reasons()
            }
            _ => &[],
        };
        if reasons.len() != writes.len() {
            tracing::debug!(error = %fmn_store::dynamo_error_text(&e),
                "flood admission transaction failed; admitting one by one");
            return Err(None);
        }
        Err(Some(
            reasons
                .iter()
                .map(|r| match r.code() {
                    Some("ConditionalCheckFailed") => Reason::Condition(r.item().cloned()),
                    _ => Reason::Retry,
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|i| (*i).to_owned()).collect()
    }

    #[test]
    fn an_unseen_window_takes_the_batch_if_it_has_room() {
        let p = plan(&["a", "b"], None, 3);
        assert_eq!(p.add, [0, 1]);
        assert_eq!(p.condition, Condition::Room(1));
        assert_eq!(p.admitted, [true, true]);
    }

    #[test]
    fn more_than_the_limit_fills_only_an_empty_window() {
        let p = plan(&["a", "b", "c", "d"], None, 3);
        assert_eq!(p.add, [0, 1, 2]);
        assert_eq!(p.condition, Condition::Empty);
        assert_eq!(p.admitted, [true, true, true, false]);
    }

    #[test]
    fn a_seen_window_admits_what_it_holds_and_fills_its_room_in_order() {
        // "c" was admitted before (a redelivery): admitted again, not counted twice.
        let p = plan(&["a", "c", "d", "e"], Some(&seen(&["b", "c"])), 3);
        assert_eq!(p.add, [0]);
        assert_eq!(p.condition, Condition::Size(2));
        assert_eq!(p.admitted, [true, true, false, false]);
    }

    #[test]
    fn a_full_window_decides_without_a_write() {
        let p = plan(&["a", "d"], Some(&seen(&["a", "b", "c"])), 3);
        assert!(p.add.is_empty());
        assert_eq!(p.admitted, [true, false]);
        let empty = plan(&["a", "b"], Some(&BTreeSet::new()), 1);
        assert_eq!((empty.add, empty.condition), (vec![0], Condition::Empty));
        assert_eq!(empty.admitted, [true, false]);
    }
}
