//! Issue 18: the flood admissions of a batch as one `TransactWriteItems`, against moto's
//! DynamoDB: the cancellation's reasons name the windows that were fuller than hoped, and the
//! answers are exactly those of one conditional update per notification.

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use std::collections::BTreeMap;

use fmn_digest::{FloodAdmission, HeldStore};
use fmn_e2e::Harness;
use fmn_rules::ContextKind;

fn ops(counts: &fmn_calls::Counts) -> BTreeMap<String, u64> {
    counts.by_operation()
}

fn expected(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
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
