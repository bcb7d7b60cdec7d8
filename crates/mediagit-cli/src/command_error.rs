//! Turning library errors into what a user reads: a message, a hint, an exit code.
use mediagit_repo::RepoError;

pub struct CommandError {
    pub message: String,
    pub hint: Option<String>,
    pub code: i32,
}

impl CommandError {
    pub fn user(message: impl Into<String>) -> CommandError {
        CommandError {
            message: message.into(),
            hint: None,
            code: 1,
        }
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
            RepoError::BranchNotMerged { .. } => Some("its commits stay recoverable from `mediagit reflog` after a forced delete".into()),
            RepoError::CorruptObject { .. } | RepoError::MissingObject { .. } => {
                Some("the repository is damaged; `mediagit fsck` shows the damage, `mediagit fsck --repair` rebuilds what can be rebuilt".into())
            }
            RepoError::Io { source, .. }
            | RepoError::Storage(mediagit_storage::StorageError::Io { source, .. })
                if is_disk_full(source) =>
            {
                Some("the disk is full; free some space and run the command again (nothing was changed)".into())
            }
            _ => None,
        };
        CommandError {
            message: e.to_string(),
            hint,
            code: 1,
        }
    }
}

impl From<std::io::Error> for CommandError {
    fn from(e: std::io::Error) -> CommandError {
        CommandError::user(format!("cannot write output: {e}"))
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull
}
