//! TIFF structures: TIFF files (and the TIFF-based camera RAW formats: DNG,
//! CR2, NEF, ARW...), and the EXIF blocks embedded in JPEG, PNG, WebP and
//! HEIF files, which are TIFF structures too. IFD0 (make, model, size,
//! orientation), the EXIF sub-IFD (exposure, aperture, ISO, date taken,
//! lens, colour space), the GPS IFD and, for RAW files, the SubIFDs (where
//! the full-size image is described). Also the ICC profile description.

use std::io::{Read, Seek};

use crate::io::{self, err, text, PResult, Src};
use crate::{Gps, Metadata};

/// Where a TIFF structure lies: its header at `base` (offsets are relative
/// to it), nothing of it past `end`.
pub(crate) struct Tiff {
    le: bool,
    big: bool,
    base: u64,
    end: u64,
}

#[derive(Clone, Copy)]
struct Entry {
    tag: u16,
    typ: u16,
    count: u64,
    /// The value/offset field (4 bytes, 8 in BigTIFF).
    val: [u8; 8],
}

impl Tiff {
    fn u16(&self, b: &[u8], o: usize) -> Option<u16> {
        if self.le {
            io::le16(b, o)
        } else {
            io::be16(b, o)
        }
    }
    fn u32(&self, b: &[u8], o: usize) -> Option<u32> {
        if self.le {
            io::le32(b, o)
        } else {
            io::be32(b, o)
        }
    }
    fn u64(&self, b: &[u8], o: usize) -> Option<u64> {
        if self.le {
            io::le64(b, o)
        } else {
            io::be64(b, o)
        }
    }
    fn inline_len(&self) -> u64 {
        if self.big {
            8
        } else {
            4
        }
    }
    /// The offset stored in an entry's value field.
    fn offset(&self, e: &Entry) -> u64 {
        if self.big {
            self.u64(&e.val, 0).unwrap_or(0)
        } else {
            self.u32(&e.val, 0).map(u64::from).unwrap_or(0)
        }
    }

    /// Reads `n` bytes at offset `rel` of the TIFF structure.
    fn read<R: Read + Seek + ?Sized>(
        &self,
        src: &mut Src<'_, R>,
        rel: u64,
        n: usize,
    ) -> PResult<Vec<u8>> {
        let abs = self
            .base
            .checked_add(rel)
            .filter(|a| a.checked_add(n as u64).is_some_and(|e| e <= self.end))
            .ok_or_else(|| io::PErr(format!("offset {rel} outside the TIFF data")))?;
        src.read_vec(abs, n)
    }

    /// An entry's value bytes (at most `max`).
    fn bytes<R: Read + Seek + ?Sized>(
        &self,
        src: &mut Src<'_, R>,
        e: &Entry,
        max: usize,
    ) -> PResult<Vec<u8>> {
        let size = type_size(e.typ).saturating_mul(e.count);
        let n = size.min(max as u64) as usize;
        if size <= self.inline_len() {
            return Ok(e.val.get(..n).unwrap_or_default().to_vec());
        }
        self.read(src, self.offset(e), n)
    }

    /// The first value of an integer entry.
    fn uint<R: Read + Seek + ?Sized>(
        &self,
        src: &mut Src<'_, R>,
        e: &Entry,
    ) -> PResult<Option<u64>> {
        let b = self.bytes(src, e, 8)?;
        Ok(match e.typ {
            1 | 7 => b.first().map(|&v| u64::from(v)),
            3 => self.u16(&b, 0).map(u64::from),
            4 | 13 => self.u32(&b, 0).map(u64::from),
            16 | 18 => self.u64(&b, 0),
            _ => None,
        })
    }

    /// Up to `n` (numerator, denominator) pairs of a RATIONAL entry.
    fn rationals<R: Read + Seek + ?Sized>(
        &self,
        src: &mut Src<'_, R>,
        e: &Entry,
        n: usize,
    ) -> PResult<Vec<(u32, u32)>> {
        if e.typ != 5 && e.typ != 10 {
            return Ok(Vec::new());
        }
        let b = self.bytes(src, e, 8 * n)?;
        Ok(b.chunks_exact(8)
            .filter_map(|c| Some((self.u32(c, 0)?, self.u32(c, 4)?)))
            .collect())
    }

    fn ascii<R: Read + Seek + ?Sized>(
        &self,
        src: &mut Src<'_, R>,
        e: &Entry,
    ) -> PResult<Option<String>> {
        if e.typ != 2 && e.typ != 7 && e.typ != 1 {
            return Ok(None);
        }
        Ok(text(&self.bytes(src, e, 512)?))
    }

    /// Visits the entries of the IFD at `off`; returns the next IFD's offset.
    fn walk<R: Read + Seek + ?Sized>(
        &self,
        src: &mut Src<'_, R>,
        off: u64,
        depth: usize,
        mut f: impl FnMut(&mut Src<'_, R>, &Entry) -> PResult<()>,
    ) -> PResult<u64> {
        src.depth(depth)?;
        let (count_len, esize) = if self.big { (8u64, 20u64) } else { (2, 12) };
        let head = self.read(src, off, count_len as usize)?;
        let n = if self.big {
            self.u64(&head, 0)
        } else {
            self.u16(&head, 0).map(u64::from)
        }
        .unwrap_or(0);
        let table = off.saturating_add(count_len);
        let table_len = n.saturating_mul(esize);
        if self.base.saturating_add(table).saturating_add(table_len) > self.end {
            return err(format!(
                "IFD at offset {off} declares {n} entries past the end of the data"
            ));
        }
        let mut i = 0u64;
        while i < n {
            let batch = (n - i).min(32);
            let buf = self.read(src, table + i * esize, (batch * esize) as usize)?;
            for c in buf.chunks_exact(esize as usize) {
                src.item()?;
                let mut val = [0u8; 8];
                let e = if self.big {
                    val.copy_from_slice(c.get(12..20).unwrap_or(&[0; 8]));
                    Entry {
                        tag: self.u16(c, 0).unwrap_or(0),
                        typ: self.u16(c, 2).unwrap_or(0),
                        count: self.u64(c, 4).unwrap_or(0),
                        val,
                    }
                } else {
                    val[..4].copy_from_slice(c.get(8..12).unwrap_or(&[0; 4]));
                    Entry {
                        tag: self.u16(c, 0).unwrap_or(0),
                        typ: self.u16(c, 2).unwrap_or(0),
                        count: self.u32(c, 4).map(u64::from).unwrap_or(0),
                        val,
                    }
                };
                f(src, &e)?;
            }
            i += batch;
        }
        // The next-IFD link; a missing one ends the chain.
        let next = self
            .read(src, table + table_len, if self.big { 8 } else { 4 })
            .ok()
            .and_then(|b| {
                if self.big {
                    self.u64(&b, 0)
                } else {
                    self.u32(&b, 0).map(u64::from)
                }
            })
            .unwrap_or(0);
        Ok(next)
    }
}

fn type_size(typ: u16) -> u64 {
    match typ {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16 | 17 | 18 => 8,
        _ => 1,
    }
}

/// One image described by an IFD.
#[derive(Default, Clone, Copy)]
struct Img {
    w: Option<u32>,
    h: Option<u32>,
    bits: Option<u16>,
    photometric: Option<u16>,
    samples: Option<u16>,
    subfile: u32,
}

/// What the IFDs held.
#[derive(Default)]
struct Found {
    make: Option<String>,
    model: Option<String>,
    lens: Option<String>,
    date: Option<String>,
    date_original: Option<String>,
    orientation: Option<u16>,
    exposure: Option<(u32, u32)>,
    f_number: Option<(u32, u32)>,
    iso: Option<u32>,
    color_space: Option<u16>,
    interop_index: Option<String>,
    icc: Option<(u64, u64)>,
    dng: bool,
    imgs: Vec<Img>,
    gps_lat: Option<Vec<(u32, u32)>>,
    gps_lon: Option<Vec<(u32, u32)>>,
    gps_alt: Option<(u64, (u32, u32))>,
    lat_ref: Option<String>,
    lon_ref: Option<String>,
}

const MAX_IMGS: usize = 16;

/// Parses the TIFF structure whose header is at `base`, not extending past
/// `end`, into `m`. `as_file`: a TIFF or RAW file (image size, pixel layout
/// and SubIFDs are read); otherwise an embedded EXIF block, whose IFD0 size
/// tags are ignored (the container's own header is authoritative).
pub(crate) fn parse_tiff<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    m: &mut Metadata,
    base: u64,
    end: u64,
    as_file: bool,
    depth: usize,
) -> PResult<()> {
    let mut found = Found::default();
    let res = parse_into(src, &mut found, base, end, as_file, depth);
    apply(src, &found, m);
    res
}

fn parse_into<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    found: &mut Found,
    base: u64,
    end: u64,
    as_file: bool,
    depth: usize,
) -> PResult<()> {
    let end = end.min(src.len);
    let hdr = src.read_vec(base, 16.min(end.saturating_sub(base)) as usize)?;
    let le = match io::sub(&hdr, 0, 2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return err("not a TIFF header"),
    };
    let mut t = Tiff {
        le,
        big: false,
        base,
        end,
    };
    let ifd0 = match t.u16(&hdr, 2) {
        // 42; ORF (0x4F52, 0x5352) and RW2 (0x55) use other magic numbers
        // for the same structure.
        Some(42 | 0x4F52 | 0x5352 | 0x55) => t.u32(&hdr, 4).map(u64::from),
        Some(43) => {
            t.big = true;
            t.u64(&hdr, 8)
        }
        _ => return err("not a TIFF header"),
    }
    .ok_or_else(|| io::PErr("TIFF header truncated".into()))?;

    let mut exif_ifd = None;
    let mut gps_ifd = None;
    let mut sub_ifds: Vec<u64> = Vec::new();
    let mut img = Img::default();
    t.walk(src, ifd0, depth, |src, e| {
        match e.tag {
            0xFE => img.subfile = t.uint(src, e)?.unwrap_or(0) as u32,
            0x100 => img.w = t.uint(src, e)?.and_then(|v| u32::try_from(v).ok()),
            0x101 => img.h = t.uint(src, e)?.and_then(|v| u32::try_from(v).ok()),
            0x102 => img.bits = t.uint(src, e)?.and_then(|v| u16::try_from(v).ok()),
            0x106 => img.photometric = t.uint(src, e)?.and_then(|v| u16::try_from(v).ok()),
            0x115 => img.samples = t.uint(src, e)?.and_then(|v| u16::try_from(v).ok()),
            0x10F => found.make = t.ascii(src, e)?,
            0x110 => found.model = t.ascii(src, e)?,
            0x112 => found.orientation = t.uint(src, e)?.and_then(|v| u16::try_from(v).ok()),
            0x132 => found.date = t.ascii(src, e)?,
            0x14A if as_file => {
                let n = e.count.min(8) as usize;
                let b = t.bytes(src, e, n * 8)?;
                let step = if e.typ == 16 || e.typ == 18 { 8 } else { 4 };
                for i in 0..n {
                    let v = if step == 8 {
                        t.u64(&b, i * 8)
                    } else {
                        t.u32(&b, i * 4).map(u64::from)
                    };
                    sub_ifds.extend(v);
                }
            }
            0x8769 => exif_ifd = t.uint(src, e)?,
            0x8825 => gps_ifd = t.uint(src, e)?,
            0x8773 if e.count > 0 => {
                found.icc = Some((t.base.saturating_add(t.offset(e)), e.count));
            }
            0xC612 => found.dng = true,
            _ => {}
        }
        Ok(())
    })?;
    found.imgs.push(img);

    if as_file {
        for off in sub_ifds {
            let mut img = Img::default();
            let r = t.walk(src, off, depth + 1, |src, e| {
                match e.tag {
                    0xFE => img.subfile = t.uint(src, e)?.unwrap_or(0) as u32,
                    0x100 => img.w = t.uint(src, e)?.and_then(|v| u32::try_from(v).ok()),
                    0x101 => img.h = t.uint(src, e)?.and_then(|v| u32::try_from(v).ok()),
                    0x102 => img.bits = t.uint(src, e)?.and_then(|v| u16::try_from(v).ok()),
                    0x106 => img.photometric = t.uint(src, e)?.and_then(|v| u16::try_from(v).ok()),
                    _ => {}
                }
                Ok(())
            });
            if found.imgs.len() < MAX_IMGS {
                found.imgs.push(img);
            }
            if let Err(e) = r {
                src.soft(e);
            }
        }
    }

    let mut interop_ifd = None;
    if let Some(off) = exif_ifd {
        t.walk(src, off, depth + 1, |src, e| {
            match e.tag {
                0x829A => found.exposure = t.rationals(src, e, 1)?.first().copied(),
                0x829D => found.f_number = t.rationals(src, e, 1)?.first().copied(),
                0x8827 => found.iso = t.uint(src, e)?.and_then(|v| u32::try_from(v).ok()),
                0x9003 => found.date_original = t.ascii(src, e)?,
                0xA001 => found.color_space = t.uint(src, e)?.and_then(|v| u16::try_from(v).ok()),
                0xA005 => interop_ifd = t.uint(src, e)?,
                0xA434 => found.lens = t.ascii(src, e)?,
                _ => {}
            }
            Ok(())
        })
        .map_err(|e| io::PErr(format!("EXIF IFD: {}", e.0)))?;
    }
    if let Some(off) = interop_ifd {
        let r = t.walk(src, off, depth + 2, |src, e| {
            if e.tag == 1 {
                found.interop_index = t.ascii(src, e)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            src.soft(e);
        }
    }
    if let Some(off) = gps_ifd {
        t.walk(src, off, depth + 1, |src, e| {
            match e.tag {
                1 => found.lat_ref = t.ascii(src, e)?,
                2 => found.gps_lat = Some(t.rationals(src, e, 3)?),
                3 => found.lon_ref = t.ascii(src, e)?,
                4 => found.gps_lon = Some(t.rationals(src, e, 3)?),
                5 => {
                    let r = t.uint(src, e)?.unwrap_or(0);
                    let alt = found.gps_alt.map(|a| a.1).unwrap_or((0, 0));
                    found.gps_alt = Some((r, alt));
                }
                6 => {
                    if let Some(&v) = t.rationals(src, e, 1)?.first() {
                        let r = found.gps_alt.map(|a| a.0).unwrap_or(0);
                        found.gps_alt = Some((r, v));
                    }
                }
                _ => {}
            }
            Ok(())
        })
        .map_err(|e| io::PErr(format!("GPS IFD: {}", e.0)))?;
    }
    Ok(())
}

fn degrees(parts: &[(u32, u32)]) -> Option<f64> {
    let mut v = 0.0;
    for (i, &(n, d)) in parts.iter().take(3).enumerate() {
        if d == 0 {
            if n == 0 && i > 0 {
                continue;
            }
            return None;
        }
        v += f64::from(n) / f64::from(d) / [1.0, 60.0, 3600.0][i];
    }
    (!parts.is_empty()).then_some(v)
}

/// Exposure time as ExifTool prints it: "1/250" below a quarter second,
/// else seconds with one decimal ("0.5", "2", "2.5").
pub(crate) fn exposure_str(n: u32, d: u32) -> Option<String> {
    if n == 0 || d == 0 {
        return None;
    }
    let x = f64::from(n) / f64::from(d);
    if x < 0.25001 {
        Some(format!("1/{}", (1.0 / x).round() as u64))
    } else {
        let s = format!("{x:.1}");
        Some(s.strip_suffix(".0").map(str::to_string).unwrap_or(s))
    }
}

fn apply<R: Read + Seek + ?Sized>(src: &mut Src<'_, R>, f: &Found, m: &mut Metadata) {
    if m.camera_make.is_none() {
        m.camera_make = f.make.clone();
    }
    if m.camera_model.is_none() {
        m.camera_model = f.model.clone();
    }
    if m.lens.is_none() {
        m.lens = f.lens.clone();
    }
    if m.taken.is_none() {
        m.taken = f
            .date_original
            .as_deref()
            .and_then(io::exif_date)
            .or_else(|| f.date.as_deref().and_then(io::exif_date));
    }
    if let Some(o) = f.orientation.filter(|o| (1..=8).contains(o)) {
        m.orientation = Some(o);
    }
    if let Some((n, d)) = f.exposure {
        m.exposure = exposure_str(n, d).or(m.exposure.take());
    }
    if let Some((n, d)) = f.f_number.filter(|&(n, d)| n > 0 && d > 0) {
        m.f_number = Some(f64::from(n) / f64::from(d));
    }
    if let Some(iso) = f.iso.filter(|&i| i > 0) {
        m.iso = Some(iso);
    }
    let icc = f.icc.and_then(|(off, len)| icc_description(src, off, len));
    let cs = match (icc, f.color_space) {
        (Some(d), _) => Some(d),
        (None, Some(1)) => Some("sRGB".to_string()),
        (None, Some(2)) => Some("Adobe RGB".to_string()),
        (None, Some(0xFFFF)) => Some(
            if f.interop_index.as_deref() == Some("R03") {
                "Adobe RGB"
            } else {
                "uncalibrated"
            }
            .to_string(),
        ),
        _ => None,
    };
    if cs.is_some() {
        m.color_space = cs;
    }
    if let (Some(lat), Some(lon)) = (&f.gps_lat, &f.gps_lon) {
        if let (Some(mut lat), Some(mut lon)) = (degrees(lat), degrees(lon)) {
            if f.lat_ref.as_deref().is_some_and(|r| r.starts_with('S')) {
                lat = -lat;
            }
            if f.lon_ref.as_deref().is_some_and(|r| r.starts_with('W')) {
                lon = -lon;
            }
            let alt = f.gps_alt.and_then(|(r, (n, d))| {
                (d != 0).then(|| {
                    let a = f64::from(n) / f64::from(d);
                    if r == 1 {
                        -a
                    } else {
                        a
                    }
                })
            });
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
                m.gps = Some(Gps { lat, lon, alt });
            }
        }
    }
}

/// Photometric interpretation as a pixel layout name.
fn photometric_name(p: u16, samples: Option<u16>) -> Option<&'static str> {
    Some(match p {
        0 | 1 => "grayscale",
        2 if samples == Some(4) => "RGBA",
        2 => "RGB",
        3 => "palette",
        4 => "mask",
        5 => "CMYK",
        6 => "YCbCr",
        8..=10 => "Lab",
        32803 => "CFA",
        34892 => "linear raw",
        _ => return None,
    })
}

/// A TIFF or TIFF-based RAW file.
pub(crate) fn tiff_file<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    m: &mut Metadata,
    ext: Option<&str>,
) -> PResult<()> {
    m.format = Some("TIFF".into());
    let head = src.read_upto(0, 16)?;
    let mut found = Found::default();
    let res = parse_into(src, &mut found, 0, src.len, true, 0);
    apply(src, &found, m);
    // The main image: the largest full-resolution one (RAW files describe
    // a thumbnail in IFD0 and the sensor image in a SubIFD).
    let best = found
        .imgs
        .iter()
        .filter(|i| i.w.is_some() && i.h.is_some())
        .max_by_key(|i| {
            (
                i.subfile & 1 == 0,
                u64::from(i.w.unwrap_or(0)) * u64::from(i.h.unwrap_or(0)),
            )
        })
        .copied()
        .or_else(|| found.imgs.first().copied());
    if let Some(img) = best {
        m.width = img.w;
        m.height = img.h;
        m.bit_depth = img.bits;
        if m.color_space.is_none() {
            m.color_space = img
                .photometric
                .and_then(|p| photometric_name(p, img.samples))
                .map(str::to_string);
        }
    }
    let raw = found
        .imgs
        .iter()
        .any(|i| matches!(i.photometric, Some(32803 | 34892)));
    let by_ext = ext.and_then(|e| {
        Some(match e {
            "dng" => ("DNG", "image/x-adobe-dng"),
            "cr2" => ("CR2", "image/x-canon-cr2"),
            "nef" => ("NEF", "image/x-nikon-nef"),
            "nrw" => ("NRW", "image/x-nikon-nrw"),
            "arw" => ("ARW", "image/x-sony-arw"),
            "srf" => ("SRF", "image/x-sony-srf"),
            "sr2" => ("SR2", "image/x-sony-sr2"),
            "pef" => ("PEF", "image/x-pentax-pef"),
            "srw" => ("SRW", "image/x-samsung-srw"),
            "erf" => ("ERF", "image/x-epson-erf"),
            "3fr" => ("3FR", "image/x-hasselblad-3fr"),
            "iiq" => ("IIQ", "image/x-phaseone-iiq"),
            "mos" => ("MOS", "image/x-leaf-mos"),
            "rwl" => ("RWL", "image/x-leica-rwl"),
            "orf" => ("ORF", "image/x-olympus-orf"),
            "rw2" => ("RW2", "image/x-panasonic-rw2"),
            _ => return None,
        })
    });
    let make = found.make.as_deref().unwrap_or("").to_ascii_lowercase();
    let named = if let Some(n) = by_ext {
        Some(n)
    } else if found.dng {
        Some(("DNG", "image/x-adobe-dng"))
    } else if matches!(io::sub(&head, 0, 4), Some(b"IIRO" | b"MMOR" | b"IIRS")) {
        Some(("ORF", "image/x-olympus-orf"))
    } else if io::sub(&head, 0, 4) == Some(b"IIU\0") {
        Some(("RW2", "image/x-panasonic-rw2"))
    } else if io::sub(&head, 8, 2) == Some(b"CR") {
        Some(("CR2", "image/x-canon-cr2"))
    } else if raw {
        Some(if make.starts_with("canon") {
            ("CR2", "image/x-canon-cr2")
        } else if make.starts_with("nikon") {
            ("NEF", "image/x-nikon-nef")
        } else if make.starts_with("sony") {
            ("ARW", "image/x-sony-arw")
        } else if make.starts_with("pentax") || make.starts_with("ricoh") {
            ("PEF", "image/x-pentax-pef")
        } else {
            ("RAW", "image/x-raw")
        })
    } else {
        None
    };
    if let Some((f, mime)) = named {
        m.format = Some(f.into());
        m.mime = Some(mime.into());
    } else if io::sub(&head, 2, 1) == Some(b"+") || io::sub(&head, 3, 1) == Some(b"+") {
        m.format = Some("BigTIFF".into());
    }
    res
}

/// The description of the ICC profile at `off` (`len` bytes), normalised
/// for the common ones ("sRGB", "Adobe RGB", "Display P3"). Best effort:
/// `None` on anything unexpected.
pub(crate) fn icc_description<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    off: u64,
    len: u64,
) -> Option<String> {
    let end = off.checked_add(len)?.min(src.len);
    let n = src.be32(off.checked_add(128)?).ok()?.min(100);
    let table_end = off.checked_add(132 + u64::from(n) * 12)?;
    if table_end > end {
        return None;
    }
    let table = src.read_vec(off + 132, n as usize * 12).ok()?;
    let entry = table
        .chunks_exact(12)
        .find(|c| c.get(..4) == Some(b"desc"))?;
    let toff = off.checked_add(u64::from(io::be32(entry, 4)?))?;
    let tlen = u64::from(io::be32(entry, 8)?);
    let tend = toff.checked_add(tlen)?.min(end);
    let tag = src
        .read_vec(toff, tend.checked_sub(toff)?.min(1024) as usize)
        .ok()?;
    let desc = match io::sub(&tag, 0, 4)? {
        b"desc" => {
            let count = io::be32(&tag, 8)? as usize;
            text(tag.get(12..12usize.saturating_add(count).min(tag.len()))?)
        }
        b"mluc" => {
            let so = io::be32(&tag, 16 + 8)? as usize;
            let sl = io::be32(&tag, 16 + 4)? as usize;
            io::utf16(tag.get(so..so.saturating_add(sl).min(tag.len()))?, true)
        }
        _ => None,
    }?;
    Some(normalise_profile(&desc))
}

fn normalise_profile(desc: &str) -> String {
    let l = desc.to_ascii_lowercase();
    if l.contains("srgb") {
        "sRGB".into()
    } else if l.contains("adobe rgb") {
        "Adobe RGB".into()
    } else if l.contains("display p3") {
        "Display P3".into()
    } else if l.contains("prophoto") {
        "ProPhoto RGB".into()
    } else {
        desc.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_like_exiftool() {
        assert_eq!(exposure_str(1, 250).as_deref(), Some("1/250"));
        assert_eq!(exposure_str(10, 2500).as_deref(), Some("1/250"));
        assert_eq!(exposure_str(1, 2).as_deref(), Some("0.5"));
        assert_eq!(exposure_str(2, 1).as_deref(), Some("2"));
        assert_eq!(exposure_str(0, 1), None);
        assert_eq!(exposure_str(1, u32::MAX).as_deref(), Some("1/4294967295"));
    }

    #[test]
    fn gps_degrees() {
        let d = degrees(&[(48, 1), (51, 1), (3012, 100)]).unwrap();
        assert!((d - 48.858_366).abs() < 1e-5);
        assert_eq!(degrees(&[(1, 0)]), None);
    }
}
