//! The compiled, indexed form of every filter: interned, deduplicated, and filed under the
//! keys a message is looked up by.
//!
//! - Names are interned ([`Sym`]); rules are compiled once per distinct rule (owner-relative
//!   rules such as "not my actions" store the owner as [`OWNER`], so every user shares one);
//!   a filter's rules form a rule set, also stored once.
//! - Each filter is filed under the keys of its most selective positive rule (an artifact, a
//!   maintainer or group, a user or agent, an application at a severity, a topic prefix or
//!   segment, a severity); filters without one go to a residual bucket evaluated for every
//!   message. Candidates are then evaluated fully, so the index only has to return a superset.
//! - Postings are sorted `u32` filter ids; frozen tables keep them in one array with a
//!   `key → range` map (CSR), tables still growing keep a vector per key.
//!
//! A [`Tables`] holds everything numbered from its `first_*` ids on: the base tables number
//! from 0 and are shared behind an `Arc`; incremental updates go to a small table on top.
//!
//! The parts, each depending only on those listed before it:
//! - `keys`: how an index key is packed (kind, extra byte, symbol) and a topic glob's key;
//! - `view`: a message as the index sees it, and the keys it is looked up by;
//! - `rule`: a compiled rule on interned names, and which keys a rule set is filed under;
//! - `patterns`: regex rules' patterns run together as one `RegexSet`;
//! - `tables`: the numbered tables of rules, sets, contexts, filters and postings.

mod keys;
mod patterns;
mod rule;
mod tables;
mod view;

pub(crate) use keys::{REGEX, artifact_type_index, glob_key, key, len32};
pub(crate) use patterns::compile_alone;
pub(crate) use rule::{FastRule, FastTest, RuleKey, TopicTest, regex_fallback, set_keys};
pub(crate) use tables::{ALL_ADDRESSES, Ctx, FilterRec, RuleSet, Tables};
pub(crate) use view::{OwnerIndex, ViewBufs, message_keys, topic_keys, view};

#[cfg(test)]
mod tests;
