//! The worktree index (staging area + stat cache), and walking the working tree.
use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mediagit_format::index::{IndexEntry, IndexFile, IndexKind, StatInfo};
use mediagit_format::object::Timestamp;

use crate::error::{RepoError, Result};
use crate::repo::{write_atomic, Repository, DOT_DIR};

/// Name of the ignore-rules files (gitignore syntax). `.gitignore` files are
/// ordinary content to MediaGit.
pub const IGNORE_FILE: &str = ".mediagitignore";

/// Entries whose mtime is this close to the time the index was written are
/// "racily clean": their content may have changed within the timestamp
/// granularity, so they are re-hashed instead of trusted.
const RACY_MARGIN_NANOS: i128 = 1_000_000_000;

#[derive(Debug, Clone, Default)]
pub struct WorktreeIndex {
    pub entries: BTreeMap<String, IndexEntry>,
    pub written_at: Timestamp,
}

impl WorktreeIndex {
    /// Whether a fresh `stat` proves the entry unchanged without reading it.
    pub fn stat_clean(&self, e: &IndexEntry, now: &StatInfo, kind: IndexKind) -> bool {
        e.kind == kind && e.stat == *now && !self.is_racy(e)
    }

    fn is_racy(&self, e: &IndexEntry) -> bool {
        nanos(&e.stat.mtime) + RACY_MARGIN_NANOS >= nanos(&self.written_at)
    }

    /// Entries at `path` or below it (`""` = everything).
    pub fn under<'a>(
        &'a self,
        path: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a IndexEntry)> + 'a {
        self.entries
            .iter()
            .filter(move |(p, _)| path_is_under(p, path))
    }
}

fn nanos(t: &Timestamp) -> i128 {
    t.secs as i128 * 1_000_000_000 + t.nanos as i128
}

/// `p` equals `dir` or lies below it; `""` contains everything.
pub fn path_is_under(p: &str, dir: &str) -> bool {
    dir.is_empty() || p == dir || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
}

pub fn now_timestamp() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        secs: d.as_secs() as i64,
        nanos: d.subsec_nanos(),
    }
}

pub fn stat_info(m: &Metadata) -> StatInfo {
    StatInfo {
        size: m.len(),
        mtime: Timestamp {
            secs: m.mtime(),
            nanos: m.mtime_nsec() as u32,
        },
        ctime: Timestamp {
            secs: m.ctime(),
            nanos: m.ctime_nsec() as u32,
        },
        ino: m.ino(),
        dev: m.dev(),
    }
}

/// The kind of a file from `lstat`, or `None` for what MediaGit does not
/// store (directories, sockets, fifos, devices).
pub fn index_kind(m: &Metadata) -> Option<IndexKind> {
    let ft = m.file_type();
    if ft.is_symlink() {
        Some(IndexKind::Symlink)
    } else if ft.is_file() {
        if m.mode() & 0o100 != 0 {
            Some(IndexKind::Executable)
        } else {
            Some(IndexKind::File)
        }
    } else {
        None
    }
}

impl Repository {
    fn index_path(&self) -> PathBuf {
        self.dir().join("index")
    }

    pub fn load_index(&self) -> Result<WorktreeIndex> {
        let path = self.index_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(WorktreeIndex::default())
            }
            Err(e) => return Err(RepoError::io("read", &path, e)),
        };
        let f = IndexFile::decode(&bytes)
            .map_err(|e| RepoError::format(path.display().to_string(), e))?;
        Ok(WorktreeIndex {
            written_at: f.written_at,
            entries: f.entries.into_iter().map(|e| (e.path.clone(), e)).collect(),
        })
    }

    /// Writes the index atomically. Call only while holding the repository lock.
    pub fn save_index(&self, idx: &mut WorktreeIndex) -> Result<()> {
        idx.written_at = now_timestamp();
        let f = IndexFile {
            written_at: idx.written_at,
            entries: idx.entries.values().cloned().collect(),
        };
        write_atomic(&self.index_path(), &f.encode())
    }

    /// Absolute path of a repository path.
    pub fn abs_path(&self, repo_path: &str) -> Result<PathBuf> {
        let root = self.worktree()?;
        Ok(if repo_path.is_empty() {
            root.to_path_buf()
        } else {
            root.join(repo_path)
        })
    }
}

/// A file (or symlink) found in the working tree.
#[derive(Debug)]
pub struct WalkedFile {
    pub path: String,
    pub meta: Metadata,
    pub kind: IndexKind,
}

/// A path the walk could not read; collected, not fatal to the walk.
#[derive(Debug)]
pub struct WalkProblem {
    pub path: PathBuf,
    pub message: String,
}

/// Walks the working tree below `under` (a repository path), honouring
/// `.mediagitignore` files and nothing else. Never follows symlinks; skips
/// every `.mediagit` directory.
pub fn walk(root: &Path, under: &str) -> (Vec<WalkedFile>, Vec<WalkProblem>) {
    let start = if under.is_empty() {
        root.to_path_buf()
    } else {
        root.join(under)
    };
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut builder = ignore::WalkBuilder::new(&start);
    builder
        .standard_filters(false)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(false)
        .git_global(false)
        .git_exclude(false)
        .follow_links(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .filter_entry(|e| e.file_name() != DOT_DIR);
    // .mediagitignore files in the directories above `start` apply too.
    if !under.is_empty() {
        let mut dir = start.parent();
        while let Some(d) = dir {
            if !d.starts_with(root) {
                break;
            }
            let f = d.join(IGNORE_FILE);
            if f.is_file() {
                builder.add_ignore(f);
            }
            dir = d.parent();
        }
    }
    for entry in builder.build() {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                problems.push(WalkProblem {
                    path: err_path(&err).unwrap_or_else(|| start.clone()),
                    message: err.to_string(),
                });
                continue;
            }
        };
        let p = entry.path();
        let meta = match fs::symlink_metadata(p) {
            Ok(m) => m,
            Err(e) => {
                problems.push(WalkProblem {
                    path: p.to_path_buf(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        if meta.is_dir() {
            continue;
        }
        let Some(kind) = index_kind(&meta) else {
            problems.push(WalkProblem {
                path: p.to_path_buf(),
                message: "not a regular file or symlink (socket, fifo or device); skipped".into(),
            });
            continue;
        };
        let rel = match p.strip_prefix(root).ok().and_then(|r| r.to_str()) {
            Some(r) => r.to_string(),
            None => {
                problems.push(WalkProblem {
                    path: p.to_path_buf(),
                    message: "file name is not valid UTF-8; skipped".into(),
                });
                continue;
            }
        };
        files.push(WalkedFile {
            path: rel,
            meta,
            kind,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    (files, problems)
}

fn err_path(e: &ignore::Error) -> Option<PathBuf> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            err_path(err)
        }
        _ => None,
    }
}

/// A fresh index entry for a stored file.
pub fn make_entry(
    path: &str,
    kind: IndexKind,
    stat: StatInfo,
    content: mediagit_format::ObjectId,
    manifest: mediagit_format::ObjectId,
    target: Option<String>,
) -> IndexEntry {
    IndexEntry {
        path: path.to_string(),
        kind,
        stat,
        content,
        manifest,
        target,
    }
}
