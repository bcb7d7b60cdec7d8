//! # mediagit-testutils
//!
//! Helpers shared by MediaGit's tests: real media fixtures made with Debian's
//! encoders (ffmpeg, ImageMagick, sox), deterministic pseudo-random data, and
//! hashing of whole directory trees so a test can assert that what a checkout
//! restored is byte-for-byte what was added.
//!
//! Why real encoders: media files are what MediaGit is for, and their
//! properties (already compressed, headers that change on re-encode) decide
//! how chunking and compression behave. Synthetic bytes would hide that.
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// SHA-256 of a file, as `sha256sum` prints it.
pub fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// Every file below `root` (skipping `.mediagit`) with its SHA-256; symlinks as
/// `link:<target>`; executable files get a `+x` suffix.
pub fn tree_hashes(root: &Path) -> BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            if e.file_name() == ".mediagit" {
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = fs::symlink_metadata(&p).expect("lstat");
            if m.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("link:{}", fs::read_link(&p).unwrap().display()),
                );
            } else if m.is_dir() {
                stack.push(p);
            } else {
                let x = if m.permissions().mode() & 0o100 != 0 {
                    "+x"
                } else {
                    ""
                };
                out.insert(rel, format!("{}{x}", sha256_file(&p)));
            }
        }
    }
    out
}

/// Writes `size` deterministic pseudo-random (incompressible) bytes.
pub fn write_random(path: &Path, size: u64, seed: u64) {
    let mut f = std::io::BufWriter::new(fs::File::create(path).expect("create"));
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut buf = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).expect("write");
        left -= n as u64;
    }
    f.flush().expect("flush");
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?}: {e}. Media fixtures need Debian's ffmpeg, imagemagick and sox (scripts/test.sh installs them)",
            cmd.get_program()
        )
    });
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory of small real media files, made once per test process:
/// `clip.mp4` (H.264), `photo.jpg` (with EXIF), `image.png`, `tone.wav`,
/// `tone.flac`, `layers.psd` (layered), `scan.tiff`.
pub fn media_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mediagit-fixtures-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create fixture dir");
        let p = |n: &str| dir.join(n);
        run(Command::new("ffmpeg")
            .args([
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc=duration=2:size=320x240:rate=25",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
            ])
            .arg(p("clip.mp4")));
        run(Command::new("/usr/bin/convert")
            .args(["-size", "640x480", "plasma:fractal", "-seed", "7"])
            .arg(p("photo.jpg")));
        run(Command::new("exiftool")
            .args([
                "-q",
                "-overwrite_original",
                "-Artist=MediaGit Tests",
                "-Make=TestCam",
            ])
            .arg(p("photo.jpg")));
        run(Command::new("/usr/bin/convert")
            .args(["-size", "200x150", "gradient:red-blue"])
            .arg(p("image.png")));
        run(Command::new("sox")
            .args(["-n", "-r", "44100", "-c", "2", "-b", "16"])
            .arg(p("tone.wav"))
            .args(["synth", "2", "sine", "440"]));
        run(Command::new("sox").arg(p("tone.wav")).arg(p("tone.flac")));
        run(Command::new("/usr/bin/convert")
            .args([
                "-size",
                "256x256",
                "xc:white",
                "(",
                "-size",
                "128x128",
                "xc:red",
                ")",
                "(",
                "-size",
                "64x64",
                "gradient:",
                ")",
                "-depth",
                "8",
                "-compress",
                "RLE",
            ])
            .arg(p("layers.psd")));
        run(Command::new("/usr/bin/convert")
            .args(["-size", "300x200", "gradient:green-yellow"])
            .arg(p("scan.tiff")));
        dir
    })
}

/// Copies the media fixtures into `dest` (created if needed).
pub fn copy_media(dest: &Path) {
    fs::create_dir_all(dest).expect("create");
    for e in fs::read_dir(media_dir()).expect("read fixtures") {
        let e = e.expect("entry");
        fs::copy(e.path(), dest.join(e.file_name())).expect("copy fixture");
    }
}

/// Rewrites a `config.toml` written by this build (format 2) as format 1
/// wrote it (no feature lists), as a repository made before format 2 holds
/// it. Returns the text written.
pub fn rewrite_config_as_format_1(path: &Path) -> String {
    let text: String = fs::read_to_string(path)
        .expect("read config.toml")
        .replace("version = 2", "version = 1")
        .lines()
        .filter(|l| !l.starts_with("optional_features"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(path, &text).expect("write config.toml");
    text
}

/// Sets the modification time of every file directly in `dir` to `days`
/// days ago: packs past a gc grace period.
pub fn age_files(dir: &Path, days: u64) {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
    for e in fs::read_dir(dir).expect("read directory") {
        fs::File::options()
            .write(true)
            .open(e.expect("directory entry").path())
            .and_then(|f| f.set_modified(t))
            .expect("set modification time");
    }
}
