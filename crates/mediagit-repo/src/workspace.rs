//! `Workspace`: one working tree's local state, beside the [`Store`] it
//! uses: HEAD, the worktree index, the reflogs, the lock, and BASE (the
//! commit this working tree is based on when its refs live in a store that
//! other working trees share).
//!
//! Why apart from the store: none of this leaves the machine. A server
//! hosts stores with no working tree; a push moves objects and refs between
//! stores; two working trees on one bucket share every object and ref but
//! each has its own HEAD, index and lock. Remote-tracking refs
//! (`refs/remotes/NAME/BRANCH`) will sit beside the reflogs here.
//!
//! A `Workspace` is plain paths: opening one reads nothing, and every
//! method reads or writes `.mediagit/` directly. The state it keeps is
//! specified in docs/FORMAT.md §2 (layout), §7 (index) and §8 (HEAD,
//! BASE, reflogs).
//!
//! [`Store`]: crate::Store
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use mediagit_format::index::IndexFile;
use mediagit_format::object::Timestamp;
use mediagit_format::ObjectId;

use crate::codec::ObjectCodec;
use crate::error::{RepoError, Result};
use crate::refs::{Head, ReflogEntry};
use crate::repo::{normalize, write_atomic, write_atomic_with, RepoLock, DOT_DIR};
use crate::worktree::{nanos, now_timestamp, IndexEntries, WorktreeIndex, RACY_MARGIN_NANOS};

/// One working tree's local state (see the module docs).
#[derive(Debug, Clone)]
pub struct Workspace {
    /// `.mediagit/` (the repository itself when bare).
    dir: PathBuf,
    /// The working tree root; `None` when bare.
    worktree: Option<PathBuf>,
    /// Refs live in a store other working trees may share: keep BASE.
    tracks_base: bool,
}

impl Workspace {
    /// The state in `dir` (a `.mediagit` directory, or a bare repository)
    /// for the working tree at `worktree`. `shared_store`: the refs live in
    /// a store other working trees may share (a `[storage]` setting).
    pub fn new(dir: PathBuf, worktree: Option<PathBuf>, shared_store: bool) -> Workspace {
        Workspace {
            dir,
            worktree,
            tracks_base: shared_store,
        }
    }

    /// The `.mediagit` directory (the repository itself when bare).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_bare(&self) -> bool {
        self.worktree.is_none()
    }

    /// The working tree root, or an error for a bare repository.
    pub fn worktree(&self) -> Result<&Path> {
        self.worktree.as_deref().ok_or(RepoError::Bare)
    }

    /// Where packs are written before they are stored.
    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// HEAD. In a bare repository made through a server, HEAD may be the
    /// sealed store HEAD of an encrypted repository ([`RepoError::SealedHead`]:
    /// [`crate::Repository::head`] reads it through the store, with the key).
    pub fn head(&self) -> Result<Head> {
        let path = self.dir().join("HEAD");
        let b = crate::repo::read_private(&path, 64 << 10)?.ok_or_else(|| {
            RepoError::io(
                "read",
                &path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        if crate::store::is_sealed_head(&b) {
            return Err(RepoError::SealedHead { path });
        }
        let s = String::from_utf8(b).map_err(|e| {
            RepoError::io(
                "read",
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        Head::parse(&s).map_err(|e| RepoError::format(path.display().to_string(), e))
    }

    /// Whether this working tree keeps a BASE (its refs live in a store
    /// other working trees may share).
    pub fn tracks_base(&self) -> bool {
        self.tracks_base && !self.is_bare()
    }

    /// `None`: no BASE file; `Some(None)`: based on an unborn branch (the
    /// zero id); `Some(Some(id))`: based on commit `id`.
    pub(crate) fn read_base(&self) -> Result<Option<Option<ObjectId>>> {
        let path = self.dir().join("BASE");
        match crate::repo::read_private_text(&path, 4 << 10)? {
            Some(s) => s
                .trim()
                .parse::<ObjectId>()
                .map(|id| Some((id != ObjectId::ZERO).then_some(id)))
                .map_err(|e| RepoError::format(path.display().to_string(), e)),
            None => Ok(None),
        }
    }

    /// Records the commit this working tree's branch is at (see
    /// [`crate::Repository::head_commit`]); `None` records an unborn branch.
    pub(crate) fn write_base(&self, id: Option<ObjectId>) -> Result<()> {
        if !self.tracks_base() {
            return Ok(());
        }
        let id = id.unwrap_or(ObjectId::ZERO);
        write_atomic(&self.dir().join("BASE"), format!("{id}\n").as_bytes())
    }

    /// Forgets BASE (a detached HEAD names its commit itself).
    pub(crate) fn clear_base(&self) -> Result<()> {
        let path = self.dir().join("BASE");
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RepoError::io("remove", &path, e))
            }
            _ => Ok(()),
        }
    }

    pub fn set_head(&self, head: &Head) -> Result<()> {
        let s = match head {
            Head::Branch(b) => format!("ref: refs/heads/{b}\n"),
            Head::Detached(id) => format!("{id}\n"),
        };
        write_atomic(&self.dir().join("HEAD"), s.as_bytes())
    }

    /// Reflogs are flat files named by the escaped ref name, so a deleted
    /// branch `a/b` keeping its log never blocks a new branch `a`.
    pub(crate) fn reflog_path(&self, name: &str) -> PathBuf {
        self.dir()
            .join("logs")
            .join(name.replace('%', "%25").replace('/', "%2F"))
    }

    /// Refuses a `logs` that is a link (or not a folder): reflogs are
    /// read and appended by name below it, and `O_NOFOLLOW` guards only
    /// the last part of a path.
    pub(crate) fn check_logs_dir(&self) -> Result<()> {
        let logs = self.dir().join("logs");
        match fs::symlink_metadata(&logs) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(RepoError::io(
                "use",
                &logs,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a folder (a symbolic link?); MediaGit never follows links inside .mediagit",
                ),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RepoError::io("stat", &logs, e)),
        }
    }

    pub fn append_reflog(&self, name: &str, entry: &ReflogEntry) -> Result<()> {
        self.check_logs_dir()?;
        let path = self.reflog_path(name);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).map_err(|e| RepoError::io("create directory", p, e))?;
        }
        let created = fs::symlink_metadata(&path).is_err();
        // Never through a link, only to a file (see `read_private`): a
        // link planted as a reflog would have this append to its target.
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)
        }
        .map_err(|e| RepoError::io("open reflog", &path, e))?;
        if !f.metadata().is_ok_and(|m| m.is_file()) {
            return Err(RepoError::io(
                "open reflog",
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file"),
            ));
        }
        f.write_all(entry.to_line().as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| RepoError::io("append to reflog", &path, e))?;
        // A new reflog file exists durably only once its directory entry is.
        if created {
            if let Some(d) = path.parent() {
                mediagit_storage::local_backend::sync_dir(d)
                    .map_err(|e| RepoError::io("fsync", d, e))?;
            }
        }
        crate::failpoint::hit("write:reflog-appended");
        Ok(())
    }

    /// Reflog of `name` (`HEAD` or a full ref name), newest first.
    pub fn reflog(&self, name: &str) -> Result<Vec<ReflogEntry>> {
        let text = self.reflog_text(name)?.unwrap_or_default();
        let mut v: Vec<ReflogEntry> = text.lines().filter_map(ReflogEntry::parse).collect();
        v.reverse();
        Ok(v)
    }

    /// The text of `name`'s reflog, `None` when it has none (read as
    /// [`crate::repo::read_private`] reads; a damaged record stays text).
    pub(crate) fn reflog_text(&self, name: &str) -> Result<Option<String>> {
        self.check_logs_dir()?;
        let path = self.reflog_path(name);
        Ok(
            crate::repo::read_private(&path, crate::repo::MAX_REFLOG_BYTES)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        )
    }

    fn index_path(&self) -> PathBuf {
        self.dir().join("index")
    }

    #[tracing::instrument(name = "load-index", level = "info", skip_all)]
    pub fn load_index(&self) -> Result<WorktreeIndex> {
        match self.read_index_bytes()? {
            Some(bytes) => self.index_from_bytes(&bytes),
            None => Ok(WorktreeIndex::default()),
        }
    }

    /// The index file's bytes (`None`: there is no index yet), for a
    /// reader that looks at them in place ([`IndexView`]) before deciding
    /// whether to build a [`WorktreeIndex`] with
    /// [`Workspace::index_from_bytes`].
    ///
    /// [`IndexView`]: mediagit_format::index::IndexView
    pub fn read_index_bytes(&self) -> Result<Option<Vec<u8>>> {
        let path = self.index_path();
        // A regular file, not through a link, of any size it has.
        crate::repo::read_private(&path, u64::MAX - 1)
    }

    /// Decodes the index file's bytes (every version, checksum checked).
    pub fn index_from_bytes(&self, bytes: &[u8]) -> Result<WorktreeIndex> {
        let path = self.index_path();
        let f = IndexFile::decode(bytes)
            .map_err(|e| RepoError::format(path.display().to_string(), e))?;
        Ok(WorktreeIndex {
            written_at: f.written_at,
            saved_tree: f.tree,
            commit_memo: f.commit_memo,
            resume: f
                .resume
                .into_iter()
                .map(|r| (r.manifest, r.checkpoints))
                .collect(),
            entries: IndexEntries::from_sorted(f.entries),
            conflicts: f.conflicts,
        })
    }

    /// The manifests the index names (staged files and every side of an
    /// unresolved merge), sorted and unique, read in place: a million
    /// entries need not be built to be counted as gc roots.
    pub fn index_manifests(&self) -> Result<Vec<ObjectId>> {
        let path = self.index_path();
        let Some(bytes) = crate::repo::read_private(&path, u64::MAX - 1)? else {
            return Ok(Vec::new());
        };
        let mut ids: Vec<ObjectId> = match mediagit_format::index::IndexView::parse(&bytes) {
            Ok(v) => v.iter().map(|e| e.manifest).collect(),
            // Older versions (and the error that names what is wrong).
            Err(_) => {
                let f = IndexFile::decode(&bytes)
                    .map_err(|e| RepoError::format(path.display().to_string(), e))?;
                let sides = f.conflicts.iter().map(|c| &c.entry);
                f.entries.iter().chain(sides).map(|e| e.manifest).collect()
            }
        };
        drop(bytes);
        ids.retain(|m| !m.is_zero());
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Writes the index atomically. Call only while holding the repository lock.
    #[tracing::instrument(name = "save-index", level = "info", skip_all, fields(entries = idx.entries.len()))]
    pub fn save_index(&self, idx: &mut WorktreeIndex, codec: &ObjectCodec) -> Result<()> {
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
        // The root tree id, so that `status` can tell "nothing staged"
        // without hashing trees (an index naming both `a` and `a/b` makes no
        // tree: no id).
        idx.saved_tree = crate::tree::tree_id_of(idx.entries.values(), codec).ok();
        let mut resume = Vec::new();
        if !idx.resume.is_empty() {
            let named: mediagit_format::id::IdSet =
                idx.entries.values().map(|e| e.manifest).collect();
            idx.resume.retain(|m, _| named.contains(m));
            resume = idx
                .resume
                .iter()
                .map(|(m, c)| mediagit_format::index::ResumePoints {
                    manifest: *m,
                    checkpoints: c.clone(),
                })
                .collect();
            resume.sort_by_key(|r| r.manifest);
        }
        // A path staged again (`add` of the version the user chose) is
        // resolved: its merge stages go; so do those of a path a staged
        // file now replaces (a directory became a file, or the reverse).
        let entries = &idx.entries;
        idx.conflicts.retain(|c| {
            let p = c.entry.path.as_str();
            let mut ancestors = p.match_indices('/').map(|(i, _)| &p[..i]);
            !entries.contains_key(p)
                && entries.below(p).is_empty()
                && !ancestors.any(|a| entries.contains_key(a))
        });
        let f = IndexFile {
            resume,
            written_at: idx.written_at,
            entries: std::mem::take(&mut idx.entries).into_vec(),
            tree: idx.saved_tree,
            commit_memo: idx.commit_memo,
            conflicts: std::mem::take(&mut idx.conflicts),
        };
        let written = write_atomic_with(&self.index_path(), |w| f.encode_to(w));
        idx.entries = IndexEntries(f.entries);
        idx.conflicts = f.conflicts;
        written
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

    /// Takes the repository lock, failing at once if another process holds it.
    pub fn lock(&self) -> Result<RepoLock> {
        RepoLock::acquire(&self.dir)
    }

    /// Converts a user-supplied path (relative to `cwd`) into a repository path
    /// (`/`-separated, relative to the worktree root; `""` for the root).
    pub fn repo_path(&self, cwd: &Path, user: &Path) -> Result<String> {
        let root = self.worktree()?;
        let abs = if user.is_absolute() {
            user.to_path_buf()
        } else {
            cwd.join(user)
        };
        let norm = normalize(&abs);
        // Inside the working tree as written: kept as written, so that a
        // path beyond a symlinked directory is refused by name (commands
        // check that) rather than resolved to wherever the link points.
        // Otherwise resolve symlinks in the parent (not the last component,
        // which may be a link itself): the way in may go through a link.
        let norm = if norm.starts_with(root) {
            norm
        } else {
            match (norm.parent(), norm.file_name()) {
                (Some(p), Some(name)) => match p.canonicalize() {
                    Ok(p) => p.join(name),
                    Err(_) => norm.clone(),
                },
                _ => norm.clone(),
            }
        };
        let rel = norm
            .strip_prefix(root)
            .map_err(|_| RepoError::PathOutsideRepo {
                path: user.to_path_buf(),
                root: root.to_path_buf(),
            })?;
        let mut parts = Vec::new();
        for c in rel.components() {
            let s = c
                .as_os_str()
                .to_str()
                .ok_or_else(|| RepoError::NonUtf8Path {
                    path: user.to_path_buf(),
                })?;
            parts.push(s.to_string());
        }
        if parts.first().map(|s| s == DOT_DIR).unwrap_or(false) {
            return Err(RepoError::Invalid(format!(
                "{} is inside the repository's own {DOT_DIR} directory",
                user.display()
            )));
        }
        if let Some(p) = parts
            .iter()
            .find(|p| mediagit_format::object::is_reserved_name(p))
        {
            return Err(RepoError::Invalid(format!(
                "{}: {p:?} is a name reserved for the repository's own {DOT_DIR} directory (the same directory on case-insensitive filesystems)",
                user.display()
            )));
        }
        Ok(parts.join("/"))
    }
}
