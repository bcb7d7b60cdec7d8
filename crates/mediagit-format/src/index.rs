//! The worktree index (`.mediagit/index`): what is staged, plus a stat cache.
//!
//! Layout: magic `MGINDEX\0`, version (u32 LE), the postcard encoding of
//! [`IndexFile`], then the SHA-256 of all preceding bytes. Version 2 added
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
pub const INDEX_VERSION: u32 = 3;
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

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(INDEX_MAGIC);
        b.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        let body = postcard::to_stdvec(self).expect("postcard encoding of plain data");
        b.extend_from_slice(&body);
        let sum = ObjectId::hash(&b);
        b.extend_from_slice(&sum.0);
        b
    }

    pub fn decode(b: &[u8]) -> Result<IndexFile, FormatError> {
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
        let v = u32::from_le_bytes(b[8..12].try_into().expect("4"));
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
            };
            (idx, rest)
        } else if v == 2 {
            // Either layout that was written as "2" (see the module docs).
            match postcard::take_from_bytes::<IndexFile>(&body[12..]) {
                Ok(r) => r,
                Err(_) => {
                    let (old, rest): (IndexFileV2, _) =
                        postcard::take_from_bytes(&body[12..]).map_err(bad)?;
                    let idx = IndexFile {
                        written_at: old.written_at,
                        entries: old.entries,
                        tree: old.tree,
                        commit_memo: old.commit_memo,
                        resume: Vec::new(),
                    };
                    (idx, rest)
                }
            }
        } else {
            postcard::take_from_bytes::<IndexFile>(&body[12..]).map_err(bad)?
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
        Ok(idx)
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
            IndexFile::decode(&seal(4, body)),
            Err(FormatError::UnknownVersion { found: 4, .. })
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
        let idx = IndexFile {
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
        let mut b = idx.encode();
        assert_eq!(&b[8..12], &3u32.to_le_bytes(), "written as version 3");
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        let n = b.len() - 32;
        let sum = ObjectId::hash(&b[..n]);
        b[n..].copy_from_slice(&sum.0);
        assert_eq!(IndexFile::decode(&b).unwrap(), idx);
    }
}
