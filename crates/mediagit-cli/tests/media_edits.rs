//! Edits photographers and editors make, and what they cost in storage:
//! re-tagging a JPEG (EXIF rewritten by exiftool) stores the new header, not
//! the image again, because a JPEG's metadata is cut into chunks of its own
//! (mediagit-pipeline `media.rs`). Local store only: the growth is read
//! from `.mediagit/packs`.
mod common;
use common::*;

use std::process::Command;

fn packs_bytes(env: &Env) -> u64 {
    std::fs::read_dir(env.repo().join(".mediagit/packs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn tool(cmd: &mut Command) {
    let out = cmd.output().expect("run tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn retagging_a_jpeg_stores_its_header_not_its_image() {
    let env = Env::empty();
    env.ok(&["init", "repo"]);
    let photo = env.repo().join("photo.jpg");
    // A real JPEG of a few MiB (several chunks) with EXIF.
    tool(
        Command::new("/usr/bin/convert")
            .args([
                "-size",
                "2400x1600",
                "plasma:fractal",
                "-seed",
                "11",
                "-quality",
                "97",
            ])
            .arg(&photo),
    );
    tool(
        Command::new("exiftool")
            .args([
                "-q",
                "-overwrite_original",
                "-Artist=Photographer A",
                "-Rating=3",
            ])
            .arg(&photo),
    );
    let size = std::fs::metadata(&photo).unwrap().len();
    assert!(size > 1 << 20, "fixture too small: {size} bytes");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "shoot"]);
    let before = packs_bytes(&env);
    let v1 = sha256_file(&photo);

    tool(
        Command::new("exiftool")
            .args([
                "-q",
                "-overwrite_original",
                "-Artist=Retoucher B",
                "-ImageDescription=selected for print",
                "-Rating=5",
            ])
            .arg(&photo),
    );
    let v2 = sha256_file(&photo);
    assert_ne!(v1, v2, "exiftool changed the file");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "retag"]);
    let growth = packs_bytes(&env) - before;
    // The header (EXIF + tables, a few KiB) plus the manifest, tree and
    // commit; a whole chunk of image data would be at least 128 KiB.
    assert!(
        growth < 64 << 10,
        "re-tagging a {size}-byte JPEG grew the packs by {growth} bytes"
    );

    // Both versions restore byte-exactly.
    let copy = env.root().join("copy");
    env.ok(&[
        "clone",
        env.repo().to_str().unwrap(),
        copy.to_str().unwrap(),
    ]);
    assert_eq!(sha256_file(&env.root().join("copy/photo.jpg")), v2);
    let env2 = env.root().join("copy");
    let out = env
        .cmd(&["-C", env2.to_str().unwrap(), "checkout", "HEAD~1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_file(&env2.join("photo.jpg")), v1);
}
