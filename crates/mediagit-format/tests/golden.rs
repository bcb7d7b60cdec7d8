//! Golden byte vectors: each encoded structure of the format, built from
//! fixed values, must encode to exactly these bytes (compared by SHA-256
//! and length) and decode back. A change to any layout without a version
//! bump fails here; a deliberate one updates the vector *and* bumps the
//! version in the same commit, with a reader for the old bytes (FORMAT.md §1).
use mediagit_format::config::RepoConfig;
use mediagit_format::index::{CommitMemo, HashCheckpoint, IndexEntry, IndexFile, IndexKind};
use mediagit_format::index::{ConflictEntry, ResumePoints, Stage, StatInfo};
use mediagit_format::object::Timestamp;
use mediagit_format::pack::{self, Codec, EntryHeader, IdxEntry, PackIndex};
use mediagit_format::{Commit, EntryKind, Manifest, ManifestChunk, ObjectId, ObjectKind};
use mediagit_format::{Signature, Tag, Tree, TreeEntry};

fn id(s: &str) -> ObjectId {
    ObjectId::hash(s.as_bytes())
}

fn sig() -> Signature {
    Signature {
        name: "Golden Fixture".into(),
        email: "golden@example.com".into(),
        time: 1_767_225_600,
        tz_offset_minutes: 60,
    }
}

/// (name, bytes) of every structure.
fn vectors() -> Vec<(&'static str, Vec<u8>)> {
    let t = Timestamp {
        secs: 1_767_225_600,
        nanos: 123_456_789,
    };
    let manifest = Manifest {
        content: id("content"),
        size: 300,
        chunks: vec![
            ManifestChunk {
                id: id("c1"),
                len: 100,
            },
            ManifestChunk {
                id: id("c2"),
                len: 200,
            },
        ],
    };
    let tree = Tree {
        entries: vec![
            TreeEntry {
                name: "clip.mov".into(),
                kind: EntryKind::File {
                    executable: false,
                    size: 300,
                    mtime: t,
                    content: id("content"),
                    manifest: id("manifest"),
                },
            },
            TreeEntry {
                name: "footage".into(),
                kind: EntryKind::Dir { tree: id("sub") },
            },
            TreeEntry {
                name: "link".into(),
                kind: EntryKind::Symlink {
                    target: "clip.mov".into(),
                    mtime: t,
                },
            },
            TreeEntry {
                name: "run.sh".into(),
                kind: EntryKind::File {
                    executable: true,
                    size: 0,
                    mtime: t,
                    content: id(""),
                    manifest: id("empty"),
                },
            },
        ],
    };
    let commit = Commit {
        tree: id("tree"),
        parents: vec![id("p1"), id("p2")],
        author: sig(),
        committer: sig(),
        message: "v2: café\n".into(),
    };
    let tag = Tag {
        target: id("commit"),
        name: "v2".into(),
        tagger: sig(),
        message: "release\n".into(),
    };
    let header = EntryHeader {
        kind: ObjectKind::Chunk,
        codec: Codec::Zstd,
        raw_len: 1000,
        stored_len: 77,
        id: id("c1"),
    };
    let idx = PackIndex {
        pack: id("pack"),
        entries: vec![
            IdxEntry {
                id: id("a"),
                offset: 16,
                kind: ObjectKind::Chunk,
                codec: Codec::Raw,
                raw_len: 5,
                stored_len: 5,
            },
            IdxEntry {
                id: id("b"),
                offset: 65,
                kind: ObjectKind::Manifest,
                codec: Codec::Zstd,
                raw_len: 90,
                stored_len: 60,
            },
        ],
    };
    let index = golden_index(true);
    vec![
        ("manifest", manifest.encode()),
        ("tree", tree.encode()),
        ("commit", commit.encode()),
        ("tag", tag.encode()),
        ("pack header", pack::encode_pack_header().to_vec()),
        ("entry header", header.encode().to_vec()),
        ("pack index", idx.encode()),
        ("worktree index", index.encode()),
        ("config.toml", RepoConfig::new(false).to_toml().into_bytes()),
    ]
}

/// The worktree index of the golden vectors (`t` and `id` as there).
fn golden_index(with_conflict: bool) -> IndexFile {
    let t = Timestamp {
        secs: 1_767_225_600,
        nanos: 123_456_789,
    };
    IndexFile {
        written_at: t,
        entries: vec![IndexEntry {
            path: "footage/clip.mov".into(),
            kind: IndexKind::File,
            stat: StatInfo {
                size: 300,
                mtime: t,
                ctime: t,
                ino: 42,
                dev: 7,
            },
            content: id("content"),
            manifest: id("manifest"),
            target: None,
        }],
        tree: Some(id("tree")),
        commit_memo: Some(CommitMemo {
            commit: id("commit"),
            tree: id("tree"),
            pack: id("pack"),
        }),
        resume: vec![ResumePoints {
            manifest: id("manifest"),
            checkpoints: vec![HashCheckpoint {
                chunks: 1,
                offset: 64,
                state: [1, 2, 3, 4, 5, 6, 7, 8],
            }],
        }],
        conflicts: if with_conflict {
            [Stage::Ours, Stage::Theirs]
                .into_iter()
                .map(|stage| ConflictEntry {
                    stage,
                    entry: IndexEntry {
                        path: "footage/edit.prproj".into(),
                        kind: IndexKind::File,
                        stat: StatInfo::default(),
                        content: id(if stage == Stage::Ours {
                            "ours"
                        } else {
                            "theirs"
                        }),
                        manifest: id("m2"),
                        target: None,
                    },
                })
                .collect()
        } else {
            vec![]
        },
    }
}

/// SHA-256 and length of each vector, as this format version writes them.
const GOLDEN: &[(&str, &str, usize)] = &[
    (
        "manifest",
        "c6d8f607a11f6819de95eb9f2de793c04afe560d289edbda8bcc85c58e53a2d9",
        103,
    ),
    (
        "tree",
        "c7f3c4cebc815c1c00d5a827f85d3247881ae3dfe08d392e0a3442f749144e74",
        236,
    ),
    (
        "commit",
        "959222b7b94e01e24218378ecbe3e75ad0d569faa5db22a7e8471a4d9c335c13",
        189,
    ),
    (
        "tag",
        "70b092b8848409f2ae3748fdfa6e7f486cf5cbd17309fe84539eeb92460e3a40",
        85,
    ),
    (
        "pack header",
        "dea59dedd9cb3e19edbee786833745411040810e0f25fd3aed17b941124ea12c",
        16,
    ),
    (
        "entry header",
        "32d5909ec006b5663b1da9128f94d935bd2a822f43b2fa764c54a81598fb7e67",
        44,
    ),
    (
        "pack index",
        "70401445d6c02b740f95bf1a2c25c24cf3545e0b6391deb778e6e3bd154d494a",
        184,
    ),
    (
        "worktree index",
        "0788837dda2d248bd1b26012698465397d6d37ab7932a24dc3d7670142400dad",
        688,
    ),
    (
        "config.toml",
        "59e3ecacc704bfa120c99d189ee52706c88a26c3aab2a7210c0aa496a700f4ed",
        193,
    ),
];

/// `config.toml` as format version 1 wrote it (every build up to 35a5c14;
/// SHA-256 7c25b1f6…). Still read, and written back unchanged.
const CONFIG_V1: &str = "[format]
version = 1
chunk_id = \"sha256\"

[chunking]
min_size = 131072
avg_size = 524288
max_size = 2097152

[compression]
level = 3

[core]
bare = false
";

#[test]
fn a_version_1_config_is_read_and_kept_at_version_1() {
    assert_eq!(
        ObjectId::hash(CONFIG_V1.as_bytes()).to_string(),
        "7c25b1f6c4ba8eae6ec352581da83f06c552ce6bb8138db3e4c89b401682d89b"
    );
    let c = RepoConfig::from_toml(CONFIG_V1).unwrap();
    assert_eq!(c.format.version, 1);
    assert!(c.format.required_features.is_empty() && c.format.optional_features.is_empty());
    assert_eq!(c.to_toml(), CONFIG_V1);
}

#[test]
fn every_structure_encodes_to_its_golden_bytes() {
    let got: Vec<(&str, String, usize)> = vectors()
        .into_iter()
        .map(|(n, b)| (n, ObjectId::hash(&b).to_string(), b.len()))
        .collect();
    if GOLDEN.is_empty() || std::env::var_os("MEDIAGIT_PRINT_GOLDEN").is_some() {
        for (n, h, l) in &got {
            println!("    ({n:?}, {h:?}, {l}),");
        }
    }
    assert_eq!(
        got.len(),
        GOLDEN.len(),
        "a structure without a golden vector"
    );
    for ((n, h, l), (gn, gh, gl)) in got.iter().zip(GOLDEN) {
        assert_eq!(
            (*n, h.as_str(), *l),
            (*gn, *gh, *gl),
            "{n}: layout changed without a version bump"
        );
    }
}

/// The golden worktree index as the builds from 2a78a03 to f767257 wrote
/// it (version 3; the file's SHA-256 is the golden value those builds
/// checked). Every build must keep reading it.
#[test]
fn worktree_index_version_3_still_reads() {
    let b = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/index-v3.bin"
    ))
    .unwrap();
    assert_eq!(
        ObjectId::hash(&b).to_string(),
        "71d519f54e60f22ba88e8f305c37fa5556bc93dcf4fb6093eece23a2f9b222d7"
    );
    assert_eq!(&b[8..12], &3u32.to_le_bytes());
    let idx = IndexFile::decode(&b).unwrap();
    assert_eq!(idx, golden_index(false));
    // Written again, it is version 4 and reads back the same.
    let again = idx.encode();
    assert_eq!(&again[8..12], &4u32.to_le_bytes());
    assert_eq!(IndexFile::decode(&again).unwrap(), idx);
}

#[test]
fn golden_bytes_decode_back() {
    for (name, b) in vectors() {
        let ok = match name {
            "manifest" => Manifest::decode(&b).map(|v| v.encode() == b),
            "tree" => Tree::decode(&b).map(|v| v.encode() == b),
            "commit" => Commit::decode(&b).map(|v| v.encode() == b),
            "tag" => Tag::decode(&b).map(|v| v.encode() == b),
            "pack header" => pack::decode_pack_header(&b).map(|_| true),
            "entry header" => EntryHeader::decode(&b).map(|v| v.encode().to_vec() == b),
            "pack index" => PackIndex::decode(&b).map(|v| v.encode() == b),
            "worktree index" => IndexFile::decode(&b).map(|v| v.encode() == b),
            "config.toml" => RepoConfig::from_toml(std::str::from_utf8(&b).unwrap())
                .map(|v| v.to_toml().into_bytes() == b),
            other => panic!("no decoder for {other}"),
        };
        assert!(ok.unwrap_or_else(|e| panic!("{name}: {e}")), "{name}");
    }
}
