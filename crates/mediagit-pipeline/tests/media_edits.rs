//! Metadata edits of real media files (made at test time with ImageMagick,
//! ffmpeg, sox and exiftool; a test is skipped, saying so, when one of
//! these is missing): with the format-aware cut points, the chunks of the
//! edited file that the original does not have hold under 1% of its bytes.
//! Each test prints the measure, and the same without the cut points.
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mediagit_format::config::ChunkingConfig;
use mediagit_pipeline::{media, Chunker};

/// A scratch directory, removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("mediagit-media-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of `name` on PATH (ImageMagick's real `convert` first).
fn tool(name: &str) -> Option<PathBuf> {
    if name == "convert" && Path::new("/usr/bin/convert").exists() {
        return Some("/usr/bin/convert".into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The tools, or `None` (and a note) when one is missing.
fn tools(names: &[&str]) -> Option<Vec<PathBuf>> {
    let found: Option<Vec<PathBuf>> = names.iter().map(|n| tool(n)).collect();
    if found.is_none() {
        eprintln!("skipped: needs {}", names.join(", "));
    }
    found
}

fn run(program: &Path, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `program` with the words of `line`, each `{}` replaced by the next
/// of `paths` and each `~` by a space.
fn sh(program: &Path, line: &str, paths: &[&Path]) {
    let mut paths = paths.iter();
    let args: Vec<String> = line
        .split_whitespace()
        .map(|w| match w {
            "{}" => s(paths.next().unwrap()).to_string(),
            w => w.replace('~', " "),
        })
        .collect();
    assert!(paths.next().is_none());
    run(
        program,
        &args.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `exiftool -overwrite_original` with `tags` on `file`.
fn exiftool(file: &Path, tags: &[&str]) {
    let exiftool = tool("exiftool").unwrap();
    let mut args = vec!["-q", "-q", "-overwrite_original"];
    args.extend_from_slice(tags);
    args.push(s(file));
    run(&exiftool, &args);
}

/// The tags of the first version of a photo or video.
const TAGS_A: &[&str] = &[
    "-Artist=Ann Example",
    "-Copyright=(c) 2024 Ann Example",
    "-Keywords=holiday",
    "-XMP:Subject=holiday",
    "-GPSLatitude=48.8566",
    "-GPSLatitudeRef=N",
    "-GPSLongitude=2.3522",
    "-GPSLongitudeRef=E",
];

/// A re-tag: new artist and copyright, one more keyword, another place.
const TAGS_B: &[&str] = &[
    "-Artist=Bob Otherperson",
    "-Copyright=(c) 2025 Bob Otherperson, all rights reserved",
    "-Keywords+=family",
    "-XMP:Subject+=family",
    "-GPSLatitude=40.4168",
    "-GPSLongitude=3.7038",
    "-GPSLongitudeRef=W",
];

/// Cut points of `path`, read as the repository does: a head of
/// `CUT_PROBE` bytes, positioned reads for the rest. Also the bytes read
/// beyond the head (headers only: never the payload).
fn cut_points(path: &Path) -> (Vec<u64>, u64) {
    let file = File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let mut head = vec![0u8; (len as usize).min(media::CUT_PROBE)];
    file.read_exact_at(&mut head, 0).unwrap();
    let mut read = 0u64;
    let mut read_at = |at: u64, buf: &mut [u8]| {
        read += buf.len() as u64;
        file.read_exact_at(buf, at)
    };
    let cuts = media::cut_points(&head, len, &mut read_at);
    // A walk with no head at all finds the same cuts.
    let mut read_at = |at: u64, buf: &mut [u8]| file.read_exact_at(buf, at);
    assert_eq!(media::cut_points(&[], len, &mut read_at), cuts);
    (cuts, read)
}

#[derive(Clone, Copy)]
enum Cuts {
    /// Content-defined boundaries only.
    None,
    /// With [`media::cut_points`].
    All,
    /// With the JPEG header's end only ([`media::jpeg_header_len`]).
    JpegHeader,
}

/// The chunks of `path` with the repository's default parameters.
fn chunks(path: &Path, cuts: Cuts) -> Vec<Vec<u8>> {
    let mut c = Chunker::new(File::open(path).unwrap(), ChunkingConfig::default());
    match cuts {
        Cuts::None => {}
        Cuts::All => c.cut_at_all(cut_points(path).0),
        Cuts::JpegHeader => {
            let bytes = std::fs::read(path).unwrap();
            let probe = &bytes[..bytes.len().min(media::JPEG_HEADER_PROBE)];
            c.cut_at_all(media::jpeg_header_len(probe).map(|h| h as u64));
        }
    }
    let mut out = Vec::new();
    while let Some(ch) = c.next_chunk().unwrap() {
        out.push(ch.to_vec());
    }
    out
}

/// Bytes of the chunks of `edited` that `original` does not have.
fn unshared(original: &Path, edited: &Path, cuts: Cuts) -> u64 {
    let have: HashSet<Vec<u8>> = chunks(original, cuts).into_iter().collect();
    let new = chunks(edited, cuts);
    new.iter()
        .filter(|c| !have.contains(*c))
        .map(|c| c.len() as u64)
        .sum()
}

/// Asserts that the edit from `original` to `edited` leaves under 1% of
/// `edited` in chunks that `original` lacks, and prints the measure.
fn check(what: &str, original: &Path, edited: &Path) -> u64 {
    let len = std::fs::metadata(edited).unwrap().len();
    assert_ne!(
        std::fs::read(original).unwrap(),
        std::fs::read(edited).unwrap(),
        "{what}: no edit"
    );
    let (cuts, read) = cut_points(edited);
    assert!(!cuts.is_empty(), "{what}: no cut points");
    assert!(
        read <= (64 << 10) + len / 1000,
        "{what}: {read} bytes read for the cut points"
    );
    let with = unshared(original, edited, Cuts::All);
    let without = unshared(original, edited, Cuts::None);
    let pct = |n: u64| 100.0 * n as f64 / len as f64;
    println!(
        "{what}: {len} bytes, {} cut points, {read} bytes read beyond the head; unshared {with} bytes ({:.3}%), without cut points {without} ({:.2}%)",
        cuts.len(),
        pct(with),
        pct(without)
    );
    assert!(with * 100 < len, "{what}: {with} of {len} bytes unshared");
    with
}

/// Compares with the JPEG header cut alone (what the repository did
/// before [`media::cut_points`]).
fn check_jpeg(what: &str, original: &Path, edited: &Path) {
    let with = check(what, original, edited);
    let header_only = unshared(original, edited, Cuts::JpegHeader);
    println!("{what}: with the header cut alone, unshared {header_only} bytes");
    assert!(with <= header_only);
}

#[test]
fn jpeg_retag() {
    let Some(t) = tools(&["convert", "exiftool"]) else {
        return;
    };
    let d = Scratch::new("jpeg");
    let (a, b) = (d.path("a.jpg"), d.path("b.jpg"));
    sh(
        &t[0],
        "-seed 1 -size 2400x1800 plasma: -attenuate 0.5 +noise Gaussian -quality 92 {}",
        &[&a],
    );
    exiftool(&a, TAGS_A);
    std::fs::copy(&a, &b).unwrap();
    exiftool(&b, TAGS_B);
    check_jpeg("jpeg exiftool re-tag", &a, &b);
    // A 60 KB ICC profile (APP2) keeps its chunk when the EXIF changes.
    let (icc, c, e) = (d.path("p.icc"), d.path("c.jpg"), d.path("e.jpg"));
    let mut profile = vec![0u8; 60_000];
    profile[..4].copy_from_slice(&60_000u32.to_be_bytes());
    profile[12..20].copy_from_slice(b"mntrRGB ");
    profile[36..40].copy_from_slice(b"acsp");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in &mut profile[128..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&icc, &profile).unwrap();
    std::fs::copy(&b, &c).unwrap();
    exiftool(&c, &[&format!("-ICC_Profile<={}", s(&icc))]);
    std::fs::copy(&c, &e).unwrap();
    exiftool(&e, &["-Artist=Carol", "-XMP:Rating=4"]);
    check_jpeg("jpeg with a 60 KB ICC profile, re-tag", &c, &e);
}

#[test]
fn png_retag() {
    let Some(t) = tools(&["convert", "exiftool"]) else {
        return;
    };
    let d = Scratch::new("png");
    let (a, b) = (d.path("a.png"), d.path("b.png"));
    sh(
        &t[0],
        "-seed 3 -size 1400x1000 plasma: -attenuate 0.4 +noise Gaussian {}",
        &[&a],
    );
    exiftool(&a, TAGS_A);
    std::fs::copy(&a, &b).unwrap();
    exiftool(&b, TAGS_B);
    exiftool(&b, &["-PNG:Comment=a comment after the edit"]);
    check("png exiftool re-tag", &a, &b);
}

#[test]
fn tiff_retag() {
    let Some(t) = tools(&["convert", "exiftool"]) else {
        return;
    };
    let d = Scratch::new("tiff");
    let (o, a, b) = (d.path("o.tif"), d.path("a.tif"), d.path("b.tif"));
    sh(
        &t[0],
        "-seed 1 -size 1500x1200 plasma: -attenuate 0.3 +noise Gaussian {}",
        &[&o],
    );
    // ImageMagick writes the strips first and IFD0 at the end; exiftool
    // rewrites the file with the IFDs first, the strips after them.
    std::fs::copy(&o, &a).unwrap();
    exiftool(&a, TAGS_A);
    check("tiff first tag (IFD moved to the front)", &o, &a);
    std::fs::copy(&a, &b).unwrap();
    exiftool(&b, TAGS_B);
    check("tiff exiftool re-tag", &a, &b);
    // Big-endian, tiled.
    let (tb, tc) = (d.path("tb.tif"), d.path("tc.tif"));
    sh(
        &t[0],
        "-seed 2 -size 1200x1000 plasma: -define tiff:endian=msb -define tiff:tile-geometry=256x256 {}",
        &[&tb],
    );
    assert_eq!(&std::fs::read(&tb).unwrap()[..4], b"MM\0*");
    exiftool(&tb, TAGS_A);
    std::fs::copy(&tb, &tc).unwrap();
    exiftool(&tc, TAGS_B);
    check("tiff tiled big-endian re-tag", &tb, &tc);
}

#[test]
fn heic_retag() {
    let Some(t) = tools(&["convert", "exiftool"]) else {
        return;
    };
    let d = Scratch::new("heic");
    let (a, b) = (d.path("a.heic"), d.path("b.heic"));
    let made = Command::new(&t[0])
        .args([
            "-seed",
            "1",
            "-size",
            "1600x1200",
            "plasma:",
            "-attenuate",
            "0.5",
            "+noise",
            "Gaussian",
        ])
        .args(["-quality", "90", s(&a)])
        .output()
        .unwrap();
    if !made.status.success() {
        eprintln!("skipped: ImageMagick writes no HEIC here");
        return;
    }
    // exiftool puts the EXIF and XMP items at the start of mdat, before
    // the image's data, which moves when they grow.
    exiftool(&a, TAGS_A);
    std::fs::copy(&a, &b).unwrap();
    exiftool(&b, TAGS_B);
    check("heic exiftool re-tag", &a, &b);
}

/// A ~10 MB H.264 + AAC clip, moov at the end (or first with faststart).
fn mp4(ffmpeg: &Path, out: &Path, faststart: bool) {
    let line = format!(
        "-v error -y -f lavfi -i testsrc2=s=960x540:r=30 -f lavfi -i sine=f=440:sample_rate=48000 -t 12 \
         -c:v libx264 -preset ultrafast -b:v 7M -c:a aac -b:a 128k {} {{}}",
        if faststart { "-movflags +faststart" } else { "" }
    );
    sh(ffmpeg, &line, &[out]);
}

fn mp4_retag(faststart: bool) {
    let Some(t) = tools(&["ffmpeg", "exiftool"]) else {
        return;
    };
    let name = if faststart {
        "mp4-faststart"
    } else {
        "mp4-end"
    };
    let d = Scratch::new(name);
    let (o, a, b) = (d.path("o.mp4"), d.path("a.mp4"), d.path("b.mp4"));
    mp4(&t[0], &o, faststart);
    std::fs::copy(&o, &a).unwrap();
    // exiftool rewrites the file, moov (grown) before mdat, a uuid (XMP)
    // box after it: mdat's bytes move, and the chunk offsets in moov change.
    exiftool(&a, &["-Title=First title", "-Comment=first", "-Artist=Ann"]);
    check(&format!("{name} first tag"), &o, &a);
    std::fs::copy(&a, &b).unwrap();
    exiftool(
        &b,
        &[
            "-Title=A much longer second title",
            "-Comment=second comment",
            "-Artist=Bob",
            "-XMP:Subject=x",
        ],
    );
    check(&format!("{name} re-tag"), &a, &b);
}

#[test]
fn mp4_moov_at_end_retag() {
    mp4_retag(false);
}

#[test]
fn mp4_faststart_retag() {
    mp4_retag(true);
}

#[test]
fn wav_tag_edit() {
    let Some(t) = tools(&["sox", "ffmpeg"]) else {
        return;
    };
    let d = Scratch::new("wav");
    let (o, a, b) = (d.path("o.wav"), d.path("a.wav"), d.path("b.wav"));
    sh(
        &t[0],
        "-n -r 44100 -c 2 -b 16 {} synth 30 pinknoise vol 0.5",
        &[&o],
    );
    let tag = "-v error -y -i {} -c copy";
    sh(
        &t[1],
        &format!("{tag} -metadata title=Song -metadata artist=Ann {{}}"),
        &[&o, &a],
    );
    check("wav first tags (LIST before data)", &o, &a);
    sh(
        &t[1],
        &format!("{tag} -metadata title=A~much~longer~song~title -metadata artist=Bob -metadata comment=remastered {{}}"),
        &[&a, &b],
    );
    check("wav tag edit", &a, &b);
}

#[test]
fn flac_tag_edit() {
    let Some(t) = tools(&["sox", "ffmpeg", "convert"]) else {
        return;
    };
    let d = Scratch::new("flac");
    let (raw, cover) = (d.path("raw.flac"), d.path("cover.jpg"));
    let (a, b) = (d.path("a.flac"), d.path("b.flac"));
    sh(
        &t[0],
        "-n -r 44100 -c 2 -b 16 {} synth 40 pinknoise vol 0.5",
        &[&raw],
    );
    sh(
        &t[2],
        "-seed 4 -size 500x500 plasma: -quality 90 {}",
        &[&cover],
    );
    // With cover art (a PICTURE block) and tags.
    sh(
        &t[1],
        "-v error -y -i {} -i {} -map 0 -map 1 -c copy -disposition:v attached_pic -metadata title=Song {}",
        &[&raw, &cover, &a],
    );
    sh(
        &t[1],
        "-v error -y -i {} -map 0 -c copy -metadata title=A~much~longer~song~title -metadata artist=Bob {}",
        &[&a, &b],
    );
    check("flac tag edit (with a picture)", &a, &b);
}

/// A three-layer PSD (about 17 MB) made by ImageMagick.
fn psd(convert: &Path, d: &Scratch, out: &Path) {
    let (l1, l2, l3) = (d.path("l1.png"), d.path("l2.png"), d.path("l3.png"));
    let merged = d.path("merged.png");
    sh(convert, "-seed 5 -size 1200x900 plasma: {}", &[&l1]);
    sh(
        convert,
        "-seed 6 -size 1200x900 xc: +noise Random -alpha set -channel A -evaluate set 60% {}",
        &[&l2],
    );
    sh(convert, "-size 1200x900 gradient:red-blue {}", &[&l3]);
    sh(convert, "{} {} {} -flatten {}", &[&l1, &l2, &l3, &merged]);
    sh(convert, "{} {} {} {} {}", &[&merged, &l1, &l2, &l3, out]);
}

#[test]
fn psd_retag_and_layer_rename() {
    let Some(t) = tools(&["convert", "exiftool", "python3"]) else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/psd_rename_layer.py");
    let d = Scratch::new("psd");
    let (o, a, b, c) = (
        d.path("o.psd"),
        d.path("a.psd"),
        d.path("b.psd"),
        d.path("c.psd"),
    );
    psd(&t[0], &d, &o);
    std::fs::copy(&o, &a).unwrap();
    exiftool(&a, TAGS_A);
    check("psd first tag (image resources grow)", &o, &a);
    std::fs::copy(&a, &b).unwrap();
    exiftool(&b, TAGS_B);
    check("psd exiftool re-tag", &a, &b);
    std::fs::copy(&b, &c).unwrap();
    run(
        &t[2],
        &[s(&script), s(&c), "L2", "Sky and clouds, second pass"],
    );
    check("psd layer rename", &b, &c);
}
