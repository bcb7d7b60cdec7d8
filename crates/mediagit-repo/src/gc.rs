//! `gc`: repack, dropping what nothing can reach any more.
//!
//! Roots (see `reach.rs`): every ref (branches, tags, remote-tracking refs,
//! the stash), a detached HEAD, every id in every reflog, and the worktree
//! index. On top of that, every object in a pack newer than the grace
//! period is kept, so a concurrent `add` (whose pack has no commit yet) or a
//! recent mistake is never lost. Write order: new pack, its index, then the
//! old index, then the old pack; a crash leaves duplicates, never a loss.
use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use mediagit_format::{ObjectId, ObjectKind};

use crate::error::{RepoError, Result};
use crate::failpoint;
use crate::odb::{idx_key, pack_key, read_stored, Odb};
use crate::progress::Progress;
use crate::reach::walk;
use crate::repo::Repository;

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub dry_run: bool,
    /// Objects in packs written after this time are kept even if
    /// unreachable. `None` = never prune unreachable objects.
    pub prune_before: Option<SystemTime>,
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
}

impl Repository {
    pub fn gc(&self, opts: &GcOptions, progress: &dyn Progress) -> Result<GcReport> {
        let _lock = self.lock_local()?;
        let storage = self.storage().clone();
        let odb = Odb::load(storage.clone(), self.tmp_dir().to_path_buf(), self.config())?;
        let (roots, bad) = self.roots(&odb)?;
        if let Some((name, err)) = bad.first() {
            return Err(RepoError::GcBlocked {
                what: format!("{name} is unreadable ({err})"),
            });
        }
        let reach = walk(&odb, &roots, &|id| odb.contains(id));
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
        let is_old = |key: &str, pack: &ObjectId| -> Result<bool> {
            let Some(cut) = opts.prune_before else {
                return Ok(false);
            };
            if newest.get(pack).is_some_and(|t| *t >= cut) {
                return Ok(false);
            }
            Ok(storage.modified(key)?.is_some_and(|t| t < cut))
        };
        let mut old: HashSet<ObjectId> = HashSet::new();
        for p in &packs {
            if is_old(&pack_key(p), p)? {
                old.insert(*p);
            }
        }
        // Objects per pack, in pack order.
        let mut by_pack: BTreeMap<ObjectId, Vec<(u64, ObjectId, crate::odb::Location)>> =
            BTreeMap::new();
        for (id, pack, loc) in odb.all_objects() {
            by_pack.entry(pack).or_default().push((loc.offset, id, loc));
        }
        // A pack file that is gone while its index still lists reachable
        // objects is damage for fsck to report, not a pack for gc to skip.
        for (p, objs) in &by_pack {
            if objs.iter().any(|o| reach.objects.contains(&o.1))
                && storage.size(&pack_key(p))?.is_none()
            {
                return Err(RepoError::GcBlocked {
                    what: format!(
                        "{} is missing but its index lists reachable objects",
                        pack_key(p)
                    ),
                });
            }
        }
        let mut keep_from_old = Vec::new();
        for (pack, objs) in by_pack.iter_mut() {
            objs.sort_by_key(|o| o.0);
            for (_, id, loc) in objs.iter() {
                let reachable = reach.objects.contains(id);
                if old.contains(pack) {
                    if reachable {
                        keep_from_old.push((*pack, *id, *loc));
                    } else {
                        let bytes = (mediagit_format::pack::EntryHeader::LEN as u64)
                            + loc.stored_len as u64;
                        report.removed.push(RemovedObject {
                            id: *id,
                            kind: loc.kind,
                            bytes,
                        });
                        report.bytes_freed += bytes;
                    }
                } else if !reachable {
                    report.kept_recent += 1;
                }
            }
        }
        // Orphan packs (no index) past the grace period are garbage of a crash.
        let indexed: HashSet<ObjectId> = packs.iter().copied().collect();
        for key in storage.list("packs/")? {
            if let Some(id) = key
                .strip_prefix("packs/")
                .and_then(|k| k.strip_suffix(".pack"))
                .and_then(|h| h.parse::<ObjectId>().ok())
            {
                if !indexed.contains(&id) && is_old(&key, &id)? {
                    report.bytes_freed += storage.size(&key)?.unwrap_or(0);
                    report.orphan_packs.push(key);
                }
            }
        }
        // Rewrite when something goes, or when old packs can be merged: with
        // metadata packs, more than one old pack of a kind, or an old pack
        // that mixes chunks and metadata (written before an upgrade), which
        // the rewrite splits. A lone chunk pack and a lone metadata pack are
        // left alone: copying them would give them back under their names.
        let split = self.config().format.has_feature("metadata-packs");
        let mergeable = if split {
            let (mut chunk_packs, mut meta_packs, mut mixed) = (0, 0, 0);
            for p in &old {
                let objs = by_pack.get(p).map(Vec::as_slice).unwrap_or(&[]);
                let chunks = objs.iter().any(|o| o.2.kind == ObjectKind::Chunk);
                let meta = objs.iter().any(|o| o.2.kind != ObjectKind::Chunk);
                match (chunks, meta) {
                    (true, true) => mixed += 1,
                    (true, false) => chunk_packs += 1,
                    (false, true) => meta_packs += 1,
                    (false, false) => {}
                }
            }
            mixed > 0 || chunk_packs > 1 || meta_packs > 1
        } else {
            old.len() > 1
        };
        let rewrite = !report.removed.is_empty() || mergeable;
        if opts.dry_run {
            report.packs_after = if rewrite {
                // One new pack, or with metadata packs one of each kind kept.
                let chunks = keep_from_old
                    .iter()
                    .any(|(_, _, l)| l.kind == ObjectKind::Chunk);
                let meta = keep_from_old
                    .iter()
                    .any(|(_, _, l)| l.kind != ObjectKind::Chunk);
                let new = if split {
                    usize::from(chunks) + usize::from(meta)
                } else {
                    usize::from(chunks || meta)
                };
                packs.len() - old.len() + new
            } else {
                packs.len()
            };
            return Ok(report);
        }
        let mut written: HashSet<ObjectId> = HashSet::new();
        if rewrite {
            let old_list: Vec<ObjectId> = old.iter().copied().collect();
            let total: u64 = keep_from_old
                .iter()
                .map(|(_, _, l)| l.stored_len as u64)
                .sum();
            progress.start("repacking", total, keep_from_old.len() as u64);
            let mut session = odb.session_ignoring(&old_list).without_freshening();
            for (pack, id, loc) in &keep_from_old {
                // Verify (decode + SHA-256) before copying: gc must never carry
                // damage into a fresh pack and then delete the original.
                odb.read_raw(id, loc.kind)?;
                let payload = read_stored(storage.as_ref(), pack, loc.offset, loc.stored_len)?;
                session.put_encoded(loc.kind, *id, loc.codec, loc.raw_len as usize, &payload)?;
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
                let size = storage.size(&key)?.unwrap_or(0);
                report.bytes_freed = report.bytes_freed.saturating_sub(size);
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
        let after = Odb::load(storage.clone(), self.tmp_dir().to_path_buf(), self.config())?;
        report.packs_after = after.packs().len();
        Ok(report)
    }

    /// Drops reflog records older than `before` from `name` (a full ref name
    /// or `HEAD`), or from every reflog when `name` is `None`. Returns how many
    /// records were dropped.
    pub fn reflog_expire(&self, name: Option<&str>, before: i64) -> Result<usize> {
        let _lock = self.workspace()?.lock()?;
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
                        if e.path().is_dir() {
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
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(RepoError::io("read reflog", &f, e)),
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
