//! Resuming an interrupted `add`.
//!
//! While `add` runs, its packs are stored at checkpoints (every
//! `[core] checkpoint_bytes` of new objects or `checkpoint_seconds`, see
//! [`Checkpoints`]), and after each checkpoint the working tree's add
//! journal (`.mediagit/add-journal`, format in `mediagit_format::journal`)
//! gains a record for every file whose objects are now stored, and for
//! every large file part way through, its leading chunks and whole-file
//! hash state. A killed or interrupted `add` thus keeps what it stored;
//! the next `add` takes a recorded file without reading it (its `stat` and
//! its objects checked), and continues a large file from its last stored
//! chunk instead of from its first byte. A successful `add` deletes the
//! journal.
//!
//! Why not stage the files at each checkpoint instead: `add` stages all
//! or nothing (a failed command leaves the index as it was), and the
//! journal keeps that. Checkpointed objects no commit references yet are
//! protected from `gc` by its grace period, like any new pack's.
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mediagit_format::index::{HashCheckpoint, IndexKind, StatInfo};
use mediagit_format::journal::{encode_header, encode_record, JournalReader, JournalRecord};
use mediagit_format::{ManifestChunk, ObjectId};

use crate::odb::Odb;
use crate::worktree::{nanos, now_timestamp, RACY_MARGIN_NANOS};

/// When `add` stores what it has written so far.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoints {
    /// After this many bytes of new (stored, compressed) objects.
    pub bytes: u64,
    /// After this long, whatever was written.
    pub every: Duration,
}

/// Default [`Checkpoints::every`].
pub const DEFAULT_CHECKPOINT_SECONDS: u64 = 30;

/// A file found in the journal, whole.
#[derive(Debug, Clone)]
pub struct DoneFile {
    pub kind: IndexKind,
    pub stat: StatInfo,
    pub content: ObjectId,
    pub manifest: ObjectId,
    pub checkpoints: Vec<HashCheckpoint>,
}

/// The leading chunks of a large file, found in the journal.
#[derive(Debug, Clone, Default)]
pub struct PartialFile {
    pub stat: StatInfo,
    pub chunks: Vec<ManifestChunk>,
    pub checkpoints: Vec<HashCheckpoint>,
}

/// The progress of a large file being read, shared by the worker reading
/// it (chunks), its hashing thread (checkpoints) and the checkpoint writer.
#[derive(Debug, Default)]
pub struct FileProgress {
    stat: StatInfo,
    chunks: Vec<ManifestChunk>,
    checkpoints: Vec<HashCheckpoint>,
    /// Chunks already in the journal for this file.
    journaled: usize,
    /// Checkpoints already in the journal.
    journaled_cps: usize,
}

impl DoneFile {
    fn record(&self, path: String) -> JournalRecord {
        JournalRecord::Done {
            path,
            kind: self.kind,
            stat: self.stat,
            content: self.content,
            manifest: self.manifest,
            checkpoints: self.checkpoints.clone(),
        }
    }
}

impl FileProgress {
    pub fn push_chunk(&mut self, c: ManifestChunk) {
        self.chunks.push(c);
    }
    pub fn push_checkpoint(&mut self, c: HashCheckpoint) {
        self.checkpoints.push(c);
    }
}

pub type SharedProgress = Arc<Mutex<FileProgress>>;

#[derive(Default)]
struct State {
    file: Option<File>,
    /// The journal could not be written: stop trying (it is only a hint).
    broken: bool,
    /// Files finished since the last checkpoint, not yet journaled.
    done: Vec<JournalRecord>,
    /// Large files being read, by path.
    active: HashMap<String, SharedProgress>,
    /// Large files whose reading stopped (interrupted, failed): journaled
    /// once more, then forgotten.
    stopped: Vec<(String, SharedProgress)>,
}

/// The journal of one `add` run (see the module docs).
pub struct AddJournal {
    path: PathBuf,
    /// What the previous, interrupted runs recorded (latest per path).
    done: HashMap<String, DoneFile>,
    partial: HashMap<String, PartialFile>,
    /// Sound bytes of the existing journal (the rest is a torn append).
    valid_len: u64,
    state: Mutex<State>,
    /// Files journaled whole by this run.
    files_kept: AtomicU64,
    /// Set to stop the run (Ctrl-C).
    cancel: Arc<AtomicBool>,
}

impl AddJournal {
    /// Reads the journal at `path` if there is one. Unreadable, damaged or
    /// of an unknown version: as if there were none (it is only a hint).
    pub fn open(path: PathBuf, cancel: Arc<AtomicBool>) -> AddJournal {
        let mut done: HashMap<String, DoneFile> = HashMap::new();
        let mut partial: HashMap<String, PartialFile> = HashMap::new();
        let mut valid_len = 0;
        if let Ok(f) = open_nofollow(&path, false) {
            if let Ok(mut r) = JournalReader::new(BufReader::new(f)) {
                for rec in r.by_ref() {
                    apply(&mut done, &mut partial, rec);
                }
                valid_len = r.valid_len;
            }
        }
        AddJournal {
            path,
            done,
            partial,
            valid_len,
            state: Mutex::new(State::default()),
            files_kept: AtomicU64::new(0),
            cancel,
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The recorded file at `path` if its `stat` is still `stat`.
    pub fn done_file(&self, path: &str, stat: &StatInfo) -> Option<&DoneFile> {
        self.done.get(path).filter(|d| &d.stat == stat)
    }

    /// The recorded leading chunks of `path` if its `stat` is still `stat`.
    pub fn partial_file(&self, path: &str, stat: &StatInfo) -> Option<&PartialFile> {
        self.partial.get(path).filter(|p| &p.stat == stat)
    }

    /// Starts tracking a large file being read from `stat`, continuing
    /// from `resumed` (chunks and checkpoints already journaled) if given.
    pub fn begin(
        &self,
        path: &str,
        stat: StatInfo,
        resumed: Option<(&[ManifestChunk], &[HashCheckpoint])>,
    ) -> SharedProgress {
        let mut p = FileProgress {
            stat,
            ..Default::default()
        };
        if let Some((chunks, cps)) = resumed {
            p.chunks = chunks.to_vec();
            p.checkpoints = cps.to_vec();
            p.journaled = chunks.len();
            p.journaled_cps = cps.len();
        }
        let p = Arc::new(Mutex::new(p));
        self.lock().active.insert(path.to_string(), p.clone());
        p
    }

    /// A large file's reading ended without a result: its progress is
    /// journaled at the next checkpoint.
    pub fn stop(&self, path: &str) {
        let mut st = self.lock();
        if let Some(p) = st.active.remove(path) {
            st.stopped.push((path.to_string(), p));
        }
    }

    /// A file was stored whole (its manifest sent to the pack writer).
    pub fn finished(&self, path: &str, d: &DoneFile) {
        let mut st = self.lock();
        st.active.remove(path);
        st.done.push(d.record(path.to_string()));
    }

    /// Files journaled whole by this run.
    pub fn files_kept(&self) -> u64 {
        self.files_kept.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called after a checkpoint stored the packs written so far: journals
    /// every finished file whose manifest is now stored and the progress
    /// of every large file. Best effort: a journal that cannot be written
    /// only costs the resume.
    pub fn record(&self, odb: &Odb) {
        let mut st = self.lock();
        if st.broken {
            return;
        }
        let now = nanos(&now_timestamp());
        // A file modified within the racy margin of now could change again
        // without its mtime moving: never vouch for it (as Git's racy
        // check; a changed ctime or inode is caught by the stat comparison).
        let settled = |s: &StatInfo| nanos(&s.mtime) + RACY_MARGIN_NANOS < now;
        let mut frames = Vec::new();
        let mut kept = 0;
        let pending = std::mem::take(&mut st.done);
        for rec in pending {
            let JournalRecord::Done { manifest, stat, .. } = &rec else {
                continue;
            };
            if !settled(stat) {
                // Perhaps settled at the next checkpoint.
                st.done.push(rec);
                continue;
            }
            if odb.has_sound(manifest) {
                frames.extend(encode_record(&rec));
                kept += 1;
            } else {
                // Still in the writer's queue: the next checkpoint.
                st.done.push(rec);
            }
        }
        let stopped = std::mem::take(&mut st.stopped);
        let active: Vec<(String, SharedProgress)> = st
            .active
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(stopped)
            .collect();
        for (path, p) in active {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            if !settled(&p.stat) {
                continue;
            }
            // Up to the last hash checkpoint whose chunks are all known.
            let Some(upto) = p
                .checkpoints
                .iter()
                .rev()
                .map(|c| c.chunks as usize)
                .find(|&n| n <= p.chunks.len())
            else {
                continue;
            };
            if upto <= p.journaled && p.checkpoints.len() == p.journaled_cps {
                continue;
            }
            let first = p.journaled.min(upto);
            let new_cps: Vec<HashCheckpoint> = p
                .checkpoints
                .iter()
                .filter(|c| c.chunks as usize <= upto && c.chunks as usize > first)
                .copied()
                .collect();
            let rec = JournalRecord::Partial {
                path,
                stat: p.stat,
                first: first as u32,
                chunks: p.chunks[first..upto].to_vec(),
                checkpoints: new_cps,
            };
            frames.extend(encode_record(&rec));
            p.journaled = upto;
            p.journaled_cps = p
                .checkpoints
                .iter()
                .filter(|c| c.chunks as usize <= upto)
                .count();
        }
        if frames.is_empty() {
            return;
        }
        if let Err(()) = self.append(&mut st, &frames) {
            st.broken = true;
            return;
        }
        crate::failpoint::hit("write:journal-appended");
        self.files_kept.fetch_add(kept, Ordering::Relaxed);
    }

    fn append(&self, st: &mut State, frames: &[u8]) -> Result<(), ()> {
        if st.file.is_none() {
            let mut f = open_nofollow(&self.path, true).map_err(drop)?;
            if self.valid_len == 0 {
                f.set_len(0).map_err(drop)?;
                f.write_all(&encode_header()).map_err(drop)?;
            } else {
                // Cut a torn append off before adding to it.
                f.set_len(self.valid_len).map_err(drop)?;
            }
            use std::io::Seek;
            f.seek(std::io::SeekFrom::End(0)).map_err(drop)?;
            st.file = Some(f);
        }
        let f = st.file.as_mut().ok_or(())?;
        f.write_all(frames).map_err(drop)
    }

    /// Whether records could not be written (a next run cannot resume
    /// from this one).
    pub fn broken(&self) -> bool {
        self.lock().broken
    }

    /// After a successful add that looked at every path for which
    /// `covered` holds: keeps only what an interrupted add recorded for
    /// the other paths, rewritten compactly (temporary file, renamed over
    /// the journal); deletes the journal when nothing is left. Best effort.
    pub fn finish_add(self, covered: impl Fn(&str) -> bool) {
        drop(self.lock().file.take());
        if self.done.is_empty() && self.partial.is_empty() {
            let _ = std::fs::remove_file(&self.path);
            return;
        }
        let outside = |p: &str| !covered(p);
        let mut frames = Vec::new();
        let mut done: Vec<_> = self.done.iter().filter(|(p, _)| outside(p)).collect();
        done.sort_by(|a, b| a.0.cmp(b.0));
        for (path, d) in done {
            frames.extend(encode_record(&d.record(path.clone())));
        }
        let mut partial: Vec<_> = self.partial.iter().filter(|(p, _)| outside(p)).collect();
        partial.sort_by(|a, b| a.0.cmp(b.0));
        for (path, p) in partial {
            if p.chunks.is_empty() {
                continue;
            }
            frames.extend(encode_record(&JournalRecord::Partial {
                path: path.clone(),
                stat: p.stat,
                first: 0,
                chunks: p.chunks.clone(),
                checkpoints: p.checkpoints.clone(),
            }));
        }
        if frames.is_empty() {
            let _ = std::fs::remove_file(&self.path);
            return;
        }
        let mut bytes = encode_header().to_vec();
        bytes.extend(frames);
        let tmp = self.path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let written = open_nofollow(&tmp, true)
            .and_then(|mut f| f.write_all(&bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Opens the journal without following a symlink at its path (`ELOOP`
/// then): `.mediagit/add-journal` linked to another file must not make
/// `add` read or overwrite that file. Created private (0600), as the index.
fn open_nofollow(path: &Path, write: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = OpenOptions::new();
    // Non-blocking too: a FIFO planted there must not hang `add` (which
    // holds the repository lock meanwhile).
    o.read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    if write {
        o.write(true).create(true).truncate(false).mode(0o600);
    }
    let f = o.open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// Where a working tree keeps its add journal.
pub fn journal_path(workspace_dir: &Path) -> PathBuf {
    workspace_dir.join("add-journal")
}

fn apply(
    done: &mut HashMap<String, DoneFile>,
    partial: &mut HashMap<String, PartialFile>,
    rec: JournalRecord,
) {
    match rec {
        JournalRecord::Done {
            path,
            kind,
            stat,
            content,
            manifest,
            checkpoints,
        } => {
            partial.remove(&path);
            done.insert(
                path,
                DoneFile {
                    kind,
                    stat,
                    content,
                    manifest,
                    checkpoints,
                },
            );
        }
        JournalRecord::Partial {
            path,
            stat,
            first,
            chunks,
            checkpoints,
        } => {
            let first = first as usize;
            let p = partial.entry(path).or_default();
            if p.stat != stat || first > p.chunks.len() {
                *p = PartialFile {
                    stat,
                    ..Default::default()
                };
                if first != 0 {
                    // A continuation of something we do not have.
                    return;
                }
            }
            p.chunks.truncate(first);
            p.checkpoints.retain(|c| (c.chunks as usize) <= first);
            p.chunks.extend(chunks);
            p.checkpoints.extend(checkpoints);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediagit_format::object::Timestamp;

    fn stat(n: u64) -> StatInfo {
        StatInfo {
            size: n,
            mtime: Timestamp { secs: 1, nanos: 0 },
            ctime: Timestamp { secs: 1, nanos: 0 },
            ino: 1,
            dev: 1,
        }
    }

    fn chunk(i: u32) -> ManifestChunk {
        ManifestChunk {
            id: ObjectId::hash(&i.to_le_bytes()),
            len: 100,
        }
    }

    fn cp(n: u32) -> HashCheckpoint {
        HashCheckpoint {
            chunks: n,
            offset: 64 * n as u64,
            state: [n; 8],
        }
    }

    fn partial(first: u32, n: std::ops::Range<u32>, cps: &[u32], size: u64) -> JournalRecord {
        JournalRecord::Partial {
            path: "f".into(),
            stat: stat(size),
            first,
            chunks: n.map(chunk).collect(),
            checkpoints: cps.iter().map(|&c| cp(c)).collect(),
        }
    }

    #[test]
    fn partial_records_chain_and_restart() {
        let (mut d, mut p) = (HashMap::new(), HashMap::new());
        apply(&mut d, &mut p, partial(0, 0..4, &[2, 4], 9));
        apply(&mut d, &mut p, partial(4, 4..6, &[6], 9));
        assert_eq!(p["f"].chunks.len(), 6);
        assert_eq!(p["f"].checkpoints.len(), 3);
        // A resumed run continues from chunk 2: what follows is replaced.
        apply(&mut d, &mut p, partial(2, 2..3, &[3], 9));
        assert_eq!(p["f"].chunks.len(), 3);
        assert_eq!(
            p["f"]
                .checkpoints
                .iter()
                .map(|c| c.chunks)
                .collect::<Vec<_>>(),
            [2, 3]
        );
        // The file changed: a record for the new stat starts over.
        apply(&mut d, &mut p, partial(0, 0..1, &[], 10));
        assert_eq!(p["f"].chunks.len(), 1);
        assert_eq!(p["f"].stat.size, 10);
        // A continuation of unknown chunks is dropped, never spliced.
        apply(&mut d, &mut p, partial(5, 5..6, &[6], 10));
        assert!(p["f"].chunks.is_empty());
    }

    #[test]
    fn a_done_record_replaces_the_partial_one() {
        let (mut d, mut p) = (HashMap::new(), HashMap::new());
        apply(&mut d, &mut p, partial(0, 0..4, &[2], 9));
        apply(
            &mut d,
            &mut p,
            JournalRecord::Done {
                path: "f".into(),
                kind: IndexKind::File,
                stat: stat(9),
                content: ObjectId::hash(b"c"),
                manifest: ObjectId::hash(b"m"),
                checkpoints: vec![],
            },
        );
        assert!(p.is_empty());
        assert_eq!(d["f"].content, ObjectId::hash(b"c"));
    }
}
