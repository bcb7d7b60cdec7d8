//! Building trees from the index and flattening trees into path maps.
use std::collections::{BTreeMap, HashMap};

use mediagit_format::index::{IndexEntry, IndexKind};
use mediagit_format::limits;
use mediagit_format::object::Timestamp;
use mediagit_format::{EntryKind, ObjectId, ObjectKind, Tree, TreeEntry};

use crate::error::{RepoError, Result};
use crate::odb::{Odb, PackSession};

/// One file of a flattened tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlatEntry {
    pub kind: IndexKind,
    pub size: u64,
    pub mtime: Timestamp,
    /// SHA-256 of the content (of the target, for a symlink).
    pub content: ObjectId,
    pub manifest: ObjectId,
    pub target: Option<String>,
}

impl FlatEntry {
    /// Same content and mode (mtime is not compared).
    pub fn same_content(&self, other: &FlatEntry) -> bool {
        self.kind == other.kind && self.content == other.content
    }

    pub fn from_index(e: &IndexEntry) -> FlatEntry {
        FlatEntry {
            kind: e.kind,
            size: e.stat.size,
            mtime: e.stat.mtime,
            content: e.content,
            manifest: e.manifest,
            target: e.target.clone(),
        }
    }
}

pub type FlatTree = BTreeMap<String, FlatEntry>;

/// Writes the trees for the index entries and returns the root tree id;
/// every tree's id (written or already stored) is pushed to `trees`.
pub fn write_tree<'a>(
    session: &mut PackSession<'_>,
    entries: impl Iterator<Item = &'a IndexEntry>,
    trees: &mut Vec<ObjectId>,
) -> Result<ObjectId> {
    build_tree(entries, &mut |bytes| {
        let id = session.put_object(ObjectKind::Tree, bytes)?;
        trees.push(id);
        Ok(id)
    })
}

/// The root tree id the index entries would get, without storing anything.
pub fn tree_id_of<'a>(
    entries: impl Iterator<Item = &'a IndexEntry>,
    codec: &crate::codec::ObjectCodec,
) -> Result<ObjectId> {
    build_tree(entries, &mut |bytes| Ok(codec.id(ObjectKind::Tree, bytes)))
}

type TreeSink<'s> = dyn FnMut(&[u8]) -> Result<ObjectId> + 's;

/// Builds the trees bottom-up in one pass over `entries`, which come
/// sorted by path (as the index keeps them): the files of a directory are
/// contiguous, so only the directories on the path of the current entry
/// are open at a time, and memory follows the depth and the widest
/// directory, not the number of files.
fn build_tree<'a>(
    entries: impl Iterator<Item = &'a IndexEntry>,
    sink: &mut TreeSink<'_>,
) -> Result<ObjectId> {
    // The open directories: the root, then each one below it on the path
    // of the last entry, with its name and the entries collected so far.
    let mut open: Vec<(&'a str, Vec<TreeEntry>)> = vec![("", Vec::new())];
    for e in entries {
        let (dirs, name) = match e.path.rfind('/') {
            Some(i) => (&e.path[..i], &e.path[i + 1..]),
            None => ("", e.path.as_str()),
        };
        let parts = if dirs.is_empty() {
            Vec::new()
        } else {
            dirs.split('/').collect()
        };
        let common = parts
            .iter()
            .zip(open.iter().skip(1))
            .take_while(|(p, (o, _))| *p == o)
            .count();
        while open.len() > common + 1 {
            close_dir(&mut open, sink)?;
        }
        for p in &parts[common..] {
            open.push((p, Vec::new()));
        }
        let kind = match e.kind {
            IndexKind::Symlink => EntryKind::Symlink {
                target: e.target.clone().unwrap_or_default(),
                mtime: e.stat.mtime,
            },
            k => EntryKind::File {
                executable: k == IndexKind::Executable,
                size: e.stat.size,
                mtime: e.stat.mtime,
                content: e.content,
                manifest: e.manifest,
            },
        };
        if let Some((_, top)) = open.last_mut() {
            top.push(TreeEntry {
                name: name.to_string(),
                kind,
            });
        }
    }
    while open.len() > 1 {
        close_dir(&mut open, sink)?;
    }
    let root = open.pop().map(|(_, e)| e).unwrap_or_default();
    write_dir(sink, root, &[])
}

/// Writes the innermost open directory and adds it to its parent.
fn close_dir(open: &mut Vec<(&str, Vec<TreeEntry>)>, sink: &mut TreeSink<'_>) -> Result<()> {
    let Some((name, entries)) = open.pop() else {
        return Ok(());
    };
    let names: Vec<&str> = open.iter().skip(1).map(|(n, _)| *n).chain([name]).collect();
    let tree = write_dir(sink, entries, &names)?;
    if let Some((_, parent)) = open.last_mut() {
        parent.push(TreeEntry {
            name: name.to_string(),
            kind: EntryKind::Dir { tree },
        });
    }
    Ok(())
}

/// Sorts a directory's entries by name (a subdirectory `a` closes after a
/// file `a.txt`, whose path sorts before `a/...`) and writes it. `path` is
/// the directory's, for the error when a name is both a file and a
/// directory (entries not sorted by path would show up the same way).
fn write_dir(
    sink: &mut TreeSink<'_>,
    mut entries: Vec<TreeEntry>,
    path: &[&str],
) -> Result<ObjectId> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = entries.windows(2).find(|w| w[0].name == w[1].name) {
        let mut p = path.join("/");
        if !p.is_empty() {
            p.push('/');
        }
        p.push_str(&w[0].name);
        return Err(RepoError::Invalid(format!(
            "index holds both a file {p:?} and files below it"
        )));
    }
    let tree = Tree { entries };
    tree.validate()
        .map_err(|e| RepoError::format("tree being written", e))?;
    sink(&tree.encode())
}

/// All files of a tree, by path.
///
/// Trees come from the store and may be hostile: this never recurses (a
/// tree nested 20,000 levels deep cannot overflow the stack), refuses trees
/// deeper than [`limits::MAX_TREE_DEPTH`], reads each distinct subtree once,
/// and counts the files a tree expands to before building anything, so
/// subtrees shared thousands of times (a few kilobytes of trees naming
/// billions of files) are refused above [`limits::MAX_TREE_FILES`] instead
/// of exhausting memory.
pub fn flatten(odb: &Odb, tree: &ObjectId) -> Result<FlatTree> {
    // From sorted pairs, the map is built in bulk.
    Ok(flatten_sorted(odb, tree)?.0.into_iter().collect())
}

/// [`flatten`] into a [`SortedTree`]: about two thirds of the map's memory,
/// and each tree is dropped once its last use has been expanded (names
/// moved, not copied), so a million-file tree is not held twice.
pub fn flatten_sorted(odb: &Odb, tree: &ObjectId) -> Result<SortedTree> {
    let mut trees = read_bounded(odb, tree)?;
    // Trees are consumed as they are expanded when each is named once (the
    // usual case); a tree named twice (two identical directories) is
    // expanded twice, so then every tree is read in place instead.
    let mut named: HashMap<ObjectId, usize> = HashMap::with_capacity(trees.len());
    for (t, _) in trees.values() {
        for e in &t.entries {
            if let EntryKind::Dir { tree } = &e.kind {
                *named.entry(*tree).or_default() += 1;
            }
        }
    }
    let consume = named.values().all(|&n| n == 1) && !named.contains_key(tree);
    drop(named);
    let total: u64 = trees.get(tree).map_or(0, |t| t.1);
    let mut out: Vec<(String, FlatEntry)> = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    // (tree, path prefix) still to expand; at most depth × width entries.
    let mut stack: Vec<(ObjectId, String)> = vec![(*tree, String::new())];
    while let Some((id, prefix)) = stack.pop() {
        type Named<'t> = Box<dyn Iterator<Item = (std::borrow::Cow<'t, str>, EntryKind)> + 't>;
        let entries: Named<'_> = if consume {
            let owned = trees
                .remove(&id)
                .map(|(t, _)| t.entries)
                .unwrap_or_default();
            Box::new(owned.into_iter().map(|e| (e.name.into(), e.kind)))
        } else {
            match trees.get(&id) {
                Some((t, _)) => Box::new(
                    t.entries
                        .iter()
                        .map(|e| (e.name.as_str().into(), e.kind.clone())),
                ),
                None => Box::new(std::iter::empty()),
            }
        };
        for (name, kind) in entries {
            let path = if prefix.is_empty() {
                name.into_owned()
            } else {
                format!("{prefix}/{name}")
            };
            match &kind {
                EntryKind::Dir { tree } => stack.push((*tree, path)),
                file => {
                    if let Some(f) = flat_entry(file) {
                        out.push((path, f));
                    }
                }
            }
        }
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(SortedTree(out))
}

/// The files of a tree as one vector sorted by path (unique, as a tree's
/// names are): what [`FlatTree`] holds, at two thirds of its memory, for
/// the commands that only look paths up and walk them in order.
#[derive(Debug, Default, Clone)]
pub struct SortedTree(pub Vec<(String, FlatEntry)>);

impl SortedTree {
    pub fn get(&self, path: &str) -> Option<&FlatEntry> {
        self.0
            .binary_search_by(|(p, _)| p.as_str().cmp(path))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> + '_ {
        self.0.iter().map(|(p, _)| p)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &FlatEntry)> + '_ {
        self.0.iter().map(|(p, e)| (p, e))
    }
}

/// Every distinct tree below `root` (itself included), each read once,
/// with the number of files it expands to; refuses trees too deep or too
/// large to flatten. Iterative, post-order.
fn read_bounded(odb: &Odb, root: &ObjectId) -> Result<HashMap<ObjectId, (Tree, u64)>> {
    let too = |reason: String| RepoError::CorruptObject {
        id: *root,
        kind: "tree",
        location: "flattening".into(),
        reason,
    };
    // id -> (tree, files, height, done, path bytes); valid once `done`.
    let mut trees: HashMap<ObjectId, (Tree, u64, usize, bool, u64)> = HashMap::new();
    let mut stack: Vec<(ObjectId, bool, usize)> = vec![(*root, false, 1)];
    let deep = || {
        too(format!(
            "directories nested more than {} levels deep",
            limits::MAX_TREE_DEPTH
        ))
    };
    while let Some((id, expanded, depth)) = stack.pop() {
        if !expanded {
            match trees.get(&id) {
                Some((_, _, _, true, _)) => continue,
                // Seen but not done: it would contain itself, which content
                // addressing makes impossible; refuse rather than loop.
                Some(_) => return Err(too(format!("tree {id} contains itself"))),
                None => {}
            }
            if depth > limits::MAX_TREE_DEPTH {
                return Err(deep());
            }
            let t = odb.read_tree(&id)?;
            stack.push((id, true, depth));
            for e in &t.entries {
                if let EntryKind::Dir { tree } = &e.kind {
                    if !trees.get(tree).is_some_and(|t| t.3) {
                        stack.push((*tree, false, depth + 1));
                    }
                }
            }
            trees.insert(id, (t, 0, 0, false, 0));
            continue;
        }
        let (files, height, bytes) = {
            let t = &trees[&id].0;
            let mut files: u64 = 0;
            let mut height = 1;
            // Bytes of the paths below this tree, relative to it.
            let mut bytes: u64 = 0;
            for e in &t.entries {
                let name = e.name.len() as u64;
                match &e.kind {
                    EntryKind::Dir { tree } => {
                        let (_, f, h, _, b) = &trees[tree];
                        files = files.saturating_add(*f);
                        height = height.max(h + 1);
                        bytes = bytes
                            .saturating_add(f.saturating_mul(name + 1))
                            .saturating_add(*b);
                    }
                    _ => {
                        files += 1;
                        bytes = bytes.saturating_add(name);
                    }
                }
            }
            (files, height, bytes)
        };
        // A tree done before at a shallower place may sit deeper here.
        if height.saturating_add(depth - 1) > limits::MAX_TREE_DEPTH {
            return Err(deep());
        }
        if files > limits::MAX_TREE_FILES {
            return Err(too(format!(
                "the tree expands to more than {} files",
                limits::MAX_TREE_FILES
            )));
        }
        if bytes > limits::MAX_TREE_PATH_BYTES {
            return Err(too(format!(
                "the paths of its files add up to more than {} bytes",
                limits::MAX_TREE_PATH_BYTES
            )));
        }
        let slot = trees.get_mut(&id).expect("inserted when expanded");
        slot.1 = files;
        slot.2 = height;
        slot.3 = true;
        slot.4 = bytes;
    }
    Ok(trees
        .into_iter()
        .map(|(id, (t, files, ..))| (id, (t, files)))
        .collect())
}

/// The file (or symlink) a tree entry describes; `None` for a directory.
fn flat_entry(kind: &EntryKind) -> Option<FlatEntry> {
    match kind {
        EntryKind::Dir { .. } => None,
        EntryKind::File {
            executable,
            size,
            mtime,
            content,
            manifest,
        } => Some(FlatEntry {
            kind: if *executable {
                IndexKind::Executable
            } else {
                IndexKind::File
            },
            size: *size,
            mtime: *mtime,
            content: *content,
            manifest: *manifest,
            target: None,
        }),
        EntryKind::Symlink { target, mtime } => Some(FlatEntry {
            kind: IndexKind::Symlink,
            size: target.len() as u64,
            mtime: *mtime,
            content: crate::codec::content_id(target.as_bytes()),
            manifest: ObjectId::ZERO,
            target: Some(target.clone()),
        }),
    }
}

/// What a path names in a tree: a file (or symlink), or a directory.
pub enum Lookup {
    File(FlatEntry),
    Dir(ObjectId),
}

pub fn lookup(odb: &Odb, root: &ObjectId, path: &str) -> Result<Option<Lookup>> {
    if path.is_empty() {
        return Ok(Some(Lookup::Dir(*root)));
    }
    let mut tree = *root;
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let t = odb.read_tree(&tree)?;
        let Some(e) = t.get(part) else {
            return Ok(None);
        };
        let last = i + 1 == parts.len();
        match &e.kind {
            EntryKind::Dir { tree: sub } => {
                if last {
                    return Ok(Some(Lookup::Dir(*sub)));
                }
                tree = *sub;
            }
            _ if !last => return Ok(None),
            file => return Ok(flat_entry(file).map(Lookup::File)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediagit_format::index::StatInfo;
    use proptest::prelude::*;

    enum Node {
        Leaf(EntryKind),
        Dir(BTreeMap<String, Node>),
    }

    /// Every tree the entries make, by the obvious method: a whole nested
    /// map first, then each directory written after its subdirectories.
    fn reference(entries: &[IndexEntry], out: &mut Vec<Vec<u8>>) -> Option<()> {
        let mut root: BTreeMap<String, Node> = BTreeMap::new();
        for e in entries {
            let mut parts: Vec<&str> = e.path.split('/').collect();
            let name = parts.pop()?;
            let mut dir = &mut root;
            for p in parts {
                dir = match dir
                    .entry(p.to_string())
                    .or_insert_with(|| Node::Dir(BTreeMap::new()))
                {
                    Node::Dir(d) => d,
                    Node::Leaf(_) => return None,
                };
            }
            if dir.contains_key(name) {
                return None;
            }
            let kind = EntryKind::File {
                executable: false,
                size: e.stat.size,
                mtime: e.stat.mtime,
                content: e.content,
                manifest: e.manifest,
            };
            dir.insert(name.to_string(), Node::Leaf(kind));
        }
        fn write(dir: BTreeMap<String, Node>, out: &mut Vec<Vec<u8>>) -> ObjectId {
            let entries = dir
                .into_iter()
                .map(|(name, n)| TreeEntry {
                    name,
                    kind: match n {
                        Node::Leaf(k) => k,
                        Node::Dir(d) => EntryKind::Dir {
                            tree: write(d, out),
                        },
                    },
                })
                .collect();
            let bytes = Tree { entries }.encode();
            let id = ObjectId::hash(&bytes);
            out.push(bytes);
            id
        }
        write(root, out);
        Some(())
    }

    fn entry(path: String, n: u8) -> IndexEntry {
        IndexEntry {
            path,
            kind: IndexKind::File,
            stat: StatInfo {
                size: n as u64,
                ..Default::default()
            },
            content: ObjectId([n; 32]),
            manifest: ObjectId([n; 32]),
            target: None,
        }
    }

    proptest! {
        #[test]
        fn one_pass_builds_the_same_trees(
            paths in proptest::collection::btree_set(
                proptest::collection::vec(
                    proptest::sample::select(vec!["a", "a.b", "a-", "b", "a0", "c"]), 1..4),
                0..40),
        ) {
            let mut entries: Vec<IndexEntry> = paths
                .iter()
                .enumerate()
                .map(|(i, p)| entry(p.join("/"), i as u8))
                .collect();
            entries.sort_by(|a, b| a.path.cmp(&b.path));
            let mut want = Vec::new();
            let expected = reference(&entries, &mut want);
            let mut got = Vec::new();
            let r = build_tree(entries.iter(), &mut |bytes| {
                got.push(bytes.to_vec());
                Ok(ObjectId::hash(bytes))
            });
            match expected {
                Some(()) => {
                    prop_assert!(r.is_ok(), "{r:?}");
                    got.sort();
                    want.sort();
                    prop_assert_eq!(got, want);
                }
                None => {
                    let msg = r.expect_err("a file with files below it").to_string();
                    prop_assert!(msg.contains("and files below it"), "{}", msg);
                }
            }
        }
    }
}
