//! Opening, creating and locking a repository.
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mediagit_format::config::{StorageConfig, StorageKind};
use mediagit_format::RepoConfig;
use mediagit_storage::{
    CacheBackend, Cloud, CloudEnv, LocalBackend, ObjectStoreBackend, ObjectStoreSpec, Storage,
};

use crate::error::{RepoError, Result};
use crate::store::Store;
use crate::workspace::Workspace;

/// Name of the repository directory inside a working tree.
pub const DOT_DIR: &str = ".mediagit";

/// An open repository: a [`Store`] and, unless it was opened from the
/// store alone, one [`Workspace`] (`.mediagit/`: HEAD, the index, reflogs,
/// the lock, BASE). Dereferences to its store: object and ref operations
/// are the store's, whichever way they are reached.
///
/// Every command is a method here. Those that only read or change the
/// store (log, show, branches, tags, fsck, verify, stats, gc) work without
/// a workspace ([`Repository::on_store`], as a server holds one); those
/// that need a working tree fail with [`RepoError::NoWorkspace`] there.
pub struct Repository {
    /// Its config is the working tree's file with the store's `[format]`,
    /// `[chunking]` and `[compression]` (which win).
    store: Store,
    ws: Option<Workspace>,
}

impl std::ops::Deref for Repository {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl std::ops::DerefMut for Repository {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}

#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub bare: bool,
    /// Name of the first branch; `main` if `None`.
    pub initial_branch: Option<String>,
    /// Where objects and refs live; `None`: inside `.mediagit/`.
    pub storage: Option<StorageConfig>,
    /// Format, chunking and compression settings to use instead of the
    /// defaults (a clone keeps its source's, so content deduplicates).
    pub template: Option<RepoConfig>,
    /// Credentials and endpoints from the environment (collected by the caller).
    pub env: CloudEnv,
    /// Make an encrypted repository (FORMAT.md §13).
    pub encryption: Option<InitEncryption>,
}

/// How a new repository is encrypted.
#[derive(Clone)]
pub enum InitEncryption {
    /// A new random master key, wrapped by this passphrase in the first
    /// key file.
    New {
        passphrase: crate::keys::Passphrase,
        params: mediagit_crypto::KdfParams,
        label: String,
        /// Unix seconds.
        created: i64,
    },
    /// The master key of an unlocked store, whose key files are copied (a
    /// clone: the same key, so the packs copied stay readable and content
    /// deduplicates against them).
    From(Box<Store>),
}

impl std::fmt::Debug for InitEncryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitEncryption::New { params, label, .. } => {
                write!(
                    f,
                    "New {{ passphrase: <secret>, params: {params}, label: {label:?} }}"
                )
            }
            InitEncryption::From(_) => f.write_str("From(<unlocked store>)"),
        }
    }
}

/// What an encrypted `init` writes and keeps: the keys, the unlocked
/// state, the key files.
struct Encryption {
    keys: Arc<mediagit_crypto::RepoKeys>,
    unlocked: Arc<crate::keys::Unlocked>,
    key_files: Vec<(String, Vec<u8>)>,
}

fn prepare_encryption(e: &InitEncryption) -> Result<Encryption> {
    match e {
        InitEncryption::New {
            passphrase,
            params,
            label,
            created,
        } => {
            let master = mediagit_crypto::MasterKey::generate()
                .map_err(|e| RepoError::Invalid(e.to_string()))?;
            let (id, bytes) = crate::keys::new_key_file(
                &master,
                &crate::keys::NewKey {
                    passphrase: passphrase.as_bytes(),
                    params: *params,
                    label,
                    created: *created,
                },
            )?;
            Ok(Encryption {
                keys: Arc::new(mediagit_crypto::RepoKeys::derive(&master)),
                unlocked: Arc::new(crate::keys::Unlocked {
                    master,
                    key_id: id.clone(),
                }),
                key_files: vec![(id, bytes)],
            })
        }
        InitEncryption::From(src) => {
            let (Some(keys), Some(unlocked)) = (src.keys.clone(), src.unlocked.clone()) else {
                return Err(RepoError::NeedsPassphrase {
                    store: src.storage().describe(),
                });
            };
            let storage = src.storage();
            let mut key_files = Vec::new();
            for key in storage
                .list(crate::keys::KEYS_PREFIX)?
                .into_iter()
                .take(crate::keys::MAX_KEY_FILES)
            {
                let bytes = storage.get(&key)?;
                key_files.push((key[crate::keys::KEYS_PREFIX.len()..].to_string(), bytes));
            }
            Ok(Encryption {
                keys,
                unlocked,
                key_files,
            })
        }
    }
}

/// The store's own copy of the repository settings: `config.toml` at the root
/// of the store, without the local `[core]`, `[author]` and `[storage]`.
fn store_config(cfg: &RepoConfig) -> RepoConfig {
    let mut c = cfg.clone();
    c.core.bare = true;
    c.author = Default::default();
    c.storage = None;
    c.remotes.clear();
    c.backups.clear();
    c.branches.clear();
    c.locks = Default::default();
    c.merge = Default::default();
    c.media = Default::default();
    c
}

impl Store {
    /// Makes `storage` (empty: a server repository that does not exist
    /// yet) a copy of this repository that holds nothing: the same format,
    /// chunking and compression settings, and, encrypted, the same key
    /// files (so this repository's packs can be pushed there as they are).
    /// Written HEAD first (on a server, creating it claims the name: of
    /// two clients creating one repository, the second stops before it
    /// wrote anything), then the key files, config.toml last (its presence
    /// makes the repository).
    pub fn init_remote_store(&self, storage: &dyn Storage) -> Result<()> {
        if storage.size("config.toml")?.is_some() {
            return Err(RepoError::StoreHasRepository {
                store: storage.describe(),
            });
        }
        let branch = self
            .head_branch()
            .ok()
            .flatten()
            .unwrap_or_else(|| "main".into());
        let head = format!("ref: refs/heads/{branch}\n");
        if let Some(keys) = &self.keys {
            create_key(
                storage,
                "HEAD",
                &crate::store::seal_store_head(keys, &head)?,
            )?;
            for key in self.storage().list("keys/")? {
                let bytes = self.storage().get(&key)?;
                storage.put(&key, &bytes)?;
            }
        } else {
            create_key(storage, "HEAD", head.as_bytes())?;
        }
        create_key(
            storage,
            "config.toml",
            store_config(self.config()).to_toml().as_bytes(),
        )
    }
}

/// Writes `HEAD` or `config.toml` of a repository being created, expecting
/// it absent (a compare-and-swap: on a server, of two clients creating one
/// name only one gets it, and the other stops before it wrote anything).
fn create_key(storage: &dyn Storage, key: &str, bytes: &[u8]) -> Result<()> {
    match storage.compare_and_swap(key, None, Some(bytes))? {
        mediagit_storage::CasOutcome::Swapped => Ok(()),
        mediagit_storage::CasOutcome::Conflict { .. } if key == "config.toml" => {
            Err(RepoError::StoreHasRepository {
                store: storage.describe(),
            })
        }
        mediagit_storage::CasOutcome::Conflict { .. } => Err(RepoError::Invalid(format!(
            "{}: another client is creating a repository there right now, or one exists; nothing was written",
            storage.describe()
        ))),
    }
}

/// Opens the store a `[storage]` section names (the local `.mediagit/` when
/// there is none).
pub fn open_storage(
    dir: &Path,
    storage: Option<&StorageConfig>,
    env: &CloudEnv,
) -> Result<Arc<dyn Storage>> {
    open_storage_with(dir, storage, env, &Default::default())
}

/// [`open_storage`] with the object store client set up by `options`
/// (a backup target on an S3 Object Lock bucket sends Content-MD5).
pub fn open_storage_with(
    dir: &Path,
    storage: Option<&StorageConfig>,
    env: &CloudEnv,
    options: &mediagit_storage::ConnectOptions,
) -> Result<Arc<dyn Storage>> {
    let Some(sc) = storage else {
        return Ok(Arc::new(LocalBackend::new(dir)));
    };
    let cloud = match sc.backend {
        StorageKind::Filesystem => {
            let path = Path::new(sc.path.as_deref().unwrap_or_default());
            if !path.is_dir() {
                return Err(RepoError::Invalid(format!(
                    "[storage] path {} is not a directory (is the volume mounted?)",
                    path.display()
                )));
            }
            return Ok(Arc::new(LocalBackend::new(path)));
        }
        StorageKind::S3 => Cloud::S3,
        StorageKind::Azure => Cloud::Azure,
        StorageKind::Gcs => Cloud::Gcs,
        StorageKind::B2 => Cloud::B2,
    };
    let spec = ObjectStoreSpec {
        cloud,
        bucket: sc.bucket.clone().unwrap_or_default(),
        prefix: sc.prefix.clone(),
        endpoint: sc.endpoint.clone(),
        region: sc.region.clone(),
        account: sc.account.clone(),
        bucket_id: sc.bucket_id.clone(),
    };
    let b = ObjectStoreBackend::connect_with(&spec, env, options)?
        .with_conditional_writes(sc.conditional_writes);
    Ok(Arc::new(b))
}

/// Deletes everything in a store that a failed `init` or `clone` filled
/// (it was empty before), the marker first so it stops being a repository.
/// Best effort: this runs on an error path.
pub(crate) fn wipe_store(storage: &dyn Storage) {
    let _ = storage.delete("config.toml");
    for key in storage.list("").unwrap_or_default() {
        let _ = storage.delete(&key);
    }
}

/// Reads and checks the repository settings a store holds.
pub fn read_store_config(storage: &dyn Storage) -> Result<RepoConfig> {
    // Bounded before it is downloaded: the store may be hostile.
    let max = mediagit_format::config::MAX_CONFIG_BYTES as u64;
    if let Some(n) = storage.size("config.toml")?.filter(|n| *n > max) {
        return Err(RepoError::format(
            format!("{}: config.toml", storage.describe()),
            mediagit_format::FormatError::Config(format!(
                "{n} bytes; a config.toml is at most {max}"
            )),
        ));
    }
    match storage.get("config.toml") {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let mut c = RepoConfig::from_toml(&text).map_err(|e| {
                RepoError::format(format!("{}: config.toml", storage.describe()), e)
            })?;
            // A working tree's own settings are never taken from a store
            // (whoever can write it must not choose where a working tree
            // pushes, or which of its files are read-only): FORMAT.md §3.
            c.remotes.clear();
            c.backups.clear();
            c.branches.clear();
            c.locks = Default::default();
            c.merge = Default::default();
            c.media = Default::default();
            c.author = Default::default();
            Ok(c)
        }
        Err(e) if e.is_not_found() => Err(RepoError::NotAStore {
            store: storage.describe(),
            found: storage.first_key("").ok().flatten().unwrap_or_default(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The branch a store's `HEAD` names (what a clone checks out).
pub fn read_store_head(storage: &dyn Storage) -> Result<Option<String>> {
    match storage.get("HEAD") {
        Ok(b) => Ok(String::from_utf8_lossy(&b)
            .trim()
            .strip_prefix("ref: refs/heads/")
            .map(str::to_string)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether the settings file at `path` is a bare repository's whose
/// objects and refs live in a store (so it has no `refs/` of its own).
/// Read bounded; a file that does not parse is no repository here.
fn names_a_store(path: &Path) -> bool {
    let Ok(Some(text)) = read_private_text(path, MAX_CONFIG_BYTES) else {
        return false;
    };
    RepoConfig::from_toml(&text).is_ok_and(|c| c.core.bare && c.storage.is_some())
}

/// The HEAD, settings and keys of a new repository (`init`).
fn initial_settings(opts: &InitOptions) -> Result<(String, RepoConfig, Option<Encryption>)> {
    let branch = opts.initial_branch.clone().unwrap_or_else(|| "main".into());
    crate::refs::validate_new_ref_name("branch", &branch)?;
    let mut config = match &opts.template {
        Some(t) => {
            let mut c = t.clone();
            c.core.bare = opts.bare;
            c.storage = None;
            // Identity belongs to the user, never to the repository a
            // clone came from (nor to whoever can write its store).
            c.author = Default::default();
            // Remotes and upstreams are this working tree's own.
            c.remotes.clear();
            c.backups.clear();
            c.branches.clear();
            c.locks = Default::default();
            c.merge = Default::default();
            c.media = Default::default();
            c
        }
        None => RepoConfig::new(opts.bare),
    };
    let enc = match &opts.encryption {
        Some(e) => {
            let enc = prepare_encryption(e)?;
            let f = &mut config.format;
            if f.version < 2 {
                return Err(RepoError::Invalid(
                    "encryption needs repository format version 2; run `mediagit upgrade` on the source first".into(),
                ));
            }
            if !f.is_encrypted() {
                f.required_features
                    .push(mediagit_format::config::ENCRYPTION_FEATURE.into());
            }
            f.chunk_id = mediagit_format::config::ChunkIdFunction::HmacSha256;
            Some(enc)
        }
        None if config.format.is_encrypted() => {
            return Err(RepoError::Invalid(
                "a repository made from an encrypted one's settings needs its keys".into(),
            ))
        }
        None => None,
    };
    let head = format!("ref: refs/heads/{branch}\n");
    Ok((head, config, enc))
}

/// Creates an empty repository in `storage` with nothing but its store
/// keys (a server repository: `init --bare URL`): HEAD (which claims the
/// name on a server), key files, then config.toml (its presence makes the
/// repository). Always bare;
/// `opts.storage` is not used. What was written is taken back when a
/// write fails.
pub fn init_store_only(storage: &dyn Storage, opts: &InitOptions) -> Result<()> {
    let (head, mut config, enc) = initial_settings(opts)?;
    config.core.bare = true;
    if storage.size("config.toml")?.is_some() {
        return Err(RepoError::StoreHasRepository {
            store: storage.describe(),
        });
    }
    let mut written = Vec::new();
    let r = (|| {
        let mut put = |key: String, bytes: &[u8]| -> Result<()> {
            if key == "HEAD" || key == "config.toml" {
                create_key(storage, &key, bytes)?;
            } else {
                storage.put(&key, bytes)?;
            }
            written.push(key);
            Ok(())
        };
        // HEAD first: on a server, creating it claims the name (the
        // second of two clients creating one stops here, having written
        // nothing); then the key files; config.toml last.
        let sealed_head = match &enc {
            Some(e) => Some(crate::store::seal_store_head(&e.keys, &head)?),
            None => None,
        };
        put(
            "HEAD".into(),
            sealed_head.as_deref().unwrap_or(head.as_bytes()),
        )?;
        if let Some(e) = &enc {
            for (id, bytes) in &e.key_files {
                put(crate::keys::key_key(id), bytes)?;
            }
        }
        put(
            "config.toml".into(),
            store_config(&config).to_toml().as_bytes(),
        )
    })();
    if let Err(e) = r {
        // (Not a HEAD that a repository made meanwhile by someone else
        // now holds: its config.toml says so.)
        let taken = matches!(storage.size("config.toml"), Ok(Some(_)));
        let left: Vec<&String> = written
            .iter()
            .rev()
            .filter(|k| !(taken && *k == "HEAD"))
            .filter(|k| storage.delete(k).is_err())
            .collect();
        if !left.is_empty() {
            // (A writer may create a repository but not delete from one.)
            return Err(RepoError::Invalid(format!(
                "{e}; left behind in {}: {} (an admin removes them; they make no repository)",
                storage.describe(),
                left.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        return Err(e);
    }
    Ok(())
}

impl Repository {
    /// Creates a repository at `path` (`path/.mediagit`, or `path` itself if bare).
    /// With `opts.storage`, objects and refs go to that store, which must be
    /// empty; it is checked before anything is written.
    pub fn init(path: &Path, opts: &InitOptions) -> Result<Repository> {
        let (head, mut config, enc) = initial_settings(opts)?;
        // The store is checked first: a refused store leaves nothing behind.
        let mut created_fs_dir = None;
        let store = match &opts.storage {
            None => None,
            Some(sc) => {
                let mut sc = sc.clone();
                if sc.backend == StorageKind::Filesystem {
                    let p = PathBuf::from(sc.path.clone().unwrap_or_default());
                    if !p.exists() {
                        created_fs_dir = Some(p.clone());
                    }
                    fs::create_dir_all(&p).map_err(|e| RepoError::io("create directory", &p, e))?;
                    let p = p
                        .canonicalize()
                        .map_err(|e| RepoError::io("resolve", &p, e))?;
                    sc.path = Some(p.display().to_string());
                }
                let checked = Repository::check_empty_store(path, &mut sc, &opts.env);
                match checked {
                    Ok(storage) => Some((sc, storage)),
                    Err(e) => {
                        if let Some(d) = created_fs_dir {
                            let _ = fs::remove_dir_all(d);
                        }
                        return Err(e);
                    }
                }
            }
        };
        let existed = path.exists();
        let r =
            Repository::init_files(path, opts, &head, &mut config, store.as_ref(), enc.as_ref());
        if r.is_err() {
            // Take back what this init wrote, here and in the store (which
            // was empty: check_empty_store made sure).
            if let Some((_, storage)) = &store {
                wipe_store(storage.as_ref());
            }
            if let Some(d) = created_fs_dir {
                let _ = fs::remove_dir_all(d);
            }
            if !existed {
                let _ = fs::remove_dir_all(path);
            } else if !opts.bare {
                if let Ok(p) = path.canonicalize() {
                    if !p.join(DOT_DIR).join("config.toml").exists() {
                        let _ = fs::remove_dir_all(p.join(DOT_DIR));
                    }
                }
            }
        }
        r
    }

    /// Connects to the store `sc` names and checks that it holds nothing (a
    /// leftover probe key aside); probes its conditional writes.
    fn check_empty_store(
        path: &Path,
        sc: &mut StorageConfig,
        env: &CloudEnv,
    ) -> Result<Arc<dyn Storage>> {
        let storage = open_storage(path, Some(sc), env)?;
        match storage.get("config.toml") {
            Ok(_) => {
                return Err(RepoError::StoreHasRepository {
                    store: storage.describe(),
                })
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let mut found = storage.first_key("")?;
        if let Some(k) = found.as_deref().filter(|k| k.starts_with("locks/probe-")) {
            // Left by a probe that could not clean up: nothing of value.
            storage.delete(k)?;
            found = storage.first_key("")?;
        }
        if let Some(found) = found {
            return Err(RepoError::StoreNotEmpty {
                store: storage.describe(),
                found,
            });
        }
        if let Some(p) = storage.conditional_writes_probe() {
            sc.conditional_writes = p?;
        }
        Ok(storage)
    }

    /// The files of a new repository: the store's (if any), then the local ones.
    fn init_files(
        path: &Path,
        opts: &InitOptions,
        head: &str,
        config: &mut RepoConfig,
        store: Option<&(StorageConfig, Arc<dyn Storage>)>,
        enc: Option<&Encryption>,
    ) -> Result<Repository> {
        fs::create_dir_all(path).map_err(|e| RepoError::io("create directory", path, e))?;
        let path = path
            .canonicalize()
            .map_err(|e| RepoError::io("resolve", path, e))?;
        let dir = if opts.bare {
            path.clone()
        } else {
            path.join(DOT_DIR)
        };
        if dir.join("config.toml").exists() {
            return Err(RepoError::AlreadyExists { path: dir });
        }
        let subdirs: &[&str] = match store {
            Some(_) => &["logs", "tmp"],
            None => &["refs/heads", "refs/tags", "packs", "logs", "tmp"],
        };
        for sub in subdirs {
            fs::create_dir_all(dir.join(sub))
                .map_err(|e| RepoError::io("create directory", dir.join(sub), e))?;
        }
        // The store's HEAD, sealed in an encrypted repository: in a store
        // (or a bare repository, which is one) it would show the branch
        // name. A working tree's own HEAD is local state, beside files in
        // the clear.
        let sealed_head = match enc {
            Some(e) => Some(crate::store::seal_store_head(&e.keys, head)?),
            None => None,
        };
        let store_head = sealed_head.as_deref().unwrap_or(head.as_bytes());
        // A local repository's HEAD (bare or not) is also its working
        // state, read without keys: plain (FORMAT.md §13.6).
        write_atomic(&dir.join("HEAD"), head.as_bytes())?;
        let key_files = enc.map(|e| &e.key_files[..]).unwrap_or_default();
        if let Some((sc, storage)) = store {
            // Key files first; the store's config.toml is written last
            // there: its presence is what makes a repository in the store.
            for (id, bytes) in key_files {
                storage.put(&crate::keys::key_key(id), bytes)?;
            }
            storage.put("HEAD", store_head)?;
            storage.put("config.toml", store_config(config).to_toml().as_bytes())?;
            config.storage = Some(sc.clone());
        } else if !key_files.is_empty() {
            let kdir = dir.join("keys");
            fs::create_dir_all(&kdir).map_err(|e| RepoError::io("create directory", &kdir, e))?;
            for (id, bytes) in key_files {
                write_atomic(&kdir.join(id), bytes)?;
            }
            // A local store's HEAD stays plain, so the sealed one goes to
            // `check`: what a key is checked against before the first
            // commit (a key file of another repository must not fit).
            if let Some(sealed) = &sealed_head {
                write_atomic(&dir.join(crate::store::KEY_CHECK), sealed)?;
            }
        }
        // The config is written last: its presence is what makes a repository.
        write_atomic(&dir.join("config.toml"), config.to_toml().as_bytes())?;
        let mut repo =
            Repository::open_dir(&dir, if opts.bare { None } else { Some(path) }, &opts.env)?;
        if let Some(e) = enc {
            repo.store = repo.store.with_keys(e.keys.clone());
            repo.store.unlocked = Some(e.unlocked.clone());
            // Which key file to try first (see `unlock`): written here so
            // that later commands do not write it.
            write_atomic(
                &dir.join("last-key"),
                format!("{}\n", e.unlocked.key_id).as_bytes(),
            )?;
        }
        repo.workspace()?.write_base(None)?;
        Ok(repo)
    }

    /// This repository with the keys of an encrypted store (see
    /// [`Store::with_keys`]).
    pub fn with_keys(mut self, keys: std::sync::Arc<mediagit_crypto::RepoKeys>) -> Repository {
        self.store = self.store.with_keys(keys);
        self
    }

    /// Opens an encrypted repository with `passphrase` (see
    /// [`Store::unlock`]); a repository that is not encrypted is returned
    /// as it is.
    pub fn unlock(self, passphrase: &[u8]) -> Result<Repository> {
        self.unlock_with(&crate::keys::Credential::Passphrase(
            crate::keys::Passphrase::new(passphrase.to_vec()),
        ))
    }

    /// Opens an encrypted repository with a passphrase or a kept master key
    /// (see [`Store::unlock_with`]).
    pub fn unlock_with(mut self, c: &crate::keys::Credential) -> Result<Repository> {
        // The key file this working tree opened last is tried first
        // (`.mediagit/last-key`, an id, nothing secret).
        let hint_file = self.ws.as_ref().map(|w| w.dir().join("last-key"));
        let hint = hint_file
            .as_ref()
            .and_then(|f| read_private_text(f, 4 << 10).ok().flatten())
            .map(|t| t.trim().to_string());
        self.store = self.store.unlock_with(c, hint.as_deref())?;
        if let (Some(f), Some(id)) = (hint_file, self.store.unlocked_key_id()) {
            if hint.as_deref() != Some(id) {
                let _ = write_atomic(&f, format!("{id}\n").as_bytes());
            }
        }
        Ok(self)
    }

    /// Finds the repository containing `start` (or a parent of it).
    pub fn discover(start: &Path) -> Result<Repository> {
        Repository::discover_with_env(start, &CloudEnv::new())
    }

    /// [`Repository::discover`], with the credentials and endpoints of the
    /// environment for repositories whose objects live in an object store.
    /// Repositories owned by another user are refused (see
    /// [`Repository::discover_trusting`]).
    pub fn discover_with_env(start: &Path, env: &CloudEnv) -> Result<Repository> {
        Repository::discover_trusting(start, env, &SafeDirectories::default())
    }

    /// [`Repository::discover_with_env`] that also opens repositories owned
    /// by another user when `safe` lists them (the user's own setting, read
    /// by the caller). Without this check a `.mediagit` planted in a parent
    /// directory (`/tmp/.mediagit`, a shared drive) by someone else would
    /// decide where this user's cloud credentials are sent.
    pub fn discover_trusting(
        start: &Path,
        env: &CloudEnv,
        safe: &SafeDirectories,
    ) -> Result<Repository> {
        let found = Repository::find(start)?;
        let (dir, worktree) = &found;
        safe.check(dir, worktree.as_deref().unwrap_or(dir))?;
        Repository::open_dir(dir, worktree.clone(), env)
    }

    /// The repository directory (`.mediagit`, or a bare repository's own)
    /// containing `start` or a parent of it, found without opening the
    /// repository (its settings may be the thing to repair).
    pub fn find_dir(start: &Path) -> Result<PathBuf> {
        Ok(Repository::find(start)?.0)
    }

    /// [`Repository::find_dir`] with the checks of
    /// [`Repository::discover_trusting`] (owner, folders others can write):
    /// for `config`, which edits settings it does not open.
    pub fn find_dir_trusting(start: &Path, safe: &SafeDirectories) -> Result<PathBuf> {
        let (dir, worktree) = Repository::find(start)?;
        safe.check(&dir, worktree.as_deref().unwrap_or(&dir))?;
        Ok(dir)
    }

    /// The repository directory containing `start` (or a parent of it), and
    /// its working tree (`None` when bare).
    fn find(start: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
        let start = start
            .canonicalize()
            .map_err(|e| RepoError::io("resolve", start, e))?;
        let mut cur: Option<&Path> = Some(&start);
        while let Some(dir) = cur {
            let dot = dir.join(DOT_DIR);
            if dot.join("config.toml").is_file() {
                return Ok((dot, Some(dir.to_path_buf())));
            }
            if dir.join("config.toml").is_file()
                && dir.join("HEAD").is_file()
                && (dir.join("refs").is_dir() || names_a_store(&dir.join("config.toml")))
            {
                return Ok((dir.to_path_buf(), None));
            }
            cur = dir.parent();
        }
        Err(RepoError::NotARepository { path: start })
    }

    fn open_dir(dir: &Path, worktree: Option<PathBuf>, env: &CloudEnv) -> Result<Repository> {
        let cfg_path = dir.join("config.toml");
        let text = read_config_text(&cfg_path)?;
        let mut config = RepoConfig::from_toml(&text)
            .map_err(|e| RepoError::format(cfg_path.display().to_string(), e))?;
        let worktree = if config.core.bare { None } else { worktree };
        let uncached = open_storage(dir, config.storage.as_ref(), env)?;
        let mut storage = uncached.clone();
        if let Some(sc) = &config.storage {
            // The store's settings win: every client of a shared store must
            // chunk and name content the same way.
            let store = read_store_config(uncached.as_ref())?;
            // Whoever can write the store can rewrite its config.toml: a
            // working tree that knows its repository is encrypted never
            // takes a config that says otherwise (it would then write
            // plaintext packs and refs into the store).
            if config.format.is_encrypted() && !store.format.is_encrypted() {
                return Err(RepoError::Invalid(format!(
                    "{}: config.toml says the repository is not encrypted, but this working tree's settings say it is; refused (the store's settings may have been altered)",
                    uncached.describe()
                )));
            }
            // In an encrypted repository the chunking parameters are part
            // of what keeps contents private (chunk lengths are visible in
            // the store): a store whose settings change them under a
            // working tree is refused, not followed.
            if config.format.is_encrypted() && config.chunking != store.chunking {
                return Err(RepoError::Invalid(format!(
                    "{}: config.toml changes the chunking parameters this working tree uses ({}/{}/{} to {}/{}/{}); refused (the store's settings may have been altered)",
                    uncached.describe(),
                    config.chunking.min_size,
                    config.chunking.avg_size,
                    config.chunking.max_size,
                    store.chunking.min_size,
                    store.chunking.avg_size,
                    store.chunking.max_size
                )));
            }
            config.format = store.format;
            config.chunking = store.chunking;
            config.compression = store.compression;
            if sc.is_object_store() {
                // Every command reads every pack index; they never change.
                storage = Arc::new(CacheBackend::new(
                    uncached.clone(),
                    dir.join("cache"),
                    |k| k.starts_with("packs/") && k.ends_with(".idx"),
                ));
            }
        }
        crate::store::check_not_downgraded(uncached.as_ref(), &config)?;
        let shared = config.storage.is_some();
        Ok(Repository {
            store: Store::from_parts(storage, uncached, config, dir.join("tmp")),
            ws: Some(Workspace::new(dir.to_path_buf(), worktree, shared)),
        })
    }

    /// A repository of a store alone, with no local state: what a server
    /// or a store-to-store copy works with. Commands that need a working
    /// tree fail with [`RepoError::NoWorkspace`].
    pub fn on_store(store: Store) -> Repository {
        Repository { store, ws: None }
    }

    /// A store and the local state of one working tree that uses it.
    pub fn from_parts(store: Store, ws: Workspace) -> Repository {
        Repository {
            store,
            ws: Some(ws),
        }
    }

    /// The store this repository uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The local state, or [`RepoError::NoWorkspace`] when the repository
    /// was opened from its store alone.
    pub fn workspace(&self) -> Result<&Workspace> {
        self.ws.as_ref().ok_or(RepoError::NoWorkspace)
    }

    /// The local state, when there is one.
    pub fn workspace_opt(&self) -> Option<&Workspace> {
        self.ws.as_ref()
    }

    /// No working tree: a bare repository, or a store alone.
    pub fn is_bare(&self) -> bool {
        self.ws.as_ref().is_none_or(Workspace::is_bare)
    }

    /// The working tree root, or an error when there is none.
    pub fn worktree(&self) -> Result<&Path> {
        self.workspace()?.worktree()
    }

    /// Takes the working tree's lock (see [`Workspace::lock`]); `None`
    /// for a store alone, where refs move by compare-and-swap only.
    pub(crate) fn lock_local(&self) -> Result<Option<RepoLock>> {
        self.ws.as_ref().map(Workspace::lock).transpose()
    }
}

/// Repositories owned by other users that this user trusts anyway (the
/// user-level `[safe] directories` setting, like Git's `safe.directory`):
/// working tree (or bare repository) paths, or `*` for all.
#[derive(Debug, Clone, Default)]
pub struct SafeDirectories {
    pub directories: Vec<PathBuf>,
}

impl SafeDirectories {
    /// Refuses `dir` (a `.mediagit` directory, or a bare repository) unless
    /// it belongs to the user running this process, or `top` (the working
    /// tree, or the bare repository) is listed.
    ///
    /// Owned means: the directory, its `config.toml` (which decides where
    /// credentials are sent) and `HEAD` all belong to this user. In a
    /// world-writable directory (`/tmp`, a team share) someone else can
    /// plant those files in a directory this user owns, or the reverse.
    /// Only absolute entries count (a relative one, resolved against
    /// wherever the command runs, would trust any repository).
    fn check(&self, dir: &Path, top: &Path) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions, cannot fail and touches no memory.
        let me = unsafe { libc::geteuid() };
        let mut foreign = None;
        // The directory both as named and where a link there leads (a
        // `.mediagit` link of this user's to a folder of someone else's).
        let resolved = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        for p in [
            dir.to_path_buf(),
            resolved,
            dir.join("config.toml"),
            dir.join("HEAD"),
        ] {
            match fs::symlink_metadata(&p) {
                Ok(m) if m.uid() == me => {}
                Ok(m) => {
                    foreign = Some(m.uid());
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RepoError::io("stat", &p, e)),
            }
        }
        let listed = || {
            self.directories.iter().any(|d| {
                d.as_os_str() == "*"
                    || (d.is_absolute() && (d == top || d.canonicalize().is_ok_and(|c| c == top)))
            })
        };
        if let Some(uid) = foreign {
            if listed() {
                return Ok(());
            }
            return Err(RepoError::UnsafeRepository {
                path: top.to_path_buf(),
                owner: user_name(uid),
                uid,
            });
        }
        // Owned by this user, but a folder of it anyone can write into
        // lets anyone plant files there (a link as a reflog, a lock, an
        // index) that this command would read or write.
        if let Some((folder, why)) = others_can_write_into(dir)? {
            if listed() {
                return Ok(());
            }
            return Err(RepoError::UnsafeRepositoryMode {
                path: top.to_path_buf(),
                folder,
                why,
            });
        }
        Ok(())
    }
}

/// Most entries of `refs/` looked at by [`others_can_write_into`] (a
/// store with more branch folders than this is checked up to there).
const MAX_REFS_CHECKED: usize = 100_000;

/// The first folder or file of the repository at `dir` that users other
/// than its owner may write (mode bits for every user, or a POSIX ACL
/// naming another user), or that is not this user's (or root's), with
/// why: `dir` and what is directly in it (a folder in it through a link:
/// the folder a `.mediagit -> elsewhere` or `packs -> /mnt/disk` link
/// names is the one read and written), the reflogs in `logs/`, and
/// everything below `refs/`, folders through links (a ref others can
/// rewrite, or a branch folder they can rename, moves a branch back
/// silently). Group-writable by a group the user is in is fine (a umask of 002, a team's
/// folder).
fn others_can_write_into(dir: &Path) -> Result<Option<(PathBuf, String)>> {
    use mediagit_storage::permissions::{others_can_write, GroupRule, Writers};
    use std::os::unix::fs::MetadataExt;
    let w = Writers::me(GroupRule::Mine);
    let judge = |p: &Path, follow: bool| -> Result<Option<(PathBuf, String)>> {
        let m = match if follow {
            fs::metadata(p)
        } else {
            fs::symlink_metadata(p)
        } {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RepoError::io("stat", p, e)),
        };
        if !m.is_dir() && !m.is_file() {
            // Links not followed, FIFOs, devices: `read_private` refuses them.
            return Ok(None);
        }
        if m.uid() != w.uid && m.uid() != 0 {
            return Ok(Some((
                p.to_path_buf(),
                format!("it belongs to {} (uid {})", user_name(m.uid()), m.uid()),
            )));
        }
        let why = others_can_write(p, &m, follow, w).map_err(|e| RepoError::io("stat", p, e))?;
        Ok(why.map(|why| (p.to_path_buf(), why)))
    };
    if let Some(found) = judge(dir, true)? {
        return Ok(Some(found));
    }
    let rd = fs::read_dir(dir).map_err(|e| RepoError::io("list", dir, e))?;
    for e in rd {
        let e = e.map_err(|e| RepoError::io("list", dir, e))?;
        let p = e.path();
        // Folders through a link; files as they are (a file that is a
        // link is refused when it is opened).
        let is_dir = fs::metadata(&p).is_ok_and(|m| m.is_dir());
        if let Some(found) = judge(&p, is_dir)? {
            return Ok(Some(found));
        }
    }
    // The reflogs (a flat folder) and everything below refs/, bounded.
    let mut seen = 0usize;
    if let Ok(rd) = fs::read_dir(dir.join("logs")) {
        for e in rd.flatten() {
            seen += 1;
            if seen > MAX_REFS_CHECKED {
                return Ok(None);
            }
            if let Some(found) = judge(&e.path(), false)? {
                return Ok(Some(found));
            }
        }
    }
    let mut stack = vec![dir.join("refs")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            seen += 1;
            if seen > MAX_REFS_CHECKED {
                return Ok(None);
            }
            let p = e.path();
            let Ok(t) = e.file_type() else {
                continue;
            };
            // A link to a folder is judged, and walked, where it leads
            // (ref listings go through it); a link to a file is no ref
            // (the store never reads one).
            let link_to_dir = t.is_symlink() && fs::metadata(&p).is_ok_and(|m| m.is_dir());
            if let Some(found) = judge(&p, link_to_dir)? {
                return Ok(Some(found));
            }
            if t.is_dir() || link_to_dir {
                stack.push(p);
            }
        }
    }
    Ok(None)
}

/// The login name of `uid` from `/etc/passwd`, or the number.
fn user_name(uid: u32) -> String {
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id = f.nth(1)?.parse::<u32>().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// Removes `.` and `..` components lexically.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Reads a file of this working tree's own state (`.mediagit/HEAD`,
/// `BASE`, the index, a reflog, `config.toml`): `Ok(None)` when it does
/// not exist. Never through a link (a `logs/HEAD -> /etc/shadow` planted
/// by someone who could write there would have its target read and
/// shown), only a regular file (a FIFO would hang the command, a device
/// such as `/dev/zero` would fill memory), and at most `max` bytes (more
/// is an error naming the file; read no further than `max + 1`).
pub fn read_private(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(RepoError::io(
                "read",
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "it is a symbolic link; MediaGit never follows links inside .mediagit",
                ),
            ))
        }
        Err(e) => return Err(RepoError::io("read", path, e)),
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(RepoError::io(
            "read",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file"),
        ));
    }
    let mut out = Vec::new();
    f.take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| RepoError::io("read", path, e))?;
    if out.len() as u64 > max {
        return Err(RepoError::io(
            "read",
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than {max} bytes"),
            ),
        ));
    }
    Ok(Some(out))
}

/// [`read_private`] of a text file.
pub fn read_private_text(path: &Path, max: u64) -> Result<Option<String>> {
    match read_private(path, max)? {
        None => Ok(None),
        Some(b) => String::from_utf8(b).map(Some).map_err(|e| {
            RepoError::io(
                "read",
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
            )
        }),
    }
}

/// A working tree's `config.toml` (or any settings file there) as
/// [`read_private_text`] reads it; missing is an error naming it.
pub fn read_config_text(path: &Path) -> Result<String> {
    read_private_text(path, MAX_CONFIG_BYTES)?.ok_or_else(|| {
        RepoError::io(
            "read",
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })
}

/// Largest `config.toml` of a working tree read: one byte more than the
/// format allows, so that the parser's own error names the limit.
pub const MAX_CONFIG_BYTES: u64 = mediagit_format::config::MAX_CONFIG_BYTES as u64 + 1;
/// Largest reflog read (about two million records).
pub const MAX_REFLOG_BYTES: u64 = 512 << 20;

/// Writes a small local file atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(data))
}

/// [`write_atomic`] of what `write` streams out (through a buffer).
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| RepoError::io("create temp file in", dir, e))?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        write(&mut w)
            .and_then(|_| w.flush())
            .map_err(|e| RepoError::io("write", path, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| RepoError::io("write", path, e))?;
    crate::failpoint::hit("write:atomic-before-rename");
    tmp.persist(path)
        .map_err(|e| RepoError::io("rename into place", path, e.error))?;
    mediagit_storage::local_backend::sync_dir(dir).map_err(|e| RepoError::io("fsync", dir, e))?;
    crate::failpoint::hit("write:atomic-done");
    Ok(())
}

/// The exclusive repository lock (an `flock` on `.mediagit/lock`). Released
/// when dropped, and by the kernel if the process dies.
pub struct RepoLock {
    _file: File,
}

impl RepoLock {
    pub(crate) fn acquire(dir: &Path) -> Result<RepoLock> {
        let path = dir.join("lock");
        // Never through a link, and only a file: a link planted as `lock`
        // in a repository others can write would have this truncate and
        // write whatever it points to (as whoever runs the command); a
        // FIFO would hang it.
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                // Not for others: anyone who can open it can flock it and
                // lock the owner out (the group shares a bare repository).
                .mode(0o660)
                .open(&path)
        }
        .map_err(|e| RepoError::io("open lock file", &path, e))?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(RepoError::io(
                "open lock file",
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file"),
            ));
        }
        mediagit_storage::permissions::keep_from_others(&file);
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(RepoError::Locked {
                    path,
                    holder: if holder.is_empty() {
                        "unknown process".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(RepoError::io("lock", &path, e)),
        }
        let _ = file.set_len(0);
        let _ = file.write_all(format!("pid {}", std::process::id()).as_bytes());
        // Whatever a crashed command left in tmp/ is garbage now: no
        // other command of this working tree can be writing while we hold
        // the lock. Except the store's own writes (`put-*`, a local
        // store's temporary files before their rename): in a bare
        // repository tmp/ is the store's, and a server hosting it (or a
        // working tree sharing it) writes there without this lock; those
        // go once they are an hour old.
        // Only a real folder, emptied through a handle to it (a `tmp`
        // swapped for a link must not empty where it points).
        use rustix::fs::{AtFlags, Mode, OFlags};
        if let Ok(tmp) = rustix::fs::openat(
            rustix::fs::CWD,
            dir.join("tmp").as_path(),
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        ) {
            let hour = std::time::Duration::from_secs(3600);
            let names: Vec<std::ffi::CString> = rustix::fs::Dir::read_from(&tmp)
                .map(|d| d.flatten().map(|e| e.file_name().to_owned()).collect())
                .unwrap_or_default();
            for name in names {
                let Ok(st) = rustix::fs::statat(&tmp, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                else {
                    continue;
                };
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory
                {
                    continue;
                }
                let store_write = name.as_bytes().starts_with(b"put-");
                let modified = std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(st.st_mtime.max(0) as u64);
                let fresh = modified.elapsed().map(|a| a < hour).unwrap_or(true);
                if store_write && fresh {
                    continue;
                }
                let _ = rustix::fs::unlinkat(&tmp, name.as_c_str(), AtFlags::empty());
            }
        }
        Ok(RepoLock { _file: file })
    }
}

impl Repository {
    /// This repository with its object database loaded afresh when first
    /// used (it sees packs written since), for a long-running reader such
    /// as `backup create --watch`.
    pub fn with_fresh_odb(&self) -> Repository {
        Repository {
            store: self.store.with_fresh_odb(),
            ws: self.ws.clone(),
        }
    }
}
