//! Format-aware cut points: where a media file's metadata ends and its
//! payload begins, so that an edit of the metadata alone (a photographer
//! re-tagging, rating or captioning in Lightroom or exiftool) changes only
//! the chunk that holds it, and the image data keeps its chunks. Parsers
//! here read untrusted bytes: they never panic and give up (`None`) on
//! anything they do not understand; a wrong answer only moves a chunk
//! boundary, never changes what is stored.

/// How many leading bytes of a file to read for [`jpeg_header_len`].
pub const JPEG_HEADER_PROBE: usize = 256 << 10;

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
}
