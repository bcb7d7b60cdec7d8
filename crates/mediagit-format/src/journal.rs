//! The add journal (`.mediagit/add-journal`, docs/FORMAT.md §7.1): what an
//! interrupted `add` had already stored, so that running it again
//! continues where it stopped instead of reading everything again.
//!
//! It is only a hint. Every record is checked against the working tree
//! (the file's `stat` must be what it was) and against the store (the
//! objects it names must be there) before it is used; a record that fails
//! either check is ignored and the file is read as usual. So a torn or
//! stale journal can cost time, never correctness (one forged on purpose
//! has the worktree index's trust: whoever can write one can write both).
//!
//! Layout: magic `MGADDJ\0\0`, version (u32 LE), then frames appended one
//! after another: length (u32 LE, 1 ..= [`MAX_FRAME`]), a postcard
//! [`JournalRecord`], and the first 8 bytes of the SHA-256 of that record.
//! A reader stops at the first frame that is short, too long, fails its
//! check or does not decode (a crash mid-append), and reports how many
//! bytes were sound so a writer can cut the tear off before appending.
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::error::FormatError;
use crate::id::ObjectId;
use crate::index::{HashCheckpoint, IndexKind, StatInfo};
use crate::object::ManifestChunk;

pub const JOURNAL_MAGIC: &[u8; 8] = b"MGADDJ\0\0";
pub const JOURNAL_VERSION: u32 = 1;
/// Header: magic and version.
pub const JOURNAL_HEADER_LEN: usize = 12;
/// Largest frame: a partial record of about 1.8 million chunks (a 900 GB
/// file at the default chunk sizes, appended in one go).
pub const MAX_FRAME: u32 = 64 << 20;
/// Longest path a record may name (Linux's PATH_MAX).
pub const MAX_PATH: usize = 4096;

const CHECK_LEN: usize = 8;

/// One journal record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalRecord {
    /// A file stored whole: its manifest, and every chunk the manifest
    /// names, were in stored packs when this was written.
    Done {
        path: String,
        kind: IndexKind,
        /// `stat` of the file after it was read.
        stat: StatInfo,
        content: ObjectId,
        manifest: ObjectId,
        /// Whole-file hash checkpoints (as in the worktree index's
        /// resume table), ascending by `chunks`.
        checkpoints: Vec<HashCheckpoint>,
    },
    /// More of the leading chunks of a large file that was being read:
    /// chunks `first ..first + chunks.len()` of it, and the hash
    /// checkpoints that fall in them. Records for one path chain: a
    /// record whose `first` is at most the chunks known so far replaces
    /// everything from `first` on.
    Partial {
        path: String,
        /// `stat` of the file when reading began.
        stat: StatInfo,
        first: u32,
        chunks: Vec<ManifestChunk>,
        /// Ascending by `chunks`; each covers at most `first + chunks.len()`
        /// chunks.
        checkpoints: Vec<HashCheckpoint>,
    },
}

impl JournalRecord {
    pub fn path(&self) -> &str {
        match self {
            JournalRecord::Done { path, .. } | JournalRecord::Partial { path, .. } => path,
        }
    }

    fn check(&self) -> Result<(), &'static str> {
        let path = self.path();
        if path.is_empty() || path.len() > MAX_PATH {
            return Err("path empty or too long");
        }
        if let JournalRecord::Done {
            kind: IndexKind::Symlink,
            ..
        } = self
        {
            return Err("a symlink is never journaled");
        }
        let (cps, limit) = match self {
            JournalRecord::Done { checkpoints, .. } => (checkpoints, u64::from(u32::MAX)),
            JournalRecord::Partial {
                first,
                chunks,
                checkpoints,
                ..
            } => (
                checkpoints,
                u64::from(*first).saturating_add(chunks.len() as u64),
            ),
        };
        if !cps.windows(2).all(|w| w[0].chunks < w[1].chunks) {
            return Err("checkpoints not ascending");
        }
        if cps.iter().any(|c| u64::from(c.chunks) > limit) {
            return Err("checkpoint beyond the record's chunks");
        }
        Ok(())
    }
}

/// The journal's header.
pub fn encode_header() -> [u8; JOURNAL_HEADER_LEN] {
    let mut h = [0u8; JOURNAL_HEADER_LEN];
    h[..8].copy_from_slice(JOURNAL_MAGIC);
    h[8..].copy_from_slice(&JOURNAL_VERSION.to_le_bytes());
    h
}

/// One frame: length, record, check.
pub fn encode_record(rec: &JournalRecord) -> Vec<u8> {
    let body = postcard::to_stdvec(rec).expect("postcard encoding of plain data");
    let mut out = Vec::with_capacity(4 + body.len() + CHECK_LEN);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&ObjectId::hash(&body).0[..CHECK_LEN]);
    out
}

/// Reads a journal frame by frame (memory: one frame).
pub struct JournalReader<R> {
    r: R,
    /// Bytes of sound header and frames read so far.
    pub valid_len: u64,
    done: bool,
}

impl<R: Read> JournalReader<R> {
    /// Checks the header. An empty input is an error like any other: the
    /// caller treats every error as "no journal".
    pub fn new(mut r: R) -> Result<JournalReader<R>, FormatError> {
        const WHAT: &str = "add journal";
        let mut h = [0u8; JOURNAL_HEADER_LEN];
        let n = read_full(&mut r, &mut h);
        if n < JOURNAL_HEADER_LEN {
            return Err(FormatError::Truncated {
                what: WHAT,
                len: n,
                need: JOURNAL_HEADER_LEN,
            });
        }
        if &h[..8] != JOURNAL_MAGIC {
            return Err(FormatError::BadMagic { what: WHAT });
        }
        let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if version != JOURNAL_VERSION {
            return Err(FormatError::UnknownVersion {
                what: WHAT,
                found: version,
                supported: JOURNAL_VERSION,
            });
        }
        Ok(JournalReader {
            r,
            valid_len: JOURNAL_HEADER_LEN as u64,
            done: false,
        })
    }
}

impl<R: Read> Iterator for JournalReader<R> {
    type Item = JournalRecord;

    /// The next sound record; `None` at the end or at the first torn or
    /// damaged frame (nothing after it is read).
    fn next(&mut self) -> Option<JournalRecord> {
        if self.done {
            return None;
        }
        let rec = self.frame();
        if rec.is_none() {
            self.done = true;
        }
        rec
    }
}

impl<R: Read> JournalReader<R> {
    fn frame(&mut self) -> Option<JournalRecord> {
        let mut len = [0u8; 4];
        if read_full(&mut self.r, &mut len) < 4 {
            return None;
        }
        let len = u32::from_le_bytes(len);
        if len == 0 || len > MAX_FRAME {
            return None;
        }
        // Read through `take`, so a length the input cannot back is never
        // allocated up front.
        let mut body = Vec::new();
        (&mut self.r)
            .take(u64::from(len))
            .read_to_end(&mut body)
            .ok()?;
        if body.len() != len as usize {
            return None;
        }
        let mut check = [0u8; CHECK_LEN];
        if read_full(&mut self.r, &mut check) < CHECK_LEN
            || ObjectId::hash(&body).0[..CHECK_LEN] != check
        {
            return None;
        }
        let (rec, rest): (JournalRecord, _) = postcard::take_from_bytes(&body).ok()?;
        if !rest.is_empty() || rec.check().is_err() {
            return None;
        }
        // One encoding per record: postcard also decodes over-long varints,
        // which would let two byte strings mean one record (found by the
        // decode_add_journal fuzz target).
        if postcard::to_stdvec(&rec).ok()? != body {
            return None;
        }
        self.valid_len += 4 + u64::from(len) + CHECK_LEN as u64;
        Some(rec)
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Timestamp;
    use proptest::prelude::*;

    fn stat(n: u64) -> StatInfo {
        StatInfo {
            size: n,
            mtime: Timestamp {
                secs: n as i64,
                nanos: 7,
            },
            ctime: Timestamp { secs: 3, nanos: 9 },
            ino: 11,
            dev: 12,
        }
    }

    fn sample() -> Vec<JournalRecord> {
        vec![
            JournalRecord::Done {
                path: "a/b.mov".into(),
                kind: IndexKind::File,
                stat: stat(5),
                content: ObjectId::hash(b"c"),
                manifest: ObjectId::hash(b"m"),
                checkpoints: vec![HashCheckpoint {
                    chunks: 16,
                    offset: 64 * 1000,
                    state: [1; 8],
                }],
            },
            JournalRecord::Partial {
                path: "big.mxf".into(),
                stat: stat(1 << 30),
                first: 0,
                chunks: vec![ManifestChunk {
                    id: ObjectId::hash(b"x"),
                    len: 4096,
                }],
                checkpoints: vec![],
            },
        ]
    }

    fn journal(recs: &[JournalRecord]) -> Vec<u8> {
        let mut b = encode_header().to_vec();
        for r in recs {
            b.extend(encode_record(r));
        }
        b
    }

    #[test]
    fn records_round_trip() {
        let recs = sample();
        let b = journal(&recs);
        let mut r = JournalReader::new(&b[..]).unwrap();
        let got: Vec<_> = r.by_ref().collect();
        assert_eq!(got, recs);
        assert_eq!(r.valid_len, b.len() as u64);
    }

    #[test]
    fn a_torn_tail_ends_the_journal_at_the_last_sound_frame() {
        let recs = sample();
        let b = journal(&recs);
        let first_end = JOURNAL_HEADER_LEN + encode_record(&recs[0]).len();
        for cut in first_end..b.len() {
            let mut r = JournalReader::new(&b[..cut]).unwrap();
            let got: Vec<_> = r.by_ref().collect();
            assert_eq!(got, recs[..1], "cut at {cut}");
            assert_eq!(r.valid_len, first_end as u64);
        }
        // A flipped bit in the second frame: the first still reads.
        let mut bad = b.clone();
        let last = bad.len() - 12;
        bad[last] ^= 1;
        let got: Vec<_> = JournalReader::new(&bad[..]).unwrap().collect();
        assert_eq!(got, recs[..1]);
    }

    #[test]
    fn header_problems_are_errors() {
        assert!(matches!(
            JournalReader::new(&b"MGADDJ"[..]),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            JournalReader::new(&b"MGINDEX\0\x01\0\0\0"[..]),
            Err(FormatError::BadMagic { .. })
        ));
        let mut v2 = encode_header();
        v2[8] = 2;
        assert!(matches!(
            JournalReader::new(&v2[..]),
            Err(FormatError::UnknownVersion { found: 2, .. })
        ));
    }

    #[test]
    fn a_non_canonical_encoding_is_refused() {
        // The path's length (a varint) written in two bytes instead of one.
        let rec = &sample()[0];
        let body = postcard::to_stdvec(rec).unwrap();
        assert_eq!(body[0], 0, "variant Done");
        assert_eq!(body[1] as usize, "a/b.mov".len());
        let mut long = vec![0u8, body[1] | 0x80, 0];
        long.extend_from_slice(&body[2..]);
        let (again, rest): (JournalRecord, _) = postcard::take_from_bytes(&long).unwrap();
        assert!(rest.is_empty() && &again == rec, "postcard reads it");
        let mut b = encode_header().to_vec();
        b.extend((long.len() as u32).to_le_bytes());
        b.extend(&long);
        b.extend(&ObjectId::hash(&long).0[..CHECK_LEN]);
        assert_eq!(JournalReader::new(&b[..]).unwrap().count(), 0);
    }

    #[test]
    fn a_huge_claimed_length_is_not_allocated() {
        let mut b = encode_header().to_vec();
        b.extend((MAX_FRAME - 1).to_le_bytes());
        b.extend([0u8; 100]);
        assert_eq!(JournalReader::new(&b[..]).unwrap().count(), 0);
        let mut b = encode_header().to_vec();
        b.extend((MAX_FRAME + 1).to_le_bytes());
        assert_eq!(JournalReader::new(&b[..]).unwrap().count(), 0);
    }

    #[test]
    fn inconsistent_records_are_refused() {
        // A checkpoint beyond the partial record's chunks.
        let rec = JournalRecord::Partial {
            path: "f".into(),
            stat: stat(1),
            first: 2,
            chunks: vec![],
            checkpoints: vec![HashCheckpoint {
                chunks: 3,
                offset: 64,
                state: [0; 8],
            }],
        };
        assert_eq!(JournalReader::new(&journal(&[rec])[..]).unwrap().count(), 0);
        // A symlink's target is never taken from the journal.
        let rec = JournalRecord::Done {
            path: "link".into(),
            kind: IndexKind::Symlink,
            stat: stat(1),
            content: ObjectId::hash(b"t"),
            manifest: ObjectId::ZERO,
            checkpoints: vec![],
        };
        assert_eq!(JournalReader::new(&journal(&[rec])[..]).unwrap().count(), 0);
        let rec = JournalRecord::Partial {
            path: String::new(),
            stat: stat(1),
            first: 0,
            chunks: vec![],
            checkpoints: vec![],
        };
        assert_eq!(JournalReader::new(&journal(&[rec])[..]).unwrap().count(), 0);
    }

    proptest! {
        #[test]
        fn any_bytes_after_the_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut b = encode_header().to_vec();
            b.extend(tail);
            let mut r = JournalReader::new(&b[..]).unwrap();
            for rec in r.by_ref() {
                prop_assert!(rec.check().is_ok());
            }
            prop_assert!(r.valid_len <= b.len() as u64);
        }

        #[test]
        fn partial_records_round_trip(first in 0u32..1000, n in 0usize..50, size in any::<u64>(), path in "[a-z/]{1,40}") {
            let chunks: Vec<_> = (0..n).map(|i| ManifestChunk { id: ObjectId::hash(&i.to_le_bytes()), len: i as u32 }).collect();
            let rec = JournalRecord::Partial { path, stat: stat(size), first, chunks, checkpoints: vec![] };
            let b = journal(std::slice::from_ref(&rec));
            let got: Vec<_> = JournalReader::new(&b[..]).unwrap().collect();
            prop_assert_eq!(got, vec![rec]);
        }
    }
}
