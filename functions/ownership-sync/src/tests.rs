//! The sync handler over in-memory fakes of its table and source.

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;

/// The live snapshot, replaced in memory.
#[derive(Default)]
struct MemorySnapshots(Mutex<Option<Snapshot>>);

impl Snapshots for MemorySnapshots {
    async fn current(&self) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.0.lock().unwrap().clone())
    }
    async fn replace(
        &self,
        text: &str,
        artifacts: usize,
        now: i64,
    ) -> Result<Replaced, StoreError> {
        let current = Snapshot {
            id: fmn_store::snapshot_id(text),
            chunks: 1,
            bytes: text.len(),
            artifacts,
            synced_at: now,
        };
        let previous = self.0.lock().unwrap().replace(current.clone());
        Ok(match previous {
            Some(p) if p.id == current.id => Replaced::Unchanged(p),
            previous => Replaced::Replaced { current, previous },
        })
    }
}

/// Answers with a fixed text, or an error.
struct FixedSource(Result<String, String>);

impl Source for FixedSource {
    async fn fetch(&self, _url: &str) -> Result<String, String> {
        self.0.clone()
    }
}

/// Maintainer data naming `n` packages.
fn owners(n: usize) -> String {
    let rpms: serde_json::Map<String, serde_json::Value> = (0..n)
        .map(|i| (format!("pkg{i}"), serde_json::json!(["alice"])))
        .collect();
    serde_json::json!({ "rpms": rpms }).to_string()
}

fn config(min_ratio: f64) -> Config {
    Config {
        table: "t".into(),
        source_url: "http://127.0.0.1/owners.json".into(),
        min_ratio,
    }
}

fn sync(
    live: usize,
    fetched: usize,
    min_ratio: f64,
) -> OwnershipSync<MemorySnapshots, FixedSource> {
    let table = MemorySnapshots::default();
    let text = owners(live);
    *table.0.lock().unwrap() = Some(Snapshot {
        id: fmn_store::snapshot_id(&text),
        chunks: 1,
        bytes: text.len(),
        artifacts: live,
        synced_at: 0,
    });
    OwnershipSync::with_source(table, FixedSource(Ok(owners(fetched))), config(min_ratio))
}

#[tokio::test]
async fn the_truncation_guard_follows_the_configured_ratio() {
    let refused = sync(10, 4, 0.5).run().await;
    assert!(
        matches!(refused, Err(SyncError::Refused { .. })),
        "{refused:?}"
    );
    let lenient = sync(10, 4, 0.3);
    assert_eq!(
        lenient.run().await.unwrap(),
        Outcome::Replaced {
            artifacts: 4,
            previous: Some(10)
        }
    );
    assert_eq!(
        lenient.run().await.unwrap(),
        Outcome::Unchanged { artifacts: 4 }
    );
}

#[tokio::test]
async fn a_failed_download_or_an_empty_export_keeps_the_live_snapshot() {
    let s = OwnershipSync::with_source(
        MemorySnapshots::default(),
        FixedSource(Err("connection refused".into())),
        config(0.5),
    );
    assert!(matches!(s.run().await, Err(SyncError::Fetch { .. })));
    let empty = sync(10, 0, 0.0);
    assert!(matches!(empty.run().await, Err(SyncError::Refused { .. })));
    assert_eq!(
        empty.table.0.lock().unwrap().as_ref().unwrap().artifacts,
        10
    );
}

#[test]
fn the_ratio_is_read_from_the_environment_and_checked() {
    let vars = |pairs: &[(&str, &str)]| {
        Vars::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        )
    };
    let c = Config::from_vars(&vars(&[
        ("FMN_OWNERSHIP_TABLE", "t"),
        ("FMN_OWNERSHIP_MIN_RATIO", "0.2"),
    ]))
    .unwrap();
    assert_eq!((c.min_ratio, c.source_url.as_str()), (0.2, FEDORA_SOURCE));
    let e = Config::from_vars(&vars(&[
        ("FMN_OWNERSHIP_TABLE", "t"),
        ("FMN_OWNERSHIP_MIN_RATIO", "2"),
    ]))
    .unwrap_err();
    assert!(e.to_string().contains("FMN_OWNERSHIP_MIN_RATIO"), "{e}");
    let e = Config::from_vars(&vars(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "missing environment variable FMN_OWNERSHIP_TABLE"
    );
}
