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

/// Whether an `lstat` error means the path is not there (a deletion), as
/// opposed to being unreadable.
pub fn is_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
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
        // Entries still racily clean at this write are "smudged" (ctime
        // zeroed), so no later write of the index can make their stale stat
        // look trustworthy: they are re-hashed until a status finds them
        // safely old. (The ctime is not part of any tree.)
        let written = idx.written_at;
        for e in idx.entries.values_mut() {
            if nanos(&e.stat.mtime) + RACY_MARGIN_NANOS >= nanos(&written) {
                e.stat.ctime = Timestamp::default();
            }
        }
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
    /// What `lstat` said (compact: the walk of 100,000 files moves these around).
    pub stat: StatInfo,
    pub kind: IndexKind,
}

/// A path the walk could not read; collected, not fatal to the walk.
#[derive(Debug)]
pub struct WalkProblem {
    pub path: PathBuf,
    pub message: String,
}

/// Walks the working tree below `under` (a repository path), in no
/// particular order, honouring
/// `.mediagitignore` files (gitignore syntax) and nothing else. Never follows
/// symlinks; skips every `.mediagit` directory. Files are `lstat`ed relative
/// to their directory's descriptor (no path resolution from the root per
/// file), which is what makes `status` on 100,000 files cheap.
pub fn walk(root: &Path, under: &str) -> (Vec<WalkedFile>, Vec<WalkProblem>) {
    let mut w = Walker {
        files: Vec::new(),
        problems: Vec::new(),
        stack: Vec::new(),
    };
    // Rules from .mediagitignore files in the directories above `under`.
    let parts: Vec<&str> = if under.is_empty() {
        vec![]
    } else {
        under.split('/').collect()
    };
    let mut dir = root.to_path_buf();
    if !parts.is_empty() {
        w.push_rules(&dir);
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            w.push_rules(&dir);
        }
    }
    let start = if under.is_empty() {
        root.to_path_buf()
    } else {
        root.join(under)
    };
    match fs::symlink_metadata(&start) {
        Ok(m) if m.is_dir() => {
            if under.is_empty() || !w.ignored(&start, true) {
                // The first level here; its subdirectories on one thread per
                // core (the lstat calls dominate, as in `git status`, which
                // also spreads them over threads).
                let subdirs = w.walk_one(&start, under);
                let stack = w.stack.clone();
                let parts = crate::ingest::parallel_map(&subdirs, |(abs, rel)| {
                    let mut sub = Walker {
                        files: Vec::new(),
                        problems: Vec::new(),
                        stack: stack.clone(),
                    };
                    sub.walk_dir(abs, rel);
                    Ok((sub.files, sub.problems))
                });
                w.stack.pop();
                for (files, problems) in parts.unwrap_or_default() {
                    w.files.extend(files);
                    w.problems.extend(problems);
                }
            }
        }
        Ok(m) => {
            if let Some(kind) = index_kind(&m) {
                w.files.push(WalkedFile {
                    path: under.to_string(),
                    stat: stat_info(&m),
                    kind,
                });
            }
        }
        Err(e) => w.problems.push(WalkProblem {
            path: start,
            message: e.to_string(),
        }),
    }
    let Walker {
        files, problems, ..
    } = w;
    (files, problems)
}

struct Walker {
    files: Vec<WalkedFile>,
    problems: Vec<WalkProblem>,
    /// Ignore rules of the directories from the root down to the current one;
    /// `None` for directories without a `.mediagitignore`.
    stack: Vec<Option<ignore::gitignore::Gitignore>>,
}

impl Walker {
    fn push_rules(&mut self, dir: &Path) {
        let file = dir.join(IGNORE_FILE);
        if !file.is_file() {
            self.stack.push(None);
            return;
        }
        let mut b = ignore::gitignore::GitignoreBuilder::new(dir);
        if let Some(e) = b.add(&file) {
            self.problems.push(WalkProblem {
                path: file.clone(),
                message: format!("bad ignore rule: {e}"),
            });
        }
        match b.build() {
            Ok(g) => self.stack.push(Some(g)),
            Err(e) => {
                self.problems.push(WalkProblem {
                    path: file,
                    message: format!("ignore rules not used: {e}"),
                });
                self.stack.push(None);
            }
        }
    }

    /// The deepest rule that matches decides (a `!` rule re-includes).
    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        for g in self.stack.iter().rev().flatten() {
            match g.matched(path, is_dir) {
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
                ignore::Match::None => {}
            }
        }
        false
    }

    fn walk_dir(&mut self, abs: &Path, rel: &str) {
        let depth = self.stack.len();
        for (path, child) in self.walk_one(abs, rel) {
            self.walk_dir(&path, &child);
        }
        self.stack.truncate(depth);
    }

    /// Reads one directory: records its files, pushes its ignore rules (the
    /// caller pops them) and returns its subdirectories.
    fn walk_one(&mut self, abs: &Path, rel: &str) -> Vec<(PathBuf, String)> {
        let rd = match fs::read_dir(abs) {
            Ok(rd) => rd,
            Err(e) => {
                self.problems.push(WalkProblem {
                    path: abs.to_path_buf(),
                    message: e.to_string(),
                });
                self.stack.push(None);
                return Vec::new();
            }
        };
        self.push_rules(abs);
        let mut dirs = Vec::new();
        for entry in rd {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.problems.push(WalkProblem {
                        path: abs.to_path_buf(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let name = entry.file_name();
            if name == DOT_DIR {
                continue;
            }
            let Some(name) = name.to_str().map(str::to_string) else {
                self.problems.push(WalkProblem {
                    path: entry.path(),
                    message: "file name is not valid UTF-8; skipped".into(),
                });
                continue;
            };
            let path = entry.path();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if self.ignored(&path, is_dir) {
                continue;
            }
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if is_dir {
                dirs.push((path, child));
                continue;
            }
            // lstat relative to the directory's descriptor.
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    self.problems.push(WalkProblem {
                        path,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            match index_kind(&meta) {
                Some(kind) => self.files.push(WalkedFile {
                    path: child,
                    stat: stat_info(&meta),
                    kind,
                }),
                None if meta.is_dir() => dirs.push((path, child)),
                None => self.problems.push(WalkProblem {
                    path,
                    message: "not a regular file or symlink (socket, fifo or device); skipped"
                        .into(),
                }),
            }
        }
        dirs
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
