//! Crash safety, proven by fault injection: the real binary is killed by
//! SIGKILL at every write point of add, commit, checkout, gc and fsck --repair
//! (`MEDIAGIT_FAILPOINTS=write@N` for N = 1, 2, ... until the command
//! completes). After every kill: `fsck` is clean, HEAD is the old or the new
//! commit and nothing else, and every committed version restores byte-exactly.
mod common;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use common::*;

type Tree = BTreeMap<String, String>;

fn mg(dir: &Path, args: &[&str], failpoints: Option<&str>) -> std::process::Output {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("mediagit"));
    c.current_dir(dir)
        .env("MEDIAGIT_AUTHOR_NAME", "Crash Test")
        .env("MEDIAGIT_AUTHOR_EMAIL", "crash@example.com")
        .env_remove("MEDIAGIT_FAILPOINTS")
        .args(args);
    if let Some(f) = failpoints {
        c.env("MEDIAGIT_FAILPOINTS", f);
    }
    c.output().expect("run mediagit")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = mg(dir, args, None);
    assert!(
        out.status.success(),
        "mediagit {args:?} in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn head(dir: &Path) -> String {
    ok(dir, &["log", "-n", "1", "--oneline", "HEAD"])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn copy_dir(src: &Path, dst: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A repository with two commits on `main` and one on `side`, plus the tree
/// each commit must restore to.
struct Template {
    _env: Env,
    dir: std::path::PathBuf,
    versions: BTreeMap<String, Tree>,
    /// The commit of branch `side` (one of `versions`).
    side: String,
}

fn template() -> Template {
    let env = Env::new();
    let dir = env.repo();
    copy_media(&dir.join("media"));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    write_random(&dir.join("data/big.bin"), 2_500_000, 1);
    ok(&dir, &["add", "-A"]);
    ok(&dir, &["commit", "-m", "v1"]);
    let mut versions = BTreeMap::new();
    versions.insert(head(&dir), tree_hashes(&dir));
    write_random(&dir.join("data/big.bin"), 2_600_000, 2);
    std::fs::remove_file(dir.join("media/tone.wav")).unwrap();
    std::fs::write(dir.join("notes.txt"), b"v2 notes\n").unwrap();
    ok(&dir, &["add", "-A"]);
    ok(&dir, &["commit", "-m", "v2"]);
    versions.insert(head(&dir), tree_hashes(&dir));
    ok(&dir, &["switch", "-c", "side", "HEAD~1"]);
    write_random(&dir.join("side.bin"), 1_500_000, 3);
    ok(&dir, &["add", "-A"]);
    ok(&dir, &["commit", "-m", "side"]);
    let side = head(&dir);
    versions.insert(side.clone(), tree_hashes(&dir));
    ok(&dir, &["switch", "main"]);
    Template {
        dir,
        _env: env,
        versions,
        side,
    }
}

/// Every invariant a crash must preserve.
fn check_after_crash(
    dir: &Path,
    versions: &BTreeMap<String, Tree>,
    heads_allowed: &[String],
    what: &str,
) {
    let fsck = mg(dir, &["fsck"], None);
    assert!(
        fsck.status.success(),
        "{what}: fsck not clean after the crash:\n{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let h = head(dir);
    assert!(
        heads_allowed.contains(&h),
        "{what}: HEAD is {h}, expected one of {heads_allowed:?}"
    );
    ok(dir, &["status", "--porcelain"]);
    for id in versions.keys() {
        let v = mg(dir, &["verify", id], None);
        assert!(
            v.status.success(),
            "{what}: commit {id} no longer restores: {}",
            String::from_utf8_lossy(&v.stdout)
        );
    }
    // Check every version out for real and compare every byte. Untracked
    // files (the edits the killed command was staging) are set aside first.
    ok(dir, &["checkout", "--force", &h]);
    for line in ok(dir, &["status", "--porcelain"]).lines() {
        if let Some(p) = line.strip_prefix("?? ") {
            std::fs::remove_file(dir.join(p)).unwrap();
        }
    }
    for (id, tree) in versions {
        ok(dir, &["checkout", "--force", id]);
        assert_eq!(&tree_hashes(dir), tree, "{what}: checkout of {id} differs");
    }
}

/// Runs `op` (after `prepare`) killed at write point 1, 2, ... until it
/// completes; checks the invariants after each kill (and, with `rerun`,
/// again after running `op` once more, as a user would after a crash).
/// Returns the number of kill points exercised.
fn crash_loop(
    name: &str,
    tpl: &Template,
    prepare: &dyn Fn(&Path),
    op: &[&str],
    extra_heads: &dyn Fn(&Path) -> Vec<String>,
    rerun: bool,
) -> usize {
    crash_loop_checking(name, tpl, &tpl.versions, prepare, op, extra_heads, rerun)
}

/// [`crash_loop`], checking only `versions` (what `prepare` left reachable).
fn crash_loop_checking(
    name: &str,
    tpl: &Template,
    versions: &BTreeMap<String, Tree>,
    prepare: &dyn Fn(&Path),
    op: &[&str],
    extra_heads: &dyn Fn(&Path) -> Vec<String>,
    rerun: bool,
) -> usize {
    let scratch = tempfile::tempdir().unwrap();
    for n in 1..500 {
        let dir = scratch.path().join(format!("{name}-{n}"));
        copy_dir(&tpl.dir, &dir);
        prepare(&dir);
        let before = head(&dir);
        let spec = format!("write@{n}");
        let out = mg(&dir, op, Some(&spec));
        if out.status.success() {
            // Completed: every point before n was a kill point.
            let mut allowed = vec![before];
            allowed.extend(extra_heads(&dir));
            check_after_crash(&dir, versions, &allowed, &format!("{name} (no kill)"));
            std::fs::remove_dir_all(&dir).ok();
            return n - 1;
        }
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{name}: with {spec} the command failed instead of being killed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut allowed = vec![before];
        allowed.extend(extra_heads(&dir));
        check_after_crash(
            &dir,
            versions,
            &allowed,
            &format!("{name} killed at {spec}"),
        );
        if rerun {
            // The checks left HEAD at the last version they checked out.
            let now = vec![head(&dir)];
            ok(&dir, op);
            check_after_crash(
                &dir,
                versions,
                &now,
                &format!("{name} run again after a kill at {spec}"),
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    panic!("{name}: never completed");
}

#[test]
fn kill_at_every_write_point() {
    let tpl = template();
    let mut total = 0;

    // add: new and modified files are being packed and staged.
    let edit = |d: &Path| {
        write_random(&d.join("data/new.bin"), 2_200_000, 9);
        std::fs::write(d.join("media/notes2.txt"), b"more notes\n").unwrap();
        write_random(&d.join("data/big.bin"), 2_700_000, 10);
    };
    total += crash_loop("add", &tpl, &edit, &["add", "-A"], &|_| vec![], false);

    // commit -a: stage, write trees + commit, move the ref, append the reflog.
    // HEAD may be the old commit or the new one (a child of the old).
    let old_main = ok(&tpl.dir, &["log", "-n", "1", "--oneline", "main"])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    // The only other acceptable HEAD is a new commit whose parent is the old main.
    let commit_heads = |d: &Path| {
        let parent = mg(d, &["log", "-n", "1", "--oneline", "HEAD~1"], None);
        let parent = String::from_utf8_lossy(&parent.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        if parent == old_main {
            vec![head(d)]
        } else {
            vec![]
        }
    };
    total += crash_loop(
        "commit",
        &tpl,
        &edit,
        &["commit", "-a", "-m", "crash"],
        &commit_heads,
        false,
    );

    // checkout: switching branches rewrites the working tree.
    let side = ok(&tpl.dir, &["log", "-n", "1", "--oneline", "side"])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    total += crash_loop(
        "checkout",
        &tpl,
        &|_| {},
        &["checkout", "side"],
        &|_| vec![side.clone()],
        false,
    );

    // gc: unreachable objects (a deleted branch, expired reflogs) and several packs.
    let garbage = |d: &Path| {
        ok(d, &["branch", "delete", "-D", "side"]);
        // (Every record, the "deleted" one of this very second too.)
        ok(d, &["reflog", "expire", "--expire=2099-01-01"]);
    };
    // --max-unused 0: packs with any garbage are repacked (new pack, its
    // index, old index, old pack), dead ones deleted unread.
    // The side branch is garbage now: only main's versions must restore.
    let mut main_versions = tpl.versions.clone();
    main_versions.remove(&tpl.side);
    let n = crash_loop_checking(
        "gc",
        &tpl,
        &main_versions,
        &garbage,
        &["gc", "--prune=now", "--max-unused", "0"],
        &|_| vec![],
        true,
    );
    assert!(n >= 3, "gc has write points: {n}");
    total += n;

    // upgrade: a format-1 repository converted in place. After any kill the
    // settings are version 1 or 2, whole, and the checks above pass.
    let to_v1 = |d: &Path| {
        rewrite_config_as_format_1(&d.join(".mediagit/config.toml"));
    };
    let n = crash_loop("upgrade", &tpl, &to_v1, &["upgrade"], &|_| vec![], true);
    assert!(n >= 2, "upgrade has write points: {n}");
    total += n;

    // fsck --repair: rebuilding a deleted pack index.
    let lose_index = |d: &Path| {
        let packs = d.join(".mediagit/packs");
        let idx = std::fs::read_dir(&packs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .unwrap();
        // Keep a copy so that the checks after a kill can run: a kill before the
        // rebuild leaves the index missing, which is what the repair is for.
        std::fs::remove_file(idx).unwrap();
    };
    let scratch = tempfile::tempdir().unwrap();
    let mut repair_points = 0;
    for n in 1..100 {
        let dir = scratch.path().join(format!("repair-{n}"));
        copy_dir(&tpl.dir, &dir);
        lose_index(&dir);
        let out = mg(&dir, &["fsck", "--repair"], Some(&format!("write@{n}")));
        let killed = out.status.signal() == Some(9);
        // Whatever happened, a second repair completes the job.
        ok(&dir, &["fsck", "--repair"]);
        check_after_crash(
            &dir,
            &tpl.versions,
            std::slice::from_ref(&old_main),
            &format!("fsck --repair killed at write@{n}"),
        );
        if !killed {
            break;
        }
        repair_points += 1;
    }
    total += repair_points;
    eprintln!("crash suite: {total} kill points checked");
    assert!(total >= 20, "only {total} kill points were exercised");
}

/// A repository whose `add` checkpoints often: small chunks (so a 2 MB
/// file has hash checkpoints every 64 KiB and is journaled part way) and a
/// checkpoint every ~256 KB of new objects. Holds three random files and a
/// few small ones, settled (older than the racy margin).
fn checkpointing_template() -> (Env, std::path::PathBuf, Tree) {
    let env = Env::new();
    let dir = env.repo();
    let cfg = dir.join(".mediagit/config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .replace("min_size = 131072", "min_size = 1024")
        .replace("avg_size = 524288", "avg_size = 4096")
        .replace("max_size = 2097152", "max_size = 16384")
        .replace("bare = false", "bare = false\ncheckpoint_bytes = 262144");
    assert!(text.contains("checkpoint_bytes") && text.contains("avg_size = 4096"));
    std::fs::write(&cfg, text).unwrap();
    std::fs::create_dir_all(dir.join("shots")).unwrap();
    write_random(&dir.join("shots/a.mov"), 3_000_000, 21);
    write_random(&dir.join("shots/b.mov"), 2_000_000, 22);
    write_random(&dir.join("c.wav"), 1_500_000, 23);
    for i in 0..5 {
        std::fs::write(dir.join(format!("note{i}.txt")), format!("note {i}\n")).unwrap();
    }
    let want = tree_hashes(&dir);
    // Records are only written for files older than the racy margin (1 s).
    std::thread::sleep(std::time::Duration::from_millis(1300));
    (env, dir, want)
}

fn pack_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join(".mediagit/packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// After an interrupted or killed add, then a completed one: the index
/// stages exactly the files' content (ids equal sha256 of the bytes), a
/// commit restores every byte, and fsck is clean.
fn check_resumed(dir: &Path, want: &Tree, what: &str) {
    let listed = ok(dir, &["ls-files", "--json"]);
    let mut n = 0;
    for line in listed.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let path = v["path"].as_str().unwrap();
        let sha = v["content"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {line}"));
        assert!(
            want[path].contains(sha),
            "{what}: {path} staged as {sha}, the file is {}",
            want[path]
        );
        n += 1;
    }
    assert_eq!(n, want.len(), "{what}: staged {listed}");
    ok(dir, &["commit", "-m", "resumed"]);
    for f in want.keys() {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    ok(dir, &["checkout", "--force", "HEAD"]);
    assert_eq!(&tree_hashes(dir), want, "{what}: checkout differs");
    let fsck = mg(dir, &["fsck"], None);
    assert!(fsck.status.success(), "{what}: fsck: {fsck:?}");
}

#[test]
fn add_killed_at_a_checkpoint_keeps_what_it_stored_and_resumes() {
    let (_env, tpl, want) = checkpointing_template();
    let scratch = tempfile::tempdir().unwrap();
    // What one uninterrupted add stores.
    let full_dir = scratch.path().join("full");
    copy_dir(&tpl, &full_dir);
    ok(&full_dir, &["add", "-A"]);
    let full = pack_bytes(&full_dir);
    assert!(full > 6_000_000, "{full}");
    let mut resumed = 0;
    for point in ["write:checkpoint-stored", "write:journal-appended"] {
        let mut n = 1;
        loop {
            let dir = scratch.path().join(format!("{point}-{n}"));
            copy_dir(&tpl, &dir);
            let spec = format!("{point}@{n}");
            let out = mg(&dir, &["add", "-A"], Some(&spec));
            if out.status.success() {
                assert!(n > 5, "{spec}: add completed after {} checkpoints", n - 1);
                break;
            }
            assert_eq!(out.status.signal(), Some(9), "{spec}: {out:?}");
            // Nothing staged, the store sound, the work kept.
            assert_eq!(ok(&dir, &["ls-files"]), "", "{spec}: staged after a kill");
            let fsck = mg(&dir, &["fsck"], None);
            assert!(fsck.status.success(), "{spec}: fsck: {fsck:?}");
            let kept = pack_bytes(&dir);
            assert!(
                kept >= 262_144 * n as u64 / 2,
                "{spec}: only {kept} bytes kept"
            );
            let again = mg(&dir, &["add", "-A"], None);
            assert!(again.status.success(), "{spec}: re-run: {again:?}");
            if String::from_utf8_lossy(&again.stderr).contains("resumed an interrupted add") {
                resumed += 1;
            }
            assert!(
                !dir.join(".mediagit/add-journal").exists(),
                "{spec}: journal left after a successful add"
            );
            // Nothing stored twice: the kill lost only unstored temp packs.
            let total = pack_bytes(&dir);
            assert!(
                total <= full + 64 * 1024,
                "{spec}: {total} bytes stored in all, one add stores {full}"
            );
            check_resumed(&dir, &want, &spec);
            std::fs::remove_dir_all(&dir).ok();
            n += 1;
        }
    }
    assert!(
        resumed >= 5,
        "only {resumed} re-runs resumed from the journal"
    );
}

#[test]
fn ctrl_c_stops_add_cleanly_and_the_next_add_continues() {
    let (_env, dir, want) = checkpointing_template();
    // A Ctrl-C (SIGINT) at the fourth checkpoint.
    let out = mg(&dir, &["add", "-A"], Some("write:checkpoint-stored@4=int"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(
        err.contains("interrupted: ") && err.contains("of new data stored so far are kept"),
        "{err}"
    );
    assert!(err.contains("nothing was staged"), "{err}");
    assert!(
        err.contains("hint: run the same `mediagit add` again"),
        "{err}"
    );
    assert!(!err.contains(" 0 B of new data"), "nothing kept: {err}");
    assert_eq!(ok(&dir, &["ls-files"]), "");
    assert!(dir.join(".mediagit/add-journal").exists());
    assert!(
        std::fs::read_dir(dir.join(".mediagit/tmp"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "an interrupted add leaves no temporary pack"
    );
    // A second interrupted run keeps going from the first.
    let out = mg(&dir, &["add", "-A"], Some("write:checkpoint-stored@3=int"));
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let again = mg(&dir, &["add", "-A"], None);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{again:?}");
    assert!(err.contains("resumed an interrupted add: "), "{err}");
    check_resumed(&dir, &want, "after Ctrl-C");
}

#[test]
fn a_damaged_or_stale_add_journal_costs_time_never_content() {
    let (_env, tpl, want) = checkpointing_template();
    let scratch = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let d = scratch.path().join(name);
        copy_dir(&tpl, &d);
        let out = mg(&d, &["add", "-A"], Some("write:checkpoint-stored@8=int"));
        assert_eq!(out.status.code(), Some(130), "{out:?}");
        d
    };
    // Every byte of the journal flipped in turn would be slow; flip a
    // spread of them, truncate it, and replace it with garbage.
    let d = make("flipped");
    let j = d.join(".mediagit/add-journal");
    let bytes = std::fs::read(&j).unwrap();
    assert!(bytes.len() > 100);
    for at in [0, 9, 13, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        std::fs::write(&j, &b).unwrap();
        let e = scratch.path().join(format!("flipped-{at}"));
        copy_dir(&d, &e);
        ok(&e, &["add", "-A"]);
        check_resumed(&e, &want, &format!("journal byte {at} flipped"));
    }
    for cut in [5, 12, bytes.len() / 2] {
        std::fs::write(&j, &bytes[..cut]).unwrap();
        let e = scratch.path().join(format!("cut-{cut}"));
        copy_dir(&d, &e);
        ok(&e, &["add", "-A"]);
        check_resumed(&e, &want, &format!("journal cut at {cut}"));
    }
    std::fs::write(&j, b"MGADDJ\0\0\x63\0\0\0garbage").unwrap();
    ok(&d, &["add", "-A"]);
    check_resumed(&d, &want, "journal of an unknown version");

    // A file changed after the interruption: its records no longer hold.
    let d = make("changed");
    write_random(&d.join("shots/a.mov"), 3_000_000, 99);
    let mut want2 = want.clone();
    want2.insert("shots/a.mov".into(), tree_hashes(&d)["shots/a.mov"].clone());
    ok(&d, &["add", "-A"]);
    check_resumed(&d, &want2, "file changed after the interruption");

    // The objects it names are gone (a gc past the grace period removed
    // the checkpointed packs): the files are read again.
    let d = make("collected");
    ok(&d, &["gc", "--prune=now"]);
    let out = mg(&d, &["add", "-A"], None);
    assert!(out.status.success(), "{out:?}");
    check_resumed(&d, &want, "checkpointed objects collected");
}

#[test]
fn the_add_journal_is_private_never_followed_and_kept_for_paths_not_added() {
    use std::os::unix::fs::PermissionsExt;
    let (_env, dir, want) = checkpointing_template();
    let journal = dir.join(".mediagit/add-journal");
    // A symlink at the journal's path: add neither reads nor overwrites
    // what it points to, and says the next add cannot resume.
    let victim = dir.parent().unwrap().join("victim.txt");
    std::fs::write(&victim, b"precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, &journal).unwrap();
    let out = mg(&dir, &["add", "-A"], Some("write:checkpoint-stored@4=int"));
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not be written"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    std::fs::remove_file(&journal).unwrap();

    let out = mg(&dir, &["add", "-A"], Some("write:checkpoint-stored@4=int"));
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let mode = std::fs::metadata(&journal).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the journal is private");
    // Adding one path, then `commit -a` (tracked files only), leaves the
    // journal for the files they did not look at.
    ok(&dir, &["add", "note0.txt"]);
    assert!(journal.exists(), "add PATH dropped the journal");
    ok(&dir, &["commit", "-a", "-m", "one note"]);
    assert!(journal.exists(), "commit -a dropped the journal");
    let again = mg(&dir, &["add", "-A"], None);
    assert!(again.status.success(), "{again:?}");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("resumed an interrupted add: "), "{err}");
    assert!(!journal.exists(), "a whole-tree add leaves no journal");
    check_resumed(&dir, &want, "after add PATH and commit -a");
}

/// Whether process `pid` is stopped (state `T` in /proc/PID/stat).
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
        .unwrap_or(false)
}

/// Runs `mediagit ARGS` in `dir` with the stop failpoint `stop_at`
/// (`NAME@N=stop`), returns once it has stopped there, with its pid.
fn spawn_stopped(dir: &Path, stop_at: &str, args: &[&str]) -> (std::process::Child, u32) {
    let child = Command::new(assert_cmd::cargo::cargo_bin("mediagit"))
        .current_dir(dir)
        .env("MEDIAGIT_AUTHOR_NAME", "Crash Test")
        .env("MEDIAGIT_AUTHOR_EMAIL", "crash@example.com")
        .env("MEDIAGIT_FAILPOINTS", stop_at)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let t0 = std::time::Instant::now();
    while !is_stopped(pid) {
        assert!(
            t0.elapsed().as_secs() < 60,
            "{args:?} never reached {stop_at}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    (child, pid)
}

/// Continues a stopped `child` and waits for it to end by itself; after 60
/// s it is declared hung: `unblock` runs (to free it) and the test fails.
fn resume(child: std::process::Child, pid: u32, unblock: impl FnOnce()) -> std::process::Output {
    assert!(Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            unblock();
            panic!("the command hung");
        }
    }
}

/// A directory of the working tree swapped for a symlink out of it after
/// the walk saw a file in it, and before `add` opens the file (the add
/// stopped there by a failpoint): the file outside is never read or
/// staged; the add fails naming the file, and nothing is staged.
#[test]
fn a_directory_swapped_for_a_symlink_during_add_is_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let wt = tmp.path().join("wt");
    std::fs::create_dir_all(wt.join("sub")).unwrap();
    std::fs::write(wt.join("sub/a.txt"), b"inside the tree").unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("a.txt"), b"SECRET from outside the tree").unwrap();
    ok(&wt, &["init"]);
    let (child, pid) = spawn_stopped(&wt, "ingest:open@1=stop", &["add", "-A"]);
    std::fs::rename(wt.join("sub"), tmp.path().join("sub.moved")).unwrap();
    std::os::unix::fs::symlink(&outside, wt.join("sub")).unwrap();
    let out = resume(child, pid, || {});
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("sub/a.txt") && err.contains("changed"),
        "{err}"
    );
    assert_eq!(ok(&wt, &["ls-files"]), "", "something was staged");
    // Nothing stored holds the outside file's bytes.
    for p in all_files(&wt.join(".mediagit")) {
        let b = std::fs::read(&p).unwrap();
        assert!(
            !b.windows(6).any(|w| w == b"SECRET"),
            "{} holds the outside file",
            p.display()
        );
    }
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// A file swapped for a FIFO between the walk and add's open: the add
/// neither hangs on it nor stages anything, and names the file.
#[test]
fn a_file_swapped_for_a_fifo_during_add_does_not_hang_it() {
    let tmp = tempfile::tempdir().unwrap();
    let wt = tmp.path().join("wt");
    std::fs::create_dir_all(wt.join("d")).unwrap();
    std::fs::write(wt.join("d/f"), b"a file").unwrap();
    ok(&wt, &["init"]);
    let (child, pid) = spawn_stopped(&wt, "ingest:open@1=stop", &["add", "-A"]);
    std::fs::remove_file(wt.join("d/f")).unwrap();
    mkfifo(&wt.join("d/f"));
    let fifo = wt.join("d/f");
    let out = resume(child, pid, || {
        let _ = std::fs::write(&fifo, b"x");
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("d/f") && err.contains("changed"), "{err}");
    std::fs::remove_file(wt.join("d/f")).unwrap();
    assert_eq!(ok(&wt, &["ls-files"]), "", "something was staged");
}

/// A file `status` must read (same size, new mtime) replaced by a symlink
/// or a FIFO before it is read: shown as changed, never followed, never a
/// hang or an error.
#[test]
fn a_file_replaced_while_status_reads_it_is_shown_changed() {
    for replacement in ["symlink", "fifo"] {
        let tmp = tempfile::tempdir().unwrap();
        let wt = tmp.path().join("wt");
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(wt.join("a.txt"), b"same size").unwrap();
        ok(&wt, &["init"]);
        ok(&wt, &["add", "a.txt"]);
        ok(&wt, &["commit", "-m", "one"]);
        std::fs::write(wt.join("a.txt"), b"SAME SIZE").unwrap();
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(wt.join("a.txt"))
            .unwrap()
            .set_modified(t)
            .unwrap();
        let (child, pid) = spawn_stopped(&wt, "status:hash@1=stop", &["status", "--porcelain"]);
        let a = wt.join("a.txt");
        std::fs::remove_file(&a).unwrap();
        match replacement {
            "symlink" => std::os::unix::fs::symlink("/etc/passwd", &a).unwrap(),
            _ => mkfifo(&a),
        }
        let out = resume(child, pid, || {
            let _ = std::fs::write(&a, b"x");
        });
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{replacement}: {e}");
        assert!(o.contains("a.txt"), "{replacement}: {o}");
    }
}
