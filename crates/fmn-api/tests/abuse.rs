//! What one signed-in user could do to others or to fmn (issue 17, items 7, 9 and 10), over
//! real HTTP on 127.0.0.1 against the shared moto server: confirmation floods, parallel code
//! guesses, concurrent writes undoing each other, tokens minting longer-lived tokens,
//! addresses too long for DynamoDB's keys.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)] // the shared support module serves several test files

mod support;

use fmn_rules::ContextKind;
use reqwest::Method;
use serde_json::{Value, json};

use support::{Api, start_api};

const ALICE: &str = "/api/v1/users/alice";

/// Adds an IRC address; the status and body.
async fn add_irc(api: &Api, token: &str, user_path: &str, nick: &str) -> (u16, Value, String) {
    let (s, v, h) = api
        .raw(
            Method::POST,
            &format!("{user_path}/contexts/irc/addresses"),
            Some(token),
            Some(json!({ "address": nick }).to_string()),
            &[],
        )
        .await;
    let retry = h
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (s, v, retry)
}

/// Jobs on a queue now (waits a second for the first), deleted.
async fn drain(api: &Api, url: &str) -> usize {
    let sqs = aws_sdk_sqs::Client::new(&api.aws);
    let mut n = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return n;
        }
        for m in messages {
            n += 1;
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// Item 7. Before: every add (or remove and add again) sent a new confirmation, so any
/// account could make fmn mail-bomb an address or spam a nick.
#[tokio::test]
async fn confirmations_are_limited_per_address_and_per_user() {
    let api = start_api(|c| c.confirmation_limits.user_daily = 3).await;
    let alice = api.token("alice", false, None).await;
    let bob = api.token("bob", false, None).await;
    let (s, v, _) = add_irc(&api, &alice, ALICE, "victim").await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(drain(&api, &api.irc_queue).await, 1);

    // Removing and adding again, or another account adding it: no second message.
    let del = format!("{ALICE}/contexts/irc/addresses/victim");
    assert_eq!(api.call(Method::DELETE, &del, &alice, None).await.0, 204);
    for (token, user_path) in [(&alice, ALICE), (&bob, "/api/v1/users/bob")] {
        let (s, v, retry) = add_irc(&api, token, user_path, "victim").await;
        assert_eq!(
            (s, v["error"].as_str(), v["field"].as_str()),
            (429, Some("rate_limited"), Some("address")),
            "{v}"
        );
        let wait: i64 = retry.parse().unwrap();
        assert!((1..=600).contains(&wait), "Retry-After {retry}");
        assert_eq!(v["retry_after"].as_i64(), Some(wait));
        assert!(
            v["message"].as_str().unwrap().contains("per 600 seconds"),
            "{v}"
        );
    }
    assert_eq!(drain(&api, &api.irc_queue).await, 0, "a confirmation flood");

    // Per user: 3 a day here (the refused ones above did not count).
    for nick in ["second", "third"] {
        assert_eq!(add_irc(&api, &alice, ALICE, nick).await.0, 202);
    }
    let (s, v, retry) = add_irc(&api, &alice, ALICE, "fourth").await;
    assert_eq!((s, v["field"].as_str()), (429, Some("address")), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("3 confirmations today"),
        "{v}"
    );
    assert!(retry.parse::<i64>().unwrap() <= 86_400);
    assert_eq!(drain(&api, &api.irc_queue).await, 2);

    // The web app shows the limit next to the address field.
    let secret = "a-session-secret-for-alice";
    let csrf = "the-csrf-token-of-this-session";
    api.state
        .sessions()
        .create(&fmn_store::SessionRecord {
            hash: fmn_api::auth::hash_secret(secret),
            user: "alice".into(),
            admin: false,
            csrf: csrf.into(),
            expires_at: 4_000_000_000,
        })
        .await
        .unwrap();
    let page = api
        .http
        .post(format!("{}/users/alice/contexts/irc/addresses", api.base))
        .header("cookie", format!("fmn_session={secret}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("address=victim&csrf={csrf}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let error = page
        .split("id=\"address-error\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no error next to the address field: {page}"));
    assert!(error.contains("retry in"), "{error}");
    api.stop().await;
}

/// Item 7. Before: the attempt count was read, then incremented, so parallel guesses all
/// counted as "below the limit", and adding the address again reset the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_code_guesses_all_count_and_adding_again_resets_nothing() {
    let api = start_api(|c| c.confirmation_limits.address_interval_secs = 0).await;
    let alice = api.token("alice", false, None).await;
    let right = api.irc_code(&alice, ALICE, "guessed").await;
    let confirm = format!("{ALICE}/contexts/irc/addresses/guessed/confirm");
    let right_number: u32 = right.parse().unwrap();
    let guesses = (0..20).map(|i| {
        let (api, alice, confirm) = (&api, &alice, &confirm);
        async move {
            let code = format!("{:08}", (right_number + 1 + i) % 100_000_000);
            let (s, v) = api
                .call(Method::POST, confirm, alice, Some(json!({ "code": code })))
                .await;
            (s, v["field"].as_str().map(str::to_owned))
        }
    });
    let answers = futures::future::join_all(guesses).await;
    let count = |status| answers.iter().filter(|(s, _)| *s == status).count();
    assert_eq!((count(422), count(429)), (5, 15), "{answers:?}");
    assert!(answers.iter().all(|(_, f)| f.as_deref() == Some("code")));
    let counted =
        fmn_store::ConfirmationStore::new(aws_sdk_dynamodb::Client::new(&api.aws), &api.api_table)
            .wrong_codes("alice", ContextKind::Irc, "guessed")
            .await
            .unwrap();
    assert_eq!(counted, 5, "wrong codes counted in the table");
    println!("20 parallel wrong guesses: 5 checked (422), 15 refused (429), 5 counted");

    // The right code no longer helps, nor does removing and adding the address again.
    let (s, _) = api
        .call(
            Method::POST,
            &confirm,
            &alice,
            Some(json!({ "code": right })),
        )
        .await;
    assert_eq!(s, 429);
    let del = format!("{ALICE}/contexts/irc/addresses/guessed");
    assert_eq!(api.call(Method::DELETE, &del, &alice, None).await.0, 204);
    let fresh = api.irc_code(&alice, ALICE, "guessed").await;
    let (s, v) = api
        .call(
            Method::POST,
            &confirm,
            &alice,
            Some(json!({ "code": fresh })),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (429, Some("rate_limited")), "{v}");
    api.stop().await;
}

/// The email context's filters: (id, active), by id.
async fn filters(api: &Api, token: &str) -> Vec<(String, bool)> {
    let (_, v) = api
        .get(&format!("{ALICE}/contexts/email/filters"), token)
        .await;
    let mut out: Vec<(String, bool)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["active"].as_bool().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Item 9. Before: every write was read-modify-write without a condition, so of concurrent
/// writes the last one stored undid the others (a deactivation, a new filter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_lose_no_change_and_stale_if_match_gets_412() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    let f = format!("{ALICE}/contexts/email/filters");
    let created = api
        .call(
            Method::POST,
            &f,
            &t,
            Some(json!({"id": "watch", "name": "watch", "rules": [{"kind": "topic", "glob": "*.bodhi.*"}]})),
        )
        .await;
    assert_eq!(created.0, 201, "{}", created.1);

    // Rounds of one unsubscribe-like change (deactivating a filter) racing new filters.
    let mut conflicts = 0;
    for round in 0..3 {
        let active = round % 2 == 1;
        let deactivate = async {
            api.call(
                Method::PATCH,
                &format!("{f}/watch"),
                &t,
                Some(json!({ "active": active })),
            )
            .await
            .0
        };
        let adds = (0..3).map(|i| {
            let (api, t, f) = (&api, &t, &f);
            async move {
                let id = format!("r{round}-{i}");
                let (s, _) = api
                    .call(Method::POST, f, t, Some(json!({ "id": id, "name": id })))
                    .await;
                (id, s)
            }
        });
        let (patched, added) = tokio::join!(deactivate, futures::future::join_all(adds));
        let now = filters(&api, &t).await;
        // Each change the API accepted is stored; 409 only says "retry", never loses one.
        assert!([200, 409].contains(&patched), "{patched}");
        if patched == 200 {
            assert!(now.contains(&("watch".into(), active)), "{now:?}");
        }
        for (id, s) in added {
            assert!([201, 409].contains(&s), "{id}: {s}");
            assert_eq!(
                now.iter().any(|(f, _)| *f == id),
                s == 201,
                "{id} answered {s}: {now:?}"
            );
            conflicts += usize::from(s == 409);
        }
    }
    println!("3 rounds of 4 concurrent writes: {conflicts} answered 409, no change lost");

    // Two writers with the same fresh ETag: one wins, the other gets 412.
    let (_, _, headers) = api
        .raw(
            Method::GET,
            &format!("{ALICE}/preferences"),
            Some(&t),
            None,
            &[],
        )
        .await;
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let patch = |name: &'static str| {
        let (api, t, f, etag) = (&api, &t, &f, &etag);
        async move {
            api.raw(
                Method::PATCH,
                &format!("{f}/watch"),
                Some(t),
                Some(json!({ "name": name }).to_string()),
                &[("if-match", etag)],
            )
            .await
            .0
        }
    };
    let (a, b) = tokio::join!(patch("first"), patch("second"));
    let mut statuses = [a, b];
    statuses.sort();
    assert_eq!(statuses, [200, 412]);
    api.stop().await;
}

/// Item 10. Before: a personal token could mint a token living a year, whatever its own
/// expiry, so a leaked short-lived token could make itself permanent.
#[tokio::test]
async fn a_token_cannot_mint_one_that_outlives_it() {
    let api = start_api(|_| {}).await;
    let short = api.token("alice", false, Some(600)).await;
    let (s, created) = api
        .call(
            Method::POST,
            &format!("{ALICE}/tokens"),
            &short,
            Some(json!({"name": "longer", "expires_in_secs": 365 * 24 * 3600})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let (_, list) = api.get(&format!("{ALICE}/tokens"), &short).await;
    let expiry = |name: Option<&str>| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"].as_str() == name)
            .and_then(|t| t["expires_at"].as_i64())
            .unwrap()
    };
    let minted = created["expires_at"].as_i64().unwrap();
    assert_eq!(minted, expiry(Some("longer")));
    assert!(
        minted <= expiry(None),
        "minted {minted} outlives its minter {}",
        expiry(None)
    );
    // A token that never expires (an operator's) mints as asked.
    let forever = api.token("bob", false, None).await;
    let (s, created) = api
        .call(
            Method::POST,
            "/api/v1/users/bob/tokens",
            &forever,
            Some(json!({"expires_in_secs": 7200})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    api.stop().await;
}

/// Item 10. Addresses become part of DynamoDB keys (2,048 bytes for a partition key, 1,024
/// for a sort key): the API refuses a longer one naming the field, and the table refuses
/// a document holding one from any writer (an import, `fmn prefs put`).
#[tokio::test]
async fn addresses_too_long_for_keys_are_refused() {
    let api = start_api(|c| {
        c.context_queues.insert(
            ContextKind::Webhook,
            c.context_queues[&ContextKind::Email].clone(),
        );
    })
    .await;
    let t = api.token("alice", false, None).await;
    let long = format!("https://hooks.example.org/{}", "a".repeat(2100));
    let (s, v) = api
        .call(
            Method::POST,
            &format!("{ALICE}/contexts/webhook/addresses"),
            &t,
            Some(json!({ "address": long })),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("address")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("500 bytes"), "{v}");

    let prefs: fmn_rules::Preferences = serde_json::from_value(json!({"user": "alice",
        "contexts": {"webhook": {"addresses": [{"address": long, "confirmed": true}]}}}))
    .unwrap();
    let table =
        fmn_store::PreferenceTable::new(aws_sdk_dynamodb::Client::new(&api.aws), &api.prefs_table);
    let stored = table.put(&prefs).await;
    assert!(
        matches!(&stored, Err(fmn_store::StoreError::Corrupt { problem, .. }) if problem.contains("500")),
        "{stored:?}"
    );
    assert!(table.get("alice").await.unwrap().is_none());
    api.stop().await;
}
