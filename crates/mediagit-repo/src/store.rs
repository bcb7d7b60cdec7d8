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

/// Refuses a store that holds key files while its `config.toml` says the
/// repository is not encrypted: someone with write access to the store may
/// have removed the feature so that clients write in the clear.
pub(crate) fn check_not_downgraded(storage: &dyn Storage, config: &RepoConfig) -> Result<()> {
    if !config.format.is_encrypted() && storage.first_key(crate::keys::KEYS_PREFIX)?.is_some() {
        return Err(RepoError::Invalid(format!(
            "{} holds key files ({}*) but its config.toml does not say the repository is encrypted; refused (its settings may have been altered)",
            storage.describe(),
            crate::keys::KEYS_PREFIX
        )));
    }
    Ok(())
}

/// What a sealed store `HEAD` starts with (FORMAT.md §13.6).
pub const SEALED_HEAD_MAGIC: &[u8; 8] = b"MGHEAD\0\x01";

/// Where an encrypted local repository keeps a sealed copy of its first
/// HEAD, for checking keys against (FORMAT.md §13.6): its own HEAD stays
/// plain.
pub const KEY_CHECK: &str = "check";

/// The largest ref value read (a plain value is 65 bytes, a sealed one a
/// few hundred: FORMAT.md §6, §13.6).
pub const MAX_REF_BYTES: u64 = 64 << 10;

/// Whether a store `HEAD` is sealed (FORMAT.md §13.6).
pub(crate) fn is_sealed_head(b: &[u8]) -> bool {
    b.starts_with(SEALED_HEAD_MAGIC)
}

/// A store `HEAD` sealed with `keys`: the magic, then the text padded and
/// sealed, bound to the key `HEAD`.
pub(crate) fn seal_store_head(keys: &mediagit_crypto::RepoKeys, text: &str) -> Result<Vec<u8>> {
    let mut out = SEALED_HEAD_MAGIC.to_vec();
    out.extend_from_slice(
        &keys
            .seal(
                mediagit_crypto::Purpose::Head,
                b"HEAD",
                &pad64(text.as_bytes().to_vec()),
            )
            .map_err(|e| RepoError::Invalid(e.to_string()))?,
    );
    Ok(out)
}

/// The text of a sealed store `HEAD` (what [`seal_store_head`] made).
pub(crate) fn open_store_head(
    keys: &mediagit_crypto::RepoKeys,
    sealed: &[u8],
) -> std::result::Result<String, mediagit_crypto::CryptoError> {
    let body = sealed.get(SEALED_HEAD_MAGIC.len()..).unwrap_or_default();
    let plain = keys.open(mediagit_crypto::Purpose::Head, b"HEAD", body, "HEAD")?;
    let end = plain.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    Ok(String::from_utf8_lossy(&plain[..end]).into_owned())
}

/// `v` padded with NULs to a multiple of 64 bytes: a sealed ref value or
/// HEAD does not show the length of the name inside (FORMAT.md §13.6).
fn pad64(mut v: Vec<u8>) -> Vec<u8> {
    let n = v.len().div_ceil(64).max(1) * 64;
    v.resize(n, 0);
    v
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

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
    pub(crate) keys: Option<Arc<mediagit_crypto::RepoKeys>>,
    /// Its master key and the key file that opened it (`unlock`).
    pub(crate) unlocked: Option<Arc<crate::keys::Unlocked>>,
}

impl Store {
    /// Opens the repository a store holds: reads and checks its
    /// `config.toml` (refusing unknown format versions and required
    /// features). Packs being written go through `tmp_dir`.
    pub fn open(storage: Arc<dyn Storage>, tmp_dir: PathBuf) -> Result<Store> {
        let config = read_store_config(storage.as_ref())?;
        check_not_downgraded(storage.as_ref(), &config)?;
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
            unlocked: None,
        }
    }

    /// This store with an object database loaded afresh when first used:
    /// it sees the packs other processes stored since this one loaded
    /// its own (after losing a compare-and-swap to one of them).
    pub fn with_fresh_odb(&self) -> Store {
        let mut s = self.clone();
        s.odb = Arc::new(OnceLock::new());
        s
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
        self.require_unlocked()?;
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

    /// Whether refs (names and values) and the store's HEAD are sealed:
    /// the store holds the keys of an encrypted repository.
    fn sealed_refs(&self) -> Option<&mediagit_crypto::RepoKeys> {
        self.keys.as_deref()
    }

    /// Fails with [`RepoError::NeedsPassphrase`] when the repository is encrypted
    /// and no passphrase opened it: nothing of it can be read then.
    pub fn require_unlocked(&self) -> Result<()> {
        if self.config.format.is_encrypted() && self.keys.is_none() {
            return Err(RepoError::NeedsPassphrase {
                store: self.storage.describe(),
            });
        }
        Ok(())
    }

    /// The storage key of the ref `name` (`refs/heads/main`): the name
    /// itself, or in an encrypted repository `refs/` and the hex HMAC of
    /// the name under the ref-name key (FORMAT.md §13.6), so the store
    /// never sees a branch or tag name.
    pub fn ref_storage_key(&self, name: &str) -> String {
        match self.sealed_refs() {
            None => name.to_string(),
            Some(k) => format!("refs/{}", hex_lower(&k.ref_token(name))),
        }
    }

    /// A ref's stored bytes: `<id>\n`, or sealed (`name\n<id>\n`, bound
    /// to the storage key).
    pub(crate) fn encode_ref(&self, name: &str, id: ObjectId) -> Result<Vec<u8>> {
        match self.sealed_refs() {
            None => Ok(format!("{id}\n").into_bytes()),
            Some(k) => k
                .seal(
                    mediagit_crypto::Purpose::Ref,
                    self.ref_storage_key(name).as_bytes(),
                    &pad64(format!("{name}\n{id}\n").into_bytes()),
                )
                .map_err(|e| RepoError::Invalid(e.to_string())),
        }
    }

    /// The name and id in a ref's stored bytes at storage key `key`.
    pub(crate) fn decode_ref(&self, key: &str, bytes: &[u8]) -> Result<(String, ObjectId)> {
        let bad = |reason: String| RepoError::CorruptRef {
            key: key.to_string(),
            store: self.storage.describe(),
            reason,
        };
        match self.sealed_refs() {
            None => {
                // (The value is not shown: a ref planted as a link to
                // another file would print that file.)
                let s = String::from_utf8_lossy(bytes);
                let id = s.trim().parse::<ObjectId>().map_err(|_| {
                    bad(format!(
                        "not a commit id ({} bytes where 64 hex digits and a newline belong)",
                        bytes.len()
                    ))
                })?;
                Ok((key.to_string(), id))
            }
            Some(k) => {
                let plain = k
                    .open(
                        mediagit_crypto::Purpose::Ref,
                        key.as_bytes(),
                        bytes,
                        "ref value",
                    )
                    .map_err(|e| bad(e.to_string()))?;
                let mut plain = plain;
                while plain.last() == Some(&0) {
                    plain.pop();
                }
                let text = String::from_utf8(plain).map_err(|_| bad("not UTF-8".into()))?;
                let (name, id) = text
                    .strip_suffix('\n')
                    .and_then(|t| t.split_once('\n'))
                    .ok_or_else(|| bad("not a sealed ref value".into()))?;
                let id = id
                    .parse::<ObjectId>()
                    .map_err(|e| RepoError::format(format!("ref {name}"), e))?;
                if self.ref_storage_key(name) != key {
                    return Err(bad(format!(
                        "names the ref {name}, stored under another key"
                    )));
                }
                Ok((name.to_string(), id))
            }
        }
    }

    /// The stored bytes and id of ref `name`, if it exists.
    fn read_ref_raw(&self, name: &str) -> Result<Option<(Vec<u8>, ObjectId)>> {
        self.require_unlocked()?;
        let key = self.ref_storage_key(name);
        // A ref value is a line (sealed: a little more); a key of any
        // other size is not read whole (a file planted as a ref, or a link
        // to a large one).
        match self.storage.get_small(&key, MAX_REF_BYTES) {
            Ok(b) => {
                let (found, id) = self.decode_ref(&key, &b)?;
                if found != name {
                    return Err(RepoError::format(
                        format!("ref {name}"),
                        mediagit_format::FormatError::Decode {
                            what: "ref",
                            reason: format!("holds the ref {found}"),
                        },
                    ));
                }
                Ok(Some((b, id)))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a full ref name such as `refs/heads/main`.
    pub fn read_ref(&self, name: &str) -> Result<Option<ObjectId>> {
        Ok(self.read_ref_raw(name)?.map(|(_, id)| id))
    }

    /// Moves a ref from `expected` to `new` (`None` = absent) atomically.
    pub fn cas_ref(
        &self,
        name: &str,
        expected: Option<ObjectId>,
        new: Option<ObjectId>,
    ) -> Result<()> {
        self.require_unlocked()?;
        let key = self.ref_storage_key(name);
        let race = |found: Option<ObjectId>| RepoError::RefRace {
            name: name.into(),
            expected: expected.map(|i| i.to_string()).unwrap_or("nothing".into()),
            found: found.map(|i| i.to_string()).unwrap_or("nothing".into()),
        };
        // Sealed values carry a fresh nonce each: the swap compares the
        // exact bytes read (the stored token), after their id was checked
        // against `expected` (FORMAT.md §13.6).
        let e = match self.sealed_refs() {
            None => expected.map(|i| format!("{i}\n").into_bytes()),
            Some(_) => {
                let current = self.read_ref_raw(name)?;
                let current_id = current.as_ref().map(|(_, id)| *id);
                if current_id != expected {
                    if current_id == new {
                        return Ok(());
                    }
                    return Err(race(current_id));
                }
                current.map(|(b, _)| b)
            }
        };
        let n = match new {
            Some(id) => Some(self.encode_ref(name, id)?),
            None => None,
        };
        crate::failpoint::hit("write:ref-cas-before");
        match self
            .storage
            .compare_and_swap(&key, e.as_deref(), n.as_deref())?
        {
            CasOutcome::Swapped => {
                crate::failpoint::hit("write:ref-cas-done");
                Ok(())
            }
            // The ref already holds exactly the wanted value: on an object
            // store, a retried conditional write whose first attempt landed
            // (its answer lost) is refused by its own effect. A ref value
            // names a commit, so the wanted state is reached either way.
            CasOutcome::Conflict { actual } => {
                let found = match &actual {
                    None => None,
                    Some(a) => self.decode_ref(&key, a).ok().map(|(_, id)| id),
                };
                if found == new && (actual.is_some() || new.is_none()) {
                    crate::failpoint::hit("write:ref-cas-done");
                    return Ok(());
                }
                Err(race(found))
            }
        }
    }

    /// Names (without prefix) of the refs under `prefix` (`refs/heads/`...).
    /// Keys that are not valid ref names are skipped ([`check_ref_key`]).
    pub fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        self.require_unlocked()?;
        if self.sealed_refs().is_some() {
            return Ok(self
                .sealed_ref_list(prefix)?
                .into_iter()
                .map(|(name, id)| (name[prefix.len()..].to_string(), id))
                .collect());
        }
        let mut out = Vec::new();
        for key in self.ref_keys(prefix)? {
            if let Some(id) = self.read_ref(&key)? {
                out.push((key[prefix.len()..].to_string(), id));
            }
        }
        Ok(out)
    }

    /// Every ref under `prefix` (by name, or for a sealed value that does
    /// not open, by storage key) with its id or why it cannot be read: for
    /// the walks (fsck, gc) that report a damaged ref and go on.
    pub fn ref_entries(&self, prefix: &str) -> Result<Vec<(String, Result<ObjectId>)>> {
        self.require_unlocked()?;
        if self.sealed_refs().is_none() {
            return Ok(self
                .ref_keys(prefix)?
                .into_iter()
                .filter_map(|name| match self.read_ref(&name) {
                    Ok(Some(id)) => Some((name, Ok(id))),
                    Ok(None) => None,
                    Err(e) => Some((name, Err(e))),
                })
                .collect());
        }
        self.sealed_entries(prefix)
    }

    /// Every sealed ref whose name starts with `prefix` (names that are not
    /// valid ref names left out, and reported by
    /// [`Store::invalid_ref_keys`]), with its id; a value that cannot be
    /// read or opened, under its storage key with why. Sorted.
    fn sealed_entries(&self, prefix: &str) -> Result<Vec<(String, Result<ObjectId>)>> {
        let mut out = Vec::new();
        for key in self.storage.list("refs/")? {
            let r = match self.storage.get(&key) {
                Ok(b) => self.decode_ref(&key, &b),
                // Deleted since the listing.
                Err(e) if e.is_not_found() => continue,
                Err(e) => Err(e.into()),
            };
            match r {
                Ok((name, id)) => {
                    if name.starts_with(prefix) && check_ref_key(&name).is_ok() {
                        out.push((name, Ok(id)));
                    }
                }
                Err(e) => out.push((key, Err(e))),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Every sealed ref whose name starts with `prefix`, sorted by name.
    /// A value that does not open is an error naming its key (as a ref
    /// whose value does not parse is, unsealed: its name cannot be known,
    /// so it cannot be skipped for another prefix).
    fn sealed_ref_list(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
        self.sealed_entries(prefix)?
            .into_iter()
            .map(|(name, r)| r.map(|id| (name, id)))
            .collect()
    }

    /// The full names of the refs under `prefix` (which starts with
    /// `refs/`) that are valid ref names; the others are left alone (see
    /// [`check_ref_key`]). In a repository that is not encrypted these are
    /// also their storage keys; [`Store::read_ref`] and [`Store::cas_ref`]
    /// take names either way.
    pub fn ref_keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.require_unlocked()?;
        if self.sealed_refs().is_some() {
            return Ok(self
                .sealed_ref_list(prefix)?
                .into_iter()
                .map(|(name, _)| name)
                .collect());
        }
        Ok(self
            .storage
            .list(prefix)?
            .into_iter()
            .filter(|k| check_ref_key(k).is_ok())
            .collect())
    }

    /// The keys under `refs/` that are not valid ref names (or, sealed,
    /// do not open), with why.
    pub fn invalid_ref_keys(&self) -> Result<Vec<(String, String)>> {
        let keys = self.storage().list("refs/")?;
        if self.sealed_refs().is_some() {
            return Ok(keys
                .into_iter()
                .filter_map(|k| {
                    let r = self
                        .storage
                        .get(&k)
                        .map_err(RepoError::from)
                        .and_then(|b| self.decode_ref(&k, &b))
                        .and_then(|(name, _)| {
                            check_ref_key(&name).map_err(|e| RepoError::Invalid(e.to_string()))
                        });
                    r.err().map(|e| (k, e.to_string()))
                })
                .collect());
        }
        Ok(keys
            .into_iter()
            .filter_map(|k| check_ref_key(&k).err().map(|e| (k, e.to_string())))
            .collect())
    }

    /// The store's own `HEAD` (in a repository without a shared store,
    /// the working tree's).
    /// `None` when the store has none.
    pub fn head(&self) -> Result<Option<crate::refs::Head>> {
        match self.head_text()? {
            Some(t) => crate::refs::Head::parse(&t)
                .map(Some)
                .map_err(|e| RepoError::format(format!("{}: HEAD", self.storage.describe()), e)),
            None => Ok(None),
        }
    }

    /// The text of the store's `HEAD`, opened if sealed.
    fn head_text(&self) -> Result<Option<String>> {
        self.require_unlocked()?;
        match self.storage.get("HEAD") {
            Ok(b) => match self.sealed_refs() {
                Some(k) if is_sealed_head(&b) => {
                    open_store_head(k, &b)
                        .map(Some)
                        .map_err(|e| RepoError::CorruptObject {
                            id: ObjectId([0; 32]),
                            kind: "HEAD",
                            location: format!("HEAD in {}", self.storage.describe()),
                            reason: e.to_string(),
                        })
                }
                _ => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            },
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The store's `HEAD` as stored: sealed in an encrypted repository
    /// (`SEALED_HEAD_MAGIC`, then the padded text sealed).
    pub(crate) fn encode_store_head(&self, text: &str) -> Result<Vec<u8>> {
        match self.sealed_refs() {
            None => Ok(text.as_bytes().to_vec()),
            Some(k) => seal_store_head(k, text),
        }
    }

    /// The branch the store's own `HEAD` names (what a clone checks out
    /// and what a repository opened without a working tree is on).
    pub fn head_branch(&self) -> Result<Option<String>> {
        Ok(self.head_text()?.and_then(|t| {
            t.trim()
                .strip_prefix("ref: refs/heads/")
                .map(str::to_string)
        }))
    }
}
