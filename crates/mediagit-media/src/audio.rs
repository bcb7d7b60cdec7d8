//! Audio files: WAV/RF64 and AIFF (chunk walk, the sample data skipped),
//! FLAC (metadata blocks), MP3 (ID3v2 tag, first frame header, Xing/Info
//! or VBRI frame count), Ogg (identification header of each stream, the
//! comment packet, the last page's granule position from the last 64 KiB).

use std::io::{Read, Seek};

use crate::io::{self, err, Ctx, PErr, PResult, Src};
use crate::{AudioTrack, Kind, Metadata};

/// How much of an Ogg file's end is searched for its last page, and how
/// much of a comment packet is read.
const OGG_WINDOW: usize = 64 << 10;
/// How far past the ID3 tag the first MPEG audio frame is searched for.
const MP3_SYNC_WINDOW: usize = 64 << 10;

fn set_text(slot: &mut Option<String>, v: Option<String>) {
    if slot.is_none() {
        *slot = v;
    }
}

/// Tags "KEY=value" of a Vorbis comment block (FLAC, Ogg Vorbis, Opus).
fn vorbis_comments<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    d: &[u8],
    m: &mut Metadata,
) -> PResult<()> {
    let vendor = io::le32(d, 0).unwrap_or(u32::MAX) as usize;
    let mut p = 4usize.saturating_add(vendor);
    let Some(count) = io::le32(d, p) else {
        return Ok(());
    };
    p += 4;
    for _ in 0..count {
        src.item()?;
        let Some(l) = io::le32(d, p) else { break };
        p += 4;
        let end = p.saturating_add(l as usize).min(d.len());
        let Some(c) = d.get(p..end) else { break };
        if let Some(eq) = c.iter().position(|&b| b == b'=') {
            let value = io::text(&c[eq + 1..]);
            match c[..eq].to_ascii_uppercase().as_slice() {
                b"TITLE" => set_text(&mut m.title, value),
                b"ARTIST" => set_text(&mut m.artist, value),
                b"ALBUM" => set_text(&mut m.album, value),
                _ => {}
            }
        }
        p = p.saturating_add(l as usize);
    }
    Ok(())
}

// ---- WAV / AIFF --------------------------------------------------------------

fn wav_codec(tag: u16) -> String {
    match tag {
        1 => "PCM".into(),
        3 => "PCM float".into(),
        2 => "MS ADPCM".into(),
        0x11 => "IMA ADPCM".into(),
        6 => "G.711 A-law".into(),
        7 => "G.711 mu-law".into(),
        0x50 => "MP2".into(),
        0x55 => "MP3".into(),
        0x2000 => "AC-3".into(),
        0x2001 => "DTS".into(),
        0xF1AC => "FLAC".into(),
        _ => format!("format 0x{tag:04X}"),
    }
}

pub(crate) fn wav<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<()> {
    let h = src.array::<12>(0).ctx("RIFF header")?;
    let format = if &h[..4] == b"RIFF" { "WAV" } else { "RF64" };
    m.format = Some(format.into());
    m.container = Some(format.into());
    let end = src.len;
    let mut pos = 12u64;
    let mut fmt: Option<Vec<u8>> = None;
    let mut data: Option<(u64, u64)> = None;
    let mut ds64: Option<u64> = None;
    while pos.saturating_add(8) <= end {
        src.item()?;
        let c = src.array::<8>(pos).ctx("chunk header")?;
        let id = [c[0], c[1], c[2], c[3]];
        let size32 = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        let mut size = u64::from(size32);
        let body = pos + 8;
        match &id {
            b"ds64" => {
                let d = src
                    .read_vec(body, 24.min(size) as usize)
                    .ctx("ds64 chunk")?;
                ds64 = io::le64(&d, 8);
            }
            b"fmt " => fmt = Some(src.read_vec(body, 40.min(size) as usize).ctx("fmt chunk")?),
            b"data" => {
                if size32 == u32::MAX || (format != "WAV" && size32 == 0) {
                    size = ds64.unwrap_or(end.saturating_sub(body));
                }
                if body.saturating_add(size) > end {
                    src.soft(PErr(format!(
                        "data chunk of {size} bytes extends past the end of the file (truncated?)"
                    )));
                    size = end - body;
                }
                data = Some((body, size));
            }
            b"LIST" => {
                let d = src
                    .read_vec(body, 4096.min(size) as usize)
                    .ctx("LIST chunk")?;
                if d.starts_with(b"INFO") {
                    riff_info(src, &d[4..], m)?;
                }
            }
            _ => {}
        }
        pos = body.saturating_add(size).saturating_add(size & 1);
    }
    let f = fmt.ok_or_else(|| PErr("no fmt chunk".into()))?;
    let mut tag = io::le16(&f, 0).unwrap_or(0);
    let channels = io::le16(&f, 2);
    let rate = io::le32(&f, 4);
    let byte_rate = io::le32(&f, 8).unwrap_or(0);
    let bits = io::le16(&f, 14);
    if tag == 0xFFFE {
        tag = io::le16(&f, 24).unwrap_or(tag);
    }
    m.audio.push(AudioTrack {
        codec: Some(wav_codec(tag)),
        channels: channels.filter(|&c| c > 0),
        sample_rate: rate.filter(|&r| r > 0),
        bit_depth: bits.filter(|&b| b > 0),
    });
    let (_, size) = data.ok_or_else(|| PErr("no data chunk (truncated?)".into()))?;
    if byte_rate > 0 {
        m.duration = Some(size as f64 / f64::from(byte_rate));
    }
    Ok(())
}

/// RIFF INFO sub-chunks: INAM (title), IART (artist), IPRD (album).
fn riff_info<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    d: &[u8],
    m: &mut Metadata,
) -> PResult<()> {
    let mut p = 0usize;
    while let (Some(id), Some(len)) = (io::sub(d, p, 4), io::le32(d, p + 4)) {
        src.item()?;
        let start = p + 8;
        let end = start.saturating_add(len as usize).min(d.len());
        let v = io::text(d.get(start..end).unwrap_or_default());
        match id {
            b"INAM" => set_text(&mut m.title, v),
            b"IART" => set_text(&mut m.artist, v),
            b"IPRD" => set_text(&mut m.album, v),
            _ => {}
        }
        p = start
            .saturating_add(len as usize)
            .saturating_add(len as usize & 1);
    }
    Ok(())
}

/// An 80-bit IEEE extended float (AIFF sample rate).
fn ext80(b: &[u8]) -> Option<f64> {
    let se = io::be16(b, 0)?;
    let mant = io::be64(b, 2)?;
    let exp = i32::from(se & 0x7FFF) - 16383 - 63;
    let v = mant as f64 * 2f64.powi(exp);
    (v.is_finite() && v > 0.0 && se & 0x8000 == 0).then_some(v)
}

pub(crate) fn aiff<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<()> {
    let h = src.array::<12>(0).ctx("FORM header")?;
    let aifc = &h[8..12] == b"AIFC";
    let format = if aifc { "AIFF-C" } else { "AIFF" };
    m.format = Some(format.into());
    m.container = Some(format.into());
    let end = src.len;
    let mut pos = 12u64;
    let mut comm = None;
    while pos.saturating_add(8) <= end {
        src.item()?;
        let c = src.array::<8>(pos).ctx("chunk header")?;
        let size = u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
        let body = pos + 8;
        match &c[..4] {
            b"COMM" => {
                comm = Some(
                    src.read_vec(body, 22.min(size) as usize)
                        .ctx("COMM chunk")?,
                )
            }
            b"NAME" | b"AUTH" => {
                let v = io::text(
                    &src.read_vec(body, size.min(1024) as usize)
                        .ctx("text chunk")?,
                );
                let slot = if &c[..4] == b"NAME" {
                    &mut m.title
                } else {
                    &mut m.artist
                };
                set_text(slot, v);
            }
            _ => {}
        }
        pos = body.saturating_add(size).saturating_add(size & 1);
    }
    let c = comm.ok_or_else(|| PErr("no COMM chunk".into()))?;
    let channels = io::be16(&c, 0);
    let frames = io::be32(&c, 2).unwrap_or(0);
    let bits = io::be16(&c, 6);
    let rate = c.get(8..18).and_then(ext80).filter(|r| *r < 1e7);
    let codec = match io::sub(&c, 18, 4) {
        None | Some(b"NONE") | Some(b"twos") | Some(b"sowt") | Some(b"raw ") | Some(b"in24")
        | Some(b"in32") => "PCM".to_string(),
        Some(b"fl32") | Some(b"FL32") | Some(b"fl64") | Some(b"FL64") => "PCM float".into(),
        Some(b"ulaw") | Some(b"ULAW") => "G.711 mu-law".into(),
        Some(b"alaw") | Some(b"ALAW") => "G.711 A-law".into(),
        Some(other) => io::fourcc(other),
    };
    m.audio.push(AudioTrack {
        codec: Some(codec),
        channels: channels.filter(|&c| c > 0),
        sample_rate: rate.map(|r| r.round() as u32),
        bit_depth: bits.filter(|&b| b > 0),
    });
    if let Some(r) = rate {
        m.duration = Some(f64::from(frames) / r);
    }
    Ok(())
}

// ---- FLAC --------------------------------------------------------------------

/// (sample rate, channels, bits per sample) of a STREAMINFO block's data.
pub(crate) fn streaminfo_format(d: &[u8]) -> Option<(u32, u8, u16)> {
    let b = io::sub(d, 10, 4)?;
    let rate = (u32::from(b[0]) << 12) | (u32::from(b[1]) << 4) | (u32::from(b[2]) >> 4);
    let channels = ((b[2] >> 1) & 7) + 1;
    let bits = ((u16::from(b[2] & 1) << 4) | u16::from(b[3] >> 4)) + 1;
    Some((rate, channels, bits))
}

fn streaminfo_samples(d: &[u8]) -> Option<u64> {
    let hi = u64::from(*d.get(13)? & 0x0F);
    Some((hi << 32) | u64::from(io::be32(d, 14)?))
}

pub(crate) fn flac<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<()> {
    m.format = Some("FLAC".into());
    m.container = Some("FLAC".into());
    let start = if &src.array::<3>(0)? == b"ID3" {
        id3(src, m)?
    } else {
        0
    };
    if &src.array::<4>(start).ctx("signature")? != b"fLaC" {
        return err("no fLaC signature");
    }
    let mut pos = start + 4;
    let mut info = false;
    loop {
        src.item()?;
        let h = src.array::<4>(pos).ctx("metadata block header")?;
        let last = h[0] & 0x80 != 0;
        let len = u64::from(u32::from_be_bytes([0, h[1], h[2], h[3]]));
        let body = pos + 4;
        match h[0] & 0x7F {
            0 => {
                let d = src.read_vec(body, 34).ctx("STREAMINFO block")?;
                let (rate, ch, bits) =
                    streaminfo_format(&d).ok_or_else(|| PErr("bad STREAMINFO".into()))?;
                m.audio.push(AudioTrack {
                    codec: Some("FLAC".into()),
                    channels: Some(u16::from(ch)),
                    sample_rate: (rate > 0).then_some(rate),
                    bit_depth: Some(bits),
                });
                if let Some(n) = streaminfo_samples(&d).filter(|&n| n > 0 && rate > 0) {
                    m.duration = Some(n as f64 / f64::from(rate));
                }
                info = true;
            }
            4 => {
                let d = src
                    .read_vec(body, len.min(OGG_WINDOW as u64) as usize)
                    .ctx("VORBIS_COMMENT block")?;
                vorbis_comments(src, &d, m)?;
            }
            _ => {}
        }
        pos = body.saturating_add(len);
        if last || pos >= src.len {
            break;
        }
    }
    if !info {
        return err("no STREAMINFO block");
    }
    Ok(())
}

// ---- MP3 ---------------------------------------------------------------------

/// The length of the ID3v2 tag at the start of `head` (header, body and
/// footer).
pub(crate) fn id3_end(head: &[u8]) -> Option<u64> {
    if !head.starts_with(b"ID3") {
        return None;
    }
    let flags = *head.get(5)?;
    let s = io::sub(head, 6, 4)?;
    let size = s.iter().fold(0u64, |a, &b| (a << 7) | u64::from(b & 0x7F));
    Some(10 + size + if flags & 0x10 != 0 { 10 } else { 0 })
}

fn id3_text(d: &[u8]) -> Option<String> {
    let (&enc, rest) = d.split_first()?;
    match enc {
        0 | 3 => io::text(rest),
        1 => match rest {
            [0xFF, 0xFE, t @ ..] => io::utf16(t, false),
            [0xFE, 0xFF, t @ ..] => io::utf16(t, true),
            t => io::utf16(t, false),
        },
        2 => io::utf16(rest, true),
        _ => None,
    }
}

/// Reads the ID3v2 tag at the start of the file (title, artist, album);
/// returns where the tag ends.
fn id3<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<u64> {
    let h = src.read_vec(0, 10).ctx("ID3 header")?;
    let version = h[3];
    let flags = h[5];
    let tag_end = id3_end(&h).ok_or_else(|| PErr("bad ID3 header".into()))?;
    let body_end = tag_end.saturating_sub(if flags & 0x10 != 0 { 10 } else { 0 });
    if body_end > src.len {
        src.soft(PErr(
            "ID3 tag extends past the end of the file (truncated?)".into(),
        ));
    }
    let body_end = body_end.min(src.len);
    let mut p = 10u64;
    if flags & 0x40 != 0 && version >= 3 {
        let b = src.array::<4>(p).ctx("ID3 extended header")?;
        p += if version == 3 {
            4 + u64::from(u32::from_be_bytes(b))
        } else {
            b.iter().fold(0u64, |a, &c| (a << 7) | u64::from(c & 0x7F))
        };
    }
    let hdr: u64 = if version == 2 { 6 } else { 10 };
    while p.saturating_add(hdr) <= body_end {
        src.item()?;
        let fh = src.read_vec(p, hdr as usize).ctx("ID3 frame header")?;
        if fh[0] == 0 {
            break; // padding
        }
        let (id, size) = if version == 2 {
            (&fh[..3], u64::from(io::be24(&fh, 3).unwrap_or(0)))
        } else if version == 4 {
            let s = fh[4..8]
                .iter()
                .fold(0u64, |a, &c| (a << 7) | u64::from(c & 0x7F));
            (&fh[..4], s)
        } else {
            (&fh[..4], u64::from(io::be32(&fh, 4).unwrap_or(0)))
        };
        let body = p + hdr;
        let fflags = if version >= 3 { fh[9] } else { 0 };
        let slot = match id {
            b"TIT2" | b"TT2" => Some(&mut m.title),
            b"TPE1" | b"TP1" => Some(&mut m.artist),
            b"TALB" | b"TAL" => Some(&mut m.album),
            _ => None,
        };
        let skip_frame = match version {
            3 => fflags & 0xC0 != 0,
            4 => fflags & 0x0C != 0,
            _ => false,
        };
        if let Some(slot) = slot.filter(|s| s.is_none() && !skip_frame) {
            let mut off = body;
            let mut n = size;
            if version == 4 && fflags & 0x01 != 0 {
                off += 4; // data length indicator
                n = n.saturating_sub(4);
            }
            let n = n.min(1024).min(body_end.saturating_sub(off));
            let d = src.read_vec(off, n as usize).ctx("ID3 frame")?;
            *slot = id3_text(&d);
        }
        p = body.saturating_add(size);
    }
    Ok(tag_end)
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Frame {
    version: u8, // 1, 2, or 25 (MPEG 2.5)
    layer: u8,
    kbps: u32,
    rate: u32,
    mono: bool,
    len: u32,
    spf: u32,
}

fn frame_header(b: &[u8]) -> Option<Frame> {
    let b = io::sub(b, 0, 4)?;
    if b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = match (b[1] >> 3) & 3 {
        0 => 25,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    let layer = match (b[1] >> 1) & 3 {
        1 => 3,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    let bi = usize::from(b[2] >> 4);
    let si = usize::from((b[2] >> 2) & 3);
    if bi == 0 || bi == 15 || si == 3 {
        return None;
    }
    const V1: [[u32; 14]; 3] = [
        [
            32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ],
        [
            32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ],
        [
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ],
    ];
    const V2: [[u32; 14]; 2] = [
        [
            32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ],
        [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ];
    let kbps = if version == 1 {
        V1[usize::from(layer - 1)][bi - 1]
    } else {
        V2[usize::from(layer != 1)][bi - 1]
    };
    let rate = [44_100u32, 48_000, 32_000][si]
        / match version {
            1 => 1,
            2 => 2,
            _ => 4,
        };
    let pad = u32::from((b[2] >> 1) & 1);
    let spf = match (layer, version) {
        (1, _) => 384,
        (2, _) | (3, 1) => 1152,
        _ => 576,
    };
    let len = if layer == 1 {
        (12 * kbps * 1000 / rate + pad) * 4
    } else {
        spf / 8 * kbps * 1000 / rate + pad
    };
    Some(Frame {
        version,
        layer,
        kbps,
        rate,
        mono: b[3] >> 6 == 3,
        len,
        spf,
    })
}

/// The first frame header in `buf` (read at file offset `start`) that is
/// followed by another one (or by the end of the file or window).
fn find_sync(buf: &[u8], start: u64, len: u64) -> Option<(usize, Frame)> {
    for i in 0..buf.len().saturating_sub(3) {
        if buf[i] != 0xFF {
            continue;
        }
        let Some(f) = frame_header(&buf[i..]) else {
            continue;
        };
        let next = i + f.len as usize;
        let confirmed = match io::sub(buf, next, 4) {
            Some(b) => {
                frame_header(b).is_some_and(|g| g.version == f.version && g.layer == f.layer)
            }
            None => start + next as u64 >= len || next >= buf.len(),
        };
        if confirmed {
            return Some((i, f));
        }
    }
    None
}

/// Whether the file starts with an MPEG audio frame (confirmed by a second
/// one after it unless the name says .mp3).
pub(crate) fn mpeg_sync_at_start<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    head: &[u8],
    named_mp3: bool,
) -> bool {
    let Some(f) = frame_header(head) else {
        return false;
    };
    if named_mp3 {
        return true;
    }
    src.array::<4>(u64::from(f.len))
        .ok()
        .and_then(|b| frame_header(&b))
        .is_some_and(|g| g.version == f.version && g.layer == f.layer && g.rate == f.rate)
}

pub(crate) fn mp3<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<()> {
    m.format = Some("MP3".into());
    let mut start = 0u64;
    for _ in 0..4 {
        if src.read_upto(start, 3)? != b"ID3" {
            break;
        }
        if start == 0 {
            start = id3(src, m)?;
        } else {
            let h = src.read_vec(start, 10).ctx("ID3 header")?;
            start = start.saturating_add(id3_end(&h).unwrap_or(10));
        }
    }
    // The first frame normally follows the tag directly: a small window
    // first, the full search window only when that fails.
    let mut found = None;
    let mut buf = Vec::new();
    for window in [4096, MP3_SYNC_WINDOW] {
        buf = src.read_upto(start, window)?;
        found = find_sync(&buf, start, src.len);
        if found.is_some() || buf.len() < window {
            break;
        }
    }
    let (i, f) = found.ok_or_else(|| PErr("no MPEG audio frame found".into()))?;
    let codec = match f.layer {
        3 => "MP3",
        2 => "MP2",
        _ => "MP1",
    };
    m.format = Some(codec.into());
    m.container = Some(codec.into());
    m.audio.push(AudioTrack {
        codec: Some(codec.into()),
        channels: Some(if f.mono { 1 } else { 2 }),
        sample_rate: Some(f.rate),
        bit_depth: None,
    });
    // Xing/Info (after the side information) or VBRI (32 bytes in).
    let side = match (f.version == 1, f.mono) {
        (true, false) => 32,
        (true, true) => 17,
        (false, false) => 17,
        (false, true) => 9,
    };
    let frame = buf.get(i..).unwrap_or_default();
    let mut frames = None;
    let mut bytes = None;
    let x = 4 + side;
    if matches!(io::sub(frame, x, 4), Some(b"Xing") | Some(b"Info")) {
        let flags = io::be32(frame, x + 4).unwrap_or(0);
        let mut p = x + 8;
        if flags & 1 != 0 {
            frames = io::be32(frame, p);
            p += 4;
        }
        if flags & 2 != 0 {
            bytes = io::be32(frame, p);
        }
    } else if io::sub(frame, 36, 4) == Some(b"VBRI") {
        bytes = io::be32(frame, 36 + 10);
        frames = io::be32(frame, 36 + 14);
    }
    let audio_start = start + i as u64;
    if let Some(n) = frames.filter(|&n| n > 0) {
        let d = f64::from(n) * f64::from(f.spf) / f64::from(f.rate);
        m.duration = Some(d);
        let b = bytes
            .map(u64::from)
            .unwrap_or(src.len.saturating_sub(audio_start));
        m.bit_rate = Some((b as f64 * 8.0 / d).round() as u64);
    } else {
        let mut audio = src.len.saturating_sub(audio_start);
        if src.len >= 128 && src.read_upto(src.len - 128, 3)? == b"TAG" {
            audio = audio.saturating_sub(128);
        }
        m.duration = Some(audio as f64 * 8.0 / (f64::from(f.kbps) * 1000.0));
        m.bit_rate = Some(u64::from(f.kbps) * 1000);
    }
    Ok(())
}

// ---- Ogg ---------------------------------------------------------------------

struct Page {
    htype: u8,
    serial: u32,
    segs: Vec<u8>,
    body: u64,
    end: u64,
}

fn page<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, pos: u64) -> PResult<Page> {
    src.item()?;
    let h = src.read_vec(pos, 27).ctx("page header")?;
    if &h[..4] != b"OggS" {
        return err(format!("no page at byte {pos}"));
    }
    let n = h[26];
    let segs = src.read_vec(pos + 27, usize::from(n)).ctx("page header")?;
    let body_len: u64 = segs.iter().map(|&s| u64::from(s)).sum();
    let body = pos + 27 + u64::from(n);
    Ok(Page {
        htype: h[5],
        serial: io::le32(&h, 14).unwrap_or(0),
        segs,
        body,
        end: body + body_len,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum OggCodec {
    Vorbis,
    Opus { preskip: u16 },
    Flac,
    Speex,
    Theora,
}

struct Stream {
    serial: u32,
    codec: OggCodec,
    rate: u32,
}

pub(crate) fn ogg<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<()> {
    m.format = Some("Ogg".into());
    m.container = Some("Ogg".into());
    let mut streams: Vec<Stream> = Vec::new();
    let mut pos = 0u64;
    // The beginning-of-stream pages: one per logical stream.
    while streams.len() < 16 {
        let p = page(src, pos)?;
        if p.htype & 2 == 0 {
            break;
        }
        let first: u64 = p
            .segs
            .iter()
            .position(|&s| s < 255)
            .map(|i| p.segs[..=i].iter().map(|&s| u64::from(s)).sum())
            .unwrap_or(p.end - p.body);
        let d = src
            .read_vec(p.body, first.min(4096) as usize)
            .ctx("identification header")?;
        if let Some(s) = identify(&d, p.serial, m) {
            streams.push(s);
        }
        pos = p.end;
        if pos >= src.len {
            break;
        }
    }
    let main = streams
        .iter()
        .find(|s| s.codec != OggCodec::Theora)
        .or(streams.first())
        .ok_or_else(|| PErr("no known stream (Vorbis, Opus, FLAC, Speex, Theora)".into()))?;
    let (serial, codec, rate) = (main.serial, main.codec, main.rate);
    if streams.iter().any(|s| s.codec == OggCodec::Theora) {
        m.kind = Kind::Video;
        m.mime = Some("video/ogg".into());
    }

    // The comment packet: the stream's second packet, on the next pages.
    let mut packet = Vec::new();
    let mut pages = 0;
    'pages: while pos < src.len && pages < 64 && packet.len() < OGG_WINDOW {
        pages += 1;
        let p = page(src, pos)?;
        pos = p.end;
        if p.serial != serial {
            continue;
        }
        let mut off = p.body;
        for &s in &p.segs {
            let want = (usize::from(s)).min(OGG_WINDOW - packet.len());
            packet.extend(src.read_vec(off, want).ctx("comment packet")?);
            off += u64::from(s);
            if s < 255 || packet.len() >= OGG_WINDOW {
                break 'pages;
            }
        }
    }
    let comments = match codec {
        OggCodec::Vorbis if packet.starts_with(b"\x03vorbis") => packet.get(7..),
        OggCodec::Opus { .. } if packet.starts_with(b"OpusTags") => packet.get(8..),
        OggCodec::Flac if packet.first().is_some_and(|b| b & 0x7F == 4) => packet.get(4..),
        OggCodec::Speex => packet.get(..),
        _ => None,
    };
    if let Some(c) = comments {
        vorbis_comments(src, c, m)?;
    }

    // Duration: the granule position of the stream's last page.
    if rate > 0 && codec != OggCodec::Theora {
        let start = src.len.saturating_sub(OGG_WINDOW as u64);
        let tail = src.read_vec(start, (src.len - start) as usize)?;
        let mut end = tail.len();
        while let Some(i) = tail[..end].windows(4).rposition(|w| w == b"OggS") {
            end = i;
            let (Some(g), Some(s)) = (io::le64(&tail, i + 6), io::le32(&tail, i + 14)) else {
                continue;
            };
            let g = g as i64;
            if s != serial || g < 0 {
                continue;
            }
            let samples = match codec {
                OggCodec::Opus { preskip } => g - i64::from(preskip),
                _ => g,
            };
            if samples >= 0 {
                m.duration = Some(samples as f64 / f64::from(rate));
            }
            break;
        }
    }
    Ok(())
}

/// The identification header of a stream.
fn identify(d: &[u8], serial: u32, m: &mut Metadata) -> Option<Stream> {
    let (codec, track, rate) = if d.starts_with(b"\x01vorbis") {
        let ch = *d.get(11)?;
        let rate = io::le32(d, 12)?;
        (
            OggCodec::Vorbis,
            ("Vorbis", u16::from(ch), rate, None),
            rate,
        )
    } else if d.starts_with(b"OpusHead") {
        let ch = *d.get(9)?;
        let preskip = io::le16(d, 10)?;
        (
            OggCodec::Opus { preskip },
            ("Opus", u16::from(ch), 48_000, None),
            48_000,
        )
    } else if d.starts_with(b"\x7fFLAC") && io::sub(d, 9, 4) == Some(b"fLaC") {
        let (rate, ch, bits) = streaminfo_format(d.get(17..)?)?;
        (
            OggCodec::Flac,
            ("FLAC", u16::from(ch), rate, Some(bits)),
            rate,
        )
    } else if d.starts_with(b"Speex   ") {
        let rate = io::le32(d, 36)?;
        let ch = io::le32(d, 48)?;
        (
            OggCodec::Speex,
            ("Speex", u16::try_from(ch).ok()?, rate, None),
            rate,
        )
    } else if d.starts_with(b"\x80theora") {
        m.video_codec = Some("Theora".into());
        m.width = io::be24(d, 14);
        m.height = io::be24(d, 17);
        let (n, dn) = (io::be32(d, 22)?, io::be32(d, 26)?);
        if n > 0 && dn > 0 {
            m.frame_rate = Some(f64::from(n) / f64::from(dn));
        }
        return Some(Stream {
            serial,
            codec: OggCodec::Theora,
            rate: 0,
        });
    } else {
        return None;
    };
    let (name, ch, sr, bits) = track;
    if m.audio.len() < crate::MAX_AUDIO_TRACKS {
        m.audio.push(AudioTrack {
            codec: Some(name.into()),
            channels: (ch > 0).then_some(ch),
            sample_rate: (sr > 0).then_some(sr),
            bit_depth: bits,
        });
    }
    Some(Stream {
        serial,
        codec,
        rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpeg_headers() {
        // MPEG-1 layer III, 128 kb/s, 44.1 kHz, stereo
        let f = frame_header(&[0xFF, 0xFB, 0x90, 0x00]).unwrap();
        assert_eq!(
            (f.version, f.layer, f.kbps, f.rate, f.len),
            (1, 3, 128, 44_100, 417)
        );
        assert!(frame_header(&[0xFF, 0xFB, 0xF0, 0x00]).is_none());
        assert!(frame_header(&[0xFF, 0xE9, 0x90, 0x00]).is_none());
    }

    #[test]
    fn extended_float() {
        let r = ext80(&[0x40, 0x0E, 0xBB, 0x80, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(r, 48_000.0);
        assert_eq!(ext80(&[0x7F, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0]), None);
    }
}
