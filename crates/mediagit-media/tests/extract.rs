//! Extraction from real files made at test time by ffmpeg, ImageMagick,
//! sox and exiftool, each field cross-checked against `exiftool -json -n`
//! or `ffprobe`; every file is also cut short and damaged (no panic, reads
//! bounded). A tool or encoder that is missing skips its case with a note
//! on stderr. Hand-built files cover hostile lengths and counts.

use std::fs;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mediagit_media::{extract, extract_with, Kind, Limits, Metadata};
use serde_json::Value;

// ---- helpers -------------------------------------------------------------------

/// A reader that counts the bytes it returns.
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

fn which(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tools(list: &[&str]) -> bool {
    let missing: Vec<&&str> = list.iter().filter(|t| !which(t)).collect();
    if !missing.is_empty() {
        eprintln!("note: skipped, missing tools: {missing:?}");
    }
    missing.is_empty()
}

fn encoders() -> &'static str {
    static E: OnceLock<String> = OnceLock::new();
    E.get_or_init(|| {
        Command::new("ffmpeg")
            .args(["-hide_banner", "-encoders"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    })
}

fn has_encoder(name: &str) -> bool {
    let ok = encoders()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(name));
    if !ok {
        eprintln!("note: ffmpeg encoder {name} missing, case skipped");
    }
    ok
}

fn run(cmd: &str, args: &[&str]) -> bool {
    match Command::new(cmd).args(args).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "note: {cmd} {args:?} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("note: {cmd} not runnable: {e}");
            false
        }
    }
}

fn ffmpeg(args: &[&str]) -> bool {
    let mut a = vec!["-y", "-v", "error", "-nostdin"];
    a.extend_from_slice(args);
    run("ffmpeg", &a)
}

fn json_of(cmd: &str, args: &[&str]) -> Value {
    let o = Command::new(cmd).args(args).output().expect("runs");
    assert!(o.status.success(), "{cmd} {args:?}");
    serde_json::from_slice(&o.stdout).expect("json")
}

fn ffprobe(p: &Path) -> Value {
    let path = p.to_str().unwrap();
    json_of(
        "ffprobe",
        &[
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            path,
        ],
    )
}

fn exiftool(p: &Path) -> Value {
    let v = json_of("exiftool", &["-json", "-n", p.to_str().unwrap()]);
    v[0].clone()
}

/// Extracts with a counting reader; checks the read budget.
fn extract_path(p: &Path) -> (Metadata, u64) {
    let f = fs::File::open(p).unwrap();
    let len = f.metadata().unwrap().len();
    let mut r = Counting { inner: f, read: 0 };
    let m = extract(&mut r, len, p.file_name().and_then(|n| n.to_str()));
    assert!(r.read <= Limits::default().max_read);
    (m, r.read)
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn close(a: f64, b: f64, abs: f64, rel: f64) -> bool {
    (a - b).abs() <= abs.max(rel * b.abs())
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.split_whitespace().next()?.parse().ok(),
        _ => None,
    }
}

fn ratio(s: &str) -> Option<f64> {
    let (a, b) = s.split_once('/')?;
    let (a, b): (f64, f64) = (a.parse().ok()?, b.parse().ok()?);
    (b != 0.0 && a != 0.0).then(|| a / b)
}

fn ffprobe_codec(name: &str) -> String {
    match name {
        "h264" => "H.264",
        "hevc" => "HEVC",
        "av1" => "AV1",
        "vp9" => "VP9",
        "vp8" => "VP8",
        "prores" => "ProRes",
        "theora" => "Theora",
        "aac" => "AAC",
        "mp3" => "MP3",
        "opus" => "Opus",
        "vorbis" => "Vorbis",
        "flac" => "FLAC",
        "alac" => "ALAC",
        "ac3" => "AC-3",
        n if n.starts_with("pcm_f") => "PCM float",
        n if n.starts_with("pcm_") => "PCM",
        n => n,
    }
    .to_string()
}

/// The (lower-case key) tags of the format and of every stream.
fn probe_tag(p: &Value, key: &str) -> Option<String> {
    let mut objs = vec![&p["format"]["tags"]];
    if let Some(s) = p["streams"].as_array() {
        objs.extend(s.iter().map(|s| &s["tags"]));
    }
    for o in objs {
        if let Some(map) = o.as_object() {
            for (k, v) in map {
                if k.eq_ignore_ascii_case(key) {
                    return v.as_str().map(str::to_string);
                }
            }
        }
    }
    None
}

/// Cross-checks an audio/video record against ffprobe.
fn check_av(p: &Path, m: &Metadata) {
    let probe = ffprobe(p);
    let ctx = p.display().to_string();
    assert!(m.unreadable.is_none(), "{ctx}: {:?}", m.unreadable);
    let streams = probe["streams"].as_array().unwrap();
    let video: Vec<&Value> = streams
        .iter()
        .filter(|s| s["codec_type"] == "video")
        .collect();
    let audio: Vec<&Value> = streams
        .iter()
        .filter(|s| s["codec_type"] == "audio")
        .collect();
    assert_eq!(
        m.kind,
        if video.is_empty() {
            Kind::Audio
        } else {
            Kind::Video
        },
        "{ctx}"
    );
    if let Some(d) = num(&probe["format"]["duration"]) {
        let got = m.duration.unwrap_or_else(|| panic!("{ctx}: no duration"));
        assert!(close(got, d, 0.05, 0.01), "{ctx}: duration {got} vs {d}");
    }
    if let Some(v) = video.first() {
        assert_eq!(m.width, v["width"].as_u64().map(|w| w as u32), "{ctx}");
        assert_eq!(m.height, v["height"].as_u64().map(|h| h as u32), "{ctx}");
        assert_eq!(
            m.video_codec.as_deref(),
            Some(ffprobe_codec(v["codec_name"].as_str().unwrap()).as_str()),
            "{ctx}"
        );
        if let Some(fr) = v["avg_frame_rate"].as_str().and_then(ratio) {
            match m.frame_rate {
                Some(got) => assert!(close(got, fr, 0.0, 0.01), "{ctx}: fps {got} vs {fr}"),
                None => eprintln!("note: {ctx}: no frame rate (ffprobe {fr})"),
            }
        }
    }
    assert_eq!(m.audio.len(), audio.len(), "{ctx}: audio tracks");
    for (a, s) in m.audio.iter().zip(&audio) {
        assert_eq!(
            a.codec.as_deref(),
            Some(ffprobe_codec(s["codec_name"].as_str().unwrap()).as_str()),
            "{ctx}"
        );
        assert_eq!(a.channels.map(u64::from), s["channels"].as_u64(), "{ctx}");
        assert_eq!(
            a.sample_rate.map(f64::from),
            num(&s["sample_rate"]),
            "{ctx}: sample rate"
        );
        let bits = num(&s["bits_per_raw_sample"])
            .filter(|&b| b > 0.0)
            .or(num(&s["bits_per_sample"]).filter(|&b| b > 0.0));
        if let (Some(got), Some(b)) = (a.bit_depth, bits) {
            assert_eq!(f64::from(got), b, "{ctx}: bit depth");
        }
    }
    for (key, got) in [
        ("title", &m.title),
        ("artist", &m.artist),
        ("album", &m.album),
    ] {
        assert_eq!(
            got.as_deref(),
            probe_tag(&probe, key).as_deref(),
            "{ctx}: {key}"
        );
    }
    if let Some(c) = probe_tag(&probe, "creation_time") {
        let got = m
            .created
            .as_deref()
            .unwrap_or_else(|| panic!("{ctx}: no created"));
        assert_eq!(&got[..19], &c[..19], "{ctx}");
    }
    if let (Some(br), Some(got)) = (num(&probe["format"]["bit_rate"]), m.bit_rate) {
        assert!(
            close(got as f64, br, 0.0, 0.03),
            "{ctx}: bit rate {got} vs {br}"
        );
    }
}

/// Cut the file short and damage it: never a panic, reads bounded,
/// "unreadable" for cuts inside the first bytes.
fn robust(p: &Path) {
    let data = fs::read(p).unwrap();
    let name = p.file_name().unwrap().to_str().unwrap().to_string();
    let limits = Limits {
        max_read: 4 << 20,
        ..Limits::default()
    };
    let check = |bytes: &[u8], what: &str| -> Metadata {
        let mut r = Counting {
            inner: Cursor::new(bytes),
            read: 0,
        };
        let m = extract_with(&mut r, bytes.len() as u64, Some(&name), &limits);
        assert!(r.read <= limits.max_read, "{name} {what}: read {}", r.read);
        m
    };
    let full = check(&data, "full");
    let mut cuts: Vec<usize> = vec![
        0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 16, 20, 24, 27, 28, 33, 40, 48, 64, 100, 128, 200,
        300, 512, 1000, 2000, 4096,
    ];
    cuts.extend([data.len() / 3, data.len() / 2, data.len() - 1]);
    for &c in cuts.iter().filter(|&&c| c < data.len()) {
        let m = check(&data[..c], &format!("cut at {c}"));
        if c <= 8 {
            assert!(m.unreadable.is_some(), "{name} cut at {c}: {m:?}");
        }
        assert!(
            m.kind == full.kind || m.unreadable.is_some(),
            "{name} cut {c}"
        );
    }
    let mut bad = data.clone();
    let step = (data.len() / 400).max(1);
    let span = data.len().min(8192);
    let positions: Vec<usize> = (0..span)
        .step_by(1.max(span / 300))
        .chain((0..data.len()).step_by(step))
        .collect();
    for &i in &positions {
        bad[i] ^= 0xFF;
        check(&bad, &format!("flip at {i}"));
        bad[i] = data[i];
        let end = (i + 4).min(data.len());
        bad[i..end].fill(0xFF);
        check(&bad, &format!("0xFF at {i}"));
        bad[i..end].copy_from_slice(&data[i..end]);
        bad[i..end].fill(0);
        check(&bad, &format!("zeros at {i}"));
        bad[i..end].copy_from_slice(&data[i..end]);
    }
}

fn extract_checked(p: &Path) -> Metadata {
    let (m, read) = extract_path(p);
    let len = fs::metadata(p).unwrap().len();
    assert!(
        read <= len.max(1) + 4096,
        "{}: read {read} of {len}",
        p.display()
    );
    robust(p);
    m
}

// ---- images --------------------------------------------------------------------

fn check_exif(p: &Path, m: &Metadata) {
    let png = p.extension().is_some_and(|e| e == "png");
    let e = exiftool(p);
    let ctx = p.display().to_string();
    let s = |k: &str| e[k].as_str().map(str::to_string);
    assert_eq!(m.camera_make, s("Make"), "{ctx}");
    assert_eq!(m.camera_model, s("Model"), "{ctx}");
    assert_eq!(m.lens, s("LensModel"), "{ctx}");
    assert_eq!(
        m.orientation.map(u64::from),
        e["Orientation"].as_u64(),
        "{ctx}"
    );
    assert_eq!(m.iso.map(u64::from), e["ISO"].as_u64(), "{ctx}");
    let date = s("DateTimeOriginal")
        .or(s("ModifyDate"))
        .map(|d| d.replacen(':', "-", 2).replacen(' ', "T", 1));
    assert_eq!(m.taken, date, "{ctx}");
    match num(&e["ExposureTime"]) {
        Some(x) => {
            let (a, b) = m.exposure.as_deref().unwrap().split_once('/').unwrap();
            let got: f64 = a.parse::<f64>().unwrap() / b.parse::<f64>().unwrap();
            assert!(close(got, x, 1e-9, 1e-6), "{ctx}");
        }
        None => assert_eq!(m.exposure, None, "{ctx}"),
    }
    match num(&e["FNumber"]) {
        Some(x) => assert!(close(m.f_number.unwrap(), x, 1e-6, 0.0), "{ctx}"),
        None => assert_eq!(m.f_number, None, "{ctx}"),
    }
    match (num(&e["GPSLatitude"]), num(&e["GPSLongitude"])) {
        (Some(lat), Some(lon)) => {
            let g = m.gps.as_ref().unwrap_or_else(|| panic!("{ctx}: no gps"));
            // -n gives the signed composite values
            assert!(
                close(g.lat, lat, 1e-4, 0.0),
                "{ctx}: lat {} vs {lat}",
                g.lat
            );
            assert!(
                close(g.lon, lon, 1e-4, 0.0),
                "{ctx}: lon {} vs {lon}",
                g.lon
            );
            if let Some(alt) = num(&e["GPSAltitude"]) {
                let sign = if e["GPSAltitudeRef"].as_u64() == Some(1) {
                    -1.0
                } else {
                    1.0
                };
                assert!(close(g.alt.unwrap(), sign * alt, 1e-3, 0.0), "{ctx}");
            }
        }
        _ => assert_eq!(m.gps, None, "{ctx}"),
    }
    // (a PNG's colour space is its pixel layout)
    if e["ColorSpace"].as_u64() == Some(1) && !png {
        assert_eq!(m.color_space.as_deref(), Some("sRGB"), "{ctx}");
    }
}

fn check_dims(p: &Path, m: &Metadata) {
    let e = exiftool(p);
    assert_eq!(
        m.width.map(u64::from),
        e["ImageWidth"].as_u64(),
        "{}",
        p.display()
    );
    assert_eq!(
        m.height.map(u64::from),
        e["ImageHeight"].as_u64(),
        "{}",
        p.display()
    );
    assert_eq!(m.kind, Kind::Image);
    assert!(
        m.unreadable.is_none(),
        "{}: {:?}",
        p.display(),
        m.unreadable
    );
}

const EXIF_ARGS: &[&str] = &[
    "-q",
    "-overwrite_original",
    "-Make=Canon",
    "-Model=Canon EOS R5",
    "-LensModel=RF24-70mm F2.8 L IS USM",
    "-DateTimeOriginal=2024:05:01 12:34:56",
    "-GPSLatitude=48.858370",
    "-GPSLatitudeRef=N",
    "-GPSLongitude=2.294481",
    "-GPSLongitudeRef=E",
    "-GPSAltitude=35.5",
    "-GPSAltitudeRef=0",
    "-Orientation#=6",
    "-ISO=400",
    "-ExposureTime=1/250",
    "-FNumber=2.8",
    "-ColorSpace=sRGB",
];

fn exif_write(p: &Path, extra: &[&str]) -> bool {
    let mut a: Vec<&str> = EXIF_ARGS.to_vec();
    a.extend_from_slice(extra);
    a.push(p.to_str().unwrap());
    run("exiftool", &a)
}

#[test]
fn jpeg_with_exif() {
    if !tools(&["convert", "exiftool"]) {
        return;
    }
    let d = dir();
    let p = d.path().join("photo.jpg");
    assert!(run(
        "convert",
        &["-size", "64x48", "gradient:red-blue", p.to_str().unwrap()]
    ));
    assert!(exif_write(&p, &[]));
    let m = extract_checked(&p);
    check_dims(&p, &m);
    check_exif(&p, &m);
    let e = exiftool(&p);
    assert_eq!(m.bit_depth.map(u64::from), e["BitsPerSample"].as_u64());
    assert_eq!(m.mime.as_deref(), Some("image/jpeg"));
    assert_eq!(m.format.as_deref(), Some("JPEG"));
    assert_eq!(m.camera_model.as_deref(), Some("Canon EOS R5"));
    assert_eq!(m.exposure.as_deref(), Some("1/250"));
    assert_eq!(m.taken.as_deref(), Some("2024-05-01T12:34:56"));
    assert_eq!(mediagit_media::summary(&m), "image 64x48 Canon EOS R5");

    // Southern/western hemisphere, below sea level, grayscale, no ColorSpace.
    let g = d.path().join("gray.jpg");
    assert!(run(
        "convert",
        &[
            "-size",
            "33x17",
            "gradient:",
            "-colorspace",
            "Gray",
            g.to_str().unwrap()
        ]
    ));
    assert!(run(
        "exiftool",
        &[
            "-q",
            "-overwrite_original",
            "-GPSLatitude=33.865143",
            "-GPSLatitudeRef=S",
            "-GPSLongitude=151.209900",
            "-GPSLongitudeRef=W",
            "-GPSAltitude=12",
            "-GPSAltitudeRef=1",
            "-ModifyDate=2020:01:02 03:04:05",
            g.to_str().unwrap()
        ]
    ));
    let m = extract_checked(&g);
    check_dims(&g, &m);
    check_exif(&g, &m);
    assert!(m.gps.as_ref().unwrap().lat < 0.0 && m.gps.as_ref().unwrap().lon < 0.0);
    assert_eq!(m.color_space.as_deref(), Some("grayscale"));
}

/// A minimal ICC v2 profile whose description is `desc`.
fn icc_profile(desc: &str) -> Vec<u8> {
    let mut tag = b"desc\0\0\0\0".to_vec();
    tag.extend((desc.len() as u32 + 1).to_be_bytes());
    tag.extend(desc.as_bytes());
    tag.push(0);
    tag.extend([0u8; 12 + 67]);
    while !tag.len().is_multiple_of(4) {
        tag.push(0);
    }
    let mut p = vec![0u8; 128];
    let total = 128 + 4 + 12 + tag.len();
    p[0..4].copy_from_slice(&(total as u32).to_be_bytes());
    p[8..12].copy_from_slice(&[2, 0x10, 0, 0]);
    p[12..16].copy_from_slice(b"mntr");
    p[16..20].copy_from_slice(b"RGB ");
    p[20..24].copy_from_slice(b"XYZ ");
    p[36..40].copy_from_slice(b"acsp");
    p.extend(1u32.to_be_bytes());
    p.extend(b"desc");
    p.extend(144u32.to_be_bytes());
    p.extend((tag.len() as u32).to_be_bytes());
    p.extend(tag);
    p
}

#[test]
fn jpeg_icc_profile_names_the_colour_space() {
    if !tools(&["convert", "exiftool"]) {
        return;
    }
    let d = dir();
    let icc = d.path().join("p.icc");
    fs::write(&icc, icc_profile("Adobe RGB (1998)")).unwrap();
    let p = d.path().join("icc.jpg");
    assert!(run(
        "convert",
        &["-size", "16x16", "xc:gray", p.to_str().unwrap()]
    ));
    let arg = format!("-icc_profile<={}", icc.display());
    assert!(run(
        "exiftool",
        &["-q", "-overwrite_original", &arg, p.to_str().unwrap()]
    ));
    let e = exiftool(&p);
    assert_eq!(e["ProfileDescription"].as_str(), Some("Adobe RGB (1998)"));
    let m = extract_checked(&p);
    assert_eq!(m.color_space.as_deref(), Some("Adobe RGB"));
}

#[test]
fn png_rgb_rgba16_and_exif() {
    if !tools(&["convert", "exiftool"]) {
        return;
    }
    let d = dir();
    let rgb = d.path().join("rgb.png");
    assert!(run(
        "convert",
        &[
            "-size",
            "40x30",
            "gradient:red-blue",
            &format!("PNG24:{}", rgb.display())
        ]
    ));
    let rgba = d.path().join("rgba16.png");
    assert!(run(
        "convert",
        &[
            "-size",
            "41x31",
            "gradient:red-blue",
            "-alpha",
            "on",
            "-channel",
            "A",
            "-evaluate",
            "set",
            "50%",
            "+channel",
            &format!("PNG64:{}", rgba.display()),
        ]
    ));
    assert!(exif_write(&rgba, &[]));
    for (p, cs) in [(&rgb, "RGB"), (&rgba, "RGBA")] {
        let m = extract_checked(p);
        check_dims(p, &m);
        let e = exiftool(p);
        assert_eq!(m.bit_depth.map(u64::from), e["BitDepth"].as_u64());
        assert_eq!(m.color_space.as_deref(), Some(cs));
        let ct = e["ColorType"].as_u64().unwrap();
        assert_eq!(ct, if cs == "RGB" { 2 } else { 6 });
        if p == &rgba {
            assert_eq!(m.bit_depth, Some(16));
            check_exif(p, &m);
        }
    }
}

#[test]
fn tiff_with_exif_and_gps() {
    if !tools(&["convert", "exiftool"]) {
        return;
    }
    let d = dir();
    let p = d.path().join("scan.tif");
    assert!(run(
        "convert",
        &[
            "-size",
            "50x20",
            "gradient:green-white",
            p.to_str().unwrap()
        ]
    ));
    assert!(exif_write(&p, &["-GPSLatitudeRef=S", "-GPSLongitudeRef=W"]));
    let m = extract_checked(&p);
    check_dims(&p, &m);
    check_exif(&p, &m);
    let e = exiftool(&p);
    assert_eq!(m.bit_depth.map(f64::from), num(&e["BitsPerSample"]));
    assert_eq!(m.format.as_deref(), Some("TIFF"));
    // As a DNG by name (format from the extension).
    let dng = d.path().join("raw.dng");
    fs::copy(&p, &dng).unwrap();
    let (m, _) = extract_path(&dng);
    assert_eq!(m.format.as_deref(), Some("DNG"));
    assert_eq!(m.width, Some(50));
    // The same structure with Olympus' magic number: an ORF, by content.
    let mut orf = fs::read(&p).unwrap();
    assert_eq!(&orf[..4], b"II*\0");
    orf[2..4].copy_from_slice(b"RO");
    let (m, _) = ext(&orf, "P1010001");
    assert_eq!(m.format.as_deref(), Some("ORF"));
    assert_eq!(
        (m.width, m.camera_make.as_deref()),
        (Some(50), Some("Canon"))
    );
    // Big-endian TIFF.
    let mm = d.path().join("be.tif");
    assert!(run(
        "convert",
        &[
            "-size",
            "21x13",
            "xc:red",
            "-endian",
            "MSB",
            mm.to_str().unwrap()
        ]
    ));
    let m = extract_checked(&mm);
    check_dims(&mm, &m);
}

#[test]
fn webp_heic_avif_gif_bmp() {
    if !tools(&["convert", "exiftool"]) {
        return;
    }
    let d = dir();
    let cases: &[(&str, &[&str], bool)] = &[
        ("lossy.webp", &["-quality", "50"], true),
        ("lossless.webp", &["-define", "webp:lossless=true"], true),
        (
            "alpha.webp",
            &[
                "-alpha",
                "on",
                "-channel",
                "A",
                "-evaluate",
                "set",
                "50%",
                "+channel",
            ],
            false,
        ),
        ("photo.heic", &[], true),
        ("photo.avif", &[], true),
        ("anim.gif", &[], false),
        ("pic.bmp", &[], false),
    ];
    for (name, args, exif) in cases {
        let p = d.path().join(name);
        let mut a = vec!["-size", "64x48", "gradient:red-blue"];
        a.extend_from_slice(args);
        let out = p.to_str().unwrap().to_string();
        a.push(&out);
        if !run("convert", &a) {
            eprintln!("note: convert cannot write {name}, skipped");
            continue;
        }
        if *exif && !exif_write(&p, &[]) {
            eprintln!("note: exiftool cannot write EXIF into {name}");
        }
        let m = extract_checked(&p);
        check_dims(&p, &m);
        if *exif {
            check_exif(&p, &m);
        }
    }
}

// ---- video ---------------------------------------------------------------------

fn lavfi_av(size: &str, rate: &str, secs: &str, audio_rate: &str) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc=s={size}:r={rate}:d={secs}"),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("sine=f=440:r={audio_rate}:d={secs}"),
    ]
}

fn make(out: &Path, inputs: Vec<String>, args: &[&str]) -> bool {
    let mut a: Vec<String> = inputs;
    a.extend(args.iter().map(|s| s.to_string()));
    a.push(out.to_str().unwrap().to_string());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    ffmpeg(&a)
}

#[test]
fn mp4_h264_aac_moov_front_and_end() {
    if !tools(&["ffmpeg", "ffprobe"]) || !has_encoder("libx264") {
        return;
    }
    let d = dir();
    let tags = [
        "-metadata",
        "title=Sunset take 3",
        "-metadata",
        "artist=Crew B",
        "-metadata",
        "album=Reel 1",
        "-metadata",
        "creation_time=2024-05-01T12:34:56Z",
    ];
    let mut cases = Vec::new();
    for faststart in [false, true] {
        let p = d
            .path()
            .join(if faststart { "front.mp4" } else { "end.mp4" });
        let mut args = vec![
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-ac",
            "2",
        ];
        args.extend_from_slice(&tags);
        if faststart {
            args.extend_from_slice(&["-movflags", "+faststart"]);
        }
        assert!(make(&p, lavfi_av("320x240", "25", "1", "48000"), &args));
        cases.push(p);
    }
    for p in &cases {
        let m = extract_checked(p);
        check_av(p, &m);
        assert_eq!(m.video_codec.as_deref(), Some("H.264"));
        assert_eq!(m.container.as_deref(), Some("MP4"));
        assert_eq!(m.mime.as_deref(), Some("video/mp4"));
        assert_eq!(m.audio[0].sample_rate, Some(48_000));
        assert_eq!(m.audio[0].channels, Some(2));
        assert_eq!(m.created.as_deref(), Some("2024-05-01T12:34:56Z"));
        assert_eq!(mediagit_media::summary(&m), "video 320x240 H.264 1.0 s");
    }
    // Audio only, iTunes tags: M4A.
    let p = d.path().join("voice.m4a");
    assert!(make(
        &p,
        vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "sine=r=44100:d=1.5".into()
        ],
        &[
            "-c:a",
            "aac",
            "-metadata",
            "title=Voice memo",
            "-metadata",
            "artist=Me",
            "-metadata",
            "album=Memos"
        ]
    ));
    let m = extract_checked(&p);
    check_av(&p, &m);
    assert_eq!(m.kind, Kind::Audio);
    assert_eq!(m.format.as_deref(), Some("M4A"));
    assert_eq!(m.title.as_deref(), Some("Voice memo"));
}

#[test]
fn mov_prores_pcm_and_hevc_av1() {
    if !tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let d = dir();
    if has_encoder("prores_ks") {
        let p = d.path().join("edit.mov");
        assert!(make(
            &p,
            lavfi_av("320x240", "30000/1001", "0.5", "48000"),
            &[
                "-c:v",
                "prores_ks",
                "-profile:v",
                "3",
                "-c:a",
                "pcm_s24le",
                "-ac",
                "2",
                "-metadata",
                "title=Edit"
            ]
        ));
        let m = extract_checked(&p);
        check_av(&p, &m);
        assert_eq!(m.video_codec.as_deref(), Some("ProRes"));
        assert_eq!(m.container.as_deref(), Some("MOV"));
        assert_eq!(m.audio[0].codec.as_deref(), Some("PCM"));
        assert_eq!(m.audio[0].bit_depth, Some(24));
        assert!((m.frame_rate.unwrap() - 29.97).abs() < 0.01);
    }
    if has_encoder("libx265") {
        let p = d.path().join("clip.mp4");
        assert!(make(
            &p,
            lavfi_av("320x240", "25", "0.4", "44100"),
            &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error",
                "-tag:v",
                "hvc1",
                "-c:a",
                "aac"
            ]
        ));
        let m = extract_checked(&p);
        check_av(&p, &m);
        assert_eq!(m.video_codec.as_deref(), Some("HEVC"));
    }
    if has_encoder("libsvtav1") || has_encoder("libaom-av1") {
        let enc = if has_encoder("libsvtav1") {
            "libsvtav1"
        } else {
            "libaom-av1"
        };
        let p = d.path().join("av1.mp4");
        let mut args = vec!["-c:v", enc, "-an"];
        if enc == "libaom-av1" {
            args.extend_from_slice(&["-cpu-used", "8"]);
        } else {
            args.extend_from_slice(&["-preset", "12"]);
        }
        let inputs = vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "testsrc=s=128x96:r=10:d=0.3".into(),
        ];
        if make(&p, inputs, &args) {
            let m = extract_checked(&p);
            check_av(&p, &m);
            assert_eq!(m.video_codec.as_deref(), Some("AV1"));
            assert!(m.audio.is_empty());
        }
    }
}

#[test]
fn uhd_clip_is_read_from_headers_only() {
    if !tools(&["ffmpeg", "ffprobe"]) || !has_encoder("libx264") {
        return;
    }
    let d = dir();
    let p = d.path().join("uhd.mp4");
    assert!(make(
        &p,
        lavfi_av("3840x2160", "25", "0.2", "48000"),
        &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]
    ));
    let (m, read) = extract_path(&p);
    check_av(&p, &m);
    assert_eq!((m.width, m.height), (Some(3840), Some(2160)));
    assert!(read < 64 << 10, "read {read}");
}

#[test]
fn big_mov_with_moov_at_end_reads_little() {
    if !tools(&["ffmpeg", "ffprobe"]) || !has_encoder("libx264") {
        return;
    }
    let d = dir();
    let p = d.path().join("long.mov");
    // ~30 MB: 160 s of 16-bit stereo PCM, moov written at the end.
    assert!(make(
        &p,
        vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "testsrc=s=160x120:r=5:d=160".into(),
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "anoisesrc=r=48000:d=160".into(),
        ],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "pcm_s16le",
            "-ac",
            "2"
        ]
    ));
    let len = fs::metadata(&p).unwrap().len();
    assert!(len > 30_000_000, "{len}");
    let (m, read) = extract_path(&p);
    check_av(&p, &m);
    assert!(read < 1 << 20, "read {read} of {len}");
    eprintln!("{len} byte MOV: {read} bytes read");
}

#[test]
fn webm_and_matroska() {
    if !tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let d = dir();
    type Case<'a> = (&'a str, &'a str, &'a str, &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "vp9.webm",
            "libvpx-vp9",
            "libopus",
            &["-deadline", "realtime", "-cpu-used", "8"],
        ),
        (
            "vp8.webm",
            "libvpx",
            "libvorbis",
            &["-deadline", "realtime", "-cpu-used", "8"],
        ),
        ("h264.mkv", "libx264", "flac", &["-preset", "ultrafast"]),
        (
            "hevc.mkv",
            "libx265",
            "aac",
            &["-preset", "ultrafast", "-x265-params", "log-level=error"],
        ),
    ];
    for (name, venc, aenc, extra) in cases {
        if !has_encoder(venc) || !has_encoder(aenc) {
            continue;
        }
        let p = d.path().join(name);
        let mut args = vec!["-c:v", venc, "-c:a", aenc];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "-metadata",
            "title=Take 7",
            "-metadata",
            "ARTIST=Studio",
            "-metadata",
            "creation_time=2023-11-05T08:09:10Z",
        ]);
        assert!(make(&p, lavfi_av("320x240", "24", "0.6", "48000"), &args));
        let m = extract_checked(&p);
        check_av(&p, &m);
        let webm = name.ends_with(".webm");
        assert_eq!(
            m.container.as_deref(),
            Some(if webm { "WebM" } else { "Matroska" })
        );
        assert_eq!(m.title.as_deref(), Some("Take 7"));
    }
    // Audio-only Matroska.
    let p = d.path().join("music.mka");
    assert!(make(
        &p,
        vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "sine=r=44100:d=1".into()
        ],
        &["-c:a", "flac"]
    ));
    let m = extract_checked(&p);
    check_av(&p, &m);
    assert_eq!(m.kind, Kind::Audio);
}

// ---- audio ---------------------------------------------------------------------

#[test]
fn wav_rf64_aiff() {
    if !tools(&["sox", "ffmpeg", "ffprobe"]) {
        return;
    }
    let d = dir();
    let s16 = d.path().join("stereo16.wav");
    assert!(run(
        "sox",
        &[
            "-n",
            "-r",
            "48000",
            "-c",
            "2",
            "-b",
            "16",
            s16.to_str().unwrap(),
            "synth",
            "1.25",
            "sine",
            "440",
            "vol",
            "0.5"
        ]
    ));
    let s24 = d.path().join("mono24.wav");
    assert!(run(
        "sox",
        &[
            "-n",
            "-r",
            "96000",
            "-c",
            "1",
            "-b",
            "24",
            s24.to_str().unwrap(),
            "synth",
            "0.5",
            "sine",
            "440",
            "vol",
            "0.5"
        ]
    ));
    let tagged = d.path().join("tagged.wav");
    assert!(make(
        &tagged,
        vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "sine=r=22050:d=0.7".into()
        ],
        &[
            "-c:a",
            "pcm_f32le",
            "-metadata",
            "title=Room tone",
            "-metadata",
            "artist=Boom op",
            "-metadata",
            "album=Day 2"
        ]
    ));
    let rf64 = d.path().join("long.rf64.wav");
    assert!(make(
        &rf64,
        vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "sine=r=44100:d=0.5".into()
        ],
        &["-c:a", "pcm_s16le", "-rf64", "always"]
    ));
    let aiff = d.path().join("take.aiff");
    assert!(run(
        "sox",
        &[
            "-n",
            "-r",
            "44100",
            "-c",
            "2",
            "-b",
            "16",
            aiff.to_str().unwrap(),
            "synth",
            "0.8",
            "sine",
            "440",
            "vol",
            "0.5"
        ]
    ));
    for p in [&s16, &s24, &tagged, &rf64, &aiff] {
        let m = extract_checked(p);
        check_av(p, &m);
    }
    let m = extract_path(&s24).0;
    assert_eq!(m.audio[0].bit_depth, Some(24));
    assert_eq!(m.audio[0].sample_rate, Some(96_000));
    assert_eq!(mediagit_media::summary(&m), "audio 96 kHz 1 ch 0.5 s");
    let m = extract_path(&tagged).0;
    assert_eq!(m.audio[0].codec.as_deref(), Some("PCM float"));
    assert_eq!(extract_path(&rf64).0.format.as_deref(), Some("RF64"));
}

#[test]
fn flac_mp3_ogg_opus() {
    if !tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let d = dir();
    let tags = [
        "-metadata",
        "title=Night drive",
        "-metadata",
        "artist=Synths",
        "-metadata",
        "album=Demos",
    ];
    let sine = |r: &str, ch: &str| {
        vec![
            "-f".to_string(),
            "lavfi".into(),
            "-i".into(),
            format!("sine=r={r}:d=2"),
            "-ac".into(),
            ch.into(),
        ]
    };
    let cases: &[(&str, &str, &str, &str, &[&str])] = &[
        ("song.flac", "flac", "44100", "2", &[]),
        ("song24.flac", "flac", "96000", "1", &["-sample_fmt", "s32"]),
        ("cbr.mp3", "libmp3lame", "44100", "2", &["-b:a", "128k"]),
        ("vbr.mp3", "libmp3lame", "48000", "1", &["-q:a", "5"]),
        (
            "noxing.mp3",
            "libmp3lame",
            "32000",
            "2",
            &["-b:a", "96k", "-write_xing", "0"],
        ),
        ("lowrate.mp3", "libmp3lame", "22050", "1", &["-b:a", "32k"]),
        ("song.ogg", "libvorbis", "44100", "2", &[]),
        ("song.opus", "libopus", "48000", "2", &[]),
        ("flac.oga", "flac", "44100", "1", &["-f", "ogg"]),
    ];
    for (name, enc, rate, ch, extra) in cases {
        if !has_encoder(enc) {
            continue;
        }
        let p = d.path().join(name);
        let mut args = vec!["-c:a", *enc];
        args.extend_from_slice(extra);
        args.extend_from_slice(&tags);
        assert!(make(&p, sine(rate, ch), &args), "{name}");
        let m = extract_checked(&p);
        check_av(&p, &m);
        assert_eq!(m.title.as_deref(), Some("Night drive"), "{name}");
        assert_eq!(m.artist.as_deref(), Some("Synths"), "{name}");
    }
}

// ---- design and documents ------------------------------------------------------

/// Sets the "hidden" flag of the `n`th layer record of an ImageMagick PSD.
fn hide_layer(psd: &mut [u8], n: usize) {
    let mut seen = 0;
    let mut i = 0;
    while i + 12 < psd.len() {
        if &psd[i..i + 4] == b"8BIM"
            && &psd[i + 4..i + 8] != b"8BIM"
            && psd[i + 4..i + 8].iter().all(u8::is_ascii_alphanumeric)
        {
            // blend mode signature + key, opacity, clipping, flags
            if &psd[i + 4..i + 8] == b"norm" || &psd[i + 4..i + 8] == b"mron" {
                if seen == n {
                    psd[i + 10] |= 2;
                    return;
                }
                seen += 1;
            }
        }
        i += 1;
    }
    panic!("layer {n} not found");
}

#[test]
fn psd_layers() {
    if !tools(&["convert", "exiftool"]) {
        return;
    }
    let d = dir();
    let p = d.path().join("poster.psd");
    assert!(run(
        "convert",
        &[
            "-size",
            "100x80",
            "xc:red",
            "(",
            "-size",
            "100x80",
            "xc:white",
            "-set",
            "label",
            "Background",
            ")",
            "(",
            "-size",
            "50x40",
            "xc:blue",
            "-set",
            "label",
            "Glow",
            ")",
            "(",
            "-size",
            "30x20",
            "xc:green",
            "-set",
            "label",
            "Logo",
            ")",
            p.to_str().unwrap(),
        ]
    ));
    let mut bytes = fs::read(&p).unwrap();
    hide_layer(&mut bytes, 1);
    fs::write(&p, &bytes).unwrap();
    let m = extract_checked(&p);
    let e = exiftool(&p);
    assert_eq!(m.kind, Kind::Design);
    assert!(m.unreadable.is_none(), "{:?}", m.unreadable);
    assert_eq!(m.width.map(u64::from), e["ImageWidth"].as_u64());
    assert_eq!(m.height.map(u64::from), e["ImageHeight"].as_u64());
    assert_eq!(m.bit_depth.map(u64::from), e["BitDepth"].as_u64());
    assert_eq!(m.layer_count.map(u64::from), e["LayerCount"].as_u64());
    let names: Vec<&str> = e["LayerNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let got: Vec<&str> = m.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(got, names);
    let vis: Vec<bool> = e["LayerVisible"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64() == Some(0))
        .collect();
    let got: Vec<bool> = m.layers.iter().map(|l| l.visible).collect();
    assert_eq!(got, vis);
    assert_eq!(m.color_mode.as_deref(), Some("RGB"));
    assert_eq!(e["ColorMode"].as_u64(), Some(3));
    let f = mediagit_media::fields(&m);
    assert!(
        f.contains(&("layers", "3: Background, Glow (hidden), Logo".to_string())),
        "{f:?}"
    );
    assert_eq!(mediagit_media::summary(&m), "design 100x80 3 layers");
    // CMYK, 8-bit, as PSB.
    let psb = d.path().join("big.psb");
    assert!(run(
        "convert",
        &[
            "-size",
            "64x32",
            "xc:cyan",
            "-colorspace",
            "CMYK",
            "-depth",
            "8",
            "(",
            "-size",
            "10x10",
            "xc:black",
            "-set",
            "label",
            "Ünïcode",
            ")",
            psb.to_str().unwrap()
        ]
    ));
    let m = extract_checked(&psb);
    let e = exiftool(&psb);
    assert_eq!(m.format.as_deref(), Some("PSB"));
    assert_eq!(m.width.map(u64::from), e["ImageWidth"].as_u64());
    assert_eq!(m.color_mode.as_deref(), Some("CMYK"));
    assert_eq!(m.layer_count.map(u64::from), e["LayerCount"].as_u64());
    if let Some(n) = e["LayerNames"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|v| v.as_str())
    {
        assert_eq!(m.layers[0].name, n);
    }
}

/// A minimal PDF with `n` pages (page tree: root with two child nodes).
fn pdf(n: usize) -> Vec<u8> {
    let first = n / 2;
    let mut objs: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        format!("<< /Type /Pages /Kids [3 0 R 4 0 R] /Count {n} >>"),
    ];
    let kids = |from: usize, to: usize| {
        (from..to)
            .map(|i| format!("{} 0 R", i + 5))
            .collect::<Vec<_>>()
            .join(" ")
    };
    objs.push(format!(
        "<< /Type /Pages /Parent 2 0 R /Kids [{}] /Count {} >>",
        kids(0, first),
        first
    ));
    objs.push(format!(
        "<< /Type /Pages /Parent 2 0 R /Kids [{}] /Count {} >>",
        kids(first, n),
        n - first
    ));
    for i in 0..n {
        let parent = if i < first { 3 } else { 4 };
        objs.push(format!(
            "<< /Type /Page /Parent {parent} 0 R /MediaBox [0 0 612 792] >>"
        ));
    }
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objs.len() + 1
        )
        .bytes(),
    );
    out
}

#[test]
fn pdf_page_count() {
    let d = dir();
    for n in [1usize, 3, 12] {
        let p = d.path().join(format!("doc{n}.pdf"));
        fs::write(&p, pdf(n)).unwrap();
        let m = extract_checked(&p);
        assert_eq!(m.kind, Kind::Document);
        assert_eq!(m.pages, Some(n as u32));
        assert_eq!(m.mime.as_deref(), Some("application/pdf"));
        if which("exiftool") {
            assert_eq!(exiftool(&p)["PageCount"].as_u64(), Some(n as u64));
        }
    }
    // Page tree in the last MiB of a large file.
    let mut big = b"%PDF-1.4\n".to_vec();
    big.extend(vec![b' '; 3 << 20]);
    big.extend(&pdf(7)[9..]);
    let p = d.path().join("big.pdf");
    fs::write(&p, &big).unwrap();
    let (m, read) = extract_path(&p);
    assert_eq!(m.pages, Some(7));
    assert!(read <= (2 << 20) + 64, "{read}");
    assert_eq!(mediagit_media::summary(&m), "document 7 pages");
}

// ---- hostile and degenerate input ------------------------------------------------

fn ext(bytes: &[u8], name: &str) -> (Metadata, u64) {
    let mut r = Counting {
        inner: Cursor::new(bytes),
        read: 0,
    };
    let m = extract(&mut r, bytes.len() as u64, Some(name));
    (m, r.read)
}

#[test]
fn empty_and_unknown_files() {
    let (m, read) = ext(b"", "empty");
    assert_eq!(m, Metadata::default());
    assert_eq!(read, 0);
    let (m, _) = ext(b"", "empty.mp4");
    assert!(m.unreadable.is_some());
    assert_eq!(m.kind, Kind::Video);
    let (m, _) = ext(b"just some text\n", "notes.txt");
    assert_eq!((m.kind, m.mime, m.unreadable), (Kind::Other, None, None));
    let (m, _) = ext(b"PK\x03\x04\x14\0\0\0", "a.docx");
    assert_eq!(m.mime.as_deref(), Some("application/zip"));
    assert_eq!(mediagit_media::summary(&m), "-");
}

#[test]
fn hostile_lengths_and_counts() {
    // MP4: ftyp, then a box claiming 2^63 bytes (64-bit largesize).
    let mut mp4 = b"\0\0\0\x14ftypisom\0\0\x02\0isom".to_vec();
    mp4.extend(b"\0\0\0\x01mdat");
    mp4.extend((1u64 << 63).to_be_bytes());
    mp4.extend([0u8; 64]);
    let (m, read) = ext(&mp4, "x.mp4");
    assert!(m.unreadable.is_some());
    assert!(read < 4096);
    // moov whose child claims u32::MAX bytes; trak with a huge stsd entry.
    let mut mp4 = b"\0\0\0\x14ftypisom\0\0\x02\0isom".to_vec();
    mp4.extend(b"\0\0\0\x30moov\xff\xff\xff\xfftrak\0\0\0\x10stsd\0\0\0\0\xff\xff\xff\xff");
    mp4.extend([0u8; 24]);
    let (m, read) = ext(&mp4, "y.mov");
    assert!(m.unreadable.is_some());
    assert!(read < 4096);
    // TIFF: IFD0 with 65535 entries and no data.
    let tif = b"II*\0\x08\0\0\0\xff\xff".to_vec();
    let (m, read) = ext(&tif, "t.tif");
    assert!(m.unreadable.as_deref().unwrap().contains("65535"), "{m:?}");
    assert!(read < 100);
    // TIFF: IFD pointing to itself (a loop) with a SubIFD pointing back.
    let mut tif = b"II*\0\x08\0\0\0\x02\0".to_vec();
    tif.extend(b"\x00\x01\x03\0\x01\0\0\0\x10\0\0\0"); // width 16
    tif.extend(b"\x4a\x01\x04\0\x01\0\0\0\x08\0\0\0"); // SubIFD -> IFD0
    tif.extend(b"\x08\0\0\0"); // next IFD -> IFD0
    let (m, _) = ext(&tif, "loop.tif");
    assert_eq!(m.width, Some(16));
    // PSD: 32767 layers declared, no records.
    let mut psd = b"8BPS\0\x01\0\0\0\0\0\0\0\x03\0\0\0\x10\0\0\0\x10\0\x08\0\x03".to_vec();
    psd.extend(0u32.to_be_bytes()); // colour mode data
    psd.extend(0u32.to_be_bytes()); // image resources
    psd.extend(100u32.to_be_bytes()); // layer and mask info
    psd.extend(96u32.to_be_bytes()); // layer info
    psd.extend(0x7FFFu16.to_be_bytes());
    let (m, read) = ext(&psd, "p.psd");
    assert!(m.unreadable.is_some());
    assert_eq!((m.width, m.height), (Some(16), Some(16)));
    assert!(read < 4096);
    // PSD layer count 0xFFFF (-1: one layer, first alpha channel is transparency).
    let n = psd.len();
    psd[n - 2..].copy_from_slice(&[0xFF, 0xFF]);
    let (m, _) = ext(&psd, "p.psd");
    assert!(m.unreadable.is_some());
    // Matroska: unknown-size Segment, Info with a huge Duration element size.
    let mut mkv = vec![0x1A, 0x45, 0xDF, 0xA3, 0x84, 0x42, 0x82, 0x81, b'x'];
    mkv.extend([
        0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    mkv.extend([
        0x15, 0x49, 0xA9, 0x66, 0x01, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF,
    ]);
    let (m, read) = ext(&mkv, "m.mkv");
    assert!(m.unreadable.is_some());
    assert!(read < 4096);
    // WAV with a data chunk of 4 GiB - 1 and a fmt chunk.
    let mut wav =
        b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\x01\0\x02\0\x80\xbb\0\0\0\xee\x02\0\x04\0\x10\0"
            .to_vec();
    wav.extend(b"data\xfe\xff\xff\xff");
    wav.extend([0u8; 100]);
    let (m, _) = ext(&wav, "w.wav");
    assert!(m.unreadable.is_some());
    assert_eq!(m.audio[0].sample_rate, Some(48_000));
    // Ogg page claiming 255 segments of 255 bytes, no data.
    let mut ogg = b"OggS\0\x02".to_vec();
    ogg.extend([0u8; 20]);
    ogg.push(255);
    ogg.extend([255u8; 255]);
    let (m, _) = ext(&ogg, "o.ogg");
    assert!(m.unreadable.is_some());
    // FLAC: VORBIS_COMMENT with 2^32-1 comments of 2^32-1 bytes.
    let mut flac = b"fLaC\0\0\0\x22".to_vec();
    flac.extend([
        0x10, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x0A, 0xC4, 0x42, 0xF0, 0, 0, 0, 0,
    ]);
    flac.extend([0u8; 16]);
    flac.extend(b"\x84\0\0\x10\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff\0\0\0\0");
    let (m, _) = ext(&flac, "f.flac");
    assert_eq!(m.audio[0].sample_rate, Some(44_100));
    // ID3 tag claiming 256 MB.
    let mp3 = b"ID3\x04\0\0\x7f\x7f\x7f\x7fTIT2\x7f\x7f\x7f\x7f\0\0\x03abc".to_vec();
    let (m, read) = ext(&mp3, "a.mp3");
    assert!(m.unreadable.is_some());
    assert!(read < 70_000);
    // PDF full of /Type /Pages tokens: linear time.
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.extend(b"<</Type /Pages/Count 3>> obj ".repeat(60_000));
    let t = std::time::Instant::now();
    let (m, _) = ext(&pdf, "d.pdf");
    assert_eq!(m.pages, Some(3));
    assert!(t.elapsed().as_secs() < 5);
}

#[test]
fn limits_are_enforced() {
    let mut wav = b"RIFF\0\0\0\0WAVE".to_vec();
    for _ in 0..1000 {
        wav.extend(b"junk\0\0\0\0");
    }
    let limits = Limits {
        max_items: 100,
        ..Limits::default()
    };
    let m = extract_with(&mut Cursor::new(&wav), wav.len() as u64, None, &limits);
    assert!(m.unreadable.as_deref().unwrap().contains("items"), "{m:?}");
    let limits = Limits {
        max_read: 10,
        ..Limits::default()
    };
    let m = extract_with(&mut Cursor::new(&wav), wav.len() as u64, None, &limits);
    assert!(
        m.unreadable.as_deref().unwrap().contains("read limit"),
        "{m:?}"
    );
    // Nesting: boxes inside boxes.
    let mut nested: Vec<u8> = Vec::new();
    for _ in 0..100 {
        nested.extend(b"\0\0\0\0mdia");
    }
    let mut mp4 = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
    mp4.extend(b"\0\0\0\0moov\0\0\0\0trak");
    mp4.extend(nested);
    let m = extract(&mut Cursor::new(&mp4), mp4.len() as u64, None);
    assert!(m.unreadable.as_deref().unwrap().contains("nested"), "{m:?}");
}

/// Files named on the command line (MEDIAGIT_MEDIA_DUMP, colon-separated):
/// prints what is extracted. `cargo test -p mediagit-media -- --ignored dump`
#[test]
#[ignore]
fn dump() {
    for p in std::env::var("MEDIAGIT_MEDIA_DUMP")
        .unwrap_or_default()
        .split(':')
    {
        if p.is_empty() {
            continue;
        }
        let (m, read) = extract_path(&PathBuf::from(p));
        println!(
            "{p} ({read} bytes read)\n{}",
            serde_json::to_string_pretty(&m).unwrap()
        );
        for (k, v) in mediagit_media::fields(&m) {
            println!("  {k}: {v}");
        }
    }
}
