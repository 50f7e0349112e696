use std::sync::Mutex;

use fmn_queue::NotificationJob;
use fmn_queue::test_util::{failed_ids, sqs_event as event};

use super::*;

/// Answers with the queued results, then success; keeps what it delivered.
#[derive(Default)]
struct Endpoint {
    results: Mutex<Vec<Result<(), PushError>>>,
    delivered: Mutex<Vec<Push>>,
}

impl Pusher for Endpoint {
    async fn push(&self, _url: &str, push: &Push) -> Result<(), PushError> {
        let next = {
            let mut r = self.results.lock().unwrap();
            if r.is_empty() { Ok(()) } else { r.remove(0) }
        };
        if next.is_ok() {
            self.delivered.lock().unwrap().push(push.clone());
        }
        next
    }
}

#[derive(Default)]
struct Disabled(Mutex<Vec<String>>);

impl Disable for Disabled {
    async fn disable(&self, _: &str, address: &str, reason: &str) -> Result<(), String> {
        self.0.lock().unwrap().push(format!("{address}: {reason}"));
        Ok(())
    }
}

type TestSender = PushSender<fmn_store::MemoryDeliveryLog, Endpoint, Disabled>;

fn sender(results: Vec<Result<(), PushError>>) -> TestSender {
    let endpoint = Endpoint::default();
    *endpoint.results.lock().unwrap() = results;
    Pipeline::new(
        PushChannel::new(endpoint, Disabled::default()),
        fmn_store::MemoryDeliveryLog::default(),
    )
}

fn job(id: &str) -> String {
    let mut job: NotificationJob = serde_json::from_str(include_str!(
        "../../../crates/fmn-queue/tests/fixtures/email-job.json"
    ))
    .unwrap();
    job.message.id = id.into();
    job.context = ContextKind::Push;
    job.addresses = vec!["https://ntfy.example.org/alice".into()];
    serde_json::to_string(&job).unwrap()
}

fn delivered(s: &TestSender) -> usize {
    s.channel().pusher().delivered.lock().unwrap().len()
}

#[tokio::test]
async fn throttled_then_delivered_once() {
    let s = sender(vec![Err(PushError::Throttled(Some(30)))]);
    assert_eq!(failed_ids(&s.handle(event(&[job("m1")])).await), ["r0"]);
    assert!(failed_ids(&s.handle(event(&[job("m1")])).await).is_empty());
    assert!(failed_ids(&s.handle(event(&[job("m1")])).await).is_empty());
    assert_eq!(delivered(&s), 1);
    assert!(s.channel().disabler.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_gone_endpoint_is_disabled_and_not_retried() {
    let s = sender(vec![Err(PushError::Gone(410))]);
    assert!(failed_ids(&s.handle(event(&[job("m1")])).await).is_empty());
    let disabled = s.channel().disabler.0.lock().unwrap().clone();
    assert_eq!(disabled.len(), 1);
    assert!(disabled[0].contains("410"), "{disabled:?}");
    // Recorded as done: a redelivery pushes nothing.
    assert!(failed_ids(&s.handle(event(&[job("m1")])).await).is_empty());
    assert_eq!(delivered(&s), 0);
}

#[tokio::test]
async fn a_rejected_push_is_not_retried_and_disables_nothing() {
    let s = sender(vec![Err(PushError::Rejected(401))]);
    assert!(failed_ids(&s.handle(event(&[job("m1")])).await).is_empty());
    assert!(s.channel().disabler.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_confirmation_pushes_its_code_once_and_a_gone_one_disables_nothing() {
    let s = sender(Vec::new());
    let body = r#"{"confirmation": {"user": "alice", "context": "push",
        "address": "https://ntfy.example.org/alice", "code": "482913", "expires_at": 1764000000}}"#;
    s.handle(event(&[body, body])).await;
    let pushes = s.channel().pusher().delivered.lock().unwrap().clone();
    assert_eq!(pushes.len(), 1);
    assert!(pushes[0].ntfy.message.contains("482913"));
    let s = sender(vec![Err(PushError::Gone(404))]);
    assert!(failed_ids(&s.handle(event(&[body])).await).is_empty());
    assert!(s.channel().disabler.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_job_of_another_context_is_refused() {
    let s = sender(Vec::new());
    let mut other: serde_json::Value = serde_json::from_str(&job("m1")).unwrap();
    other["context"] = "email".into();
    assert_eq!(
        failed_ids(&s.handle(event(&[other.to_string().as_str()])).await),
        ["r0"]
    );
    assert_eq!(delivered(&s), 0);
}
