//! Issue 18: the senders' AWS requests per notification, counted (`fmn-calls`) for the
//! email and webhook senders as deployed, against moto: a batch of ten notifications to ten
//! people. And the flood admissions of a batch as one `TransactWriteItems`, against moto's
//! DynamoDB: the cancellation's reasons name the windows that were fuller than hoped, and the
//! answers are exactly those of one conditional update per notification.

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use fmn_digest::{FloodAdmission, HeldStore};
use fmn_e2e::Harness;
use fmn_local::lambda::functions::{AwsConfigs, Function, build};
use fmn_rules::{ContextKind, Preferences};
use serde_json::{Value, json};

const PEOPLE: usize = 10;

fn secret_of(user: &str) -> String {
    format!("secret-of-{user}")
}

fn people(hook_url: &str) -> Vec<Preferences> {
    (0..PEOPLE)
        .map(|i| {
            let user = format!("user{i}");
            serde_json::from_value(json!({"user": user, "contexts": {
                "email": {"addresses": [{"address": format!("{user}@example.org"), "confirmed": true}]},
                "webhook": {"addresses": [{"address": format!("{hook_url}/{user}"), "confirmed": true,
                                           "secret": secret_of(&user)}]}
            }}))
            .unwrap()
        })
        .collect()
}

/// One notification job per person, for `context`.
fn jobs(context: &str, address: impl Fn(&str) -> String) -> Vec<String> {
    let template: Value = serde_json::from_str(include_str!(
        "../crates/fmn-queue/tests/fixtures/email-job.json"
    ))
    .unwrap();
    (0..PEOPLE)
        .map(|i| {
            let user = format!("user{i}");
            let mut job = template.clone();
            job["message"]["id"] = format!("requests-{context}-{i}").into();
            job["user"] = user.clone().into();
            job["context"] = context.into();
            job["addresses"] = json!([address(&user)]);
            job.to_string()
        })
        .collect()
}

/// The webhook receiver: each user's POSTs whose signature their own secret verifies.
async fn start_receiver(verified: Arc<Mutex<BTreeMap<String, usize>>>) -> String {
    let app = axum::Router::new().route(
        "/hook/{user}",
        axum::routing::post(
            move |axum::extract::Path(user): axum::extract::Path<String>,
                  headers: HeaderMap,
                  body: axum::body::Bytes| {
                let verified = verified.clone();
                async move {
                    let header = |name: &str| {
                        (headers.get(name).and_then(|v| v.to_str().ok()))
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let (ts, sig) = (
                        header(fmn_webhook::TIMESTAMP_HEADER),
                        header(fmn_webhook::SIGNATURE_HEADER),
                    );
                    if !fmn_webhook::verify(secret_of(&user).as_bytes(), &ts, &body, &sig) {
                        return StatusCode::UNAUTHORIZED;
                    }
                    *verified.lock().unwrap().entry(user).or_default() += 1;
                    StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Runs the deployed function `output` on one batch of `bodies`; the requests it made.
async fn run_batch(h: &Harness, output: &str, bodies: &[String]) -> fmn_calls::Counts {
    let Function::Sqs(handler) = build(&AwsConfigs::same(&h.aws), &h.stack, output)
        .await
        .unwrap()
        .1
    else {
        panic!("{output} is not an SQS function");
    };
    let component = format!("requests-test {output}");
    let before = fmn_calls::snapshot();
    let response = fmn_calls::scope(
        component.clone(),
        handler(fmn_queue::test_util::sqs_event(bodies), None),
    )
    .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    fmn_calls::snapshot()
        .since(&before)
        .of(|c| c == component.as_str())
}

fn ops(counts: &fmn_calls::Counts) -> BTreeMap<String, u64> {
    counts.by_operation()
}

fn expected(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// A batch of ten notifications to ten people: per batch one address check, one flood
/// transaction, one claim transaction and one mark; per notification the send (email) or
/// the failure counter's reset (webhook), and the history entry. 2.4 requests each (before:
/// 3.3 for email, 4.2 for webhooks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_ten_costs_two_point_four_requests_a_notification() {
    let verified = Arc::new(Mutex::new(BTreeMap::new()));
    let hook_url = start_receiver(verified.clone()).await;
    let h = Harness::deploy(&people(&hook_url))
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    h.set_function_env(
        "WebhookSenderFunctionName",
        &[("FMN_WEBHOOK_ALLOW_PRIVATE", "1")],
    )
    .await
    .unwrap();

    let email = run_batch(
        &h,
        "EmailSenderFunctionName",
        &jobs("email", |u| format!("{u}@example.org")),
    )
    .await;
    println!(
        "email: {} requests for {PEOPLE} notifications ({:.2} each): {email}",
        email.total(),
        email.total() as f64 / PEOPLE as f64
    );
    assert_eq!(h.emails().await.unwrap().len(), PEOPLE);
    assert_eq!(
        ops(&email),
        expected(&[
            ("DynamoDB.BatchGetItem", 1),       // the addresses, still deliverable
            ("DynamoDB.TransactWriteItems", 2), // the flood admissions; the claims
            ("DynamoDB.BatchWriteItem", 1),     // the marks
            ("DynamoDB.UpdateItem", 10),        // the history, one per person
            ("SESv2.SendEmail", 10),
        ])
    );

    let webhook = run_batch(
        &h,
        "WebhookSenderFunctionName",
        &jobs("webhook", |u| format!("{hook_url}/{u}")),
    )
    .await;
    println!(
        "webhook: {} requests for {PEOPLE} notifications ({:.2} each): {webhook}",
        webhook.total(),
        webhook.total() as f64 / PEOPLE as f64
    );
    // Each signed with its owner's secret, read by the batch's address check.
    let verified = verified.lock().unwrap().clone();
    assert_eq!(verified.len(), PEOPLE, "{verified:?}");
    assert!(verified.values().all(|n| *n == 1), "{verified:?}");
    assert_eq!(
        ops(&webhook),
        expected(&[
            ("DynamoDB.BatchGetItem", 1), // the addresses and their secrets
            ("DynamoDB.TransactWriteItems", 2),
            ("DynamoDB.BatchWriteItem", 1),
            ("DynamoDB.UpdateItem", 10),
            ("DynamoDB.DeleteItem", 10), // the failure counter's reset after each success
        ])
    );
    h.shutdown().await;
}

/// The flood admissions of a batch in one transaction: a window fuller than hoped cancels
/// it, the reasons return that window's item, and the second transaction writes exactly what
/// one `admit_once` per notification would have admitted. Again, the same batch is
/// answered the same from the windows the first transaction returns, writing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_flood_admissions_is_one_transaction() {
    let h = Harness::deploy(&[])
        .await
        .expect("emulator and stack (run localstack/bootstrap.sh)");
    let store = HeldStore::new(
        fmn_calls::client!(aws_sdk_dynamodb, &h.aws),
        h.stack.output("HeldTableName").unwrap(),
    );
    let (window, max, start) = (300, 3, 1_800_000_000);
    let email = ContextKind::Email;
    // ann's window already admitted m0.
    assert!(
        store
            .admit_once("ann", email, start, window, "m0", max)
            .await
            .unwrap()
    );
    let ask = |user: &'static str, id: &'static str| FloodAdmission {
        user,
        context: email,
        window_start: start,
        message_id: id,
    };
    let batch = [
        ask("ann", "m0"), // redelivered: admitted again, not counted twice
        ask("ann", "m1"),
        ask("bob", "b0"),
        ask("ann", "m2"),
        ask("ann", "m3"), // the fourth in ann's window
        ask("bob", "b1"),
        ask("bob", "b0"), // twice in the batch: the same answer
        ask("cy", "c0"),
        ask("cy", "c1"),
        ask("cy", "c2"),
        ask("cy", "c3"), // more than the limit at once
        ask("cy", "c4"),
    ];
    let want = [
        true, true, true, true, false, true, true, true, true, true, false, false,
    ];
    let (store, batch) = (&store, &batch);
    let counted = |name: &'static str| async move {
        let before = fmn_calls::snapshot();
        let answers: Vec<bool> = fmn_calls::scope(name, store.admit_all(batch, window, max))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let calls = fmn_calls::snapshot().since(&before).of(|c| c == name);
        (answers, ops(&calls))
    };
    let (answers, calls) = counted("flood-first").await;
    assert_eq!(answers, want);
    // ann's window was fuller than hoped: cancelled, then written as seen.
    assert_eq!(calls, expected(&[("DynamoDB.TransactWriteItems", 2)]));
    let (answers, calls) = counted("flood-again").await;
    assert_eq!(answers, want);
    // Every window is fuller than hoped now; their items decide without a write.
    assert_eq!(calls, expected(&[("DynamoDB.TransactWriteItems", 1)]));
    // The windows hold what one admission each would have left: bob has room for one more.
    let one = |user: &'static str, id: &'static str| {
        store.admit_once(user, email, start, window, id, max)
    };
    assert!(!one("ann", "m4").await.unwrap());
    assert!(one("bob", "b2").await.unwrap());
    assert!(!one("bob", "b3").await.unwrap());
    assert!(!one("cy", "c5").await.unwrap());
    assert!(one("cy", "c1").await.unwrap());
    h.shutdown().await;
}
