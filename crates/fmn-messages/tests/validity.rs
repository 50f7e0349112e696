//! Validity as Fedora's consumers see it: a fedora-messaging message is rejected exactly when
//! its own schema class rejects it (answers checked with the classes themselves, see
//! `tests/oracle.rs`), never on the catalog's say-so.

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use fmn_messages::{Catalog, MessageError};

/// bodhi "ready for testing" v1: a koji build group artifact, no `update`; valid.
const BODHI_V1: &str = r#"{"id": "v1", "topic": "org.fedoraproject.prod.bodhi.update.status.testing.koji-build-group.build.complete", "headers": {"fedora_messaging_schema": "bodhi.update.status.testing.v1", "fedora_messaging_severity": 20, "sent-at": "2025-01-01T00:00:00+00:00", "fedora_messaging_user_alice": true}, "body": {"agent": "bodhi", "contact": {"name": "alice", "team": "Fedora QA", "docs": "https://docs.fedoraproject.org", "email": "qa@example.org"}, "artifact": {"id": "FEDORA-2025-abc", "type": "koji-build-group", "release": "f42", "repository": "https://bodhi.fedoraproject.org/updates/FEDORA-2025-abc", "builds": [{"type": "koji-build", "id": 1, "task_id": 2, "issuer": "alice", "component": "kernel", "nvr": "kernel-6.1-1.fc42", "scratch": false}]}, "generated_at": "2025-01-01T00:00:00Z", "version": "0.2.2"}}"#;
/// `git.receive` (fedorainfra-ansible-messages' GitReceiveV1) without a top-level `agent`;
/// valid.
const GIT_RECEIVE: &str = r#"{"id": "g1", "topic": "org.fedoraproject.prod.git.receive", "headers": {"fedora_messaging_schema": "git.receive", "fedora_messaging_severity": 20, "sent-at": "2025-01-01T00:00:00+00:00"}, "body": {"commit": {"agent": "alice", "branch": "main", "email": "alice@example.org", "message": "Fix the build\n\nDetails.", "name": "Alice", "path": "/srv/git/repositories/rpms/kernel.git", "repo": "rpms/kernel", "rev": "abc123", "stats": {"files": {"kernel.spec": {"additions": 1, "deletions": 1, "lines": 2}}, "total": {"additions": 1, "deletions": 1, "files": 1, "lines": 2}}, "summary": "Fix the build", "username": "alice"}}}"#;
/// The git hook's own class does require `agent`: rejected, with the schema's reason.
const GIT_HOOK_WITHOUT_AGENT: &str = r#"{"id": "g2", "topic": "org.fedoraproject.prod.git.receive", "headers": {"fedora_messaging_schema": "fedora_messaging_git_hook.commit.v1", "fedora_messaging_severity": 20, "sent-at": "2025-01-01T00:00:00+00:00"}, "body": {"commit": {"branch": "main"}}}"#;

#[test]
fn messages_fedora_accepts_are_accepted() {
    let catalog = Catalog::builtin();
    let m = catalog.normalize_bytes(BODHI_V1.as_bytes()).unwrap();
    assert_eq!(
        m.summary,
        "alice's kernel-6.1-1.fc42 bodhi update is ready for testing"
    );
    assert_eq!(
        m.link.as_deref(),
        Some("https://bodhi.fedoraproject.org/updates/FEDORA-2025-abc")
    );
    assert_eq!(m.agent.as_deref(), Some("bodhi"));
    let m = catalog.normalize_bytes(GIT_RECEIVE.as_bytes()).unwrap();
    assert_eq!(
        m.summary,
        "alice pushed to rpms/kernel (main). \"Fix the build\""
    );
    assert_eq!(m.agent, None, "GitReceiveV1 has no agent_name");
    assert_eq!(m.app, "distgit");
}

#[test]
fn messages_fedora_rejects_are_rejected_with_the_reason() {
    let err = Catalog::builtin()
        .normalize_bytes(GIT_HOOK_WITHOUT_AGENT.as_bytes())
        .unwrap_err();
    assert_eq!(
        err,
        MessageError::Invalid {
            schema: "fedora_messaging_git_hook.commit.v1".into(),
            reason: "'agent' is a required property".into(),
        }
    );
}
