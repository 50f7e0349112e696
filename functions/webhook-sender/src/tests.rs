use std::sync::Mutex;

use fmn_queue::NotificationJob;
use fmn_queue::test_util::sqs_event as event;

use super::*;

#[derive(Default)]
struct Memory {
    failures: Mutex<u64>,
    disabled: Mutex<Vec<String>>,
    secret_reads: Mutex<usize>,
}

impl Accounts for Memory {
    async fn secret(&self, _: &str, _: &str, _: bool) -> anyhow::Result<Option<String>> {
        *self.secret_reads.lock().unwrap() += 1;
        Ok((self.disabled.lock().unwrap().is_empty()).then(|| "s3cret".into()))
    }
    async fn record_failure(&self, _: &str, _: &str) -> anyhow::Result<u64> {
        let mut f = self.failures.lock().unwrap();
        *f += 1;
        Ok(*f)
    }
    async fn clear_failures(&self, _: &str, _: &str) -> anyhow::Result<()> {
        *self.failures.lock().unwrap() = 0;
        Ok(())
    }
    async fn disable(&self, _: &str, address: &str, reason: &str) -> anyhow::Result<()> {
        self.disabled
            .lock()
            .unwrap()
            .push(format!("{address}: {reason}"));
        Ok(())
    }
}

/// Answers with the queued results, then success.
#[derive(Default)]
struct Receiver {
    results: Mutex<Vec<Result<(), PostError>>>,
    received: Mutex<Vec<Payload>>,
}

impl Poster for Receiver {
    async fn post(&self, _url: &str, secret: &[u8], payload: &Payload) -> Result<(), PostError> {
        assert_eq!(secret, b"s3cret");
        let next = {
            let mut r = self.results.lock().unwrap();
            if r.is_empty() { Ok(()) } else { r.remove(0) }
        };
        if next.is_ok() {
            self.received.lock().unwrap().push(payload.clone());
        }
        next
    }
}

const HOOK: &str = "https://hooks.example.org/alice";

fn job() -> String {
    job_of("a-message")
}

fn job_of(id: &str) -> String {
    let mut job: NotificationJob = serde_json::from_str(include_str!(
        "../../../crates/fmn-queue/tests/fixtures/email-job.json"
    ))
    .unwrap();
    job.context = ContextKind::Webhook;
    job.message.id = id.into();
    job.addresses = vec![HOOK.into()];
    serde_json::to_string(&job).unwrap()
}

type TestSender = WebhookSender<fmn_store::MemoryDeliveryLog, Memory, Receiver>;

fn sender(results: Vec<Result<(), PostError>>) -> TestSender {
    let receiver = Receiver::default();
    *receiver.results.lock().unwrap() = results;
    Pipeline::new(
        WebhookChannel::new(Memory::default(), receiver, 3),
        fmn_store::MemoryDeliveryLog::default(),
    )
}

fn received<D, G, A, H>(
    s: &Pipeline<WebhookChannel<Memory, Receiver>, D, G, A, H>,
) -> Vec<Payload> {
    s.channel().poster.received.lock().unwrap().clone()
}

fn accounts<D, G, A, H>(s: &Pipeline<WebhookChannel<Memory, Receiver>, D, G, A, H>) -> &Memory {
    &s.channel().accounts
}

#[tokio::test]
async fn failure_then_success_delivers_once() {
    let s = sender(vec![Err(PostError::Status(500))]);
    let first = s.handle(event(&[job()])).await;
    assert_eq!(first.batch_item_failures.len(), 1);
    assert!(
        s.handle(event(&[job()]))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(
        s.handle(event(&[job()]))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(received(&s).len(), 1);
    assert_eq!(*accounts(&s).failures.lock().unwrap(), 0);
}

#[tokio::test]
async fn repeated_failures_disable_the_address() {
    let s = sender(vec![Err(PostError::Status(500)); 3]);
    assert_eq!(s.handle(event(&[job()])).await.batch_item_failures.len(), 1);
    assert_eq!(s.handle(event(&[job()])).await.batch_item_failures.len(), 1);
    // The third failure disables it, and the job is not retried any more.
    assert!(
        s.handle(event(&[job()]))
            .await
            .batch_item_failures
            .is_empty()
    );
    let disabled = accounts(&s).disabled.lock().unwrap().clone();
    assert_eq!(disabled.len(), 1);
    assert!(disabled[0].contains("3 consecutive failed deliveries"));
    assert!(
        s.handle(event(&[job()]))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(received(&s).is_empty());
}

#[tokio::test]
async fn refused_targets_are_disabled_at_once() {
    let s = sender(vec![Err(PostError::Refused(
        "http://10.0.0.1/: private".into(),
    ))]);
    assert!(
        s.handle(event(&[job()]))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(accounts(&s).disabled.lock().unwrap().len(), 1);
}

/// An address book answering as the preferences table does: the address with its secret.
struct Book;

impl fmn_delivery::AddressBook for Book {
    async fn deliverable(&self, _: &str, _: ContextKind) -> Result<Option<Vec<String>>, String> {
        Ok(Some(vec![HOOK.into()]))
    }

    async fn deliverable_many(
        &self,
        wanted: &[(String, ContextKind)],
    ) -> Vec<Result<Option<Vec<fmn_delivery::Deliverable>>, String>> {
        let hook = fmn_delivery::Deliverable {
            address: HOOK.into(),
            secret: Some(fmn_delivery::Secret::new("s3cret")),
        };
        wanted
            .iter()
            .map(|_| Ok(Some(vec![hook.clone()])))
            .collect()
    }
}

/// Issue 18: before, every send read its address's secret (a `GetItem` of the owner's
/// preferences); now it comes with the batch's address check.
#[tokio::test]
async fn a_notification_is_signed_with_the_secret_of_the_batch_check() {
    let s = sender(Vec::new()).with_addresses(Book);
    let response = s.handle(event(&[job_of("one"), job_of("two")])).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    // The receiver checks the secret it was signed with.
    assert_eq!(received(&s).len(), 2);
    assert_eq!(*accounts(&s).secret_reads.lock().unwrap(), 0);
    // A confirmation is not covered by the check: its secret is read.
    let body = r#"{"confirmation": {"user": "alice", "context": "webhook",
        "address": "https://hooks.example.org/alice", "code": "482913", "expires_at": 1764000000}}"#;
    s.handle(event(&[body])).await;
    assert_eq!(*accounts(&s).secret_reads.lock().unwrap(), 1);
}

#[tokio::test]
async fn confirmation_posts_the_code() {
    let s = sender(Vec::new());
    let body = r#"{"confirmation": {"user": "alice", "context": "webhook",
        "address": "https://hooks.example.org/alice", "code": "482913", "expires_at": 1764000000}}"#;
    s.handle(event(&[body, body])).await;
    let received = received(&s);
    assert_eq!(received.len(), 1);
    assert!(matches!(&received[0], Payload::Confirmation { code: Some(c), .. } if c == "482913"));
}

#[test]
fn the_owner_is_told_by_email_if_they_can_be_else_in_their_feed() {
    let with_email: fmn_rules::Preferences = serde_json::from_value(serde_json::json!({
        "user": "alice",
        "contexts": {"email": {"addresses": [{"address": "alice@example.org", "confirmed": true}]}}
    }))
    .unwrap();
    let told = notices(&with_email, "https://h.example/x", "refused: 403", 7);
    assert_eq!(told[0].context, ContextKind::Email);
    assert_eq!(told[0].addresses, ["alice@example.org"]);
    assert_eq!(told[0].title, "fmn: your webhook was disabled");
    assert!(told[0].text.contains("https://h.example/x: refused: 403"));
    assert_eq!(told[1].context, ContextKind::Feed);
    let without: fmn_rules::Preferences =
        serde_json::from_value(serde_json::json!({"user": "bob"})).unwrap();
    let told = notices(&without, "https://h.example/x", "refused", 7);
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].context, ContextKind::Feed);
    assert_eq!(
        told[0].title,
        "Your webhook https://h.example/x was disabled"
    );
}
