//! Encrypted repositories (`init --encrypt`, `mediagit key`, FORMAT.md §13)
//! through the real binary: real media round trips; nothing the store holds
//! shows content, names, branch names or plain hashes; wrong, missing and
//! tampered keys are refused with nothing changed.
mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Cheap key files: tests run many commands, each one unlocks.
const CHEAP: [&str; 4] = ["--kdf-memory", "19", "--kdf-passes", "2"];

/// `mediagit ARGS` in `repo/` opened with `pass`.
fn with_pass(env: &Env, pass: &str, args: &[&str]) -> std::process::Output {
    env.cmd(args)
        .env("MEDIAGIT_PASSPHRASE", pass)
        .output()
        .unwrap()
}

/// `mediagit key ACTION [EXTRA...]` (add or passwd, cheap key files) opened
/// with `pass`, the new passphrase `new`; asserts it succeeds.
fn new_key(env: &Env, action: &str, extra: &[&str], pass: &str, new: &str) {
    let mut args = vec!["key", action];
    args.extend(extra);
    args.extend(CHEAP);
    let o = env
        .cmd(&args)
        .env("MEDIAGIT_PASSPHRASE", pass)
        .env("MEDIAGIT_NEW_PASSPHRASE", new)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len() && hay.windows(needle.len()).any(|w| w == needle)
}

/// An encrypted repository in `repo/` whose store is the directory
/// `store/` (a filesystem store: everything a bucket would hold, as files).
fn encrypted_in_store(env: &Env) -> PathBuf {
    let store = env.root().join("store");
    let url = format!("file://{}", store.display());
    let mut args = vec![
        "init",
        "repo",
        "--storage",
        &url,
        "--encrypt",
        "-b",
        "client-nda-branch",
    ];
    args.extend(CHEAP);
    let out = env.ok(&args);
    assert!(out.contains("encrypted"), "{out}");
    store
}

#[test]
fn media_round_trips_and_the_store_shows_nothing() {
    let env = Env::empty();
    let store = encrypted_in_store(&env);
    let repo = env.repo();
    copy_media(&repo.join("Client Project"));
    write_random(&repo.join("Client Project/raw-footage.bin"), 5 << 20, 11);
    env.write(
        "notes-secret-plan.txt",
        b"the plan under NDA: launch in March\n",
    );
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "confidential first cut"]);
    env.ok(&["tag", "v1-release-candidate"]);
    let before = tree_hashes(&repo);

    // A second working tree of the store checks out the same bytes.
    let url = format!("file://{}", store.display());
    env.ok_in(env.root(), &["clone", &url, "second"]);
    let after = tree_hashes(&env.root().join("second"));
    assert_eq!(before, after);
    // And a copy (clone of a path) shares the key.
    env.ok_in(env.root(), &["clone", "repo", "copy"]);
    assert_eq!(before, tree_hashes(&env.root().join("copy")));
    let log = env.ok_in(
        &env.root().join("copy"),
        &["--no-pager", "log", "--oneline"],
    );
    assert!(log.contains("confidential first cut"), "{log}");

    // Nothing in the store: no content, path, branch or tag name, message,
    // author, or plain SHA-256 of any file (hex or raw).
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("branch".into(), b"client-nda-branch".to_vec()),
        ("tag".into(), b"v1-release-candidate".to_vec()),
        ("directory".into(), b"Client Project".to_vec()),
        ("file name".into(), b"raw-footage".to_vec()),
        ("file name".into(), b"notes-secret-plan".to_vec()),
        ("content".into(), b"the plan under NDA".to_vec()),
        ("message".into(), b"confidential first cut".to_vec()),
        ("author".into(), b"test@example.com".to_vec()),
        ("passphrase".into(), TEST_PASSPHRASE.as_bytes().to_vec()),
    ];
    for (path, hash) in &before {
        needles.push((format!("hex id of {path}"), hash.as_bytes().to_vec()));
        needles.push((format!("raw id of {path}"), hex::decode(hash).unwrap()));
    }
    // A slice of real content (the video's bytes).
    let clip = std::fs::read(repo.join("Client Project/clip.mp4")).unwrap();
    needles.push((
        "video bytes".into(),
        clip[clip.len() / 2..clip.len() / 2 + 32].to_vec(),
    ));
    let files = all_files(&store);
    assert!(files.iter().any(|f| f.to_string_lossy().contains("/keys/")));
    for f in &files {
        let name = f
            .strip_prefix(&store)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(f).unwrap();
        for (what, n) in &needles {
            assert!(!contains(name.as_bytes(), n), "{what} in the key {name}");
            if name == "config.toml" && what == "branch" {
                continue;
            }
            assert!(!contains(&bytes, n), "{what} found in {name}");
        }
    }
    // fsck and verify work through the keys.
    env.ok(&["fsck"]);
    env.ok(&["verify"]);
}

#[test]
fn a_wrong_or_missing_passphrase_changes_nothing() {
    let env = Env::empty();
    encrypted_in_store(&env);
    env.write("a.txt", b"one");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.write("b.txt", b"two");
    let state = env.repo_state();
    let o = with_pass(&env, "not it", &["add", "-A"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains("not it"), "the passphrase was printed: {err}");
    // No passphrase and no terminal: says how to give one.
    let o = env
        .cmd(&["status", "--json"])
        .env_remove("MEDIAGIT_PASSPHRASE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("\"code\":\"needs-passphrase\"") && err.contains("MEDIAGIT_PASSPHRASE"),
        "{err}"
    );
    assert_eq!(state, env.repo_state());
    // From a file (MEDIAGIT_PASSPHRASE_FILE, a trailing newline ignored).
    let f = env.root().join("pass.txt");
    std::fs::write(&f, format!("{TEST_PASSPHRASE}\n")).unwrap();
    let o = env
        .cmd(&["status", "--porcelain"])
        .env_remove("MEDIAGIT_PASSPHRASE")
        .env("MEDIAGIT_PASSPHRASE_FILE", &f)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "?? b.txt\n");
}

#[test]
fn keys_can_be_added_listed_changed_and_removed_but_never_the_last() {
    let env = Env::empty();
    encrypted_in_store(&env);
    env.write("a.txt", b"one");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    let list = env.ok(&["key", "list"]);
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(list.starts_with('*'), "{list}");
    let first = list[2..18].to_string();

    new_key(
        &env,
        "add",
        &["--label", "backup key"],
        TEST_PASSPHRASE,
        "second one",
    );
    let list = env.ok(&["key", "list"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("backup key"), "{list}");
    // The second passphrase opens it too.
    let o = with_pass(&env, "second one", &["log", "--oneline"]);
    assert!(o.status.success());

    // Remove the first (by an 8-digit prefix), with the second.
    let o = with_pass(&env, "second one", &["key", "remove", &first[..8]]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = env.cmd(&["status"]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "the removed passphrase still opens it"
    );
    // The last one is never removed.
    let list = with_pass(&env, "second one", &["key", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = v["keys"][0]["id"].as_str().unwrap().to_string();
    let o = with_pass(&env, "second one", &["key", "remove", &id]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("opened with") && err.contains("key add"),
        "{err}"
    );

    // passwd: the one used is replaced.
    new_key(&env, "passwd", &[], "second one", "third one");
    let o = with_pass(&env, "second one", &["status"]);
    assert_eq!(o.status.code(), Some(1));
    let o = with_pass(&env, "third one", &["log", "--oneline"]);
    assert!(o.status.success());
}

#[test]
fn tampered_key_files_refs_and_settings_are_refused() {
    let env = Env::empty();
    let store = encrypted_in_store(&env);
    // One ref only (the branch): with media records the sealed names of
    // two refs sort at random, and the test below damages "the" ref.
    env.ok(&["config", "media.records", "false"]);
    env.write("a.txt", b"one");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    let key = all_files(&store.join("keys")).pop().unwrap();
    let orig = std::fs::read(&key).unwrap();
    // Memory cost lowered to 8 MiB: refused before Argon2 runs.
    let mut weak = orig.clone();
    weak[12..16].copy_from_slice(&(8 * 1024u32).to_le_bytes());
    std::fs::write(&key, &weak).unwrap();
    let err = env.fail(&["status"]);
    assert!(err.contains("refused"), "{err}");
    std::fs::write(&key, &orig).unwrap();
    env.ok(&["status"]);

    // A ref value with one byte flipped: named, never taken.
    let r = all_files(&store.join("refs")).pop().unwrap();
    let orig = std::fs::read(&r).unwrap();
    let mut bad = orig.clone();
    bad[20] ^= 1;
    std::fs::write(&r, &bad).unwrap();
    let err = env.fail(&["branch"]);
    assert!(err.contains("does not authenticate"), "{err}");
    let fsck = env.cmd(&["fsck"]).output().unwrap();
    assert_eq!(fsck.status.code(), Some(4));
    // Restored from the reflog by fsck --repair.
    env.ok(&["fsck", "--repair"]);
    let branches = env.ok(&["branch"]);
    assert!(branches.contains("client-nda-branch"), "{branches}");
    assert_ne!(std::fs::read(&r).unwrap(), bad);

    // The store's settings stripped of encryption: refused, not used to
    // write in the clear.
    let cfg = store.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let plain = text
        .replace("required_features = [\"encryption\"]\n", "")
        .replace("chunk_id = \"hmac-sha256\"", "chunk_id = \"sha256\"");
    assert_ne!(plain, text);
    std::fs::write(&cfg, &plain).unwrap();
    env.write("b.txt", b"two");
    let err = env.fail(&["add", "-A"]);
    assert!(err.contains("refused"), "{err}");
    std::fs::write(&cfg, &text).unwrap();
    env.ok(&["add", "-A"]);
    // Smaller chunks in the store's settings (sharper chunk-length
    // fingerprints): refused too.
    let small = text
        .replace("min_size = 131072", "min_size = 64")
        .replace("avg_size = 524288", "avg_size = 256")
        .replace("max_size = 2097152", "max_size = 1024");
    assert_ne!(small, text);
    std::fs::write(&cfg, &small).unwrap();
    let err = env.fail(&["status"]);
    assert!(err.contains("chunking") && err.contains("refused"), "{err}");
    std::fs::write(&cfg, &text).unwrap();
    env.ok(&["status"]);
}

#[test]
fn init_options_need_encrypt_and_a_passphrase() {
    let env = Env::empty();
    let o = env
        .cmd(&["init", "r", "--kdf-memory", "64"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!env.root().join("r").exists());
    let o = env
        .cmd(&["init", "r", "--encrypt", "--kdf-memory", "8"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = env
        .cmd(&["init", "r", "--encrypt"])
        .env_remove("MEDIAGIT_PASSPHRASE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--passphrase-file"));
    assert!(!env.root().join("r").exists());
    // From a file.
    let f = env.root().join("p");
    std::fs::write(&f, "from a file\n").unwrap();
    let f = f.display().to_string();
    let mut args = vec!["init", "r", "--encrypt", "--passphrase-file", f.as_str()];
    args.extend(CHEAP);
    env.ok(&args);
    let o = env
        .cmd_in(&env.root().join("r"), &["status"])
        .env("MEDIAGIT_PASSPHRASE", "from a file")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// On a terminal the passphrase is asked for, with echo off (it never
/// reaches the screen), and a new one is asked twice.
#[test]
fn the_passphrase_is_asked_on_a_terminal_without_echo() {
    use std::io::Write;
    let env = Env::empty();
    let bin = assert_cmd::cargo::cargo_bin("mediagit");
    let on_tty = |cmd: String, input: &str| {
        let mut child = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(env.root())
            .env("HOME", env.root().join("home"))
            .env("MEDIAGIT_AUTHOR_NAME", "T")
            .env("MEDIAGIT_AUTHOR_EMAIL", "t@example.com")
            .env_remove("MEDIAGIT_PASSPHRASE")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("script (bsdutils)");
        let mut stdin = child.stdin.take().unwrap();
        for line in input.lines() {
            // One line at a time, as typed: each prompt reads its own.
            std::thread::sleep(std::time::Duration::from_millis(300));
            writeln!(stdin, "{line}").unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, screen) = on_tty(
        format!(
            "{} init r --encrypt --kdf-memory 19 --kdf-passes 2",
            bin.display()
        ),
        "typed secret\ntyped secret\n",
    );
    assert!(ok, "{screen}");
    assert!(
        screen.contains("New passphrase:") && screen.contains("Repeat"),
        "{screen}"
    );
    assert!(
        !screen.contains("typed secret"),
        "the passphrase was echoed: {screen}"
    );
    let (ok, screen) = on_tty(
        format!("{} -C r status --porcelain", bin.display()),
        "typed secret\n",
    );
    assert!(ok, "{screen}");
    assert!(screen.contains("Passphrase for"), "{screen}");
    assert!(!screen.contains("typed secret"), "{screen}");
    // Two different entries: refused, nothing made.
    let (ok, screen) = on_tty(format!("{} init r2 --encrypt", bin.display()), "one\ntwo\n");
    assert!(!ok, "{screen}");
    assert!(screen.contains("differ"), "{screen}");
    assert!(!env.root().join("r2").exists());
}

/// From a hostile review: a key file of another repository with the same
/// passphrase (copied or planted, sorting first) is passed over; the key
/// the command was opened with is never removed; a held key lock stops key
/// changes, a stale one is taken over.
#[test]
fn foreign_key_files_and_key_races_cannot_lock_anyone_out() {
    let env = Env::empty();
    let store = encrypted_in_store(&env);
    env.write("a.txt", b"one");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    // Another repository with the same passphrase; its key file copied in
    // under a name that sorts first.
    let mut other = vec!["init", "other", "--encrypt"];
    other.extend(CHEAP);
    env.ok_in(env.root(), &other);
    let theirs = all_files(&env.root().join("other/.mediagit/keys"))
        .pop()
        .unwrap();
    let bytes = std::fs::read(&theirs).unwrap();
    let name = theirs.file_name().unwrap().to_owned();
    std::fs::write(store.join("keys").join(&name), &bytes).unwrap();
    // Opened with this repository's key whatever the order (the hint of the
    // last key used is removed too, so the foreign one is tried first when
    // it sorts first).
    let _ = std::fs::remove_file(env.repo().join(".mediagit/last-key"));
    let log = env.ok(&["log", "--oneline"]);
    assert!(log.contains("one"), "{log}");
    // Removing the key this command was opened with: refused.
    let current = current_key(&env);
    let err = env.fail(&["key", "remove", &current]);
    assert!(err.contains("opened with"), "{err}");
    // A lock held by another client: refused; a stale one: taken over.
    let lock = store.join("locks/keys");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::write(&lock, format!("1 {now}\n")).unwrap();
    let foreign = name.to_string_lossy().into_owned();
    let err = env.fail(&["key", "remove", &foreign]);
    assert!(err.contains("another client"), "{err}");
    std::fs::write(&lock, format!("1 {}\n", now - 3600)).unwrap();
    env.ok(&["key", "remove", &foreign]);
    assert!(!lock.exists(), "the lock is released");
    assert!(!store.join("keys").join(&name).exists());
    env.ok(&["status"]);
}

/// A bare encrypted repository is used by its path (clone, branch, log),
/// and a passphrase file that never ends is refused, not read forever.
#[test]
fn bare_encrypted_repositories_and_endless_passphrase_files() {
    let env = Env::empty();
    let mut init = vec!["init", "--bare", "bare.mg", "--encrypt"];
    init.extend(CHEAP);
    env.ok_in(env.root(), &init);
    env.ok_in(env.root(), &["clone", "bare.mg", "w"]);
    let w = env.root().join("w");
    std::fs::write(w.join("f.txt"), b"x").unwrap();
    env.ok_in(&w, &["add", "-A"]);
    env.ok_in(&w, &["commit", "-m", "first"]);
    let bare = env.root().join("bare.mg");
    env.ok_in(&bare, &["branch"]);
    let o = env
        .cmd_in(&w, &["status"])
        .env_remove("MEDIAGIT_PASSPHRASE")
        .env("MEDIAGIT_PASSPHRASE_FILE", "/dev/zero")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("more than"));
}

/// The completion helper (run on TAB) never asks for a passphrase: it
/// completes nothing in an encrypted repository it cannot open, and leaves
/// the terminal as it found it.
#[test]
fn completion_never_prompts() {
    let env = Env::empty();
    encrypted_in_store(&env);
    let bin = assert_cmd::cargo::cargo_bin("mediagit");
    let cmd = format!(
        "{} -C {} __complete-refs; stty -a | grep -o -- '-\\?echo ' | head -1",
        bin.display(),
        env.repo().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("MEDIAGIT_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(!screen.contains("Passphrase"), "{screen}");
    assert!(
        screen.contains("echo") && !screen.contains("-echo"),
        "{screen}"
    );
}

/// A sealed value under refs/ that nobody can open (planted, or of a branch
/// no working tree knows) blocks every listing of refs; `fsck` reports it
/// and `fsck --repair` moves it aside. A damaged store HEAD is reported and
/// rewritten from the working tree's branch, so clones work again.
#[test]
fn undecryptable_refs_and_store_head_are_reported_and_repaired() {
    let env = Env::empty();
    let store = encrypted_in_store(&env);
    env.write("a.txt", b"one");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    let junk = store.join("refs").join("0".repeat(64));
    std::fs::write(&junk, vec![7u8; 109]).unwrap();
    env.fail(&["branch"]);
    let head = store.join("HEAD");
    let mut h = std::fs::read(&head).unwrap();
    let n = h.len();
    h[n - 3] ^= 1;
    std::fs::write(&head, &h).unwrap();
    let o = env.cmd(&["fsck"]).output().unwrap();
    assert_eq!(o.status.code(), Some(4));
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("HEAD in"), "{out}");
    let repaired = env.ok(&["fsck", "--repair"]);
    assert!(
        repaired.contains("moved the ref value") && repaired.contains("rewrote the store's HEAD"),
        "{repaired}"
    );
    assert!(!junk.exists());
    let branches = env.ok(&["branch"]);
    assert!(branches.contains("client-nda-branch"), "{branches}");
    let url = format!("file://{}", store.display());
    env.ok_in(env.root(), &["clone", &url, "again"]);
    assert_eq!(
        std::fs::read(env.root().join("again/a.txt")).unwrap(),
        b"one"
    );
}

/// A key file of another repository with the same passphrase, copied into
/// a store that has no commit yet (only its sealed HEAD to check a key
/// against), is passed over: the repository stays under its own key.
/// The key file of another repository with the same passphrase, at the
/// cheapest Argon2 cost: tried before a key file that costs more (see
/// `STEEPER`), whatever their ids. Its path and id.
fn foreign_key(env: &Env) -> (PathBuf, String) {
    let mut other = vec!["init", "other", "--encrypt"];
    other.extend(CHEAP);
    env.ok_in(env.root(), &other);
    let f = all_files(&env.root().join("other/.mediagit/keys"))
        .pop()
        .unwrap();
    let n = f.file_name().unwrap().to_string_lossy().into_owned();
    (f, n)
}

/// A key cost above [`CHEAP`]: a repository made with it tries a
/// [`foreign_key`] first.
const STEEPER: [&str; 4] = ["--kdf-memory", "19", "--kdf-passes", "3"];

/// The id of the key file the last `key list --json` marked current.
fn current_key(env: &Env) -> String {
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["key", "list", "--json"])).unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == true)
        .expect("a current key")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_foreign_key_file_does_not_take_over_an_empty_store() {
    let env = Env::empty();
    let store = env.root().join("store");
    let url = format!("file://{}", store.display());
    let mut args = vec!["init", "repo", "--storage", &url, "--encrypt"];
    args.extend(STEEPER);
    env.ok(&args);
    let (theirs, name) = foreign_key(&env);
    std::fs::copy(&theirs, store.join("keys").join(&name)).unwrap();
    let _ = std::fs::remove_file(env.repo().join(".mediagit/last-key"));
    let url = format!("file://{}", store.display());
    env.ok_in(env.root(), &["clone", &url, "second"]);
    let current = current_key(&env);
    assert_ne!(current, name, "the foreign key was taken");
    env.ok(&["fsck"]);
}

/// The one file `key unlock` keeps in `run/mediagit/keys/`.
fn kept_file(env: &Env) -> PathBuf {
    let files = all_files(&env.root().join("run/mediagit/keys"));
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// `mediagit ARGS` with no passphrase at all.
fn no_pass(env: &Env, args: &[&str]) -> std::process::Output {
    env.cmd(args)
        .env_remove("MEDIAGIT_PASSPHRASE")
        .output()
        .unwrap()
}

#[test]
fn key_unlock_keeps_the_key_for_a_while_and_key_lock_forgets_it() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::empty();
    let store = encrypted_in_store(&env);
    env.write("a.txt", b"one");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    let o = no_pass(&env, &["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("key unlock"));
    // No runtime directory at all: nothing kept, and nothing said about it.
    let o = env.cmd(&["status"]).output().unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");

    // Only into a private directory of this user: a runtime directory open
    // to others is refused, and nothing is kept.
    let run = env.root().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = env.cmd(&["key", "unlock"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("open to other users"), "{err}");
    assert!(!run.join("mediagit").exists());
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The duration is checked.
    let o = env
        .cmd(&["key", "unlock", "--timeout", "8 days"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    // Keeping needs the passphrase itself.
    assert_eq!(no_pass(&env, &["key", "unlock"]).status.code(), Some(1));
    let out = env.ok(&["key", "unlock", "--timeout", "1h"]);
    assert!(
        out.contains("Unlocked") && out.contains("key lock"),
        "{out}"
    );
    let kept = kept_file(&env);
    let meta = std::fs::metadata(&kept).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 113);
    assert!(!contains(
        &std::fs::read(&kept).unwrap(),
        TEST_PASSPHRASE.as_bytes()
    ));

    // Then no passphrase is needed: to read, to write, in another working
    // tree of the same store, or to clone it.
    env.write("b.txt", b"two");
    for args in [
        &["add", "-A"][..],
        &["commit", "-m", "two"],
        &["log", "--oneline"],
    ] {
        let o = no_pass(&env, args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = no_pass(&env, &["key", "list"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Unlocked until"));
    let url = format!("file://{}", store.display());
    let o = env
        .cmd_in(env.root(), &["clone", &url, "second"])
        .env_remove("MEDIAGIT_PASSPHRASE")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(env.root().join("second/b.txt")).unwrap(),
        b"two"
    );
    // Changing keys always asks the passphrase.
    let o = no_pass(&env, &["key", "add"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("passphrase is needed"));

    // A kept file that does not open the store (here: its key damaged) is
    // forgotten with a warning, and the passphrase is needed again.
    let mut b = std::fs::read(&kept).unwrap();
    b[100] ^= 1;
    std::fs::write(&kept, &b).unwrap();
    let o = no_pass(&env, &["status"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("does not open it") && err.contains("passphrase is needed"),
        "{err}"
    );
    assert!(!kept.exists());

    // Expired: removed when seen.
    env.ok(&["key", "unlock"]);
    let kept = kept_file(&env);
    let mut b = std::fs::read(&kept).unwrap();
    b[9..17].copy_from_slice(&1u64.to_be_bytes());
    std::fs::write(&kept, &b).unwrap();
    assert_eq!(no_pass(&env, &["status"]).status.code(), Some(1));
    assert!(!kept.exists());

    // A symlink in its place is never followed; another user's or a
    // world-readable file is not used.
    env.ok(&["key", "unlock"]);
    let kept = kept_file(&env);
    let real = env.root().join("elsewhere");
    std::fs::rename(&kept, &real).unwrap();
    std::os::unix::fs::symlink(&real, &kept).unwrap();
    let o = no_pass(&env, &["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not using the kept key"));
    std::fs::remove_file(&kept).unwrap();
    std::fs::rename(&real, &kept).unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = no_pass(&env, &["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("open to other users"));
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(no_pass(&env, &["status"]).status.success());

    // key lock forgets it.
    let out = env.ok(&["key", "lock"]);
    assert!(out.contains("Forgot"), "{out}");
    assert_eq!(no_pass(&env, &["status"]).status.code(), Some(1));
    env.ok(&["key", "unlock"]);
    let out = env.ok(&["key", "lock", "--all"]);
    assert!(out.contains("Forgot 1 kept key"), "{out}");
    assert_eq!(no_pass(&env, &["status"]).status.code(), Some(1));

    // Removing the passphrase a key was kept from ends it.
    env.ok(&["key", "unlock"]);
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["key", "list", "--json"])).unwrap();
    let first = v["keys"][0]["id"].as_str().unwrap().to_string();
    new_key(&env, "add", &[], TEST_PASSPHRASE, "second one");
    let o = with_pass(&env, "second one", &["key", "remove", &first]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = no_pass(&env, &["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not open it"));

    // `key passwd` keeps a key kept from the key file it replaces.
    assert!(with_pass(&env, "second one", &["key", "unlock"])
        .status
        .success());
    new_key(&env, "passwd", &[], "second one", "third one");
    let o = no_pass(&env, &["status"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn kept_keys_expire_for_every_store_and_lock_always_forgets() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::empty();
    let store = encrypted_in_store(&env);
    env.write("a.txt", b"one");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    let run = env.root().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let keys = run.join("mediagit/keys");

    // An expired key of another store goes when this store's cache is read.
    env.ok(&["key", "unlock"]);
    let other = keys.join("0".repeat(64));
    let mut b = std::fs::read(kept_file(&env)).unwrap();
    b[9..17].copy_from_slice(&5u64.to_be_bytes());
    std::fs::write(&other, &b).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(no_pass(&env, &["status"]).status.success());
    assert!(!other.exists(), "an expired key of another store was left");
    // And so does one claiming to last longer than any unlock gives.
    b[9..17].copy_from_slice(&u64::MAX.to_be_bytes());
    std::fs::write(&other, &b).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(no_pass(&env, &["status"]).status.success());
    assert!(!other.exists());

    // A FIFO in an entry's place does not make commands hang.
    let kept = kept_file(&env);
    std::fs::remove_file(&kept).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(&kept)
        .status()
        .unwrap()
        .success());
    let o = no_pass(&env, &["status"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::remove_file(&kept).unwrap();

    // key lock deletes even when the directory no longer passes the checks,
    // and needs no store.
    env.ok(&["key", "unlock"]);
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o750)).unwrap();
    let out = env.ok(&["key", "lock"]);
    assert!(out.contains("Forgot"), "{out}");
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 0);
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.ok(&["key", "unlock"]);
    std::fs::create_dir(keys.join("0sub")).unwrap();
    std::fs::write(keys.join("notes.txt"), b"mine").unwrap();
    std::fs::rename(&store, env.root().join("store.away")).unwrap();
    let o = no_pass(&env, &["key", "lock"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("key lock --all"));
    let out = env.ok(&["key", "lock", "--all"]);
    assert!(out.contains("Forgot 1 kept key"), "{out}");
    assert!(keys.join("0sub").is_dir() && keys.join("notes.txt").is_file());
    std::fs::rename(env.root().join("store.away"), &store).unwrap();

    // A clone with a kept key that no longer opens the store (its key file
    // removed by another client) forgets it and asks the passphrase.
    new_key(&env, "add", &[], TEST_PASSPHRASE, "second one");
    assert!(with_pass(&env, "second one", &["key", "unlock"])
        .status
        .success());
    let second = current_key(&env);
    std::fs::remove_file(store.join("keys").join(&second)).unwrap();
    let url = format!("file://{}", store.display());
    let o = env
        .cmd_in(env.root(), &["clone", &url, "again"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("does not open it"), "{err}");
    assert_eq!(
        std::fs::read(env.root().join("again/a.txt")).unwrap(),
        b"one"
    );
}

/// The same in a local repository (whose HEAD is plain): a key file of
/// another repository with the same passphrase, planted before the first
/// commit and tried first, is passed over (the sealed `check` does not open
/// with it), so commits are sealed with this repository's key.
#[test]
fn a_foreign_key_file_does_not_take_over_an_empty_local_repository() {
    let env = Env::empty();
    let mut init = vec!["init", "repo", "--encrypt"];
    init.extend(STEEPER);
    env.ok_in(env.root(), &init);
    let keys = env.repo().join(".mediagit/keys");
    let ours = all_files(&keys).pop().unwrap();
    let ours = ours.file_name().unwrap().to_string_lossy().into_owned();
    assert!(env.repo().join(".mediagit/check").is_file());
    let (theirs, name) = foreign_key(&env);
    std::fs::copy(&theirs, keys.join(&name)).unwrap();
    std::fs::remove_file(env.repo().join(".mediagit/last-key")).unwrap();
    env.write("a.txt", b"one");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    let current = current_key(&env);
    assert_eq!(current, ours, "the foreign key was taken");
    // Without the foreign key file, this repository still opens.
    std::fs::remove_file(keys.join(&name)).unwrap();
    assert!(env.ok(&["log", "--oneline"]).contains(" one"));
    env.ok(&["fsck"]);
}

/// `key lock --all` deletes kept keys only: never through a symlinked
/// cache directory (here pointing at a repository's key files), never a
/// file that is not a kept key.
#[test]
fn key_lock_never_deletes_what_is_not_a_kept_key() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::empty();
    let mut init = vec!["init", "repo", "--encrypt"];
    init.extend(CHEAP);
    env.ok_in(env.root(), &init);
    let repo_keys = env.repo().join(".mediagit/keys");
    let before = all_files(&repo_keys);
    assert_eq!(before.len(), 1);
    let run = env.root().join("run");
    std::fs::create_dir_all(run.join("mediagit")).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(run.join("mediagit"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&repo_keys, run.join("mediagit/keys")).unwrap();
    for args in [&["key", "lock", "--all"][..], &["key", "lock"]] {
        let o = env.cmd(args).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("is a symlink"));
        assert_eq!(all_files(&repo_keys), before, "{args:?} deleted key files");
    }
    // A real cache directory: a 64-hex-named file that is not a kept key,
    // and a symlink with such a name, stay.
    std::fs::remove_file(run.join("mediagit/keys")).unwrap();
    env.ok(&["key", "unlock"]);
    let keys = run.join("mediagit/keys");
    let stranger = keys.join("f".repeat(64));
    std::fs::write(&stranger, b"not a key").unwrap();
    std::os::unix::fs::symlink(&before[0], keys.join("e".repeat(64))).unwrap();
    let out = env.ok(&["key", "lock", "--all"]);
    assert!(out.contains("Forgot 1 kept key"), "{out}");
    assert!(stranger.is_file());
    assert!(keys.join("e".repeat(64)).symlink_metadata().is_ok());
    assert_eq!(all_files(&repo_keys), before);
    // Without XDG_RUNTIME_DIR, lock says it cannot look.
    let o = env
        .cmd(&["key", "lock", "--all"])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("XDG_RUNTIME_DIR is not set"));
}

/// The threat model's rollback (FORMAT.md §13.7): someone who can write
/// the store puts an older value of the branch back. The working tree
/// says the branch went back (not "moved by another working tree"),
/// `pull` refuses to follow it, `commit` refuses with the reason, and the
/// documented way puts the newer commit back.
#[test]
fn a_branch_rolled_back_in_the_store_is_named_and_not_followed() {
    let env = Env::empty();
    let store = encrypted_in_store(&env);
    let b = "client-nda-branch";
    env.write("f.txt", b"one\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    let old_refs = env.root().join("refs-then");
    copy_dir(&store.join("refs"), &old_refs);
    env.write("f.txt", b"two\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "two"]);
    let st = json(&env.ok(&["status", "--json"]));
    let two = st["head_commit"].as_str().unwrap().to_string();
    // The rollback: the store's refs as they were after "one".
    std::fs::remove_dir_all(store.join("refs")).unwrap();
    copy_dir(&old_refs, &store.join("refs"));

    let st = env.ok(&["status"]);
    assert!(
        st.contains(&format!("The store's {b} went BACK to")),
        "{st}"
    );
    assert!(st.contains(&two[..12]), "{st}");
    let st = json(&env.ok(&["status", "--json"]));
    assert_eq!(st["store_branch_moved"]["moved_back"], true, "{st}");
    assert_eq!(st["store_branch_moved"]["last_seen"], two.as_str(), "{st}");

    let e = env.fail_with(1, &["pull"]);
    assert!(e.contains("does not follow a branch backwards"), "{e}");
    assert_eq!(std::fs::read(env.repo().join("f.txt")).unwrap(), b"two\n");
    env.write("f.txt", b"three\n");
    let e = env.fail_with(1, &["commit", "-a", "-m", "three"]);
    assert!(
        e.contains("went back") && e.contains("nothing was committed"),
        "{e}"
    );
    // The failed `commit -a` left the index as it was: nothing staged.
    let st = json(&env.ok(&["status", "--json"]));
    assert_eq!(st["staged"].as_array().unwrap().len(), 0, "{st}");
    env.write("f.txt", b"two\n");

    // Put "two" back as the hint says.
    env.ok(&["switch", b]);
    assert_eq!(std::fs::read(env.repo().join("f.txt")).unwrap(), b"one\n");
    env.ok(&["reset", "--hard", &two]);
    assert_eq!(std::fs::read(env.repo().join("f.txt")).unwrap(), b"two\n");
    let st = json(&env.ok(&["status", "--json"]));
    assert!(st["store_branch_moved"].is_null(), "{st}");
    assert_eq!(st["head_commit"], two.as_str(), "{st}");
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
