//! `stash`: set local changes aside as commits, and bring them back.
//!
//! Why commits: a stash of a dirty tree of large media holds the changed
//! files' content; stored as ordinary objects (deduplicated against
//! everything else) and named by commits, it costs only the new chunks,
//! survives `gc` (every stash entry is a root: the entries live in the
//! reflog `refs/stash`, and reflogs are roots), and comes back through
//! the same three-way merge as `cherry-pick`, so it applies onto a HEAD
//! that moved since.
//!
//! A stash entry is a commit W whose tree is the working tree's tracked
//! files (staged and unstaged changes together) and whose parents are
//! HEAD and a commit I holding the index as it was.
use mediagit_format::{ObjectId, Signature};

use crate::add::AddOptions;
use crate::error::{RepoError, Result};
use crate::history::{diff_trees, FileDiff};
use crate::merge::{commit_files, merge_trees, ConflictStrategy};
use crate::progress::Progress;
use crate::refs::ReflogEntry;
use crate::repo::{write_atomic, Repository};
use crate::tree::{FlatEntry, FlatTree};
use crate::worktree::path_is_under;

/// The reflog that lists stash entries (newest last in the file).
pub const STASH_LOG: &str = "refs/stash";

/// One stash entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StashEntry {
    /// `stash@{N}`: 0 is the newest.
    pub index: usize,
    pub commit: ObjectId,
    pub message: String,
    pub time: i64,
}

/// What `stash apply`/`pop` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct StashApplied {
    pub written: usize,
    pub removed: usize,
    pub dropped: Option<ObjectId>,
    /// Paths whose staged version (in the entry's index commit) is
    /// neither the working tree's nor HEAD's: `apply` brings back the
    /// working tree's only, so `pop` keeps the entry instead of dropping it.
    pub staged_kept: Vec<String>,
}

fn index_files(idx: &crate::worktree::WorktreeIndex) -> FlatTree {
    idx.entries
        .values()
        .map(|e| (e.path.clone(), FlatEntry::from_index(e)))
        .collect()
}

impl Repository {
    /// The stash entries, newest first.
    pub fn stash_list(&self) -> Result<Vec<StashEntry>> {
        Ok(self
            .workspace()?
            .reflog(STASH_LOG)?
            .into_iter()
            .enumerate()
            .map(|(i, e)| StashEntry {
                index: i,
                commit: e.new,
                message: e.message,
                time: e.who.time,
            })
            .collect())
    }

    fn stash_entry(&self, n: usize) -> Result<StashEntry> {
        let list = self.stash_list()?;
        let len = list.len();
        list.into_iter().nth(n).ok_or_else(|| {
            RepoError::Invalid(match len {
                0 => "there is no stash entry".into(),
                _ => format!(
                    "stash@{{{n}}} does not exist: there are {len} entries (0..={})",
                    len - 1
                ),
            })
        })
    }

    /// `stash push [-m MSG] [PATH...]`: the changes to tracked files (under
    /// `paths`: every change there, untracked files too) are stored as a
    /// stash entry, then those files go back to HEAD's. `None`: nothing
    /// to stash.
    pub fn stash_push(
        &self,
        message: Option<&str>,
        paths: &[String],
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<Option<ObjectId>> {
        let _lock = self.workspace()?.lock()?;
        if let Some(s) = self.operation()? {
            return Err(RepoError::OperationInProgress { op: s.op.command() });
        }
        let before = self.workspace()?.load_index()?;
        if !before.conflicts.is_empty() {
            return Err(RepoError::UnresolvedConflicts {
                paths: before.conflicted_paths(),
            });
        }
        let Some(head) = self.head_commit()? else {
            return Err(RepoError::UnbornBranch(
                self.current_branch()?.unwrap_or_else(|| "HEAD".into()),
            ));
        };
        let odb = self.odb()?;
        let head_files = commit_files(odb, &head)?;
        let in_scope = |p: &str| paths.is_empty() || paths.iter().any(|q| path_is_under(p, q));
        // The working tree's changes are stored like an `add` would, but
        // the index file is not touched until the stash entry exists (a
        // kill before must not lose what was staged).
        let (_, after) = self.add_inner(
            &AddOptions {
                paths: paths.to_vec(),
                all: paths.is_empty(),
                tracked_only: paths.is_empty(),
                ..Default::default()
            },
            progress,
            false,
        )?;
        // I: HEAD with the index's entries in scope; W: with the working tree's.
        let overlay = |files: &FlatTree| -> FlatTree {
            let mut t: FlatTree = head_files
                .iter()
                .filter(|(p, _)| !in_scope(p))
                .map(|(p, e)| (p.clone(), e.clone()))
                .collect();
            t.extend(
                files
                    .iter()
                    .filter(|(p, _)| in_scope(p))
                    .map(|(p, e)| (p.clone(), e.clone())),
            );
            t
        };
        let i_files = overlay(&index_files(&before));
        let w_files = overlay(&index_files(&after));
        if w_files == head_files && i_files == head_files {
            // (The add may have refreshed stat data only.)
            return Ok(None);
        }
        let branch = self
            .current_branch()?
            .unwrap_or_else(|| "(no branch)".into());
        let summary = odb.read_commit(&head)?.summary().to_string();
        let msg = match message {
            Some(m) => format!("On {branch}: {m}"),
            None => format!("WIP on {branch}: {} {summary}", head.short(12)),
        };
        let mut session = odb.session();
        let i = Self::make_commit(
            &mut session,
            &i_files,
            vec![head],
            who,
            &format!("index on {branch}"),
        )?;
        let w = Self::make_commit(&mut session, &w_files, vec![head, i], who, &msg)?;
        session.finish()?;
        // Saved first; only then are the files put back.
        self.workspace()?.append_reflog(
            STASH_LOG,
            &ReflogEntry {
                old: ObjectId::ZERO,
                new: w,
                who: who.clone(),
                message: msg,
            },
        )?;
        let mut idx = after;
        let mut changed: Vec<String> = Vec::new();
        for p in w_files
            .keys()
            .chain(head_files.keys())
            .chain(i_files.keys())
        {
            let differs = |t: &FlatTree| match (t.get(p), head_files.get(p)) {
                (Some(a), Some(b)) => !a.same_content(b),
                (None, None) => false,
                _ => true,
            };
            if differs(&w_files) || differs(&i_files) {
                changed.push(p.clone());
            }
        }
        changed.sort();
        changed.dedup();
        // The entry exists now: a failure from here on must say so.
        let saved = |e: RepoError| {
            RepoError::Invalid(format!(
                "the changes were saved as stash@{{0}} ({}), but putting the files back to HEAD's failed: {e}; the working tree may still hold some of them (`mediagit stash show`; `mediagit stash drop` if you keep working on them as they are)",
                w.short(12)
            ))
        };
        self.write_paths(&mut idx, &head_files, &changed, progress)
            .map_err(saved)?;
        self.workspace()?
            .save_index(&mut idx, &self.codec())
            .map_err(saved)?;
        Ok(Some(w))
    }

    fn make_commit(
        session: &mut crate::odb::PackSession<'_>,
        files: &FlatTree,
        parents: Vec<ObjectId>,
        who: &Signature,
        message: &str,
    ) -> Result<ObjectId> {
        let entries: Vec<_> = files
            .iter()
            .map(|(p, e)| crate::sequencer::entry_of(p, e))
            .collect();
        let mut trees = Vec::new();
        let tree = crate::tree::write_tree(session, entries.iter(), &mut trees)?;
        let c = mediagit_format::Commit {
            tree,
            parents,
            author: who.clone(),
            committer: who.clone(),
            message: format!("{}\n", message.trim_end()),
        };
        session.put_object(mediagit_format::ObjectKind::Commit, &c.encode())
    }

    /// The files stash entry `n` changes against the commit it was made on.
    pub fn stash_show(&self, n: usize) -> Result<(StashEntry, Vec<FileDiff>)> {
        let (e, _, base, w) = self.stash_sides(n)?;
        Ok((e, diff_trees(&base, &w)))
    }

    /// Entry `n`, its commit, the files of the commit it was made on and
    /// its own files.
    fn stash_sides(
        &self,
        n: usize,
    ) -> Result<(StashEntry, mediagit_format::Commit, FlatTree, FlatTree)> {
        let e = self.stash_entry(n)?;
        let odb = self.odb()?;
        let c = odb.read_commit(&e.commit)?;
        let base = match c.parents.first() {
            Some(p) => commit_files(odb, p)?,
            None => FlatTree::new(),
        };
        let w = commit_files(odb, &e.commit)?;
        Ok((e, c, base, w))
    }

    /// `stash apply [N]` (`pop`: and drop it): the entry's changes merged
    /// onto HEAD's files, as unstaged changes (new files staged). Refused,
    /// changing nothing, when they conflict with HEAD or with local
    /// changes.
    pub fn stash_apply(
        &self,
        n: usize,
        pop: bool,
        progress: &dyn Progress,
    ) -> Result<StashApplied> {
        let _lock = self.workspace()?.lock()?;
        if let Some(s) = self.operation()? {
            return Err(RepoError::OperationInProgress { op: s.op.command() });
        }
        let (e, c, base, stashed) = self.stash_sides(n)?;
        let odb = self.odb()?;
        let head_files = match self.head_commit()? {
            Some(h) => commit_files(odb, &h)?,
            None => FlatTree::new(),
        };
        let m = merge_trees(&base, &head_files, &stashed, &ConflictStrategy);
        if !m.conflicts.is_empty() {
            return Err(RepoError::Invalid(format!(
                "stash@{{{n}}} conflicts with HEAD at {}; nothing was changed (commit or switch so that HEAD is where the stash was made, {}, then apply it)",
                m.conflicts.iter().map(|c| c.path.as_str()).collect::<Vec<_>>().join(", "),
                c.parents.first().map(|p| p.short(12)).unwrap_or_default()
            )));
        }
        let mut idx = self.workspace()?.load_index()?;
        if !idx.conflicts.is_empty() {
            return Err(RepoError::UnresolvedConflicts {
                paths: idx.conflicted_paths(),
            });
        }
        let touched = self
            .check_paths_free(&idx, &head_files, &m.merged)
            .map_err(|e| match e {
                RepoError::WouldOverwriteChanges { paths } => RepoError::Invalid(format!(
                    "stash@{{{n}}} would overwrite local changes to {}; nothing was changed (commit them, or set them aside with `mediagit stash` first)",
                    paths.join(", ")
                )),
                RepoError::WouldOverwriteUntracked { paths } => RepoError::Invalid(format!(
                    "untracked files stand where stash@{{{n}}} puts files: {}; nothing was changed (move them away first)",
                    paths.join(", ")
                )),
                e => e,
            })?;
        let out = self.write_paths(&mut idx, &m.merged, &touched, progress)?;
        // Changes come back unstaged (the index keeps HEAD's entry), new
        // files staged, as Git's `stash apply` does.
        for p in &touched {
            if let (Some(h), Some(_)) = (head_files.get(p), m.merged.get(p)) {
                let old = idx.entries.remove(p);
                let mut e = crate::sequencer::entry_of(p, h);
                if let Some(o) = old {
                    if o.content == h.content {
                        e = o;
                    }
                }
                idx.entries.insert(e);
            }
        }
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        let mut done = StashApplied {
            written: out.written,
            removed: out.removed,
            dropped: None,
            staged_kept: Vec::new(),
        };
        // Staged versions that apply does not bring back (the index commit
        // holds content neither the working tree's nor the base's): the
        // entry stays, so they are not lost.
        if let Some(i) = c.parents.get(1) {
            let i_files = commit_files(odb, i)?;
            let same = |a: Option<&FlatEntry>, b: Option<&FlatEntry>| match (a, b) {
                (Some(a), Some(b)) => a.same_content(b),
                (None, None) => true,
                _ => false,
            };
            for p in i_files.keys().chain(base.keys()) {
                let iv = i_files.get(p);
                if !same(iv, stashed.get(p)) && !same(iv, base.get(p)) {
                    done.staged_kept.push(p.clone());
                }
            }
            done.staged_kept.sort();
            done.staged_kept.dedup();
        }
        if pop && done.staged_kept.is_empty() {
            self.drop_stash_entry(n)?;
            done.dropped = Some(e.commit);
        }
        Ok(done)
    }

    /// `stash drop [N]`.
    pub fn stash_drop(&self, n: usize) -> Result<ObjectId> {
        let _lock = self.workspace()?.lock()?;
        let e = self.stash_entry(n)?;
        self.drop_stash_entry(n)?;
        Ok(e.commit)
    }

    /// Removes entry `n` (counted from the newest, among the records that
    /// read) from the log; every other line stays as it is, a damaged one
    /// too (it may still name a stash commit; `fsck` reports it).
    fn drop_stash_entry(&self, n: usize) -> Result<()> {
        let ws = self.workspace()?;
        let path = ws.reflog_path(STASH_LOG);
        let text = ws.reflog_text(STASH_LOG)?.ok_or_else(|| {
            RepoError::io(
                "read",
                &path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        let lines: Vec<&str> = text.lines().collect();
        let readable: Vec<usize> = (0..lines.len())
            .filter(|&i| ReflogEntry::parse(lines[i]).is_some())
            .collect();
        let Some(&drop) = readable.iter().rev().nth(n) else {
            return Err(RepoError::Invalid(format!("stash@{{{n}}} does not exist")));
        };
        let kept: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != drop)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        write_atomic(&path, kept.as_bytes())
    }

    /// Lines of the stash log that do not read (damaged): `stash list`
    /// warns about them.
    pub fn stash_unreadable(&self) -> Result<usize> {
        match self.workspace()?.reflog_text(STASH_LOG)? {
            Some(t) => Ok(t
                .lines()
                .filter(|l| ReflogEntry::parse(l).is_none())
                .count()),
            None => Ok(0),
        }
    }
}
