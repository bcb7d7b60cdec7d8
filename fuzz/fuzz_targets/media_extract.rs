//! Media metadata extraction (`mediagit_media::extract`) on arbitrary
//! bytes, with the file-name hint (and so the parser chosen when the magic
//! bytes are not recognised) taken from the first byte. Properties: no
//! panic; no more bytes read than `Limits::max_read` (checked with a small
//! limit); `fields`, `summary` and `changes` accept whatever comes out.
#![no_main]
use std::io::{Cursor, Read, Seek, SeekFrom};

use libfuzzer_sys::fuzz_target;
use mediagit_media::{changes, extract, extract_with, fields, summary, Limits, Metadata};

const HINTS: &[Option<&str>] = &[
    None,
    Some("a.jpg"),
    Some("a.png"),
    Some("a.tif"),
    Some("a.dng"),
    Some("a.webp"),
    Some("a.heic"),
    Some("a.mp4"),
    Some("a.mov"),
    Some("a.mkv"),
    Some("a.webm"),
    Some("a.wav"),
    Some("a.aiff"),
    Some("a.flac"),
    Some("a.mp3"),
    Some("a.ogg"),
    Some("a.psd"),
    Some("a.pdf"),
    Some("a.gif"),
    Some("a.bmp"),
];

struct Counting<'a> {
    inner: Cursor<&'a [u8]>,
    read: u64,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Seek for Counting<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, content)) = data.split_first() else {
        return;
    };
    let hint = HINTS[first as usize % HINTS.len()];
    let len = content.len() as u64;
    let m: Metadata = extract(&mut Cursor::new(content), len, hint);
    let _ = fields(&m);
    let _ = summary(&m);
    let _ = changes(&Metadata::default(), &m);

    let limits = Limits {
        max_read: u64::from(first) * 16,
        max_items: 64,
        max_depth: 4,
    };
    let mut r = Counting {
        inner: Cursor::new(content),
        read: 0,
    };
    let small = extract_with(&mut r, len, hint, &limits);
    assert!(r.read <= limits.max_read, "read {} > {}", r.read, limits.max_read);
    let _ = changes(&m, &small);
});
