//! The key files of an encrypted repository (`keys/<id>` in its store,
//! FORMAT.md §13.5): unlocking with a passphrase, and `mediagit key list |
//! add | remove | passwd`.
//!
//! Several passphrases can open one repository: each key file wraps the
//! same master key, so adding or removing a passphrase never touches what
//! is sealed. The library takes passphrases as bytes; asking for them
//! (terminal, environment, file) is the CLI's business.
use std::sync::Arc;

use mediagit_crypto::{CryptoError, KdfParams, KeyFile, MasterKey, RepoKeys};
use serde::Serialize;

use crate::error::{RepoError, Result};
use crate::store::Store;

/// Where key files live in a store.
pub const KEYS_PREFIX: &str = "keys/";
/// At most this many key files are tried (a store may be hostile: each try
/// costs an Argon2 run).
pub const MAX_KEY_FILES: usize = 64;

/// What unlocked a store: its master key (to wrap new key files) and the
/// id of the key file the passphrase opened.
pub struct Unlocked {
    pub(crate) master: MasterKey,
    pub(crate) key_id: String,
}

/// A passphrase, zeroed when dropped and never printed.
#[derive(Clone, Default)]
pub struct Passphrase(zeroize::Zeroizing<Vec<u8>>);

impl Passphrase {
    pub fn new(bytes: Vec<u8>) -> Passphrase {
        Passphrase(zeroize::Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<secret>)")
    }
}

/// What opens an encrypted store: a passphrase (run through a key file's
/// Argon2id), or a master key the caller kept from an earlier unlock with
/// the id of the key file that gave it (the CLI's key cache). A kept key
/// opens the store only while that key file is still in it and the key
/// opens what the store holds.
pub enum Credential {
    Passphrase(Passphrase),
    Kept { key_id: String, master: MasterKey },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Passphrase(_) => f.write_str("Passphrase(<secret>)"),
            Credential::Kept { key_id, .. } => write!(f, "Kept {{ key_id: {key_id:?}, <secret> }}"),
        }
    }
}

impl Clone for Credential {
    fn clone(&self) -> Credential {
        match self {
            Credential::Passphrase(p) => Credential::Passphrase(p.clone()),
            Credential::Kept { key_id, master } => Credential::Kept {
                key_id: key_id.clone(),
                master: MasterKey::from_bytes(*master.bytes()),
            },
        }
    }
}

impl From<Passphrase> for Credential {
    fn from(p: Passphrase) -> Credential {
        Credential::Passphrase(p)
    }
}

/// One key file, as `mediagit key list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    pub label: String,
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
    /// The key file the passphrase of this command opened.
    pub current: bool,
}

/// A new key file's passphrase, cost and label.
pub struct NewKey<'a> {
    pub passphrase: &'a [u8],
    pub params: KdfParams,
    pub label: &'a str,
    /// Unix seconds.
    pub created: i64,
}

pub(crate) fn key_key(id: &str) -> String {
    format!("{KEYS_PREFIX}{id}")
}

fn crypto_err(e: CryptoError) -> RepoError {
    match e {
        CryptoError::WrongPassphrase => RepoError::WrongPassphrase,
        e => RepoError::Invalid(e.to_string()),
    }
}

/// A new key file for `master`: its id and bytes.
pub(crate) fn new_key_file(master: &MasterKey, k: &NewKey<'_>) -> Result<(String, Vec<u8>)> {
    k.params.check().map_err(crypto_err)?;
    let kf =
        KeyFile::create(master, k.passphrase, k.params, k.created, k.label).map_err(crypto_err)?;
    let bytes = kf.encode();
    Ok((KeyFile::id(&bytes), bytes))
}

type KeyFiles = Vec<(String, std::result::Result<KeyFile, CryptoError>)>;

/// The order key files are tried in: `first` (the one a working tree
/// opened last), then cheapest Argon2 cost first (memory × passes; files
/// that do not decode cost nothing to refuse).
fn unlock_order(files: &mut KeyFiles, first: Option<&str>) {
    let cost = |f: &std::result::Result<KeyFile, CryptoError>| {
        f.as_ref()
            .map(|k| u64::from(k.params.m_cost_kib) * u64::from(k.params.t_cost))
            .unwrap_or(0)
    };
    files.sort_by_key(|(id, f)| (Some(id.as_str()) != first, cost(f)));
}

impl Store {
    /// Whether the repository is encrypted (FORMAT.md §13).
    pub fn is_encrypted(&self) -> bool {
        self.config().format.is_encrypted()
    }

    /// The key files in the store: (id, bytes), ids checked against their
    /// bytes, sizes bounded before anything is downloaded.
    fn key_files(&self) -> Result<KeyFiles> {
        let storage = self.storage();
        let mut out = Vec::new();
        for key in storage.list(KEYS_PREFIX)?.into_iter().take(MAX_KEY_FILES) {
            let id = key[KEYS_PREFIX.len()..].to_string();
            let max = (mediagit_crypto::KEY_FILE_LEN + 256) as u64;
            let file = match storage.size(&key)? {
                Some(n) if n > max => Err(CryptoError::BadKeyFile {
                    reason: format!("{n} bytes"),
                }),
                _ => {
                    let bytes = storage.get(&key)?;
                    if KeyFile::id(&bytes) != id {
                        Err(CryptoError::BadKeyFile {
                            reason: "its name is not the SHA-256 of its bytes".into(),
                        })
                    } else {
                        KeyFile::decode(&bytes)
                    }
                }
            };
            out.push((id, file));
        }
        Ok(out)
    }

    /// Opens an encrypted repository with `passphrase`: tries each key
    /// file; the first that opens gives the master key, from which every
    /// subkey is derived. A wrong passphrase is [`RepoError::WrongPassphrase`]
    /// and changes nothing.
    pub fn unlock(self, passphrase: &[u8]) -> Result<Store> {
        self.unlock_trying_first(passphrase, None)
    }

    /// Opens an encrypted store with `c`: a passphrase as
    /// [`Store::unlock_trying_first`]; a kept master key only if the key
    /// file `key_id` is still in the store (a removed or replaced key file
    /// ends what was kept from it) and the key opens the store's sealed
    /// values, else [`RepoError::WrongPassphrase`] (nothing changed).
    pub fn unlock_with(self, c: &Credential, first: Option<&str>) -> Result<Store> {
        let (key_id, master) = match c {
            Credential::Passphrase(p) => return self.unlock_trying_first(p.as_bytes(), first),
            Credential::Kept { key_id, master } => (key_id, master),
        };
        if !self.is_encrypted() {
            return Ok(self);
        }
        if !self.key_ids()?.iter().any(|i| i == key_id) {
            return Err(RepoError::WrongPassphrase);
        }
        let keys = Arc::new(RepoKeys::derive(master));
        if !self.key_fits(&keys)? {
            return Err(RepoError::WrongPassphrase);
        }
        Ok(self.opened(keys, MasterKey::from_bytes(*master.bytes()), key_id.clone()))
    }

    /// This store opened: its subkeys, and what opened it.
    fn opened(self, keys: Arc<RepoKeys>, master: MasterKey, key_id: String) -> Store {
        let mut s = self.with_keys(keys);
        s.unlocked = Some(Arc::new(Unlocked { master, key_id }));
        s
    }

    /// The master key and the id of the key file that gave it, for a
    /// caller that keeps the unlocked key (`None` if not unlocked).
    pub fn unlocked_master(&self) -> Option<(&str, &MasterKey)> {
        self.unlocked
            .as_deref()
            .map(|u| (u.key_id.as_str(), &u.master))
    }

    /// [`Store::unlock`], trying the key file `first` (the one this working
    /// tree opened last) before the others, and the others cheapest first:
    /// a key file planted with the largest Argon2 cost then costs nothing
    /// to the usual case.
    pub fn unlock_trying_first(self, passphrase: &[u8], first: Option<&str>) -> Result<Store> {
        if !self.is_encrypted() {
            return Ok(self);
        }
        let mut files = self.key_files()?;
        // The key file this working tree opened last first, then the
        // cheapest: with the right passphrase, a key file planted with the
        // largest Argon2 cost is tried only after the real ones that cost
        // less. (A wrong passphrase tries every key file, planted ones at
        // their full cost: at most 64 × 1 GiB × 16 passes.)
        unlock_order(&mut files, first);
        if files.is_empty() {
            return Err(RepoError::Invalid(format!(
                "{} is encrypted but holds no key file ({KEYS_PREFIX}*): it cannot be opened",
                self.storage().describe()
            )));
        }
        let mut refused = Vec::new();
        for (id, file) in files {
            match file.and_then(|f| f.unlock(passphrase)) {
                Ok(master) => {
                    let keys = Arc::new(RepoKeys::derive(&master));
                    // A key file of another repository (same passphrase,
                    // copied or planted) opens too: its key must open what
                    // this store holds, or it is not this repository's.
                    if !self.key_fits(&keys)? {
                        refused.push(format!(
                            "{id}: opens with this passphrase but is not this repository's key"
                        ));
                        continue;
                    }
                    return Ok(self.opened(keys, master, id));
                }
                Err(CryptoError::WrongPassphrase) => {}
                Err(e) => refused.push(format!("{id}: {e}")),
            }
        }
        if refused.is_empty() {
            Err(RepoError::WrongPassphrase)
        } else {
            Err(RepoError::Invalid(format!(
                "no key file opens with this passphrase; refused: {}",
                refused.join("; ")
            )))
        }
    }

    /// Whether `keys` open this store's sealed values: a few refs, the
    /// sealed store HEAD and a pack index are tried, and one that opens is
    /// enough (a damaged ref
    /// must not make the right key look wrong); an empty repository has
    /// nothing to try, and any key fits it.
    fn key_fits(&self, keys: &Arc<RepoKeys>) -> Result<bool> {
        let probe = self.clone().with_keys(keys.clone());
        let storage = self.storage();
        let mut tried = false;
        for key in storage.list("refs/")?.into_iter().take(3) {
            let bytes = match storage.get(&key) {
                Ok(b) => b,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            tried = true;
            if probe.decode_ref(&key, &bytes).is_ok() {
                return Ok(true);
            }
        }
        // A sealed store HEAD (written by init), or in a local repository
        // its sealed copy `check`: what a store without refs or packs yet
        // can check a key against.
        for key in ["HEAD", crate::store::KEY_CHECK] {
            match storage.get(key) {
                Ok(b) if crate::store::is_sealed_head(&b) => {
                    tried = true;
                    if crate::store::open_store_head(keys, &b).is_ok() {
                        return Ok(true);
                    }
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(pack) = crate::odb::indexed_packs(storage.as_ref())?
            .into_iter()
            .next()
        {
            // Read before the key is known good: bounded like any index
            // (one larger than its pack can need is tried, and not opened).
            let bound = crate::odb::index_bound(storage.as_ref(), &pack)?;
            let key = crate::odb::idx_key(&pack);
            match crate::odb::read_pack_index(
                storage.as_ref(),
                &probe.codec(),
                &key,
                pack,
                bound,
                None,
            ) {
                Ok(_) => return Ok(true),
                Err(RepoError::Storage(e)) if e.is_not_found() => {}
                Err(e @ RepoError::Storage(_)) => return Err(e),
                Err(_) => tried = true,
            }
        }
        Ok(!tried)
    }

    /// Opens this store (another copy of the same repository: a remote)
    /// with the keys `other` was opened with, if they open what this
    /// store holds. A plain store is returned as it is.
    pub fn unlock_like(self, other: &Store) -> Result<Store> {
        if !self.is_encrypted() {
            return Ok(self);
        }
        let Some(keys) = other.keys.clone() else {
            return Err(RepoError::Invalid(format!(
                "{} is encrypted and this repository is not: it is another repository, not a copy of this one",
                self.storage().describe()
            )));
        };
        if !self.key_fits(&keys)? {
            return Err(RepoError::Invalid(format!(
                "{} is encrypted with another key than this repository's: it is not a copy of it",
                self.storage().describe()
            )));
        }
        Ok(self.with_keys(keys))
    }

    /// The id of the key file this store was opened with.
    pub fn unlocked_key_id(&self) -> Option<&str> {
        self.unlocked.as_deref().map(|u| u.key_id.as_str())
    }

    /// Runs `f` holding the store's key lock (`locks/keys`, taken by a
    /// create-if-absent write, so two clients of one store never change key
    /// files at once; a lock older than 10 minutes was left by a crash and
    /// is taken over).
    fn with_key_lock<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        const LOCK: &str = "locks/keys";
        let storage = self.storage();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mine = format!("{} {now}\n", std::process::id()).into_bytes();
        match storage.compare_and_swap(LOCK, None, Some(&mine))? {
            mediagit_storage::CasOutcome::Swapped => {}
            mediagit_storage::CasOutcome::Conflict { actual } => {
                let held_since = actual
                    .as_deref()
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|t| t.split_whitespace().nth(1))
                    .and_then(|t| t.parse::<u64>().ok());
                let stale = held_since.is_some_and(|t| now.saturating_sub(t) > 600);
                if !stale
                    || storage.compare_and_swap(LOCK, actual.as_deref(), Some(&mine))?
                        != mediagit_storage::CasOutcome::Swapped
                {
                    return Err(RepoError::Invalid(
                        "another client is changing this repository's keys (locks/keys); try again in a moment".into(),
                    ));
                }
            }
        }
        let r = f();
        let _ = storage.compare_and_swap(LOCK, Some(&mine), None);
        r
    }

    fn unlocked(&self) -> Result<&Unlocked> {
        self.unlocked
            .as_deref()
            .ok_or_else(|| RepoError::NeedsPassphrase {
                store: self.storage().describe(),
            })
    }

    /// The key files, oldest first.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let current = self.unlocked().ok().map(|u| u.key_id.clone());
        let mut out: Vec<KeyInfo> = self
            .key_files()?
            .into_iter()
            .filter_map(|(id, f)| {
                let f = f.ok()?;
                Some(KeyInfo {
                    current: current.as_deref() == Some(id.as_str()),
                    id,
                    created: f.created,
                    label: f.label,
                    memory_kib: f.params.m_cost_kib,
                    passes: f.params.t_cost,
                    lanes: f.params.p_cost,
                })
            })
            .collect();
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(out)
    }

    /// Adds a passphrase: a new key file wrapping the master key. Returns
    /// its id.
    pub fn add_key(&self, k: &NewKey<'_>) -> Result<String> {
        let u = self.unlocked()?;
        let (id, bytes) = new_key_file(&u.master, k)?;
        self.storage().put(&key_key(&id), &bytes)?;
        Ok(id)
    }

    /// The id of the key file whose id is `id` or starts with it (at
    /// least 8 hex digits), refusing an ambiguous prefix.
    fn find_key(ids: &[String], id: &str) -> Result<String> {
        let found: Vec<&String> = ids
            .iter()
            .filter(|i| i.len() == 64 && i.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|i| *i == id || (id.len() >= 8 && i.starts_with(id)))
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(RepoError::KeyNotFound { id: id.into() }),
            _ => Err(RepoError::Invalid(format!(
                "key id {id} is ambiguous: {} key files start with it",
                found.len()
            ))),
        }
    }

    /// The ids of the key files in the store (their names; nothing is
    /// downloaded).
    fn key_ids(&self) -> Result<Vec<String>> {
        Ok(self
            .storage()
            .list(KEYS_PREFIX)?
            .into_iter()
            .map(|k| k[KEYS_PREFIX.len()..].to_string())
            .collect())
    }

    /// Removes the key file `id` (or a unique prefix of at least 8
    /// digits). The key this command was opened with is never removed (the one
    /// key known to open the repository stays): `key passwd` replaces it.
    /// So neither the last key, nor (under the store's key lock) the last
    /// two from two clients at once, can go.
    pub fn remove_key(&self, id: &str) -> Result<String> {
        let current = self.unlocked()?.key_id.clone();
        self.with_key_lock(|| {
            let ids = self.key_ids()?;
            let id = Store::find_key(&ids, id)?;
            if !ids.contains(&current) {
                return Err(RepoError::Invalid(
                    "the key this command was opened with was removed meanwhile; open the repository with another passphrase".into(),
                ));
            }
            if id == current {
                return Err(RepoError::LastKey { id });
            }
            self.storage().delete(&key_key(&id))?;
            Ok(id)
        })
    }

    /// Changes the passphrase of the key file this command was opened
    /// with: a new key file first, then the old one removed (a crash in
    /// between leaves both, never none). Returns the new id.
    pub fn change_passphrase(&self, k: &NewKey<'_>) -> Result<String> {
        let old = self.unlocked()?.key_id.clone();
        self.with_key_lock(|| {
            let new = self.add_key(k)?;
            if new != old {
                self.storage().delete(&key_key(&old))?;
            }
            Ok(new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap key file re-labelled with other Argon2 parameters (as a
    /// hostile store could plant: it decodes, and never opens).
    fn with_cost(m_cost_kib: u32, t_cost: u32) -> KeyFile {
        let master = MasterKey::from_bytes([1; 32]);
        let k = KeyFile::create(&master, b"pw", KdfParams::MIN, 0, "").unwrap();
        let mut b = k.encode();
        b[12..16].copy_from_slice(&m_cost_kib.to_le_bytes());
        b[16..20].copy_from_slice(&t_cost.to_le_bytes());
        KeyFile::decode(&b).unwrap()
    }

    #[test]
    fn planted_costly_key_files_are_tried_last() {
        let max = KdfParams::MAX;
        let mut files: KeyFiles = vec![
            ("planted".into(), Ok(with_cost(max.m_cost_kib, max.t_cost))),
            ("real".into(), Ok(with_cost(128 * 1024, 4))),
            ("broken".into(), Err(CryptoError::WrongPassphrase)),
            ("cheap".into(), Ok(with_cost(19 * 1024, 2))),
        ];
        unlock_order(&mut files, None);
        let ids: Vec<&str> = files.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["broken", "cheap", "real", "planted"]);
        unlock_order(&mut files, Some("planted"));
        assert_eq!(files[0].0, "planted", "the last-opened one goes first");
    }
}
