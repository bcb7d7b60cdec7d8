//! Writes the checked-in seed corpus, `fuzz/corpus-seed/<target>/`, from
//! real encodings made by the crates' own encoders (and, for JPEGs, by
//! ImageMagick's `convert` when it is installed). Run from `fuzz/`:
//!
//!     cargo run --release --example gen_seeds [--features repo]
//!
//! With `--features repo` the reflog and revision seeds come from a real
//! scratch repository; without it the reflog lines are written in the same
//! format by hand. Seeds are a few KB per target. The directory is
//! recreated on every run, so re-running after a format change refreshes it.
use std::path::{Path, PathBuf};
use std::process::Command;

use mediagit_format::config::StorageConfig;
use mediagit_format::index::{
    CommitMemo, ConflictEntry, HashCheckpoint, IndexEntry, IndexFile, IndexKind, ResumePoints,
    Stage, StatInfo,
};
use mediagit_format::journal::{encode_header, encode_record, JournalRecord};
use mediagit_format::object::Timestamp;
use mediagit_format::pack::{encode_pack_header, Codec, EntryHeader, IdxEntry, PackIndex};
use mediagit_format::{
    Commit, EntryKind, Manifest, ManifestChunk, ObjectId, ObjectKind, RepoConfig, Signature, Tag,
    Tree, TreeEntry,
};
use mediagit_pipeline::{compress_chunk, CompressionHint};

fn put(root: &Path, target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn sig() -> Signature {
    Signature {
        name: "Ann Lee".into(),
        email: "ann@example.com".into(),
        time: 1_700_000_000,
        tz_offset_minutes: -330,
    }
}

/// Deterministic bytes that do not compress.
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn entry(kind: ObjectKind, data: &[u8], hint: CompressionHint) -> Vec<u8> {
    let mut enc = Vec::new();
    let codec = compress_chunk(data, hint, 3, &mut enc).unwrap();
    let payload: &[u8] = if codec == Codec::Raw { data } else { &enc };
    let h = EntryHeader {
        kind,
        codec,
        raw_len: data.len() as u32,
        stored_len: payload.len() as u32,
        id: ObjectId::hash(data),
    };
    let mut b = h.encode().to_vec();
    b.extend_from_slice(payload);
    b
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus-seed");
    let _ = std::fs::remove_dir_all(&root);
    let ts = Timestamp {
        secs: 1_700_000_000,
        nanos: 123_456_789,
    };
    let chunk_a = b"the quick brown fox jumps over the lazy dog\n".repeat(40);
    let chunk_b = noise(300, 7);

    // decode_objects: one of each object kind, as `commit` writes them.
    let manifest = Manifest {
        content: ObjectId::hash(&[&chunk_a[..], &chunk_b[..]].concat()),
        size: (chunk_a.len() + chunk_b.len()) as u64,
        chunks: vec![
            ManifestChunk {
                id: ObjectId::hash(&chunk_a),
                len: chunk_a.len() as u32,
            },
            ManifestChunk {
                id: ObjectId::hash(&chunk_b),
                len: chunk_b.len() as u32,
            },
        ],
    };
    let sub = Tree {
        entries: vec![TreeEntry {
            name: "photo.jpg".into(),
            kind: EntryKind::File {
                executable: false,
                size: manifest.size,
                mtime: ts,
                content: manifest.content,
                manifest: ObjectId::hash(&manifest.encode()),
            },
        }],
    };
    let tree = Tree {
        entries: vec![
            TreeEntry {
                name: "README".into(),
                kind: sub.entries[0].kind.clone(),
            },
            TreeEntry {
                name: "latest".into(),
                kind: EntryKind::Symlink {
                    target: "shots/photo.jpg".into(),
                    mtime: ts,
                },
            },
            TreeEntry {
                name: "run.sh".into(),
                kind: EntryKind::File {
                    executable: true,
                    size: 0,
                    mtime: Timestamp::default(),
                    content: ObjectId::hash(b""),
                    manifest: ObjectId::hash(b"m"),
                },
            },
            TreeEntry {
                name: "shots".into(),
                kind: EntryKind::Dir {
                    tree: ObjectId::hash(&sub.encode()),
                },
            },
        ],
    };
    let root_commit = Commit {
        tree: ObjectId::hash(&sub.encode()),
        parents: vec![],
        author: sig(),
        committer: sig(),
        message: "commit (initial)\n".into(),
    };
    let merge = Commit {
        tree: ObjectId::hash(&tree.encode()),
        parents: vec![
            ObjectId::hash(&root_commit.encode()),
            ObjectId::hash(b"other"),
        ],
        author: sig(),
        committer: Signature {
            tz_offset_minutes: 60,
            time: 1_700_000_100,
            ..sig()
        },
        message: "Merge branch 'side'\n\nWith a body.\n".into(),
    };
    let tag = Tag {
        target: ObjectId::hash(&merge.encode()),
        name: "v1.0".into(),
        tagger: sig(),
        message: "release 1.0\n".into(),
    };
    let o = "decode_objects";
    put(&root, o, "manifest", manifest.encode());
    put(&root, o, "tree", tree.encode());
    put(&root, o, "tree-sub", sub.encode());
    put(&root, o, "tree-empty", Tree::default().encode());
    put(&root, o, "commit-root", root_commit.encode());
    put(&root, o, "commit-merge", merge.encode());
    put(&root, o, "tag", tag.encode());

    // decode_pack_index: a real index, and its body without the checksum
    // (the target appends the right one, so mutations of the body get past it).
    let ids = [
        ObjectId::hash(&chunk_a),
        ObjectId::hash(&chunk_b),
        ObjectId::hash(&tree.encode()),
    ];
    let idx = PackIndex {
        pack: ObjectId::hash(b"pack"),
        entries: ids
            .iter()
            .enumerate()
            .map(|(i, id)| IdxEntry {
                id: *id,
                offset: 16 + 100 * i as u64,
                kind: if i == 2 {
                    ObjectKind::Tree
                } else {
                    ObjectKind::Chunk
                },
                codec: if i == 0 { Codec::Zstd } else { Codec::Raw },
                raw_len: 300 + i as u32,
                stored_len: 60 + i as u32,
            })
            .collect(),
    };
    let enc = idx.encode();
    put(&root, "decode_pack_index", "idx", &enc);
    // decode_key_file: real key files (the cheapest accepted parameters),
    // with and without a label, and a sealed pack header.
    let master = mediagit_crypto::MasterKey::generate().expect("random");
    for (name, label) in [("key", "ann@laptop"), ("key-nolabel", "")] {
        let k = mediagit_crypto::KeyFile::create(
            &master,
            b"seed passphrase",
            mediagit_crypto::KdfParams::MIN,
            1_700_000_000,
            label,
        )
        .expect("key file");
        put(&root, "decode_key_file", name, k.encode());
    }
    put(
        &root,
        "decode_key_file",
        "sealed-pack-header",
        mediagit_format::pack::PackHeader::Sealed { salt: [7u8; 32] }.encode(),
    );
    put(
        &root,
        "decode_pack_index",
        "idx-unsealed",
        &enc[..enc.len() - 32],
    );
    let empty = PackIndex {
        pack: ObjectId::hash(b"empty"),
        entries: vec![],
    }
    .encode();
    put(
        &root,
        "decode_pack_index",
        "idx-empty-unsealed",
        &empty[..empty.len() - 32],
    );

    // decode_pack_entry: a pack with a zstd chunk, a raw chunk and a tree;
    // single entries on their own.
    let mut pack = encode_pack_header().to_vec();
    let e_zstd = entry(ObjectKind::Chunk, &chunk_a, CompressionHint::Try);
    let e_raw = entry(ObjectKind::Chunk, &chunk_b, CompressionHint::Try);
    let e_tree = entry(ObjectKind::Tree, &tree.encode(), CompressionHint::Try);
    for e in [&e_zstd, &e_raw, &e_tree] {
        pack.extend_from_slice(e);
    }
    let p = "decode_pack_entry";
    put(&root, p, "pack", &pack);
    put(&root, p, "pack-header", encode_pack_header());
    put(&root, p, "entry-zstd", &e_zstd);
    put(&root, p, "entry-raw", &e_raw[..EntryHeader::LEN + 40]);
    put(
        &root,
        p,
        "entry-commit",
        entry(ObjectKind::Commit, &merge.encode(), CompressionHint::Try),
    );

    // decode_worktree_index: version 2 with every field, its unsealed body,
    // and an empty index.
    let stat = StatInfo {
        size: manifest.size,
        mtime: ts,
        ctime: ts,
        ino: 1234,
        dev: 2049,
    };
    let index = IndexFile {
        written_at: ts,
        entries: vec![
            IndexEntry {
                path: "latest".into(),
                kind: IndexKind::Symlink,
                stat,
                content: ObjectId::hash(b"shots/photo.jpg"),
                manifest: ObjectId::ZERO,
                target: Some("shots/photo.jpg".into()),
            },
            IndexEntry {
                path: "run.sh".into(),
                kind: IndexKind::Executable,
                stat: StatInfo::default(),
                content: ObjectId::hash(b""),
                manifest: ObjectId::hash(b"m"),
                target: None,
            },
            IndexEntry {
                path: "shots/photo.jpg".into(),
                kind: IndexKind::File,
                stat,
                content: manifest.content,
                manifest: ObjectId::hash(&manifest.encode()),
                target: None,
            },
        ],
        tree: Some(ObjectId::hash(&tree.encode())),
        commit_memo: Some(CommitMemo {
            commit: ObjectId::hash(&merge.encode()),
            tree: ObjectId::hash(&tree.encode()),
            pack: ObjectId::hash(b"pack"),
        }),
        resume: vec![ResumePoints {
            manifest: ObjectId::hash(&manifest.encode()),
            checkpoints: vec![HashCheckpoint {
                chunks: 1,
                offset: 1728,
                state: [0x6a09e667; 8],
            }],
        }],
        // A merge's unresolved path: base, ours and theirs.
        conflicts: [Stage::Base, Stage::Ours, Stage::Theirs]
            .into_iter()
            .map(|stage| ConflictEntry {
                stage,
                entry: IndexEntry {
                    path: "shots/take.wav".into(),
                    kind: IndexKind::File,
                    stat: StatInfo::default(),
                    content: ObjectId::hash(&[stage as u8]),
                    manifest: ObjectId::hash(&[stage as u8, 1]),
                    target: None,
                },
            })
            .collect(),
    };
    let w = "decode_worktree_index";
    let enc = index.encode();
    put(&root, w, "index", &enc);
    put(&root, w, "index-unsealed", &enc[..enc.len() - 32]);
    let enc = IndexFile::default().encode();
    put(&root, w, "index-empty-unsealed", &enc[..enc.len() - 32]);

    // decode_add_journal: a journal with a whole file and a large file's
    // first chunks, and the body of each record alone (the target seals it).
    let j = "decode_add_journal";
    let done = JournalRecord::Done {
        path: "shots/a.mov".into(),
        kind: IndexKind::File,
        stat,
        content: manifest.content,
        manifest: ObjectId::hash(b"manifest"),
        checkpoints: vec![HashCheckpoint {
            chunks: 1,
            offset: 64,
            state: [7; 8],
        }],
    };
    let partial = JournalRecord::Partial {
        path: "shots/big.mxf".into(),
        stat,
        first: 0,
        chunks: manifest.chunks.clone(),
        checkpoints: vec![HashCheckpoint {
            chunks: 1,
            offset: 64,
            state: [9; 8],
        }],
    };
    let mut journal = encode_header().to_vec();
    for (name, rec) in [("done", &done), ("partial", &partial)] {
        let frame = encode_record(rec);
        put(&root, j, &format!("record-{name}"), &frame[4..frame.len() - 8]);
        journal.extend(frame);
    }
    put(&root, j, "journal", &journal);

    // decode_config: what `init` writes, with and without [storage]/[author];
    // storage URLs as users type them.
    let c = "decode_config";
    let mut cfg = RepoConfig::new(false);
    put(&root, c, "config-default.toml", cfg.to_toml());
    cfg.author.name = Some("Ann Lee".into());
    cfg.author.email = Some("ann@example.com".into());
    cfg.storage = Some(StorageConfig::from_url("s3://media/projects/film").unwrap());
    if let Some(s) = &mut cfg.storage {
        s.endpoint = Some("http://127.0.0.1:9000".into());
        s.region = Some("eu-west-1".into());
        s.conditional_writes = false;
    }
    put(&root, c, "config-s3.toml", cfg.to_toml());
    let mut bare = RepoConfig::new(true);
    bare.storage = Some(StorageConfig::from_url("file:///mnt/nas/repo").unwrap());
    put(&root, c, "config-bare-fs.toml", bare.to_toml());
    for (i, url) in [
        "s3://media/projects/film/",
        "az://container/p",
        "gs://b",
        "b2://bucket/x/y",
        "file:///mnt/nas",
        "/srv/repo",
    ]
    .iter()
    .enumerate()
    {
        put(&root, c, &format!("url-{i}"), url);
    }

    // parse_object_id
    let id = ObjectId::hash(b"abc").to_hex();
    put(&root, "parse_object_id", "id", &id);
    put(
        &root,
        "parse_object_id",
        "id-upper-ws",
        format!("  {}\n", id.to_uppercase()),
    );
    put(
        &root,
        "parse_object_id",
        "id-binary",
        ObjectId::hash(b"abc").0,
    );

    // resumable_sha256: four cut bytes, then content of a few block sizes.
    for (i, n) in [0usize, 63, 64, 200, 1000].iter().enumerate() {
        let mut b = vec![(i * 37) as u8, 21, 22, (i * 91) as u8];
        b.extend(noise(*n, i as u64));
        put(&root, "resumable_sha256", &format!("content-{n}"), b);
    }

    // chunker: eight size/cut bytes, then compressible and random content.
    for (i, content) in [chunk_a.clone(), noise(3000, 3)].iter().enumerate() {
        let mut b = vec![0, 0, 0, 0, 0, 0, 0x20, 0x03];
        b.extend_from_slice(content);
        put(&root, "chunker", &format!("content-{i}"), b);
    }

    jpegs(&root);
    reflog_and_revisions(&root);
    println!("wrote {}", root.display());
}

/// Small JPEGs (baseline, progressive, with a comment and an EXIF-ish
/// APP1 made by ImageMagick) and a PNG for the file-type sniffing.
fn jpegs(root: &Path) {
    let j = "jpeg_header";
    let dir = root.join(j);
    std::fs::create_dir_all(&dir).unwrap();
    let convert = ["/usr/bin/convert", "/usr/local/bin/convert"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(convert) = convert else {
        eprintln!("convert not found: writing a hand-made JPEG header only");
        let mut f = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        f.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        f.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0x12, 0xFF, 0xD9]);
        put(root, j, "handmade.jpg", f);
        return;
    };
    let runs: [(&str, &[&str]); 4] = [
        (
            "baseline.jpg",
            &["-size", "8x8", "gradient:red-blue", "-quality", "50"],
        ),
        (
            "progressive.jpg",
            &[
                "-size",
                "8x8",
                "plasma:",
                "-interlace",
                "Plane",
                "-quality",
                "40",
            ],
        ),
        (
            "comment-exif.jpg",
            &[
                "-size",
                "4x4",
                "xc:gray",
                "-set",
                "comment",
                "re-tagged in Lightroom",
                "-set",
                "exif:Artist",
                "Ann",
                "-quality",
                "30",
            ],
        ),
        ("image.png", &["-size", "4x4", "xc:white"]),
    ];
    for (name, args) in runs {
        let out = dir.join(name);
        let ok = Command::new(convert)
            .args(args)
            .args(["-strip"].iter().filter(|_| name == "baseline.jpg"))
            .arg(&out)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "convert failed for {name}");
    }
}

#[cfg(not(feature = "repo"))]
fn reflog_and_revisions(root: &Path) {
    // The line format of `ReflogEntry::to_line` (crates/mediagit-repo/src/refs.rs):
    // "OLD NEW TIME +HHMM NAME <EMAIL>\tMESSAGE\n".
    let a = ObjectId::hash(b"c1");
    let b = ObjectId::hash(b"c2");
    let log = format!(
        "{z} {a} 1700000000 -0530 Ann Lee <ann@example.com>\tcommit (initial): first\n\
         {a} {b} 1700000100 +0100 Ann Lee <ann@example.com>\tcommit: second\n",
        z = ObjectId::ZERO
    );
    put(root, "reflog_line", "HEAD", log);
    revisions(root, &[a.short(8)]);
}

#[cfg(feature = "repo")]
fn reflog_and_revisions(root: &Path) {
    let repo = mediagit_fuzz::scratch_repo();
    let logs = repo.workspace().unwrap().dir().join("logs");
    for e in std::fs::read_dir(&logs).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().replace('%', "_");
        put(root, "reflog_line", &name, std::fs::read(e.path()).unwrap());
    }
    let head = repo.resolve("HEAD").unwrap();
    let v1 = repo.read_ref("refs/tags/v1").unwrap().unwrap();
    revisions(root, &[head.short(8), head.to_hex(), v1.short(6)]);
    let _ = std::fs::remove_dir_all(repo.workspace().unwrap().dir().parent().unwrap());
}

fn revisions(root: &Path, ids: &[String]) {
    let mut revs: Vec<String> = [
        "HEAD",
        "@",
        "HEAD~2",
        "main^",
        "main~1^1",
        "v1",
        "light~1",
        "refs/tags/v1",
        "side",
        "HEAD^0",
        "feature/x",
        "Ann Lee <ann@example.com>",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    revs.extend(ids.iter().cloned());
    for (i, r) in revs.iter().enumerate() {
        put(root, "parse_revision", &format!("rev-{i:02}"), r);
    }
}
