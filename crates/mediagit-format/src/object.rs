//! Objects of the version history and their canonical encodings.
//!
//! Every object is encoded as one version byte ([`OBJECT_VERSION`]) followed
//! by the `postcard` encoding of the struct. The encoding is canonical: the
//! same value always gives the same bytes, so an object's id (the SHA-256 of
//! those bytes) is stable. Decoders refuse unknown versions, trailing bytes,
//! unsorted or duplicate tree entries and tree entry names that could escape
//! the working tree (`..`, `/`, NUL, empty).
use serde::{Deserialize, Serialize};

use crate::{FormatError, ObjectId};

/// Version byte that prefixes every encoded manifest, tree, commit and tag.
pub const OBJECT_VERSION: u8 = 1;

/// What a pack entry holds. The numeric values are part of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum ObjectKind {
    /// A piece of file content, as cut by the chunker. Id: SHA-256 of the bytes.
    Chunk = 1,
    /// The ordered list of chunks of one file.
    Manifest = 2,
    Tree = 3,
    Commit = 4,
    /// An annotated tag.
    Tag = 5,
}

impl ObjectKind {
    pub fn from_u8(v: u8) -> Option<ObjectKind> {
        Some(match v {
            1 => ObjectKind::Chunk,
            2 => ObjectKind::Manifest,
            3 => ObjectKind::Tree,
            4 => ObjectKind::Commit,
            5 => ObjectKind::Tag,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Chunk => "chunk",
            ObjectKind::Manifest => "manifest",
            ObjectKind::Tree => "tree",
            ObjectKind::Commit => "commit",
            ObjectKind::Tag => "tag",
        }
    }
}

/// One chunk of a file: its id and its length in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestChunk {
    pub id: ObjectId,
    pub len: u32,
}

/// The chunks of one file, in order. The file's own id (SHA-256 of the whole
/// content) is stored too, so a reader can verify the reassembled file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub content: ObjectId,
    pub size: u64,
    pub chunks: Vec<ManifestChunk>,
}

/// A point in time: seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A subdirectory.
    Dir { tree: ObjectId },
    /// A regular file.
    File {
        executable: bool,
        size: u64,
        mtime: Timestamp,
        /// SHA-256 of the whole content: what `sha256sum` prints.
        content: ObjectId,
        /// Id of the [`Manifest`] listing the content's chunks.
        manifest: ObjectId,
    },
    /// A symbolic link, stored as its target (never followed).
    Symlink { target: String, mtime: Timestamp },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    pub name: String,
    pub kind: EntryKind,
}

/// A directory: entries sorted by the bytes of their names, names unique.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tree {
    pub entries: Vec<TreeEntry>,
}

/// Who and when: name, email, time, and the UTC offset in minutes at that time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub name: String,
    pub email: String,
    pub time: i64,
    pub tz_offset_minutes: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub tree: ObjectId,
    pub parents: Vec<ObjectId>,
    pub author: Signature,
    pub committer: Signature,
    pub message: String,
}

/// An annotated tag: a name and message attached to a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub target: ObjectId,
    pub name: String,
    pub tagger: Signature,
    pub message: String,
}

/// Checks that a tree entry name is a single, safe path component.
pub fn validate_name(name: &str) -> Result<(), FormatError> {
    let bad = |reason| {
        // A forged name may be megabytes long: the error shows its start.
        let shown = match name.char_indices().nth(64) {
            Some((at, _)) => format!("{}...", &name[..at]),
            None => name.to_string(),
        };
        Err(FormatError::BadName {
            name: shown,
            reason,
        })
    };
    if name.len() > MAX_NAME_BYTES {
        return bad("longer than 1024 bytes (no filesystem stores such a name)");
    }
    if name.is_empty() {
        return bad("empty name");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not file names");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("contains a path separator");
    }
    if name.contains('\0') {
        return bad("contains a NUL byte");
    }
    if is_reserved_name(name) {
        return bad("'.mediagit' (in any case, with trailing dots or spaces, or as a short or stream name) is reserved for the repository itself");
    }
    Ok(())
}

/// Longest file or directory name a tree may hold, in bytes: 255
/// characters of 4 bytes (Linux allows 255 bytes; NTFS, HFS+ and APFS 255
/// UTF-16 units or characters). A reader refuses longer names, so a forged
/// tree cannot make one name cost megabytes each time it is listed.
pub const MAX_NAME_BYTES: usize = 1024;

/// Longest symlink target stored (Linux's `PATH_MAX` less its NUL).
pub const MAX_SYMLINK_TARGET: usize = 4095;

/// Checks a symlink target before it is stored or written out: not empty,
/// no NUL (no filesystem can hold one, and a checkout would fail half way),
/// at most [`MAX_SYMLINK_TARGET`] bytes. (UTF-8 is guaranteed by the type.)
pub fn validate_symlink_target(target: &str) -> Result<(), FormatError> {
    let bad = |reason| {
        Err(FormatError::BadName {
            name: target.chars().take(64).collect(),
            reason,
        })
    };
    if target.is_empty() {
        return bad("empty symlink target");
    }
    if target.contains('\0') {
        return bad("symlink target contains a NUL byte");
    }
    if target.len() > MAX_SYMLINK_TARGET {
        return bad("symlink target longer than 4095 bytes");
    }
    Ok(())
}

/// Whether `name` would name the repository's own `.mediagit` directory on
/// some filesystem: compared ASCII-case-insensitively (macOS, Windows),
/// ignoring trailing dots and spaces and an NTFS stream suffix (`:...`,
/// Windows), the characters HFS+ ignores (zero-width joiners and the like),
/// and as an 8.3 short name (`MEDIAG~1`). The same class of names as Git's
/// `verify_path` refuses for `.git` (CVE-2014-9390).
pub fn is_reserved_name(name: &str) -> bool {
    // Fast path (most names, checked for every path of every index read
    // and walk): an ASCII name has no ignorable code points, so it can
    // only match if it starts with '.' or 'm'.
    if name.is_ascii() && !matches!(name.as_bytes().first(), Some(b'.' | b'm' | b'M')) {
        return false;
    }
    // HFS+ ignores these code points when comparing names.
    let ignorable =
        |c: char| matches!(c as u32, 0x200C..=0x200F | 0x202A..=0x202E | 0x206A..=0x206F | 0xFEFF);
    // Folded, up to an NTFS stream suffix; compared without allocating
    // (every path of a 100,000-entry index is checked on each read).
    let folded = || {
        name.chars()
            .filter(move |&c| !ignorable(c))
            .take_while(|&c| c != ':')
            .map(|c| c.to_ascii_lowercase())
    };
    // Trailing dots and spaces do not count.
    let mut keep = 0;
    for (i, c) in folded().enumerate() {
        if c != ' ' && c != '.' {
            keep = i + 1;
        }
    }
    let base = || folded().take(keep);
    if base().eq(".mediagit".chars()) {
        return true;
    }
    // 8.3 short names: "MEDIAG~1" (and ~2...~9, as Git checks "GIT~1").
    let mut rest = base();
    if "mediag~".chars().all(|p| rest.next() == Some(p)) {
        let mut digits = 0;
        for c in rest {
            if !c.is_ascii_digit() {
                return false;
            }
            digits += 1;
        }
        return digits > 0;
    }
    false
}

/// Checks a repository path (`/`-separated, relative to the working
/// tree): every component a valid tree entry name ([`validate_name`]), so
/// no empty component, no leading or trailing `/`, no `.` or `..`, nothing
/// reserved. What a tree can hold is exactly what a path may name.
pub fn validate_path(path: &str) -> Result<(), FormatError> {
    if path.is_empty() {
        return validate_name(path);
    }
    path.split('/').try_for_each(validate_name)
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![OBJECT_VERSION];
    // postcard cannot fail serializing these plain structs into a Vec.
    let body = postcard::to_stdvec(value).expect("postcard encoding of plain data");
    out.extend_from_slice(&body);
    out
}

fn decode<'a, T: Deserialize<'a> + Serialize>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, FormatError> {
    let value: T = decode_lenient(what, bytes)?;
    // One value, one byte string: a varint with redundant continuation bytes
    // (found by the fuzzer) decodes fine but would give the same value a
    // second id. Only the canonical encoding is accepted.
    if encode(&value) != bytes {
        return Err(FormatError::Decode {
            what,
            reason: "not the canonical encoding".into(),
        });
    }
    Ok(value)
}

fn decode_lenient<'a, T: Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, FormatError> {
    let (&version, body) = bytes.split_first().ok_or(FormatError::Truncated {
        what,
        len: 0,
        need: 1,
    })?;
    if version != OBJECT_VERSION {
        return Err(FormatError::UnknownVersion {
            what,
            found: version as u32,
            supported: OBJECT_VERSION as u32,
        });
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| FormatError::Decode {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(FormatError::Decode {
            what,
            reason: format!("{} trailing bytes", rest.len()),
        });
    }
    Ok(value)
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Manifest, FormatError> {
        let m: Manifest = decode("manifest", bytes)?;
        let total: u64 = m.chunks.iter().map(|c| c.len as u64).sum();
        if total != m.size {
            return Err(FormatError::Decode {
                what: "manifest",
                reason: format!("chunk lengths add up to {total}, manifest says {}", m.size),
            });
        }
        Ok(m)
    }
}

impl Tree {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Tree, FormatError> {
        let t: Tree = decode("tree", bytes)?;
        t.validate()?;
        Ok(t)
    }
    /// Names valid, symlink targets valid, times valid (nanoseconds below
    /// 10^9), entries strictly sorted by bytes (so unique).
    pub fn validate(&self) -> Result<(), FormatError> {
        for e in &self.entries {
            validate_name(&e.name)?;
            let mtime = match &e.kind {
                EntryKind::Dir { .. } => None,
                EntryKind::File { mtime, .. } => Some(mtime),
                EntryKind::Symlink { target, mtime } => {
                    validate_symlink_target(target)?;
                    Some(mtime)
                }
            };
            if mtime.is_some_and(|t| t.nanos >= 1_000_000_000) {
                return Err(FormatError::Decode {
                    what: "tree",
                    reason: format!(
                        "entry {:?} has a time with {} nanoseconds",
                        e.name,
                        mtime.map(|t| t.nanos).unwrap_or(0)
                    ),
                });
            }
        }
        for w in self.entries.windows(2) {
            if w[0].name.as_bytes() >= w[1].name.as_bytes() {
                return Err(FormatError::Decode {
                    what: "tree",
                    reason: format!(
                        "entries not strictly sorted ({:?} before {:?})",
                        w[0].name, w[1].name
                    ),
                });
            }
        }
        Ok(())
    }
    pub fn get(&self, name: &str) -> Option<&TreeEntry> {
        self.entries
            .binary_search_by(|e| e.name.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.entries[i])
    }
}

impl Commit {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Commit, FormatError> {
        decode("commit", bytes)
    }
    /// First line of the message.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

impl Tag {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Tag, FormatError> {
        decode("tag", bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sig() -> Signature {
        Signature {
            name: "A".into(),
            email: "a@example.com".into(),
            time: 1_700_000_000,
            tz_offset_minutes: 60,
        }
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        // The fuzzer's find: 127 written as a two-byte varint (0xff 0x00).
        let m = Manifest {
            content: ObjectId::ZERO,
            size: 127,
            chunks: vec![ManifestChunk {
                id: ObjectId::ZERO,
                len: 127,
            }],
        };
        let good = m.encode();
        assert_eq!(Manifest::decode(&good).unwrap(), m);
        let pos = good.iter().position(|&b| b == 127).unwrap();
        let mut bad = good[..pos].to_vec();
        bad.extend_from_slice(&[0xff, 0x00]);
        bad.extend_from_slice(&good[pos + 1..]);
        let err = Manifest::decode(&bad).unwrap_err().to_string();
        assert!(err.contains("canonical"), "{err}");
    }

    #[test]
    fn unknown_version_is_refused() {
        let mut b = Commit {
            tree: ObjectId::ZERO,
            parents: vec![],
            author: sig(),
            committer: sig(),
            message: "m".into(),
        }
        .encode();
        b[0] = 9;
        let err = Commit::decode(&b).unwrap_err();
        assert!(
            err.to_string().contains("unknown format version 9"),
            "{err}"
        );
    }

    #[test]
    fn hostile_tree_names_are_refused() {
        for name in [
            "..",
            ".",
            "a/b",
            "",
            "x\0y",
            ".mediagit",
            ".MEDIAGIT",
            ".MediaGit",
            ".mediagit ",
            ".mediagit.",
            ".MediaGit . .",
            ".mediagit::$INDEX_ALLOCATION",
            ".media\u{200c}git",
            "\u{feff}.mediagit",
            "\u{200d}MEDIAG~2",
            "MEDIAG~1",
            "mediag~4",
        ] {
            let t = Tree {
                entries: vec![TreeEntry {
                    name: name.into(),
                    kind: EntryKind::Dir {
                        tree: ObjectId::ZERO,
                    },
                }],
            };
            assert!(Tree::decode(&t.encode()).is_err(), "{name:?} accepted");
        }
    }

    #[test]
    fn names_near_the_reserved_one_are_allowed() {
        for name in [
            ".mediagitignore",
            ".mediagit-x",
            "mediagit",
            ".mediagi",
            "mediag~x",
            "a.mediagit",
        ] {
            assert!(validate_name(name).is_ok(), "{name:?} refused");
        }
    }

    #[test]
    fn hostile_symlink_targets_and_times_are_refused() {
        let tree = |kind| Tree {
            entries: vec![TreeEntry {
                name: "l".into(),
                kind,
            }],
        };
        for target in ["", "a\0b", &"x".repeat(4096)] {
            let t = tree(EntryKind::Symlink {
                target: target.to_string(),
                mtime: Timestamp::default(),
            });
            assert!(
                Tree::decode(&t.encode()).is_err(),
                "target {:?} accepted",
                &target[..target.len().min(8)]
            );
        }
        let ok = tree(EntryKind::Symlink {
            target: "../elsewhere".into(),
            mtime: Timestamp::default(),
        });
        assert!(Tree::decode(&ok.encode()).is_ok());
        let t = tree(EntryKind::File {
            executable: false,
            size: 1,
            mtime: Timestamp {
                secs: i64::MAX,
                nanos: 1_000_000_000,
            },
            content: ObjectId::ZERO,
            manifest: ObjectId::ZERO,
        });
        let err = Tree::decode(&t.encode()).unwrap_err().to_string();
        assert!(err.contains("nanoseconds"), "{err}");
    }

    #[test]
    fn unsorted_tree_refused_and_trailing_bytes_refused() {
        let e = |n: &str| TreeEntry {
            name: n.into(),
            kind: EntryKind::Symlink {
                target: "t".into(),
                mtime: Timestamp::default(),
            },
        };
        let t = Tree {
            entries: vec![e("b"), e("a")],
        };
        assert!(Tree::decode(&t.encode()).is_err());
        let mut ok = Tree {
            entries: vec![e("a"), e("b")],
        }
        .encode();
        assert!(Tree::decode(&ok).is_ok());
        ok.push(0);
        assert!(Tree::decode(&ok).is_err());
    }

    proptest! {
        #[test]
        fn manifest_round_trip(lens in proptest::collection::vec(1u32..1<<24, 0..50), seed in any::<u8>()) {
            let chunks: Vec<ManifestChunk> = lens.iter().enumerate().map(|(i, &len)| ManifestChunk { id: ObjectId::hash(&[seed, i as u8]), len }).collect();
            let m = Manifest { content: ObjectId::hash(&[seed]), size: lens.iter().map(|&l| l as u64).sum(), chunks };
            prop_assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn commit_round_trip(msg in ".*", name in "[a-zA-Z ]{0,20}", time in any::<i64>(), tz in -900i32..900, np in 0usize..3) {
            let s = Signature { name, email: "e@x".into(), time, tz_offset_minutes: tz };
            let c = Commit { tree: ObjectId::hash(b"t"), parents: (0..np).map(|i| ObjectId::hash(&[i as u8])).collect(), author: s.clone(), committer: s, message: msg };
            prop_assert_eq!(Commit::decode(&c.encode()).unwrap(), c);
        }

        #[test]
        fn tree_round_trip(names in proptest::collection::btree_set("[a-zA-Z0-9._ -]{1,12}", 0..20), size in any::<u64>()) {
            let entries: Vec<TreeEntry> = names.into_iter().filter(|n| validate_name(n).is_ok()).map(|name| TreeEntry { name, kind: EntryKind::File { executable: size % 2 == 0, size, mtime: Timestamp { secs: size as i64, nanos: 5 }, content: ObjectId::hash(b"c"), manifest: ObjectId::hash(b"m") } }).collect();
            let mut entries = entries;
            entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
            let t = Tree { entries };
            prop_assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Tree::decode(&bytes);
            let _ = Commit::decode(&bytes);
            let _ = Manifest::decode(&bytes);
            let _ = Tag::decode(&bytes);
        }
    }
}
