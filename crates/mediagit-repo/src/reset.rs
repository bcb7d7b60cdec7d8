//! `reset` and `restore`: move HEAD and/or put the index and working
//! tree back to a commit's (or the index's) files.
//!
//! Why here and not in `checkout`: these never switch branches. `reset`
//! moves the branch HEAD is on (recorded in the reflog, so a reset is
//! itself undone by `reset` to the reflog's previous value), and
//! `restore` only rewrites paths. Both write files through the same
//! checkout machinery (verified chunks, atomic renames, never through a
//! symlinked directory).
use mediagit_format::index::IndexEntry;
use mediagit_format::{ObjectId, Signature};

use crate::checkout::CheckoutOutcome;
use crate::error::{RepoError, Result};
use crate::merge::commit_files;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::tree::{FlatEntry, FlatTree};
use crate::worktree::path_is_under;

/// How far `reset` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetMode {
    /// HEAD only.
    Soft,
    /// HEAD and the index (the default).
    Mixed,
    /// HEAD, the index and the working tree's tracked files.
    Hard,
}

/// Where `restore` takes files from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreSource {
    Index,
    Commit(ObjectId),
}

/// An index entry for a file of a commit, keeping the stat data of the
/// entry the index had for it when the content is the same (so `status`
/// need not hash the file again).
fn entry_keeping_stat(path: &str, e: &FlatEntry, old: Option<&IndexEntry>) -> IndexEntry {
    match old {
        Some(o) if o.kind == e.kind && o.content == e.content && o.manifest == e.manifest => {
            o.clone()
        }
        _ => crate::sequencer::entry_of(path, e),
    }
}

impl Repository {
    /// `mediagit reset [--soft | --mixed | --hard] REV`.
    pub fn reset(
        &self,
        target: ObjectId,
        rev_name: &str,
        mode: ResetMode,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<CheckoutOutcome> {
        let _lock = self.workspace()?.lock()?;
        let target = self.peel(target)?;
        let odb = self.odb()?;
        let files = commit_files(odb, &target)?;
        let mut idx = self.workspace()?.load_index()?;
        // A damaged state file is dropped by --mixed and --hard too.
        let operation = match self.operation() {
            Ok(o) => o,
            Err(_) if mode != ResetMode::Soft => {
                self.drop_operation()?;
                None
            }
            Err(e) => return Err(e),
        };
        if mode == ResetMode::Soft && (operation.is_some() || !idx.conflicts.is_empty()) {
            return Err(RepoError::Invalid(
                "cannot do a soft reset in the middle of a merge, cherry-pick, revert or rebase; use --mixed or --hard, or finish it first".into(),
            ));
        }
        let head = self.head_commit()?;
        let mut out = CheckoutOutcome::default();
        match mode {
            ResetMode::Soft => {}
            ResetMode::Mixed => {
                let old = std::mem::take(&mut idx.entries);
                let entries: Vec<IndexEntry> = files
                    .iter()
                    .map(|(p, e)| entry_keeping_stat(p, e, old.get(p)))
                    .collect();
                idx.entries = crate::worktree::IndexEntries::from_sorted(entries);
                idx.conflicts.clear();
                self.workspace()?.save_index(&mut idx, &self.codec())?;
            }
            ResetMode::Hard => {
                // Every tracked path that differs from the target, in the
                // index or in the working tree, and every conflicted path.
                let scan = self.scan_worktree(&idx, "")?;
                let mut paths: Vec<String> = scan.changed.iter().map(|(p, _)| p.clone()).collect();
                for e in idx.entries.values() {
                    if files
                        .get(&e.path)
                        .is_none_or(|f| !f.same_content(&FlatEntry::from_index(e)))
                    {
                        paths.push(e.path.clone());
                    }
                }
                for p in files.keys() {
                    if !idx.entries.contains_key(p) {
                        paths.push(p.clone());
                    }
                }
                paths.extend(idx.conflicted_paths());
                paths.sort();
                paths.dedup();
                idx.conflicts.clear();
                out = self.write_files(&mut idx, &files, &paths, false, progress)?;
                self.workspace()?.save_index(&mut idx, &self.codec())?;
            }
        }
        if operation.is_some() {
            self.drop_operation()?;
        }
        match head {
            Some(h) if h == target => {}
            Some(h) => self.update_head_target(
                Some(h),
                target,
                who,
                &format!("reset: moving to {rev_name}"),
            )?,
            None => {
                self.update_head_target(None, target, who, &format!("reset: moving to {rev_name}"))?
            }
        }
        Ok(out)
    }

    /// `mediagit reset REV -- PATH...`: the index entries of those paths
    /// from REV (removed where REV has none); the working tree untouched.
    pub fn reset_paths(&self, source: ObjectId, paths: &[String]) -> Result<Vec<String>> {
        let _lock = self.workspace()?.lock()?;
        let source = self.peel(source)?;
        let files = commit_files(self.odb()?, &source)?;
        let mut idx = self.workspace()?.load_index()?;
        let matched = self.matching_paths(&files, &idx, paths)?;
        self.stage_from(&mut idx, &files, &matched);
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        Ok(matched)
    }

    /// Every path of `files` or the index (merged or conflicted) at or
    /// below one of `paths`; a path that matches nothing is an error.
    fn matching_paths(
        &self,
        files: &FlatTree,
        idx: &crate::worktree::WorktreeIndex,
        paths: &[String],
    ) -> Result<Vec<String>> {
        let conflicted = idx.conflicted_paths();
        let mut out = Vec::new();
        for p in paths {
            let before = out.len();
            out.extend(files.keys().filter(|k| path_is_under(k, p)).cloned());
            out.extend(idx.under(p).map(|(k, _)| k.clone()));
            out.extend(conflicted.iter().filter(|k| path_is_under(k, p)).cloned());
            if out.len() == before {
                return Err(RepoError::PathspecNoMatch {
                    path: p.clone(),
                    what: "files of the source or the index",
                });
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Sets the index entries of `paths` to `files`' (none where it has none).
    fn stage_from(
        &self,
        idx: &mut crate::worktree::WorktreeIndex,
        files: &FlatTree,
        paths: &[String],
    ) {
        let mut fresh = Vec::new();
        for p in paths {
            idx.conflicts.retain(|c| c.entry.path != *p);
            let old = idx.entries.remove(p);
            if let Some(e) = files.get(p) {
                fresh.push(entry_keeping_stat(p, e, old.as_ref()));
            }
        }
        idx.entries.insert_many(fresh);
    }

    /// Writes `paths` from `files` into the working tree (removing those
    /// it lacks) and records them in `idx`.
    fn write_files(
        &self,
        idx: &mut crate::worktree::WorktreeIndex,
        files: &FlatTree,
        paths: &[String],
        force: bool,
        progress: &dyn Progress,
    ) -> Result<CheckoutOutcome> {
        let root = self.worktree()?.to_path_buf();
        let list: Vec<(&str, &FlatEntry)> = paths
            .iter()
            .filter_map(|p| files.get(p).map(|e| (p.as_str(), e)))
            .collect();
        let to_remove: Vec<String> = paths
            .iter()
            .filter(|p| !files.contains_key(*p))
            .cloned()
            .collect();
        self.apply(
            self.odb()?,
            &root,
            idx,
            &mut crate::checkout::Listed(&list),
            &to_remove,
            force,
            progress,
        )
    }

    /// `mediagit restore [--source REV] [--staged] [--worktree] PATH...`:
    /// the working tree's files (by default) and/or the index entries
    /// (`staged`) of `paths` from `source` (default: the index for the
    /// working tree alone, HEAD otherwise). Paths the source lacks are
    /// removed.
    pub fn restore(
        &self,
        source: Option<ObjectId>,
        staged: bool,
        worktree: bool,
        paths: &[String],
        progress: &dyn Progress,
    ) -> Result<(Vec<String>, CheckoutOutcome)> {
        let _lock = self.workspace()?.lock()?;
        let worktree = worktree || !staged;
        let source = match (source, staged) {
            (Some(s), _) => RestoreSource::Commit(self.peel(s)?),
            (None, false) => RestoreSource::Index,
            (None, true) => match self.head_commit()? {
                Some(h) => RestoreSource::Commit(h),
                None => {
                    return Err(RepoError::UnbornBranch(
                        self.current_branch()?.unwrap_or_else(|| "HEAD".into()),
                    ))
                }
            },
        };
        let mut idx = self.workspace()?.load_index()?;
        let files: FlatTree = match source {
            RestoreSource::Commit(c) => commit_files(self.odb()?, &c)?,
            RestoreSource::Index => idx
                .entries
                .values()
                .map(|e| (e.path.clone(), FlatEntry::from_index(e)))
                .collect(),
        };
        let matched = self.matching_paths(&files, &idx, paths)?;
        if source == RestoreSource::Index {
            let conflicted: Vec<String> = matched
                .iter()
                .filter(|p| idx.conflicted_paths().contains(p))
                .cloned()
                .collect();
            if !conflicted.is_empty() {
                return Err(RepoError::UnresolvedConflicts { paths: conflicted });
            }
        }
        let mut out = CheckoutOutcome::default();
        match (staged, worktree) {
            (true, true) => {
                // Written files get fresh index entries as they are written.
                out = self.write_files(&mut idx, &files, &matched, false, progress)?;
                idx.conflicts
                    .retain(|c| matched.binary_search(&c.entry.path).is_err());
            }
            (true, false) => self.stage_from(&mut idx, &files, &matched),
            (false, _) => {
                // The index is left as it is; a scratch copy takes the
                // written files' entries (right for the index only when
                // the files came from it).
                let mut scratch = idx.clone();
                out = self.write_files(&mut scratch, &files, &matched, false, progress)?;
                if source == RestoreSource::Index {
                    idx = scratch;
                }
            }
        }
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        Ok((matched, out))
    }
}
