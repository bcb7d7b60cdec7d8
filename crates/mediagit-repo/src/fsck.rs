//! `fsck`: check every pack, index, object and ref; list dangling objects;
//! save them to lost-found; repair what can be rebuilt locally.
use std::collections::{BTreeMap, HashMap, HashSet};

use mediagit_format::pack::PackIndex;
use mediagit_format::{ObjectId, ObjectKind};

use crate::error::{RepoError, Result};
use crate::ingest::with_ingester;
use crate::odb::{idx_key, pack_key, read_stored, scan_pack, Odb, PackScan};
use crate::progress::Progress;
use crate::reach::{walk, IdList, Root};
use crate::repo::{write_atomic, Repository};
use crate::tree::flatten;
use crate::worktree::{make_entry, WorktreeIndex};

#[derive(Debug, Clone, Default)]
pub struct FsckOptions {
    pub dangling: bool,
    pub lost_found: bool,
    pub repair: bool,
}

/// One thing wrong, with where it is and what it affects.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// The object (or pack) concerned, if there is one.
    pub id: Option<ObjectId>,
    /// "chunk", "manifest", "tree", "commit", "tag", "pack", "pack index", "ref", "index".
    pub kind: String,
    /// Where it lives (pack key and offset, ref name, file).
    pub location: String,
    pub message: String,
    /// Commits, paths or refs that need it.
    pub affects: Vec<String>,
}

/// An object nothing reachable uses.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Dangling {
    pub id: ObjectId,
    pub kind: ObjectKind,
    /// A commit's first message line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// A manifest's file: its content id and size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ObjectId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct FsckReport {
    pub packs: usize,
    pub objects: usize,
    pub problems: Vec<Problem>,
    /// Unreachable objects (with `dangling` or `lost_found`).
    pub dangling: Vec<Dangling>,
    /// Files written by `--lost-found`.
    #[serde(serialize_with = "crate::serialize_paths")]
    pub lost_found: Vec<std::path::PathBuf>,
    /// What `--repair` did.
    pub repaired: Vec<String>,
    /// Things that are not damage (e.g. a pack without an index, left by an
    /// interrupted write) but worth knowing.
    pub notes: Vec<String>,
}

const MAX_AFFECTS: usize = 20;

struct Checked {
    odb: Odb,
    /// The scans of the packs in `rebuild` (the others' entries are their
    /// indexes', which the odb holds: not kept twice).
    scans: BTreeMap<ObjectId, PackScan>,
    /// Objects with a sound copy in an indexed pack.
    good: IdList,
    /// Packs and entries scanned.
    packs: usize,
    objects: usize,
    problems: Vec<Problem>,
    notes: Vec<String>,
    /// Packs that need rewriting (damaged, or index missing / wrong).
    rebuild: Vec<ObjectId>,
}

impl Repository {
    #[tracing::instrument(name = "fsck", level = "info", skip_all)]
    pub fn fsck(&self, opts: &FsckOptions, progress: &dyn Progress) -> Result<FsckReport> {
        if (opts.repair || opts.lost_found) && self.workspace_opt().is_none() {
            // Both write files beside the store (damaged/, lost-found/).
            return Err(RepoError::NoWorkspace);
        }
        let _lock = self.lock_local()?;
        let mut repaired = Vec::new();
        if opts.repair {
            let c = self.check_packs(progress)?;
            repaired.extend(self.repair(c, progress)?);
        }
        let c = self.check_packs(progress)?;
        let mut report = self.check_reachability(c, opts)?;
        report.repaired = repaired;
        Ok(report)
    }

    fn check_packs(&self, progress: &dyn Progress) -> Result<Checked> {
        // What the store really holds, not the local cache of pack indexes;
        // and the cache starts afresh, in case it is what was damaged.
        let storage = self.uncached_storage().clone();
        if let Some(ws) = self.workspace_opt() {
            let _ = std::fs::remove_dir_all(ws.dir().join("cache"));
        }
        let (odb, idx_problems) = Odb::load_lenient(
            storage.clone(),
            self.tmp_dir().to_path_buf(),
            self.config(),
            self.codec(),
        )?;
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        let mut rebuild = Vec::new();
        let keys = storage.list("packs/")?;
        let mut pack_ids = Vec::new();
        let mut idx_ids = HashSet::new();
        for k in &keys {
            let name = k.trim_start_matches("packs/");
            if let Some(h) = name
                .strip_suffix(".pack")
                .and_then(|h| h.parse::<ObjectId>().ok())
            {
                pack_ids.push(h);
            } else if let Some(h) = name
                .strip_suffix(".idx")
                .and_then(|h| h.parse::<ObjectId>().ok())
            {
                idx_ids.insert(h);
            }
        }
        for (key, e) in &idx_problems {
            problems.push(Problem {
                id: None,
                kind: "pack index".into(),
                location: key.clone(),
                message: e.to_string(),
                affects: vec![],
            });
        }
        let total: u64 = pack_ids
            .iter()
            .filter_map(|p| storage.size(&pack_key(p)).ok().flatten())
            .sum();
        progress.start("checking packs", total, pack_ids.len() as u64);
        let mut scans = BTreeMap::new();
        let mut good = Vec::new();
        let mut objects = 0;
        for pack in &pack_ids {
            let key = pack_key(pack);
            // The pack's own index, as stored (an unreadable one was
            // reported by the load above). In an encrypted repository its
            // salt is what the scan opens entries with: a damaged pack
            // header must not make sound entries look lost.
            let (idx, idx_salt) = if idx_ids.contains(pack) {
                match crate::odb::read_pack_index(
                    storage.as_ref(),
                    &self.codec(),
                    &idx_key(pack),
                    *pack,
                    crate::odb::index_bound(storage.as_ref(), pack)?,
                    None,
                ) {
                    Ok((i, salt)) => (Some(i), salt),
                    Err(_) => (None, None),
                }
            } else {
                (None, None)
            };
            let scan = scan_pack(
                storage.as_ref(),
                pack,
                self.config().chunking.max_size,
                &self.codec(),
                idx_salt,
            )?;
            progress.bytes(scan.size);
            progress.file_done();
            let mut needs_rebuild = false;
            if let Some(f) = &scan.fatal {
                needs_rebuild = true;
                problems.push(Problem {
                    id: Some(*pack),
                    kind: "pack".into(),
                    location: format!("{key} in {}", storage.describe()),
                    message: format!("damaged pack: {f}"),
                    affects: vec![],
                });
            } else if !scan.checksum_ok {
                needs_rebuild = true;
                problems.push(Problem {
                    id: Some(*pack),
                    kind: "pack".into(),
                    location: format!("{key} in {}", storage.describe()),
                    message: "pack header and entry headers do not hash to the pack's name".into(),
                    affects: vec![],
                });
            }
            let listed = |id: &ObjectId| {
                idx.as_ref()
                    .is_some_and(|i| i.entries.binary_search_by_key(id, |e| e.id).is_ok())
            };
            let mut unlisted = 0usize;
            for e in &scan.entries {
                match &e.damage {
                    // Readable by every command only through an index: the
                    // sound entries of an unindexed pack, or ones its index
                    // leaves out, are reported missing when something
                    // reaches them (--repair indexes the pack).
                    None if listed(&e.header.id) => {
                        good.push(e.header.id);
                    }
                    None if idx.is_some() => unlisted += 1,
                    None => {}
                    Some(d) => {
                        needs_rebuild = true;
                        problems.push(Problem {
                            id: Some(e.header.id),
                            kind: e.header.kind.name().into(),
                            location: format!(
                                "{key} at offset {} in {}",
                                e.offset,
                                storage.describe()
                            ),
                            message: format!("corrupt object: {d}"),
                            affects: vec![],
                        });
                    }
                }
            }
            if !idx_ids.contains(pack) {
                // By the write order (pack, then index) this is what an
                // interrupted write leaves: garbage, unless the index was lost,
                // in which case the reachability check reports the missing objects.
                needs_rebuild = true;
                notes.push(format!(
                    "{key} has no index ({} objects): left by an interrupted write, or its index was lost; `mediagit fsck --repair` indexes it; `mediagit gc` removes it once it is older than the grace period unless it holds reachable objects (reported above as missing)",
                    scan.entries.len()
                ));
            } else if let Some(idx) = &idx {
                if unlisted > 0 {
                    needs_rebuild = true;
                    problems.push(Problem {
                        id: Some(*pack),
                        kind: "pack index".into(),
                        location: idx_key(pack),
                        message: format!(
                            "{unlisted} objects in the pack are not in its index (no command can read them)"
                        ),
                        affects: vec![],
                    });
                }
                let by_offset: HashMap<u64, &crate::odb::ScannedEntry> =
                    scan.entries.iter().map(|e| (e.offset, e)).collect();
                let mismatched = idx.entries.iter().filter(|i| {
                    by_offset
                        .get(&i.offset)
                        .map(|e| {
                            e.header.id != i.id
                                || e.header.kind != i.kind
                                || e.header.stored_len != i.stored_len
                        })
                        .unwrap_or(true)
                });
                let n = mismatched.count();
                if n > 0 {
                    needs_rebuild = true;
                    problems.push(Problem {
                        id: Some(*pack),
                        kind: "pack index".into(),
                        location: idx_key(pack),
                        message: format!("{n} index entries do not match the pack"),
                        affects: vec![],
                    });
                }
            } else {
                needs_rebuild = true;
            }
            objects += scan.entries.len();
            if needs_rebuild {
                rebuild.push(*pack);
                scans.insert(*pack, scan);
            }
        }
        let good = IdList::from_unsorted(good);
        progress.finish();
        // Every damaged copy is recorded in the store (`damaged-objects/<id>-<pack>`),
        // so that `add` stores the object again from a file with the same
        // content instead of reusing the damaged copy (odb.rs).
        let known: HashSet<String> = crate::odb::list_damaged(storage.as_ref())?
            .into_iter()
            .map(|(k, ..)| k)
            .collect();
        for (pack, scan) in &scans {
            for e in scan.entries.iter().filter(|e| e.damage.is_some()) {
                let k = crate::odb::damaged_key(&e.header.id, pack);
                if !known.contains(&k) {
                    storage.put(&k, b"")?;
                }
            }
        }
        // A damaged copy whose object has a sound copy in another pack
        // (stored again by `add`) loses nothing: a note, not a problem.
        problems.retain(|p| {
            let superseded = p.message.starts_with("corrupt object")
                && p.id.is_some_and(|id| good.contains(&id));
            if superseded {
                notes.push(format!(
                    "a damaged copy of {} {} ({}) is superseded by a sound copy; `mediagit fsck --repair` or `gc` removes it",
                    p.kind,
                    p.id.map(|i| i.to_string()).unwrap_or_default(),
                    p.location
                ));
            }
            !superseded
        });
        for id in &idx_ids {
            if !pack_ids.contains(id) {
                problems.push(Problem {
                    id: Some(*id),
                    kind: "pack".into(),
                    location: pack_key(id),
                    message: "pack index without its pack: the objects it lists are missing".into(),
                    affects: vec![],
                });
            }
        }
        Ok(Checked {
            odb,
            scans,
            good,
            packs: pack_ids.len(),
            objects,
            problems,
            notes,
            rebuild,
        })
    }

    fn check_reachability(&self, c: Checked, opts: &FsckOptions) -> Result<FsckReport> {
        let Checked {
            odb,
            scans,
            good,
            packs,
            objects,
            mut problems,
            notes,
            ..
        } = c;
        let (roots, mut bad_refs) = self.roots(&odb)?;
        // The store's own HEAD (what a clone checks out first), when this
        // working tree does not read it as its HEAD.
        if self.config().storage.is_some() && self.workspace_opt().is_some() {
            if let Err(e) = self.store().head() {
                bad_refs.push((
                    format!("HEAD in {}", self.storage().describe()),
                    e.to_string(),
                ));
            }
        }
        for (name, err) in bad_refs {
            problems.push(Problem {
                id: None,
                kind: if name == "index" {
                    "index".into()
                } else {
                    "ref".into()
                },
                location: match self.workspace_opt() {
                    Some(ws) if name == "index" || name == "HEAD" => {
                        ws.dir().join(&name).display().to_string()
                    }
                    _ => name.clone(),
                },
                message: err,
                affects: vec![],
            });
        }
        // Sound, and stored as a chunk: plain ids do not name the kind, so
        // a tree or manifest of the same bytes is no chunk.
        let chunk_ok = |id: &ObjectId| {
            good.contains(id)
                && odb
                    .locate(id)
                    .is_some_and(|(_, l)| l.kind == ObjectKind::Chunk)
        };
        let mut reach = walk(&odb, &roots, &chunk_ok);
        self.name_index_users(&mut reach);
        // Group unreadable objects: one problem per object, listing what needs it.
        let mut grouped: BTreeMap<ObjectId, (ObjectKind, String, Vec<String>)> = BTreeMap::new();
        for u in reach.unreadable {
            let g = grouped.entry(u.id).or_insert((u.kind, u.error, vec![]));
            if g.2.len() < MAX_AFFECTS {
                g.2.push(u.needed_by);
            }
        }
        for u in &reach.mismatched {
            problems.push(Problem {
                id: Some(u.id),
                kind: "tree".into(),
                location: u.needed_by.clone(),
                message: format!(
                    "a tree entry disagrees with its file's manifest: {}; checkout refuses it",
                    u.error
                ),
                affects: vec![u.needed_by.clone()],
            });
        }
        for (id, (kind, error, affects)) in grouped {
            let location = match odb.locate(&id) {
                Some((pack, loc)) => format!("{} at offset {}", pack_key(&pack), loc.offset),
                None => "not in any indexed pack".into(),
            };
            problems.push(Problem {
                id: Some(id),
                kind: kind.name().into(),
                location,
                message: format!("reachable {} cannot be read: {error}", kind.name()),
                affects,
            });
        }
        let mut report = FsckReport {
            packs,
            objects,
            problems,
            notes,
            ..Default::default()
        };
        if opts.dangling || opts.lost_found {
            // Sound copies: those the packs being rebuilt hold, and those
            // of every other pack (whose index is its scan).
            let mut kinds: BTreeMap<ObjectId, ObjectKind> = BTreeMap::new();
            for s in scans.values() {
                for e in &s.entries {
                    if e.damage.is_none() && !reach.objects.contains(&e.header.id) {
                        kinds.insert(e.header.id, e.header.kind);
                    }
                }
            }
            for id in &good {
                if !reach.objects.contains(id) && !kinds.contains_key(id) {
                    if let Some((_, loc)) = odb.locate(id) {
                        kinds.insert(*id, loc.kind);
                    }
                }
            }
            // Media records a later add superseded (FORMAT.md §14) are
            // garbage by design, removed by gc: not listed.
            let superseded: Vec<Root> = kinds
                .iter()
                .filter(|(_, k)| **k == ObjectKind::Commit)
                .filter(|(id, _)| {
                    odb.read_commit(id)
                        .is_ok_and(|c| crate::media::is_records_commit(&c))
                })
                .map(|(id, _)| Root {
                    id: *id,
                    kind: ObjectKind::Commit,
                    why: String::new(),
                })
                .collect();
            if !superseded.is_empty() {
                let under = walk(&odb, &superseded, &|_| true).objects;
                kinds.retain(|id, _| !under.contains(id));
            }
            for (id, kind) in kinds {
                let mut d = Dangling {
                    id,
                    kind,
                    summary: None,
                    content: None,
                    size: None,
                };
                match kind {
                    ObjectKind::Commit => {
                        d.summary = odb.read_commit(&id).ok().map(|c| c.summary().to_string())
                    }
                    ObjectKind::Manifest => {
                        if let Ok(m) = odb.read_manifest(&id) {
                            d.content = Some(m.content);
                            d.size = Some(m.size);
                        }
                    }
                    _ => {}
                }
                report.dangling.push(d);
            }
        }
        if opts.lost_found {
            report.lost_found = self.write_lost_found(&odb, &report.dangling)?;
        }
        Ok(report)
    }

    fn write_lost_found(
        &self,
        odb: &Odb,
        dangling: &[Dangling],
    ) -> Result<Vec<std::path::PathBuf>> {
        let base = self.workspace()?.dir().join("lost-found");
        let mut out = Vec::new();
        // Manifests reachable from a dangling commit are saved as that commit, not as loose files.
        let dangling_commits: Vec<Root> = dangling
            .iter()
            .filter(|d| d.kind == ObjectKind::Commit)
            .map(|d| Root {
                id: d.id,
                kind: ObjectKind::Commit,
                why: String::new(),
            })
            .collect();
        let under_commits = walk(odb, &dangling_commits, &|_| true).objects;
        for Dangling {
            id, kind, summary, ..
        } in dangling
        {
            let desc = summary.as_deref().unwrap_or("");
            match kind {
                ObjectKind::Commit => {
                    let dir = base.join("commit");
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| RepoError::io("create directory", &dir, e))?;
                    let p = dir.join(id.to_hex());
                    let text = format!(
                        "commit {id}\n{desc}\n\nRecover it with: mediagit branch create <name> {id}\n"
                    );
                    write_atomic(&p, text.as_bytes())?;
                    out.push(p);
                }
                ObjectKind::Manifest if !under_commits.contains(id) => {
                    let m = odb.read_manifest(id)?;
                    let dir = base.join("other");
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| RepoError::io("create directory", &dir, e))?;
                    let p = dir.join(m.content.to_hex());
                    // Atomically: a temporary file, fsynced, renamed, the
                    // directory fsynced (a crash never leaves half a file).
                    let mut tmp = tempfile::Builder::new()
                        .prefix(".lost-found-")
                        .tempfile_in(&dir)
                        .map_err(|e| RepoError::io("create temp file in", &dir, e))?;
                    odb.write_file_to(id, tmp.as_file_mut(), &|_| {})?;
                    tmp.as_file()
                        .sync_all()
                        .map_err(|e| RepoError::io("fsync", &p, e))?;
                    tmp.persist(&p)
                        .map_err(|e| RepoError::io("rename into place", &p, e.error))?;
                    mediagit_storage::local_backend::sync_dir(&dir)
                        .map_err(|e| RepoError::io("fsync", &dir, e))?;
                    out.push(p);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Rebuilds damaged packs and missing indexes, heals missing chunks from
    /// the working tree, rebuilds an unreadable worktree index and restores
    /// unreadable branch refs from their reflog. Returns what it did.
    fn repair(&self, c: Checked, progress: &dyn Progress) -> Result<Vec<String>> {
        let mut done = Vec::new();
        let storage = self.uncached_storage().clone();
        // 1. Rewrite every damaged or unindexed pack with its sound entries.
        for pack in &c.rebuild {
            let scan = &c.scans[pack];
            let sound: Vec<_> = scan.entries.iter().filter(|e| e.damage.is_none()).collect();
            let odb = Odb::load_lenient(
                storage.clone(),
                self.tmp_dir().to_path_buf(),
                self.config(),
                self.codec(),
            )?
            .0;
            if scan.checksum_ok && sound.len() == scan.entries.len() {
                // The pack is sound; only its index is missing or wrong.
                let idx = PackIndex {
                    pack: *pack,
                    entries: sound
                        .iter()
                        .map(|e| mediagit_format::pack::IdxEntry {
                            id: e.header.id,
                            offset: e.offset,
                            kind: e.header.kind,
                            codec: e.header.codec,
                            raw_len: e.header.raw_len,
                            stored_len: e.header.stored_len,
                        })
                        .collect(),
                };
                let bytes = crate::odb::encode_pack_index(&self.codec(), &idx, scan.salt.as_ref())?;
                storage.put(&idx_key(pack), &bytes)?;
                done.push(format!(
                    "rebuilt pack index {} from its pack ({} objects)",
                    idx_key(pack),
                    idx.entries.len()
                ));
                continue;
            }
            let mut session = odb.session_ignoring(&[*pack]).without_freshening();
            let pk = scan
                .salt
                .and_then(|salt| self.codec().keys().map(|k| k.pack_key(&salt)));
            let mut kept = 0usize;
            let mut copied = HashSet::new();
            for e in &sound {
                let payload = read_stored(
                    storage.as_ref(),
                    pk.as_ref(),
                    pack,
                    e.offset,
                    e.header.stored_len,
                )?;
                session.put_encoded(
                    e.header.kind,
                    e.header.id,
                    e.header.codec,
                    e.header.raw_len as usize,
                    &payload,
                )?;
                copied.insert(e.header.id);
                kept += 1;
            }
            // Entries the scan could not reach (it stops at the first
            // damaged entry header) but the pack's index still locates:
            // each is read and verified on its own, and kept if sound.
            let scanned: HashSet<u64> = scan.entries.iter().map(|e| e.offset).collect();
            for (id, p, loc) in odb.all_objects() {
                if p != *pack || scanned.contains(&loc.offset) || copied.contains(&id) {
                    continue;
                }
                if odb.read_raw(&id, loc.kind).is_err() {
                    continue;
                }
                session.copy_stored(pack, id, &loc)?;
                copied.insert(id);
                kept += 1;
            }
            if session.finish()?.contains(pack) {
                // The sound entries made a pack of the same name (the
                // damage was elsewhere): it was just stored whole again.
                done.push(format!(
                    "rewrote pack {} from its {kept} sound objects",
                    pack_key(pack),
                ));
                continue;
            }
            // Keep the damaged pack for forensics, out of the object store.
            let damaged = self.workspace()?.dir().join("damaged");
            std::fs::create_dir_all(&damaged)
                .map_err(|e| RepoError::io("create directory", &damaged, e))?;
            let bytes = storage.get(&pack_key(pack))?;
            write_atomic(&damaged.join(format!("{pack}.pack")), &bytes)?;
            // Its index too: in an encrypted repository it holds the key
            // (salt) the damaged pack's entries were sealed with.
            if let Ok(idx) = storage.get(&idx_key(pack)) {
                write_atomic(&damaged.join(format!("{pack}.idx")), &idx)?;
            }
            storage.delete(&idx_key(pack))?;
            storage.delete(&pack_key(pack))?;
            done.push(format!(
                "rewrote damaged pack {} keeping {kept} sound objects of {}; the damaged file was moved to {}",
                pack_key(pack),
                scan.entries.len().max(kept),
                damaged.join(format!("{pack}.pack")).display()
            ));
        }
        // 2. Heal missing chunks from working-tree files with the same content.
        if let (Ok(root), Some(Ok(idx))) = (
            self.worktree(),
            self.workspace_opt().map(crate::Workspace::load_index),
        ) {
            let c2 = self.check_packs(progress)?;
            let (roots, _) = self.roots(&c2.odb)?;
            let good = &c2.good;
            let reach = walk(&c2.odb, &roots, &|id| good.contains(id));
            let missing: HashSet<ObjectId> = reach
                .unreadable
                .iter()
                .filter(|u| u.kind == ObjectKind::Chunk)
                .map(|u| u.id)
                .collect();
            let lost_manifests: HashSet<ObjectId> = reach
                .unreadable
                .iter()
                .filter(|u| u.kind == ObjectKind::Manifest)
                .map(|u| u.id)
                .collect();
            if !missing.is_empty() || !lost_manifests.is_empty() {
                let odb = c2.odb;
                let healed = with_ingester(&odb, self.config().chunking, &[], None, |ing| {
                    let mut healed = Vec::new();
                    for e in idx.entries.values() {
                        let needed = if lost_manifests.contains(&e.manifest) {
                            true
                        } else {
                            match odb.read_manifest(&e.manifest) {
                                Ok(m) => m.chunks.iter().any(|ch| missing.contains(&ch.id)),
                                Err(_) => false,
                            }
                        };
                        if !needed {
                            continue;
                        }
                        // Re-chunking the same content with the same
                        // parameters gives the same chunks and manifest.
                        if let Ok(g) = ing.ingest_path(root, &e.path, None, progress) {
                            if g.content == e.content && g.manifest == e.manifest {
                                healed.push(e.path.clone());
                            }
                        }
                    }
                    Ok(healed)
                })?;
                for p in healed {
                    done.push(format!(
                        "restored missing chunks of {p} from the working tree"
                    ));
                }
            }
        }
        // 3. An unreadable worktree index is rebuilt from HEAD (stat data
        //    zeroed, so every file is re-hashed by the next status).
        if !self.is_bare() {
            if let Err(e) = self.workspace()?.load_index() {
                let odb = Odb::load_lenient(
                    storage.clone(),
                    self.tmp_dir().to_path_buf(),
                    self.config(),
                    self.codec(),
                )?
                .0;
                let mut idx = WorktreeIndex::default();
                // HEAD's files, or none on an unborn branch; `None` when
                // HEAD's commit or trees cannot be read now (an empty
                // index would stage the deletion of every file).
                let files = match self.head_commit().ok().flatten() {
                    None => Some(Default::default()),
                    Some(head) => odb
                        .read_commit(&head)
                        .ok()
                        .and_then(|c| flatten(&odb, &c.tree).ok()),
                };
                if let Some(files) = files {
                    for (p, f) in files {
                        idx.entries.insert(make_entry(
                            &p,
                            f.kind,
                            // Size kept, times zeroed: never stat-clean,
                            // so the next status re-hashes the file.
                            mediagit_format::index::StatInfo {
                                size: f.size,
                                ..Default::default()
                            },
                            f.content,
                            f.manifest,
                            f.target,
                        ));
                    }
                    self.workspace()?.save_index(&mut idx, &self.codec())?;
                    done.push(format!(
                        "rebuilt the worktree index from HEAD ({} files; it was unreadable: {e})",
                        idx.entries.len()
                    ));
                } else {
                    done.push(format!(
                        "left the unreadable worktree index as it is ({e}): HEAD's commit cannot be read, so it cannot be rebuilt from it yet (fetch it, or `fsck --repair --from REMOTE`, then run `fsck --repair` again)"
                    ));
                }
            }
        }
        // 4. Branch refs that cannot be parsed (or, sealed, do not open)
        //    get their last reflog value back. Sealed ref names are not
        //    in the store: the branches this working tree has reflogs of
        //    are the ones it can name.
        let mut names: Vec<String> = self
            .ref_entries("refs/heads/")?
            .into_iter()
            .filter(|(n, _)| n.starts_with("refs/heads/"))
            .map(|(n, _)| n)
            .collect();
        if self.is_encrypted() {
            if let Ok(rd) = std::fs::read_dir(self.workspace()?.dir().join("logs")) {
                for e in rd.flatten() {
                    let file = e
                        .file_name()
                        .to_string_lossy()
                        .replace("%2F", "/")
                        .replace("%25", "%");
                    if file.starts_with("refs/heads/") && !names.contains(&file) {
                        names.push(file);
                    }
                }
            }
        }
        for name in names {
            let key = self.ref_storage_key(&name);
            if self.read_ref(&name).is_err() {
                if let Some(last) = self
                    .workspace()?
                    .reflog(&name)?
                    .into_iter()
                    .find(|e| !e.new.is_zero())
                {
                    // Compare-and-swap from exactly the bytes found: if
                    // another machine fixed or moved the ref meanwhile, its
                    // value stands (refs only ever change by CAS).
                    let found = storage.get(&key)?;
                    let new = self.encode_ref(&name, last.new)?;
                    match storage.compare_and_swap(&key, Some(&found), Some(&new))? {
                        mediagit_storage::CasOutcome::Swapped => {}
                        mediagit_storage::CasOutcome::Conflict { .. } => continue,
                    }
                    done.push(format!(
                        "restored {name} to {} from this working tree's reflog (if another working tree moved {name} on since, its newer commits are unreachable now: `mediagit fsck --dangling` lists them, and `mediagit branch create NAME ID` keeps one)",
                        last.new.short(12)
                    ));
                }
            }
        }
        if self.is_encrypted() {
            // 5. Sealed ref values that still do not open (planted, or of
            //    a branch this working tree never knew): nobody can name
            //    them, and while they stay every listing of refs fails.
            //    Moved aside, kept for forensics.
            let aside = self.workspace()?.dir().join("damaged").join("refs");
            for (key, r) in self.ref_entries("refs/")? {
                if r.is_ok() || !key.starts_with("refs/") {
                    continue;
                }
                let bytes = match storage.get(&key) {
                    Ok(b) => b,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e.into()),
                };
                std::fs::create_dir_all(&aside)
                    .map_err(|e| RepoError::io("create directory", &aside, e))?;
                let file = aside.join(key.replace('/', "%2F"));
                write_atomic(&file, &bytes)?;
                storage.delete(&key)?;
                done.push(format!(
                    "moved the ref value {key}, which does not open (damaged, or not this repository's), to {}; a branch another working tree knows comes back there with `mediagit branch create NAME ID` from its reflog; a tag has no reflog: make it again with `mediagit tag NAME COMMIT` (an annotated tag's message went with its value)",
                    file.display()
                ));
            }
        }
        // 6. A store's HEAD that does not read (or, sealed, open): this
        //    working tree's branch (what a clone checks out first).
        if self.config().storage.is_some() && self.store().head().is_err() {
            if let Ok(crate::refs::Head::Branch(b)) = self.workspace()?.head() {
                let text = format!("ref: refs/heads/{b}\n");
                storage.put("HEAD", &self.store().encode_store_head(&text)?)?;
                done.push(format!("rewrote the store's HEAD (ref: refs/heads/{b})"));
            }
        }
        Ok(done)
    }
}
