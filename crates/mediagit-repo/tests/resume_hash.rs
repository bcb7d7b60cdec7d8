//! `add` of a changed large file resumes the whole-file SHA-256 from a
//! checkpoint inside the prefix the new version shares with the old one
//! (format §7, `resume`). Whatever the edit, the content id `add` records
//! must be the SHA-256 of the bytes on disk: these tests compare it with
//! `sha2` over the file after every edit, with chunks small enough that a
//! file has dozens of chunks and checkpoints.
use std::fs::File;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use mediagit_format::config::{ChunkingConfig, RepoConfig};
use mediagit_format::ObjectId;
use mediagit_repo::add::AddOptions;
use mediagit_repo::progress::NoProgress;
use mediagit_repo::{InitOptions, Repository};
use proptest::prelude::*;
use sha2::Digest;

fn small_chunks() -> RepoConfig {
    let mut cfg = RepoConfig::new(false);
    cfg.chunking = ChunkingConfig {
        min_size: 64,
        avg_size: 256,
        max_size: 1024,
    };
    cfg
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `data` with a distinct mtime (so the stat cache sees a change even
/// when the size does not).
fn put(path: &Path, data: &[u8], step: u64) {
    std::fs::write(path, data).unwrap();
    let f = File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(1_600_000_000 + step))
        .unwrap();
}

fn add_and_id(repo: &Repository, path: &str) -> (ObjectId, bool) {
    repo.add(
        &AddOptions {
            paths: vec![path.into()],
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    let idx = repo.workspace().unwrap().load_index().unwrap();
    let e = &idx.entries[path];
    (e.content, idx.resume.contains_key(&e.manifest))
}

#[derive(Debug, Clone)]
enum Edit {
    Append(Vec<u8>),
    Overwrite(usize, Vec<u8>),
    Insert(usize, Vec<u8>),
    Truncate(usize),
    Touch,
}

fn apply(data: &mut Vec<u8>, e: &Edit) {
    match e {
        Edit::Append(b) => data.extend_from_slice(b),
        Edit::Overwrite(at, b) => {
            let at = (*at).min(data.len());
            let end = (at + b.len()).min(data.len());
            data[at..end].copy_from_slice(&b[..end - at]);
        }
        Edit::Insert(at, b) => {
            let at = (*at).min(data.len());
            data.splice(at..at, b.iter().copied());
        }
        Edit::Truncate(n) => data.truncate(*n),
        Edit::Touch => {}
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    let blob = proptest::collection::vec(any::<u8>(), 1..3000);
    prop_oneof![
        blob.clone().prop_map(Edit::Append),
        (0usize..40_000, blob.clone()).prop_map(|(a, b)| Edit::Overwrite(a, b)),
        (0usize..40_000, blob).prop_map(|(a, b)| Edit::Insert(a, b)),
        (0usize..40_000).prop_map(Edit::Truncate),
        Just(Edit::Touch),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn content_id_is_the_sha256_of_the_file_after_any_edits(
        len in 0usize..40_000,
        seed in any::<u64>(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(
            dir.path(),
            &InitOptions { template: Some(small_chunks()), ..Default::default() },
        )
        .unwrap();
        let path = dir.path().join("clip.mov");
        let mut data = bytes(len, seed);
        put(&path, &data, 0);
        let (id, kept) = add_and_id(&repo, "clip.mov");
        prop_assert_eq!(id.0, <[u8; 32]>::from(sha2::Sha256::digest(&data)));
        // A checkpoint every 16 x avg_size bytes, at chunk ends (the last
        // one ends the file): files that long keep some.
        prop_assert_eq!(kept, data.len() >= 16 * 256);
        for (i, e) in edits.iter().enumerate() {
            apply(&mut data, e);
            put(&path, &data, 1 + i as u64);
            let (id, _) = add_and_id(&repo, "clip.mov");
            prop_assert_eq!(
                id.0,
                <[u8; 32]>::from(sha2::Sha256::digest(&data)),
                "after {:?}", e
            );
        }
    }
}

/// Files of 64 MiB and more hash on a second thread: the same outcome there,
/// with the default chunking, for the edits of the benchmark's videos.
#[test]
fn large_file_resumes_on_the_hashing_thread() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path(), &InitOptions::default()).unwrap();
    let path = dir.path().join("clip.mp4");
    let mut data = bytes(70 << 20, 7);
    put(&path, &data, 0);
    let (id, kept) = add_and_id(&repo, "clip.mp4");
    assert_eq!(id.0, <[u8; 32]>::from(sha2::Sha256::digest(&data)));
    assert!(kept, "a 70 MiB file keeps checkpoints");
    let edits = [
        Edit::Append(bytes(10 << 20, 8)),
        Edit::Overwrite(50 << 20, bytes(4096, 9)),
        Edit::Touch,
        Edit::Insert(0, bytes(1 << 20, 10)),
        Edit::Truncate(60 << 20),
    ];
    for (i, e) in edits.iter().enumerate() {
        apply(&mut data, e);
        put(&path, &data, 1 + i as u64);
        let (id, _) = add_and_id(&repo, "clip.mp4");
        assert_eq!(
            id.0,
            <[u8; 32]>::from(sha2::Sha256::digest(&data)),
            "after {e:?}"
        );
    }
}
