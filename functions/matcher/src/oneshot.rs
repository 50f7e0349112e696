//! Oneshot filters on a retry: a message that fired one keeps it.

use fmn_queue::{Queue, RecordError};
use fmn_rules::Matcher;

use crate::{MatcherFn, PreferenceSource, View};

impl<P: PreferenceSource + Sync, Q: Queue + Sync> MatcherFn<P, Q> {
    /// On a retry of a message: the oneshot filters it fired on an earlier attempt (whose
    /// jobs may not have been queued) are inactive now, so the index matches them no more.
    /// Each is evaluated again alone, as it was, and joins `notifications`; deactivating it
    /// then finds the win recorded for this message.
    pub(crate) async fn add_won_oneshots(
        &self,
        view: &View,
        message: &fmn_messages::Message,
        notifications: &mut Vec<fmn_rules::Notification>,
    ) -> Result<(), RecordError> {
        let wins =
            (self.prefs.oneshot_wins(&message.id).await).map_err(|e| RecordError(e.to_string()))?;
        for (user, context, filter_id) in wins {
            let already = notifications.iter().any(|n| {
                n.user == user
                    && n.context == context
                    && n.filters.iter().any(|f| f.id == filter_id)
            });
            if already {
                continue;
            }
            let Some(mut prefs) =
                (self.prefs.get(&user).await).map_err(|e| RecordError(e.to_string()))?
            else {
                continue;
            };
            prefs.contexts.retain(|kind, _| *kind == context);
            for ctx in prefs.contexts.values_mut() {
                ctx.filters.retain(|f| f.id == filter_id);
                for f in &mut ctx.filters {
                    f.active = true;
                }
            }
            let (alone, _) = Matcher::build_lenient([prefs], view.ownership.clone());
            for n in alone.matches(message) {
                let same = notifications
                    .iter_mut()
                    .find(|m| m.user == n.user && m.context == n.context);
                match same {
                    Some(m) => {
                        for a in n.addresses {
                            if !m.addresses.contains(&a) {
                                m.addresses.push(a);
                            }
                        }
                        m.filters.extend(n.filters);
                    }
                    None => notifications.push(n),
                }
            }
            tracing::info!(
                user,
                filter = filter_id,
                "oneshot filter: retry of its winning message"
            );
        }
        Ok(())
    }
}
