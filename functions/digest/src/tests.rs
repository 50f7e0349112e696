//! The digest handler over in-memory fakes: held notifications, mailer, delivery records,
//! queues.

use std::sync::Mutex;

use fmn_digest::{DigestError, DueGroup};
use fmn_email::{Email, MailError, Mailer};
use fmn_queue::{NotificationJob, QueueError};
use fmn_store::MemoryDeliveryLog;

use super::*;

/// One due group with one batch; finishing can be made to fail once.
struct MemoryHeld {
    batch: Batch,
    finished: Mutex<usize>,
    fail_finish: Mutex<bool>,
}

impl Held for MemoryHeld {
    async fn due(&self, _now: u64) -> Result<Vec<DueGroup>, DigestError> {
        Ok(if *self.finished.lock().unwrap() > 0 {
            Vec::new()
        } else {
            vec![DueGroup {
                user: self.batch.user.clone(),
                context: self.batch.context,
                held: self.batch.jobs.len(),
            }]
        })
    }
    async fn take_batch(&self, _group: &DueGroup) -> Result<Option<Batch>, DigestError> {
        Ok(Some(self.batch.clone()))
    }
    async fn finish(&self, _batch: &Batch) -> Result<(), DigestError> {
        if std::mem::take(&mut *self.fail_finish.lock().unwrap()) {
            return Err(DigestError::Dynamo("throttled".into()));
        }
        *self.finished.lock().unwrap() += 1;
        Ok(())
    }
}

#[derive(Default)]
struct Outbox(Mutex<Vec<(String, String)>>);

impl Mailer for Outbox {
    async fn send(&self, to: &str, email: &Email) -> Result<(), MailError> {
        self.0
            .lock()
            .unwrap()
            .push((to.into(), email.subject.clone()));
        Ok(())
    }
}

#[derive(Default)]
struct MemoryQueue(Mutex<Vec<String>>);

impl Queue for MemoryQueue {
    async fn send_all(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        self.0
            .lock()
            .unwrap()
            .extend(messages.into_iter().map(|m| m.body));
        Ok(())
    }
}

type TestDigests = Digests<
    MemoryHeld,
    EmailChannel<Outbox>,
    MemoryDeliveryLog,
    MemoryQueue,
    fmn_delivery::MemoryHistory,
>;

fn batch(context: ContextKind, addresses: &[&str], n: usize) -> Batch {
    let template: NotificationJob = serde_json::from_str(include_str!(
        "../../../crates/fmn-queue/tests/fixtures/email-job.json"
    ))
    .unwrap();
    let jobs = (0..n)
        .map(|i| {
            let mut job = template.clone();
            job.message.id = format!("m{i}");
            job.context = context;
            job.addresses = addresses.iter().map(|a| (*a).to_owned()).collect();
            job
        })
        .collect();
    Batch::new(
        "digest:alice:1",
        "alice",
        context,
        Default::default(),
        false,
        jobs,
    )
}

fn digests(batch: Batch, queues: BTreeMap<ContextKind, MemoryQueue>) -> TestDigests {
    Digests::new(
        MemoryHeld {
            batch,
            finished: Mutex::default(),
            fail_finish: Mutex::default(),
        },
        Pipeline::new(
            EmailChannel::new(Outbox::default(), None),
            MemoryDeliveryLog::default(),
        )
        .with_history(fmn_delivery::MemoryHistory::default()),
        queues,
    )
}

#[tokio::test]
async fn a_run_failing_after_sending_is_resumed_without_sending_twice() {
    let d = digests(
        batch(ContextKind::Email, &["a@example.org", "b@example.org"], 3),
        BTreeMap::new(),
    );
    *d.held.fail_finish.lock().unwrap() = true;
    let first = d.run_at(0).await.unwrap();
    assert_eq!((first.digests, first.failed), (0, 1));
    let second = d.run_at(0).await.unwrap();
    assert_eq!(second.to_string(), "1 digests (3 notifications), 0 failed");
    let sent = d.email.channel().mailer().0.lock().unwrap().clone();
    let to: Vec<_> = sent.iter().map(|(to, _)| to.as_str()).collect();
    assert_eq!(
        to,
        ["a@example.org", "b@example.org"],
        "one digest per address, once"
    );
    assert!(sent[0].1.contains("3 notifications"), "{}", sent[0].1);
    assert_eq!(d.run_at(0).await.unwrap().digests, 0);
    let history = d.email.history().0.lock().unwrap().clone();
    assert_eq!(
        history.len(),
        1,
        "the digest is one history entry: {history:?}"
    );
    assert_eq!(history[0].message_id, "digest:alice:1");
    assert_eq!(history[0].state, fmn_store::HistoryState::Sent);
}

#[tokio::test]
async fn other_contexts_get_one_summary_on_their_queue_and_no_queue_is_a_failure() {
    let queues = BTreeMap::from([(ContextKind::Irc, MemoryQueue::default())]);
    let d = digests(batch(ContextKind::Irc, &["alice"], 2), queues);
    assert_eq!(d.run_at(0).await.unwrap().digests, 1);
    let bodies = d.queues[&ContextKind::Irc].0.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let job: NotificationJob = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        job.message.id, "digest:alice:1",
        "the summary's id is the batch id"
    );
    assert_eq!(job.addresses, ["alice"]);
    assert!(d.email.channel().mailer().0.lock().unwrap().is_empty());

    let d = digests(batch(ContextKind::Matrix, &["@a:x"], 2), BTreeMap::new());
    let outcome = d.run_at(0).await.unwrap();
    assert_eq!((outcome.digests, outcome.failed), (0, 1));
    assert_eq!(
        *d.held.finished.lock().unwrap(),
        0,
        "an undelivered batch stays"
    );
}
