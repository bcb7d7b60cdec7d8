//! ISO base media files: MP4, MOV, M4A, 3GP (a `moov` box with one `trak`
//! per stream) and HEIF/HEIC/AVIF images (a top-level `meta` box with
//! items and properties). The top level is walked box header by box
//! header, seeking past `mdat` wherever it is, so `moov` is found at the
//! front or the end of the file for the cost of a few reads.

use std::io::{Read, Seek};

use crate::io::{self, err, Ctx, PErr, PResult, Src};
use crate::tiff::{icc_description, parse_tiff};
use crate::{AudioTrack, Kind, Metadata, MAX_AUDIO_TRACKS};

/// Seconds from 1904-01-01 (the QuickTime epoch) to 1970-01-01.
const EPOCH_1904: i64 = 2_082_844_800;
const MAX_TRACKS: usize = 128;
/// Most bytes of a sample entry (codec description) kept.
const MAX_ENTRY: usize = 1024;
/// Most bytes of an `ipma`/`iloc` box read.
const MAX_TABLE: usize = 256 << 10;

#[derive(Clone, Copy, Debug)]
struct BoxH {
    typ: [u8; 4],
    data: u64,
    end: u64,
}

impl BoxH {
    fn payload(&self) -> u64 {
        self.end - self.data
    }
}

fn read_box<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    pos: u64,
    parent_end: u64,
) -> PResult<BoxH> {
    let h = src.array::<8>(pos).ctx("box header")?;
    let typ = [h[4], h[5], h[6], h[7]];
    let name = io::fourcc(&typ);
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let (size, hdr) = if size32 == 1 {
        (src.be64(pos + 8).ctx(&format!("box '{name}' header"))?, 16)
    } else {
        (u64::from(size32), 8)
    };
    let mut end = if size32 == 0 {
        parent_end
    } else {
        if size < hdr {
            return err(format!(
                "box '{name}' at byte {pos} has invalid size {size}"
            ));
        }
        pos.saturating_add(size)
    };
    if end > parent_end {
        src.soft(PErr(format!(
            "box '{name}' at byte {pos} extends past the end of {}",
            if parent_end == src.len {
                "the file (truncated?)"
            } else {
                "its parent"
            }
        )));
        end = parent_end;
    }
    let mut data = pos + hdr;
    if &typ == b"uuid" {
        data += 16;
    }
    if data > end {
        return err(format!("box '{name}' at byte {pos} is truncated"));
    }
    Ok(BoxH { typ, data, end })
}

/// Visits the child boxes of `start..end`.
fn children<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    start: u64,
    end: u64,
    depth: usize,
    mut f: impl FnMut(&mut Src<'_, R>, BoxH, usize) -> PResult<()>,
) -> PResult<()> {
    src.depth(depth)?;
    let mut pos = start;
    while pos.saturating_add(8) <= end {
        src.item()?;
        let b = read_box(src, pos, end)?;
        f(src, b, depth + 1)?;
        if b.end <= pos {
            break;
        }
        pos = b.end;
    }
    Ok(())
}

/// The first `max` bytes of a box's payload.
fn payload<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    b: &BoxH,
    max: usize,
) -> PResult<Vec<u8>> {
    src.read_vec(b.data, b.payload().min(max as u64) as usize)
        .ctx(&format!("box '{}'", io::fourcc(&b.typ)))
}

#[derive(Default, Clone)]
struct Track {
    handler: Option<[u8; 4]>,
    tkhd_w: Option<u32>,
    tkhd_h: Option<u32>,
    timescale: u32,
    duration: u64,
    entry: Option<Vec<u8>>,
    samples: Option<u32>,
}

#[derive(Clone, Copy)]
enum Prop {
    Ispe(u32, u32),
    Pixi(u8),
    Icc(u64, u64),
    Nclx(&'static str),
    Other,
}

#[derive(Default)]
struct Heif {
    primary: Option<u32>,
    items: Vec<(u32, [u8; 4])>,
    props: Vec<Prop>,
    assoc: Vec<(u32, u16)>,
    iloc: Option<BoxH>,
}

#[derive(Default)]
struct St {
    major: Option<[u8; 4]>,
    compat: Vec<[u8; 4]>,
    moov: bool,
    meta: bool,
    timescale: u32,
    duration: u64,
    created: u64,
    fragment_duration: u64,
    tracks: Vec<Track>,
    title: Option<String>,
    artist: Option<String>,
    album: Option<String>,
    heif: Heif,
}

impl St {
    fn has_brand(&self, set: &[&[u8; 4]]) -> bool {
        self.major
            .iter()
            .chain(self.compat.iter())
            .any(|b| set.contains(&b))
    }
    fn image_brand(&self) -> Option<(&'static str, &'static str)> {
        const HEIC: &[&[u8; 4]] = &[b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"];
        const AVIF: &[&[u8; 4]] = &[b"avif", b"avis"];
        let major = self.major?;
        let image = |b: &[u8; 4]| {
            if HEIC.contains(&b) {
                Some(("HEIC", "image/heic"))
            } else if AVIF.contains(&b) {
                Some(("AVIF", "image/avif"))
            } else if b == b"crx " {
                Some(("CR3", "image/x-canon-cr3"))
            } else {
                None
            }
        };
        if let Some(f) = image(&major) {
            return Some(f);
        }
        if &major == b"mif1" || &major == b"msf1" {
            if self.has_brand(AVIF) {
                return Some(("AVIF", "image/avif"));
            }
            if self.has_brand(HEIC) {
                return Some(("HEIC", "image/heic"));
            }
            return Some(("HEIF", "image/heif"));
        }
        None
    }
}

pub(crate) fn parse<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    m: &mut Metadata,
    _ext: Option<&str>,
) -> PResult<()> {
    let mut st = St::default();
    let res = walk_top(src, &mut st, m);
    finish(src, &st, m);
    res?;
    if !st.moov && !st.meta {
        return err("no 'moov' box (truncated?)");
    }
    Ok(())
}

fn walk_top<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    st: &mut St,
    m: &mut Metadata,
) -> PResult<()> {
    let end = src.len;
    children(src, 0, end, 0, |src, b, depth| {
        match &b.typ {
            b"ftyp" => {
                let d = payload(src, &b, 8 + 4 * 16)?;
                st.major = io::sub(&d, 0, 4).and_then(|s| s.try_into().ok());
                st.compat = d
                    .get(8..)
                    .unwrap_or_default()
                    .chunks_exact(4)
                    .filter_map(|c| c.try_into().ok())
                    .collect();
            }
            b"moov" => {
                st.moov = true;
                moov(src, st, b, depth)?;
            }
            b"meta" => {
                st.meta = true;
                heif_meta(src, st, m, b, depth)?;
            }
            _ => {}
        }
        // Stop once what the file type needs has been seen (a fragmented
        // MP4 has thousands of top-level boxes after its moov).
        let image = st.image_brand().is_some();
        if st.moov && (!image || st.meta) {
            return Err(PErr(String::new()));
        }
        Ok(())
    })
    .or_else(|e| if e.0.is_empty() { Ok(()) } else { Err(e) })
}

fn moov<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    st: &mut St,
    b: BoxH,
    depth: usize,
) -> PResult<()> {
    children(src, b.data, b.end, depth, |src, b, depth| {
        match &b.typ {
            b"mvhd" => {
                let d = payload(src, &b, 32)?;
                let (created, ts, dur) = if d.first() == Some(&1) {
                    (io::be64(&d, 4), io::be32(&d, 20), io::be64(&d, 24))
                } else {
                    (
                        io::be32(&d, 4).map(u64::from),
                        io::be32(&d, 12),
                        io::be32(&d, 16).map(u64::from),
                    )
                };
                st.created = created.unwrap_or(0);
                st.timescale = ts.unwrap_or(0);
                st.duration = dur.unwrap_or(0);
            }
            b"trak" => {
                let mut tr = Track::default();
                let r = trak(src, &mut tr, b.data, b.end, depth);
                if st.tracks.len() < MAX_TRACKS {
                    st.tracks.push(tr);
                }
                r?;
            }
            b"mvex" => children(src, b.data, b.end, depth, |src, b, _| {
                if &b.typ == b"mehd" {
                    let d = payload(src, &b, 12)?;
                    st.fragment_duration = if d.first() == Some(&1) {
                        io::be64(&d, 4)
                    } else {
                        io::be32(&d, 4).map(u64::from)
                    }
                    .unwrap_or(0);
                }
                Ok(())
            })?,
            b"udta" => udta(src, st, b, depth)?,
            b"meta" => meta_tags(src, st, b, depth)?,
            _ => {}
        }
        Ok(())
    })
}

fn trak<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    tr: &mut Track,
    start: u64,
    end: u64,
    depth: usize,
) -> PResult<()> {
    children(src, start, end, depth, |src, b, depth| {
        match &b.typ {
            b"mdia" | b"minf" | b"stbl" => trak(src, tr, b.data, b.end, depth)?,
            b"tkhd" => {
                let d = payload(src, &b, 96)?;
                let o = if d.first() == Some(&1) { 88 } else { 76 };
                tr.tkhd_w = io::be32(&d, o).map(|v| v >> 16);
                tr.tkhd_h = io::be32(&d, o + 4).map(|v| v >> 16);
            }
            b"mdhd" => {
                let d = payload(src, &b, 32)?;
                let (ts, dur) = if d.first() == Some(&1) {
                    (io::be32(&d, 20), io::be64(&d, 24))
                } else {
                    (io::be32(&d, 12), io::be32(&d, 16).map(u64::from))
                };
                tr.timescale = ts.unwrap_or(0);
                tr.duration = dur.unwrap_or(0);
            }
            // The media handler (mdia) comes first; a QuickTime data
            // handler in minf ("dhlr", "alis") must not replace it.
            b"hdlr" if tr.handler.is_none() => {
                let d = payload(src, &b, 12)?;
                tr.handler = io::sub(&d, 8, 4).and_then(|s| s.try_into().ok());
            }
            b"stsd" => {
                // version/flags, entry count, then the first sample entry.
                let first = b.data.saturating_add(8);
                if first.saturating_add(8) <= b.end {
                    let size = u64::from(src.be32(first).ctx("sample entry")?);
                    let n = size.min(b.end - first).min(MAX_ENTRY as u64) as usize;
                    tr.entry = Some(src.read_vec(first, n.max(8)).ctx("sample entry")?);
                }
            }
            b"stsz" => {
                let d = payload(src, &b, 12)?;
                tr.samples = io::be32(&d, 8);
            }
            b"stz2" => {
                let d = payload(src, &b, 12)?;
                tr.samples = io::be32(&d, 8);
            }
            _ => {}
        }
        Ok(())
    })
}

/// iTunes-style tags: `meta` (a full box in MP4, a plain one in some MOV
/// files) holding `ilst`, whose items hold `data` boxes.
fn meta_tags<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    st: &mut St,
    b: BoxH,
    depth: usize,
) -> PResult<()> {
    let mut start = b.data;
    if b.payload() >= 4 && src.be32(b.data)? == 0 {
        start += 4;
    }
    children(src, start, b.end, depth, |src, b, depth| {
        if &b.typ != b"ilst" {
            return Ok(());
        }
        children(src, b.data, b.end, depth, |src, item, depth| {
            let slot = match &item.typ {
                b"\xa9nam" => &mut st.title,
                b"\xa9ART" | b"aART" => &mut st.artist,
                b"\xa9alb" => &mut st.album,
                _ => return Ok(()),
            };
            if slot.is_some() {
                return Ok(());
            }
            children(src, item.data, item.end, depth, |src, d, _| {
                if &d.typ == b"data" && slot.is_none() {
                    let v = payload(src, &d, 8 + 4 * io::MAX_TEXT)?;
                    *slot = match io::be32(&v, 0).map(|t| t & 0xFF_FFFF) {
                        Some(2) => io::utf16(v.get(8..).unwrap_or_default(), true),
                        _ => io::text(v.get(8..).unwrap_or_default()),
                    };
                }
                Ok(())
            })
        })
    })
}

/// QuickTime user data: `©nam` text atoms (16-bit length, language, text)
/// or an iTunes `meta`.
fn udta<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    st: &mut St,
    b: BoxH,
    depth: usize,
) -> PResult<()> {
    children(src, b.data, b.end, depth, |src, b, depth| {
        let slot = match &b.typ {
            b"meta" => return meta_tags(src, st, b, depth),
            b"\xa9nam" => &mut st.title,
            b"\xa9ART" => &mut st.artist,
            b"\xa9alb" => &mut st.album,
            _ => return Ok(()),
        };
        if slot.is_none() {
            let v = payload(src, &b, 4 + 4 * io::MAX_TEXT)?;
            if io::sub(&v, 4, 4) == Some(b"data") {
                *slot = io::text(v.get(16..).unwrap_or_default());
            } else {
                let n = io::be16(&v, 0).unwrap_or(0) as usize;
                *slot = io::text(
                    v.get(4..4 + n.min(v.len().saturating_sub(4)))
                        .unwrap_or_default(),
                );
            }
        }
        Ok(())
    })
}

// ---- HEIF ------------------------------------------------------------------

fn heif_meta<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    st: &mut St,
    m: &mut Metadata,
    b: BoxH,
    depth: usize,
) -> PResult<()> {
    let h = &mut st.heif;
    children(
        src,
        b.data.saturating_add(4).min(b.end),
        b.end,
        depth,
        |src, b, depth| {
            match &b.typ {
                b"pitm" => {
                    let d = payload(src, &b, 8)?;
                    h.primary = if d.first() == Some(&0) {
                        io::be16(&d, 4).map(u32::from)
                    } else {
                        io::be32(&d, 4)
                    };
                }
                b"iinf" => {
                    let d = payload(src, &b, 8)?;
                    let skip = if d.first() == Some(&0) { 6 } else { 8 };
                    children(
                        src,
                        b.data.saturating_add(skip).min(b.end),
                        b.end,
                        depth,
                        |src, e, _| {
                            if &e.typ == b"infe" {
                                let d = payload(src, &e, 16)?;
                                let (id, typ) = match d.first() {
                                    Some(2) => (io::be16(&d, 4).map(u32::from), io::sub(&d, 8, 4)),
                                    Some(3) => (io::be32(&d, 4), io::sub(&d, 10, 4)),
                                    _ => (None, None),
                                };
                                if let (Some(id), Some(typ)) =
                                    (id, typ.and_then(|t| t.try_into().ok()))
                                {
                                    if h.items.len() < 4096 {
                                        h.items.push((id, typ));
                                    }
                                }
                            }
                            Ok(())
                        },
                    )?;
                }
                b"iloc" => h.iloc = Some(b),
                b"iprp" => children(src, b.data, b.end, depth, |src, b, depth| match &b.typ {
                    b"ipco" => children(src, b.data, b.end, depth, |src, p, _| {
                        let prop = match &p.typ {
                            b"ispe" => {
                                let d = payload(src, &p, 12)?;
                                match (io::be32(&d, 4), io::be32(&d, 8)) {
                                    (Some(w), Some(h)) => Prop::Ispe(w, h),
                                    _ => Prop::Other,
                                }
                            }
                            b"pixi" => {
                                let d = payload(src, &p, 6)?;
                                d.get(5).map_or(Prop::Other, |&b| Prop::Pixi(b))
                            }
                            b"colr" => {
                                let d = payload(src, &p, 8)?;
                                match (io::sub(&d, 0, 4), io::be16(&d, 4), io::be16(&d, 6)) {
                                    (Some(b"prof") | Some(b"rICC"), _, _) => Prop::Icc(
                                        p.data.saturating_add(4),
                                        p.payload().saturating_sub(4),
                                    ),
                                    (Some(b"nclx"), Some(1), Some(13)) => Prop::Nclx("sRGB"),
                                    (Some(b"nclx"), Some(1), _) => Prop::Nclx("BT.709"),
                                    (Some(b"nclx"), Some(9), _) => Prop::Nclx("BT.2020"),
                                    (Some(b"nclx"), Some(12), _) => Prop::Nclx("Display P3"),
                                    _ => Prop::Other,
                                }
                            }
                            _ => Prop::Other,
                        };
                        if h.props.len() < 4096 {
                            h.props.push(prop);
                        }
                        Ok(())
                    }),
                    b"ipma" => {
                        let d = payload(src, &b, MAX_TABLE)?;
                        parse_ipma(src, &d, &mut h.assoc)
                    }
                    _ => Ok(()),
                })?,
                _ => {}
            }
            Ok(())
        },
    )?;
    // The EXIF item, once the item types and locations are known.
    let exif_id = h
        .items
        .iter()
        .find(|(_, t)| t == b"Exif")
        .map(|(id, _)| *id);
    if let (Some(id), Some(iloc)) = (exif_id, h.iloc) {
        let d = payload(src, &iloc, MAX_TABLE)?;
        if let Some((off, len)) = iloc_find(&d, id) {
            let len = if len == 0 {
                src.len.saturating_sub(off)
            } else {
                len
            };
            let end = off.saturating_add(len);
            let r = src.be32(off).ctx("EXIF item").and_then(|skip| {
                let base = off.saturating_add(4).saturating_add(u64::from(skip));
                parse_tiff(src, m, base, end, false, 1)
            });
            if let Err(e) = r {
                src.soft(PErr(format!("EXIF: {}", e.0)));
            }
        }
    }
    Ok(())
}

fn parse_ipma<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    d: &[u8],
    out: &mut Vec<(u32, u16)>,
) -> PResult<()> {
    let version = d.first().copied().unwrap_or(0);
    let wide = d.get(3).is_some_and(|f| f & 1 != 0);
    let count = io::be32(d, 4).unwrap_or(0);
    let mut p = 8usize;
    for _ in 0..count {
        src.item()?;
        let id = if version < 1 {
            let v = io::be16(d, p).map(u32::from);
            p += 2;
            v
        } else {
            let v = io::be32(d, p);
            p += 4;
            v
        };
        let (Some(id), Some(&n)) = (id, d.get(p)) else {
            break;
        };
        p += 1;
        for _ in 0..n {
            let idx = if wide {
                let v = io::be16(d, p).map(|v| v & 0x7FFF);
                p += 2;
                v
            } else {
                let v = d.get(p).map(|&v| u16::from(v & 0x7F));
                p += 1;
                v
            };
            let Some(idx) = idx else { return Ok(()) };
            if out.len() < 16384 {
                out.push((id, idx));
            }
        }
    }
    Ok(())
}

fn uint_n(d: &[u8], p: &mut usize, n: u8) -> Option<u64> {
    let v = match n {
        0 => Some(0),
        4 => io::be32(d, *p).map(u64::from),
        8 => io::be64(d, *p),
        _ => None,
    };
    *p += usize::from(n);
    v
}

/// The file offset and length of item `want`'s first extent (construction
/// method 0, i.e. in this file).
fn iloc_find(d: &[u8], want: u32) -> Option<(u64, u64)> {
    let version = *d.first()?;
    let sizes = *d.get(4)?;
    let sizes2 = *d.get(5)?;
    let (off_size, len_size, base_size) = (sizes >> 4, sizes & 15, sizes2 >> 4);
    let index_size = if version >= 1 { sizes2 & 15 } else { 0 };
    let mut p = 6usize;
    let count = if version < 2 {
        let c = u32::from(io::be16(d, p)?);
        p += 2;
        c
    } else {
        let c = io::be32(d, p)?;
        p += 4;
        c
    };
    // Extents of zero-size fields consume no bytes: bound the work.
    let mut work = 1u32 << 20;
    for _ in 0..count.min(65_536) {
        let id = if version < 2 {
            let v = u32::from(io::be16(d, p)?);
            p += 2;
            v
        } else {
            let v = io::be32(d, p)?;
            p += 4;
            v
        };
        let method = if version >= 1 {
            let v = io::be16(d, p)? & 15;
            p += 2;
            v
        } else {
            0
        };
        p += 2; // data reference index
        let base = uint_n(d, &mut p, base_size)?;
        let extents = io::be16(d, p)?;
        p += 2;
        let mut first = None;
        for _ in 0..extents {
            work = work.checked_sub(1)?;
            if index_size > 0 {
                uint_n(d, &mut p, index_size)?;
            }
            let off = uint_n(d, &mut p, off_size)?;
            let len = uint_n(d, &mut p, len_size)?;
            if first.is_none() {
                first = Some((off, len));
            }
        }
        if id == want {
            let (off, len) = first?;
            return (method == 0).then_some((base.checked_add(off)?, len));
        }
    }
    None
}

// ---- codecs ----------------------------------------------------------------

fn video_codec(fcc: &[u8]) -> String {
    match fcc {
        b"avc1" | b"avc2" | b"avc3" | b"avc4" => "H.264",
        b"hvc1" | b"hev1" | b"dvh1" | b"dvhe" => "HEVC",
        b"av01" => "AV1",
        b"vp09" => "VP9",
        b"vp08" => "VP8",
        b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => "ProRes",
        b"mp4v" => "MPEG-4 Visual",
        b"jpeg" | b"mjpa" | b"mjpb" | b"mjp2" => "Motion JPEG",
        b"s263" | b"h263" => "H.263",
        b"m2v1" | b"xdvc" | b"xdv7" => "MPEG-2",
        b"dvc " | b"dvcp" | b"dv5n" | b"dv5p" => "DV",
        b"AVdn" | b"AVdh" => "DNxHD",
        b"raw " => "raw video",
        b"png " => "PNG",
        b"CRAW" => "Canon RAW",
        _ => return io::fourcc(fcc),
    }
    .into()
}

fn audio_codec(fcc: &[u8]) -> Option<&'static str> {
    Some(match fcc {
        b"mp4a" => "AAC",
        b"ac-3" | b"sac3" => "AC-3",
        b"ec-3" => "E-AC-3",
        b"alac" => "ALAC",
        b"lpcm" | b"sowt" | b"twos" | b"in24" | b"in32" | b"raw " | b"NONE" => "PCM",
        b"fl32" | b"fl64" => "PCM float",
        b"ulaw" => "G.711 mu-law",
        b"alaw" => "G.711 A-law",
        b"Opus" => "Opus",
        b"fLaC" => "FLAC",
        b".mp3" => "MP3",
        b"samr" => "AMR",
        b"sawb" => "AMR-WB",
        b"ima4" => "IMA ADPCM",
        _ => return None,
    })
}

/// What an `esds` (MPEG-4 elementary stream descriptor) says: the codec
/// from the object type, and for AAC the channel count and sample rate of
/// the AudioSpecificConfig (the sample entry's fields are often a fixed 2
/// channels).
struct Esds {
    codec: Option<&'static str>,
    channels: Option<u32>,
    rate: Option<u32>,
}

fn esds(d: &[u8]) -> Option<Esds> {
    fn desc_len(d: &[u8], p: &mut usize) -> Option<usize> {
        let mut len = 0usize;
        for _ in 0..4 {
            let b = *d.get(*p)?;
            *p += 1;
            len = (len << 7) | usize::from(b & 0x7F);
            if b & 0x80 == 0 {
                break;
            }
        }
        Some(len)
    }
    let mut p = 4usize; // version/flags
    if *d.get(p)? != 0x03 {
        return None;
    }
    p += 1;
    desc_len(d, &mut p)?;
    p += 2; // ES_ID
    let flags = *d.get(p)?;
    p += 1;
    if flags & 0x80 != 0 {
        p += 2;
    }
    if flags & 0x40 != 0 {
        p += 1 + usize::from(*d.get(p)?);
    }
    if flags & 0x20 != 0 {
        p += 2;
    }
    if *d.get(p)? != 0x04 {
        return None;
    }
    p += 1;
    desc_len(d, &mut p)?;
    let oti = *d.get(p)?;
    let codec = match oti {
        0x40 | 0x66 | 0x67 | 0x68 => Some("AAC"),
        0x69 | 0x6B => Some("MP3"),
        0xA5 => Some("AC-3"),
        0xA6 => Some("E-AC-3"),
        0xA9 => Some("DTS"),
        0xAD => Some("Opus"),
        0xDD => Some("Vorbis"),
        _ => None,
    };
    let mut out = Esds {
        codec,
        channels: None,
        rate: None,
    };
    // DecoderSpecificInfo (tag 5) after the 13-byte DecoderConfigDescriptor.
    p += 13;
    if codec == Some("AAC") && d.get(p) == Some(&0x05) {
        p += 1;
        desc_len(d, &mut p)?;
        let asc = io::sub(d, p, 2)?;
        let bits = u16::from_be_bytes([asc[0], asc[1]]);
        let aot = bits >> 11;
        let freq_index = usize::from((bits >> 7) & 15);
        let config = u32::from((bits >> 3) & 15);
        const RATES: [u32; 13] = [
            96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
            8_000, 7_350,
        ];
        out.channels = match config {
            1..=6 => Some(config),
            7 => Some(8),
            _ => None,
        };
        // HE-AAC (SBR, PS) plays at twice the configured rate: leave the
        // sample entry's rate for those.
        if aot != 5 && aot != 29 && aot != 31 {
            out.rate = RATES.get(freq_index).copied();
        }
    }
    Some(out)
}

/// Child boxes inside an in-memory buffer: (type, payload).
fn inner_boxes(d: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while out.len() < 32 {
        let (Some(size), Some(typ)) = (io::be32(d, p), io::sub(d, p + 4, 4)) else {
            break;
        };
        let size = size as usize;
        if size < 8 {
            break;
        }
        let body = d
            .get(p + 8..p.saturating_add(size).min(d.len()))
            .unwrap_or_default();
        if let Ok(t) = typ.try_into() {
            out.push((t, body));
        }
        p = p.saturating_add(size);
    }
    out
}

fn audio_track(e: &[u8], qt: bool, timescale: u32) -> AudioTrack {
    let fcc = io::sub(e, 4, 4).unwrap_or_default();
    let body = e.get(8..).unwrap_or_default();
    let version = io::be16(body, 8).unwrap_or(0);
    let mut channels = io::be16(body, 16).map(u32::from);
    let sample_size = io::be16(body, 18);
    let mut rate = io::be32(body, 24).map(|r| f64::from(r >> 16));
    let mut bits = None;
    let child_off = match (qt, version) {
        (true, 1) => 44,
        (true, 2) => 64,
        _ => 28,
    };
    if qt && version == 2 {
        rate = io::be64(body, 32).map(f64::from_bits);
        channels = io::be32(body, 40);
        bits = io::be32(body, 48).and_then(|b| u16::try_from(b).ok());
    }
    let mut codec = audio_codec(fcc).map(str::to_string);
    let mut kids = inner_boxes(body.get(child_off..).unwrap_or_default());
    if let Some(pos) = kids.iter().position(|(t, _)| t == b"wave") {
        let wave = kids[pos].1;
        kids.extend(inner_boxes(wave));
    }
    for (t, d) in &kids {
        match t {
            b"esds" => {
                if let Some(e) = esds(d) {
                    if let Some(c) = e.codec {
                        codec = Some(c.into());
                    }
                    channels = e.channels.or(channels);
                    rate = e.rate.map(f64::from).or(rate);
                }
            }
            b"dfLa" => {
                // version/flags, metadata block header, STREAMINFO
                if let Some(si) = d.get(8..) {
                    if let Some((r, c, b)) = crate::audio::streaminfo_format(si) {
                        rate = Some(f64::from(r));
                        channels = Some(u32::from(c));
                        bits = Some(b);
                    }
                }
            }
            b"alac" => {
                bits = d.get(9).map(|&b| u16::from(b));
                if let Some(r) = io::be32(d, 24).filter(|&r| r > 0) {
                    rate = Some(f64::from(r));
                }
            }
            b"srat" => {
                if let Some(r) = io::be32(d, 4).filter(|&r| r > 0) {
                    rate = Some(f64::from(r));
                }
            }
            _ => {}
        }
    }
    match fcc {
        b"in24" => bits = Some(24),
        b"in32" | b"fl32" => bits = Some(32),
        b"fl64" => bits = Some(64),
        b"lpcm" | b"sowt" | b"twos" | b"raw " | b"NONE" if bits.is_none() => bits = sample_size,
        _ => {}
    }
    if fcc == b"Opus" {
        rate = Some(48_000.0);
    }
    let rate = rate
        .filter(|r| r.is_finite() && *r >= 1.0 && *r < 1e7)
        .map(|r| r.round() as u32)
        .or((timescale > 0).then_some(timescale));
    AudioTrack {
        codec: codec.or_else(|| Some(io::fourcc(fcc))),
        channels: channels
            .and_then(|c| u16::try_from(c).ok())
            .filter(|&c| c > 0),
        sample_rate: rate,
        bit_depth: bits.filter(|&b| b > 0),
    }
}

fn finish<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, st: &St, m: &mut Metadata) {
    let image = st.image_brand();
    let qt = st.major.is_none() || st.major.as_ref() == Some(b"qt  ");
    let (mut format, mut mime) = match st.major.as_ref() {
        None | Some(b"qt  ") => ("MOV", "video/quicktime"),
        Some(b"M4A ") | Some(b"M4B ") | Some(b"M4P ") => ("M4A", "audio/mp4"),
        Some(b) if b.starts_with(b"3gp") || b.starts_with(b"3g2") => ("3GP", "video/3gpp"),
        _ => ("MP4", "video/mp4"),
    };
    let mut video = false;
    let mut audio = false;
    for tr in &st.tracks {
        let Some(entry) = tr.entry.as_deref() else {
            continue;
        };
        let fcc = io::sub(entry, 4, 4).unwrap_or_default();
        match tr.handler.as_ref() {
            Some(b"vide") | Some(b"pict") => {
                if video {
                    continue;
                }
                video = true;
                m.video_codec = Some(video_codec(fcc));
                let w = io::be16(entry, 8 + 24).map(u32::from).filter(|&w| w > 0);
                let h = io::be16(entry, 8 + 26).map(u32::from).filter(|&h| h > 0);
                m.width = w.or(tr.tkhd_w);
                m.height = h.or(tr.tkhd_h);
                if let Some(n) = tr.samples {
                    if tr.timescale > 0 && tr.duration > 0 && n > 1 {
                        let secs = tr.duration as f64 / f64::from(tr.timescale);
                        m.frame_rate = Some(f64::from(n) / secs);
                    }
                }
            }
            Some(b"soun") => {
                audio = true;
                if m.audio.len() < MAX_AUDIO_TRACKS {
                    m.audio.push(audio_track(entry, qt, tr.timescale));
                }
            }
            _ => {}
        }
    }
    if st.timescale > 0 {
        let d = if st.duration > 0 && st.duration != u64::from(u32::MAX) && st.duration != u64::MAX
        {
            st.duration
        } else {
            st.fragment_duration
        };
        if d > 0 {
            m.duration = Some(d as f64 / f64::from(st.timescale));
        }
    }
    if m.duration.is_none() {
        m.duration = st
            .tracks
            .iter()
            .filter(|t| t.timescale > 0 && t.duration > 0 && t.duration != u64::from(u32::MAX))
            .map(|t| t.duration as f64 / f64::from(t.timescale))
            .fold(None, |a: Option<f64>, d| Some(a.map_or(d, |a| a.max(d))));
    }
    if st.created > 0 {
        m.created = i64::try_from(st.created)
            .ok()
            .and_then(|c| io::iso_utc(c - EPOCH_1904));
    }
    m.title = st.title.clone();
    m.artist = st.artist.clone();
    m.album = st.album.clone();

    if let Some((f, mi)) = image {
        format = f;
        mime = mi;
        m.kind = Kind::Image;
        heif_image(src, &st.heif, m);
        if !video {
            m.duration = None;
        }
    } else if video {
        m.kind = Kind::Video;
    } else if audio || format == "M4A" {
        m.kind = Kind::Audio;
        mime = match format {
            "MOV" => "audio/quicktime",
            "3GP" => "audio/3gpp",
            _ => "audio/mp4",
        };
    } else {
        m.kind = Kind::Video;
    }
    m.format = Some(format.into());
    m.mime = Some(mime.into());
    if m.kind != Kind::Image {
        m.container = Some(format.into());
    }
}

fn heif_image<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, h: &Heif, m: &mut Metadata) {
    let prop = |i: u16| h.props.get(usize::from(i).checked_sub(1)?).copied();
    let mine: Vec<Prop> = match h.primary {
        Some(p) => h
            .assoc
            .iter()
            .filter(|(id, _)| *id == p)
            .filter_map(|&(_, i)| prop(i))
            .collect(),
        None => Vec::new(),
    };
    let ispe = mine
        .iter()
        .find_map(|p| match p {
            Prop::Ispe(w, h) => Some((*w, *h)),
            _ => None,
        })
        .or_else(|| {
            h.props
                .iter()
                .filter_map(|p| match p {
                    Prop::Ispe(w, h) => Some((*w, *h)),
                    _ => None,
                })
                .max_by_key(|(w, h)| u64::from(*w) * u64::from(*h))
        });
    if let Some((w, h)) = ispe {
        m.width = Some(w);
        m.height = Some(h);
    }
    for p in &mine {
        match *p {
            Prop::Pixi(b) => m.bit_depth = Some(u16::from(b)),
            Prop::Icc(off, len) => {
                if let Some(d) = icc_description(src, off, len) {
                    m.color_space = Some(d);
                }
            }
            Prop::Nclx(name) => m.color_space = Some(name.into()),
            _ => {}
        }
    }
    m.video_codec = None;
    m.frame_rate = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esds_object_types() {
        // version/flags, ES_Descriptor (tag 3), DecoderConfig (tag 4).
        let mut d = vec![0, 0, 0, 0, 3, 0x19, 0, 1, 0, 4, 0x11, 0x40, 0x15];
        d.extend([0; 11]);
        // AudioSpecificConfig: AAC LC (2), 48 kHz (3), 1 channel
        d.extend([5, 2, 0x11, 0x88]);
        let e = esds(&d).unwrap();
        assert_eq!(
            (e.codec, e.channels, e.rate),
            (Some("AAC"), Some(1), Some(48_000))
        );
        let d = [0, 0, 0, 0, 3, 0x80, 0x80, 0x19, 0, 1, 0, 4, 0x11, 0x6B];
        assert_eq!(esds(&d).unwrap().codec, Some("MP3"));
        assert!(esds(&[0, 0, 0, 0, 3]).is_none());
    }

    #[test]
    fn iloc_versions() {
        // version 0, offset_size 4, length_size 4, base_offset_size 0, 1 item
        let mut d = vec![0, 0, 0, 0, 0x44, 0x00, 0, 1];
        d.extend_from_slice(&[0, 7, 0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0, 0x20]);
        assert_eq!(iloc_find(&d, 7), Some((0x1000, 0x20)));
        assert_eq!(iloc_find(&d, 8), None);
        assert_eq!(iloc_find(&d[..10], 7), None);
        // Zero-size offsets and lengths: extents consume no bytes.
        let mut d = vec![1, 0, 0, 0, 0x00, 0x00, 0x03, 0xE8];
        for i in 0..1000u16 {
            d.extend(i.to_be_bytes());
            d.extend([0, 0, 0, 0, 0xFF, 0xFF]);
        }
        let t = std::time::Instant::now();
        assert_eq!(iloc_find(&d, 5000), None);
        assert!(t.elapsed().as_secs() < 1);
    }
}
