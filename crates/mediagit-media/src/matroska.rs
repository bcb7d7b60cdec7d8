//! Matroska and WebM (EBML): the header's DocType, the Segment's Info
//! (timecode scale, duration, date, title), Tracks (codec, frame size,
//! default frame duration, sampling frequency, channels) and global Tags.
//! Clusters are never read: the walk of the Segment stops at the first
//! one, then follows the SeekHead to Info, Tracks or Tags placed after the
//! clusters. An element of unknown size ends the walk.

use std::io::{Read, Seek};

use crate::io::{self, err, Ctx, PResult, Src};
use crate::{AudioTrack, Kind, Metadata, MAX_AUDIO_TRACKS};

const EBML: u32 = 0x1A45_DFA3;
const DOCTYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const SEEKHEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POS: u32 = 0x53AC;
const INFO: u32 = 0x1549_A966;
const TIMECODE_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const DATE_UTC: u32 = 0x4461;
const TITLE: u32 = 0x7BA9;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const DEFAULT_DURATION: u32 = 0x23_E383;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const AUDIO: u32 = 0xE1;
const SAMPLING_FREQ: u32 = 0xB5;
const CHANNELS: u32 = 0x9F;
const BIT_DEPTH: u32 = 0x6264;
const TAGS: u32 = 0x1254_C367;
const TAG: u32 = 0x7373;
const TARGETS: u32 = 0x63C0;
const TAG_TRACK_UID: u32 = 0x63C5;
const SIMPLE_TAG: u32 = 0x67C8;
const TAG_NAME: u32 = 0x45A3;
const TAG_STRING: u32 = 0x4487;
const CLUSTER: u32 = 0x1F43_B675;

/// Seconds from 1970-01-01 to 2001-01-01 (the Matroska date epoch).
const EPOCH_2001: i64 = 978_307_200;

#[derive(Clone, Copy)]
struct El {
    id: u32,
    data: u64,
    /// `None`: unknown size.
    size: Option<u64>,
    end: u64,
}

fn read_el<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    pos: u64,
    parent_end: u64,
) -> PResult<El> {
    let avail = parent_end.saturating_sub(pos).min(12) as usize;
    let b = src.read_vec(pos, avail).ctx("element header")?;
    let first = *b.first().ok_or_else(|| io::PErr("empty element".into()))?;
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return err(format!("invalid element ID at byte {pos}"));
    }
    let idb = io::sub(&b, 0, id_len)
        .ok_or_else(|| io::PErr(format!("element header truncated at byte {}", src.len)))?;
    let id = idb.iter().fold(0u32, |a, &c| (a << 8) | u32::from(c));
    let s0 = *b
        .get(id_len)
        .ok_or_else(|| io::PErr(format!("element header truncated at byte {}", src.len)))?;
    let size_len = s0.leading_zeros() as usize + 1;
    if size_len > 8 {
        return err(format!("invalid element size at byte {pos}"));
    }
    let sb = io::sub(&b, id_len, size_len)
        .ok_or_else(|| io::PErr(format!("element header truncated at byte {}", src.len)))?;
    let mask = if size_len == 8 { 0 } else { 0xFFu8 >> size_len };
    let mut size = u64::from(sb[0] & mask);
    let mut all_ones = sb[0] & mask == mask;
    for &c in &sb[1..] {
        size = (size << 8) | u64::from(c);
        all_ones &= c == 0xFF;
    }
    let data = pos + (id_len + size_len) as u64;
    if data > parent_end {
        return err(format!("element header at byte {pos} runs past its parent"));
    }
    let (size, end) = if all_ones {
        (None, parent_end)
    } else {
        let end = data.saturating_add(size);
        if end > parent_end {
            src.soft(io::PErr(format!(
                "element {id:X} at byte {pos} extends past the end of {}",
                if parent_end == src.len {
                    "the file (truncated?)"
                } else {
                    "its parent"
                }
            )));
        }
        (Some(size), end.min(parent_end))
    };
    Ok(El {
        id,
        data,
        size,
        end,
    })
}

fn children<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    start: u64,
    end: u64,
    depth: usize,
    mut f: impl FnMut(&mut Src<'_, R>, El, usize) -> PResult<bool>,
) -> PResult<()> {
    src.depth(depth)?;
    let mut pos = start;
    while pos < end {
        src.item()?;
        let e = read_el(src, pos, end)?;
        if !f(src, e, depth + 1)? || e.size.is_none() {
            break;
        }
        pos = e.end;
    }
    Ok(())
}

fn uint<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, e: &El) -> PResult<u64> {
    let n = (e.end - e.data).min(8) as usize;
    let b = src.read_vec(e.data, n)?;
    Ok(b.iter().fold(0u64, |a, &c| (a << 8) | u64::from(c)))
}

fn float<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, e: &El) -> PResult<Option<f64>> {
    Ok(match e.end - e.data {
        4 => Some(f64::from(f32::from_bits(src.be32(e.data)?))),
        8 => Some(f64::from_bits(src.be64(e.data)?)),
        _ => None,
    }
    .filter(|v| v.is_finite()))
}

fn string<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, e: &El) -> PResult<Option<String>> {
    let n = (e.end - e.data).min(4 * io::MAX_TEXT as u64) as usize;
    Ok(io::text(&src.read_vec(e.data, n)?))
}

#[derive(Default)]
struct Track {
    typ: u64,
    codec: Option<String>,
    default_duration: Option<u64>,
    width: Option<u64>,
    height: Option<u64>,
    rate: Option<f64>,
    channels: Option<u64>,
    bits: Option<u64>,
}

#[derive(Default)]
struct St {
    doctype: Option<String>,
    timecode_scale: Option<u64>,
    duration: Option<f64>,
    date: Option<i64>,
    title: Option<String>,
    tracks: Vec<Track>,
    tags: Vec<(String, String)>,
    seen_info: bool,
    seen_tracks: bool,
    seen_tags: bool,
    seek: Vec<(u32, u64)>,
}

pub(crate) fn parse<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    m: &mut Metadata,
    ext: Option<&str>,
) -> PResult<()> {
    let mut st = St::default();
    let res = walk(src, &mut st);
    finish(&st, m, ext);
    res?;
    if !st.seen_tracks && !st.seen_info {
        return err("no Segment Info or Tracks (truncated?)");
    }
    Ok(())
}

fn walk<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, st: &mut St) -> PResult<()> {
    let len = src.len;
    let mut segment = None;
    children(src, 0, len, 0, |src, e, depth| {
        match e.id {
            EBML => children(src, e.data, e.end, depth, |src, c, _| {
                if c.id == DOCTYPE {
                    st.doctype = string(src, &c)?;
                }
                Ok(true)
            })?,
            SEGMENT => {
                segment = Some(e);
                return Ok(false);
            }
            _ => {}
        }
        Ok(true)
    })?;
    let seg = segment.ok_or_else(|| io::PErr("no Segment element".into()))?;
    children(src, seg.data, seg.end, 1, |src, e, depth| {
        match e.id {
            SEEKHEAD => seekhead(src, st, e, depth)?,
            INFO => info(src, st, e, depth)?,
            TRACKS => tracks(src, st, e, depth)?,
            TAGS => tags(src, st, e, depth)?,
            CLUSTER => return Ok(false),
            _ => {}
        }
        Ok(true)
    })?;
    // Elements the SeekHead places after the clusters.
    let targets: Vec<(u32, u64)> = st.seek.clone();
    for (id, rel) in targets {
        let needed = match id {
            INFO => !st.seen_info,
            TRACKS => !st.seen_tracks,
            TAGS => !st.seen_tags,
            _ => false,
        };
        let Some(pos) = seg.data.checked_add(rel) else {
            continue;
        };
        if !needed || pos >= seg.end {
            continue;
        }
        src.item()?;
        let e = read_el(src, pos, seg.end)?;
        if e.id != id {
            continue;
        }
        match id {
            INFO => info(src, st, e, 2)?,
            TRACKS => tracks(src, st, e, 2)?,
            _ => tags(src, st, e, 2)?,
        }
    }
    Ok(())
}

fn seekhead<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    st: &mut St,
    e: El,
    depth: usize,
) -> PResult<()> {
    children(src, e.data, e.end, depth, |src, s, depth| {
        if s.id != SEEK {
            return Ok(true);
        }
        let mut id = None;
        let mut pos = None;
        children(src, s.data, s.end, depth, |src, c, _| {
            match c.id {
                SEEK_ID => id = Some(uint(src, &c)? as u32),
                SEEK_POS => pos = Some(uint(src, &c)?),
                _ => {}
            }
            Ok(true)
        })?;
        if let (Some(id), Some(pos)) = (id, pos) {
            if st.seek.len() < 64 {
                st.seek.push((id, pos));
            }
        }
        Ok(true)
    })
}

fn info<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    st: &mut St,
    e: El,
    depth: usize,
) -> PResult<()> {
    st.seen_info = true;
    children(src, e.data, e.end, depth, |src, c, _| {
        match c.id {
            TIMECODE_SCALE => st.timecode_scale = Some(uint(src, &c)?),
            DURATION => st.duration = float(src, &c)?,
            DATE_UTC => st.date = Some(uint(src, &c)? as i64),
            TITLE => st.title = string(src, &c)?,
            _ => {}
        }
        Ok(true)
    })
}

fn tracks<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    st: &mut St,
    e: El,
    depth: usize,
) -> PResult<()> {
    st.seen_tracks = true;
    children(src, e.data, e.end, depth, |src, t, depth| {
        if t.id != TRACK_ENTRY {
            return Ok(true);
        }
        let mut tr = Track::default();
        let r = children(src, t.data, t.end, depth, |src, c, depth| {
            match c.id {
                TRACK_TYPE => tr.typ = uint(src, &c)?,
                CODEC_ID => tr.codec = string(src, &c)?,
                DEFAULT_DURATION => tr.default_duration = Some(uint(src, &c)?),
                VIDEO => children(src, c.data, c.end, depth, |src, v, _| {
                    match v.id {
                        PIXEL_WIDTH => tr.width = Some(uint(src, &v)?),
                        PIXEL_HEIGHT => tr.height = Some(uint(src, &v)?),
                        _ => {}
                    }
                    Ok(true)
                })?,
                AUDIO => children(src, c.data, c.end, depth, |src, a, _| {
                    match a.id {
                        SAMPLING_FREQ => tr.rate = float(src, &a)?,
                        CHANNELS => tr.channels = Some(uint(src, &a)?),
                        BIT_DEPTH => tr.bits = Some(uint(src, &a)?),
                        _ => {}
                    }
                    Ok(true)
                })?,
                _ => {}
            }
            Ok(true)
        });
        if st.tracks.len() < 128 {
            st.tracks.push(tr);
        }
        r.map(|_| true)
    })
}

fn tags<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    st: &mut St,
    e: El,
    depth: usize,
) -> PResult<()> {
    st.seen_tags = true;
    children(src, e.data, e.end, depth, |src, tag, depth| {
        if tag.id != TAG {
            return Ok(true);
        }
        let mut global = true;
        let mut found: Vec<(String, String)> = Vec::new();
        children(src, tag.data, tag.end, depth, |src, c, depth| {
            match c.id {
                TARGETS => children(src, c.data, c.end, depth, |_, t, _| {
                    if t.id == TAG_TRACK_UID {
                        global = false;
                    }
                    Ok(true)
                })?,
                SIMPLE_TAG => {
                    let mut name = None;
                    let mut value = None;
                    children(src, c.data, c.end, depth, |src, s, _| {
                        match s.id {
                            TAG_NAME => name = string(src, &s)?,
                            TAG_STRING => value = string(src, &s)?,
                            _ => {}
                        }
                        Ok(true)
                    })?;
                    if let (Some(n), Some(v)) = (name, value) {
                        if found.len() < 64 {
                            found.push((n.to_ascii_uppercase(), v));
                        }
                    }
                }
                _ => {}
            }
            Ok(true)
        })?;
        if global && st.tags.len() < 256 {
            st.tags.extend(found);
        }
        Ok(true)
    })
}

fn codec_name(id: &str) -> String {
    let n = match id {
        "V_MPEG4/ISO/AVC" => "H.264",
        "V_MPEGH/ISO/HEVC" => "HEVC",
        "V_VP8" => "VP8",
        "V_VP9" => "VP9",
        "V_AV1" => "AV1",
        "V_PRORES" => "ProRes",
        "V_MPEG2" => "MPEG-2",
        "V_MPEG1" => "MPEG-1",
        "V_MJPEG" => "Motion JPEG",
        "V_THEORA" => "Theora",
        "V_FFV1" => "FFV1",
        "V_UNCOMPRESSED" => "raw video",
        "A_OPUS" => "Opus",
        "A_VORBIS" => "Vorbis",
        "A_FLAC" => "FLAC",
        "A_MPEG/L3" => "MP3",
        "A_MPEG/L2" => "MP2",
        "A_AC3" => "AC-3",
        "A_EAC3" => "E-AC-3",
        "A_DTS" => "DTS",
        "A_TRUEHD" => "TrueHD",
        "A_ALAC" => "ALAC",
        "A_PCM/FLOAT/IEEE" => "PCM float",
        _ if id.starts_with("A_AAC") => "AAC",
        _ if id.starts_with("A_PCM/") => "PCM",
        _ if id.starts_with("V_MPEG4/ISO/") => "MPEG-4 Visual",
        _ if id.starts_with("V_MS/") => "VfW",
        _ => return id.to_string(),
    };
    n.to_string()
}

fn finish(st: &St, m: &mut Metadata, ext: Option<&str>) {
    let webm = st.doctype.as_deref() == Some("webm");
    let mut video = false;
    for t in &st.tracks {
        match t.typ {
            1 if !video => {
                video = true;
                m.video_codec = t.codec.as_deref().map(codec_name);
                m.width = t.width.and_then(|w| u32::try_from(w).ok());
                m.height = t.height.and_then(|h| u32::try_from(h).ok());
                m.frame_rate = t
                    .default_duration
                    .filter(|&d| d > 0)
                    .map(|d| 1e9 / d as f64);
            }
            2 if m.audio.len() < MAX_AUDIO_TRACKS => m.audio.push(AudioTrack {
                codec: t.codec.as_deref().map(codec_name),
                channels: Some(t.channels.unwrap_or(1))
                    .and_then(|c| u16::try_from(c).ok())
                    .filter(|&c| c > 0),
                sample_rate: t
                    .rate
                    .filter(|r| *r >= 1.0 && *r < 1e7)
                    .map(|r| r.round() as u32),
                bit_depth: t
                    .bits
                    .and_then(|b| u16::try_from(b).ok())
                    .filter(|&b| b > 0),
            }),
            _ => {}
        }
    }
    let scale = st.timecode_scale.unwrap_or(1_000_000) as f64;
    m.duration = st
        .duration
        .map(|d| d * scale / 1e9)
        .filter(|d| d.is_finite() && *d >= 0.0);
    m.created = st
        .date
        .and_then(|ns| io::iso_utc(ns.div_euclid(1_000_000_000).saturating_add(EPOCH_2001)));
    m.title = st.title.clone();
    for (k, v) in &st.tags {
        let slot = match k.as_str() {
            "TITLE" => &mut m.title,
            "ARTIST" => &mut m.artist,
            "ALBUM" => &mut m.album,
            _ => continue,
        };
        if slot.is_none() {
            *slot = io::clean(v);
        }
    }
    let audio_ext = matches!(ext, Some("mka") | Some("weba"));
    m.kind = if video || (!audio_ext && m.audio.is_empty()) {
        Kind::Video
    } else {
        Kind::Audio
    };
    let (format, mime) = match (webm, m.kind) {
        (true, Kind::Video) => ("WebM", "video/webm"),
        (true, _) => ("WebM", "audio/webm"),
        (false, Kind::Video) => ("Matroska", "video/x-matroska"),
        (false, _) => ("Matroska", "audio/x-matroska"),
    };
    m.format = Some(format.into());
    m.container = Some(format.into());
    m.mime = Some(mime.into());
}
