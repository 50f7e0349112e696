//! The hot loop: one message against the index, with per-thread buffers reused from message
//! to message.

use std::cell::RefCell;

use fmn_messages::Message;

use super::Matcher;
use super::output::{Match, Notification, NotificationRef};
use crate::index::{self, ViewBufs};
use crate::intern::{FxMap, OWNER};

/// Per-thread buffers reused from message to message.
#[derive(Debug, Default)]
struct Scratch {
    view: ViewBufs,
    cands: Vec<u32>,
    hits: Vec<u32>,
    /// Rule-set results memoised for the current message: valid where `memo_gen` is `generation`.
    memo_gen: Vec<u32>,
    memo: Vec<bool>,
    generation: u32,
    regex_hits: Vec<bool>,
    /// Topic → its index keys, for the matcher of `topics_epoch` (topics are few: a bus has
    /// a few thousand).
    topics: FxMap<Box<str>, Box<[u64]>>,
    topics_epoch: u64,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Matcher {
    /// Who is notified of `message`, where, and because of which filters.
    pub fn matches(&self, message: &Message) -> Vec<Notification> {
        let mut out = Vec::new();
        self.for_each_match(message, |m| out.extend(m.to_notification()));
        out
    }

    /// What [`Matcher::matches`] returns, with strings borrowed from the matcher instead of
    /// copied.
    pub fn matches_borrowed(&self, message: &Message) -> Vec<NotificationRef<'_>> {
        let mut out = Vec::new();
        self.for_each_match(message, |m| out.extend(self.borrowed(m.ctx, m.filters)));
        out
    }

    /// Calls `f` for each (user, context) with a matching filter, allocating nothing: what
    /// [`Matcher::matches`] does before it copies the strings out.
    pub fn for_each_match(&self, message: &Message, mut f: impl FnMut(Match<'_>)) {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.run(message, &mut s, &mut f),
            // Re-entered from `f`: use fresh buffers.
            Err(_) => self.run(message, &mut Scratch::default(), &mut f),
        });
    }

    fn run(&self, message: &Message, s: &mut Scratch, f: &mut dyn FnMut(Match<'_>)) {
        let syms = self.syms();
        let lookup = |x: &str| syms.get(x);
        let Scratch {
            view: bufs,
            cands,
            hits,
            memo_gen,
            memo,
            generation,
            regex_hits,
            topics,
            topics_epoch,
        } = s;
        let v = index::view(message, bufs, &lookup, &self.owners);
        cands.clear();
        hits.clear();
        let (base, top) = (&*self.base, &self.top);
        let sets = (top.first_set as usize) + top.sets.len();
        if memo_gen.len() < sets {
            memo_gen.resize(sets, 0);
            memo.resize(sets, false);
        }
        *generation = generation.wrapping_add(1);
        if *generation == 0 {
            memo_gen.iter_mut().for_each(|g| *g = 0);
            *generation = 1;
        }
        // The owner-independent part of a rule set, once per message.
        let mut indep = |id: u32| {
            let i = id as usize;
            if memo_gen[i] != *generation {
                memo_gen[i] = *generation;
                memo[i] = self
                    .set(id)
                    .indep
                    .iter()
                    .all(|&r| self.rule(r).holds(&v, OWNER));
            }
            memo[i]
        };
        for (set, filters) in base.residual.iter().chain(&top.residual) {
            if indep(*set) {
                cands.extend_from_slice(filters);
            }
        }
        let has_kind = base.has_kind | top.has_kind;
        if *topics_epoch != self.epoch || topics.len() > 8192 {
            topics.clear();
            *topics_epoch = self.epoch;
        }
        let topic_keys = match topics.get(message.topic.as_str()) {
            Some(keys) => keys,
            None => topics
                .entry(message.topic.as_str().into())
                .or_insert_with(|| index::topic_keys(&message.topic, has_kind, &lookup)),
        };
        index::message_keys(&v, has_kind, topic_keys, |k| {
            cands.extend_from_slice(base.postings(k));
            if !top.filters.is_empty() {
                cands.extend_from_slice(top.postings(k));
            }
        });
        for layer in [base, top] {
            for ri in &layer.regex_index {
                let mut look = |k: u64| {
                    cands.extend_from_slice(base.postings(k));
                    cands.extend_from_slice(top.postings(k));
                };
                ri.for_message(message, regex_hits, &mut look);
            }
        }
        cands.sort_unstable();
        cands.dedup();
        let check_dead = !self.dead.is_empty();
        for &id in cands.iter() {
            let (_, rec) = self.filter(id);
            if check_dead && self.dead.contains(&rec.ctx) {
                continue;
            }
            if !indep(rec.set) {
                continue;
            }
            let rel = &self.set(rec.set).rel;
            let ok = rel.is_empty() || {
                let owner = self.ctx(rec.ctx).user;
                rel.iter().all(|&r| self.rule(r).holds(&v, owner))
            };
            if ok {
                hits.push(id);
            }
        }
        let mut i = 0;
        while i < hits.len() {
            let ctx = self.filter(hits[i]).1.ctx;
            let mut j = i + 1;
            while j < hits.len() && self.filter(hits[j]).1.ctx == ctx {
                j += 1;
            }
            f(Match {
                matcher: self,
                ctx,
                filters: &hits[i..j],
            });
            i = j;
        }
    }
}
