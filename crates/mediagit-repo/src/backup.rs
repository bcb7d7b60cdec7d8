//! Backups to a write-once target (FORMAT.md §15): incremental copies of
//! a repository's objects, immutable records of its refs, point-in-time
//! restore, verification, retention.
//!
//! Why not `tar` or a bucket sync of `.mediagit/`: those copy half-written
//! state, and the copy is overwritten in place, so a stolen credential or
//! a bad sync destroys the history it was meant to protect. A target here
//! is only ever *added to*: objects go into packs of a store in the
//! target (a *pool*, shared by every repository that names objects the
//! same way, so data already there is never uploaded again), and refs
//! become records, one new key per snapshot or journal entry, never
//! rewritten. Restoring a moment reads the newest record at or before it.
//!
//! Consistency without pausing writers: the refs are read first (no lock:
//! refs are replaced atomically, objects are immutable), then every object
//! they reach that the pool lacks is copied (verified, as stored: never
//! recompressed), and only then is the record written. A record therefore
//! never names an object the target does not hold, and an interrupted
//! backup leaves packs that the next run reuses instead of re-uploading.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use mediagit_format::config::StorageConfig;
use mediagit_format::id::IdSet;
use mediagit_format::{ObjectId, ObjectKind};
use mediagit_storage::{
    CasOutcome, CloudEnv, ConnectOptions, LocalBackend, LockMode, ObjectLock, Storage,
};

use crate::error::{RepoError, Result};
use crate::progress::Progress;
use crate::reach::Root;
use crate::repo::Repository;
use crate::store::Store;
use crate::transfer::{copy_missing, Labels, TransferStats};

/// The key that makes a directory or prefix a backup target.
pub const TARGET_MARKER: &str = "mediagit-backup.json";
/// Version of the target layout and of its records.
pub const BACKUP_VERSION: u32 = 1;
/// What a sealed record starts with.
pub const SEALED_RECORD_MAGIC: &[u8; 8] = b"MGBREC\0\x01";
/// A record or a repository entry larger than this is refused unread.
pub const MAX_RECORD_BYTES: u64 = 16 << 20;
/// At most this many refs in one record.
pub const MAX_RECORD_REFS: usize = 200_000;
/// Longest repository id.
pub const MAX_REPO_ID: usize = 100;

/// Records that do not read: (key, why).
pub type BadRecords = Vec<(String, String)>;

/// Which period a time (Unix seconds) falls in, for a keep rule.
type Bucket = fn(i64) -> i64;

/// Whether a record is a snapshot (`backup create`) or a journal entry
/// (`backup create --watch`, one per change of the refs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    Snapshot,
    Journal,
}

impl RecordKind {
    fn letter(self) -> char {
        match self {
            RecordKind::Snapshot => 's',
            RecordKind::Journal => 'j',
        }
    }
}

/// One immutable record: the refs of a repository at a moment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub kind: RecordKind,
    pub repository: String,
    /// Milliseconds since the Unix epoch: when the refs were read.
    pub time_ms: i64,
    /// The branch HEAD named, if it named one.
    #[serde(default)]
    pub head: Option<String>,
    /// A detached HEAD's commit.
    #[serde(default)]
    pub detached: Option<ObjectId>,
    /// Every ref (branches, tags, remote-tracking branches, media records).
    pub refs: BTreeMap<String, ObjectId>,
    /// The machine that wrote it (informational).
    #[serde(default)]
    pub host: String,
    /// What this run copied into the target.
    #[serde(default)]
    pub copied_objects: usize,
    #[serde(default)]
    pub copied_bytes: u64,
    /// The record's id (the random part of its key; not stored).
    #[serde(skip_deserializing, default)]
    pub id: String,
    /// The record's key in the target (not stored).
    #[serde(skip, default)]
    pub key: String,
}

impl Record {
    /// Unix seconds.
    pub fn time(&self) -> i64 {
        self.time_ms.div_euclid(1000)
    }

    /// The commits and tags it names.
    pub fn tips(&self) -> Vec<ObjectId> {
        let mut t: Vec<ObjectId> = self.refs.values().copied().collect();
        t.extend(self.detached);
        t.sort_unstable();
        t.dedup();
        t
    }

    /// The commit HEAD was at, if any.
    pub fn head_commit(&self) -> Option<ObjectId> {
        match &self.head {
            Some(b) => self.refs.get(&crate::refs::branch_ref(b)).copied(),
            None => self.detached,
        }
    }
}

/// A repository's entry in a target (`repos/ID/repository.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepoEntry {
    pub version: u32,
    pub repository: String,
    /// The pool (`pools/POOL/`) its objects go to.
    pub pool: String,
    /// Unix seconds.
    pub created: i64,
    /// Records and packs younger than this are never removed by
    /// `forget` or `prune`.
    #[serde(default)]
    pub retain_days: u32,
    #[serde(default)]
    pub encrypted: bool,
}

#[derive(Serialize, Deserialize)]
struct Marker {
    format: String,
    version: u32,
}

/// A backup target: a directory or an object-store prefix.
pub struct Target {
    url: String,
    sc: Option<StorageConfig>,
    env: CloudEnv,
    storage: Arc<dyn Storage>,
    tmp: PathBuf,
    freshen_after: Duration,
    /// The bucket's S3 Object Lock, when it has it on.
    lock: Option<ObjectLock>,
    /// Uploads carry Content-MD5 (an Object Lock bucket requires it).
    md5: bool,
    /// Keys written over are read at their first version.
    first_versions: bool,
}

/// Removes the spool folders (`backup-PID-RANDOM`) that killed backups
/// left in `tmp`: those whose process is gone. A spool holds a pack being
/// written, up to its full size, and nothing else ever removes it from a
/// system temporary folder. Only where a process can be asked after by its
/// id (`/proc`); failures are ignored (another user's folder, a race with
/// another sweep).
fn sweep_dead_spools(tmp: &Path) {
    if !Path::new("/proc/self").is_dir() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("backup-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        // Never through a link: only a real folder of a dead process of
        // this user's.
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions, cannot fail and touches
        // no memory.
        let me = unsafe { libc::geteuid() };
        let is_dir = e.metadata().is_ok_and(|m| m.is_dir() && m.uid() == me);
        if is_dir
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
            && idle_for(&e.path(), SPOOL_IDLE)
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// How long a dead process's spool must have gone unwritten before it is
/// removed: a process of another PID namespace sharing the folder looks
/// dead from here, but is still writing.
const SPOOL_IDLE: Duration = Duration::from_secs(600);

/// Whether nothing in `dir` (it, and everything below it, links not
/// followed; at most 100,000 entries and 16 levels looked at, more counts
/// as busy) was modified within `d`.
fn idle_for(dir: &Path, d: Duration) -> bool {
    fn walk(dir: &Path, d: Duration, depth: usize, budget: &mut usize) -> bool {
        let recent = |m: &std::fs::Metadata| {
            m.modified()
                .map(|t| t.elapsed().map(|e| e < d).unwrap_or(true))
                .unwrap_or(true)
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        for e in entries {
            let Ok(e) = e else { return false };
            if *budget == 0 || depth == 0 {
                return false;
            }
            *budget -= 1;
            // (DirEntry::metadata does not follow a link.)
            let Ok(m) = e.metadata() else { return false };
            if recent(&m) || (m.is_dir() && !walk(&e.path(), d, depth - 1, budget)) {
                return false;
            }
        }
        true
    }
    let own = std::fs::symlink_metadata(dir);
    if own
        .as_ref()
        .map(|m| {
            m.modified()
                .map(|t| t.elapsed().map(|e| e < d).unwrap_or(true))
                .unwrap_or(true)
        })
        .unwrap_or(true)
    {
        return false;
    }
    let mut budget = 100_000;
    walk(dir, d, 16, &mut budget)
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.url)
    }
}

/// Checks a repository id: letters, digits, `.`, `_`, `-`, not starting
/// with `.`; it is a key component in the target.
pub fn validate_repo_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_REPO_ID
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RepoError::Invalid(format!(
            "backup repository id {id:?}: use 1 to {MAX_REPO_ID} letters, digits, '.', '_' or '-' (not starting with '.')"
        )))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn random_hex(n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    mediagit_crypto::random(&mut b).map_err(|e| RepoError::Invalid(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn get_bounded(storage: &dyn Storage, key: &str) -> Result<Vec<u8>> {
    // In a directory target only a regular file is read: a device or a
    // FIFO planted there reports no size and never ends.
    if let Some(p) = storage.local_path(key) {
        if p.symlink_metadata().is_ok_and(|m| !m.is_file()) {
            return Err(RepoError::Invalid(format!(
                "{}: {key} is not a regular file (planted?); not read",
                storage.describe()
            )));
        }
    }
    match storage.size(key)? {
        Some(n) if n > MAX_RECORD_BYTES => Err(RepoError::Invalid(format!(
            "{}: {key} is {n} bytes, more than a backup record may be ({MAX_RECORD_BYTES}); not read",
            storage.describe()
        ))),
        // Exactly the size read, whatever the key holds by now.
        Some(n) => {
            let mut buf = vec![0u8; n as usize];
            storage.read_at(key, 0, &mut buf)?;
            Ok(buf)
        }
        None => Err(mediagit_storage::StorageError::NotFound {
            backend: storage.describe(),
            key: key.into(),
        }
        .into()),
    }
}

/// Parses a record key `repos/ID/records/MS-K-HEX`: (time_ms, kind, id).
fn parse_record_key(repo: &str, key: &str) -> Option<(i64, RecordKind, String)> {
    let name = key.strip_prefix(&format!("repos/{repo}/records/"))?;
    let mut it = name.splitn(3, '-');
    let ms: i64 = it.next()?.parse().ok()?;
    let kind = match it.next()? {
        "s" => RecordKind::Snapshot,
        "j" => RecordKind::Journal,
        _ => return None,
    };
    let id = it.next()?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| (ms, kind, id.into()))
}

fn record_aad(key: &str) -> Vec<u8> {
    format!("mediagit backup record {key}").into_bytes()
}

/// Makes the record's bytes: JSON, sealed when the pool is encrypted
/// (bound to the record's key, so a record cannot be moved to another
/// repository or time).
fn encode_record(
    keys: Option<&mediagit_crypto::RepoKeys>,
    key: &str,
    r: &Record,
) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(r).map_err(|e| RepoError::Invalid(e.to_string()))?;
    match keys {
        None => Ok(json),
        Some(keys) => {
            let mut padded = json;
            let n = padded.len().div_ceil(256).max(1) * 256;
            padded.resize(n, b' ');
            let mut out = SEALED_RECORD_MAGIC.to_vec();
            out.extend_from_slice(
                &keys
                    .seal(mediagit_crypto::Purpose::Ref, &record_aad(key), &padded)
                    .map_err(|e| RepoError::Invalid(e.to_string()))?,
            );
            Ok(out)
        }
    }
}

/// Reads the record stored under `key` of repository `repo` (with the
/// pool's keys when it is encrypted), checking everything §15.2 of
/// FORMAT.md says a reader must.
pub fn decode_record(
    keys: Option<&mediagit_crypto::RepoKeys>,
    repo: &str,
    key: &str,
    bytes: &[u8],
) -> Result<Record> {
    let bad = |why: String| RepoError::Invalid(format!("backup record {key}: {why}"));
    let (ms, kind, id) =
        parse_record_key(repo, key).ok_or_else(|| bad("not a record name".into()))?;
    let plain;
    let json: &[u8] = if let Some(body) = bytes.strip_prefix(SEALED_RECORD_MAGIC) {
        let Some(keys) = keys else {
            return Err(bad(
                "sealed, and this repository is not unlocked (or not encrypted)".into(),
            ));
        };
        plain = keys
            .open(
                mediagit_crypto::Purpose::Ref,
                &record_aad(key),
                body,
                "a backup record",
            )
            .map_err(|e| bad(format!("{e} (tampered, moved, or sealed with another key)")))?;
        &plain
    } else {
        if keys.is_some() {
            return Err(bad(
                "not sealed, in an encrypted repository's backup (planted?)".into(),
            ));
        }
        bytes
    };
    let mut r: Record =
        serde_json::from_slice(json).map_err(|e| bad(format!("not a valid record: {e}")))?;
    if r.version != BACKUP_VERSION {
        return Err(bad(format!(
            "record version {} (this build reads version {BACKUP_VERSION}; a newer build wrote it?)",
            r.version
        )));
    }
    if r.repository != repo || r.time_ms != ms || r.kind != kind {
        return Err(bad(
            "its name and its content disagree (moved or planted?)".into()
        ));
    }
    if r.refs.len() > MAX_RECORD_REFS {
        return Err(bad(format!("more than {MAX_RECORD_REFS} refs")));
    }
    for name in r.refs.keys() {
        crate::refs::check_ref_key(name).map_err(|e| bad(e.to_string()))?;
    }
    if let Some(h) = &r.head {
        crate::refs::validate_ref_name("branch", h).map_err(|e| bad(e.to_string()))?;
    }
    r.id = id;
    r.key = key.to_string();
    Ok(r)
}

/// The pool a store's objects go to: every repository that names objects
/// the same way (format, chunk id function, and the key when encrypted)
/// shares one, so identical data is stored once.
pub fn pool_id(store: &Store) -> String {
    let cfg = store.config();
    let probe = store
        .codec()
        .id(ObjectKind::Chunk, b"mediagit naming probe v1");
    let text = format!(
        "mediagit backup pool v1\n{probe}\n{}\n{:?}\n{}",
        cfg.format.version,
        cfg.format.required_features,
        store.is_encrypted()
    );
    let id = crate::codec::content_id(text.as_bytes()).to_string();
    id[..24].to_string()
}

impl Target {
    /// Whether `url` holds a backup target (its marker), read without
    /// writing anything (opening a target probes conditional writes).
    pub fn exists_at(url: &str, env: &CloudEnv) -> Result<bool> {
        let sc = StorageConfig::from_url(url)
            .map_err(|e| RepoError::Invalid(format!("backup target {url:?}: {e}")))?;
        if !sc.is_object_store() {
            // A working tree or bare repository that happens to hold a
            // file of that name is not a target: a target's marker is a
            // regular file naming the format, beside no repository.
            let dir = PathBuf::from(sc.path.clone().unwrap_or_default());
            let marker = dir.join(TARGET_MARKER);
            if !marker
                .symlink_metadata()
                .is_ok_and(|m| m.is_file() && m.len() <= 4096)
                || dir.join(".mediagit").symlink_metadata().is_ok()
                || dir.join("config.toml").symlink_metadata().is_ok()
            {
                return Ok(false);
            }
            let bytes = std::fs::read(&marker).map_err(|e| RepoError::io("read", &marker, e))?;
            return Ok(serde_json::from_slice::<Marker>(&bytes)
                .is_ok_and(|m| m.format == "mediagit-backup"));
        }
        let s = crate::repo::open_storage(Path::new("."), Some(&sc), env)?;
        Ok(s.size(TARGET_MARKER)?.is_some())
    }

    /// Opens the target at `url` (a directory, `s3://`, `az://`, `gs://`,
    /// `b2://`). `create`: make it a target if it is empty (a directory is
    /// created); else it must already be one.
    pub fn open(url: &str, env: &CloudEnv, tmp: &Path, create: bool) -> Result<Target> {
        Self::open_inner(url, env, tmp, create, None, false)
    }

    /// [`Self::open`] of an existing target on a versioned bucket, reading
    /// every key that was written over at its first version (FORMAT.md
    /// §15.7): the recovery after `verify` found keys written over since
    /// the backups were made.
    pub fn open_first_versions(url: &str, env: &CloudEnv, tmp: &Path) -> Result<Target> {
        Self::open_inner(url, env, tmp, false, None, true)
    }

    /// [`Self::open`] with `create`, on an S3 bucket whose Object Lock
    /// must give every object at least `days` of retention in `mode`: the
    /// bucket's default retention is set when it has none, and a bucket
    /// without Object Lock, or with another mode or fewer days, is refused
    /// before anything is written (FORMAT.md §15.7).
    pub fn open_locked(
        url: &str,
        env: &CloudEnv,
        tmp: &Path,
        mode: LockMode,
        days: u32,
    ) -> Result<Target> {
        Self::open_inner(url, env, tmp, true, Some((mode, days)), false)
    }

    fn open_inner(
        url: &str,
        env: &CloudEnv,
        tmp: &Path,
        create: bool,
        want_lock: Option<(LockMode, u32)>,
        first_versions: bool,
    ) -> Result<Target> {
        let sc = StorageConfig::from_url(url)
            .map_err(|e| RepoError::Invalid(format!("backup target {url:?}: {e}")))?;
        let mut lock = None;
        let mut md5 = false;
        let (storage, sc): (Arc<dyn Storage>, Option<StorageConfig>) = if sc.is_object_store() {
            let mut sc = sc;
            let plain = crate::repo::open_storage(Path::new("."), Some(&sc), env)?;
            // An Object Lock bucket refuses uploads without Content-MD5;
            // a bucket that does not say (no permission to read the
            // setting, a service without it) gets them too.
            match plain.object_lock() {
                Ok(l) => {
                    md5 = l.as_ref().is_some_and(|l| l.enabled);
                    lock = l.filter(|l| l.enabled);
                }
                Err(e) if want_lock.is_some() => return Err(e.into()),
                Err(_) => md5 = sc.backend == mediagit_format::config::StorageKind::S3,
            }
            if let Some((mode, days)) = want_lock {
                let bucket = sc.bucket.clone().unwrap_or_default();
                match &lock {
                    None => {
                        return Err(RepoError::Invalid(format!(
                            "bucket {bucket:?} has no S3 Object Lock: make a bucket for backups with it (aws s3api create-bucket --bucket NAME --object-lock-enabled-for-bucket), or turn it on for this bucket where the service allows it (on AWS, once versioning is on: aws s3api put-object-lock-configuration --bucket {bucket} --object-lock-configuration ObjectLockEnabled=Enabled; it can never be turned off); nothing was written"
                        )))
                    }
                    Some(l) => match l.default_retention {
                        None => {
                            plain.set_object_lock(mode, days)?;
                            lock = Some(ObjectLock {
                                enabled: true,
                                default_retention: Some((mode, days)),
                            });
                        }
                        Some((m, d)) if m != mode => {
                            return Err(RepoError::Invalid(format!(
                                "bucket {bucket:?} already locks objects in {m} mode ({d} days), not {mode}; MediaGit does not change a bucket's retention: use --lock {m}, or another bucket; nothing was written"
                            )))
                        }
                        Some((_, d)) if d < days => {
                            return Err(RepoError::Invalid(format!(
                                "bucket {bucket:?} locks objects for {d} days, fewer than --retain {days}; MediaGit does not change a bucket's retention: lengthen it, or use --retain {d} or less; nothing was written"
                            )))
                        }
                        Some(_) => {}
                    },
                }
            }
            let opts = ConnectOptions {
                content_md5: md5,
                first_versions,
                ..Default::default()
            };
            let s = crate::repo::open_storage_with(Path::new("."), Some(&sc), env, &opts)?;
            if let Some(p) = s.conditional_writes_probe() {
                sc.conditional_writes = p?;
            }
            let s = crate::repo::open_storage_with(Path::new("."), Some(&sc), env, &opts)?;
            (s, Some(sc))
        } else {
            if want_lock.is_some() {
                return Err(RepoError::Invalid(format!(
                    "{url}: S3 Object Lock needs an s3:// target (a directory is protected by its file system's own means, e.g. a read-only snapshot or a WORM volume)"
                )));
            }
            let dir = PathBuf::from(sc.path.clone().unwrap_or_default());
            if create {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| RepoError::io("create directory", &dir, e))?;
            } else if !dir.is_dir() {
                return Err(RepoError::Invalid(format!(
                    "backup target {} is not a directory (is the volume mounted?)",
                    dir.display()
                )));
            }
            (Arc::new(LocalBackend::new(&dir)), None)
        };
        let t = Target {
            url: url.to_string(),
            sc,
            env: env.clone(),
            storage,
            // A folder of this target's own: the caller's temporary folder
            // may be a repository's `.mediagit/tmp`, whose files any
            // command taking that repository's lock removes (a backup
            // takes no lock).
            tmp: {
                sweep_dead_spools(tmp);
                tmp.join(format!("backup-{}-{}", std::process::id(), random_hex(4)?))
            },
            freshen_after: POOL_FRESHEN_AFTER,
            lock,
            md5,
            first_versions,
        };
        t.check_marker(create)?;
        Ok(t)
    }

    /// The bucket's S3 Object Lock, when it has it on.
    pub fn object_lock(&self) -> Option<&ObjectLock> {
        self.lock.as_ref()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// How old a pool pack must be before a backup that reuses it writes
    /// a freshen marker, and before `prune` considers it (default
    /// [`POOL_FRESHEN_AFTER`]; tests use zero).
    pub fn set_freshen_after(&mut self, d: Duration) {
        self.freshen_after = d;
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    fn check_marker(&self, create: bool) -> Result<()> {
        let s = self.storage.as_ref();
        if s.size(TARGET_MARKER)?.is_none() {
            if !create {
                return Err(RepoError::Invalid(format!(
                    "{} is not a MediaGit backup target (no {TARGET_MARKER}); `mediagit backup init` makes one",
                    self.url
                )));
            }
            if let Some(k) = s.first_key("")? {
                return Err(RepoError::Invalid(format!(
                    "{} is not empty (it holds {k:?}) and is not a backup target; choose an empty directory or prefix",
                    self.url
                )));
            }
            let m = serde_json::to_vec_pretty(&Marker {
                format: "mediagit-backup".into(),
                version: BACKUP_VERSION,
            })
            .map_err(|e| RepoError::Invalid(e.to_string()))?;
            // Create-only: of two clients making one target, one writes.
            let _ = s.compare_and_swap(TARGET_MARKER, None, Some(&m))?;
        }
        let bytes = get_bounded(s, TARGET_MARKER)?;
        let m: Marker = serde_json::from_slice(&bytes).map_err(|e| {
            RepoError::Invalid(format!("{}: {TARGET_MARKER} is not valid: {e}", self.url))
        })?;
        if m.format != "mediagit-backup" {
            return Err(RepoError::Invalid(format!(
                "{}: {TARGET_MARKER} names the format {:?}, not mediagit-backup",
                self.url, m.format
            )));
        }
        if m.version > BACKUP_VERSION {
            return Err(RepoError::Invalid(format!(
                "{}: backup layout version {} is newer than this build reads ({BACKUP_VERSION}); upgrade mediagit",
                self.url, m.version
            )));
        }
        Ok(())
    }

    /// For a directory target: refuses `rel` (a path of the layout, such as
    /// `pools/POOL/packs`) when any of its components is a symlink or not
    /// a directory. A planted link would make `prune` or `forget` delete,
    /// and `create` write, outside the target (a repository's own packs).
    fn check_no_links(&self, rel: &str) -> Result<()> {
        let Some(root) = self.root_dir() else {
            return Ok(());
        };
        let mut p = root;
        for part in rel.split('/') {
            p.push(part);
            match p.symlink_metadata() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(RepoError::io("inspect", &p, e)),
                Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                    return Err(RepoError::Invalid(format!(
                        "backup target {}: {} is {} (planted?); nothing was read or written through it",
                        self.url,
                        p.display(),
                        if m.file_type().is_symlink() {
                            "a symlink"
                        } else {
                            "not a directory"
                        }
                    )))
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }

    /// The directory of a directory target.
    fn root_dir(&self) -> Option<PathBuf> {
        if self.sc.is_some() {
            return None;
        }
        self.storage
            .local_path(TARGET_MARKER)
            .and_then(|p| p.parent().map(Path::to_path_buf))
    }

    /// The storage of `pools/POOL/` (a directory is created when `create`).
    fn pool_storage(&self, pool: &str, create: bool) -> Result<Arc<dyn Storage>> {
        if pool.len() != 24 || !pool.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RepoError::Invalid(format!(
                "{}: pool name {pool:?} is not valid (planted?)",
                self.url
            )));
        }
        match &self.sc {
            Some(sc) => {
                let mut sc = sc.clone();
                let p = sc.prefix.trim_end_matches('/');
                sc.prefix = if p.is_empty() {
                    format!("pools/{pool}")
                } else {
                    format!("{p}/pools/{pool}")
                };
                let opts = ConnectOptions {
                    content_md5: self.md5,
                    first_versions: self.first_versions,
                    ..Default::default()
                };
                crate::repo::open_storage_with(Path::new("."), Some(&sc), &self.env, &opts)
            }
            None => {
                for sub in [
                    "",
                    "/packs",
                    "/keys",
                    "/freshen",
                    "/damaged-objects",
                    "/tmp",
                ] {
                    self.check_no_links(&format!("pools/{pool}{sub}"))?;
                }
                let dir = self.root_dir().unwrap_or_default().join("pools").join(pool);
                if create {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| RepoError::io("create directory", &dir, e))?;
                }
                Ok(Arc::new(LocalBackend::new(&dir)))
            }
        }
    }

    /// Every repository id the target holds.
    pub fn repositories(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .storage
            .list("repos/")?
            .iter()
            .filter_map(|k| k.strip_prefix("repos/")?.strip_suffix("/repository.json"))
            .filter(|id| validate_repo_id(id).is_ok())
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The entry of repository `id`, if the target has it.
    pub fn entry(&self, id: &str) -> Result<Option<RepoEntry>> {
        validate_repo_id(id)?;
        self.check_no_links(&format!("repos/{id}"))?;
        let key = format!("repos/{id}/repository.json");
        if self.storage.size(&key)?.is_none() {
            return Ok(None);
        }
        let bytes = get_bounded(self.storage.as_ref(), &key)?;
        let e: RepoEntry = serde_json::from_slice(&bytes)
            .map_err(|e| RepoError::Invalid(format!("{}: {key} is not valid: {e}", self.url)))?;
        if e.version > BACKUP_VERSION {
            return Err(RepoError::Invalid(format!(
                "{}: {key} has version {}, newer than this build reads ({BACKUP_VERSION})",
                self.url, e.version
            )));
        }
        if e.repository != id {
            return Err(RepoError::Invalid(format!(
                "{}: {key} names the repository {:?} (moved or planted?)",
                self.url, e.repository
            )));
        }
        Ok(Some(e))
    }

    /// The entry of `id`, or an error naming the ids the target has.
    pub fn require_entry(&self, id: &str) -> Result<RepoEntry> {
        match self.entry(id)? {
            Some(e) => Ok(e),
            None => {
                let have = self.repositories()?;
                Err(RepoError::Invalid(format!(
                    "backup target {} has no repository {id:?} (it has: {})",
                    self.url,
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                )))
            }
        }
    }

    /// Registers `store` as repository `id` (write-once: an existing entry
    /// is kept, and must be for a repository that names objects the same
    /// way). Returns the entry.
    pub fn register(&self, id: &str, store: &Store, retain_days: Option<u32>) -> Result<RepoEntry> {
        validate_repo_id(id)?;
        let pool = pool_id(store);
        if let Some(e) = self.entry(id)? {
            if e.pool != pool {
                return Err(RepoError::Invalid(format!(
                    "backup target {} already holds a repository {id:?} that is not a copy of this one (it names objects differently); choose another id with --repository",
                    self.url
                )));
            }
            if let Some(d) = retain_days.filter(|d| *d != e.retain_days) {
                return Err(RepoError::Invalid(format!(
                    "repository {id:?} in {} keeps backups {} days; records are write-once, so --retain {d} cannot change it",
                    self.url, e.retain_days
                )));
            }
            return Ok(e);
        }
        let e = RepoEntry {
            version: BACKUP_VERSION,
            repository: id.to_string(),
            pool,
            created: now_ms() / 1000,
            retain_days: retain_days.unwrap_or(0),
            encrypted: store.is_encrypted(),
        };
        let bytes = serde_json::to_vec_pretty(&e).map_err(|e| RepoError::Invalid(e.to_string()))?;
        let key = format!("repos/{id}/repository.json");
        match self.storage.compare_and_swap(&key, None, Some(&bytes))? {
            CasOutcome::Swapped => Ok(e),
            // Another client registered it first: take theirs (checked).
            CasOutcome::Conflict { .. } => self.register(id, store, retain_days),
        }
    }

    /// Registers `store` as repository `id` ([`Target::register`]) and
    /// makes its pool if it does not exist yet.
    pub fn init_repository(
        &self,
        id: &str,
        store: &Store,
        retain_days: Option<u32>,
    ) -> Result<RepoEntry> {
        let entry = self.register(id, store, retain_days)?;
        self.pool(&entry, Some(store))?;
        Ok(entry)
    }

    /// The pool of `entry` as a store (not unlocked). `like`: the
    /// repository being backed up, whose settings (and key files) make
    /// the pool when it does not exist yet.
    fn pool(&self, entry: &RepoEntry, like: Option<&Store>) -> Result<Store> {
        let storage = self.pool_storage(&entry.pool, like.is_some())?;
        if storage.size("config.toml")?.is_none() {
            let Some(src) = like else {
                return Err(RepoError::Invalid(format!(
                    "backup target {}: the objects of repository {:?} (pools/{}) are missing",
                    self.url, entry.repository, entry.pool
                )));
            };
            match src.init_remote_store(storage.as_ref()) {
                Ok(()) | Err(RepoError::StoreHasRepository { .. }) => {}
                // Another backup is creating the pool right now.
                Err(RepoError::Invalid(_)) if storage.size("config.toml")?.is_some() => {}
                Err(e) => return Err(e),
            }
        }
        std::fs::create_dir_all(&self.tmp)
            .map_err(|e| RepoError::io("create directory", &self.tmp, e))?;
        let mut s = Store::open(storage, self.tmp.clone())?;
        // Reusing an old pack's objects re-dates it with a freshen marker
        // (a new key: the pool stays write-once), which `prune` respects.
        s.set_freshen_after(Some(self.freshen_after));
        Ok(s)
    }

    /// The pool of `entry`, unlocked with `repo`'s key (it must be a copy
    /// of the repository whose pool it is).
    pub fn pool_like(&self, entry: &RepoEntry, repo: &Store) -> Result<Store> {
        let mut pool = self.pool(entry, None)?.unlock_like(repo)?;
        crate::transfer::check_same_naming(
            repo,
            &pool,
            &format!("backup of {:?}", entry.repository),
        )?;
        if pool.unlocked.is_none() {
            pool.unlocked = repo.unlocked.clone();
        }
        Ok(pool)
    }

    /// The pool of `entry`, unlocked with `credential` when encrypted.
    pub fn pool_with(
        &self,
        entry: &RepoEntry,
        credential: Option<&crate::keys::Credential>,
    ) -> Result<Store> {
        let pool = self.pool(entry, None)?;
        if !pool.is_encrypted() {
            return Ok(pool);
        }
        let Some(c) = credential else {
            return Err(RepoError::NeedsPassphrase {
                store: pool.storage().describe(),
            });
        };
        // (The freshen window set by `pool` stays.)
        pool.unlock_with(c, None)
    }

    /// The keys of repository `id`'s records with their times, oldest first.
    fn record_keys(&self, id: &str) -> Result<Vec<(i64, String)>> {
        validate_repo_id(id)?;
        self.check_no_links(&format!("repos/{id}/records"))?;
        let mut keys: Vec<(i64, String)> = self
            .storage
            .list(&format!("repos/{id}/records/"))?
            .into_iter()
            .filter_map(|k| parse_record_key(id, &k).map(|(ms, _, _)| (ms, k)))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// The records of repository `id`, oldest first, read with `pool`'s
    /// key; records that do not read are returned apart, with why.
    pub fn records(&self, id: &str, pool: &Store) -> Result<(Vec<Record>, BadRecords)> {
        let keys = self.record_keys(id)?;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (_, key) in keys {
            match get_bounded(self.storage.as_ref(), &key)
                .and_then(|b| decode_record(pool.keys.as_deref(), id, &key, &b))
            {
                Ok(r) => good.push(r),
                Err(e) => bad.push((key, e.to_string())),
            }
        }
        Ok((good, bad))
    }

    /// The newest record of repository `id` that reads (one listing, then
    /// reads from the newest back).
    pub fn latest_record(&self, id: &str, pool: &Store) -> Result<Option<Record>> {
        let keys = self.record_keys(id)?;
        for (_, key) in keys.into_iter().rev() {
            if let Ok(r) = get_bounded(self.storage.as_ref(), &key)
                .and_then(|b| decode_record(pool.keys.as_deref(), id, &key, &b))
            {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    fn write_record(&self, pool: &Store, r: &mut Record) -> Result<()> {
        let id = random_hex(8)?;
        let key = format!(
            "repos/{}/records/{:015}-{}-{id}",
            r.repository,
            r.time_ms,
            r.kind.letter()
        );
        let bytes = encode_record(pool.keys.as_deref(), &key, r)?;
        crate::failpoint::hit("backup:before-record");
        // Create-only: a record is never overwritten.
        match self.storage.compare_and_swap(&key, None, Some(&bytes))? {
            CasOutcome::Swapped => {}
            // The same bytes: our own write, whose answer was lost and
            // which the client retried (the key has a random part).
            CasOutcome::Conflict { actual: Some(a) } if a == bytes => {}
            CasOutcome::Conflict { .. } => {
                return Err(RepoError::Invalid(format!(
                    "{}: record {key} exists already; nothing was overwritten",
                    self.url
                )))
            }
        }
        r.id = id;
        r.key = key;
        Ok(())
    }
}

/// Finds the record `sel` names among `records`: a unique prefix of its
/// id (at least 4 characters).
pub fn find_record<'a>(records: &'a [Record], sel: &str) -> Result<&'a Record> {
    let sel = sel.trim();
    if sel.len() < 4 {
        return Err(RepoError::Invalid(format!(
            "snapshot {sel:?}: give at least 4 characters of its id (`mediagit backup list`)"
        )));
    }
    let found: Vec<&Record> = records.iter().filter(|r| r.id.starts_with(sel)).collect();
    match found.as_slice() {
        [r] => Ok(r),
        [] => Err(RepoError::Invalid(format!(
            "no snapshot {sel:?} in this backup (`mediagit backup list` shows them)"
        ))),
        _ => Err(RepoError::Invalid(format!(
            "snapshot {sel:?} is ambiguous: {} records start with it",
            found.len()
        ))),
    }
}

/// The newest record at or before `at_ms`.
pub fn record_at<'a>(records: &'a [Record], at_ms: i64, repo: &str) -> Result<&'a Record> {
    records
        .iter()
        .filter(|r| r.time_ms <= at_ms)
        .max_by_key(|r| (r.time_ms, r.kind == RecordKind::Snapshot))
        .ok_or_else(|| match records.iter().map(|r| r.time_ms).min() {
            Some(first) => RepoError::Invalid(format!(
                "no backup of {repo:?} at or before that time: the first one is at {} (--at @{})",
                fmt_ms(first),
                first.div_euclid(1000)
            )),
            None => RepoError::Invalid(format!("repository {repo:?} has no backup yet")),
        })
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a time in Unix milliseconds.
pub fn fmt_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// What `backup create` did.
#[derive(Debug, Clone, Serialize)]
pub struct CreateOutcome {
    pub repository: String,
    /// `None` when `--watch` found nothing new to record.
    pub record: Option<String>,
    pub kind: RecordKind,
    pub time_ms: i64,
    pub refs: usize,
    pub transfer: TransferStats,
    /// Refs that could not be read (not in the record), with why.
    pub skipped_refs: Vec<(String, String)>,
    /// Key files the target holds that this repository no longer has:
    /// their passphrases still open the backups (write-once).
    pub stale_keys: Vec<String>,
}

/// The refs a record of `repo` holds now: (head, detached, refs, skipped).
type RefState = (
    Option<String>,
    Option<ObjectId>,
    BTreeMap<String, ObjectId>,
    Vec<(String, String)>,
);

fn read_ref_state(repo: &Repository) -> Result<RefState> {
    let mut refs = BTreeMap::new();
    let mut skipped = Vec::new();
    for (name, v) in repo.ref_entries("refs/")? {
        // The stash is this working tree's scratch space (its entries are
        // a reflog, not refs): not part of a backup.
        if name == "refs/stash" {
            continue;
        }
        match v {
            Ok(id) => {
                refs.insert(name, id);
            }
            Err(e) => skipped.push((name, e.to_string())),
        }
    }
    let (head, detached) = match repo.head_opt()? {
        Some(crate::refs::Head::Branch(b)) => (Some(b), None),
        Some(crate::refs::Head::Detached(id)) => (None, Some(id)),
        None => (None, None),
    };
    Ok((head, detached, refs, skipped))
}

/// Options of [`create`].
pub struct CreateOptions<'a> {
    pub repository: &'a str,
    pub kind: RecordKind,
    pub host: String,
    /// With `Journal`: the previous record's refs; nothing is written when
    /// the refs are the same.
    pub unless_same_as: Option<&'a Record>,
    pub retain_days: Option<u32>,
    /// Walk the whole history and store again every object the target
    /// lacks or holds damaged (after `verify` found damage), not only
    /// what is new since the history the target has.
    pub repair: bool,
    /// The id was not chosen by the user (`create --all`, a server): refuse
    /// when this repository holds none of the commits the id's newest
    /// record names (another repository that got the same id).
    pub check_same: bool,
}

/// Backs `repo` up into `target`: copies what the pool lacks, then writes
/// the record (module docs). Takes no lock on the repository.
pub fn create(
    repo: &Repository,
    target: &Target,
    opts: &CreateOptions<'_>,
    progress: &dyn Progress,
) -> Result<CreateOutcome> {
    repo.store().require_unlocked()?;
    let started_ms = now_ms();
    let entry = target.init_repository(opts.repository, repo.store(), opts.retain_days)?;
    let mut pool = target.pool_like(&entry, repo.store())?;
    if opts.check_same {
        if let Some(last) = target.latest_record(opts.repository, &pool)? {
            let odb = repo.store().odb()?;
            let tips = last.tips();
            if !tips.is_empty() && !tips.iter().any(|id| odb.contains(id)) {
                return Err(RepoError::Invalid(format!(
                    "{} holds backups of a repository {:?} that shares no commit with this one: another repository got the same id; nothing was written (give it another id)",
                    target.url(),
                    opts.repository
                )));
            }
        }
    }
    let mut stale_keys = Vec::new();
    if pool.is_encrypted() {
        // Key files added to the repository since (`key add`, `key
        // passwd`) go to the pool too, so a restore opens with today's
        // passphrases; the old ones stay (write-once).
        let have = pool.storage().list(crate::keys::KEYS_PREFIX)?;
        for key in repo
            .storage()
            .list(crate::keys::KEYS_PREFIX)?
            .into_iter()
            .take(crate::keys::MAX_KEY_FILES)
        {
            if !have.contains(&key) {
                let bytes = repo.storage().get(&key)?;
                pool.storage().compare_and_swap(&key, None, Some(&bytes))?;
            }
        }
        let mine = repo.storage().list(crate::keys::KEYS_PREFIX)?;
        stale_keys = have
            .into_iter()
            .filter(|k| !mine.contains(k))
            .map(|k| k[crate::keys::KEYS_PREFIX.len()..].to_string())
            .collect();
    }
    let time_ms = now_ms();
    let (head, detached, refs, skipped) = read_ref_state(repo)?;
    let mut out = CreateOutcome {
        repository: opts.repository.to_string(),
        record: None,
        kind: opts.kind,
        time_ms,
        refs: refs.len(),
        transfer: TransferStats::default(),
        skipped_refs: skipped,
        stale_keys,
    };
    if let Some(prev) = opts.unless_same_as {
        if prev.refs == refs && prev.head == head && prev.detached == detached {
            return Ok(out);
        }
    }
    let mut rec = Record {
        version: BACKUP_VERSION,
        kind: opts.kind,
        repository: opts.repository.to_string(),
        time_ms,
        head,
        detached,
        refs,
        host: opts.host.clone(),
        copied_objects: 0,
        copied_bytes: 0,
        id: String::new(),
        key: String::new(),
    };
    let tips = rec.tips();
    if !tips.is_empty() {
        let label = format!("backup {}", target.url());
        let labels = Labels {
            src: crate::transfer::THIS,
            dst: &label,
        };
        let copy = |src: &Store, dst: &Store| -> Result<TransferStats> {
            if !opts.repair {
                return crate::transfer::copy_missing_server_side(
                    src, dst, &tips, labels, progress,
                );
            }
            let (stats, lost) =
                crate::transfer::copy_for_repair(src, dst, &tips, labels, progress)?;
            match lost.first() {
                None => Ok(stats),
                Some(id) => Err(RepoError::Invalid(format!(
                    "{} object(s) the refs need are readable neither in this repository nor in the backup (first: {id}); no record was written (run `mediagit fsck`)",
                    lost.len()
                ))),
            }
        };
        out.transfer = match copy(repo.store(), &pool) {
            Ok(s) => s,
            // A gc that repacked the repository meanwhile moved objects
            // to new packs: read them where they are now, once.
            Err(_) => copy(&repo.store().with_fresh_odb(), &pool.with_fresh_odb())?,
        };
        if out.transfer.server_side_packs > 0 {
            // (The object database loaded now sees the packs copied whole.)
            pool = pool.with_fresh_odb();
        }
    }
    crate::failpoint::hit("backup:before-protect");
    if !tips.is_empty() {
        protect_from_prune(
            target,
            repo,
            &pool,
            &tips,
            started_ms,
            &mut out.transfer,
            progress,
        )?;
    }
    rec.copied_objects = out.transfer.objects;
    rec.copied_bytes = out.transfer.bytes;
    target.write_record(&pool, &mut rec)?;
    out.record = Some(rec.id);
    Ok(out)
}

/// Whether a freshen marker of time `f` is at or after a prune mark made
/// at `mark_ms` (compared in whole seconds, as marker names are: a marker
/// of the same second counts as after).
fn freshened_since(f: SystemTime, mark_ms: i64) -> bool {
    f.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 >= mark_ms.div_euclid(1000))
        .unwrap_or(false)
}

/// Whether `pack` has a freshen marker at or after `mark_ms` (one listing
/// of that pack's markers).
fn pack_freshened_since(storage: &dyn Storage, pack: &ObjectId, mark_ms: i64) -> Result<bool> {
    let prefix = format!("{}{pack}-", crate::odb::FRESHEN_PREFIX);
    Ok(storage
        .list(&prefix)?
        .iter()
        .filter_map(|k| crate::odb::parse_freshen_key(k))
        .any(|(_, t)| freshened_since(t, mark_ms)))
}

/// A prune that started deleting less than this before a backup started
/// makes the backup check, before writing its record, that everything the
/// record needs is still in the pool.
const PRUNE_LOG_MARGIN: Duration = Duration::from_secs(3600);

/// How long `create` waits between freshening the marked packs its
/// record relies on and checking that they are still there: longer than
/// a prune takes between its last look at a pack's freshen markers and
/// deleting it.
const PRUNE_RACE_WAIT: Duration = Duration::from_secs(2);

/// A record's ref value as a root of a reachability walk: a tag object
/// where the pool stores one under that id, else a commit.
pub(crate) fn tip_root(odb: &crate::odb::Odb, id: ObjectId, why: String) -> Root {
    let kind = match odb.locate(&id).map(|(_, l)| l.kind) {
        Some(ObjectKind::Tag) => ObjectKind::Tag,
        _ => ObjectKind::Commit,
    };
    Root { id, kind, why }
}

/// The packs the pool's prune marks name (FORMAT.md §15.5; removed packs
/// included), each with the time of its earliest mark.
fn marked_packs(target: &Target, pool: &str) -> Result<BTreeMap<ObjectId, i64>> {
    let mut out: BTreeMap<ObjectId, i64> = BTreeMap::new();
    for key in target.storage.list(&format!("prune/{pool}/"))? {
        let Ok(b) = get_bounded(target.storage.as_ref(), &key) else {
            continue;
        };
        let Ok(m) = serde_json::from_slice::<PruneMark>(&b) else {
            continue;
        };
        for p in m.packs {
            let e = out.entry(p).or_insert(m.time_ms);
            *e = (*e).min(m.time_ms);
        }
    }
    Ok(out)
}

/// Before a record is written: a pack a prune has marked may be removed
/// by the next prune, and the walk that copied what the pool lacked did
/// not look at old history it found present. So every marked pack that
/// holds an object the record needs is freshened (a new key), then, after
/// [`PRUNE_RACE_WAIT`], checked to be still there; what a prune removed
/// meanwhile is stored again from the repository (a whole-history copy).
fn protect_from_prune(
    target: &Target,
    repo: &Repository,
    pool: &Store,
    tips: &[ObjectId],
    started_ms: i64,
    recopied: &mut TransferStats,
    progress: &dyn Progress,
) -> Result<()> {
    let pool_name = pool_id(repo.store());
    for _ in 0..3 {
        let marked = marked_packs(target, &pool_name)?;
        // A prune that deleted packs since shortly before this backup
        // started may have deleted what it found present.
        let since = started_ms - PRUNE_LOG_MARGIN.as_millis() as i64;
        let pruned = target
            .storage
            .list(&format!("prune-log/{pool_name}/"))?
            .iter()
            .filter_map(|k| k.rsplit('/').next()?.split('-').next()?.parse::<i64>().ok())
            .any(|ms| ms >= since);
        if marked.is_empty() && !pruned {
            return Ok(());
        }
        let fresh = pool.with_fresh_odb();
        let odb = fresh.odb()?;
        let roots: Vec<Root> = tips
            .iter()
            .map(|id| tip_root(odb, *id, "the record being written".into()))
            .collect();
        let reach = crate::reach::walk(odb, &roots, &|id| odb.contains(id));
        let mut relied: std::collections::BTreeSet<ObjectId> = Default::default();
        for id in reach.objects.iter() {
            if let Some((pack, _)) = odb.locate(id) {
                if marked.contains_key(&pack) {
                    relied.insert(pack);
                }
            }
        }
        if relied.is_empty() && reach.unreadable.is_empty() {
            return Ok(());
        }
        let now = SystemTime::now();
        for p in &relied {
            fresh
                .storage()
                .compare_and_swap(&crate::odb::freshen_key(p, now), None, Some(b""))?;
        }
        std::thread::sleep(PRUNE_RACE_WAIT);
        let mut gone = !reach.unreadable.is_empty();
        for p in &relied {
            if fresh.storage().size(&crate::odb::pack_key(p))?.is_none()
                || fresh.storage().size(&crate::odb::idx_key(p))?.is_none()
            {
                gone = true;
            }
        }
        if !gone {
            return Ok(());
        }
        // A prune removed some of them first: store again what is missing.
        let label = format!("backup {}", target.url());
        let (again, lost) = crate::transfer::copy_for_repair(
            &repo.store().with_fresh_odb(),
            &pool.with_fresh_odb(),
            tips,
            Labels {
                src: crate::transfer::THIS,
                dst: &label,
            },
            progress,
        )?;
        if let Some(id) = lost.first() {
            return Err(RepoError::Invalid(format!(
                "a prune removed objects this backup relied on, and {} of them are no longer in this repository either (first: {id}); no record was written",
                lost.len()
            )));
        }
        recopied.objects += again.objects;
        recopied.chunks += again.chunks;
        recopied.bytes += again.bytes;
        recopied.reads += again.reads;
    }
    Err(RepoError::Invalid(
        "a prune kept removing what this backup relies on; no record was written (run the backup again after the prune)"
            .into(),
    ))
}

/// What `backup restore` did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreOutcome {
    pub repository: String,
    pub record: String,
    pub time_ms: i64,
    pub refs: usize,
    pub branch: Option<String>,
    pub files: usize,
    pub bytes: u64,
    /// Packs of the target taken whole (hard-linked on one filesystem,
    /// else copied as files): every object in them is one the record needs.
    pub whole_packs: usize,
    pub whole_pack_bytes: u64,
    /// The other objects, copied one by one (verified).
    pub transfer: TransferStats,
}

/// Before the object-by-object copy of a restore: the pool's packs that
/// hold nothing but objects `record` needs are taken whole (a hard link
/// when target and destination share a filesystem, else a file copy):
/// no decoding, no second pack written. Only when no other repository
/// shares the pool (a pack of a shared pool may hold another repository's
/// objects) and no copy in the pack is known damaged. A pack is judged by
/// its own index (an object the object table reads from another pack is
/// still in this one), judged again by the index copied, and the copy must
/// pass [`crate::odb::check_pack_frame`] (header, layout, name: what
/// reading entries never checks), or it is removed again and its objects
/// are copied one by one. Returns each pack taken with its index entries,
/// and the bytes.
fn take_whole_packs(
    target: &Target,
    pool: &Store,
    record: &Record,
    dest: &Repository,
) -> Result<(Vec<crate::clone::CopiedPack>, u64)> {
    let pool_name = target.require_entry(&record.repository)?.pool;
    let mut sharing = 0;
    for id in target.repositories()? {
        if target.entry(&id)?.is_some_and(|e| e.pool == pool_name) {
            sharing += 1;
        }
    }
    if sharing != 1 {
        return Ok((Vec::new(), 0));
    }
    let odb = pool.odb()?;
    let roots: Vec<Root> = record
        .tips()
        .into_iter()
        .map(|id| tip_root(odb, id, format!("record {}", record.id)))
        .collect();
    let reach = crate::reach::walk(odb, &roots, &|id| odb.has_sound(id));
    if !reach.unreadable.is_empty() {
        // The copy below names what is missing.
        return Ok((Vec::new(), 0));
    }
    // A first sieve on the object table's view: pack -> (objects, objects
    // needed, any damaged).
    let mut packs: BTreeMap<ObjectId, (usize, usize, bool)> = BTreeMap::new();
    odb.for_each_object(|id, pack, loc| {
        let e = packs.entry(*pack).or_default();
        e.0 += 1;
        if reach.objects.contains(id) {
            e.1 += 1;
        }
        e.2 |= loc.damaged;
    });
    // Packs holding a copy verify found damaged, wherever the object
    // table reads that object (the markers stay in the pool: a pack taken
    // whole would bring the damaged copy without them).
    let marked: std::collections::HashSet<ObjectId> =
        crate::odb::list_damaged(pool.storage().as_ref())?
            .into_iter()
            .map(|(_, _, pack)| pack)
            .collect();
    let tmp = dest.store().tmp_dir().to_path_buf();
    let (mut taken, mut bytes) = (Vec::new(), 0);
    let mut brought = IdSet::default();
    for (pack, (all, needed, damaged)) in packs {
        if all == 0 || needed < all || damaged || marked.contains(&pack) {
            continue;
        }
        // Only regular files are taken (a link planted in the target is
        // left to the verified copy, which reads objects, not files).
        let regular = |key: &str| {
            pool.storage()
                .local_path(key)
                .map(|p| p.symlink_metadata().is_ok_and(|m| m.file_type().is_file()))
                .unwrap_or(true)
        };
        let (pk, ik) = (crate::odb::pack_key(&pack), crate::odb::idx_key(&pack));
        if !regular(&pk) || !regular(&ik) {
            continue;
        }
        // Its own index: every entry needed, none brought by a pack
        // already taken (one copy of each object).
        let raw = pool.storage().as_ref();
        let Ok(max) = crate::odb::index_bound(raw, &pack) else {
            continue;
        };
        let Ok((idx, _)) = crate::odb::read_pack_index(raw, &pool.codec(), &ik, pack, max, None)
        else {
            continue;
        };
        if idx
            .entries
            .iter()
            .any(|e| !reach.objects.contains(&e.id) || brought.contains(&e.id))
        {
            continue;
        }
        // Pack, then index (FORMAT.md §9).
        for key in [&pk, &ik] {
            crate::clone::copy_object(
                pool.storage().as_ref(),
                dest.storage().as_ref(),
                key,
                &tmp,
                if key == &ik { max } else { u64::MAX },
            )?;
        }
        // What arrived is judged again where it now is (local disk:
        // cheap), by the index the new repository will read.
        let d = dest.storage().as_ref();
        let copied = crate::odb::index_bound(d, &pack).and_then(|max| {
            crate::odb::read_pack_index(d, &dest.store().codec(), &ik, pack, max, None)
        });
        let judged = match copied {
            Ok((idx, salt)) => {
                let ok = idx
                    .entries
                    .iter()
                    .all(|e| reach.objects.contains(&e.id) && !brought.contains(&e.id))
                    && crate::odb::check_pack_frame(d, &pack, &idx, salt, true)?.is_none();
                ok.then_some((idx, salt))
            }
            Err(_) => None,
        };
        let Some((idx, salt)) = judged else {
            // The index first: a pack without an index is invisible.
            d.delete(&ik)?;
            d.delete(&pk)?;
            continue;
        };
        bytes += idx
            .entries
            .iter()
            .map(|e| mediagit_format::pack::entry_len(salt.is_some(), e.stored_len))
            .sum::<u64>();
        brought.extend(idx.entries.iter().map(|e| e.id));
        taken.push((pack, idx.entries));
    }
    Ok((taken, bytes))
}

/// Restores the repository `entry` names as `record` has it into a new
/// repository at `dest` (an empty or missing directory), checked out.
/// On failure nothing is left at `dest`.
#[allow(clippy::too_many_arguments)]
pub fn restore(
    target: &Target,
    pool: &Store,
    record: &Record,
    dest: &Path,
    bare: bool,
    env: &CloudEnv,
    who: &mediagit_format::Signature,
    progress: &dyn Progress,
) -> Result<(Repository, RestoreOutcome)> {
    let (existed, was_empty) = crate::clone::dest_state(dest)?;
    let r = restore_into(target, pool, record, dest, bare, env, who, progress);
    crate::clone::clean_failed_clone(dest, r, existed, was_empty)
}

#[allow(clippy::too_many_arguments)]
fn restore_into(
    target: &Target,
    pool: &Store,
    record: &Record,
    dest: &Path,
    bare: bool,
    env: &CloudEnv,
    who: &mediagit_format::Signature,
    progress: &dyn Progress,
) -> Result<(Repository, RestoreOutcome)> {
    let branch = record.head.clone().unwrap_or_else(|| "main".into());
    let repo = Repository::init(
        dest,
        &crate::repo::InitOptions {
            bare,
            initial_branch: Some(branch.clone()),
            storage: None,
            template: Some(pool.config().clone()),
            env: env.clone(),
            encryption: pool
                .is_encrypted()
                .then(|| crate::repo::InitEncryption::From(Box::new(pool.clone()))),
        },
    )?;
    let _lock = match repo.workspace_opt() {
        Some(ws) => Some(ws.lock()?),
        None => None,
    };
    let (taken, whole_pack_bytes) = take_whole_packs(target, pool, record, &repo)?;
    let whole_packs = taken.len();
    // (An object database loaded now sees the packs just taken.)
    let repo = repo.with_fresh_odb();
    let label = format!("backup {}", target.url());
    let labels = Labels {
        src: &label,
        dst: crate::transfer::THIS,
    };
    let transfer = if whole_packs == 0 {
        copy_missing(pool, repo.store(), &record.tips(), labels, progress)?
    } else {
        // A commit in a pack taken whole may have its parent elsewhere:
        // the whole history is walked (what the packs brought is skipped).
        let (stats, lost) =
            crate::transfer::copy_for_repair(pool, repo.store(), &record.tips(), labels, progress)?;
        if let Some(id) = lost.first() {
            return Err(RepoError::MissingObject {
                id: *id,
                kind: "object",
                context: Some(format!(
                    "{} object(s) record {} needs, in {label}",
                    lost.len(),
                    record.id
                )),
            });
        }
        stats
    };
    for (name, id) in &record.refs {
        repo.cas_ref(name, None, Some(*id))?;
        if let (true, Some(ws)) = (name.starts_with("refs/heads/"), repo.workspace_opt()) {
            ws.append_reflog(
                name,
                &crate::refs::ReflogEntry {
                    old: ObjectId::ZERO,
                    new: *id,
                    who: who.clone(),
                    message: format!(
                        "backup restore: {} record {} ({})",
                        target.url(),
                        record.id,
                        fmt_ms(record.time_ms)
                    ),
                },
            )?;
        }
    }
    if !taken.is_empty() {
        let checked_out = if bare { None } else { record.head_commit() };
        crate::clone::verify_copied_packs(&repo, &taken, checked_out)?;
    }
    let mut out = RestoreOutcome {
        repository: record.repository.clone(),
        record: record.id.clone(),
        time_ms: record.time_ms,
        refs: record.refs.len(),
        branch: None,
        files: 0,
        bytes: 0,
        whole_packs,
        whole_pack_bytes,
        transfer,
    };
    drop(_lock);
    if !bare {
        let t = match (&record.head, record.detached) {
            (Some(b), _) if record.refs.contains_key(&crate::refs::branch_ref(b)) => {
                Some(crate::checkout::CheckoutTarget::Branch(b.clone()))
            }
            (None, Some(id)) => Some(crate::checkout::CheckoutTarget::Detached(id)),
            _ => None,
        };
        if let Some(t) = t {
            repo.workspace()?.write_base(None)?;
            let c = repo.checkout(&t, true, who, progress)?;
            out.files = c.written;
            out.bytes = c.bytes;
        }
        out.branch = record.head.clone();
    }
    Ok((repo, out))
}

/// One problem `backup verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyProblem {
    pub repository: String,
    /// What is wrong: "missing", "damaged", "unreadable record".
    pub kind: String,
    pub object: Option<String>,
    pub detail: String,
}

/// What `backup verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyOutcome {
    pub repositories: usize,
    pub records: usize,
    pub objects: usize,
    /// Objects read back and re-hashed (`--read-data`).
    pub objects_read: usize,
    pub bytes_read: u64,
    pub problems: Vec<VerifyProblem>,
}

/// On a target under S3 Object Lock (FORMAT.md §15.7): every key of the
/// layout is written once, so a key with several stored versions was
/// written over by someone else. Each is a problem naming the key; its
/// oldest version is the one MediaGit wrote, still stored and locked.
pub fn verify_versions(target: &Target, out: &mut VerifyOutcome) -> Result<()> {
    // Lock on, or not known (the setting could not be read).
    if !target.md5 {
        return Ok(());
    }
    let Some(versions) = target.storage.list_versions("")? else {
        return Ok(());
    };
    let mut per_key: BTreeMap<String, Vec<mediagit_storage::KeyVersion>> = BTreeMap::new();
    for (key, v) in versions {
        // (The conditional-write probe of every open writes its
        // `locks/probe-*` key twice, by design.)
        if !key.starts_with("locks/") {
            per_key.entry(key).or_default().push(v);
        }
    }
    for (key, vs) in per_key {
        let data = mediagit_storage::data_versions(&vs);
        let (Some(first), Some(newest)) = (data.first(), data.last()) else {
            continue;
        };
        // One content (a retried or concurrent write of the same bytes),
        // or the first content put back on top: nothing to report.
        if data.len() < 2 || (newest.etag.is_some() && newest.etag == first.etag) {
            continue;
        }
        let repository = match key.strip_prefix("repos/").and_then(|k| k.split('/').next()) {
            Some(r) => r.to_string(),
            None => "(target)".to_string(),
        };
        let n = data.len();
        out.problems.push(VerifyProblem {
            repository,
            kind: "written over".into(),
            object: Some(key),
            detail: format!(
                "{n} versions with different content are stored of a key written once: someone wrote over it (or planted it before the backup wrote it); MediaGit reads the newest, and `backup restore --first-versions` reads the first, {} (FORMAT.md §15.7)",
                first.version
            ),
        });
    }
    Ok(())
}

/// Checks that every object every record of `repo` needs is in `pool`
/// (and with `read_percent`, reads that share of them back, by pack, and
/// verifies each against its id).
pub fn verify(
    target: &Target,
    repo: &str,
    pool: &Store,
    read_percent: Option<u8>,
    out: &mut VerifyOutcome,
) -> Result<()> {
    out.repositories += 1;
    let (records, bad) = target.records(repo, pool)?;
    for (key, why) in bad {
        out.problems.push(VerifyProblem {
            repository: repo.into(),
            kind: "unreadable record".into(),
            object: Some(key),
            detail: why,
        });
    }
    out.records += records.len();
    let odb = pool.odb()?;
    let mut roots = Vec::new();
    for r in &records {
        for (name, id) in &r.refs {
            let why = format!("record {} ({}) {name}", r.id, fmt_ms(r.time_ms));
            roots.push(tip_root(odb, *id, why));
        }
        if let Some(id) = r.detached {
            roots.push(Root {
                id,
                kind: ObjectKind::Commit,
                why: format!("record {} detached HEAD", r.id),
            });
        }
    }
    let reach = crate::reach::walk(odb, &roots, &|id| odb.has_sound(id));
    out.objects += reach.objects.len();
    // Every pack that holds a needed object is there, as long as its
    // index says (an index whose pack was deleted or cut short would
    // otherwise pass until the data is read).
    let mut ends: BTreeMap<ObjectId, u64> = BTreeMap::new();
    for id in reach.objects.iter() {
        if let Some((pack, loc)) = odb.locate(id) {
            let end = loc.offset.saturating_add(loc.entry_len(odb.sealed()));
            let e = ends.entry(pack).or_default();
            *e = (*e).max(end);
        }
    }
    let mut gone = std::collections::BTreeSet::new();
    for (pack, end) in &ends {
        let key = crate::odb::pack_key(pack);
        let found = pool.storage().size(&key)?;
        if found.is_none_or(|n| n < *end) {
            gone.insert(*pack);
        }
        match found {
            Some(n) if n >= *end => {}
            found => out.problems.push(VerifyProblem {
                repository: repo.into(),
                kind: "missing".into(),
                object: Some(key.clone()),
                detail: match found {
                    None => "the pack is gone (its index is still there)".into(),
                    Some(n) => format!("the pack is {n} bytes; its index needs {end}"),
                },
            }),
        }
    }
    for u in &reach.unreadable {
        let missing = !odb.contains(&u.id);
        out.problems.push(VerifyProblem {
            repository: repo.into(),
            kind: if missing { "missing" } else { "damaged" }.into(),
            object: Some(format!("{} {}", u.kind.name(), u.id)),
            detail: format!("needed by {}: {}", u.needed_by, u.error),
        });
    }
    // Damage markers for what those packs held (new keys), so that
    // `create --repair` stores it again instead of trusting the index.
    if !gone.is_empty() {
        for id in reach.objects.iter() {
            if let Some((pack, _)) = odb.locate(id).filter(|(p, _)| gone.contains(p)) {
                mark_damaged(pool, id, &pack);
            }
        }
    }
    let Some(pct) = read_percent else {
        return Ok(());
    };
    // Whole packs are read (one request per 8 MiB run): the sample is a
    // share of the packs, chosen by their ids and the day (so that runs
    // on different days read different packs).
    let rotate = (now_ms() / 86_400_000).rem_euclid(100) as u32;
    let mut by_pack: BTreeMap<ObjectId, Vec<(ObjectId, ObjectId, crate::odb::Location)>> =
        BTreeMap::new();
    for id in reach.objects.iter() {
        if let Some((pack, loc)) = odb.locate(id).filter(|(p, _)| !gone.contains(p)) {
            let pick = pct >= 100 || (pack.0[0] as u32 * 100 / 256 + rotate) % 100 < pct as u32;
            if pick {
                by_pack.entry(pack).or_default().push((*id, pack, loc));
            }
        }
    }
    for (pack, mut want) in by_pack {
        let mut n = 0usize;
        let mut bytes = 0u64;
        let r = odb.read_stored_many(&mut want, &mut |_, _, p| {
            n += 1;
            bytes += p.len() as u64;
            Ok(())
        });
        out.objects_read += n;
        out.bytes_read += bytes;
        if r.is_err() {
            // Find every bad object of the pack, one at a time.
            for (id, _, loc) in want.iter().skip(n) {
                match odb.read_raw(id, loc.kind) {
                    Ok(b) => {
                        out.objects_read += 1;
                        out.bytes_read += b.len() as u64;
                    }
                    Err(e) => {
                        // A damage marker (a new key: the target stays
                        // write-once) makes the next `create --repair`
                        // store a sound copy instead of trusting this one.
                        mark_damaged(pool, id, &pack);
                        out.problems.push(VerifyProblem {
                            repository: repo.into(),
                            kind: "damaged".into(),
                            object: Some(format!("{} {id}", loc.kind.name())),
                            detail: e.to_string(),
                        })
                    }
                }
            }
        }
    }
    Ok(())
}

/// Writes the damage marker of `id`'s copy in `pack` unless it is there
/// already (on a versioned bucket a second write would be a second
/// version, which `verify` reports as written over). Best effort: a
/// marker that cannot be written is found again by the next verify.
fn mark_damaged(pool: &Store, id: &ObjectId, pack: &ObjectId) {
    let key = crate::odb::damaged_key(id, pack);
    if matches!(pool.storage().size(&key), Ok(None)) {
        let _ = pool.storage().put(&key, b"");
    }
}

/// Which records `forget` keeps.
#[derive(Debug, Clone, Default)]
pub struct KeepPolicy {
    pub last: usize,
    pub hourly: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
    pub yearly: usize,
    /// Every record newer than this many seconds before the newest one.
    pub within_secs: Option<i64>,
}

impl KeepPolicy {
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within_secs.is_none()
    }
}

/// Which of `records` (any order) the policy keeps, as restic's rules do:
/// a record is kept if any rule keeps it; each period rule keeps the
/// newest record of each of its last N periods (UTC) that have records.
pub fn apply_policy(records: &[Record], p: &KeepPolicy) -> Vec<bool> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(records[i].time_ms));
    let mut keep = vec![false; records.len()];
    for &i in order.iter().take(p.last) {
        keep[i] = true;
    }
    if let (Some(w), Some(&newest)) = (p.within_secs, order.first()) {
        let from = records[newest].time_ms - w.saturating_mul(1000);
        for (i, r) in records.iter().enumerate() {
            if r.time_ms >= from {
                keep[i] = true;
            }
        }
    }
    let buckets: [(usize, Bucket); 5] = [
        (p.hourly, |s| s.div_euclid(3600)),
        (p.daily, |s| s.div_euclid(86400)),
        // Weeks from Monday (1970-01-01 was a Thursday).
        (p.weekly, |s| (s.div_euclid(86400) + 3).div_euclid(7)),
        (p.monthly, |s| {
            let (y, m) = year_month(s);
            y * 12 + m
        }),
        (p.yearly, |s| year_month(s).0),
    ];
    for (n, bucket) in buckets {
        if n == 0 {
            continue;
        }
        let mut last: Option<i64> = None;
        let mut count = 0;
        for &i in &order {
            let b = bucket(records[i].time());
            if last != Some(b) {
                if count == n {
                    break;
                }
                last = Some(b);
                count += 1;
                keep[i] = true;
            }
        }
    }
    keep
}

fn year_month(secs: i64) -> (i64, i64) {
    let s = fmt_ms(secs * 1000);
    let y = s[0..4].parse().unwrap_or(0);
    let m = s[5..7].parse().unwrap_or(0);
    (y, m)
}

/// What `forget` did (or would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ForgetOutcome {
    pub repository: String,
    pub kept: Vec<String>,
    pub removed: Vec<String>,
    /// Not kept by the rules, but younger than the retention: kept.
    pub retained: Vec<String>,
    /// Records that did not read, removed (`--drop-unreadable`): keys.
    pub dropped: Vec<String>,
}

/// Removes the records of `repo` the policy does not keep (never one
/// younger than the repository's retention).
pub fn forget(
    target: &Target,
    repo: &str,
    pool: &Store,
    policy: &KeepPolicy,
    dry_run: bool,
    drop_unreadable: bool,
) -> Result<ForgetOutcome> {
    if policy.is_empty() {
        return Err(RepoError::Invalid(
            "forget needs at least one --keep-* rule (it would remove every backup)".into(),
        ));
    }
    let entry = target.require_entry(repo)?;
    let (records, bad) = target.records(repo, pool)?;
    let retain_from = now_ms() - i64::from(entry.retain_days) * 86_400_000;
    let mut out = ForgetOutcome {
        repository: repo.into(),
        ..Default::default()
    };
    if let Some((_, why)) = bad.first() {
        if !drop_unreadable {
            return Err(RepoError::Invalid(format!(
                "{} record(s) of {repo:?} do not read ({why}); nothing was removed. If you opened the backup with the right passphrase, they are damaged or planted: `--drop-unreadable` removes them",
                bad.len()
            )));
        }
        for (key, _) in &bad {
            let ms = parse_record_key(repo, key).map(|(ms, _, _)| ms);
            if entry.retain_days > 0 && ms.is_none_or(|ms| ms >= retain_from) {
                out.retained.push(key.clone());
                continue;
            }
            if !dry_run {
                target.storage.delete(key)?;
            }
            out.dropped.push(key.clone());
        }
    }
    let keep = apply_policy(&records, policy);
    for (r, k) in records.iter().zip(keep) {
        if k {
            out.kept.push(r.id.clone());
        } else if r.time_ms >= retain_from && entry.retain_days > 0 {
            out.retained.push(r.id.clone());
        } else {
            if !dry_run {
                crate::failpoint::hit("backup:forget");
                target.storage.delete(&r.key)?;
            }
            out.removed.push(r.id.clone());
        }
    }
    Ok(out)
}

/// What `prune` did (or would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneOutcome {
    pub pool: String,
    pub packs: usize,
    pub removed_packs: Vec<String>,
    pub removed_bytes: u64,
    /// Unneeded packs not yet removed: marked now, removed by a prune
    /// after the grace period (or younger than the retention).
    pub pending_packs: usize,
    /// Bytes of unneeded objects left in packs (below the repack
    /// threshold, or too young to remove).
    pub unneeded_bytes_in_kept_packs: u64,
    /// Bytes of needed objects copied out of removed packs.
    pub repacked_bytes: u64,
}

/// `prune` rewrites a pack when more than this share of its bytes is
/// unneeded (as restic's default `--max-unused 5%`).
pub const REPACK_UNUSED_PERCENT: u64 = 5;

/// A backup that reuses objects of a pool pack older than this writes a
/// freshen marker for it, and `prune` never removes a pack younger than
/// this: together, a pack a running backup relies on is not removed.
pub const POOL_FRESHEN_AFTER: Duration = Duration::from_secs(3600);

#[derive(Serialize, Deserialize)]
struct PruneMark {
    version: u32,
    time_ms: i64,
    packs: Vec<ObjectId>,
}

/// Removes the packs of the pool that no record of any of `repos` (every
/// repository whose objects are in this pool, with their pools unlocked)
/// needs. Two steps, so that a backup running meanwhile never loses what
/// it relies on: a prune marks the unneeded packs; a later prune, at
/// least `grace` after the mark, removes those still unneeded then.
/// `grace` zero removes at once (only when no backup is running).
pub fn prune(
    target: &Target,
    pool: &Store,
    repos: &[String],
    grace: Duration,
    dry_run: bool,
) -> Result<PruneOutcome> {
    let pool_name = repos
        .first()
        .map(|r| target.require_entry(r).map(|e| e.pool))
        .transpose()?
        .unwrap_or_default();
    // Every repository of the target in this pool must be given: the
    // records of one left out would lose their objects.
    let mut max_retain = 0u32;
    for id in target.repositories()? {
        let e = target.require_entry(&id)?;
        if e.pool == pool_name {
            max_retain = max_retain.max(e.retain_days);
            if !repos.contains(&id) {
                return Err(RepoError::Invalid(format!(
                    "repository {id:?} shares its objects with {:?} in {}: prune them together; nothing was removed",
                    repos.first().cloned().unwrap_or_default(),
                    target.url()
                )));
            }
        }
    }
    target.check_no_links(&format!("prune/{pool_name}"))?;
    target.check_no_links(&format!("prune-log/{pool_name}"))?;
    let odb = pool.odb()?;
    let mut roots = Vec::new();
    for repo in repos {
        let (records, bad) = target.records(repo, pool)?;
        if let Some((key, why)) = bad.first() {
            return Err(RepoError::Invalid(format!(
                "record {key} does not read ({why}): what it needs is unknown, so nothing was removed"
            )));
        }
        for r in records {
            for id in r.tips() {
                roots.push(tip_root(odb, id, format!("record {}", r.id)));
            }
        }
    }
    let reach = crate::reach::walk(odb, &roots, &|id| odb.contains(id));
    if let Some(u) = reach.unreadable.first() {
        return Err(RepoError::Invalid(format!(
            "{} object(s) the records need do not read ({} {}: {}); nothing was removed (run `backup verify`)",
            reach.unreadable.len(),
            u.kind.name(),
            u.id,
            u.error
        )));
    }
    let mut needed_packs = std::collections::BTreeSet::new();
    let mut pack_bytes: BTreeMap<ObjectId, u64> = BTreeMap::new();
    let mut unneeded_bytes: BTreeMap<ObjectId, u64> = BTreeMap::new();
    odb.for_each_object(|id, pack, loc| {
        *pack_bytes.entry(*pack).or_default() += loc.entry_len(odb.sealed());
        if reach.objects.contains(id) {
            needed_packs.insert(*pack);
        } else {
            *unneeded_bytes.entry(*pack).or_default() += loc.entry_len(odb.sealed());
        }
    });
    let all_packs = odb.packs();
    let mut out = PruneOutcome {
        pool: pool_name.clone(),
        packs: all_packs.len(),
        ..Default::default()
    };
    let now = now_ms();
    let now_t = SystemTime::now();
    let retain_from = now_t - Duration::from_secs(u64::from(max_retain) * 86_400);
    // Candidates: packs wholly unneeded, or with more than
    // REPACK_UNUSED_PERCENT of their bytes unneeded (their needed objects
    // are copied to a new pack first), written before the freshen window
    // (so a backup that reuses their objects from now on freshens them).
    let mut candidates = Vec::new();
    for p in &all_packs {
        let total = pack_bytes.get(p).copied().unwrap_or(0);
        let unused = unneeded_bytes.get(p).copied().unwrap_or(0);
        if unused == 0 {
            continue;
        }
        let whole = !needed_packs.contains(p);
        if !whole && unused * 100 <= total * REPACK_UNUSED_PERCENT {
            out.unneeded_bytes_in_kept_packs += unused;
            continue;
        }
        let written = pool.storage().modified(&crate::odb::pack_key(p))?;
        let young = |window: Duration| written.is_some_and(|t| t + window > now_t);
        if (!grace.is_zero() && young(target.freshen_after))
            || (max_retain > 0 && written.is_some_and(|t| t > retain_from))
        {
            out.unneeded_bytes_in_kept_packs += unused;
            continue;
        }
        candidates.push(*p);
    }
    // Due: marked at least `grace` ago and not freshened since.
    let mark_prefix = format!("prune/{pool_name}/");
    let mut marked_at = BTreeMap::new();
    if !grace.is_zero() {
        marked_at = marked_packs(target, &pool_name)?;
        marked_at.retain(|_, at| now - *at >= grace.as_millis() as i64);
    }
    let (_, freshened) = crate::odb::list_freshen(pool.storage().as_ref(), true)?;
    let mut due = Vec::new();
    let mut pending = Vec::new();
    for p in candidates {
        let ok = grace.is_zero()
            || marked_at
                .get(&p)
                .is_some_and(|&at| freshened.get(&p).is_none_or(|f| !freshened_since(*f, at)));
        if ok {
            due.push(p);
        } else {
            pending.push(p);
        }
    }
    // Needed objects of the due packs go to a new pack first, verified on
    // the way; then the due packs are deleted.
    let mut keep: Vec<(ObjectId, ObjectId, crate::odb::Location)> = Vec::new();
    if !due.is_empty() {
        let due_set: std::collections::BTreeSet<ObjectId> = due.iter().copied().collect();
        odb.for_each_object(|id, pack, loc| {
            if due_set.contains(pack) && reach.objects.contains(id) {
                keep.push((*id, *pack, *loc));
            }
        });
    }
    out.repacked_bytes = keep.iter().map(|(_, _, l)| u64::from(l.stored_len)).sum();
    if !dry_run && !due.is_empty() && !keep.is_empty() {
        let mut session = odb.session_ignoring(&due).without_freshening();
        odb.read_stored_many(&mut keep, &mut |id, l, payload| {
            session.put_encoded(l.kind, *id, l.codec, l.raw_len as usize, payload)
        })?;
        crate::failpoint::hit("backup:prune-repacked");
        session.finish()?;
    }
    if !dry_run && !due.is_empty() {
        // Before the first deletion: backups running now check their
        // records against the pool (protect_from_prune).
        let key = format!("prune-log/{pool_name}/{now:015}-{}", random_hex(8)?);
        target.storage.compare_and_swap(&key, None, Some(b""))?;
    }
    for p in &due {
        if !dry_run {
            // A backup that started relying on this pack since the mark
            // freshened it (create_protect): looked up again right before
            // the deletion, it stays.
            if !grace.is_zero() {
                let at = marked_at.get(p).copied().unwrap_or(now);
                if pack_freshened_since(pool.storage().as_ref(), p, at)? {
                    pending.push(*p);
                    continue;
                }
            }
            crate::failpoint::hit("backup:prune");
            // The index first: a pack without an index is invisible.
            pool.storage().delete(&crate::odb::idx_key(p))?;
            pool.storage().delete(&crate::odb::pack_key(p))?;
        }
        out.removed_bytes += pack_bytes.get(p).copied().unwrap_or(0);
        out.removed_packs.push(p.to_string());
    }
    // A pack whose index is gone (a prune killed between the two
    // deletions) or never came (a backup killed before it wrote it) is
    // invisible; past the grace period no running backup can still be
    // writing it.
    let keys = pool.storage().list("packs/")?;
    let idx: std::collections::BTreeSet<&str> =
        keys.iter().filter_map(|k| k.strip_suffix(".idx")).collect();
    let old_enough = SystemTime::now() - grace;
    for k in &keys {
        let Some(stem) = k.strip_suffix(".pack") else {
            continue;
        };
        if idx.contains(stem) {
            continue;
        }
        let Some(t) = pool.storage().modified(k)? else {
            continue;
        };
        if t > old_enough {
            continue;
        }
        out.removed_bytes += pool.storage().size(k)?.unwrap_or(0);
        if !dry_run {
            pool.storage().delete(k)?;
        }
        out.removed_packs
            .push(stem.trim_start_matches("packs/").to_string());
    }
    out.pending_packs = pending.len();
    // Marks whose packs are all gone are done with (a prune's own keys,
    // not backup data): removed, so that backups read only live marks.
    if !dry_run {
        let left: std::collections::BTreeSet<String> = pool
            .storage()
            .list("packs/")?
            .into_iter()
            .filter(|k| k.ends_with(".idx"))
            .collect();
        for key in target.storage.list(&mark_prefix)? {
            let Ok(b) = get_bounded(target.storage.as_ref(), &key) else {
                continue;
            };
            let Ok(m) = serde_json::from_slice::<PruneMark>(&b) else {
                continue;
            };
            if !m
                .packs
                .iter()
                .any(|p| left.contains(&crate::odb::idx_key(p)))
            {
                target.storage.delete(&key)?;
            }
        }
    }
    if !dry_run && !pending.is_empty() && !grace.is_zero() {
        let m = serde_json::to_vec(&PruneMark {
            version: BACKUP_VERSION,
            time_ms: now,
            packs: pending,
        })
        .map_err(|e| RepoError::Invalid(e.to_string()))?;
        let key = format!("{mark_prefix}{now:015}-{}", random_hex(8)?);
        target.storage.compare_and_swap(&key, None, Some(&m))?;
    }
    Ok(out)
}

/// The repositories under `root` to back up with `--all`: every
/// directory that is a repository (bare, or a working tree), one level
/// and two levels down, with its id (the path below `root`, `/` as `_`).
pub fn repositories_under(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|e| RepoError::io("read directory", &dir, e))?;
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let p = e.path();
            let is_repo = p.join("config.toml").is_file() && p.join("HEAD").exists()
                || p.join(crate::repo::DOT_DIR).join("config.toml").is_file();
            if is_repo {
                let rel = p.strip_prefix(root).unwrap_or(&p);
                let id = rel
                    .to_string_lossy()
                    .replace(['/', '\\'], "_")
                    .trim_end_matches(".mediagit")
                    .to_string();
                if validate_repo_id(&id).is_ok() {
                    out.push((id, p));
                }
            } else if depth < 1 {
                stack.push((p, depth + 1));
            }
        }
    }
    out.sort();
    // Two paths that make one id (`a/b` and `a_b`) would mix two
    // repositories' backups: both are refused.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (id, _) in &out {
        *seen.entry(id.clone()).or_default() += 1;
    }
    if let Some((id, _)) = seen.iter().find(|(_, n)| **n > 1) {
        return Err(RepoError::Invalid(format!(
            "two repositories under {} would both be backed up as {id:?} (a path with '/' and one with '_'); rename one",
            root.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spools_of_dead_processes_are_swept_once_idle_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let age = |p: &Path| {
            std::fs::File::open(p).unwrap().set_modified(old).unwrap();
        };
        // pid 999999999 is above any Linux pid_max, so never alive.
        let dead_idle = d.path().join("backup-999999999-aaaa");
        let dead_busy = d.path().join("backup-999999999-bbbb");
        let mine = d.path().join(format!("backup-{}-cccc", std::process::id()));
        let other = d.path().join("backup-notapid-dddd");
        let outside = d.path().join("outside");
        for p in [&dead_idle, &dead_busy, &mine, &other, &outside] {
            std::fs::create_dir(p).unwrap();
            std::fs::write(p.join("pack-x"), b"spooled").unwrap();
        }
        for p in [&dead_idle, &mine, &other, &outside] {
            age(&p.join("pack-x"));
            age(p);
        }
        age(&dead_busy); // the folder is old, its pack still being written
                         // Old at the top, a file written deep below it just now.
        let dead_deep = d.path().join("backup-999999999-ffff");
        std::fs::create_dir_all(dead_deep.join("sub/deep")).unwrap();
        std::fs::write(dead_deep.join("sub/deep/fresh"), b"x").unwrap();
        for p in [
            dead_deep.join("sub/deep"),
            dead_deep.join("sub"),
            dead_deep.clone(),
        ] {
            age(&p);
        }
        let link = d.path().join("backup-999999998-eeee");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        sweep_dead_spools(d.path());
        let present = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        if Path::new("/proc/self").is_dir() {
            assert!(!present(&dead_idle));
        }
        assert!(present(&dead_busy) && present(&mine) && present(&other));
        assert!(present(&dead_deep.join("sub/deep/fresh")));
        assert!(present(&link) && present(&outside.join("pack-x")));
    }

    fn rec(ms: i64) -> Record {
        Record {
            version: 1,
            kind: RecordKind::Snapshot,
            repository: "film".into(),
            time_ms: ms,
            head: Some("main".into()),
            detached: None,
            refs: BTreeMap::from([("refs/heads/main".to_string(), ObjectId::hash(b"x"))]),
            host: String::new(),
            copied_objects: 0,
            copied_bytes: 0,
            id: String::new(),
            key: String::new(),
        }
    }

    fn key_of(r: &Record) -> String {
        format!(
            "repos/{}/records/{:015}-{}-0123456789abcdef",
            r.repository,
            r.time_ms,
            r.kind.letter()
        )
    }

    #[test]
    fn a_record_reads_back_and_every_disagreement_is_refused() {
        let r = rec(1_700_000_000_123);
        let key = key_of(&r);
        let bytes = encode_record(None, &key, &r).unwrap();
        let back = decode_record(None, "film", &key, &bytes).unwrap();
        assert_eq!(back.refs, r.refs);
        assert_eq!(back.id, "0123456789abcdef");
        // Moved to another time, another repository, another kind.
        let moved = key.replace("1700000000123", "1700000000124");
        let e = decode_record(None, "film", &moved, &bytes).unwrap_err();
        assert!(e.to_string().contains("disagree"), "{e}");
        let other = key.replace("repos/film/", "repos/ads/");
        assert!(decode_record(None, "ads", &other, &bytes).is_err());
        let journal = key.replace("-s-", "-j-");
        assert!(decode_record(None, "film", &journal, &bytes).is_err());
        // Another version, a bad ref name, a bad head, junk.
        let v2 = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\"version\":1", "\"version\":2");
        let e = decode_record(None, "film", &key, v2.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("newer build"), "{e}");
        let mut bad = r.clone();
        bad.refs
            .insert("refs/heads/../x".into(), ObjectId::hash(b"y"));
        let b = encode_record(None, &key, &bad).unwrap();
        assert!(decode_record(None, "film", &key, &b).is_err());
        let mut bad = r.clone();
        bad.head = Some("a..b".into());
        let b = encode_record(None, &key, &bad).unwrap();
        assert!(decode_record(None, "film", &key, &b).is_err());
        assert!(decode_record(None, "film", &key, b"{").is_err());
        assert!(decode_record(None, "film", "repos/film/records/x", &bytes).is_err());
        // A sealed record without the key, and a plain one where a key is
        // expected.
        let mut sealed = SEALED_RECORD_MAGIC.to_vec();
        sealed.extend_from_slice(&[0u8; 64]);
        assert!(decode_record(None, "film", &key, &sealed).is_err());
    }

    #[test]
    fn sealed_records_are_bound_to_their_key() {
        let master = mediagit_crypto::MasterKey::generate().unwrap();
        let keys = mediagit_crypto::RepoKeys::derive(&master);
        let r = rec(1_700_000_000_000);
        let key = key_of(&r);
        let bytes = encode_record(Some(&keys), &key, &r).unwrap();
        assert!(bytes.starts_with(SEALED_RECORD_MAGIC));
        assert!(!bytes.windows(4).any(|w| w == b"main"));
        assert_eq!(bytes.len() % 256, 8 + 12 + 16);
        let back = decode_record(Some(&keys), "film", &key, &bytes).unwrap();
        assert_eq!(back.head.as_deref(), Some("main"));
        let moved = key.replace("0123456789abcdef", "0123456789abcdee");
        let e = decode_record(Some(&keys), "film", &moved, &bytes).unwrap_err();
        assert!(e.to_string().contains("tampered"), "{e}");
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[n / 2] ^= 1;
        assert!(decode_record(Some(&keys), "film", &key, &flipped).is_err());
        let plain = encode_record(None, &key, &r).unwrap();
        let e = decode_record(Some(&keys), "film", &key, &plain).unwrap_err();
        assert!(e.to_string().contains("planted"), "{e}");
    }

    #[test]
    fn repository_ids_are_one_safe_key_component() {
        for ok in ["film", "a.b_c-1", "X"] {
            validate_repo_id(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "é",
            &"x".repeat(101),
        ] {
            assert!(validate_repo_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(fmt_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_ms(1_796_407_921_216), "2026-12-04 18:12:01 UTC");
        assert_eq!(fmt_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(fmt_ms(-1000), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn keep_rules_keep_the_newest_of_each_period() {
        const H: i64 = 3_600_000;
        const D: i64 = 24 * H;
        // 2026-12-01 00:00 UTC, a Tuesday; records every 6 hours for 20 days.
        let start = 1_796_083_200_000;
        let recs: Vec<Record> = (0..80).map(|i| rec(start + i * 6 * H)).collect();
        let kept = |p: KeepPolicy| -> Vec<i64> {
            let keep = apply_policy(&recs, &p);
            recs.iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(r, _)| (r.time_ms - start) / H)
                .collect()
        };
        assert_eq!(
            kept(KeepPolicy {
                last: 3,
                ..Default::default()
            }),
            [462, 468, 474]
        );
        // The newest of each of the last 3 days.
        assert_eq!(
            kept(KeepPolicy {
                daily: 3,
                ..Default::default()
            }),
            [426, 450, 474]
        );
        // Weeks start on Monday: 2026-12-07 and 2026-12-14; the first
        // (partial) week ends on Sunday the 6th at 18:00.
        assert_eq!(
            kept(KeepPolicy {
                weekly: 5,
                ..Default::default()
            }),
            [138, 306, 474]
        );
        assert_eq!(
            kept(KeepPolicy {
                monthly: 2,
                yearly: 1,
                ..Default::default()
            }),
            [474]
        );
        assert_eq!(
            kept(KeepPolicy {
                hourly: 2,
                ..Default::default()
            }),
            [468, 474]
        );
        // Within 12 hours of the newest, plus the rules' union.
        assert_eq!(
            kept(KeepPolicy {
                within_secs: Some(12 * 3600),
                last: 1,
                ..Default::default()
            }),
            [462, 468, 474]
        );
        assert!(KeepPolicy::default().is_empty());
        let _ = D;
    }

    #[test]
    fn the_moment_picks_the_newest_record_at_or_before_it() {
        let recs = vec![rec(1000), rec(5000), rec(9000)];
        assert_eq!(record_at(&recs, 5000, "film").unwrap().time_ms, 5000);
        assert_eq!(record_at(&recs, 8999, "film").unwrap().time_ms, 5000);
        let e = record_at(&recs, 999, "film").unwrap_err();
        assert!(e.to_string().contains("the first one is at"), "{e}");
        let e = record_at(&[], 999, "film").unwrap_err();
        assert!(e.to_string().contains("no backup yet"), "{e}");
    }
}
