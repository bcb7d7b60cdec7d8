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
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Mutex;

use mediagit_format::config::ChunkingConfig;
use mediagit_format::id::{Hasher, IdSet};
use mediagit_format::index::{IndexKind, StatInfo};
use mediagit_format::pack::Codec;
use mediagit_format::{Manifest, ManifestChunk, ObjectId, ObjectKind};
use mediagit_pipeline::{compress_chunk, Chunker, CompressionHint};

use crate::error::{RepoError, Result};
use crate::odb::{Odb, PackSession};
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

/// An object on its way to the pack writer.
struct Encoded {
    kind: ObjectKind,
    id: ObjectId,
    codec: Codec,
    raw_len: usize,
    payload: Vec<u8>,
}

/// Stores files: workers chunk, hash and compress; one writer thread owns
/// the pack session and appends, so no worker ever waits on pack I/O for
/// longer than a bounded queue takes to drain.
pub struct Ingester<'a> {
    odb: &'a Odb,
    /// Objects some worker has taken on to write in this run.
    claimed: Mutex<IdSet>,
    tx: SyncSender<Vec<Encoded>>,
    /// Payload buffers handed back by the writer, so chunks are not each a
    /// fresh multi-megabyte allocation (an mmap, page faults, an munmap).
    pool: &'a Mutex<Vec<Vec<u8>>>,
    chunking: ChunkingConfig,
    level: i32,
}

const POOL_MAX: usize = 24;

/// A worker hands its file's new chunks to the pack writer in runs of about
/// this many bytes (see `with_ingester`).
const RUN_BYTES: usize = 4 << 20;

thread_local! {
    /// The chunker's buffer, reused across the files one worker reads.
    static CHUNK_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with an [`Ingester`] whose objects go into one new pack session
/// (a session that treats objects in `ignore_packs` as absent). Everything
/// is stored (packs, then indexes) only if `f` succeeds.
pub fn with_ingester<T>(
    odb: &Odb,
    chunking: ChunkingConfig,
    level: i32,
    ignore_packs: &[ObjectId],
    f: impl FnOnce(&Ingester<'_>) -> Result<T>,
) -> Result<T> {
    // Each message is a run of one file's objects (up to RUN_BYTES), so a
    // file's chunks lie back to back in the pack even with several workers,
    // and a restore reads them with one request per run.
    let (tx, rx) = sync_channel::<Vec<Encoded>>(6);
    let pool = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let pool_ref = &pool;
        let writer = s.spawn(move || -> Result<PackSession<'_>> {
            let mut session = odb.session_ignoring(ignore_packs);
            for run in rx {
                for e in run {
                    session.put_encoded(e.kind, e.id, e.codec, e.raw_len, &e.payload)?;
                    let mut p = pool_ref.lock().unwrap_or_else(|p| p.into_inner());
                    if p.len() < POOL_MAX {
                        p.push(e.payload);
                    }
                }
            }
            Ok(session)
        });
        let ing = Ingester {
            odb,
            claimed: Mutex::new(IdSet::default()),
            tx,
            pool: &pool,
            chunking,
            level,
        };
        let result = f(&ing);
        drop(ing);
        let session = writer
            .join()
            .map_err(|_| RepoError::Invalid("the pack writer thread panicked".into()))?;
        // The writer's own error (disk full...) explains a worker's "writer gone".
        let session = session?;
        let value = result?;
        session.finish()?;
        Ok(value)
    })
}

impl Ingester<'_> {
    /// True if this caller must write `id` (nobody has it or claimed it).
    fn claim(&self, id: &ObjectId) -> bool {
        if self.odb.contains(id) {
            return false;
        }
        self.claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*id)
    }

    fn send(&self, run: Vec<Encoded>) -> Result<()> {
        self.tx
            .send(run)
            .map_err(|_| RepoError::Invalid("the pack writer stopped".into()))
    }

    /// Stores an encoded object (a manifest), compressing it if that pays.
    fn put_object(&self, kind: ObjectKind, bytes: Vec<u8>) -> Result<ObjectId> {
        let id = ObjectId::hash(&bytes);
        if self.claim(&id) {
            let mut out = Vec::new();
            let codec = compress_chunk(&bytes, CompressionHint::Try, self.level, &mut out)
                .map_err(|e| RepoError::io("compress object", "memory", e))?;
            let raw_len = bytes.len();
            let payload = if codec == Codec::Raw { bytes } else { out };
            self.send(vec![Encoded {
                kind,
                id,
                codec,
                raw_len,
                payload,
            }])?;
        }
        Ok(id)
    }

    /// Stores one file (or symlink) found at `abs`.
    pub fn ingest_path(&self, abs: &Path, progress: &dyn Progress) -> Result<Ingested> {
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
        let buf = CHUNK_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
        let mut chunker = Chunker::with_buffer(reader, self.chunking, buf);
        let result = self.chunk_file(&mut chunker, abs, before.len(), hint, progress);
        CHUNK_BUF.with(|b| *b.borrow_mut() = chunker.into_buffer());
        let (content, chunks, total) = result?;
        let after = file.metadata().map_err(|e| RepoError::io("stat", abs, e))?;
        let changed = total != before.len()
            || after.len() != before.len()
            || after.mtime() != before.mtime()
            || after.mtime_nsec() != before.mtime_nsec();
        if changed {
            return Err(RepoError::FileChanged { path: abs.into() });
        }
        let manifest = Manifest {
            content,
            size: total,
            chunks,
        };
        let manifest_id = self.put_object(ObjectKind::Manifest, manifest.encode())?;
        // The path must still name the file that was read (an application
        // that saves by writing a new file and renaming it over this one
        // would otherwise leave the new file's stat with the old content id).
        let meta = std::fs::symlink_metadata(abs).map_err(|e| RepoError::io("stat", abs, e))?;
        let (read, now) = (stat_info(&after), stat_info(&meta));
        if read.ino != now.ino
            || read.dev != now.dev
            || read.size != now.size
            || read.mtime != now.mtime
        {
            return Err(RepoError::FileChanged { path: abs.into() });
        }
        Ok(Ingested {
            kind: index_kind(&meta).unwrap_or(kind),
            stat: now,
            content,
            manifest: manifest_id,
            target: None,
        })
    }

    fn chunk_file<R: Read>(
        &self,
        chunker: &mut Chunker<R>,
        abs: &Path,
        size: u64,
        hint: CompressionHint,
        progress: &dyn Progress,
    ) -> Result<(ObjectId, Vec<ManifestChunk>, u64)> {
        if size < LARGE_FILE {
            return self.chunk_file_with(
                chunker,
                abs,
                size,
                hint,
                progress,
                &mut WholeHash::Inline(Hasher::new()),
            );
        }
        // A large file hashes its whole content on a second thread, fed chunk
        // copies through a small bounded queue: when the other worker has
        // nothing left to do (three large videos on two cores), its core
        // takes the second SHA-256 pass instead of idling.
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let (back_tx, back_rx) = sync_channel::<Vec<u8>>(8);
        std::thread::scope(|s| {
            let hasher = s.spawn(move || {
                let mut h = Hasher::new();
                for b in rx {
                    h.update(&b);
                    let _ = back_tx.try_send(b);
                }
                h.finish()
            });
            let mut whole = WholeHash::Thread { tx, back: back_rx };
            let r = self.chunk_file_with(chunker, abs, size, hint, progress, &mut whole);
            drop(whole);
            let content = hasher
                .join()
                .map_err(|_| RepoError::Invalid("the hashing thread panicked".into()))?;
            r.map(|(single, chunks, total)| {
                let id = if chunks.len() == 1 && single != ObjectId::ZERO {
                    single
                } else {
                    content
                };
                (id, chunks, total)
            })
        })
    }

    fn chunk_file_with<R: Read>(
        &self,
        chunker: &mut Chunker<R>,
        abs: &Path,
        size: u64,
        hint: CompressionHint,
        progress: &dyn Progress,
        whole: &mut WholeHash,
    ) -> Result<(ObjectId, Vec<ManifestChunk>, u64)> {
        let mut chunks = Vec::new();
        let mut total = 0u64;
        let mut single = None;
        let mut run: Vec<Encoded> = Vec::new();
        let mut run_bytes = 0usize;
        loop {
            let chunk = match chunker.next_chunk() {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return Err(RepoError::io("read", abs, e)),
            };
            let id = ObjectId::hash(chunk);
            // A file that is one chunk has the chunk's id as its content id:
            // no second SHA-256 pass over it.
            if total == 0 && chunk.len() as u64 == size {
                single = Some(id);
            } else {
                whole.update(chunk);
            }
            if self.claim(&id) {
                let mut out = Vec::new();
                let codec = compress_chunk(chunk, hint, self.level, &mut out)
                    .map_err(|e| RepoError::io("compress", abs, e))?;
                let payload = if codec == Codec::Raw {
                    let mut b = self
                        .pool
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .pop()
                        .unwrap_or_default();
                    b.clear();
                    b.extend_from_slice(chunk);
                    b
                } else {
                    out
                };
                run_bytes += payload.len();
                run.push(Encoded {
                    kind: ObjectKind::Chunk,
                    id,
                    codec,
                    raw_len: chunk.len(),
                    payload,
                });
                if run_bytes >= RUN_BYTES {
                    self.send(std::mem::take(&mut run))?;
                    run_bytes = 0;
                }
            }
            chunks.push(ManifestChunk {
                id,
                len: chunk.len() as u32,
            });
            total += chunk.len() as u64;
            progress.bytes(chunk.len() as u64);
        }
        if !run.is_empty() {
            self.send(run)?;
        }
        let content = match single {
            Some(id) if chunks.len() == 1 => id,
            // More than one chunk although the first was the whole file: the
            // file grew while being read; the change check rejects it.
            _ => whole.finish(),
        };
        Ok((content, chunks, total))
    }
}

/// Files at least this large hash their whole content on a second thread.
const LARGE_FILE: u64 = 64 << 20;

/// The whole-file SHA-256: inline, or on a helper thread fed chunk copies.
enum WholeHash {
    Inline(Hasher),
    Thread {
        tx: SyncSender<Vec<u8>>,
        back: std::sync::mpsc::Receiver<Vec<u8>>,
    },
}

impl WholeHash {
    fn update(&mut self, data: &[u8]) {
        match self {
            WholeHash::Inline(h) => h.update(data),
            WholeHash::Thread { tx, back } => {
                let mut b = back.try_recv().unwrap_or_default();
                b.clear();
                b.extend_from_slice(data);
                // The receiver only goes away if its thread panicked, which
                // the join reports.
                let _ = tx.send(b);
            }
        }
    }

    /// The inline hash; for the threaded variant the id comes from the join
    /// (ZERO here marks "not known yet").
    fn finish(&mut self) -> ObjectId {
        match std::mem::replace(self, WholeHash::Inline(Hasher::new())) {
            WholeHash::Inline(h) => h.finish(),
            WholeHash::Thread { .. } => ObjectId::ZERO,
        }
    }
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
    parallel_map_n(jobs, cores(), f)
}

pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// [`parallel_map`] on `threads` threads (more than the cores when the work
/// waits on a remote store rather than on the CPU).
pub fn parallel_map_n<J: Sync, R: Send>(
    jobs: &[J],
    threads: usize,
    f: impl Fn(&J) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let threads = threads.max(1).min(jobs.len().max(1));
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
            Some(Err(e)) if first_err.is_none() => first_err = Some(e),
            Some(Err(_)) | None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
