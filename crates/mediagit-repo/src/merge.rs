//! Three-way merges of trees, merge bases, and the per-file strategies
//! that decide what a merge does with a path both sides changed.
//!
//! Why trees and not bytes: media files cannot be merged byte-wise, so a
//! merge works on the flattened trees of the merge base and both sides,
//! path by path, comparing content ids only. No file content is read:
//! merging two branches that each edited a few files of a large corpus
//! costs three tree walks. A path both sides changed differently goes to a
//! [`MergeStrategy`], which may take a side (by type, by `[merge]`
//! patterns in config.toml, or, later, by looking at media metadata) or
//! leave a conflict for the user to resolve per file.
//!
//! Renames are followed by content id: a path one side deleted while
//! adding the same content elsewhere is a rename, and the other side's
//! change of the old path is merged at the new one.
//!
//! Criss-cross histories (several lowest common ancestors) merge against
//! a virtual base: the ancestors merged with each other first, as Git's
//! recursive and ort strategies do; where they disagree, the virtual base
//! keeps their own base's version (or the first ancestor's), so a change
//! both merges already agreed on is never reported twice.
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use mediagit_format::ObjectId;

use crate::error::{RepoError, Result};
use crate::odb::Odb;
use crate::tree::{flatten, FlatEntry, FlatTree};

/// Which side of a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The checked-out commit (HEAD).
    Ours,
    /// The commit merged in.
    Theirs,
}

/// What a strategy decided for one path both sides changed differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// This version (`None`: the path is deleted).
    Take(Option<FlatEntry>),
    /// Left to the user: the index keeps base, ours and theirs.
    Conflict,
}

/// Decides, per file, what a merge does with a path that both sides
/// changed differently. Paths changed on one side only never reach a
/// strategy.
pub trait MergeStrategy {
    /// Short name, for messages.
    fn name(&self) -> &str;
    fn decide(
        &self,
        path: &str,
        base: Option<&FlatEntry>,
        ours: Option<&FlatEntry>,
        theirs: Option<&FlatEntry>,
    ) -> Decision;
}

/// The default: every such path is a conflict.
pub struct ConflictStrategy;

impl MergeStrategy for ConflictStrategy {
    fn name(&self) -> &str {
        "conflict"
    }
    fn decide(
        &self,
        _: &str,
        _: Option<&FlatEntry>,
        _: Option<&FlatEntry>,
        _: Option<&FlatEntry>,
    ) -> Decision {
        Decision::Conflict
    }
}

/// Takes one side's version (`ours` or `theirs`, also what `-X` picks).
pub struct SideStrategy(pub Side);

impl MergeStrategy for SideStrategy {
    fn name(&self) -> &str {
        match self.0 {
            Side::Ours => "ours",
            Side::Theirs => "theirs",
        }
    }
    fn decide(
        &self,
        _: &str,
        _: Option<&FlatEntry>,
        ours: Option<&FlatEntry>,
        theirs: Option<&FlatEntry>,
    ) -> Decision {
        Decision::Take(match self.0 {
            Side::Ours => ours.cloned(),
            Side::Theirs => theirs.cloned(),
        })
    }
}

/// `[merge] ours = [...]`, `theirs = [...]`: paths matching a pattern
/// (`.mediagitignore` syntax) take that side; the others go to `rest`.
/// A path matching both lists is a conflict.
pub struct PatternStrategy<'r> {
    ours: Option<Gitignore>,
    theirs: Option<Gitignore>,
    rest: Box<dyn MergeStrategy + 'r>,
}

/// Most patterns each `[merge]` list may hold.
pub const MAX_MERGE_PATTERNS: usize = 1_000;

impl<'r> PatternStrategy<'r> {
    pub fn new(
        ours: &[String],
        theirs: &[String],
        rest: Box<dyn MergeStrategy + 'r>,
    ) -> Result<PatternStrategy<'r>> {
        let build = |key: &str, patterns: &[String]| -> Result<Option<Gitignore>> {
            if patterns.is_empty() {
                return Ok(None);
            }
            if patterns.len() > MAX_MERGE_PATTERNS {
                return Err(RepoError::Invalid(format!(
                    "config.toml: merge.{key} holds {} patterns; at most {MAX_MERGE_PATTERNS}",
                    patterns.len()
                )));
            }
            let mut b = GitignoreBuilder::new("/");
            for p in patterns {
                b.add_line(None, p).map_err(|e| {
                    RepoError::Invalid(format!("config.toml: merge.{key}: {p:?}: {e}"))
                })?;
            }
            b.build()
                .map(Some)
                .map_err(|e| RepoError::Invalid(format!("config.toml: merge.{key}: {e}")))
        };
        Ok(PatternStrategy {
            ours: build("ours", ours)?,
            theirs: build("theirs", theirs)?,
            rest,
        })
    }

    fn matches(m: &Option<Gitignore>, path: &str) -> bool {
        m.as_ref().is_some_and(|m| {
            m.matched_path_or_any_parents(std::path::Path::new("/").join(path), false)
                .is_ignore()
        })
    }
}

impl MergeStrategy for PatternStrategy<'_> {
    fn name(&self) -> &str {
        "patterns"
    }
    fn decide(
        &self,
        path: &str,
        base: Option<&FlatEntry>,
        ours: Option<&FlatEntry>,
        theirs: Option<&FlatEntry>,
    ) -> Decision {
        match (
            Self::matches(&self.ours, path),
            Self::matches(&self.theirs, path),
        ) {
            (true, false) => Decision::Take(ours.cloned()),
            (false, true) => Decision::Take(theirs.cloned()),
            (true, true) => Decision::Conflict,
            (false, false) => self.rest.decide(path, base, ours, theirs),
        }
    }
}

/// Why a path conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// Both sides changed the file differently.
    Content,
    /// Both sides added a different file at the path.
    AddAdd,
    /// One side deleted the file, the other changed it.
    DeleteModify,
    /// One side renamed the file, the other deleted it.
    RenameDelete,
    /// One side has a file where the other has a directory.
    FileDirectory,
}

impl ConflictKind {
    pub fn describe(self) -> &'static str {
        match self {
            ConflictKind::Content => "both changed",
            ConflictKind::AddAdd => "both added",
            ConflictKind::DeleteModify => "deleted on one side, changed on the other",
            ConflictKind::RenameDelete => "renamed on one side, deleted on the other",
            ConflictKind::FileDirectory => "a file on one side, a directory on the other",
        }
    }
}

/// A path the merge left to the user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathConflict {
    pub path: String,
    pub kind: ConflictKind,
    pub base: Option<FlatEntry>,
    pub ours: Option<FlatEntry>,
    pub theirs: Option<FlatEntry>,
}

/// The result of merging three trees.
#[derive(Debug, Default, Clone)]
pub struct TreeMerge {
    /// Every path that merged cleanly (conflicted paths are absent).
    pub merged: FlatTree,
    /// In path order.
    pub conflicts: Vec<PathConflict>,
    /// Renames followed: (side, old path, new path).
    pub renames: Vec<(Side, String, String)>,
}

impl TreeMerge {
    /// What the working tree holds after the merge: the merged files, and
    /// at each conflicted path our version, or theirs where we have none
    /// (so a file we deleted and they changed can be looked at).
    pub fn provisional(&self) -> FlatTree {
        let mut t = self.merged.clone();
        for c in &self.conflicts {
            if let Some(e) = c.ours.as_ref().or(c.theirs.as_ref()) {
                t.insert(c.path.clone(), e.clone());
            }
        }
        t
    }
}

fn same(a: Option<&FlatEntry>, b: Option<&FlatEntry>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.same_content(b),
        (None, None) => true,
        _ => false,
    }
}

/// Exact renames from `base` to `side`: a path gone from `side` whose
/// content `side` added at a new path. Each old and new path once.
fn renames(base: &FlatTree, side: &FlatTree) -> BTreeMap<String, String> {
    let mut added: HashMap<(ObjectId, u8), Vec<&String>> = HashMap::new();
    for (p, e) in side {
        if !base.contains_key(p) {
            added.entry((e.content, e.kind as u8)).or_default().push(p);
        }
    }
    let mut out = BTreeMap::new();
    if added.is_empty() {
        return out;
    }
    let mut taken: HashSet<&String> = HashSet::new();
    for (p, e) in base {
        if side.contains_key(p) {
            continue;
        }
        if let Some(cands) = added.get(&(e.content, e.kind as u8)) {
            if let Some(n) = cands.iter().find(|n| !taken.contains(**n)) {
                taken.insert(n);
                out.insert(p.clone(), (*n).clone());
            }
        }
    }
    out
}

/// The name a side's version gets beside the path: `a/clip.mov` ->
/// `a/clip~ours.mov` (`resolve --both`, and a file that gives way to the
/// other side's directory).
pub fn side_name(path: &str, side: &str) -> String {
    let (dir, name) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    match name.rfind('.') {
        Some(d) if d > 0 => format!("{dir}{}~{side}{}", &name[..d], &name[d..]),
        _ => format!("{dir}{name}~{side}"),
    }
}

/// Moves the entry at `old` to `new`; whether there was one.
fn move_entry(t: &mut FlatTree, old: &str, new: &str) -> bool {
    match t.remove(old) {
        Some(e) => {
            t.insert(new.to_string(), e);
            true
        }
        None => false,
    }
}

/// Merges `ours` and `theirs` against `base`, path by path.
pub fn merge_trees(
    base: &FlatTree,
    ours: &FlatTree,
    theirs: &FlatTree,
    strategy: &dyn MergeStrategy,
) -> TreeMerge {
    let ours_renames = renames(base, ours);
    let theirs_renames = renames(base, theirs);
    // Views in which a renamed file sits at its new path on every side.
    let mut b = base.clone();
    let mut o = ours.clone();
    let mut t = theirs.clone();
    let mut followed = Vec::new();
    let mut rename_delete: HashSet<String> = HashSet::new();
    // Both renamed a file the same way: the base follows.
    for (old, new) in &ours_renames {
        if theirs_renames.get(old) == Some(new) {
            move_entry(&mut b, old, new);
        }
    }
    // Renamed on one side only (renamed differently on both: both new
    // paths are kept as they are).
    for (side, renamed, other_renamed, other) in [
        (Side::Ours, &ours_renames, &theirs_renames, &mut t),
        (Side::Theirs, &theirs_renames, &ours_renames, &mut o),
    ] {
        for (old, new) in renamed {
            if other_renamed.contains_key(old) || other.contains_key(new) || b.contains_key(new) {
                continue; // something else stands there: merged as is
            }
            match move_entry(other, old, new) {
                true => followed.push((side, old.clone(), new.clone())),
                false => {
                    rename_delete.insert(new.clone());
                }
            }
            move_entry(&mut b, old, new);
        }
    }
    let mut paths: Vec<&String> = b.keys().chain(o.keys()).chain(t.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut out = TreeMerge {
        renames: followed,
        ..Default::default()
    };
    for p in paths {
        let (be, oe, te) = (b.get(p), o.get(p), t.get(p));
        let take = if same(oe, te) {
            oe.cloned()
        } else if same(be, oe) && !rename_delete.contains(p) {
            te.cloned()
        } else if same(be, te) && !rename_delete.contains(p) {
            oe.cloned()
        } else {
            match strategy.decide(p, be, oe, te) {
                Decision::Take(e) => e,
                Decision::Conflict => {
                    let kind = if rename_delete.contains(p) {
                        ConflictKind::RenameDelete
                    } else if oe.is_none() || te.is_none() {
                        ConflictKind::DeleteModify
                    } else if be.is_none() {
                        ConflictKind::AddAdd
                    } else {
                        ConflictKind::Content
                    };
                    out.conflicts.push(PathConflict {
                        path: p.clone(),
                        kind,
                        base: be.cloned(),
                        ours: oe.cloned(),
                        theirs: te.cloned(),
                    });
                    continue;
                }
            }
        };
        if let Some(e) = take {
            out.merged.insert(p.clone(), e);
        }
    }
    // A file that stands where the other side has files below it.
    let clashing: Vec<String> = out
        .merged
        .keys()
        .filter(|p| {
            let below = format!("{p}/");
            out.merged
                .range(below.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&below))
                || out.conflicts.iter().any(|c| c.path.starts_with(&below))
        })
        .cloned()
        .collect();
    // The directory stays; the file moves aside to `NAME~ours` (or
    // `~theirs`, the side that has it), conflicted: kept only if the user
    // resolves it so (an index cannot hold a conflict at a path with files
    // below it).
    for p in clashing {
        let Some(e) = out.merged.remove(&p) else {
            continue;
        };
        let ours_has = o.get(&p).is_some_and(|x| x.same_content(&e));
        let (tag, ours, theirs) = match ours_has {
            true => ("ours", Some(e), None),
            false => ("theirs", None, Some(e)),
        };
        out.conflicts.push(PathConflict {
            path: side_name(&p, tag),
            kind: ConflictKind::FileDirectory,
            base: None,
            ours,
            theirs,
        });
    }
    out.conflicts.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Resolves every conflict of a virtual base: the base's version where
/// there is one, else ours.
struct VirtualStrategy;

impl MergeStrategy for VirtualStrategy {
    fn name(&self) -> &str {
        "virtual-base"
    }
    fn decide(
        &self,
        _: &str,
        base: Option<&FlatEntry>,
        ours: Option<&FlatEntry>,
        _: Option<&FlatEntry>,
    ) -> Decision {
        Decision::Take(base.or(ours).cloned())
    }
}

/// How deep virtual bases nest before the first common ancestor is used
/// as it is (real histories need one or two levels).
const MAX_VIRTUAL_DEPTH: usize = 16;

/// Every ancestor of `starts` (themselves included) with its parents.
fn ancestry(odb: &Odb, starts: &[ObjectId]) -> Result<HashMap<ObjectId, Vec<ObjectId>>> {
    let mut seen: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    let mut queue: VecDeque<ObjectId> = starts.iter().copied().collect();
    while let Some(c) = queue.pop_front() {
        if seen.contains_key(&c) {
            continue;
        }
        let parents = odb.read_commit(&c)?.parents;
        queue.extend(parents.iter().copied());
        seen.insert(c, parents);
    }
    Ok(seen)
}

/// The lowest common ancestors of the commits `a` and those of `b`:
/// common ancestors that are no ancestor of another common ancestor.
/// Ordered newest first (by committer time, then id).
pub fn merge_bases(odb: &Odb, a: &[ObjectId], b: &[ObjectId]) -> Result<Vec<ObjectId>> {
    let left = ancestry(odb, a)?;
    let right = ancestry(odb, b)?;
    let common: HashMap<&ObjectId, &Vec<ObjectId>> = left
        .iter()
        .filter(|(c, _)| right.contains_key(*c))
        .collect();
    // Ancestors of common ancestors are common too: a common ancestor is
    // not lowest exactly when it is some common ancestor's parent.
    let not_lowest: HashSet<&ObjectId> = common.values().flat_map(|ps| ps.iter()).collect();
    let mut lowest: Vec<(i64, ObjectId)> = Vec::new();
    for c in common.keys() {
        if !not_lowest.contains(*c) {
            lowest.push((odb.read_commit(c)?.committer.time, **c));
        }
    }
    lowest.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    Ok(lowest.into_iter().map(|(_, c)| c).collect())
}

/// The files of a commit.
pub fn commit_files(odb: &Odb, commit: &ObjectId) -> Result<FlatTree> {
    let tree = odb.read_commit(commit)?.tree;
    flatten(odb, &tree)
}

/// The base to merge against: the one lowest common ancestor's files, none
/// (unrelated histories), or a virtual base for several.
pub fn base_files(odb: &Odb, lowest: &[ObjectId]) -> Result<FlatTree> {
    virtual_base(odb, lowest, 0)
}

fn virtual_base(odb: &Odb, lowest: &[ObjectId], depth: usize) -> Result<FlatTree> {
    let Some((first, rest)) = lowest.split_first() else {
        return Ok(FlatTree::new());
    };
    let mut acc = commit_files(odb, first)?;
    if depth >= MAX_VIRTUAL_DEPTH {
        return Ok(acc);
    }
    let mut merged_commits = vec![*first];
    for next in rest {
        let bases = merge_bases(odb, &merged_commits, std::slice::from_ref(next))?;
        let base = virtual_base(odb, &bases, depth + 1)?;
        let theirs = commit_files(odb, next)?;
        let m = merge_trees(&base, &acc, &theirs, &VirtualStrategy);
        let mut t = m.merged;
        for c in m.conflicts {
            // File/directory clashes: the directory's files stay.
            if c.kind != ConflictKind::FileDirectory {
                if let Some(e) = c.base.or(c.ours) {
                    t.insert(c.path, e);
                }
            }
        }
        acc = t;
        merged_commits.push(*next);
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediagit_format::index::IndexKind;
    use mediagit_format::object::Timestamp;

    fn f(content: &str) -> FlatEntry {
        FlatEntry {
            kind: IndexKind::File,
            size: content.len() as u64,
            mtime: Timestamp::default(),
            content: ObjectId::hash(content.as_bytes()),
            manifest: ObjectId::hash(format!("m{content}").as_bytes()),
            target: None,
        }
    }

    fn tree(entries: &[(&str, &str)]) -> FlatTree {
        entries.iter().map(|(p, c)| (p.to_string(), f(c))).collect()
    }

    fn content_of(t: &FlatTree, p: &str) -> Option<ObjectId> {
        t.get(p).map(|e| e.content)
    }

    #[test]
    fn changes_on_different_paths_merge_cleanly() {
        let base = tree(&[("a", "1"), ("b", "1"), ("c", "1")]);
        let ours = tree(&[("a", "2"), ("b", "1"), ("c", "1"), ("new", "x")]);
        let theirs = tree(&[("a", "1"), ("b", "3")]);
        let m = merge_trees(&base, &ours, &theirs, &ConflictStrategy);
        assert!(m.conflicts.is_empty());
        assert_eq!(content_of(&m.merged, "a"), Some(f("2").content));
        assert_eq!(content_of(&m.merged, "b"), Some(f("3").content));
        assert_eq!(content_of(&m.merged, "c"), None, "deleted by theirs");
        assert_eq!(content_of(&m.merged, "new"), Some(f("x").content));
    }

    #[test]
    fn same_path_changed_differently_conflicts_and_strategies_decide() {
        let base = tree(&[("a.psd", "1"), ("b", "1")]);
        let ours = tree(&[("a.psd", "2")]);
        let theirs = tree(&[("a.psd", "3"), ("b", "4")]);
        let m = merge_trees(&base, &ours, &theirs, &ConflictStrategy);
        let kinds: Vec<_> = m
            .conflicts
            .iter()
            .map(|c| (c.path.as_str(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("a.psd", ConflictKind::Content),
                ("b", ConflictKind::DeleteModify)
            ]
        );
        let m = merge_trees(&base, &ours, &theirs, &SideStrategy(Side::Theirs));
        assert!(m.conflicts.is_empty());
        assert_eq!(content_of(&m.merged, "a.psd"), Some(f("3").content));
        let p = PatternStrategy::new(&["*.psd".into()], &[], Box::new(ConflictStrategy)).unwrap();
        let m = merge_trees(&base, &ours, &theirs, &p);
        assert_eq!(content_of(&m.merged, "a.psd"), Some(f("2").content));
        assert_eq!(m.conflicts.len(), 1, "b still conflicts");
    }

    #[test]
    fn a_rename_on_one_side_carries_the_other_sides_edit() {
        let base = tree(&[("shots/a.mov", "v1")]);
        let ours = tree(&[("final/a.mov", "v1")]);
        let theirs = tree(&[("shots/a.mov", "v2")]);
        let m = merge_trees(&base, &ours, &theirs, &ConflictStrategy);
        assert!(m.conflicts.is_empty(), "{:?}", m.conflicts);
        assert_eq!(content_of(&m.merged, "final/a.mov"), Some(f("v2").content));
        assert!(!m.merged.contains_key("shots/a.mov"));
        assert_eq!(m.renames.len(), 1);
        // And the other way round.
        let m = merge_trees(&base, &theirs, &ours, &ConflictStrategy);
        assert!(m.conflicts.is_empty());
        assert_eq!(content_of(&m.merged, "final/a.mov"), Some(f("v2").content));
        // Renamed on one side, deleted on the other: a conflict.
        let m = merge_trees(&base, &ours, &tree(&[]), &ConflictStrategy);
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].kind, ConflictKind::RenameDelete);
        assert_eq!(m.conflicts[0].path, "final/a.mov");
    }

    #[test]
    fn add_add_and_file_directory_clashes_conflict() {
        let base = tree(&[]);
        let m = merge_trees(
            &base,
            &tree(&[("x", "1")]),
            &tree(&[("x", "2")]),
            &ConflictStrategy,
        );
        assert_eq!(m.conflicts[0].kind, ConflictKind::AddAdd);
        let m = merge_trees(
            &base,
            &tree(&[("x", "1")]),
            &tree(&[("x/y", "2")]),
            &ConflictStrategy,
        );
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].kind, ConflictKind::FileDirectory);
        assert_eq!(m.conflicts[0].path, "x~ours", "our file moves aside");
        assert!(m.conflicts[0].ours.is_some() && m.conflicts[0].theirs.is_none());
        assert!(m.merged.contains_key("x/y"));
        assert!(!m.merged.contains_key("x"));
        assert_eq!(m.provisional().len(), 2);
        // Same addition on both sides: clean.
        let m = merge_trees(
            &base,
            &tree(&[("x", "1")]),
            &tree(&[("x", "1")]),
            &ConflictStrategy,
        );
        assert!(m.conflicts.is_empty());
    }
}
