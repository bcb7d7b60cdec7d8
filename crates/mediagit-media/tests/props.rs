//! Property tests: random bytes, and random mutations of small valid files
//! of every supported format (built here byte by byte, so they need no
//! tools), never panic and never read more than `Limits::max_read`.

use std::io::{Cursor, Read, Seek, SeekFrom};

use mediagit_media::{extract, extract_with, Kind, Limits, Metadata};
use proptest::prelude::*;

struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn run(bytes: &[u8], name: Option<&str>, limits: &Limits) -> (Metadata, u64) {
    let mut r = Counting {
        inner: Cursor::new(bytes),
        read: 0,
    };
    let m = extract_with(&mut r, bytes.len() as u64, name, limits);
    (m, r.read)
}

// ---- seed files ------------------------------------------------------------------

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn bx(typ: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = be32(8 + payload.len() as u32).to_vec();
    v.extend_from_slice(typ);
    v.extend_from_slice(payload);
    v
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn mp4() -> Vec<u8> {
    let ftyp = bx(b"ftyp", b"isom\0\0\x02\0isommp41");
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&be32(1000));
    mvhd[16..20].copy_from_slice(&be32(5000));
    let mut tkhd = vec![0u8; 84];
    tkhd[76..80].copy_from_slice(&be32(640 << 16));
    tkhd[80..84].copy_from_slice(&be32(360 << 16));
    let mdhd = |ts: u32, dur: u32| {
        let mut d = vec![0u8; 24];
        d[12..16].copy_from_slice(&be32(ts));
        d[16..20].copy_from_slice(&be32(dur));
        bx(b"mdhd", &d)
    };
    let hdlr = |h: &[u8; 4]| bx(b"hdlr", &cat(&[vec![0; 8], h.to_vec(), vec![0; 13]]));
    let mut avc1 = vec![0u8; 78];
    avc1[24..26].copy_from_slice(&640u16.to_be_bytes());
    avc1[26..28].copy_from_slice(&360u16.to_be_bytes());
    let stsd_v = bx(
        b"stsd",
        &cat(&[vec![0, 0, 0, 0, 0, 0, 0, 1], bx(b"avc1", &avc1)]),
    );
    let stsz = bx(b"stsz", &cat(&[vec![0; 8], be32(125).to_vec()]));
    let video = bx(
        b"trak",
        &cat(&[
            bx(b"tkhd", &tkhd),
            bx(
                b"mdia",
                &cat(&[
                    mdhd(12800, 64000),
                    hdlr(b"vide"),
                    bx(b"minf", &bx(b"stbl", &cat(&[stsd_v, stsz]))),
                ]),
            ),
        ]),
    );
    let mut mp4a = vec![0u8; 28];
    mp4a[16..18].copy_from_slice(&2u16.to_be_bytes());
    mp4a[18..20].copy_from_slice(&16u16.to_be_bytes());
    mp4a[24..28].copy_from_slice(&be32(48000 << 16));
    let esds = bx(
        b"esds",
        &[
            0, 0, 0, 0, 3, 0x19, 0, 1, 0, 4, 0x11, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5,
            2, 0x11, 0x90,
        ],
    );
    mp4a.extend(esds);
    let stsd_a = bx(
        b"stsd",
        &cat(&[vec![0, 0, 0, 0, 0, 0, 0, 1], bx(b"mp4a", &mp4a)]),
    );
    let audio = bx(
        b"trak",
        &bx(
            b"mdia",
            &cat(&[
                mdhd(48000, 240000),
                hdlr(b"soun"),
                bx(b"minf", &bx(b"stbl", &stsd_a)),
            ]),
        ),
    );
    let data = bx(b"\xa9nam", &cat(&[bx(b"data", b"\0\0\0\x01\0\0\0\0Clip")]));
    let udta = bx(
        b"udta",
        &bx(b"meta", &cat(&[vec![0; 4], bx(b"ilst", &data)])),
    );
    let moov = bx(b"moov", &cat(&[bx(b"mvhd", &mvhd), video, audio, udta]));
    cat(&[ftyp, bx(b"mdat", &[0u8; 64]), moov])
}

fn ebml(id: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = id.to_vec();
    v.push(0x01);
    v.extend_from_slice(&(payload.len() as u64).to_be_bytes()[1..]);
    v.extend_from_slice(payload);
    v
}

fn mkv() -> Vec<u8> {
    let header = ebml(&[0x1A, 0x45, 0xDF, 0xA3], &ebml(&[0x42, 0x82], b"webm"));
    let info = ebml(
        &[0x15, 0x49, 0xA9, 0x66],
        &cat(&[
            ebml(&[0x2A, 0xD7, 0xB1], &[0x0F, 0x42, 0x40]),
            ebml(&[0x44, 0x89], &5000f64.to_be_bytes()),
            ebml(&[0x7B, 0xA9], b"Clip"),
        ]),
    );
    let video = ebml(
        &[0xAE],
        &cat(&[
            ebml(&[0x83], &[1]),
            ebml(&[0x86], b"V_VP9"),
            ebml(&[0x23, 0xE3, 0x83], &40_000_000u32.to_be_bytes()),
            ebml(
                &[0xE0],
                &cat(&[ebml(&[0xB0], &[2, 0x80]), ebml(&[0xBA], &[1, 0x68])]),
            ),
        ]),
    );
    let audio = ebml(
        &[0xAE],
        &cat(&[
            ebml(&[0x83], &[2]),
            ebml(&[0x86], b"A_OPUS"),
            ebml(
                &[0xE1],
                &cat(&[ebml(&[0xB5], &48000f64.to_be_bytes()), ebml(&[0x9F], &[2])]),
            ),
        ]),
    );
    let tracks = ebml(&[0x16, 0x54, 0xAE, 0x6B], &cat(&[video, audio]));
    let cluster = ebml(&[0x1F, 0x43, 0xB6, 0x75], &[0u8; 32]);
    cat(&[
        header,
        ebml(&[0x18, 0x53, 0x80, 0x67], &cat(&[info, tracks, cluster])),
    ])
}

fn ogg_page(htype: u8, granule: u64, seq: u32, packet: &[u8]) -> Vec<u8> {
    let mut v = b"OggS\0".to_vec();
    v.push(htype);
    v.extend(granule.to_le_bytes());
    v.extend(7u32.to_le_bytes());
    v.extend(seq.to_le_bytes());
    v.extend([0u8; 4]);
    let mut segs = vec![255u8; packet.len() / 255];
    segs.push((packet.len() % 255) as u8);
    v.push(segs.len() as u8);
    v.extend(segs);
    v.extend_from_slice(packet);
    v
}

fn ogg() -> Vec<u8> {
    let mut head = b"OpusHead\x01\x02".to_vec();
    head.extend(312u16.to_le_bytes());
    head.extend(44100u32.to_le_bytes());
    head.extend([0, 0, 0]);
    let mut tags = b"OpusTags".to_vec();
    tags.extend(3u32.to_le_bytes());
    tags.extend(b"enc");
    tags.extend(1u32.to_le_bytes());
    tags.extend(10u32.to_le_bytes());
    tags.extend(b"TITLE=Song");
    cat(&[
        ogg_page(2, 0, 0, &head),
        ogg_page(0, 0, 1, &tags),
        ogg_page(0, 48_000 + 312, 2, &[0u8; 300]),
        ogg_page(4, 96_000 + 312, 3, &[0u8; 10]),
    ])
}

fn wav() -> Vec<u8> {
    let mut v = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0".to_vec();
    v.extend(48000u32.to_le_bytes());
    v.extend(192000u32.to_le_bytes());
    v.extend([4, 0, 16, 0]);
    v.extend(b"LIST\x10\0\0\0INFOINAM\x04\0\0\0Take");
    v.extend(b"data");
    v.extend(1920u32.to_le_bytes());
    v.extend([0u8; 1920]);
    v
}

fn flac() -> Vec<u8> {
    let mut v = b"fLaC\0\0\0\x22".to_vec();
    // min/max block, min/max frame, 44100 Hz, 2 ch, 16 bit, 88200 samples
    v.extend([
        0x10, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x0A, 0xC4, 0x42, 0xF0, 0, 1, 0x58, 0x88,
    ]);
    v.extend([0u8; 16]);
    let mut c = 3u32.to_le_bytes().to_vec();
    c.extend(b"enc");
    c.extend(1u32.to_le_bytes());
    c.extend(11u32.to_le_bytes());
    c.extend(b"ARTIST=Band");
    v.push(0x84);
    v.extend(&(c.len() as u32).to_be_bytes()[1..]);
    v.extend(c);
    v.extend([0xFF, 0xF8, 0, 0]);
    v
}

fn mp3() -> Vec<u8> {
    let mut v = b"ID3\x03\0\0\0\0\0\x14TIT2\0\0\0\x0a\0\0\x03Song titl".to_vec();
    for _ in 0..3 {
        let mut f = vec![0xFF, 0xFB, 0x90, 0x00];
        f.resize(417, 0);
        v.extend(f);
    }
    v
}

fn psd() -> Vec<u8> {
    let mut v = b"8BPS\0\x01\0\0\0\0\0\0\0\x03".to_vec();
    v.extend(be32(80));
    v.extend(be32(100));
    v.extend([0, 8, 0, 3]);
    v.extend(be32(0));
    v.extend(be32(0));
    let mut rec = Vec::new();
    rec.extend([0u8; 16]);
    rec.extend(3u16.to_be_bytes());
    for id in [0u16, 1, 2] {
        rec.extend(id.to_be_bytes());
        rec.extend(be32(2));
    }
    rec.extend(b"8BIMnorm\xff\0\x02\0");
    let mut extra = be32(0).to_vec();
    extra.extend(be32(0));
    extra.extend(b"\x04Glow\0\0\0");
    extra.extend(b"8BIMluni");
    extra.extend(be32(12));
    extra.extend(be32(4));
    extra.extend(b"\0G\0l\0o\0w");
    rec.extend(be32(extra.len() as u32));
    rec.extend(extra);
    let mut li = 1u16.to_be_bytes().to_vec();
    li.extend(rec);
    li.extend([0u8; 6]);
    let mut lm = be32(li.len() as u32).to_vec();
    lm.extend(li);
    v.extend(be32(lm.len() as u32));
    v.extend(lm);
    v.extend([0u8; 16]);
    v
}

fn tiff() -> Vec<u8> {
    let mut v = b"II*\0\x08\0\0\0".to_vec();
    let entries: &[(u16, u16, u32, u32)] = &[
        (0x100, 3, 1, 300),
        (0x101, 3, 1, 200),
        (0x102, 3, 1, 8),
        (0x106, 3, 1, 2),
        (0x10F, 2, 4, u32::from_le_bytes(*b"Foo\0")),
        (0x112, 3, 1, 3),
        (0x8769, 4, 1, 8 + 2 + 7 * 12 + 4),
    ];
    v.extend((entries.len() as u16).to_le_bytes());
    for &(tag, typ, count, val) in entries {
        v.extend(tag.to_le_bytes());
        v.extend(typ.to_le_bytes());
        v.extend(count.to_le_bytes());
        v.extend(val.to_le_bytes());
    }
    v.extend(0u32.to_le_bytes());
    // EXIF IFD: ExposureTime 1/60 (rational after the IFD), ISO 200
    let exif_at = v.len() as u32;
    v.extend(2u16.to_le_bytes());
    v.extend(0x829Au16.to_le_bytes());
    v.extend(5u16.to_le_bytes());
    v.extend(1u32.to_le_bytes());
    v.extend((exif_at + 2 + 24 + 4).to_le_bytes());
    v.extend(0x8827u16.to_le_bytes());
    v.extend(3u16.to_le_bytes());
    v.extend(1u32.to_le_bytes());
    v.extend(200u32.to_le_bytes());
    v.extend(0u32.to_le_bytes());
    v.extend(1u32.to_le_bytes());
    v.extend(60u32.to_le_bytes());
    v
}

fn jpeg() -> Vec<u8> {
    let t = tiff();
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE1];
    v.extend(((t.len() + 8) as u16).to_be_bytes());
    v.extend(b"Exif\0\0");
    v.extend(&t);
    v.extend([
        0xFF, 0xC0, 0, 17, 8, 0, 48, 0, 64, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
    ]);
    v.extend([0xFF, 0xDA, 0, 2, 0, 0, 0xFF, 0xD9]);
    v
}

fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let chunk = |typ: &[u8], d: &[u8]| {
        let mut c = be32(d.len() as u32).to_vec();
        c.extend_from_slice(typ);
        c.extend_from_slice(d);
        c.extend([0u8; 4]);
        c
    };
    v.extend(chunk(b"IHDR", &[0, 0, 0, 40, 0, 0, 0, 30, 16, 6, 0, 0, 0]));
    v.extend(chunk(b"eXIf", &tiff()));
    v.extend(chunk(b"IDAT", &[0u8; 10]));
    v.extend(chunk(b"IEND", &[]));
    v
}

fn webp() -> Vec<u8> {
    let mut v = b"RIFF\x30\0\0\0WEBPVP8X\x0a\0\0\0\x10\0\0\0".to_vec();
    v.extend([63, 0, 0, 47, 0, 0]);
    v.extend(b"VP8L\x05\0\0\0\x2f\0\0\0\0\0");
    v.extend(b"EXIF");
    let t = tiff();
    v.extend((t.len() as u32).to_le_bytes());
    v.extend(t);
    v
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
      2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
      3 0 obj << /Type /Page /Parent 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        .to_vec()
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a.mp4", mp4()),
        ("a.webm", mkv()),
        ("a.opus", ogg()),
        ("a.wav", wav()),
        ("a.flac", flac()),
        ("a.mp3", mp3()),
        ("a.psd", psd()),
        ("a.tif", tiff()),
        ("a.jpg", jpeg()),
        ("a.png", png()),
        ("a.webp", webp()),
        ("a.pdf", pdf()),
        ("a.gif", b"GIF89a\x0a\0\x07\0\0\0\0;".to_vec()),
        ("a.bmp", {
            let mut b = b"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0".to_vec();
            b.extend(11i32.to_le_bytes());
            b.extend((-9i32).to_le_bytes());
            b.extend([1, 0, 24, 0]);
            b.extend([0u8; 24]);
            b
        }),
    ]
}

/// The seeds parse as intended (so that mutating them explores the
/// parsers' depths rather than their magic checks).
#[test]
fn seeds_are_valid() {
    let get = |name: &str| {
        let s = seeds();
        let (_, b) = s.iter().find(|(n, _)| *n == name).unwrap();
        let m = extract(&mut Cursor::new(b), b.len() as u64, Some(name));
        assert!(m.unreadable.is_none(), "{name}: {m:?}");
        m
    };
    let m = get("a.mp4");
    assert_eq!(
        (m.width, m.height, m.duration),
        (Some(640), Some(360), Some(5.0))
    );
    assert_eq!(m.video_codec.as_deref(), Some("H.264"));
    assert_eq!(m.frame_rate, Some(25.0));
    assert_eq!(m.audio[0].channels, Some(2));
    assert_eq!(m.audio[0].sample_rate, Some(48_000));
    assert_eq!(m.title.as_deref(), Some("Clip"));
    let m = get("a.webm");
    assert_eq!(
        (m.width, m.height, m.duration),
        (Some(640), Some(360), Some(5.0))
    );
    assert_eq!(m.frame_rate, Some(25.0));
    assert_eq!(m.audio[0].codec.as_deref(), Some("Opus"));
    let m = get("a.opus");
    assert_eq!(m.duration, Some(2.0));
    assert_eq!(m.title.as_deref(), Some("Song"));
    assert_eq!(m.audio[0].channels, Some(2));
    let m = get("a.wav");
    assert_eq!(m.duration, Some(0.01));
    assert_eq!(m.title.as_deref(), Some("Take"));
    let m = get("a.flac");
    assert_eq!(m.duration, Some(2.0));
    assert_eq!(m.artist.as_deref(), Some("Band"));
    let m = get("a.mp3");
    assert_eq!(m.title.as_deref(), Some("Song titl"));
    assert_eq!(m.audio[0].sample_rate, Some(44_100));
    let m = get("a.psd");
    assert_eq!(m.layers.len(), 1);
    assert_eq!(m.layers[0].name, "Glow");
    assert!(!m.layers[0].visible);
    let m = get("a.tif");
    assert_eq!((m.width, m.height), (Some(300), Some(200)));
    assert_eq!(m.exposure.as_deref(), Some("1/60"));
    assert_eq!(m.iso, Some(200));
    let m = get("a.jpg");
    assert_eq!((m.width, m.height), (Some(64), Some(48)));
    assert_eq!(m.camera_make.as_deref(), Some("Foo"));
    let m = get("a.png");
    assert_eq!(m.iso, Some(200));
    let m = get("a.webp");
    assert_eq!((m.width, m.height, m.iso), (Some(64), Some(48), Some(200)));
    assert_eq!(get("a.pdf").pages, Some(1));
    assert_eq!(get("a.gif").width, Some(10));
    assert_eq!(get("a.bmp").height, Some(9));
}

const HINTS: &[Option<&str>] = &[
    None,
    Some("x.jpg"),
    Some("x.png"),
    Some("x.tif"),
    Some("x.mp4"),
    Some("x.mkv"),
    Some("x.wav"),
    Some("x.mp3"),
    Some("x.flac"),
    Some("x.ogg"),
    Some("x.psd"),
    Some("x.pdf"),
    Some("x.webp"),
    Some("x.heic"),
    Some("x.aiff"),
    Some("x.bmp"),
    Some("x.gif"),
    Some("x.dng"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        hint in 0..HINTS.len(),
        max_read in 0u64..4096,
    ) {
        let limits = Limits { max_read, ..Limits::default() };
        let (_, read) = run(&bytes, HINTS[hint], &limits);
        prop_assert!(read <= max_read);
    }

    #[test]
    fn random_bytes_behind_magic_never_panic(
        magic in 0..14usize,
        tail in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let s = seeds();
        let (name, seed) = &s[magic];
        let mut bytes = seed[..seed.len().min(12)].to_vec();
        bytes.extend(tail);
        let limits = Limits::default();
        let (m, read) = run(&bytes, Some(name), &limits);
        prop_assert!(read <= 16 * bytes.len() as u64 + 4096);
        prop_assert!(m.kind != Kind::Other);
    }

    #[test]
    fn mutated_seeds_never_panic(
        which in 0..14usize,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        named in any::<bool>(),
        max_read in 0u64..8192,
    ) {
        let s = seeds();
        let (name, seed) = &s[which];
        let mut bytes = seed.clone();
        for (i, b) in edits {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let hint = if named { Some(*name) } else { None };
        let (_, read) = run(&bytes, hint, &Limits::default());
        prop_assert!(read <= 16 * bytes.len() as u64 + 4096);
        let limits = Limits { max_read, max_items: 50, max_depth: 4 };
        let (_, read) = run(&bytes, hint, &limits);
        prop_assert!(read <= max_read);
    }

    #[test]
    fn huge_fields_never_allocate_or_hang(
        which in 0..14usize,
        at in any::<prop::sample::Index>(),
        width in 1usize..9,
        fill in prop_oneof![Just(0xFFu8), Just(0x7F), Just(0x80), Just(0)],
    ) {
        let s = seeds();
        let (name, seed) = &s[which];
        let mut bytes = seed.clone();
        let i = at.index(bytes.len());
        let end = (i + width).min(bytes.len());
        bytes[i..end].fill(fill);
        let t = std::time::Instant::now();
        let (_, read) = run(&bytes, Some(name), &Limits::default());
        prop_assert!(read <= 16 * bytes.len() as u64 + 4096);
        prop_assert!(t.elapsed().as_secs() < 2);
    }
}
