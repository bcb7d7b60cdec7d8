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
