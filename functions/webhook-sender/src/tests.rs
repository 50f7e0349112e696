use std::collections::HashMap;
use std::sync::Mutex;

use aws_lambda_events::event::sqs::SqsMessage;

use super::*;

#[derive(Default)]
struct Memory {
    claims: Mutex<HashMap<String, bool>>,
    failures: Mutex<u64>,
    disabled: Mutex<Vec<String>>,
}

impl Accounts for Memory {
    async fn claim(&self, key: &str) -> anyhow::Result<Claim> {
        let mut map = self.claims.lock().unwrap();
        Ok(match map.get(key) {
            Some(true) => Claim::AlreadySent,
            Some(false) => Claim::InProgress,
            None => {
                map.insert(key.into(), false);
                Claim::Acquired
            }
        })
    }
    async fn mark_sent(&self, key: &str) -> anyhow::Result<()> {
        self.claims.lock().unwrap().insert(key.into(), true);
        Ok(())
    }
    async fn release(&self, key: &str) -> anyhow::Result<()> {
        self.claims.lock().unwrap().remove(key);
        Ok(())
    }
    async fn secret(&self, _: &str, _: &str, _: bool) -> anyhow::Result<Option<String>> {
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

fn event(bodies: &[String]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("r{i}"));
            m.body = Some(b.clone());
            m
        })
        .collect();
    event
}

fn job() -> String {
    let mut job: NotificationJob = serde_json::from_str(include_str!(
        "../../../crates/fmn-queue/tests/fixtures/email-job.json"
    ))
    .unwrap();
    job.context = ContextKind::Webhook;
    job.addresses = vec!["https://hooks.example.org/alice".into()];
    serde_json::to_string(&job).unwrap()
}

fn sender(results: Vec<Result<(), PostError>>) -> WebhookSender<Memory, Receiver> {
    let receiver = Receiver::default();
    *receiver.results.lock().unwrap() = results;
    WebhookSender::new(Memory::default(), receiver, fmn_digest::NoGate, 3)
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
    assert_eq!(s.poster.received.lock().unwrap().len(), 1);
    assert_eq!(*s.accounts.failures.lock().unwrap(), 0);
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
    let disabled = s.accounts.disabled.lock().unwrap().clone();
    assert_eq!(disabled.len(), 1);
    assert!(disabled[0].contains("3 consecutive failed deliveries"));
    assert!(
        s.handle(event(&[job()]))
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(s.poster.received.lock().unwrap().is_empty());
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
    assert_eq!(s.accounts.disabled.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn confirmation_posts_the_code() {
    let s = sender(Vec::new());
    let body = r#"{"confirmation": {"user": "alice", "context": "webhook",
        "address": "https://hooks.example.org/alice", "code": "482913", "expires_at": 1764000000}}"#;
    s.handle(event(&[body.into(), body.into()])).await;
    let received = s.poster.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert!(matches!(&received[0], Payload::Confirmation { code: Some(c), .. } if c == "482913"));
}
