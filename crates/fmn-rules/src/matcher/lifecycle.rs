//! A matcher's life: built from every user's preferences, changed one user at a time while
//! it serves, compacted now and then.

use std::sync::Arc;

use super::writer::Writer;
use super::{BuildError, Matcher, next_epoch};
use crate::index::{self, ALL_ADDRESSES, Ctx, FilterRec, OwnerIndex, Tables, len32};
use crate::intern::{FxSet, Sym, intern_layered};
use crate::ownership::Ownership;
use crate::prefs::Preferences;

impl Default for Matcher {
    fn default() -> Self {
        Self::from_tables(Tables::default(), Arc::default(), OwnerIndex::default(), 0)
    }
}

impl Matcher {
    /// Compiles preferences without ownership data (`owned_by` rules then match nothing); a
    /// bad rule fails with an error naming it.
    pub fn build(all: impl IntoIterator<Item = Preferences>) -> Result<Matcher, BuildError> {
        Self::build_with(all, Arc::default())
    }

    /// Compiles preferences; `owned_by` and `owned_by_group` rules read `ownership`.
    pub fn build_with(
        all: impl IntoIterator<Item = Preferences>,
        ownership: Arc<Ownership>,
    ) -> Result<Matcher, BuildError> {
        Self::assemble(all, ownership, Err)
    }

    /// Compiles preferences, leaving out every user whose preferences do not compile (one
    /// user's mistake must not stop everyone else's notifications); returns why each was
    /// left out.
    pub fn build_lenient(
        all: impl IntoIterator<Item = Preferences>,
        ownership: Arc<Ownership>,
    ) -> (Matcher, Vec<BuildError>) {
        let mut skipped = Vec::new();
        let matcher = Self::assemble(all, ownership, |e| {
            skipped.push(e);
            Ok(())
        });
        // `assemble` fails only through the callback, which never fails here.
        (matcher.unwrap_or_default(), skipped)
    }

    /// Compiles every user; a user who fails goes to `on_error`, which either stops the build
    /// (returns the error) or lets it go on without that user.
    fn assemble(
        all: impl IntoIterator<Item = Preferences>,
        ownership: Arc<Ownership>,
        mut on_error: impl FnMut(BuildError) -> Result<(), BuildError>,
    ) -> Result<Matcher, BuildError> {
        let empty = Tables::default();
        let mut t = Tables::default();
        let mut live = 0;
        let mut w = Writer {
            base: &empty,
            top: &mut t,
        };
        for prefs in all {
            match w.stage(&prefs) {
                Ok((owner, staged)) => {
                    let (ids, added) = w.commit(owner, staged);
                    if u32::try_from(w.top.filters.len()).is_err() {
                        return Err(BuildError {
                            user: prefs.user,
                            context: "",
                            filter: String::new(),
                            rule: 0,
                            problem: "too many filters".into(),
                        });
                    }
                    live += added;
                    if !ids.is_empty() {
                        w.top.users.entry(owner).or_default().extend(ids);
                    }
                }
                Err(e) => on_error(e)?,
            }
        }
        let owners = OwnerIndex::build(&ownership, &mut |s| t.syms.intern(s));
        t.regex_index = t.compile_regexes(&|s| t.syms.name(s).unwrap_or_default().to_owned());
        t.freeze();
        Ok(Self::from_tables(t, ownership, owners, live))
    }

    pub(crate) fn from_tables(
        base: Tables,
        ownership: Arc<Ownership>,
        owners: OwnerIndex,
        live_filters: usize,
    ) -> Matcher {
        let top = Tables::above(&base);
        Matcher {
            base: Arc::new(base),
            top,
            dead: FxSet::default(),
            live_filters,
            ownership,
            owners: Arc::new(owners),
            epoch: next_epoch(),
        }
    }

    /// The ownership data the matcher reads.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// Replaces the ownership data (a new sync of the package database). Costs one pass over
    /// the ownership data; the filters are untouched.
    pub fn set_ownership(&mut self, ownership: Arc<Ownership>) {
        let (base, top) = (&self.base, &mut self.top);
        let owners = OwnerIndex::build(&ownership, &mut |s| {
            intern_layered(&base.syms, &mut top.syms, s)
        });
        self.owners = Arc::new(owners);
        self.ownership = ownership;
        self.epoch = next_epoch();
    }

    /// Replaces one user's preferences (or adds a new user) without rebuilding: the user's
    /// old contexts are tombstoned and the new ones go to a small update layer. Costs what
    /// compiling that one user costs. On error nothing changes.
    ///
    /// A matcher shared behind an `Arc` is changed with `Arc::make_mut` (cloning it copies
    /// only the update layer: the bulk is shared) or under a lock between batches; call
    /// [`Matcher::compacted`] now and then, off the hot path, to fold the layer in.
    pub fn upsert_user(&mut self, prefs: &Preferences) -> Result<(), BuildError> {
        self.epoch = next_epoch();
        let mut w = Writer {
            base: &self.base,
            top: &mut self.top,
        };
        let (owner, staged) = w.stage(prefs)?;
        self.remove_sym(owner);
        let mut w = Writer {
            base: &self.base,
            top: &mut self.top,
        };
        let (ids, added) = w.commit(owner, staged);
        self.live_filters += added;
        self.top.users.insert(owner, ids);
        let new = self.top.new_regexes(&self.base);
        let syms = self.syms();
        let compiled = new
            .into_iter()
            .filter_map(|(target, sym)| Some((target, sym, index::compile_alone(syms.name(sym))?)))
            .collect();
        self.top.add_regexes(compiled);
        Ok(())
    }

    /// Removes one user's preferences (nothing happens for an unknown user).
    pub fn remove_user(&mut self, user: &str) {
        if let Some(sym) = self.syms().get(user) {
            self.remove_sym(sym);
        }
    }

    fn remove_sym(&mut self, user: Sym) {
        self.epoch = next_epoch();
        let ctxs = match self.top.users.get(&user) {
            Some(list) => list.clone(),
            None => self.base.users.get(&user).cloned().unwrap_or_default(),
        };
        for c in ctxs {
            if self.dead.insert(c) {
                let (a, b) = self.ctx(c).filters;
                self.live_filters -= (b - a) as usize;
            }
        }
        self.top.users.insert(user, Vec::new());
    }

    /// The same matcher with the update layer folded into the shared tables and tombstoned
    /// contexts dropped. Takes `&self`: run it on another thread while this one serves, then
    /// swap.
    pub fn compacted(&self) -> Matcher {
        let (base, top) = (&*self.base, &self.top);
        let mut t = Tables::default();
        t.syms = base.syms.clone();
        for name in top.syms.names() {
            t.syms.intern(name);
        }
        t.rules = base.rules.iter().chain(&top.rules).cloned().collect();
        t.rule_ids = base.rule_ids.clone();
        t.rule_ids
            .extend(top.rule_ids.iter().map(|(k, v)| (k.clone(), *v)));
        t.sets = base.sets.iter().chain(&top.sets).cloned().collect();
        t.set_ids = base.set_ids.clone();
        t.set_ids
            .extend(top.set_ids.iter().map(|(k, v)| (k.clone(), *v)));
        let mut live = 0;
        let all = base
            .contexts
            .iter()
            .map(|c| (base, c))
            .chain(top.contexts.iter().map(|c| (top, c)));
        for (old_ctx, (layer, c)) in (0u32..).zip(all) {
            if self.dead.contains(&old_ctx) {
                continue;
            }
            let ctx_id = t.end_ctx();
            let first = t.end_filter();
            for id in c.filters.0..c.filters.1 {
                let f = &layer.filters[(id - layer.first_filter) as usize];
                let (fid, name) = layer.filter_text(f);
                let text = len32(t.text.len());
                t.text.push_str(fid);
                t.text.push_str(name);
                let addr_start = if f.addr_len == ALL_ADDRESSES {
                    0
                } else {
                    let start = len32(t.addr_idx.len());
                    let a = f.addr_start as usize;
                    t.addr_idx
                        .extend_from_slice(&layer.addr_idx[a..a + f.addr_len as usize]);
                    start
                };
                let new_id = t.end_filter();
                t.filters.push(FilterRec {
                    ctx: ctx_id,
                    text,
                    addr_start,
                    ..f.clone()
                });
                let keys = t.sets[f.set as usize].keys.clone();
                t.post(new_id, f.set, &keys, c.user);
                live += 1;
            }
            t.contexts.push(Ctx {
                filters: (first, t.end_filter()),
                ..c.clone()
            });
            t.users.entry(c.user).or_default().push(ctx_id);
        }
        t.regex_index = t.compile_regexes(&|s| t.syms.name(s).unwrap_or_default().to_owned());
        t.freeze();
        Matcher {
            top: Tables::above(&t),
            base: Arc::new(t),
            dead: FxSet::default(),
            live_filters: live,
            ownership: self.ownership.clone(),
            owners: self.owners.clone(),
            epoch: next_epoch(),
        }
    }
}
