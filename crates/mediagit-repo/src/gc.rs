//! `gc`: drop what nothing can reach any more, at a cost that follows the
//! garbage rather than the repository.
//!
//! Roots (see `reach.rs`): every ref (branches, tags, remote-tracking refs,
//! the stash), a detached HEAD, every id in every reflog, and the worktree
//! index. On top of that, every object in a pack newer than the grace
//! period is kept, so a concurrent `add` (whose pack has no commit yet) or a
//! recent mistake is never lost.
//!
//! Of the packs older than the grace period, one that holds nothing
//! reachable is deleted without being read; one whose unreachable share
//! passes `max_unused` percent (of its stored bytes) is repacked (its
//! reachable objects copied into new packs); one that mixes chunks and
//! metadata (written before `metadata-packs`) is repacked to split it; and
//! small packs (under a quarter of the pack target size) are merged only
//! when more than [`MAX_SMALL_PACKS`] of one kind exist. Every other pack is
//! left as it is, its few unreachable objects with it (as restic's prune).
//! Write order: new pack, its index, then the old index, then the old
//! pack; a crash leaves duplicates, never a loss.
use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use mediagit_format::{ObjectId, ObjectKind};

use crate::error::{RepoError, Result};
use crate::failpoint;
use crate::odb::{idx_key, pack_key, Odb};
use crate::progress::Progress;
use crate::reach::walk;
use crate::repo::Repository;

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub dry_run: bool,
    /// Objects in packs written after this time are kept even if
    /// unreachable. `None` = never prune unreachable objects.
    pub prune_before: Option<SystemTime>,
    /// Repack an old pack when more than this percentage of its stored
    /// bytes is unreachable (0: whenever anything is; 100: never, only
    /// wholly unreachable packs go). [`DEFAULT_MAX_UNUSED`] by default.
    pub max_unused_percent: u8,
}

/// The default of [`GcOptions::max_unused_percent`] (restic's prune uses
/// 5 % of the whole repository; this is per pack, so one large deletion
/// never makes every pack move).
pub const DEFAULT_MAX_UNUSED: u8 = 10;

/// Small packs (each add writes at least one) are merged only when more
/// than this many of one kind are older than the grace period.
pub const MAX_SMALL_PACKS: usize = 32;

/// What gc does with one pack older than the grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Keep,
    /// Nothing in it is reachable: deleted, never read.
    Delete,
    /// Reachable objects copied into new packs, then deleted.
    Repack,
}

/// An unreachable object gc removed (or would).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemovedObject {
    pub id: ObjectId,
    pub kind: ObjectKind,
    /// Its stored size.
    pub bytes: u64,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct GcReport {
    pub packs_before: usize,
    pub packs_after: usize,
    /// Unreachable objects removed (or, with dry_run, that would be).
    pub removed: Vec<RemovedObject>,
    pub bytes_freed: u64,
    /// Unreachable objects kept because their pack is within the grace period.
    pub kept_recent: usize,
    /// Packs without an index older than the grace period, deleted.
    pub orphan_packs: Vec<String>,
    /// Old packs kept because another working tree re-dated them while
    /// this gc ran (their reachable objects were copied all the same).
    pub packs_freshened_meanwhile: usize,
    /// Old packs that held nothing reachable: deleted without being read.
    pub packs_deleted: usize,
    /// Old packs whose reachable objects were copied into new packs.
    pub packs_repacked: usize,
    /// Stored bytes read (and verified) to repack them.
    pub bytes_read: u64,
    /// Stored bytes written into new packs (entry headers included).
    pub bytes_written: u64,
    /// Unreachable objects left in old packs under the `max_unused` share.
    pub kept_unused: usize,
    pub kept_unused_bytes: u64,
}

impl Repository {
    #[tracing::instrument(name = "gc", level = "info", skip_all)]
    pub fn gc(&self, opts: &GcOptions, progress: &dyn Progress) -> Result<GcReport> {
        let _lock = self.lock_local()?;
        let storage = self.storage().clone();
        let odb = Odb::load(
            storage.clone(),
            self.tmp_dir().to_path_buf(),
            self.config(),
            self.codec(),
        )?;
        let (roots, bad) = self.roots(&odb)?;
        if let Some((name, err)) = bad.first() {
            return Err(RepoError::GcBlocked {
                what: format!("{name} is unreadable ({err})"),
            });
        }
        let mut reach = walk(&odb, &roots, &|id| odb.contains(id));
        drop(roots);
        // Only the first is reported: only it is named.
        reach.unreadable.truncate(1);
        self.name_index_users(&mut reach);
        if let Some(u) = reach.unreadable.first() {
            return Err(RepoError::GcBlocked {
                what: format!(
                    "reachable {} {} is unreadable ({}; needed by {})",
                    u.kind.name(),
                    u.id,
                    u.error,
                    u.needed_by
                ),
            });
        }
        let packs = odb.packs();
        let mut report = GcReport {
            packs_before: packs.len(),
            ..Default::default()
        };
        // A pack's age is that of its newest freshen marker if it has one:
        // another working tree reused objects from it and may not have
        // committed yet (odb.rs, FRESHEN_AFTER).
        let (markers, newest) = crate::odb::list_freshen(storage.as_ref(), true)?;
        // Every pack's and index's size and age from the listing (on an
        // object store: a few LIST requests, not two HEADs per pack). A key
        // the listing lacks (stored since) is asked for alone.
        let listed: std::collections::HashMap<String, (u64, SystemTime)> = storage
            .list_meta("packs/")?
            .into_iter()
            .map(|l| (l.key, (l.size, l.modified)))
            .collect();
        let modified = |key: &str| -> Result<Option<SystemTime>> {
            Ok(match listed.get(key) {
                Some(&(_, t)) => Some(t),
                None => storage.modified(key)?,
            })
        };
        let size = |key: &str| -> Result<Option<u64>> {
            Ok(match listed.get(key) {
                Some(&(n, _)) => Some(n),
                None => storage.size(key)?,
            })
        };
        let is_old = |key: &str, pack: &ObjectId| -> Result<bool> {
            let Some(cut) = opts.prune_before else {
                return Ok(false);
            };
            if newest.get(pack).is_some_and(|t| *t >= cut) {
                return Ok(false);
            }
            // A pack file that is gone: its index's age decides (nothing
            // reachable in it, checked above, so the index is debris).
            let t = match modified(key)? {
                Some(t) => Some(t),
                None if key.ends_with(".pack") => modified(&idx_key(pack))?,
                None => None,
            };
            Ok(t.is_some_and(|t| t < cut))
        };
        let mut old: HashSet<ObjectId> = HashSet::new();
        for p in &packs {
            if is_old(&pack_key(p), p)? {
                old.insert(*p);
            }
        }
        // What each pack holds, reachable and not, in one pass over the
        // odb's table (not a copy of it grouped by pack).
        #[derive(Default, Clone, Copy)]
        struct PackUse {
            reachable: bool,
            live: u64,
            dead: u64,
            unreachable: usize,
            chunks: bool,
            meta: bool,
        }
        // Stored size of an object in its pack, entry header included.
        let sealed = odb.sealed();
        let stored = |loc: &crate::odb::Location| loc.entry_len(sealed);
        let mut uses: BTreeMap<ObjectId, PackUse> = BTreeMap::new();
        odb.for_each_object(|id, pack, loc| {
            let u = uses.entry(*pack).or_default();
            if reach.objects.contains(id) {
                u.reachable = true;
                u.live += stored(loc);
            } else {
                u.dead += stored(loc);
                u.unreachable += 1;
            }
            if loc.kind == ObjectKind::Chunk {
                u.chunks = true;
            } else {
                u.meta = true;
            }
        });
        // A pack file that is gone while its index still lists reachable
        // objects is damage for fsck to report, not a pack for gc to skip.
        for (p, u) in &uses {
            if u.reachable && size(&pack_key(p))?.is_none() {
                return Err(RepoError::GcBlocked {
                    what: format!(
                        "{} is missing but its index lists reachable objects",
                        pack_key(p)
                    ),
                });
            }
        }
        let split = self.config().format.has_feature("metadata-packs");
        let small = odb.pack_target_size() / 4;
        let mut plan: BTreeMap<ObjectId, Plan> = BTreeMap::new();
        // Old small packs by kind (chunks, metadata; one group without
        // metadata packs), for the merge rule.
        let mut small_packs: [Vec<ObjectId>; 2] = [Vec::new(), Vec::new()];
        for (pack, u) in &uses {
            if !old.contains(pack) {
                report.kept_recent += u.unreachable;
                continue;
            }
            let (live, dead) = (u.live, u.dead);
            let p = if live == 0 {
                Plan::Delete
            } else if dead * 100 > u64::from(opts.max_unused_percent) * (live + dead)
                || (split && u.chunks && u.meta)
            {
                Plan::Repack
            } else {
                if live + dead < small {
                    small_packs[usize::from(split && u.meta)].push(*pack);
                }
                Plan::Keep
            };
            plan.insert(*pack, p);
        }
        for group in &small_packs {
            if group.len() > MAX_SMALL_PACKS {
                for p in group {
                    plan.insert(*p, Plan::Repack);
                }
            }
        }
        // The objects of the packs with a plan: what is freed, what is
        // copied (in pack order: each pack read front to back).
        let mut keep_from_old = Vec::new();
        let mut removed = Vec::new();
        odb.for_each_object(|id, pack, loc| {
            let Some(&p) = plan.get(pack) else {
                return;
            };
            let reachable = reach.objects.contains(id);
            match (p, reachable) {
                (Plan::Keep, true) => {}
                (Plan::Keep, false) => {
                    report.kept_unused += 1;
                    report.kept_unused_bytes += stored(loc);
                }
                (_, false) => {
                    removed.push((
                        *pack,
                        loc.offset,
                        RemovedObject {
                            id: *id,
                            kind: loc.kind,
                            bytes: stored(loc),
                        },
                    ));
                    report.bytes_freed += stored(loc);
                }
                // (A pack to delete holds nothing reachable.)
                (Plan::Repack | Plan::Delete, true) => {
                    report.bytes_read += stored(loc);
                    keep_from_old.push((*pack, *id, *loc));
                }
            }
        });
        keep_from_old.sort_unstable_by_key(|(pack, _, loc)| (*pack, loc.offset));
        removed.sort_unstable_by_key(|(pack, offset, _)| (*pack, *offset));
        report.removed = removed.into_iter().map(|(_, _, r)| r).collect();
        for p in plan.values() {
            match p {
                Plan::Delete => report.packs_deleted += 1,
                Plan::Repack => report.packs_repacked += 1,
                Plan::Keep => {}
            }
        }
        report.bytes_written = report.bytes_read;
        // Orphan packs (no index) past the grace period are garbage of a crash.
        let indexed: HashSet<ObjectId> = packs.iter().copied().collect();
        let mut pack_keys: Vec<&String> = listed.keys().collect();
        pack_keys.sort();
        for key in pack_keys {
            if let Some(id) = key
                .strip_prefix("packs/")
                .and_then(|k| k.strip_suffix(".pack"))
                .and_then(|h| h.parse::<ObjectId>().ok())
            {
                if !indexed.contains(&id) && is_old(key, &id)? {
                    report.bytes_freed += size(key)?.unwrap_or(0);
                    report.orphan_packs.push(key.clone());
                }
            }
        }
        let gone: Vec<ObjectId> = plan
            .iter()
            .filter(|(_, p)| **p != Plan::Keep)
            .map(|(id, _)| *id)
            .collect();
        if opts.dry_run {
            // One new pack per kind kept from repacked packs (more when
            // they exceed the pack target size).
            let target = odb.pack_target_size().max(1);
            let packs_for = |chunks: Option<bool>| {
                let bytes: u64 = keep_from_old
                    .iter()
                    .filter(|(_, _, l)| chunks.is_none_or(|c| (l.kind == ObjectKind::Chunk) == c))
                    .map(|(_, _, l)| stored(l))
                    .sum();
                bytes.div_ceil(target) as usize
            };
            let new = if split {
                packs_for(Some(true)) + packs_for(Some(false))
            } else {
                packs_for(None)
            };
            report.packs_after = packs.len() - gone.len() + new;
            return Ok(report);
        }
        let mut written: HashSet<ObjectId> = HashSet::new();
        if !gone.is_empty() {
            let old_list = gone;
            let total: u64 = keep_from_old
                .iter()
                .map(|(_, _, l)| l.stored_len as u64)
                .sum();
            progress.start("repacking", total, keep_from_old.len() as u64);
            let repacked: Vec<ObjectId> = plan
                .iter()
                .filter(|(_, p)| **p == Plan::Repack)
                .map(|(id, _)| *id)
                .collect();
            let mut session = odb.session_ignoring(&repacked).without_freshening();
            for (pack, id, loc) in &keep_from_old {
                // Verify (decode + SHA-256) before copying: gc must never carry
                // damage into a fresh pack and then delete the original.
                odb.read_raw(id, loc.kind)?;
                session.copy_stored(pack, *id, loc)?;
                progress.bytes(loc.stored_len as u64);
            }
            written = session.finish()?.into_iter().collect();
            progress.finish();
            failpoint::hit("write:gc-new-pack-stored");
            // Markers written while this gc ran (another machine reused
            // objects from a pack it was about to delete): that pack stays.
            // Its reachable objects were copied, so it only costs space
            // until the next gc.
            let (_, newest_now) = crate::odb::list_freshen(storage.as_ref(), true)?;
            let cut = opts.prune_before.unwrap_or(std::time::UNIX_EPOCH);
            for p in &old_list {
                // Rewritten to the same entries, hence the same name: the
                // pack just stored is this one.
                if written.contains(p) {
                    continue;
                }
                if newest_now.get(p).is_some_and(|t| *t >= cut) {
                    report.packs_freshened_meanwhile += 1;
                    continue;
                }
                storage.delete(&idx_key(p))?;
                failpoint::hit("write:gc-old-idx-deleted");
                storage.delete(&pack_key(p))?;
                failpoint::hit("write:gc-old-pack-deleted");
            }
        }
        // An orphan left by a gc killed before it stored the index may be
        // the very pack this gc has just stored (same entries, same name):
        // that one is no orphan any more.
        let orphans = std::mem::take(&mut report.orphan_packs);
        for key in orphans {
            let rewritten = key
                .strip_prefix("packs/")
                .and_then(|k| k.strip_suffix(".pack"))
                .and_then(|h| h.parse::<ObjectId>().ok())
                .is_some_and(|id| written.contains(&id));
            if rewritten {
                let n = size(&key)?.unwrap_or(0);
                report.bytes_freed = report.bytes_freed.saturating_sub(n);
                continue;
            }
            storage.delete(&key)?;
            report.orphan_packs.push(key);
        }
        // Markers older than the cut protect nothing any more, and markers
        // of packs that are gone protect nothing at all; damage markers of
        // packs that are gone name nothing.
        let listed: HashSet<String> = storage.list("packs/")?.into_iter().collect();
        if let Some(cut) = opts.prune_before {
            for (key, pack, t) in &markers {
                if t < &cut || !listed.contains(&pack_key(pack)) {
                    storage.delete(key)?;
                }
            }
        }
        for (key, _, pack) in crate::odb::list_damaged(storage.as_ref())? {
            if !listed.contains(&pack_key(&pack)) {
                storage.delete(&key)?;
            }
        }
        let after = Odb::load(
            storage.clone(),
            self.tmp_dir().to_path_buf(),
            self.config(),
            self.codec(),
        )?;
        report.packs_after = after.packs().len();
        Ok(report)
    }

    /// Drops reflog records older than `before` from `name` (a full ref name
    /// or `HEAD`), or from every reflog when `name` is `None`. Returns how many
    /// records were dropped.
    pub fn reflog_expire(&self, name: Option<&str>, before: i64) -> Result<usize> {
        let _lock = self.workspace()?.lock()?;
        self.workspace()?.check_logs_dir()?;
        let logs = self.workspace()?.dir().join("logs");
        let mut files = Vec::new();
        match name {
            Some(n) => files.push(self.workspace()?.reflog_path(n)),
            None => {
                let mut stack = vec![logs.clone()];
                while let Some(d) = stack.pop() {
                    let Ok(rd) = std::fs::read_dir(&d) else {
                        continue;
                    };
                    for e in rd.flatten() {
                        // Not through a link (a `logs/x -> /`).
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            stack.push(e.path());
                        } else {
                            files.push(e.path());
                        }
                    }
                }
            }
        }
        let mut dropped = 0;
        for f in files {
            let text = match crate::repo::read_private(&f, crate::repo::MAX_REFLOG_BYTES)? {
                Some(b) => String::from_utf8_lossy(&b).into_owned(),
                None => continue,
            };
            let mut kept = String::new();
            for line in text.lines() {
                // Unreadable records are kept (gc then refuses to run and
                // names them), never dropped as if expired.
                let time = crate::refs::ReflogEntry::parse(line).map(|e| e.who.time);
                if time.is_some_and(|t| t < before) {
                    dropped += 1;
                } else {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
            if kept.len() != text.len() {
                crate::repo::write_atomic(&f, kept.as_bytes())?;
            }
        }
        Ok(dropped)
    }
}
