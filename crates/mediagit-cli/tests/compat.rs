//! Repositories written by older builds stay readable: layouts that changed
//! (pack naming, the worktree index) are read by this build, `fsck` is
//! clean on them, and every file checks out byte-exactly.
mod common;

use std::fs;

use common::*;
use mediagit_format::pack::PackIndex;
use mediagit_format::ObjectId;

/// Before 9047652 a pack was named by the SHA-256 of all its bytes. Renames
/// every pack of a repository to that name (and rewrites its index to name
/// it), as such a build would have left it.
fn rename_packs_to_whole_file_hashes(env: &Env) {
    let dir = env.repo().join(".mediagit/packs");
    for pack in packs(env) {
        let bytes = fs::read(&pack).unwrap();
        let old_id = ObjectId::hash(&bytes);
        let idx_path = pack.with_extension("idx");
        let mut idx = PackIndex::decode(&fs::read(&idx_path).unwrap()).unwrap();
        idx.pack = old_id;
        fs::write(dir.join(format!("{old_id}.pack")), &bytes).unwrap();
        fs::write(dir.join(format!("{old_id}.idx")), idx.encode()).unwrap();
        fs::remove_file(&pack).unwrap();
        fs::remove_file(&idx_path).unwrap();
    }
}

#[test]
fn packs_named_by_their_whole_content_are_sound_for_fsck() {
    let env = Env::new();
    if env.remote() {
        return;
    }
    write_random(&env.repo().join("clip.mov"), 2_500_000, 3);
    env.write("notes.txt", b"old naming\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "v1"]);
    let want = tree_hashes(&env.repo());
    rename_packs_to_whole_file_hashes(&env);
    let out = env.ok(&["fsck"]);
    assert!(out.contains(": 0 problems"), "{out}");
    // --repair must not move sound old packs aside.
    let out = env.ok(&["fsck", "--repair"]);
    assert!(!out.contains("rewrote"), "{out}");
    assert!(!env.repo().join(".mediagit/damaged").exists());
    fs::remove_file(env.repo().join("clip.mov")).unwrap();
    fs::remove_file(env.repo().join("notes.txt")).unwrap();
    env.ok(&["checkout", "HEAD", "--", "."]);
    assert_eq!(tree_hashes(&env.repo()), want);
    // A damaged old-named pack is still reported.
    let pack = packs(&env)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    fs::write(&pack, bytes).unwrap();
    let out = env.cmd(&["fsck"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
}

/// One version of a golden fixture: (mode, sha256, path, symlink target).
type Listing = Vec<(String, String, String, Option<String>)>;

/// The sections of a fixture's EXPECTED.txt: `== v1 ID`, `== v2 ID`.
fn expected(text: &str) -> Vec<(String, String, Listing)> {
    let mut out: Vec<(String, String, Listing)> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("== ") {
            let mut w = h.split_whitespace();
            match (w.next(), w.next()) {
                (Some(v @ ("v1" | "v2")), Some(id)) => {
                    out.push((v.to_string(), id.to_string(), Vec::new()))
                }
                _ => out.push((String::new(), String::new(), Vec::new())),
            }
            continue;
        }
        let Some(last) = out.last_mut() else { continue };
        if last.0.is_empty() || line.trim().is_empty() {
            continue;
        }
        let (entry, target) = match line.split_once(" -> ") {
            Some((e, t)) => (e, Some(t.to_string())),
            None => (line, None),
        };
        let mut w = entry.splitn(4, ' ');
        let (mode, sha, _size, path) = (w.next(), w.next(), w.next(), w.next());
        last.2.push((
            mode.unwrap().to_string(),
            sha.unwrap().to_string(),
            path.unwrap().to_string(),
            target,
        ));
    }
    out.retain(|s| !s.0.is_empty());
    out
}

/// Repositories written by the builds at 8d04f6f (worktree index version 2
/// without the resume table) and 2a78a03 (the last release before format
/// fixes: the version 3 index body numbered 2), checked in under
/// `tests/fixtures/<commit>/` (how they were made: README.md and make.sh
/// there). This build must read them as they are: status (the old index
/// first), log, fsck clean, every file of both versions restored
/// byte-exactly, verify, and then keep working on them.
#[test]
fn repositories_written_by_older_builds_read_and_restore_exactly() {
    if test_store().is_some() {
        return;
    }
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for build in ["8d04f6f", "2a78a03"] {
        let env = Env::empty();
        let repo = env.root().join("repo");
        let st = std::process::Command::new("cp")
            .args(["-a"])
            .arg(fixtures.join(build).join("repo"))
            .arg(&repo)
            .status()
            .unwrap();
        assert!(st.success());
        let text = fs::read_to_string(fixtures.join(build).join("EXPECTED.txt")).unwrap();
        let versions = expected(&text);
        assert_eq!(versions.len(), 2, "{build}: EXPECTED.txt has v1 and v2");
        // The old index is read first, before anything rewrites it.
        let st = env.ok_in(&repo, &["status", "--porcelain"]);
        assert!(st.contains("A  staged.txt"), "{build}: {st}");
        let log = env.ok_in(&repo, &["log", "--oneline"]);
        for (_, id, _) in &versions {
            assert!(log.contains(id.as_str()), "{build}: {log}");
        }
        let fsck = env.ok_in(&repo, &["fsck"]);
        assert!(fsck.contains(": 0 problems"), "{build}: {fsck}");
        for (name, id, files) in &versions {
            env.ok_in(&repo, &["verify", id]);
            for (_, sha, path, target) in files {
                // Every file as `cat` streams it...
                let out = env
                    .cmd_in(&repo, &["cat", &format!("{id}:{path}")])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{build} {name} cat {path}");
                if target.is_none() {
                    assert_eq!(
                        hex::encode(sha2_256(&out.stdout)),
                        *sha,
                        "{build} {name} {path}"
                    );
                }
            }
            // ...and as a checkout writes it.
            env.ok_in(&repo, &["checkout", "--force", id]);
            for (mode, sha, path, target) in files {
                let p = repo.join(path);
                match target {
                    Some(t) => assert_eq!(
                        fs::read_link(&p).unwrap().to_str().unwrap(),
                        t.as_str(),
                        "{build} {name} {path}"
                    ),
                    None => {
                        assert_eq!(sha256_file(&p), *sha, "{build} {name} {path}");
                        use std::os::unix::fs::PermissionsExt;
                        let exec = fs::metadata(&p).unwrap().permissions().mode() & 0o111 != 0;
                        assert_eq!(exec, mode == "100755", "{build} {name} {path}");
                    }
                }
            }
        }
        // And the repository keeps working: branch, commit, gc, fsck.
        env.ok_in(&repo, &["switch", "main"]);
        env.ok_in(&repo, &["switch", "old-idea"]);
        env.ok_in(&repo, &["switch", "main"]);
        fs::write(repo.join("after.txt"), b"written by this build\n").unwrap();
        env.ok_in(&repo, &["add", "-A"]);
        env.ok_in(&repo, &["commit", "-m", "after upgrade"]);
        env.ok_in(&repo, &["gc", "--prune=now"]);
        let fsck = env.ok_in(&repo, &["fsck"]);
        assert!(fsck.contains(": 0 problems"), "{build}: {fsck}");
        env.ok_in(&repo, &["verify", &versions[0].1]);

        // `upgrade` to format 2: the dry run changes nothing, the upgrade
        // only the settings; everything still reads and restores.
        let cfg = repo.join(".mediagit/config.toml");
        let before = fs::read(&cfg).unwrap();
        assert!(String::from_utf8_lossy(&before).contains("version = 1"));
        let out = env.ok_in(&repo, &["upgrade", "--dry-run"]);
        assert!(
            out.contains("would upgrade from format version 1 to 2"),
            "{out}"
        );
        assert_eq!(fs::read(&cfg).unwrap(), before, "{build}: dry run wrote");
        let out = env.ok_in(&repo, &["upgrade"]);
        assert!(out.contains("upgraded from format version 1 to 2"), "{out}");
        let after = fs::read_to_string(&cfg).unwrap();
        assert!(
            after.contains("version = 2") && after.contains("metadata-packs"),
            "{after}"
        );
        let fsck = env.ok_in(&repo, &["fsck"]);
        assert!(fsck.contains(": 0 problems"), "{build} upgraded: {fsck}");
        for (_, id, _) in &versions {
            env.ok_in(&repo, &["verify", id]);
        }
        let out = env.ok_in(&repo, &["upgrade"]);
        assert!(out.contains("already at format version 2"), "{out}");
    }
}

fn sha2_256(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}

/// A store shared by two working trees: `upgrade` in one rewrites the
/// store's settings, which the other reads from then on.
#[test]
fn upgrade_of_a_shared_store_reaches_every_working_tree() {
    let env = Env::empty();
    let store = env.root().join("store");
    env.ok_in(
        env.root(),
        &["init", "a", "--storage", &store.display().to_string()],
    );
    let a = env.root().join("a");
    write_random(&a.join("clip.mov"), 1_500_000, 3);
    let want = sha256_file(&a.join("clip.mov"));
    env.ok_in(&a, &["add", "-A"]);
    env.ok_in(&a, &["commit", "-m", "first"]);
    let url = format!("file://{}", store.display());
    env.ok_in(env.root(), &["clone", &url, "b"]);
    let b = env.root().join("b");
    for cfg in [
        store.join("config.toml"),
        a.join(".mediagit/config.toml"),
        b.join(".mediagit/config.toml"),
    ] {
        rewrite_config_as_format_1(&cfg);
    }
    let out = env.ok_in(&a, &["upgrade", "--dry-run"]);
    assert!(
        out.contains("would upgrade from format version 1 to 2"),
        "{out}"
    );
    assert!(out.contains("the store's settings"), "{out}");
    assert!(fs::read_to_string(store.join("config.toml"))
        .unwrap()
        .contains("version = 1"));
    env.ok_in(&a, &["upgrade"]);
    let s = fs::read_to_string(store.join("config.toml")).unwrap();
    assert!(
        s.contains("version = 2") && s.contains("metadata-packs"),
        "{s}"
    );
    // b's own file still says 1; the store decides.
    assert!(fs::read_to_string(b.join(".mediagit/config.toml"))
        .unwrap()
        .contains("version = 1"));
    // b's file still says 1: as after a kill between the store's write and
    // the working tree's. Running upgrade there finishes the job.
    let out = env.ok_in(&b, &["upgrade"]);
    assert!(out.contains("upgraded from format version 1 to 2"), "{out}");
    assert!(!out.contains("the store's settings"), "{out}");
    assert!(fs::read_to_string(b.join(".mediagit/config.toml"))
        .unwrap()
        .contains("version = 2"));
    let out = env.ok_in(&b, &["upgrade"]);
    assert!(out.contains("already at format version 2"), "{out}");
    fs::remove_file(b.join("clip.mov")).unwrap();
    env.ok_in(&b, &["checkout", "HEAD", "--", "clip.mov"]);
    assert_eq!(sha256_file(&b.join("clip.mov")), want);
    let fsck = env.ok_in(&b, &["fsck"]);
    assert!(fsck.contains(": 0 problems"), "{fsck}");
}

/// The first encrypted repository (`tests/fixtures/encrypted-bb90b01/`,
/// FORMAT.md §13, made by make.sh there): every later build opens it with
/// its passphrase, finds it sound, restores both versions byte-exactly, and
/// refuses a wrong passphrase.
#[test]
fn encrypted_repository_written_by_the_first_encrypting_build_reads_and_restores() {
    if test_store().is_some() {
        return;
    }
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encrypted-bb90b01");
    let env = Env::empty();
    let repo = env.root().join("repo");
    let st = std::process::Command::new("cp")
        .args(["-a"])
        .arg(fixture.join("repo"))
        .arg(&repo)
        .status()
        .unwrap();
    assert!(st.success());
    let text = fs::read_to_string(fixture.join("EXPECTED.txt")).unwrap();
    let versions = expected(&text);
    assert_eq!(versions.len(), 2);
    let pass = "golden fixture passphrase";
    let run = |args: &[&str]| {
        let out = env
            .cmd_in(&repo, args)
            .env("MEDIAGIT_PASSPHRASE", pass)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let wrong = env.cmd_in(&repo, &["log"]).output().unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    let fsck = run(&["fsck"]);
    assert!(fsck.contains(": 0 problems"), "{fsck}");
    let branches = run(&["branch"]);
    assert!(
        branches.contains("old-idea") && branches.contains("main"),
        "{branches}"
    );
    let log = run(&["log", "--oneline"]);
    for (_, id, _) in &versions {
        assert!(log.contains(id.as_str()), "{log}");
    }
    for (name, id, files) in &versions {
        run(&["verify", id]);
        run(&["checkout", "--force", id]);
        for (mode, sha, path, target) in files {
            let p = repo.join(path);
            match target {
                Some(t) => assert_eq!(fs::read_link(&p).unwrap().to_str().unwrap(), t.as_str()),
                None => {
                    assert_eq!(sha256_file(&p), *sha, "{name} {path}");
                    use std::os::unix::fs::PermissionsExt;
                    let exec = fs::metadata(&p).unwrap().permissions().mode() & 0o111 != 0;
                    assert_eq!(exec, mode == "100755", "{name} {path}");
                }
            }
        }
    }
    // And it keeps working: a commit, gc, fsck.
    run(&["switch", "main"]);
    fs::write(repo.join("after.txt"), b"written by this build\n").unwrap();
    run(&["add", "-A"]);
    run(&["commit", "-m", "after"]);
    run(&["gc", "--prune=now"]);
    let fsck = run(&["fsck"]);
    assert!(fsck.contains(": 0 problems"), "{fsck}");
}

/// The first backup target (`tests/fixtures/backup-v1/`, FORMAT.md §15,
/// made by make.sh there): every later build lists its records, verifies
/// it reading all data, and restores every snapshot of both repositories
/// (one encrypted) byte-exactly.
#[test]
fn backup_target_written_by_the_first_backup_build_lists_verifies_and_restores() {
    if test_store().is_some() {
        return;
    }
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backup-v1");
    let env = Env::empty();
    let target = env.root().join("target");
    let st = std::process::Command::new("cp")
        .args(["-a"])
        .arg(fixture.join("backups"))
        .arg(&target)
        .status()
        .unwrap();
    assert!(st.success());
    let t = target.to_str().unwrap();
    let pass = "golden fixture passphrase";
    let run = |args: &[&str]| {
        let out = env
            .cmd_in(env.root(), args)
            .env("MEDIAGIT_PASSPHRASE", pass)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // (repository, record id, [(sha256, path)])
    type Snapshot = (String, String, Vec<(String, String)>);
    let mut snaps: Vec<Snapshot> = Vec::new();
    for line in fs::read_to_string(fixture.join("EXPECTED.txt"))
        .unwrap()
        .lines()
    {
        if let Some(rest) = line.strip_prefix("snapshot ") {
            let (repo, id) = rest.split_once(' ').unwrap();
            snaps.push((repo.into(), id.into(), Vec::new()));
        } else if let Some((h, p)) = line.trim().split_once(' ') {
            snaps.last_mut().unwrap().2.push((h.into(), p.into()));
        }
    }
    assert_eq!(snaps.len(), 4);
    let list = run(&["backup", "list", t]);
    for (_, id, _) in &snaps {
        assert!(list.contains(id.as_str()), "{list}");
    }
    let verify = run(&["backup", "verify", t, "--read-data"]);
    assert!(
        verify.contains("2 repositories, 4 records") && verify.contains("no problems"),
        "{verify}"
    );
    for (i, (repo, id, files)) in snaps.iter().enumerate() {
        let dest = env.root().join(format!("r{i}"));
        run(&[
            "backup",
            "restore",
            "--snapshot",
            id,
            "--target",
            t,
            "--repository",
            repo,
            dest.to_str().unwrap(),
        ]);
        let mut got = tree_hashes(&dest);
        got.retain(|k, _| !k.starts_with(".mediagit"));
        let want: std::collections::BTreeMap<String, String> =
            files.iter().map(|(h, p)| (p.clone(), h.clone())).collect();
        assert_eq!(got, want, "{repo} {id}");
        let branches = String::from_utf8_lossy(
            &env.cmd_in(&dest, &["branch"])
                .env("MEDIAGIT_PASSPHRASE", pass)
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned();
        // The branch `idea` was made after the first snapshot of each.
        assert!(branches.contains("main"), "{branches}");
        assert_eq!(branches.contains("idea"), i % 2 == 1, "{branches}");
    }
    // The encrypted repository's backup refuses a wrong passphrase.
    let out = env
        .cmd_in(env.root(), &["backup", "list", t, "--repository", "sealed"])
        .env("MEDIAGIT_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
