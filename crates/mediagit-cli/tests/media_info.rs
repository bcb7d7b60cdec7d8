//! Media records end to end, on real files made by ffmpeg, ImageMagick,
//! sox and exiftool: stored once per content at `add`, shown by `media`,
//! `show REV -- PATH`, `diff`, `show`, `log --media`, `ls-files --media`
//! and `status` during a conflict, searched by `find`, carried by `clone`,
//! `push` and `fetch`, added later by `media --scan`; damaged and hostile
//! files never fail an add.
mod common;
use common::*;

use std::path::Path;
use std::process::Command as Std;

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Std::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn exiftool(path: &Path) -> serde_json::Value {
    let out = Std::new("exiftool")
        .args(["-json", "-n"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
}

fn convert(args: &[&str], dest: &Path) {
    let out = Std::new("/usr/bin/convert")
        .args(args)
        .arg(dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ffmpeg(args: &[&str], dest: &Path) {
    let out = Std::new("ffmpeg")
        .args(["-loglevel", "error", "-y"])
        .args(args)
        .arg(dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository with the media fixtures committed.
fn media_repo() -> Env {
    let env = Env::new();
    copy_media(&env.repo().join("media"));
    env.write("notes.txt", b"call the client\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "media"]);
    env
}

fn record(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["media", "--json"];
    a.extend_from_slice(args);
    json(&env.ok(&a))
}

#[test]
fn add_stores_records_that_match_ffprobe_and_exiftool() {
    let env = media_repo();
    let m = env.repo().join("media");
    // Video: against ffprobe.
    let r = record(&env, &["media/clip.mp4", "HEAD"]);
    assert_eq!(r["stored"], true, "{r}");
    let md = &r["metadata"];
    let probe = ffprobe(&m.join("clip.mp4"));
    let v = &probe["streams"][0];
    assert_eq!(md["kind"], "video");
    assert_eq!(md["width"], v["width"]);
    assert_eq!(md["height"], v["height"]);
    assert_eq!(md["video_codec"], "H.264");
    let dur: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (md["duration"].as_f64().unwrap() - dur).abs() < 0.05,
        "{md}"
    );
    assert!(
        (md["frame_rate"].as_f64().unwrap() - 25.0).abs() < 0.01,
        "{md}"
    );
    // Photo: against exiftool.
    let r = record(&env, &["media/photo.jpg", "HEAD"]);
    let md = &r["metadata"];
    let ex = exiftool(&m.join("photo.jpg"));
    assert_eq!(md["kind"], "image");
    assert_eq!(md["mime"], "image/jpeg");
    assert_eq!(md["width"], ex["ImageWidth"]);
    assert_eq!(md["height"], ex["ImageHeight"]);
    assert_eq!(md["camera_make"], ex["Make"]);
    // Audio.
    for name in ["tone.wav", "tone.flac"] {
        let md = record(&env, &[&format!("media/{name}"), "HEAD"])["metadata"].clone();
        let probe = ffprobe(&m.join(name));
        let s = &probe["streams"][0];
        assert_eq!(md["kind"], "audio", "{name}: {md}");
        assert_eq!(
            md["audio"][0]["sample_rate"].as_u64().unwrap().to_string(),
            s["sample_rate"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(md["audio"][0]["channels"], s["channels"], "{name}");
        assert!(
            (md["duration"].as_f64().unwrap() - 2.0).abs() < 0.01,
            "{name}: {md}"
        );
    }
    // A layered PSD and a TIFF.
    let md = record(&env, &["media/layers.psd", "HEAD"])["metadata"].clone();
    assert_eq!(md["kind"], "design", "{md}");
    assert_eq!(
        (md["width"].as_u64(), md["height"].as_u64()),
        (Some(256), Some(256))
    );
    assert!(md["layer_count"].as_u64().unwrap_or(0) >= 2, "{md}");
    let md = record(&env, &["media/scan.tiff", "HEAD"])["metadata"].clone();
    assert_eq!(
        (md["width"].as_u64(), md["height"].as_u64()),
        (Some(300), Some(200))
    );
    // A text file: a record of kind other, no media fields.
    let md = record(&env, &["notes.txt", "HEAD"])["metadata"].clone();
    assert_eq!(md["kind"], "other", "{md}");
    // Text output: the fields, one per line.
    let text = env.ok(&["media", "media/clip.mp4"]);
    assert!(text.starts_with("media/clip.mp4 ("), "{text}");
    assert!(text.contains("320x240"), "{text}");
    assert!(text.contains("H.264"), "{text}");
    // `info` is the same command; `show REV -- PATH` too.
    assert_eq!(env.ok(&["info", "media/clip.mp4"]), text);
    let shown = env.ok(&["show", "HEAD", "--", "media/clip.mp4"]);
    assert!(
        shown.contains("320x240") && shown.contains(" at HEAD"),
        "{shown}"
    );
}

#[test]
fn records_are_extracted_once_per_content_and_never_fail_an_add() {
    let env = Env::new();
    let dir = env.repo().join("in");
    copy_media(&dir);
    // Damaged and hostile files: a truncated video, random bytes named
    // .jpg, a PNG cut inside its header, a box claiming 2^63 bytes.
    let clip = std::fs::read(dir.join("clip.mp4")).unwrap();
    env.write("bad/truncated.mp4", &clip[..clip.len() / 3]);
    env.write(
        "bad/random.jpg",
        &(0..5000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let png = std::fs::read(dir.join("image.png")).unwrap();
    env.write("bad/cut.png", &png[..20]);
    let mut mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2".to_vec();
    mp4.extend_from_slice(&[0, 0, 0, 1]);
    mp4.extend_from_slice(b"moov");
    mp4.extend_from_slice(&(1u64 << 63).to_be_bytes());
    mp4.extend_from_slice(&[0u8; 64]);
    env.write("bad/huge.mp4", &mp4);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "all"]);
    for p in ["bad/truncated.mp4", "bad/cut.png", "bad/huge.mp4"] {
        let r = record(&env, &[p, "HEAD"]);
        assert_eq!(r["stored"], true, "{p}: {r}");
        let md = &r["metadata"];
        assert!(md["unreadable"].is_string(), "{p}: {md}");
    }
    let text = env.ok(&["media", "bad/cut.png"]);
    assert!(text.contains("unreadable"), "{text}");
    // The same content at another path is not read again: one record.
    env.write("copy/clip.mp4", &clip);
    env.ok(&["add", "-A"]);
    let r = record(&env, &["copy/clip.mp4"]);
    assert_eq!(r["stored"], true, "{r}");
    // The damaged files are stored as they are: a fresh checkout gives
    // back the same bytes.
    let want = sha256_file(&env.repo().join("bad/truncated.mp4"));
    std::fs::remove_dir_all(env.repo().join("bad")).unwrap();
    env.ok(&["restore", "bad"]);
    assert_eq!(sha256_file(&env.repo().join("bad/truncated.mp4")), want);
    env.ok(&["verify"]);
    env.ok(&["fsck"]);
}

#[test]
fn diff_show_and_log_say_what_changed_in_the_media() {
    let env = media_repo();
    let m = env.repo().join("media");
    // A bigger photo with a camera, a longer clip in another size.
    convert(
        &["-size", "800x600", "plasma:fractal", "-seed", "3"],
        &m.join("photo.jpg"),
    );
    let ex = Std::new("exiftool")
        .args([
            "-q",
            "-overwrite_original",
            "-Make=Canon",
            "-Model=EOS R5",
            "-GPSLatitude=48.8584",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=2.2945",
            "-GPSLongitudeRef=E",
        ])
        .arg(m.join("photo.jpg"))
        .status()
        .unwrap();
    assert!(ex.success());
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=640x360:rate=30",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        &m.join("clip.mp4"),
    );
    // Working tree against the index: read from the files.
    let d = env.ok(&["diff"]);
    assert!(d.contains("modified: media/photo.jpg"), "{d}");
    assert!(d.contains("640x480 -> 800x600"), "{d}");
    assert!(d.contains("320x240 -> 640x360"), "{d}");
    assert!(d.contains("2.0 s -> 3.0 s"), "{d}");
    assert!(d.contains("GPS added"), "{d}");
    let j = json(&env.ok(&["diff", "--json"]));
    let photo = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "media/photo.jpg")
        .unwrap()
        .clone();
    assert!(
        photo["media"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "640x480 -> 800x600"),
        "{photo}"
    );
    env.ok(&["add", "-A"]);
    let d = env.ok(&["diff", "--cached"]);
    assert!(d.contains("640x480 -> 800x600"), "{d}");
    env.write(
        "media/new.png",
        &std::fs::read(m.join("image.png")).unwrap(),
    );
    convert(&["-size", "64x32", "xc:blue"], &m.join("new.png"));
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "bigger"]);
    let s = env.ok(&["show"]);
    assert!(s.contains("640x480 -> 800x600"), "{s}");
    assert!(s.contains("image 64x32"), "{s}");
    let l = env.ok(&["log", "--media"]);
    assert!(l.contains("media/clip.mp4: "), "{l}");
    assert!(
        l.contains("H.264") || l.contains("320x240 -> 640x360"),
        "{l}"
    );
    let st = env.ok(&["log", "--stat", "-n", "1"]);
    assert!(st.contains("640x480 -> 800x600"), "{st}");
    // Text files get no media lines.
    env.write("notes.txt", b"call the client again\n");
    let d = env.ok(&["diff"]);
    assert_eq!(d.trim_end().lines().count(), 1, "{d}");
}

#[test]
fn find_answers_from_records_over_a_revision_or_all_history() {
    let env = media_repo();
    let lines = |out: String| -> Vec<String> {
        out.lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        lines(env.ok(&["find", "--where", "kind=video"])),
        ["media/clip.mp4"]
    );
    assert_eq!(
        lines(env.ok(&["find", "--where", "kind=image and width>=600"])),
        ["media/photo.jpg"]
    );
    assert_eq!(
        lines(env.ok(&["find", "--where", "camera~testcam"])),
        ["media/photo.jpg"]
    );
    assert_eq!(
        lines(env.ok(&["find", "--where", "kind=audio and not path~.flac"])),
        ["media/tone.wav"]
    );
    let both = lines(env.ok(&[
        "find",
        "--where",
        "(kind=audio or kind=design) and samplerate>=44100 or layers>=2",
    ]));
    assert_eq!(
        both,
        ["media/layers.psd", "media/tone.flac", "media/tone.wav"]
    );
    // A replaced photo: HEAD has the new one, all history both.
    let m = env.repo().join("media");
    convert(&["-size", "100x100", "xc:red"], &m.join("photo.jpg"));
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "red"]);
    assert!(env
        .ok(&["find", "--where", "width>=600 and kind=image"])
        .is_empty());
    let all = env.ok(&[
        "find",
        "--all-history",
        "--where",
        "kind=image and path~photo",
    ]);
    assert_eq!(all.lines().count(), 2, "{all}");
    let j: Vec<serde_json::Value> = env
        .ok(&["find", "--json", "--where", "kind=image"])
        .lines()
        .map(json)
        .collect();
    assert!(j
        .iter()
        .any(|f| f["path"] == "media/photo.jpg" && f["metadata"]["width"] == 100));
    // A bad query: exit 2, the position and the token named.
    let err = env.fail_with(2, &["find", "--where", "width >= "]);
    assert!(err.contains("--where"), "{err}");
    let err = env.fail_with(2, &["find", "--where", "colour=red"]);
    assert!(err.contains("colour"), "{err}");
    // ls-files --media: the summary column.
    let ls = env.ok(&["ls-files", "--media"]);
    let clip = ls
        .lines()
        .find(|l| l.ends_with("\tmedia/clip.mp4"))
        .unwrap();
    assert!(clip.starts_with("video 320x240"), "{ls}");
    let ls = env.ok(&["ls-files", "-l", "--media"]);
    assert!(
        ls.lines()
            .any(|l| l.contains("\tvideo 320x240") && l.ends_with("media/clip.mp4")),
        "{ls}"
    );
    let j: Vec<serde_json::Value> = env
        .ok(&["ls-files", "--json", "--media"])
        .lines()
        .map(json)
        .collect();
    assert!(j
        .iter()
        .any(|f| f["path"] == "media/clip.mp4" && f["media"]["video_codec"] == "H.264"));
}

#[test]
fn scan_stores_records_for_files_added_without_them() {
    let env = media_repo();
    // As a repository made before records existed: the ref removed.
    let notes = env.repo().join(".mediagit/refs/notes/media");
    if !notes.exists() {
        // (Repositories in an object store or encrypted name refs otherwise.)
        return;
    }
    std::fs::remove_file(&notes).unwrap();
    let r = record(&env, &["media/clip.mp4", "HEAD"]);
    assert_eq!(r["stored"], false, "{r}");
    assert_eq!(r["metadata"]["width"], 320, "read from stored content");
    let text = env.ok(&["media", "media/clip.mp4", "HEAD"]);
    assert!(text.contains("not stored"), "{text}");
    let out = env
        .cmd(&["find", "--where", "kind=video"])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("media --scan"));
    // Diff still shows media fields (read from stored content).
    convert(
        &["-size", "10x10", "xc:red"],
        &env.repo().join("media/photo.jpg"),
    );
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "tiny"]);
    assert!(env.ok(&["show"]).contains("640x480 -> 10x10"));
    let out = env.ok(&["media", "--scan", "--all-history"]);
    assert!(out.contains("record(s) stored"), "{out}");
    assert_eq!(record(&env, &["media/clip.mp4", "HEAD"])["stored"], true);
    assert_eq!(
        env.ok(&[
            "find",
            "--all-history",
            "--where",
            "kind=image and path~photo"
        ])
        .lines()
        .count(),
        2
    );
}

#[test]
fn clone_push_and_fetch_carry_the_records() {
    if test_store().is_some() {
        return; // local remotes here; the S3 runs cover the store paths
    }
    let env = media_repo();
    // Clone: the records come with the packs.
    env.ok_in(env.root(), &["clone", "repo", "copy"]);
    let copy = env.root().join("copy");
    let r = json(&env.ok_in(&copy, &["media", "--json", "media/clip.mp4", "HEAD"]));
    assert_eq!(r["stored"], true, "{r}");
    // Push to a bare repository, clone that: the records of pushed files.
    env.ok_in(env.root(), &["init", "--bare", "hub"]);
    env.ok(&[
        "remote",
        "add",
        "hub",
        env.root().join("hub").to_str().unwrap(),
    ]);
    env.ok(&["push", "hub", "main"]);
    env.ok_in(env.root(), &["clone", "hub", "from-hub"]);
    let r = json(&env.ok_in(
        &env.root().join("from-hub"),
        &["media", "--json", "media/photo.jpg", "HEAD"],
    ));
    assert_eq!(r["stored"], true, "{r}");
    // A local branch not pushed: its file's record stays here.
    env.ok(&["switch", "-c", "private"]);
    convert(
        &["-size", "33x44", "xc:green"],
        &env.repo().join("secret.png"),
    );
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "private"]);
    env.ok(&["switch", "main"]);
    convert(
        &["-size", "55x66", "xc:blue"],
        &env.repo().join("public.png"),
    );
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "public"]);
    env.ok(&["push", "hub", "main"]);
    // Fetch into the clone of the hub: the new record arrives.
    let fh = env.root().join("from-hub");
    env.ok_in(&fh, &["pull"]);
    let r = json(&env.ok_in(&fh, &["media", "--json", "public.png", "HEAD"]));
    assert_eq!(r["stored"], true, "{r}");
    assert_eq!(r["metadata"]["width"], 55);
    let hub_find = env.ok_in(&fh, &["find", "--where", "width=33"]);
    assert!(hub_find.is_empty(), "{hub_find}");
    // The hub holds no record of the private file (by its content id).
    let private = json(&env.ok(&["media", "--json", "secret.png", "private"]));
    let id = private["content"].as_str().unwrap().to_string();
    let all = env.ok_in(
        &fh,
        &["find", "--json", "--all-history", "--where", "kind=image"],
    );
    assert!(!all.contains(&id), "{all}");
}

#[test]
fn a_conflict_shows_both_sides_media() {
    let env = media_repo();
    env.ok(&["branch", "create", "feat"]);
    let m = env.repo().join("media");
    convert(&["-size", "111x222", "xc:red"], &m.join("photo.jpg"));
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "ours"]);
    env.ok(&["switch", "feat"]);
    convert(&["-size", "333x444", "xc:blue"], &m.join("photo.jpg"));
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "theirs"]);
    env.ok(&["switch", "main"]);
    let out = env.cmd(&["merge", "feat"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("ours:   image 111x222"), "{said}");
    assert!(said.contains("theirs: image 333x444"), "{said}");
    let st = env.ok(&["status"]);
    assert!(st.contains("image 111x222"), "{st}");
    assert!(st.contains("image 333x444"), "{st}");
    let j = json(&env.ok(&["status", "--json"]));
    let c = &j["conflicts"][0];
    assert_eq!(c["ours"]["media_record"]["width"], 111, "{c}");
    assert_eq!(c["theirs"]["media_record"]["width"], 333, "{c}");
}

fn identify_signature(path: &Path) -> String {
    let out = Std::new("/usr/bin/identify")
        .args(["-format", "%#"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_photo_retagged_on_one_side_and_retouched_on_the_other_merges() {
    let env = Env::new();
    let p = env.repo().join("photo.jpg");
    convert(
        &["-size", "320x240", "plasma:fractal", "-seed", "1", "-strip"],
        &p,
    );
    let xmp = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmp:Rating="3"
    xmp:Label="Red">
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"#;
    env.write("photo.xmp", xmp.as_bytes());
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    env.ok(&["branch", "create", "retouch"]);
    // Ours: re-tagged (exiftool leaves the image data as it is), rated 5.
    let ex = Std::new("exiftool")
        .args([
            "-q",
            "-overwrite_original",
            "-Artist=Ann Photographer",
            "-Make=Canon",
        ])
        .arg(&p)
        .status()
        .unwrap();
    assert!(ex.success());
    env.write(
        "photo.xmp",
        xmp.replace(r#"xmp:Rating="3""#, r#"xmp:Rating="5""#)
            .as_bytes(),
    );
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "tags"]);
    // Theirs: retouched (other pixels, the same metadata), labelled Green.
    env.ok(&["switch", "retouch"]);
    convert(
        &["-size", "320x240", "plasma:fractal", "-seed", "2", "-strip"],
        &p,
    );
    let retouched = identify_signature(&p);
    env.write(
        "photo.xmp",
        xmp.replace(r#"xmp:Label="Red""#, r#"xmp:Label="Green""#)
            .as_bytes(),
    );
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "retouch"]);
    env.ok(&["switch", "main"]);
    env.ok(&["merge", "retouch"]);
    // The metadata of ours, the pixels of theirs.
    let ex = exiftool(&p);
    assert_eq!(ex["Artist"], "Ann Photographer", "{ex}");
    assert_eq!(ex["Make"], "Canon");
    assert_eq!(identify_signature(&p), retouched);
    let merged = String::from_utf8(env.read("photo.xmp")).unwrap();
    assert!(
        merged.contains(r#"xmp:Rating="5""#) && merged.contains(r#"xmp:Label="Green""#),
        "{merged}"
    );
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
    env.ok(&["fsck"]);
    // Both sides re-tagging the same photo still conflicts.
    env.ok(&["branch", "create", "other"]);
    let tag = |who: &str| {
        let ex = Std::new("exiftool")
            .args(["-q", "-overwrite_original", &format!("-Artist={who}")])
            .arg(&p)
            .status()
            .unwrap();
        assert!(ex.success());
    };
    tag("Bob");
    env.ok(&["commit", "-a", "-m", "bob"]);
    env.ok(&["switch", "other"]);
    tag("Carol");
    env.ok(&["commit", "-a", "-m", "carol"]);
    env.ok(&["switch", "main"]);
    env.fail_with(3, &["merge", "other"]);
    env.ok(&["merge", "--abort"]);
}

#[test]
fn superseded_records_are_garbage_fsck_ignores_and_gc_removes() {
    let env = media_repo();
    let m = env.repo().join("media");
    convert(&["-size", "40x30", "xc:red"], &m.join("second.png"));
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "second"]);
    let f = env.ok(&["fsck"]);
    assert!(!f.contains("dangling"), "{f}");
    let stats = |env: &Env| json(&env.ok(&["stats", "--json"]));
    let before = stats(&env)["objects"]["commit"]["count"].as_u64().unwrap();
    env.ok(&["gc", "--prune=now"]);
    let after = stats(&env)["objects"]["commit"]["count"].as_u64().unwrap();
    // Two history commits and the current notes commit stay; the first
    // notes commit is gone.
    assert_eq!((before, after), (4, 3));
    assert_eq!(record(&env, &["media/clip.mp4", "HEAD"])["stored"], true);
    assert_eq!(
        record(&env, &["media/second.png", "HEAD"])["metadata"]["width"],
        40
    );
    let f = env.ok(&["fsck"]);
    assert!(f.ends_with(" 0 problems\n"), "{f}");
    // `media.records false`: add stores none, diff still reads headers.
    env.ok(&["config", "media.records", "false"]);
    convert(&["-size", "50x60", "xc:blue"], &m.join("third.png"));
    env.ok(&["add", "-A"]);
    let r = record(&env, &["media/third.png"]);
    assert_eq!(r["stored"], false, "{r}");
    assert!(env.ok(&["diff", "--cached"]).contains("image 50x60"));
    let err = env.fail_with(2, &["config", "media.records", "maybe"]);
    assert!(err.contains("true or false"), "{err}");
}

#[test]
fn media_never_reads_through_a_symlinked_directory() {
    let env = media_repo();
    let outside = tempfile::tempdir().unwrap();
    std::fs::copy(
        media_dir().join("photo.jpg"),
        outside.path().join("secret.jpg"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), env.repo().join("dlink")).unwrap();
    let err = env.fail(&["media", "dlink/secret.jpg"]);
    assert!(err.contains("dlink"), "{err}");
    assert!(!err.contains("TestCam"), "{err}");
}
