//! Copying objects between two copies of a repository (push, fetch, repair
//! from a remote): only what the destination lacks moves.
//!
//! Negotiation needs no conversation: both sides are [`Store`]s, and the
//! destination's object table (its pack indexes, loaded once) says what it
//! holds. From the tips being sent, the walk follows commits until it meets
//! one the destination holds (its history is there: commits are written
//! after their parents, and a transfer stores a commit only after its
//! whole snapshot); the snapshot of every new commit, and of every tip
//! even when the destination has it, is walked object by object, so a
//! destination that lost chunks (`fsck --repair` moved a damaged pack
//! aside) gets them back from the next fetch of the same branch.
//!
//! Then the missing objects are copied in two groups: the chunks, stored
//! (a checkpoint) before any manifest that names them becomes visible,
//! then every other object, which become visible together when the
//! session finishes. An interrupted transfer leaves chunks without
//! manifests at worst (garbage until the next run reuses them), never a
//! manifest without its chunks; the next run skips everything that
//! arrived. Each source pack is read in runs of up
//! to 8 MiB (one ranged GET per run on an object store), every entry is
//! verified against its id before it is written, and entries are copied
//! as they are stored (compressed; opened and sealed again with the
//! destination's pack keys in an encrypted repository), never recompressed.
use serde::Serialize;

use mediagit_format::id::IdSet;
use mediagit_format::{EntryKind, ObjectId, ObjectKind};

use crate::error::{RepoError, Result};
use crate::odb::{Location, Odb};
use crate::progress::Progress;
use crate::store::Store;

/// What a transfer moved.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct TransferStats {
    /// Commits the destination lacked.
    pub commits: usize,
    /// Objects copied (every kind).
    pub objects: usize,
    /// Of which chunks.
    pub chunks: usize,
    /// Stored (compressed) bytes copied.
    pub bytes: u64,
    /// Reads of object data from the source (ranged GETs on an object store).
    pub reads: usize,
    /// Of `objects` and `bytes`: packs copied whole inside the storage
    /// service ([`copy_missing_server_side`]), and their bytes.
    pub server_side_packs: usize,
    pub server_side_bytes: u64,
}

/// How a transfer names the local repository.
pub const THIS: &str = "this repository";

/// A fixed byte string both sides name: equal ids mean the two
/// repositories name objects the same way (same chunk id function, and in
/// an encrypted repository the same key).
const PROBE: &[u8] = b"mediagit naming probe v1";

/// Refuses two repositories that name objects differently: copying
/// between them would store objects under ids the destination cannot
/// verify.
pub fn check_same_naming(src: &Store, dst: &Store, remote: &str) -> Result<()> {
    let (a, b) = (src.codec(), dst.codec());
    if a.id(ObjectKind::Chunk, PROBE) == b.id(ObjectKind::Chunk, PROBE) {
        return Ok(());
    }
    let why = match (src.is_encrypted(), dst.is_encrypted()) {
        (true, true) => "both are encrypted, with different keys",
        (false, false) => "they name chunks with different functions ([format] chunk_id)",
        _ => "one is encrypted and the other is not",
    };
    Err(RepoError::Invalid(format!(
        "{remote} is another repository's copy, not this one's: {why}; objects cannot move between them"
    )))
}

/// Refuses an object the destination stores under `id` as another kind
/// than `kind` (plain ids do not name the kind: the same bytes planted as
/// a chunk take a tree's or a manifest's id, and the destination's table
/// holds one object an id). Taking it as present would leave a ref that
/// names something unreadable.
fn check_kind_at(o: &Odb, id: &ObjectId, kind: ObjectKind, side: &str) -> Result<()> {
    match o.stored_as_other_kind(id, kind) {
        Some(other) => Err(RepoError::Invalid(format!(
            "{side} stores {id} as a {}, but the history being copied needs it as a {}: the same bytes were stored as another kind (planted?); nothing was copied",
            other.name(),
            kind.name()
        ))),
        None => Ok(()),
    }
}

/// Which side an object is read from while walking: the destination's
/// copy when it has one and lives on local disk, else the source's.
struct Sides<'a> {
    src: &'a Odb,
    dst: &'a Odb,
    dst_local: bool,
}

impl Sides<'_> {
    fn read<T>(&self, id: &ObjectId, f: impl Fn(&Odb, &ObjectId) -> Result<T>) -> Result<T> {
        if self.dst_local && self.dst.has_sound(id) {
            if let Ok(v) = f(self.dst, id) {
                return Ok(v);
            }
        }
        f(self.src, id)
    }
}

/// Copies into `dst` every object reachable from `tips` (commits or tag
/// objects) in `src` that `dst` does not hold, as the module docs say.
/// `labels` name the two sides in errors. Nothing refers to the new
/// objects yet: the caller moves refs after this returns.
pub fn copy_missing(
    src: &Store,
    dst: &Store,
    tips: &[ObjectId],
    labels: Labels<'_>,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    copy(src, dst, tips, labels, progress, None, false)
}

/// [`copy_missing`], where the two stores are in one storage service
/// (`Storage::copy_in`: S3, one endpoint): each source pack that holds only chunks, all of
/// them needed and missing in `dst`, none marked damaged, is first read
/// and verified in the source, then copied whole by the storage service
/// (pack, then index: FORMAT.md §9), so no byte goes up from this
/// machine. Only chunks: they name nothing, so a pack of them visible
/// before the rest of the copy lets no later walk skip history (a
/// commit or manifest would). A pack that does not verify, or that `dst`
/// already has a key for, is left to the object-by-object copy.
pub fn copy_missing_server_side(
    src: &Store,
    dst: &Store,
    tips: &[ObjectId],
    labels: Labels<'_>,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    copy(src, dst, tips, labels, progress, None, true)
}

/// The packs [`copy_missing_server_side`] takes whole: (packs taken, the
/// objects in them), with the copied objects and bytes added to `stats`.
fn take_chunk_packs(
    src: &Store,
    dst: &Store,
    chunks: &[(ObjectId, ObjectId, Location)],
    stats: &mut TransferStats,
    progress: &dyn Progress,
) -> Result<IdSet> {
    let mut taken_objects = IdSet::default();
    let (Some(from), Some(to)) = (src.storage().location(), dst.storage().location()) else {
        return Ok(taken_objects);
    };
    if (from.service, &from.endpoint) != (to.service, &to.endpoint) {
        return Ok(taken_objects);
    }
    let s = src.odb()?;
    // Copies fsck found damaged, in any pack (a damaged copy whose object
    // reads sound elsewhere is not in the object table's view of a pack).
    let damaged: std::collections::HashSet<(ObjectId, ObjectId)> =
        crate::odb::list_damaged(src.storage().as_ref())?
            .into_iter()
            .map(|(_, id, pack)| (id, pack))
            .collect();
    let wanted_ids: std::collections::HashSet<ObjectId> =
        chunks.iter().map(|(id, _, _)| *id).collect();
    // A pack is judged by its own index: every entry (not only the ones
    // the object table locates there) must be a chunk this copy needs.
    let mut candidates: std::collections::BTreeMap<ObjectId, u32> = Default::default();
    for (_, pack, l) in chunks {
        candidates.insert(*pack, l.pack);
    }
    // What is in the bucket now, never a local cache of it: the copy
    // takes the bucket's bytes.
    let raw = src.uncached_storage().as_ref();
    for (pack, slot) in candidates {
        let (pk, ik) = (crate::odb::pack_key(&pack), crate::odb::idx_key(&pack));
        // The content tags, read before anything is checked: each copy is
        // tied to the tag its bytes had then.
        let (Some(tag), Some(itag)) = (raw.etag(&pk)?, raw.etag(&ik)?) else {
            continue;
        };
        let Ok(max) = crate::odb::index_bound(raw, &pack) else {
            continue;
        };
        let Ok((idx, salt)) = crate::odb::read_pack_index(raw, &src.codec(), &ik, pack, max, None)
        else {
            continue;
        };
        let whole = !idx.entries.is_empty()
            && idx.entries.iter().all(|e| {
                e.kind == ObjectKind::Chunk
                    && wanted_ids.contains(&e.id)
                    && !taken_objects.contains(&e.id)
                    && !damaged.contains(&(e.id, pack))
            });
        if !whole {
            continue;
        }
        if dst.storage().size(&pk)?.is_some() || dst.storage().size(&ik)?.is_some() {
            continue;
        }
        // Every byte of the pack is checked, not only the entries: its
        // header must be the one this store writes, and the entries must
        // follow it back to back up to the end.
        // (Anything else, a failed read too, leaves the pack to the
        // object-by-object copy.)
        if !matches!(
            crate::odb::check_pack_frame(raw, &pack, &idx, salt, false),
            Ok(None)
        ) {
            continue;
        }
        // Every entry read and verified where it is: a damaged pack never
        // goes across (its objects are then copied from wherever they
        // read sound).
        let objs: Vec<(ObjectId, ObjectId, Location)> = idx
            .entries
            .iter()
            .map(|e| (e.id, pack, Location::of_entry(e, slot, false)))
            .collect();
        let bytes: u64 = objs.iter().map(|(_, _, l)| u64::from(l.stored_len)).sum();
        if read_in_parallel(s, objs.clone(), src.read_workers(), &mut |_, _, _| Ok(())).is_err() {
            continue;
        }
        crate::failpoint::hit("backup:copy-in-pack");
        if !dst.storage().copy_in(&from, &pk, &pk, &tag)? {
            continue;
        }
        crate::failpoint::hit("backup:copy-in-index");
        if !dst.storage().copy_in(&from, &ik, &ik, &itag)? {
            continue;
        }
        progress.bytes(bytes);
        stats.server_side_packs += 1;
        stats.server_side_bytes += bytes;
        stats.objects += objs.len();
        stats.chunks += objs.len();
        stats.bytes += bytes;
        for (id, _, _) in &objs {
            taken_objects.insert(*id);
        }
    }
    Ok(taken_objects)
}

/// How errors name the two sides of a transfer: for a fetch
/// `src: "remote 'origin'"`, `dst: "this repository"`; for a push the
/// other way round.
#[derive(Clone, Copy, Debug)]
pub struct Labels<'a> {
    pub src: &'a str,
    pub dst: &'a str,
}

/// For `fsck --repair` from a remote: copies into `dst` every object
/// reachable from `tips` that `dst` lacks or holds only damaged, walking
/// the whole history (a commit `dst` holds does not end the walk: its
/// history may be what was damaged). What neither side can read is not
/// an error: it is returned, with the stats, for the caller to report.
pub fn copy_for_repair(
    src: &Store,
    dst: &Store,
    tips: &[ObjectId],
    labels: Labels<'_>,
    progress: &dyn Progress,
) -> Result<(TransferStats, Vec<ObjectId>)> {
    let mut unavailable = Vec::new();
    let stats = copy(
        src,
        dst,
        tips,
        labels,
        progress,
        Some(&mut unavailable),
        false,
    )?;
    unavailable.sort_unstable();
    unavailable.dedup();
    Ok((stats, unavailable))
}

/// [`copy_missing`], or with `unavailable` the whole-history walk of
/// [`copy_for_repair`], which records what it cannot read there.
fn copy(
    src: &Store,
    dst: &Store,
    tips: &[ObjectId],
    labels: Labels<'_>,
    progress: &dyn Progress,
    mut unavailable: Option<&mut Vec<ObjectId>>,
    server_side: bool,
) -> Result<TransferStats> {
    let (remote, dst_label) = (labels.src, labels.dst);
    let full = unavailable.is_some();
    // An object neither side reads: an error, or noted when repairing.
    let mut lost = |id: ObjectId, e: RepoError| -> Result<()> {
        match unavailable.as_deref_mut() {
            Some(u) => {
                u.push(id);
                Ok(())
            }
            None => Err(e),
        }
    };
    let other = if labels.src == THIS {
        labels.dst
    } else {
        labels.src
    };
    check_same_naming(src, dst, other)?;
    dst.require_unlocked()?;
    let (s, d) = (src.odb()?, dst.odb()?);
    let sides = Sides {
        src: s,
        dst: d,
        dst_local: dst.storage().local_path("config.toml").is_some(),
    };
    let mut session = d.session();
    let mut stats = TransferStats::default();
    // Objects to copy, by kind, in the order they are stored.
    let mut need: [Vec<ObjectId>; 5] = Default::default();
    const CHUNKS: usize = 0;
    const MANIFESTS: usize = 1;
    const TREES: usize = 2;
    const COMMITS: usize = 3;
    const TAGS: usize = 4;
    let mut seen = IdSet::default();
    let mut trees: Vec<(ObjectId, usize)> = Vec::new();
    // Commits (and the tags that name them): breadth first from the tips.
    let mut queue: std::collections::VecDeque<(ObjectId, bool)> =
        tips.iter().map(|t| (*t, true)).collect();
    while let Some((id, tip)) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        let kind = match s.locate(&id).or_else(|| d.locate(&id)) {
            Some((_, l)) => l.kind,
            None => {
                lost(
                    id,
                    RepoError::MissingObject {
                        id,
                        kind: "commit",
                        context: Some(format!("the history read from {remote}")),
                    },
                )?;
                continue;
            }
        };
        check_kind_at(d, &id, kind, dst_label)?;
        let present = session.has(&id);
        match kind {
            ObjectKind::Tag => {
                let t = match sides.read(&id, |o, id| o.read_tag(id)) {
                    Ok(t) => t,
                    Err(e) => {
                        lost(id, e)?;
                        continue;
                    }
                };
                if !present {
                    need[TAGS].push(id);
                }
                queue.push_back((t.target, tip));
            }
            ObjectKind::Commit => {
                if present && !tip && !full {
                    // Its history is in the destination already.
                    continue;
                }
                let c = match sides.read(&id, |o, id| o.read_commit(id)) {
                    Ok(c) => c,
                    Err(e) => {
                        lost(id, e)?;
                        continue;
                    }
                };
                trees.push((c.tree, 1));
                if !present {
                    need[COMMITS].push(id);
                    stats.commits += 1;
                }
                if !present || full {
                    queue.extend(c.parents.iter().map(|p| (*p, false)));
                }
            }
            other => {
                return Err(RepoError::WrongKind {
                    id,
                    expected: "commit",
                    actual: other.name(),
                })
            }
        }
    }
    // Snapshots: every tree, manifest and chunk they name.
    while let Some((id, depth)) = trees.pop() {
        if !seen.insert(id) {
            continue;
        }
        if depth > mediagit_format::limits::MAX_TREE_DEPTH {
            return Err(RepoError::Invalid(format!(
                "tree {id} in {remote}: directories nested more than {} levels deep",
                mediagit_format::limits::MAX_TREE_DEPTH
            )));
        }
        check_kind_at(d, &id, ObjectKind::Tree, dst_label)?;
        let t = match sides.read(&id, |o, id| o.read_tree(id)) {
            Ok(t) => t,
            Err(e) => {
                lost(id, e)?;
                continue;
            }
        };
        if !session.has(&id) {
            need[TREES].push(id);
        }
        for e in &t.entries {
            match e.kind {
                EntryKind::Dir { tree } => trees.push((tree, depth + 1)),
                EntryKind::File { manifest, .. } => {
                    if !seen.insert(manifest) {
                        continue;
                    }
                    check_kind_at(d, &manifest, ObjectKind::Manifest, dst_label)?;
                    let m = match sides.read(&manifest, |o, id| o.read_manifest(id)) {
                        Ok(m) => m,
                        Err(e) => {
                            lost(manifest, e)?;
                            continue;
                        }
                    };
                    if !session.has(&manifest) {
                        need[MANIFESTS].push(manifest);
                    }
                    for c in &m.chunks {
                        if !seen.insert(c.id) {
                            continue;
                        }
                        // Plain ids do not name the kind: an id a
                        // manifest names as a chunk must be one, of the
                        // manifest's length, on both sides, or a crafted
                        // remote could plant a tree where a later add of
                        // the same bytes expects its chunk.
                        let kind_ok = |o: &Odb| {
                            o.locate(&c.id).is_none_or(|(_, l)| {
                                l.kind == ObjectKind::Chunk && l.raw_len == c.len
                            })
                        };
                        if !kind_ok(s) || !kind_ok(d) {
                            lost(
                                c.id,
                                RepoError::Invalid(format!(
                                    "manifest {manifest} in {remote} names {} as a chunk of {} bytes, but it is stored as another kind or length",
                                    c.id, c.len
                                )),
                            )?;
                            continue;
                        }
                        if !session.has(&c.id) {
                            need[CHUNKS].push(c.id);
                        }
                    }
                }
                EntryKind::Symlink { .. } => {}
            }
        }
    }
    let total: u64 = need[CHUNKS]
        .iter()
        .filter_map(|id| s.locate(id))
        .map(|(_, l)| l.stored_len as u64)
        .sum();
    progress.start("copying objects", total, 0);
    // As `add` checkpoints: a quarter of a pack (256 MiB to local disk,
    // 32 MiB to a bucket) unless the destination's settings say otherwise.
    let checkpoint_bytes = dst
        .config()
        .core
        .checkpoint_bytes
        .unwrap_or(d.pack_target_size() / 4)
        .max(1);
    let mut since_checkpoint = 0u64;
    // Two groups: the chunks, stored first; then every other object (one
    // session makes them visible together, so their order does not
    // matter, and they share reads: usually one metadata pack).
    let [chunks, manifests, trees, commits, tags] = need;
    let rest: Vec<ObjectId> = [manifests, trees, commits, tags].concat();
    // Every object is located and checked before the first is copied.
    let mut wants = Vec::with_capacity(2);
    for ids in [chunks, rest] {
        let mut want = Vec::with_capacity(ids.len());
        for id in ids {
            match s.locate(&id) {
                // Within what every reader of the destination accepts (a
                // copy made with larger chunks would store objects its
                // readers refuse).
                Some((_, loc)) if loc.raw_len as u64 > d.max_object_len(loc.kind) => {
                    return Err(RepoError::Invalid(format!(
                        "{} {id} in {remote} is {} bytes; {dst_label}'s {}s are at most {} bytes (the two copies were made with different [chunking] settings): nothing was copied",
                        loc.kind.name(),
                        loc.raw_len,
                        loc.kind.name(),
                        d.max_object_len(loc.kind)
                    )))
                }
                Some((pack, loc)) => want.push((id, pack, loc)),
                None => lost(
                    id,
                    RepoError::MissingObject {
                        id,
                        kind: "object",
                        context: Some(format!("the history read from {remote}")),
                    },
                )?,
            }
        }
        wants.push(want);
    }
    if server_side {
        let taken = take_chunk_packs(src, dst, &wants[0], &mut stats, progress)?;
        if !taken.is_empty() {
            wants[0].retain(|(id, _, _)| !taken.contains(id));
        }
    }
    for (k, want) in wants.into_iter().enumerate() {
        if want.is_empty() {
            continue;
        }
        stats.reads += read_in_parallel(
            s,
            want,
            src.read_workers(),
            &mut |id, l: &Location, payload| {
                session.put_encoded(l.kind, *id, l.codec, l.raw_len as usize, payload)?;
                stats.objects += 1;
                stats.bytes += payload.len() as u64;
                if l.kind == ObjectKind::Chunk {
                    stats.chunks += 1;
                    progress.bytes(payload.len() as u64);
                    // What arrived stays stored if the transfer is
                    // interrupted: the next run does not move it again.
                    since_checkpoint += payload.len() as u64;
                    if since_checkpoint >= checkpoint_bytes {
                        session.checkpoint()?;
                        since_checkpoint = 0;
                    }
                }
                Ok(())
            },
        )?;
        if k == CHUNKS {
            // Stored before any manifest naming them is.
            session.checkpoint()?;
        }
    }
    session.finish()?;
    progress.finish();
    Ok(stats)
}

/// Below this many bytes a copy reads on one thread.
const PARALLEL_MIN_BYTES: u64 = 64 << 20;

/// [`Odb::read_stored_many`] of `want` on up to `workers` threads, each
/// reading and verifying (decoding, hashing) a contiguous share of the
/// packs' runs, while the calling thread hands each verified entry to
/// `sink` (the one pack session: writing stays on one thread). At most 16
/// entries wait between them, so memory stays bounded. The first error,
/// of a reader or of `sink`, stops every thread and is returned. Returns
/// the number of reads.
pub(crate) fn read_in_parallel(
    s: &Odb,
    mut want: Vec<(ObjectId, ObjectId, Location)>,
    workers: usize,
    sink: &mut crate::odb::StoredSink<'_>,
) -> Result<usize> {
    let total: u64 = want.iter().map(|(_, _, l)| u64::from(l.stored_len)).sum();
    let workers = workers.clamp(1, 8);
    if workers == 1 || total < PARALLEL_MIN_BYTES {
        return s.read_stored_many(&mut want, sink);
    }
    // Contiguous shares of about equal bytes, in pack and offset order, so
    // each thread's runs stay as long as one thread's would be.
    want.sort_by_key(|(_, pack, l)| (*pack, l.offset));
    let share = total.div_ceil(workers as u64);
    let mut parts: Vec<Vec<(ObjectId, ObjectId, Location)>> = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0u64;
    for w in want {
        bytes += u64::from(w.2.stored_len);
        cur.push(w);
        if bytes >= share {
            parts.push(std::mem::take(&mut cur));
            bytes = 0;
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    type Item = Result<(ObjectId, Location, Vec<u8>)>;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(16);
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|mut part| {
                let tx = tx.clone();
                scope.spawn(move || -> usize {
                    let r = s.read_stored_many(&mut part, &mut |id, l, payload| {
                        tx.send(Ok((*id, *l, payload.to_vec())))
                            .map_err(|_| RepoError::Invalid("the copy stopped".into()))
                    });
                    match r {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            0
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut first_err: Option<RepoError> = None;
        for item in rx.iter() {
            let r = item.and_then(|(id, l, payload)| sink(&id, &l, &payload));
            if let Err(e) = r {
                first_err = Some(e);
                // Dropping the receiver (below) makes every reader's next
                // send fail, so they stop.
                break;
            }
        }
        drop(rx);
        let mut reads = 0;
        let mut panicked = false;
        for h in handles {
            match h.join() {
                Ok(n) => reads += n,
                // A reader that panicked delivered only part of its share:
                // the copy is incomplete, never reported as done.
                Err(_) => panicked = true,
            }
        }
        match first_err {
            Some(e) => Err(e),
            None if panicked => Err(RepoError::Invalid(
                "a reader thread of the copy failed; nothing was completed (run it again)".into(),
            )),
            None => Ok(reads),
        }
    })
}
