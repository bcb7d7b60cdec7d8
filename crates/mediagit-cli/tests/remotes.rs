//! Remotes without a server: `remote`, `push`, `fetch`, `pull`,
//! `ls-remote`, `branch -r/-a`, upstream tracking in `status`, and `clone`
//! setting up `origin`, between repositories on disk and (when the suite
//! runs with `MEDIAGIT_TEST_STORAGE`) in the S3 test server; encrypted
//! when `MEDIAGIT_TEST_ENCRYPT` is set (a remote made by `clone --bare`
//! shares the key).
mod common;
use common::*;

use std::path::{Path, PathBuf};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs in `dir`, asserts success, returns stderr (where push/fetch report).
fn ok_err_in(env: &Env, dir: &Path, args: &[&str]) -> String {
    let out = env.cmd_in(dir, args).output().expect("run mediagit");
    assert!(
        out.status.success(),
        "mediagit {args:?} in {} failed ({}):\nstdout: {}\nstderr: {}",
        dir.display(),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// Runs in `dir`, asserts exit `code`, returns stderr.
fn fail_in(env: &Env, dir: &Path, code: i32, args: &[&str]) -> String {
    let out = env.cmd_in(dir, args).output().expect("run mediagit");
    assert_eq!(
        out.status.code(),
        Some(code),
        "mediagit {args:?} in {} should exit {code}:\nstdout: {}\nstderr: {}",
        dir.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// The full id `rev` names in the repository at `dir`.
fn id_in(env: &Env, dir: &Path, rev: &str) -> String {
    let out = env.ok_in(dir, &["log", "-n", "1", rev]);
    out.lines()
        .next()
        .and_then(|l| l.strip_prefix("commit "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("log of {rev}: {out}"))
        .to_string()
}

/// A bare copy of `repo/` to push to (`clone --bare`; its objects in a
/// fresh prefix of the test store when there is one). Returns its
/// directory and the URL to add as a remote: the store's URL when there
/// is one (a store remote, no directory in between), else the directory.
fn make_remote(env: &Env, name: &str) -> (PathBuf, String) {
    let dir = env.root().join(name);
    let mut args = vec!["clone", "--bare", "repo", name];
    let url = fresh_store_url();
    if let Some(u) = &url {
        args.extend(["--storage", u.as_str()]);
    }
    env.ok_in(env.root(), &args);
    let url = url.unwrap_or_else(|| dir.to_str().unwrap().to_string());
    (dir, url)
}

/// A working tree with media files and random data, committed.
fn populated() -> Env {
    let env = Env::new();
    copy_media(&env.repo().join("media"));
    std::fs::create_dir_all(env.repo().join("assets")).unwrap();
    write_random(&env.repo().join("assets/big.bin"), 3 << 20, 7);
    env.write("notes/readme.txt", b"hello\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "first"]);
    env
}

/// Flips bytes of a pack file in a copy renamed over it: packs are
/// hard-linked between clones on one filesystem, and only this one may
/// change.
fn damage(p: &Path, at: &[usize]) {
    let mut b = std::fs::read(p).unwrap();
    let n = b.len();
    for a in at {
        b[a * n / 100] ^= 0x40;
    }
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, b).unwrap();
    std::fs::rename(&tmp, p).unwrap();
}

/// The working tree's files and their hashes, `.mediagit` left out.
fn files(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut m = tree_hashes(dir);
    m.retain(|k, _| !k.starts_with(".mediagit"));
    m
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn push_then_clone_and_pull_into_an_empty_repository_restore_the_same_bytes() {
    let env = populated();
    let (remote, url) = make_remote(&env, "remote.git");
    env.ok(&["remote", "add", "origin", &url]);
    // The remote was cloned from this commit: nothing to send.
    let err = ok_err_in(&env, &env.repo(), &["push", "-u", "origin", "main"]);
    assert!(err.contains("[up to date]"), "{err}");
    assert!(
        err.contains("branch 'main' set up to track 'origin/main'"),
        "{err}"
    );
    // A second commit goes over.
    write_random(&env.repo().join("assets/second.bin"), 1 << 20, 8);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "second"]);
    let out = env.ok(&["push", "--json"]);
    let j = json(&out);
    assert_eq!(j["updates"][0]["status"], "fast-forward", "{out}");
    assert_eq!(j["transfer"]["commits"], 1, "{out}");
    assert!(j["transfer"]["chunks"].as_u64().unwrap() >= 1, "{out}");
    let head = id_in(&env, &env.repo(), "HEAD");
    assert_eq!(id_in(&env, &remote, "main"), head);
    // The status line knows the upstream.
    let st = env.ok(&["status"]);
    assert!(
        st.contains("Your branch is up to date with 'origin/main'."),
        "{st}"
    );

    // Another clone of the remote, then pull into it.
    env.ok_in(env.root(), &["clone", "remote.git", "other"]);
    let other = env.root().join("other");
    assert_eq!(files(&other), files(&env.repo()));
    let cfg = std::fs::read_to_string(other.join(".mediagit/config.toml")).unwrap();
    assert!(cfg.contains("[remotes.origin]"), "{cfg}");
    assert!(cfg.contains("[branches.main]"), "{cfg}");
    let br = env.ok_in(&other, &["branch", "-a"]);
    assert!(br.contains("remotes/origin/main"), "{br}");
    // origin/main resolves as a revision.
    assert_eq!(id_in(&env, &other, "origin/main"), head);

    env.write("notes/readme.txt", b"hello again\n");
    env.ok(&["commit", "-a", "-m", "third"]);
    env.ok(&["push"]);
    let st = env.ok_in(&other, &["status"]);
    assert!(st.contains("up to date with 'origin/main'"), "{st}");
    env.ok_in(&other, &["fetch"]);
    let st = env.ok_in(&other, &["status", "--short"]);
    assert!(st.starts_with("## main...origin/main [behind 1]"), "{st}");
    let err = ok_err_in(&env, &other, &["pull"]);
    assert!(err.contains("Fast-forward"), "{err}");
    assert_eq!(files(&other), files(&env.repo()));
    assert_eq!(
        id_in(&env, &other, "HEAD"),
        id_in(&env, &env.repo(), "HEAD")
    );
    let log = env.ok_in(&other, &["reflog", "main"]);
    assert!(log.contains("pull: fast-forward from origin/main"), "{log}");
}

#[test]
fn a_second_push_or_fetch_of_the_same_data_moves_nothing() {
    let env = populated();
    let (_, url) = make_remote(&env, "remote.git");
    env.ok(&["remote", "add", "origin", &url]);
    write_random(&env.repo().join("more.bin"), 2 << 20, 9);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "more"]);
    let first = json(&env.ok(&["push", "--json", "origin", "main"]));
    assert!(
        first["transfer"]["bytes"].as_u64().unwrap() > 2_000_000,
        "{first}"
    );
    let again = json(&env.ok(&["push", "--json", "origin", "main"]));
    assert_eq!(again["transfer"]["objects"], 0, "{again}");
    assert_eq!(again["updates"][0]["status"], "up-to-date", "{again}");
    let err = ok_err_in(&env, &env.repo(), &["push", "origin", "main"]);
    assert!(err.contains("Everything up-to-date"), "{err}");
    let fetched = json(&env.ok(&["fetch", "--json"]));
    assert_eq!(fetched[0]["transfer"]["objects"], 0, "{fetched}");
    // One small edit: only its new chunk and the metadata above it move.
    env.write("notes/readme.txt", b"one line more\n");
    env.ok(&["commit", "-a", "-m", "small"]);
    let small = json(&env.ok(&["push", "--json"]));
    assert_eq!(small["transfer"]["chunks"], 1, "{small}");
    assert!(
        small["transfer"]["bytes"].as_u64().unwrap() < 4096,
        "{small}"
    );
    // Few reads: the chunk, then every metadata object in one run.
    assert!(small["transfer"]["reads"].as_u64().unwrap() <= 3, "{small}");
}

#[test]
fn a_push_that_would_lose_commits_is_refused_and_force_with_lease_checks_what_was_fetched() {
    let env = populated();
    let (remote, url) = make_remote(&env, "remote.git");
    env.ok(&["remote", "add", "origin", &url]);
    env.ok(&["push", "-u"]);
    env.ok_in(env.root(), &["clone", "remote.git", "other"]);
    let other = env.root().join("other");
    // Both commit; other pushes first.
    std::fs::write(other.join("theirs.txt"), b"theirs\n").unwrap();
    env.ok_in(&other, &["add", "theirs.txt"]);
    env.ok_in(&other, &["commit", "-m", "theirs"]);
    env.ok_in(&other, &["push"]);
    let theirs = id_in(&env, &other, "HEAD");
    env.write("ours.txt", b"ours\n");
    env.ok(&["add", "ours.txt"]);
    env.ok(&["commit", "-m", "ours"]);
    let err = env.fail_with(3, &["push"]);
    assert!(err.contains("[rejected]"), "{err}");
    assert!(err.contains("non-fast-forward"), "{err}");
    assert!(
        err.contains("failed to push 1 ref(s) to remote 'origin'"),
        "{err}"
    );
    assert_eq!(
        id_in(&env, &remote, "main"),
        theirs,
        "the remote kept theirs"
    );
    // The lease is the last fetch: it has not seen theirs, so refused.
    let err = env.fail_with(3, &["push", "--force-with-lease"]);
    assert!(err.contains("stale info"), "{err}");
    assert_eq!(id_in(&env, &remote, "main"), theirs);
    // pull cannot fast-forward a branch with its own commits.
    let err = env.fail_with(3, &["pull"]);
    assert!(
        err.contains("have diverged (1 and 1 different commits)"),
        "{err}"
    );
    let st = env.ok(&["status"]);
    assert!(st.contains("have diverged"), "{st}");
    // After a fetch the lease holds: ours replaces theirs.
    env.ok(&["fetch"]);
    let err = ok_err_in(&env, &env.repo(), &["push", "--force-with-lease"]);
    assert!(err.contains("(forced update)"), "{err}");
    assert_eq!(
        id_in(&env, &remote, "main"),
        id_in(&env, &env.repo(), "HEAD")
    );
    // --force needs no lease.
    let err = ok_err_in(&env, &other, &["push", "--force"]);
    assert!(err.contains("forced update"), "{err}");
    assert_eq!(id_in(&env, &remote, "main"), theirs);
}

#[test]
fn of_two_concurrent_pushes_to_one_branch_exactly_one_wins() {
    let env = populated();
    let (remote, url) = make_remote(&env, "remote.git");
    env.ok(&["remote", "add", "origin", &url]);
    env.ok_in(env.root(), &["clone", "remote.git", "other"]);
    let other = env.root().join("other");
    let base = id_in(&env, &remote, "main");
    for round in 0..3 {
        write_random(
            &env.repo().join(format!("a{round}.bin")),
            1 << 20,
            100 + round,
        );
        env.ok(&["add", "-A"]);
        env.ok(&["commit", "-m", "a"]);
        write_random(&other.join(format!("b{round}.bin")), 1 << 20, 200 + round);
        env.ok_in(&other, &["add", "-A"]);
        env.ok_in(&other, &["commit", "-m", "b"]);
        let a = spawn(&env, &env.repo(), &["push", "origin", "main"]);
        let b = spawn(&env, &other, &["push", "origin", "main"]);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let codes = [a.status.code(), b.status.code()];
        let wins = codes.iter().filter(|c| **c == Some(0)).count();
        assert_eq!(
            wins,
            1,
            "round {round}: exactly one push wins: {codes:?}\n{}\n{}",
            text(&a.stderr),
            text(&b.stderr)
        );
        assert!(codes.contains(&Some(3)), "{codes:?}");
        let winner = if a.status.success() {
            id_in(&env, &env.repo(), "HEAD")
        } else {
            id_in(&env, &other, "HEAD")
        };
        assert_eq!(id_in(&env, &remote, "main"), winner);
        assert_ne!(winner, base);
        // Both start the next round from the remote's branch.
        for dir in [env.repo(), other.clone()] {
            env.ok_in(&dir, &["fetch"]);
            env.ok_in(&dir, &["switch", "-c", &format!("r{round}"), "origin/main"]);
        }
        env.ok(&["branch", "delete", "-D", "main"]);
        env.ok(&["branch", "rename", &format!("r{round}"), "main"]);
        env.ok_in(&other, &["branch", "delete", "-D", "main"]);
        env.ok_in(&other, &["branch", "rename", &format!("r{round}"), "main"]);
    }
    let fsck = env.ok_in(&remote, &["fsck"]);
    assert!(!fsck.contains("missing"), "{fsck}");
}

/// `mediagit ARGS` in `dir` started now, in the background, with the
/// environment `Env::cmd_in` gives; its output when joined.
fn spawn(env: &Env, dir: &Path, args: &[&str]) -> std::thread::JoinHandle<std::process::Output> {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("mediagit"));
    c.current_dir(dir)
        .env("MEDIAGIT_AUTHOR_NAME", "Test User")
        .env("MEDIAGIT_AUTHOR_EMAIL", "test@example.com")
        .env("HOME", env.root().join("home"))
        .env("XDG_CONFIG_HOME", env.root().join("home/.config"))
        .env("XDG_RUNTIME_DIR", env.root().join("run"))
        .env("MEDIAGIT_PASSPHRASE", TEST_PASSPHRASE)
        .env_remove("MEDIAGIT_PASSPHRASE_FILE")
        .env_remove("MEDIAGIT_FAILPOINTS")
        .args(args);
    std::thread::spawn(move || c.output().expect("run mediagit"))
}

#[test]
fn tags_deletes_prune_and_ls_remote() {
    let env = populated();
    let (_, url) = make_remote(&env, "remote.git");
    env.ok(&["remote", "add", "origin", &url]);
    env.ok(&["tag", "v1"]);
    env.ok(&["tag", "-m", "release two", "v2"]);
    env.ok(&["switch", "-c", "feature"]);
    env.write("f.txt", b"feature\n");
    env.ok(&["add", "f.txt"]);
    env.ok(&["commit", "-m", "feature"]);
    env.ok(&["push", "origin", "feature", "--tags"]);
    let ls = env.ok(&["ls-remote"]);
    let head = id_in(&env, &env.repo(), "main");
    assert!(ls.contains(&format!("{head}\tHEAD")), "{ls}");
    assert!(ls.contains("\trefs/heads/main"), "{ls}");
    assert!(ls.contains("\trefs/heads/feature"), "{ls}");
    assert!(ls.contains("\trefs/tags/v1"), "{ls}");
    assert!(ls.contains("\trefs/tags/v2"), "{ls}");
    env.ok_in(env.root(), &["clone", "remote.git", "other"]);
    let other = env.root().join("other");
    let tags = env.ok_in(&other, &["tag"]);
    assert!(tags.contains("v1") && tags.contains("v2"), "{tags}");
    let br = env.ok_in(&other, &["branch", "-r"]);
    assert!(br.contains("origin/feature"), "{br}");
    // Deleted on the remote: a plain fetch keeps origin/feature, --prune drops it.
    let err = ok_err_in(
        &env,
        &env.repo(),
        &["push", "origin", "--delete", "feature"],
    );
    assert!(err.contains("[deleted]"), "{err}");
    assert!(!env.ok(&["ls-remote"]).contains("refs/heads/feature"));
    env.ok_in(&other, &["fetch"]);
    assert!(env
        .ok_in(&other, &["branch", "-r"])
        .contains("origin/feature"));
    let err = ok_err_in(&env, &other, &["fetch", "--prune"]);
    assert!(err.contains("[deleted]"), "{err}");
    assert!(!env
        .ok_in(&other, &["branch", "-r"])
        .contains("origin/feature"));
    // A fetch never moves an existing tag.
    env.ok(&["tag", "delete", "v1"]);
    env.ok(&["tag", "v1", "feature"]);
    env.ok(&["push", "--tags", "--force"]);
    let before = id_in(&env, &other, "v1");
    let err = ok_err_in(&env, &other, &["fetch"]);
    assert!(err.contains("would clobber an existing tag"), "{err}");
    assert_eq!(id_in(&env, &other, "v1"), before);
    // Deleting what the remote lacks is refused, with exit 3.
    let err = env.fail_with(3, &["push", "origin", "--delete", "nope"]);
    assert!(err.contains("no such branch"), "{err}");
}

#[test]
fn remote_add_rename_set_url_remove_keep_the_config_and_tracking_refs_in_step() {
    let env = populated();
    let (remote, _) = make_remote(&env, "remote.git");
    let cfg_path = env.repo().join(".mediagit/config.toml");
    let mut cfg = std::fs::read_to_string(&cfg_path).unwrap();
    cfg.push_str("# a comment that must survive\n");
    std::fs::write(&cfg_path, &cfg).unwrap();
    // A relative path is stored absolute.
    env.ok(&["remote", "add", "origin", "../remote.git"]);
    let v = env.ok(&["remote", "-v"]);
    let abs = remote.canonicalize().unwrap();
    assert_eq!(v, format!("origin\t{}\n", abs.display()));
    let err = env.fail(&["remote", "add", "origin", "../remote.git"]);
    assert!(err.contains("remote 'origin' already exists"), "{err}");
    for bad in ["-x", "a/b", "a b", "..", "x.lock", ""] {
        let err = env.fail(&["remote", "add", "--", bad, "../remote.git"]);
        assert!(err.contains("not a valid remote name"), "{bad}: {err}");
    }
    let err = env.fail(&["remote", "add", "web", "ftp://host/x"]);
    assert!(err.contains("unknown scheme"), "{err}");
    env.ok(&["push", "-u"]);
    env.ok(&["fetch"]);
    assert!(env.ok(&["branch", "-r"]).contains("origin/main"));
    env.ok(&["remote", "rename", "origin", "upstream"]);
    assert_eq!(env.ok(&["remote"]), "upstream\n");
    let br = env.ok(&["branch", "-r"]);
    assert!(
        br.contains("upstream/main") && !br.contains("origin/main"),
        "{br}"
    );
    let st = env.ok(&["status"]);
    assert!(st.contains("'upstream/main'"), "{st}");
    env.ok(&["remote", "set-url", "upstream", "/nowhere/at/all"]);
    let err = env.fail(&["fetch"]);
    assert!(err.contains("/nowhere/at/all"), "{err}");
    env.ok(&["remote", "remove", "upstream"]);
    assert_eq!(env.ok(&["remote"]), "");
    assert_eq!(env.ok(&["branch", "-r"]), "");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("# a comment that must survive"), "{cfg}");
    assert!(!cfg.contains("[branches.main]"), "{cfg}");
    let err = env.fail(&["remote", "remove", "upstream"]);
    assert!(err.contains("no remote named 'upstream'"), "{err}");
    let err = env.fail(&["push"]);
    assert!(err.contains("this repository has no remote"), "{err}");
}

#[test]
fn a_remote_with_damaged_objects_is_detected_and_nothing_is_fetched() {
    if test_store().is_some() {
        return; // flips bytes in pack files on disk
    }
    let env = populated();
    let (remote, url) = make_remote(&env, "remote.git");
    env.ok(&["remote", "add", "origin", &url]);
    env.ok_in(env.root(), &["clone", "remote.git", "other"]);
    let other = env.root().join("other");
    write_random(&env.repo().join("new.bin"), 1 << 20, 31);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "new"]);
    env.ok(&["push"]);
    // Flip a byte in the middle of every remote pack written by that push.
    let before: Vec<PathBuf> = all_files(&remote.join("packs"));
    for p in before
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
    {
        damage(p, &[50, 97]);
    }
    let tracking = id_in(&env, &other, "origin/main");
    let err = fail_in(&env, &other, 1, &["fetch"]);
    assert!(
        err.contains("remote") || err.contains("corrupt") || err.contains("damaged"),
        "{err}"
    );
    assert_eq!(id_in(&env, &other, "origin/main"), tracking, "no ref moved");
    let fsck = env.ok_in(&other, &["fsck"]);
    assert!(!fsck.contains("missing"), "{fsck}");
}

#[test]
fn fetch_heals_a_repository_whose_pack_was_damaged() {
    if test_store().is_some() {
        return; // damages pack files on disk
    }
    let env = populated();
    let (_, url) = make_remote(&env, "remote.git");
    env.ok(&["remote", "add", "origin", &url]);
    env.ok(&["push", "-u"]);
    let want = files(&env.repo());
    // Lose every pack of the working tree's own repository.
    for p in all_files(&env.repo().join(".mediagit/packs")) {
        if p.extension().is_some_and(|e| e == "pack") {
            damage(&p, &[33]);
        }
    }
    let out = env.cmd(&["fsck"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stdout));
    // The guide's recipe: repair what can be, fetch, check again.
    let _ = env.cmd(&["fsck", "--repair"]).output().unwrap();
    env.ok(&["fetch"]);
    let out = env.cmd(&["fsck"]).output().unwrap();
    assert!(
        out.status.success(),
        "fsck after fetch:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // Every file reads back as it was.
    for f in want.keys() {
        std::fs::remove_file(env.repo().join(f)).unwrap();
    }
    env.ok(&["checkout", "--force", "main"]);
    assert_eq!(files(&env.repo()), want);
}

#[test]
fn pushing_to_the_branch_checked_out_in_a_remote_working_tree_is_refused() {
    let env = populated();
    env.ok_in(env.root(), &["clone", "repo", "wt"]);
    let wt = env.root().join("wt");
    env.ok(&["remote", "add", "wt", wt.to_str().unwrap()]);
    env.write("x.txt", b"x\n");
    env.ok(&["add", "x.txt"]);
    env.ok(&["commit", "-m", "x"]);
    let before = id_in(&env, &wt, "main");
    let err = env.fail_with(3, &["push", "wt", "main"]);
    assert!(
        err.contains("checked out in the remote's working tree"),
        "{err}"
    );
    assert_eq!(id_in(&env, &wt, "main"), before);
    // Another branch is fine.
    env.ok(&["push", "wt", "main:incoming"]);
    assert_eq!(
        id_in(&env, &wt, "incoming"),
        id_in(&env, &env.repo(), "HEAD")
    );
    // A directory inside a repository is not a remote.
    std::fs::create_dir_all(wt.join("sub")).unwrap();
    let err = env.fail(&["push", wt.join("sub").to_str().unwrap(), "main:x"]);
    assert!(err.contains("holds no MediaGit repository"), "{err}");
}

#[test]
fn another_repository_is_not_a_remote_of_this_one() {
    let env = populated();
    // Plain against encrypted (or, in an encrypted run, another key).
    env.ok_in(
        env.root(),
        &[
            "init",
            "stranger",
            "--encrypt",
            "--kdf-memory",
            "19",
            "--kdf-passes",
            "2",
        ],
    );
    let stranger = env.root().join("stranger");
    std::fs::write(stranger.join("s.txt"), b"s\n").unwrap();
    env.ok_in(&stranger, &["add", "s.txt"]);
    env.ok_in(&stranger, &["commit", "-m", "s"]);
    env.ok(&["remote", "add", "s", stranger.to_str().unwrap()]);
    let before = env.repo_state();
    let err = env.fail(&["fetch", "s"]);
    assert!(
        err.contains("another repository") || err.contains("another key"),
        "{err}"
    );
    let mut after = env.repo_state();
    after.remove("config.toml");
    let mut before = before;
    before.remove("config.toml");
    assert_eq!(before, after, "a refused fetch changes nothing");
}

#[test]
fn fsck_repair_fetches_what_is_damaged_from_the_remotes_and_lists_what_none_had() {
    if test_store().is_some() {
        return; // damages pack files on disk
    }
    let env = populated();
    let (_, url) = make_remote(&env, "remote.git");
    env.ok(&["remote", "add", "origin", &url]);
    // Older history too: a second commit, pushed.
    write_random(&env.repo().join("assets/second.bin"), 1 << 20, 41);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "second"]);
    env.ok(&["push", "-u"]);
    let want = files(&env.repo());
    // A commit only this repository has (on a side branch): no remote can
    // give it back.
    env.ok(&["switch", "-c", "side"]);
    write_random(&env.repo().join("local-only.bin"), 300_000, 42);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "local only"]);
    env.ok(&["switch", "main"]);
    // An empty remote first (it has none of it), then origin.
    env.ok_in(env.root(), &["init", "--bare", "empty.git"]);
    let empty = env.root().join("empty.git");
    env.ok(&["remote", "add", "aaa-empty", empty.to_str().unwrap()]);
    if test_encrypt() {
        env.ok(&["remote", "remove", "aaa-empty"]);
    }
    for p in all_files(&env.repo().join(".mediagit/packs")) {
        if p.extension().is_some_and(|e| e == "pack") {
            damage(&p, &[40, 80]);
        }
    }
    let out = env.cmd(&["fsck", "--repair"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("from remote 'origin'"),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    // What only this repository had (the last commit's new file) stays
    // missing, named, with exit 4.
    if out.status.code() != Some(0) {
        assert_eq!(out.status.code(), Some(4), "{stdout}");
        assert!(stdout.contains("problem:"), "{stdout}");
    }
    assert!(
        stdout.contains("local-only") || out.status.code() == Some(4),
        "{stdout}"
    );
    // Everything the remote had is back: main checks out whole.
    for f in want.keys() {
        std::fs::remove_file(env.repo().join(f)).unwrap();
    }
    env.ok(&["checkout", "--force", "main"]);
    assert_eq!(files(&env.repo()), want);
    env.ok(&["verify"]);
}
