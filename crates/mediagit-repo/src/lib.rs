//! # mediagit-repo
//!
//! The MediaGit library: a repository of versioned media, stored as
//! content-defined chunks in packs.
//!
//! Why a library separate from the CLI: every command (add, commit, checkout,
//! log, ...) is a function here taking an options struct and returning data,
//! so it can be driven by the CLI, the server, or tests alike. The library
//! never prints and never reads `$HOME` or the environment; progress goes
//! through the [`progress::Progress`] trait and identity is passed in.
//!
//! Layout of the crate: [`store`] is what every copy of a repository
//! shares (objects, refs, the store's settings), usable without a working
//! tree and from many threads; [`codec`] names and encodes every object;
//! [`repo`] opens, creates and locks repositories (a store plus one working
//! tree's local state);
//! [`odb`] reads and writes packed objects with hash verification;
//! [`refs`] holds branches, tags, HEAD and the reflog; [`worktree`] the
//! index and the ignore-aware walk; [`ingest`] streams files into chunks;
//! the rest are commands.

pub mod add;
pub mod add_journal;
pub mod backup;
pub mod branch;
pub mod checkout;
pub mod clone;
pub mod codec;
pub mod commands;
pub mod commit;
pub mod error;
pub mod failpoint;
pub mod fsck;
pub mod gc;
pub mod history;
pub mod ingest;
pub mod keys;
pub mod lockable;
pub mod media;
pub mod media_merge;
pub mod merge;
pub mod odb;
pub mod progress;
pub mod reach;
pub mod refs;
pub mod remote;
pub mod repo;
pub mod reset;
pub mod revision;
pub mod sequencer;
pub mod stash;
pub mod stats;
pub mod status;
pub mod store;
pub mod transfer;
pub mod tree;
pub mod upgrade;
pub mod verify;
pub mod workspace;
pub mod worktree;

pub use error::{RepoError, Result};

/// Serializes a path as text, replacing what is not UTF-8 (a walk problem
/// may be about exactly such a name): JSON strings must be UTF-8.
pub(crate) fn serialize_path<S: serde::Serializer>(
    p: &std::path::Path,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

pub(crate) fn serialize_paths<S: serde::Serializer>(
    ps: &[std::path::PathBuf],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(ps.iter().map(|p| p.to_string_lossy()))
}
pub use repo::{InitOptions, Repository, SafeDirectories};
pub use store::Store;
pub use workspace::Workspace;
