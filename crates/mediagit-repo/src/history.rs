//! Reading history: log, diff (with rename detection by content id),
//! file listings and file content at a revision.
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::io::Write;

use mediagit_format::{Commit, ObjectId};

use crate::error::{RepoError, Result};
use crate::ingest::hash_path;
use crate::repo::Repository;
use crate::store::Store;
use crate::tree::{flatten, lookup, FlatEntry, FlatTree, Lookup};

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub max: Option<usize>,
    /// Only commits that change one of these paths (vs the first parent).
    pub paths: Vec<String>,
}

/// In JSON, flattened into the [`FileDiff`]: `"change": "renamed", "from": PATH`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum DiffKind {
    Added,
    Deleted,
    Modified,
    /// Same content at a new path.
    Renamed {
        from: String,
    },
    /// File ↔ symlink, or the executable bit.
    ModeChanged,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FileDiff {
    pub path: String,
    #[serde(flatten)]
    pub kind: DiffKind,
    pub old: Option<FlatEntry>,
    pub new: Option<FlatEntry>,
    /// For media files: what changed in the media fields ("1920x1080 ->
    /// 3840x2160"), or for an added file its summary; filled by
    /// [`Repository::describe_media`](crate::repo::Repository).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<String>,
}

/// What to compare in `diff`.
#[derive(Debug, Clone)]
pub enum DiffSide {
    /// Nothing (the parent of a first commit).
    Empty,
    Commit(ObjectId),
    Index,
    Worktree,
}

impl Store {
    /// Every path that a commit reachable from `tips` and absent from
    /// `other` changes against its parents (a root commit: every path it
    /// has), both paths of a rename. What a push checks against file
    /// locks: exactly the commits it sends, whatever the remote's refs say
    /// (a forced push, a branch deleted and pushed again, a stale clone).
    pub fn paths_changed_by_missing_commits(
        &self,
        other: &Store,
        tips: &[ObjectId],
    ) -> Result<HashSet<String>> {
        let odb = self.odb()?;
        let theirs = other.odb()?;
        let mut out = HashSet::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<ObjectId> = tips.to_vec();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) || theirs.contains(&id) {
                continue;
            }
            let c = odb.read_commit(&id)?;
            let tree = flatten(odb, &c.tree)?;
            let mut parents = c.parents.clone();
            if parents.is_empty() {
                out.extend(tree.keys().cloned());
            }
            for p in parents.drain(..) {
                let pt = flatten(odb, &odb.read_commit(&p)?.tree)?;
                for d in diff_trees(&pt, &tree) {
                    if let DiffKind::Renamed { from } = &d.kind {
                        out.insert(from.clone());
                    }
                    out.insert(d.path);
                }
                stack.push(p);
            }
        }
        Ok(out)
    }

    /// Commits reachable from `start`, newest first (by committer time).
    pub fn log(&self, start: ObjectId, opts: &LogOptions) -> Result<Vec<(ObjectId, Commit)>> {
        let odb = self.odb()?;
        // Newest first; commits of the same second in the order they were
        // reached (as Git's walk does), so that a parent found through
        // one child does not print before that commit's other children
        // (a merge made in the same second as its parents).
        let mut heap = BinaryHeap::new();
        let mut seen = HashSet::new();
        let mut reached = 0u64;
        let first = odb.read_commit(&start)?;
        heap.push((first.committer.time, std::cmp::Reverse(reached), start));
        seen.insert(start);
        let mut cache: HashMap<ObjectId, Commit> = HashMap::from([(start, first)]);
        let mut out = Vec::new();
        while let Some((_, _, id)) = heap.pop() {
            if opts.max.is_some_and(|m| out.len() >= m) {
                break;
            }
            let c = match cache.remove(&id) {
                Some(c) => c,
                None => odb.read_commit(&id)?,
            };
            for p in &c.parents {
                if seen.insert(*p) {
                    let pc = odb.read_commit(p)?;
                    reached += 1;
                    heap.push((pc.committer.time, std::cmp::Reverse(reached), *p));
                    cache.insert(*p, pc);
                }
            }
            if !opts.paths.is_empty() && !self.touches(&c, &opts.paths)? {
                continue;
            }
            out.push((id, c));
        }
        Ok(out)
    }

    fn touches(&self, c: &Commit, paths: &[String]) -> Result<bool> {
        let odb = self.odb()?;
        let parent_tree = match c.parents.first() {
            Some(p) => Some(odb.read_commit(p)?.tree),
            None => None,
        };
        for p in paths {
            let now = lookup(odb, &c.tree, p)?;
            let before = match parent_tree {
                Some(t) => lookup(odb, &t, p)?,
                None => None,
            };
            let same = match (&now, &before) {
                (None, None) => true,
                (Some(Lookup::File(a)), Some(Lookup::File(b))) => a.same_content(b),
                (Some(Lookup::Dir(a)), Some(Lookup::Dir(b))) => {
                    a == b || diff_trees(&flatten(odb, a)?, &flatten(odb, b)?).is_empty()
                }
                _ => false,
            };
            if !same {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every file of a commit, by path.
    pub fn commit_tree(&self, commit: &ObjectId) -> Result<FlatTree> {
        let odb = self.odb()?;
        flatten(odb, &odb.read_commit(commit)?.tree)
    }
}

impl Repository {
    pub fn index_tree(&self) -> Result<FlatTree> {
        Ok(self
            .workspace()?
            .load_index()?
            .entries
            .iter()
            .map(|(p, e)| (p.clone(), FlatEntry::from_index(e)))
            .collect())
    }

    /// The tracked files as they are in the working tree now.
    pub fn worktree_tree(&self) -> Result<FlatTree> {
        let root = self.worktree()?.to_path_buf();
        let idx = self.workspace()?.load_index()?;
        let scan = self.scan_worktree(&idx, "")?;
        let mut t: FlatTree = idx
            .entries
            .iter()
            .map(|(p, e)| (p.clone(), FlatEntry::from_index(e)))
            .collect();
        for (p, kind) in scan.changed {
            match kind {
                None => {
                    t.remove(&p);
                }
                Some(kind) => {
                    let abs = root.join(&p);
                    let m = std::fs::symlink_metadata(&abs)
                        .map_err(|e| RepoError::io("stat", &abs, e))?;
                    let target = if kind == mediagit_format::index::IndexKind::Symlink {
                        std::fs::read_link(&abs)
                            .ok()
                            .map(|t| t.to_string_lossy().into_owned())
                    } else {
                        None
                    };
                    let entry = FlatEntry {
                        kind,
                        size: m.len(),
                        mtime: crate::worktree::stat_info(&m).mtime,
                        content: hash_path(&abs, kind)?,
                        manifest: ObjectId::ZERO,
                        target,
                    };
                    t.insert(p, entry);
                }
            }
        }
        Ok(t)
    }

    pub fn side_tree(&self, side: &DiffSide) -> Result<FlatTree> {
        match side {
            DiffSide::Empty => Ok(FlatTree::new()),
            DiffSide::Commit(c) => self.commit_tree(c),
            DiffSide::Index => self.index_tree(),
            DiffSide::Worktree => self.worktree_tree(),
        }
    }

    /// Streams the content of `path` at commit `rev` into `out`.
    pub fn cat(&self, rev: ObjectId, path: &str, out: &mut dyn Write) -> Result<FlatEntry> {
        let odb = self.odb()?;
        let tree = odb.read_commit(&rev)?.tree;
        match lookup(odb, &tree, path)? {
            None => Err(RepoError::PathNotInRevision {
                path: path.into(),
                rev: rev.short(12),
            }),
            Some(Lookup::Dir(_)) => Err(RepoError::NotAFile {
                path: path.into(),
                rev: rev.short(12),
            }),
            Some(Lookup::File(e)) => {
                match &e.target {
                    Some(t) => out
                        .write_all(t.as_bytes())
                        .map_err(|err| RepoError::io("write", "output", err))?,
                    None => {
                        odb.write_file_to(&e.manifest, out, &|_| {})?;
                    }
                }
                Ok(e)
            }
        }
    }
}

/// Differences between two trees. A file deleted at one path and added with
/// the same (non-empty) content at another is reported as one rename.
pub fn diff_trees(a: &FlatTree, b: &FlatTree) -> Vec<FileDiff> {
    let mut out = Vec::new();
    let mut added: Vec<(&String, &FlatEntry)> = Vec::new();
    let mut deleted: Vec<(&String, &FlatEntry)> = Vec::new();
    for (p, ea) in a {
        match b.get(p) {
            None => deleted.push((p, ea)),
            Some(eb) if ea.kind != eb.kind && ea.content == eb.content => out.push(FileDiff {
                path: p.clone(),
                kind: DiffKind::ModeChanged,
                old: Some(ea.clone()),
                new: Some(eb.clone()),
                media: Vec::new(),
            }),
            Some(eb) if ea.content != eb.content || ea.kind != eb.kind => out.push(FileDiff {
                path: p.clone(),
                kind: DiffKind::Modified,
                old: Some(ea.clone()),
                new: Some(eb.clone()),
                media: Vec::new(),
            }),
            _ => {}
        }
    }
    for (p, eb) in b {
        if !a.contains_key(p) {
            added.push((p, eb));
        }
    }
    let mut by_content: BTreeMap<ObjectId, Vec<(&String, &FlatEntry)>> = BTreeMap::new();
    for (p, e) in &deleted {
        if e.size > 0 {
            by_content.entry(e.content).or_default().push((p, e));
        }
    }
    let mut renamed_from: HashSet<&String> = HashSet::new();
    for (p, e) in &added {
        let src = if e.size > 0 {
            by_content.get_mut(&e.content).and_then(|v| {
                if v.is_empty() {
                    None
                } else {
                    Some(v.remove(0))
                }
            })
        } else {
            None
        };
        match src {
            Some((from, old)) => {
                renamed_from.insert(from);
                out.push(FileDiff {
                    path: (*p).clone(),
                    kind: DiffKind::Renamed { from: from.clone() },
                    old: Some(old.clone()),
                    new: Some((*e).clone()),
                    media: Vec::new(),
                });
            }
            None => out.push(FileDiff {
                path: (*p).clone(),
                kind: DiffKind::Added,
                old: None,
                new: Some((*e).clone()),
                media: Vec::new(),
            }),
        }
    }
    for (p, e) in deleted {
        if !renamed_from.contains(p) {
            out.push(FileDiff {
                path: p.clone(),
                kind: DiffKind::Deleted,
                old: Some(e.clone()),
                new: None,
                media: Vec::new(),
            });
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path));
    out
}
