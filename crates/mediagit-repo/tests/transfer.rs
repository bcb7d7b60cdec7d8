//! Transfers between two copies of a repository when one of them holds the
//! same bytes as another kind: in a plain repository a chunk, a manifest
//! and a tree of the same bytes share one id, so a file whose content is
//! exactly another file's manifest takes the manifest's id as a chunk. A
//! transfer or an `add` must refuse to take one for the other (a branch
//! would name something unreadable), and `fsck` must see it.
use mediagit_format::{ObjectKind, Signature};
use mediagit_repo::add::AddOptions;
use mediagit_repo::commit::CommitOptions;
use mediagit_repo::progress::NoProgress;
use mediagit_repo::transfer::{copy_missing, Labels, THIS};
use mediagit_repo::{InitOptions, Repository};

fn sig() -> Signature {
    Signature {
        name: "P".into(),
        email: "p@example.com".into(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    }
}

fn commit_file(repo: &Repository, name: &str, data: &[u8]) -> mediagit_format::ObjectId {
    std::fs::write(repo.worktree().unwrap().join(name), data).unwrap();
    repo.add(
        &AddOptions {
            all: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    repo.commit(
        &CommitOptions {
            message: name.into(),
            all: false,
            allow_empty: false,
            author: sig(),
            committer: sig(),
        },
        &NoProgress,
    )
    .unwrap()
}

#[test]
fn a_manifest_planted_as_a_chunk_is_refused_by_transfers_add_and_seen_by_fsck() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Repository::init(&tmp.path().join("a"), &InitOptions::default()).unwrap();
    let asset: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let c = commit_file(&a, "asset.bin", &asset);
    let odb = a.odb().unwrap();
    let tree = odb.read_commit(&c).unwrap().tree;
    let flat = mediagit_repo::tree::flatten(odb, &tree).unwrap();
    let manifest = flat["asset.bin"].manifest;
    let manifest_bytes = odb.read_raw(&manifest, ObjectKind::Manifest).unwrap();

    // B stores the manifest's bytes as a file: a chunk with the manifest's id.
    let b = Repository::init(&tmp.path().join("b"), &InitOptions::default()).unwrap();
    commit_file(&b, "notes.dat", &manifest_bytes);
    let b = Repository::discover(&tmp.path().join("b")).unwrap();
    let (_, l) = b.odb().unwrap().locate(&manifest).expect("planted");
    assert_eq!(l.kind, ObjectKind::Chunk);

    // Fetching A's commit into B is refused, and nothing names it.
    let err = copy_missing(
        a.store(),
        b.store(),
        &[c],
        Labels {
            src: "remote 'a'",
            dst: THIS,
        },
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("as a chunk") && err.contains("as a manifest"),
        "{err}"
    );
    assert!(!b.odb().unwrap().contains(&c), "the commit was not copied");

    // B's own add of the same file is refused with that reason, not
    // committed as a file that cannot be read.
    std::fs::write(tmp.path().join("b/asset.bin"), &asset).unwrap();
    let err = b
        .add(
            &AddOptions {
                all: true,
                ..Default::default()
            },
            &NoProgress,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stored in this repository as a chunk"),
        "{err}"
    );

    // Pushing the other way (B's history into A) is fine: A holds the
    // id as a manifest and B needs it as a chunk of notes.dat, which is
    // refused too rather than taken as present.
    let b_head = b.head_commit().unwrap().unwrap();
    let err = copy_missing(
        b.store(),
        a.store(),
        &[b_head],
        Labels {
            src: THIS,
            dst: "remote 'a'",
        },
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("as a chunk"), "{err}");
}

/// A copy larger than the parallel threshold (64 MiB) is read and verified
/// on several threads: every object arrives, and a damaged object in the
/// middle stops the copy with its error and no ref names anything.
#[test]
fn a_large_copy_read_on_several_threads_is_whole_and_stops_at_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Repository::init(&tmp.path().join("a"), &InitOptions::default()).unwrap();
    let mut want = Vec::new();
    for i in 0..5u64 {
        // 14 MiB of incompressible bytes each (xorshift).
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ i;
        let data: Vec<u8> = (0..14 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(a.worktree().unwrap().join(format!("f{i}.bin")), &data).unwrap();
        want.push((format!("f{i}.bin"), data));
    }
    let c = commit_file(&a, "small.txt", b"small");
    let a = Repository::discover(&tmp.path().join("a")).unwrap();
    let b = Repository::init(&tmp.path().join("b"), &InitOptions::default()).unwrap();
    let stats = copy_missing(
        a.store(),
        b.store(),
        &[c],
        Labels {
            src: "remote 'a'",
            dst: THIS,
        },
        &NoProgress,
    )
    .unwrap();
    assert!(stats.bytes > 70 << 20, "{stats:?}");
    b.cas_ref("refs/heads/main", None, Some(c)).unwrap();
    let b = Repository::discover(&tmp.path().join("b")).unwrap();
    b.checkout(
        &mediagit_repo::checkout::CheckoutTarget::Branch("main".into()),
        true,
        &sig(),
        &NoProgress,
    )
    .unwrap();
    for (name, data) in &want {
        let got = std::fs::read(tmp.path().join("b").join(name)).unwrap();
        assert!(got == *data, "{name} differs");
    }

    // One byte of the largest pack flipped in its middle.
    let packs = tmp.path().join("a/.mediagit/packs");
    let big = std::fs::read_dir(&packs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&big).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x20;
    std::fs::write(&big, &bytes).unwrap();
    let a = Repository::discover(&tmp.path().join("a")).unwrap();
    let c2 = Repository::init(&tmp.path().join("c"), &InitOptions::default()).unwrap();
    let err = copy_missing(
        a.store(),
        c2.store(),
        &[c],
        Labels {
            src: "remote 'a'",
            dst: THIS,
        },
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("corrupt") || err.contains("damaged"), "{err}");
    assert!(c2.read_ref("refs/heads/main").unwrap().is_none());
}
