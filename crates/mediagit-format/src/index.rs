//! The worktree index (`.mediagit/index`): what is staged, plus a stat cache.
//!
//! Version 4 (written now): fixed-size entry records, a block of path
//! bytes and a small postcard tail, so that [`IndexView::parse`] checks
//! and reads 100,000 entries without one allocation per entry (`status`
//! reads the index on every run), and every path has room for merge
//! conflict stages ([`Stage`]: base, ours, theirs). Byte layout in
//! docs/FORMAT.md §7.
//!
//! Versions 1 to 3: magic `MGINDEX\0`, version (u32 LE), a postcard body,
//! then the SHA-256 of all preceding bytes. Version 2 added
//! [`IndexFile::tree`], the root tree id of the entries (git's cache-tree,
//! for the whole tree only), so that `status` with nothing staged needs no
//! tree hashing, and [`IndexFile::commit_memo`]. Version 3 added
//! [`IndexFile::resume`]. Builds between 15528a4 and 2a78a03 wrote the
//! version 3 body under the number 2; readers tell the two apart by their
//! bytes (a body with the table leaves bytes over when read without it, a
//! body without it runs out when read with it). Versions 1 and 2 are still
//! read (without what they lack).
use serde::{Deserialize, Serialize};

use crate::object::Timestamp;
use crate::{FormatError, ObjectId};

pub const INDEX_MAGIC: &[u8; 8] = b"MGINDEX\0";
pub const INDEX_VERSION: u32 = 4;
/// The oldest version readers accept.
pub const INDEX_MIN_VERSION: u32 = 1;

/// Serialized by variant index in the index file; named `file`,
/// `executable`, `symlink` in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    File,
    Executable,
    Symlink,
}

/// What `stat` said about the file when its content id was computed. If a
/// later `stat` gives the same values, the content is assumed unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatInfo {
    pub size: u64,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub ino: u64,
    pub dev: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Path relative to the worktree root, `/`-separated.
    pub path: String,
    pub kind: IndexKind,
    pub stat: StatInfo,
    /// SHA-256 of the content (for a symlink: of its target).
    pub content: ObjectId,
    /// The file's manifest (zero for symlinks).
    pub manifest: ObjectId,
    /// Symlink target.
    pub target: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFile {
    /// When the index was written; entries whose mtime is not older than
    /// this are "racily clean" and get re-hashed.
    pub written_at: Timestamp,
    /// Sorted by path bytes, unique.
    pub entries: Vec<IndexEntry>,
    /// The id of the root tree that `entries` make (as `commit` would write
    /// it), computed when the file was written; `None` when they make no
    /// valid tree. Version 2 and later; `None` when read from version 1.
    pub tree: Option<ObjectId>,
    /// A commit, its root tree id and the pack that holds it, remembered
    /// (commits never change) so that `status` on that commit reads one
    /// small pack index and no object. Version 2 and later.
    pub commit_memo: Option<CommitMemo>,
    /// Whole-file SHA-256 checkpoints of large files' manifests, sorted by
    /// manifest id, unique, each for a manifest some entry names. Version 2
    /// and later.
    pub resume: Vec<ResumePoints>,
    /// Paths a merge left unresolved: up to three entries each (base, ours,
    /// theirs), sorted by (path bytes, stage), unique; a path here is not
    /// in `entries`. Version 4 and later.
    pub conflicts: Vec<ConflictEntry>,
}

/// Which side of a merge an index entry records. `Merged` is an ordinary
/// entry; a conflicted path has any of the other three instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Merged = 0,
    Base = 1,
    Ours = 2,
    Theirs = 3,
}

impl Stage {
    fn from_u8(v: u8) -> Option<Stage> {
        Some(match v {
            0 => Stage::Merged,
            1 => Stage::Base,
            2 => Stage::Ours,
            3 => Stage::Theirs,
            _ => return None,
        })
    }
}

/// One side of a conflicted path (see [`IndexFile::conflicts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictEntry {
    /// Never [`Stage::Merged`].
    pub stage: Stage,
    pub entry: IndexEntry,
}

/// Version 3's body (as written from 2a78a03 on, and before it under the
/// number 2): no conflicts.
#[derive(Serialize, Deserialize)]
struct IndexFileV3 {
    written_at: Timestamp,
    entries: Vec<IndexEntry>,
    tree: Option<ObjectId>,
    commit_memo: Option<CommitMemo>,
    resume: Vec<ResumePoints>,
}

impl From<IndexFileV3> for IndexFile {
    fn from(v: IndexFileV3) -> IndexFile {
        IndexFile {
            written_at: v.written_at,
            entries: v.entries,
            tree: v.tree,
            commit_memo: v.commit_memo,
            resume: v.resume,
            conflicts: Vec::new(),
        }
    }
}

/// Where the whole-file hash of the content a manifest describes can be
/// resumed (see `ResumableSha256`): a pure function of the manifest's
/// bytes, cached here because it costs a full read to recompute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoints {
    pub manifest: ObjectId,
    /// Ascending by `chunks`.
    pub checkpoints: Vec<HashCheckpoint>,
}

/// The SHA-256 state over the content's bytes `[0, offset)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashCheckpoint {
    /// How many of the manifest's leading chunks cover `offset`: the
    /// checkpoint holds for any content that starts with those chunks.
    pub chunks: u32,
    /// A multiple of 64, at most the length of those chunks.
    pub offset: u64,
    pub state: [u32; 8],
}

/// See [`IndexFile::commit_memo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitMemo {
    pub commit: ObjectId,
    /// The commit's root tree.
    pub tree: ObjectId,
    /// The pack whose index lists the commit when the memo was written.
    pub pack: ObjectId,
}

/// Version 2's body (as written up to 8d04f6f): no resume table.
#[derive(Deserialize)]
struct IndexFileV2 {
    written_at: Timestamp,
    entries: Vec<IndexEntry>,
    tree: Option<ObjectId>,
    commit_memo: Option<CommitMemo>,
}

/// Version 1's body: no tree id.
#[derive(Deserialize)]
struct IndexFileV1 {
    written_at: Timestamp,
    entries: Vec<IndexEntry>,
}

impl IndexFile {
    /// Version 4 (docs/FORMAT.md §7). `entries` and `conflicts` must keep
    /// their documented order; a file written from lists out of order is
    /// refused by every reader.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        self.encode_to(&mut b)
            .expect("writing to a Vec<u8> cannot fail");
        b
    }

    /// [`IndexFile::encode`] streamed to `w` (a million entries need not be
    /// a second copy in memory before they reach the file).
    pub fn encode_to<W: std::io::Write + ?Sized>(&self, w: &mut W) -> std::io::Result<()> {
        let staged = self.entries.iter().map(|e| (Stage::Merged, e));
        let conflicted = self.conflicts.iter().map(|c| (c.stage, &c.entry));
        // References only (16 bytes an entry), in the file's order.
        let mut all: Vec<(Stage, &IndexEntry)> = staged.chain(conflicted).collect();
        if !self.conflicts.is_empty() {
            all.sort_by(|a, b| (a.1.path.as_bytes(), a.0).cmp(&(b.1.path.as_bytes(), b.0)));
        }
        let count = all.len();
        let names_len: usize = all
            .iter()
            .map(|(_, e)| e.path.len() + e.target.as_ref().map_or(0, String::len))
            .sum();
        let tail = postcard::to_stdvec(&IndexTail {
            tree: self.tree,
            commit_memo: self.commit_memo,
            resume: &self.resume,
        })
        .expect("postcard encoding of plain data");
        let mut b = HashingWriter {
            inner: w,
            hasher: crate::id::Hasher::new(),
        };
        let mut head = Vec::with_capacity(V4_HEADER);
        head.extend_from_slice(INDEX_MAGIC);
        head.extend_from_slice(&4u32.to_le_bytes());
        head.extend_from_slice(&(count as u32).to_le_bytes());
        head.extend_from_slice(&(names_len as u32).to_le_bytes());
        head.extend_from_slice(&(tail.len() as u32).to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&self.written_at.secs.to_le_bytes());
        head.extend_from_slice(&self.written_at.nanos.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        b.write_all(&head)?;
        let mut off = 0u32;
        let mut r = Vec::with_capacity(V4_RECORD);
        for &(stage, e) in &all {
            let tlen = e.target.as_ref().map(String::len);
            r.clear();
            r.extend_from_slice(&off.to_le_bytes());
            r.extend_from_slice(&(e.path.len() as u32).to_le_bytes());
            r.extend_from_slice(&tlen.map_or(NO_TARGET, |n| n as u32).to_le_bytes());
            r.push(stage as u8);
            r.push(match e.kind {
                IndexKind::File => 0,
                IndexKind::Executable => 1,
                IndexKind::Symlink => 2,
            });
            r.extend_from_slice(&0u16.to_le_bytes());
            r.extend_from_slice(&e.stat.size.to_le_bytes());
            r.extend_from_slice(&e.stat.mtime.secs.to_le_bytes());
            r.extend_from_slice(&e.stat.mtime.nanos.to_le_bytes());
            r.extend_from_slice(&e.stat.ctime.nanos.to_le_bytes());
            r.extend_from_slice(&e.stat.ctime.secs.to_le_bytes());
            r.extend_from_slice(&e.stat.ino.to_le_bytes());
            r.extend_from_slice(&e.stat.dev.to_le_bytes());
            r.extend_from_slice(&e.content.0);
            r.extend_from_slice(&e.manifest.0);
            b.write_all(&r)?;
            off += (e.path.len() + tlen.unwrap_or(0)) as u32;
        }
        for (_, e) in &all {
            b.write_all(e.path.as_bytes())?;
            if let Some(t) = &e.target {
                b.write_all(t.as_bytes())?;
            }
        }
        b.write_all(&tail)?;
        let sum = b.hasher.finish();
        b.inner.write_all(&sum.0)
    }

    pub fn decode(b: &[u8]) -> Result<IndexFile, FormatError> {
        const W: &str = "index";
        let (v, body) = unseal(b)?;
        if v == 4 {
            let view = IndexView::parse_body(body)?;
            let mut f = IndexFile {
                written_at: view.written_at,
                entries: Vec::with_capacity(view.len()),
                tree: view.tail.tree,
                commit_memo: view.tail.commit_memo,
                resume: view.tail.resume.clone(),
                conflicts: Vec::new(),
            };
            for e in view.iter() {
                let owned = e.to_owned();
                match e.stage {
                    Stage::Merged => f.entries.push(owned),
                    stage => f.conflicts.push(ConflictEntry {
                        stage,
                        entry: owned,
                    }),
                }
            }
            return Ok(f);
        }
        let bad = |e: postcard::Error| FormatError::Decode {
            what: W,
            reason: e.to_string(),
        };
        let (idx, rest) = if v == 1 {
            let (old, rest): (IndexFileV1, _) =
                postcard::take_from_bytes(&body[12..]).map_err(bad)?;
            let idx = IndexFile {
                written_at: old.written_at,
                entries: old.entries,
                tree: None,
                commit_memo: None,
                resume: Vec::new(),
                conflicts: Vec::new(),
            };
            (idx, rest)
        } else if v == 2 {
            // Either layout that was written as "2" (see the module docs).
            match postcard::take_from_bytes::<IndexFileV3>(&body[12..]) {
                Ok((r, rest)) => (r.into(), rest),
                Err(_) => {
                    let (old, rest): (IndexFileV2, _) =
                        postcard::take_from_bytes(&body[12..]).map_err(bad)?;
                    let idx = IndexFile {
                        written_at: old.written_at,
                        entries: old.entries,
                        tree: old.tree,
                        commit_memo: old.commit_memo,
                        resume: Vec::new(),
                        conflicts: Vec::new(),
                    };
                    (idx, rest)
                }
            }
        } else {
            let (r, rest) = postcard::take_from_bytes::<IndexFileV3>(&body[12..]).map_err(bad)?;
            (r.into(), rest)
        };
        if !rest.is_empty() {
            return Err(FormatError::Decode {
                what: W,
                reason: "trailing bytes".into(),
            });
        }
        if idx
            .entries
            .windows(2)
            .any(|w| w[0].path.as_bytes() >= w[1].path.as_bytes())
        {
            return Err(FormatError::Decode {
                what: W,
                reason: "entries not sorted".into(),
            });
        }
        // What version 4 checks, so that every index read can be written
        // again as version 4.
        let bad_time = |t: &Timestamp| t.nanos >= 1_000_000_000;
        if bad_time(&idx.written_at)
            || idx
                .entries
                .iter()
                .any(|e| bad_time(&e.stat.mtime) || bad_time(&e.stat.ctime))
        {
            return Err(FormatError::Decode {
                what: W,
                reason: "a time with nanoseconds of a second or more".into(),
            });
        }
        for e in &idx.entries {
            crate::object::validate_path(&e.path).map_err(|err| FormatError::Decode {
                what: W,
                reason: format!("path {:?}: {err}", e.path),
            })?;
        }
        Ok(idx)
    }
}

/// Checks what every version shares: at least a header and a checksum,
/// the magic, a version this build reads, and the trailing SHA-256 of all
/// preceding bytes. Returns the version and those preceding bytes.
fn unseal(b: &[u8]) -> Result<(u32, &[u8]), FormatError> {
    const W: &str = "index";
    if b.len() < 12 + 32 {
        return Err(FormatError::Truncated {
            what: W,
            len: b.len(),
            need: 44,
        });
    }
    if &b[..8] != INDEX_MAGIC {
        return Err(FormatError::BadMagic { what: W });
    }
    let v = le_u32(b, 8);
    if !(INDEX_MIN_VERSION..=INDEX_VERSION).contains(&v) {
        return Err(FormatError::UnknownVersion {
            what: W,
            found: v,
            supported: INDEX_VERSION,
        });
    }
    let (body, sum) = b.split_at(b.len() - 32);
    if ObjectId::hash(body).0 != sum {
        return Err(FormatError::Checksum { what: W });
    }
    Ok((v, body))
}

/// Bytes before the first record in version 4: magic, version, entry
/// count, path-block length, tail length, flags, `written_at`, reserved.
const V4_HEADER: usize = 44;
/// One entry record in version 4.
const V4_RECORD: usize = 128;
/// `target_len` of an entry without a symlink target.
const NO_TARGET: u32 = u32::MAX;

#[derive(Serialize)]
struct IndexTail<'a> {
    tree: Option<ObjectId>,
    commit_memo: Option<CommitMemo>,
    resume: &'a [ResumePoints],
}

#[derive(Deserialize)]
struct IndexTailOwned {
    tree: Option<ObjectId>,
    commit_memo: Option<CommitMemo>,
    resume: Vec<ResumePoints>,
}

/// A version 4 index read in place: every length, offset, kind, stage and
/// order checked once by [`IndexView::parse`], then entries are read from
/// the bytes as they are asked for, paths borrowed.
pub struct IndexView<'a> {
    pub written_at: Timestamp,
    records: &'a [u8],
    names: &'a [u8],
    tail: IndexTailOwned,
}

/// One entry of an [`IndexView`], its path and target borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub path: &'a str,
    pub stage: Stage,
    pub kind: IndexKind,
    pub stat: StatInfo,
    pub content: ObjectId,
    pub manifest: ObjectId,
    pub target: Option<&'a str>,
}

impl EntryRef<'_> {
    pub fn to_owned(&self) -> IndexEntry {
        IndexEntry {
            path: self.path.to_string(),
            kind: self.kind,
            stat: self.stat,
            content: self.content,
            manifest: self.manifest,
            target: self.target.map(str::to_string),
        }
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn id_at(b: &[u8], at: usize) -> ObjectId {
    let mut a = [0u8; 32];
    if let Some(s) = b.get(at..at + 32) {
        a.copy_from_slice(s);
    }
    ObjectId(a)
}

impl<'a> IndexView<'a> {
    /// Checks a version 4 index completely (checksum, sizes, every record,
    /// UTF-8 paths, order) without allocating per entry.
    pub fn parse(b: &'a [u8]) -> Result<IndexView<'a>, FormatError> {
        match unseal(b)? {
            (4, body) => IndexView::parse_body(body),
            (v, _) => Err(FormatError::UnknownVersion {
                what: "index",
                found: v,
                supported: INDEX_VERSION,
            }),
        }
    }

    /// [`IndexView::parse`] of a version 4 file whose envelope
    /// ([`unseal`]) was checked: `b` is the file without its checksum.
    fn parse_body(b: &'a [u8]) -> Result<IndexView<'a>, FormatError> {
        const W: &str = "index";
        let bad = |reason: String| FormatError::Decode { what: W, reason };
        if b.len() < V4_HEADER {
            return Err(FormatError::Truncated {
                what: W,
                len: b.len() + 32,
                need: V4_HEADER + 32,
            });
        }
        let count = le_u32(b, 12) as usize;
        let names_len = le_u32(b, 16) as usize;
        let tail_len = le_u32(b, 20) as usize;
        if le_u32(b, 24) != 0 || le_u32(b, 40) != 0 {
            return Err(bad("reserved header fields are not zero".into()));
        }
        // Lengths first, in u64: nothing is sliced before it is known to fit.
        let want =
            V4_HEADER as u64 + count as u64 * V4_RECORD as u64 + names_len as u64 + tail_len as u64;
        if want != b.len() as u64 {
            return Err(bad(format!(
                "{count} entries, {names_len} path bytes and a {tail_len}-byte tail need {want} bytes before the checksum, found {}",
                b.len()
            )));
        }
        let written_at = Timestamp {
            secs: le_u64(b, 28) as i64,
            nanos: le_u32(b, 36),
        };
        let rec_end = V4_HEADER + count * V4_RECORD;
        let records = &b[V4_HEADER..rec_end];
        let names = &b[rec_end..rec_end + names_len];
        let tail_bytes = &b[rec_end + names_len..];
        let (tail, rest): (IndexTailOwned, _) =
            postcard::take_from_bytes(tail_bytes).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes".into()));
        }
        let view = IndexView {
            written_at,
            records,
            names,
            tail,
        };
        if written_at.nanos >= 1_000_000_000 {
            return Err(bad("written_at has nanoseconds of a second or more".into()));
        }
        let mut next_name = 0usize;
        let mut prev: Option<(&[u8], Stage)> = None;
        for i in 0..count {
            let r = &records[i * V4_RECORD..(i + 1) * V4_RECORD];
            let at = |what: &str| bad(format!("entry {i}: {what}"));
            let off = le_u32(r, 0) as usize;
            let plen = le_u32(r, 4) as usize;
            let tlen = match le_u32(r, 8) {
                NO_TARGET => 0,
                n => n as usize,
            };
            if off != next_name || off + plen + tlen > names_len {
                return Err(at("path bytes out of place"));
            }
            next_name = off + plen + tlen;
            let path = &names[off..off + plen];
            match std::str::from_utf8(path) {
                Ok(p) => {
                    if let Err(e) = crate::object::validate_path(p) {
                        return Err(at(&format!("path {p:?}: {e}")));
                    }
                }
                Err(_) => return Err(at("path not UTF-8")),
            }
            if std::str::from_utf8(&names[off + plen..off + plen + tlen]).is_err() {
                return Err(at("symlink target not UTF-8"));
            }
            let Some(stage) = Stage::from_u8(r[12]) else {
                return Err(at("unknown stage"));
            };
            if r[13] > 2 || r[14] != 0 || r[15] != 0 {
                return Err(at("unknown kind or reserved bytes set"));
            }
            if le_u32(r, 32) >= 1_000_000_000 || le_u32(r, 36) >= 1_000_000_000 {
                return Err(at("a time has nanoseconds of a second or more"));
            }
            if let Some((p, s)) = prev {
                let ordered = match p.cmp(path) {
                    std::cmp::Ordering::Less => true,
                    // Stages of one path ascend, and a merged entry is alone.
                    std::cmp::Ordering::Equal => {
                        s != Stage::Merged && stage != Stage::Merged && s < stage
                    }
                    std::cmp::Ordering::Greater => false,
                };
                if !ordered {
                    return Err(at("entries not sorted by path and stage, or a path both merged and conflicted"));
                }
            }
            prev = Some((path, stage));
        }
        if next_name != names_len {
            return Err(bad("path bytes left over".into()));
        }
        Ok(view)
    }

    pub fn len(&self) -> usize {
        self.records.len() / V4_RECORD
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn tree(&self) -> Option<ObjectId> {
        self.tail.tree
    }

    pub fn commit_memo(&self) -> Option<CommitMemo> {
        self.tail.commit_memo
    }

    pub fn resume(&self) -> &[ResumePoints] {
        &self.tail.resume
    }

    /// Entry `i` (below [`IndexView::len`]); its fields were checked by
    /// `parse`.
    pub fn entry(&self, i: usize) -> EntryRef<'a> {
        let r = self
            .records
            .get(i * V4_RECORD..(i + 1) * V4_RECORD)
            .unwrap_or(&[]);
        let names: &'a [u8] = self.names;
        let off = le_u32(r, 0) as usize;
        let plen = le_u32(r, 4) as usize;
        let target = match le_u32(r, 8) {
            NO_TARGET => None,
            n => Some(
                names
                    .get(off + plen..off + plen + n as usize)
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .unwrap_or(""),
            ),
        };
        let path = names
            .get(off..off + plen)
            .and_then(|p| std::str::from_utf8(p).ok())
            .unwrap_or("");
        EntryRef {
            path,
            stage: Stage::from_u8(r.get(12).copied().unwrap_or(0)).unwrap_or(Stage::Merged),
            kind: match r.get(13) {
                Some(1) => IndexKind::Executable,
                Some(2) => IndexKind::Symlink,
                _ => IndexKind::File,
            },
            stat: StatInfo {
                size: le_u64(r, 16),
                mtime: Timestamp {
                    secs: le_u64(r, 24) as i64,
                    nanos: le_u32(r, 32),
                },
                ctime: Timestamp {
                    secs: le_u64(r, 40) as i64,
                    nanos: le_u32(r, 36),
                },
                ino: le_u64(r, 48),
                dev: le_u64(r, 56),
            },
            content: id_at(r, 64),
            manifest: id_at(r, 96),
            target,
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = EntryRef<'a>> + '_ {
        (0..self.len()).map(|i| self.entry(i))
    }
}

/// Passes bytes on and hashes them (the index's closing checksum).
struct HashingWriter<'w, W: std::io::Write + ?Sized> {
    inner: &'w mut W,
    hasher: crate::id::Hasher,
}

impl<W: std::io::Write + ?Sized> HashingWriter<'_, W> {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.hasher.update(b);
        self.inner.write_all(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index file of `version` around a postcard `body`, as a writer of
    /// that version would seal it.
    fn seal(version: u32, body: Vec<u8>) -> Vec<u8> {
        let mut b = INDEX_MAGIC.to_vec();
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(&body);
        let sum = ObjectId::hash(&b);
        b.extend_from_slice(&sum.0);
        b
    }

    #[test]
    fn round_trip_and_checksum() {
        let idx = IndexFile {
            written_at: Timestamp { secs: 5, nanos: 1 },
            entries: vec![IndexEntry {
                path: "a/b.jpg".into(),
                kind: IndexKind::File,
                stat: StatInfo::default(),
                content: ObjectId::hash(b"c"),
                manifest: ObjectId::hash(b"m"),
                target: None,
            }],
            tree: Some(ObjectId::hash(b"t")),
            commit_memo: Some(CommitMemo {
                commit: ObjectId::hash(b"c"),
                tree: ObjectId::hash(b"t"),
                pack: ObjectId::hash(b"p"),
            }),
            resume: vec![ResumePoints {
                manifest: ObjectId::hash(b"m"),
                checkpoints: vec![HashCheckpoint {
                    chunks: 3,
                    offset: 128,
                    state: [7; 8],
                }],
            }],
            conflicts: vec![],
        };
        let mut b = idx.encode();
        assert_eq!(IndexFile::decode(&b).unwrap(), idx);
        b[14] ^= 0xff;
        assert!(IndexFile::decode(&b).is_err());
    }

    #[test]
    fn version_1_is_read_without_a_tree_and_newer_versions_are_refused() {
        #[derive(Serialize)]
        struct V1<'a> {
            written_at: Timestamp,
            entries: &'a [IndexEntry],
        }
        let entries = vec![IndexEntry {
            path: "x".into(),
            kind: IndexKind::Executable,
            stat: StatInfo::default(),
            content: ObjectId::hash(b"c"),
            manifest: ObjectId::hash(b"m"),
            target: None,
        }];
        let t = Timestamp { secs: 9, nanos: 0 };
        let body = postcard::to_stdvec(&V1 {
            written_at: t,
            entries: &entries,
        })
        .unwrap();
        let old = IndexFile::decode(&seal(1, body.clone())).unwrap();
        assert_eq!(old.entries, entries);
        assert_eq!(old.written_at, t);
        assert_eq!(old.tree, None);
        assert_eq!(old.commit_memo, None);
        assert!(old.resume.is_empty());
        assert!(matches!(
            IndexFile::decode(&seal(5, body)),
            Err(FormatError::UnknownVersion { found: 5, .. })
        ));
    }

    #[test]
    fn both_layouts_written_as_version_2_are_read() {
        #[derive(Serialize)]
        struct V2<'a> {
            written_at: Timestamp,
            entries: &'a [IndexEntry],
            tree: Option<ObjectId>,
            commit_memo: Option<CommitMemo>,
        }
        let entries = vec![IndexEntry {
            path: "clip.mov".into(),
            kind: IndexKind::File,
            stat: StatInfo::default(),
            content: ObjectId::hash(b"c"),
            manifest: ObjectId::hash(b"m"),
            target: None,
        }];
        let memo = Some(CommitMemo {
            commit: ObjectId::hash(b"k"),
            tree: ObjectId::hash(b"t"),
            pack: ObjectId::hash(b"p"),
        });
        // As 8d04f6f wrote it: no resume table.
        let body = postcard::to_stdvec(&V2 {
            written_at: Timestamp { secs: 3, nanos: 0 },
            entries: &entries,
            tree: Some(ObjectId::hash(b"t")),
            commit_memo: memo,
        })
        .unwrap();
        let old = IndexFile::decode(&seal(2, body)).unwrap();
        assert_eq!(old.entries, entries);
        assert_eq!(old.commit_memo, memo);
        assert!(old.resume.is_empty());
        // As 15528a4..2a78a03 wrote it: the version 3 body numbered 2.
        let idx = IndexFileV3 {
            written_at: Timestamp { secs: 3, nanos: 0 },
            entries,
            tree: None,
            commit_memo: memo,
            resume: vec![ResumePoints {
                manifest: ObjectId::hash(b"m"),
                checkpoints: vec![HashCheckpoint {
                    chunks: 1,
                    offset: 64,
                    state: [1; 8],
                }],
            }],
        };
        let body = postcard::to_stdvec(&idx).unwrap();
        let v3 = IndexFile::decode(&seal(3, body.clone())).unwrap();
        assert_eq!(v3, IndexFile::from(idx));
        assert_eq!(IndexFile::decode(&seal(2, body)).unwrap(), v3);
    }

    fn entry(path: &str, kind: IndexKind, n: u8) -> IndexEntry {
        IndexEntry {
            path: path.into(),
            kind,
            stat: StatInfo {
                size: 1000 + n as u64,
                mtime: Timestamp {
                    secs: -5 + n as i64,
                    nanos: 999_999_999,
                },
                ctime: Timestamp {
                    secs: 1_700_000_000,
                    nanos: n as u32,
                },
                ino: u64::MAX - n as u64,
                dev: 7,
            },
            content: ObjectId::hash(&[n]),
            manifest: if kind == IndexKind::Symlink {
                ObjectId::ZERO
            } else {
                ObjectId::hash(&[n, n])
            },
            target: (kind == IndexKind::Symlink).then(|| format!("../t\u{e9}rget{n}")),
        }
    }

    fn with_conflicts() -> IndexFile {
        let side = |stage, n| ConflictEntry {
            stage,
            entry: entry("b/clip.mov", IndexKind::File, n),
        };
        IndexFile {
            written_at: Timestamp {
                secs: 1_800_000_000,
                nanos: 5,
            },
            entries: vec![
                entry("a.psd", IndexKind::File, 1),
                entry("b/c\u{e9}.wav", IndexKind::Executable, 2),
                entry("link", IndexKind::Symlink, 3),
            ],
            tree: None,
            commit_memo: None,
            resume: vec![],
            conflicts: vec![
                side(Stage::Base, 4),
                side(Stage::Ours, 5),
                side(Stage::Theirs, 6),
            ],
        }
    }

    #[test]
    fn version_4_keeps_conflict_stages_and_reads_in_place() {
        let idx = with_conflicts();
        let b = idx.encode();
        assert_eq!(&b[8..12], &4u32.to_le_bytes());
        assert_eq!(IndexFile::decode(&b).unwrap(), idx);
        let view = IndexView::parse(&b).unwrap();
        let seen: Vec<(&str, Stage, Option<&str>)> =
            view.iter().map(|e| (e.path, e.stage, e.target)).collect();
        assert_eq!(
            seen,
            vec![
                ("a.psd", Stage::Merged, None),
                ("b/clip.mov", Stage::Base, None),
                ("b/clip.mov", Stage::Ours, None),
                ("b/clip.mov", Stage::Theirs, None),
                ("b/c\u{e9}.wav", Stage::Merged, None),
                ("link", Stage::Merged, Some("../t\u{e9}rget3")),
            ]
        );
        assert_eq!(view.entry(5).to_owned(), idx.entries[2]);
    }

    /// Rewrites a version 4 file's checksum after `f` changed its bytes.
    fn tamper(b: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = b.to_vec();
        f(&mut b);
        let n = b.len() - 32;
        let sum = ObjectId::hash(&b[..n]);
        b[n..].copy_from_slice(&sum.0);
        b
    }

    #[test]
    fn crafted_version_4_files_are_refused_without_panicking() {
        let b = with_conflicts().encode();
        let rec = |i: usize, at: usize| V4_HEADER + i * V4_RECORD + at;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "count",
                tamper(&b, |b| b[12..16].copy_from_slice(&u32::MAX.to_le_bytes())),
            ),
            (
                "names",
                tamper(&b, |b| {
                    b[16..20].copy_from_slice(&(u32::MAX - 3).to_le_bytes())
                }),
            ),
            (
                "tail",
                tamper(&b, |b| b[20..24].copy_from_slice(&0u32.to_le_bytes())),
            ),
            ("flags", tamper(&b, |b| b[24] = 1)),
            (
                "written nanos",
                tamper(&b, |b| {
                    b[36..40].copy_from_slice(&1_000_000_000u32.to_le_bytes())
                }),
            ),
            ("offset", tamper(&b, |b| b[rec(1, 0)] ^= 1)),
            (
                "path length",
                tamper(&b, |b| {
                    b[rec(0, 4)..rec(0, 8)].copy_from_slice(&0u32.to_le_bytes())
                }),
            ),
            (
                "target length",
                tamper(&b, |b| {
                    b[rec(5, 8)..rec(5, 12)].copy_from_slice(&(u32::MAX - 1).to_le_bytes())
                }),
            ),
            ("stage", tamper(&b, |b| b[rec(1, 12)] = 4)),
            ("merged and conflicted", tamper(&b, |b| b[rec(1, 12)] = 0)),
            ("stage order", tamper(&b, |b| b[rec(2, 12)] = 1)),
            ("kind", tamper(&b, |b| b[rec(0, 13)] = 3)),
            ("reserved", tamper(&b, |b| b[rec(0, 14)] = 1)),
            (
                "mtime nanos",
                tamper(&b, |b| {
                    b[rec(0, 32)..rec(0, 36)].copy_from_slice(&u32::MAX.to_le_bytes())
                }),
            ),
            // "a.psd" -> "z.psd": out of order.
            (
                "order",
                tamper(&b, |b| {
                    let at = V4_HEADER + 6 * V4_RECORD;
                    b[at] = b'z';
                }),
            ),
            (
                "utf-8",
                tamper(&b, |b| {
                    let at = V4_HEADER + 6 * V4_RECORD + 1;
                    b[at] = 0xff;
                }),
            ),
            ("short", tamper(&b[..60], |_| {})),
        ];
        for (what, bytes) in cases {
            assert!(IndexView::parse(&bytes).is_err(), "{what} accepted");
            assert!(IndexFile::decode(&bytes).is_err(), "{what} decoded");
        }
        assert!(IndexView::parse(&b).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn version_4_round_trips(
            names in proptest::collection::btree_set("[a-z\u{e9}]{1,5}(/[a-z\u{e9} .]{0,4}[a-z]){0,2}", 0..40),
            kinds in proptest::collection::vec(0u8..3, 40),
            conflicted in proptest::collection::vec(proptest::bool::ANY, 40),
        ) {
            let mut idx = IndexFile::default();
            for (i, name) in names.iter().enumerate() {
                let kind = [IndexKind::File, IndexKind::Executable, IndexKind::Symlink][kinds[i] as usize];
                let e = entry(name, kind, i as u8);
                if conflicted[i] {
                    for stage in [Stage::Ours, Stage::Theirs] {
                        idx.conflicts.push(ConflictEntry { stage, entry: e.clone() });
                    }
                } else {
                    idx.entries.push(e);
                }
            }
            let b = idx.encode();
            proptest::prop_assert_eq!(IndexFile::decode(&b).unwrap(), idx);
        }
    }

    #[test]
    fn paths_that_leave_the_working_tree_or_name_the_repository_are_refused() {
        for bad in [
            "../outside",
            "d/../../outside",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "d/",
            ".mediagit/config.toml",
            "x/.MediaGit./packs",
            "back\\slash",
            "nul\0byte",
        ] {
            let idx = IndexFile {
                entries: vec![entry(bad, IndexKind::File, 1)],
                ..Default::default()
            };
            let err = IndexFile::decode(&idx.encode()).unwrap_err().to_string();
            assert!(err.contains("path"), "{bad}: {err}");
            let v3 = IndexFileV3 {
                written_at: Timestamp::default(),
                entries: idx.entries.clone(),
                tree: None,
                commit_memo: None,
                resume: vec![],
            };
            let body = postcard::to_stdvec(&v3).unwrap();
            assert!(
                IndexFile::decode(&seal(3, body)).is_err(),
                "{bad} read as v3"
            );
        }
        let ok = IndexFile {
            entries: vec![entry("a/b c/.hidden/\u{e9}", IndexKind::File, 1)],
            ..Default::default()
        };
        assert_eq!(IndexFile::decode(&ok.encode()).unwrap(), ok);
    }
}
