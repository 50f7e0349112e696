//! `fmn meta`, `fmn match` and `fmn explain` never stop a stream at one bad message: each is
//! reported on stderr with its line number and reason, the rest is processed, the count of
//! skipped messages ends the run, and the exit code is 0 (non-zero with `--strict`).

#![allow(clippy::unwrap_used)] // a test: a panic is a failure with its reason

use std::io::Write;
use std::process::{Command, Output, Stdio};

const GOOD: &str = r#"{"topic": "org.fedoraproject.prod.buildsys.build.state.change", "msg_id": "m1", "timestamp": 1700000000, "msg": {"owner": "alice", "name": "kernel", "version": "6.1", "release": "1.fc40", "new": 1, "instance": "primary", "build_id": 1, "task_id": 2}}"#;
/// A bodhi comment without the `comment` its schema requires: quarantined, with the reason.
const INVALID: &str = r#"{"id": "m2", "topic": "org.fedoraproject.prod.bodhi.update.comment", "headers": {"fedora_messaging_schema": "bodhi.update.comment.v1", "sent-at": "2025-01-01T00:00:00+00:00"}, "body": {"agent": "bob"}}"#;
const PREFS: &str = r#"[{"user": "alice", "contexts": {"email": {"enabled": true,
  "addresses": [{"address": "alice@example.org", "confirmed": true}],
  "filters": [{"id": "all", "name": "everything", "rules": [{"kind": "topic", "glob": "*"}]}]}}}]"#;

fn fmn(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fmn"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stream() -> String {
    format!(
        "{GOOD}\nnot json\n\n{INVALID}\n{}\n",
        GOOD.replace("m1", "m3")
    )
}

#[test]
fn bad_messages_are_reported_skipped_and_counted() {
    let dir = std::env::temp_dir().join(format!("fmn-cli-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prefs = dir.join("prefs.json");
    std::fs::write(&prefs, PREFS).unwrap();
    let prefs = prefs.to_str().unwrap();

    let meta = fmn(&["meta"], &stream());
    assert!(meta.status.success());
    let stdout = String::from_utf8(meta.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    let stderr = String::from_utf8(meta.stderr).unwrap();
    assert!(
        stderr.contains("line 2: skipped: not valid JSON"),
        "{stderr}"
    );
    assert!(stderr.contains("line 4: skipped: body invalid for schema bodhi.update.comment.v1: 'comment' is a required property"), "{stderr}");
    assert!(stderr.contains("2 messages skipped"), "{stderr}");

    let matched = fmn(&["match", "--prefs", prefs], &stream());
    assert!(matched.status.success(), "{matched:?}");
    let stdout = String::from_utf8(matched.stdout).unwrap();
    assert!(
        stdout.contains("\"m1\"") && stdout.contains("\"m3\""),
        "{stdout}"
    );
    let stderr = String::from_utf8(matched.stderr).unwrap();
    assert!(
        stderr.contains("fmn match: line 2: skipped: not JSON"),
        "{stderr}"
    );
    assert!(stderr.contains("fmn match: line 4: skipped:"), "{stderr}");
    assert!(stderr.contains("2 messages skipped"), "{stderr}");
    assert!(
        !fmn(&["match", "--strict", "--prefs", prefs], &stream())
            .status
            .success()
    );

    let explained = fmn(&["explain", "--user", "alice", "--prefs", prefs], &stream());
    assert!(explained.status.success(), "{explained:?}");
    let stdout = String::from_utf8(explained.stdout).unwrap();
    assert_eq!(
        stdout.matches("=> notified at alice@example.org").count(),
        2,
        "{stdout}"
    );
    assert!(
        String::from_utf8(explained.stderr)
            .unwrap()
            .contains("2 messages skipped")
    );
    let one = fmn(
        &["explain", "--strict", "--user", "alice", "--prefs", prefs],
        GOOD,
    );
    assert!(one.status.success(), "{one:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
