//! The matcher handler over in-memory fakes of its preference source and queues.

use std::sync::Mutex;

use fmn_queue::QueueError;
use fmn_queue::test_util::{failed_ids, sqs_event};
use serde_json::json;

use super::*;

/// A real bus message (fedora-messaging): anitya adds a distro.
const ANITYA: &str = r#"{"topic": "org.release-monitoring.prod.anitya.distro.add", "headers": {"fedora_messaging_schema": "anitya.distro.add", "fedora_messaging_schema_package": "anitya_schema", "fedora_messaging_severity": 20, "priority": 0, "sent-at": "2025-01-01T00:00:00+00:00"}, "body": {"distro": {"name": "Fedor"}, "message": {"agent": "eseyman", "distro": "Fedor"}, "project": null}, "id": "0528648e-21a4-5897-823f-f7de86642235"}"#;

/// Preferences with a version stamp and a change log, and the filters deactivated.
#[derive(Default)]
struct MemoryPrefs {
    users: Mutex<Vec<Preferences>>,
    version: Mutex<u64>,
    changed: Mutex<Vec<String>>,
    deactivated: Mutex<Vec<String>>,
    /// The table cannot be reached.
    down: std::sync::atomic::AtomicBool,
}

impl MemoryPrefs {
    fn put(&self, prefs: Preferences) {
        let mut users = self.users.lock().unwrap();
        users.retain(|p| p.user != prefs.user);
        self.changed.lock().unwrap().push(prefs.user.clone());
        users.push(prefs);
        *self.version.lock().unwrap() += 1;
    }
}

impl PreferenceReader for MemoryPrefs {
    async fn load_all(&self) -> anyhow::Result<Vec<Preferences>> {
        Ok(self.users.lock().unwrap().clone())
    }
    async fn get(&self, user: &str) -> anyhow::Result<Option<Preferences>> {
        Ok(self
            .users
            .lock()
            .unwrap()
            .iter()
            .find(|p| p.user == user)
            .cloned())
    }
    async fn changed_since(&self, _: u128, _: usize) -> anyhow::Result<Option<Vec<String>>> {
        Ok(Some(std::mem::take(&mut *self.changed.lock().unwrap())))
    }
}

impl PreferenceSource for MemoryPrefs {
    async fn version(&self) -> anyhow::Result<u64> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("dynamodb: connection refused");
        }
        Ok(*self.version.lock().unwrap())
    }
    async fn record_recent(&self, _: &[fmn_messages::Message]) -> anyhow::Result<()> {
        Ok(())
    }
    /// As the table does: deactivates the filter in the stored preferences, recording the
    /// win for the message; the same message wins again.
    async fn deactivate_filter(
        &self,
        user: &str,
        context: ContextKind,
        id: &str,
        message: &str,
    ) -> anyhow::Result<bool> {
        let win = format!("{message}#{user}#{}#{id}", context.as_str());
        let mut users = self.users.lock().unwrap();
        let Some(filter) = users
            .iter_mut()
            .filter(|p| p.user == user)
            .filter_map(|p| p.contexts.get_mut(&context))
            .flat_map(|c| c.filters.iter_mut())
            .find(|f| f.id == id)
        else {
            return Ok(false);
        };
        let mut wins = self.deactivated.lock().unwrap();
        if !filter.active {
            return Ok(wins.contains(&win));
        }
        filter.active = false;
        wins.push(win);
        self.changed.lock().unwrap().push(user.to_owned());
        *self.version.lock().unwrap() += 1;
        Ok(true)
    }
    async fn oneshot_wins(
        &self,
        message: &str,
    ) -> anyhow::Result<Vec<(String, ContextKind, String)>> {
        let wins = self.deactivated.lock().unwrap();
        Ok(wins
            .iter()
            .filter_map(|w| w.strip_prefix(&format!("{message}#")))
            .filter_map(|w| {
                let mut parts = w.splitn(3, '#');
                let (user, context, id) = (parts.next()?, parts.next()?, parts.next()?);
                let context = ContextKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == context)?;
                Some((user.to_owned(), context, id.to_owned()))
            })
            .collect())
    }
    async fn ownership_id(&self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    async fn load_ownership(&self) -> anyhow::Result<Option<(String, Ownership)>> {
        Ok(None)
    }
}

/// A queue that keeps what it is sent, and refuses while `down` (`.1`) and messages whose
/// body contains `.2`; counts its calls (`.3`).
#[derive(Default)]
struct MemoryQueue(
    Mutex<Vec<Outgoing>>,
    std::sync::atomic::AtomicBool,
    Mutex<Option<String>>,
    std::sync::atomic::AtomicUsize,
);

impl Queue for MemoryQueue {
    async fn send_each(&self, messages: Vec<Outgoing>) -> Vec<(usize, String)> {
        self.3.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let refuse = self.2.lock().unwrap().clone();
        let mut refused = Vec::new();
        for (i, m) in messages.into_iter().enumerate() {
            let down = self.1.load(std::sync::atomic::Ordering::SeqCst);
            if down || refuse.as_ref().is_some_and(|r| m.body.contains(r.as_str())) {
                refused.push((i, "refused".to_owned()));
            } else {
                self.0.lock().unwrap().push(m);
            }
        }
        refused
    }

    async fn send_all(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        if self.1.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(QueueError {
                queue: "email".into(),
                message: "unreachable".into(),
                failed: messages.len(),
            });
        }
        self.0.lock().unwrap().extend(messages);
        Ok(())
    }
}

fn prefs(user: &str, oneshot: bool) -> Preferences {
    serde_json::from_value(json!({"user": user, "contexts": {
        "email": {"addresses": [{"address": format!("{user}@example.org"), "confirmed": true}],
                  "settings": {"verbose": true},
                  "filters": [{"id": format!("{user}-anitya"), "name": "anitya", "oneshot": oneshot,
                               "rules": [{"kind": "application", "names": ["anitya"]}]}]},
        "irc": {"addresses": [{"address": user, "confirmed": true}],
                "filters": [{"id": format!("{user}-irc"), "name": "anitya",
                             "rules": [{"kind": "application", "names": ["anitya"]}]}]}
    }}))
    .unwrap()
}

fn matcher(prefs: MemoryPrefs) -> MatcherFn<MemoryPrefs, MemoryQueue> {
    // Email has a queue, IRC has none (not deployed): its jobs are dropped.
    let queues = BTreeMap::from([(ContextKind::Email, MemoryQueue::default())]);
    MatcherFn::new(prefs, MemoryQueue::default(), queues)
}

fn email_jobs(m: &MatcherFn<MemoryPrefs, MemoryQueue>) -> Vec<NotificationJob> {
    m.queues[&ContextKind::Email]
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|o| serde_json::from_str(&o.body).unwrap())
        .collect()
}

#[tokio::test]
async fn a_match_becomes_a_job_and_a_malformed_message_is_quarantined() {
    let source = MemoryPrefs::default();
    source.put(prefs("alice", false));
    let m = matcher(source);
    let response = m.handle(sqs_event(&[ANITYA, "not a bus message"])).await;
    assert!(failed_ids(&response).is_empty(), "quarantined, not retried");
    let jobs = email_jobs(&m);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].user, "alice");
    assert_eq!(jobs[0].addresses, ["alice@example.org"]);
    assert_eq!(jobs[0].message.id, "0528648e-21a4-5897-823f-f7de86642235");
    assert!(
        jobs[0].settings.verbose,
        "the context's settings travel with the job"
    );
    let quarantined = m.quarantine.0.lock().unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].body, "not a bus message");
    assert_eq!(quarantined[0].attributes[0].0, QUARANTINE_REASON_ATTRIBUTE);
}

#[tokio::test]
async fn changed_preferences_apply_to_the_next_batch_and_a_oneshot_fires_once() {
    let source = MemoryPrefs::default();
    source.put(prefs("alice", false));
    let m = matcher(source);
    m.handle(sqs_event(&[ANITYA])).await;
    assert_eq!(email_jobs(&m).len(), 1);
    // Bob arrives with a oneshot filter: read incrementally from the change log. Two
    // different messages in one batch: only one of them fires it.
    m.prefs.put(prefs("bob", true));
    let other = ANITYA.replace("0528648e", "1528648e");
    m.handle(sqs_event(&[ANITYA, other.as_str()])).await;
    let users: Vec<String> = email_jobs(&m).into_iter().map(|j| j.user).collect();
    assert_eq!(users.iter().filter(|u| *u == "alice").count(), 3);
    assert_eq!(users.iter().filter(|u| *u == "bob").count(), 1, "{users:?}");
}

/// Issue 17 item 2: before, a batch while the table was unreachable failed every record.
#[tokio::test]
async fn an_unreachable_table_is_bridged_by_the_last_good_view_for_a_bounded_time() {
    let source = MemoryPrefs::default();
    source.put(prefs("alice", false));
    let m = matcher(source);
    m.handle(sqs_event(&[ANITYA])).await;
    m.prefs
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let response = m.handle(sqs_event(&[ANITYA, ANITYA])).await;
    assert!(
        failed_ids(&response).is_empty(),
        "matched with the last good view"
    );
    assert_eq!(email_jobs(&m).len(), 3);
    // Past the bound, records fail (and SQS retries them) rather than match stale data.
    let m = m.with_max_stale(std::time::Duration::ZERO);
    let response = m.handle(sqs_event(&[ANITYA])).await;
    assert_eq!(failed_ids(&response), ["r0"]);
    // Back: matched again.
    m.prefs
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let response = m.handle(sqs_event(&[ANITYA])).await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!(email_jobs(&m).len(), 4);
}

/// Issue 17 item 4: before, the retry found the filter deactivated by its own first attempt
/// and the one notification was lost.
#[tokio::test]
async fn a_oneshot_whose_job_was_not_queued_fires_on_the_retry() {
    let source = MemoryPrefs::default();
    source.put(prefs("bob", true));
    let m = matcher(source);
    let email = &m.queues[&ContextKind::Email];
    email.1.store(true, std::sync::atomic::Ordering::SeqCst);
    let response = m.handle(sqs_event(&[ANITYA])).await;
    assert_eq!(failed_ids(&response), ["r0"], "the job could not be queued");
    assert!(email_jobs(&m).is_empty());
    email.1.store(false, std::sync::atomic::Ordering::SeqCst);
    let response = m.handle(sqs_event(&[ANITYA])).await;
    assert!(failed_ids(&response).is_empty());
    let jobs = email_jobs(&m);
    assert_eq!(jobs.len(), 1, "the retry still sends");
    assert_eq!(jobs[0].filters[0].id, "bob-anitya");
    // Another message does not fire it again.
    let other = ANITYA.replace("0528648e", "2528648e");
    m.handle(sqs_event(&[other.as_str()])).await;
    assert_eq!(email_jobs(&m).len(), 1);
}

/// Issue 18: before, each record sent its own jobs (a call per record and context); now the
/// batch's jobs share calls, and a refused job still fails only its own record.
#[tokio::test]
async fn a_batch_shares_its_sends_and_a_refused_job_fails_only_its_record() {
    let source = MemoryPrefs::default();
    source.put(prefs("alice", false));
    let m = matcher(source);
    let second = ANITYA.replace("0528648e", "3528648e");
    let third = ANITYA.replace("0528648e", "4528648e");
    let email = &m.queues[&ContextKind::Email];
    *email.2.lock().unwrap() = Some("3528648e".to_owned());
    let response = m
        .handle(sqs_event(&[ANITYA, second.as_str(), third.as_str()]))
        .await;
    assert_eq!(
        failed_ids(&response),
        ["r1"],
        "only the refused job's record"
    );
    assert_eq!(email_jobs(&m).len(), 2);
    assert_eq!(
        email.3.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one send for the whole batch"
    );
}
