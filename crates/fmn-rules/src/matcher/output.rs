//! What a match yields: owned notifications, borrowed ones, and the allocation-free
//! [`Match`] that [`Matcher::for_each_match`] hands out.

use serde::{Deserialize, Serialize};

use super::Matcher;
use crate::index::ALL_ADDRESSES;
use crate::prefs::{ContextKind, FilterRef};

/// One notification: a message for one user in one context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The recipient user.
    pub user: String,
    /// The delivery context.
    pub context: ContextKind,
    /// The confirmed addresses to deliver to.
    pub addresses: Vec<String>,
    /// Every filter that matched.
    pub filters: Vec<FilterRef>,
}

/// One matched (user, context): which filters matched, as references into the matcher.
/// [`Matcher::for_each_match`] hands these out without allocating.
#[derive(Debug, Clone, Copy)]
pub struct Match<'a> {
    pub(super) matcher: &'a Matcher,
    pub(super) ctx: u32,
    pub(super) filters: &'a [u32],
}

impl<'a> Match<'a> {
    /// The recipient user.
    pub fn user(&self) -> &'a str {
        self.matcher.name(self.matcher.ctx(self.ctx).user)
    }

    /// The delivery context.
    pub fn context(&self) -> ContextKind {
        self.matcher.ctx(self.ctx).kind
    }

    /// How many filters matched.
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// The notification, with owned strings.
    pub fn to_notification(&self) -> Option<Notification> {
        self.matcher
            .borrowed(self.ctx, self.filters)
            .map(|n| n.to_owned())
    }
}

/// A notification whose strings borrow from the matcher ([`Matcher::matches_borrowed`]):
/// the same as a [`Notification`] without copying a string. Serialises like one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationRef<'a> {
    /// The recipient user.
    pub user: &'a str,
    /// The delivery context.
    pub context: ContextKind,
    /// The confirmed addresses to deliver to.
    pub addresses: Vec<&'a str>,
    /// Every filter that matched.
    pub filters: Vec<FilterName<'a>>,
}

/// A filter named in a [`NotificationRef`]; serialises like a [`FilterRef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FilterName<'a> {
    /// The filter's id.
    pub id: &'a str,
    /// The filter's name.
    pub name: &'a str,
    /// A oneshot filter (absent in JSON: false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub oneshot: bool,
}

impl NotificationRef<'_> {
    /// The notification with owned strings.
    pub fn to_owned(&self) -> Notification {
        Notification {
            user: self.user.to_owned(),
            context: self.context,
            addresses: self.addresses.iter().map(|a| (*a).to_owned()).collect(),
            filters: self
                .filters
                .iter()
                .map(|f| FilterRef {
                    id: f.id.to_owned(),
                    name: f.name.to_owned(),
                    oneshot: f.oneshot,
                })
                .collect(),
        }
    }
}

impl Matcher {
    /// The notification of context `ctx` for the matched `filters` (none if no address is
    /// left to deliver to).
    pub(super) fn borrowed(&self, ctx: u32, filters: &[u32]) -> Option<NotificationRef<'_>> {
        let c = self.ctx(ctx);
        let mut all = false;
        let mut wanted: Vec<u16> = Vec::new();
        let mut names = Vec::with_capacity(filters.len());
        for &id in filters {
            let (t, f) = self.filter(id);
            if f.addr_len == ALL_ADDRESSES {
                all = true;
            } else if !all {
                let a = f.addr_start as usize;
                wanted.extend_from_slice(&t.addr_idx[a..a + f.addr_len as usize]);
            }
            let (id, name) = t.filter_text(f);
            names.push(FilterName {
                id,
                name,
                oneshot: f.oneshot,
            });
        }
        let addresses: Vec<&str> = if all {
            c.addresses.iter().map(|a| &**a).collect()
        } else {
            wanted.sort_unstable();
            wanted.dedup();
            wanted
                .iter()
                .map(|&i| &*c.addresses[usize::from(i)])
                .collect()
        };
        (!addresses.is_empty()).then(|| NotificationRef {
            user: self.name(c.user),
            context: c.kind,
            addresses,
            filters: names,
        })
    }
}
