//! Still images: JPEG (marker walk up to the first scan), PNG (chunks up to
//! the first IDAT), WebP (RIFF chunks), GIF and BMP (fixed headers). EXIF
//! blocks are handed to the TIFF parser; a damaged EXIF block is reported
//! but does not lose the image size.

use std::io::{Read, Seek};

use crate::io::{self, err, Ctx, PResult, Src};
use crate::tiff::{icc_description, parse_tiff};
use crate::Metadata;

fn set_structural(m: &mut Metadata, cs: Option<&str>) {
    if m.color_space.is_none() {
        m.color_space = cs.map(str::to_string);
    }
}

/// An EXIF block at `off` (`len` bytes), with or without the "Exif\0\0"
/// prefix; problems are recorded as soft errors.
fn exif_block<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata, off: u64, len: u64) {
    let end = off.saturating_add(len);
    let mut base = off;
    if let Ok(p) = src.read_upto(off, 6) {
        if p == b"Exif\0\0" {
            base = off + 6;
        }
    }
    if let Err(e) = parse_tiff(src, m, base, end, false, 1) {
        src.soft(io::PErr(format!("EXIF: {}", e.0)));
    }
}

pub(crate) fn jpeg<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<()> {
    m.format = Some("JPEG".into());
    let mut pos = 2u64;
    let mut sof = false;
    let mut components = None;
    loop {
        src.item()?;
        let mk = src.array::<2>(pos).ctx("marker")?;
        if mk[0] != 0xFF {
            return err(format!("no marker at byte {pos}"));
        }
        let marker = mk[1];
        if marker == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            pos += 2;
            continue;
        }
        if marker == 0xD9 || marker == 0xDA {
            break;
        }
        let seg_len = u64::from(src.be16(pos + 2).ctx("segment header")?);
        if seg_len < 2 {
            return err(format!("bad segment length at byte {pos}"));
        }
        let data = pos + 4;
        let data_len = seg_len - 2;
        match marker {
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                let b = src.array::<6>(data).ctx("SOF segment")?;
                m.bit_depth = Some(u16::from(b[0]));
                m.height = Some(u32::from(u16::from_be_bytes([b[1], b[2]])));
                m.width = Some(u32::from(u16::from_be_bytes([b[3], b[4]])));
                components = Some(b[5]);
                sof = true;
            }
            0xE1 if data_len > 6 && src.read_upto(data, 6)? == b"Exif\0\0" => {
                exif_block(src, m, data, data_len);
            }
            0xE2 if data_len > 14 => {
                // ICC_PROFILE\0, sequence number, count; a profile split
                // over several segments is read from its first one only.
                let h = src.read_upto(data, 14)?;
                if h.starts_with(b"ICC_PROFILE\0") && h.get(12) == Some(&1) {
                    if let Some(d) = icc_description(src, data + 14, data_len - 14) {
                        m.color_space = Some(d);
                    }
                }
            }
            _ => {}
        }
        pos = data + data_len;
    }
    if !sof {
        return err("no frame header (SOF) before the scan");
    }
    set_structural(
        m,
        match components {
            Some(1) => Some("grayscale"),
            Some(3) => Some("YCbCr"),
            Some(4) => Some("CMYK"),
            _ => None,
        },
    );
    Ok(())
}

pub(crate) fn png<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<()> {
    m.format = Some("PNG".into());
    let mut pos = 8u64;
    let mut first = true;
    let mut layout = None;
    loop {
        src.item()?;
        if pos >= src.len && !first {
            return err("no IDAT chunk (truncated?)");
        }
        let h = src.array::<8>(pos).ctx("chunk header")?;
        let len = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
        let typ = [h[4], h[5], h[6], h[7]];
        if len > 0x7FFF_FFFF {
            return err(format!("chunk length {len} at byte {pos} is invalid"));
        }
        let data = pos + 8;
        if first {
            if &typ != b"IHDR" || len < 13 {
                return err("first chunk is not IHDR");
            }
            let b = src.array::<13>(data).ctx("IHDR chunk")?;
            m.width = Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            m.height = Some(u32::from_be_bytes([b[4], b[5], b[6], b[7]]));
            m.bit_depth = Some(u16::from(b[8]));
            layout = match b[9] {
                0 => Some("grayscale"),
                2 => Some("RGB"),
                3 => Some("palette"),
                4 => Some("grayscale+alpha"),
                6 => Some("RGBA"),
                _ => None,
            };
            m.color_space = layout.map(str::to_string);
            first = false;
        }
        match &typ {
            b"IDAT" | b"IEND" => break,
            b"eXIf" => {
                exif_block(src, m, data, len);
                // A PNG's colour space is its pixel layout (EXIF writers
                // add a generic "uncalibrated").
                m.color_space = layout.map(str::to_string);
            }
            b"acTL" => m.format = Some("APNG".into()),
            b"tEXt" | b"iTXt" if m.taken.is_none() => {
                let d = src.read_vec(data, len.min(512) as usize)?;
                if let Some(date) = png_creation_time(&typ, &d) {
                    m.taken = Some(date);
                }
            }
            _ => {}
        }
        pos = data
            .checked_add(len)
            .and_then(|p| p.checked_add(4))
            .ok_or_else(|| io::PErr("chunk offset overflow".into()))?;
    }
    Ok(())
}

/// The "Creation Time" text chunk, when it holds an ISO or EXIF date.
fn png_creation_time(typ: &[u8; 4], d: &[u8]) -> Option<String> {
    let nul = d.iter().position(|&c| c == 0)?;
    if &d[..nul] != b"Creation Time" {
        return None;
    }
    let rest = &d[nul + 1..];
    let value = if typ == b"iTXt" {
        // compression flag, method, language\0, translated keyword\0
        if rest.first() != Some(&0) {
            return None;
        }
        let r = rest.get(2..)?;
        let l = r.iter().position(|&c| c == 0)?;
        let r = r.get(l + 1..)?;
        let t = r.iter().position(|&c| c == 0)?;
        r.get(t + 1..)?
    } else {
        rest
    };
    io::exif_date(&io::text(value)?)
}

pub(crate) fn gif<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<()> {
    m.format = Some("GIF".into());
    let b = src.array::<11>(0).ctx("header")?;
    m.width = Some(u32::from(u16::from_le_bytes([b[6], b[7]])));
    m.height = Some(u32::from(u16::from_le_bytes([b[8], b[9]])));
    m.color_space = Some("palette".into());
    Ok(())
}

pub(crate) fn bmp<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<()> {
    m.format = Some("BMP".into());
    let b = src.read_vec(0, 30).ctx("header")?;
    let hs = io::le32(&b, 14).unwrap_or(0);
    if hs == 12 {
        m.width = io::le16(&b, 18).map(u32::from);
        m.height = io::le16(&b, 20).map(u32::from);
        m.bit_depth = io::le16(&b, 24);
    } else {
        m.width = io::le32(&b, 18).map(|w| (w as i32).unsigned_abs());
        m.height = io::le32(&b, 22).map(|h| (h as i32).unsigned_abs());
        m.bit_depth = io::le16(&b, 28);
    }
    Ok(())
}

pub(crate) fn webp<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, m: &mut Metadata) -> PResult<()> {
    m.format = Some("WebP".into());
    let riff = u64::from(src.le32(4)?);
    let end = riff.saturating_add(8).min(src.len);
    let mut pos = 12u64;
    let mut canvas = false;
    let mut found = false;
    while pos.saturating_add(8) <= end {
        src.item()?;
        let h = src.array::<8>(pos).ctx("chunk header")?;
        let len = u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
        let data = pos + 8;
        match &h[..4] {
            b"VP8X" => {
                let b = src.array::<10>(data).ctx("VP8X chunk")?;
                m.width = io::le24(&b, 4).map(|w| w + 1);
                m.height = io::le24(&b, 7).map(|h| h + 1);
                m.color_space = Some(if b[0] & 0x10 != 0 { "RGBA" } else { "RGB" }.into());
                canvas = true;
                found = true;
            }
            b"VP8 " => {
                let b = src.array::<10>(data).ctx("VP8 chunk")?;
                if b[3..6] != [0x9D, 0x01, 0x2A] {
                    return err("bad VP8 frame header");
                }
                if !canvas {
                    m.width = io::le16(&b, 6).map(|w| u32::from(w & 0x3FFF));
                    m.height = io::le16(&b, 8).map(|h| u32::from(h & 0x3FFF));
                    m.color_space = Some("RGB".into());
                }
                found = true;
            }
            b"VP8L" => {
                let b = src.array::<5>(data).ctx("VP8L chunk")?;
                if b[0] != 0x2F {
                    return err("bad VP8L signature");
                }
                let bits = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
                if !canvas {
                    m.width = Some((bits & 0x3FFF) + 1);
                    m.height = Some(((bits >> 14) & 0x3FFF) + 1);
                    m.color_space = Some(if bits & (1 << 28) != 0 { "RGBA" } else { "RGB" }.into());
                }
                found = true;
            }
            b"ANIM" => m.format = Some("WebP (animated)".into()),
            b"EXIF" => exif_block(src, m, data, len),
            b"ICCP" => {
                if let Some(d) = icc_description(src, data, len) {
                    m.color_space = Some(d);
                }
            }
            _ => {}
        }
        pos = data.saturating_add(len).saturating_add(len & 1);
    }
    if !found {
        return err("no image chunk (truncated?)");
    }
    m.bit_depth = Some(8);
    Ok(())
}
