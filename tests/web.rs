//! The web app in a real browser: Debian's Chromium driven over WebDriver (chromedriver on
//! a free loopback port, `fantoccini`), against the whole local system (moto, the deployed
//! template, the functions in the local runtime, the bridge, the development OpenID
//! provider). axe-core (installed by `localstack/bootstrap.sh` under `.node/`) checks every
//! page of the journey. One test, one moto, one browser: CI stays frugal. After the journey,
//! a second short pass on the same running system, in a session with JavaScript off, uses
//! the keyboard alone for its key steps (sign-in, the history, reordering filters).
#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

#[path = "web/browser.rs"]
mod browser;

use std::path::PathBuf;
use std::time::Duration;

use browser::{
    Driver, check_page, check_page_nojs, click, eventually, fill, tab_and_enter, text, text_becomes,
};
use fantoccini::Locator;
use fmn_e2e::{Harness, publish};
use serde_json::Value;
use zeromq::Socket as _;

const USER: &str = "alice";
const EMAIL: &str = "alice@example.org";

fn root() -> PathBuf {
    fmn_local::repo_root()
}

/// The bodhi comments of the demo traffic, with fresh message ids (`-<pass>`).
fn comments(pass: &str) -> Vec<Value> {
    fmn_local::demo::read_messages(&root().join("localstack/demo/messages.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|m| {
            m["topic"]
                .as_str()
                .unwrap_or("")
                .ends_with("bodhi.update.comment")
        })
        .map(|mut m| {
            let id = format!("{}-{pass}", m["msg_id"].as_str().unwrap());
            m["msg_id"] = id.into();
            m
        })
        .collect()
}

fn urlencoded(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn publish_all(socket: &mut zeromq::PubSocket, messages: &[Value]) {
    for m in messages {
        let topic = m["topic"].as_str().unwrap();
        publish(socket, topic, &serde_json::to_vec(m).unwrap())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_does_everything_in_the_browser() {
    let mut h = Harness::deploy(&[]).await.expect("emulator and stack");
    h.start_functions().await.unwrap();
    let port = fmn_emulator::free_port().unwrap();
    let mut bus = zeromq::PubSocket::new();
    bus.bind(&format!("tcp://127.0.0.1:{port}")).await.unwrap();
    h.start_bridge(vec![format!("tcp://127.0.0.1:{port}").parse().unwrap()])
        .unwrap();
    let issuer = fmn_local::standins::oidc::serve(
        0,
        vec![USER.into(), "bob".into()],
        Vec::new(),
        h.stop.clone(),
    )
    .await
    .unwrap();
    let mut config = fmn_local::api::config(&h.stack).unwrap();
    issuer.configure(&mut config);
    let (base, state) = fmn_e2e::start_api(&h.aws, config, h.stop.clone())
        .await
        .unwrap();
    // Yesterday's traffic, for the preview (the matcher logs what it sees).
    tokio::time::sleep(Duration::from_millis(1500)).await; // ZeroMQ's slow joiner
    publish_all(&mut bus, &comments("before")).await;

    let driver = Driver::start().await;
    let c = driver.browser(true).await;
    let mut report = Vec::new();

    // Sign in through the development OpenID provider: one button per user.
    c.goto(&base).await.unwrap();
    check_page(&c, "landing", &mut report).await;
    click(
        &c,
        "//a[normalize-space()='Sign in' and contains(@class,'button')]",
    )
    .await;
    click(&c, &format!("//button[normalize-space()='{USER}']")).await;
    assert_eq!(
        text_becomes(&c, "h1", "Your notifications").await,
        "Your notifications"
    );
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/users/alice")
    );
    check_page(&c, "overview", &mut report).await;

    // The first-run offer: the packager template.
    click(&c, "//button[contains(.,'packager template for email')]").await;
    assert!(text(&c, ".notice").await.contains("Template applied"));

    // An email address, confirmed through the link in the email SES accepted.
    fill(&c, "address", EMAIL).await;
    click(&c, "//button[normalize-space()='Add address']").await;
    assert!(
        text(&c, ".notice")
            .await
            .contains("confirmation is on its way")
    );
    check_page(&c, "context", &mut report).await;
    let mut link = None;
    assert!(
        eventually(120, async || {
            let emails = h.emails().await.unwrap_or_default();
            link = emails
                .iter()
                .filter(|e| e.to.iter().any(|t| t == EMAIL))
                .flat_map(|e| {
                    e.text
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .find(|w| w.starts_with(&format!("{base}/confirm/")));
            link.is_some()
        })
        .await,
        "no confirmation email"
    );
    c.goto(&link.unwrap()).await.unwrap();
    check_page(&c, "confirm", &mut report).await;
    click(&c, "//button[normalize-space()='Confirm']").await;
    assert_eq!(
        text_becomes(&c, "h1", "Address confirmed").await,
        "Address confirmed"
    );

    // A filter with two rules, one negated; a bad regex is refused next to its input.
    c.goto(&format!("{base}/users/{USER}/contexts/email"))
        .await
        .unwrap();
    assert!(
        text(&c, "#addresses + ul, .rows")
            .await
            .contains("confirmed")
    );
    fill(&c, "filter-name", "Update comments").await;
    click(&c, "//button[normalize-space()='Create filter']").await;
    let editor = c.current_url().await.unwrap();
    let select_kind = async |kind: &str| {
        c.find(Locator::Css(&format!("#kind option[value='{kind}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    };
    select_kind("topic_regex").await;
    fill(&c, "value", "(unclosed").await;
    // The script's as-you-type check blocks the submission; the server's check is the one
    // shown next to the field, so submit without the browser's validation.
    c.execute("document.querySelector('form[action$=\"/rules\"]').noValidate = true; document.getElementById('value').setCustomValidity('');", vec![]).await.unwrap();
    click(&c, "//button[normalize-space()='Add rule']").await;
    let error = text(&c, "#value-error").await;
    assert!(error.contains("regex"), "{error}");
    select_kind("topic").await;
    fill(&c, "value", "*.bodhi.update.comment").await;
    click(&c, "//button[normalize-space()='Add rule']").await;
    select_kind("agent").await;
    fill(&c, "value", "").await;
    c.find(Locator::Id("negate"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(&c, "//button[normalize-space()='Add rule']").await;
    let rules = text(&c, "ol.rows").await;
    assert!(
        rules.contains("topic") && rules.contains("not agent"),
        "{rules}"
    );
    // The preview: yesterday's bodhi comments match; others say which rule refused them.
    let matches = text(&c, "ul.matches").await;
    assert!(
        matches.contains("kalev") || matches.contains("comment"),
        "{matches}"
    );
    check_page(&c, "filter", &mut report).await;

    // Refusals, from outside the browser with the browser's own session cookie.
    let cookie = c.get_named_cookie("fmn_session").await.unwrap();
    let session = format!("fmn_session={}", cookie.value());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str, form: &[(&str, &str)]| {
        http.post(format!("{base}{path}"))
            .header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(urlencoded(form))
            .send()
    };
    // A cross-site form without the CSRF token changes nothing.
    let r = post(
        "/users/alice/contexts/irc/addresses",
        &[("address", "mallory")],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(
        "/users/alice/contexts/irc/addresses",
        &[("address", "mallory"), ("csrf", "forged")],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    // The API refuses a cookie-authenticated write without the CSRF header, too.
    let r = http
        .put(format!("{base}/api/v1/users/alice/contexts/irc"))
        .header("cookie", &session)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Another user's pages: 403, and nothing changes even with a valid token.
    let csrf = c
        .find(Locator::Css("input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let r = http
        .get(format!("{base}/users/bob"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(
        "/users/bob/contexts/email/addresses",
        &[("address", "x@example.org"), ("csrf", &csrf)],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let prefs = fmn_store::PreferenceTable::new(
        aws_sdk_dynamodb::Client::new(&h.aws),
        h.stack.output("PreferencesTableName").unwrap(),
    );
    assert!(
        prefs.get("bob").await.unwrap().is_none(),
        "bob's data changed"
    );
    let me = prefs.get(USER).await.unwrap().unwrap();
    assert!(
        !me.contexts.contains_key(&fmn_rules::ContextKind::Irc),
        "a forged form changed data"
    );
    // The session reaches the API's authorisation like a token does.
    let me_json: Value = http
        .get(format!("{base}/api/v1/me"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me_json["user"], USER);
    // An expired session is sent back to sign-in.
    let stale = "expired-session-secret";
    state
        .sessions()
        .create(&fmn_store::SessionRecord {
            hash: fmn_api::auth::hash_secret(stale),
            user: USER.into(),
            admin: false,
            csrf: "x".into(),
            expires_at: 1,
        })
        .await
        .unwrap();
    let r = http
        .get(format!("{base}/users/alice"))
        .header("cookie", format!("fmn_session={stale}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/sign-in?return_to=")
    );

    // Real traffic through the running system: the filter fires, by email.
    publish_all(&mut bus, &comments("after")).await;
    let mut subjects = Vec::new();
    assert!(
        eventually(160, async || {
            let emails = h.emails().await.unwrap_or_default();
            subjects = emails
                .iter()
                .filter(|e| e.to.iter().any(|t| t == EMAIL) && !e.subject.contains("onfirm"))
                .map(|e| (e.subject.clone(), e.text.clone()))
                .collect::<Vec<_>>();
            !subjects.is_empty()
        })
        .await,
        "no notification email"
    );
    let (_, body) = &subjects[0];
    assert!(
        body.contains("Update comments"),
        "the filter that fired is named: {body}"
    );
    // The history shows it, with the filter that fired; the overview, the last ones.
    let history = format!("{base}/users/{USER}/history");
    let mut seen = String::new();
    assert!(
        eventually(40, async || {
            c.goto(&history).await.unwrap();
            seen = text(&c, "main").await;
            seen.contains("Update comments") && seen.contains("sent")
        })
        .await,
        "the history: {seen}"
    );
    check_page(&c, "history", &mut report).await;
    c.goto(&format!("{base}/users/{USER}")).await.unwrap();
    assert!(text(&c, ".last").await.contains("sent"));
    assert!(
        // The senders' links use the deployed ApiBaseUrl, not this test's port.
        body.contains(&format!("/users/{USER}/contexts/email/filters/")),
        "{body}"
    );

    // Tokens and the feed URL.
    c.goto(&format!("{base}/users/{USER}/tokens"))
        .await
        .unwrap();
    fill(&c, "token-name", "script").await;
    click(&c, "//button[normalize-space()='Create token']").await;
    let secret = c
        .find(Locator::Id("new-token"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with("fmn_"));
    check_page(&c, "tokens", &mut report).await;

    // Sign out: the session is gone.
    click(&c, "//button[normalize-space()='Sign out']").await;
    assert!(text(&c, ".lead").await.contains("signed out"));
    let r = http
        .get(format!("{base}/users/alice"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the session outlived signing out");
    c.close().await.unwrap();

    // Again with JavaScript off and the keyboard alone (Tab to it, Enter), on the running
    // system: sign in, the history, reordering filters, the editor's preview; axe on each
    // (run by a second session on the same documents: see check_page_nojs).
    let nojs = driver.browser(false).await;
    let auditor = driver.browser(true).await;
    nojs.goto(&format!("{base}/sign-in")).await.unwrap();
    tab_and_enter(&nojs, "the sign-in button", |s| s == USER).await;
    assert_eq!(
        text_becomes(&nojs, "h1", "Your notifications").await,
        "Your notifications"
    );
    check_page_nojs(&nojs, &auditor, "overview-nojs", &mut report).await;
    tab_and_enter(&nojs, "the History link", |s| s == "History").await;
    assert!(
        text(&nojs, "table.history")
            .await
            .contains("Update comments")
    );
    check_page_nojs(&nojs, &auditor, "history-nojs", &mut report).await;
    nojs.goto(&format!("{base}/users/{USER}/contexts/email"))
        .await
        .unwrap();
    tab_and_enter(&nojs, "a filter's Down button", |s| {
        s.starts_with("Move ") && s.ends_with(" down")
    })
    .await;
    assert!(text(&nojs, ".notice").await.contains("order saved"));
    check_page_nojs(&nojs, &auditor, "context-nojs", &mut report).await;
    nojs.goto(editor.as_str()).await.unwrap();
    assert!(text(&nojs, "ul.matches").await.contains("comment"));
    check_page_nojs(&nojs, &auditor, "filter-nojs", &mut report).await;
    nojs.close().await.unwrap();
    auditor.close().await.unwrap();

    println!("axe-core 4.10.3:\n{}", report.join("\n"));
    drop(driver);
    h.shutdown().await;
}
