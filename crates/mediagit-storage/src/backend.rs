//! The storage trait.
use std::path::Path;

/// Errors of the storage layer. Each names the backend and the key.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{backend}: object {key:?} not found")]
    NotFound { backend: String, key: String },
    #[error("{backend}: {op} {key:?} failed: {source}")]
    Io {
        backend: String,
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{backend}: read of {key:?} at {offset}+{len} is past the end ({size} bytes)")]
    ShortRead {
        backend: String,
        key: String,
        offset: u64,
        len: usize,
        size: u64,
    },
    /// An object store refused or failed a request (after retries).
    #[error("{backend}: {op}{} failed: {message}", if key.is_empty() { String::new() } else { format!(" {key:?}") })]
    Remote {
        backend: String,
        op: &'static str,
        key: String,
        kind: RemoteErrorKind,
        message: String,
    },
    #[error("invalid storage key {key:?}: {reason}")]
    BadKey { key: String, reason: &'static str },
    #[error("{backend}: {key:?} is larger than any value it may hold ({max} bytes); not read")]
    TooLarge {
        backend: String,
        key: String,
        max: u64,
    },
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

/// Why an object store request failed; the CLI picks its hint from this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteErrorKind {
    /// Credentials wrong or without permission.
    PermissionDenied,
    /// No credentials found in the environment or the credential files.
    NoCredentials,
    /// The bucket or container does not exist.
    NoSuchBucket,
    /// Unreachable endpoint, timeouts, 5xx: still failing after retries.
    Unavailable,
    Throttled,
    /// The configuration cannot work (missing region, account, key...).
    Config,
    Unsupported,
    Other,
}

/// Where an object store keeps its keys ([`Storage::location`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    /// "s3".
    pub service: &'static str,
    /// The endpoint requests go to.
    pub endpoint: String,
    pub bucket: String,
    /// The store's key prefix inside the bucket (no leading or trailing `/`).
    pub prefix: String,
}

/// One key of [`Storage::list_meta`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedKey {
    pub key: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// Result of [`Storage::compare_and_swap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    Swapped,
    /// The key did not hold the expected value; this is what it holds.
    Conflict {
        actual: Option<Vec<u8>>,
    },
}

/// Moves opaque bytes by key. Keys are relative, `/`-separated names such as
/// `packs/<hex>.pack` or `refs/heads/main`.
pub trait Storage: Send + Sync {
    /// Human-readable location, used in error messages ("local filesystem at ...").
    fn describe(&self) -> String;
    /// Stores `data` under `key`. Readers see the whole object or nothing.
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Stores the content of a local file under `key`, consuming the file
    /// (a local backend may rename it into place).
    fn put_file(&self, key: &str, file: &Path) -> Result<(), StorageError>;
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError>;
    /// [`Storage::get`] of a key that must be at most `max` bytes (a ref,
    /// HEAD): a larger one is an error ([`StorageError::TooLarge`]).
    /// Backends that can stop reading at `max + 1` bytes do (a local file
    /// planted as a ref may be gigabytes); the default reads it whole
    /// first, so a store that is not local costs no extra request.
    fn get_small(&self, key: &str, max: u64) -> Result<Vec<u8>, StorageError> {
        let v = self.get(key)?;
        if v.len() as u64 > max {
            return Err(StorageError::TooLarge {
                backend: self.describe(),
                key: key.to_string(),
                max,
            });
        }
        Ok(v)
    }
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<(), StorageError>;
    /// Size of the object, or `None` if absent.
    fn size(&self, key: &str) -> Result<Option<u64>, StorageError>;
    /// When the object was stored, or `None` if absent. Used for grace periods.
    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StorageError>;
    /// All keys starting with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// [`Storage::list`] with each key's size and time of storing, as
    /// [`Storage::size`] and [`Storage::modified`] would give them (times
    /// may be more precise). An object store answers this with its listing
    /// requests alone (S3, Azure and GCS listings carry both), instead of
    /// one HEAD request per key; the default asks per key.
    fn list_meta(&self, prefix: &str) -> Result<Vec<ListedKey>, StorageError> {
        let mut out = Vec::new();
        for key in self.list(prefix)? {
            // Deleted since the listing: not listed.
            let (Some(size), Some(modified)) = (self.size(&key)?, self.modified(&key)?) else {
                continue;
            };
            out.push(ListedKey {
                key,
                size,
                modified,
            });
        }
        Ok(out)
    }
    /// The local file holding `key`, for backends that have one (lets a local
    /// clone hard-link immutable packs instead of copying them).
    fn local_path(&self, _key: &str) -> Option<std::path::PathBuf> {
        None
    }
    /// Whether each request crosses a network (an object store): callers
    /// then write larger packs and keep more requests in flight. Decided by
    /// the backend, not by a setting, so a `Store` opened on any backend
    /// sizes its work right.
    fn is_remote(&self) -> bool {
        false
    }
    /// Some key starting with `prefix`, if there is one (an object store
    /// answers this with one short listing request, whatever the count).
    fn first_key(&self, prefix: &str) -> Result<Option<String>, StorageError> {
        Ok(self.list(prefix)?.into_iter().next())
    }
    /// For stores whose conditional writes may not be enforced (object
    /// stores): tests whether they are. `None`: always atomic (local, memory).
    fn conditional_writes_probe(&self) -> Option<Result<bool, StorageError>> {
        None
    }
    /// Where an object store keeps its keys, for server-side copies
    /// between two stores of one bucket ([`Storage::copy_in`]).
    fn location(&self) -> Option<StoreLocation> {
        None
    }
    /// Copies `src_key` of the store at `from` to `key` of this store
    /// inside the storage service, only if the source still has the
    /// content tag `if_match` ([`Storage::etag`]): no byte passes through
    /// this machine. `Ok(false)`: not done (another service or endpoint,
    /// the source changed, or the service refused or failed): copy the
    /// bytes instead.
    fn copy_in(
        &self,
        _from: &StoreLocation,
        _src_key: &str,
        _key: &str,
        _if_match: &str,
    ) -> Result<bool, StorageError> {
        Ok(false)
    }
    /// The service's content tag of `key` (an S3 ETag), where it has one.
    fn etag(&self, _key: &str) -> Result<Option<String>, StorageError> {
        Ok(None)
    }
    /// Every stored version of every key under `prefix`, delete markers
    /// included, on a store that keeps versions (an S3 bucket with
    /// versioning); `None` where the store keeps none or cannot say.
    fn list_versions(
        &self,
        _prefix: &str,
    ) -> Result<Option<Vec<(String, crate::KeyVersion)>>, StorageError> {
        Ok(None)
    }
    /// The bucket's S3 Object Lock configuration; `None` when the store
    /// has none or is not an S3 bucket.
    fn object_lock(&self) -> Result<Option<crate::ObjectLock>, StorageError> {
        Ok(None)
    }
    /// Turns on the bucket's default retention (S3 Object Lock, which the
    /// bucket must have had on since it was made): every object put into
    /// it from now on is locked for `days`.
    fn set_object_lock(&self, _mode: crate::LockMode, _days: u32) -> Result<(), StorageError> {
        Err(StorageError::Remote {
            backend: self.describe(),
            op: "set object lock",
            key: String::new(),
            kind: RemoteErrorKind::Unsupported,
            message: "S3 Object Lock needs an s3:// store".into(),
        })
    }
    /// Deletes `key`; deleting an absent key is not an error.
    fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Atomically replaces the value of `key` if it currently equals
    /// `expected` (`None` = absent). `new = None` deletes the key.
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome, StorageError>;
}

/// Keys are relative, `/`-separated, without empty, `.` or `..` components.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let bad = |reason| {
        Err(StorageError::BadKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.starts_with('/') || key.contains('\\') || key.contains('\0') {
        return bad("must be a relative /-separated name");
    }
    if key
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad("empty, '.' or '..' component");
    }
    Ok(())
}

/// A listing prefix is `""` or the start of a key: relative, no `\\` or
/// NUL, and no empty, `.` or `..` part (the part after the last `/` may be
/// empty or partial, but not `.` or `..`). A prefix that could climb out
/// of a store's root is refused before anything is listed.
pub fn validate_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let bad = |reason| {
        Err(StorageError::BadKey {
            key: prefix.chars().take(200).collect(),
            reason,
        })
    };
    if prefix.starts_with('/') || prefix.contains('\\') || prefix.contains('\0') {
        return bad("a listing prefix must be a relative /-separated name");
    }
    let parts: Vec<&str> = prefix.split('/').collect();
    let last = parts.len() - 1;
    for (i, p) in parts.iter().enumerate() {
        if *p == "." || *p == ".." || (p.is_empty() && i != last) {
            return bad("empty, '.' or '..' component in a listing prefix");
        }
    }
    Ok(())
}
