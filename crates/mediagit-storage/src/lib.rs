//! # mediagit-storage
//!
//! Storage as dumb bytes-by-key. The repository above decides what the bytes
//! mean; a backend only moves them. Almost everything a repository stores is
//! immutable and content-addressed (packs, pack indexes), so a backend needs
//! put/get/ranged get/list/delete, plus one compare-and-swap for the few
//! mutable keys (refs). Keeping the trait this small is what lets the same
//! repository live on a local disk, in memory for tests, or in an object
//! store (S3 and S3-compatible, Azure Blob, GCS, B2, through OpenDAL) where
//! compare-and-swap is a conditional write.
//!
//! Every backend must pass [`conformance::run_all`].

pub mod backend;
pub mod cache_backend;
pub mod conformance;
pub mod local_backend;
pub mod memory_backend;
pub mod object_lock;
pub mod object_store_backend;
pub mod permissions;
pub mod redact;

pub use backend::{
    validate_key, validate_prefix, CasOutcome, ListedKey, RemoteErrorKind, Storage, StorageError,
    StoreLocation,
};
pub use cache_backend::CacheBackend;
pub use local_backend::LocalBackend;
pub use memory_backend::MemoryBackend;
pub use object_lock::{LockMode, ObjectLock};
pub use object_store_backend::{
    data_versions, first_of_rewritten, Cloud, CloudEnv, ConnectOptions, KeyVersion,
    ObjectStoreBackend, ObjectStoreSpec,
};
pub use redact::{redact, Secrets};
