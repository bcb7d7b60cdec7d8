//! `status`: what is staged (HEAD vs index), what is changed but not staged
//! (index vs working tree), and what is untracked.
use std::collections::BTreeMap;

use mediagit_format::index::{
    CommitMemo, EntryRef, IndexEntry, IndexKind, IndexView, Stage, StatInfo,
};
use mediagit_format::object::Timestamp;
use mediagit_format::{ObjectId, ObjectKind};

use crate::error::{RepoError, Result};
use crate::ingest::{hash_path, parallel_map};
use serde::Serialize;

use crate::refs::Head;
use crate::repo::Repository;
use crate::tree::{flatten, FlatEntry, FlatTree};
use crate::worktree::{index_kind, stat_info, walk, ParentGuard, WalkProblem, WorktreeIndex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    /// Same path, different kind (file ↔ symlink) or executable bit.
    TypeChanged,
    /// Staged only: same content moved from [`Change::from`].
    Renamed,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    pub change: ChangeKind,
    /// The path it was renamed from ([`ChangeKind::Renamed`] only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl Change {
    pub fn new(path: String, change: ChangeKind) -> Change {
        Change {
            path,
            change,
            from: None,
        }
    }
}

impl ChangeKind {
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Modified => 'M',
            ChangeKind::Deleted => 'D',
            ChangeKind::TypeChanged => 'T',
            ChangeKind::Renamed => 'R',
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub head: Head,
    pub head_commit: Option<ObjectId>,
    /// HEAD → index.
    pub staged: Vec<Change>,
    /// Index → working tree.
    pub unstaged: Vec<Change>,
    pub untracked: Vec<String>,
    /// Paths a merge left unresolved (base/ours/theirs in the index).
    pub conflicted: Vec<String>,
    /// Paths that could not be read; reported, not fatal.
    pub problems: Vec<WalkProblem>,
}

impl Status {
    pub fn is_clean(&self) -> bool {
        self.staged.is_empty()
            && self.unstaged.is_empty()
            && self.untracked.is_empty()
            && self.conflicted.is_empty()
    }
}

pub fn compare(from: Option<&FlatEntry>, to: Option<&FlatEntry>) -> Option<ChangeKind> {
    match (from, to) {
        (None, None) => None,
        (None, Some(_)) => Some(ChangeKind::Added),
        (Some(_), None) => Some(ChangeKind::Deleted),
        (Some(a), Some(b)) if a.kind != b.kind => Some(ChangeKind::TypeChanged),
        (Some(a), Some(b)) if a.content != b.content => Some(ChangeKind::Modified),
        _ => None,
    }
}

/// The state of the working tree relative to the index, for a set of entries.
pub struct WorktreeScan {
    /// Index entries whose file differs from the index, with the new kind
    /// (None = deleted).
    pub changed: Vec<(String, Option<IndexKind>)>,
    /// Entries proven unchanged by content, with fresh stat data for the cache.
    pub refreshed: Vec<IndexEntry>,
    pub untracked: Vec<String>,
    pub problems: Vec<WalkProblem>,
    /// Some entry's saved stat data is racily clean (its mtime is too close
    /// to when the index was written to prove anything): saving the index
    /// now would let later runs trust it. Found in the same pass.
    pub racy_left: bool,
}

impl Repository {
    pub fn head_tree(&self) -> Result<FlatTree> {
        match self.head_commit()? {
            Some(c) => {
                let commit = self.odb()?.read_commit(&c)?;
                flatten(self.odb()?, &commit.tree)
            }
            None => Ok(BTreeMap::new()),
        }
    }

    /// Compares the working tree below `under` with the index, re-hashing only
    /// files whose stat data moved (or that are racily clean).
    pub fn scan_worktree(&self, idx: &WorktreeIndex, under: &str) -> Result<WorktreeScan> {
        let root = self.worktree()?.to_path_buf();
        let (files, problems) = walk(&root, under);
        self.scan_walked(idx, under, files, problems)
    }

    /// [`Repository::scan_worktree`] on the result of a walk done already
    /// (`status` walks while it loads the index and HEAD).
    fn scan_walked(
        &self,
        idx: &WorktreeIndex,
        under: &str,
        files: crate::worktree::Walked,
        problems: Vec<WalkProblem>,
    ) -> Result<WorktreeScan> {
        let entries = idx.under(under).map(|(_, e)| entry_ref(e));
        self.scan_entries(idx.written_at, entries, files, problems)
    }

    /// The comparison of index entries (in path order, read in place or
    /// from a [`WorktreeIndex`]) with a walk of the same part of the tree.
    fn scan_entries<'a>(
        &self,
        written_at: Timestamp,
        entries: impl Iterator<Item = EntryRef<'a>>,
        files: crate::worktree::Walked,
        problems: Vec<WalkProblem>,
    ) -> Result<WorktreeScan> {
        let root = self.worktree()?.to_path_buf();
        let mut changed = Vec::new();
        let mut unreadable = Vec::new();
        let mut to_hash: Vec<(EntryRef<'a>, IndexKind, StatInfo)> = Vec::new();
        let mut untracked = Vec::new();
        // Both sides are sorted by path bytes: one merge, no maps.
        let mut walked = files.into_iter().peekable();
        let mut guard = ParentGuard::new(&root);
        let mut racy_left = false;
        let written = crate::worktree::nanos(&written_at);
        for e in entries {
            racy_left |= crate::worktree::nanos(&e.stat.mtime) + crate::worktree::RACY_MARGIN_NANOS
                >= written;
            let path = e.path;
            while let Some(f) = walked.next_if(|f| f.path.as_bytes() < path.as_bytes()) {
                untracked.push(f.path);
            }
            let (st, kind) = match walked.next_if(|f| f.path == path) {
                Some(f) => (f.stat, f.kind),
                // Not walked: deleted, or tracked but ignored. Look directly,
                // never through a symlinked directory (what it points to is
                // not in the working tree: the file is gone from it).
                None if guard.beyond_symlink(path).is_some() => {
                    changed.push((path.to_string(), None));
                    continue;
                }
                None => match std::fs::symlink_metadata(root.join(path)) {
                    Ok(m) => match index_kind(&m) {
                        Some(k) => (stat_info(&m), k),
                        None => {
                            changed.push((path.to_string(), None));
                            continue;
                        }
                    },
                    Err(e) if crate::worktree::is_gone(&e) => {
                        changed.push((path.to_string(), None));
                        continue;
                    }
                    // Unreadable is not deleted: report it, change nothing.
                    Err(e) => {
                        unreadable.push(WalkProblem {
                            path: root.join(path),
                            message: e.to_string(),
                        });
                        continue;
                    }
                },
            };
            if stat_clean(written_at, &e, &st, kind) {
                continue;
            }
            if kind != e.kind || (kind != IndexKind::Symlink && st.size != e.stat.size) {
                changed.push((path.to_string(), Some(kind)));
                continue;
            }
            to_hash.push((e, kind, st));
        }
        untracked.extend(walked.map(|f| f.path));
        let hashed = parallel_map(&to_hash, |(e, kind, _)| {
            crate::failpoint::hit("status:hash");
            let abs = root.join(e.path);
            match hash_path(&abs, *kind) {
                Ok(id) => Ok(Some(id)),
                Err(RepoError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Ok(None)
                }
                // Replaced since the walk saw it (by a symlink, a FIFO, a
                // directory, a device): modified, not an error.
                Err(RepoError::FileChanged { .. }) => Ok(Some(ObjectId::ZERO)),
                Err(err) => Err(err),
            }
        })?;
        let mut refreshed = Vec::new();
        for ((e, kind, st), id) in to_hash.iter().zip(hashed) {
            match id {
                Some(id) if id == e.content => {
                    let mut fresh = e.to_owned();
                    fresh.stat = *st;
                    refreshed.push(fresh);
                }
                Some(_) => changed.push((e.path.to_string(), Some(*kind))),
                None => changed.push((e.path.to_string(), None)),
            }
        }
        changed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut problems = problems;
        problems.extend(unreadable);
        Ok(WorktreeScan {
            changed,
            refreshed,
            untracked,
            problems,
            racy_left,
        })
    }

    /// Full status. Refreshes the index's stat cache when the lock is free.
    #[tracing::instrument(name = "status", level = "info", skip_all)]
    pub fn status(&self) -> Result<Status> {
        let root = self.worktree()?.to_path_buf();
        let lock = self.workspace()?.lock().ok();
        // The walk (mostly lstat, on every core) needs nothing from the
        // index: start it first and load the index and HEAD meanwhile.
        std::thread::scope(|s| {
            let walker = s.spawn(|| walk(&root, ""));
            self.status_with(lock.is_some(), || {
                walker
                    .join()
                    .map_err(|_| RepoError::Invalid("the worktree walk panicked".into()))
            })
        })
    }

    /// HEAD's tree: remembered in the index together with the pack that
    /// holds HEAD, whose (small) index is read to confirm HEAD is still
    /// there, as `git status` fails on a missing HEAD; otherwise read
    /// through the object database (whose errors name what is lost), with
    /// the memo to remember (`Some` when it was learned here).
    fn head_tree_id(
        &self,
        head_commit: Option<ObjectId>,
        memo: Option<CommitMemo>,
    ) -> Result<(Option<ObjectId>, Option<CommitMemo>)> {
        let Some(c) = head_commit else {
            return Ok((None, None));
        };
        match memo {
            Some(m)
                if m.commit == c
                    && crate::odb::pack_lists(
                        self.storage().as_ref(),
                        &self.codec(),
                        &m.pack,
                        &c,
                        ObjectKind::Commit,
                    ) =>
            {
                Ok((Some(m.tree), None))
            }
            _ => {
                let odb = self.odb()?;
                let t = odb.read_commit(&c)?.tree;
                Ok((Some(t), odb.commit_memo(c, t)))
            }
        }
    }

    /// `status` on an index read in place (see `status_with`): nothing is
    /// staged and nothing conflicted; the working tree is compared entry
    /// by entry, and the index is built and saved only when its stat cache
    /// or HEAD memo needs refreshing.
    fn status_in_place(
        &self,
        bytes: &[u8],
        view: &IndexView<'_>,
        head_commit: Option<ObjectId>,
        learned: Option<CommitMemo>,
        locked: bool,
        walked: impl FnOnce() -> Result<(crate::worktree::Walked, Vec<WalkProblem>)>,
    ) -> Result<Status> {
        let (files, problems) = walked()?;
        let scan = self.scan_entries(view.written_at, view.iter(), files, problems)?;
        let kind_of = |p: &str| {
            let (mut lo, mut hi) = (0, view.len());
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let e = view.entry(mid);
                match e.path.cmp(p) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => return Some(e.kind),
                }
            }
            None
        };
        let unstaged = scan
            .changed
            .iter()
            .map(|(p, k)| {
                let c = match k {
                    None => ChangeKind::Deleted,
                    Some(k) if Some(*k) != kind_of(p) => ChangeKind::TypeChanged,
                    Some(_) => ChangeKind::Modified,
                };
                Change::new(p.clone(), c)
            })
            .collect();
        if locked && (!scan.refreshed.is_empty() || scan.racy_left || learned.is_some()) {
            // Best effort: a status that cannot save its cache still
            // reports correctly.
            let ws = self.workspace()?;
            if let Ok(mut idx) = ws.index_from_bytes(bytes) {
                idx.entries.insert_many(scan.refreshed);
                if learned.is_some() {
                    idx.commit_memo = learned;
                }
                let _ = ws.save_index(&mut idx, &self.codec());
            }
        }
        Ok(Status {
            head: self.head()?,
            head_commit,
            staged: Vec::new(),
            unstaged,
            untracked: scan.untracked,
            conflicted: Vec::new(),
            problems: scan.problems,
        })
    }

    fn status_with(
        &self,
        locked: bool,
        walked: impl FnOnce() -> Result<(crate::worktree::Walked, Vec<WalkProblem>)>,
    ) -> Result<Status> {
        let ws = self.workspace()?;
        let bytes = ws.read_index_bytes()?;
        let head_commit = self.head_commit()?;
        // The usual case, read in place: an index of the current version
        // with nothing staged and no merge in progress needs no entry
        // built (a million paths are compared where they lie in the file).
        if let Some((b, view)) = bytes
            .as_deref()
            .and_then(|b| Some((b, IndexView::parse(b).ok()?)))
        {
            let merged = view.iter().all(|e| e.stage == Stage::Merged);
            let (head_tree_id, learned) = self.head_tree_id(head_commit, view.commit_memo())?;
            let unchanged = match head_tree_id {
                Some(t) => view.tree() == Some(t),
                None => view.is_empty(),
            };
            if merged && unchanged {
                return self.status_in_place(b, &view, head_commit, learned, locked, walked);
            }
        }
        let mut idx = match &bytes {
            Some(b) => ws.index_from_bytes(b)?,
            None => WorktreeIndex::default(),
        };
        drop(bytes);
        let (head_tree_id, learned) = self.head_tree_id(head_commit, idx.commit_memo)?;
        let unchanged = match head_tree_id {
            Some(t) => match idx.saved_tree {
                Some(saved) => saved == t,
                // Written by version 1, or makes no tree.
                None => crate::tree::tree_id_of(idx.entries.values(), &self.codec())? == t,
            },
            None => idx.entries.is_empty(),
        };
        let staged = if unchanged {
            Vec::new()
        } else {
            let head_tree = self.head_tree()?;
            let index_tree: FlatTree = idx
                .entries
                .iter()
                .map(|(p, e)| (p.clone(), FlatEntry::from_index(e)))
                .collect();
            // With rename detection by content id, as `diff --cached` shows.
            crate::history::diff_trees(&head_tree, &index_tree)
                .into_iter()
                .map(|d| match d.kind {
                    crate::history::DiffKind::Added => Change::new(d.path, ChangeKind::Added),
                    crate::history::DiffKind::Deleted => Change::new(d.path, ChangeKind::Deleted),
                    crate::history::DiffKind::Modified => Change::new(d.path, ChangeKind::Modified),
                    crate::history::DiffKind::ModeChanged => {
                        Change::new(d.path, ChangeKind::TypeChanged)
                    }
                    crate::history::DiffKind::Renamed { from } => Change {
                        path: d.path,
                        change: ChangeKind::Renamed,
                        from: Some(from),
                    },
                })
                .collect()
        };
        let (files, problems) = walked()?;
        let scan = self.scan_walked(&idx, "", files, problems)?;
        let unstaged = scan
            .changed
            .iter()
            .map(|(p, k)| {
                let e = &idx.entries[p.as_str()];
                let c = match k {
                    None => ChangeKind::Deleted,
                    Some(k) if *k != e.kind => ChangeKind::TypeChanged,
                    Some(_) => ChangeKind::Modified,
                };
                Change::new(p.clone(), c)
            })
            .collect();
        if locked && (!scan.refreshed.is_empty() || scan.racy_left || learned.is_some()) {
            idx.entries.insert_many(scan.refreshed);
            if learned.is_some() {
                idx.commit_memo = learned;
            }
            // Best effort: a status that cannot save its cache still reports correctly.
            let _ = self.workspace()?.save_index(&mut idx, &self.codec());
        }
        // A conflicted path is neither untracked in the working tree nor
        // staged for deletion: it waits for a resolution.
        let conflicted = idx.conflicted_paths();
        let mut untracked = scan.untracked;
        let mut staged: Vec<Change> = staged;
        if !conflicted.is_empty() {
            let c: std::collections::HashSet<&str> =
                conflicted.iter().map(String::as_str).collect();
            untracked.retain(|p| !c.contains(p.as_str()));
            staged.retain(|ch| !c.contains(ch.path.as_str()));
        }
        Ok(Status {
            head: self.head()?,
            head_commit,
            staged,
            unstaged,
            untracked,
            conflicted,
            problems: scan.problems,
        })
    }
}

/// An index entry of a [`WorktreeIndex`] as [`IndexView`] gives them.
fn entry_ref(e: &IndexEntry) -> EntryRef<'_> {
    EntryRef {
        path: &e.path,
        stage: Stage::Merged,
        kind: e.kind,
        stat: e.stat,
        content: e.content,
        manifest: e.manifest,
        target: e.target.as_deref(),
    }
}

/// [`WorktreeIndex::stat_clean`] for an entry read in place from an index
/// written at `written_at`.
fn stat_clean(written_at: Timestamp, e: &EntryRef<'_>, now: &StatInfo, kind: IndexKind) -> bool {
    e.kind == kind
        && e.stat == *now
        && crate::worktree::nanos(&e.stat.mtime) + crate::worktree::RACY_MARGIN_NANOS
            < crate::worktree::nanos(&written_at)
}
