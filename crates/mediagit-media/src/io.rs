//! The bounded reader every parser goes through, the parser error type and
//! the byte and text helpers. All arithmetic on values read from a file is
//! checked here or by the caller: a length, count or offset from a file is
//! never trusted for an allocation, a slice index or a loop bound before it
//! has been compared with the file length and the [`Limits`].

use std::io::{ErrorKind, Read, Seek, SeekFrom};

use crate::Limits;

/// Longest single buffer a parser may ask for (a guard against a parser
/// bug; every caller already bounds its request far below this).
const MAX_BUF: usize = 4 << 20;

/// Longest text value kept in a record (characters).
pub(crate) const MAX_TEXT: usize = 256;

/// A parser error: a short human-readable reason. The format name is put in
/// front by the dispatcher ("PNG: IHDR chunk truncated at byte 33").
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PErr(pub String);

pub(crate) type PResult<T> = Result<T, PErr>;

pub(crate) fn err<T>(msg: impl Into<String>) -> PResult<T> {
    Err(PErr(msg.into()))
}

/// Prefixes an error with what was being read ("IHDR chunk" + "truncated
/// at byte 33").
pub(crate) trait Ctx<T> {
    fn ctx(self, what: &str) -> PResult<T>;
}

impl<T> Ctx<T> for PResult<T> {
    fn ctx(self, what: &str) -> PResult<T> {
        self.map_err(|e| PErr(format!("{what} {}", e.0)))
    }
}

/// A reader over the file with the budgets of [`Limits`]: every byte read,
/// every item visited and every nesting level is accounted for.
pub(crate) struct Src<'a, R: ?Sized> {
    r: &'a mut R,
    /// The file length the caller gave (reads past it fail as truncated).
    pub len: u64,
    pos: Option<u64>,
    read: u64,
    items: usize,
    limits: &'a Limits,
    /// The first non-fatal problem (a damaged EXIF block inside an
    /// otherwise readable JPEG, a box running past the end of the file).
    pub soft: Option<String>,
}

impl<'a, R: Read + Seek + ?Sized> Src<'a, R> {
    pub fn new(r: &'a mut R, len: u64, limits: &'a Limits) -> Self {
        Src {
            r,
            len,
            pos: None,
            read: 0,
            items: 0,
            limits,
            soft: None,
        }
    }

    /// Bytes requested so far (never more than `Limits::max_read`).
    #[cfg(test)]
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Records a non-fatal problem (the first one is kept).
    pub fn soft(&mut self, e: PErr) {
        if self.soft.is_none() {
            self.soft = Some(e.0);
        }
    }

    /// Counts one visited item (box, chunk, IFD entry, layer, tag...).
    pub fn item(&mut self) -> PResult<()> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return err(format!(
                "more than {} items (limit reached)",
                self.limits.max_items
            ));
        }
        Ok(())
    }

    /// Fails when `depth` is over the nesting limit.
    pub fn depth(&self, depth: usize) -> PResult<()> {
        if depth > self.limits.max_depth {
            return err(format!(
                "nested deeper than {} levels",
                self.limits.max_depth
            ));
        }
        Ok(())
    }

    fn check(&self, off: u64, n: u64) -> PResult<u64> {
        let end = off
            .checked_add(n)
            .ok_or_else(|| PErr("offset out of range".into()))?;
        if end > self.len {
            return err(format!("truncated at byte {}", self.len));
        }
        if self.read.saturating_add(n) > self.limits.max_read {
            return err(format!(
                "read limit of {} bytes reached",
                self.limits.max_read
            ));
        }
        Ok(end)
    }

    /// Reads exactly `buf.len()` bytes at `off`.
    pub fn read_at(&mut self, off: u64, buf: &mut [u8]) -> PResult<()> {
        let end = self.check(off, buf.len() as u64)?;
        if self.pos != Some(off) {
            self.pos = None;
            self.r
                .seek(SeekFrom::Start(off))
                .map_err(|e| PErr(format!("seek error: {e}")))?;
        }
        self.pos = None;
        self.read += buf.len() as u64;
        match self.r.read_exact(buf) {
            Ok(()) => {
                self.pos = Some(end);
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                err(format!("truncated before byte {end}"))
            }
            Err(e) => err(format!("read error: {e}")),
        }
    }

    /// Reads exactly `n` bytes at `off` (bounds checked before allocating).
    pub fn read_vec(&mut self, off: u64, n: usize) -> PResult<Vec<u8>> {
        if n > MAX_BUF {
            return err("buffer request too large");
        }
        self.check(off, n as u64)?;
        let mut v = vec![0u8; n];
        self.read_at(off, &mut v)?;
        Ok(v)
    }

    /// Reads up to `n` bytes at `off`: fewer when the file ends first.
    pub fn read_upto(&mut self, off: u64, n: usize) -> PResult<Vec<u8>> {
        let avail = self.len.saturating_sub(off);
        let n = (n as u64).min(avail) as usize;
        self.read_vec(off, n)
    }

    pub fn array<const N: usize>(&mut self, off: u64) -> PResult<[u8; N]> {
        let mut b = [0u8; N];
        self.read_at(off, &mut b)?;
        Ok(b)
    }

    pub fn u8(&mut self, off: u64) -> PResult<u8> {
        Ok(self.array::<1>(off)?[0])
    }
    pub fn be16(&mut self, off: u64) -> PResult<u16> {
        Ok(u16::from_be_bytes(self.array(off)?))
    }
    pub fn be32(&mut self, off: u64) -> PResult<u32> {
        Ok(u32::from_be_bytes(self.array(off)?))
    }
    pub fn be64(&mut self, off: u64) -> PResult<u64> {
        Ok(u64::from_be_bytes(self.array(off)?))
    }
    pub fn le32(&mut self, off: u64) -> PResult<u32> {
        Ok(u32::from_le_bytes(self.array(off)?))
    }
}

// ---- slice helpers: `None` when out of range -------------------------------

pub(crate) fn sub(d: &[u8], off: usize, n: usize) -> Option<&[u8]> {
    d.get(off..off.checked_add(n)?)
}
pub(crate) fn be16(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes(sub(d, off, 2)?.try_into().ok()?))
}
pub(crate) fn be24(d: &[u8], off: usize) -> Option<u32> {
    let b = sub(d, off, 3)?;
    Some(u32::from_be_bytes([0, b[0], b[1], b[2]]))
}
pub(crate) fn be32(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(sub(d, off, 4)?.try_into().ok()?))
}
pub(crate) fn be64(d: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_be_bytes(sub(d, off, 8)?.try_into().ok()?))
}
pub(crate) fn le16(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(sub(d, off, 2)?.try_into().ok()?))
}
pub(crate) fn le24(d: &[u8], off: usize) -> Option<u32> {
    let b = sub(d, off, 3)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], 0]))
}
pub(crate) fn le32(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(sub(d, off, 4)?.try_into().ok()?))
}
pub(crate) fn le64(d: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(sub(d, off, 8)?.try_into().ok()?))
}

/// Position of `needle` in `hay` at or after `from`.
pub(crate) fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from >= hay.len() {
        return None;
    }
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

// ---- text ------------------------------------------------------------------

/// Cleans a text value for a record: control characters become spaces,
/// surrounding whitespace and NULs go, at most [`MAX_TEXT`] characters;
/// `None` when nothing is left.
pub(crate) fn clean(s: &str) -> Option<String> {
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let out: String = s
        .chars()
        .take(MAX_TEXT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let out = out.trim_end().to_string();
    (!out.is_empty()).then_some(out)
}

/// Bytes as text: UTF-8 when valid, else Latin-1; up to the first NUL.
pub(crate) fn text(b: &[u8]) -> Option<String> {
    let b = match b.iter().position(|&c| c == 0) {
        Some(p) => &b[..p],
        None => b,
    };
    match std::str::from_utf8(b) {
        Ok(s) => clean(s),
        Err(_) => clean(&b.iter().map(|&c| c as char).collect::<String>()),
    }
}

/// UTF-16 text (big- or little-endian) up to the first NUL.
pub(crate) fn utf16(b: &[u8], big_endian: bool) -> Option<String> {
    let units = b
        .chunks_exact(2)
        .map(|c| {
            if big_endian {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        })
        .take_while(|&u| u != 0);
    let s: String = char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    clean(&s)
}

/// A printable four-character code ("avc1"), for unknown codecs.
pub(crate) fn fourcc(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim_end()
        .to_string()
}

// ---- dates -----------------------------------------------------------------

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Seconds since the Unix epoch as ISO 8601 UTC ("2024-05-01T12:34:56Z");
/// `None` outside years 1900..=9999.
pub(crate) fn iso_utc(secs: i64) -> Option<String> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    if !(1900..=9999).contains(&y) {
        return None;
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

/// An EXIF-style date ("2024:05:01 12:34:56", also with '-' or 'T') as
/// ISO 8601 "2024-05-01T12:34:56"; `None` when it is not one (blank dates
/// written as spaces or zeros are common).
pub(crate) fn exif_date(s: &str) -> Option<String> {
    let b = s.trim().as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if y == 0 || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut out = format!("{y:04}-{mo:02}-{d:02}");
    if let (Some(h), Some(mi)) = (digits(11..13), digits(14..16)) {
        let sec = digits(17..19).unwrap_or(0);
        if h < 24 && mi < 60 && sec < 61 {
            out.push_str(&format!("T{h:02}:{mi:02}:{sec:02}"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso_utc(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            iso_utc(1_714_566_896).as_deref(),
            Some("2024-05-01T12:34:56Z")
        );
        assert_eq!(iso_utc(i64::MIN), None);
        assert_eq!(
            exif_date("2024:05:01 12:34:56").as_deref(),
            Some("2024-05-01T12:34:56")
        );
        assert_eq!(exif_date("    :  :     :  :  "), None);
        assert_eq!(exif_date("0000:00:00 00:00:00"), None);
        assert_eq!(exif_date("2024-05-01").as_deref(), Some("2024-05-01"));
    }

    #[test]
    fn text_helpers() {
        assert_eq!(clean("  a\u{1}b \0").as_deref(), Some("a b"));
        assert_eq!(clean(&"x".repeat(1000)).map(|s| s.len()), Some(MAX_TEXT));
        assert_eq!(text(b"Canon\0junk").as_deref(), Some("Canon"));
        assert_eq!(text(&[0xE9, b'a']).as_deref(), Some("\u{e9}a"));
        assert_eq!(
            utf16(&[0, b'H', 0, b'i', 0, 0], true).as_deref(),
            Some("Hi")
        );
        assert_eq!(find(b"abcabc", b"ca", 0), Some(2));
        assert_eq!(find(b"abc", b"ca", 5), None);
    }

    #[test]
    fn src_budget() {
        let data = vec![7u8; 100];
        let mut c = std::io::Cursor::new(data);
        let limits = Limits {
            max_read: 10,
            ..Limits::default()
        };
        let mut s = Src::new(&mut c, 100, &limits);
        assert!(s.read_vec(0, 8).is_ok());
        assert!(s.read_vec(8, 8).is_err());
        assert!(s.read_vec(99, 2).is_err());
        assert_eq!(s.bytes_read(), 8);
        assert!(s.read_vec(u64::MAX, 2).is_err());
    }
}
