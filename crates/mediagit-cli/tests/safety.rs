//! What must never happen to a user's files: writes through planted or
//! user-made symlinks, untracked or ignored files overwritten, unreadable
//! directories recorded as deleted, half-done commands leaving debris.
mod common;
use common::*;

#[test]
fn checkout_never_writes_through_a_symlinked_directory() {
    let env = Env::new();
    env.write("renders/a.mov", b"take 1\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.ok(&["switch", "-c", "other"]);
    env.write("renders/a.mov", b"take 2\n");
    env.ok(&["commit", "-a", "-m", "two"]);
    env.ok(&["switch", "main"]);
    // The user moves the folder to a NAS and leaves a symlink behind.
    let nas = env.root().join("nas");
    std::fs::create_dir(&nas).unwrap();
    std::fs::rename(env.repo().join("renders"), nas.join("renders")).unwrap();
    std::os::unix::fs::symlink(nas.join("renders"), env.repo().join("renders")).unwrap();
    let before = std::fs::read(nas.join("renders/a.mov")).unwrap();
    let out = env.cmd(&["checkout", "--force", "other"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read(nas.join("renders/a.mov")).unwrap(),
        before,
        "the NAS copy is untouched"
    );
}

#[test]
fn a_hostile_tree_cannot_plant_symlinks_for_checkout_temp_files() {
    // Symlinks named like the old predictable temp names, pointing outside.
    let env = Env::new();
    let victim = env.root().join("victim.txt");
    std::fs::write(&victim, b"precious\n").unwrap();
    env.write("x", b"version one\n");
    // The pids the clone below will most likely get (the old scheme used the pid).
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    for pid in last..last + 400 {
        std::os::unix::fs::symlink(&victim, env.repo().join(format!(".x.mediagit-tmp-{pid}")))
            .unwrap();
    }
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "evil"]);
    let out = env
        .cmd_in(env.root(), &["clone", "repo", "copy"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    assert_eq!(
        std::fs::read(env.root().join("copy/x")).unwrap(),
        b"version one\n"
    );
}

#[test]
fn ignored_and_untracked_files_in_the_way_stop_a_switch() {
    let env = Env::new();
    env.write(".mediagitignore", b"renders/\n");
    env.write("a.txt", b"a\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    env.ok(&["switch", "-c", "with-render"]);
    env.write("renders/final.mov", b"committed render\n");
    env.ok(&["add", "renders/final.mov"]);
    env.ok(&["commit", "-m", "render"]);
    env.ok(&["switch", "main"]);
    assert!(!env.repo().join("renders/final.mov").exists());
    // The user's own (ignored) render at the same path.
    env.write("renders/final.mov", b"my uncommitted render\n");
    let state = env.repo_state();
    let err = env.fail(&["switch", "with-render"]);
    assert!(err.contains("renders/final.mov"), "{err}");
    assert_eq!(env.read("renders/final.mov"), b"my uncommitted render\n");
    assert_eq!(env.repo_state(), state);
    assert!(env.ok(&["status"]).contains("On branch main"));
    // An untracked folder where the target has a file.
    std::fs::remove_dir_all(env.repo().join("renders")).unwrap();
    env.ok(&["switch", "with-render"]);
    env.ok(&["switch", "-c", "flat", "main"]);
    env.write("shots", b"shots as a file\n");
    env.ok(&["add", "shots"]);
    env.ok(&["commit", "-m", "flat"]);
    env.ok(&["switch", "main"]);
    env.write("shots/new_take.jpg", b"untracked take\n");
    let err = env.fail(&["switch", "flat"]);
    assert!(err.contains("shots/new_take.jpg"), "{err}");
    assert_eq!(env.read("shots/new_take.jpg"), b"untracked take\n");
    // checkout -- PATH does not wipe the folder either.
    let err = env.fail(&["checkout", "flat", "--", "shots"]);
    assert!(err.contains("shots"), "{err}");
    assert_eq!(env.read("shots/new_take.jpg"), b"untracked take\n");
}

#[test]
fn a_refused_switch_c_leaves_no_branch_behind() {
    let env = Env::new();
    env.write("a.txt", b"one\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.write("a.txt", b"two\n");
    env.ok(&["commit", "-a", "-m", "two"]);
    env.write("a.txt", b"local edit\n");
    let err = env.fail(&["switch", "-c", "old", "HEAD~1"]);
    assert!(err.contains("a.txt"), "{err}");
    assert!(
        !env.ok(&["branch"]).contains("old"),
        "the branch was taken back"
    );
    assert_eq!(env.read("a.txt"), b"local edit\n");
}

/// A working tree with no commits yet, on a store another working tree
/// has filled: `switch -c` to a branch that exists there (or that clashes
/// with one) is refused, and HEAD stays where it was.
#[test]
fn switch_c_before_the_first_commit_refuses_a_name_the_store_has() {
    let env = Env::empty();
    let store = env.root().join("store");
    env.ok_in(
        env.root(),
        &["init", "a", "--storage", &store.display().to_string()],
    );
    let url = format!("file://{}", store.display());
    env.ok_in(env.root(), &["clone", &url, "b"]);
    let (a, b) = (env.root().join("a"), env.root().join("b"));
    env.ok_in(&b, &["switch", "-c", "dev"]);
    std::fs::write(a.join("f.txt"), b"1\n").unwrap();
    env.ok_in(&a, &["add", "f.txt"]);
    env.ok_in(&a, &["commit", "-m", "one"]);
    env.ok_in(&a, &["branch", "create", "u"]);
    let head = || std::fs::read_to_string(b.join(".mediagit/HEAD")).unwrap();
    assert_eq!(head(), "ref: refs/heads/dev\n");
    let out = env.cmd_in(&b, &["switch", "-c", "main"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a branch named \"main\" already exists"),
        "{err}"
    );
    let out = env.cmd_in(&b, &["switch", "-c", "u/x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("clashes"), "{err}");
    assert_eq!(head(), "ref: refs/heads/dev\n", "HEAD unchanged");
    // A free name is taken as before.
    env.ok_in(&b, &["switch", "-c", "fresh"]);
    assert_eq!(head(), "ref: refs/heads/fresh\n");
}

#[test]
fn huge_prune_ages_are_not_a_crash() {
    let env = Env::new();
    env.write("a.txt", b"a\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "a"]);
    let out = env.ok(&["gc", "--prune=99999999999.years.ago"]);
    assert!(out.contains("removed 0 unreachable objects"), "{out}");
    env.ok(&["reflog", "expire", "--expire=99999999999.years.ago"]);
}

#[test]
fn unreadable_directory_is_not_committed_as_deleted() {
    // Needs a user that permissions apply to: as root, run as nobody.
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        .unwrap();
    let env = Env::new();
    env.write("footage/a.mov", b"a\n");
    env.write("footage/b.mov", b"b\n");
    env.write("notes.txt", b"n\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    let state = env.repo_state();
    std::process::Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(env.root())
        .status()
        .unwrap();
    std::process::Command::new("chmod")
        .arg("000")
        .arg(env.repo().join("footage"))
        .status()
        .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("mediagit");
    let mut cmd = if uid == "0" {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin);
        c
    } else {
        std::process::Command::new(&bin)
    };
    let out = cmd
        .current_dir(env.repo())
        .env("XDG_CONFIG_HOME", env.trusting_settings())
        .env("MEDIAGIT_PASSPHRASE", TEST_PASSPHRASE)
        .env("MEDIAGIT_AUTHOR_NAME", "T")
        .env("MEDIAGIT_AUTHOR_EMAIL", "t@example.com")
        .args(["commit", "-a", "-m", "nightly"])
        .output()
        .unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(env.repo().join("footage"))
        .status()
        .unwrap();
    // Closed again for root's own look (a repository every user can
    // write is not root's to trust).
    std::process::Command::new("chmod")
        .args(["-R", "o-w"])
        .arg(env.repo().join(".mediagit"))
        .status()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("footage"),
        "the error names the directory: {err}"
    );
    let mut after = env.repo_state();
    after.retain(|k, _| k != "index");
    let mut before = state;
    before.retain(|k, _| k != "index");
    assert_eq!(after, before, "nothing committed");
    assert_eq!(
        env.ok(&["ls-files"]),
        "footage/a.mov\nfootage/b.mov\nnotes.txt\n"
    );
}
