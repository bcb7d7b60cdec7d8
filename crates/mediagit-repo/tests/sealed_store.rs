//! An encrypted repository's object store (FORMAT.md §13): packs and pack
//! indexes sealed, object ids keyed. Nothing stored shows content, names or
//! plain hashes; every byte is authenticated; gc and fsck work on sealed
//! packs. (Refs and the passphrase-protected key files are not yet sealed
//! or written by any command: this holds the object layer.)
use std::sync::Arc;

use mediagit_crypto::{MasterKey, RepoKeys};
use mediagit_format::Signature;
use mediagit_repo::add::AddOptions;
use mediagit_repo::commit::CommitOptions;
use mediagit_repo::fsck::FsckOptions;
use mediagit_repo::gc::GcOptions;
use mediagit_repo::progress::NoProgress;
use mediagit_repo::{InitOptions, Repository};
use sha2::Digest;

fn sig() -> Signature {
    Signature {
        name: "P".into(),
        email: "p@example.com".into(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    }
}

/// A new repository in a temporary directory, opened with new keys.
fn sealed_repo() -> (tempfile::TempDir, Arc<RepoKeys>, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    Repository::init(dir.path(), &InitOptions::default()).unwrap();
    // No media records: these tests alter packs by the place of objects
    // in them (records are sealed like everything else: media_info.rs
    // runs with encrypted repositories in CI).
    let cfg = dir.path().join(".mediagit/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[media]\nrecords = false\n");
    std::fs::write(&cfg, text).unwrap();
    let repo = reopen(dir.path(), &k);
    (dir, k, repo)
}

/// The repository at `root` opened again with `k`.
fn reopen(root: &std::path::Path, k: &Arc<RepoKeys>) -> Repository {
    Repository::discover(root).unwrap().with_keys(k.clone())
}

fn keys() -> Arc<RepoKeys> {
    Arc::new(RepoKeys::derive(&MasterKey::generate().unwrap()))
}

/// Incompressible bytes (stored raw) with a marker in the middle.
fn content(seed: u32, len: usize, marker: &[u8]) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let at = len / 2;
    v[at..at + marker.len()].copy_from_slice(marker);
    v
}

fn commit(repo: &Repository, msg: &str) {
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
            message: msg.into(),
            all: false,
            allow_empty: false,
            author: sig(),
            committer: sig(),
        },
        &NoProgress,
    )
    .unwrap();
}

fn pack_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root.join(".mediagit/packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn cat(repo: &Repository, path: &str) -> mediagit_repo::Result<Vec<u8>> {
    let head = repo.head_commit()?.unwrap();
    let mut out = Vec::new();
    repo.cat(head, path, &mut out)?;
    Ok(out)
}

#[test]
fn sealed_packs_show_nothing_and_read_back() {
    let (dir, k, repo) = sealed_repo();
    let root = dir.path();
    let marker = b"NDA-MARKER-0123456789";
    let big = content(7, 3 << 20, marker);
    let small = b"small text file under NDA, compressible compressible compressible".repeat(50);
    std::fs::create_dir_all(root.join("client-x")).unwrap();
    std::fs::write(root.join("client-x/secret-plan.mov"), &big).unwrap();
    std::fs::write(root.join("notes.txt"), &small).unwrap();
    commit(&repo, "first");

    // Nothing in any pack or index: content, names, plain hashes.
    let mut needles: Vec<Vec<u8>> = vec![
        marker.to_vec(),
        b"secret-plan".to_vec(),
        b"client-x".to_vec(),
        b"notes.txt".to_vec(),
        b"small text file".to_vec(),
        b"first".to_vec(),
        b"p@example.com".to_vec(),
    ];
    for c in [&big[..], &small[..]] {
        let h = sha2::Sha256::digest(c);
        needles.push(h.to_vec());
        needles.push(hex::encode(h).into_bytes());
    }
    // The plain SHA-256 of the first 128 KiB: what a chunk id would be.
    needles.push(sha2::Sha256::digest(&big[..128 << 10])[..16].to_vec());
    let packs = pack_files(root);
    assert!(packs.len() >= 4, "{packs:?}");
    for p in &packs {
        let bytes = std::fs::read(p).unwrap();
        for n in &needles {
            assert!(
                !contains(&bytes, n),
                "{} holds {:?}",
                p.display(),
                String::from_utf8_lossy(n)
            );
        }
    }

    // Reads back, through a fresh open with the keys.
    let repo = reopen(root, &k);
    assert_eq!(cat(&repo, "client-x/secret-plan.mov").unwrap(), big);
    assert_eq!(cat(&repo, "notes.txt").unwrap(), small);
    std::fs::remove_file(root.join("client-x/secret-plan.mov")).unwrap();
    repo.checkout_paths(None, &["client-x/secret-plan.mov".into()], &NoProgress)
        .unwrap();
    assert_eq!(
        std::fs::read(root.join("client-x/secret-plan.mov")).unwrap(),
        big
    );
    assert!(repo.status().unwrap().is_clean());
    let report = repo.fsck(&FsckOptions::default(), &NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // Without the keys, or with other keys: refused, naming the index.
    let plain = Repository::discover(root).unwrap();
    let err = plain.odb().err().expect("opened without keys").to_string();
    assert!(
        err.contains("sealed index") && err.contains("pack index"),
        "{err}"
    );
    let other = Repository::discover(root).unwrap().with_keys(keys());
    let err = other
        .odb()
        .err()
        .expect("opened with other keys")
        .to_string();
    assert!(err.contains("does not authenticate"), "{err}");
}

#[test]
fn every_altered_byte_of_a_sealed_entry_is_detected() {
    let (dir, k, repo) = sealed_repo();
    let root = dir.path();
    let data = content(3, 40_000, b"M");
    std::fs::write(root.join("f.bin"), &data).unwrap();
    commit(&repo, "one");
    // The chunk pack: the largest .pack.
    let pack = pack_files(root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let orig = std::fs::read(&pack).unwrap();
    // The salt in the header: reads use the salt of the (authenticated)
    // index and still return the right bytes; fsck reports the pack.
    let mut bad = orig.clone();
    bad[20] ^= 0x20;
    std::fs::write(&pack, &bad).unwrap();
    let repo = reopen(root, &k);
    assert_eq!(cat(&repo, "f.bin").unwrap(), data);
    let report = repo.fsck(&FsckOptions::default(), &NoProgress).unwrap();
    assert!(!report.problems.is_empty(), "fsck missed the altered salt");
    // Sealed entry header, payload, tag: a flip anywhere is caught on read.
    for at in [48usize, 60, 100, 48 + 60 + 20_000, orig.len() - 1] {
        let mut bad = orig.clone();
        bad[at] ^= 0x20;
        std::fs::write(&pack, &bad).unwrap();
        let repo = reopen(root, &k);
        let err = cat(&repo, "f.bin")
            .err()
            .unwrap_or_else(|| panic!("flip at {at} read"));
        let msg = err.to_string();
        assert!(
            msg.contains("f.bin") || msg.contains("chunk") || msg.contains("pack"),
            "{msg}"
        );
        let report = repo.fsck(&FsckOptions::default(), &NoProgress).unwrap();
        assert!(!report.problems.is_empty(), "fsck missed the flip at {at}");
    }
    // Truncated.
    std::fs::write(&pack, &orig[..orig.len() - 5]).unwrap();
    let repo = reopen(root, &k);
    assert!(cat(&repo, "f.bin").is_err());
    std::fs::write(&pack, &orig).unwrap();
    let repo = reopen(root, &k);
    assert_eq!(cat(&repo, "f.bin").unwrap(), data);
}

#[test]
fn entries_moved_to_another_offset_do_not_open() {
    let (dir, k, repo) = sealed_repo();
    let root = dir.path();
    // Two files of one 1000-byte chunk each: equal entry sizes.
    std::fs::write(root.join("a"), content(1, 1000, b"A")).unwrap();
    std::fs::write(root.join("b"), content(2, 1000, b"B")).unwrap();
    commit(&repo, "two");
    let pack = pack_files(root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .find(|p| std::fs::metadata(p).unwrap().len() == 48 + 2 * (60 + 1000 + 16))
        .expect("the chunk pack of two raw 1000-byte chunks");
    let orig = std::fs::read(&pack).unwrap();
    let e = 60 + 1000 + 16;
    let mut swapped = orig[..48].to_vec();
    swapped.extend_from_slice(&orig[48 + e..]);
    swapped.extend_from_slice(&orig[48..48 + e]);
    std::fs::write(&pack, &swapped).unwrap();
    let repo = reopen(root, &k);
    assert!(cat(&repo, "a").is_err());
    assert!(cat(&repo, "b").is_err());
    let report = repo.fsck(&FsckOptions::default(), &NoProgress).unwrap();
    assert!(!report.problems.is_empty());
}

#[test]
fn gc_and_repair_reseal_what_they_copy() {
    let (dir, k, repo) = sealed_repo();
    let root = dir.path();
    let keep = content(5, 300_000, b"KEEP");
    std::fs::write(root.join("keep.bin"), &keep).unwrap();
    std::fs::write(root.join("drop.bin"), content(6, 300_000, b"DROP")).unwrap();
    // Both staged into one chunk pack, then drop.bin unstaged before the
    // commit: its chunks are garbage beside keep.bin's, so gc repacks
    // (keep.bin's chunks copied into a new sealed pack).
    repo.add(
        &AddOptions {
            all: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    std::fs::remove_file(root.join("drop.bin")).unwrap();
    commit(&repo, "one");
    let report = repo
        .gc(
            &GcOptions {
                dry_run: false,
                prune_before: Some(
                    std::time::SystemTime::now() + std::time::Duration::from_secs(60),
                ),
                max_unused_percent: 0,
            },
            &NoProgress,
        )
        .unwrap();
    assert!(
        !report.removed.is_empty() && report.packs_repacked > 0,
        "gc did not repack: {report:?}"
    );
    let repo = reopen(root, &k);
    assert_eq!(cat(&repo, "keep.bin").unwrap(), keep);
    let f = repo.fsck(&FsckOptions::default(), &NoProgress).unwrap();
    assert!(f.problems.is_empty(), "{:?}", f.problems);

    // A lost index is rebuilt from its sealed pack, and sealed again.
    let idx = pack_files(root)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .unwrap();
    std::fs::remove_file(&idx).unwrap();
    let repo = reopen(root, &k);
    repo.fsck(
        &FsckOptions {
            repair: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    let rebuilt = std::fs::read(&idx).expect("index rebuilt");
    assert_eq!(&rebuilt[..12], b"MGIDX\0\0\0\x02\0\0\0");
    let repo = reopen(root, &k);
    assert_eq!(cat(&repo, "keep.bin").unwrap(), keep);
    let f = repo.fsck(&FsckOptions::default(), &NoProgress).unwrap();
    assert!(f.problems.is_empty(), "{:?}", f.problems);
}

/// Every pack (chunks; manifests; trees and commits) and every pack index:
/// one flipped byte in any of them is found, named, never read as content.
#[test]
fn a_flip_in_any_pack_or_index_of_any_object_kind_is_found() {
    let (dir, k, repo) = sealed_repo();
    let root = dir.path();
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/f.bin"), content(9, 5000, b"F")).unwrap();
    commit(&repo, "kinds");
    let files = pack_files(root);
    assert!(files.len() >= 6, "{files:?}");
    for f in files {
        let orig = std::fs::read(&f).unwrap();
        let mut bad = orig.clone();
        let at = if f.extension().is_some_and(|e| e == "pack") {
            48 + 60 + 2 // the first entry's payload
        } else {
            orig.len() / 2
        };
        bad[at] ^= 0x40;
        std::fs::write(&f, &bad).unwrap();
        let repo = reopen(root, &k);
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let id = name.split('.').next().unwrap().to_string();
        match repo.fsck(&FsckOptions::default(), &NoProgress) {
            Ok(report) => {
                let all: Vec<String> = report
                    .problems
                    .iter()
                    .map(|p| format!("{} {}", p.location, p.message))
                    .collect();
                assert!(
                    all.iter().any(|p| p.contains(&id)),
                    "fsck did not name {name}: {all:?}"
                );
            }
            // An index that does not open stops the load; the error names it.
            Err(e) => assert!(e.to_string().contains(&id), "{name}: {e}"),
        }
        assert!(
            cat(&repo, "d/f.bin").is_err(),
            "read through a flip in {name}"
        );
        std::fs::write(&f, &orig).unwrap();
    }
    let repo = reopen(root, &k);
    assert_eq!(cat(&repo, "d/f.bin").unwrap(), content(9, 5000, b"F"));
}
