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
