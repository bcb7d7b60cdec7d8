//! Codec choice: zstd where it pays, raw where it does not.
use std::io;

use mediagit_format::pack::Codec;

/// What is known about the file a chunk belongs to, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionHint {
    /// A format that is already compressed (JPEG, H.264/MP4, FLAC, PNG, zip...):
    /// stored raw without trying.
    Compressed,
    /// Unknown or uncompressed (WAV, TIFF, PSD, text): try zstd on a sample.
    Try,
}

impl CompressionHint {
    /// Detects the type from the first bytes of a file.
    pub fn from_head(head: &[u8]) -> CompressionHint {
        let Some(kind) = infer::get(head) else {
            return CompressionHint::Try;
        };
        let mime = kind.mime_type();
        let compressed = matches!(
            mime,
            "image/jpeg"
                | "image/png"
                | "image/gif"
                | "image/webp"
                | "image/heif"
                | "image/avif"
                | "image/jxl"
                | "video/mp4"
                | "video/quicktime"
                | "video/x-matroska"
                | "video/webm"
                | "video/x-m4v"
                | "video/x-msvideo"
                | "audio/mpeg"
                | "audio/x-flac"
                | "audio/ogg"
                | "audio/m4a"
                | "audio/aac"
                | "audio/opus"
                | "application/zip"
                | "application/gzip"
                | "application/x-bzip2"
                | "application/x-xz"
                | "application/zstd"
                | "application/x-7z-compressed"
                | "application/vnd.rar"
                | "application/pdf"
        );
        if compressed {
            CompressionHint::Compressed
        } else {
            CompressionHint::Try
        }
    }
}

const SAMPLE: usize = 64 * 1024;

thread_local! {
    /// zstd contexts, reused: creating one per chunk costs more than
    /// compressing a small file.
    static TRIAL: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

fn with_compressor<T>(
    level: i32,
    f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> io::Result<T>,
) -> io::Result<T> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(l, _)| *l != level).unwrap_or(true) {
            *c = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, comp) = c.as_mut().expect("set above");
        f(comp)
    })
}

/// Chooses a codec for one chunk and encodes it into `out` (cleared first).
/// Returns the codec used; for `Raw`, `out` is left empty and the caller
/// stores `data` itself.
pub fn compress_chunk(
    data: &[u8],
    hint: CompressionHint,
    level: i32,
    out: &mut Vec<u8>,
) -> io::Result<Codec> {
    out.clear();
    if hint == CompressionHint::Compressed || data.len() < 64 {
        return Ok(Codec::Raw);
    }
    // Trial: zstd level 1 on a sample from the middle of the chunk. Only if it
    // saves at least 1/8 is the whole chunk compressed.
    if data.len() > SAMPLE {
        let mid = (data.len() - SAMPLE) / 2;
        let sample = &data[mid..mid + SAMPLE];
        let trial_len = TRIAL.with(|t| -> io::Result<usize> {
            let mut t = t.borrow_mut();
            if t.is_none() {
                *t = Some(zstd::bulk::Compressor::new(1)?);
            }
            Ok(t.as_mut().expect("set above").compress(sample)?.len())
        })?;
        if trial_len > SAMPLE - SAMPLE / 8 {
            return Ok(Codec::Raw);
        }
    }
    *out = with_compressor(level, |c| c.compress(data))?;
    let n = out.len();
    if n + n / 16 >= data.len() {
        out.clear();
        return Ok(Codec::Raw);
    }
    Ok(Codec::Zstd)
}

/// Decodes a payload stored with `codec`, which must decode to exactly
/// `raw_len` bytes. A decode failure is an error, never "return the bytes".
pub fn decompress(codec: Codec, payload: &[u8], raw_len: usize) -> io::Result<Vec<u8>> {
    match codec {
        Codec::Raw => {
            if payload.len() != raw_len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("raw payload is {} bytes, expected {raw_len}", payload.len()),
                ));
            }
            Ok(payload.to_vec())
        }
        Codec::Zstd => {
            let out = DECOMPRESSOR.with(|d| -> io::Result<Vec<u8>> {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = Some(zstd::bulk::Decompressor::new()?);
                }
                d.as_mut().expect("set above").decompress(payload, raw_len)
            })?;
            let n = out.len();
            if n != raw_len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("zstd payload decodes to {n} bytes, expected {raw_len}"),
                ));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_compresses_noise_does_not() {
        let text = b"the quick brown fox jumps over the lazy dog ".repeat(5000);
        let mut out = Vec::new();
        assert_eq!(
            compress_chunk(&text, CompressionHint::Try, 3, &mut out).unwrap(),
            Codec::Zstd
        );
        assert_eq!(decompress(Codec::Zstd, &out, text.len()).unwrap(), text);
        let mut x = 1u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect();
        assert_eq!(
            compress_chunk(&noise, CompressionHint::Try, 3, &mut out).unwrap(),
            Codec::Raw
        );
        assert_eq!(
            compress_chunk(&text, CompressionHint::Compressed, 3, &mut out).unwrap(),
            Codec::Raw
        );
    }

    #[test]
    fn corrupt_zstd_is_an_error() {
        let text =
            b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(100);
        let mut out = Vec::new();
        compress_chunk(&text, CompressionHint::Try, 3, &mut out).unwrap();
        out[5] ^= 0x55;
        let r = decompress(Codec::Zstd, &out, text.len());
        assert!(r.is_err() || r.unwrap() != text);
        assert!(decompress(Codec::Raw, b"abc", 4).is_err());
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(data in proptest::collection::vec(0u8..4, 0..100_000), level in 1i32..6) {
            let mut out = Vec::new();
            let codec = compress_chunk(&data, CompressionHint::Try, level, &mut out).unwrap();
            let stored: &[u8] = if codec == Codec::Raw { &data } else { &out };
            prop_assert_eq!(decompress(codec, stored, data.len()).unwrap(), data);
        }
    }

    #[test]
    fn detects_compressed_formats() {
        assert_eq!(
            CompressionHint::from_head(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F']),
            CompressionHint::Compressed
        );
        assert_eq!(
            CompressionHint::from_head(b"RIFF\0\0\0\0WAVEfmt "),
            CompressionHint::Try
        );
    }
}
