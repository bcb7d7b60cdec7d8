//! Reading files into the store: chunk, hash, deduplicate, compress, pack.
//!
//! Files are processed by one worker per core; each worker streams its file
//! through the chunker (memory: one reused buffer), hashes every chunk and the
//! whole file, and appends chunks the repository does not have yet to the
//! shared pack session. The file is `fstat`ed before and after reading: if it
//! changed in between, the whole operation fails and nothing is staged.
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use mediagit_format::config::ChunkingConfig;
use mediagit_format::id::Hasher;
use mediagit_format::index::{IndexKind, StatInfo};
use mediagit_format::{Manifest, ManifestChunk, ObjectId, ObjectKind};
use mediagit_pipeline::{compress_chunk, Chunker, CompressionHint};

use crate::error::{RepoError, Result};
use crate::odb::PackSession;
use crate::progress::Progress;
use crate::worktree::{index_kind, stat_info};

/// What was stored for one file.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub kind: IndexKind,
    pub stat: StatInfo,
    pub content: ObjectId,
    pub manifest: ObjectId,
    pub target: Option<String>,
}

/// Stores one file (or symlink) found at `abs`.
pub fn ingest_path(
    session: &Mutex<PackSession<'_>>,
    abs: &Path,
    chunking: ChunkingConfig,
    level: i32,
    progress: &dyn Progress,
) -> Result<Ingested> {
    let meta = std::fs::symlink_metadata(abs).map_err(|e| RepoError::io("read", abs, e))?;
    let kind = index_kind(&meta).ok_or_else(|| {
        RepoError::Invalid(format!(
            "{} is not a regular file or symlink",
            abs.display()
        ))
    })?;
    if kind == IndexKind::Symlink {
        let target = std::fs::read_link(abs).map_err(|e| RepoError::io("read link", abs, e))?;
        let target = target
            .to_str()
            .ok_or_else(|| RepoError::NonUtf8Path { path: abs.into() })?
            .to_string();
        return Ok(Ingested {
            kind,
            stat: stat_info(&meta),
            content: ObjectId::hash(target.as_bytes()),
            manifest: ObjectId::ZERO,
            target: Some(target),
        });
    }
    let mut file = File::open(abs).map_err(|e| RepoError::io("open", abs, e))?;
    let before = file.metadata().map_err(|e| RepoError::io("stat", abs, e))?;
    let mut head = [0u8; 64];
    let n = read_head(&mut file, &mut head).map_err(|e| RepoError::io("read", abs, e))?;
    let hint = CompressionHint::from_head(&head[..n]);
    let reader = (&head[..n]).chain(&mut file);
    let mut chunker = Chunker::new(reader, chunking);
    let mut whole = Hasher::new();
    let mut chunks = Vec::new();
    let mut total = 0u64;
    let mut scratch = Vec::new();
    loop {
        let chunk = match chunker.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(RepoError::io("read", abs, e)),
        };
        whole.update(chunk);
        let id = ObjectId::hash(chunk);
        let known = lock(session).has(&id);
        if !known {
            let codec = compress_chunk(chunk, hint, level, &mut scratch)
                .map_err(|e| RepoError::io("compress", abs, e))?;
            let payload: &[u8] = if scratch.is_empty() { chunk } else { &scratch };
            lock(session).put_encoded(ObjectKind::Chunk, id, codec, chunk.len(), payload)?;
        }
        chunks.push(ManifestChunk {
            id,
            len: chunk.len() as u32,
        });
        total += chunk.len() as u64;
        progress.bytes(chunk.len() as u64);
    }
    let after = file.metadata().map_err(|e| RepoError::io("stat", abs, e))?;
    let changed = total != before.len()
        || after.len() != before.len()
        || after.mtime() != before.mtime()
        || after.mtime_nsec() != before.mtime_nsec();
    if changed {
        return Err(RepoError::FileChanged { path: abs.into() });
    }
    let content = whole.finish();
    let manifest = Manifest {
        content,
        size: total,
        chunks,
    };
    let manifest_id = lock(session).put_object(ObjectKind::Manifest, &manifest.encode())?;
    // Record the stat of the path itself (lstat), as the index compares with that.
    let meta = std::fs::symlink_metadata(abs).map_err(|e| RepoError::io("stat", abs, e))?;
    Ok(Ingested {
        kind: index_kind(&meta).unwrap_or(kind),
        stat: stat_info(&meta),
        content,
        manifest: manifest_id,
        target: None,
    })
}

fn read_head(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn lock<'a, 'b>(m: &'a Mutex<PackSession<'b>>) -> std::sync::MutexGuard<'a, PackSession<'b>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Streams a file through SHA-256 only (no storing): its content id.
pub fn hash_path(abs: &Path, kind: IndexKind) -> Result<ObjectId> {
    if kind == IndexKind::Symlink {
        let t = std::fs::read_link(abs).map_err(|e| RepoError::io("read link", abs, e))?;
        return Ok(ObjectId::hash(t.as_os_str().as_encoded_bytes()));
    }
    let mut f = File::open(abs).map_err(|e| RepoError::io("open", abs, e))?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RepoError::io("read", abs, e)),
        }
    }
    Ok(h.finish())
}

/// Runs `f` over `jobs` on one thread per core; stops at the first error.
/// Results come back in job order.
pub fn parallel_map<J: Sync, R: Send>(
    jobs: &[J],
    f: impl Fn(&J) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Mutex<Option<Result<R>>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let r = f(job);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    let mut out = Vec::with_capacity(jobs.len());
    let mut first_err = None;
    for r in results {
        match r.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Convenience for callers that carry absolute paths with repository paths.
pub type PathJob = (String, PathBuf, u64);
