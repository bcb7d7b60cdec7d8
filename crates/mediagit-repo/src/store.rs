//! `Store`: what every copy of a repository shares, reached only through
//! the [`Storage`] trait: objects (packs and their indexes), refs, and the
//! store's settings (`config.toml`: format, chunking, compression).
//!
//! Why apart from the working tree: a server that hosts repositories has
//! none, a push moves objects between two stores, a partial copy must know
//! what it holds, and encryption needs one place where object bytes are
//! sealed (the store's [`ObjectCodec`]). A `Store` needs no `.mediagit`
//! directory, only a scratch directory for packs being written, and is
//! `Send + Sync`: many threads may read through one at once.
//!
//! A [`crate::Repository`] is a `Store` plus one working tree's local state
//! (HEAD, the index, reflogs, the lock); it dereferences to its `Store`, so
//! store operations read the same on either.
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mediagit_format::config::RepoConfig;
use mediagit_format::ObjectId;
use mediagit_storage::{CasOutcome, Storage};

use crate::codec::ObjectCodec;
use crate::error::{RepoError, Result};
use crate::odb::Odb;
use crate::refs::check_ref_key;
use crate::repo::read_store_config;

/// Cheap to clone: clones share the storage and the loaded object database
/// (a server keeps one per repository and hands a clone to each request).
#[derive(Clone)]
pub struct Store {
    /// Reads (pack indexes of object stores through a local cache).
    storage: Arc<dyn Storage>,
    /// The same store without any cache: what `fsck` checks.
    uncached: Arc<dyn Storage>,
    config: RepoConfig,
    /// Where packs are written before they are stored.
    tmp_dir: PathBuf,
    odb: Arc<OnceLock<Odb>>,
    freshen_after: Option<Duration>,
    /// The keys of an encrypted repository (FORMAT.md §13).
    keys: Option<Arc<mediagit_crypto::RepoKeys>>,
}

impl Store {
    /// Opens the repository a store holds: reads and checks its
    /// `config.toml` (refusing unknown format versions and required
    /// features). Packs being written go through `tmp_dir`.
    pub fn open(storage: Arc<dyn Storage>, tmp_dir: PathBuf) -> Result<Store> {
        let config = read_store_config(storage.as_ref())?;
        Ok(Store::from_parts(storage.clone(), storage, config, tmp_dir))
    }

    pub(crate) fn from_parts(
        storage: Arc<dyn Storage>,
        uncached: Arc<dyn Storage>,
        config: RepoConfig,
        tmp_dir: PathBuf,
    ) -> Store {
        Store {
            storage,
            uncached,
            config,
            tmp_dir,
            odb: Arc::new(OnceLock::new()),
            freshen_after: Some(crate::odb::FRESHEN_AFTER),
            keys: None,
        }
    }

    /// This store with the keys of an encrypted repository: every object
    /// written through it is named with the keyed id and every pack and
    /// pack index sealed (FORMAT.md §13). Before the object database is
    /// first used.
    pub fn with_keys(mut self, keys: Arc<mediagit_crypto::RepoKeys>) -> Store {
        self.keys = Some(keys);
        self.odb = Arc::new(OnceLock::new());
        self
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The store without the local cache: what `fsck` checks.
    pub fn uncached_storage(&self) -> &Arc<dyn Storage> {
        &self.uncached
    }

    /// Where packs are written before they are stored.
    pub fn tmp_dir(&self) -> &std::path::Path {
        &self.tmp_dir
    }

    /// How this store names and encodes objects.
    pub fn codec(&self) -> ObjectCodec {
        match &self.keys {
            Some(k) => ObjectCodec::sealed(&self.config, k.clone()),
            None => ObjectCodec::new(&self.config),
        }
    }

    /// The object database, loaded (every pack index read) on first use.
    pub fn odb(&self) -> Result<&Odb> {
        if let Some(o) = self.odb.get() {
            return Ok(o);
        }
        let o = Odb::load(
            self.storage.clone(),
            self.tmp_dir.clone(),
            &self.config,
            self.codec(),
        )?;
        o.set_freshen_after(self.freshen_after);
        Ok(self.odb.get_or_init(|| o))
    }

    /// How old a pack must be before an `add` or `commit` that reuses
    /// objects from it re-dates it for `gc` on other machines (default
    /// [`crate::odb::FRESHEN_AFTER`]; `None`: never). Must be well below the
    /// grace period every `gc` on the store uses.
    pub fn set_freshen_after(&mut self, after: Option<Duration>) {
        self.freshen_after = after;
        if let Some(o) = self.odb.get() {
            o.set_freshen_after(after);
        }
    }

    /// Threads that restore or verify files: one per core on local disk;
    /// on an object store, where each one mostly waits for a GET, more.
    pub fn read_workers(&self) -> usize {
        if self.storage.is_remote() {
            crate::ingest::cores().max(8)
        } else {
            crate::ingest::cores()
        }
    }

    /// Reads a full ref name such as `refs/heads/main`.
    pub fn read_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        match self.storage.get(name) {
            Ok(b) => {
                let s = String::from_utf8_lossy(&b);
                s.trim()
                    .parse::<ObjectId>()
                    .map(Some)
                    .map_err(|e| RepoError::format(format!("ref {name}"), e))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves a ref from `expected` to `new` (`None` = absent) atomically.
    pub fn cas_ref(
        &self,
        name: &str,
        expected: Option<ObjectId>,
        new: Option<ObjectId>,
    ) -> Result<()> {
        let enc = |id: Option<ObjectId>| id.map(|i| format!("{i}\n").into_bytes());
        let (e, n) = (enc(expected), enc(new));
        crate::failpoint::hit("write:ref-cas-before");
        match self
            .storage
            .compare_and_swap(name, e.as_deref(), n.as_deref())?
        {
            CasOutcome::Swapped => {
                crate::failpoint::hit("write:ref-cas-done");
                Ok(())
            }
            // The ref already holds exactly the wanted value: on an object
            // store, a retried conditional write whose first attempt landed
            // (its answer lost) is refused by its own effect. A ref value
            // names a commit, so the wanted state is reached either way.
            CasOutcome::Conflict { actual } if actual == n => {
                crate::failpoint::hit("write:ref-cas-done");
                Ok(())
            }
            CasOutcome::Conflict { actual } => Err(RepoError::RefRace {
                name: name.into(),
                expected: expected.map(|i| i.to_string()).unwrap_or("nothing".into()),
                found: actual
                    .map(|a| String::from_utf8_lossy(&a).trim().to_string())
                    .unwrap_or("nothing".into()),
            }),
        }
    }

    /// Names (without prefix) of the refs under `prefix` (`refs/heads/`...).
    /// Keys that are not valid ref names are skipped ([`check_ref_key`]).
    pub fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        let mut out = Vec::new();
        for key in self.ref_keys(prefix)? {
            if let Some(id) = self.read_ref(&key)? {
                out.push((key[prefix.len()..].to_string(), id));
            }
        }
        Ok(out)
    }

    /// The keys under `prefix` (which starts with `refs/`) that are valid
    /// ref names; the others are left alone (see [`check_ref_key`]).
    pub fn ref_keys(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .storage
            .list(prefix)?
            .into_iter()
            .filter(|k| check_ref_key(k).is_ok())
            .collect())
    }

    /// The keys under `refs/` that are not valid ref names, with why.
    pub fn invalid_ref_keys(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .storage()
            .list("refs/")?
            .into_iter()
            .filter_map(|k| check_ref_key(&k).err().map(|e| (k, e.to_string())))
            .collect())
    }

    /// The store's own `HEAD` (in a repository without a shared store,
    /// the working tree's).
    /// `None` when the store has none.
    pub fn head(&self) -> Result<Option<crate::refs::Head>> {
        match self.storage.get("HEAD") {
            Ok(b) => crate::refs::Head::parse(&String::from_utf8_lossy(&b))
                .map(Some)
                .map_err(|e| RepoError::format(format!("{}: HEAD", self.storage.describe()), e)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The branch the store's own `HEAD` names (what a clone checks out
    /// and what a repository opened without a working tree is on).
    pub fn head_branch(&self) -> Result<Option<String>> {
        crate::repo::read_store_head(self.storage.as_ref())
    }
}
