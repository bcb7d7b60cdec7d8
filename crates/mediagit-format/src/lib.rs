//! # mediagit-format
//!
//! The bytes MediaGit writes, and nothing else: object ids, the objects of the
//! version history (manifests, trees, commits, tags), the pack and pack-index
//! layouts, the worktree index file, the add journal and the repository
//! config.
//!
//! Why a crate of its own: everything a MediaGit process reads from disk or from
//! a bucket is untrusted input. Keeping the encoders and decoders here, free of
//! I/O, lets them be property-tested (encode → decode is the identity) and
//! fuzzed, and gives `docs/FORMAT.md` exactly one implementation to describe.
//! Every decoder checks a version field and refuses versions it does not know.

pub mod config;
pub mod error;
pub mod id;
pub mod index;
pub mod journal;
pub mod limits;
pub mod object;
pub mod pack;

pub use config::RepoConfig;
pub use error::FormatError;
pub use id::ObjectId;
pub use object::{
    Commit, EntryKind, Manifest, ManifestChunk, ObjectKind, Signature, Tag, Tree, TreeEntry,
};
