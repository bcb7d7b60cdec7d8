//! A streaming FastCDC chunker with a reused buffer.
use std::io::{self, Read};

use fastcdc::v2020::{cut, Normalization, MASKS};
use mediagit_format::config::ChunkingConfig;

/// Most forced boundaries one chunker honours over its whole stream (see
/// [`Chunker::cut_at_all`]): a hostile file cannot make millions of tiny
/// chunks; boundaries asked for beyond this are ignored.
pub const MAX_FORCED_CUTS: usize = 4096;

/// Cuts a stream into content-defined chunks. Memory: one buffer of
/// `4 * max_size` bytes, reused for the whole stream.
pub struct Chunker<R> {
    source: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    min: usize,
    avg: usize,
    max: usize,
    masks: (u64, u64, u64, u64),
    /// Bytes of the stream already returned as chunks.
    pos: u64,
    /// Forced boundaries still ahead (stream offsets, each > `pos`),
    /// sorted in decreasing order: the next one is the last. See
    /// [`Chunker::cut_at_all`].
    cuts: Vec<u64>,
    /// Forced boundaries already passed (they count against
    /// [`MAX_FORCED_CUTS`]).
    cuts_done: usize,
}

impl<R: Read> Chunker<R> {
    pub fn new(source: R, cfg: ChunkingConfig) -> Chunker<R> {
        Chunker::with_buffer(source, cfg, Vec::new())
    }

    /// Like [`Chunker::new`], reusing `buf`'s allocation (get it back with
    /// [`Chunker::into_buffer`]): no allocation or zeroing per file.
    pub fn with_buffer(source: R, cfg: ChunkingConfig, mut buf: Vec<u8>) -> Chunker<R> {
        buf.resize(4 * cfg.max_size as usize, 0);
        let bits = fastcdc::v2020::logarithm2(cfg.avg_size);
        let norm = Normalization::Level1.bits();
        let mask_s = MASKS[(bits + norm) as usize];
        let mask_l = MASKS[(bits - norm) as usize];
        Chunker {
            source,
            buf,
            start: 0,
            end: 0,
            eof: false,
            min: cfg.min_size as usize,
            avg: cfg.avg_size as usize,
            max: cfg.max_size as usize,
            masks: (mask_s, mask_l, mask_s << 1, mask_l << 1),
            pos: 0,
            cuts: Vec::new(),
            cuts_done: 0,
        }
    }

    /// Makes `offset` (from the start of the stream) a chunk boundary: the
    /// chunk that would span it ends there instead, and content-defined
    /// cutting starts afresh after it. Used to keep a media file's metadata
    /// apart from its payload (see [`crate::media`]). The same as
    /// [`Chunker::cut_at_all`] with one offset.
    pub fn cut_at(&mut self, offset: u64) {
        self.cut_at_all([offset]);
    }

    /// Makes each of `offsets` a chunk boundary, as [`Chunker::cut_at`]
    /// does, in addition to those asked for before. Offsets at or before
    /// the current position are ignored, so are duplicates. A boundary
    /// closer than the minimum chunk size to the previous one is honoured
    /// (a small chunk results); at most [`MAX_FORCED_CUTS`] boundaries are
    /// honoured per stream, the lowest offsets first, the rest are ignored.
    pub fn cut_at_all(&mut self, offsets: impl IntoIterator<Item = u64>) {
        let budget = MAX_FORCED_CUTS.saturating_sub(self.cuts_done);
        let pos = self.pos;
        let mut cuts = std::mem::take(&mut self.cuts);
        for at in offsets {
            if at > pos {
                cuts.push(at);
                // Memory stays bounded however many offsets come.
                if cuts.len() >= 2 * MAX_FORCED_CUTS {
                    keep_lowest(&mut cuts, budget);
                }
            }
        }
        keep_lowest(&mut cuts, budget);
        self.cuts = cuts;
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 && self.end - self.start < self.max {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while !self.eof && self.end < self.buf.len() && self.end - self.start < self.max {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Gives the buffer back for reuse.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        if self.end - self.start < self.max && !self.eof {
            self.fill()?;
        }
        let mut avail = self.end - self.start;
        if avail == 0 {
            return Ok(None);
        }
        if let Some(&cut) = self.cuts.last() {
            // The chunk ends at the next forced boundary at the latest.
            avail = avail.min(usize::try_from(cut - self.pos).unwrap_or(usize::MAX));
        }
        let (ms, ml, msl, mll) = self.masks;
        let (_, len) = cut(
            &self.buf[self.start..self.start + avail],
            self.min,
            self.avg,
            self.max,
            ms,
            ml,
            msl,
            mll,
        );
        let len = if len == 0 { avail } else { len };
        let s = self.start;
        self.start += len;
        self.pos += len as u64;
        while self.cuts.last().is_some_and(|&c| c <= self.pos) {
            self.cuts.pop();
            self.cuts_done += 1;
        }
        Ok(Some(&self.buf[s..s + len]))
    }
}

/// Sorts `cuts` in decreasing order without duplicates, keeping only the
/// `n` lowest offsets.
fn keep_lowest(cuts: &mut Vec<u64>, n: usize) {
    cuts.sort_unstable();
    cuts.dedup();
    cuts.truncate(n);
    cuts.reverse();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> ChunkingConfig {
        ChunkingConfig {
            min_size: 64,
            avg_size: 256,
            max_size: 1024,
        }
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn chunks(data: &[u8], cfg: ChunkingConfig) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(data, cfg);
        let mut out = vec![];
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch.to_vec());
        }
        out
    }

    /// A reader that returns at most `step` bytes per call.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    proptest! {
        #[test]
        fn chunks_reassemble_and_respect_bounds(len in 0usize..20_000, seed in any::<u64>(), step in 1usize..5000) {
            let data = pseudo_random(len, seed);
            let mut c = Chunker::new(Trickle(&data, step), small());
            let mut out = Vec::new();
            let mut sizes = Vec::new();
            while let Some(ch) = c.next_chunk().unwrap() {
                out.extend_from_slice(ch);
                sizes.push(ch.len());
            }
            prop_assert_eq!(&out, &data);
            for (i, s) in sizes.iter().enumerate() {
                prop_assert!(*s <= 1024);
                if i + 1 < sizes.len() { prop_assert!(*s >= 64); }
            }
            // Cut points do not depend on how the reader delivers bytes.
            prop_assert_eq!(chunks(&data, small()).iter().map(|c| c.len()).collect::<Vec<_>>(), sizes);
        }
    }

    proptest! {
        /// A forced boundary is a boundary, the bytes still reassemble, and
        /// after it the cuts are those of the rest of the stream alone (so a
        /// header edit leaves the payload's chunks as they were).
        #[test]
        fn forced_cut_is_a_boundary_and_the_rest_chunks_alone(
            len in 1usize..20_000, seed in any::<u64>(), at in 1usize..20_000, step in 1usize..5000,
        ) {
            let data = pseudo_random(len, seed);
            let at = at.min(len);
            let mut c = Chunker::new(Trickle(&data, step), small());
            c.cut_at(at as u64);
            let mut ends = Vec::new();
            let mut out = Vec::new();
            while let Some(ch) = c.next_chunk().unwrap() {
                out.extend_from_slice(ch);
                ends.push(out.len());
            }
            prop_assert_eq!(&out, &data);
            prop_assert!(ends.contains(&at), "{} not in {:?}", at, ends);
            let after: Vec<usize> = ends.iter().filter(|e| **e > at).map(|e| e - at).collect();
            let mut rest = 0;
            let alone: Vec<usize> = chunks(&data[at..], small()).iter().map(|c| { rest += c.len(); rest }).collect();
            prop_assert_eq!(after, alone);
        }
    }

    /// The chunk ends of `data` read through `step`-byte reads with the
    /// forced boundaries `cuts` asked for in `batches` calls.
    fn ends_with_cuts(data: &[u8], step: usize, cuts: &[u64], batches: usize) -> Vec<usize> {
        let mut c = Chunker::new(Trickle(data, step), small());
        for part in cuts.chunks(cuts.len().div_ceil(batches.max(1)).max(1)) {
            c.cut_at_all(part.iter().copied());
        }
        let mut ends = Vec::new();
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            assert!(ch.len() <= 1024, "chunk of {} bytes", ch.len());
            assert!(!ch.is_empty());
            out.extend_from_slice(ch);
            ends.push(out.len());
        }
        assert_eq!(out, data);
        ends
    }

    proptest! {
        /// Any set of forced boundaries (unsorted, repeated, past the end,
        /// asked for in several calls): the bytes reassemble, no chunk is
        /// over the maximum, every boundary within the stream is a chunk
        /// end, and after the last one the rest chunks as if alone.
        #[test]
        fn many_forced_cuts_are_boundaries(
            len in 0usize..20_000, seed in any::<u64>(), step in 1usize..5000,
            cuts in proptest::collection::vec(0u64..22_000, 0..40), batches in 1usize..4,
        ) {
            let data = pseudo_random(len, seed);
            let ends = ends_with_cuts(&data, step, &cuts, batches);
            for &at in &cuts {
                if at > 0 && (at as usize) <= len {
                    prop_assert!(ends.contains(&(at as usize)), "{} not in {:?}", at, ends);
                }
            }
            if let Some(&last) = cuts.iter().filter(|&&c| c > 0 && (c as usize) < len).max() {
                let last = last as usize;
                let after: Vec<usize> = ends.iter().filter(|e| **e > last).map(|e| e - last).collect();
                let mut rest = 0;
                let alone: Vec<usize> = chunks(&data[last..], small()).iter().map(|c| { rest += c.len(); rest }).collect();
                prop_assert_eq!(after, alone);
            }
        }
    }

    #[test]
    fn cuts_at_or_before_the_position_are_ignored() {
        let data = pseudo_random(5000, 3);
        let mut c = Chunker::new(&data[..], small());
        c.cut_at_all([100, 200]);
        assert_eq!(c.next_chunk().unwrap().unwrap().len(), 100);
        c.cut_at_all([50, 100, 150]);
        assert_eq!(c.next_chunk().unwrap().unwrap().len(), 50);
        assert_eq!(c.next_chunk().unwrap().unwrap().len(), 50);
    }

    #[test]
    fn forced_cuts_are_bounded_per_stream() {
        let data = pseudo_random(3 * MAX_FORCED_CUTS, 5);
        let len = data.len() as u64;
        // A cut at every byte, asked for twice over (and in reverse).
        let ends = ends_with_cuts(&data, 4096, &(1..len).rev().collect::<Vec<_>>(), 2);
        // The first MAX_FORCED_CUTS are honoured: one-byte chunks.
        assert_eq!(
            &ends[..MAX_FORCED_CUTS],
            &(1..=MAX_FORCED_CUTS).collect::<Vec<_>>()[..]
        );
        // The rest are ignored: content-defined chunks of at least the minimum.
        let rest = &ends[MAX_FORCED_CUTS..];
        assert!(rest.len() < (data.len() - MAX_FORCED_CUTS) / 64 + 2);
        // Many calls: the budget is for the whole stream.
        let mut c = Chunker::new(&data[..], small());
        for at in 1..len {
            c.cut_at(at);
        }
        let mut n = 0;
        while c.next_chunk().unwrap().is_some() {
            n += 1;
        }
        assert!(n < MAX_FORCED_CUTS + (data.len() - MAX_FORCED_CUTS) / 64 + 2);
    }

    #[test]
    fn an_insert_only_changes_nearby_chunks() {
        let data = pseudo_random(200_000, 7);
        let mut edited = data[..1000].to_vec();
        edited.extend_from_slice(b"inserted bytes");
        edited.extend_from_slice(&data[1000..]);
        let a = chunks(&data, small());
        let b = chunks(&edited, small());
        let shared = b.iter().filter(|c| a.contains(c)).count();
        assert!(
            shared + 4 >= a.len(),
            "only {shared} of {} chunks shared",
            a.len()
        );
    }

    #[test]
    fn empty_stream_has_no_chunks() {
        assert!(chunks(&[], small()).is_empty());
    }
}
