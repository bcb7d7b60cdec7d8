//! Reachability: the roots that keep objects alive, and the walk from them.
//!
//! Roots are every ref under `refs/` (branches, tags, and later remote-tracking
//! refs and the stash), a detached HEAD, every id in every reflog, and every
//! file staged in the worktree index (with every side of a conflicted path). `gc` keeps what is reachable from them;
//! `fsck` reports reachable objects that are missing or damaged.
use std::collections::{HashMap, VecDeque};
use std::path::Path;

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
    pub objects: mediagit_format::id::IdSet,
    pub unreadable: Vec<Unreadable>,
    /// Root refs whose value cannot be parsed.
    pub bad_refs: Vec<(String, String)>,
    /// Tree entries whose size or content id disagrees with their
    /// manifest's (checkout refuses them; a crafted index could commit
    /// one). Not unreadable: `gc` may run; `fsck` reports them.
    pub mismatched: Vec<Unreadable>,
}

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
        if p.is_dir() {
            collect_reflog_ids(&p, &rel, out, bad);
            continue;
        }
        // A reflog that cannot be read keeps gc from running rather than
        // letting it delete what the reflog protects.
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => {
                bad.push((format!("reflog {rel}"), e.to_string()));
                continue;
            }
        };
        for line in text.lines() {
            let Some(entry) = crate::refs::ReflogEntry::parse(line) else {
                bad.push((
                    format!("reflog {rel}"),
                    format!("unreadable record {line:?}"),
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
    /// Every root, with the reason it is one. Unparseable refs are returned
    /// separately rather than failing.
    pub fn roots(&self, odb: &Odb) -> Result<(Vec<Root>, Vec<BadRoot>)> {
        let mut roots = Vec::new();
        let mut bad = Vec::new();
        for key in self.ref_keys("refs/")? {
            match self.read_ref(&key) {
                Ok(Some(id)) => {
                    let kind = odb
                        .locate(&id)
                        .map(|(_, l)| l.kind)
                        .unwrap_or(ObjectKind::Commit);
                    roots.push(Root { id, kind, why: key });
                }
                Ok(None) => {}
                Err(e) => bad.push((key, e.to_string())),
            }
        }
        let head = match self.workspace_opt() {
            Some(ws) => ws.head().map(Some),
            None => self.store().head(),
        };
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
        collect_reflog_ids(&ws.dir().join("logs"), "", &mut roots, &mut bad);
        if !ws.is_bare() {
            match ws.load_index() {
                Ok(idx) => {
                    // Staged files, and every side of an unresolved merge
                    // (the user has yet to choose among them).
                    let sides = idx.conflicts.iter().map(|c| &c.entry);
                    for e in idx.entries.values().chain(sides) {
                        if !e.manifest.is_zero() {
                            roots.push(Root {
                                id: e.manifest,
                                kind: ObjectKind::Manifest,
                                why: format!("index: {}", e.path),
                            });
                        }
                    }
                }
                Err(e) => bad.push(("index".into(), e.to_string())),
            }
        }
        Ok((roots, bad))
    }
}

/// Walks everything reachable from `roots`. `chunk_ok` says whether a chunk
/// is present and sound (chunks are not read here).
pub fn walk(odb: &Odb, roots: &[Root], chunk_ok: &dyn Fn(&ObjectId) -> bool) -> Reach {
    let mut reach = Reach::default();
    // (object, kind, who needs it, directory depth of a tree).
    let mut queue: VecDeque<(ObjectId, ObjectKind, String, usize)> = roots
        .iter()
        .map(|r| (r.id, r.kind, r.why.clone(), 1))
        .collect();
    let fail = |reach: &mut Reach, id: ObjectId, kind: ObjectKind, ctx: &str, e: RepoError| {
        reach.unreadable.push(Unreadable {
            id,
            kind,
            needed_by: ctx.to_string(),
            error: e.to_string(),
        })
    };
    // Bad chunks per manifest, so a manifest reached again from another
    // path or commit names that user of the damage too.
    let mut bad_in: HashMap<ObjectId, Vec<(ObjectId, String)>> = HashMap::new();
    // What each tree entry says about its file, checked against the
    // manifest once both are read: (manifest, size, content, where).
    let mut claims: Vec<(ObjectId, u64, ObjectId, String)> = Vec::new();
    let mut manifests: HashMap<ObjectId, (u64, ObjectId)> = HashMap::new();
    while let Some((id, kind, ctx, depth)) = queue.pop_front() {
        if !reach.objects.insert(id) {
            if let Some(bad) = bad_in.get(&id) {
                for (chunk, error) in bad {
                    reach.unreadable.push(Unreadable {
                        id: *chunk,
                        kind: ObjectKind::Chunk,
                        needed_by: ctx.clone(),
                        error: error.clone(),
                    });
                }
            }
            continue;
        }
        match kind {
            ObjectKind::Tag => match odb.read_tag(&id) {
                Ok(t) => {
                    queue.push_back((t.target, ObjectKind::Commit, format!("tag {}", t.name), 1))
                }
                Err(e) => fail(&mut reach, id, kind, &ctx, e),
            },
            ObjectKind::Commit => match odb.read_commit(&id) {
                Ok(c) => {
                    let here = format!("commit {}", id.short(12));
                    queue.push_back((c.tree, ObjectKind::Tree, format!("{here} (root tree)"), 1));
                    for p in c.parents {
                        queue.push_back((p, ObjectKind::Commit, format!("parent of {here}"), 1));
                    }
                }
                Err(e) => fail(&mut reach, id, kind, &ctx, e),
            },
            // Breadth first: a tree is first reached at its smallest depth.
            ObjectKind::Tree if depth > mediagit_format::limits::MAX_TREE_DEPTH => {
                reach.unreadable.push(Unreadable {
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
                    let base = ctx.trim_end_matches(" (root tree)").to_string();
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
                                let at = format!("{base}/{}", e.name).replacen("/", ": ", 1);
                                claims.push((manifest, size, content, at.clone()));
                                queue.push_back((manifest, ObjectKind::Manifest, at, depth + 1))
                            }
                            EntryKind::Symlink { .. } => {}
                        }
                    }
                }
                Err(e) => fail(&mut reach, id, kind, &ctx, e),
            },
            ObjectKind::Manifest => match odb.read_manifest(&id) {
                Ok(m) => {
                    manifests.insert(id, (m.size, m.content));
                    for c in m.chunks {
                        reach.objects.insert(c.id);
                        if !chunk_ok(&c.id) {
                            let error = if odb.contains(&c.id) {
                                "chunk is damaged"
                            } else {
                                "chunk is missing"
                            };
                            let bad = bad_in.entry(id).or_default();
                            if !bad.iter().any(|(b, _)| *b == c.id) {
                                bad.push((c.id, error.into()));
                                reach.unreadable.push(Unreadable {
                                    id: c.id,
                                    kind: ObjectKind::Chunk,
                                    needed_by: ctx.clone(),
                                    error: error.into(),
                                });
                            }
                        }
                    }
                }
                Err(e) => fail(&mut reach, id, kind, &ctx, e),
            },
            ObjectKind::Chunk => {
                if !chunk_ok(&id) {
                    reach.unreadable.push(Unreadable {
                        id,
                        kind,
                        needed_by: ctx,
                        error: "chunk is missing or damaged".into(),
                    });
                }
            }
        }
    }
    for (manifest, size, content, at) in claims {
        if let Some(&(m_size, m_content)) = manifests.get(&manifest) {
            if (m_size, m_content) != (size, content) {
                reach.mismatched.push(Unreadable {
                    id: manifest,
                    kind: ObjectKind::Manifest,
                    needed_by: at,
                    error: format!(
                        "the tree says {size} bytes with content {}, the manifest {m_size} bytes with content {}",
                        content.short(12),
                        m_content.short(12)
                    ),
                });
            }
        }
    }
    reach
}
