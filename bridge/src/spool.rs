//! The disk spool: where the sink puts batches SQS would not take, so that sources can be
//! acknowledged and nothing is lost while SQS is unreachable; drained oldest first.
//!
//! One file per batch, named by a sequence number, as JSON lines of `{topic, body}`. A batch
//! is written to a temporary file, fsync'd, renamed into place, and the directory fsync'd:
//! after a crash a batch is either wholly in the spool or not at all (and then its source was
//! not acknowledged). Leftover temporary files are removed when the spool opens.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::BusMessage;

/// Why a batch could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool holds its maximum: the sink applies back-pressure instead.
    #[error("spool full ({bytes} bytes of {max})")]
    Full {
        /// Bytes spooled.
        bytes: u64,
        /// The bound.
        max: u64,
    },
    /// The disk failed.
    #[error("spool: {0}")]
    Io(#[from] io::Error),
    /// A spool file is not what the spool writes.
    #[error("spool file {0}: {1}")]
    Corrupt(PathBuf, String),
}

/// A bounded on-disk queue of batches.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Sequence number → file size.
    files: BTreeMap<u64, u64>,
    bytes: u64,
    messages: u64,
}

const EXTENSION: &str = "batch";

impl Spool {
    /// Opens (creating) the spool in `dir`, holding at most `max_bytes`.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Spool, SpoolError> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let mut files = BTreeMap::new();
        let mut messages = 0;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path)?;
                continue;
            }
            let seq = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            if let (Some(seq), true) = (seq, path.extension().is_some_and(|e| e == EXTENSION)) {
                messages += read_batch(&path)?.len() as u64;
                files.insert(seq, fs::metadata(&path)?.len());
            }
        }
        let bytes = files.values().sum();
        Ok(Spool {
            dir,
            max_bytes,
            files,
            bytes,
            messages,
        })
    }

    /// Batches waiting.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Messages waiting.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Appends a batch, durably, after every batch already spooled.
    pub fn push(&mut self, batch: &[BusMessage]) -> Result<(), SpoolError> {
        let mut text = String::new();
        for m in batch {
            text.push_str(&serde_json::json!({"topic": m.topic, "body": m.body}).to_string());
            text.push('\n');
        }
        let size = text.len() as u64;
        if self.bytes + size > self.max_bytes {
            return Err(SpoolError::Full {
                bytes: self.bytes,
                max: self.max_bytes,
            });
        }
        let seq = self.files.last_key_value().map_or(0, |(s, _)| s + 1);
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, self.path(seq))?;
        File::open(&self.dir)?.sync_all()?;
        self.files.insert(seq, size);
        self.bytes += size;
        self.messages += batch.len() as u64;
        Ok(())
    }

    /// The oldest batch, with its sequence number for [`Spool::remove`].
    pub fn oldest(&self) -> Result<Option<(u64, Vec<BusMessage>)>, SpoolError> {
        match self.files.first_key_value() {
            None => Ok(None),
            Some((&seq, _)) => Ok(Some((seq, read_batch(&self.path(seq))?))),
        }
    }

    /// Forgets a batch once SQS has accepted it.
    pub fn remove(&mut self, seq: u64, messages: usize) -> Result<(), SpoolError> {
        if let Some(size) = self.files.remove(&seq) {
            fs::remove_file(self.path(seq))?;
            File::open(&self.dir)?.sync_all()?;
            self.bytes -= size;
            self.messages = self.messages.saturating_sub(messages as u64);
        }
        Ok(())
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.{EXTENSION}"))
    }
}

fn read_batch(path: &Path) -> Result<Vec<BusMessage>, SpoolError> {
    let corrupt = |e: String| SpoolError::Corrupt(path.to_owned(), e);
    fs::read_to_string(path)?
        .lines()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| corrupt(e.to_string()))?;
            match (v["topic"].as_str(), v["body"].as_str()) {
                (Some(topic), Some(body)) => Ok(BusMessage {
                    topic: topic.to_owned(),
                    body: body.to_owned(),
                }),
                _ => Err(corrupt("a line without topic and body".into())),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(tag: &str, n: usize) -> Vec<BusMessage> {
        (0..n)
            .map(|i| BusMessage {
                topic: format!("t.{tag}"),
                body: format!("{{\"n\": {i}, \"s\": \"line\\nbreak\"}}"),
            })
            .collect()
    }

    #[test]
    fn drains_in_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.push(&batch("a", 3)).unwrap();
        spool.push(&batch("b", 2)).unwrap();
        // A crash mid-write leaves a temporary file: ignored and removed.
        fs::write(dir.path().join("00000000000000000009.tmp"), "{garbage").unwrap();
        drop(spool);

        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.messages(), 5);
        let (seq, first) = spool.oldest().unwrap().unwrap();
        assert_eq!(first, batch("a", 3));
        spool.remove(seq, first.len()).unwrap();
        spool.push(&batch("c", 1)).unwrap();
        let (seq, second) = spool.oldest().unwrap().unwrap();
        assert_eq!(second, batch("b", 2));
        spool.remove(seq, second.len()).unwrap();
        let (seq, third) = spool.oldest().unwrap().unwrap();
        assert_eq!(third, batch("c", 1));
        spool.remove(seq, third.len()).unwrap();
        assert!(spool.is_empty());
        assert_eq!(spool.messages(), 0);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 200).unwrap();
        spool.push(&batch("a", 2)).unwrap();
        assert!(matches!(
            spool.push(&batch("b", 10)),
            Err(SpoolError::Full { .. })
        ));
        assert_eq!(spool.messages(), 2);
    }
}
