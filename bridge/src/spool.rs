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
                match read_batch(&path) {
                    Ok(batch) => {
                        messages += batch.len() as u64;
                        files.insert(seq, fs::metadata(&path)?.len());
                    }
                    // One unreadable file must not stop the bridge from starting.
                    Err(e) => set_aside(&dir, &path, &e)?,
                }
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

    /// The oldest readable batch, with its sequence number for [`Spool::remove`]. A batch
    /// file that cannot be read (changed or damaged on disk since it was written) is moved
    /// to the `unreadable/` folder with an error log line, and the next one is tried: it
    /// never blocks the batches behind it.
    pub fn oldest(&mut self) -> Result<Option<(u64, Vec<BusMessage>)>, SpoolError> {
        while let Some((&seq, &size)) = self.files.first_key_value() {
            let path = self.path(seq);
            match read_batch(&path) {
                Ok(batch) => return Ok(Some((seq, batch))),
                Err(e) => {
                    set_aside(&self.dir, &path, &e)?;
                    self.files.remove(&seq);
                    self.bytes -= size;
                    // Its message count is unknown now: recount from what is left.
                    self.messages = self.count();
                }
            }
        }
        Ok(None)
    }

    fn count(&self) -> u64 {
        self.files
            .keys()
            .map(|&seq| read_batch(&self.path(seq)).map_or(0, |b| b.len() as u64))
            .sum()
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

/// The folder, inside the spool, where unreadable batch files are moved for an operator.
pub const UNREADABLE_DIR: &str = "unreadable";

/// Moves an unreadable batch file out of the way, saying so.
fn set_aside(dir: &Path, path: &Path, why: &SpoolError) -> Result<(), SpoolError> {
    let aside = dir.join(UNREADABLE_DIR);
    fs::create_dir_all(&aside)?;
    let to = aside.join(path.file_name().unwrap_or_default());
    fs::rename(path, &to)?;
    tracing::error!(file = %path.display(), moved_to = %to.display(), error = %why,
        "spool: unreadable batch file set aside; its messages are not forwarded");
    Ok(())
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

    /// Issue 17 item 1: without setting it aside, the open fails (the bridge cannot start)
    /// and a file damaged later blocks the drain forever.
    #[test]
    fn an_unreadable_batch_is_set_aside_at_open_and_while_draining() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.push(&batch("a", 1)).unwrap();
        spool.push(&batch("b", 2)).unwrap();
        spool.push(&batch("c", 1)).unwrap();
        drop(spool);
        let path = |seq: u64| dir.path().join(format!("{seq:020}.batch"));
        fs::write(path(0), "{not json\n").unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.messages(), 3);
        // Damaged after the open, while waiting to drain.
        fs::write(path(1), [0xff, 0xfe, b'\n']).unwrap();
        let (seq, oldest) = spool.oldest().unwrap().unwrap();
        assert_eq!(oldest, batch("c", 1));
        assert_eq!(spool.messages(), 1);
        spool.remove(seq, oldest.len()).unwrap();
        assert!(spool.oldest().unwrap().is_none());
        let aside = dir.path().join(UNREADABLE_DIR);
        assert_eq!(fs::read_dir(&aside).unwrap().count(), 2);
        // Reopening ignores the folder.
        assert!(Spool::open(dir.path(), 1 << 20).unwrap().is_empty());
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
