//! Media metadata records: what `mediagit-media` extracts from a file's
//! headers (dimensions, codecs, duration, EXIF, layers...), stored once per
//! content id so that `diff`, `find` and `log --media` answer from the
//! repository without reading content again.
//!
//! Records live in ordinary objects under one ref, `refs/notes/media` (as
//! Git keeps notes): a parentless commit whose tree holds up to 256 files
//! named by the first two hex digits of the content ids they describe, each
//! a JSON document `{"version":1,"records":{"<content id>":{...}}}`
//! (FORMAT.md §14). So the records are sealed like everything else in an
//! encrypted repository, kept by `gc` (the ref is a root), checked by
//! `fsck`, and copied by `clone`, `fetch` and `push` with the same code as
//! commits. Older builds see one more ref and ignore it.
//!
//! Records are derived data: a record that is missing (files added before
//! this feature, or by an older build) is extracted on demand from the
//! stored content (headers only, through [`ContentReader`]), and `mediagit
//! media scan` stores them. Writers merge: two working trees adding at
//! once both keep their records (compare-and-swap of the ref, retried on
//! the union).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::sync::Mutex;

use mediagit_format::index::{IndexEntry, IndexKind, StatInfo};
use mediagit_format::{Commit, Manifest, ManifestChunk, ObjectId, ObjectKind, Signature};
use mediagit_media::Metadata;

use crate::error::{RepoError, Result};
use crate::odb::Odb;
use crate::repo::Repository;
use crate::tree::{FlatEntry, FlatTree};

/// The ref that names the current records.
pub const NOTES_REF: &str = "refs/notes/media";
/// Version of the bucket documents this build writes and reads.
pub const NOTES_VERSION: u32 = 1;
/// Largest bucket document read (a hostile store cannot make a reader
/// allocate more): 256 buckets of this size hold tens of millions of
/// records.
pub const MAX_BUCKET_BYTES: u64 = 16 << 20;
/// Compare-and-swap attempts before a writer gives up (another writer
/// kept winning); the records are derived data and `media scan` retries.
const CAS_ATTEMPTS: usize = 16;

#[derive(serde::Serialize)]
struct Bucket {
    version: u32,
    #[serde(default)]
    records: BTreeMap<String, Metadata>,
}

fn bucket_of(id: &ObjectId) -> String {
    id.to_string()[..2].to_string()
}

/// Author (and committer) e-mail of every notes commit.
const RECORDS_EMAIL: &str = "media-records@mediagit";
/// Message of every notes commit.
const RECORDS_MESSAGE: &str = "media records\n";

/// Whether `c` is a notes commit (no parents, MediaGit's signature and
/// message): once superseded, garbage that `fsck` does not list.
pub fn is_records_commit(c: &Commit) -> bool {
    c.parents.is_empty() && c.author.email == RECORDS_EMAIL && c.message == RECORDS_MESSAGE
}

/// Whether a record describes media: a recognised format (or one that was
/// recognised and could not be read). Every file gets a record (so `find`
/// can tell "looked at, not media" from "never looked at"); only these
/// get media lines in `diff`.
pub fn is_media(m: &Metadata) -> bool {
    m.mime.is_some() || m.unreadable.is_some() || m.kind != mediagit_media::Kind::Other
}

/// Reads a stored file's content as a seekable stream, one chunk at a
/// time: extraction reads headers (and an MP4's `moov` at the end)
/// without fetching the chunks in between.
pub struct ContentReader<'o> {
    odb: &'o Odb,
    manifest: ObjectId,
    chunks: Vec<ManifestChunk>,
    /// Offset of each chunk's first byte.
    starts: Vec<u64>,
    size: u64,
    pos: u64,
    cached: Option<(usize, Vec<u8>)>,
}

impl<'o> ContentReader<'o> {
    pub fn open(odb: &'o Odb, manifest: &ObjectId) -> Result<ContentReader<'o>> {
        let m = odb.read_manifest(manifest)?;
        Ok(ContentReader::from_manifest(odb, *manifest, m))
    }

    fn from_manifest(odb: &'o Odb, id: ObjectId, m: Manifest) -> ContentReader<'o> {
        let mut starts = Vec::with_capacity(m.chunks.len());
        let mut at = 0u64;
        for c in &m.chunks {
            starts.push(at);
            at = at.saturating_add(u64::from(c.len));
        }
        ContentReader {
            odb,
            manifest: id,
            chunks: m.chunks,
            starts,
            size: at,
            pos: 0,
            cached: None,
        }
    }

    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let i = self.starts.partition_point(|&s| s <= self.pos) - 1;
        if self.cached.as_ref().map(|(k, _)| *k) != Some(i) {
            let c = &self.chunks[i];
            let data = self
                .odb
                .read_raw(&c.id, ObjectKind::Chunk)
                .map_err(std::io::Error::other)?;
            if data.len() != c.len as usize {
                return Err(std::io::Error::other(format!(
                    "manifest {}: chunk {} is {} bytes, the manifest says {}",
                    self.manifest,
                    c.id,
                    data.len(),
                    c.len
                )));
            }
            self.cached = Some((i, data));
        }
        let (_, data) = self.cached.as_ref().expect("cached above");
        let off = (self.pos - self.starts[i]) as usize;
        let n = buf.len().min(data.len() - off);
        buf[..n].copy_from_slice(&data[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ContentReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = seek_to(self.size, self.pos, to)?;
        Ok(self.pos)
    }
}

/// Where a seek from `pos` in a stream of `len` bytes lands.
fn seek_to(len: u64, pos: u64, to: SeekFrom) -> std::io::Result<u64> {
    let target = match to {
        SeekFrom::Start(n) => Some(n),
        SeekFrom::End(d) => len.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    };
    target.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "seek before the start of the file",
        )
    })
}

/// Extracts the record of a stored file (headers only).
pub fn extract_stored(odb: &Odb, e: &FlatEntry, path: &str) -> Result<Metadata> {
    let mut r = ContentReader::open(odb, &e.manifest)?;
    let len = r.len();
    Ok(sanitized(mediagit_media::extract(&mut r, len, Some(path))))
}

/// Extracts the record of a file in the working tree; `None` when it is
/// not a regular file any more.
pub fn extract_file(abs: &std::path::Path, path: &str) -> Option<Metadata> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(abs)
        .ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() {
        return None;
    }
    let mut r = HeadReader::new(f, m.len());
    Some(sanitized(mediagit_media::extract(
        &mut r,
        m.len(),
        Some(path),
    )))
}

/// How much of a file [`HeadReader`] reads at once: a photo's EXIF and
/// most containers' headers fit.
const HEAD_BYTES: usize = 64 << 10;

/// A file read through windows of [`HEAD_BYTES`]: parsers seek and read
/// a few bytes at a time, which would be a system call each.
struct HeadReader {
    file: std::fs::File,
    len: u64,
    pos: u64,
    /// Offset of `window`'s first byte.
    at: u64,
    window: Vec<u8>,
}

impl HeadReader {
    fn new(file: std::fs::File, len: u64) -> HeadReader {
        HeadReader {
            file,
            len,
            pos: 0,
            at: 0,
            window: Vec::new(),
        }
    }
}

impl Read for HeadReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let end = self.at + self.window.len() as u64;
        if self.pos < self.at || self.pos >= end {
            // Large reads go straight to the caller's buffer.
            if buf.len() >= HEAD_BYTES {
                let n = self.file.read_at(buf, self.pos)?;
                self.pos += n as u64;
                return Ok(n);
            }
            let want = (self.len - self.pos).min(HEAD_BYTES as u64) as usize;
            self.window.resize(want, 0);
            let mut got = 0;
            while got < want {
                match self
                    .file
                    .read_at(&mut self.window[got..], self.pos + got as u64)?
                {
                    0 => break,
                    n => got += n,
                }
            }
            self.window.truncate(got);
            self.at = self.pos;
            if got == 0 {
                return Ok(0);
            }
        }
        let off = (self.pos - self.at) as usize;
        let n = buf.len().min(self.window.len() - off);
        buf[..n].copy_from_slice(&self.window[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for HeadReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = seek_to(self.len, self.pos, to)?;
        Ok(self.pos)
    }
}

/// What `add` wrote of media records, for [`Repository::publish_media_records`].
pub struct StagedRecords {
    from: Option<ObjectId>,
    to: ObjectId,
    records: BTreeMap<ObjectId, Metadata>,
}

/// The stored records, read one bucket at a time as asked for.
pub struct MediaNotes<'r> {
    repo: &'r Repository,
    /// The notes commit read (`None`: no records yet).
    commit: Option<ObjectId>,
    /// Bucket name -> its file in the notes tree.
    files: BTreeMap<String, FlatEntry>,
    loaded: Mutex<HashMap<String, std::sync::Arc<BTreeMap<ObjectId, Metadata>>>>,
    /// Buckets that did not read (damaged): why, for a warning.
    unreadable: Mutex<Vec<String>>,
}

impl<'r> MediaNotes<'r> {
    /// Reads the notes ref and its tree (not the buckets).
    pub fn load(repo: &'r Repository) -> Result<MediaNotes<'r>> {
        let commit = repo.store().read_ref(NOTES_REF)?;
        Self::at(repo, commit)
    }

    /// The records of notes commit `commit`.
    pub fn at(repo: &'r Repository, commit: Option<ObjectId>) -> Result<MediaNotes<'r>> {
        let mut files = BTreeMap::new();
        if let Some(c) = commit {
            let odb = repo.odb()?;
            let tree = odb.read_commit(&c)?.tree;
            for (name, e) in crate::tree::flatten(odb, &tree)? {
                let ok = name.len() == 2
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    && e.kind != IndexKind::Symlink;
                if ok {
                    files.insert(name, e);
                }
            }
        }
        Ok(MediaNotes {
            repo,
            commit,
            files,
            loaded: Mutex::new(HashMap::new()),
            unreadable: Mutex::new(Vec::new()),
        })
    }

    pub fn commit(&self) -> Option<ObjectId> {
        self.commit
    }

    fn bucket(&self, name: &str) -> Result<std::sync::Arc<BTreeMap<ObjectId, Metadata>>> {
        if let Some(b) = self.loaded.lock().map_err(poisoned)?.get(name) {
            return Ok(b.clone());
        }
        let map = match self.files.get(name) {
            None => BTreeMap::new(),
            Some(e) => match read_bucket(self.repo.odb()?, name, e) {
                Ok(m) => m,
                // A bucket a later build wrote: read by nobody here, and
                // never overwritten (writers refuse it).
                Err(err @ RepoError::NewerRecords { .. }) => return Err(err),
                // A damaged bucket costs its records (read from content
                // when asked, and replaced by the next writer), never the
                // command: remembered for a warning.
                Err(err) => {
                    self.unreadable
                        .lock()
                        .map_err(poisoned)?
                        .push(format!("media records {name}: {err}"));
                    BTreeMap::new()
                }
            },
        };
        let map = std::sync::Arc::new(map);
        self.loaded
            .lock()
            .map_err(poisoned)?
            .insert(name.to_string(), map.clone());
        Ok(map)
    }

    /// The buckets read so far that were damaged (their records were
    /// treated as missing).
    pub fn unreadable(&self) -> Vec<String> {
        self.unreadable
            .lock()
            .map(|u| u.clone())
            .unwrap_or_default()
    }

    /// The stored record of content `id`.
    pub fn get(&self, id: &ObjectId) -> Result<Option<Metadata>> {
        Ok(self.bucket(&bucket_of(id))?.get(id).cloned())
    }

    /// Whether a writer should leave content `id` alone: it has a record,
    /// or its bucket was written by a later build (never overwritten).
    fn settled(&self, id: &ObjectId) -> Result<bool> {
        match self.bucket(&bucket_of(id)) {
            Ok(b) => Ok(b.contains_key(id)),
            Err(RepoError::NewerRecords { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Every stored record (all buckets read).
    pub fn all(&self) -> Result<HashMap<ObjectId, Metadata>> {
        let mut out = HashMap::new();
        for name in self.files.keys() {
            let b = match self.bucket(name) {
                Ok(b) => b,
                Err(e @ RepoError::NewerRecords { .. }) => {
                    if let Ok(mut u) = self.unreadable.lock() {
                        u.push(e.to_string());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (id, m) in b.iter() {
                out.insert(*id, m.clone());
            }
        }
        Ok(out)
    }

    /// How many records are stored (all buckets read).
    pub fn count(&self) -> Result<usize> {
        let mut n = 0;
        for name in self.files.keys() {
            n += self.bucket(name)?.len();
        }
        Ok(n)
    }
}

fn poisoned<T>(_: T) -> RepoError {
    RepoError::Invalid("media records: a reader thread panicked".into())
}

fn read_bucket(odb: &Odb, name: &str, e: &FlatEntry) -> Result<BTreeMap<ObjectId, Metadata>> {
    let bad = |reason: String| RepoError::CorruptObject {
        id: e.manifest,
        kind: "manifest",
        location: format!("{NOTES_REF}: media records {name}"),
        reason,
    };
    let m = odb.read_manifest(&e.manifest)?;
    if e.size > MAX_BUCKET_BYTES || m.size > MAX_BUCKET_BYTES {
        return Err(bad(format!(
            "{} bytes, more than the {} MiB a bucket may hold",
            m.size.max(e.size),
            MAX_BUCKET_BYTES >> 20
        )));
    }
    let mut bytes = Vec::new();
    odb.write_chunks_to(&e.manifest, &m, &mut bytes, &|_| {})?;
    parse_bucket(name, &bytes).map_err(|err| match err {
        BucketError::Newer(version) => RepoError::NewerRecords {
            bucket: name.to_string(),
            version,
        },
        BucketError::Bad(reason) => bad(reason),
    })
}

/// Why a bucket file did not read.
enum BucketError {
    /// Written by a later build (its `version`).
    Newer(u32),
    Bad(String),
}

/// The records of bucket file `name` (FORMAT.md §14), from its bytes.
fn parse_bucket(
    name: &str,
    bytes: &[u8],
) -> std::result::Result<BTreeMap<ObjectId, Metadata>, BucketError> {
    let doc: RawBucket = serde_json::from_slice(bytes)
        .map_err(|err| BucketError::Bad(format!("not a bucket: {err}")))?;
    if doc.version != NOTES_VERSION {
        return Err(BucketError::Newer(doc.version));
    }
    let mut out = BTreeMap::new();
    for (k, v) in doc.records {
        // A key that is not a content id of this bucket, or a record
        // that does not read (a value this build does not know), is
        // skipped: that file's record is read from its content when asked.
        let Ok(id) = k.parse::<ObjectId>() else {
            continue;
        };
        if bucket_of(&id) != name {
            continue;
        }
        if let Some(m) = record_from_value(v) {
            out.insert(id, m);
        }
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
struct RawBucket {
    version: u32,
    #[serde(default)]
    records: BTreeMap<String, serde_json::Value>,
}

/// Longest string kept in a record (FORMAT.md §14).
const MAX_RECORD_STRING: usize = 256;
/// Most items kept of a list in a record (layers; audio tracks: 64).
const MAX_RECORD_LIST: usize = 1_000;

/// A record as this build reads it from JSON anyone could have written:
/// every string cut to [`MAX_RECORD_STRING`] characters with control,
/// line-separating, bidirectional and zero-width characters replaced by
/// `?` (a value prints on one line and as it reads), lists cut to
/// [`MAX_RECORD_LIST`] items (audio tracks to 64), nesting beyond what a
/// record has dropped. `None` when it is not a record.
fn record_from_value(mut v: serde_json::Value) -> Option<Metadata> {
    clean_value(&mut v, 0);
    let mut m: Metadata = serde_json::from_value(v).ok()?;
    m.audio.truncate(64);
    Some(m)
}

/// [`record_from_value`] for a record just extracted (a file's strings are
/// as hostile as a store's).
pub fn sanitized(m: Metadata) -> Metadata {
    match serde_json::to_value(&m) {
        Ok(v) => record_from_value(v).unwrap_or_default(),
        Err(_) => Metadata::default(),
    }
}

fn clean_value(v: &mut serde_json::Value, depth: usize) {
    use serde_json::Value;
    match v {
        Value::String(s) => *s = clean_text(s),
        Value::Array(a) => {
            a.truncate(MAX_RECORD_LIST);
            for x in a {
                if depth >= 4 {
                    *x = Value::Null;
                } else {
                    clean_value(x, depth + 1);
                }
            }
        }
        Value::Object(o) => {
            for (_, x) in o.iter_mut() {
                if depth >= 4 {
                    *x = Value::Null;
                } else {
                    clean_value(x, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn clean_text(s: &str) -> String {
    s.chars()
        .take(MAX_RECORD_STRING)
        .map(|c| {
            let invisible = matches!(c,
                '\u{00AD}' | '\u{061C}' | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}');
            if c.is_control() || invisible {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Where the objects of a notes commit go: a pack session, or `add`'s
/// ingester (so an add writes no pack of its own for its records).
pub(crate) type Put<'a> = dyn FnMut(ObjectKind, &[u8]) -> Result<ObjectId> + 'a;

/// Stores `bytes` as a file: chunks (cut as any file's, at the format's
/// boundaries too), then a manifest.
/// `buf` is the chunker's buffer, reused from one file to the next (it is
/// four maximum chunk sizes: allocating it per bucket cost more than the
/// rest of the write).
pub(crate) fn put_file(
    put: &mut Put<'_>,
    chunking: mediagit_format::config::ChunkingConfig,
    bytes: &[u8],
    buf: &mut Vec<u8>,
) -> Result<FlatEntry> {
    let mut chunker = mediagit_pipeline::Chunker::with_buffer(
        std::io::Cursor::new(bytes),
        chunking,
        std::mem::take(buf),
    );
    let cuts = mediagit_pipeline::media::cut_points(bytes, bytes.len() as u64, &mut |at, out| {
        let at = usize::try_from(at).ok();
        match at.and_then(|a| bytes.get(a..a.checked_add(out.len())?)) {
            Some(s) => {
                out.copy_from_slice(s);
                Ok(())
            }
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    });
    chunker.cut_at_all(cuts);
    let mut chunks = Vec::new();
    while let Some(c) = chunker
        .next_chunk()
        .map_err(|e| RepoError::io("chunk", "media records", e))?
    {
        let len = c.len() as u32;
        let id = put(ObjectKind::Chunk, c)?;
        chunks.push(ManifestChunk { id, len });
    }
    *buf = chunker.into_buffer();
    let m = Manifest {
        content: crate::codec::content_id(bytes),
        size: bytes.len() as u64,
        chunks,
    };
    let manifest = put(ObjectKind::Manifest, &m.encode())?;
    Ok(FlatEntry {
        kind: IndexKind::File,
        size: m.size,
        mtime: Default::default(),
        content: m.content,
        manifest,
        target: None,
    })
}

/// Writes a notes commit: `base`'s buckets with `add` merged in (records
/// already in `base` win: a content id has one record). Returns `None`
/// when nothing is new.
fn write_notes(
    repo: &Repository,
    base: &MediaNotes<'_>,
    add: &BTreeMap<ObjectId, Metadata>,
) -> Result<Option<ObjectId>> {
    let odb = repo.odb()?;
    let mut session = odb.session();
    let c = write_notes_with(repo, base, add, &mut |k, b| session.put_object(k, b))?;
    session.finish()?;
    Ok(c)
}

/// [`write_notes`] through `put`; the caller stores what `put` was given
/// before the commit is named by the ref.
pub(crate) fn write_notes_with(
    repo: &Repository,
    base: &MediaNotes<'_>,
    add: &BTreeMap<ObjectId, Metadata>,
    put: &mut Put<'_>,
) -> Result<Option<ObjectId>> {
    let mut by_bucket: BTreeMap<String, Vec<(&ObjectId, &Metadata)>> = BTreeMap::new();
    for (id, m) in add {
        by_bucket.entry(bucket_of(id)).or_default().push((id, m));
    }
    let mut files: FlatTree = base.files.clone();
    let mut changed = false;
    let mut buf = Vec::new();
    for (name, items) in by_bucket {
        let current = match base.bucket(&name) {
            Ok(c) => c,
            // A bucket a later build wrote is left as it is; its files'
            // records are read from their content when asked.
            Err(RepoError::NewerRecords { .. }) => continue,
            Err(e) => return Err(e),
        };
        let fresh: Vec<_> = items
            .into_iter()
            .filter(|(id, _)| !current.contains_key(id))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        changed = true;
        let mut doc = Bucket {
            version: NOTES_VERSION,
            records: current
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        for (id, m) in fresh {
            doc.records.insert(id.to_string(), m.clone());
        }
        let bytes = serde_json::to_vec(&doc)
            .map_err(|e| RepoError::Invalid(format!("media records: {e}")))?;
        if bytes.len() as u64 > MAX_BUCKET_BYTES {
            return Err(RepoError::Invalid(format!(
                "media records {name} would exceed {} MiB; not stored",
                MAX_BUCKET_BYTES >> 20
            )));
        }
        let e = put_file(put, repo.config().chunking, &bytes, &mut buf)?;
        files.insert(name, e);
    }
    if !changed {
        return Ok(None);
    }
    let entries: Vec<IndexEntry> = files
        .iter()
        .map(|(p, e)| IndexEntry {
            path: p.clone(),
            kind: e.kind,
            stat: StatInfo {
                size: e.size,
                ..Default::default()
            },
            content: e.content,
            manifest: e.manifest,
            target: None,
        })
        .collect();
    let tree = crate::tree::build_tree(entries.iter(), &mut |bytes| put(ObjectKind::Tree, bytes))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let who = Signature {
        name: "MediaGit".into(),
        email: RECORDS_EMAIL.into(),
        time: now,
        tz_offset_minutes: 0,
    };
    let c = Commit {
        tree,
        parents: Vec::new(),
        author: who.clone(),
        committer: who,
        message: RECORDS_MESSAGE.into(),
    };
    Ok(Some(put(ObjectKind::Commit, &c.encode())?))
}

impl Repository {
    /// Stores the records of `items` that are not stored yet (one notes
    /// commit; the ref moved by compare-and-swap, retried on the union
    /// when another writer moved it). Returns how many were new.
    pub fn store_media_records(&self, items: &BTreeMap<ObjectId, Metadata>) -> Result<usize> {
        if items.is_empty() {
            return Ok(0);
        }
        let mut fresh_repo: Option<Repository> = None;
        for _ in 0..CAS_ATTEMPTS {
            // After a lost race, through an object database that sees
            // the other writer's packs.
            let repo = fresh_repo.as_ref().unwrap_or(self);
            let notes = MediaNotes::load(repo)?;
            let mut fresh = BTreeMap::new();
            for (id, m) in items {
                if !notes.settled(id)? {
                    fresh.insert(*id, m.clone());
                }
            }
            let Some(commit) = write_notes(repo, &notes, &fresh)? else {
                return Ok(0);
            };
            crate::failpoint::hit("write:media-records");
            match repo
                .store()
                .cas_ref(NOTES_REF, notes.commit(), Some(commit))
            {
                Ok(()) => return Ok(fresh.len()),
                Err(RepoError::RefRace { .. }) => {
                    fresh_repo = Some(Repository::on_store(self.store().with_fresh_odb()));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(RepoError::Invalid(format!(
            "{NOTES_REF} kept moving ({CAS_ATTEMPTS} attempts): other writers are storing media records; run `mediagit media scan` later"
        )))
    }

    /// Records for files just staged from the working tree at `root`:
    /// extracted (headers only, in parallel) for content ids without one,
    /// from files whose size and mtime are still those staged, and written
    /// through `put` (`add`'s own pack session). Returns what the ref must
    /// then move from and to, and the records (to store again should that
    /// compare-and-swap lose a race): `None` when nothing is new.
    pub(crate) fn staged_media_records(
        &self,
        root: &std::path::Path,
        staged: &[IndexEntry],
        put: &mut Put<'_>,
    ) -> Result<Option<StagedRecords>> {
        let notes = MediaNotes::load(self)?;
        let mut seen = BTreeSet::new();
        let mut todo = Vec::new();
        for e in staged {
            if e.kind == IndexKind::Symlink || e.stat.size == 0 || !seen.insert(e.content) {
                continue;
            }
            if !notes.settled(&e.content)? {
                todo.push(e);
            }
        }
        if todo.is_empty() {
            return Ok(None);
        }
        let _s = tracing::info_span!("media", files = todo.len()).entered();
        let found = crate::ingest::parallel_map(&todo, |e| {
            let abs = root.join(&e.path);
            // The file must still be the one staged.
            let same = std::fs::symlink_metadata(&abs).ok().is_some_and(|m| {
                let st = crate::worktree::stat_info(&m);
                st.size == e.stat.size && st.mtime == e.stat.mtime
            });
            Ok(if same {
                extract_file(&abs, &e.path).map(|m| (e.content, m))
            } else {
                None
            })
        })?;
        let records: BTreeMap<ObjectId, Metadata> = found.into_iter().flatten().collect();
        let Some(new) = write_notes_with(self, &notes, &records, put)? else {
            return Ok(None);
        };
        Ok(Some(StagedRecords {
            from: notes.commit(),
            to: new,
            records,
        }))
    }

    /// Moves the notes ref to what [`staged_media_records`] wrote, once its
    /// objects are stored; another writer having moved it meanwhile, the
    /// records are merged into the new value. Returns how many were new.
    ///
    /// [`staged_media_records`]: Repository::staged_media_records
    pub(crate) fn publish_media_records(&self, s: &StagedRecords) -> Result<usize> {
        crate::failpoint::hit("write:media-records");
        match self.store().cas_ref(NOTES_REF, s.from, Some(s.to)) {
            Ok(()) => Ok(s.records.len()),
            Err(RepoError::RefRace { .. }) => {
                Repository::on_store(self.store().with_fresh_odb()).store_media_records(&s.records)
            }
            Err(e) => Err(e),
        }
    }

    /// The record of the file `e` (stored, or extracted now from the
    /// stored content) and whether it was stored.
    pub fn media_record(
        &self,
        notes: &MediaNotes<'_>,
        path: &str,
        e: &FlatEntry,
    ) -> Result<(Metadata, bool)> {
        // (A bucket that does not read costs the stored record only.)
        if let Ok(Some(m)) = notes.get(&e.content) {
            return Ok((m, true));
        }
        if e.kind == IndexKind::Symlink {
            return Ok((Metadata::default(), false));
        }
        Ok((extract_stored(self.odb()?, e, path)?, false))
    }

    /// `mediagit media scan`: stores the records missing for the files of
    /// `commits` (extracted from stored content, headers only). Returns
    /// (files looked at, records stored).
    pub fn media_scan(&self, commits: &[ObjectId]) -> Result<(usize, usize)> {
        let notes = MediaNotes::load(self)?;
        let files = unique_files(self.odb()?, commits)?;
        let mut todo = Vec::new();
        let mut seen = BTreeSet::new();
        for (p, e) in &files {
            if e.kind == IndexKind::Symlink || e.size == 0 || !seen.insert(e.content) {
                continue;
            }
            if !notes.settled(&e.content)? {
                todo.push((p.clone(), e.clone()));
            }
        }
        let odb = self.odb()?;
        let found = crate::ingest::parallel_map(&todo, |(p, e)| {
            Ok((e.content, extract_stored(odb, e, p)?))
        })?;
        let items: BTreeMap<ObjectId, Metadata> = found.into_iter().collect();
        let stored = self.store_media_records(&items)?;
        Ok((seen.len(), stored))
    }

    /// Brings the records of notes commit `theirs` (its objects already
    /// copied into this repository) into this repository's: adopted as
    /// they are where there are none here, merged otherwise.
    pub fn merge_media_records(&self, theirs: ObjectId) -> Result<()> {
        let mut fresh_repo: Option<Repository> = None;
        for _ in 0..CAS_ATTEMPTS {
            let repo = fresh_repo.as_ref().unwrap_or(self);
            let ours = MediaNotes::load(repo)?;
            let new = match ours.commit() {
                None => Some(theirs),
                Some(c) if c == theirs => return Ok(()),
                Some(_) => {
                    let other = MediaNotes::at(repo, Some(theirs))?;
                    write_notes(repo, &ours, &other.all()?.into_iter().collect())?
                }
            };
            let Some(new) = new else { return Ok(()) };
            match repo.store().cas_ref(NOTES_REF, ours.commit(), Some(new)) {
                Ok(()) => return Ok(()),
                Err(RepoError::RefRace { .. }) => {
                    fresh_repo = Some(Repository::on_store(self.store().with_fresh_odb()));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(RepoError::Invalid(format!(
            "{NOTES_REF} kept moving ({CAS_ATTEMPTS} attempts) while merging media records"
        )))
    }
}

/// Every distinct (path, file) in the trees of `commits`, each tree read
/// once however many commits share it.
pub fn unique_files(odb: &Odb, commits: &[ObjectId]) -> Result<Vec<(String, FlatEntry)>> {
    let mut seen_trees: BTreeSet<ObjectId> = BTreeSet::new();
    let mut seen_files: BTreeSet<(String, ObjectId)> = BTreeSet::new();
    let mut out = Vec::new();
    let mut stack: Vec<(String, ObjectId, usize)> = Vec::new();
    for c in commits {
        let t = odb.read_commit(c)?.tree;
        stack.push((String::new(), t, 0));
        while let Some((prefix, tree, depth)) = stack.pop() {
            if !seen_trees.insert(tree) {
                continue;
            }
            if depth > mediagit_format::limits::MAX_TREE_DEPTH {
                return Err(RepoError::Invalid(format!(
                    "tree {tree} is nested more than {} deep",
                    mediagit_format::limits::MAX_TREE_DEPTH
                )));
            }
            for te in odb.read_tree(&tree)?.entries {
                let path = if prefix.is_empty() {
                    te.name.clone()
                } else {
                    format!("{prefix}/{}", te.name)
                };
                match te.kind {
                    mediagit_format::EntryKind::Dir { tree } => stack.push((path, tree, depth + 1)),
                    mediagit_format::EntryKind::File {
                        executable,
                        size,
                        mtime,
                        content,
                        manifest,
                    } => {
                        if seen_files.insert((path.clone(), content)) {
                            out.push((
                                path,
                                FlatEntry {
                                    kind: if executable {
                                        IndexKind::Executable
                                    } else {
                                        IndexKind::File
                                    },
                                    size,
                                    mtime,
                                    content,
                                    manifest,
                                    target: None,
                                },
                            ));
                        }
                    }
                    mediagit_format::EntryKind::Symlink { .. } => {}
                }
            }
        }
    }
    Ok(out)
}

impl Repository {
    /// Fills [`FileDiff::media`](crate::history::FileDiff) of `files`:
    /// for a changed media file, the fields that changed; for an added
    /// one, its summary. Records come from the notes, else are extracted
    /// (headers only) from the stored content, or from the working tree
    /// when `new_in_worktree` (the new side of `diff` without `--cached`).
    /// Best effort: a record that cannot be had leaves the lines out.
    pub fn describe_media(&self, files: &mut [crate::history::FileDiff], new_in_worktree: bool) {
        if let Ok(notes) = MediaNotes::load(self) {
            self.describe_media_with(&notes, files, new_in_worktree);
        }
    }

    /// [`describe_media`](Repository::describe_media) with the records
    /// already loaded (`log` describes many commits with one load).
    pub fn describe_media_with(
        &self,
        notes: &MediaNotes<'_>,
        files: &mut [crate::history::FileDiff],
        new_in_worktree: bool,
    ) {
        use crate::history::DiffKind;
        let Ok(odb) = self.odb() else { return };
        let root = if new_in_worktree {
            self.worktree().ok()
        } else {
            None
        };
        let stored = |path: &str, e: &FlatEntry| -> Option<Metadata> {
            if e.kind == IndexKind::Symlink {
                return None;
            }
            match notes.get(&e.content) {
                Ok(Some(m)) => Some(m),
                _ => extract_stored(odb, e, path).ok(),
            }
        };
        let fresh = |path: &str, e: &FlatEntry| -> Option<Metadata> {
            if e.kind == IndexKind::Symlink {
                return None;
            }
            match (notes.get(&e.content), root) {
                (Ok(Some(m)), _) => Some(m),
                (_, Some(root)) => extract_file(&root.join(path), path),
                _ => extract_stored(odb, e, path).ok(),
            }
        };
        for d in files.iter_mut() {
            match (&d.kind, &d.old, &d.new) {
                (DiffKind::Modified, Some(o), Some(n)) => {
                    let old_path = d.path.clone();
                    let (Some(a), Some(b)) = (stored(&old_path, o), fresh(&d.path, n)) else {
                        continue;
                    };
                    if is_media(&a) || is_media(&b) {
                        d.media = mediagit_media::changes(&a, &b);
                    }
                }
                (DiffKind::Added, _, Some(n)) => {
                    if let Some(m) = fresh(&d.path, n).filter(is_media) {
                        d.media = vec![mediagit_media::summary(&m)];
                    }
                }
                _ => {}
            }
        }
    }
}

/// One file `find` matched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    pub path: String,
    pub content: ObjectId,
    pub size: u64,
    pub metadata: Metadata,
}

/// What `find` answered.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FindOutcome {
    pub found: Vec<Found>,
    /// Distinct (path, content) pairs looked at.
    pub files: usize,
    /// Of those, how many have no stored record (added before records
    /// existed, or by an older build): `mediagit media --scan` adds them.
    pub without_record: usize,
    /// Damaged record buckets (their records counted as missing).
    pub unreadable: Vec<String>,
}

impl Repository {
    /// Every commit reachable from the branches and tags.
    pub fn all_commits(&self) -> Result<Vec<ObjectId>> {
        let odb = self.odb()?;
        let mut tips = Vec::new();
        for (_, id) in self.store().list_refs("refs/heads/")? {
            tips.push(id);
        }
        for (_, id) in self.store().list_refs("refs/tags/")? {
            tips.push(self.peel(id)?);
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        while let Some(c) = tips.pop() {
            if !seen.insert(c) {
                continue;
            }
            out.push(c);
            tips.extend(odb.read_commit(&c)?.parents);
        }
        Ok(out)
    }

    /// `mediagit find`: the files of `commits` (each distinct path and
    /// content once) whose stored record matches `q`. Reads records, trees
    /// and no content.
    pub fn find_media(
        &self,
        commits: &[ObjectId],
        q: &mediagit_media::Query,
    ) -> Result<FindOutcome> {
        let notes = MediaNotes::load(self)?;
        let records = notes.all()?;
        let files = unique_files(self.odb()?, commits)?;
        let mut out = FindOutcome {
            files: files.len(),
            ..Default::default()
        };
        for (path, e) in files {
            match records.get(&e.content) {
                Some(m) if q.matches(m, &path) => out.found.push(Found {
                    path,
                    content: e.content,
                    size: e.size,
                    metadata: m.clone(),
                }),
                Some(_) => {}
                None if e.size > 0 => out.without_record += 1,
                None => {}
            }
        }
        out.found
            .sort_by(|a, b| a.path.cmp(&b.path).then(a.content.cmp(&b.content)));
        out.unreadable = notes.unreadable();
        Ok(out)
    }
}

impl Repository {
    /// After a fetch from `remote`: its media records join this
    /// repository's (objects copied, then merged as [`merge_media_records`]
    /// does).
    ///
    /// [`merge_media_records`]: Repository::merge_media_records
    pub fn fetch_media_records(&self, remote: &Repository, label: &str) -> Result<()> {
        let Some(theirs) = remote.store().read_ref(NOTES_REF)? else {
            return Ok(());
        };
        if self.store().read_ref(NOTES_REF)? == Some(theirs) {
            return Ok(());
        }
        crate::transfer::copy_missing(
            remote.store(),
            self.store(),
            &[theirs],
            crate::transfer::Labels {
                src: label,
                dst: crate::transfer::THIS,
            },
            &crate::progress::NoProgress,
        )?;
        self.merge_media_records(theirs)
    }

    /// After a push of `tips` to `remote`: the records of the files in
    /// those commits' trees join the remote's. Only those: records of
    /// files that stay local (their camera, their GPS position) are not
    /// sent.
    pub fn push_media_records(
        &self,
        remote: &Repository,
        tips: &[ObjectId],
        label: &str,
    ) -> Result<()> {
        if tips.is_empty() {
            return Ok(());
        }
        let ours = MediaNotes::load(self)?;
        if ours.commit().is_none() {
            return Ok(());
        }
        let records = ours.all()?;
        let mut wanted = BTreeMap::new();
        for (_, e) in unique_files(self.odb()?, tips)? {
            if let Some(m) = records.get(&e.content) {
                wanted.insert(e.content, m.clone());
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        for _ in 0..CAS_ATTEMPTS {
            let theirs = remote.store().read_ref(NOTES_REF)?;
            if let Some(t) = theirs {
                crate::transfer::copy_missing(
                    remote.store(),
                    self.store(),
                    &[t],
                    crate::transfer::Labels {
                        src: label,
                        dst: crate::transfer::THIS,
                    },
                    &crate::progress::NoProgress,
                )?;
            }
            let base = MediaNotes::at(self, theirs)?;
            let Some(new) = write_notes(self, &base, &wanted)? else {
                return Ok(());
            };
            crate::transfer::copy_missing(
                self.store(),
                remote.store(),
                &[new],
                crate::transfer::Labels {
                    src: crate::transfer::THIS,
                    dst: label,
                },
                &crate::progress::NoProgress,
            )?;
            match remote.store().cas_ref(NOTES_REF, theirs, Some(new)) {
                Ok(()) => return Ok(()),
                Err(RepoError::RefRace { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(RepoError::Invalid(format!(
            "{label}: {NOTES_REF} kept moving ({CAS_ATTEMPTS} attempts) while pushing media records"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bucket files written by the first build that wrote records
    /// (2026-12-04, records of the media corpus): every later build must
    /// read them as they were.
    #[test]
    fn buckets_of_version_1_still_read() {
        let read = |name: &str, bytes: &[u8]| match parse_bucket(name, bytes) {
            Ok(b) => b.into_values().next().unwrap(),
            Err(_) => panic!("bucket {name} does not read"),
        };
        let photo = read("6a", include_bytes!("testdata/media-bucket-v1-6a.json"));
        assert_eq!(photo.kind, mediagit_media::Kind::Image);
        assert_eq!((photo.width, photo.height), (Some(2048), Some(1364)));
        assert_eq!(photo.camera_model.as_deref(), Some("EOS R6"));
        assert_eq!(photo.taken.as_deref(), Some("2024-06-01T10:00:00"));
        assert_eq!(photo.iso, Some(800));
        assert!(photo.gps.is_some_and(|g| (g.lat - 45.2002).abs() < 1e-3));
        let clip = read("81", include_bytes!("testdata/media-bucket-v1-81.json"));
        assert_eq!(clip.kind, mediagit_media::Kind::Video);
        assert_eq!(clip.video_codec.as_deref(), Some("H.264"));
        assert_eq!(clip.audio.len(), 1);
        let psd = read("17", include_bytes!("testdata/media-bucket-v1-17.json"));
        assert_eq!(psd.layers.len(), 2);
        let flac = read("e3", include_bytes!("testdata/media-bucket-v1-e3.json"));
        assert_eq!(flac.audio[0].sample_rate, Some(48_000));
        // Another version is refused, never misread.
        let v2 = String::from_utf8_lossy(include_bytes!("testdata/media-bucket-v1-6a.json"))
            .replace("\"version\":1", "\"version\":2");
        assert!(matches!(
            parse_bucket("6a", v2.as_bytes()),
            Err(BucketError::Newer(2))
        ));
    }

    #[test]
    fn records_from_a_store_are_cut_and_made_printable() {
        let long = "x".repeat(10_000);
        let v = serde_json::json!({
            "kind": "image",
            "camera_make": "\u{1b}[31mRED\nFAKE\u{202e}X\u{2028}",
            "lens": long,
            "layers": (0..5000).map(|i| serde_json::json!({"name": format!("L{i}"), "visible": true})).collect::<Vec<_>>(),
            "audio": (0..100).map(|_| serde_json::json!({"channels": 2})).collect::<Vec<_>>(),
            "future_field": {"a": [1, 2, 3]},
        });
        let m = record_from_value(v).unwrap();
        let make = m.camera_make.unwrap();
        assert!(
            !make
                .chars()
                .any(|c| c.is_control() || c == '\u{202e}' || c == '\u{2028}'),
            "{make:?}"
        );
        assert!(make.contains("RED?FAKE"), "{make}");
        assert_eq!(m.lens.unwrap().chars().count(), MAX_RECORD_STRING);
        assert_eq!(m.layers.len(), MAX_RECORD_LIST);
        assert_eq!(m.audio.len(), 64);
        // A record this build cannot read is skipped, not an error.
        assert!(record_from_value(serde_json::json!({"kind": "hologram"})).is_none());
        assert!(record_from_value(serde_json::json!({"width": 1u64 << 40})).is_none());
        assert!(record_from_value(serde_json::json!("text")).is_none());
    }
}
