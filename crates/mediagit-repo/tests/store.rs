//! A `Store` needs no working tree and no local repository: the same
//! history is written and read through `MemoryBackend` and the local
//! backend, from several threads at once. (The CLI suite runs again with
//! every repository in S3, scripts/test.sh.)
use std::sync::Arc;

use mediagit_format::object::Timestamp;
use mediagit_format::{
    Commit, EntryKind, Manifest, ManifestChunk, ObjectId, ObjectKind, RepoConfig, Signature, Tree,
    TreeEntry,
};
use mediagit_repo::add::AddOptions;
use mediagit_repo::commands::{self, DiffQuery, LogQuery};
use mediagit_repo::fsck::FsckOptions;
use mediagit_repo::gc::GcOptions;
use mediagit_repo::history::LogOptions;
use mediagit_repo::odb::PackSession;
use mediagit_repo::progress::NoProgress;
use mediagit_repo::{RepoError, Repository, Store};
use mediagit_storage::{LocalBackend, MemoryBackend, Storage};
use sha2::Digest;

fn sig(t: i64) -> Signature {
    Signature {
        name: "S".into(),
        email: "s@example.com".into(),
        time: t,
        tz_offset_minutes: 0,
    }
}

/// Stores `clip.mov` made of `parts` (one chunk each) and a commit of a
/// tree holding it, whose entry claims `tree_size` bytes; returns the
/// commit.
fn commit_one_file(
    s: &mut PackSession<'_>,
    parts: &[&[u8]],
    tree_size: u64,
    parent: Option<ObjectId>,
    time: i64,
    message: &str,
) -> ObjectId {
    let chunks: Vec<ManifestChunk> = parts
        .iter()
        .map(|p| ManifestChunk {
            id: s.put_object(ObjectKind::Chunk, p).unwrap(),
            len: p.len() as u32,
        })
        .collect();
    let whole = parts.concat();
    let content = ObjectId(sha2::Sha256::digest(&whole).into());
    let manifest = Manifest {
        content,
        size: whole.len() as u64,
        chunks,
    };
    let manifest = s
        .put_object(ObjectKind::Manifest, &manifest.encode())
        .unwrap();
    let tree = Tree {
        entries: vec![TreeEntry {
            name: "clip.mov".into(),
            kind: EntryKind::File {
                executable: false,
                size: tree_size,
                mtime: Timestamp { secs: 1, nanos: 0 },
                content,
                manifest,
            },
        }],
    };
    let tree = s.put_object(ObjectKind::Tree, &tree.encode()).unwrap();
    let commit = Commit {
        tree,
        parents: parent.into_iter().collect(),
        author: sig(time),
        committer: sig(time),
        message: message.into(),
    };
    s.put_object(ObjectKind::Commit, &commit.encode()).unwrap()
}

/// Writes three commits of one file, each a new version made of two
/// chunks, straight into the store; returns (commit, file bytes) per
/// version, oldest first.
fn write_history(store: &Store) -> Vec<(ObjectId, Vec<u8>)> {
    let odb = store.odb().unwrap();
    let mut out = Vec::new();
    let mut parent = None;
    for v in 0..3u8 {
        let mut s = odb.session();
        let a: Vec<u8> = (0..70_000u32).map(|i| (i as u8) ^ v).collect();
        let b = vec![v; 30_000];
        let whole = [a.as_slice(), &b].concat();
        let commit = commit_one_file(
            &mut s,
            &[&a, &b],
            whole.len() as u64,
            parent,
            1_700_000_000 + v as i64,
            &format!("version {v}\n"),
        );
        s.finish().unwrap();
        store
            .cas_ref("refs/heads/main", parent, Some(commit))
            .unwrap();
        parent = Some(commit);
        out.push((commit, whole));
    }
    out
}

fn exercise(storage: Arc<dyn Storage>, tmp: &std::path::Path) {
    // No repository there yet.
    let err = Store::open(storage.clone(), tmp.to_path_buf())
        .err()
        .unwrap();
    assert!(matches!(err, RepoError::NotAStore { .. }), "{err}");
    let mut cfg = RepoConfig::new(true);
    cfg.compression.level = 5;
    storage
        .put("config.toml", cfg.to_toml().as_bytes())
        .unwrap();
    let store = Store::open(storage.clone(), tmp.to_path_buf()).unwrap();
    assert_eq!(store.config().compression.level, 5);
    assert!(store.config().format.has_feature("metadata-packs"));
    let versions = write_history(&store);
    let tip = versions[2].0;
    assert_eq!(store.read_ref("refs/heads/main").unwrap(), Some(tip));
    assert_eq!(
        store.list_refs("refs/heads/").unwrap(),
        vec![("main".to_string(), tip)]
    );
    // A stale compare-and-swap is refused, naming the ref.
    let err = store
        .cas_ref("refs/heads/main", Some(versions[0].0), None)
        .unwrap_err();
    assert!(err.to_string().contains("refs/heads/main"), "{err}");

    // A second Store on the same storage (another process, a server
    // thread...) reads it all back, from four threads at once.
    let reader = Store::open(storage, tmp.to_path_buf()).unwrap();
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                let log = reader.log(tip, &LogOptions::default()).unwrap();
                let ids: Vec<ObjectId> = log.iter().map(|(id, _)| *id).collect();
                let want: Vec<ObjectId> = versions.iter().rev().map(|(id, _)| *id).collect();
                assert_eq!(ids, want);
                assert_eq!(log[0].1.message, "version 2\n");
                for (commit, bytes) in &versions {
                    let files = reader.commit_tree(commit).unwrap();
                    let e = &files["clip.mov"];
                    assert_eq!(e.size, bytes.len() as u64);
                    let mut got = Vec::new();
                    reader
                        .odb()
                        .unwrap()
                        .write_file_to(&e.manifest, &mut got, &|_| {})
                        .unwrap();
                    assert!(got == *bytes, "restored bytes differ");
                }
            });
        }
    });
    // Metadata and chunks went into separate packs.
    let mut kinds = std::collections::BTreeMap::<ObjectId, (bool, bool)>::new();
    for (_, pack, loc) in reader.odb().unwrap().all_objects() {
        let k = kinds.entry(pack).or_default();
        if loc.kind == ObjectKind::Chunk {
            k.0 = true;
        } else {
            k.1 = true;
        }
    }
    assert!(kinds.values().all(|(c, m)| !(c & m)), "{kinds:?}");

    store_commands(reader, &versions);
}

/// The commands a server runs, on a store alone: no `.mediagit`, no lock,
/// no reflog. Those that need a working tree say so.
fn store_commands(store: Store, versions: &[(ObjectId, Vec<u8>)]) {
    let tip = versions[2].0;
    store
        .storage()
        .put("HEAD", b"ref: refs/heads/main\n")
        .unwrap();
    let repo = Repository::on_store(store.clone());
    assert!(repo.is_bare());
    assert_eq!(repo.head_commit().unwrap(), Some(tip));
    assert_eq!(repo.resolve("HEAD~2").unwrap(), versions[0].0);
    assert_eq!(repo.resolve("main^").unwrap(), versions[1].0);

    repo.create_branch("topic", versions[1].0, &sig(5), "server")
        .unwrap();
    let tag = repo
        .create_tag("v1", versions[0].0, Some("first\n"), &sig(6))
        .unwrap();
    assert_eq!(store.read_ref("refs/tags/v1").unwrap(), Some(tag));
    let branches = repo.branches().unwrap();
    let names: Vec<(&str, bool)> = branches
        .iter()
        .map(|b| (b.name.as_str(), b.current))
        .collect();
    assert_eq!(names, vec![("main", true), ("topic", false)]);
    assert_eq!(repo.tags().unwrap()[0].commit, versions[0].0);
    let deco = repo.refs_by_commit().unwrap();
    assert_eq!(deco[&tip], vec!["HEAD", "refs/heads/main"]);

    // log, show and diff as a server would send them.
    let log = commands::log(
        &repo,
        &LogQuery {
            with_files: true,
            ..Default::default()
        },
    )
    .unwrap();
    let ids: Vec<ObjectId> = log.iter().map(|c| c.id).collect();
    let want: Vec<ObjectId> = versions.iter().rev().map(|(id, _)| *id).collect();
    assert_eq!(ids, want);
    assert_eq!(log[0].refs, vec!["HEAD", "refs/heads/main"]);
    let first = log[2].files.as_ref().unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].path, "clip.mov");
    let shown = commands::show(&repo, "v1").unwrap();
    assert_eq!(shown.commit.id, versions[0].0);
    assert_eq!(shown.tag.as_ref().map(|t| t.name.as_str()), Some("v1"));
    let json = serde_json::to_value(&shown).unwrap();
    assert_eq!(json["commit"]["message"], "version 0\n");
    let d = commands::diff(
        &repo,
        &DiffQuery::from_revs(&repo, &["v1".into(), "main".into()], false).unwrap(),
    )
    .unwrap();
    assert_eq!((d.totals.files, d.totals.modified), (1, 1));
    // The working tree is not there to compare with.
    let q = DiffQuery::from_revs(&repo, &[], false).unwrap();
    assert!(matches!(
        commands::diff(&repo, &q),
        Err(RepoError::NoWorkspace)
    ));
    // The branch HEAD names cannot be renamed or deleted from here.
    let err = repo.rename_branch("main", "trunk", &sig(7)).unwrap_err();
    assert!(err.to_string().contains("store's HEAD"), "{err}");
    assert!(repo.delete_branch("main", true, &sig(7)).is_err());
    assert_eq!(store.read_ref("refs/heads/main").unwrap(), Some(tip));
    repo.rename_branch("topic", "feature", &sig(7)).unwrap();
    assert_eq!(
        store.read_ref("refs/heads/feature").unwrap(),
        Some(versions[1].0)
    );
    assert_eq!(
        repo.delete_branch("feature", true, &sig(8)).unwrap(),
        versions[1].0
    );

    // Integrity checks and statistics.
    let report = repo.fsck(&FsckOptions::default(), &NoProgress).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.objects >= 3 * 5, "{}", report.objects);
    let v = repo.verify(tip, &[], &NoProgress).unwrap();
    assert!(v.bad.is_empty() && v.files == 1, "{v:?}");
    let stats = repo.stats(3).unwrap();
    assert_eq!(stats.commits_reachable, 3);
    // gc with nothing to collect removes nothing and loses nothing.
    let gc = repo
        .gc(
            &GcOptions {
                dry_run: false,
                prune_before: Some(std::time::SystemTime::now()),
                max_unused_percent: 0,
            },
            &NoProgress,
        )
        .unwrap();
    assert!(gc.removed.is_empty(), "{:?}", gc.removed);
    let fresh =
        Repository::on_store(Store::open(store.storage().clone(), store.tmp_dir().into()).unwrap());
    for (commit, bytes) in versions {
        let files = fresh.commit_tree(commit).unwrap();
        let mut got = Vec::new();
        fresh
            .odb()
            .unwrap()
            .write_file_to(&files["clip.mov"].manifest, &mut got, &|_| {})
            .unwrap();
        assert!(got == *bytes, "restored bytes differ after gc");
    }

    // Repair writes beside the store, and add/status need a working tree.
    let repair = FsckOptions {
        repair: true,
        ..Default::default()
    };
    assert!(matches!(
        repo.fsck(&repair, &NoProgress),
        Err(RepoError::NoWorkspace)
    ));
    let add = AddOptions {
        all: true,
        ..Default::default()
    };
    assert!(matches!(
        repo.add(&add, &NoProgress),
        Err(RepoError::NoWorkspace)
    ));
    assert!(matches!(repo.status(), Err(RepoError::NoWorkspace)));
}

#[test]
fn a_store_in_memory_needs_no_working_tree() {
    let tmp = tempfile::tempdir().unwrap();
    exercise(Arc::new(MemoryBackend::new()), tmp.path());
}

#[test]
fn a_store_on_local_disk_needs_no_working_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    std::fs::create_dir_all(&root).unwrap();
    exercise(Arc::new(LocalBackend::new(&root)), &tmp.path().join("tmp"));
}

#[test]
fn a_store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

/// A tree entry whose size or content id disagrees with its manifest
/// (checkout refuses such a file) is reported by fsck, and does not block gc.
#[test]
fn fsck_reports_a_tree_entry_that_disagrees_with_its_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(MemoryBackend::new());
    storage
        .put("config.toml", RepoConfig::new(true).to_toml().as_bytes())
        .unwrap();
    let store = Store::open(storage, tmp.path().to_path_buf()).unwrap();
    let odb = store.odb().unwrap();
    let mut s = odb.session();
    let bytes = b"forty-two bytes of a file, more or less...";
    let commit = commit_one_file(&mut s, &[bytes], u64::MAX, None, 1, "crafted\n");
    s.finish().unwrap();
    store
        .cas_ref("refs/heads/main", None, Some(commit))
        .unwrap();
    let repo = Repository::on_store(store);
    let report = repo.fsck(&FsckOptions::default(), &NoProgress).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert!(
        p.message.contains("disagrees with its file's manifest")
            && p.message.contains("18446744073709551615"),
        "{p:?}"
    );
    assert!(p.location.contains("clip.mov"), "{p:?}");
    repo.gc(
        &GcOptions {
            dry_run: true,
            prune_before: None,
            max_unused_percent: 10,
        },
        &NoProgress,
    )
    .unwrap();
}

/// A store that counts per-key metadata requests (HEAD requests on an
/// object store) and forwards everything to memory.
struct CountingBackend {
    inner: MemoryBackend,
    per_key: std::sync::atomic::AtomicUsize,
}

impl Storage for CountingBackend {
    fn describe(&self) -> String {
        "counting memory store".into()
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<(), mediagit_storage::StorageError> {
        self.inner.put(key, data)
    }
    fn put_file(
        &self,
        key: &str,
        file: &std::path::Path,
    ) -> Result<(), mediagit_storage::StorageError> {
        self.inner.put_file(key, file)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, mediagit_storage::StorageError> {
        self.inner.get(key)
    }
    fn read_at(
        &self,
        key: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), mediagit_storage::StorageError> {
        self.inner.read_at(key, offset, buf)
    }
    fn size(&self, key: &str) -> Result<Option<u64>, mediagit_storage::StorageError> {
        self.per_key
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.size(key)
    }
    fn modified(
        &self,
        key: &str,
    ) -> Result<Option<std::time::SystemTime>, mediagit_storage::StorageError> {
        self.per_key
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.modified(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, mediagit_storage::StorageError> {
        self.inner.list(prefix)
    }
    fn list_meta(
        &self,
        prefix: &str,
    ) -> Result<Vec<mediagit_storage::ListedKey>, mediagit_storage::StorageError> {
        // One listing, as an object store answers it.
        self.inner.list_meta(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), mediagit_storage::StorageError> {
        self.inner.delete(key)
    }
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<mediagit_storage::CasOutcome, mediagit_storage::StorageError> {
        self.inner.compare_and_swap(key, expected, new)
    }
}

#[test]
fn gc_with_nothing_to_collect_asks_nothing_per_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let counting = Arc::new(CountingBackend {
        inner: MemoryBackend::new(),
        per_key: Default::default(),
    });
    let storage: Arc<dyn Storage> = counting.clone();
    storage
        .put("config.toml", RepoConfig::new(true).to_toml().as_bytes())
        .unwrap();
    let store = Store::open(storage.clone(), tmp.path().to_path_buf()).unwrap();
    let versions = write_history(&store);
    let repo = Repository::on_store(Store::open(storage, tmp.path().to_path_buf()).unwrap());
    let packs = repo.odb().unwrap().packs().len();
    assert!(packs >= 6, "{packs} packs");
    counting
        .per_key
        .store(0, std::sync::atomic::Ordering::Relaxed);
    let gc = repo
        .gc(
            &GcOptions {
                dry_run: false,
                prune_before: Some(std::time::SystemTime::now()),
                max_unused_percent: 10,
            },
            &NoProgress,
        )
        .unwrap();
    assert!(gc.removed.is_empty(), "{:?}", gc.removed);
    // Sizes and ages come from the listing: no request per pack.
    assert_eq!(
        counting.per_key.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "per-key metadata requests for {packs} packs"
    );
    assert_eq!(versions.len(), 3);
}
