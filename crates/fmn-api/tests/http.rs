//! The HTTP API over real HTTP on 127.0.0.1, against a real moto server: every operation,
//! every error class, cross-user access, token expiry and revocation, confirmation expiry
//! and reuse, OpenID Connect tokens from a local issuer.
//!
//! Needs the project venv's moto server (`localstack/bootstrap.sh` installs it): one server,
//! started on a free loopback port by the first test that needs it, serves every test of
//! this file (see `support`); each test creates the API's tables and two context queues of
//! its own, the way the template creates them.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use fmn_rules::ContextKind;
use reqwest::Method;
use serde_json::{Value, json};

use support::{Api, LINK_SECRET, confirmation, start_api};

#[tokio::test]
async fn personal_tokens_authenticate_expire_and_revoke() {
    let api = start_api(|_| {}).await;
    // No token, a malformed header, an unknown token.
    let (s, v, _) = api.raw(Method::GET, "/api/v1/me", None, None, &[]).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("unauthorized")));
    let (s, _, _) = api
        .raw(
            Method::GET,
            "/api/v1/me",
            None,
            None,
            &[("authorization", "Basic x")],
        )
        .await;
    assert_eq!(s, 401);
    assert_eq!(api.get("/api/v1/me", "fmn_nope").await.0, 401);
    assert_eq!(api.get("/api/v1/me", "not-a-jwt").await.0, 401);

    let alice = api.token("alice", false, Some(3600)).await;
    let (s, me) = api.get("/api/v1/me", &alice).await;
    assert_eq!((s, me), (200, json!({"user": "alice", "admin": false})));

    // Minting through the API: shown once, listed without the secret, usable, revocable.
    let (s, created) = api
        .call(
            Method::POST,
            "/api/v1/users/alice/tokens",
            &alice,
            Some(json!({"name": "script", "expires_in_secs": 600})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("fmn_"));
    let (s, list) = api.get("/api/v1/users/alice/tokens", &alice).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&secret),
        "a listed token shows its secret"
    );
    assert_eq!(api.get("/api/v1/me", &secret).await.0, 200);
    let id = created["id"].as_str().unwrap();
    let (s, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/users/alice/tokens/{id}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        api.get("/api/v1/me", &secret).await.0,
        401,
        "revoked token still works"
    );
    let (s, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/users/alice/tokens/{id}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(s, 404);

    // Bad token requests.
    for (body, code) in [
        (json!({"expires_in_secs": 5}), 422),
        (json!({"name": ""}), 422),
        (json!({"name": "x".repeat(101)}), 422),
        (json!({"admin": true}), 400),
    ] {
        let (s, v) = api
            .call(
                Method::POST,
                "/api/v1/users/alice/tokens",
                &alice,
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, code, "{body} -> {v}");
    }

    // Expiry: a token past its expiry is refused.
    let short = api.token("alice", false, Some(1)).await;
    assert_eq!(api.get("/api/v1/me", &short).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        api.get("/api/v1/me", &short).await.0,
        401,
        "expired token still works"
    );

    // Someone else's tokens: neither listed, minted nor revoked.
    let bob = api.token("bob", false, None).await;
    assert_eq!(api.get("/api/v1/users/alice/tokens", &bob).await.0, 403);
    let (s, _) = api
        .call(
            Method::POST,
            "/api/v1/users/alice/tokens",
            &bob,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 403);
    let (_, list) = api.get("/api/v1/users/alice/tokens", &alice).await;
    let first = list[0]["id"].as_str().unwrap();
    let (s, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/users/alice/tokens/{first}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(api.get("/api/v1/me", &alice).await.0, 200);
    // Admins see everyone's.
    let admin = api.token("root", true, None).await;
    assert_eq!(api.get("/api/v1/users/alice/tokens", &admin).await.0, 200);
    assert_eq!(api.get("/api/v1/users", &alice).await.0, 403);
    api.stop().await;
}

/// A local OpenID Connect issuer on 127.0.0.1 serving discovery and the fixture JWKS.
async fn issuer() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let jwks: Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/api/jwks.json")).unwrap();
    let discovery = json!({"issuer": base, "jwks_uri": format!("{base}/jwks")});
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || async move { axum::Json(jwks) }),
        );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    base
}

fn jwt(key_pem: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[tokio::test]
async fn openid_connect_access_tokens_are_verified() {
    let iss = issuer().await;
    let iss2 = iss.clone();
    let api = start_api(move |c| {
        c.oidc = Some(fmn_api::OidcConfig {
            issuer: iss2,
            audience: Some("fmn".into()),
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
        });
        c.admin_groups = vec!["sysadmin-main".into()];
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = include_str!("../../../tests/fixtures/api/issuer-key.pem");
    let claims = |user: &str, groups: Value, aud: &str, exp: u64| {
        json!({"iss": iss, "aud": aud, "exp": exp, "iat": now,
               "preferred_username": user, "groups": groups})
    };
    let good = jwt(key, &claims("alice", json!(["packager"]), "fmn", now + 600));
    let (s, me) = api.get("/api/v1/me", &good).await;
    assert_eq!((s, me), (200, json!({"user": "alice", "admin": false})));
    let admin = jwt(
        key,
        &claims("carol", json!(["sysadmin-main"]), "fmn", now + 600),
    );
    assert_eq!(api.get("/api/v1/me", &admin).await.1["admin"], true);
    assert_eq!(api.get("/api/v1/users", &admin).await.0, 200);
    // A signed-in user mints a personal token for scripts.
    let (s, created) = api
        .call(
            Method::POST,
            "/api/v1/users/alice/tokens",
            &good,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        api.get("/api/v1/me", created["token"].as_str().unwrap())
            .await
            .1["user"],
        "alice"
    );
    // Refused: wrong audience, expired, another key, tampered, no username claim.
    let refused = [
        jwt(key, &claims("alice", json!([]), "other", now + 600)),
        jwt(key, &claims("alice", json!([]), "fmn", now - 600)),
        jwt(
            include_str!("../../../tests/fixtures/api/other-key.pem"),
            &claims("alice", json!([]), "fmn", now + 600),
        ),
        format!("{}x", good),
        jwt(key, &json!({"iss": iss, "aud": "fmn", "exp": now + 600})),
    ];
    for t in refused {
        let (s, v) = api.get("/api/v1/me", &t).await;
        assert_eq!(s, 401, "{v}");
    }
    api.stop().await;
}

/// alice's email context with two filters, `kernel` (an artifact and "not my actions") and
/// a Bodhi one: the state the filter tests start from. Returns the Bodhi filter's id.
async fn alice_with_two_filters(api: &Api, t: &str) -> String {
    let u = "/api/v1/users/alice";
    let (s, ctx) = api
        .call(
            Method::PUT,
            &format!("{u}/contexts/email"),
            t,
            Some(json!({"settings": {"digest_interval_secs": 3600, "verbose": true}})),
        )
        .await;
    assert_eq!(s, 200, "{ctx}");
    let f = format!("{u}/contexts/email/filters");
    let (s, kernel) = api
        .call(
            Method::POST,
            &f,
            t,
            Some(json!({"id": "kernel", "name": "Kernel", "rules": [
            {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]},
            {"kind": "agent", "negate": true}]})),
        )
        .await;
    assert_eq!(s, 201, "{kernel}");
    let (s, other) = api
        .call(
            Method::POST,
            &f,
            t,
            Some(json!({"name": "Bodhi", "rules": [
            {"kind": "topic", "glob": "*.bodhi.*"}]})),
        )
        .await;
    assert_eq!(s, 201, "{other}");
    other["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn contexts_are_created_with_settings() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    let u = "/api/v1/users/alice";
    let (s, prefs) = api.get(&format!("{u}/preferences"), &t).await;
    assert_eq!((s, prefs), (200, json!({"user": "alice", "contexts": {}})));
    assert_eq!(api.get(&format!("{u}/contexts/email"), &t).await.0, 404);

    // Context: create with settings, then change them.
    let (s, ctx) = api
        .call(
            Method::PUT,
            &format!("{u}/contexts/email"),
            &t,
            Some(json!({"settings": {"digest_interval_secs": 3600, "verbose": true}})),
        )
        .await;
    assert_eq!(s, 200, "{ctx}");
    assert_eq!(ctx["enabled"], true);
    assert_eq!(ctx["settings"]["digest_interval_secs"], 3600);
    api.stop().await;
}

#[tokio::test]
async fn filters_are_created_read_and_patched() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    let f = "/api/v1/users/alice/contexts/email/filters";
    let (s, kernel) = api
        .call(
            Method::POST,
            f,
            &t,
            Some(json!({"id": "kernel", "name": "Kernel", "rules": [
            {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]},
            {"kind": "agent", "negate": true}]})),
        )
        .await;
    assert_eq!(s, 201, "{kernel}");
    assert_eq!(kernel["active"], true);
    let (s, other) = api
        .call(
            Method::POST,
            f,
            &t,
            Some(json!({"name": "Bodhi", "rules": [
            {"kind": "topic", "glob": "*.bodhi.*"}]})),
        )
        .await;
    assert_eq!(s, 201);
    assert!(other["id"].is_string(), "{other}");
    let (s, v) = api
        .call(
            Method::POST,
            f,
            &t,
            Some(json!({"id": "kernel", "name": "again"})),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (409, Some("id")));
    let (s, got) = api.get(&format!("{f}/kernel"), &t).await;
    assert_eq!((s, &got), (200, &kernel));
    let (s, patched) = api
        .call(
            Method::PATCH,
            &format!("{f}/kernel"),
            &t,
            Some(json!({"name": "Linux", "active": false, "oneshot": true})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            patched["name"].as_str(),
            patched["active"].as_bool(),
            patched["oneshot"].as_bool()
        ),
        (Some("Linux"), Some(false), Some(true))
    );
    api.stop().await;
}

#[tokio::test]
async fn rules_are_added_replaced_and_removed_by_position() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    alice_with_two_filters(&api, &t).await;
    let f = "/api/v1/users/alice/contexts/email/filters";
    let (s, with_rule) = api
        .call(
            Method::POST,
            &format!("{f}/kernel/rules"),
            &t,
            Some(json!({"kind": "severity", "levels": ["error"]})),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(with_rule["rules"].as_array().unwrap().len(), 3);
    let (s, replaced) = api
        .call(
            Method::PUT,
            &format!("{f}/kernel/rules/2"),
            &t,
            Some(json!({"kind": "severity", "levels": ["warning", "error"]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(replaced["rules"][2]["levels"], json!(["warning", "error"]));
    let (s, removed) = api
        .call(Method::DELETE, &format!("{f}/kernel/rules/2"), &t, None)
        .await;
    assert_eq!((s, removed["rules"].as_array().unwrap().len()), (200, 2));
    assert_eq!(
        api.call(Method::DELETE, &format!("{f}/kernel/rules/9"), &t, None)
            .await
            .0,
        404
    );
    api.stop().await;
}

#[tokio::test]
async fn filters_are_reordered_only_as_a_whole() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    let other_id = alice_with_two_filters(&api, &t).await;
    let order_url = "/api/v1/users/alice/contexts/email/filter-order";
    let (s, order) = api
        .call(
            Method::PUT,
            order_url,
            &t,
            Some(json!({"ids": [other_id, "kernel"]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(order[1]["id"], "kernel");
    let (s, v) = api
        .call(Method::PUT, order_url, &t, Some(json!({"ids": ["kernel"]})))
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("ids")));
    api.stop().await;
}

#[tokio::test]
async fn contexts_are_copied_and_templates_applied() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    alice_with_two_filters(&api, &t).await;
    let u = "/api/v1/users/alice";
    let (s, irc) = api
        .call(
            Method::POST,
            &format!("{u}/contexts/email/copy"),
            &t,
            Some(json!({"to": "irc"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(irc["filters"].as_array().unwrap().len(), 2);
    let (s, tpl) = api
        .call(
            Method::POST,
            &format!("{u}/contexts/irc/templates/packager"),
            &t,
            None,
        )
        .await;
    assert_eq!(s, 200, "{tpl}");
    assert_eq!(tpl["filters"].as_array().unwrap().len(), 4);
    assert_eq!(
        api.call(
            Method::POST,
            &format!("{u}/contexts/irc/templates/nope"),
            &t,
            None
        )
        .await
        .0,
        404
    );
    api.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_changes_nothing() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    alice_with_two_filters(&api, &t).await;
    let u = "/api/v1/users/alice";
    let f = format!("{u}/contexts/email/filters");
    let (_, before) = api.get(&format!("{u}/preferences"), &t).await;
    let bad: Vec<(Value, u16, &str)> = vec![
        (json!({"name": "x", "colour": "red"}), 400, ""),
        (
            json!({"name": "x", "rules": [{"kind": "nope"}]}),
            400,
            "rules[0]",
        ),
        (
            json!({"name": "x", "rules": [{"kind": "topic", "glob": "a", "extra": 1}]}),
            400,
            "rules[0]",
        ),
        (
            json!({"name": "x", "rules": [{"kind": "topic_regex", "regex": "("}]}),
            422,
            "contexts.email.filters[2].rules[0].regex",
        ),
        (
            json!({"name": "x", "rules": [{"kind": "severity", "levels": ["loud"]}]}),
            422,
            "contexts.email.filters[2].rules[0].levels",
        ),
        (
            json!({"name": "x".repeat(101)}),
            422,
            "contexts.email.filters[2].name",
        ),
        (
            json!({"name": "x", "rules": [{"kind": "user", "usernames": ["a b"]}]}),
            422,
            "contexts.email.filters[2].rules[0].usernames[0]",
        ),
        (
            json!({"name": "x", "addresses": ["nobody@example.org"]}),
            422,
            "contexts.email.filters[2].addresses",
        ),
        (
            json!({"name": "x", "rules": [{"kind": "topic", "glob": "a".repeat(501)}]}),
            422,
            "contexts.email.filters[2].rules[0].glob",
        ),
        (json!({"name": 5}), 400, "name"),
        (json!({"id": "a/b", "name": "x"}), 422, "id"),
    ];
    for (body, status, field) in bad {
        let (s, v) = api.call(Method::POST, &f, &t, Some(body.clone())).await;
        assert_eq!(s, status, "{body} -> {v}");
        if !field.is_empty() {
            assert_eq!(v["field"].as_str(), Some(field), "{body} -> {v}");
        }
    }
    let (s, v, _) = api
        .raw(Method::POST, &f, Some(&t), Some("{not json".into()), &[])
        .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("bad_request")));
    let (s, v) = api
        .call(
            Method::PUT,
            &format!("{u}/contexts/email"),
            &t,
            Some(json!({"settings": {"digest_count": 0}})),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (422, Some("contexts.email.settings.digest_count"))
    );
    let (_, after) = api.get(&format!("{u}/preferences"), &t).await;
    assert_eq!(before, after, "a refused request changed something");
    api.stop().await;
}

#[tokio::test]
async fn filters_per_context_and_body_size_are_bounded() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    alice_with_two_filters(&api, &t).await;
    let f = "/api/v1/users/alice/contexts/email/filters";
    let limits = api.get("/api/v1/limits", &t).await.1;
    let max = limits["max_filters_per_context"].as_u64().unwrap();
    for i in 2..max {
        let (s, v) = api
            .call(Method::POST, f, &t, Some(json!({"name": format!("f{i}")})))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = api
        .call(Method::POST, f, &t, Some(json!({"name": "one too many"})))
        .await;
    assert_eq!((s, v["error"].as_str()), (422, Some("limit_exceeded")));
    let huge = json!({"name": "x", "rules": [{"kind": "topic", "glob": "a".repeat(300_000)}]});
    let (s, v) = api.call(Method::POST, f, &t, Some(huge)).await;
    assert_eq!((s, v["error"].as_str()), (413, Some("body_too_large")));
    api.stop().await;
}

#[tokio::test]
async fn a_stale_if_match_is_refused() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    alice_with_two_filters(&api, &t).await;
    let u = "/api/v1/users/alice";
    let f = format!("{u}/contexts/email/filters");
    let etag_now = || async {
        let (_, _, headers) = api
            .raw(
                Method::GET,
                &format!("{u}/preferences"),
                Some(&t),
                None,
                &[],
            )
            .await;
        headers["etag"].to_str().unwrap().to_owned()
    };
    let etag = etag_now().await;
    // Someone changes the preferences after they were read.
    let (s, _) = api
        .call(Method::POST, &f, &t, Some(json!({"name": "meanwhile"})))
        .await;
    assert_eq!(s, 201);
    let (s, v, _) = api
        .raw(
            Method::PATCH,
            &format!("{f}/kernel"),
            Some(&t),
            Some(json!({"name": "stale"}).to_string()),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (412, Some("precondition_failed")));
    let fresh = etag_now().await;
    let (s, _, _) = api
        .raw(
            Method::PATCH,
            &format!("{f}/kernel"),
            Some(&t),
            Some(json!({"name": "fresh"}).to_string()),
            &[("if-match", &fresh)],
        )
        .await;
    assert_eq!(s, 200);
    api.stop().await;
}

#[tokio::test]
async fn unknown_routes_methods_contexts_and_filters_are_json_errors() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    alice_with_two_filters(&api, &t).await;
    let u = "/api/v1/users/alice";
    let f = format!("{u}/contexts/email/filters");
    assert_eq!(api.get("/api/v1/nope", &t).await.0, 404);
    assert_eq!(
        api.call(Method::DELETE, "/api/v1/rules", &t, None).await.0,
        405
    );
    assert_eq!(api.get(&format!("{u}/contexts/fax"), &t).await.0, 404);
    assert_eq!(api.get(&format!("{f}/missing"), &t).await.0, 404);
    assert_eq!(api.get("/api/v1/users/a%20b/preferences", &t).await.0, 400);
    api.stop().await;
}

#[tokio::test]
async fn deletes_reach_the_table_the_matcher_reads() {
    let api = start_api(|_| {}).await;
    let t = api.token("alice", false, None).await;
    alice_with_two_filters(&api, &t).await;
    let u = "/api/v1/users/alice";
    let f = format!("{u}/contexts/email/filters");
    let (s, _) = api
        .call(
            Method::POST,
            &format!("{u}/contexts/email/copy"),
            &t,
            Some(json!({"to": "irc"})),
        )
        .await;
    assert_eq!(s, 200);
    let table =
        fmn_store::PreferenceTable::new(aws_sdk_dynamodb::Client::new(&api.aws), &api.prefs_table);
    let version = table.version().await.unwrap();
    assert_eq!(
        api.call(Method::DELETE, &format!("{f}/kernel"), &t, None)
            .await
            .0,
        204
    );
    assert_eq!(api.get(&format!("{f}/kernel"), &t).await.0, 404);
    assert_eq!(
        api.call(Method::DELETE, &format!("{u}/contexts/irc"), &t, None)
            .await
            .0,
        204
    );
    assert_eq!(api.get(&format!("{u}/contexts/irc"), &t).await.0, 404);

    // Writes land in the table the matcher reads, with its version bumped.
    let stored = table.get("alice").await.unwrap().unwrap();
    assert!(
        stored.contexts[&ContextKind::Email]
            .filters
            .iter()
            .any(|f| f.name == "Bodhi")
    );
    assert!(!stored.contexts.contains_key(&ContextKind::Irc));
    assert_eq!(table.version().await.unwrap(), version + 2);
    api.stop().await;
}

#[tokio::test]
async fn other_users_data_is_closed() {
    let api = start_api(|_| {}).await;
    let alice = api.token("alice", false, None).await;
    let bob = api.token("bob", false, None).await;
    let u = "/api/v1/users/alice";
    api.call(
        Method::POST,
        &format!("{u}/contexts/irc/filters"),
        &alice,
        Some(json!({"id": "mine", "name": "Mine", "rules": [{"kind": "user"}]})),
    )
    .await;
    let (s, _) = api
        .call(
            Method::POST,
            &format!("{u}/contexts/irc/addresses"),
            &alice,
            Some(json!({"address": "alice_"})),
        )
        .await;
    assert_eq!(s, 202);
    let code = confirmation(api.job(&api.irc_queue).await).code.unwrap();
    let (_, before) = api.get(&format!("{u}/preferences"), &alice).await;

    let f = format!("{u}/contexts/irc/filters/mine");
    let a = format!("{u}/contexts/irc/addresses/alice_");
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("{u}/preferences"), None),
        (Method::GET, format!("{u}/contexts/irc"), None),
        (Method::GET, format!("{u}/contexts/irc/filters"), None),
        (Method::GET, f.clone(), None),
        (Method::GET, format!("{u}/contexts/irc/addresses"), None),
        (
            Method::PUT,
            format!("{u}/contexts/irc"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::POST,
            format!("{u}/contexts/irc/filters"),
            Some(json!({"name": "x"})),
        ),
        (Method::PATCH, f.clone(), Some(json!({"active": false}))),
        (
            Method::POST,
            format!("{f}/rules"),
            Some(json!({"kind": "user"})),
        ),
        (Method::DELETE, format!("{f}/rules/0"), None),
        (Method::DELETE, f.clone(), None),
        (Method::DELETE, format!("{u}/contexts/irc"), None),
        (
            Method::POST,
            format!("{u}/contexts/irc/copy"),
            Some(json!({"to": "email"})),
        ),
        (
            Method::POST,
            format!("{u}/contexts/irc/templates/packager"),
            None,
        ),
        (
            Method::PUT,
            format!("{u}/contexts/irc/filter-order"),
            Some(json!({"ids": ["mine"]})),
        ),
        (
            Method::POST,
            format!("{u}/contexts/irc/addresses"),
            Some(json!({"address": "bob_"})),
        ),
        (Method::DELETE, a.clone(), None),
        (
            Method::POST,
            format!("{a}/confirm"),
            Some(json!({"code": code})),
        ),
        (
            Method::POST,
            format!("{u}/preview"),
            Some(json!({"context": "irc"})),
        ),
        (Method::POST, format!("{u}/import/fmn3"), Some(json!([]))),
        (Method::POST, format!("{u}/feed-token"), None),
        (Method::GET, "/api/v1/users".into(), None),
    ];
    for (method, path, body) in attempts {
        let (s, v) = api.call(method.clone(), &path, &bob, body).await;
        assert_eq!(s, 403, "{method} {path} -> {v}");
        assert!(!v.to_string().contains("alice_"), "an address leaked: {v}");
    }
    let (_, after) = api.get(&format!("{u}/preferences"), &alice).await;
    assert_eq!(before, after, "another user changed alice's preferences");
    // The code bob tried is still alice's to use.
    let (s, v) = api
        .call(
            Method::POST,
            &format!("{a}/confirm"),
            &alice,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!((s, v["confirmed"].as_bool()), (200, Some(true)));
    api.stop().await;
}

#[tokio::test]
async fn addresses_are_confirmed_once_by_code_or_link() {
    let api = start_api(|c| {
        c.confirmation_ttl_secs = 3;
        c.confirmation_limits.address_interval_secs = 0;
    })
    .await;
    let t = api.token("alice", false, None).await;
    let u = "/api/v1/users/alice";

    // IRC: a code on the IRC queue; a wrong code counts; the right one confirms, once.
    let (s, added) = api
        .call(
            Method::POST,
            &format!("{u}/contexts/irc/addresses"),
            &t,
            Some(json!({"address": "alice_"})),
        )
        .await;
    assert_eq!(s, 202, "{added}");
    assert_eq!(added["address"]["confirmed"], false);
    assert_eq!(added["confirm_with"], "code");
    let job = confirmation(api.job(&api.irc_queue).await);
    assert_eq!(
        (job.user.as_str(), job.address.as_str(), job.context),
        ("alice", "alice_", ContextKind::Irc)
    );
    let code = job.code.unwrap();
    assert_eq!(code.len(), 8);
    let confirm = format!("{u}/contexts/irc/addresses/alice_/confirm");
    let (s, v) = api
        .call(
            Method::POST,
            &confirm,
            &t,
            Some(json!({"code": "00000000"})),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("code")));
    let (s, v) = api
        .call(Method::POST, &confirm, &t, Some(json!({"code": code})))
        .await;
    assert_eq!((s, v["confirmed"].as_bool()), (200, Some(true)));
    let (s, _) = api
        .call(Method::POST, &confirm, &t, Some(json!({"code": code})))
        .await;
    assert_eq!(s, 404, "a code worked twice");
    let (s, _) = api
        .call(
            Method::POST,
            &format!("{u}/contexts/irc/addresses"),
            &t,
            Some(json!({"address": "alice_"})),
        )
        .await;
    assert_eq!(s, 409, "a confirmed address was reset");

    // Email: a one-time link; GET shows a page and changes nothing; POST confirms, once.
    let (s, added) = api
        .call(
            Method::POST,
            &format!("{u}/contexts/email/addresses"),
            &t,
            Some(json!({"address": "alice@example.org"})),
        )
        .await;
    assert_eq!((s, added["confirm_with"].as_str()), (202, Some("link")));
    let job = confirmation(api.job(&api.email_queue).await);
    let link = job.link.unwrap();
    assert!(
        link.starts_with(&format!("{}/confirm/", api.base)),
        "{link}"
    );
    let path = link.strip_prefix(&api.base).unwrap().to_owned();
    let page = api.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    let (_, ctx) = api.get(&format!("{u}/contexts/email"), &t).await;
    assert_eq!(
        ctx["addresses"][0]["confirmed"], false,
        "a GET confirmed the address"
    );
    let (s, _, _) = api.raw(Method::POST, &path, None, None, &[]).await;
    assert_eq!(s, 200);
    let (_, ctx) = api.get(&format!("{u}/contexts/email"), &t).await;
    assert_eq!(ctx["addresses"][0]["confirmed"], true);
    // The link (the web app's page) and the API's path both refuse a second use.
    let (s, _, _) = api.raw(Method::POST, &path, None, None, &[]).await;
    assert_eq!(s, 404, "a link worked twice");
    let api_path = format!("/api/v1{path}");
    let (s, v, _) = api.raw(Method::POST, &api_path, None, None, &[]).await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")));

    // Expiry: a code past its time is refused; adding again sends a new one.
    let old = api.irc_code(&t, u, "alice2").await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let confirm2 = format!("{u}/contexts/irc/addresses/alice2/confirm");
    assert_eq!(
        api.call(Method::POST, &confirm2, &t, Some(json!({"code": old})))
            .await
            .0,
        404
    );
    let new = api.irc_code(&t, u, "alice2").await;
    assert_eq!(
        api.call(Method::POST, &confirm2, &t, Some(json!({"code": new})))
            .await
            .0,
        200
    );

    // Too many wrong codes: no code is checked any more today (429).
    let right = api.irc_code(&t, u, "alice3").await;
    let confirm3 = format!("{u}/contexts/irc/addresses/alice3/confirm");
    for _ in 0..5 {
        assert_eq!(
            api.call(Method::POST, &confirm3, &t, Some(json!({"code": "x"})))
                .await
                .0,
            422
        );
    }
    assert_eq!(
        api.call(Method::POST, &confirm3, &t, Some(json!({"code": right})))
            .await
            .0,
        429
    );

    // Bad addresses, feed contexts, contexts without a sender; removal.
    for (ctx, addr, status) in [
        ("email", "not-an-address", 422),
        ("irc", "has space", 422),
        ("feed", "x", 422),
        ("matrix", "@alice:fedora.im", 503),
    ] {
        let (s, v) = api
            .call(
                Method::POST,
                &format!("{u}/contexts/{ctx}/addresses"),
                &t,
                Some(json!({"address": addr})),
            )
            .await;
        assert_eq!(s, status, "{ctx} {addr} -> {v}");
    }
    let del = format!("{u}/contexts/irc/addresses/alice3");
    assert_eq!(api.call(Method::DELETE, &del, &t, None).await.0, 204);
    assert_eq!(api.call(Method::DELETE, &del, &t, None).await.0, 404);
    let (_, list) = api.get(&format!("{u}/contexts/irc/addresses"), &t).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    api.stop().await;
}

fn koji_build(id: &str, owner: &str, package: &str) -> fmn_messages::Message {
    let raw = json!({"topic": "org.fedoraproject.prod.buildsys.build.state.change", "msg_id": id,
        "timestamp": 1_700_000_000.0,
        "msg": {"owner": owner, "name": package, "version": "1", "release": "1.fc40",
                "build_id": 1, "new": 1, "attribute": "state", "instance": "primary"}});
    fmn_messages::Catalog::builtin().normalize(&raw).unwrap()
}

#[tokio::test]
async fn catalogs_import_preview_unsubscribe_and_feeds() {
    let api = start_api(|_| {}).await;
    let t = api.token("AndrKlitzing", false, None).await;
    let u = "/api/v1/users/AndrKlitzing";

    // Catalogs and the OpenAPI document need no special rights.
    let (s, rules) = api.get("/api/v1/rules", &t).await;
    assert_eq!(s, 200);
    assert_eq!(rules.as_array().unwrap().len(), 12);
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["schema"]["properties"].is_object()
                && r["example"]["kind"] == r["kind"]
                && !r["description"].as_str().unwrap().is_empty())
    );
    let (s, apps) = api.get("/api/v1/applications", &t).await;
    assert_eq!(s, 200);
    assert!(
        apps["applications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "bodhi"),
        "{apps}"
    );
    let (s, templates) = api.get("/api/v1/templates", &t).await;
    assert_eq!((s, templates[0]["name"].as_str()), (200, Some("packager")));
    let (s, doc, _) = api
        .raw(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"].as_object().unwrap().len() >= 25);
    assert!(doc["components"]["schemas"]["Rule"]["oneOf"].is_array());

    // FMN 3 import: this user's rules only; addresses come in unconfirmed.
    let all: Vec<Value> = serde_json::from_str(include_str!(
        "../../fmn-rules/tests/fixtures/fmn3/rules-api.json"
    ))
    .unwrap();
    let mine: Vec<&Value> = all
        .iter()
        .filter(|r| r["user"]["name"] == "AndrKlitzing")
        .collect();
    let (s, imported) = api
        .call(
            Method::POST,
            &format!("{u}/import/fmn3"),
            &t,
            Some(json!(mine)),
        )
        .await;
    assert_eq!(s, 200, "{imported}");
    let email = &imported["contexts"]["email"];
    assert!(!email["filters"].as_array().unwrap().is_empty());
    assert_eq!(
        email["addresses"][0]["confirmed"], false,
        "an import confirmed an address"
    );
    let theirs: Vec<&Value> = all
        .iter()
        .filter(|r| r["user"]["name"] == "adamw")
        .collect();
    let (s, v) = api
        .call(
            Method::POST,
            &format!("{u}/import/fmn3"),
            &t,
            Some(json!(theirs)),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("[0].user.name")));
    let (s, _) = api
        .call(
            Method::POST,
            &format!("{u}/import/fmn3"),
            &t,
            Some(json!({"x": 1})),
        )
        .await;
    assert_eq!(s, 400);

    // Preview over the recent-messages log the matcher writes.
    let log =
        fmn_store::RecentMessages::new(aws_sdk_dynamodb::Client::new(&api.aws), &api.api_table);
    log.record(&koji_build("m1", "bob", "kernel"))
        .await
        .unwrap();
    log.record(&koji_build("m2", "AndrKlitzing", "kernel"))
        .await
        .unwrap();
    log.record(&koji_build("m3", "bob", "bash")).await.unwrap();
    let filter = json!({"name": "kernel, not mine", "rules": [
        {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]},
        {"kind": "agent", "negate": true}]});
    let (s, out) = api
        .call(
            Method::POST,
            &format!("{u}/preview"),
            &t,
            Some(json!({"filter": filter})),
        )
        .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["scanned"], 3);
    let ids: Vec<&str> = out["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m1"]);
    // Maintainership comes from the synced snapshot, as in the matcher: none yet, then
    // the user maintains bash.
    let mine = json!({"filter": {"name": "my packages", "rules": [{"kind": "owned_by"}]}});
    let preview_ids = |out: &Value| -> Vec<String> {
        out["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (s, out) = api
        .call(
            Method::POST,
            &format!("{u}/preview"),
            &t,
            Some(mine.clone()),
        )
        .await;
    assert_eq!(s, 200, "{out}");
    assert!(preview_ids(&out).is_empty(), "{out}");
    let owners = r#"{"rpms": {"bash": ["AndrKlitzing", "@core"], "kernel": ["jforbes"]}}"#;
    fmn_store::OwnershipTable::new(aws_sdk_dynamodb::Client::new(&api.aws), &api.owners_table)
        .replace(owners, 2, 1_700_000_000)
        .await
        .unwrap();
    let (s, out) = api
        .call(Method::POST, &format!("{u}/preview"), &t, Some(mine))
        .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(preview_ids(&out), ["m3"]);
    let (s, out) = api
        .call(
            Method::POST,
            &format!("{u}/preview"),
            &t,
            Some(json!({"context": "email"})),
        )
        .await;
    assert_eq!(s, 200, "{out}");
    for (body, status) in [
        (json!({}), 400),
        (json!({"context": "email", "filter": {"name": "x"}}), 400),
        (json!({"context": "irc"}), 404),
        (
            json!({"filter": {"name": "x", "rules": [{"kind": "body_regex", "regex": "["}]}}),
            422,
        ),
    ] {
        let (s, v) = api
            .call(
                Method::POST,
                &format!("{u}/preview"),
                &t,
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, status, "{body} -> {v}");
    }

    // One-click unsubscribe: the signed link deactivates the filter; GET changes nothing.
    let (s, _) = api
        .call(
            Method::POST,
            &format!("{u}/contexts/email/filters"),
            &t,
            Some(json!({"id": "noisy", "name": "Noisy", "rules": [{"kind": "user"}]})),
        )
        .await;
    assert_eq!(s, 201);
    let first = "noisy".to_owned();
    let token = fmn_links::LinkSigner::new(LINK_SECRET).unsubscribe_token(
        "AndrKlitzing",
        ContextKind::Email,
        &first,
    );
    let url = fmn_links::unsubscribe_url(&api.base, &token);
    let page = api.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let filter_url = format!("{u}/contexts/email/filters/{first}");
    assert_eq!(
        api.get(&filter_url, &t).await.1["active"],
        true,
        "a GET unsubscribed"
    );
    let done = api
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(api.get(&filter_url, &t).await.1["active"], false);
    let forged = fmn_links::LinkSigner::new(b"not the secret at all, no").unsubscribe_token(
        "AndrKlitzing",
        ContextKind::Email,
        &first,
    );
    let (s, _, _) = api
        .raw(
            Method::POST,
            &fmn_links::unsubscribe_url("", &forged),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(s, 404);

    // Feeds: a secret URL, rotated; the old one stops working.
    let (s, urls) = api
        .call(Method::POST, &format!("{u}/feed-token"), &t, None)
        .await;
    assert_eq!(s, 201);
    let rss = api
        .http
        .get(urls["rss"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rss.status(), 200);
    assert!(rss.text().await.unwrap().contains("<rss"));
    let atom = api
        .http
        .get(urls["atom"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(atom.status(), 200);
    let (_, again) = api
        .call(Method::POST, &format!("{u}/feed-token"), &t, None)
        .await;
    assert_ne!(again["rss"], urls["rss"]);
    let old = api
        .http
        .get(urls["rss"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 404);
    let (s, _, _) = api
        .raw(Method::GET, "/feeds/guess/rss.xml", None, None, &[])
        .await;
    assert_eq!(s, 404);
    api.stop().await;
}

/// A schema-driven fuzzer (schemathesis, from the project venv) drives every operation of
/// the OpenAPI document the API serves, as an admin so that every path reaches real data,
/// with valid and invalid inputs: no answer may be a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_driven_fuzzing_finds_no_server_error() {
    let api = start_api(|_| {}).await;
    let admin = api.token("root", true, None).await;
    let alice = api.token("alice", false, None).await;
    // Some data for the generated requests to find.
    let (s, _) = api
        .call(
            Method::POST,
            "/api/v1/users/alice/contexts/email/filters",
            &alice,
            Some(json!({"name": "kernel", "rules": [{"kind": "artifact",
                "artifacts": [{"type": "rpms", "name": "kernel"}]}]})),
        )
        .await;
    assert_eq!(s, 201);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fuzzer = root.join(".venv/bin/schemathesis");
    assert!(
        fuzzer.exists(),
        "{} is missing: run localstack/bootstrap.sh",
        fuzzer.display()
    );
    let reports = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(&fuzzer)
        .current_dir(reports.path())
        .args([
            "run",
            &format!("{}/api/v1/openapi.json", api.base),
            "--checks",
            "not_a_server_error",
            "--header",
            &format!("Authorization: Bearer {admin}"),
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "30",
            "--seed",
            "20261125",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            // One worker: with several, hypothesis parses lambda sources with `ast.parse` from
            // threads, which CPython 3.11 can fail at ("AST constructor recursion depth
            // mismatch"): an error of the fuzzer, not of the API.
            "--workers",
            "1",
            "--no-color",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis ({}) found server errors:\n{stdout}\n{stderr}",
        out.status
    );
    // It ran the operations (not an empty or unreadable document).
    assert!(
        stdout.contains("passed") && !stdout.contains(" 0 passed"),
        "{stdout}"
    );
    println!("{stdout}");
    api.stop().await;
}
