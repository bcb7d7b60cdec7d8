//! What goes wrong, and what a user reads when it does: missing repositories,
//! unknown revisions, bad paths, unreadable or changing files, corruption, a
//! full disk, a held lock, and refusals that protect local work. Every failure
//! must exit 1, name what it is about, and leave `.mediagit` and the working
//! tree as they were.
mod common;
use common::*;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

// ---------------------------------------------------------------- helpers

fn run(c: &mut assert_cmd::Command) -> Output {
    c.output().expect("run mediagit")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ls_files(env: &Env) -> Vec<String> {
    env.ok(&["ls-files"]).lines().map(str::to_string).collect()
}

/// Effective uid of this process, from `/proc/self/status`.
fn uid() -> u32 {
    let s = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = s.lines().find(|l| l.starts_with("Uid:")).expect("Uid line");
    line.split_whitespace()
        .nth(2)
        .expect("effective uid")
        .parse()
        .expect("numeric uid")
}

/// Everything a failed command must not change: the repository and the tree.
struct Snapshot {
    repo: std::collections::BTreeMap<String, String>,
    tree: std::collections::BTreeMap<String, String>,
}

fn snapshot(env: &Env) -> Snapshot {
    Snapshot {
        repo: env.repo_state(),
        tree: tree_hashes(&env.repo()),
    }
}

fn assert_unchanged(env: &Env, before: &Snapshot, what: &str) {
    assert_eq!(env.repo_state(), before.repo, "{what}: .mediagit changed");
    assert_eq!(
        tree_hashes(&env.repo()),
        before.tree,
        "{what}: working tree changed"
    );
}

/// Runs, asserts exit 1 and that nothing changed, returns stderr.
fn fail_unchanged(env: &Env, args: &[&str]) -> String {
    let before = snapshot(env);
    let err = env.fail(args);
    assert_unchanged(env, &before, &format!("{args:?}"));
    err
}

fn commit_file(env: &Env, path: &str, data: &[u8], msg: &str) {
    env.write(path, data);
    env.ok(&["add", path]);
    env.ok(&["commit", "-m", msg]);
}

// ---------------------------------------------------------------- no repository

#[test]
fn not_a_repository() {
    let env = Env::empty();
    fs::create_dir_all(env.root().join("plain/sub")).unwrap();
    fs::write(env.root().join("plain/a.txt"), b"a").unwrap();
    for args in [
        &["status"][..],
        &["add", "-A"],
        &["log"],
        &["commit", "-m", "x"],
        &["ls-files"],
    ] {
        let out = run(&mut env.cmd_in(&env.root().join("plain/sub"), args));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("not a mediagit repository"), "{args:?}: {err}");
        assert!(err.contains("plain/sub"), "names where it looked: {err}");
        let hint = err
            .lines()
            .find(|l| l.starts_with("hint:"))
            .unwrap_or_else(|| panic!("a hint line: {err}"));
        assert!(hint.contains("mediagit init"), "{hint}");
        assert_eq!(text(&out.stdout), "");
    }
    let err = env.fail(&["-C", "plain", "status"]);
    assert!(err.contains("not a mediagit repository"), "{err}");
    assert!(!env.root().join("plain/.mediagit").exists());
}

// ---------------------------------------------------------------- revisions

#[test]
fn unknown_revisions_are_named() {
    let env = Env::new();
    // An unborn branch names itself.
    let err = env.fail(&["log"]);
    assert!(
        err.contains("\"main\"") && err.contains("does not have any commits"),
        "{err}"
    );

    commit_file(&env, "a.txt", b"a\n", "one");
    env.write("a.txt", b"local edit\n");
    for (args, rev) in [
        (&["log", "nosuchrev"][..], "nosuchrev"),
        (&["log", "--oneline", "deadbeef"], "deadbeef"),
        (&["checkout", "nosuchrev"], "nosuchrev"),
        (&["checkout", "--force", "v9.9"], "v9.9"),
        (&["cat", "nosuchrev:a.txt"], "nosuchrev"),
        (&["show", "nosuchrev"], "nosuchrev"),
        (&["ls-tree", "ghost"], "ghost"),
        (&["diff", "ghost"], "ghost"),
        (&["branch", "create", "x", "ghost"], "ghost"),
    ] {
        let err = fail_unchanged(&env, args);
        assert!(
            err.contains(&format!("unknown revision \"{rev}\"")),
            "{args:?}: {err}"
        );
    }
    let err = fail_unchanged(&env, &["show", "HEAD~3"]);
    assert!(err.contains("\"HEAD~3\" has no parent"), "{err}");
    let err = fail_unchanged(&env, &["cat", "HEAD:nope.txt"]);
    assert!(err.contains("nope.txt"), "{err}");
    assert_eq!(env.read("a.txt"), b"local edit\n");
    // `checkout REV -- PATH` names the revision too.
    let err = fail_unchanged(&env, &["checkout", "nosuchrev", "--", "a.txt"]);
    assert!(err.contains("unknown revision \"nosuchrev\""), "{err}");
}

// ---------------------------------------------------------------- paths

#[test]
fn add_path_outside_the_repository() {
    let env = Env::new();
    fs::write(env.root().join("outside.txt"), b"outside").unwrap();
    env.write("in.txt", b"in");
    let err = fail_unchanged(&env, &["add", "../outside.txt"]);
    assert!(err.contains("../outside.txt"), "{err}");
    assert!(err.contains("outside the repository"), "{err}");
    let abs = env.root().join("outside.txt");
    let err = fail_unchanged(&env, &["add", "in.txt", abs.to_str().unwrap()]);
    assert!(err.contains(abs.to_str().unwrap()), "{err}");
    assert!(err.contains("outside the repository"), "{err}");
    let err = fail_unchanged(&env, &["add", ".mediagit/config.toml"]);
    assert!(err.contains(".mediagit/config.toml"), "{err}");
    assert!(ls_files(&env).is_empty(), "nothing staged");
}

#[test]
fn add_nonexistent_path() {
    let env = Env::new();
    env.write("a.txt", b"a");
    let err = fail_unchanged(&env, &["add", "nope.txt"]);
    assert!(err.contains("\"nope.txt\""), "{err}");
    assert!(err.contains("did not match"), "{err}");
    // One bad path fails the whole command: a.txt is not staged either.
    let err = fail_unchanged(&env, &["add", "a.txt", "dir/nope.bin"]);
    assert!(
        err.contains("dir/nope.bin") && err.contains("did not match"),
        "{err}"
    );
    assert!(ls_files(&env).is_empty());
}

// ---------------------------------------------------------------- unreadable file

#[test]
fn unreadable_file_fails_add_and_stages_nothing() {
    let env = Env::new();
    env.write("ok.txt", b"fine\n");
    env.write("media/secret.bin", b"you cannot read me\n");
    let root_user = uid() == 0;
    let xdg = env.trusting_settings();
    if root_user {
        // Root reads anything; run the binary as nobody in a world-writable tree.
        let st = std::process::Command::new("chmod")
            .args(["-R", "777"])
            .arg(env.root())
            .status()
            .unwrap();
        assert!(st.success());
        // But the settings trusting everything stay root's alone (settings
        // others could rewrite are ignored), on a path others cannot
        // change: the sticky bit on the folder they can write.
        fs::set_permissions(env.root(), fs::Permissions::from_mode(0o1777)).unwrap();
        for d in [xdg.clone(), xdg.join("mediagit")] {
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(
            xdg.join("mediagit/config.toml"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let secret = env.repo().join("media/secret.bin");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    let as_user = |args: &[&str]| -> Output {
        if root_user {
            let bin = assert_cmd::cargo::cargo_bin("mediagit");
            let mut c = assert_cmd::Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                bin.to_str().unwrap(),
            ])
            .args(args)
            .current_dir(env.repo())
            .env("XDG_CONFIG_HOME", &xdg)
            .env("MEDIAGIT_AUTHOR_NAME", "Test User")
            .env("MEDIAGIT_AUTHOR_EMAIL", "test@example.com")
            .env("MEDIAGIT_PASSPHRASE", TEST_PASSPHRASE);
            run(&mut c)
        } else {
            run(&mut env.cmd(args))
        }
    };
    // Sanity: the unprivileged user really cannot read it, but can use the repo.
    let out = as_user(&["status", "--porcelain"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // (Listed by that user too: the repository is theirs to write, so
    // not root's to trust.)
    let staged = || -> Vec<String> {
        let out = as_user(&["ls-files"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).lines().map(String::from).collect()
    };
    let before = env.repo_state();
    for args in [
        &["add", "-A"][..],
        &["add", "ok.txt", "media/secret.bin"],
        &["add", "media"],
    ] {
        let out = as_user(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("media/secret.bin"), "{args:?}: {err}");
        assert!(err.contains("ermission denied"), "{args:?}: {err}");
        assert!(staged().is_empty(), "{args:?}: nothing got staged");
        assert_eq!(env.repo_state(), before, "{args:?}");
    }
    // The readable file alone is fine.
    let out = as_user(&["add", "ok.txt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(staged(), ["ok.txt"]);
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
}

// ---------------------------------------------------------------- changing file

#[test]
fn file_changing_while_added_is_refused() {
    const SIZE: u64 = 150 * 1024 * 1024;
    let mut last = String::new();
    for attempt in 0..4 {
        let env = Env::new();
        env.write("small.txt", b"small\n");
        let path = env.repo().join("growing.bin");
        write_random(&path, SIZE, 11 + attempt);
        let before = env.repo_state();

        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let writer = {
            let (stop, started, path) = (stop.clone(), started.clone(), path.clone());
            std::thread::spawn(move || {
                let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
                let block = vec![0x5au8; 16 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    f.write_all(&block).unwrap();
                    started.store(true, Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        };
        while !started.load(Ordering::Relaxed) {
            std::thread::yield_now();
        }
        let out = run(&mut env.cmd(&["add", "-A"]));
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();

        let err = text(&out.stderr);
        if out.status.success() {
            last = format!("attempt {attempt}: add succeeded while the file grew");
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("changed while it was being read"), "{err}");
        assert!(err.contains("growing.bin"), "{err}");
        let files = ls_files(&env);
        assert!(!files.contains(&"growing.bin".to_string()), "{files:?}");
        assert!(files.is_empty(), "all or nothing: {files:?}");
        if env.remote() {
            // In a bucket an add checkpoints every 32 MiB: the packs those
            // checkpoints stored (unreferenced, for the next add to reuse),
            // their cached indexes and the add journal may stay; the index,
            // refs and settings are as they were.
            let settled = |m: std::collections::BTreeMap<String, String>| {
                m.into_iter()
                    .filter(|(k, _)| {
                        !(k.starts_with("cache/") || k.starts_with("packs/") || k == "add-journal")
                    })
                    .collect::<std::collections::BTreeMap<_, _>>()
            };
            assert_eq!(
                settled(env.repo_state()),
                settled(before),
                ".mediagit unchanged"
            );
        } else {
            // Below the local checkpoint size (256 MiB): nothing at all.
            assert_eq!(env.repo_state(), before, ".mediagit unchanged");
        }
        // Once it stops changing, it can be added.
        env.ok(&["add", "-A"]);
        let long = env.ok(&["ls-files", "-l"]);
        assert!(long.contains(&sha256_file(&path)), "{long}");
        return;
    }
    panic!("the file never changed during add: {last}");
}

// ---------------------------------------------------------------- corruption

/// Flips bytes inside the payload of the entry in the middle of `pack`;
/// returns the id (hex) of the damaged object.
fn corrupt_middle(pack: &Path) -> String {
    const HEADER: usize = 16;
    const ENTRY: usize = 44;
    let mut data = fs::read(pack).unwrap();
    let mid = data.len() / 2;
    let mut off = HEADER;
    loop {
        assert!(off + ENTRY <= data.len(), "ran off the end of the pack");
        let stored = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        let end = off + ENTRY + stored;
        if mid < end {
            assert!(stored >= 64, "payload big enough to damage");
            let id = hex::encode(&data[off + 12..off + 44]);
            let pos = off + ENTRY + stored / 2;
            assert!(pos + 16 <= end);
            for b in &mut data[pos..pos + 16] {
                *b ^= 0xa5;
            }
            fs::write(pack, &data).unwrap();
            return id;
        }
        off = end;
    }
}

#[test]
fn corrupted_pack_is_detected_and_nothing_wrong_is_written() {
    let env = Env::new();
    if env.remote() || test_encrypt() {
        // Damages a pack file on local disk, finding the entry by walking
        // plaintext entry headers; the local run covers it (sealed packs:
        // tests/encryption.rs and mediagit-repo's sealed_store.rs).
        return;
    }
    let big = env.repo().join("big.bin");
    write_random(&big, 8_000_000, 21);
    let v1 = fs::read(&big).unwrap();
    env.ok(&["add", "big.bin"]);
    let chunk_pack = packs(&env).into_iter().next().expect("one pack after add");
    env.ok(&["commit", "-m", "v1"]);
    write_random(&big, 8_000_000, 22);
    let v2 = fs::read(&big).unwrap();
    env.ok(&["commit", "-a", "-m", "v2"]);
    let head = env.rev("HEAD");

    let id = corrupt_middle(&chunk_pack);
    let v2_hash = sha256_file(&big);

    // cat: fails, names the object, never emits bytes that are not v1's.
    let before = snapshot(&env);
    let out = run(&mut env.cmd(&["cat", "HEAD~1:big.bin"]));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    assert!(err.contains(&id), "names the object {id}: {err}");
    assert!(
        out.stdout.len() < v1.len() && v1.starts_with(&out.stdout),
        "cat wrote {} bytes that are not a prefix of the content",
        out.stdout.len()
    );
    assert_unchanged(&env, &before, "cat");
    // The undamaged version still reads back.
    let out = run(&mut env.cmd(&["cat", "HEAD:big.bin"]));
    assert!(out.status.success());
    assert_eq!(out.stdout, v2);

    let check_worktree = |what: &str| {
        let names: Vec<String> = fs::read_dir(env.repo())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        for n in &names {
            assert!(
                n == ".mediagit" || n == "big.bin",
                "{what}: stray file {n} left in the working tree"
            );
        }
        if big.exists() {
            assert_eq!(sha256_file(&big), v2_hash, "{what}: wrong bytes written");
        }
    };

    // checkout --force of the damaged version.
    for args in [
        &["checkout", "--force", "HEAD~1"][..],
        &["checkout", "HEAD~1"],
    ] {
        let before = snapshot(&env);
        let err = env.fail(args);
        assert!(err.contains("corrupt"), "{args:?}: {err}");
        assert!(err.contains(&id), "{args:?}: {err}");
        check_worktree(&format!("{args:?}"));
        assert_unchanged(&env, &before, &format!("{args:?}"));
        assert_eq!(env.rev("HEAD"), head, "HEAD did not move");
    }
    // Into an emptied tree: the file stays absent rather than half-written.
    fs::remove_file(&big).unwrap();
    let err = env.fail(&["checkout", "--force", "HEAD~1"]);
    assert!(err.contains("corrupt") && err.contains(&id), "{err}");
    check_worktree("checkout into an empty tree");
    assert!(!big.exists(), "no partial file");
    assert_eq!(env.rev("HEAD"), head);
    // The intact version can still be restored.
    env.ok(&["checkout", "--force", "main"]);
    assert_eq!(sha256_file(&big), v2_hash);

    // Restoring just the path from the damaged revision fails the same way.
    let before = snapshot(&env);
    let err = env.fail(&["checkout", "HEAD~1", "--", "big.bin"]);
    assert!(err.contains("corrupt") && err.contains(&id), "{err}");
    check_worktree("checkout HEAD~1 -- big.bin");
    assert_unchanged(&env, &before, "checkout HEAD~1 -- big.bin");
}

// ---------------------------------------------------------------- full disk

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(&self.0)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
}

#[test]
fn full_disk_fails_cleanly() {
    let env = Env::empty();
    let dot = env.root().join("repo/.mediagit");
    fs::create_dir_all(&dot).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs"])
        .arg(&dot)
        .output()
        .expect("run mount");
    if !mounted.status.success() {
        require_tmpfs(&text(&mounted.stderr));
        println!(
            "full_disk_fails_cleanly: cannot mount a tmpfs here ({}); not testing a full disk",
            text(&mounted.stderr).trim()
        );
        return;
    }
    let _mount = Mount(dot.clone());
    env.ok(&["init"]);
    assert!(dot.join("config.toml").is_file());
    assert!(!env.repo().join("repo").exists());
    write_random(&env.repo().join("big.bin"), 20 * 1024 * 1024, 5);
    env.write("small.txt", b"small\n");

    let before = snapshot(&env);
    let out = run(&mut env.cmd(&["add", "-A"]));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left"), "{err}");
    assert_unchanged(&env, &before, "add on a full disk");
    assert!(ls_files(&env).is_empty());
    let tmp: Vec<_> = fs::read_dir(dot.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "temporary packs removed: {tmp:?}");

    // The repository still works, and the space came back.
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "?? big.bin\n?? small.txt\n"
    );
    env.ok(&["add", "small.txt"]);
    env.ok(&["commit", "-m", "small fits"]);
    let out = run(&mut env.cmd(&["cat", "HEAD:small.txt"]));
    assert_eq!(out.stdout, b"small\n");
    // The big file still does not fit, and still changes nothing.
    let err = fail_unchanged(&env, &["add", "big.bin"]);
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(ls_files(&env), ["small.txt"]);
    // The CLI's hint for a full disk (ENOSPC) is shown.
    assert!(err.contains("hint: the disk is full"), "{err}");

    // commit on a full disk: stage something that fits, then fill the disk.
    let medium = vec![b'm'; 100_000];
    env.write("medium.txt", &medium);
    env.ok(&["add", "medium.txt"]);
    let head = env.ok(&["log", "-n", "1", "--oneline"]);
    fill_disk(&dot.join("filler"));
    let err = fail_unchanged(&env, &["commit", "-m", "no room"]);
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(
        env.ok(&["log", "-n", "1", "--oneline"]),
        head,
        "HEAD did not move"
    );
    fs::remove_file(dot.join("filler")).unwrap();
    env.ok(&["commit", "-m", "room again"]);
    assert_eq!(
        run(&mut env.cmd(&["cat", "HEAD:medium.txt"])).stdout,
        medium
    );
    assert!(env.ok(&["fsck"]).contains("0 problems"));
}

#[test]
fn checkout_that_cannot_fit_is_refused_before_touching_anything() {
    let env = Env::empty();
    let repo = env.root().join("repo");
    fs::create_dir_all(&repo).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs"])
        .arg(&repo)
        .output()
        .expect("run mount");
    if !mounted.status.success() {
        require_tmpfs(&text(&mounted.stderr));
        println!("cannot mount a tmpfs here; not testing checkout space checks");
        return;
    }
    let _mount = Mount(repo.clone());
    env.ok(&["init"]);
    env.write("small.txt", b"small\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "small"]);
    env.ok(&["switch", "-c", "big"]);
    write_random(&env.repo().join("big.bin"), 12 << 20, 3);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "big"]);
    env.ok(&["switch", "main"]);
    assert!(!env.repo().join("big.bin").exists());
    // Leave less room than the big file needs.
    let filler = env.repo().join(".mediagit/filler");
    {
        use std::io::Write;
        let mut f = fs::File::create(&filler).unwrap();
        let block = vec![0u8; 1 << 20];
        let free_mib = 64 - 12 - 2;
        for _ in 0..free_mib {
            if f.write_all(&block).is_err() {
                break;
            }
        }
    }
    let before = snapshot(&env);
    let err = env.fail(&["switch", "big"]);
    assert!(err.contains("not enough space"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_unchanged(&env, &before, "refused checkout");
    assert!(env.ok(&["status"]).contains("On branch main"));
    fs::remove_file(&filler).unwrap();
    env.ok(&["switch", "big"]);
    assert_eq!(
        fs::metadata(env.repo().join("big.bin")).unwrap().len(),
        12 << 20
    );
}

#[test]
fn a_clone_that_fails_leaves_nothing_behind() {
    let env = Env::new();
    write_random(&env.repo().join("big.bin"), 20 << 20, 8);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "big"]);
    let small = env.root().join("small");
    fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs"])
        .arg(&small)
        .output()
        .expect("run mount");
    if !mounted.status.success() {
        println!("cannot mount a tmpfs here; not testing a failed clone");
        return;
    }
    let _mount = Mount(small.clone());
    let out = run(&mut env.cmd_in(env.root(), &["clone", "repo", "small/copy"]));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("No space left") || err.contains("not enough space"),
        "{err}"
    );
    assert!(
        !small.join("copy").exists(),
        "the half-made clone was removed"
    );
    // An empty directory given as the destination is emptied again, not removed.
    fs::create_dir(small.join("given")).unwrap();
    let out = run(&mut env.cmd_in(env.root(), &["clone", "repo", "small/given"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(small.join("given").is_dir());
    assert_eq!(fs::read_dir(small.join("given")).unwrap().count(), 0);
}

/// Writes to `path` until the filesystem has no space left.
fn fill_disk(path: &Path) {
    use std::io::Write;
    let mut f = fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    while f.write_all(&[0u8]).is_ok() {}
    let _ = f.sync_all();
}

// ---------------------------------------------------------------- lock

#[test]
fn repository_lock_held_by_another_process() {
    let env = Env::new();
    commit_file(&env, "a.txt", b"a\n", "one");
    env.write("b.txt", b"b\n");
    let repo = mediagit_repo::Repository::discover(&env.repo()).unwrap();
    let lock = repo.workspace().unwrap().lock().unwrap();
    let pid = format!("pid {}", std::process::id());
    for args in [
        &["add", "b.txt"][..],
        &["add", "-A"],
        &["commit", "--allow-empty", "-m", "x"],
        &["rm", "a.txt"],
        &["mv", "a.txt", "c.txt"],
        &["checkout", "--force", "main"],
        &["branch", "create", "side"],
    ] {
        let err = fail_unchanged(&env, args);
        assert!(
            err.contains("locked by another mediagit process"),
            "{args:?}: {err}"
        );
        assert!(err.contains(&pid), "{args:?} names the holder: {err}");
        assert!(err.contains(".mediagit/lock"), "{args:?}: {err}");
    }
    // Reading still works.
    assert_eq!(env.ok(&["status", "--porcelain"]), "?? b.txt\n");
    assert_eq!(ls_files(&env), ["a.txt"]);
    drop(lock);
    env.ok(&["add", "b.txt"]);
    assert_eq!(ls_files(&env), ["a.txt", "b.txt"]);
}

// ---------------------------------------------------------------- checkout refusals

#[test]
fn checkout_refuses_to_overwrite_local_changes() {
    let env = Env::new();
    env.write("a.txt", b"one\n");
    env.write("b.txt", b"bee\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "c1"]);
    commit_file(&env, "a.txt", b"two\n", "c2");
    let head = env.rev("HEAD");

    env.write("a.txt", b"local edit\n");
    let err = fail_unchanged(&env, &["checkout", "HEAD~1"]);
    assert!(err.contains("a.txt"), "{err}");
    assert!(err.contains("would be overwritten"), "{err}");
    assert!(!err.contains("b.txt"), "{err}");
    assert_eq!(env.read("a.txt"), b"local edit\n");
    assert_eq!(env.rev("HEAD"), head);
    // Same-size edit, and a staged edit: still refused.
    env.write("a.txt", b"TWO\n");
    let err = fail_unchanged(&env, &["checkout", "HEAD~1"]);
    assert!(err.contains("a.txt"), "{err}");
    env.ok(&["add", "a.txt"]);
    let err = fail_unchanged(&env, &["checkout", "HEAD~1"]);
    assert!(
        err.contains("a.txt") && err.contains("would be overwritten"),
        "{err}"
    );
    assert_eq!(env.read("a.txt"), b"TWO\n");

    // --force discards it.
    env.ok(&["checkout", "--force", "HEAD~1"]);
    assert_eq!(env.read("a.txt"), b"one\n");
    assert_eq!(env.ok(&["status", "--porcelain"]), "");

    // A change to a file the switch does not touch is carried along.
    env.write("b.txt", b"bee, edited\n");
    env.ok(&["checkout", "main"]);
    assert_eq!(env.read("a.txt"), b"two\n");
    assert_eq!(env.read("b.txt"), b"bee, edited\n");
    assert_eq!(env.ok(&["status", "--porcelain"]), " M b.txt\n");
}

#[test]
fn checkout_refuses_to_overwrite_untracked_files() {
    let env = Env::new();
    commit_file(&env, "a.txt", b"a\n", "c1");
    env.write("new.txt", b"committed\n");
    env.write("dir/f.txt", b"f\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "c2"]);
    env.ok(&["checkout", "HEAD~1"]);
    assert!(!env.repo().join("new.txt").exists());
    assert!(!env.repo().join("dir").exists());
    let c1 = env.rev("HEAD");

    env.write("new.txt", b"mine\n");
    let err = fail_unchanged(&env, &["checkout", "main"]);
    assert!(err.contains("untracked"), "{err}");
    assert!(err.contains("new.txt"), "{err}");
    assert_eq!(env.read("new.txt"), b"mine\n");
    assert_eq!(env.rev("HEAD"), c1);

    // An untracked file where a directory has to go.
    fs::remove_file(env.repo().join("new.txt")).unwrap();
    env.write("dir", b"a file, not a directory\n");
    let err = fail_unchanged(&env, &["checkout", "main"]);
    assert!(err.contains("untracked") && err.contains("dir"), "{err}");
    assert_eq!(env.read("dir"), b"a file, not a directory\n");

    // --force overrides.
    env.write("new.txt", b"mine\n");
    env.ok(&["checkout", "--force", "main"]);
    assert_eq!(env.read("new.txt"), b"committed\n");
    assert_eq!(env.read("dir/f.txt"), b"f\n");
    assert_eq!(env.ok(&["status", "--porcelain"]), "");
}

// ---------------------------------------------------------------- branches

#[test]
fn branch_delete_unmerged_needs_force() {
    let env = Env::new();
    commit_file(&env, "a.txt", b"a\n", "c1");
    env.ok(&["switch", "-c", "feature"]);
    commit_file(&env, "f.txt", b"feature\n", "f1");
    let tip = env.rev("feature");
    env.ok(&["switch", "main"]);

    let err = fail_unchanged(&env, &["branch", "delete", "feature"]);
    assert!(err.contains("\"feature\""), "{err}");
    assert!(err.contains("not fully merged"), "{err}");
    assert!(err.contains("-D"), "{err}");
    assert!(env.ok(&["branch"]).contains("feature"));
    let err = fail_unchanged(&env, &["branch", "delete", "main"]);
    assert!(
        err.contains("\"main\"") && err.contains("checked out"),
        "{err}"
    );
    let err = fail_unchanged(&env, &["branch", "delete", "nope"]);
    assert!(
        err.contains("\"nope\"") && err.contains("not found"),
        "{err}"
    );

    assert_eq!(
        env.ok(&["branch", "delete", "-D", "feature"]),
        format!("Deleted branch feature (was {tip})\n")
    );
    assert!(!env.ok(&["branch"]).contains("feature"));
    // The commit is still reachable by id.
    assert!(env.ok(&["log", "--oneline", &tip]).contains("f1"));

    // A merged branch needs no force.
    env.ok(&["branch", "create", "merged"]);
    env.ok(&["branch", "delete", "merged"]);
    assert!(!env.ok(&["branch"]).contains("merged"));
}

// ---------------------------------------------------------------- config

#[test]
fn unknown_config_format_version() {
    let env = Env::new();
    commit_file(&env, "a.txt", b"a\n", "c1");
    let cfg = env.repo().join(".mediagit/config.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("version = 2"), "{text}");
    fs::write(&cfg, text.replace("version = 2", "version = 99")).unwrap();
    for args in [
        &["status"][..],
        &["log"],
        &["add", "-A"],
        &["checkout", "--force", "main"],
    ] {
        let err = fail_unchanged(&env, args);
        assert!(err.contains("unknown format version 99"), "{args:?}: {err}");
        assert!(err.contains("config.toml"), "{args:?}: {err}");
        assert!(err.contains("upgrade"), "{args:?}: {err}");
    }
}

#[test]
fn a_required_feature_this_build_does_not_know_is_refused_by_name() {
    let env = Env::new();
    commit_file(&env, "a.txt", b"a\n", "c1");
    let cfg = env.repo().join(".mediagit/config.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    // An optional feature it does not know is ignored.
    let optional = text.replace(
        "optional_features = [",
        "optional_features = [\"thumbnails-v9\", ",
    );
    assert_ne!(optional, text);
    fs::write(&cfg, &optional).unwrap();
    env.ok(&["log"]);
    env.ok(&["status"]);
    // A required one stops every command, naming it, changing nothing.
    let required = if text.contains("required_features = [") {
        // An encrypted repository lists "encryption" already.
        text.replace(
            "required_features = [",
            "required_features = [\"chunk-encryption-v7\", ",
        )
    } else {
        text.replace(
            "optional_features = [",
            "required_features = [\"chunk-encryption-v7\"]\noptional_features = [",
        )
    };
    fs::write(&cfg, required).unwrap();
    for args in [&["status"][..], &["log"], &["add", "-A"], &["upgrade"]] {
        let err = fail_unchanged(&env, args);
        assert!(err.contains("\"chunk-encryption-v7\""), "{args:?}: {err}");
        assert!(err.contains("upgrade mediagit"), "{args:?}: {err}");
    }
}

/// Under `scripts/test.sh` (`MEDIAGIT_REQUIRE_SERVERS=1`, as root on CI)
/// the full-disk tests must run, not pass by skipping.
fn require_tmpfs(why: &str) {
    assert!(
        std::env::var("MEDIAGIT_REQUIRE_SERVERS").as_deref() != Ok("1"),
        "cannot mount a tmpfs ({}) but MEDIAGIT_REQUIRE_SERVERS=1",
        why.trim()
    );
}

/// A stderr whose reader went away (`mediagit ... 2>&1 | head -0`) drops
/// the diagnostics; the command still does its work and exits normally
/// (it used to panic with exit 101 on the summary line).
#[test]
fn a_closed_stderr_pipe_does_not_fail_the_command() {
    let env = Env::new();
    env.write("a.txt", b"a\n");
    env.ok(&["add", "a.txt"]);
    env.ok(&["commit", "-m", "a"]);
    env.write("a.txt", b"changed\n");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("mediagit"));
    cmd.current_dir(env.repo())
        .env("HOME", env.root().join("home"))
        .env("XDG_CONFIG_HOME", env.root().join("home/.config"))
        .env("MEDIAGIT_PASSPHRASE", TEST_PASSPHRASE)
        .args(["checkout", "HEAD", "--", "a.txt"]);
    if std::env::var_os("MEDIAGIT_TEST_S3").is_none() {
        for v in mediagit_storage::object_store_backend::CLOUD_ENV_VARS {
            cmd.env_remove(v);
        }
    }
    let out = cmd.stderr(writer).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(env.read("a.txt"), b"a\n");
}
