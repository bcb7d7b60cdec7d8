//! Turning library errors into what a user reads: a message, a hint, an exit code.
use mediagit_repo::RepoError;
use mediagit_storage::{RemoteErrorKind, StorageError};

fn remote_hint(kind: RemoteErrorKind) -> &'static str {
    match kind {
        RemoteErrorKind::PermissionDenied => {
            "the store refused the credentials: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (S3), AZURE_STORAGE_ACCOUNT/AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING (Azure), GOOGLE_APPLICATION_CREDENTIALS (GCS), B2_APPLICATION_KEY_ID/B2_APPLICATION_KEY (B2)"
        }
        RemoteErrorKind::NoCredentials => {
            "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, ~/.aws/credentials) for S3, AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY (or AZURE_STORAGE_CONNECTION_STRING) for Azure, GOOGLE_APPLICATION_CREDENTIALS for GCS; they are never stored in .mediagit/config.toml"
        }
        RemoteErrorKind::NoSuchBucket => {
            "create the bucket (or container) first, or fix the name in the URL or in [storage] of .mediagit/config.toml"
        }
        RemoteErrorKind::Unavailable => {
            "the store did not answer (retried with backoff): check the endpoint, the network, and that the service is up; nothing was changed"
        }
        RemoteErrorKind::Throttled => "the store is throttling requests; wait a moment and run the command again",
        RemoteErrorKind::Config => "fix [storage] in .mediagit/config.toml or the environment variables named above",
        RemoteErrorKind::Unsupported => "this store lacks an operation MediaGit needs; see docs/BACKENDS.md",
        RemoteErrorKind::Other => "see docs/BACKENDS.md for what each store needs",
    }
}

/// An error as the user sees it: a message, maybe a hint, a stable kind
/// (for scripts: `--json` errors carry it) and the exit code.
pub struct CommandError {
    pub message: String,
    pub hint: Option<String>,
    /// Stable name of the kind of error (docs/CLI.md, "Error codes").
    pub kind: &'static str,
    /// Exit code (docs/CLI.md, "Exit codes").
    pub code: i32,
}

/// Exit codes other than 0 and 1 (docs/CLI.md).
pub mod exit {
    /// The command line asks for nothing MediaGit can do (as clap's own).
    pub const USAGE: i32 = 2;
    /// A conflict: unresolved merge conflicts, or a ref moved by someone
    /// else (the equivalent of a non-fast-forward).
    pub const CONFLICT: i32 = 3;
    /// fsck or verify found the repository damaged.
    pub const INTEGRITY: i32 = 4;
    /// Stopped by Ctrl-C (as a shell reports SIGINT).
    pub const INTERRUPTED: i32 = 130;
}

impl CommandError {
    /// A failure of kind `kind` (exit code 1).
    pub fn user(kind: &'static str, message: impl Into<String>) -> CommandError {
        CommandError {
            message: message.into(),
            hint: None,
            kind,
            code: 1,
        }
    }
    /// A command line that asks for nothing MediaGit can do (exit code 2,
    /// as clap's own usage errors).
    pub fn usage(message: impl Into<String>) -> CommandError {
        CommandError {
            code: exit::USAGE,
            ..CommandError::user("usage", message)
        }
    }

    /// Whoever read stdout stopped (a pager quit, `| head`): the command
    /// ends quietly with exit 0, as Git does. Recognised by the error's
    /// kind, never by its text.
    pub fn broken_pipe() -> CommandError {
        CommandError::user("broken-pipe", "stdout was closed").exit_code(0)
    }

    /// Whether this is [`CommandError::broken_pipe`].
    pub fn is_broken_pipe(&self) -> bool {
        self.kind == "broken-pipe"
    }

    /// The same error with another exit code.
    pub fn exit_code(mut self, code: i32) -> CommandError {
        self.code = code;
        self
    }

    /// The error as one line of JSON, for `--json` commands:
    /// `{"error":{"code":...,"message":...,"hint":...,"exit_code":...}}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "error": {
                "code": self.kind,
                "message": self.message,
                "hint": self.hint,
                "exit_code": self.code,
            }
        })
        .to_string()
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> CommandError {
        self.hint = Some(hint.into());
        self
    }
}

impl From<RepoError> for CommandError {
    fn from(e: RepoError) -> CommandError {
        let hint = match &e {
            RepoError::NotARepository { .. } => {
                Some("run `mediagit init` to create a repository, or use -C DIR to point at one".to_string())
            }
            RepoError::Locked { .. } => Some(
                "another mediagit command is running in this repository; wait for it to finish and try again"
                    .to_string(),
            ),
            RepoError::UnknownRevision { .. } => {
                Some("see `mediagit branch`, `mediagit tag list` and `mediagit log --oneline` for what exists".into())
            }
            RepoError::AmbiguousRevision { .. } => Some("give more hex digits of the id".into()),
            RepoError::UnbornBranch(_) => Some("make a first commit with `mediagit add` and `mediagit commit`".into()),
            RepoError::PathOutsideRepo { .. } => Some("paths must lie inside the working tree".into()),
            RepoError::BranchNotMerged { .. } => Some("use -D (--force) to delete it anyway; its commits stay recoverable from `mediagit reflog`".into()),
            RepoError::NothingToCommit => Some("stage changes with `mediagit add`, or pass --allow-empty".into()),
            RepoError::IndexDisagrees { .. } => Some("run `mediagit add` on those paths to record them again from the working tree".into()),
            RepoError::UnresolvedConflicts { .. } => Some("settle each path with `mediagit resolve PATH --ours|--theirs|--both`, or put the version to keep there and `mediagit add` it (or `mediagit rm` it); `mediagit status` lists them with both sides".into()),
            RepoError::StagedChanges { .. } => Some("commit them first, or unstage them with `mediagit reset` (their files stay as they are)".into()),
            RepoError::OperationInProgress { op } => Some(format!("finish it with `mediagit {op} --continue`, or give it up with `mediagit {op} --abort`")),
            RepoError::NoOperation { .. } => Some("`mediagit status` shows what this working tree is doing".into()),
            RepoError::NotFastForward { .. } => Some("run `mediagit merge` without --ff-only to make a merge commit".into()),
            RepoError::NotConflicted { .. } => Some("`mediagit status` lists the conflicted paths".into()),
            RepoError::MissingIdentity => Some(
                "tell MediaGit who you are, once for all your repositories:\n  mediagit config --global author.name \"Your Name\"\n  mediagit config --global author.email you@example.com\n(or --local for this repository only; MEDIAGIT_AUTHOR_NAME and MEDIAGIT_AUTHOR_EMAIL, or --author \"Name <email>\", for one command)".into(),
            ),
            RepoError::WouldOverwriteChanges { .. } => {
                Some("commit them, or use --force to discard them".into())
            }
            RepoError::WouldOverwriteUntracked { .. } => {
                Some("move or remove them, or use --force".into())
            }
            RepoError::RmLocalChanges { .. } => Some(
                "use --force to remove them anyway, or --cached to keep the file".into(),
            ),
            RepoError::GcBlocked { .. } => Some(
                "run `mediagit fsck` to see the damage and `mediagit fsck --repair` to rebuild what can be rebuilt, then gc again".into(),
            ),
            RepoError::Format { what, .. } if what.starts_with("pack index ") => Some(
                "run `mediagit fsck --repair` to rebuild the pack index from its pack".into(),
            ),
            RepoError::CorruptObject { .. }
            | RepoError::MissingObject { .. }
            | RepoError::CorruptRef { .. } => {
                Some("the repository is damaged; `mediagit fsck` shows the damage, `mediagit fsck --repair` rebuilds what can be rebuilt".into())
            }
            RepoError::Io { source, .. }
            | RepoError::Storage(mediagit_storage::StorageError::Io { source, .. })
                if is_disk_full(source) =>
            {
                Some("the disk is full; free some space and run the command again (nothing was changed)".into())
            }
            RepoError::PushLocked { .. } => Some(
                "ask the owners to unlock them (`mediagit locks` shows who holds what), or an admin to break a lock with `mediagit unlock --force PATH`".into(),
            ),
            RepoError::RefRace { name, .. } if name.starts_with("refs/heads/") => Some(format!(
                "another working tree (or machine sharing the store) moved {name}; run `mediagit switch {}` to bring this working tree up to it (your changes are kept where they do not collide), then commit again",
                name.trim_start_matches("refs/heads/")
            )),
            RepoError::UnsafeRepository { path, .. } => Some(format!(
                "if you trust it, add it to your own settings ({}):\n  [safe]\n  directories = [{:?}]",
                crate::user_config::describe_path(),
                path.display().to_string()
            )),
            RepoError::UnsafeRepositoryMode { path, folder, why } if why.starts_with("it belongs to") => Some(format!(
                "check what is in {0}, then `chown` it to yourself (or move it out of the repository), or if you trust its owner, add the repository to your own settings ({1}):\n  [safe]\n  directories = [{2:?}]",
                folder.display(),
                crate::user_config::describe_path(),
                path.display().to_string()
            )),
            RepoError::UnsafeRepositoryMode { path, folder, .. } => Some(format!(
                "run `chmod o-w {0}` (and `setfacl -b {0}` if an ACL names other users) after checking what others put there, or if you trust everyone who can write it, add the repository to your own settings ({1}):\n  [safe]\n  directories = [{2:?}]",
                folder.display(),
                crate::user_config::describe_path(),
                path.display().to_string()
            )),
            RepoError::StagedObjectsGone { .. } => Some(
                "run `mediagit add` on those files again (their content is stored again from the working tree), then commit".into(),
            ),
            RepoError::BeyondSymlink { .. } => Some(
                "MediaGit never reads, writes or removes through a symbolic link to a directory; the link itself is content (`mediagit add LINK`)".into(),
            ),
            RepoError::NotAStore { .. } => Some(
                "check the bucket and prefix; `mediagit init --storage URL` creates a repository in an empty prefix".into(),
            ),
            RepoError::StoreHasRepository { .. } => Some(
                "to work with it, run `mediagit clone URL DIR` with the same URL".into(),
            ),
            RepoError::StoreNotEmpty { .. } => {
                Some("pick an empty prefix (s3://BUCKET/NEW-PREFIX) for the repository".into())
            }
            RepoError::Storage(StorageError::Remote { kind, backend, .. })
                if backend.starts_with("MediaGit server") =>
            {
                server_hint(*kind).map(str::to_string)
            }
            RepoError::Storage(StorageError::Remote { kind, .. }) => Some(remote_hint(*kind).into()),
            RepoError::NeedsPassphrase { .. } => Some(
                "set MEDIAGIT_PASSPHRASE (or MEDIAGIT_PASSPHRASE_FILE with a file that holds it), or run the command on a terminal to be asked; `mediagit key unlock` keeps the key for the commands that follow".into(),
            ),
            RepoError::WrongPassphrase => Some(
                "nothing was changed; any passphrase of the repository opens it (`mediagit key list` shows its keys)".into(),
            ),
            RepoError::KeyNotFound { .. } => {
                Some("`mediagit key list` shows the ids (8 or more leading digits are enough)".into())
            }
            RepoError::LastKey { .. } => Some(
                "add another passphrase first (`mediagit key add`), or change this one with `mediagit key passwd`".into(),
            ),
            _ => None,
        };
        if let RepoError::Interrupted {
            files_kept,
            bytes_kept,
            resumable,
        } = e
        {
            let hint = if resumable {
                "run the same `mediagit add` again: it continues where this one stopped"
            } else {
                "the add journal (.mediagit/add-journal) could not be written, so a new add reads every file again; what was stored is reused, not stored twice"
            };
            return CommandError {
                message: format!(
                    "interrupted: {files_kept} file(s) whole and {} of new data stored so far are kept; nothing was staged",
                    crate::output::human_size(bytes_kept)
                ),
                hint: Some(hint.into()),
                kind: e.code(),
                // As a shell reports a command killed by SIGINT.
                code: exit::INTERRUPTED,
            };
        }
        if let RepoError::Io { source, .. } | RepoError::Storage(StorageError::Io { source, .. }) =
            &e
        {
            if source.kind() == std::io::ErrorKind::BrokenPipe {
                return CommandError::broken_pipe();
            }
        }
        let code = match &e {
            RepoError::UnresolvedConflicts { .. }
            | RepoError::RefRace { .. }
            | RepoError::NotFastForward { .. } => exit::CONFLICT,
            _ => 1,
        };
        CommandError {
            message: e.to_string(),
            hint,
            kind: e.code(),
            code,
        }
    }
}

impl From<std::io::Error> for CommandError {
    fn from(e: std::io::Error) -> CommandError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return CommandError::broken_pipe();
        }
        CommandError::user("output-failed", format!("cannot write output: {e}"))
    }
}

/// What to do about a failed request to a MediaGit server.
fn server_hint(kind: mediagit_storage::RemoteErrorKind) -> Option<&'static str> {
    use mediagit_storage::RemoteErrorKind as K;
    match kind {
        K::PermissionDenied | K::NoCredentials => Some(
            "the server gives rights per user and repository (its --auth-file); the token is sent from MEDIAGIT_TOKEN, or from the variable the remote's token_env names (`mediagit config remotes.NAME.token_env VAR`)",
        ),
        K::Unavailable | K::Throttled => Some(
            "is `mediagit serve` running at that address, and reachable from here? Nothing was changed on this side",
        ),
        K::Config => Some(
            "check the URL (http(s)://HOST[:PORT]/REPOSITORY); a server whose certificate comes from a private CA needs MEDIAGIT_CA_FILE=ca.pem",
        ),
        _ => None,
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull
}
