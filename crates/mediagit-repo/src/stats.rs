//! `stats`: what the repository holds and how well dedup and compression work.
use std::collections::{BTreeMap, HashMap, HashSet};

use mediagit_format::{EntryKind, ObjectId, ObjectKind};

use crate::error::Result;
use crate::odb::Odb;
use crate::reach::{walk, Root};
use crate::repo::Repository;
use crate::tree::flatten;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct KindStats {
    pub count: u64,
    /// Decoded bytes.
    pub raw_bytes: u64,
    /// Bytes as stored in packs (after compression), headers excluded.
    pub stored_bytes: u64,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TypeStats {
    /// File extension, lowercased ("" for none).
    pub ext: String,
    pub files: u64,
    /// Size of the files (HEAD).
    pub bytes: u64,
    /// Decoded and stored bytes of their distinct chunks.
    pub chunk_raw_bytes: u64,
    pub chunk_stored_bytes: u64,
    /// chunk_raw_bytes / chunk_stored_bytes (0 when nothing is stored).
    pub compression_ratio: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LargeFile {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Stats {
    pub packs: u64,
    pub pack_bytes: u64,
    pub objects: BTreeMap<&'static str, KindStats>,
    #[serde(rename = "commits")]
    pub commits_reachable: u64,
    /// Sum of the sizes of every file in every reachable commit: what
    /// copying each version in full would take.
    pub logical_bytes: u64,
    pub head_files: u64,
    pub head_bytes: u64,
    /// logical_bytes / raw bytes of all chunks.
    pub dedup_ratio: f64,
    /// raw / stored bytes of all chunks.
    pub compression_ratio: f64,
    pub by_type: Vec<TypeStats>,
    /// Largest files at HEAD.
    pub largest: Vec<LargeFile>,
}

/// Total size of the files below a tree (shared subtrees counted once per
/// occurrence, read once). Bounded depth: trees may be hostile.
fn tree_size(
    odb: &Odb,
    id: &ObjectId,
    memo: &mut HashMap<ObjectId, u64>,
    depth: usize,
) -> Result<u64> {
    if let Some(s) = memo.get(id) {
        return Ok(*s);
    }
    if depth > mediagit_format::limits::MAX_TREE_DEPTH {
        return Err(crate::error::RepoError::CorruptObject {
            id: *id,
            kind: "tree",
            location: "stats".into(),
            reason: format!(
                "directories nested more than {} levels deep",
                mediagit_format::limits::MAX_TREE_DEPTH
            ),
        });
    }
    let t = odb.read_tree(id)?;
    let mut total: u64 = 0;
    for e in t.entries {
        total = total.saturating_add(match e.kind {
            EntryKind::Dir { tree } => tree_size(odb, &tree, memo, depth + 1)?,
            EntryKind::File { size, .. } => size,
            EntryKind::Symlink { target, .. } => target.len() as u64,
        });
    }
    memo.insert(*id, total);
    Ok(total)
}

impl Repository {
    pub fn stats(&self, top: usize) -> Result<Stats> {
        let odb = self.odb()?;
        let mut s = Stats::default();
        // Pack sizes from one listing (no request per pack on an object store).
        let sizes: HashMap<String, u64> = self
            .storage()
            .list_meta("packs/")?
            .into_iter()
            .map(|l| (l.key, l.size))
            .collect();
        for p in odb.packs() {
            s.packs += 1;
            s.pack_bytes += sizes.get(&crate::odb::pack_key(&p)).copied().unwrap_or(0);
        }
        odb.for_each_object(|_, _, loc| {
            let k = s.objects.entry(loc.kind.name()).or_default();
            k.count += 1;
            k.raw_bytes += loc.raw_len as u64;
            k.stored_bytes += loc.stored_len as u64;
        });
        let chunks = s.objects.get("chunk").cloned().unwrap_or_default();
        // Logical size over all reachable commits.
        let (roots, _) = self.roots(odb)?;
        let commit_roots: Vec<Root> = roots
            .into_iter()
            .filter(|r| r.kind != ObjectKind::Manifest)
            .collect();
        let reach = walk(odb, &commit_roots, &|_| true);
        let mut memo = HashMap::new();
        for id in &reach.objects {
            if matches!(odb.locate(id), Some((_, l)) if l.kind == ObjectKind::Commit) {
                s.commits_reachable += 1;
                let c = odb.read_commit(id)?;
                s.logical_bytes = s
                    .logical_bytes
                    .saturating_add(tree_size(odb, &c.tree, &mut memo, 1)?);
            }
        }
        s.dedup_ratio = if chunks.raw_bytes > 0 {
            s.logical_bytes as f64 / chunks.raw_bytes as f64
        } else {
            0.0
        };
        s.compression_ratio = if chunks.stored_bytes > 0 {
            chunks.raw_bytes as f64 / chunks.stored_bytes as f64
        } else {
            0.0
        };
        // By file type and largest files, at HEAD.
        if let Some(head) = self.head_commit()? {
            let tree = flatten(odb, &odb.read_commit(&head)?.tree)?;
            let mut types: BTreeMap<String, (TypeStats, HashSet<ObjectId>)> = BTreeMap::new();
            let mut sizes = Vec::new();
            for (path, e) in &tree {
                s.head_files += 1;
                s.head_bytes += e.size;
                sizes.push((path.clone(), e.size));
                let name = path.rsplit('/').next().unwrap_or(path);
                let ext = match name.rsplit_once('.') {
                    Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
                    _ => String::new(),
                };
                let (t, seen) = types.entry(ext.clone()).or_insert_with(|| {
                    (
                        TypeStats {
                            ext,
                            ..Default::default()
                        },
                        HashSet::new(),
                    )
                });
                t.files += 1;
                t.bytes += e.size;
                if e.manifest.is_zero() {
                    continue;
                }
                for c in odb.read_manifest(&e.manifest)?.chunks {
                    if seen.insert(c.id) {
                        if let Some((_, l)) = odb
                            .locate(&c.id)
                            .filter(|(_, l)| l.kind == ObjectKind::Chunk)
                        {
                            t.chunk_raw_bytes += l.raw_len as u64;
                            t.chunk_stored_bytes += l.stored_len as u64;
                        }
                    }
                }
            }
            s.by_type = types
                .into_values()
                .map(|(mut t, _)| {
                    if t.chunk_stored_bytes > 0 {
                        t.compression_ratio =
                            t.chunk_raw_bytes as f64 / t.chunk_stored_bytes as f64;
                    }
                    t
                })
                .collect();
            s.by_type
                .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.ext.cmp(&b.ext)));
            sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            sizes.truncate(top);
            s.largest = sizes
                .into_iter()
                .map(|(path, size)| LargeFile { path, size })
                .collect();
        }
        Ok(s)
    }
}
