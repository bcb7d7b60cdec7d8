//! Building trees from the index and flattening trees into path maps.
use std::collections::BTreeMap;

use mediagit_format::index::{IndexEntry, IndexKind};
use mediagit_format::object::Timestamp;
use mediagit_format::{EntryKind, ObjectId, ObjectKind, Tree, TreeEntry};

use crate::error::{RepoError, Result};
use crate::odb::{Odb, PackSession};

/// One file of a flattened tree.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Writes the trees for the index entries and returns the root tree id.
pub fn write_tree<'a>(
    session: &mut PackSession<'_>,
    entries: impl Iterator<Item = &'a IndexEntry>,
) -> Result<ObjectId> {
    build_tree(entries, &mut |bytes| {
        session.put_object(ObjectKind::Tree, bytes)
    })
}

/// The root tree id the index entries would get, without storing anything.
pub fn tree_id_of<'a>(entries: impl Iterator<Item = &'a IndexEntry>) -> Result<ObjectId> {
    build_tree(entries, &mut |bytes| Ok(ObjectId::hash(bytes)))
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
pub fn flatten(odb: &Odb, tree: &ObjectId) -> Result<FlatTree> {
    let mut out = BTreeMap::new();
    flatten_into(odb, tree, "", &mut out)?;
    Ok(out)
}

fn flatten_into(odb: &Odb, tree: &ObjectId, prefix: &str, out: &mut FlatTree) -> Result<()> {
    let t = odb.read_tree(tree)?;
    for e in t.entries {
        let path = if prefix.is_empty() {
            e.name.clone()
        } else {
            format!("{prefix}/{}", e.name)
        };
        match &e.kind {
            EntryKind::Dir { tree } => flatten_into(odb, tree, &path, out)?,
            file => {
                if let Some(f) = flat_entry(file) {
                    out.insert(path, f);
                }
            }
        }
    }
    Ok(())
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
            content: ObjectId::hash(target.as_bytes()),
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
