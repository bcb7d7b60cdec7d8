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
        let mut trees = Vec::new();
        let tree = write_tree(&mut session, idx.entries.values(), &mut trees)?;
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
        // Never move a branch to a commit whose files the store lost: on a
        // shared store, another working tree's gc may have removed objects
        // this one staged (reused) after they were staged.
        self.confirm_stored(odb, &mut idx, &trees)?;
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

    /// Checks that the store still holds every staged file's manifest and
    /// every tree of the commit: objects located in packs the store no
    /// longer lists are looked up again in a fresh load of its indexes (gc
    /// copies what is reachable into new packs). Entries whose objects are
    /// gone are marked for re-reading, so `add` stores them again from the
    /// working tree, and the commit is refused.
    fn confirm_stored(
        &self,
        odb: &crate::odb::Odb,
        idx: &mut crate::worktree::WorktreeIndex,
        trees: &[ObjectId],
    ) -> Result<()> {
        use mediagit_format::index::IndexKind;
        let listed: std::collections::HashSet<ObjectId> = self
            .uncached_storage()
            .list("packs/")?
            .iter()
            .filter_map(|k| {
                k.strip_prefix("packs/")
                    .and_then(|k| k.strip_suffix(".idx"))
                    .and_then(|h| h.parse().ok())
            })
            .collect();
        let gone = |id: &ObjectId| match odb.locate(id) {
            Some((pack, _)) => !listed.contains(&pack),
            None => true,
        };
        let suspect_files: Vec<usize> = idx
            .entries
            .values()
            .enumerate()
            .filter(|(_, e)| e.kind != IndexKind::Symlink && gone(&e.manifest))
            .map(|(i, _)| i)
            .collect();
        let suspect_trees: Vec<ObjectId> = trees.iter().copied().filter(|t| gone(t)).collect();
        if suspect_files.is_empty() && suspect_trees.is_empty() {
            return Ok(());
        }
        let fresh = crate::odb::Odb::load(
            self.storage().clone(),
            self.dir().join("tmp"),
            self.config(),
        )?;
        let mut lost: Vec<String> = Vec::new();
        let entries: Vec<_> = idx.entries.values().cloned().collect();
        let mut smudge = Vec::new();
        for i in suspect_files {
            let e = &entries[i];
            if !fresh.contains(&e.manifest) {
                lost.push(e.path.clone());
                smudge.push(e.path.clone());
            }
        }
        if let Some(t) = suspect_trees.iter().find(|t| !fresh.contains(t)) {
            return Err(RepoError::MissingObject {
                id: *t,
                kind: "tree",
                context: Some(
                    "the commit being made (another working tree's gc removed it; commit again)"
                        .into(),
                ),
            });
        }
        if lost.is_empty() {
            return Ok(());
        }
        // Zero stat data: never clean, so the next `add` re-reads the file.
        for e in idx.entries.values_mut() {
            if smudge.binary_search(&e.path).is_ok() {
                e.stat = Default::default();
            }
        }
        let _ = self.save_index(idx);
        Err(RepoError::StagedObjectsGone { paths: lost })
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
