//! Errors of the repository layer: one variant per thing a user can get
//! wrong or a disk can do, each naming the file, revision or object.
use std::path::PathBuf;

use mediagit_format::{FormatError, ObjectId};
use mediagit_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("not a mediagit repository (or any parent up to /): {}", path.display())]
    NotARepository { path: PathBuf },
    #[error("a mediagit repository already exists at {}", path.display())]
    AlreadyExists { path: PathBuf },
    #[error("{store} holds no MediaGit repository (no config.toml there){}", if found.is_empty() { String::new() } else { format!("; it holds other objects, e.g. {found:?}") })]
    NotAStore { store: String, found: String },
    #[error("{store} already holds a MediaGit repository")]
    StoreHasRepository { store: String },
    #[error("{store} is not empty (it holds {found:?}, which is not a MediaGit repository); refusing to mix a repository into it")]
    StoreNotEmpty { store: String, found: String },
    #[error("the repository is locked by another mediagit process ({holder}); lock file {}", path.display())]
    Locked { path: PathBuf, holder: String },
    #[error("unknown revision {rev:?}")]
    UnknownRevision { rev: String },
    #[error("ambiguous revision {rev:?}: matches {}", candidates.join(", "))]
    AmbiguousRevision {
        rev: String,
        candidates: Vec<String>,
    },
    #[error("{rev:?} has no parent {n}")]
    NoSuchParent { rev: String, n: usize },
    #[error("path {} is outside the repository at {}", path.display(), root.display())]
    PathOutsideRepo { path: PathBuf, root: PathBuf },
    #[error("pathspec {path:?} did not match any {what}")]
    PathspecNoMatch { path: String, what: &'static str },
    #[error("path {path:?} does not exist in {rev}")]
    PathNotInRevision { path: String, rev: String },
    #[error("{path:?} is a directory, not a file, in {rev}")]
    NotAFile { path: String, rev: String },
    #[error("{} changed while it was being read (its size or modification time moved, or it was replaced: by another file, a symlink, a directory or a special file); nothing was staged, try again", path.display())]
    FileChanged { path: PathBuf },
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file name {} is not valid UTF-8; mediagit stores UTF-8 paths only", path.display())]
    NonUtf8Path { path: PathBuf },
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// `gc` refuses to run while something it must read is unreadable
    /// (it could otherwise delete the last copy of what it cannot see).
    #[error("gc will not run while {what}")]
    GcBlocked { what: String },
    #[error("{what}: {source}")]
    Format {
        what: String,
        #[source]
        source: FormatError,
    },
    #[error("corrupt {kind} object {id} ({location}): {reason}")]
    CorruptObject {
        id: ObjectId,
        kind: &'static str,
        location: String,
        reason: String,
    },
    #[error("missing {kind} object {id}{}", context.as_deref().map(|c| format!(" (needed by {c})")).unwrap_or_default())]
    MissingObject {
        id: ObjectId,
        kind: &'static str,
        context: Option<String>,
    },
    #[error("object {id} is a {actual}, not a {expected}")]
    WrongKind {
        id: ObjectId,
        expected: &'static str,
        actual: &'static str,
    },
    #[error("nothing to commit: the index matches HEAD")]
    NothingToCommit,
    #[error("{} path(s) have unresolved merge conflicts ({})", paths.len(), some_paths(paths))]
    UnresolvedConflicts { paths: Vec<String> },
    #[error("nothing was committed: the worktree index's record of {} file(s) disagrees with the stored file (size or content id): {}", paths.len(), some_paths(paths))]
    IndexDisagrees { paths: Vec<String> },
    #[error("no author identity: none given, none in the environment, and no [author] name and email in the repository's or your settings")]
    MissingIdentity,
    #[error("invalid author {0:?}: expected \"Name <email>\"")]
    BadAuthor(String),
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidRefName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("cannot create {what} {name:?}: it clashes with the existing {what} {other:?} (a name cannot be both a {what} and a folder of {what}es)")]
    RefClash {
        what: &'static str,
        name: String,
        other: String,
    },
    #[error("a branch named {0:?} already exists")]
    BranchExists(String),
    #[error("branch {0:?} not found")]
    BranchNotFound(String),
    #[error("branch {branch:?} is not fully merged into {into}")]
    BranchNotMerged { branch: String, into: String },
    #[error("cannot delete branch {0:?}: it is checked out")]
    DeleteCurrentBranch(String),
    #[error("a tag named {0:?} already exists")]
    TagExists(String),
    #[error("tag {0:?} not found")]
    TagNotFound(String),
    #[error("your current branch {0:?} does not have any commits yet")]
    UnbornBranch(String),
    #[error("files locked by others would change on {remote}; nothing was pushed:\n  {}", files.iter().map(|(p, o)| format!("{p} (locked by {o})")).collect::<Vec<_>>().join("\n  "))]
    PushLocked {
        remote: String,
        /// (path, owner of its lock)
        files: Vec<(String, String)>,
    },
    #[error("media records {bucket} are version {version} (this build reads version 1): written by a later mediagit; upgrade mediagit")]
    NewerRecords { bucket: String, version: u32 },
    #[error("ref {name} was changed by another process (expected {expected}, found {found}); nothing was updated, try again")]
    RefRace {
        name: String,
        expected: String,
        found: String,
    },
    #[error("your local changes to these files would be overwritten: {}; nothing was changed", paths.join(", "))]
    WouldOverwriteChanges { paths: Vec<String> },
    #[error("untracked files would be overwritten: {}; nothing was changed", paths.join(", "))]
    WouldOverwriteUntracked { paths: Vec<String> },
    #[error(
        "staged changes would be lost or committed by mistake: {}; nothing was changed",
        some_paths(paths)
    )]
    StagedChanges { paths: Vec<String> },
    #[error("a {op} is in progress in this working tree")]
    OperationInProgress { op: &'static str },
    #[error("no {op} is in progress")]
    NoOperation { op: String },
    #[error("not possible to fast-forward {what}")]
    NotFastForward { what: String },
    #[error("{path:?} is not a conflicted path")]
    NotConflicted { path: String },
    #[error("not enough space on the disk holding {}: the files to write need {need} bytes, {available} are free; nothing was changed", path.display())]
    NoSpace {
        path: PathBuf,
        need: u64,
        available: u64,
    },
    #[error("local modifications in {}; nothing was removed", paths.join(", "))]
    RmLocalChanges { paths: Vec<String> },
    #[error("not removing {0:?} recursively without -r")]
    RmNeedsRecursive(String),
    #[error("cannot move {src:?} to {dst:?}: {reason}")]
    BadMove {
        src: String,
        dst: String,
        reason: String,
    },
    #[error("{path:?} is beyond a symbolic link: {link:?} is a symlink, and following it would leave the working tree")]
    BeyondSymlink { path: String, link: String },
    #[error("nothing was committed: the store no longer holds objects that {} staged file(s) need ({}); another working tree's `gc` removed them after they were staged", paths.len(), some_paths(paths))]
    StagedObjectsGone { paths: Vec<String> },
    #[error("refusing to use the repository at {}: it is owned by {owner} (uid {uid}), not by you, and its settings would decide where your credentials are sent", path.display())]
    UnsafeRepository {
        path: PathBuf,
        owner: String,
        uid: u32,
    },
    #[error("refusing to use the repository at {}: {} is not yours alone ({why}), so someone else could plant files there that MediaGit would read or write as you", path.display(), folder.display())]
    UnsafeRepositoryMode {
        path: PathBuf,
        folder: PathBuf,
        why: String,
    },
    #[error("this operation needs a working tree, but the repository is bare")]
    Bare,
    /// A bare local repository whose HEAD is a sealed store HEAD (made
    /// through a server): read through the store, with the key.
    #[error("{path}: HEAD is sealed (an encrypted repository's store HEAD); it is read with the repository's key")]
    SealedHead { path: PathBuf },
    /// A ref whose stored value cannot be read (unsealed: does not parse;
    /// sealed: does not open).
    #[error("damaged ref {key} in {store}: {reason}")]
    CorruptRef {
        key: String,
        store: String,
        reason: String,
    },
    /// An encrypted repository opened without a passphrase.
    #[error("{store} is encrypted: a passphrase is needed to read it")]
    NeedsPassphrase { store: String },
    #[error("wrong passphrase: no key of this repository opens with it")]
    WrongPassphrase,
    #[error("no key file {id} in this repository")]
    KeyNotFound { id: String },
    #[error(
        "key {id} is the one this command was opened with: removing it could lock everyone out"
    )]
    LastKey { id: String },
    #[error("this operation needs a working tree's local state (HEAD, the index), but the repository was opened from its store alone")]
    NoWorkspace,
    /// Stopped on request (Ctrl-C). What was stored is kept: an `add`
    /// run again continues from there (see `add_journal.rs`).
    #[error("interrupted: {files_kept} file(s) whole and {bytes_kept} bytes of packs stored so far are kept; nothing was staged")]
    Interrupted {
        files_kept: u64,
        bytes_kept: u64,
        /// The add journal was written: a next add continues from here.
        resumable: bool,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The first five of `paths`, and how many more there are.
fn some_paths(paths: &[String]) -> String {
    let mut s = paths.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if paths.len() > 5 {
        s.push_str(&format!(" and {} more", paths.len() - 5));
    }
    s
}

impl RepoError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> RepoError {
        RepoError::Io {
            op,
            path: path.into(),
            source,
        }
    }
    pub fn format(what: impl Into<String>, source: FormatError) -> RepoError {
        RepoError::Format {
            what: what.into(),
            source,
        }
    }

    /// A short, stable name for the kind of error, for scripts (`--json`
    /// errors carry it; docs/CLI.md lists every one). Never changes once
    /// released; new kinds get new codes.
    pub fn code(&self) -> &'static str {
        use mediagit_storage::RemoteErrorKind as K;
        match self {
            RepoError::NotARepository { .. } => "not-a-repository",
            RepoError::AlreadyExists { .. } => "already-exists",
            RepoError::NotAStore { .. } => "not-a-store",
            RepoError::StoreHasRepository { .. } => "store-has-repository",
            RepoError::StoreNotEmpty { .. } => "store-not-empty",
            RepoError::Locked { .. } => "locked",
            RepoError::UnknownRevision { .. } => "unknown-revision",
            RepoError::AmbiguousRevision { .. } => "ambiguous-revision",
            RepoError::NoSuchParent { .. } => "no-such-parent",
            RepoError::PathOutsideRepo { .. } => "path-outside-repository",
            RepoError::PathspecNoMatch { .. } => "pathspec-no-match",
            RepoError::PathNotInRevision { .. } => "path-not-in-revision",
            RepoError::NotAFile { .. } => "not-a-file",
            RepoError::FileChanged { .. } => "file-changed-while-read",
            RepoError::Io { source, .. } | RepoError::Storage(StorageError::Io { source, .. })
                if source.raw_os_error() == Some(28)
                    || source.kind() == std::io::ErrorKind::StorageFull =>
            {
                "disk-full"
            }
            RepoError::Io { .. } => "io",
            RepoError::NonUtf8Path { .. } => "non-utf8-path",
            RepoError::Storage(StorageError::Remote { kind, .. }) => match kind {
                K::PermissionDenied => "store-permission-denied",
                K::NoCredentials => "store-no-credentials",
                K::NoSuchBucket => "store-no-such-bucket",
                K::Unavailable => "store-unavailable",
                K::Throttled => "store-throttled",
                K::Config => "store-config",
                K::Unsupported => "store-unsupported",
                K::Other => "store-error",
            },
            RepoError::Storage(StorageError::NotFound { .. }) => "missing-object",
            RepoError::Storage(StorageError::Io { .. }) => "io",
            RepoError::Storage(_) => "store-error",
            RepoError::GcBlocked { .. } => "gc-blocked",
            RepoError::Format { .. } => "bad-format",
            RepoError::CorruptObject { .. }
            | RepoError::WrongKind { .. }
            | RepoError::CorruptRef { .. } => "corrupt-object",
            RepoError::MissingObject { .. } => "missing-object",
            RepoError::NothingToCommit => "nothing-to-commit",
            RepoError::UnresolvedConflicts { .. } => "unresolved-conflicts",
            RepoError::IndexDisagrees { .. } => "index-disagrees",
            RepoError::MissingIdentity => "missing-identity",
            RepoError::BadAuthor(_) => "bad-author",
            RepoError::InvalidRefName { .. } => "invalid-ref-name",
            RepoError::RefClash { .. } => "ref-clash",
            RepoError::BranchExists(_) => "branch-exists",
            RepoError::BranchNotFound(_) => "branch-not-found",
            RepoError::BranchNotMerged { .. } => "branch-not-merged",
            RepoError::DeleteCurrentBranch(_) => "delete-current-branch",
            RepoError::TagExists(_) => "tag-exists",
            RepoError::TagNotFound(_) => "tag-not-found",
            RepoError::UnbornBranch(_) => "unborn-branch",
            RepoError::RefRace { .. } => "ref-moved",
            RepoError::NewerRecords { .. } => "bad-format",
            RepoError::PushLocked { .. } => "push-locked",
            RepoError::WouldOverwriteChanges { .. } => "would-overwrite-changes",
            RepoError::WouldOverwriteUntracked { .. } => "would-overwrite-untracked",
            RepoError::StagedChanges { .. } => "staged-changes",
            RepoError::OperationInProgress { .. } => "operation-in-progress",
            RepoError::NoOperation { .. } => "no-operation",
            RepoError::NotFastForward { .. } => "not-fast-forward",
            RepoError::NotConflicted { .. } => "not-conflicted",
            RepoError::NoSpace { .. } => "disk-full",
            RepoError::RmLocalChanges { .. } => "rm-local-changes",
            RepoError::RmNeedsRecursive(_) => "rm-needs-recursive",
            RepoError::BadMove { .. } => "bad-move",
            RepoError::BeyondSymlink { .. } => "beyond-symlink",
            RepoError::StagedObjectsGone { .. } => "staged-objects-gone",
            RepoError::UnsafeRepository { .. } | RepoError::UnsafeRepositoryMode { .. } => {
                "unsafe-repository"
            }
            RepoError::Bare => "bare-repository",
            RepoError::SealedHead { .. } => "sealed-head",
            RepoError::NeedsPassphrase { .. } => "needs-passphrase",
            RepoError::WrongPassphrase => "wrong-passphrase",
            RepoError::KeyNotFound { .. } => "key-not-found",
            RepoError::LastKey { .. } => "last-key",
            RepoError::NoWorkspace => "no-working-tree",
            RepoError::Interrupted { .. } => "interrupted",
            RepoError::Invalid(_) => "invalid",
        }
    }
}

pub type Result<T, E = RepoError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_path_lists_say_how_many_more() {
        let paths: Vec<String> = (1..=7).map(|i| format!("x{i}.bin")).collect();
        let e = RepoError::StagedObjectsGone { paths }.to_string();
        assert!(
            e.contains("7 staged file(s) need (x1.bin, x2.bin, x3.bin, x4.bin, x5.bin and 2 more)"),
            "{e}"
        );
        let e = RepoError::UnresolvedConflicts {
            paths: vec!["a".into()],
        }
        .to_string();
        assert!(e.ends_with("(a)"), "{e}");
    }
}
