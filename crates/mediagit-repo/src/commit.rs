//! `commit`: write the index as trees, a commit, and move the branch.
use mediagit_format::{Commit, ObjectId, ObjectKind, Signature};

use crate::add::AddOptions;
use crate::error::{RepoError, Result};
use crate::progress::Progress;
use crate::refs::Head;
use crate::repo::Repository;
use crate::tree::write_tree;

#[derive(Debug, Clone)]
pub struct CommitOptions {
    pub message: String,
    /// Stage changes to tracked files first (`-a`).
    pub all: bool,
    pub allow_empty: bool,
    pub author: Signature,
    pub committer: Signature,
}

/// Parses `Name <email>`.
pub fn parse_identity(s: &str) -> Result<(String, String)> {
    let s = s.trim();
    let (name, rest) = s
        .split_once('<')
        .ok_or_else(|| RepoError::BadAuthor(s.into()))?;
    let email = rest
        .strip_suffix('>')
        .ok_or_else(|| RepoError::BadAuthor(s.into()))?;
    let name = name.trim();
    if name.is_empty() || email.contains(['<', '>']) {
        return Err(RepoError::BadAuthor(s.into()));
    }
    Ok((name.to_string(), email.trim().to_string()))
}

impl Repository {
    /// The identity from config, overridden by the values the caller read from
    /// the environment (`MEDIAGIT_AUTHOR_NAME`/`_EMAIL`).
    pub fn identity(
        &self,
        env_name: Option<String>,
        env_email: Option<String>,
    ) -> Result<(String, String)> {
        let name = env_name.or_else(|| self.config().author.name.clone());
        let email = env_email.or_else(|| self.config().author.email.clone());
        match (name, email) {
            (Some(n), Some(e)) if !n.trim().is_empty() => Ok((n, e)),
            _ => Err(RepoError::MissingIdentity),
        }
    }

    pub fn commit(&self, opts: &CommitOptions, progress: &dyn Progress) -> Result<ObjectId> {
        let _lock = self.lock()?;
        if opts.message.trim().is_empty() {
            return Err(RepoError::Invalid(
                "empty commit message; pass one with -m".into(),
            ));
        }
        if opts.all {
            self.add_locked(
                &AddOptions {
                    tracked_only: true,
                    ..Default::default()
                },
                progress,
            )?;
        }
        let mut idx = self.load_index()?;
        let parent = self.head_commit()?;
        let odb = self.odb()?;
        let mut session = odb.session();
        let tree = write_tree(&mut session, idx.entries.values())?;
        let parent_tree = match parent {
            Some(p) => Some(odb.read_commit(&p)?.tree),
            None => None,
        };
        let unchanged = match parent_tree {
            Some(t) => t == tree,
            None => idx.entries.is_empty(),
        };
        if unchanged && !opts.allow_empty {
            return Err(RepoError::NothingToCommit);
        }
        let commit = Commit {
            tree,
            parents: parent.into_iter().collect(),
            author: opts.author.clone(),
            committer: opts.committer.clone(),
            message: normalize_message(&opts.message),
        };
        let id = session.put_object(ObjectKind::Commit, &commit.encode())?;
        session.finish()?;
        let what = if parent.is_none() {
            "commit (initial)"
        } else {
            "commit"
        };
        self.update_head_target(
            parent,
            id,
            &opts.committer,
            &format!("{what}: {}", commit.summary()),
        )?;
        // Refresh the index timestamp so entries stop being racily clean,
        // and remember the new commit's tree for `status`.
        idx.commit_memo = self.odb().ok().and_then(|odb| odb.commit_memo(id, tree));
        let _ = self.save_index(&mut idx);
        Ok(id)
    }

    /// Name of the current branch, if any (for messages).
    pub fn current_branch(&self) -> Result<Option<String>> {
        Ok(match self.head()? {
            Head::Branch(b) => Some(b),
            Head::Detached(_) => None,
        })
    }
}

fn normalize_message(m: &str) -> String {
    let t = m.trim_end();
    format!("{t}\n")
}
