//! The real binary against real object-store servers: moto (S3), Azurite
//! (Azure Blob) and gcp-storage-emulator (GCS), started by
//! `scripts/test-servers.sh` (see `crates/mediagit-storage/tests/object_stores.rs`
//! for the variables). Round trips of real media: init --storage, add,
//! commit, log, checkout, clone from the bucket, fsck, verify, gc; then the
//! bad input a user can give: refused credentials, a missing bucket, a dead
//! endpoint, a prefix holding something else.
mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;

struct Server {
    scheme: &'static str,
    endpoint: String,
}

fn server(var: &str, scheme: &'static str) -> Option<Server> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(Server {
            scheme,
            endpoint: v,
        }),
        _ => {
            assert!(
                std::env::var("MEDIAGIT_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "{var} is not set but MEDIAGIT_REQUIRE_SERVERS=1"
            );
            eprintln!("{var} not set: skipping (run through scripts/test.sh)");
            None
        }
    }
}

fn unique(tag: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{n}", std::process::id())
}

impl Server {
    fn url(&self, prefix: &str) -> String {
        format!("{}://mediagit-test/{prefix}", self.scheme)
    }
}

/// Init, add real media, commit twice, log, check out both versions, clone
/// from the bucket into a second working tree, then fsck, verify, gc, stats;
/// `encrypted`: all of it on an encrypted repository (FORMAT.md §13).
fn round_trip(s: &Server, encrypted: bool) {
    let env = Env::empty();
    let url = s.url(&unique("roundtrip"));
    let mut init = vec!["init", "repo", "--storage", &url, "--endpoint", &s.endpoint];
    if encrypted {
        init.extend(["--encrypt", "--kdf-memory", "19", "--kdf-passes", "2"]);
    }
    let out = env.ok(&init);
    assert!(out.contains(&url), "{out}");
    assert_eq!(out.contains("encrypted"), encrypted, "{out}");
    let cfg = fs::read_to_string(env.repo().join(".mediagit/config.toml")).unwrap();
    assert!(cfg.contains("[storage]"), "{cfg}");
    for secret in ["AWS_SECRET", "AccountKey", "Eby8vdM02"] {
        assert!(!cfg.contains(secret), "credentials in config.toml: {cfg}");
    }
    // Objects and refs are not on local disk.
    assert!(!env.repo().join(".mediagit/packs").exists());

    copy_media(&env.repo());
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "v1"]);
    let v1 = tree_hashes(&env.repo());
    let photo = v1
        .keys()
        .find(|k| k.ends_with(".jpg"))
        .expect("a JPEG in the fixtures")
        .clone();
    write_random(&env.repo().join(&photo), 3_000_000, 7);
    fs::create_dir_all(env.repo().join("new")).unwrap();
    write_random(&env.repo().join("new/big.bin"), 20_000_000, 8);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "v2"]);
    let v2 = tree_hashes(&env.repo());
    assert_ne!(v1, v2);

    let log = env.ok(&["log", "--oneline"]);
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.contains("v1") && log.contains("v2"), "{log}");

    env.ok(&["checkout", "HEAD~1"]);
    assert_eq!(tree_hashes(&env.repo()), v1, "v1 restored from {url}");
    env.ok(&["switch", "main"]);
    assert_eq!(tree_hashes(&env.repo()), v2);

    // A second working tree of the same repository, from the bucket alone.
    env.ok_in(
        env.root(),
        &["clone", &url, "copy", "--endpoint", &s.endpoint],
    );
    let copy = env.root().join("copy");
    assert_eq!(tree_hashes(&copy), v2, "clone from {url} is byte-identical");
    assert_eq!(env.ok_in(&copy, &["log", "--oneline"]), log);

    env.ok_in(&copy, &["fsck"]);
    env.ok_in(&copy, &["verify", "HEAD~1"]);
    let gc = env.ok(&["gc", "--prune=now"]);
    assert!(!gc.is_empty());
    env.ok(&["checkout", "HEAD~1"]);
    assert_eq!(tree_hashes(&env.repo()), v1, "gc kept v1");
    let stats = env.ok(&["stats"]);
    assert!(stats.contains("commits"), "{stats}");
}

#[test]
fn s3_round_trip() {
    if let Some(s) = server("MEDIAGIT_TEST_S3", "s3") {
        round_trip(&s, false);
    }
}

#[test]
fn s3_encrypted_round_trip() {
    if let Some(s) = server("MEDIAGIT_TEST_S3", "s3") {
        round_trip(&s, true);
    }
}

#[test]
fn azure_round_trip() {
    if let Some(s) = server("MEDIAGIT_TEST_AZURE", "az") {
        round_trip(&s, false);
    }
}

#[test]
fn azure_encrypted_round_trip() {
    if let Some(s) = server("MEDIAGIT_TEST_AZURE", "az") {
        round_trip(&s, true);
    }
}

#[test]
fn gcs_round_trip() {
    if let Some(s) = server("MEDIAGIT_TEST_GCS", "gs") {
        round_trip(&s, false);
    }
}

#[test]
fn gcs_encrypted_round_trip() {
    if let Some(s) = server("MEDIAGIT_TEST_GCS", "gs") {
        round_trip(&s, true);
    }
}

/// Two working trees of one bucket: a branch committed in one appears in the
/// other, with its content.
#[test]
fn two_clients_share_one_bucket() {
    let Some(s) = server("MEDIAGIT_TEST_S3", "s3") else {
        return;
    };
    let env = Env::empty();
    let url = s.url(&unique("shared"));
    env.ok(&["init", "repo", "--storage", &url, "--endpoint", &s.endpoint]);
    env.write("a.txt", b"first\n");
    env.ok(&["add", "a.txt"]);
    env.ok(&["commit", "-m", "first"]);
    let b = env.root().join("b");
    env.ok_in(env.root(), &["clone", &url, "b", "--endpoint", &s.endpoint]);
    let run_b = |args: &[&str]| env.ok_in(&b, args);
    run_b(&["switch", "-c", "feature"]);
    write_random(&b.join("clip.bin"), 5_000_000, 3);
    let clip = sha256_file(&b.join("clip.bin"));
    run_b(&["add", "clip.bin"]);
    run_b(&["commit", "-m", "from b"]);
    let branches = env.ok(&["branch"]);
    assert!(branches.contains("feature"), "{branches}");
    env.ok(&["switch", "feature"]);
    assert_eq!(sha256_file(&env.repo().join("clip.bin")), clip);

    // Both on main: b commits; a's working tree is now behind the store.
    env.ok(&["switch", "main"]);
    run_b(&["switch", "main"]);
    fs::write(b.join("a.txt"), b"edited in b\n").unwrap();
    run_b(&["commit", "-a", "-m", "b edits a.txt"]);
    let st = env.ok(&["status"]);
    assert!(st.contains("is now at"), "{st}");
    // a edits another file; its commit must not undo b's edit.
    env.write("other.txt", b"from a\n");
    env.ok(&["add", "other.txt"]);
    let err = env.fail_with(3, &["commit", "-m", "a adds other.txt"]);
    assert!(err.contains("refs/heads/main"), "{err}");
    assert!(err.contains("mediagit switch main"), "{err}");
    env.ok(&["switch", "main"]);
    assert_eq!(env.read("a.txt"), b"edited in b\n", "b's edit arrived");
    assert_eq!(env.read("other.txt"), b"from a\n", "a's staged file kept");
    env.ok(&["commit", "-m", "a adds other.txt"]);
    run_b(&["switch", "main"]);
    assert_eq!(fs::read(b.join("other.txt")).unwrap(), b"from a\n");
    assert_eq!(fs::read(b.join("a.txt")).unwrap(), b"edited in b\n");
    let log = run_b(&["log", "--oneline"]);
    assert!(
        log.contains("b edits a.txt") && log.contains("a adds other.txt"),
        "{log}"
    );
}

/// Two working trees of a store that has no commit yet: the second first
/// commit must not replace the first one's (both start "unborn").
#[test]
fn first_commits_from_two_clients_do_not_overwrite() {
    let Some(s) = server("MEDIAGIT_TEST_S3", "s3") else {
        return;
    };
    let env = Env::empty();
    let url = s.url(&unique("unborn"));
    env.ok(&["init", "repo", "--storage", &url, "--endpoint", &s.endpoint]);
    env.ok_in(env.root(), &["clone", &url, "b", "--endpoint", &s.endpoint]);
    let b = env.root().join("b");
    env.write("from-a.txt", b"a\n");
    env.ok(&["add", "from-a.txt"]);
    env.ok(&["commit", "-m", "a first"]);
    fs::write(b.join("from-b.txt"), b"b\n").unwrap();
    env.ok_in(&b, &["add", "from-b.txt"]);
    let out = env
        .cmd_in(&b, &["commit", "-m", "b first"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "b's commit must be refused (exit 3: the branch moved)"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mediagit switch main"), "{err}");
    env.ok_in(&b, &["switch", "main"]);
    assert_eq!(fs::read(b.join("from-a.txt")).unwrap(), b"a\n");
    env.ok_in(&b, &["commit", "-m", "b first"]);
    env.ok(&["switch", "main"]);
    assert_eq!(env.read("from-b.txt"), b"b\n");
    assert_eq!(env.read("from-a.txt"), b"a\n");
}

/// `clone PATH DEST --storage URL` moves a local repository into a bucket.
#[test]
fn clone_local_repository_into_a_bucket() {
    let Some(s) = server("MEDIAGIT_TEST_S3", "s3") else {
        return;
    };
    let env = Env::empty();
    env.ok(&["init", "repo"]);
    copy_media(&env.repo());
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "local"]);
    let want = tree_hashes(&env.repo());
    let url = s.url(&unique("moved"));
    env.ok_in(
        env.root(),
        &[
            "clone",
            "repo",
            "up",
            "--storage",
            &url,
            "--endpoint",
            &s.endpoint,
        ],
    );
    assert!(
        !env.root().join("up/.mediagit/packs").exists(),
        "packs went to the bucket"
    );
    env.ok_in(
        env.root(),
        &["clone", &url, "down", "--endpoint", &s.endpoint],
    );
    assert_eq!(tree_hashes(&env.root().join("down")), want);
}

fn expect_failure(env: &Env, args: &[&str], must_contain: &[&str]) -> String {
    let t = Instant::now();
    let out = env.cmd_in(env.root(), args).output().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "{args:?} took {:?}",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{args:?} must fail with exit 1");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    for m in must_contain {
        assert!(err.contains(m), "{args:?}: {m:?} not in {err}");
    }
    assert!(err.contains("hint:"), "{err}");
    err
}

#[test]
fn bad_stores_are_named_and_nothing_is_left() {
    let Some(s) = server("MEDIAGIT_TEST_S3", "s3") else {
        return;
    };
    let env = Env::empty();
    // A bucket that does not exist.
    expect_failure(
        &env,
        &[
            "init",
            "w",
            "--storage",
            "s3://no-such-bucket/p",
            "--endpoint",
            &s.endpoint,
        ],
        &["no-such-bucket", "does not exist", "create the bucket"],
    );
    assert!(!env.root().join("w").exists(), "nothing created locally");
    // An endpoint nothing answers on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    expect_failure(
        &env,
        &[
            "init",
            "w",
            "--storage",
            "s3://media/p",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
        ],
        &["s3 bucket \"media\"", "did not answer"],
    );
    assert!(!env.root().join("w").exists());
    expect_failure(
        &env,
        &[
            "clone",
            "s3://media/p",
            "w",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
        ],
        &["s3 bucket \"media\""],
    );
    assert!(
        !env.root().join("w").exists(),
        "a failed clone leaves nothing"
    );

    // A prefix that holds something other than a repository.
    let url = s.url(&unique("foreign"));
    env.ok(&["init", "repo", "--storage", &url, "--endpoint", &s.endpoint]);
    env.write("x.txt", b"x\n");
    env.ok(&["add", "x.txt"]);
    env.ok(&["commit", "-m", "x"]);
    let packs_url = format!("{url}/packs");
    expect_failure(
        &env,
        &["clone", &packs_url, "w", "--endpoint", &s.endpoint],
        &["holds no MediaGit repository", "prefix"],
    );
    assert!(!env.root().join("w").exists());
    expect_failure(
        &env,
        &[
            "init",
            "w",
            "--storage",
            &packs_url,
            "--endpoint",
            &s.endpoint,
        ],
        &["is not empty"],
    );
    expect_failure(
        &env,
        &["init", "w", "--storage", &url, "--endpoint", &s.endpoint],
        &["already holds a MediaGit repository", "mediagit clone"],
    );
    assert!(!env.root().join("w").exists());
    // A bad URL names the option.
    expect_failure(
        &env,
        &["init", "w", "--storage", "ftp://x/y"],
        &["ftp://x/y", "unknown scheme"],
    );
}

#[test]
fn missing_credentials_are_named() {
    let Some(s) = server("MEDIAGIT_TEST_S3", "s3") else {
        return;
    };
    let env = Env::empty();
    let url = s.url(&unique("nocreds"));
    env.ok(&["init", "repo", "--storage", &url, "--endpoint", &s.endpoint]);
    let mut c = env.cmd(&["status"]);
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", env.root());
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s3 bucket \"mediagit-test\""), "{err}");
    assert!(err.contains("no credentials found"), "{err}");
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
}

#[test]
fn refused_credentials_are_named() {
    let Some(s) = server("MEDIAGIT_TEST_AZURE", "az") else {
        return;
    };
    let env = Env::empty();
    let mut c = env.cmd_in(
        env.root(),
        &[
            "init",
            "w",
            "--storage",
            &s.url("creds"),
            "--endpoint",
            &s.endpoint,
        ],
    );
    c.env(
        "AZURE_STORAGE_KEY",
        "Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFyYmF6Zm9vYmFy",
    );
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("azure container \"mediagit-test\""), "{err}");
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!env.root().join("w").exists());
}

/// Two working trees on one S3 prefix: b reuses objects of a pack only a
/// deleted branch referenced; a's gc (whose cut falls between that pack
/// and b's add) must keep them, and b's commit must restore exactly. The
/// grace period is shortened to seconds (`--prune`, and
/// `MEDIAGIT_FRESHEN_AFTER` for b), as moto cannot age objects.
#[test]
fn s3_gc_keeps_objects_another_client_reused() {
    let Some(s) = server("MEDIAGIT_TEST_S3", "s3") else {
        return;
    };
    let env = Env::empty();
    let url = s.url(&unique("gcrace"));
    env.ok(&["init", "a", "--storage", &url, "--endpoint", &s.endpoint]);
    let a = env.root().join("a");
    fs::write(a.join("readme.txt"), b"shared\n").unwrap();
    env.ok_in(&a, &["add", "-A"]);
    env.ok_in(&a, &["commit", "-m", "first"]);
    env.ok_in(env.root(), &["clone", &url, "b", "--endpoint", &s.endpoint]);
    let b = env.root().join("b");
    env.ok_in(&b, &["switch", "-c", "idea"]);
    write_random(&b.join("clip.mov"), 3_000_000, 21);
    let want = sha256_file(&b.join("clip.mov"));
    let keep = fs::read(b.join("clip.mov")).unwrap();
    env.ok_in(&b, &["add", "clip.mov"]);
    env.ok_in(&b, &["commit", "-m", "idea"]);
    env.ok_in(&b, &["switch", "main"]);
    env.ok_in(&b, &["branch", "delete", "-D", "idea"]);
    std::thread::sleep(Duration::from_secs(4));
    fs::write(b.join("clip.mov"), keep).unwrap();
    let out = env
        .cmd_in(&b, &["add", "clip.mov"])
        .env("MEDIAGIT_FRESHEN_AFTER", "1 second")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // a's cut is 2 s ago: after the idea pack was written, before b's add.
    let gc = env.ok_in(&a, &["gc", "--prune=2 seconds ago"]);
    assert!(gc.contains("packs"), "{gc}");
    env.ok_in(&b, &["commit", "-m", "clip again"]);
    fs::remove_file(b.join("clip.mov")).unwrap();
    env.ok_in(&b, &["checkout", "HEAD", "--", "clip.mov"]);
    assert_eq!(sha256_file(&b.join("clip.mov")), want);
    env.ok_in(&b, &["verify"]);
}
