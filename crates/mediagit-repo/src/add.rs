//! `add`, `rm` and `mv`: changing what is staged.
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mediagit_format::index::{IndexEntry, IndexKind, StatInfo};

use crate::add_journal::{journal_path, AddJournal, Checkpoints, DoneFile};
use crate::error::{RepoError, Result};
use crate::ingest::{hash_path, parallel_map, with_ingester, Ingested, Previous};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::status::ChangeKind;
use crate::worktree::{
    index_kind, path_is_under, read_symlink_target, stat_info, walk, ParentGuard, WalkProblem,
};

#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    /// Repository paths (`""` = the whole tree).
    pub paths: Vec<String>,
    /// Stage every change in the whole tree.
    pub all: bool,
    /// Only changes to files already tracked (`commit -a`).
    pub tracked_only: bool,
    pub dry_run: bool,
    /// Set (from a Ctrl-C handler) to stop: what was stored so far is kept
    /// and the next `add` continues from it ([`RepoError::Interrupted`]).
    pub cancel: Option<Arc<AtomicBool>>,
}

#[derive(Debug, Default)]
pub struct AddOutcome {
    /// With `dry_run`, the paths that would be staged and what would
    /// happen to them, sorted (empty otherwise: a real add of a million
    /// files does not keep a second copy of every path to report).
    pub changes: Vec<(String, ChangeKind)>,
    pub bytes_read: u64,
    pub problems: Vec<WalkProblem>,
    /// Files an interrupted add had stored whole, taken without reading.
    pub resumed_files: u64,
    /// Bytes not read again because an interrupted add had stored them.
    pub resumed_bytes: u64,
    /// Media records stored for new content (FORMAT.md §14).
    pub media_records: usize,
    /// Why media records could not be stored (the files were added; a
    /// later `mediagit media scan` stores them).
    pub media_warning: Option<String>,
}

struct Job {
    path: String,
    kind: IndexKind,
    stat: StatInfo,
}

impl Job {
    /// Bytes to read (a symlink's target is not counted).
    fn size(&self) -> u64 {
        if self.kind == IndexKind::Symlink {
            0
        } else {
            self.stat.size
        }
    }
}

impl Repository {
    pub fn add(&self, opts: &AddOptions, progress: &dyn Progress) -> Result<AddOutcome> {
        let _lock = self.workspace()?.lock()?;
        self.add_locked(opts, progress)
    }

    pub(crate) fn add_locked(
        &self,
        opts: &AddOptions,
        progress: &dyn Progress,
    ) -> Result<AddOutcome> {
        self.add_inner(opts, progress, true).map(|(out, _)| out)
    }

    /// `add` that, with `save` false, stores the files' objects but leaves
    /// the index file as it was and returns the index it would have saved
    /// (`stash push`: the index changes only once the stash entry exists).
    #[tracing::instrument(name = "add", level = "info", skip_all)]
    pub(crate) fn add_inner(
        &self,
        opts: &AddOptions,
        progress: &dyn Progress,
        save: bool,
    ) -> Result<(AddOutcome, crate::worktree::WorktreeIndex)> {
        let root = self.worktree()?.to_path_buf();
        let mut idx = self.workspace()?.load_index()?;
        let scopes: Vec<String> = if opts.all || opts.tracked_only {
            vec![String::new()]
        } else {
            opts.paths.clone()
        };
        let mut jobs: Vec<Job> = Vec::new();
        let mut deletions: BTreeSet<String> = BTreeSet::new();
        let mut queued: BTreeSet<String> = BTreeSet::new();
        let mut problems = Vec::new();
        let mut out_problems = Vec::new();
        let mut guard = ParentGuard::new(&root);
        // A path a merge left unresolved and the user deleted from the
        // working tree: `add` resolves it as deleted (as Git does).
        let mut resolved: BTreeSet<String> = BTreeSet::new();
        for c in idx.conflicted_paths() {
            if !scopes.iter().any(|s| path_is_under(&c, s)) {
                continue;
            }
            let gone = guard.beyond_symlink(&c).is_some()
                || matches!(std::fs::symlink_metadata(root.join(&c)), Err(e) if crate::worktree::is_gone(&e));
            if gone {
                resolved.insert(c);
            }
        }
        let scan = tracing::info_span!("scan").entered();
        for scope in &scopes {
            // A path beyond a symlinked directory is refused (as Git does):
            // reading it would read outside the working tree.
            guard.check(scope)?;
            let abs = self.workspace()?.abs_path(scope)?;
            let meta = std::fs::symlink_metadata(&abs).ok();
            let mut candidates: Vec<(String, StatInfo, IndexKind)> = Vec::new();
            match &meta {
                Some(m) if m.is_dir() => {
                    if !opts.tracked_only {
                        let (files, probs) = walk(&root, scope);
                        problems.extend(probs);
                        for f in files {
                            candidates.push((f.path, f.stat, f.kind));
                        }
                    }
                    // Tracked files not found by the walk: deleted, or ignored but tracked.
                    let walked: std::collections::HashSet<&str> =
                        candidates.iter().map(|c| c.0.as_str()).collect();
                    let mut unseen = Vec::new();
                    for (p, _) in idx.under(scope) {
                        if !walked.contains(p.as_str()) {
                            unseen.push(p.clone());
                        }
                    }
                    drop(walked);
                    for p in unseen {
                        // A leading directory became a symlink: the file is
                        // gone from the working tree; never read through it.
                        if guard.beyond_symlink(&p).is_some() {
                            deletions.insert(p);
                            continue;
                        }
                        match std::fs::symlink_metadata(root.join(&p)) {
                            Ok(m) => match index_kind(&m) {
                                Some(k) => candidates.push((p, stat_info(&m), k)),
                                None => {
                                    deletions.insert(p);
                                }
                            },
                            // Only "no such file" is a deletion; a directory we
                            // cannot read (permissions, a failing disk) is an error,
                            // never a reason to record files as deleted.
                            Err(e) if crate::worktree::is_gone(&e) => {
                                deletions.insert(p);
                            }
                            Err(e) => return Err(RepoError::io("read", root.join(&p), e)),
                        }
                    }
                }
                Some(m) => {
                    let kind = index_kind(m).ok_or_else(|| {
                        RepoError::Invalid(format!(
                            "{} is not a regular file, directory or symlink",
                            abs.display()
                        ))
                    })?;
                    candidates.push((scope.clone(), stat_info(m), kind));
                }
                None => {
                    let tracked: Vec<String> = idx.under(scope).map(|(p, _)| p.clone()).collect();
                    // (`scope` exists nowhere, so nothing below it can be read.)
                    if tracked.is_empty() && !resolved.iter().any(|c| path_is_under(c, scope)) {
                        return Err(RepoError::PathspecNoMatch {
                            path: scope.clone(),
                            what: "files",
                        });
                    }
                    deletions.extend(tracked);
                }
            }
            for (path, st, kind) in candidates {
                let existing = idx.entries.get(&path);
                if opts.tracked_only && existing.is_none() {
                    continue;
                }
                if let Some(e) = existing {
                    if idx.stat_clean(e, &st, kind) {
                        continue;
                    }
                }
                if kind == IndexKind::Symlink {
                    let abs = root.join(&path);
                    if let Err(why) = read_symlink_target(&abs)? {
                        out_problems.push(WalkProblem {
                            path: abs,
                            message: why,
                        });
                        continue;
                    }
                }
                // Dedup only matters when several scopes overlap.
                if scopes.len() == 1 || queued.insert(path.clone()) {
                    jobs.push(Job {
                        kind,
                        stat: st,
                        path,
                    });
                }
            }
        }
        problems.extend(out_problems);
        let mut out = AddOutcome {
            problems,
            ..Default::default()
        };
        if opts.dry_run {
            for d in deletions.iter().chain(&resolved) {
                out.changes.push((d.clone(), ChangeKind::Deleted));
            }
            for j in &jobs {
                let change = match idx.entries.get(&j.path) {
                    None => Some(ChangeKind::Added),
                    // Stat data moved (or the entry is racily clean): only a
                    // content or mode change is a change.
                    Some(e)
                        if e.kind == j.kind
                            && hash_path(&root.join(&j.path), j.kind)? == e.content =>
                    {
                        None
                    }
                    Some(_) => Some(ChangeKind::Modified),
                };
                if let Some(c) = change {
                    out.changes.push((j.path.clone(), c));
                }
            }
            out.changes.sort();
            return Ok((out, idx));
        }
        // Largest files first: the workers then finish together instead of
        // one of them reading the last big video alone. (Sorted smallest
        // first: groups are taken off the end.)
        jobs.sort_by(|a, b| a.size().cmp(&b.size()).then_with(|| b.path.cmp(&a.path)));
        let total: u64 = jobs.iter().map(|j| j.size()).sum();
        progress.start("adding", total, jobs.len() as u64);
        let odb = self.odb()?;
        let ws = self.workspace()?;
        remove_stale_temp_packs(&ws.tmp_dir());
        let journal = AddJournal::open(
            journal_path(ws.dir()),
            opts.cancel.clone().unwrap_or_default(),
        );
        let core = &self.config().core;
        let checkpoints = Checkpoints {
            bytes: core.checkpoint_bytes.unwrap_or(odb.pack_target_size() / 4),
            every: Duration::from_secs(
                core.checkpoint_seconds
                    .unwrap_or(crate::add_journal::DEFAULT_CHECKPOINT_SECONDS),
            ),
        };
        let (resumed_files, resumed_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
        let journaled = Some((&journal, checkpoints));
        drop(scan);
        let store = tracing::info_span!("store", files = jobs.len()).entered();
        let results = with_ingester(odb, self.config().chunking, &[], journaled, |ing| {
            let one = |j: &Job| {
                // Stored whole by an interrupted add, and still the same.
                let from_journal = match j.kind {
                    IndexKind::Symlink => None,
                    _ => journal.done_file(&j.path, &j.stat),
                };
                if let Some(d) = from_journal {
                    if d.kind == j.kind && journaled_file_holds(odb, d) {
                        resumed_files.fetch_add(1, Ordering::Relaxed);
                        resumed_bytes.fetch_add(j.size(), Ordering::Relaxed);
                        progress.bytes(j.size());
                        progress.file_done();
                        return Ok(Ingested {
                            kind: d.kind,
                            stat: d.stat,
                            content: d.content,
                            manifest: d.manifest,
                            target: None,
                            checkpoints: d.checkpoints.clone(),
                            resumed_bytes: j.size(),
                        });
                    }
                }
                // A file the index knew, with hash checkpoints kept for
                // its content: the previous version, so an unchanged
                // prefix is not hashed twice. Best effort: a manifest
                // that cannot be read only costs the shortcut.
                let known = idx
                    .entries
                    .get(&j.path)
                    .filter(|e| e.kind != IndexKind::Symlink && j.kind != IndexKind::Symlink);
                let cps = known
                    .and_then(|e| idx.resume.get(&e.manifest))
                    .filter(|c| !c.is_empty());
                let manifest = match (known, cps) {
                    (Some(e), Some(_)) => odb.read_manifest(&e.manifest).ok(),
                    _ => None,
                };
                let prev = match (known, cps, &manifest) {
                    (Some(e), Some(c), Some(m)) => Some(Previous {
                        content: e.content,
                        chunks: &m.chunks,
                        checkpoints: c,
                    }),
                    _ => None,
                };
                let resume = journal.partial_file(&j.path, &j.stat);
                let r = ing.ingest(&root, &j.path, prev.as_ref(), resume, progress);
                if let Ok(i) = &r {
                    resumed_bytes.fetch_add(i.resumed_bytes, Ordering::Relaxed);
                }
                progress.file_done();
                r
            };
            // In groups, each turned into index entries as it finishes: the
            // workers' results and the jobs are only ever one group's, not
            // a second and third copy of a million paths.
            let mut staged = Vec::with_capacity(jobs.len());
            let mut resume = Vec::new();
            let mut bytes_read = 0;
            while !jobs.is_empty() {
                let mut group = jobs.split_off(jobs.len().saturating_sub(ADD_GROUP));
                jobs.shrink_to_fit();
                group.reverse();
                let done = match parallel_map(&group, one) {
                    Ok(done) => done,
                    Err(e) => {
                        progress.finish();
                        return Err(e);
                    }
                };
                for (j, r) in group.into_iter().zip(done) {
                    bytes_read += j.size();
                    if !r.checkpoints.is_empty() {
                        resume.push((r.manifest, r.checkpoints));
                    }
                    staged.push(IndexEntry {
                        path: j.path,
                        kind: r.kind,
                        stat: r.stat,
                        content: r.content,
                        manifest: r.manifest,
                        target: r.target,
                    });
                }
            }
            progress.finish();
            // Media records for new content, in this add's packs: headers
            // only, never failing the add (a file a parser cannot read gets
            // a record saying so; a record that cannot be stored is a
            // warning).
            let media = match save && self.config().media.records {
                true => Some(self.staged_media_records(&root, &staged, &mut |k, b| {
                    ing.put_object(k, b.to_vec())
                })),
                false => None,
            };
            Ok((staged, resume, bytes_read, media))
        })?;
        let (staged, resume, bytes_read, media) = results;
        match media {
            Some(Ok(Some(records))) => match self.publish_media_records(&records) {
                Ok(n) => out.media_records = n,
                Err(e) => out.media_warning = Some(e.to_string()),
            },
            Some(Err(e)) => out.media_warning = Some(e.to_string()),
            _ => {}
        }
        out.bytes_read = bytes_read;
        for d in deletions {
            idx.entries.remove(&d);
        }
        idx.conflicts.retain(|c| !resolved.contains(&c.entry.path));
        for e in &staged {
            // A file replacing a directory (or the reverse) drops the old entries.
            idx.entries.remove_below(&e.path);
            let mut parent = e.path.as_str();
            while let Some(i) = parent.rfind('/') {
                parent = &parent[..i];
                idx.entries.remove(parent);
            }
        }
        drop(store);
        idx.resume.extend(resume);
        // One merge (jobs ran largest first, not in path order). The paths
        // are unique (each was queued once), so an in-place sort serves.
        let mut staged = staged;
        staged.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        idx.entries.insert_many(staged);
        out.resumed_files = resumed_files.into_inner();
        out.resumed_bytes = resumed_bytes.into_inner();
        if !save {
            // (The add journal stays: a later add finds these files stored.)
            return Ok((out, idx));
        }
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        crate::failpoint::hit("write:add-index-saved");
        // The journal served this add: what it recorded for paths this add
        // looked at is done with; the rest stays for a later add (`commit
        // -a` looks at tracked files only, `add PATH` at PATH only).
        if opts.tracked_only {
            journal.finish_add(|p| idx.entries.get(p).is_some());
        } else {
            journal.finish_add(|p| scopes.iter().any(|s| path_is_under(p, s)));
        }
        Ok((out, idx))
    }

    /// `rm`: unstage paths and (unless `cached`) delete them from the working tree.
    pub fn rm(
        &self,
        paths: &[String],
        cached: bool,
        recursive: bool,
        force: bool,
    ) -> Result<Vec<String>> {
        let _lock = self.workspace()?.lock()?;
        let root = self.worktree()?.to_path_buf();
        let mut idx = self.workspace()?.load_index()?;
        let head = self.head_tree()?;
        let mut targets: BTreeSet<String> = BTreeSet::new();
        // `rm` of a path a merge left unresolved resolves it as deleted.
        let conflicted = idx.conflicted_paths();
        for p in paths {
            let mut matched: Vec<String> = idx.under(p).map(|(k, _)| k.clone()).collect();
            matched.extend(conflicted.iter().filter(|c| path_is_under(c, p)).cloned());
            if matched.is_empty() {
                return Err(RepoError::PathspecNoMatch {
                    path: p.clone(),
                    what: "tracked files",
                });
            }
            let just_the_file = matched.len() == 1 && &matched[0] == p;
            if !recursive && !just_the_file {
                return Err(RepoError::RmNeedsRecursive(p.clone()));
            }
            targets.extend(matched);
        }
        if !cached {
            // Removing through a symlinked directory would delete the files
            // it points to, outside the working tree: refused (as Git does).
            // `--cached` only touches the index and stays allowed.
            let mut guard = ParentGuard::new(&root);
            for t in &targets {
                guard.check(t)?;
            }
        }
        if !force && !cached {
            let mut dirty = Vec::new();
            for t in &targets {
                let Some(e) = idx.entries.get(t) else {
                    continue; // conflicted: its versions stay in the store
                };
                let staged = head
                    .get(t)
                    .map(|h| h.content != e.content || h.kind != e.kind)
                    .unwrap_or(true);
                let abs = root.join(t);
                let modified = match std::fs::symlink_metadata(&abs) {
                    Ok(m) => {
                        let kind = index_kind(&m);
                        kind != Some(e.kind)
                            || (!idx.stat_clean(e, &stat_info(&m), e.kind)
                                && crate::ingest::hash_path(&abs, e.kind)? != e.content)
                    }
                    Err(_) => false,
                };
                if staged || modified {
                    dirty.push(t.clone());
                }
            }
            if !dirty.is_empty() {
                return Err(RepoError::RmLocalChanges { paths: dirty });
            }
        }
        for t in &targets {
            idx.entries.remove(t);
        }
        idx.conflicts.retain(|c| !targets.contains(&c.entry.path));
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        if !cached {
            for t in &targets {
                let abs = root.join(t);
                match std::fs::remove_file(&abs) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(RepoError::io("remove", abs, e)),
                }
                remove_empty_parents(&root, t);
            }
        }
        Ok(targets.into_iter().collect())
    }

    /// `mv`: renames a tracked file or directory in the working tree and the index.
    pub fn mv(&self, src: &str, dst: &str) -> Result<(String, String)> {
        let _lock = self.workspace()?.lock()?;
        let root = self.worktree()?.to_path_buf();
        let mut idx = self.workspace()?.load_index()?;
        let bad = |reason: &str| RepoError::BadMove {
            src: src.into(),
            dst: dst.into(),
            reason: reason.into(),
        };
        if src.is_empty() {
            return Err(bad("cannot move the root of the working tree"));
        }
        let moved: Vec<String> = idx.under(src).map(|(p, _)| p.clone()).collect();
        if moved.is_empty() {
            return Err(bad("source is not tracked"));
        }
        let mut guard = ParentGuard::new(&root);
        guard.check(src)?;
        for p in &moved {
            guard.check(p)?;
        }
        let src_abs = root.join(src);
        if std::fs::symlink_metadata(&src_abs).is_err() {
            return Err(bad("source does not exist in the working tree"));
        }
        let mut dst = dst.to_string();
        let dst_abs = self.workspace()?.abs_path(&dst)?;
        if dst_abs.is_dir() {
            let name = src.rsplit('/').next().unwrap_or(src);
            dst = if dst.is_empty() {
                name.to_string()
            } else {
                format!("{dst}/{name}")
            };
        }
        if path_is_under(&dst, src) {
            return Err(bad("cannot move a directory into itself"));
        }
        // `dst_abs.is_dir()` above follows a symlink: moving into a
        // symlinked directory (or below one) would leave the working tree.
        if let Some(link) = guard.beyond_symlink(&dst) {
            return Err(RepoError::BeyondSymlink { path: dst, link });
        }
        let dst_abs = root.join(&dst);
        if std::fs::symlink_metadata(&dst_abs).is_ok() {
            return Err(bad("destination exists"));
        }
        if let Some(parent) = dst_abs.parent() {
            if !parent.is_dir() {
                return Err(bad("destination directory does not exist"));
            }
        }
        std::fs::rename(&src_abs, &dst_abs).map_err(|e| RepoError::io("rename", &src_abs, e))?;
        for p in moved {
            let Some(mut e) = idx.entries.remove(&p) else {
                continue;
            };
            let new_path = format!("{dst}{}", &p[src.len()..]);
            // The stat data is kept as it was: the rename changed the ctime,
            // so the next status re-hashes the file instead of trusting a
            // stat that could hide an edit made just before the move.
            e.path = new_path;
            idx.entries.insert(e);
        }
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        remove_empty_parents(&root, src);
        Ok((src.to_string(), dst))
    }
}

/// Files `add` hands to its workers at a time (see `add_locked`).
const ADD_GROUP: usize = 1 << 16;

/// Whether a file the add journal recorded whole is still whole in the
/// store: its manifest readable, for the same content and size, and every
/// chunk it names stored (a `gc` past the grace period, or a damaged pack,
/// could have taken them).
fn journaled_file_holds(odb: &crate::odb::Odb, d: &DoneFile) -> bool {
    match odb.read_manifest(&d.manifest) {
        Ok(m) => {
            m.content == d.content
                && m.size == d.stat.size
                && m.chunks.iter().all(|c| odb.holds_chunk(c))
        }
        Err(_) => false,
    }
}

/// Temporary packs a killed command left behind. The caller holds the
/// working tree's lock, so no live command of this working tree writes
/// there; a file untouched for this long is not being written by anyone
/// (and removing one that was would only fail that writer before it
/// stored anything).
const STALE_TEMP_PACK: Duration = Duration::from_secs(600);

fn remove_stale_temp_packs(tmp: &std::path::Path) {
    let Ok(dir) = std::fs::read_dir(tmp) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for e in dir.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with("pack-") {
            continue;
        }
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= STALE_TEMP_PACK);
        if meta.is_file() && old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Removes now-empty directories above a removed repository path.
pub fn remove_empty_parents(root: &std::path::Path, path: &str) {
    let mut p = path;
    while let Some(i) = p.rfind('/') {
        p = &p[..i];
        if std::fs::remove_dir(root.join(p)).is_err() {
            break;
        }
    }
}
