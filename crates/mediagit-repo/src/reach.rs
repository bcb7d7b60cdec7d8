//! Reachability: the roots that keep objects alive, and the walk from them.
//!
//! Roots are every ref under `refs/` (branches, tags, and later remote-tracking
//! refs and the stash), a detached HEAD, every id in every reflog, and every
//! file staged in the worktree index (with every side of a conflicted path). `gc` keeps what is reachable from them;
//! `fsck` reports reachable objects that are missing or damaged.
use std::collections::{HashMap, VecDeque};
use std::path::Path;

use mediagit_format::id::IdMap;
use mediagit_format::{EntryKind, ObjectId, ObjectKind};

use crate::error::{RepoError, Result};
use crate::odb::Odb;
use crate::refs::Head;
use crate::repo::Repository;

/// A root: an object and why it is kept.
#[derive(Debug, Clone)]
pub struct Root {
    pub id: ObjectId,
    pub kind: ObjectKind,
    pub why: String,
}

/// A root that could not be read: (ref or file name, error).
pub type BadRoot = (String, String);

/// A reachable object that could not be read.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub id: ObjectId,
    pub kind: ObjectKind,
    /// Which commit/path/ref needs it.
    pub needed_by: String,
    pub error: String,
}

#[derive(Debug, Default)]
pub struct Reach {
    pub objects: IdList,
    pub unreadable: Vec<Unreadable>,
    /// Root refs whose value cannot be parsed.
    pub bad_refs: Vec<(String, String)>,
    /// Tree entries whose size or content id disagrees with their
    /// manifest's (checkout refuses them; a crafted index could commit
    /// one). Not unreadable: `gc` may run; `fsck` reports them.
    pub mismatched: Vec<Unreadable>,
}

/// A set of object ids kept as one sorted vector: 32 bytes an id, where a
/// hash set takes up to twice that (and twice again while it grows), for
/// the millions of objects a reachability walk returns.
#[derive(Debug, Default, Clone)]
pub struct IdList(Vec<ObjectId>);

impl IdList {
    pub fn from_unsorted(mut ids: Vec<ObjectId>) -> IdList {
        ids.sort_unstable();
        ids.dedup();
        ids.shrink_to_fit();
        IdList(ids)
    }

    pub fn contains(&self, id: &ObjectId) -> bool {
        self.0.binary_search(id).is_ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ObjectId> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a IdList {
    type Item = &'a ObjectId;
    type IntoIter = std::slice::Iter<'a, ObjectId>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// What an index root is needed by (the path is looked up only when there
/// is something to report: a million roots need no million strings).
pub const INDEX_ROOT: &str = "index";

fn collect_reflog_ids(dir: &Path, rel: &str, out: &mut Vec<Root>, bad: &mut Vec<BadRoot>) {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            bad.push((format!("reflog directory {}", dir.display()), e.to_string()));
            return;
        }
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let p = e.path();
        // Not through a link: a `logs/x -> /` would walk the whole disk.
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_reflog_ids(&p, &rel, out, bad);
            continue;
        }
        // A reflog that cannot be read keeps gc from running rather than
        // letting it delete what the reflog protects.
        let text = match crate::repo::read_private(&p, crate::repo::MAX_REFLOG_BYTES) {
            Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(None) => continue,
            Err(e) => {
                bad.push((format!("reflog {rel}"), e.to_string()));
                continue;
            }
        };
        for (n, line) in text.lines().enumerate() {
            let Some(entry) = crate::refs::ReflogEntry::parse(line) else {
                // Named by line, not echoed: its bytes may be anything.
                bad.push((
                    format!("reflog {rel}"),
                    format!("unreadable record on line {} ({} bytes)", n + 1, line.len()),
                ));
                continue;
            };
            for id in [entry.old, entry.new] {
                if !id.is_zero() {
                    out.push(Root {
                        id,
                        kind: ObjectKind::Commit,
                        why: format!("reflog {rel}"),
                    });
                }
            }
        }
    }
}

impl Repository {
    /// Names the staged files behind `index: manifest ID` in what `walk`
    /// reports (index roots carry no path: see [`INDEX_ROOT`]), reading
    /// the index again only if something is reported.
    pub fn name_index_users(&self, reach: &mut Reach) {
        let prefix = format!("{INDEX_ROOT}: manifest ");
        let wanted: std::collections::HashSet<ObjectId> = reach
            .unreadable
            .iter()
            .chain(&reach.mismatched)
            .filter_map(|u| u.needed_by.strip_prefix(&prefix)?.parse().ok())
            .collect();
        if wanted.is_empty() {
            return;
        }
        let Some(Ok(idx)) = self.workspace_opt().map(|ws| ws.load_index()) else {
            return;
        };
        // One pass over the index: the first path and the number of paths
        // of each manifest to name.
        let mut named: HashMap<ObjectId, (&str, usize)> = HashMap::new();
        let sides = idx.conflicts.iter().map(|c| &c.entry);
        for e in idx.entries.values().chain(sides) {
            if wanted.contains(&e.manifest) {
                named.entry(e.manifest).or_insert((e.path.as_str(), 0)).1 += 1;
            }
        }
        for u in reach
            .unreadable
            .iter_mut()
            .chain(reach.mismatched.iter_mut())
        {
            let Some(m) = u
                .needed_by
                .strip_prefix(&prefix)
                .and_then(|h| h.parse::<ObjectId>().ok())
            else {
                continue;
            };
            if let Some(&(first, n)) = named.get(&m) {
                u.needed_by = match n {
                    1 => format!("{INDEX_ROOT}: {first}"),
                    n => format!("{INDEX_ROOT}: {first} (and {} more)", n - 1),
                };
            }
        }
    }

    /// Every root, with the reason it is one. Unparseable refs are returned
    /// separately rather than failing.
    pub fn roots(&self, odb: &Odb) -> Result<(Vec<Root>, Vec<BadRoot>)> {
        let mut roots = Vec::new();
        let mut bad = Vec::new();
        for (key, r) in self.ref_entries("refs/")? {
            match r {
                Ok(id) => {
                    let kind = odb
                        .locate(&id)
                        .map(|(_, l)| l.kind)
                        .unwrap_or(ObjectKind::Commit);
                    roots.push(Root { id, kind, why: key });
                }
                Err(e) => bad.push((key, e.to_string())),
            }
        }
        let head = self.head_opt();
        match head {
            Ok(Some(Head::Detached(id))) => roots.push(Root {
                id,
                kind: ObjectKind::Commit,
                why: "HEAD".into(),
            }),
            Ok(_) => {}
            Err(e) => bad.push(("HEAD".into(), e.to_string())),
        }
        let Some(ws) = self.workspace_opt() else {
            return Ok((roots, bad));
        };
        match ws.check_logs_dir() {
            Ok(()) => collect_reflog_ids(&ws.dir().join("logs"), "", &mut roots, &mut bad),
            Err(e) => bad.push(("reflogs".into(), e.to_string())),
        }
        // An operation under way (FORMAT.md §7.2) needs every commit it
        // names until it is continued or aborted.
        match self.operation() {
            Ok(Some(op)) => {
                let ids = [op.orig_head, op.tip, op.other]
                    .into_iter()
                    .chain(op.made.iter().copied())
                    .chain(op.remaining.iter().copied());
                roots.extend(ids.map(|id| Root {
                    id,
                    kind: ObjectKind::Commit,
                    why: "the operation under way (.mediagit/operation)".into(),
                }));
            }
            Ok(None) => {}
            Err(e) => bad.push(("operation".into(), e.to_string())),
        }
        if !ws.is_bare() {
            match ws.index_manifests() {
                Ok(ids) => {
                    // Staged files, and every side of an unresolved merge
                    // (the user has yet to choose among them).
                    roots.extend(ids.into_iter().map(|id| Root {
                        id,
                        kind: ObjectKind::Manifest,
                        why: INDEX_ROOT.into(),
                    }));
                }
                Err(e) => bad.push(("index".into(), e.to_string())),
            }
        }
        Ok((roots, bad))
    }
}

/// Walks everything reachable from `roots`. `chunk_ok` says whether a chunk
/// is present and sound (chunks are not read here).
///
/// Memory follows the number of distinct objects, at about 40 bytes each
/// (commits, trees and manifests read, with a fingerprint of each
/// manifest's size and content for the tree entries that name it again),
/// plus 32 bytes a chunk: a manifest is read where a tree names it, not
/// queued, and where an object is needed is spelled out only for what is
/// reported.
pub fn walk(odb: &Odb, roots: &[Root], chunk_ok: &dyn Fn(&ObjectId) -> bool) -> Reach {
    let mut w = Walk {
        odb,
        chunk_ok,
        reach: Reach::default(),
        seen: IdMap::default(),
        chunks: Vec::new(),
        bad_in: HashMap::new(),
        key: std::collections::hash_map::RandomState::new(),
    };
    // (object, kind, who needs it, directory depth of a tree): commits,
    // tags and trees only.
    let mut queue: VecDeque<(ObjectId, ObjectKind, String, usize)> = VecDeque::new();
    for r in roots {
        match r.kind {
            ObjectKind::Manifest if r.why == INDEX_ROOT => {
                w.manifest(r.id, &|| format!("{INDEX_ROOT}: manifest {}", r.id), None)
            }
            ObjectKind::Manifest => w.manifest(r.id, &|| r.why.clone(), None),
            ObjectKind::Chunk => w.chunk(r.id, &|| r.why.clone()),
            kind => queue.push_back((r.id, kind, r.why.clone(), 1)),
        }
    }
    while let Some((id, kind, ctx, depth)) = queue.pop_front() {
        if w.seen.insert(id, NO_FINGERPRINT).is_some() {
            continue;
        }
        match kind {
            ObjectKind::Tag => match odb.read_tag(&id) {
                Ok(t) => {
                    // A tag may name a tag (peeled in turn); anything else
                    // it names must be a commit.
                    let next = match odb.locate(&t.target).map(|(_, l)| l.kind) {
                        Some(ObjectKind::Tag) => ObjectKind::Tag,
                        _ => ObjectKind::Commit,
                    };
                    queue.push_back((t.target, next, format!("tag {}", t.name), 1))
                }
                Err(e) => w.fail(id, kind, &ctx, e),
            },
            ObjectKind::Commit => match odb.read_commit(&id) {
                Ok(c) => {
                    let here = format!("commit {}", id.short(12));
                    queue.push_back((c.tree, ObjectKind::Tree, format!("{here} (root tree)"), 1));
                    for p in c.parents {
                        queue.push_back((p, ObjectKind::Commit, format!("parent of {here}"), 1));
                    }
                }
                Err(e) => w.fail(id, kind, &ctx, e),
            },
            // Breadth first: a tree is first reached at its smallest depth.
            ObjectKind::Tree if depth > mediagit_format::limits::MAX_TREE_DEPTH => {
                w.reach.unreadable.push(Unreadable {
                    id,
                    kind,
                    needed_by: ctx.chars().take(200).collect(),
                    error: format!(
                        "directories nested more than {} levels deep; no command can check it out",
                        mediagit_format::limits::MAX_TREE_DEPTH
                    ),
                })
            }
            ObjectKind::Tree => match odb.read_tree(&id) {
                Ok(t) => {
                    let base = ctx.trim_end_matches(" (root tree)");
                    for e in t.entries {
                        match e.kind {
                            EntryKind::Dir { tree } => queue.push_back((
                                tree,
                                ObjectKind::Tree,
                                format!("{base}/{}", e.name),
                                depth + 1,
                            )),
                            EntryKind::File {
                                manifest,
                                size,
                                content,
                                ..
                            } => {
                                let at = || format!("{base}/{}", e.name).replacen('/', ": ", 1);
                                w.manifest(manifest, &at, Some((size, content)));
                            }
                            EntryKind::Symlink { .. } => {}
                        }
                    }
                }
                Err(e) => w.fail(id, kind, &ctx, e),
            },
            ObjectKind::Manifest => w.manifest(id, &|| ctx.clone(), None),
            ObjectKind::Chunk => w.chunk(id, &|| ctx.clone()),
        }
    }
    let Walk {
        mut reach,
        seen,
        mut chunks,
        ..
    } = w;
    chunks.reserve_exact(seen.len());
    chunks.extend(seen.into_keys());
    reach.objects = IdList::from_unsorted(chunks);
    reach
}

/// The fingerprint of an object that is not a readable manifest.
const NO_FINGERPRINT: u64 = 0;

struct Walk<'a> {
    odb: &'a Odb,
    chunk_ok: &'a dyn Fn(&ObjectId) -> bool,
    reach: Reach,
    /// Objects reached (other than chunks), with a fingerprint of a
    /// readable manifest's (size, content).
    seen: IdMap<u64>,
    /// Chunks reached (repeats included; sorted out at the end).
    chunks: Vec<ObjectId>,
    /// Bad chunks per manifest, so a manifest reached again from another
    /// path or commit names that user of the damage too.
    bad_in: HashMap<ObjectId, Vec<(ObjectId, String)>>,
    /// Keys the fingerprints (a tree crafted to match one cannot aim).
    key: std::collections::hash_map::RandomState,
}

impl Walk<'_> {
    fn fail(&mut self, id: ObjectId, kind: ObjectKind, ctx: &str, e: RepoError) {
        self.reach.unreadable.push(Unreadable {
            id,
            kind,
            needed_by: ctx.to_string(),
            error: e.to_string(),
        })
    }

    fn fingerprint(&self, size: u64, content: &ObjectId) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = self.key.build_hasher();
        size.hash(&mut h);
        content.hash(&mut h);
        // Never the "not a readable manifest" value.
        h.finish().max(1)
    }

    fn chunk(&mut self, id: ObjectId, ctx: &dyn Fn() -> String) {
        self.chunks.push(id);
        if !(self.chunk_ok)(&id) {
            self.reach.unreadable.push(Unreadable {
                id,
                kind: ObjectKind::Chunk,
                needed_by: ctx(),
                error: "chunk is missing or damaged".into(),
            });
        }
    }

    /// A manifest, named by a tree entry that says `claim` (size, content)
    /// of it, or by a root.
    fn manifest(&mut self, id: ObjectId, ctx: &dyn Fn() -> String, claim: Option<(u64, ObjectId)>) {
        if let Some(&fp) = self.seen.get(&id) {
            if let Some(bad) = self.bad_in.get(&id) {
                let needed_by = ctx();
                for (chunk, error) in bad {
                    self.reach.unreadable.push(Unreadable {
                        id: *chunk,
                        kind: ObjectKind::Chunk,
                        needed_by: needed_by.clone(),
                        error: error.clone(),
                    });
                }
            }
            if let Some((size, content)) = claim {
                if fp != NO_FINGERPRINT && fp != self.fingerprint(size, &content) {
                    // Read again only to say what differs.
                    if let Ok(m) = self.odb.read_manifest(&id) {
                        self.mismatch(id, ctx, (size, content), (m.size, m.content));
                    }
                }
            }
            return;
        }
        let m = match self.odb.read_manifest(&id) {
            Ok(m) => m,
            Err(e) => {
                self.seen.insert(id, NO_FINGERPRINT);
                return self.fail(id, ObjectKind::Manifest, &ctx(), e);
            }
        };
        let fp = self.fingerprint(m.size, &m.content);
        self.seen.insert(id, fp);
        if let Some((size, content)) = claim {
            if (size, content) != (m.size, m.content) {
                self.mismatch(id, ctx, (size, content), (m.size, m.content));
            }
        }
        for c in m.chunks {
            self.chunks.push(c.id);
            if !(self.chunk_ok)(&c.id) {
                let error = if self.odb.contains(&c.id) {
                    "chunk is damaged"
                } else {
                    "chunk is missing"
                };
                let bad = self.bad_in.entry(id).or_default();
                if !bad.iter().any(|(b, _)| *b == c.id) {
                    bad.push((c.id, error.into()));
                    self.reach.unreadable.push(Unreadable {
                        id: c.id,
                        kind: ObjectKind::Chunk,
                        needed_by: ctx(),
                        error: error.into(),
                    });
                }
            }
        }
    }

    fn mismatch(
        &mut self,
        id: ObjectId,
        ctx: &dyn Fn() -> String,
        (size, content): (u64, ObjectId),
        (m_size, m_content): (u64, ObjectId),
    ) {
        self.reach.mismatched.push(Unreadable {
            id,
            kind: ObjectKind::Manifest,
            needed_by: ctx(),
            error: format!(
                "the tree says {size} bytes with content {}, the manifest {m_size} bytes with content {}",
                content.short(12),
                m_content.short(12)
            ),
        });
    }
}
