//! The worktree index (staging area + stat cache), and walking the working tree.
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mediagit_format::index::{IndexEntry, IndexKind, StatInfo};
use mediagit_format::object::Timestamp;
use mediagit_format::ObjectId;

use crate::error::{RepoError, Result};
use crate::repo::DOT_DIR;

/// Name of the ignore-rules files (gitignore syntax). `.gitignore` files are
/// ordinary content to MediaGit.
pub const IGNORE_FILE: &str = ".mediagitignore";

/// Entries whose mtime is this close to the time the index was written are
/// "racily clean": their content may have changed within the timestamp
/// granularity, so they are re-hashed instead of trusted.
pub(crate) const RACY_MARGIN_NANOS: i128 = 1_000_000_000;

/// The index's entries: one vector sorted by path bytes, as on disk (and as
/// git keeps its index). Loading is one decode, with no map to build, and
/// lookups are binary searches. Changes of many paths at once go through
/// [`IndexEntries::insert_many`], a single merge.
#[derive(Debug, Clone, Default)]
pub struct IndexEntries(pub(crate) Vec<IndexEntry>);

impl IndexEntries {
    /// Entries already sorted by path and unique (what
    /// [`IndexFile::decode`] checks); sorted here otherwise.
    pub fn from_sorted(mut v: Vec<IndexEntry>) -> IndexEntries {
        if !v.windows(2).all(|w| w[0].path < w[1].path) {
            v.sort_by(|a, b| a.path.cmp(&b.path));
            v.dedup_by(|later, earlier| later.path == earlier.path);
        }
        IndexEntries(v)
    }

    fn find(&self, path: &str) -> std::result::Result<usize, usize> {
        self.0.binary_search_by(|e| e.path.as_str().cmp(path))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, path: &str) -> Option<&IndexEntry> {
        self.find(path).ok().map(|i| &self.0[i])
    }

    pub fn contains_key(&self, path: &str) -> bool {
        self.find(path).is_ok()
    }

    /// Adds or replaces the entry for `e.path`; returns the one replaced.
    /// One insert costs a move of the entries after it: use
    /// [`IndexEntries::insert_many`] for many paths.
    pub fn insert(&mut self, e: IndexEntry) -> Option<IndexEntry> {
        if self.0.last().is_none_or(|l| l.path < e.path) {
            self.0.push(e);
            return None;
        }
        match self.find(&e.path) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i], e)),
            Err(i) => {
                self.0.insert(i, e);
                None
            }
        }
    }

    /// Adds or replaces many entries in one merge; for equal paths the
    /// last entry of `batch` wins.
    pub fn insert_many(&mut self, mut batch: Vec<IndexEntry>) {
        if batch.is_empty() {
            return;
        }
        // A batch already sorted and unique (a caller that sorted it in
        // place) is taken as it is: the stable sort's scratch would be
        // half a million-file batch again.
        if !batch.windows(2).all(|w| w[0].path < w[1].path) {
            batch.sort_by(|a, b| a.path.cmp(&b.path));
            // Keep the last of equal paths: reverse, dedup (keeps the first), reverse.
            batch.reverse();
            batch.dedup_by(|later, earlier| later.path == earlier.path);
            batch.reverse();
        }
        if self.0.is_empty() {
            // A first add: the batch is the index (no second copy of it).
            self.0 = batch;
            return;
        }
        // Paths the index has are replaced where they stand; the others
        // are merged in from the back, in place: never a second copy of a
        // million-entry index (a checkout rewrites every entry).
        let mut fresh = self.replace_existing(batch);
        if fresh.is_empty() {
            return;
        }
        let n = self.0.len();
        self.0.reserve_exact(fresh.len());
        self.0.resize_with(n + fresh.len(), || IndexEntry {
            path: String::new(),
            kind: IndexKind::File,
            stat: StatInfo::default(),
            content: ObjectId::ZERO,
            manifest: ObjectId::ZERO,
            target: None,
        });
        let (mut i, mut k) = (n, self.0.len());
        while let Some(f) = fresh.pop() {
            while i > 0 && self.0[i - 1].path > f.path {
                self.0.swap(i - 1, k - 1);
                i -= 1;
                k -= 1;
            }
            self.0[k - 1] = f;
            k -= 1;
        }
    }

    /// Replaces the entries whose paths the index has, in place, and
    /// returns the others (for one [`IndexEntries::insert_many`] later).
    pub fn replace_existing(&mut self, batch: Vec<IndexEntry>) -> Vec<IndexEntry> {
        let mut rest = Vec::new();
        for e in batch {
            match self.find(&e.path) {
                Ok(i) => self.0[i] = e,
                Err(_) => rest.push(e),
            }
        }
        rest
    }

    pub fn remove(&mut self, path: &str) -> Option<IndexEntry> {
        self.find(path).ok().map(|i| self.0.remove(i))
    }

    /// Removes every entry below directory `dir` (not `dir` itself).
    pub fn remove_below(&mut self, dir: &str) -> usize {
        let r = self.below_range(dir);
        let n = r.len();
        self.0.drain(r);
        n
    }

    /// The entries below directory `dir` (paths starting with `dir/`): one
    /// contiguous, sorted run.
    pub fn below(&self, dir: &str) -> &[IndexEntry] {
        &self.0[self.below_range(dir)]
    }

    fn below_range(&self, dir: &str) -> std::ops::Range<usize> {
        if dir.is_empty() {
            return 0..self.0.len();
        }
        let prefix = format!("{dir}/");
        let start = self
            .0
            .partition_point(|e| e.path.as_str() < prefix.as_str());
        let len = self.0[start..].partition_point(|e| e.path.starts_with(&prefix));
        start..start + len
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &IndexEntry)> + '_ {
        self.0.iter().map(|e| (&e.path, e))
    }

    pub fn values(&self) -> std::slice::Iter<'_, IndexEntry> {
        self.0.iter()
    }

    /// Mutable access to the entries; changing a path is not allowed (it
    /// would break the order).
    pub fn values_mut(&mut self) -> std::slice::IterMut<'_, IndexEntry> {
        self.0.iter_mut()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> + '_ {
        self.0.iter().map(|e| &e.path)
    }

    pub fn into_vec(self) -> Vec<IndexEntry> {
        self.0
    }
}

impl std::ops::Index<&str> for IndexEntries {
    type Output = IndexEntry;

    fn index(&self, path: &str) -> &IndexEntry {
        match self.get(path) {
            Some(e) => e,
            None => panic!("no index entry for {path:?}"),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WorktreeIndex {
    pub entries: IndexEntries,
    pub written_at: Timestamp,
    /// The root tree id of the entries as they were read from disk or last
    /// saved (see [`IndexFile::tree`]). Stale as soon as `entries` change:
    /// use it only on an index fresh from [`Repository::load_index`].
    pub saved_tree: Option<mediagit_format::ObjectId>,
    /// A commit, its root tree id and its pack (see [`IndexFile::commit_memo`]); kept
    /// as is by every save.
    pub commit_memo: Option<mediagit_format::index::CommitMemo>,
    /// Whole-file hash checkpoints by manifest id (see
    /// [`IndexFile::resume`]); a save keeps those of manifests that some
    /// entry still names.
    pub resume: mediagit_format::id::IdMap<Vec<mediagit_format::index::HashCheckpoint>>,
    /// Paths a merge left unresolved, each with its base/ours/theirs
    /// entries (see [`IndexFile::conflicts`]); kept as is by every save.
    pub conflicts: Vec<mediagit_format::index::ConflictEntry>,
}

impl WorktreeIndex {
    /// The conflicted paths, each once, sorted.
    pub fn conflicted_paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .conflicts
            .iter()
            .map(|c| c.entry.path.clone())
            .collect();
        v.dedup();
        v
    }
}

impl WorktreeIndex {
    /// Whether a fresh `stat` proves the entry unchanged without reading it.
    pub fn stat_clean(&self, e: &IndexEntry, now: &StatInfo, kind: IndexKind) -> bool {
        e.kind == kind && e.stat == *now && !self.is_racy(e)
    }

    fn is_racy(&self, e: &IndexEntry) -> bool {
        nanos(&e.stat.mtime) + RACY_MARGIN_NANOS >= nanos(&self.written_at)
    }

    /// Entries at `path` or below it (`""` = everything), in path order.
    pub fn under<'a>(
        &'a self,
        path: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a IndexEntry)> + 'a {
        let exact = if path.is_empty() {
            None
        } else {
            self.entries.get(path)
        };
        exact
            .into_iter()
            .chain(self.entries.below(path))
            .map(|e| (&e.path, e))
    }
}

pub(crate) fn nanos(t: &Timestamp) -> i128 {
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

/// [`stat_info`] from a raw `lstat` (the walk's `fstatat`). The same
/// numbers as `std`'s `Metadata` gives (tested): an index written from one
/// is clean against the other.
#[allow(clippy::unnecessary_cast)] // the field types differ between targets
pub(crate) fn raw_stat_info(st: &rustix::fs::Stat) -> StatInfo {
    StatInfo {
        size: st.st_size as u64,
        mtime: Timestamp {
            secs: st.st_mtime as i64,
            nanos: st.st_mtime_nsec as u32,
        },
        ctime: Timestamp {
            secs: st.st_ctime as i64,
            nanos: st.st_ctime_nsec as u32,
        },
        ino: st.st_ino as u64,
        dev: st.st_dev as u64,
    }
}

/// [`index_kind`] from a raw `lstat`.
pub(crate) fn raw_index_kind(st: &rustix::fs::Stat) -> Option<IndexKind> {
    use rustix::fs::FileType;
    match FileType::from_raw_mode(st.st_mode as _) {
        FileType::Symlink => Some(IndexKind::Symlink),
        FileType::RegularFile if st.st_mode & 0o100 != 0 => Some(IndexKind::Executable),
        FileType::RegularFile => Some(IndexKind::File),
        _ => None,
    }
}

/// Refuses a path one of whose leading directories is a symbolic link (as
/// Git refuses a path "beyond a symbolic link").
pub fn refuse_symlinked_parent(root: &Path, path: &str) -> Result<()> {
    ParentGuard::new(root).check(path)
}

/// Finds the first leading directory of a repository path that is a
/// symbolic link: reading, writing or removing the path would go through
/// it, to files outside the working tree (the symlink itself is content;
/// what it points to is not). For many paths, remembering the directories already
/// found to be real ones (a checkout or `commit -a` of 100,000 files does
/// not `lstat` each parent 100,000 times).
pub struct ParentGuard<'a> {
    root: &'a Path,
    real_dirs: std::collections::HashSet<String>,
    /// Tracked symlinks the command removes before it writes: a path below
    /// one of them is not beyond a link by the time it is written (a
    /// directory replaces the link).
    removed: std::collections::HashSet<String>,
}

impl<'a> ParentGuard<'a> {
    pub fn new(root: &'a Path) -> Self {
        ParentGuard {
            root,
            real_dirs: Default::default(),
            removed: Default::default(),
        }
    }

    /// A guard for paths written after `removed` are removed.
    pub fn after_removing<'b>(root: &'a Path, removed: impl Iterator<Item = &'b str>) -> Self {
        let mut g = ParentGuard::new(root);
        g.removed = removed.map(str::to_string).collect();
        g
    }

    /// The leading directory of `path` that is a symbolic link, if any.
    pub fn beyond_symlink(&mut self, path: &str) -> Option<String> {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            let dir = &path[..end];
            end += 1;
            if self.real_dirs.contains(dir) {
                continue;
            }
            match fs::symlink_metadata(self.root.join(dir)) {
                // Gone before the path is written: created as a directory.
                Ok(m) if m.file_type().is_symlink() && self.removed.contains(dir) => return None,
                Ok(m) if m.file_type().is_symlink() => return Some(dir.to_string()),
                Ok(m) if m.is_dir() => {
                    self.real_dirs.insert(dir.to_string());
                }
                // Missing (created later) or a file: nothing to follow.
                _ => return None,
            }
        }
        None
    }

    /// Refuses `path` if it is beyond a symbolic link.
    pub fn check(&mut self, path: &str) -> Result<()> {
        match self.beyond_symlink(path) {
            Some(link) => Err(RepoError::BeyondSymlink {
                path: path.to_string(),
                link,
            }),
            None => Ok(()),
        }
    }
}

/// A symlink's target as MediaGit stores it, or why it cannot be stored
/// (not UTF-8, empty, too long): such a link is skipped with a warning, like
/// a socket or a fifo, never a reason to stop `add -A`.
pub fn read_symlink_target(abs: &Path) -> Result<std::result::Result<String, String>> {
    let t = fs::read_link(abs).map_err(|e| RepoError::io("read link", abs, e))?;
    let Some(t) = t.to_str() else {
        return Ok(Err(
            "symbolic link whose target is not valid UTF-8; skipped".into(),
        ));
    };
    if let Err(e) = mediagit_format::object::validate_symlink_target(t) {
        return Ok(Err(format!("symbolic link not stored ({e}); skipped")));
    }
    Ok(Ok(t.to_string()))
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
#[derive(Debug, serde::Serialize)]
pub struct WalkProblem {
    #[serde(serialize_with = "crate::serialize_path")]
    pub path: PathBuf,
    pub message: String,
}

/// Opens `rel` (a repository path: plain names, no `..`) below the
/// directory `dir` with `flags`, following no symlink at any level and
/// never leaving `dir`: `openat2` with `RESOLVE_NO_SYMLINKS |
/// RESOLVE_BENEATH`. Where the kernel lacks it (before 5.6: `ENOSYS`) or a
/// sandbox forbids it (seccomp: `EPERM`), the same by hand: each directory
/// opened from the one before with `O_NOFOLLOW | O_DIRECTORY`, the last
/// name with `O_NOFOLLOW`. A symlink met on the way is `ELOOP`.
pub(crate) fn openat_beneath(
    dir: &rustix::fd::OwnedFd,
    rel: &str,
    flags: rustix::fs::OFlags,
) -> Result<rustix::fd::OwnedFd, rustix::io::Errno> {
    use rustix::fs::{Mode, ResolveFlags};
    let rel = if rel.is_empty() { "." } else { rel };
    let mut r = Err(rustix::io::Errno::AGAIN);
    // EAGAIN: a rename raced the resolution; try again.
    for _ in 0..8 {
        r = rustix::fs::openat2(
            dir,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH,
        );
        if !matches!(r, Err(rustix::io::Errno::AGAIN)) {
            break;
        }
    }
    match r {
        Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => {
            open_by_steps(dir, rel, flags)
        }
        r => r,
    }
}

/// [`openat_beneath`] without openat2: one directory at a time.
fn open_by_steps(
    dir: &rustix::fd::OwnedFd,
    rel: &str,
    flags: rustix::fs::OFlags,
) -> Result<rustix::fd::OwnedFd, rustix::io::Errno> {
    use rustix::fs::{Mode, OFlags};
    let mut parts = rel.split('/').filter(|p| !p.is_empty() && *p != ".");
    let Some(mut name) = parts.next() else {
        return rustix::fs::openat(dir, ".", flags, Mode::empty());
    };
    let step = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    // Each name opened from the directory before it (`here`, or `dir`).
    let open = |here: &Option<rustix::fd::OwnedFd>, name: &str, flags: OFlags| {
        if name == ".." {
            return Err(rustix::io::Errno::XDEV);
        }
        rustix::fs::openat(here.as_ref().unwrap_or(dir), name, flags, Mode::empty())
    };
    let mut here = None;
    for next in parts {
        here = Some(open(&here, name, step)?);
        name = next;
    }
    open(&here, name, flags | OFlags::NOFOLLOW)
}

thread_local! {
    /// The working tree root [`open_beneath`] last opened, and its
    /// descriptor (one open per worker thread, not one per file).
    static ROOT_DIR: std::cell::RefCell<Option<(PathBuf, Arc<rustix::fd::OwnedFd>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Opens the file at `rel` in the working tree `root` for reading,
/// following no symlink on the way, at any level, and never leaving `root`
/// ([`openat_beneath`]): a file or a directory above it swapped for a
/// symlink after the walk saw it is an error (`ELOOP`), never a way to
/// read something outside the tree. Opened non-blocking, so a FIFO put in a
/// file's place cannot hang the caller (which then sees it is no regular
/// file).
pub fn open_beneath(root: &Path, rel: &str) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let flags =
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK;
    let dir = ROOT_DIR.with(|d| {
        let mut d = d.borrow_mut();
        if let Some((p, fd)) = d.as_ref() {
            if p == root {
                return Ok(fd.clone());
            }
        }
        let fd = Arc::new(rustix::fs::openat(
            rustix::fs::CWD,
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?);
        *d = Some((root.to_path_buf(), fd.clone()));
        Ok::<_, rustix::io::Errno>(fd)
    })?;
    Ok(std::fs::File::from(openat_beneath(&dir, rel, flags)?))
}

/// Walks the working tree below `under` (a repository path), honouring
/// `.mediagitignore` files (gitignore syntax) and nothing else. Never follows
/// symlinks; skips every `.mediagit` directory. Files are `lstat`ed relative
/// to their directory's descriptor (no path resolution from the root per
/// file), which is what makes `status` on 100,000 files cheap.
///
/// Files come out sorted by path bytes, the index's order, so callers can
/// merge the walk with the index instead of building a map of either.
pub fn walk(root: &Path, under: &str) -> (Walked, Vec<WalkProblem>) {
    let mut runs: Vec<Vec<WalkedFile>> = Vec::new();
    // Every directory is opened from the root's descriptor (see
    // `Walker::walk_one`); the root itself is the user's path.
    let root_fd = rustix::fs::openat(
        rustix::fs::CWD,
        root,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()
    .map(Arc::new);
    let mut w = Walker::new(Vec::new(), root_fd.clone());
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
                let items = w.walk_one(&start, under);
                let subdirs: Vec<(PathBuf, String)> = items
                    .iter()
                    .filter_map(|i| match i {
                        Item::Dir(abs, rel) => Some((abs.clone(), rel.clone())),
                        Item::File(_) => None,
                    })
                    .collect();
                let stack = w.stack.clone();
                let parts = crate::ingest::parallel_map(&subdirs, |(abs, rel)| {
                    let mut sub = Walker::new(stack.clone(), root_fd.clone());
                    sub.walk_dir(abs, rel);
                    Ok((sub.files, sub.problems))
                });
                w.stack.pop();
                // The first level's files between its directories' runs (no
                // copying of the runs into one vector).
                let mut parts = parts.unwrap_or_default().into_iter();
                for item in items {
                    match item {
                        Item::File(f) => w.files.push(f),
                        Item::Dir(..) => {
                            if let Some((files, problems)) = parts.next() {
                                if !w.files.is_empty() {
                                    runs.push(std::mem::take(&mut w.files));
                                }
                                runs.push(files);
                                w.problems.extend(problems);
                            }
                        }
                    }
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
    runs.push(files);
    runs.retain(|r| !r.is_empty());
    let mut walked = Walked { runs };
    // The order above holds unless a directory entry changed type between
    // `readdir` and `lstat`; then sort (the check costs one pass).
    let mut prev: Option<&str> = None;
    let sorted = walked.iter().all(|f| {
        let ok = prev.is_none_or(|p| p < f.path.as_str());
        prev = Some(&f.path);
        ok
    });
    if !sorted {
        let mut all: Vec<WalkedFile> = walked.runs.into_iter().flatten().collect();
        all.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        walked = Walked { runs: vec![all] };
    }
    (walked, problems)
}

/// The files a walk found, sorted by path bytes: the walkers' own vectors,
/// one after another, not copied into one.
#[derive(Debug, Default)]
pub struct Walked {
    runs: Vec<Vec<WalkedFile>>,
}

impl Walked {
    pub fn len(&self) -> usize {
        self.runs.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.iter().all(Vec::is_empty)
    }

    pub fn iter(&self) -> impl Iterator<Item = &WalkedFile> + '_ {
        self.runs.iter().flatten()
    }
}

impl IntoIterator for Walked {
    type Item = WalkedFile;
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<WalkedFile>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.runs.into_iter().flatten()
    }
}

/// One entry of a directory, as the walk found it.
enum Item {
    File(WalkedFile),
    /// Absolute and repository path of a subdirectory.
    Dir(PathBuf, String),
}

impl Item {
    /// The repository path's bytes, and whether a `/` follows them (a
    /// directory): sorting on this puts a directory's files exactly where
    /// the index, sorted by full path, has them (`a-b`, `a.b`, `a/x`, `a0`).
    fn key(&self) -> (&[u8], bool) {
        match self {
            Item::File(f) => (f.path.as_bytes(), false),
            Item::Dir(_, rel) => (rel.as_bytes(), true),
        }
    }
}

/// The order of two entries of one directory, whose paths share their
/// first `skip` bytes (the directory's path and `/`, not compared again).
fn index_order(a: &Item, b: &Item, skip: usize) -> std::cmp::Ordering {
    let ((a, a_dir), (b, b_dir)) = (a.key(), b.key());
    let (a, b) = (&a[skip.min(a.len())..], &b[skip.min(b.len())..]);
    let n = a.len().min(b.len());
    a[..n].cmp(&b[..n]).then_with(|| {
        let next = |s: &[u8], dir: bool| s.get(n).copied().or(dir.then_some(b'/'));
        next(a, a_dir).cmp(&next(b, b_dir))
    })
}

struct Walker {
    files: Vec<WalkedFile>,
    problems: Vec<WalkProblem>,
    /// Ignore rules of the directories from the root down to the current one;
    /// `None` for directories without a `.mediagitignore`.
    stack: Vec<Option<ignore::gitignore::Gitignore>>,
    /// `getdents64` buffer, reused for every directory this walker reads.
    dirbuf: Vec<std::mem::MaybeUninit<u8>>,
    /// The working tree's root, which every directory is opened from.
    root_fd: Option<Arc<rustix::fd::OwnedFd>>,
}

impl Walker {
    fn new(
        stack: Vec<Option<ignore::gitignore::Gitignore>>,
        root_fd: Option<Arc<rustix::fd::OwnedFd>>,
    ) -> Walker {
        Walker {
            files: Vec::new(),
            problems: Vec::new(),
            stack,
            dirbuf: vec![std::mem::MaybeUninit::uninit(); 32 * 1024],
            root_fd,
        }
    }

    fn push_rules(&mut self, dir: &Path) {
        let file = dir.join(IGNORE_FILE);
        match fs::symlink_metadata(&file) {
            Ok(m) if m.is_file() => {}
            // Rules from outside the working tree are not taken (as Git
            // refuses a symlinked .gitignore).
            Ok(m) if m.file_type().is_symlink() => {
                self.problems.push(WalkProblem {
                    path: file,
                    message: "ignore file is a symbolic link; not used".into(),
                });
                self.stack.push(None);
                return;
            }
            _ => {
                self.stack.push(None);
                return;
            }
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
        for item in self.walk_one(abs, rel) {
            match item {
                Item::File(f) => self.files.push(f),
                Item::Dir(path, child) => self.walk_dir(&path, &child),
            }
        }
        self.stack.truncate(depth);
    }

    /// Reads one directory: pushes its ignore rules (the caller pops them)
    /// and returns its files and subdirectories in index order.
    ///
    /// Straight `getdents64` into a reused buffer and `fstatat` relative to
    /// the directory's descriptor (rustix): no allocation per entry beyond
    /// its path, and the kernel resolves one name per `lstat`, never a path.
    /// The directory is opened with `O_NOFOLLOW`, so a directory swapped for
    /// a symlink between the parent's listing and this open is reported,
    /// never followed out of the working tree.
    fn walk_one(&mut self, abs: &Path, rel: &str) -> Vec<Item> {
        use rustix::fs::{FileType, Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        // Relative to the working tree's root, and no symlink anywhere on
        // the way ([`openat_beneath`]): a directory swapped for a symlink
        // at any level while the walk runs is an error here, never a way
        // out of the tree, also where openat2 is missing or forbidden.
        let opened = match &self.root_fd {
            Some(root) => openat_beneath(root, rel, flags),
            None => rustix::fs::openat(rustix::fs::CWD, abs, flags, Mode::empty()),
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(e) => {
                self.problems.push(WalkProblem {
                    path: abs.to_path_buf(),
                    message: std::io::Error::from(e).to_string(),
                });
                self.stack.push(None);
                return Vec::new();
            }
        };
        // All entries first: whether this directory has rules is seen in
        // the listing (no extra `stat` per directory), and they must be
        // known before its entries are matched against them. Names go into
        // one string, each followed by a NUL, with (start, end, type) per
        // entry.
        let mut names = String::new();
        let mut entries: Vec<(usize, usize, FileType)> = Vec::new();
        let mut has_rules_file = false;
        {
            let mut raw = rustix::fs::RawDir::new(&fd, &mut self.dirbuf);
            while let Some(entry) = raw.next() {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        self.problems.push(WalkProblem {
                            path: abs.to_path_buf(),
                            message: std::io::Error::from(e).to_string(),
                        });
                        break;
                    }
                };
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." || name == DOT_DIR.as_bytes() {
                    continue;
                }
                let Ok(name) = std::str::from_utf8(name) else {
                    use std::os::unix::ffi::OsStrExt;
                    self.problems.push(WalkProblem {
                        path: abs.join(std::ffi::OsStr::from_bytes(name)),
                        message: "file name is not valid UTF-8; skipped".into(),
                    });
                    continue;
                };
                has_rules_file |= name == IGNORE_FILE;
                let at = names.len();
                names.push_str(name);
                entries.push((at, names.len(), entry.file_type()));
                // NUL-terminated, for `fstatat` without a copy.
                names.push('\0');
            }
        }
        if has_rules_file {
            self.push_rules(abs);
        } else {
            self.stack.push(None);
        }
        let any_rules = self.stack.iter().any(Option::is_some);
        let mut items = Vec::with_capacity(entries.len());
        for (from, to, mut ftype) in entries {
            let name = &names[from..to];
            if let Err(e) = mediagit_format::object::validate_name(name) {
                self.problems.push(WalkProblem {
                    path: abs.join(name),
                    message: format!("{e}; skipped"),
                });
                continue;
            }
            if mediagit_format::object::is_reserved_name(name) {
                self.problems.push(WalkProblem {
                    path: abs.join(name),
                    message: "name reserved for the repository's own .mediagit directory (on case-insensitive filesystems they are the same); skipped".into(),
                });
                continue;
            }
            let cname = std::ffi::CStr::from_bytes_with_nul(&names.as_bytes()[from..=to]);
            let lstat = || {
                cname
                    .map_err(|_| rustix::io::Errno::INVAL)
                    .and_then(|c| rustix::fs::statat(&fd, c, rustix::fs::AtFlags::SYMLINK_NOFOLLOW))
            };
            // A filesystem that does not give types in listings (DT_UNKNOWN:
            // ext2 without `filetype`, XFS with `ftype=0`, some network
            // filesystems): the type comes from lstat, before the ignore
            // rules (`build/` matches directories only) are applied.
            let mut early = None;
            if ftype == FileType::Unknown {
                match lstat() {
                    Ok(st) => {
                        ftype = FileType::from_raw_mode(st.st_mode as _);
                        early = Some(st);
                    }
                    Err(e) => {
                        self.problems.push(WalkProblem {
                            path: abs.join(name),
                            message: std::io::Error::from(e).to_string(),
                        });
                        continue;
                    }
                }
            }
            let is_dir = ftype == FileType::Directory;
            if any_rules && self.ignored(&abs.join(name), is_dir) {
                continue;
            }
            let mut child = String::with_capacity(rel.len() + 1 + name.len());
            if !rel.is_empty() {
                child.push_str(rel);
                child.push('/');
            }
            child.push_str(name);
            if is_dir {
                items.push(Item::Dir(abs.join(name), child));
                continue;
            }
            // lstat relative to the directory's descriptor.
            let st = match early.map_or_else(lstat, Ok) {
                Ok(st) => st,
                Err(e) => {
                    self.problems.push(WalkProblem {
                        path: abs.join(name),
                        message: std::io::Error::from(e).to_string(),
                    });
                    continue;
                }
            };
            match raw_index_kind(&st) {
                Some(kind) => items.push(Item::File(WalkedFile {
                    path: child,
                    stat: raw_stat_info(&st),
                    kind,
                })),
                None if FileType::from_raw_mode(st.st_mode as _) == FileType::Directory => {
                    items.push(Item::Dir(abs.join(name), child))
                }
                None => self.problems.push(WalkProblem {
                    path: abs.join(name),
                    message: "not a regular file or symlink (socket, fifo or device); skipped"
                        .into(),
                }),
            }
        }
        let skip = if rel.is_empty() { 0 } else { rel.len() + 1 };
        items.sort_unstable_by(|a, b| index_order(a, b, skip));
        items
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

#[cfg(test)]
mod insert_many_tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(path: &str, n: u8) -> IndexEntry {
        IndexEntry {
            path: path.to_string(),
            kind: IndexKind::File,
            stat: StatInfo::default(),
            content: ObjectId([n; 32]),
            manifest: ObjectId([n; 32]),
            target: None,
        }
    }

    proptest! {
        /// Same as a map that takes the batch's entries in order (the last
        /// of equal paths wins), sorted and unique.
        #[test]
        fn insert_many_is_a_sorted_map_update(
            old in proptest::collection::btree_set("[a-d]{1,3}", 0..20),
            batch in proptest::collection::vec("[a-d]{1,3}", 0..20),
        ) {
            let mut idx = IndexEntries::from_sorted(old.iter().map(|p| entry(p, 0)).collect());
            let mut model: std::collections::BTreeMap<String, u8> =
                old.iter().map(|p| (p.clone(), 0)).collect();
            let b: Vec<IndexEntry> = batch
                .iter()
                .enumerate()
                .map(|(i, p)| entry(p, i as u8 + 1))
                .collect();
            for (i, p) in batch.iter().enumerate() {
                model.insert(p.clone(), i as u8 + 1);
            }
            idx.insert_many(b);
            let got: Vec<(String, u8)> =
                idx.0.iter().map(|e| (e.path.clone(), e.content.0[0])).collect();
            let want: Vec<(String, u8)> = model.into_iter().collect();
            prop_assert_eq!(got, want);
        }
    }
}

#[cfg(test)]
mod beneath_tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};

    #[test]
    fn opening_beneath_by_steps_follows_no_symlink_at_any_level() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), b"inside").unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("f"), b"outside").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/link")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), root.join("a/flink")).unwrap();
        let dir = rustix::fs::openat(
            rustix::fs::CWD,
            &root,
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        for open in [open_by_steps, openat_beneath] {
            let fd = open(&dir, "a/b/f", flags).unwrap();
            let mut s = String::new();
            use std::io::Read;
            std::fs::File::from(fd).read_to_string(&mut s).unwrap();
            assert_eq!(s, "inside");
            // ELOOP from openat2, ENOTDIR from O_DIRECTORY|O_NOFOLLOW.
            assert!(matches!(
                open(&dir, "a/link/f", flags),
                Err(rustix::io::Errno::LOOP) | Err(rustix::io::Errno::NOTDIR)
            ));
            assert_eq!(
                open(&dir, "a/flink", flags).unwrap_err(),
                rustix::io::Errno::LOOP
            );
            assert!(open(&dir, "../outside/f", flags).is_err());
        }
    }
}
