//! Few requests for many small files: a checkout from a store reads the
//! chunks of small files together, in runs of up to 8 MiB of a pack (one
//! ranged GET each on an object store), not one read per file; a fetch
//! from a store does the same (`transfer.rs`). Counted here on the reads a
//! store is asked for (the same calls become GETs in `ObjectStoreBackend`).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mediagit_format::Signature;
use mediagit_repo::add::AddOptions;
use mediagit_repo::checkout::CheckoutTarget;
use mediagit_repo::commit::CommitOptions;
use mediagit_repo::progress::NoProgress;
use mediagit_repo::store::Store;
use mediagit_repo::workspace::Workspace;
use mediagit_repo::{InitOptions, Repository};
use mediagit_storage::{LocalBackend, Storage, StorageError};

fn sig() -> Signature {
    Signature {
        name: "P".into(),
        email: "p@example.com".into(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    }
}

/// Counts the reads of pack data (`read_at` and `get` of `packs/*.pack`)
/// and their bytes; forwards everything.
struct Counting {
    inner: Arc<dyn Storage>,
    reads: AtomicUsize,
    bytes: AtomicUsize,
}

impl Counting {
    fn note(&self, key: &str, n: usize) {
        if key.ends_with(".pack") {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl Storage for Counting {
    fn describe(&self) -> String {
        "counting store".into()
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.inner.put(key, data)
    }
    fn put_file(&self, key: &str, file: &std::path::Path) -> Result<(), StorageError> {
        self.inner.put_file(key, file)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let b = self.inner.get(key)?;
        self.note(key, b.len());
        Ok(b)
    }
    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.note(key, buf.len());
        self.inner.read_at(key, offset, buf)
    }
    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        self.inner.size(key)
    }
    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StorageError> {
        self.inner.modified(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix)
    }
    fn list_meta(&self, prefix: &str) -> Result<Vec<mediagit_storage::ListedKey>, StorageError> {
        self.inner.list_meta(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.inner.delete(key)
    }
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<mediagit_storage::CasOutcome, StorageError> {
        self.inner.compare_and_swap(key, expected, new)
    }
}

/// 2,000 files of 4 KiB (random, so nothing deduplicates) committed in a
/// repository on disk; returns its directory and the file contents.
fn small_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let repo = Repository::init(dir, &InitOptions::default()).unwrap();
    let mut files = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..2000 {
        let mut data = vec![0u8; 4096];
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let name = format!("photos/{:02}/img{i:04}.raw", i % 20);
        std::fs::create_dir_all(dir.join(&name).parent().unwrap()).unwrap();
        std::fs::write(dir.join(&name), &data).unwrap();
        files.push((name, data));
    }
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
            message: "m".into(),
            all: false,
            allow_empty: false,
            author: sig(),
            committer: sig(),
        },
        &NoProgress,
    )
    .unwrap();
    files
}

/// Checks out the repository in `store` into a new working tree through a
/// counting wrapper; checks every byte; returns (reads, bytes) of pack data.
fn checkout_counting(
    store: Arc<dyn Storage>,
    dst: &std::path::Path,
    files: &[(String, Vec<u8>)],
) -> (usize, usize) {
    let counting = Arc::new(Counting {
        inner: store,
        reads: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
    });
    let storage: Arc<dyn Storage> = counting.clone();
    let dot = dst.join(".mediagit");
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(dot.join(sub)).unwrap();
    }
    std::fs::write(dot.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    let store = Store::open(storage, dot.join("tmp")).unwrap();
    let repo = Repository::from_parts(store, Workspace::new(dot, Some(dst.to_path_buf()), true));
    let out = repo
        .checkout(
            &CheckoutTarget::Branch("main".into()),
            true,
            &sig(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!(out.written, files.len());
    for (name, data) in files {
        assert_eq!(&std::fs::read(dst.join(name)).unwrap(), data, "{name}");
    }
    (
        counting.reads.load(Ordering::Relaxed),
        counting.bytes.load(Ordering::Relaxed),
    )
}

/// At most one read per 8 MiB of pack data, plus a constant: the commit,
/// the root tree, its 20 subtrees together, the manifests in a few runs;
/// about 8.4 MB of chunks. One read per file (what checkout did before)
/// was 2,027; with one per directory for the trees, 28.
fn assert_few(reads: usize, bytes: usize, files: usize) {
    eprintln!("{reads} reads of pack data ({bytes} bytes) for {files} files");
    assert!(
        reads <= bytes / (8 << 20) + 8,
        "{reads} reads of pack data ({bytes} bytes) for {files} files"
    );
}

#[test]
fn a_checkout_of_many_small_files_reads_their_chunks_in_few_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = small_files(&src);
    // A second working tree of the same store.
    let store: Arc<dyn Storage> = Arc::new(LocalBackend::new(src.join(".mediagit")));
    let (reads, bytes) = checkout_counting(store, &tmp.path().join("dst"), &files);
    assert_few(reads, bytes, files.len());
}

/// The same from the S3 test server (`scripts/test-servers.sh`): the reads
/// counted are the ranged GETs `ObjectStoreBackend` makes.
#[test]
fn a_checkout_from_the_s3_test_server_makes_few_requests() {
    let endpoint = match std::env::var("MEDIAGIT_TEST_S3") {
        Ok(v) if !v.is_empty() => v,
        _ => {
            assert!(
                std::env::var("MEDIAGIT_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "MEDIAGIT_TEST_S3 is not set but MEDIAGIT_REQUIRE_SERVERS=1"
            );
            eprintln!("MEDIAGIT_TEST_S3 not set: skipping (run through scripts/test.sh)");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = small_files(&src);
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let spec = mediagit_storage::ObjectStoreSpec {
        cloud: mediagit_storage::Cloud::S3,
        bucket: "mediagit-test".into(),
        prefix: format!("coalesced-{}-{n}", std::process::id()),
        endpoint: Some(endpoint),
        region: None,
        account: None,
        bucket_id: None,
    };
    let env: mediagit_storage::CloudEnv = mediagit_storage::object_store_backend::CLOUD_ENV_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let s3: Arc<dyn Storage> =
        Arc::new(mediagit_storage::ObjectStoreBackend::connect(&spec, &env).unwrap());
    // The repository's store, copied key by key into the bucket.
    let local = LocalBackend::new(src.join(".mediagit"));
    for key in local.list("").unwrap() {
        if key.starts_with("packs/") || key.starts_with("refs/") || key == "config.toml" {
            s3.put(&key, &local.get(&key).unwrap()).unwrap();
        }
    }
    let (reads, bytes) = checkout_counting(s3, &tmp.path().join("dst"), &files);
    assert_few(reads, bytes, files.len());
}
