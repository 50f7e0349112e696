use super::*;
use fmn_rules::Preferences;

fn users() -> Vec<Preferences> {
    serde_json::from_value(serde_json::json!([
        {"user": "alice", "contexts": {"email": {
            "addresses": [{"address": "alice@example.org", "confirmed": true}],
            "settings": {"digest_count": 5, "subject_prefix": "[fmn]", "markup": false},
            "filters": [{"id": "f1", "name": "kernel", "rules": [
                {"kind": "artifact", "artifacts": [{"type": "rpms", "name": "kernel"}]}]}]}}},
        {"user": "bob", "contexts": {
            "irc": {"addresses": [{"address": "bob", "confirmed": true}],
                "filters": [{"id": "b", "name": "builds", "rules": [
                    {"kind": "topic", "glob": "*.buildsys.build.state.change"}]}]},
            "feed": {"filters": []}}},
        {"user": "carol", "contexts": {"irc": {"addresses": [{"address": "carol", "confirmed": true}],
            "filters": [{"id": "c", "name": "mine", "rules": [{"kind": "owned_by"}]}]}}}
    ]))
    .unwrap()
}

fn compiled() -> CompiledPrefs {
    let all = users();
    CompiledPrefs {
        version: Some(42),
        changes_from_ms: 1_765_000_000_123,
        settings: Arc::new(
            all.iter()
                .map(|p| (p.user.clone(), crate::settings_of(p)))
                .collect(),
        ),
        matcher: Arc::new(Matcher::build(all).unwrap()),
    }
}

fn kernel_build() -> fmn_messages::Message {
    let raw = serde_json::json!({
        "topic": "org.fedoraproject.prod.buildsys.build.state.change", "msg_id": "m1",
        "msg": {"owner": "dave", "name": "kernel", "version": "6.1", "release": "1", "build_id": 1},
    });
    fmn_messages::Catalog::builtin().normalize(&raw).unwrap()
}

#[test]
fn compiled_preferences_read_back_as_they_were() {
    let before = compiled();
    let bytes = before.encode().unwrap();
    let owners = Ownership::from_json(r#"{"rpms": {"kernel": ["carol"]}}"#).unwrap();
    let after = CompiledPrefs::decode(&bytes, Arc::new(owners)).unwrap();
    assert_eq!(after.version, Some(42));
    assert_eq!(after.changes_from_ms, before.changes_from_ms);
    assert_eq!(*after.settings, *before.settings);
    assert_eq!(
        after.matcher.stats().filters,
        before.matcher.stats().filters
    );
    let who = |m: &Matcher| {
        let mut v: Vec<(String, ContextKind)> = (m.matches(&kernel_build()).into_iter())
            .map(|n| (n.user, n.context))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        who(&before.matcher),
        [
            ("alice".into(), ContextKind::Email),
            ("bob".into(), ContextKind::Irc)
        ]
    );
    // The maintainer data given on reading applies: carol owns the kernel.
    assert_eq!(
        who(&after.matcher),
        [
            ("alice".into(), ContextKind::Email),
            ("bob".into(), ContextKind::Irc),
            ("carol".into(), ContextKind::Irc)
        ]
    );
    // Users with the same settings share them.
    let (b, c) = (&after.settings["bob"], &after.settings["carol"]);
    assert_eq!(b.len(), 2);
    assert_eq!(c.len(), 1);
}

#[test]
fn nothing_loaded_is_not_saved_and_damaged_bytes_are_refused() {
    assert!(matches!(
        CompiledPrefs::default().encode(),
        Err(SnapshotError::Empty)
    ));
    let bytes = compiled().encode().unwrap();
    let read = |b: &[u8]| CompiledPrefs::decode(b, Arc::default()).map(|_| ());
    assert!(matches!(
        read(b"PK\x03\x04zip"),
        Err(SnapshotError::NotASnapshot)
    ));
    let mut other = bytes.clone();
    other[8] = 7;
    assert!(matches!(
        read(&other),
        Err(SnapshotError::Format { found: 7 })
    ));
    for cut in [12, bytes.len() / 3, bytes.len() - 1] {
        assert!(read(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}
