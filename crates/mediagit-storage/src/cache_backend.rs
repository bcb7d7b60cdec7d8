//! A local read cache for small immutable objects of a remote store.
//!
//! Every command loads every pack index (`packs/<id>.idx`): on an object
//! store that is one GET per pack per command. Pack indexes are named by
//! their pack's content and never change (a repair rewrites a damaged one
//! with the same bytes a sound one would have), so they can be kept in a
//! local directory (`.mediagit/cache/`) and read from there. The cache is
//! only an optimisation: whatever it returns is verified by the reader
//! exactly like bytes from the store (the pack index has a SHA-256 trailer),
//! and it is safe to delete at any time.
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::backend::{validate_key, CasOutcome, Storage, StorageError};

pub struct CacheBackend {
    inner: Arc<dyn Storage>,
    dir: PathBuf,
    /// Which keys are immutable and worth caching.
    cacheable: fn(&str) -> bool,
}

impl CacheBackend {
    /// Caches the keys `cacheable` accepts under `dir`.
    pub fn new(
        inner: Arc<dyn Storage>,
        dir: impl Into<PathBuf>,
        cacheable: fn(&str) -> bool,
    ) -> Self {
        CacheBackend {
            inner,
            dir: dir.into(),
            cacheable,
        }
    }

    fn cache_path(&self, key: &str) -> Option<PathBuf> {
        (self.cacheable)(key).then(|| self.dir.join(key))
    }

    /// Stores a copy; failures only cost a later re-download.
    fn remember(&self, path: &Path, data: &[u8]) {
        let Some(parent) = path.parent() else { return };
        if fs::create_dir_all(parent).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::Builder::new()
            .prefix(".cache-")
            .tempfile_in(parent)
        {
            if std::io::Write::write_all(&mut tmp, data).is_ok() {
                let _ = tmp.persist(path);
            }
        }
    }

    /// Drops cached copies of keys under `prefix` that the store no longer
    /// lists (another machine's `gc` deleted them), so the cache does not grow
    /// without bound. Only whole `/`-ended prefixes are pruned.
    fn prune(&self, prefix: &str, listed: &[String]) {
        if !prefix.is_empty() && !prefix.ends_with('/') {
            return;
        }
        let dir = self.dir.join(prefix.trim_end_matches('/'));
        let Ok(rd) = fs::read_dir(&dir) else { return };
        let listed: std::collections::HashSet<&str> = listed.iter().map(String::as_str).collect();
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let key = format!("{prefix}{name}");
            if (self.cacheable)(&key) && !listed.contains(key.as_str()) && e.path().is_file() {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    fn forget(&self, key: &str) {
        if let Some(p) = self.cache_path(key) {
            let _ = fs::remove_file(p);
        }
    }
}

impl Storage for CacheBackend {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.forget(key);
        self.inner.put(key, data)?;
        if let Some(p) = self.cache_path(key) {
            self.remember(&p, data);
        }
        Ok(())
    }

    fn put_file(&self, key: &str, file: &Path) -> Result<(), StorageError> {
        self.forget(key);
        let copy = match self.cache_path(key) {
            Some(_) => fs::read(file).ok(),
            None => None,
        };
        self.inner.put_file(key, file)?;
        if let (Some(p), Some(data)) = (self.cache_path(key), copy) {
            self.remember(&p, &data);
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        let Some(p) = self.cache_path(key) else {
            return self.inner.get(key);
        };
        if let Ok(data) = fs::read(&p) {
            return Ok(data);
        }
        let data = self.inner.get(key)?;
        self.remember(&p, &data);
        Ok(data)
    }

    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.inner.read_at(key, offset, buf)
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        self.inner.size(key)
    }

    fn modified(&self, key: &str) -> Result<Option<SystemTime>, StorageError> {
        self.inner.modified(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let keys = self.inner.list(prefix)?;
        self.prune(prefix, &keys);
        Ok(keys)
    }

    fn list_meta(&self, prefix: &str) -> Result<Vec<crate::ListedKey>, StorageError> {
        let listed = self.inner.list_meta(prefix)?;
        let keys: Vec<String> = listed.iter().map(|l| l.key.clone()).collect();
        self.prune(prefix, &keys);
        Ok(listed)
    }

    fn first_key(&self, prefix: &str) -> Result<Option<String>, StorageError> {
        self.inner.first_key(prefix)
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
    fn conditional_writes_probe(&self) -> Option<Result<bool, StorageError>> {
        self.inner.conditional_writes_probe()
    }

    fn location(&self) -> Option<crate::StoreLocation> {
        self.inner.location()
    }

    fn copy_in(
        &self,
        from: &crate::StoreLocation,
        src_key: &str,
        key: &str,
        if_match: &str,
    ) -> Result<bool, StorageError> {
        self.forget(key);
        self.inner.copy_in(from, src_key, key, if_match)
    }

    fn etag(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.inner.etag(key)
    }

    fn list_versions(
        &self,
        prefix: &str,
    ) -> Result<Option<Vec<(String, crate::KeyVersion)>>, StorageError> {
        self.inner.list_versions(prefix)
    }

    fn object_lock(&self) -> Result<Option<crate::ObjectLock>, StorageError> {
        self.inner.object_lock()
    }

    fn set_object_lock(&self, mode: crate::LockMode, days: u32) -> Result<(), StorageError> {
        self.inner.set_object_lock(mode, days)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.forget(key);
        self.inner.delete(key)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome, StorageError> {
        self.forget(key);
        self.inner.compare_and_swap(key, expected, new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    #[test]
    fn conformance_and_cache_hits() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Storage> = Arc::new(MemoryBackend::new());
        let all = |_: &str| true;
        crate::conformance::run_all(&CacheBackend::new(inner.clone(), dir.path(), all));

        let idx = |k: &str| k.ends_with(".idx");
        let c = CacheBackend::new(inner.clone(), dir.path().join("c"), idx);
        c.put("packs/a.idx", b"index").unwrap();
        // Served from the cache even when the store lost it...
        inner.delete("packs/a.idx").unwrap();
        assert_eq!(c.get("packs/a.idx").unwrap(), b"index");
        // ...and a delete through the cache forgets it.
        c.delete("packs/a.idx").unwrap();
        assert!(c.get("packs/a.idx").unwrap_err().is_not_found());
        // A copy whose key the store no longer lists is dropped on listing.
        c.put("packs/b.idx", b"index b").unwrap();
        inner.delete("packs/b.idx").unwrap();
        assert!(dir.path().join("c/packs/b.idx").exists());
        assert!(c.list("packs/").unwrap().is_empty());
        assert!(!dir.path().join("c/packs/b.idx").exists(), "pruned");
        // Other keys always come from the store.
        c.put("refs/heads/main", b"1").unwrap();
        inner.put("refs/heads/main", b"2").unwrap();
        assert_eq!(c.get("refs/heads/main").unwrap(), b"2");
    }
}
