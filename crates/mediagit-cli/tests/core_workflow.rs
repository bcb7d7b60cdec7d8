//! The core round trip on real media: add, commit, edit, commit, check out
//! each version and compare every byte.
mod common;
use common::*;

#[test]
fn media_round_trip_across_versions() {
    let env = Env::new();
    copy_media(&env.repo().join("media"));
    env.write("notes/readme.txt", b"shot list\n");
    env.write("empty.dat", b"");
    std::os::unix::fs::symlink("media/clip.mp4", env.repo().join("latest.mp4")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        env.write("tools/run.sh", b"#!/bin/sh\necho hi\n");
        std::fs::set_permissions(
            env.repo().join("tools/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "v1"]);
    let v1 = tree_hashes(&env.repo());

    // Edit: append to the video, replace the photo, delete the wav, add a file.
    let mut clip = env.read("media/clip.mp4");
    clip.extend_from_slice(&[7u8; 4096]);
    env.write("media/clip.mp4", &clip);
    std::fs::copy(
        media_dir().join("image.png"),
        env.repo().join("media/photo.jpg"),
    )
    .unwrap();
    std::fs::remove_file(env.repo().join("media/tone.wav")).unwrap();
    write_random(&env.repo().join("media/new.bin"), 300_000, 3);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "v2"]);
    let v2 = tree_hashes(&env.repo());
    assert_ne!(v1, v2);

    env.ok(&["checkout", "HEAD~1"]);
    assert_eq!(tree_hashes(&env.repo()), v1, "v1 restored byte-exactly");
    env.ok(&["checkout", "main"]);
    assert_eq!(tree_hashes(&env.repo()), v2, "v2 restored byte-exactly");

    // A fresh working tree from the same objects: remove everything, force checkout.
    for e in std::fs::read_dir(env.repo()).unwrap() {
        let e = e.unwrap();
        if e.file_name() != ".mediagit" {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(p).unwrap()
            } else {
                std::fs::remove_file(p).unwrap()
            }
        }
    }
    env.ok(&["checkout", "--force", "main"]);
    assert_eq!(tree_hashes(&env.repo()), v2);
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
}

#[test]
fn ls_files_ids_match_sha256sum() {
    let env = Env::new();
    copy_media(&env.repo());
    env.ok(&["add", "-A"]);
    let listing = env.ok(&["ls-files", "-l"]);
    let mut n = 0;
    for line in listing.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "mode, size, mtime, sha256, path: {line}");
        let path = env.repo().join(cols[4]);
        assert_eq!(cols[3], sha256_file(&path), "{line}");
        assert_eq!(
            cols[1].parse::<u64>().unwrap(),
            std::fs::metadata(&path).unwrap().len()
        );
        assert_eq!(cols[0], "100644");
        n += 1;
    }
    assert_eq!(n, 7);
    env.ok(&["commit", "-m", "m"]);
    let tree = env.ok(&["ls-tree", "-r", "-l", "HEAD"]);
    assert_eq!(
        tree, listing,
        "ls-tree of the commit equals ls-files of the index"
    );
}

#[test]
fn cat_streams_exact_bytes() {
    let env = Env::new();
    copy_media(&env.repo());
    env.ok(&["add", "clip.mp4", "tone.flac"]);
    env.ok(&["commit", "-m", "a"]);
    let out = env.cmd(&["cat", "HEAD:clip.mp4"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, env.read("clip.mp4"));
    let err = env.fail(&["cat", "HEAD:nope.mp4"]);
    assert!(err.contains("nope.mp4"), "{err}");
}

#[test]
fn clone_from_a_local_path_restores_every_byte() {
    let env = Env::new();
    copy_media(&env.repo().join("media"));
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "v1"]);
    env.ok(&["switch", "-c", "grade"]);
    write_random(&env.repo().join("media/graded.bin"), 700_000, 5);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "graded"]);
    env.ok(&["tag", "v1", "HEAD~1"]);
    let want = tree_hashes(&env.repo());

    let out = env
        .cmd_in(env.root(), &["clone", "repo", "copy"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = env.root().join("copy");
    assert_eq!(
        tree_hashes(&copy),
        want,
        "the clone's working tree is the source's HEAD"
    );
    let run = |args: &[&str]| {
        let o = env.cmd_in(&copy, args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(run(&["status"]).contains("On branch grade"));
    assert!(run(&["branch"]).contains("main"));
    assert!(run(&["tag"]).contains("v1"));
    assert!(run(&["fsck"]).contains("0 problems"));
    // The clone is independent: a commit there does not move the source.
    std::fs::write(copy.join("only-in-copy.txt"), b"x").unwrap();
    run(&["add", "-A"]);
    run(&["commit", "-m", "copy"]);
    assert!(!env.ok(&["log", "--oneline"]).contains("copy"));

    // Errors: destination not empty, source not a repository.
    let o = env
        .cmd_in(env.root(), &["clone", "repo", "copy"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    std::fs::create_dir(env.root().join("plain")).unwrap();
    let o = env
        .cmd_in(env.root(), &["clone", "plain", "copy2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a mediagit repository"));
    assert!(
        !env.root().join("copy2").exists(),
        "nothing created on failure"
    );
}

/// On a terminal, long operations draw a progress bar (bytes, throughput,
/// files); `-q` turns it off. `script` gives the command a real pty.
#[test]
fn progress_bar_on_a_terminal_only() {
    let env = Env::new();
    write_random(&env.repo().join("big.bin"), 64 << 20, 11);
    let bin = assert_cmd::cargo::cargo_bin("mediagit");
    let on_tty = |args: &str| {
        let cmd = format!("{} -C {} {args}", bin.display(), env.repo().display());
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("MEDIAGIT_PASSPHRASE", TEST_PASSPHRASE)
            .env("MEDIAGIT_AUTHOR_NAME", "T")
            .env("MEDIAGIT_AUTHOR_EMAIL", "t@example.com")
            .output()
            .expect("script(1) from util-linux");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let quiet = on_tty("-q add -A");
    assert!(!quiet.contains("adding"), "no bar with -q: {quiet:?}");
    env.ok(&["rm", "--cached", "big.bin"]);
    let shown = on_tty("add -A");
    assert!(shown.contains("adding"), "a bar on a terminal: {shown:?}");
    assert!(
        shown.contains("MiB") && shown.contains("files"),
        "bytes and files: {shown:?}"
    );
    // Not a terminal: nothing on stderr.
    env.ok(&["rm", "--cached", "big.bin"]);
    let out = env.cmd(&["add", "-A"]).output().unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Directories with identical contents share one tree object, which a
/// checkout expands once per place that names it (the flattening consumes
/// trees only when each is named once); every copy comes back byte-exact.
#[test]
fn identical_directories_share_a_tree_and_all_check_out() {
    let env = Env::new();
    for d in ["a", "b", "c/a", "c/b"] {
        env.write(&format!("{d}/one.bin"), b"same bytes in every copy");
        env.write(&format!("{d}/sub/two.txt"), b"nested, also shared");
    }
    env.write("a.txt", b"a file beside the directory a");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "shared trees"]);
    let want = tree_hashes(&env.repo());
    env.ok(&["branch", "create", "other"]);
    env.ok(&["checkout", "other"]);
    std::fs::remove_dir_all(env.repo().join("c")).unwrap();
    env.write("b/one.bin", b"changed on other");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "other"]);
    env.ok(&["checkout", "main"]);
    assert_eq!(tree_hashes(&env.repo()), want);
    for d in ["a", "b", "c"] {
        std::fs::remove_dir_all(env.repo().join(d)).unwrap();
    }
    env.ok(&["checkout", "--force", "HEAD"]);
    assert_eq!(tree_hashes(&env.repo()), want);
    assert_eq!(env.ok(&["status", "--porcelain"]), "");
}
