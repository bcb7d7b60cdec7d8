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
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mediagit_format::config::ChunkingConfig;
use mediagit_format::id::{Hasher, IdSet, ResumableSha256};
use mediagit_format::index::{HashCheckpoint, IndexKind, StatInfo};
use mediagit_format::{Manifest, ManifestChunk, ObjectId, ObjectKind};
use mediagit_pipeline::{media, Chunker, CompressionHint};

use crate::add_journal::{AddJournal, Checkpoints, DoneFile, PartialFile, SharedProgress};
use crate::codec::{content_id, Encoded, ObjectCodec};
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
    /// Whole-file hash checkpoints of the new manifest (large files only).
    pub checkpoints: Vec<HashCheckpoint>,
    /// Bytes not read again because an interrupted add had stored them.
    pub resumed_bytes: u64,
}

/// The version of a file that the index knew, for a file that changed:
/// when the new content starts with the same chunks, the whole-file hash
/// resumes from the last checkpoint in that prefix (and a file whose chunks
/// are all the same, only touched, keeps its id without a second pass).
#[derive(Debug)]
pub struct Previous<'a> {
    pub content: ObjectId,
    pub chunks: &'a [ManifestChunk],
    /// Non-empty, ascending by `chunks`.
    pub checkpoints: &'a [HashCheckpoint],
}

/// Stores files: workers chunk, hash and compress; one writer thread owns
/// the pack session and appends, so no worker ever waits on pack I/O for
/// longer than a bounded queue takes to drain.
pub struct Ingester<'a> {
    odb: &'a Odb,
    /// Objects some worker has taken on to write in this run (since the
    /// last checkpoint).
    claimed: &'a Mutex<IdSet>,
    tx: SyncSender<Vec<Encoded>>,
    /// Payload buffers handed back by the writer, so chunks are not each a
    /// fresh multi-megabyte allocation (an mmap, page faults, an munmap).
    pool: &'a Mutex<Vec<Vec<u8>>>,
    chunking: ChunkingConfig,
    codec: ObjectCodec,
    /// The add journal, when the run keeps what it stores (`add`).
    journal: Option<&'a AddJournal>,
    /// [`RUN_BYTES`], or less when checkpoints come more often.
    run_bytes: usize,
}

const POOL_MAX: usize = 24;

/// A journaled run also checkpoints after this many new objects, whatever
/// their bytes: what the session and the journal hold in memory until a
/// checkpoint (ids written, index entries, finished files) grows with the
/// number of objects, and a million small files are few bytes each.
pub const CHECKPOINT_OBJECTS: u64 = 131_072;

/// A worker hands its file's new chunks to the pack writer in runs of about
/// this many bytes (see `with_ingester`).
const RUN_BYTES: usize = 4 << 20;

thread_local! {
    /// The chunker's buffer, reused across the files one worker reads.
    static CHUNK_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with an [`Ingester`] whose objects go into one new pack session
/// (a session that treats objects in `ignore_packs` as absent). Without a
/// journal, everything is stored (packs, then indexes) only if `f`
/// succeeds. With one, what was written is also stored at every
/// checkpoint and when `f` is interrupted (an interrupted add keeps it,
/// see `add_journal.rs`), and the journal records what is stored.
pub fn with_ingester<T>(
    odb: &Odb,
    chunking: ChunkingConfig,
    ignore_packs: &[ObjectId],
    journal: Option<(&AddJournal, Checkpoints)>,
    f: impl FnOnce(&Ingester<'_>) -> Result<T>,
) -> Result<T> {
    // Each message is a run of one file's objects (up to RUN_BYTES), so a
    // file's chunks lie back to back in the pack even with several workers,
    // and a restore reads them with one request per run.
    let (tx, rx) = sync_channel::<Vec<Encoded>>(6);
    let pool = Mutex::new(Vec::new());
    let claimed = Mutex::new(IdSet::default());
    std::thread::scope(|s| {
        let pool_ref = &pool;
        let claimed_ref = &claimed;
        let writer = s.spawn(move || -> (PackSession<'_>, Result<()>) {
            let mut session = odb.session_ignoring(ignore_packs);
            let mut since_bytes = 0u64;
            let mut since_objects = 0u64;
            let mut since = Instant::now();
            let mut write = |session: &mut PackSession<'_>| -> Result<()> {
                loop {
                    let msg = match journal {
                        // Woken now and then to checkpoint by time.
                        Some(_) => rx.recv_timeout(Duration::from_millis(250)),
                        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match msg {
                        Ok(run) => {
                            for e in run {
                                since_bytes += e.payload.len() as u64;
                                since_objects += 1;
                                session
                                    .put_encoded(e.kind, e.id, e.codec, e.raw_len, &e.payload)?;
                                let mut p = pool_ref.lock().unwrap_or_else(|p| p.into_inner());
                                if p.len() < POOL_MAX {
                                    p.push(e.payload);
                                }
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return Ok(()),
                    }
                    if let Some((j, cp)) = journal {
                        if since_bytes >= cp.bytes.max(1)
                            || since_objects >= CHECKPOINT_OBJECTS
                            || since.elapsed() >= cp.every
                        {
                            session.checkpoint()?;
                            crate::failpoint::hit("write:checkpoint-stored");
                            j.record(odb);
                            // What is stored is found in the store's index
                            // now: the claims need not be remembered (a
                            // claim still in the queue may be encoded twice;
                            // the session stores it once).
                            *claimed_ref.lock().unwrap_or_else(|p| p.into_inner()) =
                                IdSet::default();
                            since_bytes = 0;
                            since_objects = 0;
                            since = Instant::now();
                        }
                    }
                }
            };
            let r = write(&mut session);
            (session, r)
        });
        let ing = Ingester {
            odb,
            claimed: claimed_ref,
            tx,
            pool: &pool,
            chunking,
            codec: odb.codec(),
            journal: journal.map(|(j, _)| j),
            run_bytes: journal.map_or(RUN_BYTES, |(_, cp)| {
                RUN_BYTES.min(usize::try_from(cp.bytes / 2).unwrap_or(usize::MAX).max(1))
            }),
        };
        let result = f(&ing);
        drop(ing);
        let (mut session, written) = writer
            .join()
            .map_err(|_| RepoError::Invalid("the pack writer thread panicked".into()))?;
        if let (Ok(_), Ok(())) = (&result, &written) {
            session.finish()?;
            return result;
        }
        // Interrupted (Ctrl-C): keep what was written for the next run
        // (best effort: the interruption is what to report). Any other
        // failure discards what no checkpoint stored yet, as a failed
        // command changes nothing it need not.
        let interrupted = matches!(result, Err(RepoError::Interrupted { .. }));
        if let (Some((j, _)), Ok(()), true) = (journal, &written, interrupted) {
            if session.checkpoint().is_ok() {
                crate::failpoint::hit("write:checkpoint-stored");
                j.record(odb);
            }
        }
        // The writer's own error (disk full...) explains a worker's "writer gone".
        written?;
        match result {
            Err(RepoError::Interrupted { .. }) => Err(RepoError::Interrupted {
                files_kept: journal.map_or(0, |(j, _)| j.files_kept()),
                bytes_kept: session.stored_bytes(),
                resumable: journal.is_some_and(|(j, _)| !j.broken()),
            }),
            other => other,
        }
    })
}

impl Ingester<'_> {
    /// True if this caller must write `id` (nobody has it or claimed it).
    fn claim(&self, id: &ObjectId, kind: ObjectKind) -> bool {
        if self.odb.contains_for_reuse(id, kind) {
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
    pub(crate) fn put_object(&self, kind: ObjectKind, bytes: Vec<u8>) -> Result<ObjectId> {
        let id = self.codec.id(kind, &bytes);
        if self.claim(&id, kind) {
            let e = self.codec.encode(kind, id, &bytes, CompressionHint::Try)?;
            self.send(vec![e])?;
        }
        Ok(id)
    }

    fn check_cancel(&self) -> Result<()> {
        match self.journal {
            Some(j) if j.cancelled() => Err(RepoError::Interrupted {
                files_kept: 0,
                bytes_kept: 0,
                resumable: false,
            }),
            _ => Ok(()),
        }
    }

    /// Stores one file (or symlink) found at `rel` in the working tree
    /// `root`, without journaling it.
    pub fn ingest_path(
        &self,
        root: &Path,
        rel: &str,
        prev: Option<&Previous<'_>>,
        progress: &dyn Progress,
    ) -> Result<Ingested> {
        self.ingest_at(root, rel, false, prev, None, progress)
    }

    /// Stores the file at repository path `rel` in the working tree
    /// `root`, journaling it (when the run has a journal) and continuing
    /// from `resume`, the leading chunks an interrupted add stored, when
    /// they still hold.
    pub fn ingest(
        &self,
        root: &Path,
        rel: &str,
        prev: Option<&Previous<'_>>,
        resume: Option<&PartialFile>,
        progress: &dyn Progress,
    ) -> Result<Ingested> {
        self.ingest_at(root, rel, true, prev, resume, progress)
    }

    fn ingest_at(
        &self,
        root: &Path,
        rel: &str,
        journaled: bool,
        prev: Option<&Previous<'_>>,
        resume: Option<&PartialFile>,
        progress: &dyn Progress,
    ) -> Result<Ingested> {
        self.check_cancel()?;
        let journal = self.journal.filter(|_| journaled).map(|j| (j, rel));
        let abs = &root.join(rel);
        let mut tracked = false;
        let r = self.ingest_inner(
            root,
            rel,
            abs,
            journal,
            prev,
            resume,
            &mut tracked,
            progress,
        );
        if let Some((j, rel)) = journal {
            match &r {
                Ok(i) if i.kind != IndexKind::Symlink => j.finished(
                    rel,
                    &DoneFile {
                        kind: i.kind,
                        stat: i.stat,
                        content: i.content,
                        manifest: i.manifest,
                        checkpoints: i.checkpoints.clone(),
                    },
                ),
                Ok(_) => {}
                Err(_) if tracked => j.stop(rel),
                Err(_) => {}
            }
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn ingest_inner(
        &self,
        root: &Path,
        rel: &str,
        abs: &Path,
        journal: Option<(&AddJournal, &str)>,
        prev: Option<&Previous<'_>>,
        resume: Option<&PartialFile>,
        tracked: &mut bool,
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
            let target = crate::worktree::read_symlink_target(abs)?
                .map_err(|why| RepoError::Invalid(format!("{}: {why}", abs.display())))?;
            return Ok(Ingested {
                kind,
                stat: stat_info(&meta),
                content: content_id(target.as_bytes()),
                manifest: ObjectId::ZERO,
                target: Some(target),
                checkpoints: Vec::new(),
                resumed_bytes: 0,
            });
        }
        crate::failpoint::hit("ingest:open");
        // Opened without following a symlink anywhere under the root: what
        // is read is the file the walk and the lstat above saw, or the add
        // fails (a swap is a change while adding).
        let mut file = crate::worktree::open_beneath(root, rel).map_err(|e| open_failed(abs, e))?;
        let before = file.metadata().map_err(|e| RepoError::io("stat", abs, e))?;
        if before.ino() != meta.ino() || before.dev() != meta.dev() || !before.is_file() {
            return Err(RepoError::FileChanged { path: abs.into() });
        }
        // A second descriptor for positioned reads (the resumed hash's gap).
        let pread = file
            .try_clone()
            .map_err(|e| RepoError::io("open", abs, e))?;
        let mut head = [0u8; 64];
        let n = read_head(&mut file, &mut head).map_err(|e| RepoError::io("read", abs, e))?;
        let hint = CompressionHint::from_head(&head[..n]);
        let start = resume.and_then(|p| self.resume_point(p, &stat_info(&before)));
        if let Some(st) = &start {
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(st.boundary))
                .map_err(|e| RepoError::io("read", abs, e))?;
        }
        let progress_slot = match journal {
            // Files long enough to have a hash checkpoint to resume from.
            Some((j, rel)) if before.len() >= 2 * self.checkpoint_interval() => {
                *tracked = true;
                Some(j.begin(
                    rel,
                    stat_info(&before),
                    start.as_ref().map(|s| (&s.chunks[..], &s.inherited[..])),
                ))
            }
            _ => None,
        };
        let head_len = if start.is_some() { 0 } else { n };
        let reader = (&head[..head_len]).chain(&mut file);
        let buf = CHUNK_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
        let mut chunker = Chunker::with_buffer(reader, self.chunking, buf);
        // A media file's metadata (EXIF/XMP, an MP4's moov, tags, PSD
        // layer records: what re-tagging or renaming rewrites) gets chunks
        // of its own, so the payload's chunks survive such edits. Headers
        // only are read (FORMAT.md §10).
        if before.len() >= u64::from(self.chunking.min_size) {
            use std::os::unix::fs::FileExt;
            let skip = start.as_ref().map_or(0, |s| s.boundary);
            let cuts = media::cut_points(&head[..n], before.len(), &mut |at, buf| {
                pread.read_exact_at(buf, at)
            });
            chunker.cut_at_all(cuts.into_iter().filter_map(|c| c.checked_sub(skip)));
        }
        let resumed_bytes = start.as_ref().map_or(0, |s| s.boundary);
        let src = Source {
            abs,
            file: &pread,
            size: before.len(),
            hint,
            prev: if start.is_some() { None } else { prev },
            start,
            progress: progress_slot,
        };
        let result = self.chunk_file(&mut chunker, &src, progress);
        CHUNK_BUF.with(|b| *b.borrow_mut() = chunker.into_buffer());
        let (content, chunks, total, checkpoints) = result?;
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
            checkpoints,
            resumed_bytes,
        })
    }

    /// Where to continue a large file an interrupted add stored the start
    /// of: the last hash checkpoint before the first chunk the store lacks
    /// (`None`: start over). `stat` is the open file's.
    fn resume_point(&self, p: &PartialFile, stat: &StatInfo) -> Option<Start> {
        if &p.stat != stat {
            return None;
        }
        let present = p
            .chunks
            .iter()
            .position(|c| !self.odb.holds_chunk(c))
            .unwrap_or(p.chunks.len());
        let cp = p
            .checkpoints
            .iter()
            .rev()
            .find(|c| c.chunks as usize <= present && c.chunks > 0)?;
        let chunks = p.chunks[..cp.chunks as usize].to_vec();
        let boundary: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
        if cp.offset > boundary || boundary >= stat.size {
            return None;
        }
        let sha = ResumableSha256::resume(cp.offset, cp.state)?;
        let inherited = p
            .checkpoints
            .iter()
            .filter(|c| c.chunks <= cp.chunks)
            .copied()
            .collect();
        Some(Start {
            chunks,
            checkpoint: *cp,
            sha,
            inherited,
            boundary,
        })
    }

    /// Bytes of whole-file hash between two checkpoints.
    fn checkpoint_interval(&self) -> u64 {
        16 * self.chunking.avg_size as u64
    }

    fn chunk_file<R: Read>(
        &self,
        chunker: &mut Chunker<R>,
        src: &Source<'_>,
        progress: &dyn Progress,
    ) -> Result<Chunked> {
        let interval = self.checkpoint_interval();
        let known = |r: MaybeChunked| {
            let (id, chunks, total, cps) = r;
            let id = id.ok_or_else(|| {
                RepoError::Invalid("the whole-file hash was never started".into())
            })?;
            Ok((id, chunks, total, cps))
        };
        if src.size < LARGE_FILE {
            let r = self.chunk_file_with(
                chunker,
                src,
                progress,
                &mut WholeHash::Inline(None),
                interval,
            )?;
            return known(r);
        }
        // A large file hashes its whole content on a second thread, fed chunk
        // copies through a small bounded queue: when the other worker has
        // nothing left to do (three large videos on two cores), its core
        // takes the second SHA-256 pass instead of idling.
        let (tx, rx) = sync_channel::<Feed>(4);
        let (back_tx, back_rx) = sync_channel::<Vec<u8>>(8);
        std::thread::scope(|s| {
            let hasher = s.spawn(move || {
                let mut rec: Option<Recorder> = None;
                for msg in rx {
                    match msg {
                        Feed::Start(r) => rec = Some(r),
                        Feed::Data(b, done) => {
                            if let Some(r) = rec.as_mut() {
                                r.feed(&b, done);
                            }
                            let _ = back_tx.try_send(b);
                        }
                    }
                }
                rec.map(Recorder::finish)
            });
            let mut whole = WholeHash::Thread { tx, back: back_rx };
            let r = self.chunk_file_with(chunker, src, progress, &mut whole, interval);
            drop(whole);
            let hashed = hasher
                .join()
                .map_err(|_| RepoError::Invalid("the hashing thread panicked".into()))?;
            r.map(|(known, chunks, total, cps)| match (known, hashed) {
                (Some(id), _) => (Some(id), chunks, total, cps),
                (None, Some((id, cps))) => (Some(id), chunks, total, cps),
                (None, None) => (None, chunks, total, cps),
            })
        })
        .and_then(known)
    }

    /// Chunks, hashes and stores one file. Returns the content id when it
    /// is known here (`None`: the hashing thread has it), the chunks, the
    /// length read and the checkpoints (when known here).
    fn chunk_file_with<R: Read>(
        &self,
        chunker: &mut Chunker<R>,
        src: &Source<'_>,
        progress: &dyn Progress,
        whole: &mut WholeHash,
        interval: u64,
    ) -> Result<MaybeChunked> {
        let abs = src.abs;
        let mut chunks = Vec::new();
        let mut total = 0u64;
        let mut single = None;
        let mut run: Vec<Encoded> = Vec::new();
        let mut run_bytes = 0usize;
        // With a previous version, the whole-file hash waits while the
        // chunks are the same as its leading ones.
        let mut matched = 0usize;
        let mut started = false;
        if let Some(st) = &src.start {
            // An interrupted add stored the first chunks: the hash goes on
            // from its checkpoint, fed the bytes between it and the chunk
            // boundary where reading resumes.
            let c = st.checkpoint;
            whole.start(
                Recorder::new(st.sha.clone(), st.inherited.clone(), interval)
                    .publishing(src.progress.clone()),
            )?;
            feed_from_file(whole, src, c.offset, st.boundary, c.chunks)?;
            chunks = st.chunks.clone();
            total = st.boundary;
            started = true;
            progress.bytes(st.boundary);
        } else if src.prev.is_none() {
            whole.start(
                Recorder::new(ResumableSha256::new(), Vec::new(), interval)
                    .publishing(src.progress.clone()),
            )?;
            started = true;
        }
        loop {
            self.check_cancel()?;
            let chunk = match chunker.next_chunk() {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return Err(RepoError::io("read", abs, e)),
            };
            let id = self.codec.id(ObjectKind::Chunk, chunk);
            // A file that is one chunk has the chunk's id as its content id
            // (unless chunk ids are keyed): no second SHA-256 pass over it.
            if total == 0 && chunk.len() as u64 == src.size && self.codec.chunk_id_is_content_id() {
                single = Some(id);
            } else {
                if !started {
                    let same = src
                        .prev
                        .and_then(|p| p.chunks.get(chunks.len()))
                        .is_some_and(|c| c.id == id && c.len as usize == chunk.len());
                    if same {
                        matched += 1;
                    } else {
                        start_resumed(whole, src, matched, total, interval)?;
                        started = true;
                    }
                }
                if started {
                    whole.update(chunk, Some(chunks.len() as u32 + 1))?;
                }
            }
            if self.claim(&id, ObjectKind::Chunk) {
                // A chunk shorter than the minimum was cut at a format
                // boundary: a compressed file's metadata (EXIF, XMP, moov)
                // is not itself compressed, so it is tried.
                let hint = match chunk.len() < self.chunking.min_size as usize {
                    true => CompressionHint::Try,
                    false => src.hint,
                };
                let e = self
                    .codec
                    .encode_with(ObjectKind::Chunk, id, chunk, hint, || {
                        self.pool
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .pop()
                            .unwrap_or_default()
                    })
                    .map_err(|e| match e {
                        RepoError::Io { source, .. } => RepoError::io("compress", abs, source),
                        other => other,
                    })?;
                run_bytes += e.payload.len();
                run.push(e);
                if run_bytes >= self.run_bytes {
                    self.send(std::mem::take(&mut run))?;
                    run_bytes = 0;
                }
            }
            let mc = ManifestChunk {
                id,
                len: chunk.len() as u32,
            };
            chunks.push(mc);
            if let Some(p) = &src.progress {
                p.lock().unwrap_or_else(|e| e.into_inner()).push_chunk(mc);
            }
            total += chunk.len() as u64;
            progress.bytes(chunk.len() as u64);
        }
        if !run.is_empty() {
            self.send(run)?;
        }
        if let Some(id) = single {
            if chunks.len() == 1 {
                return Ok((Some(id), chunks, total, Vec::new()));
            }
            // More than one chunk although the first was the whole file: the
            // file grew while being read; the change check rejects it.
        }
        if !started {
            if let Some(p) = src.prev {
                if matched == p.chunks.len() && matched == chunks.len() {
                    // Every chunk is the same as before: the same content.
                    return Ok((Some(p.content), chunks, total, p.checkpoints.to_vec()));
                }
            }
            // The file is a prefix of the previous version.
            start_resumed(whole, src, matched, total, interval)?;
        }
        Ok(match whole.finish() {
            Some((id, cps)) => (Some(id), chunks, total, cps),
            None => (None, chunks, total, Vec::new()),
        })
    }
}

/// The file being ingested.
struct Source<'a> {
    abs: &'a Path,
    /// For positioned reads of a prefix already streamed past.
    file: &'a File,
    size: u64,
    hint: CompressionHint,
    prev: Option<&'a Previous<'a>>,
    /// Where an interrupted add left off (reading starts at its boundary).
    start: Option<Start>,
    /// The journal's view of this file's progress (large files).
    progress: Option<SharedProgress>,
}

/// Where a file's reading resumes: after `chunks`, at `boundary`, with the
/// whole-file hash restored from `checkpoint`.
struct Start {
    chunks: Vec<ManifestChunk>,
    checkpoint: HashCheckpoint,
    /// The hash state restored from `checkpoint`.
    sha: ResumableSha256,
    /// The checkpoints up to and including `checkpoint`.
    inherited: Vec<HashCheckpoint>,
    boundary: u64,
}

/// Content id, chunks, bytes read, checkpoints.
type Chunked = (ObjectId, Vec<ManifestChunk>, u64, Vec<HashCheckpoint>);
/// [`Chunked`] with the content id when known on the worker's thread.
type MaybeChunked = (
    Option<ObjectId>,
    Vec<ManifestChunk>,
    u64,
    Vec<HashCheckpoint>,
);

/// Starts the deferred whole-file hash when the stream leaves the previous
/// version's chunks after `matched` of them (`upto` bytes): from the last
/// checkpoint within that prefix, feeding the bytes between it and `upto`
/// again (read back from the file, at most about one checkpoint interval),
/// or from the start when there is none.
fn start_resumed(
    whole: &mut WholeHash,
    src: &Source<'_>,
    matched: usize,
    upto: u64,
    interval: u64,
) -> Result<()> {
    let cps = src.prev.map(|p| p.checkpoints).unwrap_or(&[]);
    let resumed = cps
        .iter()
        .rev()
        .filter(|c| c.chunks as usize <= matched && c.offset <= upto)
        .find_map(|c| ResumableSha256::resume(c.offset, c.state).map(|s| (s, c)));
    let (sha, from, inherited) = match resumed {
        Some((s, c)) => (
            s,
            c.offset,
            cps.iter()
                .filter(|k| k.chunks <= c.chunks)
                .copied()
                .collect(),
        ),
        None => (ResumableSha256::new(), 0, Vec::new()),
    };
    whole.start(Recorder::new(sha, inherited, interval).publishing(src.progress.clone()))?;
    feed_from_file(whole, src, from, upto, matched as u32)
}

/// Feeds the file's bytes `[from, upto)` (read back, positioned) to the
/// whole-file hash; they complete its first `chunks` chunks.
fn feed_from_file(
    whole: &mut WholeHash,
    src: &Source<'_>,
    from: u64,
    upto: u64,
    chunks: u32,
) -> Result<()> {
    let mut at = from;
    let mut buf = vec![0u8; (upto - from).min(1 << 20) as usize];
    while at < upto {
        let n = (upto - at).min(buf.len() as u64) as usize;
        std::os::unix::fs::FileExt::read_exact_at(src.file, &mut buf[..n], at)
            .map_err(|e| RepoError::io("read", src.abs, e))?;
        at += n as u64;
        let done = (at == upto).then_some(chunks);
        whole.update(&buf[..n], done)?;
    }
    Ok(())
}

/// Files at least this large hash their whole content on a second thread.
const LARGE_FILE: u64 = 64 << 20;

/// The whole-file SHA-256 and the checkpoints it leaves along the way.
struct Recorder {
    sha: ResumableSha256,
    checkpoints: Vec<HashCheckpoint>,
    interval: u64,
    /// Where new checkpoints are also published (the add journal).
    publish: Option<SharedProgress>,
}

impl Recorder {
    fn new(sha: ResumableSha256, checkpoints: Vec<HashCheckpoint>, interval: u64) -> Recorder {
        Recorder {
            sha,
            checkpoints,
            interval,
            publish: None,
        }
    }

    fn publishing(mut self, to: Option<SharedProgress>) -> Recorder {
        self.publish = to;
        self
    }

    /// Feeds bytes; `done`: they complete the file's first `done` chunks.
    fn feed(&mut self, data: &[u8], done: Option<u32>) {
        self.sha.update(data);
        if let Some(chunks) = done {
            let (offset, state) = self.sha.checkpoint();
            let last = self.checkpoints.last().map_or(0, |c| c.offset);
            if offset >= last + self.interval {
                let c = HashCheckpoint {
                    chunks,
                    offset,
                    state,
                };
                self.checkpoints.push(c);
                if let Some(p) = &self.publish {
                    p.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_checkpoint(c);
                }
            }
        }
    }

    fn finish(self) -> (ObjectId, Vec<HashCheckpoint>) {
        (self.sha.finish(), self.checkpoints)
    }
}

enum Feed {
    Start(Recorder),
    Data(Vec<u8>, Option<u32>),
}

/// The whole-file hash: inline, or on a helper thread fed chunk copies.
/// Nothing is hashed before [`WholeHash::start`].
enum WholeHash {
    Inline(Option<Recorder>),
    Thread {
        tx: SyncSender<Feed>,
        back: std::sync::mpsc::Receiver<Vec<u8>>,
    },
}

impl WholeHash {
    fn start(&mut self, r: Recorder) -> Result<()> {
        match self {
            WholeHash::Inline(slot) => *slot = Some(r),
            WholeHash::Thread { tx, .. } => tx
                .send(Feed::Start(r))
                .map_err(|_| RepoError::Invalid("the hashing thread stopped".into()))?,
        }
        Ok(())
    }

    fn update(&mut self, data: &[u8], done: Option<u32>) -> Result<()> {
        match self {
            WholeHash::Inline(r) => {
                if let Some(r) = r.as_mut() {
                    r.feed(data, done);
                }
            }
            WholeHash::Thread { tx, back } => {
                let mut b = back.try_recv().unwrap_or_default();
                b.clear();
                b.extend_from_slice(data);
                tx.send(Feed::Data(b, done))
                    .map_err(|_| RepoError::Invalid("the hashing thread stopped".into()))?;
            }
        }
        Ok(())
    }

    /// The inline result; `None` for the threaded variant (the join has it).
    fn finish(&mut self) -> Option<(ObjectId, Vec<HashCheckpoint>)> {
        match std::mem::replace(self, WholeHash::Inline(None)) {
            WholeHash::Inline(r) => r.map(Recorder::finish),
            WholeHash::Thread { .. } => None,
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

/// Why opening the working-tree file `abs` failed: something else now
/// stands at its path (a symlink met on the way: `ELOOP`, `EXDEV`,
/// `ENOTDIR`) is a change while it was read; anything else as it is.
fn open_failed(abs: &Path, e: std::io::Error) -> RepoError {
    let swapped = [
        rustix::io::Errno::LOOP,
        rustix::io::Errno::XDEV,
        rustix::io::Errno::NOTDIR,
    ]
    .iter()
    .any(|x| e.raw_os_error() == Some(x.raw_os_error()));
    match swapped {
        true => RepoError::FileChanged { path: abs.into() },
        false => RepoError::io("open", abs, e),
    }
}

/// Streams a file through SHA-256 only (no storing): its content id.
pub fn hash_path(abs: &Path, kind: IndexKind) -> Result<ObjectId> {
    if kind == IndexKind::Symlink {
        let t = std::fs::read_link(abs).map_err(|e| RepoError::io("read link", abs, e))?;
        return Ok(content_id(t.as_os_str().as_encoded_bytes()));
    }
    // Not through a symlink, and never blocking on a FIFO put in the
    // file's place: only a regular file is read.
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(abs)
        .map_err(|e| open_failed(abs, e))?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(RepoError::FileChanged { path: abs.into() });
    }
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
