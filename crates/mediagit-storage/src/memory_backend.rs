//! An in-memory backend, for tests.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use crate::backend::{validate_key, CasOutcome, Storage, StorageError};

#[derive(Default)]
pub struct MemoryBackend {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
    times: Mutex<BTreeMap<String, std::time::SystemTime>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn not_found(&self, key: &str) -> StorageError {
        StorageError::NotFound {
            backend: self.describe(),
            key: key.into(),
        }
    }
}

impl Storage for MemoryBackend {
    fn describe(&self) -> String {
        "memory backend".into()
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        self.lock().insert(key.into(), data.to_vec());
        self.times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.into(), std::time::SystemTime::now());
        Ok(())
    }
    fn put_file(&self, key: &str, file: &Path) -> Result<(), StorageError> {
        validate_key(key)?;
        let data = std::fs::read(file).map_err(|source| StorageError::Io {
            backend: self.describe(),
            op: "read local file for",
            key: key.into(),
            source,
        })?;
        let _ = std::fs::remove_file(file);
        self.put(key, &data)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        self.lock()
            .get(key)
            .cloned()
            .ok_or_else(|| self.not_found(key))
    }
    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        let map = self.lock();
        let v = map.get(key).ok_or_else(|| self.not_found(key))?;
        let end = offset.checked_add(buf.len() as u64);
        match end {
            Some(end) if end <= v.len() as u64 => {
                buf.copy_from_slice(&v[offset as usize..end as usize]);
                Ok(())
            }
            _ => Err(StorageError::ShortRead {
                backend: self.describe(),
                key: key.into(),
                offset,
                len: buf.len(),
                size: v.len() as u64,
            }),
        }
    }
    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        validate_key(key)?;
        Ok(self.lock().get(key).map(|v| v.len() as u64))
    }
    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StorageError> {
        validate_key(key)?;
        if !self.lock().contains_key(key) {
            return Ok(None);
        }
        Ok(self
            .times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .lock()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }
    fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        self.lock().remove(key);
        Ok(())
    }
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome, StorageError> {
        validate_key(key)?;
        let mut map = self.lock();
        let actual = map.get(key).map(|v| v.as_slice());
        if actual != expected {
            return Ok(CasOutcome::Conflict {
                actual: actual.map(|a| a.to_vec()),
            });
        }
        match new {
            Some(n) => map.insert(key.into(), n.to_vec()),
            None => map.remove(key),
        };
        self.times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.into(), std::time::SystemTime::now());
        Ok(CasOutcome::Swapped)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        crate::conformance::run_all(&super::MemoryBackend::new());
    }
}
