//! Backups (`mediagit backup ...`): write-once targets, snapshots and a
//! ref journal, point-in-time restore, verify, forget and prune. The
//! target is a directory, or (when the suite runs with
//! `MEDIAGIT_TEST_STORAGE`) a fresh prefix of the S3 test server, and
//! every repository is encrypted under `MEDIAGIT_TEST_ENCRYPT`.
mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A target for this test: a fresh prefix of the test store, or a
/// directory. Returns (URL, directory when local).
fn target(env: &Env) -> (String, Option<PathBuf>) {
    match fresh_store_url() {
        Some(u) => (u, None),
        None => {
            let d = env.root().join("target");
            (d.to_str().unwrap().to_string(), Some(d))
        }
    }
}

/// A working tree with media files and random data, committed, plus a
/// branch and a tag.
fn populated() -> Env {
    let env = Env::new();
    copy_media(&env.repo().join("media"));
    std::fs::create_dir_all(env.repo().join("assets")).unwrap();
    write_random(&env.repo().join("assets/big.bin"), 3 << 20, 7);
    env.write("notes/readme.txt", b"hello\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "first"]);
    env.ok(&["branch", "create", "feature"]);
    env.ok(&["tag", "v1"]);
    env
}

/// The working tree's files and their hashes, `.mediagit` left out.
fn files(dir: &Path) -> BTreeMap<String, String> {
    let mut m = tree_hashes(dir);
    m.retain(|k, _| !k.starts_with(".mediagit"));
    m
}

/// Every branch and tag of the repository at `dir`, with its commit.
fn refs(env: &Env, dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b = json(&env.ok_in(dir, &["branch", "--json"]));
    for x in b["branches"].as_array().unwrap() {
        out.insert(
            format!("branch {}", x["name"].as_str().unwrap()),
            x["commit"].as_str().unwrap().to_string(),
        );
    }
    let t = json(&env.ok_in(dir, &["tag", "--json"]));
    for x in t["tags"].as_array().unwrap() {
        out.insert(
            format!("tag {}", x["name"].as_str().unwrap()),
            x["commit"].as_str().unwrap().to_string(),
        );
    }
    out
}

/// `backup list --journal --json` of the repository's default target.
fn records(env: &Env) -> Vec<serde_json::Value> {
    json(&env.ok(&["backup", "list", "--journal", "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

/// Creates a snapshot; returns its JSON outcome.
fn create(env: &Env) -> serde_json::Value {
    json(&env.ok(&["backup", "create", "--json"]))
}

/// Waits until the clock is in a new second, so that records before and
/// after a moment are told apart by `--at` (to the second).
fn next_second() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100 - u64::from(now.subsec_millis())));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let at = format!("@{}", now.as_secs());
    std::thread::sleep(Duration::from_millis(1100 - u64::from(now.subsec_millis())));
    at
}

fn fsck_clean(env: &Env, dir: &Path) {
    let out = env.ok_in(dir, &["fsck"]);
    assert!(out.contains("0 problems"), "{out}");
}

#[test]
fn restore_at_a_moment_gives_back_every_branch_and_file_after_commits_a_deleted_branch_and_gc() {
    let env = populated();
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    let first = create(&env);
    assert_eq!(first["kind"], "snapshot");
    assert!(
        first["transfer"]["bytes"].as_u64().unwrap() > 3 << 20,
        "{first}"
    );
    let t1_files = files(&env.repo());
    let t1_refs = refs(&env, &env.repo());
    let t1 = next_second();
    // Later: new content, the branch deleted, a gc that repacks and drops
    // what only the deleted branch needed.
    env.ok(&["switch", "feature"]);
    write_random(&env.repo().join("assets/only-on-feature.bin"), 1 << 20, 9);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "feature work"]);
    let t2_feature = refs(&env, &env.repo());
    env.ok(&["switch", "main"]);
    env.ok(&["backup", "create"]);
    let t2 = next_second();
    env.ok(&["branch", "delete", "--force", "feature"]);
    std::fs::remove_file(env.repo().join("notes/readme.txt")).unwrap();
    env.write("assets/new.txt", b"after\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "second"]);
    env.ok(&["gc", "--prune=now", "--max-unused", "0"]);
    env.ok(&["backup", "create"]);

    let r1 = env.root().join("r1");
    let err = {
        let out = env
            .cmd(&["backup", "restore", "--at", &t1, r1.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    assert!(err.contains("Restored repo as of"), "{err}");
    assert_eq!(files(&r1), t1_files, "files at T1");
    assert_eq!(refs(&env, &r1), t1_refs, "branches and tags at T1");
    fsck_clean(&env, &r1);

    // T2: the feature branch with its commit, which the live repository
    // has lost.
    let r2 = env.root().join("r2");
    env.ok(&["backup", "restore", "--at", &t2, r2.to_str().unwrap()]);
    let got = refs(&env, &r2);
    assert_eq!(got["branch feature"], t2_feature["branch feature"]);
    env.ok_in(&r2, &["switch", "feature"]);
    assert_eq!(
        sha256_file(&r2.join("assets/only-on-feature.bin")),
        sha256_file(&{
            // Recreated bytes: the same seed.
            let p = env.root().join("expect.bin");
            write_random(&p, 1 << 20, 9);
            p
        })
    );
    fsck_clean(&env, &r2);

    // The newest: no feature branch, the new file.
    let r3 = env.root().join("r3");
    env.ok(&["backup", "restore", "--at", "now", r3.to_str().unwrap()]);
    assert_eq!(files(&r3), files(&env.repo()));
    assert_eq!(refs(&env, &r3), refs(&env, &env.repo()));
}

#[test]
fn a_second_backup_copies_only_what_is_new() {
    let env = populated();
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    create(&env);
    let again = create(&env);
    assert_eq!(again["transfer"]["objects"], 0, "{again}");
    write_random(&env.repo().join("assets/more.bin"), 2 << 20, 11);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "more"]);
    let more = create(&env);
    let bytes = more["transfer"]["bytes"].as_u64().unwrap();
    // 2 MiB of random data (incompressible) plus a few small objects.
    assert!(
        (2 << 20..(2 << 20) + 64 * 1024).contains(&bytes),
        "copied {bytes} bytes: {more}"
    );
    assert_eq!(records(&env).len(), 3);
}

#[test]
fn a_backup_never_changes_or_removes_a_key_it_wrote() {
    let env = populated();
    let (url, dir) = target(&env);
    let Some(dir) = dir else { return }; // the files are listed on disk
    env.ok(&["backup", "init", &url]);
    create(&env);
    let snapshot = |d: &Path| -> BTreeMap<PathBuf, (String, u64)> {
        all_files(d)
            .into_iter()
            .filter(|p| !p.ends_with("cas.lock"))
            .map(|p| {
                use std::os::unix::fs::MetadataExt;
                let ino = std::fs::metadata(&p).unwrap().ino();
                let h = sha256_file(&p);
                (p, (h, ino))
            })
            .collect()
    };
    let before = snapshot(&dir);
    assert!(before.len() > 4, "{before:?}");
    for round in 0..3 {
        env.write(&format!("round{round}.txt"), format!("{round}").as_bytes());
        env.ok(&["add", "-A"]);
        env.ok(&["commit", "-m", "round"]);
        create(&env);
    }
    env.ok(&["backup", "verify", "--read-data"]);
    let after = snapshot(&dir);
    for (p, v) in &before {
        assert_eq!(
            after.get(p),
            Some(v),
            "{} changed or went away",
            p.display()
        );
    }
}

#[test]
fn backup_while_commits_run_gives_records_that_each_restore() {
    let env = populated();
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut cmds = Vec::new();
        for i in 0..40 {
            cmds.push(i);
        }
        let dir = env.repo();
        let mk = |args: &[&str]| env.std_cmd_in(&dir, args);
        let mut write = Vec::new();
        for i in cmds {
            write.push((
                dir.join(format!("live/{i}.bin")),
                mk(&["add", "-A"]),
                mk(&["commit", "-m", &format!("live {i}")]),
            ));
        }
        std::thread::spawn(move || {
            let mut n = 0;
            for (path, mut add, mut commit) in write {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                write_random(&path, 256 << 10, n as u64 + 100);
                assert!(add.status().unwrap().success());
                assert!(commit.status().unwrap().success());
                n += 1;
            }
            n
        })
    };
    for _ in 0..4 {
        env.ok(&["backup", "create"]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let commits = writer.join().unwrap();
    assert!(commits > 0);
    env.ok(&["backup", "verify"]);
    for (i, r) in records(&env).iter().enumerate() {
        let id = r["id"].as_str().unwrap();
        let dest = env.root().join(format!("restored-{i}"));
        env.ok(&[
            "backup",
            "restore",
            "--snapshot",
            id,
            dest.to_str().unwrap(),
        ]);
        fsck_clean(&env, &dest);
        let main = r["refs"]["refs/heads/main"].as_str().unwrap();
        assert_eq!(refs(&env, &dest)["branch main"], main);
    }
}

#[test]
fn several_repositories_share_a_target_store_shared_data_once_and_restore_to_one_moment() {
    let env = populated();
    let (url, _) = target(&env);
    // A second repository: a clone (same content, same key).
    env.ok_in(env.root(), &["clone", "repo", "other"]);
    let other = env.root().join("other");
    env.ok(&["backup", "init", &url]);
    env.ok_in(&other, &["backup", "init", &url]);
    create(&env);
    let second = json(&env.ok_in(&other, &["backup", "create", "--json"]));
    let chunks = second["transfer"]["chunks"].as_u64().unwrap();
    assert_eq!(chunks, 0, "the clone's data was in the target: {second}");
    let both = next_second();
    let want_repo = (files(&env.repo()), refs(&env, &env.repo()));
    let want_other = (files(&other), refs(&env, &other));
    env.write("later.txt", b"later\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "later"]);
    env.ok(&["backup", "create"]);

    let all = env.root().join("all");
    let out = env
        .cmd_in(
            env.root(),
            &[
                "backup",
                "restore",
                "--all",
                "--at",
                &both,
                "--target",
                &url,
                "--root",
                all.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        (files(&all.join("repo")), refs(&env, &all.join("repo"))),
        want_repo
    );
    assert_eq!(
        (files(&all.join("other")), refs(&env, &all.join("other"))),
        want_other
    );
    // Outside any repository, the list names both.
    let list = env.ok_in(env.root(), &["backup", "list", &url]);
    assert!(
        list.contains(" repo ") && list.contains(" other "),
        "{list}"
    );
}

#[test]
fn create_all_backs_up_every_repository_under_a_root() {
    let env = Env::empty();
    let root = env.root().join("srv");
    std::fs::create_dir_all(&root).unwrap();
    for name in ["film", "game"] {
        let wt = env.root().join(format!("wt-{name}"));
        env.ok_in(env.root(), &["init", wt.to_str().unwrap()]);
        std::fs::write(wt.join("f.txt"), name.as_bytes()).unwrap();
        env.ok_in(&wt, &["add", "-A"]);
        env.ok_in(&wt, &["commit", "-m", name]);
        env.ok_in(
            env.root(),
            &[
                "clone",
                "--bare",
                wt.to_str().unwrap(),
                &format!("srv/{name}"),
            ],
        );
    }
    let (url, _) = target(&env);
    env.ok_in(
        env.root(),
        &[
            "backup",
            "create",
            "--all",
            "--root",
            root.to_str().unwrap(),
            &url,
        ],
    );
    let list = json(&env.ok_in(env.root(), &["backup", "list", &url, "--json"]));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["film", "game"]);
    let dest = env.root().join("back");
    env.ok_in(
        env.root(),
        &[
            "backup",
            "restore",
            "--all",
            "--at",
            "now",
            "--target",
            &url,
            dest.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(dest.join("film/f.txt")).unwrap(), b"film");
    assert_eq!(std::fs::read(dest.join("game/f.txt")).unwrap(), b"game");
}

#[test]
fn the_journal_of_watch_reaches_a_moment_between_snapshots() {
    let env = populated();
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    let mut watch = env
        .std_cmd_in(
            &env.repo(),
            &["backup", "create", "--watch", "--interval", "1"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |n: usize| {
        for _ in 0..300 {
            if records(&env).len() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no {n}th record: {:?}", records(&env));
    };
    wait_for(1);
    env.write("one.txt", b"one\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    wait_for(2);
    let mid_files = files(&env.repo());
    let mid_refs = refs(&env, &env.repo());
    let mid = next_second();
    env.write("two.txt", b"two\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "two"]);
    wait_for(3);
    // Killed at any moment: what is there is whole.
    watch.kill().unwrap();
    watch.wait().unwrap();
    let recs = records(&env);
    assert_eq!(recs[0]["kind"], "snapshot");
    assert_eq!(recs[1]["kind"], "journal");
    assert_eq!(recs[2]["kind"], "journal");
    // `list` without --journal shows the snapshot only.
    let snaps = json(&env.ok(&["backup", "list", "--json"]));
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    let dest = env.root().join("mid");
    env.ok(&["backup", "restore", "--at", &mid, dest.to_str().unwrap()]);
    assert_eq!(files(&dest), mid_files);
    assert_eq!(refs(&env, &dest), mid_refs);
}

#[test]
fn verify_names_missing_and_damaged_objects_and_create_repair_heals_them() {
    let env = populated();
    let (url, dir) = target(&env);
    let Some(dir) = dir else { return }; // damages files on disk
    env.ok(&["backup", "init", &url]);
    create(&env);
    let out = env.ok(&["backup", "verify", "--read-data"]);
    assert!(out.contains("no problems"), "{out}");
    // Damage the largest pack (the random data's chunks).
    let mut packs: Vec<PathBuf> = all_files(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect();
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let big = packs.last().unwrap().clone();
    let mut b = std::fs::read(&big).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x10;
    std::fs::write(&big, &b).unwrap();
    // Without reading data the damage is not seen; with it, it is named.
    env.ok(&["backup", "verify"]);
    let out = env
        .cmd(&["backup", "verify", "--read-data"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let so = text(&out.stdout);
    assert!(so.contains("damaged chunk "), "{so}");
    assert!(
        text(&out.stderr).contains("backup create --repair"),
        "{}",
        text(&out.stderr)
    );
    // A create without --repair trusts what the target holds; --repair
    // stores sound copies.
    env.ok(&["backup", "create", "--repair"]);
    let out = env.ok(&["backup", "verify", "--read-data"]);
    assert!(out.contains("no problems"), "{out}");
    // A pack that went away (its index left): named without reading data.
    std::fs::remove_file(&big).unwrap();
    let out = env.cmd(&["backup", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("the pack is gone"),
        "{}",
        text(&out.stdout)
    );
    // --repair stores them again from the repository.
    env.ok(&["backup", "create", "--repair"]);
    let out = env.ok(&["backup", "verify", "--read-data"]);
    assert!(out.contains("no problems"), "{out}");
    let dest = env.root().join("r");
    env.ok(&["backup", "restore", "--at", "now", dest.to_str().unwrap()]);
    assert_eq!(files(&dest), files(&env.repo()));
}

#[test]
fn forget_keeps_what_the_rules_say_and_prune_removes_only_unneeded_data() {
    let env = populated();
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    let mut ids = Vec::new();
    for i in 0..4 {
        // Each snapshot has a big file of its own, gone in the next.
        let _ = std::fs::remove_file(env.repo().join("assets/rolling.bin"));
        write_random(&env.repo().join("assets/rolling.bin"), 1 << 20, 50 + i);
        env.ok(&["add", "-A"]);
        env.ok(&["commit", "-m", &format!("roll {i}")]);
        ids.push(create(&env)["record"].as_str().unwrap().to_string());
    }
    let dry = env.ok(&["backup", "forget", "--keep-last", "2", "--dry-run"]);
    assert_eq!(dry.matches("would remove").count(), 2, "{dry}");
    assert_eq!(records(&env).len(), 4, "a dry run removes nothing");
    let out = env.ok(&["backup", "forget", "--keep-last", "2"]);
    assert!(out.contains(&format!("keep    {}", ids[3])), "{out}");
    let left: Vec<String> = records(&env)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ids[2..].to_vec());
    // Every version of the data is in the kept snapshots' history: what
    // goes is small (superseded media-record commits of the forgotten
    // snapshots), and what stays reads back whole.
    let p = json(&env.ok(&["backup", "prune", "--grace", "0s", "--json"]));
    assert!(p["removed_bytes"].as_u64().unwrap() < 64 << 10, "{p}");
    env.ok(&["backup", "verify", "--read-data"]);
    for id in &ids[2..] {
        let dest = env.root().join(format!("r-{id}"));
        env.ok(&[
            "backup",
            "restore",
            "--snapshot",
            id,
            dest.to_str().unwrap(),
        ]);
        fsck_clean(&env, &dest);
    }
    // Rules without any keep are refused.
    let e = env.fail_with(2, &["backup", "forget"]);
    assert!(e.contains("at least one --keep"), "{e}");
}

#[test]
fn prune_marks_first_and_removes_after_the_grace_period() {
    let env = Env::new();
    env.write("keep.txt", b"keep\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "keep"]);
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    create(&env);
    // A branch with 2 MiB of its own, backed up in a snapshot of its own,
    // then deleted and that snapshot forgotten.
    env.ok(&["switch", "-c", "scratch"]);
    write_random(&env.repo().join("scratch.bin"), 2 << 20, 3);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "scratch"]);
    create(&env);
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "delete", "--force", "scratch"]);
    let keep_id = create(&env)["record"].as_str().unwrap().to_string();
    let out = env.ok(&["backup", "forget", "--keep-last", "1"]);
    assert!(out.contains(&format!("keep    {keep_id}")), "{out}");
    assert_eq!(out.matches("remove").count(), 2, "{out}");
    // The first prune only marks.
    // (MEDIAGIT_FRESHEN_AFTER=0: packs count as old at once.)
    let prune = |args: &[&str]| {
        let mut a = vec!["backup", "prune", "--json"];
        a.extend(args);
        let out = env
            .cmd(&a)
            .env("MEDIAGIT_FRESHEN_AFTER", "0 seconds")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        json(&text(&out.stdout))
    };
    let p1 = prune(&[]);
    assert_eq!(p1["removed_packs"].as_array().unwrap().len(), 0, "{p1}");
    assert!(p1["pending_packs"].as_u64().unwrap() >= 1, "{p1}");
    // A dry run with no grace says what would go and removes nothing.
    let dry = prune(&["--grace", "0s", "--dry-run"]);
    assert!(dry["removed_bytes"].as_u64().unwrap() >= 2 << 20, "{dry}");
    env.ok(&["backup", "verify", "--read-data"]);
    let p2 = prune(&["--grace", "0s"]);
    assert_eq!(p2["removed_bytes"], dry["removed_bytes"], "{p2}");
    env.ok(&["backup", "verify", "--read-data"]);
    let dest = env.root().join("r");
    env.ok(&[
        "backup",
        "restore",
        "--snapshot",
        &keep_id,
        dest.to_str().unwrap(),
    ]);
    assert_eq!(files(&dest), files(&env.repo()));
    // Nothing left to remove.
    let p3 = prune(&["--grace", "0s"]);
    assert_eq!(p3["removed_packs"].as_array().unwrap().len(), 0, "{p3}");
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let env = populated();
    let (url, dir) = target(&env);
    if let Some(d) = &dir {
        std::fs::create_dir_all(d).unwrap();
    }
    // Not a target yet.
    let e = env.fail(&["backup", "list", &url]);
    assert!(e.contains("not a MediaGit backup target"), "{e}");
    env.ok(&["backup", "init", &url]);
    // No backup yet: restore says so.
    let dest = env.root().join("r");
    let e = env.fail(&["backup", "restore", "--at", "now", dest.to_str().unwrap()]);
    assert!(e.contains("has no backup yet"), "{e}");
    assert!(!dest.exists());
    create(&env);
    // Before the first backup.
    let e = env.fail(&[
        "backup",
        "restore",
        "--at",
        "2020-01-01",
        dest.to_str().unwrap(),
    ]);
    assert!(
        e.contains("no backup of \"repo\" at or before that time"),
        "{e}"
    );
    assert!(e.contains("the first one is at"), "{e}");
    assert!(!dest.exists(), "a failed restore leaves nothing");
    // An id the target does not have.
    let e = env.fail(&[
        "backup",
        "restore",
        "--at",
        "now",
        "--repository",
        "nope",
        dest.to_str().unwrap(),
    ]);
    assert!(
        e.contains("has no repository \"nope\" (it has: repo)"),
        "{e}"
    );
    let e = env.fail(&[
        "backup",
        "restore",
        "--at",
        "now",
        "--repository",
        "../x",
        "d",
    ]);
    assert!(e.contains("backup repository id"), "{e}");
    // A destination that is not empty is refused and kept.
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("mine.txt"), b"mine").unwrap();
    let e = env.fail(&["backup", "restore", "--at", "now", dest.to_str().unwrap()]);
    assert!(e.contains("not an empty directory"), "{e}");
    assert_eq!(std::fs::read(dest.join("mine.txt")).unwrap(), b"mine");
    // A missing directory target.
    let gone = env.root().join("no-such-target");
    let e = env.fail(&["backup", "list", gone.to_str().unwrap()]);
    assert!(e.contains("is not a directory"), "{e}");
    // A bad --at and --grace.
    let e = env.fail(&["backup", "restore", "--at", "yesterday-ish", "x"]);
    assert!(e.contains("cannot understand the time"), "{e}");
    let e = env.fail(&["backup", "prune", "--grace", "soon"]);
    assert!(e.contains("cannot understand the duration"), "{e}");
    let Some(dir) = dir else { return };
    // A planted record, and one moved to another time: named, skipped,
    // and verify fails.
    let recdir = dir.join("repos/repo/records");
    let real = std::fs::read_dir(&recdir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(
        recdir.join("000000000000001-s-00112233aabbccdd"),
        b"{not json",
    )
    .unwrap();
    let moved = recdir.join("000000000000002-s-0011223344556677");
    std::fs::copy(&real, &moved).unwrap();
    let out = env.cmd(&["backup", "list"]).output().unwrap();
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("000000000000001-s-00112233aabbccdd"), "{err}");
    assert!(
        err.contains("disagree") || err.contains("tampered, moved"),
        "{err}"
    );
    assert_eq!(text(&out.stdout).lines().count(), 1);
    let out = env.cmd(&["backup", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("unreadable record"),
        "{}",
        text(&out.stdout)
    );
    // forget refuses while records do not read.
    let e = env.fail(&["backup", "forget", "--keep-last", "1"]);
    assert!(e.contains("do not read"), "{e}");
    // A record larger than the bound is not read.
    std::fs::remove_file(&moved).unwrap();
    let big = recdir.join("000000000000003-s-8899aabbccddeeff");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(17 << 20).unwrap();
    let out = env.cmd(&["backup", "list"]).output().unwrap();
    assert!(
        text(&out.stderr).contains("more than a backup record may be"),
        "{}",
        text(&out.stderr)
    );
    // --drop-unreadable removes what does not read, and only that.
    let out = env.ok(&["backup", "forget", "--keep-last", "1", "--drop-unreadable"]);
    assert_eq!(out.matches("(did not read)").count(), 2, "{out}");
    assert_eq!(records(&env).len(), 1);
    env.ok(&["backup", "verify"]);
}

#[test]
fn an_encrypted_backup_shows_no_names_or_content_and_needs_the_passphrase() {
    let env = Env::empty();
    env.ok_in(
        env.root(),
        &[
            "init",
            "--encrypt",
            "--kdf-memory",
            "19",
            "--kdf-passes",
            "2",
            "repo",
        ],
    );
    let marker = "SECRET-MARKER-falcon-content-0123456789";
    env.write(
        "project-falcon-storyboard.txt",
        marker.repeat(50).as_bytes(),
    );
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "x"]);
    env.ok(&["branch", "create", "codename-osprey"]);
    let (url, dir) = target(&env);
    env.ok(&["backup", "init", &url]);
    create(&env);
    if let Some(dir) = &dir {
        for p in all_files(dir) {
            let b = std::fs::read(&p).unwrap();
            for needle in [marker, "project-falcon", "codename-osprey", "refs/heads"] {
                assert!(
                    !b.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} in {}",
                    p.display()
                );
            }
        }
    }
    // Outside the repository: the passphrase opens it.
    let dest = env.root().join("r");
    env.ok_in(
        env.root(),
        &[
            "backup",
            "restore",
            "--at",
            "now",
            "--target",
            &url,
            dest.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(dest.join("project-falcon-storyboard.txt")).unwrap(),
        marker.repeat(50).as_bytes()
    );
    assert!(refs(&env, &dest).contains_key("branch codename-osprey"));
    // A passphrase removed from the repository still opens the backups
    // (write-once): the next backup says so.
    let old = json(&env.ok(&["key", "list", "--json"]))["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.cmd(&["key", "add", "--kdf-memory", "19", "--kdf-passes", "2"])
        .env("MEDIAGIT_NEW_PASSPHRASE", "second passphrase")
        .assert()
        .success();
    env.cmd(&["key", "remove", &old])
        .env("MEDIAGIT_PASSPHRASE", "second passphrase")
        .assert()
        .success();
    let out = env
        .cmd(&["backup", "create"])
        .env("MEDIAGIT_PASSPHRASE", "second passphrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let e = text(&out.stderr);
    assert!(e.contains("no longer has") && e.contains(&old), "{e}");
    // A wrong one is refused, nothing written.
    let dest2 = env.root().join("r2");
    let out = env
        .cmd_in(
            env.root(),
            &[
                "backup",
                "restore",
                "--at",
                "now",
                "--target",
                &url,
                dest2.to_str().unwrap(),
            ],
        )
        .env("MEDIAGIT_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).to_lowercase().contains("passphrase"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dest2.exists());
}

#[test]
fn a_backup_killed_at_any_write_resumes_and_the_target_stays_valid() {
    // Kills need a binary built with failpoints (scripts/test.sh builds
    // the suite so); without them every run succeeds at once.
    let env = populated();
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    create(&env);
    write_random(&env.repo().join("assets/new.bin"), 4 << 20, 21);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "new"]);
    let mut killed = 0;
    for n in 1..40 {
        let out = env
            .cmd(&["backup", "create"])
            .env("MEDIAGIT_FAILPOINTS", format!("write@{n},backup:@{n}"))
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        killed += 1;
        // What is there is whole: every record's objects are present.
        env.ok(&["backup", "verify"]);
    }
    assert!(
        killed >= 3 || !cfg!(feature = "failpoints"),
        "only {killed} kills: the write points were not reached"
    );
    let after = create(&env);
    if killed > 0 {
        // The last full run copied nothing again that a killed run stored.
        assert!(
            after["transfer"]["bytes"].as_u64().unwrap() < 4 << 20,
            "{after}"
        );
    }
    env.ok(&["backup", "verify", "--read-data"]);
    let dest = env.root().join("r");
    env.ok(&["backup", "restore", "--at", "now", dest.to_str().unwrap()]);
    assert_eq!(files(&dest), files(&env.repo()));
}

fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
        .unwrap_or(false)
}

/// A prune that removes, while a backup runs, the packs that backup found
/// present (old history it did not walk): the backup notices before its
/// record is written and stores them again, so the record never names a
/// missing object (found by a hostile review: the record named 836
/// missing chunks).
#[test]
fn a_prune_during_a_backup_never_leaves_a_record_naming_missing_objects() {
    if !cfg!(feature = "failpoints") {
        return; // needs the stop failpoint
    }
    let env = Env::new();
    // (No media records: their bucket of x.bin's record would sit in the
    // same pack as x.bin, and the backup's walk of the records' tree
    // would freshen that pack, which hides the race.)
    env.ok(&["config", "media.records", "false"]);
    env.write("base.txt", b"base\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    create(&env);
    // 1 MiB only on branch `tmp`, backed up, then the branch deleted, that
    // snapshot forgotten and its pack marked by a prune.
    env.ok(&["switch", "-c", "tmp"]);
    write_random(&env.repo().join("x.bin"), 1 << 20, 77);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "x"]);
    let x = env.rev("HEAD");
    create(&env);
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "delete", "--force", "tmp"]);
    create(&env);
    env.ok(&["backup", "forget", "--keep-last", "1"]);
    let prune = |args: &[&str]| {
        let mut a = vec!["backup", "prune", "--json"];
        a.extend(args);
        let out = env
            .cmd(&a)
            .env("MEDIAGIT_FRESHEN_AFTER", "0 seconds")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        json(&text(&out.stdout))
    };
    let marked = prune(&[]);
    assert!(marked["pending_packs"].as_u64().unwrap() >= 1, "{marked}");
    std::thread::sleep(Duration::from_millis(1200));
    // The branch comes back (its commit is still in the repository) with
    // a commit that deletes x.bin: the next backup needs x.bin for that
    // history only, which the pool holds in a marked pack, and its walk
    // stops at the commit the pool has (it does not read x.bin there).
    env.ok(&["branch", "create", "tmp", &x]);
    env.ok(&["switch", "tmp"]);
    std::fs::remove_file(env.repo().join("x.bin")).unwrap();
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "x gone"]);
    env.ok(&["switch", "main"]);
    let mut c = env.std_cmd_in(&env.repo(), &["backup", "create", "--json"]);
    c.env("MEDIAGIT_FAILPOINTS", "backup:before-protect@1=stop")
        .env("MEDIAGIT_FRESHEN_AFTER", "0 seconds")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let pid = child.id();
    let t0 = std::time::Instant::now();
    while !is_stopped(pid) {
        assert!(t0.elapsed().as_secs() < 60, "create never reached the stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Meanwhile a prune past the grace period removes the marked pack.
    let removed = prune(&["--grace", "1s"]);
    assert!(
        removed["removed_bytes"].as_u64().unwrap() >= 1 << 20,
        "{removed}"
    );
    assert!(std::process::Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = env.ok(&["backup", "verify", "--read-data"]);
    assert!(v.contains("no problems"), "{v}");
    let dest = env.root().join("r");
    env.ok(&["backup", "restore", "--at", "now", dest.to_str().unwrap()]);
    env.ok_in(&dest, &["switch", "tmp"]);
    assert_eq!(
        files(&dest),
        files(&{
            env.ok(&["switch", "tmp"]);
            env.repo()
        })
    );
}

#[test]
fn symlinks_planted_in_a_directory_target_are_never_followed() {
    let env = populated();
    let (url, dir) = target(&env);
    let Some(dir) = dir else { return };
    env.ok(&["backup", "init", &url]);
    create(&env);
    let before = files(&env.repo().join(".mediagit/packs"));
    let pools = dir.join("pools");
    let pool = std::fs::read_dir(&pools)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::rename(&pool, dir.join("moved-pool")).unwrap();
    // The pool replaced by a link to the repository's own store.
    std::os::unix::fs::symlink(env.repo().join(".mediagit"), &pool).unwrap();
    for args in [
        vec!["backup", "create"],
        vec!["backup", "verify"],
        vec!["backup", "prune", "--grace", "0s"],
    ] {
        let e = env.fail(&args);
        assert!(e.contains("is a symlink"), "{args:?}: {e}");
    }
    assert_eq!(files(&env.repo().join(".mediagit/packs")), before);
    fsck_clean(&env, &env.repo());
    // And the records folder.
    std::fs::remove_file(&pool).unwrap();
    std::fs::rename(dir.join("moved-pool"), &pool).unwrap();
    let recs = dir.join("repos/repo/records");
    std::fs::rename(&recs, dir.join("moved-records")).unwrap();
    std::os::unix::fs::symlink(dir.join("moved-records"), &recs).unwrap();
    let e = env.fail(&["backup", "forget", "--keep-last", "1"]);
    assert!(e.contains("is a symlink"), "{e}");
}

#[test]
fn another_repository_with_the_same_name_is_not_mixed_in() {
    let env = populated();
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    create(&env);
    // Another repository in a directory also called `repo`.
    let other = env.root().join("elsewhere/repo");
    env.ok_in(env.root(), &["init", other.to_str().unwrap()]);
    std::fs::write(other.join("u.txt"), b"unrelated").unwrap();
    env.ok_in(&other, &["add", "-A"]);
    env.ok_in(&other, &["commit", "-m", "u"]);
    let out = env
        .cmd_in(&other, &["backup", "init", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("already holds backups of a repository \"repo\""),
        "{e}"
    );
    assert!(e.contains("--repository"), "{e}");
    let out = env
        .cmd_in(&other, &["backup", "create", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // Named on purpose, it gets its own id.
    env.ok_in(&other, &["backup", "init", &url, "--repository", "repo-2"]);
    env.ok_in(&other, &["backup", "create"]);
    let dest = env.root().join("r");
    env.ok(&["backup", "restore", "--at", "now", dest.to_str().unwrap()]);
    assert_eq!(files(&dest), files(&env.repo()));
}

#[test]
fn times_and_durations_out_of_range_are_refused_not_misread() {
    let env = populated();
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    let first = create(&env);
    let ms = first["time_ms"].as_i64().unwrap();
    for at in ["@99999999999999999", "@-5", "never", "yesterday-ish"] {
        let e = env.fail(&["backup", "restore", "--at", at, "d"]);
        assert!(e.contains("cannot understand the time"), "{at}: {e}");
    }
    // The error for a time before the first backup gives it as --at @SECS,
    // which restores it.
    let e = env.fail(&["backup", "restore", "--at", "@1000", "d"]);
    let hint = e
        .split("--at ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(hint, format!("@{}", ms / 1000), "{e}");
    env.ok(&["backup", "restore", "--at", &hint, "d"]);
    // A day means its end.
    let day = &backup_day(ms);
    let out = env
        .cmd(&["backup", "restore", "--at", day, "d2"])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A time with a fraction is exact: a millisecond before the record
    // finds nothing.
    let before = chrono_like(ms - 1);
    let e = env.fail(&["backup", "restore", "--at", &before, "d3"]);
    assert!(e.contains("no backup of"), "{before}: {e}");
    for d in ["999999999999999999d", "5ms", "1 fortnight"] {
        let e = env.fail(&["backup", "forget", "--keep-within", d]);
        assert!(e.contains("--keep-within"), "{d}: {e}");
    }
    // --at or --snapshot is required, and the message names both.
    let e = env.fail_with(2, &["backup", "restore", "d4"]);
    assert!(e.contains("--at") && e.contains("--snapshot"), "{e}");
}

/// `YYYY-MM-DD` (UTC) of a time in ms (read as local time: the command
/// runs with TZ=UTC).
fn backup_day(ms: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{}", ms / 1000), "+%Y-%m-%d"])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}

/// RFC 3339 with milliseconds, UTC.
fn chrono_like(ms: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{}", ms / 1000), "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .unwrap();
    format!("{}.{:03}Z", text(&out.stdout).trim(), ms % 1000)
}

#[test]
fn a_failed_restore_all_leaves_nothing_and_a_dangling_link_is_kept() {
    let env = populated();
    let (url, dir) = target(&env);
    let Some(dir) = dir else { return };
    env.ok_in(env.root(), &["clone", "repo", "other"]);
    let other = env.root().join("other");
    env.ok(&["backup", "init", &url]);
    env.ok_in(&other, &["backup", "init", &url]);
    create(&env);
    env.ok_in(&other, &["backup", "create"]);
    // `repo` sorts after `other`: damage what only repo's records need.
    env.write("only-repo.bin", &vec![7u8; 300_000]);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "only repo"]);
    let more = create(&env);
    assert!(more["transfer"]["chunks"].as_u64().unwrap() > 0);
    let newest = all_files(&dir.join("pools"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    std::fs::remove_file(&newest).unwrap();
    let dest = env.root().join("all");
    let out = env
        .cmd_in(
            env.root(),
            &[
                "backup",
                "restore",
                "--all",
                "--at",
                "now",
                "--target",
                &url,
                dest.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(e.contains("backup verify"), "{e}");
    assert!(!dest.exists(), "left behind: {:?}", all_files(&dest));
    // A dangling symlink as DEST: refused, and still there.
    let link = env.root().join("dangling");
    std::os::unix::fs::symlink(env.root().join("nowhere"), &link).unwrap();
    env.fail(&[
        "backup",
        "restore",
        "--at",
        "now",
        "--repository",
        "other",
        link.to_str().unwrap(),
    ]);
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
}

/// `GET path` on a plain-HTTP server; returns the body.
fn get(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

#[test]
fn a_server_backs_up_its_changed_repositories_and_reports_it_in_metrics() {
    let env = Env::empty();
    let root = env.root().join("srv");
    std::fs::create_dir_all(&root).unwrap();
    let wt = env.root().join("wt");
    env.ok_in(env.root(), &["init", wt.to_str().unwrap()]);
    std::fs::write(wt.join("a.txt"), b"one").unwrap();
    env.ok_in(&wt, &["add", "-A"]);
    env.ok_in(&wt, &["commit", "-m", "one"]);
    env.ok_in(
        env.root(),
        &["clone", "--bare", wt.to_str().unwrap(), "srv/film"],
    );
    let (url, _) = target(&env);
    let mut server = env
        .std_cmd_in(
            env.root(),
            &[
                "serve",
                "--root",
                "srv",
                "--bind",
                "127.0.0.1:0",
                "--backup",
                &url,
                "--backup-every",
                "1s",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    let list = || -> Vec<serde_json::Value> {
        let out = env
            .cmd_in(env.root(), &["backup", "list", &url, "--json"])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    };
    let wait_for = |n: usize| {
        for _ in 0..300 {
            if list().len() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no {n}th backup: {:?}", list());
    };
    wait_for(1);
    // Unchanged: no new record, however many rounds pass.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(list().len(), 1);
    // A push: the next round backs it up.
    env.ok_in(
        &wt,
        &["remote", "add", "srv", root.join("film").to_str().unwrap()],
    );
    std::fs::write(wt.join("b.txt"), b"two").unwrap();
    env.ok_in(&wt, &["add", "-A"]);
    env.ok_in(&wt, &["commit", "-m", "two"]);
    env.ok_in(&wt, &["push", "srv", "main"]);
    wait_for(2);
    let recs = list();
    assert!(recs.iter().all(|r| r["repository"] == "film"), "{recs:?}");
    let metrics = get(&base, "/metrics");
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        metrics.contains("mediagit_backup_last_success_timestamp_seconds{repository=\"film\"}"),
        "{metrics}"
    );
    let bytes_line = metrics
        .lines()
        .find(|l| l.starts_with("mediagit_backup_bytes_total{repository=\"film\"}"))
        .unwrap_or_else(|| panic!("{metrics}"));
    let bytes: u64 = bytes_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(bytes > 0, "{bytes_line}");
    assert!(
        metrics.contains("mediagit_backup_failures_total{repository=\"film\"} 0"),
        "{metrics}"
    );
    // What the server backed up restores.
    let dest = env.root().join("r");
    env.ok_in(
        env.root(),
        &[
            "backup",
            "restore",
            "--at",
            "now",
            "--target",
            &url,
            dest.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(dest.join("b.txt")).unwrap(), b"two");
}

/// Found by the second review: packs a restore takes whole were not read
/// (history-only chunks in them were never checked), and `create --all`
/// took an unrelated repository into an existing id; a `cas.lock` symlink
/// in a directory target made a file appear where it pointed.
#[test]
fn packs_taken_whole_are_verified_foreign_repositories_and_lock_links_refused() {
    let env = Env::new();
    let (url, dir) = target(&env);
    let Some(dir) = dir else { return };
    env.ok(&["config", "media.records", "false"]);
    write_random(&env.repo().join("f1.bin"), 200_000, 1);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.ok(&["backup", "init", &url]);
    create(&env);
    // f1.bin replaced: its first version is history only.
    write_random(&env.repo().join("f1.bin"), 200_000, 2);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "two"]);
    create(&env);
    // Damage the pack of the first version's data.
    let mut packs: Vec<PathBuf> = all_files(&dir.join("pools"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect();
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let first_chunks = packs
        .iter()
        .find(|p| std::fs::metadata(p).unwrap().len() > 150_000)
        .unwrap()
        .clone();
    let mut b = std::fs::read(&first_chunks).unwrap();
    let n = b.len();
    b[n / 2] ^= 4;
    std::fs::write(&first_chunks, &b).unwrap();
    let dest = env.root().join("r");
    let e = env.fail(&["backup", "restore", "--at", "now", dest.to_str().unwrap()]);
    assert!(e.contains("corrupt") && e.contains("backup verify"), "{e}");
    assert!(!dest.exists());
    std::fs::write(&first_chunks, {
        b[n / 2] ^= 4;
        &b
    })
    .unwrap();
    env.ok(&["backup", "restore", "--at", "now", dest.to_str().unwrap()]);
    fsck_clean(&env, &dest);

    // `create --all`: a different repository under the same path name.
    let root = env.root().join("srv");
    std::fs::create_dir_all(&root).unwrap();
    let other = env.root().join("other");
    env.ok_in(env.root(), &["init", other.to_str().unwrap()]);
    std::fs::write(other.join("u.txt"), b"unrelated").unwrap();
    env.ok_in(&other, &["add", "-A"]);
    env.ok_in(&other, &["commit", "-m", "u"]);
    env.ok_in(
        env.root(),
        &["clone", "--bare", other.to_str().unwrap(), "srv/repo"],
    );
    let out = env
        .cmd_in(
            env.root(),
            &[
                "backup",
                "create",
                "--all",
                "--root",
                root.to_str().unwrap(),
                &url,
            ],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    // (Under MEDIAGIT_TEST_ENCRYPT the first repository is encrypted and
    // the other is not: refused as naming objects differently.)
    assert!(
        e.contains("shares no commit") || e.contains("names objects differently"),
        "{e}"
    );
    assert_eq!(
        records(&env).len(),
        2,
        "nothing written for the foreign one"
    );

    // A cas.lock link.
    let outside = env.root().join("outside-file");
    std::fs::remove_file(dir.join("cas.lock")).ok();
    std::os::unix::fs::symlink(&outside, dir.join("cas.lock")).unwrap();
    let e = env.fail(&["backup", "create"]);
    assert!(e.contains("lock"), "{e}");
    assert!(!outside.exists());
}

/// A pack a restore took whole was checked only where reading entries
/// looks: a damaged pack header, or bytes after its last entry, went into
/// the restored repository, whose fsck then failed. Such a pack is now
/// copied object by object.
#[test]
fn a_pack_whose_frame_is_damaged_is_not_taken_whole_and_the_restore_is_fsck_clean() {
    use std::io::{Seek, SeekFrom, Write};
    let env = Env::new();
    let (url, dir) = target(&env);
    let Some(dir) = dir else { return }; // damages files on disk
    env.ok(&["config", "media.records", "false"]);
    write_random(&env.repo().join("a.bin"), 300_000, 11);
    env.write("b.txt", b"bee\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.ok(&["backup", "init", &url]);
    create(&env);
    let mut packs: Vec<PathBuf> = all_files(&dir.join("pools"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect();
    packs.sort();
    // Sound: every pack is taken whole.
    let restore = |d: &Path| {
        json(&env.ok(&[
            "backup",
            "restore",
            "--at",
            "now",
            "--json",
            d.to_str().unwrap(),
        ]))
    };
    let r0 = env.root().join("r0");
    let out = restore(&r0);
    assert_eq!(
        out["whole_packs"].as_u64(),
        Some(packs.len() as u64),
        "{out}"
    );
    fsck_clean(&env, &r0);
    // (r0's packs may be hard links to the pool's: it goes first.)
    std::fs::remove_dir_all(&r0).unwrap();
    let flip = |p: &Path, at: u64| {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .unwrap();
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(at)).unwrap();
        std::io::Read::read_exact(&mut f, &mut b).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&[b[0] ^ 0x20]).unwrap();
    };
    // The pack header's magic (entries still read: the index gives their
    // offsets and, when sealed, the salt).
    flip(&packs[0], 1);
    let mut damaged = vec![packs[0].clone()];
    // Bytes after the last entry (every entry still reads).
    if packs.len() > 1 {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&packs[1])
            .unwrap();
        f.write_all(b"trailing").unwrap();
        damaged.push(packs[1].clone());
    }
    let r = env.root().join("r");
    let out = restore(&r);
    assert_eq!(
        out["whole_packs"].as_u64(),
        Some((packs.len() - damaged.len()) as u64),
        "{out}"
    );
    fsck_clean(&env, &r);
    assert_eq!(files(&r), files(&env.repo()));
    // (Copied object by object, a plain pack can come out byte for byte
    // as it was written, under the same name: never as damaged.)
    let restored = all_files(&r.join(".mediagit"));
    for d in &damaged {
        let bad = std::fs::read(d).unwrap();
        for p in restored.iter().filter(|p| p.file_name() == d.file_name()) {
            assert_ne!(
                std::fs::read(p).unwrap(),
                bad,
                "{} was taken whole",
                p.display()
            );
        }
    }
    // `verify --read-data` reads every object (all sound); a restore
    // made again is as good.
    env.ok(&["backup", "verify", "--read-data"]);
    let r2 = env.root().join("r2");
    env.ok(&["backup", "restore", "--at", "now", r2.to_str().unwrap()]);
    fsck_clean(&env, &r2);
    assert_eq!(files(&r2), files(&env.repo()));
}

/// Every backup command that takes a target takes it as `--target` too
/// (`restore`, `ls` and `diff` only take it so).
#[test]
fn every_backup_command_takes_the_target_as_an_option() {
    let env = Env::new();
    let (url, _) = target(&env);
    env.write("f.txt", b"f\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.ok(&["backup", "init", &url, "--name", "nas"]);
    let c = json(&env.ok(&["backup", "create", "--target", "nas", "--json"]));
    let id = c["record"].as_str().unwrap().to_string();
    let l = json(&env.ok(&["backup", "list", "--target", &url, "--json"]));
    assert_eq!(l.as_array().unwrap().len(), 1, "{l}");
    assert!(l.to_string().contains(&id), "{l}");
    env.ok(&["backup", "verify", "--target", "nas", "--read-data"]);
    env.ok(&["backup", "forget", "--target", "nas", "--keep-last", "1"]);
    env.ok(&["backup", "prune", "--target", "nas"]);
    let e = env.fail_with(2, &["backup", "verify", "nas", "--target", "nas"]);
    assert!(e.contains("--target"), "{e}");
}

#[test]
fn a_target_given_by_its_url_uses_the_id_backup_init_registered_there() {
    let env = Env::new();
    let (url, _) = target(&env);
    env.write("f.txt", b"f\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.ok(&["backup", "init", &url, "--repository", "studio"]);
    // The URL instead of the registered name (and with a trailing slash):
    // the same target, so the same id, not "another repository".
    env.ok(&["backup", "create", &url]);
    env.ok(&["backup", "create", "--target", &format!("{url}/")]);
    let mut n = 2;
    if !url.contains("://") {
        env.ok(&["backup", "create", &format!("file://{url}")]);
        n += 1;
    }
    let l = json(&env.ok(&["backup", "list", &url, "--json"]));
    assert_eq!(l.as_array().unwrap().len(), n, "{l}");
    assert!(
        l.as_array()
            .unwrap()
            .iter()
            .all(|r| r["repository"] == "studio"),
        "{l}"
    );
    // With two targets registered, each URL finds its own entry.
    let other = match fresh_store_url() {
        Some(u) => u,
        None => env.root().join("other").to_str().unwrap().to_string(),
    };
    env.ok(&["backup", "init", &other, "--name", "other"]);
    env.ok(&["backup", "create", &other]);
    let l = json(&env.ok(&["backup", "list", &other, "--json"]));
    assert_eq!(l.as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l[0]["repository"], "repo", "{l}");
}

#[test]
fn clone_from_a_backup_target_gives_its_newest_state_or_the_one_at_a_time() {
    let env = populated();
    let (url, _) = target(&env);
    env.ok(&["backup", "init", &url]);
    env.ok(&["backup", "create"]);
    let t1_files = files(&env.repo());
    let t1_refs = refs(&env, &env.repo());
    let t1 = next_second();
    env.write("notes/later.txt", b"later\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "later"]);
    env.ok(&["branch", "create", "after"]);
    env.ok(&["backup", "create"]);

    // Outside any repository; the new directory is named after the
    // repository's id in the target.
    let outside = env.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let out = env.cmd_in(&outside, &["clone", &url]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Cloned repo from the backup in"),
        "{}",
        text(&out.stderr)
    );
    let c = outside.join("repo");
    assert_eq!(files(&c), files(&env.repo()));
    assert_eq!(refs(&env, &c), refs(&env, &env.repo()));
    fsck_clean(&env, &c);

    // --at: the moment before the later commit and branch.
    let c1 = env.root().join("c1");
    env.ok_in(
        &outside,
        &["clone", &url, c1.to_str().unwrap(), "--at", &t1],
    );
    assert_eq!(files(&c1), t1_files);
    assert_eq!(refs(&env, &c1), t1_refs);

    // -b checks out another branch of the record.
    let c2 = env.root().join("c2");
    env.ok_in(
        &outside,
        &["clone", &url, c2.to_str().unwrap(), "-b", "feature"],
    );
    let head = env.ok_in(&c2, &["branch", "--json"]);
    assert!(
        json(&head)["branches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == "feature" && b["current"] == true),
        "{head}"
    );

    // Errors name what is wrong and create nothing.
    let c3 = env.root().join("c3");
    let bad = |args: &[&str], want: &str| {
        let out = env.cmd_in(&outside, args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(want), "{}", text(&out.stderr));
        assert!(!c3.exists(), "{args:?} left {}", c3.display());
    };
    let c3s = c3.to_str().unwrap();
    bad(
        &["clone", &url, c3s, "-b", "nope"],
        "has no branch \"nope\"",
    );
    bad(&["clone", &url, c3s, "--repository", "other"], "other");
    bad(
        &["clone", &url, c3s, "--at", "@1000"],
        "the first one is at",
    );
    // --repository and --at mean nothing for a repository source.
    let out = env
        .cmd_in(
            &outside,
            &["clone", env.repo().to_str().unwrap(), c3s, "--at", "now"],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not one"),
        "{}",
        text(&out.stderr)
    );
    assert!(!c3.exists());
}

/// The S3 test server and its Object Lock bucket, when scripts/test.sh
/// started them.
fn lock_bucket() -> Option<(String, String)> {
    match (
        std::env::var("MEDIAGIT_TEST_S3"),
        std::env::var("MEDIAGIT_TEST_S3_LOCK_BUCKET"),
    ) {
        (Ok(e), Ok(b)) if !e.is_empty() && !b.is_empty() => Some((e, b)),
        _ => {
            assert!(
                std::env::var("MEDIAGIT_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "MEDIAGIT_TEST_S3_LOCK_BUCKET is not set but MEDIAGIT_REQUIRE_SERVERS=1"
            );
            eprintln!("no S3 test server: skipping (run through scripts/test.sh)");
            None
        }
    }
}

fn s3_backend(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    md5: bool,
) -> mediagit_storage::ObjectStoreBackend {
    let spec = mediagit_storage::ObjectStoreSpec {
        cloud: mediagit_storage::Cloud::S3,
        bucket: bucket.into(),
        prefix: prefix.into(),
        endpoint: Some(endpoint.into()),
        region: None,
        account: None,
        bucket_id: None,
    };
    let env: mediagit_storage::CloudEnv = mediagit_storage::object_store_backend::CLOUD_ENV_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let opts = mediagit_storage::ConnectOptions {
        content_md5: md5,
        ..Default::default()
    };
    mediagit_storage::ObjectStoreBackend::connect_with(&spec, &env, &opts).unwrap()
}

#[test]
fn an_object_lock_bucket_keeps_every_backup_object_from_deletion_and_overwrite() {
    use mediagit_storage::Storage;
    let Some((endpoint, bucket)) = lock_bucket() else {
        return;
    };
    let env = populated();
    let run = |args: &[&str]| {
        env.std_cmd_in(&env.repo(), args)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .output()
            .unwrap()
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("lock-{}-{nanos}", std::process::id());
    let url = format!("s3://{bucket}/{prefix}");

    // Refused before anything is written: a bucket without Object Lock,
    // a directory, --lock without --retain, an unknown mode.
    let refused = |target: &str, extra: &[&str], code: i32, want: &str| {
        let mut args = vec!["backup", "init", target];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    };
    let locked = ["--retain", "1", "--lock", "governance"];
    let plain = format!("s3://mediagit-test/{prefix}-plain");
    refused(&plain, &locked, 1, "has no S3 Object Lock");
    let plain_store = s3_backend(
        &endpoint,
        "mediagit-test",
        &format!("{prefix}-plain"),
        false,
    );
    assert!(plain_store.list("").unwrap().is_empty());
    let dir = env.root().join("dir-target");
    refused(dir.to_str().unwrap(), &locked, 1, "needs an s3:// target");
    assert!(!dir.join("mediagit-backup.json").exists());
    refused(&url, &["--lock", "governance"], 2, "--retain");
    refused(
        &url,
        &["--retain", "1", "--lock", "sometimes"],
        2,
        "sometimes",
    );

    // The bucket gets its default retention (or has it from an earlier
    // run of this test: the same mode and days).
    let mut args = vec!["backup", "init", &url];
    args.extend_from_slice(&locked);
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("keeps every object 1 days after it is written (governance mode)"),
        "{}",
        text(&out.stderr)
    );
    // A longer retention than the bucket's, or the other mode: refused.
    let other = |days, mode| ["--name", "other", "--retain", days, "--lock", mode];
    refused(&url, &other("5", "governance"), 1, "fewer than --retain 5");
    refused(&url, &other("1", "compliance"), 1, "not compliance");

    // The bucket refuses uploads without Content-MD5; backups send it.
    let raw = s3_backend(&endpoint, &bucket, &prefix, false);
    assert!(raw.put("probe-without-md5", b"x").is_err());
    let out = run(&["backup", "create", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t1_files = files(&env.repo());

    // Whoever holds the credentials: no version of any key the backup
    // wrote can be deleted, and writing over a key only adds a version.
    let s = s3_backend(&endpoint, &bucket, &prefix, true);
    let keys = s.list("").unwrap();
    assert!(keys.iter().any(|k| k.contains("/records/")), "{keys:?}");
    assert!(keys.iter().any(|k| k.contains("/packs/")), "{keys:?}");
    for k in &keys {
        let v = s.versions(k).unwrap();
        assert_eq!(v.len(), 1, "{k}: {v:?}");
        let err = s.delete_version(k, &v[0].version).unwrap_err().to_string();
        assert!(
            err.to_lowercase().contains("denied") || err.contains("403"),
            "{k}: {err}"
        );
    }
    let record = keys.iter().find(|k| k.contains("/records/")).unwrap();
    let original = s.get(record).unwrap();
    // Written over: a record, and the repository's entry (made to point
    // at a pool that is not there). Plain reads now get the attacker's
    // bytes; verify names both keys (even though the restore it would
    // check now fails), and a restore that reads first versions gets
    // back exactly what was backed up.
    let entry_key = "repos/repo/repository.json";
    let entry = s.get(entry_key).unwrap();
    s.put(record, b"planted").unwrap();
    s.put(entry_key, br#"{"version":1,"repository":"repo","pool":"000000000000000000000000","created":0,"retain_days":0,"encrypted":false}"#).unwrap();
    let written_over = |want: usize| {
        let out = run(&["backup", "verify", "--read-data"]);
        let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
        let lines: Vec<&str> = report
            .lines()
            .filter(|l| l.contains("written over"))
            .collect();
        assert_eq!(lines.len(), want, "{report}");
        assert_eq!(
            out.status.code(),
            Some(if want == 0 { 0 } else { 1 }),
            "{report}"
        );
        report
    };
    let report = written_over(2);
    for k in [record.as_str(), entry_key] {
        assert!(report.contains(k), "{k}: {report}");
    }
    let r = env.root().join("restored");
    let out = run(&["backup", "restore", "--at", "now", r.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!r.exists());
    let out = run(&[
        "backup",
        "restore",
        "--first-versions",
        "--at",
        "now",
        r.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(files(&r), t1_files);
    // The first content put back on top (what BACKUP.md says to do)
    // clears the report; a delete only adds a marker, and the version
    // MediaGit wrote stays, locked.
    s.put(record, &original).unwrap();
    s.put(entry_key, &entry).unwrap();
    written_over(0);
    s.delete(record).unwrap();
    let versions = s.versions(record).unwrap();
    // (Listed newest first; times may tie to the second.)
    let first = versions
        .iter()
        .rev()
        .filter(|v| !v.deleted)
        .min_by_key(|v| v.modified)
        .unwrap();
    assert_eq!(s.get_version(record, &first.version).unwrap(), original);
    assert!(s.delete_version(record, &first.version).is_err());
    // Another backup and restore still work.
    let out = run(&["backup", "create"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r2 = env.root().join("restored2");
    let out = run(&["backup", "restore", "--at", "now", r2.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(files(&r2), t1_files);
}

/// A tmpfs of `mib` MiB at `dir` (root only), unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, mib: u32) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }

    fn grow(&self, mib: u32) {
        let st = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Sets or clears the immutable attribute (root, ext4 and the like).
fn immutable(p: &Path, on: bool) -> bool {
    std::process::Command::new("chattr")
        .arg(if on { "+i" } else { "-i" })
        .arg(p)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_full_unreachable_or_write_refusing_target_fails_clearly_and_records_nothing() {
    let env = populated();
    // Unreachable: an S3 endpoint nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = env
        .std_cmd_in(
            &env.repo(),
            &["backup", "create", "s3://mediagit-test/nowhere"],
        )
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("mediagit-test"), "names the target: {err}");
    assert!(err.contains("the store did not answer"), "says why: {err}");

    // Full: a 2 MiB disk for a repository of more than 3 MiB.
    let full_dir = env.root().join("small");
    match SmallDisk::mount(&full_dir, 2) {
        None => eprintln!("not root: the full-disk part is skipped"),
        Some(disk) => {
            let t = full_dir.join("target");
            let ts = t.to_str().unwrap();
            env.ok(&["backup", "init", ts, "--name", "small"]);
            let out = env.cmd(&["backup", "create", "small"]).output().unwrap();
            assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
            let err = text(&out.stderr);
            assert!(err.contains("No space left on device"), "{err}");
            // Nothing is marked as backed up, and the target stays valid.
            let list = env.ok(&["backup", "list", "small", "--json"]);
            assert_eq!(json(&list).as_array().unwrap().len(), 0, "{list}");
            env.ok(&["backup", "verify", "small"]);
            // With room, the next run completes and restores.
            disk.grow(64);
            env.ok(&["backup", "create", "small"]);
            let r = env.root().join("r-full");
            env.ok(&[
                "backup",
                "restore",
                "--target",
                "small",
                "--at",
                "now",
                r.to_str().unwrap(),
            ]);
            assert_eq!(files(&r), files(&env.repo()));
            drop(disk);
        }
    }

    // Refusing writes: the records folder made immutable (root on ext4;
    // chmod stops no root). The data goes in; the record does not.
    let t = env.root().join("worm");
    let ts = t.to_str().unwrap();
    env.ok(&["backup", "init", ts, "--name", "worm"]);
    let records_dir = t.join("repos/repo/records");
    std::fs::create_dir_all(&records_dir).unwrap();
    if !immutable(&records_dir, true) {
        eprintln!("chattr +i not available: the write-refusing part is skipped");
        return;
    }
    let out = env.cmd(&["backup", "create", "worm"]).output().unwrap();
    immutable(&records_dir, false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("records"), "names where: {err}");
    assert!(err.contains("Operation not permitted"), "says why: {err}");
    let list = env.ok(&["backup", "list", "worm", "--json"]);
    assert_eq!(json(&list).as_array().unwrap().len(), 0, "{list}");
    // Then it completes, copying nothing twice.
    let out = json(&env.ok(&["backup", "create", "worm", "--json"]));
    assert_eq!(out["transfer"]["objects"], 0, "{out}");
    let list = env.ok(&["backup", "list", "worm", "--json"]);
    assert_eq!(json(&list).as_array().unwrap().len(), 1, "{list}");
}

/// A test with repositories in the S3 test server: an empty temp dir, the
/// endpoint, and a fresh prefix.
struct S3Case {
    env: Env,
    endpoint: String,
    base: String,
}

impl S3Case {
    fn new(label: &str) -> Option<S3Case> {
        let (endpoint, _) = lock_bucket()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Some(S3Case {
            env: Env::empty(),
            endpoint,
            base: format!("{label}-{}-{nanos}", std::process::id()),
        })
    }

    /// Runs mediagit in `dir`: (exit code, stdout, stderr).
    fn run(&self, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
        let out = self
            .env
            .std_cmd_in(dir, args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .output()
            .unwrap();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    }
}

#[test]
fn a_repository_and_its_target_on_one_s3_endpoint_are_copied_inside_the_service_and_verified() {
    use mediagit_storage::Storage;
    let Some(case) = S3Case::new("ssc") else {
        return;
    };
    let (env, endpoint, base) = (&case.env, &case.endpoint, &case.base);
    let repo_url = format!("s3://mediagit-test/{base}/repo");
    let run = |dir: &Path, args: &[&str]| case.run(dir, args);
    let (code, _, err) = run(env.root(), &["init", "repo", "--storage", &repo_url]);
    assert_eq!(code, Some(0), "{err}");
    let repo = env.repo();
    copy_media(&repo.join("media"));
    std::fs::create_dir_all(repo.join("assets")).unwrap();
    write_random(&repo.join("assets/big.bin"), 3 << 20, 11);
    assert_eq!(run(&repo, &["add", "-A"]).0, Some(0));
    assert_eq!(run(&repo, &["commit", "-m", "one"]).0, Some(0));

    // Same bucket: every pack goes across inside the service.
    let target = format!("s3://mediagit-test/{base}/backup");
    assert_eq!(run(&repo, &["backup", "init", &target]).0, Some(0));
    let (code, out, err) = run(&repo, &["backup", "create", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let first = json(&out);
    let repo_store = s3_backend(endpoint, "mediagit-test", &format!("{base}/repo"), false);
    let packs: Vec<String> = repo_store
        .list("packs/")
        .unwrap()
        .into_iter()
        .filter(|k| k.ends_with(".pack"))
        .collect();
    assert!(!packs.is_empty());
    // The packs of chunks go across inside the service; the metadata
    // (commits, trees, manifests) is copied object by object.
    let whole = first["transfer"]["server_side_packs"].as_u64().unwrap();
    assert!(whole >= 1 && (whole as usize) < packs.len(), "{first}");
    assert!(
        first["transfer"]["server_side_bytes"].as_u64().unwrap() > 3 << 20,
        "{first}"
    );
    // Nothing new: nothing copied; and it restores byte for byte.
    let (_, out, _) = run(&repo, &["backup", "create", "--json"]);
    assert_eq!(json(&out)["transfer"]["objects"], 0, "{out}");
    let r = env.root().join("restored");
    let (code, _, err) = run(
        &repo,
        &["backup", "restore", "--at", "now", r.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(files(&r), files(&repo));
    let (code, _, err) = run(&repo, &["backup", "verify", "--read-data"]);
    assert_eq!(code, Some(0), "{err}");

    // Another bucket of the same service, under Object Lock from the
    // start: the same packs go across inside the service (CopyObject
    // signed by MediaGit, with the Content-MD5 the bucket asks for).
    if let Ok(locked) = std::env::var("MEDIAGIT_TEST_S3_LOCKED_BUCKET") {
        let t3 = format!("s3://{locked}/{base}");
        assert_eq!(
            run(&repo, &["backup", "init", &t3, "--name", "locked"]).0,
            Some(0)
        );
        let (code, out, err) = run(&repo, &["backup", "create", "locked", "--json"]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(json(&out)["transfer"]["server_side_packs"], whole, "{out}");
        let r3 = env.root().join("restored-locked");
        let (code, _, err) = run(
            &repo,
            &[
                "backup",
                "restore",
                "--target",
                "locked",
                "--at",
                "now",
                r3.to_str().unwrap(),
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(files(&r3), files(&repo));
        // Locked like everything else written there.
        let s3 = s3_backend(endpoint, &locked, base, true);
        let pack = s3
            .list("pools/")
            .unwrap()
            .into_iter()
            .find(|k| k.ends_with(".pack"))
            .unwrap();
        let v = s3.versions(&pack).unwrap();
        assert!(s3.delete_version(&pack, &v[0].version).is_err());
    }

    // A pack damaged in the repository's store is read and verified
    // before it would go across: it never does, the object copy names the
    // damaged chunk, and no record is written.
    let big = packs
        .iter()
        .max_by_key(|k| repo_store.size(k).unwrap().unwrap_or(0))
        .unwrap();
    let mut bytes = repo_store.get(big).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    repo_store.put(big, &bytes).unwrap();
    let target2 = format!("s3://mediagit-test/{base}/backup2");
    let (code, _, err) = run(&repo, &["backup", "create", &target2]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("corrupt chunk"), "{err}");
    assert!(
        err.contains(&format!("{base}/repo")),
        "names the repository's store: {err}"
    );
    let t2 = s3_backend(endpoint, "mediagit-test", &format!("{base}/backup2"), false);
    let left: Vec<String> = t2
        .list("pools/")
        .unwrap()
        .into_iter()
        .filter(|k| k.contains("/packs/"))
        .collect();
    assert!(
        !left
            .iter()
            .any(|k| k.ends_with(big.trim_start_matches("packs/"))),
        "{left:?}"
    );
    assert!(t2
        .list("repos/")
        .unwrap()
        .iter()
        .all(|k| !k.contains("/records/")));
}

#[test]
fn clone_never_reads_planted_devices_and_a_marker_file_in_a_repository_is_not_a_target() {
    let env = populated();
    let dir = env.root().join("t");
    let ds = dir.to_str().unwrap();
    env.ok(&["backup", "init", ds]);
    env.ok(&["backup", "create"]);
    // /dev/zero and a FIFO planted as records: named, skipped, never read
    // (before: memory grew until the kernel killed it, or a hang).
    let recs = dir.join("repos/repo/records");
    std::os::unix::fs::symlink("/dev/zero", recs.join("001796420099997-s-0123456789abcded"))
        .unwrap();
    let fifo = recs.join("001796420099998-s-0123456789abcdee");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = env
        .cmd_in(env.root(), &["clone", ds, "c"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not a regular file"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(files(&env.root().join("c")), files(&env.repo()));

    // A repository that tracks a file named like a target's marker is
    // still cloned as a repository.
    env.write(
        "mediagit-backup.json",
        br#"{"format": "mediagit-backup", "version": 1}"#,
    );
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "a marker-like file"]);
    env.ok_in(env.root(), &["clone", env.repo().to_str().unwrap(), "c2"]);
    assert_eq!(files(&env.root().join("c2")), files(&env.repo()));

    // A target with no repository says so.
    let empty = env.root().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::copy(
        dir.join("mediagit-backup.json"),
        empty.join("mediagit-backup.json"),
    )
    .unwrap();
    let out = env
        .cmd_in(env.root(), &["clone", empty.to_str().unwrap(), "c3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("holds no repository yet"),
        "{}",
        text(&out.stderr)
    );
    assert!(!env.root().join("c3").exists());
}

/// Bytes of every pack file of a directory target's pools.
fn pool_pack_bytes(dir: &Path) -> u64 {
    all_files(&dir.join("pools"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn a_prune_killed_at_any_point_leaves_a_valid_target_and_the_next_one_completes() {
    let env = populated();
    let (url, dir) = target(&env);
    env.ok(&["backup", "init", &url]);
    env.ok(&["backup", "create"]);
    // A branch with 2 MiB of its own, backed up, then deleted: once its
    // record is forgotten, prune has packs to remove and to repack.
    env.ok(&["branch", "create", "scratch"]);
    env.ok(&["switch", "scratch"]);
    write_random(&env.repo().join("assets/scratch.bin"), 2 << 20, 77);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "scratch"]);
    env.ok(&["backup", "create"]);
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "delete", "--force", "scratch"]);
    next_second();
    env.ok(&["backup", "create"]);
    env.ok(&["backup", "forget", "--keep-last", "1"]);
    let before = dir.as_deref().map(pool_pack_bytes);
    let mut killed = 0;
    for n in 1..40 {
        let out = env
            .cmd(&["backup", "prune", "--grace", "0s"])
            .env("MEDIAGIT_FAILPOINTS", format!("backup:prune@{n},write@{n}"))
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert_eq!(out.status.code(), None, "killed: {}", text(&out.stderr));
        killed += 1;
        // Whatever the point, the kept record's data is whole.
        env.ok(&["backup", "verify", "--read-data"]);
    }
    assert!(
        killed >= 3 || !cfg!(feature = "failpoints"),
        "only {killed} kills: the prune's points were not reached"
    );
    env.ok(&["backup", "prune", "--grace", "0s"]);
    env.ok(&["backup", "verify", "--read-data"]);
    let r = env.root().join("r");
    env.ok(&["backup", "restore", "--at", "now", r.to_str().unwrap()]);
    assert_eq!(files(&r), files(&env.repo()));
    fsck_clean(&env, &r);
    if let (Some(before), Some(d)) = (before, dir) {
        let after = pool_pack_bytes(&d);
        // (About the 2 MiB: the rest of its pack is kept, repacked.)
        assert!(after + (19 << 20) / 10 <= before, "{before} -> {after}");
    }
}

#[test]
fn a_pack_holding_a_damaged_copy_never_goes_across_whole() {
    use mediagit_storage::Storage;
    let Some(case) = S3Case::new("dmg") else {
        return;
    };
    let (env, endpoint, base) = (&case.env, &case.endpoint, &case.base);
    let run = |dir: &Path, args: &[&str]| case.run(dir, args);
    let repo_url = format!("s3://mediagit-test/{base}/repo");
    assert_eq!(
        run(env.root(), &["init", "repo", "--storage", &repo_url]).0,
        Some(0)
    );
    let repo = env.repo();
    write_random(&repo.join("big.bin"), 900_000, 5);
    std::fs::write(repo.join("t.txt"), b"x\n").unwrap();
    assert_eq!(run(&repo, &["add", "-A"]).0, Some(0));
    assert_eq!(run(&repo, &["commit", "-m", "one"]).0, Some(0));
    // Damage the chunk pack; fsck marks the copy; the same bytes added
    // again are stored anew elsewhere, and the repository is sound.
    let store = s3_backend(endpoint, "mediagit-test", &format!("{base}/repo"), false);
    let damaged = store
        .list("packs/")
        .unwrap()
        .into_iter()
        .filter(|k| k.ends_with(".pack"))
        .max_by_key(|k| store.size(k).unwrap().unwrap_or(0))
        .unwrap();
    let mut bytes = store.get(&damaged).unwrap();
    bytes[1000] ^= 0x5a;
    store.put(&damaged, &bytes).unwrap();
    assert_ne!(run(&repo, &["fsck"]).0, Some(0));
    std::fs::copy(repo.join("big.bin"), repo.join("big2.bin")).unwrap();
    assert_eq!(run(&repo, &["add", "-A"]).0, Some(0));
    assert_eq!(run(&repo, &["commit", "-m", "again"]).0, Some(0));
    let (code, out, err) = run(&repo, &["fsck"]);
    assert_eq!(code, Some(0), "{out}{err}");
    // The backup takes the sound copy, never the marked pack.
    let target = format!("s3://mediagit-test/{base}/t");
    assert_eq!(run(&repo, &["backup", "init", &target]).0, Some(0));
    let (code, _, err) = run(&repo, &["backup", "create"]);
    assert_eq!(code, Some(0), "{err}");
    let t = s3_backend(endpoint, "mediagit-test", &format!("{base}/t"), false);
    let name = damaged.trim_start_matches("packs/");
    assert!(
        !t.list("pools/").unwrap().iter().any(|k| k.ends_with(name)),
        "the marked pack went across"
    );
    let (code, _, err) = run(&repo, &["backup", "verify", "--read-data"]);
    assert_eq!(code, Some(0), "{err}");
    let r = env.root().join("restored");
    let (code, _, err) = run(
        &repo,
        &["backup", "restore", "--at", "now", r.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(files(&r), files(&repo));
}

#[test]
fn server_side_copies_encode_prefixes_and_write_nothing_outside_the_target() {
    use mediagit_storage::Storage;
    let Some(case) = S3Case::new("enc") else {
        return;
    };
    let Ok(locked) = std::env::var("MEDIAGIT_TEST_S3_LOCKED_BUCKET") else {
        return;
    };
    let (env, endpoint, base) = (&case.env, &case.endpoint, &case.base);
    // Characters a URL would read as a query, a fragment, an escape, a
    // space, and a non-ASCII letter.
    let odd = "a b?c#d%41é";
    let repo_url = format!("s3://mediagit-test/{base}/{odd}/repo");
    assert_eq!(
        case.run(env.root(), &["init", "repo", "--storage", &repo_url])
            .0,
        Some(0)
    );
    let repo = env.repo();
    write_random(&repo.join("big.bin"), 2 << 20, 8);
    assert_eq!(case.run(&repo, &["add", "-A"]).0, Some(0));
    assert_eq!(case.run(&repo, &["commit", "-m", "one"]).0, Some(0));
    let target = format!("s3://{locked}/{base}/{odd}/t");
    assert_eq!(case.run(&repo, &["backup", "init", &target]).0, Some(0));
    let (code, out, err) = case.run(&repo, &["backup", "create", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        json(&out)["transfer"]["server_side_packs"]
            .as_u64()
            .unwrap()
            >= 1,
        "{out}"
    );
    // Every key written is under the target's prefix.
    let all = s3_backend(endpoint, &locked, base, true).list("").unwrap();
    assert!(!all.is_empty());
    assert!(
        all.iter().all(|k| k.starts_with(&format!("{odd}/t/"))),
        "{all:?}"
    );
    let r = env.root().join("restored");
    let (code, _, err) = case.run(
        &repo,
        &["backup", "restore", "--at", "now", r.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(files(&r), files(&repo));
}
