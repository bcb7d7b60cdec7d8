//! # mediagit-media
//!
//! Metadata of the media files MediaGit versions: image dimensions and
//! EXIF (camera, date taken, exposure, GPS), video and audio streams
//! (container, codecs, duration, frame rate, sample rate, channels, tags),
//! Photoshop documents (colour mode, layers) and PDF page counts; plus the
//! display ([`fields`], [`summary`]), the diff ([`changes`]) and the query
//! language of `mediagit find --where` ([`Query`]).
//!
//! Why it is built the way it is:
//!
//! * **Extraction must never fail an add.** [`extract`] returns a
//!   [`Metadata`] for every input, never an error and never a panic: on a
//!   truncated, damaged or hostile file it returns what it learned so far
//!   with [`Metadata::unreadable`] set to a short reason ("PNG: IHDR chunk
//!   truncated at byte 33"). A file of a format it does not know is kind
//!   [`Kind::Other`], with a MIME type when its magic bytes are known.
//! * **Parsers read untrusted bytes.** Every length, count and offset read
//!   from a file is checked against the file length and the [`Limits`]
//!   (bytes read, items visited, nesting depth) before it is used for an
//!   allocation, an index or a loop; arithmetic on them is checked; nothing
//!   recurses without the depth limit. The parsers are hand-written header
//!   parsers with no codec or image library underneath.
//! * **Only headers are read.** Formats are detected from magic bytes
//!   (then from the name's extension) and each parser seeks past payloads:
//!   an MP4's `moov` is found by walking the top-level box headers (front
//!   or end of the file) and `mdat` is never read; a PSD's pixel data is
//!   skipped; an MP3's audio is not scanned; a PDF is sampled at its first
//!   and last MiB. A 30 MB video costs a few kilobytes of reads.
//!
//! Records are serde-serializable with every field optional and defaulted,
//! so a record written by a later version (more fields) still decodes.

use std::io::{Read, Seek};

use serde::{Deserialize, Serialize};

mod audio;
mod display;
mod image;
mod io;
mod isobmff;
mod matroska;
mod pdf;
mod psd;
mod query;
mod tiff;

pub use display::{changes, fields, summary};
pub use query::{Query, QueryError};

use io::{PErr, PResult, Src};

/// Most layers recorded in [`Metadata::layers`] (the count is still exact).
pub const MAX_LAYERS: usize = 1000;
/// Most audio tracks recorded in [`Metadata::audio`].
pub const MAX_AUDIO_TRACKS: usize = 64;

/// Budgets for one extraction. Going over one stops the parser: the record
/// keeps what was found, with [`Metadata::unreadable`] saying which limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes read from the file (default 64 MiB).
    pub max_read: u64,
    /// Boxes, chunks, segments, IFD entries, elements, layers, tracks and
    /// tags visited (default 100,000).
    pub max_items: usize,
    /// Nesting of boxes, IFDs and elements (default 32).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_read: 64 << 20,
            max_items: 100_000,
            max_depth: 32,
        }
    }
}

/// What a file is, broadly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Image,
    Video,
    Audio,
    /// Layered design documents (PSD, PSB).
    Design,
    Document,
    #[default]
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Video => "video",
            Kind::Audio => "audio",
            Kind::Design => "design",
            Kind::Document => "document",
            Kind::Other => "other",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A GPS position in decimal degrees (south and west negative); altitude in
/// metres (below sea level negative).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Gps {
    pub lat: f64,
    pub lon: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt: Option<f64>,
}

/// One audio stream.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AudioTrack {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bit_depth: Option<u16>,
}

/// One layer of a design document.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Layer {
    pub name: String,
    pub visible: bool,
}

/// The metadata of one file. Every field is optional: which ones are set
/// depends on the format and on what the file carries.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Metadata {
    pub kind: Kind,
    /// MIME type ("image/jpeg").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// Format name ("JPEG", "MP4", "DNG").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,

    // ---- images (and video frame size) ----
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// EXIF orientation (1..=8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u16>,
    /// "sRGB", "Adobe RGB", "uncalibrated", an ICC profile name, or the
    /// pixel layout ("RGB", "RGBA", "grayscale", "palette", "CMYK", "YCbCr").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_space: Option<String>,
    /// Bits per sample (per channel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bit_depth: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_make: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lens: Option<String>,
    /// When the photo was taken, ISO 8601 local time ("2024-05-01T12:34:56"):
    /// EXIF DateTimeOriginal, else DateTime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken: Option<String>,
    /// Exposure time as photographers write it ("1/250", "2").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f_number: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iso: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gps: Option<Gps>,

    // ---- video / audio ----
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// "MP4", "MOV", "Matroska", "WebM", "WAV", "Ogg"...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// "H.264", "HEVC", "AV1", "VP9", "ProRes"...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<String>,
    /// Frames per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// Bits per second over the whole file (size * 8 / duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<u64>,
    /// When the recording was made, ISO 8601 UTC ("2024-05-01T12:34:56Z").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audio: Vec<AudioTrack>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album: Option<String>,

    // ---- design / documents ----
    /// "RGB", "CMYK", "Grayscale", "Lab"... (Photoshop colour mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_count: Option<u32>,
    /// Layers bottom to top (at most [`MAX_LAYERS`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,

    /// Why the metadata could not be read completely (the fields above hold
    /// what was read before the problem).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// The metadata of the file `r` of `len` bytes, with [`Limits::default`].
/// `name_hint` is the file name or path (its extension picks the parser
/// when the magic bytes are not recognised, and names camera RAW formats).
/// Never fails and never panics; see [`Metadata::unreadable`].
pub fn extract<R: Read + Seek>(r: &mut R, len: u64, name_hint: Option<&str>) -> Metadata {
    extract_with(r, len, name_hint, &Limits::default())
}

/// [`extract`] with explicit [`Limits`].
pub fn extract_with<R: Read + Seek>(
    r: &mut R,
    len: u64,
    name_hint: Option<&str>,
    limits: &Limits,
) -> Metadata {
    // Debug builds (tests, fuzzing) let a parser bug panic so that it is
    // found; release builds turn it into an "unreadable" record so that an
    // add never fails on metadata.
    #[cfg(debug_assertions)]
    {
        extract_inner(r, len, name_hint, limits)
    }
    #[cfg(not(debug_assertions))]
    {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        catch_unwind(AssertUnwindSafe(|| {
            extract_inner(r, len, name_hint, limits)
        }))
        .unwrap_or_else(|_| Metadata {
            unreadable: Some("internal error in the metadata parser".into()),
            ..Metadata::default()
        })
    }
}

/// The formats with a parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Jpeg,
    Png,
    Gif,
    Bmp,
    Tiff,
    WebP,
    Isobmff,
    Matroska,
    Wav,
    Aiff,
    Flac,
    Mp3,
    Ogg,
    Psd,
    Pdf,
}

impl Format {
    fn label(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Gif => "GIF",
            Format::Bmp => "BMP",
            Format::Tiff => "TIFF",
            Format::WebP => "WebP",
            Format::Isobmff => "ISOBMFF",
            Format::Matroska => "Matroska",
            Format::Wav => "WAV",
            Format::Aiff => "AIFF",
            Format::Flac => "FLAC",
            Format::Mp3 => "MP3",
            Format::Ogg => "Ogg",
            Format::Psd => "PSD",
            Format::Pdf => "PDF",
        }
    }

    /// Kind, MIME type and format name before parsing (the parser refines
    /// them: an MP4 without video is audio, a TIFF may be a DNG).
    fn defaults(self) -> (Kind, &'static str) {
        match self {
            Format::Jpeg => (Kind::Image, "image/jpeg"),
            Format::Png => (Kind::Image, "image/png"),
            Format::Gif => (Kind::Image, "image/gif"),
            Format::Bmp => (Kind::Image, "image/bmp"),
            Format::Tiff => (Kind::Image, "image/tiff"),
            Format::WebP => (Kind::Image, "image/webp"),
            Format::Isobmff => (Kind::Video, "video/mp4"),
            Format::Matroska => (Kind::Video, "video/x-matroska"),
            Format::Wav => (Kind::Audio, "audio/wav"),
            Format::Aiff => (Kind::Audio, "audio/aiff"),
            Format::Flac => (Kind::Audio, "audio/flac"),
            Format::Mp3 => (Kind::Audio, "audio/mpeg"),
            Format::Ogg => (Kind::Audio, "audio/ogg"),
            Format::Psd => (Kind::Design, "image/vnd.adobe.photoshop"),
            Format::Pdf => (Kind::Document, "application/pdf"),
        }
    }
}

/// The lower-case extension of a file name or path.
pub(crate) fn extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (stem, ext) = base.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() || ext.len() > 8 {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

fn format_from_ext(ext: &str) -> Option<Format> {
    Some(match ext {
        "jpg" | "jpeg" | "jpe" | "jfif" => Format::Jpeg,
        "png" | "apng" => Format::Png,
        "gif" => Format::Gif,
        "bmp" | "dib" => Format::Bmp,
        "tif" | "tiff" | "dng" | "cr2" | "nef" | "nrw" | "arw" | "srf" | "sr2" | "pef" | "srw"
        | "erf" | "3fr" | "iiq" | "mos" | "rwl" | "orf" | "rw2" => Format::Tiff,
        "webp" => Format::WebP,
        "mp4" | "m4v" | "m4a" | "m4b" | "m4p" | "mov" | "qt" | "3gp" | "3g2" | "heic" | "heif"
        | "hif" | "avif" | "cr3" => Format::Isobmff,
        "mkv" | "mka" | "mk3d" | "webm" => Format::Matroska,
        "wav" | "wave" | "rf64" | "bwf" => Format::Wav,
        "aif" | "aiff" | "aifc" => Format::Aiff,
        "flac" => Format::Flac,
        "mp3" | "mp2" | "mpga" => Format::Mp3,
        "ogg" | "oga" | "ogv" | "opus" | "spx" => Format::Ogg,
        "psd" | "psb" => Format::Psd,
        "pdf" => Format::Pdf,
        _ => return None,
    })
}

/// The format from the first bytes of the file (`head`, up to 64 bytes).
fn format_from_magic<R: Read + Seek + ?Sized>(
    src: &mut Src<'_, R>,
    head: &[u8],
    ext: Option<&str>,
) -> Option<Format> {
    let at = |off: usize, magic: &[u8]| io::sub(head, off, magic.len()) == Some(magic);
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        return Some(Format::Jpeg);
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Some(Format::Png);
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Some(Format::Gif);
    }
    if at(0, b"8BPS") {
        return Some(Format::Psd);
    }
    if at(0, b"%PDF-") {
        return Some(Format::Pdf);
    }
    if at(0, b"II*\0") || at(0, b"MM\0*") || at(0, b"II+\0") || at(0, b"MM\0+") {
        return Some(Format::Tiff);
    }
    // TIFF variants with their own magic number: Olympus ORF, Panasonic RW2.
    if at(0, b"IIRO") || at(0, b"MMOR") || at(0, b"IIRS") || at(0, b"IIU\0") {
        return Some(Format::Tiff);
    }
    if (at(0, b"RIFF") || at(0, b"RF64") || at(0, b"BW64")) && at(8, b"WAVE") {
        return Some(Format::Wav);
    }
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return Some(Format::WebP);
    }
    if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
        return Some(Format::Aiff);
    }
    if at(4, b"ftyp") {
        return Some(Format::Isobmff);
    }
    // QuickTime files from before `ftyp`: a plausible top-level atom.
    if let Some(t) = io::sub(head, 4, 4) {
        let size = io::be32(head, 0).unwrap_or(0);
        if matches!(t, b"moov" | b"mdat" | b"wide" | b"free" | b"skip" | b"pnot")
            && (size == 1 || size >= 8)
        {
            return Some(Format::Isobmff);
        }
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some(Format::Matroska);
    }
    if at(0, b"fLaC") {
        return Some(Format::Flac);
    }
    if at(0, b"OggS") {
        return Some(Format::Ogg);
    }
    if at(0, b"ID3") {
        // An ID3v2 tag prefixes MP3 files, and sometimes FLAC ones.
        if let Some(start) = audio::id3_end(head) {
            if let Ok(m) = src.array::<4>(start) {
                if &m == b"fLaC" {
                    return Some(Format::Flac);
                }
            }
        }
        return Some(Format::Mp3);
    }
    if at(0, b"BM") {
        let hdr = io::le32(head, 14).unwrap_or(0);
        if matches!(hdr, 12 | 40 | 52 | 56 | 64 | 108 | 124) {
            return Some(Format::Bmp);
        }
    }
    if audio::mpeg_sync_at_start(src, head, ext == Some("mp3")) {
        return Some(Format::Mp3);
    }
    None
}

/// MIME types of some common non-media formats, by magic bytes.
fn other_mime(head: &[u8]) -> Option<&'static str> {
    const TABLE: &[(usize, &[u8], &str)] = &[
        (0, b"PK\x03\x04", "application/zip"),
        (0, b"\x1f\x8b", "application/gzip"),
        (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (0, b"\xfd7zXZ\0", "application/x-xz"),
        (0, b"\x28\xb5\x2f\xfd", "application/zstd"),
        (0, b"BZh", "application/x-bzip2"),
        (0, b"Rar!\x1a\x07", "application/vnd.rar"),
        (0, b"\x7fELF", "application/x-elf"),
        (0, b"SQLite format 3\0", "application/vnd.sqlite3"),
        (0, b"BLENDER", "application/x-blender"),
        (0, b"\x76\x2f\x31\x01", "image/x-exr"),
        (0, b"\xff\x0a", "image/jxl"),
        (4, b"JXL \r\n\x87\n", "image/jxl"),
        (8, b"AVI ", "video/x-msvideo"),
        (0, b"{\\rtf", "application/rtf"),
        (0, b"<?xml", "application/xml"),
    ];
    TABLE
        .iter()
        .find(|(off, magic, _)| io::sub(head, *off, magic.len()) == Some(*magic))
        .map(|(_, _, mime)| *mime)
}

fn extract_inner<R: Read + Seek + ?Sized>(
    r: &mut R,
    len: u64,
    name_hint: Option<&str>,
    limits: &Limits,
) -> Metadata {
    let mut m = Metadata::default();
    let mut src = Src::new(r, len, limits);
    let ext = name_hint.and_then(extension);
    let head = match src.read_upto(0, 64) {
        Ok(h) => h,
        Err(e) => {
            m.unreadable = Some(e.0);
            return m;
        }
    };
    let format = format_from_magic(&mut src, &head, ext.as_deref())
        .or_else(|| ext.as_deref().and_then(format_from_ext));
    let Some(format) = format else {
        m.mime = other_mime(&head).map(str::to_string);
        return m;
    };
    let (kind, mime) = format.defaults();
    m.kind = kind;
    m.mime = Some(mime.to_string());
    let ext = ext.as_deref();
    let res: PResult<()> = match format {
        Format::Jpeg => image::jpeg(&mut src, &mut m),
        Format::Png => image::png(&mut src, &mut m),
        Format::Gif => image::gif(&mut src, &mut m),
        Format::Bmp => image::bmp(&mut src, &mut m),
        Format::WebP => image::webp(&mut src, &mut m),
        Format::Tiff => tiff::tiff_file(&mut src, &mut m, ext),
        Format::Isobmff => isobmff::parse(&mut src, &mut m, ext),
        Format::Matroska => matroska::parse(&mut src, &mut m, ext),
        Format::Wav => audio::wav(&mut src, &mut m),
        Format::Aiff => audio::aiff(&mut src, &mut m),
        Format::Flac => audio::flac(&mut src, &mut m),
        Format::Mp3 => audio::mp3(&mut src, &mut m),
        Format::Ogg => audio::ogg(&mut src, &mut m),
        Format::Psd => psd::parse(&mut src, &mut m),
        Format::Pdf => pdf::parse(&mut src, &mut m),
    };
    let problem = match res {
        Err(PErr(e)) => Some(e),
        Ok(()) => src.soft.take(),
    };
    if let Some(e) = problem {
        let label = m
            .format
            .clone()
            .unwrap_or_else(|| format.label().to_string());
        m.unreadable = io::clean(&format!("{label}: {e}"));
    }
    if m.bit_rate.is_none() && matches!(m.kind, Kind::Video | Kind::Audio) {
        if let Some(d) = m.duration.filter(|d| *d > 0.0) {
            let br = len as f64 * 8.0 / d;
            if br.is_finite() {
                m.bit_rate = Some(br.round() as u64);
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(extension("a/b/IMG_1.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("dir.d/file"), None);
        assert_eq!(extension("x."), None);
    }

    #[test]
    fn unknown_and_empty() {
        let m = extract(&mut std::io::Cursor::new(Vec::<u8>::new()), 0, None);
        assert_eq!(m, Metadata::default());
        let zip = b"PK\x03\x04rest of a zip".to_vec();
        let n = zip.len() as u64;
        let m = extract(&mut std::io::Cursor::new(zip), n, Some("a.zip"));
        assert_eq!(m.kind, Kind::Other);
        assert_eq!(m.mime.as_deref(), Some("application/zip"));
        assert!(m.unreadable.is_none());
        let m = extract(
            &mut std::io::Cursor::new(Vec::<u8>::new()),
            0,
            Some("a.jpg"),
        );
        assert_eq!(m.kind, Kind::Image);
        assert!(m.unreadable.is_some());
    }

    #[test]
    fn serde_tolerates_unknown_and_missing_fields() {
        let m: Metadata =
            serde_json::from_str(r#"{"kind":"video","width":10,"future_field":[1,2]}"#).unwrap();
        assert_eq!(m.kind, Kind::Video);
        assert_eq!(m.width, Some(10));
        let s = serde_json::to_string(&Metadata::default()).unwrap();
        assert_eq!(s, r#"{"kind":"other"}"#);
    }
}
