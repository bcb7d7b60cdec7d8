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
    /// The identity: what the caller read from the environment
    /// (`MEDIAGIT_AUTHOR_NAME`/`_EMAIL`), else the repository's `[author]`,
    /// else the user's own (`user`, read by the caller: the library never
    /// reads `$HOME`).
    pub fn identity(
        &self,
        env_name: Option<String>,
        env_email: Option<String>,
        user: (Option<String>, Option<String>),
    ) -> Result<(String, String)> {
        let name = env_name
            .or_else(|| self.config().author.name.clone())
            .or(user.0);
        let email = env_email
            .or_else(|| self.config().author.email.clone())
            .or(user.1);
        match (name, email) {
            (Some(n), Some(e)) if !n.trim().is_empty() => Ok((n, e)),
            _ => Err(RepoError::MissingIdentity),
        }
    }

    #[tracing::instrument(name = "commit", level = "info", skip_all)]
    pub fn commit(&self, opts: &CommitOptions, progress: &dyn Progress) -> Result<ObjectId> {
        let _lock = self.workspace()?.lock()?;
        if opts.message.trim().is_empty() {
            return Err(RepoError::Invalid(
                "empty commit message; pass one with -m".into(),
            ));
        }
        if !opts.all {
            return self.commit_locked(opts);
        }
        // `-a` stages first; a commit that then fails (the branch moved,
        // nothing to commit, a conflict) leaves the index as it was, as
        // git does. The index is only ever replaced by a rename, so a
        // hard link keeps the old one.
        let ws = self.workspace()?;
        let index = ws.dir().join("index");
        let kept = ws.dir().join("index.before-commit");
        let _ = std::fs::remove_file(&kept);
        let had = match std::fs::hard_link(&index, &kept) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(RepoError::io("keep", &index, e)),
        };
        let r = self
            .add_locked(
                &AddOptions {
                    tracked_only: true,
                    ..Default::default()
                },
                progress,
            )
            .and_then(|_| self.commit_locked(opts));
        if r.is_err() {
            let _ = if had {
                std::fs::rename(&kept, &index)
            } else {
                std::fs::remove_file(&index)
            };
        }
        // (Also after a failure where the index was never replaced: a
        // rename onto another link of the same file does nothing.)
        let _ = std::fs::remove_file(&kept);
        r
    }

    /// [`Repository::commit`] of what is staged, the lock held.
    fn commit_locked(&self, opts: &CommitOptions) -> Result<ObjectId> {
        let mut idx = self.workspace()?.load_index()?;
        let conflicted = idx.conflicted_paths();
        if !conflicted.is_empty() {
            return Err(RepoError::UnresolvedConflicts { paths: conflicted });
        }
        let parent = self.head_commit()?;
        // A merge under way: its commit gets the merged commit as second
        // parent (a squash: one parent), and may change nothing.
        let operation = self.commit_operation()?;
        if let (Some(op), Some(p)) = (&operation, parent) {
            if op.tip != p {
                return Err(RepoError::Invalid(format!(
                    "HEAD moved to {} while the merge was under way (expected {}); run `mediagit merge --abort`",
                    p.short(12),
                    op.tip.short(12)
                )));
            }
        }
        let merging = operation
            .as_ref()
            .filter(|o| o.op == crate::sequencer::OpKind::Merge);
        let odb = self.odb()?;
        let mut session = odb.session();
        let mut trees = Vec::new();
        let tree = tracing::info_span!("write-trees", files = idx.entries.len())
            .in_scope(|| write_tree(&mut session, idx.entries.values(), &mut trees))?;
        let parent_tree = match parent {
            Some(p) => Some(odb.read_commit(&p)?.tree),
            None => None,
        };
        let unchanged = match parent_tree {
            Some(t) => t == tree,
            None => idx.entries.is_empty(),
        };
        if unchanged && !opts.allow_empty && merging.is_none() {
            return Err(RepoError::NothingToCommit);
        }
        let commit = Commit {
            tree,
            parents: parent.into_iter().chain(merging.map(|o| o.other)).collect(),
            author: opts.author.clone(),
            committer: opts.committer.clone(),
            message: normalize_message(&opts.message),
        };
        let id = session.put_object(ObjectKind::Commit, &commit.encode())?;
        session.finish()?;
        // Never move a branch to a commit whose files the store lost: on a
        // shared store, another working tree's gc may have removed objects
        // this one staged (reused) after they were staged.
        tracing::info_span!("confirm-stored", trees = trees.len())
            .in_scope(|| self.confirm_stored(odb, &mut idx, parent_tree, &trees))?;
        let what = if parent.is_none() {
            "commit (initial)"
        } else if merging.is_some() {
            "commit (merge)"
        } else {
            "commit"
        };
        self.update_head_target(
            parent,
            id,
            &opts.committer,
            &format!("{what}: {}", commit.summary()),
        )?;
        if operation.is_some() {
            self.end_operation()?;
        }
        // Refresh the index timestamp so entries stop being racily clean,
        // and remember the new commit's tree for `status`.
        idx.commit_memo = self.odb().ok().and_then(|odb| odb.commit_memo(id, tree));
        let _ = self.workspace()?.save_index(&mut idx, &self.codec());
        Ok(id)
    }

    /// Checks that the store holds every object the new commit needs that
    /// no earlier commit protects: the manifests of files staged since the
    /// parent (not in the parent's tree), all their chunks, and the trees
    /// written or reused. Then re-lists the packs (after this commit's own
    /// were stored): if one this command loaded is gone (another working
    /// tree's gc ran meanwhile), the pack indexes are loaded afresh and the
    /// check repeated against them. Files whose objects are gone get their
    /// stat data zeroed, so the next `add` reads and stores them again, and
    /// the commit is refused.
    fn confirm_stored(
        &self,
        odb: &crate::odb::Odb,
        idx: &mut crate::worktree::WorktreeIndex,
        parent_tree: Option<ObjectId>,
        trees: &[ObjectId],
    ) -> Result<()> {
        use mediagit_format::index::IndexKind;
        // The parent's files by manifest: (size, content) as committed.
        let protected: std::collections::HashMap<ObjectId, (u64, ObjectId)> = match parent_tree {
            Some(t) => crate::tree::flatten(odb, &t)?
                .into_values()
                .map(|e| (e.manifest, (e.size, e.content)))
                .collect(),
            None => Default::default(),
        };
        // The index is trusted like a stat cache, but what it says about
        // a file (size, content id) is written into history: it must
        // agree with the file's manifest (a damaged or crafted index must
        // not commit a size no checkout can restore).
        let mut wrong = Vec::new();
        let mut staged: Vec<Staged> = Vec::new();
        for e in idx.entries.values() {
            if e.kind == IndexKind::Symlink {
                continue;
            }
            match protected.get(&e.manifest) {
                Some(&claim) if claim != (e.stat.size, e.content) => wrong.push(e.path.clone()),
                Some(_) => {}
                None => staged.push(Staged {
                    path: e.path.clone(),
                    manifest: e.manifest,
                    size: e.stat.size,
                    content: e.content,
                }),
            }
        }
        drop(protected);
        // What the store lists now: pack indexes and pack files. A pack
        // whose file is gone (another working tree's gc deleted it, or
        // took it for an interrupted write) holds nothing, whatever its
        // index says.
        let keys = self.uncached_storage().list("packs/")?;
        let listed = |ext| -> std::collections::HashSet<ObjectId> {
            crate::odb::pack_ids(&keys, ext).collect()
        };
        let (indexes, files) = (listed(".idx"), listed(".pack"));
        let stale = odb.packs().iter().any(|p| !indexes.contains(p));
        let fresh;
        let odb = if stale {
            fresh = crate::odb::Odb::load(
                self.storage().clone(),
                self.tmp_dir().to_path_buf(),
                self.config(),
                self.codec(),
            )?;
            &fresh
        } else {
            odb
        };
        let present = |id: &ObjectId| odb.locate(id).is_some_and(|(p, _)| files.contains(&p));
        let lost = lost_files(odb, &staged, &mut wrong, &present);
        let lost_tree = trees.iter().find(|t| !present(t)).copied();
        if let Some(t) = lost_tree {
            return Err(RepoError::MissingObject {
                id: t,
                kind: "tree",
                context: Some(
                    "the commit being made (another working tree's gc removed it; commit again)"
                        .into(),
                ),
            });
        }
        if !wrong.is_empty() {
            wrong.sort();
            for e in idx.entries.values_mut() {
                if wrong.binary_search(&e.path).is_ok() {
                    e.stat = Default::default();
                }
            }
            let _ = self.workspace()?.save_index(idx, &self.codec());
            return Err(RepoError::IndexDisagrees { paths: wrong });
        }
        if lost.is_empty() {
            return Ok(());
        }
        // Zero stat data: never clean, so the next `add` re-reads the file.
        for e in idx.entries.values_mut() {
            if lost.binary_search(&e.path).is_ok() {
                e.stat = Default::default();
            }
        }
        let _ = self.workspace()?.save_index(idx, &self.codec());
        Err(RepoError::StagedObjectsGone { paths: lost })
    }

    /// Name of the current branch, if any (for messages).
    pub fn current_branch(&self) -> Result<Option<String>> {
        Ok(match self.head_opt()? {
            Some(Head::Branch(b)) => Some(b),
            _ => None,
        })
    }
}

/// The paths (sorted, as `staged` is) whose manifest, or any chunk of it,
/// `odb` does not hold. Manifests are read a group at a time.
/// A file staged since the parent commit, as the index records it.
struct Staged {
    path: String,
    manifest: ObjectId,
    size: u64,
    content: ObjectId,
}

/// The paths whose manifest, or any chunk of it, `odb` does not hold
/// (sorted, as `staged` is); those whose manifest disagrees with the
/// index's size or content id go to `wrong`. Manifests are read a group
/// at a time.
fn lost_files(
    odb: &crate::odb::Odb,
    staged: &[Staged],
    wrong: &mut Vec<String>,
    present: &dyn Fn(&ObjectId) -> bool,
) -> Vec<String> {
    let mut lost = Vec::new();
    for group in staged.chunks(1024) {
        let ids: Vec<ObjectId> = group.iter().map(|s| s.manifest).collect();
        let mut read = odb.read_many(&ids, ObjectKind::Manifest);
        for s in group {
            let manifest = match read.remove(&s.manifest) {
                Some(b) => mediagit_format::Manifest::decode(&b).ok(),
                None => odb.read_manifest(&s.manifest).ok(),
            };
            match manifest {
                Some(m) if (m.size, m.content) != (s.size, s.content) => wrong.push(s.path.clone()),
                Some(m) if present(&s.manifest) && m.chunks.iter().all(|c| present(&c.id)) => {}
                _ => lost.push(s.path.clone()),
            }
        }
    }
    lost
}

fn normalize_message(m: &str) -> String {
    let t = m.trim_end();
    format!("{t}\n")
}
