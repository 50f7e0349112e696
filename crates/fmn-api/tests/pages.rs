//! The web app's pages over real HTTP, without a browser (the browser journey is
//! `tests/web.rs`): security headers, strangers sent to sign-in, a session reaching the same
//! authorisation as a token, CSRF on forms and on cookie-authenticated API writes, another
//! user's pages refused, sign-out ending the session. Sessions are made in the store, as
//! signing in makes them (the sign-in itself runs against the development OpenID provider
//! in `tests/web.rs`).
#![allow(clippy::unwrap_used)]
#![allow(dead_code)] // the shared support module serves several test files

mod support;

use reqwest::redirect::Policy;
use support::start_api;

#[tokio::test]
async fn pages_are_guarded_like_the_api() {
    let api = start_api(|_| {}).await;
    let base = api.base.clone();
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();

    // The landing page, with the security headers every page carries.
    let r = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert!(r.text().await.unwrap().contains("href=\"/sign-in\""));
    let css = http
        .get(format!("{base}/static/fmn.css"))
        .send()
        .await
        .unwrap();
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    // Strangers (no session, an unknown one) are sent to sign-in, and back afterwards.
    for cookie in ["", "fmn_session=unknown"] {
        let r = http
            .get(format!("{base}/users/alice/contexts/email"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(
            r.headers()["location"],
            "/sign-in?return_to=%2Fusers%2Falice%2Fcontexts%2Femail"
        );
    }
    // Without an issuer configured, signing in says so (503), in the same look.
    let r = http.get(format!("{base}/sign-in")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("not configured"));

    // A session, as signing in stores it.
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
    let cookie = format!("fmn_session={secret}");
    let get = |path: &str| {
        http.get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
    };
    let post = |path: &str, form: Vec<(&str, &str)>| {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+").replace('@', "%40")))
            .collect::<Vec<_>>()
            .join("&");
        http.post(format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = get("/").await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap()
        ),
        (303, "/users/alice")
    );
    let page = get("/users/alice").await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Signed in as <strong>alice</strong>"),
        "{page}"
    );
    assert!(page.contains(&format!("name=\"csrf\" value=\"{csrf}\"")));
    // The session reaches the API's authorisation.
    let me: serde_json::Value = get("/api/v1/me").await.unwrap().json().await.unwrap();
    assert_eq!(me["user"], "alice");

    // Forms without the token, or with another, change nothing.
    let add = "/users/alice/contexts/email/addresses";
    for form in [
        vec![("address", "a@example.org")],
        vec![("address", "a@example.org"), ("csrf", "forged")],
    ] {
        assert_eq!(post(add, form).await.unwrap().status(), 403);
    }
    assert!(
        get("/api/v1/users/alice/preferences")
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("\"contexts\":{}")
    );
    // A cookie-authenticated API write needs the token in X-CSRF-Token.
    let put = |csrf_header: Option<&str>| {
        let mut req = http
            .put(format!("{base}/api/v1/users/alice/contexts/feed"))
            .header("cookie", &cookie)
            .header("content-type", "application/json")
            .body("{}");
        if let Some(t) = csrf_header {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    assert_eq!(put(None).await.unwrap().status(), 403);
    assert_eq!(put(Some(csrf)).await.unwrap().status(), 200);

    // With the token: the form works, and a refused one names its field on the page.
    let r = post(add, vec![("address", "not an address"), ("csrf", csrf)])
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"address-error\""), "{page}");
    let r = post(
        "/users/alice/contexts/email/filters",
        vec![("name", "Kernel"), ("csrf", csrf)],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let editor = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(editor.starts_with("/users/alice/contexts/email/filters/"));
    let page = get(&editor).await.unwrap().text().await.unwrap();
    assert!(page.contains("Filter “Kernel”") && page.contains("Preview"));

    // Another user's pages: 403, nothing changes.
    assert_eq!(get("/users/bob").await.unwrap().status(), 403);
    let r = post(
        "/users/bob/contexts/email/filters",
        vec![("name", "x"), ("csrf", csrf)],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let bob = api.token("bob", false, None).await;
    assert_eq!(
        api.get("/api/v1/users/bob/preferences", &bob).await.1["contexts"],
        serde_json::json!({})
    );

    // Signing out ends the session.
    let r = post("/sign-out", vec![("csrf", csrf)]).await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("fmn_session=; Path=/; Max-Age=0")
    );
    assert_eq!(get("/users/alice").await.unwrap().status(), 303);
    api.stop().await;
}

/// A session for `user` made in the store, as signing in makes it: (cookie, CSRF token).
async fn session(api: &support::Api, user: &str) -> (String, String) {
    let secret = format!("a-session-secret-for-{user}");
    let csrf = format!("the-csrf-token-of-{user}");
    api.state
        .sessions()
        .create(&fmn_store::SessionRecord {
            hash: fmn_api::auth::hash_secret(&secret),
            user: user.into(),
            admin: false,
            csrf: csrf.clone(),
            expires_at: 4_000_000_000,
        })
        .await
        .unwrap();
    (format!("fmn_session={secret}"), csrf)
}

/// The pages a browser journey does not reach cheaply: an IRC address confirmed by typing
/// its code, filters reordered, an application picked from the catalog, and the history
/// (entries recorded as the senders record them).
#[tokio::test]
async fn codes_order_applications_and_history_work_in_the_pages() {
    let api = start_api(|c| c.deliveries_table = Some(format!("{}-deliveries", c.api_table))).await;
    let deliveries = format!("{}-deliveries", api.api_table);
    let key = aws_sdk_dynamodb::types::KeySchemaElement::builder()
        .attribute_name("pk")
        .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
        .build()
        .unwrap();
    let attr = aws_sdk_dynamodb::types::AttributeDefinition::builder()
        .attribute_name("pk")
        .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
        .build()
        .unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&api.aws);
    dynamo
        .create_table()
        .table_name(&deliveries)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(key)
        .attribute_definitions(attr)
        .send()
        .await
        .unwrap();
    let base = api.base.clone();
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let (cookie, csrf) = session(&api, "alice").await;
    let get = |path: &str| {
        http.get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
    };
    let post = |path: &str, form: Vec<(&str, &str)>| {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
            .collect::<Vec<_>>()
            .join("&");
        http.post(format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_owned();

    // IRC: the code the confirmation carries, typed into the page.
    let irc = "/users/alice/contexts/irc";
    let r = post(
        &format!("{irc}/addresses"),
        vec![("address", "alice_"), ("csrf", &csrf)],
    )
    .await
    .unwrap();
    assert_eq!(location(&r), format!("{irc}?ok=added"));
    let code = support::confirmation(api.job(&api.irc_queue).await)
        .code
        .unwrap();
    let confirm = format!("{irc}/addresses/alice_/confirm");
    let r = post(&confirm, vec![("code", "000000x"), ("csrf", &csrf)])
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("role=\"alert\""));
    let r = post(&confirm, vec![("code", &code), ("csrf", &csrf)])
        .await
        .unwrap();
    assert_eq!(location(&r), format!("{irc}?ok=confirmed"));
    let page = get(&format!("{irc}?ok=confirmed"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Address confirmed.") && page.contains(">confirmed<"),
        "{page}"
    );

    // Two filters, the second moved up; an application rule from the catalog's picker.
    let mut editors = Vec::new();
    for name in ["First", "Second"] {
        let r = post(
            &format!("{irc}/filters"),
            vec![("name", name), ("csrf", &csrf)],
        )
        .await
        .unwrap();
        editors.push(location(&r));
    }
    let page = get(irc).await.unwrap().text().await.unwrap();
    assert!(page.contains("aria-label=\"Move Second up\""), "{page}");
    let r = post(
        &format!("{}/move", editors[1]),
        vec![("direction", "up"), ("csrf", &csrf)],
    )
    .await
    .unwrap();
    assert_eq!(location(&r), format!("{irc}?ok=moved"));
    let token = api.token("alice", false, None).await;
    let (_, filters) = api
        .get("/api/v1/users/alice/contexts/irc/filters", &token)
        .await;
    let names: Vec<&str> = (filters.as_array().unwrap().iter())
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Second", "First"]);
    let page = get(&editors[0]).await.unwrap().text().await.unwrap();
    assert!(
        page.contains("<option value=\"bodhi\""),
        "the application catalog"
    );
    let r = post(
        &format!("{}/rules", editors[0]),
        vec![
            ("kind", "application"),
            ("value", ""),
            ("applications", "bodhi"),
            ("applications", "koji"),
            ("csrf", &csrf),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let (_, filter) = api.get(&format!("/api/v1{}", editors[0]), &token).await;
    assert_eq!(filter["rules"][0]["kind"], "application", "{filter}");
    assert_eq!(
        filter["rules"][0]["names"],
        serde_json::json!(["bodhi", "koji"])
    );

    // The history, as the senders record it: newest first, by context, on the pages.
    let log = fmn_store::HistoryLog::new(dynamo, &deliveries);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let entry = |at: i64, context: &str, state, reason: Option<&str>| fmn_store::HistoryEntry {
        at,
        user: "alice".into(),
        context: context.into(),
        message_id: format!("m-{at}"),
        topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
        app: "bodhi".into(),
        summary: format!("comment {at}"),
        link: Some("https://bodhi.fedoraproject.org/updates/x".into()),
        filters: vec![fmn_store::FiredFilter {
            id: "f-1".into(),
            name: "Update comments".into(),
        }],
        addresses: vec!["alice_".into()],
        state,
        reason: reason.map(Into::into),
    };
    assert!(
        log.record(&entry(
            now - 60,
            "email",
            fmn_store::HistoryState::Sent,
            None
        ))
        .await
        .unwrap()
    );
    let failed = entry(
        now,
        "irc",
        fmn_store::HistoryState::Failed,
        Some("alice_: no such nick"),
    );
    assert!(log.record(&failed).await.unwrap());
    let all: serde_json::Value = get("/api/v1/users/alice/history")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{all}");
    assert_eq!(entries[0]["state"], "failed");
    assert_eq!(entries[0]["reason"], "alice_: no such nick");
    assert_eq!(entries[1]["filters"][0]["name"], "Update comments");
    let irc_only: serde_json::Value = get("/api/v1/users/alice/history?context=irc&limit=5")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(irc_only["entries"].as_array().unwrap().len(), 1);
    for (query, field) in [("limit=0", "limit"), ("context=fax", "context")] {
        let r = get(&format!("/api/v1/users/alice/history?{query}"))
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["field"], field);
    }
    let page = get("/users/alice/history")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("href=\"/users/alice/contexts/email/filters/f-1\">Update comments</a>")
            && page.contains("alice_: no such nick")
            && page.contains(">sent<"),
        "{page}"
    );
    let overview = get("/users/alice").await.unwrap().text().await.unwrap();
    assert!(
        overview.contains(&format!("comment {now}")),
        "the overview's last notifications: {overview}"
    );
    assert_eq!(get("/users/bob/history").await.unwrap().status(), 403);

    // Issue 18: a batch's entries for one user and day are one request, and the day's cap
    // still holds exactly when a group does not fit whole.
    let max = fmn_store::HistoryLog::MAX_PER_DAY;
    let carol = |i: usize| fmn_store::HistoryEntry {
        user: "carol".into(),
        message_id: format!("c-{i}"),
        ..entry(now, "email", fmn_store::HistoryState::Sent, None)
    };
    let first: Vec<_> = (0..max - 1).map(carol).collect();
    assert_eq!(log.record_all(&first).await.unwrap(), 0);
    let more: Vec<_> = (max - 1..max + 2).map(carol).collect();
    assert_eq!(log.record_all(&more).await.unwrap(), 2, "one of three fits");
    assert_eq!(log.recent("carol", 1).await.unwrap().len(), max);
    assert_eq!(
        log.record_all(&more[..1]).await.unwrap(),
        1,
        "the day is full"
    );
    api.stop().await;
}

/// Issue 15: a phone (a push endpoint) is added on its context page and confirmed with the
/// code pushed to it, as IRC nicks are.
#[tokio::test]
async fn a_phone_is_added_and_confirmed_with_the_pushed_code() {
    let api = start_api(|_| {}).await;
    let base = api.base.clone();
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let (cookie, csrf) = session(&api, "alice").await;
    let post = |path: String, body: String| {
        http.post(format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let page = "/users/alice/contexts/push";
    let endpoint = "https://ntfy.sh/alice-phone";
    let encoded = "https%3A%2F%2Fntfy.sh%2Falice-phone";
    let r = post(
        format!("{page}/addresses"),
        format!("address={encoded}&csrf={csrf}"),
    )
    .await
    .unwrap();
    assert!(
        r.status().is_redirection() || r.status() == 200,
        "{}",
        r.status()
    );
    let job = support::confirmation(api.job(&api.push_queue).await);
    assert_eq!(job.address, endpoint);
    let code = job.code.expect("a code, pushed to the phone");
    let html = http
        .get(format!("{base}{page}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Phone (push)"), "{html}");
    assert!(html.contains(&format!("Code sent to {endpoint}")), "{html}");
    let r = post(
        format!("{page}/addresses/{encoded}/confirm"),
        format!("code={code}&csrf={csrf}"),
    )
    .await
    .unwrap();
    assert!(
        r.status().is_redirection() || r.status() == 200,
        "{}",
        r.status()
    );
    let t = api.token("alice", false, None).await;
    let (_, addresses) = api
        .get("/api/v1/users/alice/contexts/push/addresses", &t)
        .await;
    assert_eq!(addresses[0]["address"], endpoint);
    assert_eq!(addresses[0]["confirmed"], true);
    api.stop().await;
}
