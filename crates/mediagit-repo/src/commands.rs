//! The read commands as whole results: `log`, `show` and `diff` as the
//! CLI prints them and a server or web UI would send them. Each takes a
//! [`Repository`] (a store, and a working tree's state when there is one)
//! and an options struct, and returns a value that serializes to the JSON
//! documented in docs/CLI.md. Display (decorations such as `HEAD -> main`,
//! sizes, dates) stays in the CLI.
use std::collections::HashMap;

use mediagit_format::{Commit, ObjectId, Signature};

use crate::branch::TagInfo;
use crate::error::{RepoError, Result};
use crate::history::{diff_trees, DiffKind, DiffSide, FileDiff, LogOptions};
use crate::repo::Repository;
use crate::tree::FlatTree;

/// A commit with the refs that point at it and, when asked for, what it
/// changed against its first parent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommitInfo {
    pub id: ObjectId,
    pub tree: ObjectId,
    pub parents: Vec<ObjectId>,
    pub author: Signature,
    pub committer: Signature,
    pub message: String,
    /// Full names of the refs pointing at it (`HEAD`, `refs/heads/B`,
    /// `refs/tags/T`): HEAD first, then branches, then tags.
    pub refs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileDiff>>,
}

impl CommitInfo {
    fn new(
        id: ObjectId,
        c: Commit,
        refs: &HashMap<ObjectId, Vec<String>>,
        files: Option<Vec<FileDiff>>,
    ) -> CommitInfo {
        CommitInfo {
            id,
            tree: c.tree,
            parents: c.parents,
            author: c.author,
            committer: c.committer,
            message: c.message,
            refs: refs.get(&id).cloned().unwrap_or_default(),
            files,
        }
    }

    /// The first line of the message.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Where to start; `HEAD` when `None`.
    pub rev: Option<String>,
    pub max: Option<usize>,
    /// Only commits that change one of these repository paths.
    pub paths: Vec<String>,
    /// Fill [`CommitInfo::files`].
    pub with_files: bool,
}

/// What a commit changed against its first parent (everything, for a
/// first commit).
pub fn commit_changes(repo: &Repository, id: &ObjectId, c: &Commit) -> Result<Vec<FileDiff>> {
    let before = match c.parents.first() {
        Some(p) => repo.commit_tree(p)?,
        None => FlatTree::new(),
    };
    let after = repo.commit_tree(id)?;
    Ok(diff_trees(&before, &after))
}

/// `log`: newest first.
pub fn log(repo: &Repository, q: &LogQuery) -> Result<Vec<CommitInfo>> {
    let start = repo.resolve(q.rev.as_deref().unwrap_or("HEAD"))?;
    let commits = repo.log(
        start,
        &LogOptions {
            max: q.max,
            paths: q.paths.clone(),
        },
    )?;
    let refs = repo.refs_by_commit()?;
    // Media records read once for every commit (buckets stay loaded).
    let notes = match q.with_files {
        true => crate::media::MediaNotes::load(repo).ok(),
        false => None,
    };
    commits
        .into_iter()
        .map(|(id, c)| {
            let files = if q.with_files {
                let mut f = commit_changes(repo, &id, &c)?;
                if let Some(n) = &notes {
                    repo.describe_media_with(n, &mut f, false);
                }
                Some(f)
            } else {
                None
            };
            Ok(CommitInfo::new(id, c, &refs, files))
        })
        .collect()
}

/// `show REV`: the commit and its changes, and the tag when REV names one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShowResult {
    /// The tag named REV, when REV is a tag.
    pub tag: Option<TagInfo>,
    pub commit: CommitInfo,
}

pub fn show(repo: &Repository, rev: &str) -> Result<ShowResult> {
    let tag = repo.tags()?.into_iter().find(|t| t.name == rev);
    let id = repo.resolve(rev)?;
    let c = repo.odb()?.read_commit(&id)?;
    let mut files = commit_changes(repo, &id, &c)?;
    repo.describe_media(&mut files, false);
    let refs = repo.refs_by_commit()?;
    Ok(ShowResult {
        tag,
        commit: CommitInfo::new(id, c, &refs, Some(files)),
    })
}

/// `diff`: which two sides, and which paths (repository paths; a path
/// names a file or everything below a directory; none: everything).
#[derive(Debug, Clone)]
pub struct DiffQuery {
    pub from: DiffSide,
    pub to: DiffSide,
    pub paths: Vec<String>,
}

impl DiffQuery {
    /// The sides as `diff [--cached] [REV [REV]]` names them: nothing is
    /// index → working tree; `--cached` is HEAD (or nothing on an unborn
    /// branch) → index; one revision is it → working tree (→ index with
    /// `--cached`); two are the first → the second.
    pub fn from_revs(repo: &Repository, revs: &[String], cached: bool) -> Result<DiffQuery> {
        let (from, to) = match (revs, cached) {
            ([], false) => (DiffSide::Index, DiffSide::Worktree),
            ([], true) => match repo.head_commit()? {
                Some(h) => (DiffSide::Commit(h), DiffSide::Index),
                None => (DiffSide::Empty, DiffSide::Index),
            },
            ([r], false) => (DiffSide::Commit(repo.resolve(r)?), DiffSide::Worktree),
            ([r], true) => (DiffSide::Commit(repo.resolve(r)?), DiffSide::Index),
            ([r1, r2], false) => (
                DiffSide::Commit(repo.resolve(r1)?),
                DiffSide::Commit(repo.resolve(r2)?),
            ),
            _ => {
                return Err(RepoError::Invalid(
                    "a diff compares at most two revisions, or one revision with the index".into(),
                ))
            }
        };
        Ok(DiffQuery {
            from,
            to,
            paths: Vec::new(),
        })
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DiffTotals {
    pub files: usize,
    pub added: usize,
    pub modified: usize,
    pub deleted: usize,
    pub renamed: usize,
    pub mode_changed: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DiffResult {
    pub files: Vec<FileDiff>,
    pub totals: DiffTotals,
}

pub fn diff(repo: &Repository, q: &DiffQuery) -> Result<DiffResult> {
    let filter = |t: FlatTree| -> FlatTree {
        if q.paths.is_empty() {
            t
        } else {
            t.into_iter()
                .filter(|(p, _)| crate::checkout::matches_any(p, &q.paths))
                .collect()
        }
    };
    // An unborn branch compares as an empty tree.
    let from = match repo.side_tree(&q.from) {
        Err(RepoError::UnbornBranch(_)) => FlatTree::new(),
        other => other?,
    };
    let mut files = diff_trees(&filter(from), &filter(repo.side_tree(&q.to)?));
    repo.describe_media(&mut files, matches!(q.to, DiffSide::Worktree));
    let mut totals = DiffTotals {
        files: files.len(),
        ..DiffTotals::default()
    };
    for d in &files {
        match d.kind {
            DiffKind::Added => totals.added += 1,
            DiffKind::Modified => totals.modified += 1,
            DiffKind::Deleted => totals.deleted += 1,
            DiffKind::Renamed { .. } => totals.renamed += 1,
            DiffKind::ModeChanged => totals.mode_changed += 1,
        }
    }
    Ok(DiffResult { files, totals })
}
