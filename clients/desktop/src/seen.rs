//! Which items were shown: the ids of this run (so a frame that also comes in a backfill is
//! shown once) and, across restarts, the newest id shown, kept in a file so that a restart
//! neither repeats nor loses.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// Where the backfill after a (re)connect starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Never connected: the inbox's history is not shown, only what arrives from now on.
    Fresh,
    /// The inbox was empty when last seen: everything in it is new.
    Empty,
    /// Items after this id are new.
    After(String),
}

/// The ids shown, bounded, and the cursor kept in the state file.
#[derive(Debug)]
pub struct Seen {
    cursor: Cursor,
    /// Ids at or below this were shown or are older than anything remembered.
    floor: Option<String>,
    recent: VecDeque<String>,
    set: HashSet<String>,
    capacity: usize,
    file: PathBuf,
}

impl Seen {
    /// Reads the state file: absent means [`Cursor::Fresh`], empty [`Cursor::Empty`].
    pub fn load(file: &Path) -> anyhow::Result<Seen> {
        let cursor = match std::fs::read_to_string(file) {
            Ok(text) => match text.trim() {
                "" => Cursor::Empty,
                id if fmn_inbox::valid_item_id(id) => Cursor::After(id.to_owned()),
                other => {
                    // Not an id the API would take as `after`: start afresh rather than
                    // retry a refused backfill for ever.
                    tracing::warn!(
                        file = %file.display(),
                        "ignoring {:?}: not an inbox item id",
                        other.chars().take(40).collect::<String>()
                    );
                    Cursor::Fresh
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Cursor::Fresh,
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", file.display())),
        };
        let floor = match &cursor {
            Cursor::After(id) => Some(id.clone()),
            _ => None,
        };
        Ok(Seen {
            cursor,
            floor,
            recent: VecDeque::new(),
            set: HashSet::new(),
            capacity: 4096,
            file: file.to_owned(),
        })
    }

    /// Where the next backfill starts.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Whether `id` was not shown yet.
    pub fn is_new(&self, id: &str) -> bool {
        !self.set.contains(id) && self.floor.as_deref().is_none_or(|f| id > f)
    }

    /// Records `id` as shown; false when it already was (show nothing then).
    pub fn admit(&mut self, id: &str) -> bool {
        if !self.is_new(id) {
            return false;
        }
        self.set.insert(id.to_owned());
        self.recent.push_back(id.to_owned());
        if self.recent.len() > self.capacity
            && let Some(old) = self.recent.pop_front()
        {
            self.set.remove(&old);
            if self.floor.as_deref().is_none_or(|f| old.as_str() > f) {
                self.floor = Some(old);
            }
        }
        if match &self.cursor {
            Cursor::After(last) => id > last.as_str(),
            _ => true,
        } {
            self.cursor = Cursor::After(id.to_owned());
        }
        true
    }

    /// After the first backfill of a fresh start: from now on, the cursor is kept.
    pub fn start(&mut self, newest: Option<&str>) {
        if self.cursor == Cursor::Fresh {
            self.cursor = match newest {
                Some(id) => Cursor::After(id.to_owned()),
                None => Cursor::Empty,
            };
            if let Some(id) = newest {
                self.floor = Some(id.to_owned());
            }
        }
    }

    /// Writes the cursor to the state file (atomically: a temporary file renamed).
    pub fn save(&self) -> anyhow::Result<()> {
        let text = match &self.cursor {
            Cursor::Fresh => return Ok(()),
            Cursor::Empty => String::new(),
            Cursor::After(id) => format!("{id}\n"),
        };
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
        }
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.file)
            .map_err(|e| anyhow::anyhow!("renaming to {}: {e}", self.file.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> String {
        fmn_inbox::item_id(ms, &format!("m{ms}"), None)
    }

    #[test]
    fn each_id_is_admitted_once_and_the_cursor_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state/last");
        let mut seen = Seen::load(&file).unwrap();
        assert_eq!(seen.cursor(), &Cursor::Fresh);
        seen.start(Some(&id(5)));
        assert!(!seen.admit(&id(4)), "older than where we started");
        assert!(seen.admit(&id(7)));
        assert!(seen.admit(&id(6)), "late but not shown yet");
        assert!(!seen.admit(&id(7)));
        assert_eq!(seen.cursor(), &Cursor::After(id(7)));
        seen.save().unwrap();
        let mut again = Seen::load(&file).unwrap();
        assert_eq!(again.cursor(), &Cursor::After(id(7)));
        assert!(!again.admit(&id(7)));
        assert!(again.admit(&id(8)));
        // A state file that holds no id: a fresh start, not a backfill the API refuses.
        std::fs::write(&file, "../../etc\n").unwrap();
        assert_eq!(Seen::load(&file).unwrap().cursor(), &Cursor::Fresh);
    }

    #[test]
    fn an_empty_inbox_makes_everything_after_it_new() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("last");
        let mut seen = Seen::load(&file).unwrap();
        seen.start(None);
        seen.save().unwrap();
        let mut again = Seen::load(&file).unwrap();
        assert_eq!(again.cursor(), &Cursor::Empty);
        assert!(again.admit(&id(1)));
    }

    #[test]
    fn memory_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::load(&dir.path().join("last")).unwrap();
        seen.start(None);
        seen.capacity = 3;
        for id in ["01", "02", "03", "04", "05"] {
            assert!(seen.admit(id));
        }
        assert_eq!(seen.set.len(), 3);
        assert!(!seen.admit("01"), "forgotten but below the floor");
        assert!(!seen.admit("05"));
    }
}
