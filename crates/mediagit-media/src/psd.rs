//! Photoshop documents (PSD, and PSB with its 64-bit lengths): the header
//! (size, channels, depth, colour mode) and the layer records (name from
//! the Unicode `luni` block or the Pascal name, visibility from flag bit 1,
//! which is set on hidden layers). Colour mode data and image resources are
//! skipped by their lengths; channel image data is never read.

use std::io::{Read, Seek};

use crate::io::{self, err, Ctx, PErr, PResult, Src};
use crate::{Layer, Metadata, MAX_LAYERS};

/// Additional-layer-information keys whose length is 64-bit in PSB files.
const PSB_LONG_KEYS: &[&[u8; 4]] = &[
    b"LMsk", b"Lr16", b"Lr32", b"Layr", b"Mt16", b"Mt32", b"Mtrn", b"Alph", b"FMsk", b"lnk2",
    b"FEid", b"FXid", b"PxSD",
];

fn mode_name(mode: u16) -> String {
    match mode {
        0 => "Bitmap".into(),
        1 => "Grayscale".into(),
        2 => "Indexed".into(),
        3 => "RGB".into(),
        4 => "CMYK".into(),
        7 => "Multichannel".into(),
        8 => "Duotone".into(),
        9 => "Lab".into(),
        n => format!("mode {n}"),
    }
}

struct Psd {
    big: bool,
}

impl Psd {
    /// A section length: 4 bytes, 8 in PSB.
    fn len<R: Read + Seek + ?Sized>(&self, src: &mut Src<'_, R>, pos: u64) -> PResult<(u64, u64)> {
        if self.big {
            Ok((src.be64(pos)?, 8))
        } else {
            Ok((u64::from(src.be32(pos)?), 4))
        }
    }
}

pub(crate) fn parse<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    m: &mut Metadata,
) -> PResult<()> {
    let h = src.read_vec(0, 26).ctx("header")?;
    let version = io::be16(&h, 4).unwrap_or(0);
    let big = match version {
        1 => false,
        2 => true,
        v => return err(format!("unknown version {v}")),
    };
    m.format = Some(if big { "PSB" } else { "PSD" }.into());
    let channels = io::be16(&h, 12).unwrap_or(0);
    m.height = io::be32(&h, 14);
    m.width = io::be32(&h, 18);
    m.bit_depth = io::be16(&h, 22);
    let mode = io::be16(&h, 24).unwrap_or(0);
    m.color_mode = Some(mode_name(mode));
    m.color_space = match (mode, channels) {
        (3, 4..) => Some("RGBA".to_string()),
        (3, _) => Some("RGB".to_string()),
        (4, _) => Some("CMYK".to_string()),
        (1, _) => Some("grayscale".to_string()),
        (2, _) => Some("palette".to_string()),
        (9, _) => Some("Lab".to_string()),
        _ => None,
    };
    let p = Psd { big };
    // Colour mode data and image resources: 4-byte lengths in both versions.
    let cm = u64::from(src.be32(26).ctx("colour mode section")?);
    let res_pos = 30u64.saturating_add(cm);
    let res = u64::from(src.be32(res_pos).ctx("image resources section")?);
    let lm_pos = res_pos.saturating_add(4).saturating_add(res);
    let (lm_len, n) = p.len(src, lm_pos).ctx("layer and mask section")?;
    if lm_len == 0 {
        return Ok(());
    }
    let lm_start = lm_pos + n;
    let lm_end = lm_start.saturating_add(lm_len);
    if lm_end > src.len {
        src.soft(PErr(
            "layer and mask section extends past the end of the file".into(),
        ));
    }
    let lm_end = lm_end.min(src.len);
    let (li_len, n) = p.len(src, lm_start).ctx("layer info")?;
    let li_start = lm_start + n;
    if li_len > 0 {
        return layer_info(
            src,
            &p,
            m,
            li_start,
            li_start.saturating_add(li_len).min(lm_end),
        );
    }
    // 16- and 32-bit documents keep their layers in an `Lr16`/`Lr32` block
    // after the global layer mask info.
    let gm = u64::from(src.be32(li_start).ctx("global layer mask info")?);
    let mut pos = li_start.saturating_add(4).saturating_add(gm);
    while pos.saturating_add(12) <= lm_end {
        src.item()?;
        let b = src.read_vec(pos, 8).ctx("additional layer information")?;
        if &b[..4] != b"8BIM" && &b[..4] != b"8B64" {
            break;
        }
        let key: [u8; 4] = [b[4], b[5], b[6], b[7]];
        let (len, n) = if big && PSB_LONG_KEYS.contains(&&key) {
            (src.be64(pos + 8)?, 8)
        } else {
            (u64::from(src.be32(pos + 8)?), 4)
        };
        let data = pos + 8 + n;
        if matches!(&key, b"Lr16" | b"Lr32" | b"Layr") {
            return layer_info(src, &p, m, data, data.saturating_add(len).min(lm_end));
        }
        pos = data.saturating_add(len);
        pos = pos.saturating_add(pos & 1);
    }
    Ok(())
}

fn layer_info<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    p: &Psd,
    m: &mut Metadata,
    start: u64,
    end: u64,
) -> PResult<()> {
    let count = src.be16(start).ctx("layer count")? as i16;
    let count = count.unsigned_abs();
    let mut pos = start + 2;
    let mut shown = 0u32;
    let chan_entry: u64 = if p.big { 10 } else { 6 };
    for i in 0..count {
        src.item()?;
        let what = format!("layer record {}", i + 1);
        if pos >= end {
            return err(format!("{what} is past the end of the layer info"));
        }
        let r = src.read_vec(pos, 18).ctx(&what)?;
        let nch = u64::from(io::be16(&r, 16).unwrap_or(0));
        let blend = pos.saturating_add(18 + nch * chan_entry);
        let b = src.read_vec(blend, 16).ctx(&what)?;
        if &b[..4] != b"8BIM" {
            return err(format!("{what}: bad blend mode signature"));
        }
        let flags = b[10];
        let extra_len = u64::from(io::be32(&b, 12).unwrap_or(0));
        let extra = blend + 16;
        let extra_end = extra.saturating_add(extra_len);
        if extra_end > end {
            return err(format!("{what} runs past the end of the layer info"));
        }
        // Layer mask data, blending ranges, then the Pascal name.
        let mask = u64::from(src.be32(extra).ctx(&what)?);
        let ranges_pos = extra.saturating_add(4).saturating_add(mask);
        let ranges = u64::from(src.be32(ranges_pos).ctx(&what)?);
        let name_pos = ranges_pos.saturating_add(4).saturating_add(ranges);
        let name_len = u64::from(src.u8(name_pos).ctx(&what)?);
        let pascal = if name_len > 0 {
            io::text(&src.read_vec(name_pos + 1, name_len as usize).ctx(&what)?)
        } else {
            None
        };
        let mut name = pascal;
        let mut divider = false;
        // Additional layer information blocks (padded to 4 bytes with the
        // name) up to the end of the record.
        let mut q = name_pos + (1 + name_len).div_ceil(4) * 4;
        while q.saturating_add(12) <= extra_end {
            src.item()?;
            let t = src.read_vec(q, 8).ctx(&what)?;
            if &t[..4] != b"8BIM" && &t[..4] != b"8B64" {
                break;
            }
            let key: [u8; 4] = [t[4], t[5], t[6], t[7]];
            let (len, n) = if p.big && PSB_LONG_KEYS.contains(&&key) {
                (src.be64(q + 8).ctx(&what)?, 8)
            } else {
                (u64::from(src.be32(q + 8).ctx(&what)?), 4)
            };
            let data = q + 8 + n;
            match &key {
                b"luni" if len >= 4 => {
                    let chars = u64::from(src.be32(data).ctx(&what)?);
                    let bytes = chars
                        .saturating_mul(2)
                        .min(len - 4)
                        .min(4 * io::MAX_TEXT as u64);
                    let u = src.read_vec(data + 4, bytes as usize).ctx(&what)?;
                    if let Some(n) = io::utf16(&u, true) {
                        name = Some(n);
                    }
                }
                b"lsct" if len >= 4 => {
                    divider = src.be32(data).ctx(&what)? == 3;
                }
                _ => {}
            }
            q = data.saturating_add(len);
        }
        // A group's closing marker ("</Layer group>") is not a layer.
        if !divider {
            shown += 1;
            if m.layers.len() < MAX_LAYERS {
                m.layers.push(Layer {
                    name: name.unwrap_or_default(),
                    visible: flags & 2 == 0,
                });
            }
        }
        m.layer_count = Some(shown);
        pos = extra_end;
    }
    m.layer_count = Some(shown);
    Ok(())
}
