//! The object database: packs and pack indexes in storage, an in-memory
//! table from object id to location, verified reads and a pack writer.
//!
//! The table is one vector sorted by id (binary search), not a hash map:
//! pack indexes are already sorted, so loading one is a copy, and a command
//! that looks up a handful of objects (`status` reads one commit) does not
//! pay for hashing and scattering every id of the repository.
//!
//! Packs are written to a local temporary file, then stored (`packs/<id>.pack`),
//! then their index (`packs/<id>.idx`). An object exists for readers only once
//! its index is stored, so a crash in between leaves unreferenced garbage and
//! nothing else.
use std::collections::HashMap;
use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mediagit_crypto::{EntryPart, PackKey, Purpose};
use mediagit_format::config::RepoConfig;
use mediagit_format::id::{Hasher, IdMap, IdSet};
use mediagit_format::index::CommitMemo;
use mediagit_format::limits;
use mediagit_format::pack::{self, Codec, EntryHeader, IdxEntry, PackHeader, PackIndex};
use mediagit_format::{Commit, Manifest, ObjectId, ObjectKind, Tag, Tree};
use mediagit_pipeline::{decompress, CompressionHint};
use mediagit_storage::Storage;

use crate::codec::ObjectCodec;
use crate::error::{RepoError, Result};

/// [`Odb::read_many`] decodes objects of at most this size (larger ones
/// are left to single reads)...
const MANY_MAX_OBJECT: u64 = 1 << 20;
/// ...and at most this much in one call.
const MANY_MAX_TOTAL: u64 = 64 << 20;

/// Largest single read of consecutive chunks when restoring a file.
pub const READ_BATCH: u64 = 8 << 20;

/// Checks a chunk's length against its manifest entry and writes it out.
pub(crate) fn emit_chunk(
    manifest: &ObjectId,
    c: &mediagit_format::object::ManifestChunk,
    data: &[u8],
    out: &mut dyn Write,
    on_bytes: &dyn Fn(u64),
) -> Result<()> {
    if data.len() != c.len as usize {
        return Err(RepoError::CorruptObject {
            id: *manifest,
            kind: "manifest",
            location: format!("chunk {}", c.id),
            reason: format!("chunk is {} bytes, manifest says {}", data.len(), c.len),
        });
    }
    out.write_all(data)
        .map_err(|e| RepoError::io("write", "output", e))?;
    on_bytes(data.len() as u64);
    Ok(())
}

/// Packs are closed and a new one started past this size (local disk).
pub const PACK_TARGET_SIZE: u64 = 1 << 30;
/// The same for object stores: smaller packs upload and retry in smaller
/// units, let `gc` repack less at a time, and keep every object far below
/// the size limits of S3-compatible servers and emulators.
pub const REMOTE_PACK_TARGET_SIZE: u64 = 128 << 20;

#[derive(Clone, Copy, Debug)]
pub struct Location {
    pub pack: u32,
    pub offset: u64,
    pub kind: ObjectKind,
    pub codec: Codec,
    pub raw_len: u32,
    pub stored_len: u32,
    /// `fsck` found this copy damaged (a `damaged-objects/` marker names it): a
    /// sound copy elsewhere is preferred, and writers store the object
    /// again instead of reusing it.
    pub damaged: bool,
}

impl Location {
    /// Offset just past this entry (header and payload, and their tags in
    /// a `sealed` pack), saturating: offsets come from an authenticated
    /// index, but a hostile one must not overflow.
    fn end(&self, sealed: bool) -> u64 {
        self.offset
            .saturating_add(pack::entry_len(sealed, self.stored_len))
    }

    /// Bytes of the whole entry in its pack.
    pub fn entry_len(&self, sealed: bool) -> u64 {
        pack::entry_len(sealed, self.stored_len)
    }

    /// Where index entry `e` of the pack in slot `pack` (of
    /// [`Odb::packs`]) is.
    pub fn of_entry(e: &IdxEntry, pack: u32, damaged: bool) -> Location {
        Location {
            pack,
            offset: e.offset,
            kind: e.kind,
            codec: e.codec,
            raw_len: e.raw_len,
            stored_len: e.stored_len,
            damaged,
        }
    }
}

#[derive(Default)]
struct State {
    packs: Vec<ObjectId>,
    /// Sorted by id, unique (an object in two packs: the first pack
    /// registered wins).
    table: Vec<(ObjectId, Location)>,
}

impl State {
    fn get(&self, id: &ObjectId) -> Option<&Location> {
        let i = self.table.partition_point(|(k, _)| k < id);
        match self.table.get(i) {
            Some((k, l)) if k == id => Some(l),
            _ => None,
        }
    }

    fn add(&mut self, idxs: Vec<PackIndex>, damaged: &HashSet<(ObjectId, ObjectId)>) {
        let count: usize = idxs.iter().map(|i| i.entries.len()).sum();
        let mut new: Vec<(ObjectId, Location)> = Vec::with_capacity(count);
        for idx in idxs {
            let n = self.packs.len() as u32;
            self.packs.push(idx.pack);
            let pack = idx.pack;
            new.extend(idx.entries.into_iter().map(|e| {
                let bad = !damaged.is_empty() && damaged.contains(&(e.id, pack));
                (e.id, Location::of_entry(&e, n, bad))
            }));
        }
        // Of equal ids the first is kept: a sound copy before a damaged
        // one, then the earliest pack. In place (no scratch copy of a
        // table that holds every object of the repository).
        let key = |a: &(ObjectId, Location)| (a.0, a.1.damaged);
        new.sort_unstable_by_key(|a| (a.0, a.1.damaged, a.1.pack, a.1.offset));
        new.dedup_by(|b, a| a.0 == b.0 && a.1.damaged == b.1.damaged);
        if self.table.is_empty() {
            self.table = new;
        } else {
            // Merge from the back into the grown table; on equal keys the
            // older entry (registered first) stays in front.
            let (n, m) = (self.table.len(), new.len());
            self.table.reserve_exact(m);
            self.table.extend_from_slice(&new);
            let (mut i, mut j, mut k) = (n, m, n + m);
            while j > 0 {
                if i > 0 && key(&self.table[i - 1]) > key(&new[j - 1]) {
                    self.table[k - 1] = self.table[i - 1];
                    i -= 1;
                } else {
                    self.table[k - 1] = new[j - 1];
                    j -= 1;
                }
                k -= 1;
            }
        }
        self.table.dedup_by(|b, a| a.0 == b.0);
    }
}

/// The run of entries read together from `locs[i]` on (sorted by pack
/// and offset): those of the same pack that follow with gaps of at most
/// 64 KiB, within [`READ_BATCH`] bytes of the first. Returns the index
/// past the run and the offset just past its last entry.
fn run_end(locs: &[(ObjectId, ObjectId, Location)], i: usize, sealed: bool) -> (usize, u64) {
    const GAP: u64 = 64 << 10;
    let (_, pack, first) = locs[i];
    let mut end = first.end(sealed);
    let mut j = i + 1;
    while j < locs.len() {
        let (_, p, l) = &locs[j];
        if *p != pack
            || l.offset < end
            || l.offset - end > GAP
            || l.end(sealed).saturating_sub(first.offset) > READ_BATCH
        {
            break;
        }
        end = l.end(sealed);
        j += 1;
    }
    (j, end)
}

/// Where [`Odb::read_stored_many`] hands each verified entry: its id,
/// location and stored payload.
pub type StoredSink<'a> = dyn FnMut(&ObjectId, &Location, &[u8]) -> Result<()> + 'a;

pub struct Odb {
    storage: Arc<dyn Storage>,
    /// Which packs a deduplication hit has re-dated (see [`FRESHEN_AFTER`]).
    fresh: Mutex<Freshness>,
    /// (object, pack) copies `fsck` found damaged (`damaged-objects/` markers).
    damaged: HashSet<(ObjectId, ObjectId)>,
    tmp_dir: PathBuf,
    codec: ObjectCodec,
    /// The repository's largest chunk: no chunk read may claim more.
    max_chunk: u32,
    pack_target: u64,
    /// Format feature `metadata-packs`: manifests, trees, commits and tags
    /// go into packs without chunks, so history can be listed, fetched and
    /// verified without reading content.
    split_metadata: bool,
    state: RwLock<State>,
    /// Keys of the sealed packs read or written so far (encrypted
    /// repositories), derived from each pack's salt.
    pack_keys: RwLock<HashMap<ObjectId, Arc<PackKey>>>,
}

/// A pack older than this that an `add` or `commit` deduplicates against
/// is re-dated with a freshen marker, so that `gc` on another machine
/// (which cannot see this working tree's index) treats it as new for a
/// whole grace period again. Git freshens the same way, by touching the
/// file; object stores cannot touch, so MediaGit writes a marker instead
/// (`freshen/<pack>-<secs>-<nonce>`, empty, never overwritten: FORMAT.md §11).
/// With the default 2-week grace period this leaves a working tree 13 days
/// between `add` and `commit`; `commit` refuses if objects went anyway.
pub const FRESHEN_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Prefix of freshen markers in the store.
pub const FRESHEN_PREFIX: &str = "freshen/";

/// The key of a new freshen marker for `pack` (unique: time and a nonce).
pub fn freshen_key(pack: &ObjectId, now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let nonce = (d.subsec_nanos() as u64) ^ ((std::process::id() as u64) << 32);
    format!("{FRESHEN_PREFIX}{pack}-{}-{nonce:x}", d.as_secs())
}

/// The pack and time a freshen marker key names.
pub fn parse_freshen_key(key: &str) -> Option<(ObjectId, SystemTime)> {
    let rest = key.strip_prefix(FRESHEN_PREFIX)?;
    let mut it = rest.splitn(3, '-');
    let pack = it.next()?.parse::<ObjectId>().ok()?;
    let secs = it.next()?.parse::<u64>().ok()?;
    Some((pack, UNIX_EPOCH.checked_add(Duration::from_secs(secs))?))
}

/// A freshen marker: its key, the pack it re-dates, and when.
pub type FreshenMarker = (String, ObjectId, SystemTime);

/// Every freshen marker, and the newest time per pack.
///
/// With `store_times`, a marker's time is when the store says it was
/// written (the clock packs are dated by), never later than the time in its
/// name: a client with a slow clock cannot write markers that protect
/// nothing, nor one with a fast clock (or a hostile writer) a marker that
/// pins a pack forever. Without, the time in the name is taken as it is
/// (enough for a writer deciding whether to write another marker).
pub fn list_freshen(
    storage: &dyn Storage,
    store_times: bool,
) -> Result<(Vec<FreshenMarker>, HashMap<ObjectId, SystemTime>)> {
    let mut all = Vec::new();
    let mut newest: HashMap<ObjectId, SystemTime> = HashMap::new();
    for key in storage.list(FRESHEN_PREFIX)? {
        if let Some((pack, named)) = parse_freshen_key(&key) {
            let t = if store_times {
                match storage.modified(&key)? {
                    Some(stored) => stored.min(named),
                    // Deleted since the listing: protects nothing.
                    None => continue,
                }
            } else {
                named
            };
            let e = newest.entry(pack).or_insert(t);
            *e = (*e).max(t);
            all.push((key, pack, t));
        }
    }
    Ok((all, newest))
}

#[derive(Default)]
struct Freshness {
    /// `None`: never freshen.
    after: Option<Duration>,
    /// Newest marker per pack, listed on the first deduplication hit.
    markers: Option<HashMap<ObjectId, SystemTime>>,
    /// Pack slot -> decided (whether it needed a marker).
    decided: HashMap<u32, bool>,
    /// Packs to re-date when the session finishes.
    to_mark: Vec<ObjectId>,
}

/// Prefix of damage markers: `damaged-objects/<object>-<pack>`, written by `fsck`
/// for each damaged copy it finds, so that the next `add` of the same
/// content stores a sound copy instead of reusing the damaged one.
pub const DAMAGED_PREFIX: &str = "damaged-objects/";

pub fn damaged_key(id: &ObjectId, pack: &ObjectId) -> String {
    format!("{DAMAGED_PREFIX}{id}-{pack}")
}

/// Every damage marker: (key, object, pack).
pub fn list_damaged(storage: &dyn Storage) -> Result<Vec<(String, ObjectId, ObjectId)>> {
    Ok(storage
        .list(DAMAGED_PREFIX)?
        .into_iter()
        .filter_map(|k| {
            let (id, pack) = k.strip_prefix(DAMAGED_PREFIX)?.split_once('-')?;
            let (id, pack) = (id.parse().ok()?, pack.parse().ok()?);
            Some((k, id, pack))
        })
        .collect())
}

pub fn pack_key(id: &ObjectId) -> String {
    format!("packs/{id}.pack")
}
/// Whether the index of pack `pack` lists `id` as an object of `kind`,
/// reading (and verifying) that one index only: for `status`, which must
/// not pay for every pack index of a large repository to confirm HEAD.
/// `false` when that index is gone or damaged; callers then load the object
/// database and get its precise error.
pub fn pack_lists(
    storage: &dyn Storage,
    codec: &ObjectCodec,
    pack: &ObjectId,
    id: &ObjectId,
    kind: ObjectKind,
) -> bool {
    let Ok(max) = index_bound(storage, pack) else {
        return false;
    };
    let Ok((idx, _)) = read_pack_index(storage, codec, &idx_key(pack), *pack, max, None) else {
        return false;
    };
    idx.entries
        .binary_search_by_key(id, |e| e.id)
        .is_ok_and(|i| idx.entries[i].kind == kind)
}

/// Why reading an object's bytes failed: a pack file that is gone while
/// its index remains says so in words.
fn read_failure(e: &mediagit_storage::StorageError) -> String {
    if e.is_not_found() {
        "the pack file is missing (its index is still there)".into()
    } else {
        e.to_string()
    }
}

/// The largest index a pack of `pack_size` bytes can need: one 52-byte
/// index entry per entry of at least 44 bytes, the header, and the sealing
/// of an encrypted index (prefix, salt, nonce and tag), with room to spare.
/// Never more than [`MAX_INDEX_LEN`], whatever size the store claims for
/// the pack (it may be hostile too).
pub(crate) fn max_index_len(pack_size: u64) -> u64 {
    let entries = pack_size / EntryHeader::LEN as u64;
    (pack::IDX_HEADER_LEN as u64)
        .saturating_add(entries.saturating_mul(pack::IDX_ENTRY_LEN as u64))
        .saturating_add(4096)
        .min(MAX_INDEX_LEN)
}

/// The largest pack index read at all: 512 MiB, ten million objects in
/// one pack (a million-file repository's merged metadata pack holds about
/// two million).
pub(crate) const MAX_INDEX_LEN: u64 = 512 << 20;

/// What an index is allowed when its pack's size is not known (a pack
/// file gone, or a probe that reads one index only): 64 MiB, the index of
/// a pack of over a million objects.
pub(crate) const UNSIZED_INDEX_MAX: u64 = 64 << 20;

/// The bytes at `key`, refused before they are downloaded when the store
/// says they are more than `max` (`known`: their size from a listing, else
/// asked), and after if more arrive (a store may be hostile: an index is
/// read whole, so its size is bounded first).
fn get_bounded(
    storage: &dyn Storage,
    key: &str,
    max: u64,
    known: Option<u64>,
    too_big: &dyn Fn(u64) -> RepoError,
) -> Result<Vec<u8>> {
    let size = match known {
        Some(n) => Some(n),
        None => storage.size(key)?,
    };
    if let Some(n) = size.filter(|n| *n > max) {
        return Err(too_big(n));
    }
    let bytes = storage.get(key)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Reads, verifies and decodes the pack index at `key`, which must name
/// `pack_id`; with the salt of its pack when the index is sealed. `max`
/// bounds its size (see [`max_index_len`]); `known`: its size if a listing
/// gave it.
pub(crate) fn read_pack_index(
    storage: &dyn Storage,
    codec: &ObjectCodec,
    key: &str,
    pack_id: ObjectId,
    max: u64,
    known: Option<u64>,
) -> Result<(PackIndex, Option<[u8; 32]>)> {
    let too_big = |n: u64| RepoError::CorruptObject {
        id: pack_id,
        kind: "pack index",
        location: key.to_string(),
        reason: format!("it is {n} bytes, more than its pack can need (at most {max}); not read"),
    };
    let bytes = get_bounded(storage, key, max, known, &too_big)?;
    decode_pack_index(codec, &bytes, key, pack_id)
}

/// The index size bound for a pack of `pack_size` bytes (`None`: not in
/// the store).
fn index_limit(pack_size: Option<u64>) -> u64 {
    pack_size.map_or(UNSIZED_INDEX_MAX, max_index_len)
}

/// The index size bound for `pack` from the pack's size in the store.
pub(crate) fn index_bound(storage: &dyn Storage, pack: &ObjectId) -> Result<u64> {
    Ok(index_limit(storage.size(&pack_key(pack))?))
}

/// Encodes a pack index for the store: version 1, or in an encrypted
/// repository version 2, the pack's salt and the version-1 bytes sealed
/// together, bound to the pack's name (FORMAT.md §13.4).
pub(crate) fn encode_pack_index(
    codec: &ObjectCodec,
    idx: &PackIndex,
    salt: Option<&[u8; 32]>,
) -> Result<Vec<u8>> {
    match (codec.keys(), salt) {
        (None, None) => Ok(idx.encode()),
        (Some(keys), Some(salt)) => {
            let mut plain = Vec::with_capacity(32 + idx.entries.len() * pack::IDX_ENTRY_LEN + 80);
            plain.extend_from_slice(salt);
            plain.extend_from_slice(&idx.encode());
            let sealed = keys
                .seal(Purpose::PackIndex, &sealed_index_aad(&idx.pack), &plain)
                .map_err(|e| RepoError::Invalid(e.to_string()))?;
            let mut out = pack::sealed_idx_prefix().to_vec();
            out.extend_from_slice(&sealed);
            Ok(out)
        }
        _ => Err(RepoError::Invalid(format!(
            "pack {} is not sealed like the rest of the repository",
            idx.pack
        ))),
    }
}

/// What a sealed index is bound to: its 12-byte prefix (magic, version 2)
/// and the id of the pack it indexes.
fn sealed_index_aad(pack: &ObjectId) -> Vec<u8> {
    let mut aad = pack::sealed_idx_prefix().to_vec();
    aad.extend_from_slice(&pack.0);
    aad
}

/// Decodes (and, sealed, opens) the bytes of a pack index stored at `key`.
pub(crate) fn decode_pack_index(
    codec: &ObjectCodec,
    bytes: &[u8],
    key: &str,
    pack_id: ObjectId,
) -> Result<(PackIndex, Option<[u8; 32]>)> {
    let bad = |reason: String| RepoError::CorruptObject {
        id: pack_id,
        kind: "pack index",
        location: key.to_string(),
        reason,
    };
    let sealed = pack::idx_version(bytes) == Some(pack::IDX_VERSION_SEALED);
    let (idx, salt) = match (codec.keys(), sealed) {
        (Some(keys), true) => {
            let plain = keys
                .open(
                    Purpose::PackIndex,
                    &sealed_index_aad(&pack_id),
                    &bytes[12..],
                    &format!("pack index {key}"),
                )
                .map_err(|e| bad(e.to_string()))?;
            if plain.len() < 32 {
                return Err(bad("sealed index holds no salt".into()));
            }
            let mut salt = [0u8; 32];
            salt.copy_from_slice(&plain[..32]);
            let idx = PackIndex::decode(&plain[32..])
                .map_err(|e| RepoError::format(format!("pack index {key}"), e))?;
            (idx, Some(salt))
        }
        (Some(_), false) => {
            return Err(bad(
                "a plaintext index in an encrypted repository (refused: anyone with write access to the store could have put it there)".into(),
            ))
        }
        (None, true) => {
            return Err(bad(
                "a sealed index in a repository that is not encrypted".into(),
            ))
        }
        (None, false) => (
            PackIndex::decode(bytes)
                .map_err(|e| RepoError::format(format!("pack index {key}"), e))?,
            None,
        ),
    };
    if idx.pack != pack_id {
        return Err(RepoError::CorruptObject {
            id: pack_id,
            kind: "pack index",
            location: key.to_string(),
            reason: format!("index names pack {}", idx.pack),
        });
    }
    Ok((idx, salt))
}

/// Checks a pack and its index that a client uploaded (a server does this
/// before the index is stored, so that the pack becomes visible; FORMAT.md
/// §9: a pack without its index is invisible to readers). `index` is the
/// uploaded index's bytes, `pack_id` the name it is to be stored under.
/// Returns why they are refused, or `None`: the index decodes and names
/// the pack, every entry of the pack reads back, decodes and hashes to its
/// id, the pack's name is its checksum, and the index lists exactly the
/// pack's entries. An encrypted repository's packs are ciphertext the
/// server cannot open: nothing is checked (its clients check every entry
/// they read).
pub fn verify_uploaded_pack(
    storage: &dyn Storage,
    config: &RepoConfig,
    pack_id: ObjectId,
    index: &[u8],
) -> Result<Option<String>> {
    if config.format.is_encrypted() {
        return Ok(None);
    }
    let codec = ObjectCodec::new(config);
    let key = format!("packs/{pack_id}.idx");
    let Some(size) = storage.size(&pack_key(&pack_id))? else {
        return Ok(Some(format!(
            "pack {pack_id} is not stored: upload the pack before its index"
        )));
    };
    if index.len() as u64 > max_index_len(size) {
        return Ok(Some(format!(
            "the index is {} bytes, more than a pack of {size} bytes can need",
            index.len()
        )));
    }
    let idx = match decode_pack_index(&codec, index, &key, pack_id) {
        Ok((idx, _)) => idx,
        Err(e) => return Ok(Some(e.to_string())),
    };
    let scan = scan_pack(storage, &pack_id, config.chunking.max_size, &codec, None)?;
    if let Some(f) = scan.fatal {
        return Ok(Some(format!("pack {pack_id}: {f}")));
    }
    if !scan.checksum_ok {
        return Ok(Some(format!(
            "pack {pack_id}: its headers do not hash to its name"
        )));
    }
    if let Some(bad) = scan.entries.iter().find(|e| e.damage.is_some()) {
        return Ok(Some(format!(
            "pack {pack_id}: object {} at offset {}: {}",
            bad.header.id,
            bad.offset,
            bad.damage.as_deref().unwrap_or_default()
        )));
    }
    let mut scanned: Vec<(ObjectId, u64, ObjectKind, u32, u32)> = scan
        .entries
        .iter()
        .map(|e| {
            (
                e.header.id,
                e.offset,
                e.header.kind,
                e.header.raw_len,
                e.header.stored_len,
            )
        })
        .collect();
    let mut indexed: Vec<(ObjectId, u64, ObjectKind, u32, u32)> = idx
        .entries
        .iter()
        .map(|e| (e.id, e.offset, e.kind, e.raw_len, e.stored_len))
        .collect();
    scanned.sort_by_key(|e| e.1);
    indexed.sort_by_key(|e| e.1);
    if scanned != indexed {
        return Ok(Some(format!(
            "pack {pack_id}: the index lists {} entries that do not match the pack's {}",
            indexed.len(),
            scanned.len()
        )));
    }
    Ok(None)
}

/// The packs that have an index in the store (`packs/<id>.idx`), as listed
/// now: only those hold objects a reader can see.
pub fn indexed_packs(storage: &dyn Storage) -> Result<Vec<ObjectId>> {
    Ok(pack_ids(&storage.list("packs/")?, ".idx").collect())
}

/// The pack ids that `keys` (a listing of `packs/`) name with `ext`
/// (`.idx` for indexes, `.pack` for pack files).
pub fn pack_ids<'a>(keys: &'a [String], ext: &'a str) -> impl Iterator<Item = ObjectId> + 'a {
    keys.iter().filter_map(move |k| {
        k.strip_prefix("packs/")
            .and_then(|k| k.strip_suffix(ext))
            .and_then(|h| h.parse().ok())
    })
}

pub fn idx_key(id: &ObjectId) -> String {
    format!("packs/{id}.idx")
}

impl Odb {
    /// Loads every pack index; fails on the first damaged one.
    pub fn load(
        storage: Arc<dyn Storage>,
        tmp_dir: PathBuf,
        cfg: &RepoConfig,
        codec: ObjectCodec,
    ) -> Result<Odb> {
        let (odb, mut problems) = Odb::load_lenient(storage, tmp_dir, cfg, codec)?;
        match problems.pop() {
            Some((_, e)) => Err(e),
            None => Ok(odb),
        }
    }

    /// Loads every pack index that can be read; returns the others as
    /// problems (key, error) instead of failing. Used by `fsck`.
    pub fn load_lenient(
        storage: Arc<dyn Storage>,
        tmp_dir: PathBuf,
        cfg: &RepoConfig,
        codec: ObjectCodec,
    ) -> Result<(Odb, Vec<(String, RepoError)>)> {
        let damaged = list_damaged(storage.as_ref())?
            .into_iter()
            .map(|(_, id, pack)| (id, pack))
            .collect();
        let remote = storage.is_remote();
        let odb = Odb {
            storage,
            damaged,
            fresh: Mutex::new(Freshness {
                after: Some(FRESHEN_AFTER),
                ..Default::default()
            }),
            tmp_dir,
            codec,
            max_chunk: cfg.chunking.max_size,
            pack_target: if remote {
                REMOTE_PACK_TARGET_SIZE
            } else {
                PACK_TARGET_SIZE
            },
            split_metadata: cfg.format.has_feature("metadata-packs"),
            state: RwLock::new(State::default()),
            pack_keys: RwLock::new(HashMap::new()),
        };
        let mut problems = Vec::new();
        let mut idxs = Vec::new();
        // Sizes from the listing (an object store's listing carries them):
        // each index is bounded by what its pack can need before it is read.
        let listed = odb.storage.list_meta("packs/")?;
        let keys: Vec<String> = listed.iter().map(|l| l.key.clone()).collect();
        let sizes: HashMap<&str, u64> = listed.iter().map(|l| (l.key.as_str(), l.size)).collect();
        for pack_id in pack_ids(&keys, ".idx") {
            let key = idx_key(&pack_id);
            let max = index_limit(sizes.get(pack_key(&pack_id).as_str()).copied());
            let known = sizes.get(key.as_str()).copied();
            match read_pack_index(odb.storage.as_ref(), &odb.codec, &key, pack_id, max, known) {
                Ok((idx, salt)) => {
                    odb.remember_salt(&pack_id, salt.as_ref());
                    idxs.push(idx)
                }
                Err(e) => problems.push((key, e)),
            }
        }
        odb.register(idxs);
        Ok((odb, problems))
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Ids of all packs that have an index.
    pub fn packs(&self) -> Vec<ObjectId> {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .packs
            .clone()
    }

    /// Calls `f` with every object id known, its pack and its location, in
    /// id order, without copying the table (`f` must not call back into
    /// this odb: the table is read-locked meanwhile).
    pub fn for_each_object(&self, mut f: impl FnMut(&ObjectId, &ObjectId, &Location)) {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        for (id, l) in &st.table {
            f(id, &st.packs[l.pack as usize], l);
        }
    }

    /// Every object id known, with its location.
    pub fn all_objects(&self) -> Vec<(ObjectId, ObjectId, Location)> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        st.table
            .iter()
            .map(|(id, l)| (*id, st.packs[l.pack as usize], *l))
            .collect()
    }

    /// Whether this repository's packs are sealed (it is encrypted).
    pub fn sealed(&self) -> bool {
        self.codec.keys().is_some()
    }

    fn remember_salt(&self, pack: &ObjectId, salt: Option<&[u8; 32]>) {
        if let (Some(keys), Some(salt)) = (self.codec.keys(), salt) {
            self.pack_keys
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(*pack, Arc::new(keys.pack_key(salt)));
        }
    }

    /// The key of sealed pack `pack` (`None` in a repository that is not
    /// encrypted): from its index's salt, or else read from its header.
    pub fn pack_key_of(&self, pack: &ObjectId) -> Result<Option<Arc<PackKey>>> {
        let Some(keys) = self.codec.keys() else {
            return Ok(None);
        };
        if let Some(k) = self
            .pack_keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(pack)
        {
            return Ok(Some(k.clone()));
        }
        let key = pack_key(pack);
        let mut head = [0u8; pack::SEALED_PACK_HEADER_LEN];
        self.storage.read_at(&key, 0, &mut head)?;
        match pack::decode_any_pack_header(&head) {
            Ok(PackHeader::Sealed { salt }) => {
                let k = Arc::new(keys.pack_key(&salt));
                self.pack_keys
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(*pack, k.clone());
                Ok(Some(k))
            }
            Ok(PackHeader::Plain) => Err(RepoError::CorruptObject {
                id: *pack,
                kind: "pack",
                location: key,
                reason: "a plaintext pack in an encrypted repository".into(),
            }),
            Err(e) => Err(RepoError::format(format!("pack {key}"), e)),
        }
    }

    fn register(&self, idxs: Vec<PackIndex>) {
        if idxs.is_empty() {
            return;
        }
        let damaged = &self.damaged;
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add(idxs, damaged);
    }

    /// How old a pack must be before a deduplication hit re-dates it
    /// (`None`: never). Default [`FRESHEN_AFTER`].
    pub fn set_freshen_after(&self, after: Option<Duration>) {
        self.fresh.lock().unwrap_or_else(|p| p.into_inner()).after = after;
    }

    /// [`Odb::contains`] for a writer about to reuse the object instead of
    /// storing it: the pack holding it is re-dated if it is old (see
    /// [`FRESHEN_AFTER`]) when the session finishes.
    pub fn contains_for_reuse(&self, id: &ObjectId, kind: ObjectKind) -> bool {
        match self.locate(id) {
            // Only a damaged copy: store the object again.
            Some((_, l)) if l.damaged => false,
            // Stored as another kind (plain ids do not name it): not this
            // object; the writer refuses it (`PackSession::check_kind`).
            Some((_, l)) if l.kind != kind => false,
            Some((pack, l)) => {
                self.note_reuse(l.pack, pack);
                true
            }
            None => false,
        }
    }

    /// Records that an object of `pack` (table slot `slot`) is being reused,
    /// writing its freshen marker if the pack is old (see [`FRESHEN_AFTER`]).
    fn note_reuse(&self, slot: u32, pack: ObjectId) {
        let mut f = self.fresh.lock().unwrap_or_else(|p| p.into_inner());
        let Some(after) = f.after else {
            return;
        };
        if f.decided.contains_key(&slot) {
            return;
        }
        if f.markers.is_none() {
            // Unreadable: as if there were none (a marker too many is harmless).
            let newest = list_freshen(self.storage.as_ref(), false)
                .map(|(_, n)| n)
                .unwrap_or_default();
            f.markers = Some(newest);
        }
        let marked = f.markers.as_ref().and_then(|m| m.get(&pack)).copied();
        let stored = self.storage.modified(&pack_key(&pack)).ok().flatten();
        let now = SystemTime::now();
        let stale = match stored.max(marked) {
            Some(t) => now.duration_since(t).is_ok_and(|age| age >= after),
            None => true,
        };
        f.decided.insert(slot, stale);
        if stale {
            // Written now, before the object is reused, not when the session
            // ends: a gc running meanwhile must already see it. A marker that
            // cannot be written is retried when the session finishes, which
            // then fails rather than leave reused objects unprotected.
            if self.storage.put(&freshen_key(&pack, now), b"").is_err() {
                f.to_mark.push(pack);
            } else {
                crate::failpoint::hit("write:freshen-marker");
            }
        }
    }

    /// Writes the freshen markers that could not be written when their
    /// packs were found old (see `note_reuse`).
    pub fn write_freshen_markers(&self) -> Result<()> {
        let packs =
            std::mem::take(&mut self.fresh.lock().unwrap_or_else(|p| p.into_inner()).to_mark);
        let now = SystemTime::now();
        for pack in packs {
            self.storage.put(&freshen_key(&pack, now), b"")?;
            crate::failpoint::hit("write:freshen-marker");
        }
        Ok(())
    }

    /// Whether a copy of `id` not known to be damaged is stored.
    pub fn has_sound(&self, id: &ObjectId) -> bool {
        self.locate(id).is_some_and(|(_, l)| !l.damaged)
    }

    /// Whether `c` is stored, not known damaged, as a chunk of its length
    /// (what a manifest or the add journal claims of it).
    pub fn holds_chunk(&self, c: &mediagit_format::ManifestChunk) -> bool {
        self.locate(&c.id)
            .is_some_and(|(_, l)| !l.damaged && l.kind == ObjectKind::Chunk && l.raw_len == c.len)
    }

    /// The kind of the sound copy stored under `id`, if it is not `kind`:
    /// plain ids do not name the kind, so the same bytes stored as a chunk
    /// occupy a manifest's or a tree's id, and this table holds one object
    /// an id. Writers and transfers refuse such an object.
    pub fn stored_as_other_kind(&self, id: &ObjectId, kind: ObjectKind) -> Option<ObjectKind> {
        self.locate(id)
            .filter(|(_, l)| l.kind != kind && !l.damaged)
            .map(|(_, l)| l.kind)
    }

    pub fn contains(&self, id: &ObjectId) -> bool {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .is_some()
    }

    /// The index memo of `commit` (whose root tree is `tree`): the commit
    /// and the pack holding it, if it is stored.
    pub fn commit_memo(&self, commit: ObjectId, tree: ObjectId) -> Option<CommitMemo> {
        self.locate(&commit)
            .map(|(pack, _)| CommitMemo { commit, tree, pack })
    }

    pub fn locate(&self, id: &ObjectId) -> Option<(ObjectId, Location)> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        st.get(id).map(|l| (st.packs[l.pack as usize], *l))
    }

    /// Ids of objects of `kinds` whose hex form starts with `prefix`.
    pub fn find_prefix(&self, prefix: &str, kinds: &[ObjectKind]) -> Vec<(ObjectId, ObjectKind)> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = st
            .table
            .iter()
            .filter(|(id, l)| kinds.contains(&l.kind) && id.has_hex_prefix(prefix))
            .map(|(id, l)| (*id, l.kind))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// The size at which a pack being written is closed (larger on an
    /// object store, where each request costs more).
    pub fn pack_target_size(&self) -> u64 {
        self.pack_target
    }

    pub fn pack_count(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .packs
            .len()
    }

    /// Reads an object, checks its kind, decodes its payload and verifies that
    /// it hashes to `id`. Never returns bytes that fail that check.
    pub fn read_raw(&self, id: &ObjectId, kind: ObjectKind) -> Result<Vec<u8>> {
        let (mut buf, start) = self.read_object(id, kind)?;
        if start > 0 {
            buf.drain(..start);
        }
        Ok(buf)
    }

    /// Reads and verifies an object; its bytes are `buf[start..]` (raw
    /// payloads are returned in the read buffer, without another copy).
    fn read_object(&self, id: &ObjectId, kind: ObjectKind) -> Result<(Vec<u8>, usize)> {
        let (pack_id, loc) = self.locate(id).ok_or(RepoError::MissingObject {
            id: *id,
            kind: kind.name(),
            context: None,
        })?;
        if loc.kind != kind {
            return Err(RepoError::WrongKind {
                id: *id,
                expected: kind.name(),
                actual: loc.kind.name(),
            });
        }
        let key = pack_key(&pack_id);
        self.check_bounds(id, kind, &key, &loc)?;
        let pk = self.pack_key_of(&pack_id)?;
        let mut buf = vec![0u8; loc.entry_len(pk.is_some()) as usize];
        self.storage
            .read_at(&key, loc.offset, &mut buf)
            .map_err(|e| self.corrupt(id, kind, &key, &loc, read_failure(&e)))?;
        let (data, start) = self.verify_entry(id, kind, &key, pk.as_deref(), &loc, &mut buf)?;
        match data {
            Some(decoded) => Ok((decoded, 0)),
            None => {
                // A sealed entry's payload is followed by its tag.
                buf.truncate(start + loc.stored_len as usize);
                Ok((buf, start))
            }
        }
    }

    /// Refuses, before anything is allocated for it, an object whose index
    /// entry claims more bytes than any object of its kind can have
    /// (`mediagit_format::limits`): a forged pack must not make a reader
    /// allocate gigabytes.
    fn check_bounds(
        &self,
        id: &ObjectId,
        kind: ObjectKind,
        key: &str,
        loc: &Location,
    ) -> Result<()> {
        let max_raw = limits::max_object_len(kind, self.max_chunk);
        if loc.raw_len as u64 > max_raw || loc.stored_len as u64 > limits::max_stored_len(max_raw) {
            return Err(self.corrupt(
                id,
                kind,
                key,
                loc,
                format!(
                    "claims {} bytes ({} stored); a {} is at most {max_raw} bytes",
                    loc.raw_len,
                    loc.stored_len,
                    kind.name()
                ),
            ));
        }
        Ok(())
    }

    fn corrupt(
        &self,
        id: &ObjectId,
        kind: ObjectKind,
        key: &str,
        loc: &Location,
        reason: String,
    ) -> RepoError {
        RepoError::CorruptObject {
            id: *id,
            kind: kind.name(),
            location: format!(
                "{} at offset {} in {}",
                key,
                loc.offset,
                self.storage.describe()
            ),
            reason,
        }
    }

    /// Checks one stored entry (`entry` = header + stored payload, sealed
    /// with `pk` in an encrypted repository: opened in place) against the
    /// index and its id. Returns the decoded bytes for compressed entries,
    /// or `None` and the offset of the raw payload in `entry`.
    fn verify_entry(
        &self,
        id: &ObjectId,
        kind: ObjectKind,
        key: &str,
        pk: Option<&PackKey>,
        loc: &Location,
        entry: &mut [u8],
    ) -> Result<(Option<Vec<u8>>, usize)> {
        // Before decoding allocates what the entry claims.
        self.check_bounds(id, kind, key, loc)?;
        let corrupt = |reason: String| self.corrupt(id, kind, key, loc, reason);
        let payload_at = pack::payload_start(pk.is_some());
        if let Some(pk) = pk {
            open_entry(pk, loc.offset, entry, loc.stored_len)
                .map_err(|e| corrupt(e.to_string()))?;
        }
        let entry = &*entry;
        let h = EntryHeader::decode(entry).map_err(|e| corrupt(e.to_string()))?;
        if h.id != *id
            || h.kind != kind
            || h.stored_len != loc.stored_len
            || h.raw_len != loc.raw_len
            || h.codec != loc.codec
        {
            return Err(corrupt("entry header does not match the pack index".into()));
        }
        let payload = &entry[payload_at..payload_at + h.stored_len as usize];
        let (decoded, start) = match h.codec {
            Codec::Raw => {
                if h.raw_len != h.stored_len {
                    return Err(corrupt(format!(
                        "raw payload is {} bytes, header says {}",
                        h.stored_len, h.raw_len
                    )));
                }
                (None, payload_at)
            }
            codec => (
                Some(decompress(codec, payload, h.raw_len as usize).map_err(|e| {
                    corrupt(format!("{} payload does not decode: {e}", codec.name()))
                })?),
                0,
            ),
        };
        let bytes = match &decoded {
            Some(d) => &d[..],
            None => &entry[start..start + h.stored_len as usize],
        };
        if let Some(actual) = self.codec.verify(kind, id, bytes) {
            return Err(corrupt(format!("content hashes to {actual}")));
        }
        Ok((decoded, start))
    }

    pub fn read_manifest(&self, id: &ObjectId) -> Result<Manifest> {
        let b = self.read_raw(id, ObjectKind::Manifest)?;
        Manifest::decode(&b).map_err(|e| RepoError::format(format!("manifest {id}"), e))
    }
    pub fn read_tree(&self, id: &ObjectId) -> Result<Tree> {
        let b = self.read_raw(id, ObjectKind::Tree)?;
        Tree::decode(&b).map_err(|e| RepoError::format(format!("tree {id}"), e))
    }
    pub fn read_commit(&self, id: &ObjectId) -> Result<Commit> {
        let b = self.read_raw(id, ObjectKind::Commit)?;
        Commit::decode(&b).map_err(|e| RepoError::format(format!("commit {id}"), e))
    }
    pub fn read_tag(&self, id: &ObjectId) -> Result<Tag> {
        let b = self.read_raw(id, ObjectKind::Tag)?;
        Tag::decode(&b).map_err(|e| RepoError::format(format!("tag {id}"), e))
    }

    /// Streams a file's content (by manifest id) into `out`, verifying every chunk.
    ///
    /// Chunks stored back to back in one pack (the usual case: `add` writes
    /// a file's new chunks in order) are fetched with one read of up to
    /// [`READ_BATCH`] bytes: one ranged GET instead of one per chunk on an
    /// object store, one `pread` on disk.
    pub fn write_file_to(
        &self,
        manifest: &ObjectId,
        out: &mut dyn Write,
        on_bytes: &dyn Fn(u64),
    ) -> Result<Manifest> {
        let m = self.read_manifest(manifest)?;
        self.write_chunks_to(manifest, &m, out, on_bytes)?;
        Ok(m)
    }

    /// Reads many small objects of one kind with as few reads as possible:
    /// entries close together in a pack (gaps up to 64 KiB) come in one read
    /// of up to [`READ_BATCH`] bytes. Returns the ones that read and verify;
    /// the caller reads any other one alone, which reports its error.
    pub fn read_many(&self, ids: &[ObjectId], kind: ObjectKind) -> IdMap<Vec<u8>> {
        let mut locs: Vec<(ObjectId, ObjectId, Location)> = ids
            .iter()
            .filter_map(|id| self.locate(id).map(|(p, l)| (*id, p, l)))
            .filter(|(_, _, l)| {
                l.kind == kind
                    && (l.stored_len as u64) < READ_BATCH
                    && (l.raw_len as u64) <= MANY_MAX_OBJECT
                    && l.offset.checked_add(READ_BATCH).is_some()
            })
            .collect();
        // What one call decodes stays bounded too: the rest is left for
        // the caller's single reads.
        let mut budget = MANY_MAX_TOTAL;
        locs.retain(|(_, _, l)| {
            let fits = l.raw_len as u64 <= budget;
            budget = budget.saturating_sub(l.raw_len as u64);
            fits
        });
        locs.sort_by_key(|a| (a.1, a.2.offset));
        locs.dedup_by(|a, b| a.0 == b.0);
        let mut out = IdMap::default();
        let mut i = 0;
        let mut buf = Vec::new();
        let sealed = self.sealed();
        while i < locs.len() {
            let (_, pack, first) = locs[i];
            let (j, end) = run_end(&locs, i, sealed);
            let key = pack_key(&pack);
            let Ok(pk) = self.pack_key_of(&pack) else {
                i = j;
                continue;
            };
            buf.resize(end.saturating_sub(first.offset) as usize, 0);
            if self.storage.read_at(&key, first.offset, &mut buf).is_ok() {
                for (id, _, l) in &locs[i..j] {
                    let at = (l.offset - first.offset) as usize;
                    let entry = &mut buf[at..at + l.entry_len(sealed) as usize];
                    if let Ok((decoded, start)) =
                        self.verify_entry(id, kind, &key, pk.as_deref(), l, entry)
                    {
                        out.insert(
                            *id,
                            decoded.unwrap_or_else(|| {
                                entry[start..start + l.stored_len as usize].to_vec()
                            }),
                        );
                    }
                }
            }
            i = j;
        }
        out
    }

    /// Reads the objects `want` with as few reads as possible (entries of
    /// one pack in offset order, gaps up to 64 KiB, at most [`READ_BATCH`]
    /// bytes a read; an entry larger than that is read alone), verifies
    /// each (bounds, header against the index, decoding, hash) and hands
    /// its stored payload (opened if sealed, still compressed) to `sink`:
    /// what a copy into another repository needs. `want` is sorted here.
    /// Returns the number of reads made. The first object that does not
    /// read or verify stops the copy with its error.
    pub fn read_stored_many(
        &self,
        want: &mut [(ObjectId, ObjectId, Location)],
        sink: &mut StoredSink<'_>,
    ) -> Result<usize> {
        want.sort_by_key(|(_, pack, l)| (*pack, l.offset));
        let sealed = self.sealed();
        // The runs to read, each checked before anything is read.
        let mut runs = Vec::new();
        let mut i = 0;
        while i < want.len() {
            let (id0, pack, first) = want[i];
            self.check_bounds(&id0, first.kind, &pack_key(&pack), &first)?;
            let (j, end) = run_end(want, i, sealed);
            runs.push((i, j, end));
            i = j;
        }
        let want: &[(ObjectId, ObjectId, Location)] = want;
        // One thread reads the next run (a ranged GET from a server or a
        // bucket) while this one verifies and hands on the last: the
        // network and the CPU work at once. At most three runs' buffers
        // exist (one read, one waiting, one verified), recycled.
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>>>(1);
            let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let runs_r = &runs;
            scope.spawn(move || {
                for &(i, _, end) in runs_r {
                    let (id0, pack, first) = want[i];
                    let key = pack_key(&pack);
                    let mut buf = back_rx.try_recv().unwrap_or_default();
                    buf.resize(end.saturating_sub(first.offset) as usize, 0);
                    let r = self
                        .storage
                        .read_at(&key, first.offset, &mut buf)
                        .map(|()| buf)
                        .map_err(|e| {
                            self.corrupt(&id0, first.kind, &key, &first, read_failure(&e))
                        });
                    let failed = r.is_err();
                    // The receiver is gone when the copy stopped.
                    if tx.send(r).is_err() || failed {
                        return;
                    }
                }
            });
            let mut reads = 0;
            for &(i, j, _) in &runs {
                let mut buf = rx.recv().map_err(|_| {
                    RepoError::Invalid("the reading thread of a copy stopped".into())
                })??;
                reads += 1;
                let (_, pack, first) = want[i];
                let key = pack_key(&pack);
                let pk = self.pack_key_of(&pack)?;
                for (id, _, l) in &want[i..j] {
                    let at = (l.offset - first.offset) as usize;
                    let entry = &mut buf[at..at + l.entry_len(sealed) as usize];
                    self.verify_entry(id, l.kind, &key, pk.as_deref(), l, entry)?;
                    let start = pack::payload_start(sealed);
                    sink(id, l, &entry[start..start + l.stored_len as usize])?;
                }
                let _ = back_tx.send(buf);
            }
            Ok(reads)
        })
    }

    /// Streams the chunks of manifest `m` (named `manifest`) into `out`.
    pub fn write_chunks_to(
        &self,
        manifest: &ObjectId,
        m: &Manifest,
        out: &mut dyn Write,
        on_bytes: &dyn Fn(u64),
    ) -> Result<()> {
        let mut i = 0;
        let mut buf = Vec::new();
        while i < m.chunks.len() {
            // The run of chunks that follow each other in one pack.
            let first = &m.chunks[i];
            let (pack, loc0) = self.locate(&first.id).ok_or(RepoError::MissingObject {
                id: first.id,
                kind: "chunk",
                context: Some(format!("manifest {manifest}")),
            })?;
            let mut locs = vec![loc0];
            let sealed = self.sealed();
            // A saturated end (hostile index) is never batched.
            let mut end = loc0.end(sealed);
            while i + locs.len() < m.chunks.len() && end < u64::MAX {
                let next = &m.chunks[i + locs.len()];
                match self.locate(&next.id) {
                    Some((p, l))
                        if p == pack
                            && l.offset == end
                            && l.kind == ObjectKind::Chunk
                            && l.end(sealed) - loc0.offset <= READ_BATCH =>
                    {
                        end = l.end(sealed);
                        locs.push(l);
                    }
                    _ => break,
                }
            }
            if locs.len() == 1 || loc0.kind != ObjectKind::Chunk {
                let (b, start) = self.read_object(&first.id, ObjectKind::Chunk)?;
                emit_chunk(manifest, first, &b[start..], out, on_bytes)?;
                i += 1;
                continue;
            }
            let key = pack_key(&pack);
            let pk = self.pack_key_of(&pack)?;
            buf.resize((end - loc0.offset) as usize, 0);
            self.storage
                .read_at(&key, loc0.offset, &mut buf)
                .map_err(|e| {
                    self.corrupt(&first.id, ObjectKind::Chunk, &key, &loc0, read_failure(&e))
                })?;
            for (k, loc) in locs.iter().enumerate() {
                let c = &m.chunks[i + k];
                let at = (loc.offset - loc0.offset) as usize;
                let entry = &mut buf[at..at + loc.entry_len(sealed) as usize];
                let (decoded, start) =
                    self.verify_entry(&c.id, ObjectKind::Chunk, &key, pk.as_deref(), loc, entry)?;
                let data = match &decoded {
                    Some(d) => &d[..],
                    None => &entry[start..start + loc.stored_len as usize],
                };
                emit_chunk(manifest, c, data, out, on_bytes)?;
            }
            i += locs.len();
        }
        Ok(())
    }

    /// Starts writing new objects. Nothing is visible until [`PackSession::finish`].
    pub fn session(&self) -> PackSession<'_> {
        self.session_ignoring(&[])
    }

    /// A session that treats objects stored in `packs` as absent, so they are
    /// written again (used to rewrite a damaged pack's sound objects).
    pub fn session_ignoring(&self, packs: &[ObjectId]) -> PackSession<'_> {
        PackSession {
            odb: self,
            current: [None, None],
            finished: Vec::new(),
            pending: IdSet::default(),
            ignore_packs: packs.iter().copied().collect(),
            freshen: true,
            stored: Vec::new(),
            stored_bytes: 0,
        }
    }

    /// The most bytes an object of `kind` may have here (chunks: this
    /// repository's largest chunk): what every reader checks.
    pub fn max_object_len(&self, kind: ObjectKind) -> u64 {
        limits::max_object_len(kind, self.max_chunk)
    }

    /// How this repository names and encodes objects.
    pub fn codec(&self) -> ObjectCodec {
        self.codec.clone()
    }
}

struct OpenPack {
    file: BufWriter<std::fs::File>,
    path: tempfile::TempPath,
    hasher: Hasher,
    offset: u64,
    entries: Vec<IdxEntry>,
    /// An encrypted repository's pack: its salt and key.
    sealing: Option<([u8; 32], PackKey)>,
    /// Where an entry's payload is sealed (reused from entry to entry).
    seal_buf: Vec<u8>,
}

/// Writes objects into new packs. Dropping a session without `finish`
/// discards everything it wrote.
pub struct PackSession<'a> {
    odb: &'a Odb,
    /// The pack being written for chunks (slot 0) and, with
    /// `metadata-packs`, the one for other objects (slot 1).
    current: [Option<OpenPack>; 2],
    finished: Vec<(tempfile::TempPath, PackIndex, Option<[u8; 32]>)>,
    pending: IdSet,
    ignore_packs: HashSet<ObjectId>,
    /// Re-date old packs that objects are reused from (see [`FRESHEN_AFTER`]).
    freshen: bool,
    /// Packs stored by checkpoints so far, and their bytes.
    stored: Vec<ObjectId>,
    stored_bytes: u64,
}

impl PackSession<'_> {
    /// Whether the object exists already or was written in this session.
    pub fn has(&self, id: &ObjectId) -> bool {
        if self.pending.contains(id) {
            return true;
        }
        // A damaged copy, or one in a pack being rewritten, is not reused.
        let Some((pack, l)) = self.odb.locate(id) else {
            return false;
        };
        if l.damaged || self.ignore_packs.contains(&pack) {
            return false;
        }
        if self.freshen {
            self.odb.note_reuse(l.pack, pack);
        }
        true
    }

    /// Objects found in existing packs are reused without re-dating them
    /// (for `gc` and `fsck`, which rewrite packs themselves).
    pub fn without_freshening(mut self) -> Self {
        self.freshen = false;
        self
    }

    /// Refuses to take an object stored under the same id as another
    /// kind for this one: in a plain repository ids do not name the kind,
    /// so a chunk, a manifest and a tree of the same bytes share one id,
    /// and the object table holds one of them. Taking the other as
    /// present would leave a file or a commit that cannot be read.
    fn check_kind(&self, id: &ObjectId, kind: ObjectKind) -> Result<()> {
        match self.odb.stored_as_other_kind(id, kind) {
            Some(other) if !self.pending.contains(id) => Err(RepoError::Invalid(format!(
                "object {id} is stored in this repository as a {}, and is needed as a {}: the same bytes were stored as another kind (planted?); nothing was written for it (`mediagit fsck` checks the repository)",
                other.name(),
                kind.name()
            ))),
            _ => Ok(()),
        }
    }

    /// Stores an encoded object (manifest, tree, commit, tag), compressing it
    /// if that pays. Returns its id. Objects already present are not written again.
    pub fn put_object(&mut self, kind: ObjectKind, bytes: &[u8]) -> Result<ObjectId> {
        let codec = &self.odb.codec;
        let id = codec.id(kind, bytes);
        self.check_kind(&id, kind)?;
        if self.has(&id) {
            return Ok(id);
        }
        let e = codec.encode(kind, id, bytes, CompressionHint::Try)?;
        self.put_encoded(kind, id, e.codec, e.raw_len, &e.payload)?;
        Ok(id)
    }

    /// Copies the object `id` stored at `loc` in `pack` into this session
    /// as it is encoded (opened and sealed again in an encrypted
    /// repository), without decoding it. The caller has verified it.
    pub fn copy_stored(&mut self, pack: &ObjectId, id: ObjectId, loc: &Location) -> Result<()> {
        let pk = self.odb.pack_key_of(pack)?;
        let payload = read_stored(
            self.odb.storage.as_ref(),
            pk.as_deref(),
            pack,
            loc.offset,
            loc.stored_len,
        )?;
        self.put_encoded(loc.kind, id, loc.codec, loc.raw_len as usize, &payload)
    }

    /// Appends an already encoded payload. The caller guarantees `id` is the
    /// SHA-256 of the decoded bytes.
    pub fn put_encoded(
        &mut self,
        kind: ObjectKind,
        id: ObjectId,
        codec: Codec,
        raw_len: usize,
        payload: &[u8],
    ) -> Result<()> {
        self.check_kind(&id, kind)?;
        if self.has(&id) {
            return Ok(());
        }
        let too_big = |n: usize| {
            RepoError::Invalid(format!(
                "object {id} is {n} bytes; objects are limited to 4 GiB"
            ))
        };
        let raw_len = u32::try_from(raw_len).map_err(|_| too_big(raw_len))?;
        let stored_len = u32::try_from(payload.len()).map_err(|_| too_big(payload.len()))?;
        let slot = usize::from(self.odb.split_metadata && kind != ObjectKind::Chunk);
        if self.current[slot]
            .as_ref()
            .map(|p| p.offset >= self.odb.pack_target)
            .unwrap_or(false)
        {
            self.close_slot(slot)?;
        }
        if self.current[slot].is_none() {
            self.current[slot] = Some(self.open_pack()?);
        }
        let p = self.current[slot].as_mut().expect("opened above");
        let header = EntryHeader {
            kind,
            codec,
            raw_len,
            stored_len,
            id,
        }
        .encode();
        let written: Result<u64> = match &p.sealing {
            None => p
                .file
                .write_all(&header)
                .and_then(|_| p.file.write_all(payload))
                .map_err(|e| RepoError::io("write pack", &*p.path, e))
                .map(|()| {
                    // The pack's name covers the header and every entry
                    // header (which carries each object's id): payloads are
                    // covered through those ids.
                    p.hasher.update(&header);
                    (header.len() + payload.len()) as u64
                }),
            Some((_, key)) => {
                // Header and payload sealed apart (nonces from the entry's
                // offset), the payload bound to the header: the name hashes
                // the sealed header, which authenticates the plaintext one.
                let seal_err = |e: mediagit_crypto::CryptoError| RepoError::Invalid(e.to_string());
                let mut h = header.to_vec();
                key.seal(EntryPart::Header, p.offset, b"", &mut h)
                    .map_err(seal_err)?;
                let body = &mut p.seal_buf;
                key.seal_into(EntryPart::Payload, p.offset, &header, payload, body)
                    .map_err(seal_err)?;
                p.file
                    .write_all(&h)
                    .and_then(|_| p.file.write_all(body))
                    .map_err(|e| RepoError::io("write pack", &*p.path, e))
                    .map(|()| {
                        p.hasher.update(&h);
                        (h.len() + body.len()) as u64
                    })
            }
        };
        let written = match written {
            Ok(n) => n,
            Err(e) => {
                // Part of this entry may be in the file, sealed under this
                // offset's nonces: the pack is abandoned (its temporary
                // file deleted), never written on at the same offset.
                self.current[slot] = None;
                return Err(e);
            }
        };
        let p = self.current[slot].as_mut().expect("opened above");
        p.entries.push(IdxEntry {
            id,
            offset: p.offset,
            kind,
            codec,
            raw_len,
            stored_len,
        });
        p.offset += written;
        self.pending.insert(id);
        crate::failpoint::hit("write:pack-append");
        Ok(())
    }

    fn open_pack(&self) -> Result<OpenPack> {
        std::fs::create_dir_all(&self.odb.tmp_dir)
            .map_err(|e| RepoError::io("create directory", &self.odb.tmp_dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix("pack-")
            .tempfile_in(&self.odb.tmp_dir)
            .map_err(|e| RepoError::io("create temp pack in", &self.odb.tmp_dir, e))?;
        let (file, path) = tmp.into_parts();
        // Small: chunk payloads (hundreds of KiB) bypass the buffer and go
        // straight to the kernel, one copy fewer than through a large buffer.
        let mut file = BufWriter::with_capacity(64 << 10, file);
        // A sealed pack gets a fresh random salt: its own key, so nonces
        // made of offsets never repeat under one key (FORMAT.md §13.3).
        let sealing = match self.odb.codec.keys() {
            None => None,
            Some(keys) => {
                let mut salt = [0u8; 32];
                mediagit_crypto::random(&mut salt)
                    .map_err(|e| RepoError::Invalid(e.to_string()))?;
                Some((salt, keys.pack_key(&salt)))
            }
        };
        let header = match &sealing {
            None => PackHeader::Plain,
            Some((salt, _)) => PackHeader::Sealed { salt: *salt },
        }
        .encode();
        file.write_all(&header)
            .map_err(|e| RepoError::io("write pack", &*path, e))?;
        let mut hasher = Hasher::new();
        hasher.update(&header);
        Ok(OpenPack {
            file,
            path,
            hasher,
            offset: header.len() as u64,
            entries: Vec::new(),
            sealing,
            seal_buf: Vec::new(),
        })
    }

    fn close_current(&mut self) -> Result<()> {
        self.close_slot(0)?;
        self.close_slot(1)
    }

    fn close_slot(&mut self, slot: usize) -> Result<()> {
        let Some(p) = self.current[slot].take() else {
            return Ok(());
        };
        let path = p.path;
        let file = p
            .file
            .into_inner()
            .map_err(|e| RepoError::io("write pack", &*path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| RepoError::io("fsync", &*path, e))?;
        drop(file);
        crate::failpoint::hit("write:pack-fsynced");
        let pack = p.hasher.finish();
        let idx = PackIndex {
            pack,
            entries: p.entries,
        };
        self.finished
            .push((path, idx, p.sealing.map(|(salt, _)| salt)));
        Ok(())
    }

    /// Number of objects written so far in this session.
    pub fn written(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of the packs this session has stored so far (checkpoints).
    pub fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    /// Stores what was written so far, as [`PackSession::finish`] does,
    /// and goes on: later objects go into new packs. After a checkpoint
    /// the objects written are visible (and stay stored if the session is
    /// dropped). Returns the packs stored now.
    pub fn checkpoint(&mut self) -> Result<Vec<ObjectId>> {
        if self.freshen {
            self.odb.write_freshen_markers()?;
        }
        self.close_current()?;
        let finished = std::mem::take(&mut self.finished);
        let mut sizes = Vec::with_capacity(finished.len());
        for (path, idx, _) in &finished {
            sizes.push(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
            self.odb.storage.put_file(&pack_key(&idx.pack), path)?;
            crate::failpoint::hit("write:pack-stored");
        }
        let mut stored = Vec::with_capacity(finished.len());
        let mut result = Ok(());
        for ((path, idx, salt), size) in finished.into_iter().zip(sizes) {
            let stored_idx = encode_pack_index(&self.odb.codec, &idx, salt.as_ref())
                .and_then(|b| Ok(self.odb.storage.put(&idx_key(&idx.pack), &b)?));
            if let Err(e) = stored_idx {
                result = Err(e);
                break;
            }
            self.odb.remember_salt(&idx.pack, salt.as_ref());
            crate::failpoint::hit("write:idx-stored");
            // put_file consumed the file; don't let TempPath delete a path that
            // may now be reused.
            let _ = path.keep();
            self.stored_bytes += size;
            stored.push(idx);
        }
        let ids: Vec<ObjectId> = stored.iter().map(|idx| idx.pack).collect();
        self.stored.extend(&ids);
        // What was stored exists, even when a later index failed; once
        // registered, `has` finds it there, so the session's own set
        // restarts empty (it would otherwise grow with the whole run).
        self.odb.register(stored);
        if result.is_ok() {
            self.pending = IdSet::default();
        }
        result.map(|()| ids)
    }

    /// Re-dates the old packs objects were reused from (freshen markers),
    /// stores every pack, then every index, and makes the objects visible.
    /// Returns the ids of the packs stored (by earlier checkpoints too). A
    /// pack is named by its headers, so a rewrite that copies exactly the
    /// entries of an existing pack (gc, fsck) stores a pack of the same
    /// name: such a caller MUST NOT then delete that name as "the old pack".
    pub fn finish(mut self) -> Result<Vec<ObjectId>> {
        self.checkpoint()?;
        Ok(std::mem::take(&mut self.stored))
    }
}

/// One entry found by scanning a pack.
#[derive(Debug, Clone)]
pub struct ScannedEntry {
    pub offset: u64,
    pub header: EntryHeader,
    /// Why the entry is bad (payload does not decode or hash), if it is.
    pub damage: Option<String>,
}

/// Result of reading a whole pack from start to end.
#[derive(Debug, Default)]
pub struct PackScan {
    pub entries: Vec<ScannedEntry>,
    /// Structural damage that stopped the scan (bad header, truncation).
    pub fatal: Option<String>,
    /// Whether the pack's header and entry headers hash to its name.
    pub checksum_ok: bool,
    pub size: u64,
    /// A sealed pack's salt (to seal an index rebuilt from this scan).
    pub salt: Option<[u8; 32]>,
}

/// Opens a sealed entry in place (`entry`: the 60-byte sealed header, the
/// payload and its tag): afterwards the plaintext header is `entry[..44]`
/// and the payload `entry[60..60 + stored_len]`.
fn open_entry(
    pk: &PackKey,
    offset: u64,
    entry: &mut [u8],
    stored_len: u32,
) -> std::result::Result<(), mediagit_crypto::CryptoError> {
    let what = || format!("pack entry at offset {offset}");
    if entry.len() as u64 != pack::entry_len(true, stored_len) {
        return Err(mediagit_crypto::CryptoError::Tampered { what: what() });
    }
    let (h, body) = entry.split_at_mut(pack::SEALED_ENTRY_HEADER_LEN);
    let header: [u8; EntryHeader::LEN] = pk
        .open(EntryPart::Header, offset, b"", h, &what)?
        .try_into()
        .map_err(|_| mediagit_crypto::CryptoError::Tampered { what: what() })?;
    pk.open(EntryPart::Payload, offset, &header, body, &what)?;
    Ok(())
}

/// Reads a pack sequentially, verifying every entry (decode + SHA-256) and
/// the pack's own checksum. Memory: one entry at a time.
pub fn scan_pack(
    storage: &dyn Storage,
    pack_id: &ObjectId,
    max_chunk: u32,
    codec: &ObjectCodec,
    index_salt: Option<[u8; 32]>,
) -> Result<PackScan> {
    let key = pack_key(pack_id);
    let size = storage
        .size(&key)?
        .ok_or_else(|| mediagit_storage::StorageError::NotFound {
            backend: storage.describe(),
            key: key.clone(),
        })?;
    let mut scan = PackScan {
        size,
        ..Default::default()
    };
    let mut hasher = Hasher::new();
    if size < pack::PACK_HEADER_LEN as u64 {
        scan.fatal = Some(format!("pack is {size} bytes, shorter than its header"));
        return Ok(scan);
    }
    let mut head = vec![0u8; (size.min(pack::SEALED_PACK_HEADER_LEN as u64)) as usize];
    storage.read_at(&key, 0, &mut head)?;
    // A sealed pack is opened with the salt of its (authenticated) index
    // when there is one: readers use that salt too, so a damaged header
    // costs the pack's name check, not its entries.
    let header = match (
        pack::decode_any_pack_header(&head),
        index_salt,
        codec.keys(),
    ) {
        (Ok(PackHeader::Sealed { .. }), Some(salt), Some(_)) => PackHeader::Sealed { salt },
        (Err(_), Some(salt), Some(_)) if head.len() == pack::SEALED_PACK_HEADER_LEN => {
            PackHeader::Sealed { salt }
        }
        (Ok(h), _, _) => h,
        (Err(e), _, _) => {
            scan.fatal = Some(e.to_string());
            return Ok(scan);
        }
    };
    let pk = match (header, codec.keys()) {
        (PackHeader::Plain, None) => None,
        (PackHeader::Sealed { salt }, Some(keys)) => {
            scan.salt = Some(salt);
            Some(keys.pack_key(&salt))
        }
        (PackHeader::Plain, Some(_)) => {
            scan.fatal = Some("a plaintext pack in an encrypted repository".into());
            return Ok(scan);
        }
        (PackHeader::Sealed { .. }, None) => {
            scan.fatal = Some("a sealed pack in a repository that is not encrypted".into());
            return Ok(scan);
        }
    };
    let sealed = pk.is_some();
    head.truncate(header.len());
    hasher.update(&head);
    let mut offset = head.len() as u64;
    let header_len = pack::payload_start(sealed);
    let mut stored_hb = vec![0u8; header_len];
    while offset < size {
        if size - offset < header_len as u64 {
            scan.fatal = Some(format!("truncated entry header at offset {offset}"));
            break;
        }
        storage.read_at(&key, offset, &mut stored_hb)?;
        let mut hb = stored_hb.clone();
        if let Some(pk) = &pk {
            let what = || format!("entry header at offset {offset}");
            if let Err(e) = pk.open(EntryPart::Header, offset, b"", &mut hb, &what) {
                scan.fatal = Some(e.to_string());
                break;
            }
            hb.truncate(EntryHeader::LEN);
        }
        let header = match EntryHeader::decode(&hb) {
            Ok(h) => h,
            Err(e) => {
                scan.fatal = Some(format!("bad entry header at offset {offset}: {e}"));
                break;
            }
        };
        let end = offset.saturating_add(pack::entry_len(sealed, header.stored_len));
        let max_raw = limits::max_object_len(header.kind, max_chunk);
        if header.raw_len as u64 > max_raw
            || header.stored_len as u64 > limits::max_stored_len(max_raw)
        {
            // Nothing is allocated for it; the entries after it cannot be
            // trusted to start where this one says it ends.
            scan.fatal = Some(format!(
                "entry {} at offset {offset} claims {} bytes ({} stored); a {} is at most {max_raw} bytes",
                header.id,
                header.raw_len,
                header.stored_len,
                header.kind.name()
            ));
            break;
        }
        if end > size {
            scan.fatal = Some(format!(
                "entry {} at offset {offset} runs past the end of the pack ({} bytes missing)",
                header.id,
                end - size
            ));
            break;
        }
        let mut payload = vec![0u8; (end - offset) as usize - header_len];
        storage.read_at(&key, offset + header_len as u64, &mut payload)?;
        hasher.update(&stored_hb);
        let opened = match &pk {
            None => Ok(()),
            Some(pk) => {
                let what = || format!("payload at offset {offset}");
                let r = pk
                    .open(EntryPart::Payload, offset, &hb, &mut payload, &what)
                    .map(|_| ());
                payload.truncate(header.stored_len as usize);
                r
            }
        };
        let damage = match opened {
            Err(e) => Some(e.to_string()),
            Ok(()) => match decompress(header.codec, &payload, header.raw_len as usize) {
                Err(e) => Some(format!(
                    "{} payload does not decode: {e}",
                    header.codec.name()
                )),
                Ok(data) => codec
                    .verify(header.kind, &header.id, &data)
                    .map(|actual| format!("content hashes to {actual}")),
            },
        };
        scan.entries.push(ScannedEntry {
            offset,
            header,
            damage,
        });
        offset = end;
    }
    scan.checksum_ok = scan.fatal.is_none() && hasher.finish() == *pack_id;
    if scan.fatal.is_none() && !scan.checksum_ok && !sealed {
        // Packs written before 9047652 are named by the SHA-256 of all
        // their bytes (FORMAT.md §5): a second pass, for those only.
        scan.checksum_ok = whole_pack_hash(storage, &key, size)? == *pack_id;
    }
    Ok(scan)
}

/// Checks the parts of a pack that readers of its entries never look at,
/// without reading a payload: its header is the one its index's salt says
/// (plain when `salt` is `None`), the entries of `idx` follow it back to
/// back up to the end of the pack, each plain entry header is the one its
/// index entry describes, and the pack's name is the SHA-256 of its header
/// and entry headers (FORMAT.md §5; a plain pack of the older naming,
/// hashed whole, is hashed whole). `Some(reason)` when any of it is not so.
/// Readers look only at the entries they read, never at the pack header,
/// at gaps or bytes after the last entry, or at the name, so without this
/// fsck's scan would be the first to see such damage.
/// With `entry_headers`, one small read per entry (meant for packs on
/// local disk, as a pack taken whole by a restore); without, only the
/// header is read and the layout checked against the index (one request
/// on an object store).
pub(crate) fn check_pack_frame(
    storage: &dyn Storage,
    pack_id: &ObjectId,
    idx: &PackIndex,
    salt: Option<[u8; 32]>,
    entry_headers: bool,
) -> Result<Option<String>> {
    let key = pack_key(pack_id);
    let Some(size) = storage.size(&key)? else {
        return Ok(Some("the pack is missing".into()));
    };
    let header = match salt {
        Some(salt) => PackHeader::Sealed { salt },
        None => PackHeader::Plain,
    };
    let sealed = salt.is_some();
    let expected = header.encode();
    if size < expected.len() as u64 {
        return Ok(Some(format!(
            "pack is {size} bytes, shorter than its header"
        )));
    }
    let mut head = vec![0u8; expected.len()];
    storage.read_at(&key, 0, &mut head)?;
    if head != expected {
        return Ok(Some("its header is not the one its index describes".into()));
    }
    let mut hasher = Hasher::new();
    hasher.update(&head);
    let mut entries: Vec<&IdxEntry> = idx.entries.iter().collect();
    entries.sort_by_key(|e| e.offset);
    let mut at = head.len() as u64;
    let mut stored = vec![0u8; pack::payload_start(sealed)];
    for e in entries {
        if e.offset != at {
            return Ok(Some(format!(
                "entry {} is at offset {}, where {at} was expected",
                e.id, e.offset
            )));
        }
        let end = at.saturating_add(pack::entry_len(sealed, e.stored_len));
        if end > size {
            return Ok(Some(format!(
                "entry {} at offset {at} runs past the end of the pack",
                e.id
            )));
        }
        if !entry_headers {
            at = end;
            continue;
        }
        storage.read_at(&key, at, &mut stored)?;
        if !sealed {
            let described = EntryHeader {
                kind: e.kind,
                codec: e.codec,
                raw_len: e.raw_len,
                stored_len: e.stored_len,
                id: e.id,
            }
            .encode();
            if stored[..] != described[..] {
                return Ok(Some(format!(
                    "the header of entry {} at offset {at} is not the one its index describes",
                    e.id
                )));
            }
        }
        hasher.update(&stored);
        at = end;
    }
    if at != size {
        return Ok(Some(format!("{} byte(s) after its last entry", size - at)));
    }
    if !entry_headers
        || hasher.finish() == *pack_id
        || (!sealed && whole_pack_hash(storage, &key, size)? == *pack_id)
    {
        return Ok(None);
    }
    Ok(Some("its bytes do not hash to its name".into()))
}

/// SHA-256 of every byte of a pack, read in bounded blocks.
fn whole_pack_hash(storage: &dyn Storage, key: &str, size: u64) -> Result<ObjectId> {
    let mut h = Hasher::new();
    let mut buf = vec![0u8; READ_BATCH as usize];
    let mut at = 0u64;
    while at < size {
        let n = (size - at).min(READ_BATCH) as usize;
        storage.read_at(key, at, &mut buf[..n])?;
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(h.finish())
}

/// Reads the stored (still encoded, but opened if sealed: `pk` is the
/// pack's key) payload of an entry, for copying it into another pack
/// without decoding; a sealed copy is sealed again by the pack it goes to.
pub fn read_stored(
    storage: &dyn Storage,
    pk: Option<&PackKey>,
    pack_id: &ObjectId,
    offset: u64,
    stored_len: u32,
) -> Result<Vec<u8>> {
    let key = pack_key(pack_id);
    match pk {
        None => {
            let mut buf = vec![0u8; stored_len as usize];
            storage.read_at(&key, offset + EntryHeader::LEN as u64, &mut buf)?;
            Ok(buf)
        }
        Some(pk) => {
            let mut buf = vec![0u8; pack::entry_len(true, stored_len) as usize];
            storage.read_at(&key, offset, &mut buf)?;
            open_entry(pk, offset, &mut buf, stored_len).map_err(|e| RepoError::CorruptObject {
                id: *pack_id,
                kind: "pack",
                location: format!("{key} at offset {offset}"),
                reason: e.to_string(),
            })?;
            let at = pack::SEALED_ENTRY_HEADER_LEN;
            buf.truncate(at + stored_len as usize);
            buf.drain(..at);
            Ok(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn index_bounds_are_capped_whatever_the_pack_claims() {
        assert_eq!(max_index_len(0), 48 + 4096);
        assert_eq!(max_index_len(44 * 10), 48 + 10 * 52 + 4096);
        assert_eq!(max_index_len(u64::MAX), MAX_INDEX_LEN);
        assert_eq!(max_index_len(1 << 40), MAX_INDEX_LEN);
    }

    /// The table as a stable sort of everything registered so far would
    /// make it (what `State::add` did before it merged in place).
    fn reference(
        batches: &[Vec<PackIndex>],
        damaged: &HashSet<(ObjectId, ObjectId)>,
    ) -> Vec<(ObjectId, u32, u64, bool)> {
        let mut all = Vec::new();
        let mut n = 0u32;
        for b in batches {
            for idx in b {
                for e in &idx.entries {
                    all.push((e.id, n, e.offset, damaged.contains(&(e.id, idx.pack))));
                }
                n += 1;
            }
        }
        all.sort_by_key(|a| (a.0, a.3));
        all.dedup_by(|b, a| a.0 == b.0);
        all
    }

    proptest! {
        #[test]
        fn registering_in_batches_keeps_the_first_sound_copy(
            batches in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::collection::vec((0u8..24, any::<bool>()), 0..12), 1..4),
                1..5),
        ) {
            let mut damaged = HashSet::new();
            let mut packs = 0u8;
            let batches: Vec<Vec<PackIndex>> = batches
                .into_iter()
                .map(|b| {
                    b.into_iter()
                        .map(|ids| {
                            packs += 1;
                            let pack = ObjectId([packs; 32]);
                            let mut entries: Vec<IdxEntry> = ids
                                .iter()
                                .enumerate()
                                .map(|(i, &(id, bad))| {
                                    if bad {
                                        damaged.insert((ObjectId([id; 32]), pack));
                                    }
                                    IdxEntry {
                                        id: ObjectId([id; 32]),
                                        offset: i as u64 * 10,
                                        kind: ObjectKind::Chunk,
                                        codec: Codec::Raw,
                                        raw_len: 1,
                                        stored_len: 1,
                                    }
                                })
                                .collect();
                            entries.sort_by_key(|e| e.id);
                            entries.dedup_by_key(|e| e.id);
                            PackIndex { pack, entries }
                        })
                        .collect()
                })
                .collect();
            let mut st = State::default();
            for b in &batches {
                st.add(b.clone(), &damaged);
            }
            let got: Vec<_> = st
                .table
                .iter()
                .map(|(id, l)| (*id, l.pack, l.offset, l.damaged))
                .collect();
            prop_assert_eq!(got, reference(&batches, &damaged));
        }
    }
}
