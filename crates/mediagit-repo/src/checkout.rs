//! `checkout` / `switch`: make the working tree and index match a commit,
//! and `checkout REV -- PATH`: restore some paths.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::BufWriter;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use mediagit_format::id::IdMap;
use mediagit_format::index::{IndexEntry, IndexKind};
use mediagit_format::{Manifest, ObjectId, ObjectKind, Signature};

use crate::add::remove_empty_parents;
use crate::error::{RepoError, Result};
use crate::ingest::parallel_map_n;
use crate::odb::Odb;
use crate::progress::Progress;
use crate::refs::{Head, ReflogEntry};
use crate::repo::Repository;
use crate::status::compare;
use crate::tree::{flatten, lookup, walk, FlatEntry, Lookup, Marks, TreeWalk};
use crate::worktree::{make_entry, path_is_under, refuse_symlinked_parent, stat_info, ParentGuard};

#[derive(Debug, Clone)]
pub enum CheckoutTarget {
    Branch(String),
    Detached(ObjectId),
}

#[derive(Debug, Default, serde::Serialize)]
pub struct CheckoutOutcome {
    pub written: usize,
    pub removed: usize,
    pub bytes: u64,
    /// Files the target drops that could not be deleted once every file
    /// was written (a read-only directory, an immutable file): left in
    /// the working tree, no longer tracked, as Git does. (path, reason)
    pub not_removed: Vec<(String, String)>,
}

/// What `switch -c` did.
#[derive(Debug)]
pub enum SwitchCreated {
    /// The branch was created at a commit and checked out.
    CheckedOut(CheckoutOutcome),
    /// No commits yet: HEAD now names the new (unborn) branch.
    Unborn,
}

impl Repository {
    /// Creates branch `name` at `start` (a revision; HEAD when `None`) and
    /// switches to it. A refused switch (local changes in the way...) takes
    /// the new branch back, so a failed command leaves no branch behind.
    /// With no commits yet, HEAD just names the new branch.
    pub fn switch_create(
        &self,
        name: &str,
        start: Option<&str>,
        force: bool,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<SwitchCreated> {
        let start_rev = start.unwrap_or("HEAD");
        crate::refs::validate_new_ref_name("branch", name)?;
        // One lock from creating the branch to taking it back: no other
        // command can slip in between and make the cleanup fail.
        let lock = self.workspace()?.lock()?;
        match self.resolve(start_rev) {
            Ok(id) => {
                let reason = format!("branch: created from {start_rev}");
                self.create_branch_locked(Some(&lock), name, id, who, &reason)?;
                let target = CheckoutTarget::Branch(name.to_string());
                match self.checkout_locked(&lock, &target, force, who, progress) {
                    Ok(out) => Ok(SwitchCreated::CheckedOut(out)),
                    Err(e) => {
                        // Best effort: the refusal is what the caller must see.
                        let _ = self.delete_branch_locked(Some(&lock), name, true, who);
                        Err(e)
                    }
                }
            }
            Err(RepoError::UnbornBranch(_)) => {
                // The name must be free here too: in a shared store another
                // working tree may have made it (or a folder of it).
                if self.read_ref(&crate::refs::branch_ref(name))?.is_some() {
                    return Err(RepoError::BranchExists(name.into()));
                }
                self.check_ref_clash("branch", "refs/heads/", name)?;
                self.workspace()?
                    .set_head(&Head::Branch(name.to_string()))?;
                Ok(SwitchCreated::Unborn)
            }
            Err(e) => Err(e),
        }
    }

    pub fn checkout(
        &self,
        target: &CheckoutTarget,
        force: bool,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<CheckoutOutcome> {
        let lock = self.workspace()?.lock()?;
        self.checkout_locked(&lock, target, force, who, progress)
    }

    /// [`Self::checkout`] under a lock the caller holds.
    fn checkout_locked(
        &self,
        held: &crate::repo::RepoLock,
        target: &CheckoutTarget,
        force: bool,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<CheckoutOutcome> {
        self.checkout_from(held, target, None, force, who, progress)
    }

    /// Moves the checked-out branch `branch` from the commit this working
    /// tree is on (`from`) to `to`, a descendant (`pull`'s fast-forward):
    /// the branch ref by compare-and-swap, then the working tree and index
    /// from `from`'s files to `to`'s, refusing (and putting the branch
    /// back) where a local change would be overwritten, as `switch` does.
    /// `from` is `None` for a branch with no commit yet (a `pull` into a
    /// new repository): the branch is created at `to` and every file of
    /// `to` written, refusing untracked files in the way.
    pub fn fast_forward(
        &self,
        branch: &str,
        from: Option<ObjectId>,
        to: ObjectId,
        reason: &str,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<CheckoutOutcome> {
        let lock = self.workspace()?.lock()?;
        if self.head()? != Head::Branch(branch.to_string()) || self.head_commit()? != from {
            return Err(RepoError::Invalid(format!(
                "{branch} is not checked out at {} any more; run the command again",
                from.map(|f| f.short(12))
                    .unwrap_or_else(|| "no commit".into())
            )));
        }
        let name = crate::refs::branch_ref(branch);
        let at = self.read_ref(&name)?;
        // In a shared store the branch may be ahead of this working tree
        // already (another machine moved it); it is moved only from where
        // this working tree is, or left where `to` already is.
        if at != Some(to) {
            self.cas_ref(&name, from, Some(to))?;
        }
        let target = CheckoutTarget::Branch(branch.to_string());
        match self.checkout_from(&lock, &target, Some(from), false, who, progress) {
            Ok(out) => {
                self.workspace()?.append_reflog(
                    &name,
                    &ReflogEntry {
                        old: from.unwrap_or(ObjectId::ZERO),
                        new: to,
                        who: who.clone(),
                        message: reason.to_string(),
                    },
                )?;
                Ok(out)
            }
            Err(e) => {
                if at != Some(to) {
                    let _ = self.cas_ref(&name, Some(to), from);
                }
                Err(e)
            }
        }
    }

    /// [`Self::checkout_locked`], comparing with the files of commit
    /// `from` instead of HEAD's when given (`Some(None)`: no commit).
    #[tracing::instrument(name = "checkout", level = "info", skip_all)]
    fn checkout_from(
        &self,
        _held: &crate::repo::RepoLock,
        target: &CheckoutTarget,
        from: Option<Option<ObjectId>>,
        force: bool,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<CheckoutOutcome> {
        let root = self.worktree()?.to_path_buf();
        let odb = self.odb()?;
        let new_commit = match target {
            CheckoutTarget::Branch(b) => self
                .read_ref(&crate::refs::branch_ref(b))?
                .ok_or_else(|| RepoError::BranchNotFound(b.clone()))?,
            CheckoutTarget::Detached(id) => *id,
        };
        // The index first: its file's bytes are freed before the trees are
        // built (at a million files each is a few hundred MiB).
        let mut idx = self.workspace()?.load_index()?;
        // Both commits are read now (a missing one fails before any work);
        // their trees are flattened after the scan of the working tree,
        // which then does not hold its results beside them.
        let new_root = odb.read_commit(&new_commit)?.tree;
        // Checking out HEAD's own commit (`checkout --force HEAD`, a switch
        // to a branch at the same commit): one flattened tree serves both.
        let from_commit = match from {
            Some(f) => f,
            None => self.head_commit()?,
        };
        let head_root: Option<Option<ObjectId>> = match from_commit {
            Some(c) if c == new_commit => None,
            Some(c) => Some(Some(odb.read_commit(&c)?.tree)),
            None => Some(None),
        };
        // As Git: finish or abort a merge (or --force it away) before
        // leaving it.
        match self.operation() {
            Ok(None) => {}
            _ if force => self.drop_operation()?,
            Ok(Some(op)) => {
                return Err(RepoError::OperationInProgress {
                    op: op.op.command(),
                })
            }
            // A damaged state file: `--force` (above) clears it.
            Err(e) => return Err(e),
        }
        if !idx.conflicts.is_empty() {
            if !force {
                return Err(RepoError::UnresolvedConflicts {
                    paths: idx.conflicted_paths(),
                });
            }
            idx.conflicts.clear();
        }
        // Paths the working tree changed: a sorted vector of paths borrowed
        // from the index, not a map (the scan's own copies are freed at
        // once: at a million files changed, 50 MiB).
        let changed: Vec<&str> = {
            let _s = tracing::info_span!("scan").entered();
            let scan = self.scan_worktree(&idx, "")?;
            let mut v: Vec<&str> = scan
                .changed
                .iter()
                .filter_map(|(p, _)| idx.entries.get(p).map(|e| e.path.as_str()))
                .collect();
            v.sort_unstable();
            v
        };
        let is_changed = |p: &str| changed.binary_search(&p).is_ok();
        // The target's files are walked, never listed whole (at a million
        // files, 140 MiB): once here to decide, then again to check and to
        // write the files marked here by their place in the walk.
        let decide = tracing::info_span!("decide").entered();
        let mut new_walk = walk(odb, &new_root)?;
        // Walked again to check and to write: what fits stays decoded.
        new_walk.retain_for_rewind();
        let mut old_walk: Option<TreeWalk> = match head_root {
            None => None,
            Some(Some(t)) => Some(walk(odb, &t)?),
            Some(None) => Some(TreeWalk::empty(odb)),
        };
        let mut marks = Marks::new(new_walk.len());
        let mut to_remove: Vec<String> = Vec::new();
        let mut conflicts = Vec::new();
        // Every path of HEAD, the target and the index, in order: a merge
        // of the three sorted lists.
        {
            let mut idxs = idx.entries.iter().peekable();
            let mut p = String::new();
            loop {
                let next = [
                    old_walk.as_ref().and_then(|w| w.current()).map(|(k, _)| k),
                    new_walk.current().map(|(k, _)| k),
                    idxs.peek().map(|&(k, _)| k.as_str()),
                ]
                .into_iter()
                .flatten()
                .min();
                let Some(next) = next else { break };
                p.clear();
                p.push_str(next);
                let p = p.as_str();
                let n = new_walk.current().filter(|&(k, _)| k == p).map(|(_, e)| e);
                let o = match &old_walk {
                    // HEAD is the target: one walk serves both.
                    None => n,
                    Some(w) => w.current().filter(|&(k, _)| k == p).map(|(_, e)| e),
                };
                let in_index = idxs
                    .next_if(|(k, _)| k.as_str() == p)
                    .map(|(_, e)| FlatEntry::from_index(e));
                let i = in_index.as_ref();
                let differs = match (o, n) {
                    (Some(a), Some(b)) => !a.same_content(b),
                    (None, None) => false,
                    _ => true,
                };
                // Changed in the working tree, or staged (HEAD vs index).
                let is_dirty = is_changed(p)
                    || match (o, i) {
                        (_, Some(_)) => compare(o, i).is_some(),
                        (Some(_), None) => true,
                        (None, None) => false,
                    };
                let mut write = false;
                let mut remove = false;
                if force {
                    match n {
                        Some(ne) => {
                            let idx_same = i.map(|ie| ie.same_content(ne)).unwrap_or(false);
                            write = !idx_same || is_dirty;
                        }
                        None => remove = o.is_some() || i.is_some(),
                    }
                } else if !differs {
                } else if is_dirty {
                    // A change that already equals the target is not in the way.
                    let already = match (i, n) {
                        (Some(ie), Some(ne)) => ie.same_content(ne) && !is_changed(p),
                        _ => false,
                    };
                    if !already {
                        conflicts.push(p.to_string());
                    }
                } else {
                    write = n.is_some();
                    remove = n.is_none();
                }
                let (had_new, had_old) = (n.is_some(), o.is_some());
                if write {
                    marks.set(new_walk.position());
                }
                if remove {
                    to_remove.push(p.to_string());
                }
                if had_new {
                    new_walk.advance()?;
                }
                if let Some(w) = old_walk.as_mut() {
                    if had_old {
                        w.advance()?;
                    }
                }
            }
        }
        drop(decide);
        tracing::debug!(
            write = marks.count(),
            remove = to_remove.len(),
            conflicts = conflicts.len(),
            "decided"
        );
        if !conflicts.is_empty() {
            return Err(RepoError::WouldOverwriteChanges { paths: conflicts });
        }
        drop(old_walk);
        drop(changed);
        let mut to_write = Marked::new(new_walk, marks);
        // Files the index does not track (untracked or ignored) in the way of
        // what the target creates: at the path, below it, or at a parent.
        let mut in_the_way = Vec::new();
        // Tracked files (staged, in neither commit) that stand where the
        // target puts a directory, and that nothing removes: the switch
        // would have to delete them half way; refused as local changes.
        let mut staged_in_the_way = Vec::new();
        if !force {
            let _s = tracing::info_span!("check-in-the-way").entered();
            let tracked = |p: &str| idx.entries.contains_key(p);
            // (Built in path order.)
            let removing = |p: &str| to_remove.binary_search_by(|r| r.as_str().cmp(p)).is_ok();
            let mut guard = ParentGuard::new(&root);
            to_write.for_each(&mut |p, _| {
                // Never look through a symlinked directory: what is behind it
                // is not in the working tree (`apply` refuses the path, unless
                // the link is tracked and removed first).
                if guard.beyond_symlink(p).is_some() {
                    return Ok(());
                }
                let at = match tracked(p) {
                    true => None,
                    false => fs::symlink_metadata(root.join(p)).ok(),
                };
                if at.as_ref().is_some_and(|m| !m.is_dir()) {
                    in_the_way.push(p.to_string());
                }
                let is_dir = at.as_ref().is_some_and(|m| m.is_dir());
                for (f, is_tracked) in obstacles(&root, p, is_dir, &tracked) {
                    if !is_tracked {
                        in_the_way.push(f);
                    } else if !removing(&f) {
                        staged_in_the_way.push(f);
                    }
                }
                Ok(())
            })?;
        }
        if !staged_in_the_way.is_empty() {
            staged_in_the_way.sort();
            staged_in_the_way.dedup();
            return Err(RepoError::WouldOverwriteChanges {
                paths: staged_in_the_way,
            });
        }
        if !in_the_way.is_empty() && !force {
            in_the_way.sort();
            in_the_way.dedup();
            return Err(RepoError::WouldOverwriteUntracked { paths: in_the_way });
        }
        let out = self.apply(
            odb,
            &root,
            &mut idx,
            &mut to_write,
            &to_remove,
            force,
            progress,
        )?;
        drop(to_write);
        self.workspace()?.save_index(&mut idx, &self.codec())?;

        let old_commit = from_commit;
        let from = match self.head()? {
            Head::Branch(b) => b,
            Head::Detached(id) => id.short(12),
        };
        let (new_head, to) = match target {
            CheckoutTarget::Branch(b) => (Head::Branch(b.clone()), b.clone()),
            CheckoutTarget::Detached(id) => (Head::Detached(*id), id.short(12)),
        };
        self.workspace()?.set_head(&new_head)?;
        match target {
            CheckoutTarget::Branch(_) => self.workspace()?.write_base(Some(new_commit))?,
            CheckoutTarget::Detached(_) => self.workspace()?.clear_base()?,
        }
        self.workspace()?.append_reflog(
            "HEAD",
            &ReflogEntry {
                old: old_commit.unwrap_or(ObjectId::ZERO),
                new: new_commit,
                who: who.clone(),
                message: format!("checkout: moving from {from} to {to}"),
            },
        )?;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &self,
        odb: &Odb,
        root: &Path,
        idx: &mut crate::worktree::WorktreeIndex,
        to_write: &mut dyn Writes,
        to_remove: &[String],
        force: bool,
        progress: &dyn Progress,
    ) -> Result<CheckoutOutcome> {
        let mut out = CheckoutOutcome::default();
        // Read before anything changes (a bad pattern refuses the checkout).
        let lockable = self.lockable()?;
        // Paths beyond a symlinked directory are refused before anything
        // changes (writing or removing through it would leave the tree).
        // Removals that stand in the way of a file to write come first, so
        // a tracked symlink being removed may stand where a directory of
        // files to write comes (the link goes, the directory is made);
        // removals themselves never go through a link.
        let mut guard = ParentGuard::new(root);
        for p in to_remove {
            guard.check(p)?;
        }
        let mut guard = ParentGuard::after_removing(root, to_remove.iter().map(String::as_str));
        let existing = |p: &str| {
            fs::symlink_metadata(root.join(p))
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .unwrap_or(0)
        };
        let overflow = || {
            RepoError::Invalid(
                "the files to check out add up to more than 2^64 bytes; the trees are damaged or forged"
                    .into(),
            )
        };
        // One pass over the files to write checks everything before
        // anything changes: each path (never beyond a symlinked directory),
        // each manifest against its tree entry (sizes come from manifests,
        // whose chunk lengths add up, never from what a tree claims), and
        // the space needed. It also finds the removals in the way of a
        // write (a tracked file where a directory comes, or tracked files
        // below a path that becomes a file): those go first; the others go
        // after every file is written, so that a failure while writing
        // (a chunk or a tree that cannot be read) has deleted nothing else.
        let mut early = vec![false; to_remove.len()];
        let (mut new, mut largest, mut files, mut freed) = (0u64, 0u64, 0u64, 0u64);
        let mut manifests: IdMap<Manifest> = IdMap::default();
        let mut retained = 0usize;
        let mut group: Vec<(String, FlatEntry)> = Vec::with_capacity(WRITE_GROUP);
        let checking = tracing::info_span!("check").entered();
        to_write.for_each(&mut |p, e| {
            guard.check(p)?;
            // Every file's size is its manifest's (checked in the group).
            let n = match e.kind {
                IndexKind::Symlink => 0,
                _ => e.size,
            };
            new = new.checked_add(n).ok_or_else(overflow)?;
            largest = largest.max(n);
            files += 1;
            freed = freed.saturating_add(existing(p));
            let mut parent = p;
            while let Some(i) = parent.rfind('/') {
                parent = &parent[..i];
                if let Ok(k) = to_remove.binary_search_by(|r| r.as_str().cmp(parent)) {
                    early[k] = true;
                }
            }
            let below = format!("{p}/");
            let from = to_remove.partition_point(|r| r.as_str() < below.as_str());
            for (k, r) in to_remove.iter().enumerate().skip(from) {
                if !r.starts_with(&below) {
                    break;
                }
                early[k] = true;
            }
            if e.kind != IndexKind::Symlink {
                group.push((p.to_string(), e.clone()));
                if group.len() == WRITE_GROUP {
                    check_group(odb, &mut group, &mut manifests, &mut retained)?;
                }
            }
            Ok(())
        })?;
        check_group(odb, &mut group, &mut manifests, &mut retained)?;
        drop(checking);
        // Refuse up front, before touching anything, when the files cannot
        // fit: a checkout that runs out of space half way leaves a mixed tree.
        // Net need: new bytes minus the files they replace or that are
        // removed first, plus the largest file (its old copy stays until the
        // new one is complete). When the files fit only once every removal
        // is done, every removal goes first. Sums are checked: sizes come
        // from the store.
        let (mut freed_early, mut freed_late) = (freed, 0u64);
        for (r, &first) in to_remove.iter().zip(&early) {
            match first {
                true => freed_early = freed_early.saturating_add(existing(r)),
                false => freed_late = freed_late.saturating_add(existing(r)),
            }
        }
        let need = |freed: u64| {
            new.saturating_sub(freed)
                .checked_add(largest)
                .ok_or_else(overflow)
        };
        let (need_late, need_all) = (
            need(freed_early)?,
            need(freed_early.saturating_add(freed_late))?,
        );
        if let Some(avail) = available_space(root) {
            let margin = 16 << 20;
            if need_late.saturating_add(margin) > avail {
                if need_all.saturating_add(margin) > avail {
                    return Err(RepoError::NoSpace {
                        path: root.to_path_buf(),
                        need: need_all,
                        available: avail,
                    });
                }
                early.fill(true);
            }
        }
        let remove = |p: &str, idx: &mut crate::worktree::WorktreeIndex| -> Result<()> {
            let abs = root.join(p);
            match fs::remove_file(&abs) {
                Ok(()) => {}
                // No file there any more: a directory now stands at the
                // path (EISDIR) or at a parent (ENOTDIR): nothing of the
                // tracked file is left to remove, and what stands there is
                // not MediaGit's to delete.
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::EISDIR)
                        || e.raw_os_error() == Some(libc::ENOTDIR) => {}
                Err(e) => return Err(RepoError::io("remove", &abs, e)),
            }
            remove_empty_parents(root, p);
            crate::failpoint::hit("write:checkout-remove");
            idx.entries.remove(p);
            Ok(())
        };
        // (Every path was checked above: never through a symlinked directory.)
        {
            let _s = tracing::info_span!("remove-first").entered();
            for (p, _) in to_remove.iter().zip(&early).filter(|(_, &first)| first) {
                remove(p, idx)?;
                out.removed += 1;
            }
        }
        // On a case-insensitive filesystem, a file written here may be the
        // one a later removal names in another case (`Photo.JPG` becoming
        // `photo.jpg`): that removal would delete the new file. Such
        // removals are recognised while writing, and skipped when the file
        // at the path is the one written (same inode).
        let late_folded: HashMap<String, usize> = to_remove
            .iter()
            .enumerate()
            .filter(|(k, _)| !early[*k])
            .map(|(k, r)| (r.to_lowercase(), k))
            .collect();
        let mut written_over: HashMap<usize, String> = HashMap::new();
        let writing = tracing::info_span!("write", files, bytes = new).entered();
        progress.start("checking out", new, files);
        // In groups of files in path order; each group's entries replace the
        // index's where it has the path (in place: a checkout of a million
        // files does not hold a second million entries); only new paths
        // wait for one merge at the end. The index is saved by the caller,
        // after the flush below.
        let mut fresh = Vec::new();
        let workers = self.read_workers();
        let mut write_group = |group: &mut Vec<(String, FlatEntry)>,
                               idx: &mut crate::worktree::WorktreeIndex|
         -> Result<()> {
            // Small files whose manifest is at hand are read together: their
            // chunks, ordered by where they are stored, 16 MiB of files at a
            // time, in runs of up to 8 MiB of a pack (one ranged GET for many
            // files on an object store, where one per file costs a round
            // trip each).
            let (mut small, mut large): (Vec<_>, Vec<_>) =
                std::mem::take(group).into_iter().partition(|(_, e)| {
                    e.size <= SMALL_FILE
                        && e.kind != IndexKind::Symlink
                        && manifests.contains_key(&e.manifest)
                });
            let first_chunk = |e: &FlatEntry| {
                manifests
                    .get(&e.manifest)
                    .and_then(|m| m.chunks.first())
                    .and_then(|c| odb.locate(&c.id))
                    .map(|(pack, l)| (pack, l.offset))
            };
            small.sort_by_cached_key(|(p, e)| (first_chunk(e), p.clone()));
            let mut done = Vec::with_capacity(small.len() + large.len());
            let mut at = 0;
            while at < small.len() {
                let mut end = at;
                let mut bytes = 0u64;
                while end < small.len()
                    && (end == at || bytes + small[end].1.size <= PREFETCH_BYTES)
                {
                    bytes += small[end].1.size;
                    end += 1;
                }
                let ids: Vec<ObjectId> = small[at..end]
                    .iter()
                    .filter_map(|(_, e)| manifests.get(&e.manifest))
                    .flat_map(|m| m.chunks.iter().map(|c| c.id))
                    .collect();
                let pre = odb.read_many(&ids, ObjectKind::Chunk);
                done.extend(parallel_map_n(&small[at..end], workers, |(p, e)| {
                    let m = manifests.get(&e.manifest);
                    let ro = lockable.read_only(p);
                    let r = write_entry(odb, root, p, e, force, ro, progress, m, Some(&pre));
                    progress.file_done();
                    r
                })?);
                at = end;
            }
            // Largest files first, so the workers finish together.
            large.sort_by(|a, b| b.1.size.cmp(&a.1.size).then_with(|| a.0.cmp(&b.0)));
            done.extend(parallel_map_n(&large, workers, |(p, e)| {
                let m = manifests.get(&e.manifest);
                let ro = lockable.read_only(p);
                let r = write_entry(odb, root, p, e, force, ro, progress, m, None);
                progress.file_done();
                r
            })?);
            for e in &done {
                out.bytes += e.stat.size;
                out.written += 1;
            }
            fresh.extend(idx.entries.replace_existing(done));
            group.clear();
            Ok(())
        };
        let mut dirs = dirs_of(to_remove.iter().map(String::as_str));
        to_write.for_each(&mut |p, e| {
            if let Some(i) = p.rfind('/') {
                if !dirs.contains(&p[..i]) {
                    dirs.insert(p[..i].to_string());
                }
            } else if !dirs.contains("") {
                dirs.insert(String::new());
            }
            if !late_folded.is_empty() {
                if let Some(&k) = late_folded.get(&p.to_lowercase()) {
                    written_over.insert(k, p.to_string());
                }
            }
            group.push((p.to_string(), e.clone()));
            if group.len() == WRITE_GROUP {
                write_group(&mut group, idx)?;
            }
            Ok(())
        })?;
        write_group(&mut group, idx)?;
        progress.finish();
        drop(writing);
        {
            let _s = tracing::info_span!("remove").entered();
            // Every file is written: a removal that fails now is reported,
            // not an error (an error would leave the switch half done with
            // HEAD on the old commit); the file stays, untracked.
            for (k, p) in to_remove.iter().enumerate().filter(|(k, _)| !early[*k]) {
                if let Some(w) = written_over.get(&k) {
                    use std::os::unix::fs::MetadataExt;
                    // (A new path's entry waits in `fresh` until the end.)
                    let entry = idx
                        .entries
                        .get(w)
                        .or_else(|| fresh.iter().find(|e| e.path == *w));
                    let same = match (fs::symlink_metadata(root.join(p)), entry) {
                        (Ok(m), Some(e)) => m.ino() == e.stat.ino && m.dev() == e.stat.dev,
                        _ => false,
                    };
                    if same {
                        idx.entries.remove(p);
                        continue;
                    }
                }
                match remove(p, idx) {
                    Ok(()) => out.removed += 1,
                    Err(e) => {
                        idx.entries.remove(p);
                        out.not_removed.push((p.clone(), e.to_string()));
                    }
                }
            }
        }
        // A command killed while writing a file left its temporary file
        // beside it: gone once a later one writes or removes there.
        tracing::info_span!("sweep").in_scope(|| sweep_temps(root, &dirs));
        if out.written > 0 {
            // The index about to be saved vouches for these files by their
            // stat: their bytes must be on disk first, or a power cut could
            // leave a file of the right size and time but other bytes that
            // `status` would call clean. One filesystem-wide flush, as
            // `cp -r` followed by `sync` (the benchmark's reference).
            tracing::info_span!("sync").in_scope(|| sync_filesystem(root))?;
        }
        idx.entries.insert_many(fresh);
        Ok(out)
    }

    /// Restores `paths` from `rev` (or, with `None`, from the index) into the
    /// working tree; with a revision the index is updated too.
    pub fn checkout_paths(
        &self,
        rev: Option<ObjectId>,
        paths: &[String],
        progress: &dyn Progress,
    ) -> Result<CheckoutOutcome> {
        let _lock = self.workspace()?.lock()?;
        let root = self.worktree()?.to_path_buf();
        let odb = self.odb()?;
        let mut idx = self.workspace()?.load_index()?;
        let mut to_write: BTreeMap<String, FlatEntry> = BTreeMap::new();
        for p in paths {
            match rev {
                Some(c) => {
                    let tree = odb.read_commit(&c)?.tree;
                    match lookup(odb, &tree, p)? {
                        Some(Lookup::File(e)) => {
                            to_write.insert(p.clone(), e);
                        }
                        Some(Lookup::Dir(t)) => {
                            for (sub, e) in flatten(odb, &t)? {
                                let full = if p.is_empty() {
                                    sub
                                } else {
                                    format!("{p}/{sub}")
                                };
                                to_write.insert(full, e);
                            }
                        }
                        None => {
                            return Err(RepoError::PathNotInRevision {
                                path: p.clone(),
                                rev: c.short(12),
                            })
                        }
                    }
                }
                None => {
                    let matched: Vec<_> = idx
                        .under(p)
                        .map(|(k, e)| (k.clone(), FlatEntry::from_index(e)))
                        .collect();
                    if matched.is_empty() {
                        return Err(RepoError::PathspecNoMatch {
                            path: p.clone(),
                            what: "tracked files",
                        });
                    }
                    to_write.extend(matched);
                }
            }
        }
        let list: Vec<(&str, &FlatEntry)> = to_write.iter().map(|(p, e)| (p.as_str(), e)).collect();
        // What stands in the way, decided before anything is touched: a
        // tracked file where a directory comes back (or tracked files
        // below a path that comes back as a file) is replaced, as Git
        // does; an untracked one stops the command.
        let mut to_remove: Vec<String> = Vec::new();
        let mut in_the_way: Vec<String> = Vec::new();
        {
            let tracked = |p: &str| idx.entries.contains_key(p);
            let mut guard = ParentGuard::new(&root);
            for (p, _) in &list {
                // (`apply` refuses a path beyond a symlinked directory.)
                if guard.beyond_symlink(p).is_some() {
                    continue;
                }
                let is_dir = fs::symlink_metadata(root.join(p)).is_ok_and(|m| m.is_dir());
                for (f, is_tracked) in obstacles(&root, p, is_dir, &tracked) {
                    if is_tracked {
                        to_remove.push(f);
                    } else {
                        in_the_way.push(f);
                    }
                }
            }
        }
        if !in_the_way.is_empty() {
            in_the_way.sort();
            in_the_way.dedup();
            return Err(RepoError::WouldOverwriteUntracked { paths: in_the_way });
        }
        to_remove.sort();
        to_remove.dedup();
        let out = self.apply(
            odb,
            &root,
            &mut idx,
            &mut Listed(&list),
            &to_remove,
            false,
            progress,
        )?;
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        Ok(out)
    }
}

/// Writes one file (or symlink) into the working tree atomically and returns
/// its fresh index entry. Every chunk's hash is verified on the way.
#[allow(clippy::too_many_arguments)]
fn write_entry(
    odb: &Odb,
    root: &Path,
    path: &str,
    e: &FlatEntry,
    force: bool,
    read_only: bool,
    progress: &dyn Progress,
    manifest: Option<&Manifest>,
    prefetched: Option<&IdMap<Vec<u8>>>,
) -> Result<IndexEntry> {
    let abs = root.join(path);
    let parent = abs.parent().unwrap_or(root).to_path_buf();
    refuse_symlinked_parent(root, path)?;
    ensure_dir(root, &parent, force)?;
    if let Ok(m) = fs::symlink_metadata(&abs) {
        if m.is_dir() {
            // Only empty directories, or any directory under --force, give way.
            let r = if force {
                fs::remove_dir_all(&abs)
            } else {
                fs::remove_dir(&abs)
            };
            r.map_err(|err| RepoError::io("replace directory", &abs, err))?;
        }
    }
    let name = abs.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let prefix = format!(".{name}.mediagit-tmp-");
    // Temporary names are random and created exclusively (O_EXCL, which also
    // refuses to follow a planted symlink), never guessed.
    let in_file = |err: RepoError| match err {
        RepoError::Io { source, .. } => RepoError::io("write", &abs, source),
        other => needed_by(other, path),
    };
    let tmp: tempfile::TempPath = match e.kind {
        IndexKind::Symlink => {
            let target = e.target.as_deref().unwrap_or("");
            tempfile::Builder::new()
                .prefix(&prefix)
                .make_in(&parent, |p| std::os::unix::fs::symlink(target, p))
                .map_err(|err| RepoError::io("create symlink", &abs, err))?
                .into_temp_path()
        }
        kind => {
            let tmp = tempfile::Builder::new()
                .prefix(&prefix)
                .tempfile_in(&parent)
                .map_err(|err| RepoError::io("create", &abs, err))?;
            let (f, tmp) = tmp.into_parts();
            // Chunks are large: small buffer, so big writes go straight through.
            let mut w = BufWriter::with_capacity(64 << 10, f);
            let all_there = |m: &Manifest, pre: &IdMap<Vec<u8>>| {
                m.chunks.iter().all(|c| pre.contains_key(&c.id))
            };
            match (manifest, prefetched) {
                (Some(m), Some(pre)) if all_there(m, pre) => {
                    // Read and verified together with their neighbours.
                    m.chunks.iter().try_for_each(|c| {
                        crate::odb::emit_chunk(&e.manifest, c, &pre[&c.id], &mut w, &|n| {
                            progress.bytes(n)
                        })
                    })
                }
                (Some(m), _) => odb.write_chunks_to(&e.manifest, m, &mut w, &|n| progress.bytes(n)),
                (None, _) => odb
                    .write_file_to(&e.manifest, &mut w, &|n| progress.bytes(n))
                    .map(|_| ()),
            }
            .map_err(in_file)?;
            let f = w
                .into_inner()
                .map_err(|err| RepoError::io("write", &abs, err.into_error()))?;
            let mode = if kind == IndexKind::Executable {
                0o755
            } else {
                0o644
            };
            // A lockable file not locked here: read-only (`[locks]`).
            let mode = if read_only { mode & !0o222 } else { mode };
            f.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(|err| RepoError::io("set permissions of", &abs, err))?;
            // Decoders refuse nanos >= 10^9; an extreme time is not set
            // rather than overflowing.
            let mtime = UNIX_EPOCH.checked_add(Duration::new(
                e.mtime.secs.max(0) as u64,
                e.mtime.nanos.min(999_999_999),
            ));
            if let Some(mtime) = mtime {
                f.set_modified(mtime)
                    .map_err(|err| RepoError::io("set modification time of", &abs, err))?;
            }
            start_writeback(&f);
            tmp
        }
    };
    // On error the TempPath removes the temporary file.
    tmp.persist(&abs)
        .map_err(|err| RepoError::io("rename into place", &abs, err.error))?;
    crate::failpoint::hit("write:checkout-file");
    let m = fs::symlink_metadata(&abs).map_err(|err| RepoError::io("stat", &abs, err))?;
    Ok(make_entry(
        path,
        e.kind,
        stat_info(&m),
        e.content,
        e.manifest,
        e.target.clone(),
    ))
}

/// Asks the kernel to start writing `f`'s dirty pages to disk now, without
/// waiting (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that the
/// one [`sync_filesystem`] at the end of a checkout finds most of the data
/// already written instead of flushing all of it at once. Best effort: an
/// error only means the final flush has more to do.
fn start_writeback(f: &fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `f` is an open file, so the descriptor is valid for the
        // call; offset 0 and length 0 mean "the whole file"; the call only
        // schedules I/O and touches no memory of ours.
        unsafe {
            libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = f;
}

/// Waits until every file written on the filesystem holding `dir` is on
/// disk (`syncfs`): one call for a whole checkout instead of an `fsync`
/// per file.
fn sync_filesystem(dir: &Path) -> Result<()> {
    let d = fs::File::open(dir).map_err(|e| RepoError::io("open", dir, e))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `d` is an open file, so its descriptor is valid for the
        // duration of the call; syncfs only flushes, it reads and writes no
        // memory of ours.
        if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
            return Err(RepoError::io("sync", dir, std::io::Error::last_os_error()));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // No syncfs: flush everything (POSIX sync), then the directory.
        // SAFETY: sync takes no arguments and touches no memory of ours.
        unsafe { libc::sync() };
        d.sync_all().map_err(|e| RepoError::io("fsync", dir, e))?;
    }
    crate::failpoint::hit("write:checkout-synced");
    Ok(())
}

/// The files a checkout writes, in path order, listed once per pass (the
/// checks, then the writing) instead of held in one list.
pub(crate) trait Writes {
    fn for_each(&mut self, f: &mut dyn FnMut(&str, &FlatEntry) -> Result<()>) -> Result<()>;
}

/// Files held in a list (`checkout REV -- PATH`: only the paths named).
pub(crate) struct Listed<'a>(pub(crate) &'a [(&'a str, &'a FlatEntry)]);

impl Writes for Listed<'_> {
    fn for_each(&mut self, f: &mut dyn FnMut(&str, &FlatEntry) -> Result<()>) -> Result<()> {
        self.0.iter().try_for_each(|(p, e)| f(p, e))
    }
}

/// The files of a tree marked by their place in its walk: each pass walks
/// the tree again (the same objects, verified by id, in the same order),
/// reading only the directories that hold marked files.
struct Marked<'o> {
    walk: TreeWalk<'o>,
    any: bool,
}

impl<'o> Marked<'o> {
    fn new(mut walk: TreeWalk<'o>, marks: Marks) -> Marked<'o> {
        let any = marks.count() > 0;
        walk.only(Some(marks));
        Marked { walk, any }
    }
}

impl Writes for Marked<'_> {
    fn for_each(&mut self, f: &mut dyn FnMut(&str, &FlatEntry) -> Result<()>) -> Result<()> {
        if !self.any {
            return Ok(());
        }
        self.walk.rewind()?;
        while let Some((p, e)) = self.walk.current() {
            f(p, e)?;
            self.walk.advance()?;
        }
        Ok(())
    }
}

/// Files written (and manifests checked) together: one parallel batch, one
/// request for many manifests on an object store.
const WRITE_GROUP: usize = 4096;

/// Files up to this size are read with their neighbours in the store
/// (see `apply`), ...
const SMALL_FILE: u64 = 1 << 20;
/// ... this many bytes of them at a time (what one batch holds in memory;
/// read in runs of up to 8 MiB of a pack).
const PREFETCH_BYTES: u64 = 16 << 20;

/// Checks one group of files to write against their manifests, read with
/// as few requests as possible (on an object store: one GET for many, not
/// one per file): same size, same content id. A forged tree (a 1-byte
/// entry whose manifest restores 2 GiB, or an entry whose content id is
/// another file's) is refused by path. Keeps the manifests in `kept` as
/// long as they fit in [`MANIFEST_BUDGET`] (the others are read again when
/// their file is written). The group is emptied after.
fn check_group(
    odb: &Odb,
    group: &mut Vec<(String, FlatEntry)>,
    kept: &mut IdMap<Manifest>,
    retained: &mut usize,
) -> Result<()> {
    // By manifest: the files that share one are adjacent, so each manifest
    // is read once and the files after the first are checked against it.
    group.sort_unstable_by(|a, b| (a.1.manifest, &a.0).cmp(&(b.1.manifest, &b.0)));
    let mut ids: Vec<ObjectId> = group
        .iter()
        .map(|(_, e)| e.manifest)
        .filter(|id| !kept.contains_key(id))
        .collect();
    ids.dedup();
    let mut batch: IdMap<Manifest> = odb
        .read_many(&ids, ObjectKind::Manifest)
        .into_iter()
        .filter_map(|(id, b)| Manifest::decode(&b).ok().map(|m| (id, m)))
        .collect();
    // The manifest checked last: (id, size, content).
    let mut last: Option<(ObjectId, u64, ObjectId)> = None;
    for (path, e) in group.iter() {
        let known = match (last, kept.get(&e.manifest)) {
            (Some((id, size, content)), _) if id == e.manifest => Some((size, content)),
            (_, Some(m)) => Some((m.size, m.content)),
            _ => None,
        };
        if let Some((size, content)) = known {
            // Checked already (a second file with the same content).
            if size != e.size || content != e.content {
                return Err(manifest_mismatch(path, e, size, Some(content)));
            }
            continue;
        }
        let m = match batch.remove(&e.manifest) {
            Some(m) => m,
            // Not read in the batch: read it alone for the precise error.
            None => odb
                .read_manifest(&e.manifest)
                .map_err(|err| needed_by(err, path))?,
        };
        if m.size != e.size || m.content != e.content {
            return Err(manifest_mismatch(path, e, m.size, Some(m.content)));
        }
        last = Some((e.manifest, m.size, m.content));
        let cost = MANIFEST_COST + CHUNK_ENTRY_COST * m.chunks.len();
        if *retained + cost <= MANIFEST_BUDGET {
            *retained += cost;
            kept.insert(e.manifest, m);
        }
    }
    group.clear();
    Ok(())
}

/// Bytes of manifests a checkout keeps in memory between checking and
/// writing, as estimated by [`MANIFEST_COST`] and [`CHUNK_ENTRY_COST`]:
/// about 400,000 chunk entries, or 100,000 small files; the others are
/// read again when their file is written. Forged manifests of
/// millions of entries each must not add up to gigabytes, nor a million
/// small files keep a million manifests (at 64 MiB, a checkout of a
/// million files peaked 48 MiB higher for no measurable gain in time).
const MANIFEST_BUDGET: usize = 16 << 20;
/// A kept manifest's own cost (map slot, struct, allocation), in bytes.
const MANIFEST_COST: usize = 160;
/// A kept manifest's cost per chunk entry, in bytes.
const CHUNK_ENTRY_COST: usize = 40;

/// The file an object that cannot be read belongs to, added to the error
/// (which stays structured, so the CLI still gives its hint: run fsck).
fn needed_by(err: RepoError, path: &str) -> RepoError {
    match err {
        RepoError::MissingObject { id, kind, context } => RepoError::MissingObject {
            id,
            kind,
            context: Some(match context {
                Some(c) => format!("{path}, {c}"),
                None => path.to_string(),
            }),
        },
        RepoError::CorruptObject {
            id,
            kind,
            location,
            reason,
        } => RepoError::CorruptObject {
            id,
            kind,
            location: format!("needed by {path}; {location}"),
            reason,
        },
        RepoError::Format { what, source } => RepoError::Format {
            what: format!("{what} (needed by {path})"),
            source,
        },
        RepoError::WrongKind {
            id,
            expected,
            actual,
        } => RepoError::CorruptObject {
            id,
            kind: expected,
            location: format!("tree entry {path}"),
            reason: format!("the object is a {actual}, not a {expected}"),
        },
        other => other,
    }
}

fn manifest_mismatch(path: &str, e: &FlatEntry, size: u64, content: Option<ObjectId>) -> RepoError {
    RepoError::CorruptObject {
        id: e.manifest,
        kind: "manifest",
        location: format!("tree entry {path}"),
        reason: format!(
            "the tree says {} bytes with content {}, the manifest {} bytes{}",
            e.size,
            e.content,
            size,
            content
                .map(|c| format!(" with content {c}"))
                .unwrap_or_default()
        ),
    }
}

/// Creates `dir` and its parents; a file standing where a directory must go
/// is removed only under `force` (tracked files were removed before).
fn ensure_dir(root: &Path, dir: &Path, force: bool) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Ok(rel) = dir.strip_prefix(root) {
        let mut cur = root.to_path_buf();
        for c in rel.components() {
            cur.push(c);
            if let Ok(m) = fs::symlink_metadata(&cur) {
                if !m.is_dir() {
                    if !force {
                        return Err(RepoError::WouldOverwriteUntracked {
                            paths: vec![cur.display().to_string()],
                        });
                    }
                    fs::remove_file(&cur).map_err(|e| RepoError::io("remove", &cur, e))?;
                }
            }
        }
    }
    fs::create_dir_all(dir).map_err(|e| RepoError::io("create directory", dir, e))
}

/// Bytes available to this user on the filesystem holding `path`.
// The statvfs fields are u64 on 64-bit Linux but narrower elsewhere.
#[allow(clippy::unnecessary_cast)]
fn available_space(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call, and
    // `st` points to writable memory of the right size; statvfs fully
    // initializes it when it returns 0, and we read it only in that case.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: rc == 0, so statvfs initialized `st`.
    let st = unsafe { st.assume_init() };
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Repository paths of every file (and symlink) below directory `dir`.
/// What stands in the way of writing a file at `p`, with whether the index
/// tracks each: every file below it when a directory is there (`is_dir`),
/// and every leading path that exists but is not a directory. The callers
/// decide what to do with each (refuse, or remove what is tracked).
pub(crate) fn obstacles(
    root: &Path,
    p: &str,
    is_dir: bool,
    tracked: &dyn Fn(&str) -> bool,
) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    if is_dir {
        out.extend(files_below(root, p).into_iter().map(|f| {
            let t = tracked(&f);
            (f, t)
        }));
    }
    let mut parent = p;
    while let Some(i) = parent.rfind('/') {
        parent = &parent[..i];
        if fs::symlink_metadata(root.join(parent)).is_ok_and(|m| !m.is_dir()) {
            out.push((parent.to_string(), tracked(parent)));
        }
    }
    out
}

fn files_below(root: &Path, dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_string()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(root.join(&d)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{d}/{name}");
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(rel);
            } else {
                out.push(rel);
            }
        }
    }
    out
}

/// Removes what a killed [`write_entry`] left beside `paths`: the
/// temporary files named `.NAME.mediagit-tmp-*` in their directories
/// (never through a symlinked directory, never a directory).
pub(crate) fn remove_stale_temps(root: &Path, paths: &[String]) {
    sweep_temps(root, &dirs_of(paths.iter().map(String::as_str)));
}

/// The directories holding `paths` (`""` for the top).
fn dirs_of<'p>(paths: impl IntoIterator<Item = &'p str>) -> BTreeSet<String> {
    paths
        .into_iter()
        .map(|p| p.rfind('/').map_or("", |i| &p[..i]).to_string())
        .collect()
}

/// Whether `name` is a temporary file [`write_entry`] makes:
/// `.NAME.mediagit-tmp-XXXXXX`.
fn is_temp_name(name: &str) -> bool {
    name.len() > 1
        && name.starts_with('.')
        && name[1..].find(".mediagit-tmp-").is_some_and(|i| i > 0)
}

/// Removes the temporary files of killed writes from `dirs`, one
/// directory read each. Only one MediaGit command writes a working tree
/// at a time (the workspace lock), and its own writes are finished when
/// this runs: every such file is a leftover.
fn sweep_temps(root: &Path, dirs: &BTreeSet<String>) {
    let mut guard = ParentGuard::new(root);
    for dir in dirs {
        if !dir.is_empty() && guard.beyond_symlink(&format!("{dir}/.")).is_some() {
            continue;
        }
        let abs_dir = root.join(dir);
        match fs::symlink_metadata(&abs_dir) {
            Ok(m) if m.is_dir() => {}
            _ => continue,
        }
        let Ok(rd) = fs::read_dir(&abs_dir) else {
            continue;
        };
        for e in rd.flatten() {
            let is_temp = e.file_name().to_str().is_some_and(is_temp_name);
            let not_dir = e.file_type().is_ok_and(|t| !t.is_dir());
            if is_temp && not_dir {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Whether `p` is one of `paths` or below one of them.
pub fn matches_any(p: &str, paths: &[String]) -> bool {
    paths.iter().any(|q| path_is_under(p, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_and_nothing_else() {
        assert!(is_temp_name(".photo.jpg.mediagit-tmp-xKH7XF"));
        assert!(is_temp_name(".a.mediagit-tmp-"));
        for name in [
            "photo.jpg",
            ".mediagit-tmp-x",
            "..mediagit-tmp-x",
            "a.mediagit-tmp-x",
            ".photo.jpg",
            ".",
        ] {
            assert!(!is_temp_name(name), "{name}");
        }
    }

    #[test]
    fn sweeping_removes_leftovers_only_and_never_beyond_a_symlink() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("media/sub")).unwrap();
        fs::write(r.join("media/.clip.mp4.mediagit-tmp-AbC123"), b"x").unwrap();
        fs::write(r.join("media/clip.mp4"), b"keep").unwrap();
        fs::write(r.join("media/.notes"), b"keep").unwrap();
        fs::create_dir(r.join("media/.d.mediagit-tmp-dir")).unwrap();
        fs::write(r.join("media/sub/.a.mediagit-tmp-1"), b"x").unwrap();
        fs::write(outside.path().join(".b.mediagit-tmp-1"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), r.join("link")).unwrap();
        remove_stale_temps(
            r,
            &["media/clip.mp4".into(), "link/b".into(), "gone/x".into()],
        );
        assert!(!r.join("media/.clip.mp4.mediagit-tmp-AbC123").exists());
        assert!(r.join("media/clip.mp4").exists());
        assert!(r.join("media/.notes").exists());
        assert!(r.join("media/.d.mediagit-tmp-dir").is_dir());
        // Only the directories named: a subdirectory is not walked.
        assert!(r.join("media/sub/.a.mediagit-tmp-1").exists());
        assert!(outside.path().join(".b.mediagit-tmp-1").exists());
    }
}
