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

enum Node {
    Leaf(EntryKind),
    Dir(BTreeMap<String, Node>),
}

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

fn build_tree<'a>(
    entries: impl Iterator<Item = &'a IndexEntry>,
    sink: &mut TreeSink<'_>,
) -> Result<ObjectId> {
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for e in entries {
        let mut parts: Vec<&str> = e.path.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        let mut dir = &mut root;
        for p in parts {
            let node = dir
                .entry(p.to_string())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            dir = match node {
                Node::Dir(d) => d,
                Node::Leaf(_) => {
                    return Err(RepoError::Invalid(format!(
                        "index holds both a file {p:?} and files below it ({})",
                        e.path
                    )))
                }
            };
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
        dir.insert(name.to_string(), Node::Leaf(kind));
    }
    write_dir(sink, root)
}

fn write_dir(sink: &mut TreeSink<'_>, dir: BTreeMap<String, Node>) -> Result<ObjectId> {
    let mut entries = Vec::with_capacity(dir.len());
    for (name, node) in dir {
        let kind = match node {
            Node::Leaf(k) => k,
            Node::Dir(d) => EntryKind::Dir {
                tree: write_dir(sink, d)?,
            },
        };
        entries.push(TreeEntry { name, kind });
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
    let trees = read_bounded(odb, tree)?;
    let mut out = BTreeMap::new();
    // (tree, path prefix) still to expand; at most depth × width entries.
    let mut stack: Vec<(ObjectId, String)> = vec![(*tree, String::new())];
    while let Some((id, prefix)) = stack.pop() {
        let t = &trees[&id].0;
        for e in &t.entries {
            let path = if prefix.is_empty() {
                e.name.clone()
            } else {
                format!("{prefix}/{}", e.name)
            };
            match &e.kind {
                EntryKind::Dir { tree } => stack.push((*tree, path)),
                file => {
                    if let Some(f) = flat_entry(file) {
                        out.insert(path, f);
                    }
                }
            }
        }
    }
    Ok(out)
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
