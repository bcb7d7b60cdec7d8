//! Building trees from the index and flattening trees into path maps.
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

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

pub(crate) type TreeSink<'s> = dyn FnMut(&[u8]) -> Result<ObjectId> + 's;

/// Builds the trees bottom-up in one pass over `entries`, which come
/// sorted by path (as the index keeps them): the files of a directory are
/// contiguous, so only the directories on the path of the current entry
/// are open at a time, and memory follows the depth and the widest
/// directory, not the number of files.
pub(crate) fn build_tree<'a>(
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
/// deeper than [`limits::MAX_TREE_DEPTH`], reads each distinct subtree once
/// to check it (again to list it only beyond a memory budget), and counts
/// the files, path bytes and entries a tree expands to before building
/// anything, so subtrees shared thousands of times (a few kilobytes of
/// trees naming billions of files, or millions of entries over and over)
/// are refused above the limits of [`limits`] instead of exhausting memory
/// or time.
pub fn flatten(odb: &Odb, tree: &ObjectId) -> Result<FlatTree> {
    let mut w = walk(odb, tree)?;
    let mut out = Vec::with_capacity(usize::try_from(w.len()).unwrap_or(0));
    while let Some((p, e)) = w.current() {
        out.push((p.to_string(), e.clone()));
        w.advance()?;
    }
    // In path order: the map is built in bulk.
    Ok(out.into_iter().collect())
}

/// The files of a tree in path order, one at a time: a [`flatten`] that
/// holds no list (a checkout of a million files walks its target tree
/// instead of keeping 140 MiB of it). The trees are checked and counted
/// first, as for [`flatten`]; those beyond [`KEPT_TREES_BUDGET`] are read
/// again when they are listed, and each kept tree is dropped after its
/// last listing. A tree that is not kept and appears in several places
/// (identical directories) is kept after it is read again, within the same
/// budget, until its last listing.
pub fn walk<'o>(odb: &'o Odb, tree: &ObjectId) -> Result<TreeWalk<'o>> {
    walk_keeping(odb, tree, KEPT_TREES_BUDGET)
}

/// [`walk`] keeping at most `keep` bytes of decoded trees between checking
/// and listing them (0: every tree is read again when listed). What is
/// listed does not depend on `keep`, only the reads and the memory.
pub fn walk_keeping<'o>(odb: &'o Odb, tree: &ObjectId, keep: usize) -> Result<TreeWalk<'o>> {
    let Bounded {
        files,
        kept,
        expansions,
    } = read_bounded(odb, tree, keep)?;
    // Each kept tree is put in path order once, here.
    let mut kept_bytes = 0usize;
    let kept = kept
        .into_iter()
        .map(|(id, t)| {
            let l = Listing::of(t, &files);
            kept_bytes += l.cost();
            (id, Rc::new(l))
        })
        .collect();
    let mut w = TreeWalk {
        root: *tree,
        keep,
        files,
        all_expansions: expansions.clone(),
        expansions,
        kept,
        kept_bytes,
        ..TreeWalk::empty(odb)
    };
    w.start()?;
    Ok(w)
}

/// A cursor over the files of a tree in path order (byte order of the full
/// paths, as the index sorts them: `a.txt` before `a/b`), made by [`walk`].
/// [`TreeWalk::current`] is the file the cursor is at; [`TreeWalk::advance`]
/// moves on; [`TreeWalk::rewind`] starts over (reading again the trees it
/// no longer keeps: the same objects, verified by id, so the same files).
/// With [`TreeWalk::only`], it stops only at marked files and does not
/// read the directories that hold none.
pub struct TreeWalk<'o> {
    odb: &'o Odb,
    root: ObjectId,
    keep: usize,
    /// Files each distinct tree expands to (from `read_bounded`).
    files: HashMap<ObjectId, u64>,
    /// Listings of each tree still to come, and all of them (for rewind).
    expansions: HashMap<ObjectId, u64>,
    all_expansions: HashMap<ObjectId, u64>,
    kept: HashMap<ObjectId, Rc<Listing>>,
    kept_bytes: usize,
    /// The path of the directory being listed.
    dir: String,
    stack: Vec<Frame>,
    /// The current file's path and entry.
    path: String,
    current: Option<FlatEntry>,
    /// The current file's place in path order, and the next file's.
    position: u64,
    next_position: u64,
    only: Option<Marks>,
    /// Trees are kept (within the budget) past their last listing of a
    /// pass, for the passes after a rewind.
    retain: bool,
}

/// A tree's entries that list files (files, and directories holding some),
/// by index, in path order: a directory sorts as its name followed by `/`.
/// Made once per tree read (kept trees keep it).
struct Listing {
    tree: Tree,
    order: Vec<u32>,
}

impl Listing {
    fn of(tree: Tree, files: &HashMap<ObjectId, u64>) -> Listing {
        let lists = |e: &TreeEntry| match &e.kind {
            // A directory without files adds nothing (and a forged tree
            // naming one empty tree a million times costs no sorting).
            EntryKind::Dir { tree } => files.get(tree).is_some_and(|&n| n > 0),
            _ => true,
        };
        let mut order: Vec<u32> = (0..tree.entries.len() as u32)
            .filter(|&i| lists(&tree.entries[i as usize]))
            .collect();
        // Entries are sorted by name already (trees are checked): a stable
        // sort of nearly sorted input is close to linear.
        let is_dir = |e: &TreeEntry| matches!(e.kind, EntryKind::Dir { .. });
        order.sort_by(|&a, &b| {
            let (a, b) = (&tree.entries[a as usize], &tree.entries[b as usize]);
            let (x, y) = (a.name.as_bytes(), b.name.as_bytes());
            let n = x.len().min(y.len());
            x[..n].cmp(&y[..n]).then_with(|| {
                let next = |s: &[u8], dir: bool| s.get(n).copied().or(dir.then_some(b'/'));
                next(x, is_dir(a)).cmp(&next(y, is_dir(b)))
            })
        });
        Listing { tree, order }
    }

    fn cost(&self) -> usize {
        tree_cost(&self.tree) + 4 * self.order.len()
    }
}

/// A directory being listed: its listing, the next place in its order,
/// and the length of `dir` before it.
struct Frame {
    listing: Rc<Listing>,
    next: usize,
    dir_len: usize,
}

/// One bit per file of a walk, by place in path order (a million files:
/// 125 KiB).
#[derive(Debug, Clone, Default)]
pub struct Marks {
    bits: Vec<u64>,
    count: u64,
}

impl Marks {
    pub fn new(files: u64) -> Marks {
        Marks {
            bits: vec![0; usize::try_from(files.div_ceil(64)).unwrap_or(0)],
            count: 0,
        }
    }

    /// Marks file `i` (beyond the size given to `new`: ignored).
    pub fn set(&mut self, i: u64) {
        if let Some(w) = usize::try_from(i / 64)
            .ok()
            .and_then(|w| self.bits.get_mut(w))
        {
            let bit = 1u64 << (i % 64);
            if *w & bit == 0 {
                *w |= bit;
                self.count += 1;
            }
        }
    }

    pub fn get(&self, i: u64) -> bool {
        usize::try_from(i / 64)
            .ok()
            .and_then(|w| self.bits.get(w))
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    /// How many files are marked.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether any of files `start..start + len` is marked.
    pub fn any_in(&self, start: u64, len: u64) -> bool {
        let end = start.saturating_add(len);
        let mut i = start;
        while i < end {
            let Some(&word) = usize::try_from(i / 64).ok().and_then(|w| self.bits.get(w)) else {
                return false;
            };
            let lo = i % 64;
            let width = (64 - lo).min(end - i);
            let mask = match width {
                64 => u64::MAX,
                w => ((1u64 << w) - 1) << lo,
            };
            if word & mask != 0 {
                return true;
            }
            i += width;
        }
        false
    }
}

impl<'o> TreeWalk<'o> {
    /// An empty tree's walk (no commit yet).
    pub fn empty(odb: &'o Odb) -> TreeWalk<'o> {
        TreeWalk {
            odb,
            root: ObjectId::ZERO,
            keep: 0,
            files: HashMap::new(),
            expansions: HashMap::new(),
            all_expansions: HashMap::new(),
            kept: HashMap::new(),
            kept_bytes: 0,
            dir: String::new(),
            stack: Vec::new(),
            path: String::new(),
            current: None,
            position: 0,
            next_position: 0,
            only: None,
            retain: false,
        }
    }

    /// How many files the tree lists (checked against the limits).
    pub fn len(&self) -> u64 {
        self.files.get(&self.root).copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file the walk is at, `None` once past the last.
    pub fn current(&self) -> Option<(&str, &FlatEntry)> {
        self.current.as_ref().map(|e| (self.path.as_str(), e))
    }

    /// The current file's place in path order among all the tree's files
    /// (0 for the first), also when only marked files are visited.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Keeps trees (within the budget) after their last listing in a pass,
    /// so that passes after a rewind read again only what did not fit
    /// (call before the first pass to keep everything that fits).
    pub fn retain_for_rewind(&mut self) {
        self.retain = true;
    }

    /// From the next rewind on, visits only the files `marks` marks, and
    /// reads no directory that holds none of them (`None`: every file).
    pub fn only(&mut self, marks: Option<Marks>) {
        self.only = marks;
    }

    /// Starts over at the first file.
    pub fn rewind(&mut self) -> Result<()> {
        self.expansions = self.all_expansions.clone();
        self.stack.clear();
        self.dir.clear();
        self.start()
    }

    fn start(&mut self) -> Result<()> {
        self.current = None;
        self.position = 0;
        self.next_position = 0;
        let root_files = self.len();
        let wanted = self.only.as_ref().is_none_or(|m| m.any_in(0, root_files));
        if root_files > 0 && wanted {
            self.enter(self.root, "")?;
            self.next_file()?;
        }
        Ok(())
    }

    /// Moves to the next file.
    pub fn advance(&mut self) -> Result<()> {
        if self.current.is_some() {
            self.next_file()?;
        }
        Ok(())
    }

    fn enter(&mut self, id: ObjectId, name: &str) -> Result<()> {
        let dir_len = self.dir.len();
        if !name.is_empty() {
            if !self.dir.is_empty() {
                self.dir.push('/');
            }
            self.dir.push_str(name);
        }
        // Listings of this tree still to come after this one.
        let left = self.expansions.get_mut(&id).map_or(0, |n| {
            *n = n.saturating_sub(1);
            *n
        });
        let listing = match self.kept.get(&id) {
            Some(l) if left == 0 && !self.retain => {
                let l = l.clone();
                // Its last listing: no longer kept once this one is done.
                if self.kept.remove(&id).is_some() {
                    self.kept_bytes = self.kept_bytes.saturating_sub(l.cost());
                }
                l
            }
            Some(l) => l.clone(),
            None => {
                // Read again (checked and counted by `read_bounded`).
                let l = Rc::new(Listing::of(self.odb.read_tree(&id)?, &self.files));
                let cost = l.cost();
                if (left > 0 || self.retain) && self.kept_bytes.saturating_add(cost) <= self.keep {
                    self.kept_bytes += cost;
                    self.kept.insert(id, l.clone());
                }
                l
            }
        };
        self.stack.push(Frame {
            listing,
            next: 0,
            dir_len,
        });
        Ok(())
    }

    fn next_file(&mut self) -> Result<()> {
        loop {
            let Some(frame) = self.stack.last_mut() else {
                self.current = None;
                return Ok(());
            };
            let Some(&i) = frame.listing.order.get(frame.next) else {
                let len = frame.dir_len;
                self.stack.pop();
                self.dir.truncate(len);
                continue;
            };
            frame.next += 1;
            let listing = frame.listing.clone();
            let e = &listing.tree.entries[i as usize];
            match &e.kind {
                EntryKind::Dir { tree } => {
                    let n = self.files.get(tree).copied().unwrap_or(0);
                    if let Some(m) = &self.only {
                        if !m.any_in(self.next_position, n) {
                            self.next_position += n;
                            continue;
                        }
                    }
                    self.enter(*tree, &e.name)?;
                }
                file => {
                    let at = self.next_position;
                    self.next_position += 1;
                    if self.only.as_ref().is_some_and(|m| !m.get(at)) {
                        continue;
                    }
                    if let Some(f) = flat_entry(file) {
                        self.path.clear();
                        if !self.dir.is_empty() {
                            self.path.push_str(&self.dir);
                            self.path.push('/');
                        }
                        self.path.push_str(&e.name);
                        self.current = Some(f);
                        self.position = at;
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Decoded trees a flatten keeps between checking them and listing their
/// files, in estimated bytes ([`tree_cost`]); the others are read again.
/// Small and medium trees (every tree of a 100,000-file repository with
/// short names) are read once.
const KEPT_TREES_BUDGET: usize = 32 << 20;

/// A decoded tree's memory, estimated: the vector, and per entry its
/// struct and name.
fn tree_cost(t: &Tree) -> usize {
    64 + t
        .entries
        .iter()
        .map(|e| std::mem::size_of::<TreeEntry>() + e.name.len())
        .sum::<usize>()
}

/// What [`read_bounded`] learned about the distinct trees below a root
/// (every one checked against the limits).
struct Bounded {
    /// Files each tree expands to.
    files: HashMap<ObjectId, u64>,
    /// The decoded trees that fit the budget ([`tree_cost`]).
    kept: HashMap<ObjectId, Tree>,
    /// How many times each tree that holds files is expanded in listing
    /// the root's files (once per place it appears).
    expansions: HashMap<ObjectId, u64>,
}

/// What a tree holds, as [`read_bounded`] needs it once the trees below
/// are counted: kept instead of the tree itself (a forged tree of 256 MiB
/// at each of 1,024 levels must not be held whole on the way down).
struct Summary {
    entries: u64,
    /// Bytes of all its entries' names.
    names: u64,
    files: u64,
    /// Bytes of its files' names.
    file_names: u64,
    /// Each distinct subtree: how many entries name it, with their names'
    /// bytes.
    dirs: Vec<(ObjectId, u64, u64)>,
}

impl Summary {
    fn of(t: &Tree) -> Summary {
        let mut s = Summary {
            entries: t.entries.len() as u64,
            names: 0,
            files: 0,
            file_names: 0,
            dirs: Vec::new(),
        };
        let mut dirs: Vec<(ObjectId, u64)> = Vec::new();
        for e in &t.entries {
            let name = e.name.len() as u64;
            s.names += name;
            match &e.kind {
                EntryKind::Dir { tree } => dirs.push((*tree, name)),
                _ => {
                    s.files += 1;
                    s.file_names += name;
                }
            }
        }
        dirs.sort_unstable_by_key(|d| d.0);
        for (c, name) in dirs {
            match s.dirs.last_mut() {
                Some((last, n, bytes)) if *last == c => {
                    *n += 1;
                    *bytes += name;
                }
                _ => s.dirs.push((c, 1, name)),
            }
        }
        s
    }
}

/// What [`read_bounded`] found for one tree; valid once `done`.
#[derive(Clone, Copy, Default)]
struct Counted {
    done: bool,
    files: u64,
    height: usize,
    /// Bytes of the paths of its files, relative to it.
    path_bytes: u64,
    /// Entries a listing of it goes through: its own, and those of each
    /// subtree with files once per naming.
    visits: u64,
    /// Bytes of the names of those entries.
    names: u64,
}

/// Every distinct tree below `root` (itself included), each read once,
/// with the number of files it expands to; refuses trees too deep or too
/// large to flatten, or too costly to list. Iterative, post-order: a tree's
/// [`Summary`] is held from its first visit until its subtrees are counted
/// (those on the current path); the tree itself only within `keep` bytes
/// ([`tree_cost`]).
fn read_bounded(odb: &Odb, root: &ObjectId, keep: usize) -> Result<Bounded> {
    let too = |reason: String| RepoError::CorruptObject {
        id: *root,
        kind: "tree",
        location: "flattening".into(),
        reason,
    };
    let mut trees: HashMap<ObjectId, Counted> = HashMap::new();
    let mut kept: HashMap<ObjectId, Tree> = HashMap::new();
    let mut kept_bytes = 0usize;
    // Each done tree's distinct subtrees that hold files, with how many
    // times it names each; and the order trees were done in (children
    // before parents), to count expansions from the root down.
    let mut edges: HashMap<ObjectId, Vec<(ObjectId, u64)>> = HashMap::new();
    let mut done_order: Vec<ObjectId> = Vec::new();
    let mut stack: Vec<(ObjectId, Option<Summary>, usize)> = vec![(*root, None, 1)];
    // A tree's subtrees are read together when it is first visited (one
    // request for a directory's subdirectories on an object store, not
    // one each), verified by `read_many`, and decoded when their turn
    // comes; at most PREFETCH_BYTES of them wait at once.
    const PREFETCH_BYTES: usize = 32 << 20;
    let mut prefetched: HashMap<ObjectId, Vec<u8>> = HashMap::new();
    let mut prefetched_bytes = 0usize;
    let deep = || {
        too(format!(
            "directories nested more than {} levels deep",
            limits::MAX_TREE_DEPTH
        ))
    };
    while let Some((id, visited, depth)) = stack.pop() {
        let Some(sum) = visited else {
            match trees.get(&id) {
                Some(c) if c.done => continue,
                // Seen but not done: it would contain itself, which content
                // addressing makes impossible; refuse rather than loop.
                Some(_) => return Err(too(format!("tree {id} contains itself"))),
                None => {}
            }
            if depth > limits::MAX_TREE_DEPTH {
                return Err(deep());
            }
            let t = match prefetched.remove(&id) {
                Some(b) => {
                    prefetched_bytes = prefetched_bytes.saturating_sub(b.len());
                    Tree::decode(&b).map_err(|e| RepoError::format(format!("tree {id}"), e))?
                }
                None => odb.read_tree(&id)?,
            };
            let sum = Summary::of(&t);
            let cost = tree_cost(&t);
            if kept_bytes.saturating_add(cost) <= keep {
                kept_bytes += cost;
                kept.insert(id, t);
            }
            let children: Vec<ObjectId> = sum
                .dirs
                .iter()
                .filter(|(c, ..)| !trees.get(c).is_some_and(|t| t.done))
                .map(|(c, ..)| *c)
                .collect();
            if children.len() > 1 && prefetched_bytes < PREFETCH_BYTES {
                let want: Vec<ObjectId> = children
                    .iter()
                    .filter(|c| !prefetched.contains_key(c))
                    .copied()
                    .collect();
                // What does not come back here is read alone later, which
                // reports its error.
                for (c, b) in odb.read_many(&want, ObjectKind::Tree) {
                    prefetched_bytes += b.len();
                    prefetched.insert(c, b);
                }
            }
            stack.push((id, Some(sum), depth));
            stack.extend(children.into_iter().map(|c| (c, None, depth + 1)));
            trees.insert(id, Counted::default());
            continue;
        };
        let mut c = Counted {
            done: true,
            files: sum.files,
            height: 1,
            path_bytes: sum.file_names,
            visits: sum.entries,
            names: sum.names,
        };
        let mut named: Vec<(ObjectId, u64)> = Vec::new();
        for (child, n, name_bytes) in &sum.dirs {
            let d = trees.get(child).copied().unwrap_or_default();
            c.files = c.files.saturating_add(d.files.saturating_mul(*n));
            c.height = c.height.max(d.height + 1);
            // Each naming: the name and a `/` before each file's path,
            // then the paths below.
            c.path_bytes = c
                .path_bytes
                .saturating_add(d.files.saturating_mul(name_bytes.saturating_add(*n)))
                .saturating_add(d.path_bytes.saturating_mul(*n));
            if d.files > 0 {
                c.visits = c.visits.saturating_add(d.visits.saturating_mul(*n));
                c.names = c.names.saturating_add(d.names.saturating_mul(*n));
                named.push((*child, *n));
            }
        }
        // A tree done before at a shallower place may sit deeper here.
        if c.height.saturating_add(depth - 1) > limits::MAX_TREE_DEPTH {
            return Err(deep());
        }
        if c.files > limits::MAX_TREE_FILES {
            return Err(too(format!(
                "the tree expands to more than {} files",
                limits::MAX_TREE_FILES
            )));
        }
        if c.path_bytes > limits::MAX_TREE_PATH_BYTES {
            return Err(too(format!(
                "the paths of its files add up to more than {} bytes",
                limits::MAX_TREE_PATH_BYTES
            )));
        }
        if c.visits > limits::MAX_TREE_VISITS {
            return Err(too(format!(
                "listing its files would go through more than {} tree entries (directories named over and over)",
                limits::MAX_TREE_VISITS
            )));
        }
        if c.names > limits::MAX_TREE_VISITED_NAME_BYTES {
            return Err(too(format!(
                "listing its files would go through more than {} bytes of names (directories named over and over)",
                limits::MAX_TREE_VISITED_NAME_BYTES
            )));
        }
        // A tree without files is never listed: not kept.
        if c.files == 0 {
            if let Some(t) = kept.remove(&id) {
                kept_bytes = kept_bytes.saturating_sub(tree_cost(&t));
            }
        }
        trees.insert(id, c);
        edges.insert(id, named);
        done_order.push(id);
    }
    // Parents are done after their children: in reverse, each tree's
    // expansions are final before they are passed on to its subtrees.
    let mut expansions: HashMap<ObjectId, u64> = HashMap::with_capacity(done_order.len());
    expansions.insert(*root, 1);
    for id in done_order.iter().rev() {
        let n = expansions.get(id).copied().unwrap_or(0);
        for (c, k) in edges.remove(id).unwrap_or_default() {
            let e = expansions.entry(c).or_default();
            *e = e.saturating_add(k.saturating_mul(n));
        }
    }
    Ok(Bounded {
        files: trees.into_iter().map(|(id, c)| (id, c.files)).collect(),
        kept,
        expansions,
    })
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
