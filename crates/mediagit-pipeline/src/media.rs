//! Format-aware cut points: where a media file's metadata ends and its
//! payload begins, so that an edit of the metadata alone (a photographer
//! re-tagging, rating or captioning in Lightroom or exiftool, a tag editor
//! on a WAV or FLAC, a renamed PSD layer) changes only the chunks that hold
//! it, and the image, video or audio data keeps its chunks. [`cut_points`]
//! walks a file's structure (JPEG, PNG, TIFF/BigTIFF, ISO BMFF (MP4, MOV,
//! M4A, HEIC), RIFF (WAV, AVI, WebP) and AIFF, FLAC, ID3v2-tagged MP3,
//! PSD/PSB) and gives the boundaries for [`crate::Chunker::cut_at_all`].
//!
//! Parsers here read untrusted bytes: they never panic, check every length
//! read from the file against the file's size before using it, allocate
//! nothing sized by the file, read only headers (never pixel, sample or
//! frame data), bound the number of structures they walk, and give up on
//! anything they do not understand. A wrong answer only moves a chunk
//! boundary, never changes what is stored.

use std::io;

/// How many leading bytes of a file [`cut_points`] wants as its `head`
/// (fewer when the file is shorter): enough for the whole header of most
/// JPEGs, PSDs and front-loaded MP4s, so that these need no further read.
pub const CUT_PROBE: usize = 256 << 10;

/// How many leading bytes of a file to read for [`jpeg_header_len`].
pub const JPEG_HEADER_PROBE: usize = CUT_PROBE;

/// Most boundaries [`cut_points`] returns for one file (the lowest
/// offsets are kept).
pub const MAX_CUT_POINTS: usize = 1024;

/// Most structure headers (segments, chunks, boxes, blocks, IFDs, batches
/// of strip offsets) one walk reads: bounds the work a hostile file can
/// cause (each may be one positioned read).
const MAX_STEPS: u32 = 1 << 17;

/// Metadata blocks (a JPEG APPn segment, a PSD image resource) at least
/// this long get chunks of their own, so that an edit of one of them
/// leaves the others' chunks (an ICC profile, a thumbnail) as they were.
const OWN_CHUNK: u64 = 1 << 10;

/// Most IFDs one TIFF walk visits, and most entries in one IFD.
const MAX_IFDS: usize = 64;
const MAX_IFD_ENTRIES: u64 = 4096;

/// Why a walk stopped before the end of the file's structure.
#[derive(Debug)]
enum Stop {
    /// Not the format it looked like, or a read failed: no cuts at all.
    Fail,
    /// The walk or cut budget ran out: the cuts so far stand.
    Enough,
}

type Walk = Result<(), Stop>;

/// A sub-structure's walk (the children of `moov`, a PSD's image
/// resources): a malformed one ends that walk only, the cuts made so far
/// and those of the enclosing structure stand.
fn lenient(w: Walk) -> Walk {
    match w {
        Err(Stop::Fail) => Ok(()),
        w => w,
    }
}

fn add(a: u64, b: u64) -> Result<u64, Stop> {
    a.checked_add(b).ok_or(Stop::Fail)
}

fn be16(b: &[u8]) -> u64 {
    u64::from(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(b: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// An unsigned integer of `b.len()` (1, 2, 4 or 8) bytes.
fn uint(b: &[u8], le: bool) -> u64 {
    let mut v = 0u64;
    for i in 0..b.len().min(8) {
        let byte = if le { b[b.len() - 1 - i] } else { b[i] };
        v = (v << 8) | u64::from(byte);
    }
    v
}

/// The file being walked: its first bytes, its length, positioned reads
/// for the rest, and the cuts found so far.
struct Src<'h, 'r, 'f> {
    head: &'h [u8],
    len: u64,
    read_at: &'r mut (dyn FnMut(u64, &mut [u8]) -> io::Result<()> + 'f),
    steps: u32,
    cuts: Vec<u64>,
}

impl Src<'_, '_, '_> {
    /// One more structure walked.
    fn step(&mut self) -> Walk {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(Stop::Enough);
        }
        Ok(())
    }

    /// Fills `buf` from offset `at`, which must lie within the file.
    fn read(&mut self, at: u64, buf: &mut [u8]) -> Walk {
        let end = add(at, buf.len() as u64)?;
        if end > self.len {
            return Err(Stop::Fail);
        }
        let in_head = usize::try_from(at)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(a, e)| self.head.get(a..e));
        if let Some(b) = in_head {
            buf.copy_from_slice(b);
            return Ok(());
        }
        self.step()?;
        (self.read_at)(at, buf).map_err(|_| Stop::Fail)
    }

    fn bytes<const N: usize>(&mut self, at: u64) -> Result<[u8; N], Stop> {
        let mut b = [0u8; N];
        self.read(at, &mut b)?;
        Ok(b)
    }

    /// Bytes left from `at` to the end of the file.
    fn left(&self, at: u64) -> u64 {
        self.len.saturating_sub(at)
    }

    /// Makes `at` a boundary (ignored unless within the file).
    fn cut(&mut self, at: u64) -> Walk {
        if at > 0 && at < self.len {
            if self.cuts.len() >= 2 * MAX_CUT_POINTS {
                return Err(Stop::Enough);
            }
            self.cuts.push(at);
        }
        Ok(())
    }
}

/// Forced chunk boundaries for a media file of `len` bytes whose first
/// bytes are `head` (at least `min(len, CUT_PROBE)` bytes; fewer only costs
/// reads): metadata apart from payload. `read_at(offset, buf)` fills `buf`
/// from the file (an exact read; `Err` = give up); it is called only for
/// ranges within `len` and beyond `head`, for headers and tables, never for
/// payload. Never panics on any input; returns sorted, deduplicated offsets
/// in `(0, len)`, at most [`MAX_CUT_POINTS`] of them; empty when the format
/// is unknown or the walk fails.
///
/// Per format:
/// - JPEG: the start of the tables (DQT, DHT, SOF) and of the first scan
///   (SOS), and around each APPn/COM segment of 1 KiB or more (EXIF, XMP,
///   ICC profile, Photoshop IRB).
/// - PNG: between runs of IDAT (APNG: fdAT) chunks and other chunks, around
///   each tEXt/zTXt/iTXt/eXIf chunk, after IEND.
/// - TIFF, BigTIFF (and TIFF-based raw formats): around each run of
///   contiguous strips or tiles (and an IFD1 JPEG thumbnail), around each
///   IFD (IFD0 and its chain, EXIF, GPS, Interop, SubIFDs) together with
///   its out-of-line values when they are contiguous.
/// - ISO BMFF (MP4, MOV, M4A, 3GP, HEIC, AVIF): every top-level box
///   boundary, those of the children of `moov` and of a top-level `meta`;
///   in a HEIF, around the data of each metadata item (EXIF, XMP) and
///   around each run of the other items' data (the image), where `iloc`
///   places them.
/// - RIFF (WAV, RF64/BW64, AVI, WebP) and IFF (AIFF): every top-level
///   chunk boundary.
/// - FLAC: every metadata block boundary (the last is the first audio
///   frame), after an ID3v2 tag. MP3: after an ID3v2 tag, before an ID3v1
///   tag.
/// - PSD/PSB: after the header and colour mode data, around the image
///   resources section and each large or metadata resource in it, after
///   the layer records (the start of the channel image data), after the
///   layer info, after the global layer mask info, after each additional
///   layer information block (the layer records in a 16- or 32-bit
///   document's `Lr16`/`Lr32` too), after the layer and mask section (the
///   start of the merged image data).
pub fn cut_points(
    head: &[u8],
    len: u64,
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
) -> Vec<u64> {
    let head = &head[..head.len().min(usize::try_from(len).unwrap_or(usize::MAX))];
    let mut s = Src {
        head,
        len,
        read_at,
        steps: 0,
        cuts: Vec::new(),
    };
    let mut magic = [0u8; 16];
    let n = len.min(16) as usize;
    if s.read(0, &mut magic[..n]).is_err() || n < 8 {
        return Vec::new();
    }
    let m = &magic;
    let walk = if m.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg(&mut s)
    } else if m.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(&mut s)
    } else if m.starts_with(b"II*\0") || m.starts_with(b"MM\0*") {
        tiff(&mut s, m[0] == b'I', false)
    } else if m.starts_with(b"II+\0") || m.starts_with(b"MM\0+") {
        tiff(&mut s, m[0] == b'I', true)
    } else if is_isobmff(m) {
        boxes(&mut s, 0, len, 0)
    } else if n >= 12
        && (m.starts_with(b"RIFF") || m.starts_with(b"RF64") || m.starts_with(b"BW64"))
    {
        riff(&mut s, true, !m.starts_with(b"RIFF"))
    } else if n >= 12 && m.starts_with(b"FORM") {
        riff(&mut s, false, false)
    } else if m.starts_with(b"fLaC") {
        flac(&mut s, 0)
    } else if m.starts_with(b"ID3") {
        id3(&mut s)
    } else if n >= 16 && m.starts_with(b"8BPS") {
        psd(&mut s)
    } else {
        return Vec::new();
    };
    if let Err(Stop::Fail) = walk {
        return Vec::new();
    }
    let mut cuts = s.cuts;
    cuts.sort_unstable();
    cuts.dedup();
    cuts.truncate(MAX_CUT_POINTS);
    cuts
}

fn jpeg(s: &mut Src) -> Walk {
    let mut pos = 2u64;
    let mut tables = false;
    loop {
        s.step()?;
        let [ff, mut code] = s.bytes::<2>(pos)?;
        if ff != 0xFF {
            return Err(Stop::Fail);
        }
        // Fill bytes before the marker code.
        while code == 0xFF {
            s.step()?;
            pos += 1;
            code = s.bytes::<2>(pos)?[1];
        }
        match code {
            0xDA => return s.cut(pos),
            0x01 | 0xD0..=0xD7 => pos += 2,
            0x00 | 0xD8 | 0xD9 => return Err(Stop::Fail),
            _ => {
                let n = be16(&s.bytes::<2>(add(pos, 2)?)?);
                if n < 2 {
                    return Err(Stop::Fail);
                }
                let end = add(pos, 2 + n)?;
                if matches!(code, 0xE0..=0xEF | 0xFE) {
                    // EXIF, XMP, ICC, IPTC: a large one gets its own chunk.
                    if n >= OWN_CHUNK {
                        s.cut(pos)?;
                        s.cut(end)?;
                    }
                } else if !tables {
                    // Quantization and Huffman tables, frame header: apart
                    // from the metadata before them.
                    s.cut(pos)?;
                    tables = true;
                }
                pos = end;
            }
        }
    }
}

fn png(s: &mut Src) -> Walk {
    let mut pos = 8u64;
    let mut prev_idat = None;
    while pos < s.len {
        s.step()?;
        if s.left(pos) < 12 {
            // Trailing bytes that are not a chunk.
            return s.cut(pos);
        }
        let h = s.bytes::<8>(pos)?;
        let n = be32(&h[..4]);
        if n > 0x7FFF_FFFF {
            return Err(Stop::Fail);
        }
        let end = add(pos, 12 + n)?;
        let ty = &h[4..8];
        let idat = ty == b"IDAT" || ty == b"fdAT";
        if prev_idat.is_some_and(|p| p != idat) {
            s.cut(pos)?;
        }
        if matches!(ty, b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf") {
            s.cut(pos)?;
            s.cut(end)?;
        }
        if end > s.len {
            // Truncated: nothing more to walk.
            return Ok(());
        }
        prev_idat = Some(idat);
        pos = end;
        if ty == b"IEND" {
            // Anything appended after the image.
            return s.cut(pos);
        }
    }
    Ok(())
}

/// The size in bytes of one value of a TIFF field type.
fn tiff_type_size(ty: u64) -> Option<u64> {
    match ty {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 | 16..=18 => Some(8),
        _ => None,
    }
}

/// Contiguous runs of payload (strips, tiles), built from (offset, length)
/// pairs in file order.
#[derive(Default)]
struct Runs {
    cur: Option<(u64, u64)>,
    done: Vec<(u64, u64)>,
}

impl Runs {
    fn add(&mut self, at: u64, n: u64, len: u64) -> Walk {
        let Some(end) = at.checked_add(n).filter(|&e| n > 0 && e <= len) else {
            return Ok(()); // a bogus entry: no run
        };
        match &mut self.cur {
            // Adjacent (within alignment padding) or overlapping: one run.
            Some((s, e)) if at >= *s && at <= e.saturating_add(16) => *e = (*e).max(end),
            cur => {
                if let Some(r) = cur.replace((at, end)) {
                    if self.done.len() >= MAX_CUT_POINTS {
                        return Err(Stop::Enough);
                    }
                    self.done.push(r);
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) {
        self.done.extend(self.cur.take());
    }
}

/// A TIFF field: its type, count and where its value is in the file.
#[derive(Clone, Copy)]
struct Field {
    ty: u64,
    count: u64,
    at: u64,
}

struct Tiff {
    le: bool,
    big: bool,
}

impl Tiff {
    /// Reads the `i`-th to `i + out.len()`-th values of an offset or
    /// length array (SHORT, LONG or LONG8).
    fn values(&self, s: &mut Src, f: Field, i: u64, out: &mut [u64]) -> Walk {
        let size = match f.ty {
            3 => 2,
            4 | 13 => 4,
            16 | 18 => 8,
            _ => return Err(Stop::Fail),
        };
        let mut buf = [0u8; 8 * 64];
        let n = out.len().min(64);
        let b = &mut buf[..n * size];
        let skip = i.checked_mul(size as u64).ok_or(Stop::Fail)?;
        s.read(add(f.at, skip)?, b)?;
        for (k, v) in out.iter_mut().take(n).enumerate() {
            *v = uint(&b[k * size..(k + 1) * size], self.le);
        }
        Ok(())
    }

    /// Adds the payload runs of `offsets` with `lengths` (strips or tiles).
    fn payload(&self, s: &mut Src, offsets: Field, lengths: Field, runs: &mut Runs) -> Walk {
        if offsets.count != lengths.count {
            return Ok(());
        }
        let mut i = 0;
        while i < offsets.count {
            s.step()?;
            let n = (offsets.count - i).min(64) as usize;
            let (mut o, mut l) = ([0u64; 64], [0u64; 64]);
            self.values(s, offsets, i, &mut o[..n])?;
            self.values(s, lengths, i, &mut l[..n])?;
            for k in 0..n {
                runs.add(o[k], l[k], s.len)?;
            }
            i += n as u64;
        }
        Ok(())
    }
}

fn tiff(s: &mut Src, le: bool, big: bool) -> Walk {
    let t = Tiff { le, big };
    let first = if big {
        let h = s.bytes::<16>(0)?;
        if uint(&h[4..6], le) != 8 || uint(&h[6..8], le) != 0 {
            return Err(Stop::Fail);
        }
        uint(&h[8..16], le)
    } else {
        uint(&s.bytes::<4>(4)?, le)
    };
    let mut queue = vec![first];
    let mut seen: Vec<u64> = Vec::new();
    let mut runs = Runs::default();
    let mut regions: Vec<(u64, u64)> = Vec::new();
    while let Some(off) = queue.pop() {
        if off == 0 || seen.contains(&off) || seen.len() >= MAX_IFDS {
            continue;
        }
        seen.push(off);
        s.step()?;
        let r = ifd(s, &t, off, &mut queue, &mut runs);
        match r {
            Ok(region) => regions.push(region),
            // IFD0 must parse; a broken sub-IFD (a maker's private
            // pointer gone stale) is left alone.
            Err(Stop::Fail) if seen.len() > 1 => {}
            Err(e) => return Err(e),
        }
    }
    runs.finish();
    for &(a, b) in &runs.done {
        s.cut(a)?;
        s.cut(b)?;
    }
    for &(a, b) in &regions {
        if !runs.done.iter().any(|&(x, y)| x < b && a < y) {
            s.cut(a)?;
            s.cut(b)?;
        }
    }
    Ok(())
}

/// Walks one IFD: queues the IFDs it points to, adds its strips or tiles
/// to `runs`, and returns the region to keep apart: its entry table, with
/// its out-of-line values when they and the table are contiguous.
fn ifd(
    s: &mut Src,
    t: &Tiff,
    off: u64,
    queue: &mut Vec<u64>,
    runs: &mut Runs,
) -> Result<(u64, u64), Stop> {
    let (count_size, entry_size, word) = if t.big {
        (8u64, 20u64, 8u64)
    } else {
        (2, 12, 4)
    };
    let mut cb = [0u8; 8];
    s.read(off, &mut cb[..count_size as usize])?;
    let n = uint(&cb[..count_size as usize], t.le);
    if n == 0 || n > MAX_IFD_ENTRIES {
        return Err(Stop::Fail);
    }
    let entries = add(off, count_size)?;
    let table_end = add(entries, n * entry_size + word)?;
    if table_end > s.len {
        return Err(Stop::Fail);
    }
    let (mut lo, mut hi, mut parts_len, mut parts) = (off, table_end, table_end - off, 1u64);
    // Strip offsets, strip lengths, tile offsets, tile lengths, JPEG
    // thumbnail offset and length.
    let mut arrays: [Option<Field>; 6] = [None; 6];
    let mut buf = [0u8; 20 * 16];
    let mut i = 0;
    while i < n {
        s.step()?;
        let k = (n - i).min(16);
        let b = &mut buf[..(k * entry_size) as usize];
        s.read(add(entries, i * entry_size)?, b)?;
        for j in 0..k {
            let e = &b[(j * entry_size) as usize..((j + 1) * entry_size) as usize];
            let tag = uint(&e[0..2], t.le);
            let ty = uint(&e[2..4], t.le);
            let (count, field) = if t.big {
                (uint(&e[4..12], t.le), &e[12..20])
            } else {
                (uint(&e[4..8], t.le), &e[8..12])
            };
            let Some(size) = tiff_type_size(ty).and_then(|z| z.checked_mul(count)) else {
                continue;
            };
            if size > s.len {
                continue;
            }
            let at = if size <= word {
                entries + (i + j) * entry_size + entry_size - word
            } else {
                let v = uint(field, t.le);
                let Some(end) = v.checked_add(size).filter(|&e| e <= s.len) else {
                    continue;
                };
                lo = lo.min(v);
                hi = hi.max(end);
                parts_len = parts_len.saturating_add(size);
                parts += 1;
                v
            };
            let f = Field { ty, count, at };
            match tag {
                // EXIF, GPS, Interop IFD pointers.
                0x8769 | 0x8825 | 0xA005
                    if count == 1 && size <= word && queue.len() < MAX_IFDS =>
                {
                    queue.push(uint(&field[..size as usize], t.le))
                }
                // SubIFDs.
                0x014A if count <= 16 && queue.len() < MAX_IFDS => {
                    let mut o = [0u64; 16];
                    if t.values(s, f, 0, &mut o[..count as usize]).is_ok() {
                        queue.extend_from_slice(&o[..count as usize]);
                    }
                }
                0x0111 => arrays[0] = Some(f),
                0x0117 => arrays[1] = Some(f),
                0x0144 => arrays[2] = Some(f),
                0x0145 => arrays[3] = Some(f),
                0x0201 if count == 1 => arrays[4] = Some(f),
                0x0202 if count == 1 => arrays[5] = Some(f),
                _ => {}
            }
        }
        i += k;
    }
    let mut nb = [0u8; 8];
    s.read(add(entries, n * entry_size)?, &mut nb[..word as usize])?;
    if queue.len() < MAX_IFDS {
        queue.push(uint(&nb[..word as usize], t.le));
    }
    for (o, l) in [
        (arrays[0], arrays[1]),
        (arrays[2], arrays[3]),
        (arrays[4], arrays[5]),
    ] {
        if let (Some(o), Some(l)) = (o, l) {
            lenient(t.payload(s, o, l, runs))?;
        }
    }
    // Contiguous but for alignment padding: table and values together.
    if hi - lo <= parts_len.saturating_add(16 * parts) {
        Ok((lo, hi))
    } else {
        Ok((off, table_end))
    }
}

/// An ISO BMFF file (MP4, MOV, M4A, 3GP, HEIC, AVIF): `ftyp` first, or a
/// QuickTime file starting with one of the usual top-level boxes.
fn is_isobmff(m: &[u8; 16]) -> bool {
    let ty = &m[4..8];
    ty == b"ftyp"
        || (matches!(
            ty,
            b"moov" | b"mdat" | b"wide" | b"free" | b"skip" | b"pnot"
        ) && (be32(&m[..4]) >= 8 || be32(&m[..4]) <= 1))
}

/// Cuts at the end of every box in `[start, end)` (`depth` 0: the file).
fn boxes(s: &mut Src, start: u64, end: u64, depth: u32) -> Walk {
    let mut pos = start;
    while end.saturating_sub(pos) >= 8 {
        s.step()?;
        let h = s.bytes::<8>(pos)?;
        let ty = [h[4], h[5], h[6], h[7]];
        let (size, hdr) = match be32(&h[..4]) {
            0 => (end - pos, 8),
            1 if end - pos >= 16 => (be64(&s.bytes::<8>(pos + 8)?), 16),
            1 => return Err(Stop::Fail),
            n => (n, 8),
        };
        if size < hdr {
            return Err(Stop::Fail);
        }
        let Some(box_end) = pos.checked_add(size).filter(|&e| e <= end) else {
            // Truncated (a recording cut short): nothing more to walk.
            return Ok(());
        };
        s.cut(box_end)?;
        if depth == 0 {
            match &ty {
                b"moov" => lenient(boxes(s, pos + hdr, box_end, 1))?,
                // A full box: version and flags before the children.
                b"meta" if box_end - pos >= hdr + 4 => {
                    lenient(heif_meta(s, pos + hdr + 4, box_end))?
                }
                _ => {}
            }
        }
        pos = box_end;
    }
    Ok(())
}

/// Most metadata items of a HEIF file whose extents get chunks of their own.
const MAX_HEIF_META_ITEMS: usize = 64;

/// A top-level `meta` box's children in `[start, end)` (HEIF: HEIC,
/// AVIF): cuts at their ends, then around the data of the items it lists
/// (`iloc`), wherever it is (usually in `mdat`): around each metadata
/// item's (EXIF, XMP) extents, and around each run of the other items'
/// extents (the coded image, its tiles, a thumbnail), so that an edit of
/// the metadata, which moves the image data, leaves its chunks as they were.
fn heif_meta(s: &mut Src, start: u64, end: u64) -> Walk {
    let (mut iinf, mut iloc) = (None, None);
    let mut pos = start;
    while end - pos >= 8 {
        s.step()?;
        let h = s.bytes::<8>(pos)?;
        let size = be32(&h[..4]);
        if size < 8 {
            return Err(Stop::Fail);
        }
        let child_end = add(pos, size)?;
        if child_end > end {
            return Err(Stop::Fail);
        }
        s.cut(child_end)?;
        match &h[4..8] {
            b"iinf" => iinf = Some((pos + 8, child_end)),
            b"iloc" => iloc = Some((pos + 8, child_end)),
            _ => {}
        }
        pos = child_end;
    }
    let (Some(iinf), Some(iloc)) = (iinf, iloc) else {
        return Ok(());
    };
    let mut meta = [0u64; MAX_HEIF_META_ITEMS];
    let n = heif_metadata_items(s, iinf, &mut meta)?;
    heif_extents(s, iloc, &meta[..n])
}

/// Reads a box body field by field.
struct Cursor {
    pos: u64,
    end: u64,
}

impl Cursor {
    /// The next `n` (0 to 8) bytes as a big-endian integer.
    fn uint(&mut self, s: &mut Src, n: u64) -> Result<u64, Stop> {
        if n > 8 || self.end.saturating_sub(self.pos) < n {
            return Err(Stop::Fail);
        }
        let mut b = [0u8; 8];
        s.read(self.pos, &mut b[..n as usize])?;
        self.pos += n;
        Ok(uint(&b[..n as usize], false))
    }
}

/// The IDs of the metadata items (`Exif`, `mime` (XMP), `uri `) listed in
/// an `iinf` box body `(start, end)`, at most `ids.len()` of them.
fn heif_metadata_items(
    s: &mut Src,
    (start, end): (u64, u64),
    ids: &mut [u64],
) -> Result<usize, Stop> {
    let mut c = Cursor { pos: start, end };
    let version = c.uint(s, 4)? >> 24;
    let count = c.uint(s, if version == 0 { 2 } else { 4 })?;
    let mut found = 0;
    for _ in 0..count {
        s.step()?;
        let at = c.pos;
        let size = c.uint(s, 4)?;
        let ty = c.uint(s, 4)?;
        let infe_end = add(at, size)?;
        if size < 12 || infe_end > end || ty != u64::from(u32::from_be_bytes(*b"infe")) {
            return Err(Stop::Fail);
        }
        let v = c.uint(s, 4)? >> 24;
        if v >= 2 {
            let id = c.uint(s, if v == 2 { 2 } else { 4 })?;
            c.uint(s, 2)?; // protection index
            let item_type = c.uint(s, 4)?.to_be_bytes();
            if matches!(&item_type[4..], b"Exif" | b"mime" | b"uri ") && found < ids.len() {
                ids[found] = id;
                found += 1;
            }
        }
        c.pos = infe_end;
    }
    Ok(found)
}

/// The extents of the items in an `iloc` box body `(start, end)`: cuts
/// around those of the `meta` items, and around runs of the others'.
fn heif_extents(s: &mut Src, (start, end): (u64, u64), meta: &[u64]) -> Walk {
    let mut c = Cursor { pos: start, end };
    let version = c.uint(s, 4)? >> 24;
    if version > 2 {
        return Err(Stop::Fail);
    }
    let sizes = c.uint(s, 2)?;
    let (offset_size, length_size) = (sizes >> 12, (sizes >> 8) & 15);
    let (base_size, index_size) = ((sizes >> 4) & 15, if version > 0 { sizes & 15 } else { 0 });
    if [offset_size, length_size, base_size, index_size]
        .iter()
        .any(|n| !matches!(n, 0 | 4 | 8))
    {
        return Err(Stop::Fail);
    }
    let count = c.uint(s, if version < 2 { 2 } else { 4 })?;
    let mut runs = Runs::default();
    for _ in 0..count {
        s.step()?;
        let id = c.uint(s, if version < 2 { 2 } else { 4 })?;
        let method = if version > 0 { c.uint(s, 2)? & 15 } else { 0 };
        let data_ref = c.uint(s, 2)?;
        let base = c.uint(s, base_size)?;
        let extents = c.uint(s, 2)?;
        let is_meta = meta.contains(&id);
        for _ in 0..extents {
            s.step()?;
            c.uint(s, index_size)?;
            let offset = c.uint(s, offset_size)?;
            let length = c.uint(s, length_size)?;
            // Offsets in this file (not in idat, not another item's).
            if method != 0 || data_ref != 0 {
                continue;
            }
            let Some(at) = base.checked_add(offset) else {
                continue;
            };
            if is_meta {
                if at.checked_add(length).is_some_and(|e| e <= s.len) {
                    s.cut(at)?;
                    s.cut(at + length)?;
                }
            } else {
                runs.add(at, length, s.len)?;
            }
        }
    }
    runs.finish();
    for &(a, b) in &runs.done {
        s.cut(a)?;
        s.cut(b)?;
    }
    Ok(())
}

/// RIFF (`le`; RF64/BW64 when `rf64`) or IFF (FORM, big-endian) chunks.
fn riff(s: &mut Src, le: bool, rf64: bool) -> Walk {
    let mut pos = 12u64;
    let mut data64 = None;
    while s.left(pos) >= 8 {
        s.step()?;
        let h = s.bytes::<8>(pos)?;
        let id = &h[..4];
        let mut size = uint(&h[4..8], le);
        if rf64 && id == b"ds64" && size >= 16 {
            data64 = Some(uint(&s.bytes::<8>(pos + 16)?, true));
        }
        if rf64 && id == b"data" && size == 0xFFFF_FFFF {
            size = data64.unwrap_or(s.len - pos - 8);
        }
        let Some(end) = (pos + 8)
            .checked_add(size)
            .and_then(|e| e.checked_add(size & 1))
            .filter(|&e| e <= s.len)
        else {
            // Truncated, or a size never filled in (a recording cut short).
            return s.cut(pos);
        };
        s.cut(pos)?;
        s.cut(end)?;
        pos = end;
    }
    Ok(())
}

/// FLAC metadata blocks from the `fLaC` at `start`.
fn flac(s: &mut Src, start: u64) -> Walk {
    let mut pos = add(start, 4)?;
    loop {
        s.step()?;
        let h = s.bytes::<4>(pos)?;
        if h[0] & 0x7F == 127 {
            return Err(Stop::Fail);
        }
        let end = add(pos, 4 + uint(&h[1..4], false))?;
        if end > s.len {
            return Err(Stop::Fail);
        }
        s.cut(end)?;
        if h[0] & 0x80 != 0 {
            return Ok(());
        }
        pos = end;
    }
}

/// An ID3v2 tag, then FLAC, or MPEG audio with an ID3v1 tag at the end.
fn id3(s: &mut Src) -> Walk {
    let h = s.bytes::<10>(0)?;
    if h[3] > 4 || h[6..10].iter().any(|b| b & 0x80 != 0) {
        return Err(Stop::Fail);
    }
    let size = h[6..10].iter().fold(0u64, |v, &b| (v << 7) | u64::from(b));
    let end = 10 + size + if h[5] & 0x10 != 0 { 10 } else { 0 };
    if end > s.len {
        return Err(Stop::Fail);
    }
    s.cut(end)?;
    if s.left(end) >= 4 && &s.bytes::<4>(end)? == b"fLaC" {
        return flac(s, end);
    }
    if s.left(end) >= 128 + 4 && &s.bytes::<3>(s.len - 128)? == b"TAG" {
        s.cut(s.len - 128)?;
    }
    Ok(())
}

fn psd(s: &mut Src) -> Walk {
    let h = s.bytes::<30>(0)?;
    let big = match be16(&h[4..6]) {
        1 => false,
        2 => true,
        _ => return Err(Stop::Fail),
    };
    let word = if big { 8 } else { 4 };
    let len = s.len;
    let within = |at: u64| if at <= len { Ok(at) } else { Err(Stop::Fail) };
    // Header and colour mode data, then the image resources.
    let resources = within(add(30, be32(&h[26..30]))?)?;
    s.cut(resources)?;
    let n = be32(&s.bytes::<4>(resources)?);
    let layers = within(add(resources + 4, n)?)?;
    lenient(psd_resources(s, resources + 4, layers))?;
    s.cut(layers)?;
    // The layer and mask information section.
    let mut w = [0u8; 8];
    s.read(layers, &mut w[..word])?;
    let body = layers + word as u64;
    let merged = within(add(body, uint(&w[..word], false))?)?;
    s.cut(merged)?;
    if merged - body < word as u64 {
        return Ok(());
    }
    s.read(body, &mut w[..word])?;
    let info = body + word as u64;
    let info_end = add(info, uint(&w[..word], false))?;
    if info_end > merged {
        return Err(Stop::Fail);
    }
    if info_end > info {
        lenient(psd_layer_records(s, info, info_end, big))?;
        s.cut(info_end)?;
    }
    // Global layer mask info, then additional layer information blocks.
    if merged - info_end < 4 {
        return Ok(());
    }
    let blocks = add(info_end + 4, be32(&s.bytes::<4>(info_end)?))?;
    if blocks > merged {
        return Ok(());
    }
    s.cut(blocks)?;
    lenient(psd_blocks(s, blocks, merged, big))
}

/// Image resources in `[pos, end)`: cuts around the large ones and those
/// holding metadata (IPTC, thumbnails, ICC, EXIF, XMP).
fn psd_resources(s: &mut Src, mut pos: u64, end: u64) -> Walk {
    while end.saturating_sub(pos) >= 12 {
        s.step()?;
        let h = s.bytes::<8>(pos)?;
        if !matches!(&h[..4], b"8BIM" | b"MeSa" | b"AgHg" | b"PHUT" | b"DCSR") {
            return Err(Stop::Fail);
        }
        let id = be16(&h[4..6]);
        let name = u64::from(h[6]) + 1;
        let size_at = pos + 6 + name + (name & 1);
        if end.saturating_sub(size_at) < 4 {
            return Err(Stop::Fail);
        }
        let size = be32(&s.bytes::<4>(size_at)?);
        let next = add(size_at + 4, size + (size & 1))?;
        if next > end {
            return Err(Stop::Fail);
        }
        if size >= OWN_CHUNK
            || matches!(
                id,
                0x0404 | 0x0409 | 0x040C | 0x040F | 0x0422 | 0x0423 | 0x0424 | 0x0425
            )
        {
            s.cut(pos)?;
            s.cut(next)?;
        }
        pos = next;
    }
    Ok(())
}

/// A layer info structure (layer count, then the records, then the
/// channel image data) in `[pos, end)`: cuts at the end of the records.
fn psd_layer_records(s: &mut Src, pos: u64, end: u64, big: bool) -> Walk {
    if end - pos < 2 {
        return Ok(());
    }
    let count = i16::from_be_bytes(s.bytes::<2>(pos)?).unsigned_abs();
    let channel = if big { 10 } else { 6 };
    let mut at = pos + 2;
    for _ in 0..count {
        s.step()?;
        let r = s.bytes::<18>(at)?;
        at = add(at, 18 + be16(&r[16..18]) * channel)?;
        let b = s.bytes::<16>(at)?;
        if &b[..4] != b"8BIM" {
            return Err(Stop::Fail);
        }
        at = add(at, 16 + be32(&b[12..16]))?;
        if at > end {
            return Err(Stop::Fail);
        }
    }
    s.cut(at)
}

/// Additional layer information blocks in `[pos, end)`.
fn psd_blocks(s: &mut Src, mut pos: u64, end: u64, big: bool) -> Walk {
    while end.saturating_sub(pos) >= 12 {
        s.step()?;
        let h = s.bytes::<12>(pos)?;
        if !matches!(&h[..4], b"8BIM" | b"8B64") {
            return Err(Stop::Fail);
        }
        let key = &h[4..8];
        // In a PSB, these blocks have 8-byte lengths.
        let long = big
            && matches!(
                key,
                b"LMsk"
                    | b"Lr16"
                    | b"Lr32"
                    | b"Layr"
                    | b"Mt16"
                    | b"Mt32"
                    | b"Mtrn"
                    | b"Alph"
                    | b"FMsk"
                    | b"lnk2"
                    | b"FEid"
                    | b"FXid"
                    | b"PxSD"
            );
        let (size, body) = if long {
            if end - pos < 16 {
                return Err(Stop::Fail);
            }
            (be64(&s.bytes::<8>(pos + 8)?), pos + 16)
        } else {
            (be32(&h[8..12]), pos + 12)
        };
        let Some(next) = body.checked_add(size).filter(|&e| e <= end) else {
            return Err(Stop::Fail);
        };
        if matches!(key, b"Lr16" | b"Lr32" | b"Layr") && size >= 4 {
            // 16- and 32-bit documents keep their layers here: a layer
            // info structure without its length prefix.
            lenient(psd_layer_records(s, body, next, big))?;
        }
        s.cut(next)?;
        pos = next + (size & 1).min(end - next);
    }
    Ok(())
}

/// The length of a baseline or progressive JPEG's header: the bytes before
/// its first start-of-scan (SOS, `FF DA`) marker, which holds the EXIF,
/// XMP, ICC and other APPn segments, the quantization and Huffman tables
/// and the frame header. `head` is the start of the file (at least
/// [`JPEG_HEADER_PROBE`] bytes when the file is that long). `None` when
/// `head` is not a JPEG or the marker walk does not reach an SOS within it.
pub fn jpeg_header_len(head: &[u8]) -> Option<usize> {
    if head.len() < 4 || head[0] != 0xFF || head[1] != 0xD8 {
        return None;
    }
    let mut pos = 2usize;
    loop {
        // A marker: 0xFF, optional 0xFF fill bytes, then the marker code.
        if *head.get(pos)? != 0xFF {
            return None;
        }
        while *head.get(pos + 1)? == 0xFF {
            pos += 1;
        }
        let code = *head.get(pos + 1)?;
        match code {
            0xDA => return Some(pos),
            // Markers without a length: TEM, RSTn (not expected before SOS,
            // but harmless), and a stray 0x00 is not a marker at all.
            0x01 | 0xD0..=0xD7 => pos += 2,
            0x00 | 0xD8 | 0xD9 => return None,
            _ => {
                let hi = *head.get(pos + 2)? as usize;
                let lo = *head.get(pos + 3)? as usize;
                let len = (hi << 8) | lo;
                if len < 2 {
                    return None;
                }
                pos = pos.checked_add(2 + len)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment(code: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, code];
        v.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn header_ends_at_the_first_start_of_scan() {
        let mut f = vec![0xFF, 0xD8];
        f.extend(segment(0xE1, b"Exif\0\0 made up exif"));
        f.extend(segment(0xDB, &[1; 65]));
        f.extend([0xFF, 0xFF]); // fill byte before the next marker
        f.extend(segment(0xC0, &[8; 15]));
        let sos = f.len();
        f.extend(segment(0xDA, &[3; 10]));
        f.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD9]);
        assert_eq!(jpeg_header_len(&f), Some(sos));
        // Truncated before the SOS, or not a JPEG: no answer.
        assert_eq!(jpeg_header_len(&f[..sos - 3]), None);
        assert_eq!(jpeg_header_len(b"\x89PNG\r\n\x1a\n...."), None);
        // A segment length pointing past the probe: no answer.
        let mut g = vec![0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF];
        g.extend([0; 10]);
        assert_eq!(jpeg_header_len(&g), None);
    }

    proptest! {
        #[test]
        fn never_panics_and_answers_within_the_input(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut jpeg = vec![0xFF, 0xD8];
            jpeg.extend_from_slice(&b);
            for input in [&b[..], &jpeg[..]] {
                if let Some(n) = jpeg_header_len(input) {
                    prop_assert!(n + 1 < input.len());
                    prop_assert_eq!(&input[n..n + 2], &[0xFF, 0xDA]);
                }
            }
        }
    }

    /// Cuts of `file` given its first `head` bytes, checking every read:
    /// within the file, beyond the head, small (headers, not payload).
    fn cuts_with_head(file: &[u8], head: usize) -> (Vec<u64>, usize) {
        let mut reads = 0usize;
        let head = &file[..head.min(file.len())];
        let h = head.len() as u64;
        let mut read_at = |at: u64, buf: &mut [u8]| -> io::Result<()> {
            reads += 1;
            let end = at + buf.len() as u64;
            assert!(
                end <= file.len() as u64,
                "read {at}+{} past {}",
                buf.len(),
                file.len()
            );
            assert!(end > h, "read {at}+{} within the head", buf.len());
            assert!(buf.len() <= 1024, "a read of {} bytes", buf.len());
            buf.copy_from_slice(&file[at as usize..end as usize]);
            Ok(())
        };
        let cuts = cut_points(head, file.len() as u64, &mut read_at);
        assert!(cuts.len() <= MAX_CUT_POINTS);
        assert!(cuts.windows(2).all(|w| w[0] < w[1]), "{cuts:?}");
        assert!(
            cuts.iter().all(|&c| c > 0 && c < file.len() as u64),
            "{cuts:?}"
        );
        assert!(reads <= MAX_STEPS as usize + 1);
        (cuts, reads)
    }

    /// Cuts of `file`, the same whether it comes whole as the head or
    /// through reads.
    fn cuts(file: &[u8]) -> Vec<u64> {
        let (whole, reads) = cuts_with_head(file, file.len());
        assert_eq!(reads, 0);
        let (none, _) = cuts_with_head(file, 0);
        assert_eq!(whole, none);
        let (some, _) = cuts_with_head(file, 40);
        assert_eq!(whole, some);
        whole
    }

    fn be(n: u64, width: usize) -> Vec<u8> {
        n.to_be_bytes()[8 - width..].to_vec()
    }

    fn le(n: u64, width: usize) -> Vec<u8> {
        n.to_le_bytes()[..width].to_vec()
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Offsets of the starts of `parts` (and the end) when concatenated.
    fn offsets(parts: &[&[u8]]) -> Vec<u64> {
        let mut at = 0;
        let mut v = vec![0];
        for p in parts {
            at += p.len() as u64;
            v.push(at);
        }
        v
    }

    fn sample_jpeg() -> (Vec<u8>, Vec<u64>) {
        let app0 = segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        let app1 = segment(0xE1, &[b"Exif\0\0".as_slice(), &[7; 3000]].concat());
        let app13 = segment(0xED, b"Photoshop 3.0\0 small");
        let dqt = segment(0xDB, &[1; 65]);
        let sof = segment(0xC0, &[8; 15]);
        let sos = segment(0xDA, &[3; 10]);
        let data = [0x55u8; 5000];
        let parts: [&[u8]; 8] = [&[0xFF, 0xD8], &app0, &app1, &app13, &dqt, &sof, &sos, &data];
        let o = offsets(&parts);
        (cat(&parts), vec![o[2], o[3], o[4], o[6]])
    }

    fn png_chunk(ty: &[u8; 4], data: &[u8]) -> Vec<u8> {
        cat(&[&be(data.len() as u64, 4), ty, data, &[0; 4]])
    }

    fn sample_png() -> (Vec<u8>, Vec<u64>) {
        let parts: Vec<Vec<u8>> = vec![
            b"\x89PNG\r\n\x1a\n".to_vec(),
            png_chunk(b"IHDR", &[0; 13]),
            png_chunk(b"gAMA", &[0; 4]),
            png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x/>"),
            png_chunk(b"pHYs", &[0; 9]),
            png_chunk(b"IDAT", &[9; 3000]),
            png_chunk(b"IDAT", &[9; 3000]),
            png_chunk(b"tEXt", b"Comment\0after"),
            png_chunk(b"IEND", &[]),
        ];
        let p: Vec<&[u8]> = parts.iter().map(|v| &v[..]).collect();
        let o = offsets(&p);
        (cat(&p), vec![o[3], o[4], o[5], o[7], o[8]])
    }

    /// A classic (or Big) TIFF: two strips first, then IFD0 with its
    /// values, then an EXIF IFD.
    fn sample_tiff(big: bool, little: bool) -> (Vec<u8>, Vec<u64>) {
        let n = |v: u64, w: usize| if little { le(v, w) } else { be(v, w) };
        let (hdr_len, count_w, entry_w, word) = if big { (16, 8, 20, 8) } else { (8, 2, 12, 4) };
        let strips = [[0x11u8; 2000], [0x22u8; 2000]];
        let ifd0 = hdr_len + 4000;
        // Entries: StripOffsets (LONG or LONG8 x2, out of line),
        // StripByteCounts (the same), Artist (ASCII x20, out of line),
        // ExifIFD.
        let (sw, sty) = if big { (8, 16) } else { (4, 4) };
        let entries = 4u64;
        let table_len = count_w + entries * entry_w + word;
        let values = ifd0 + table_len;
        let exif = values + 4 * sw + 20;
        let entry = |tag: u64, ty: u64, count: u64, value: Vec<u8>| {
            let mut e = cat(&[&n(tag, 2), &n(ty, 2), &n(count, (word) as usize)]);
            let mut v = value;
            v.resize(word as usize, 0);
            e.extend(v);
            e
        };
        let mut f = if big {
            cat(&[
                if little { b"II" } else { b"MM" },
                &n(43, 2),
                &n(8, 2),
                &n(0, 2),
                &n(ifd0, 8),
            ])
        } else {
            cat(&[if little { b"II" } else { b"MM" }, &n(42, 2), &n(ifd0, 4)])
        };
        f.extend(strips.concat());
        f.extend(n(entries, count_w as usize));
        f.extend(entry(0x111, sty, 2, n(values, word as usize)));
        f.extend(entry(0x117, sty, 2, n(values + 2 * sw, word as usize)));
        f.extend(entry(0x13B, 2, 20, n(values + 4 * sw, word as usize)));
        f.extend(entry(
            0x8769,
            if big { 16 } else { 4 },
            1,
            n(exif, word as usize),
        ));
        f.extend(n(0, word as usize));
        assert_eq!(f.len() as u64, values);
        for v in [hdr_len, hdr_len + 2000, 2000, 2000] {
            f.extend(n(v, sw as usize));
        }
        f.extend(b"An Artist Name\0\0\0\0\0\0");
        assert_eq!(f.len() as u64, exif);
        f.extend(n(1, count_w as usize));
        f.extend(entry(0x9000, 7, 4, b"0232".to_vec()));
        f.extend(n(0, word as usize));
        let end = f.len() as u64;
        f.extend([0u8; 100]); // something else after the IFDs
        (f, vec![hdr_len, ifd0, exif, end])
    }

    fn mp4_box(ty: &[u8; 4], body: &[u8]) -> Vec<u8> {
        cat(&[&be(body.len() as u64 + 8, 4), ty, body])
    }

    fn sample_mp4() -> (Vec<u8>, Vec<u64>) {
        let moov = mp4_box(
            b"moov",
            &cat(&[
                &mp4_box(b"mvhd", &[0; 100]),
                &mp4_box(b"trak", &[0; 300]),
                &mp4_box(b"udta", &[0; 50]),
            ]),
        );
        let mdat = cat(&[&be(1, 4), b"mdat", &be(16 + 4000, 8), &[0x77; 4000]]);
        let parts: [&[u8]; 5] = [
            &mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2"),
            &mp4_box(b"free", &[]),
            &mdat,
            &moov,
            &mp4_box(b"free", &[1; 20]),
        ];
        let o = offsets(&parts);
        let m = o[3];
        (
            cat(&parts),
            vec![o[1], o[2], o[3], m + 8 + 108, m + 8 + 108 + 308, o[4]],
        )
    }

    /// A HEIC: ftyp, meta (hdlr, iinf, iloc), mdat with the EXIF item's
    /// data, then the image item's.
    fn sample_heif() -> (Vec<u8>, Vec<u64>) {
        let full = |ty: &[u8; 4], version: u8, body: &[u8]| {
            mp4_box(ty, &cat(&[&[version, 0, 0, 0], body]))
        };
        let infe = |id: u16, ty: &[u8; 4]| {
            full(b"infe", 2, &cat(&[&id.to_be_bytes(), &[0, 0], ty, b"\0"]))
        };
        let iinf = full(
            b"iinf",
            0,
            &cat(&[&2u16.to_be_bytes(), &infe(1, b"hvc1"), &infe(2, b"Exif")]),
        );
        let ftyp = mp4_box(b"ftyp", b"heic\0\0\0\0mif1heic");
        let hdlr = full(b"hdlr", 0, &[0; 25]);
        // iloc: version 1, offset and length 4 bytes, no base, no index.
        let iloc_len = 8 + 4 + 2 + 2 + 2 * (2 + 2 + 2 + 2 + 8);
        let meta_len = 8 + 4 + hdlr.len() + iinf.len() + iloc_len;
        let mdat_data = ftyp.len() + meta_len + 8;
        let (exif_at, exif_len, image_at, image_len) = (mdat_data, 300, mdat_data + 300, 5000);
        let item = |id: u16, at: usize, len: usize| {
            cat(&[
                &id.to_be_bytes(),
                &[0, 0],
                &[0, 0],
                &[0, 1],
                &be(at as u64, 4),
                &be(len as u64, 4),
            ])
        };
        let iloc = full(
            b"iloc",
            1,
            &cat(&[
                &[0x44, 0x00],
                &2u16.to_be_bytes(),
                &item(1, image_at, image_len),
                &item(2, exif_at, exif_len),
            ]),
        );
        assert_eq!(iloc.len(), iloc_len);
        let meta = full(b"meta", 0, &cat(&[&hdlr, &iinf, &iloc]));
        let mdat = mp4_box(b"mdat", &cat(&[&[0x45; 300][..], &[0x99; 5000]]));
        let parts: [&[u8]; 3] = [&ftyp, &meta, &mdat];
        let o = offsets(&parts);
        let m = o[1] as usize + 12;
        let want = [
            ftyp.len(),
            m + hdlr.len(),
            m + hdlr.len() + iinf.len(),
            o[2] as usize,
            exif_at,
            image_at,
        ];
        (cat(&parts), want.iter().map(|&x| x as u64).collect())
    }

    fn riff_chunk(id: &[u8; 4], body: &[u8], little: bool) -> Vec<u8> {
        let n = body.len() as u64;
        let mut v = cat(&[id, &if little { le(n, 4) } else { be(n, 4) }, body]);
        if n % 2 == 1 {
            v.push(0);
        }
        v
    }

    fn sample_wav() -> (Vec<u8>, Vec<u64>) {
        let parts: Vec<Vec<u8>> = vec![
            cat(&[b"RIFF", &le(0, 4), b"WAVE"]),
            riff_chunk(b"fmt ", &[0; 16], true),
            riff_chunk(b"LIST", b"INFOINAM\x05\0\0\0title\0", true),
            riff_chunk(b"data", &[0x33; 4001], true),
            riff_chunk(b"id3 ", &[0; 30], true),
        ];
        let p: Vec<&[u8]> = parts.iter().map(|v| &v[..]).collect();
        let o = offsets(&p);
        (cat(&p), vec![o[1], o[2], o[3], o[4]])
    }

    fn sample_aiff() -> (Vec<u8>, Vec<u64>) {
        let parts: Vec<Vec<u8>> = vec![
            cat(&[b"FORM", &be(0, 4), b"AIFF"]),
            riff_chunk(b"COMM", &[0; 18], false),
            riff_chunk(b"SSND", &[0x33; 4000], false),
            riff_chunk(b"ID3 ", &[0; 31], false),
        ];
        let p: Vec<&[u8]> = parts.iter().map(|v| &v[..]).collect();
        let o = offsets(&p);
        (cat(&p), vec![o[1], o[2], o[3]])
    }

    fn flac_block(ty: u8, last: bool, body: &[u8]) -> Vec<u8> {
        cat(&[
            &[ty | if last { 0x80 } else { 0 }],
            &be(body.len() as u64, 3),
            body,
        ])
    }

    fn sample_flac() -> (Vec<u8>, Vec<u64>) {
        let parts: Vec<Vec<u8>> = vec![
            b"fLaC".to_vec(),
            flac_block(0, false, &[0; 34]),
            flac_block(4, false, &[1; 80]),
            flac_block(6, false, &[2; 3000]),
            flac_block(1, true, &[0; 1000]),
            [0xFF, 0xF8, 0x69, 0x08].repeat(1000),
        ];
        let p: Vec<&[u8]> = parts.iter().map(|v| &v[..]).collect();
        let o = offsets(&p);
        (cat(&p), vec![o[2], o[3], o[4], o[5]])
    }

    fn sample_mp3() -> (Vec<u8>, Vec<u64>) {
        let tag = cat(&[b"ID3\x04\0\0", &[0, 0, 0x0F, 0x7F], &[0; 0x7FF]]);
        let audio = [0xFFu8, 0xFB, 0x90, 0x64].repeat(1000);
        let v1 = cat(&[b"TAG", &[0x20; 125]]);
        let parts: [&[u8]; 3] = [&tag, &audio, &v1];
        let o = offsets(&parts);
        (cat(&parts), vec![o[1], o[2]])
    }

    fn psd_resource(id: u16, body: &[u8]) -> Vec<u8> {
        let mut v = cat(&[
            b"8BIM",
            &id.to_be_bytes(),
            &[0, 0],
            &be(body.len() as u64, 4),
            body,
        ]);
        if body.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    fn psd_layer_record(name: &[u8], channels: u16, big: bool) -> Vec<u8> {
        let mut r = cat(&[&[0; 16], &channels.to_be_bytes()]);
        for c in 0..channels {
            r.extend(c.to_be_bytes());
            r.extend(be(1002, if big { 8 } else { 4 }));
        }
        let mut pascal = cat(&[&[name.len() as u8], name]);
        pascal.resize(pascal.len().div_ceil(4) * 4, 0);
        let extra = cat(&[&be(0, 4), &be(0, 4), &pascal]);
        r.extend(cat(&[
            b"8BIMnorm",
            &[255, 0, 0, 0],
            &be(extra.len() as u64, 4),
            &extra,
        ]));
        r
    }

    /// A two-layer PSD (or PSB): header, image resources (a small one and
    /// XMP), layer records, channel data, global mask, one block, merged.
    fn sample_psd(big: bool) -> (Vec<u8>, Vec<u64>) {
        let w = if big { 8 } else { 4 };
        let header = cat(&[
            b"8BPS",
            &[0, if big { 2 } else { 1 }],
            &[0; 6],
            &[0, 3],
            &be(10, 4),
            &be(100, 4),
            &[0, 8, 0, 3],
            &be(0, 4),
        ]);
        let resources = cat(&[
            &psd_resource(0x03ED, &[0; 16]),
            &psd_resource(0x0424, &[b'x'; 1501]),
        ]);
        let records = cat(&[
            &2u16.to_be_bytes()[..],
            &psd_layer_record(b"Background", 3, big),
            &psd_layer_record(b"L2", 4, big),
        ]);
        let channel_data = vec![0x44u8; 7 * 1002];
        let info_len = (records.len() + channel_data.len()) as u64;
        let block = cat(&[b"8BIMluni", &be(8, 4), &[0; 8]]);
        let lm_len = w as u64 + info_len + 4 + 4 + block.len() as u64;
        let parts: Vec<Vec<u8>> = vec![
            header,
            be(resources.len() as u64, 4),
            resources,
            be(lm_len, w),
            be(info_len, w),
            records,
            channel_data,
            cat(&[&be(4, 4), &[0; 4]]),
            block,
            vec![0x55; 3000],
        ];
        let p: Vec<&[u8]> = parts.iter().map(|v| &v[..]).collect();
        let o = offsets(&p);
        // After the header; the XMP resource (after a 12+16-byte one);
        // the end of resources; records end; info end; global mask end;
        // the block's end (merged data).
        (cat(&p), vec![o[1], o[2] + 28, o[3], o[6], o[7], o[8], o[9]])
    }

    fn samples() -> Vec<(&'static str, Vec<u8>, Vec<u64>)> {
        let mut v = vec![];
        for (name, (f, c)) in [
            ("jpeg", sample_jpeg()),
            ("png", sample_png()),
            ("tiff-le", sample_tiff(false, true)),
            ("tiff-be", sample_tiff(false, false)),
            ("bigtiff", sample_tiff(true, true)),
            ("mp4", sample_mp4()),
            ("heif", sample_heif()),
            ("wav", sample_wav()),
            ("aiff", sample_aiff()),
            ("flac", sample_flac()),
            ("mp3", sample_mp3()),
            ("psd", sample_psd(false)),
            ("psb", sample_psd(true)),
        ] {
            v.push((name, f, c));
        }
        v
    }

    #[test]
    fn each_format_is_cut_between_metadata_and_payload() {
        for (name, file, want) in samples() {
            assert_eq!(cuts(&file), want, "{name}");
        }
    }

    #[test]
    fn unknown_or_broken_files_have_no_cuts() {
        assert!(cuts(b"").is_empty());
        assert!(cuts(b"just some text, not media at all").is_empty());
        // A JPEG whose marker walk breaks before the scan.
        let (mut jpeg, _) = sample_jpeg();
        jpeg[20] = 0x12; // the APP1 marker
        assert!(cuts(&jpeg).is_empty());
        // A read error: give up.
        let (flac, _) = sample_flac();
        let got = cut_points(&flac[..10], flac.len() as u64, &mut |_, _| {
            Err(io::Error::other("gone"))
        });
        assert!(got.is_empty());
    }

    #[test]
    fn faststart_and_size_zero_boxes() {
        // moov first, mdat last with size 0 (to the end of the file).
        let moov = mp4_box(b"moov", &mp4_box(b"mvhd", &[0; 100]));
        let mdat = cat(&[&be(0, 4), b"mdat", &[0x77; 4000]]);
        let parts: [&[u8]; 3] = [&mp4_box(b"ftyp", b"qt  \0\0\0\0qt  "), &moov, &mdat];
        let o = offsets(&parts);
        assert_eq!(cuts(&cat(&parts)), vec![o[1], o[2]]);
    }

    /// `file` with a length field at `at` overwritten by `value`.
    fn forged(file: &[u8], at: usize, value: &[u8]) -> Vec<u8> {
        let mut f = file.to_vec();
        f[at..at + value.len()].copy_from_slice(value);
        f
    }

    #[test]
    fn forged_huge_sizes_neither_loop_nor_allocate() {
        let huge = 1u64 << 63;
        let (mp4, _) = sample_mp4();
        // The mdat's 64-bit size, then the ftyp's 32-bit one as "64-bit".
        cuts(&forged(&mp4, 48 + 8, &be(huge, 8)));
        cuts(&forged(&mp4, 48 + 8, &be(u64::MAX, 8)));
        cuts(&forged(&mp4, 0, &be(1, 4)));
        let (png, _) = sample_png();
        cuts(&forged(&png, 8, &be(0xFFFF_FFFF, 4)));
        let (wav, _) = sample_wav();
        cuts(&forged(&wav, 12 + 4, &le(0xFFFF_FFFF, 4)));
        let rf64 = forged(&wav, 0, b"RF64");
        cuts(&forged(&rf64, 12 + 24 + 28 + 4, &le(0xFFFF_FFFF, 4)));
        let (flac, _) = sample_flac();
        cuts(&forged(&flac, 5, &[0xFF; 3]));
        let (tiff, _) = sample_tiff(true, true);
        cuts(&forged(&tiff, 8, &le(huge, 8)));
        cuts(&forged(&tiff, 4016, &le(huge, 8)));
        // A strip count of 2^63 in a BigTIFF entry.
        cuts(&forged(&tiff, 4016 + 8 + 4, &le(huge, 8)));
        let (psb, _) = sample_psd(true);
        for at in [26, 30, 34 + 12 + 16 + 12 + 1502 - 4] {
            cuts(&forged(&psb, at, &be(huge, 8)[4..]));
        }
        let (psd, _) = sample_psd(false);
        let lm = 30 + 4 + 28 + 1514;
        cuts(&forged(&psd, lm, &be(u32::MAX.into(), 4)));
        cuts(&forged(&psb, lm, &be(huge, 8)));
        cuts(&forged(&psb, lm + 8, &be(huge, 8)));
    }

    #[test]
    fn a_file_of_many_tiny_structures_is_bounded() {
        // 100 000 empty boxes: at most MAX_CUT_POINTS cuts.
        let mut f = mp4_box(b"ftyp", b"isom\0\0\0\0");
        for _ in 0..100_000 {
            f.extend(mp4_box(b"free", &[]));
        }
        let (c, _) = cuts_with_head(&f, 0);
        assert_eq!(c.len(), MAX_CUT_POINTS);
        // A PNG alternating empty IDAT and tEXt chunks.
        let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
        for _ in 0..50_000 {
            p.extend(png_chunk(b"IDAT", &[]));
            p.extend(png_chunk(b"tEXt", &[]));
        }
        let (c, _) = cuts_with_head(&p, 0);
        assert_eq!(c.len(), MAX_CUT_POINTS);
        // A JPEG of 70 000 fill bytes: the walk stops.
        let mut j = vec![0xFF, 0xD8];
        j.extend([0xFF; 200_000]);
        let (c, reads) = cuts_with_head(&j, 0);
        assert!(c.is_empty() && reads <= MAX_STEPS as usize + 1);
    }

    const MAGICS: [&[u8]; 16] = [
        b"\xFF\xD8\xFF\xE1",
        b"\x89PNG\r\n\x1a\n",
        b"II*\0",
        b"MM\0*",
        b"II+\0\x08\0\0\0",
        b"MM\0+\0\x08\0\0",
        b"\0\0\0\x18ftyp",
        b"\0\0\0\x01ftyp",
        b"\0\0\0\0moov",
        b"RIFF\0\0\0\0WAVE",
        b"RF64\0\0\0\0WAVE",
        b"FORM\0\0\0\0AIFF",
        b"fLaC",
        b"ID3\x04\0\0",
        b"8BPS\0\x01",
        b"8BPS\0\x02",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]
        /// Random bytes after each format's magic: no panic, cuts within
        /// the file, reads within the file and small.
        #[test]
        fn random_files_never_panic(
            magic in 0usize..MAGICS.len(), rest in proptest::collection::vec(any::<u8>(), 0..3000), head in 0usize..4000,
        ) {
            let f = cat(&[MAGICS[magic], &rest]);
            let (a, _) = cuts_with_head(&f, head);
            let (b, _) = cuts_with_head(&f, f.len());
            prop_assert_eq!(a, b);
        }

        /// Valid files with random bytes changed and a random tail cut off.
        #[test]
        fn mutated_files_never_panic(
            sample in 0usize..13, edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            forge in proptest::option::of((any::<prop::sample::Index>(), any::<u64>(), 1usize..9)),
            near in 0usize..3, keep in any::<prop::sample::Index>(), head in 0usize..10_000,
        ) {
            let (_, mut f, _) = samples().swap_remove(sample);
            // Mostly in the headers (where the lengths are), or anywhere.
            let span = [100, 700, f.len()][near].min(f.len());
            for (at, b) in edits {
                let i = at.index(span);
                f[i] = b;
            }
            // A forged length: `width` bytes of a random (often huge) value.
            if let Some((at, value, width)) = forge {
                let i = at.index(span.saturating_sub(width).max(1));
                let end = (i + width).min(f.len());
                let v = value.to_be_bytes();
                f[i..end].copy_from_slice(&v[8 - (end - i)..]);
            }
            let keep = keep.index(f.len() + 1);
            f.truncate(keep);
            let (a, _) = cuts_with_head(&f, head);
            let (b, _) = cuts_with_head(&f, f.len());
            prop_assert_eq!(a, b);
        }
    }
}
