use super::entry::Glob;
use super::envelope::{parse_rfc3339, short_topic};
use super::{BUILTIN, Catalog};
use crate::message::MessageError;

#[test]
fn builtin_catalog_loads() {
    let catalog = Catalog::from_sources(BUILTIN).unwrap();
    assert!(!catalog.entries.is_empty());
    assert!(catalog.applications().iter().any(|a| a == "bodhi"));
}

#[test]
fn catalog_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Catalog>();
}

#[test]
fn rejects_non_messages() {
    let catalog = Catalog::builtin();
    assert!(matches!(
        catalog.normalize_bytes(b"{"),
        Err(MessageError::Json(_))
    ));
    assert!(matches!(
        catalog.normalize(&serde_json::json!({"topic": "a.b.c.d"})),
        Err(MessageError::Shape(_))
    ));
}

#[test]
fn globs() {
    assert!(Glob::new("bodhi.update.*").matches("bodhi.update.comment"));
    assert!(Glob::new("*.complete").matches("compose.rawhide.complete"));
    assert!(Glob::new("compose.*.*.start").matches("compose.23.mash.start"));
    assert!(!Glob::new("compose.*.*.start").matches("compose.23.start"));
    assert!(Glob::new("git.receive").matches("git.receive"));
    assert!(!Glob::new("git.receive").matches("git.receive.x"));
    assert!(Glob::new("*").matches(""));
}

#[test]
fn short_topics() {
    assert_eq!(short_topic("org.fedoraproject.prod.a.b"), "a.b");
    assert_eq!(short_topic("io.pagure.dev.pagure.x"), "pagure.x");
    assert_eq!(
        short_topic("fedoracollege.content.edit"),
        "fedoracollege.content.edit"
    );
}

#[test]
fn rfc3339() {
    assert_eq!(parse_rfc3339("1970-01-02T00:00:00+00:00"), Some(86_400.0));
    assert_eq!(
        parse_rfc3339("2025-01-01T01:00:00+01:00"),
        Some(1_735_689_600.0)
    );
}

#[test]
fn a_known_class_facts_come_from_the_body_not_the_headers() {
    let catalog = Catalog::builtin();
    // A Discourse like: the class names the liked post's author; the publisher's headers
    // (another version of the class) named the liker.
    let like = serde_json::json!({
        "id": "m1", "topic": "org.fedoraproject.prod.discourse.like.post_liked",
        "headers": {"fedora_messaging_schema": "discourse.event.v1",
                    "fedora_messaging_user_liker": true, "fedora_messaging_rpm_stale": true},
        "body": {"webhook_headers": {"X-Discourse-Event": "post_liked",
                                     "X-Discourse-Event-Id": "1",
                                     "X-Discourse-Event-Signature": "sha256=0",
                                     "X-Discourse-Event-Type": "like",
                                     "X-Discourse-Instance": "https://discussion.fedoraproject.org"},
                 "webhook_body": {"like": {"post": {"username": "author"},
                                           "user": {"username": "liker"}}}},
    });
    let m = catalog.normalize(&like).unwrap();
    assert_eq!(m.usernames.iter().collect::<Vec<_>>(), ["author"]);
    assert!(m.artifacts.rpms.is_empty());
    // A schema the catalog does not know: the headers are all there is.
    let mut unknown = like;
    unknown["headers"]["fedora_messaging_schema"] = "someone.else.v1".into();
    let m = catalog.normalize(&unknown).unwrap();
    assert_eq!(m.usernames.iter().collect::<Vec<_>>(), ["liker"]);
    assert_eq!(m.artifacts.rpms.iter().collect::<Vec<_>>(), ["stale"]);
}
