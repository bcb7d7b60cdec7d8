//! `mediagit serve` and its clients, over real sockets: push creating a
//! repository, clone, fetch and pull through a server, rights and tokens,
//! TLS, a pack that does not verify, SIGTERM, two servers on one bucket
//! (when the suite runs with the S3 test server), and an encrypted
//! repository whose server sees ciphertext only.
mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `mediagit serve` process; SIGTERM when dropped.
struct Server {
    child: Child,
    url: String,
    /// What it hosts (`--root`), if a directory.
    root: Option<PathBuf>,
    /// What it hosts (`--storage`), if a store.
    #[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
    store: Option<String>,
}

impl Server {
    /// Serves `root` (or, when the suite runs against an object store,
    /// the store prefix `shared`, or a fresh one) with `extra` arguments.
    fn start(env: &Env, root: &Path, shared: Option<&str>, extra: &[&str]) -> Server {
        Server::start_at(env, root, shared, "127.0.0.1:0", extra)
    }

    /// [`Server::start`] on the address `bind`.
    fn start_at(
        env: &Env,
        root: &Path,
        shared: Option<&str>,
        bind: &str,
        extra: &[&str],
    ) -> Server {
        let mut args: Vec<String> = vec!["serve".into(), "--bind".into(), bind.into()];
        let store = shared.map(str::to_string).or_else(fresh_store_url);
        let hosted = match &store {
            Some(url) => {
                args.extend(["--storage".into(), url.clone()]);
                None
            }
            None => {
                std::fs::create_dir_all(root).unwrap();
                args.extend(["--root".into(), root.display().to_string()]);
                Some(root.to_path_buf())
            }
        };
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = env.std_cmd_in(env.root(), &args);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mediagit serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(url) = line.trim().strip_prefix("mediagit serve: listening on ") else {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("server did not start: {line:?} {err}");
        };
        // Logs are drained so the server never blocks on a full pipe.
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stderr.read_to_end(&mut sink);
        });
        Server {
            url: url.to_string(),
            child,
            root: hosted,
            store,
        }
    }

    fn repo_url(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// SIGTERM; the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        unsafe {
            // SAFETY: kill(2) on our own child's pid; no memory involved.
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// A plain HTTP GET (no client library): status line and body.
fn http_get(base: &str, path: &str) -> (String, String) {
    let host = base.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.lines().next().unwrap_or("").to_string();
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

fn ok_in(env: &Env, dir: &Path, args: &[&str]) -> String {
    let out = env.cmd_in(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "mediagit {args:?} failed:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn fail_in(env: &Env, dir: &Path, args: &[&str]) -> String {
    let out = env.cmd_in(dir, args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "mediagit {args:?} should fail:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// An auth file of users (name, repository pattern, right), each with
/// the token `NAME-token-0123456789`, hashed with the system's `sha256sum`
/// as SERVER.md tells admins to.
fn auth_file(env: &Env, users: &[(&str, &str, &str)]) -> PathBuf {
    let mut toml = String::new();
    for (name, pattern, right) in users {
        let token = format!("{name}-token-0123456789");
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {token} | sha256sum")])
            .output()
            .unwrap();
        let hash = &text(&out.stdout)[..64];
        toml.push_str(&format!(
            "[[users]]\nname = \"{name}\"\ntoken_sha256 = \"{hash}\"\nrepos = {{ \"{pattern}\" = \"{right}\" }}\n\n"
        ));
    }
    let path = env.root().join("auth.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// No file below `dir` holds any of `needles` (what an encrypted
/// repository must never show its server).
fn assert_none_of(dir: &Path, needles: &[&[u8]]) {
    for f in all_files(dir) {
        let b = std::fs::read(&f).unwrap();
        for needle in needles {
            assert!(
                !b.windows(needle.len()).any(|w| w == *needle),
                "{} holds {:?}",
                f.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

fn commit_files(env: &Env, files: &[(&str, u64, u64)], msg: &str) {
    for (name, size, seed) in files {
        write_random(&env.repo().join(name), *size, *seed);
    }
    env.ok(&["add", "."]);
    env.ok(&["commit", "-m", msg]);
}

#[test]
fn push_creates_clone_fetch_and_pull_through_a_server() {
    let env = Env::new();
    let mut server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--create-on-push"],
    );
    commit_files(&env, &[("a.mov", 3 << 20, 1), ("c.wav", 700_000, 2)], "one");
    let url = server.repo_url("team/film");
    env.ok(&["remote", "add", "origin", &url]);
    let out = ok_in(&env, &env.repo(), &["push", "-u", "origin", "main"]);
    assert!(out.contains("[new branch]"), "{out}");
    if let Some(root) = &server.root {
        assert!(root.join("team/film/config.toml").is_file());
    }
    // A clone from the server has the same bytes.
    let dest = env.root().join("copy");
    ok_in(&env, env.root(), &["clone", &url, dest.to_str().unwrap()]);
    assert_eq!(tree_hashes(&dest), tree_hashes(&env.repo()));
    // The default directory is the last part of the URL.
    ok_in(&env, env.root(), &["clone", &url]);
    assert_eq!(
        sha256_file(&env.root().join("film/a.mov")),
        sha256_file(&env.repo().join("a.mov"))
    );
    // New work arrives by pull.
    commit_files(&env, &[("d.psd", 1 << 20, 3)], "two");
    ok_in(&env, &env.repo(), &["push"]);
    let st = text(&env.cmd_in(&dest, &["status"]).output().unwrap().stdout);
    assert!(st.contains("up to date"), "{st}");
    ok_in(&env, &dest, &["pull"]);
    assert_eq!(
        sha256_file(&dest.join("d.psd")),
        sha256_file(&env.repo().join("d.psd"))
    );
    let ls = text(&env.cmd_in(&dest, &["ls-remote"]).output().unwrap().stdout);
    assert!(ls.contains("refs/heads/main"), "{ls}");
    // -b: another branch checked out.
    env.ok(&["branch", "create", "side"]);
    ok_in(&env, &env.repo(), &["push", "origin", "side"]);
    let side = env.root().join("side");
    ok_in(
        &env,
        env.root(),
        &["clone", "-b", "side", &url, side.to_str().unwrap()],
    );
    let head = text(&env.cmd_in(&side, &["status"]).output().unwrap().stdout);
    assert!(head.contains("On branch side"), "{head}");
    let e = fail_in(&env, env.root(), &["clone", "-b", "nope", &url, "x"]);
    assert!(e.contains("no branch nope"), "{e}");
    assert!(!env.root().join("x").exists());
    // health and metrics
    let (s, body) = http_get(&server.url, "/healthz");
    assert!(s.contains("200"), "{s}");
    assert_eq!(body.trim(), "ok");
    let (_, m) = http_get(&server.url, "/metrics");
    assert!(
        m.contains("mediagit_requests_total{route=\"/v1/cas\",method=\"POST\",status=\"200\"}"),
        "{m}"
    );
    assert!(m.contains("mediagit_bytes_received_total"), "{m}");
    // SIGTERM: a clean exit.
    assert!(server.stop().success());
}

#[test]
fn a_missing_repository_is_not_created_without_create_on_push() {
    let env = Env::new();
    let server = Server::start(&env, &env.root().join("hosted"), None, &[]);
    commit_files(&env, &[("a.bin", 10_000, 1)], "one");
    let url = server.repo_url("film");
    let e = fail_in(&env, &env.repo(), &["push", &url, "main"]);
    assert!(
        e.contains("no repository film") && e.contains("--create-on-push"),
        "{e}"
    );
    if let Some(root) = &server.root {
        assert!(!root.join("film").exists());
    }
    let e = fail_in(&env, env.root(), &["clone", &url, "dest"]);
    assert!(e.contains("no repository film"), "{e}");
    assert!(!env.root().join("dest").exists());
    // Names that would leave the root are refused by the client already.
    let e = fail_in(
        &env,
        &env.repo(),
        &["remote", "add", "evil", &format!("{}/../etc", server.url)],
    );
    assert!(e.contains("repository name"), "{e}");
}

#[test]
fn rights_come_from_the_auth_file_and_tokens_from_the_environment() {
    let env = Env::new();
    let auth = auth_file(&env, &[("ann", "film", "write"), ("rob", "*", "read")]);
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--auth-file", auth.to_str().unwrap(), "--create-on-push"],
    );
    commit_files(&env, &[("a.bin", 100_000, 1)], "one");
    let url = server.repo_url("film");
    env.ok(&["remote", "add", "origin", &url]);
    // No token: 401, and the message says where a token comes from.
    let e = fail_in(&env, &env.repo(), &["push", "origin", "main"]);
    assert!(e.contains("MEDIAGIT_TOKEN is not set"), "{e}");
    // A reader cannot push: the message names the user and the right.
    let out = env
        .cmd(&["push", "origin", "main"])
        .env("MEDIAGIT_TOKEN", "rob-token-0123456789")
        .output()
        .unwrap();
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("rob") && e.contains("may not create"), "{e}");
    // The remote's own variable.
    env.ok(&["config", "remotes.origin.token_env", "FILM_TOKEN"]);
    let out = env
        .cmd(&["push", "origin", "main"])
        .env("FILM_TOKEN", "ann-token-0123456789")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("ann-token"));
    // rob reads it, but moving a branch needs write.
    let dest = env.root().join("rob");
    let out = env
        .cmd_in(env.root(), &["clone", &url, dest.to_str().unwrap()])
        .env("MEDIAGIT_TOKEN", "rob-token-0123456789")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    write_random(&dest.join("new.bin"), 1000, 9);
    env.ok_in(&dest, &["add", "."]);
    env.ok_in(&dest, &["commit", "-m", "rob's"]);
    let out = env
        .cmd_in(&dest, &["push"])
        .env("MEDIAGIT_TOKEN", "rob-token-0123456789")
        .output()
        .unwrap();
    let e = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains("needs the write right") && e.contains("user rob has only the read right"),
        "{e}"
    );
    // A wrong token is refused, and never printed.
    let out = env
        .cmd_in(&dest, &["fetch"])
        .env("MEDIAGIT_TOKEN", "guess-guess-guess")
        .output()
        .unwrap();
    let e = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains("not accepted") && !e.contains("guess-guess"),
        "{e}"
    );
}

#[test]
fn without_an_auth_file_only_loopback_is_served() {
    let env = Env::empty();
    let d = env.root().join("d");
    std::fs::create_dir_all(&d).unwrap();
    let e = fail_in(
        &env,
        env.root(),
        &["serve", "--root", "d", "--bind", "0.0.0.0:0"],
    );
    assert!(
        e.contains("not loopback") && e.contains("--auth-file"),
        "{e}"
    );
}

#[test]
fn tls_needs_the_ca_and_works_with_it() {
    let env = Env::new();
    let certs = env.root().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(certs.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(certs.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let cert = certs.join("cert.pem");
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &[
            "--create-on-push",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            certs.join("key.pem").to_str().unwrap(),
        ],
    );
    assert!(server.url.starts_with("https://"));
    let port = server.url.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}/film");
    commit_files(&env, &[("a.bin", 200_000, 1)], "one");
    let e = fail_in(&env, &env.repo(), &["push", &url, "main"]);
    assert!(e.contains("MEDIAGIT_CA_FILE"), "{e}");
    let out = env
        .cmd(&["push", &url, "main"])
        .env("MEDIAGIT_CA_FILE", &cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dest = env.root().join("dest");
    let out = env
        .cmd_in(env.root(), &["clone", &url, dest.to_str().unwrap()])
        .env("MEDIAGIT_CA_FILE", &cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        sha256_file(&dest.join("a.bin")),
        sha256_file(&env.repo().join("a.bin"))
    );
    // An expired certificate is refused even when its CA is trusted, and
    // the error says so (not "set MEDIAGIT_CA_FILE").
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let kp = rcgen::KeyPair::generate().unwrap();
    let old = params.self_signed(&kp).unwrap();
    std::fs::write(certs.join("old.pem"), old.pem()).unwrap();
    std::fs::write(certs.join("old-key.pem"), kp.serialize_pem()).unwrap();
    let expired = Server::start(
        &env,
        &env.root().join("hosted2"),
        None,
        &[
            "--create-on-push",
            "--tls-cert",
            certs.join("old.pem").to_str().unwrap(),
            "--tls-key",
            certs.join("old-key.pem").to_str().unwrap(),
        ],
    );
    let port = expired.url.rsplit(':').next().unwrap();
    let out = env
        .cmd(&["push", &format!("https://localhost:{port}/film"), "main"])
        .env("MEDIAGIT_CA_FILE", certs.join("old.pem"))
        .output()
        .unwrap();
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("expired"), "{e}");
}

/// A clone copies the server's packs whole; the checkout checks what it
/// writes, but an object only history needs (an older version of a
/// file) went into the clone unread, damaged or not. Now every entry the
/// checkout does not read is read and checked first, and a damaged pack
/// fails the clone, which leaves nothing behind.
#[test]
fn a_clone_from_a_server_whose_history_is_damaged_fails_and_leaves_nothing() {
    let env = Env::new();
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--create-on-push"],
    );
    let Some(root) = server.root.clone() else {
        return; // damages pack files on disk
    };
    env.ok(&["config", "media.records", "false"]);
    let url = server.repo_url("film");
    commit_files(&env, &[("a.bin", 400_000, 1)], "one");
    ok_in(&env, &env.repo(), &["push", &url, "main"]);
    let packs = |d: &Path| -> Vec<PathBuf> {
        all_files(d)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "pack"))
            .collect()
    };
    // The first version's chunks: the largest pack of the first push.
    let first = packs(&root.join("film"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    commit_files(&env, &[("a.bin", 400_000, 2)], "two");
    ok_in(&env, &env.repo(), &["push", &url, "main"]);
    // Sound: the clone works and is fsck clean.
    let good = env.root().join("good");
    ok_in(&env, env.root(), &["clone", &url, good.to_str().unwrap()]);
    let fsck = env.ok_in(&good, &["fsck"]);
    assert!(fsck.contains(" 0 problems"), "{fsck}");
    let mut b = std::fs::read(&first).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x10;
    std::fs::write(&first, &b).unwrap();
    let dest = env.root().join("copy");
    let e = fail_in(&env, env.root(), &["clone", &url, dest.to_str().unwrap()]);
    assert!(e.contains("corrupt"), "{e}");
    assert!(!dest.exists(), "a failed clone leaves nothing");
    // The file as checked out was never the problem: a bare clone (which
    // checks out nothing) fails too.
    let bare = env.root().join("bare");
    let e = fail_in(
        &env,
        env.root(),
        &["clone", "--bare", &url, bare.to_str().unwrap()],
    );
    assert!(e.contains("corrupt"), "{e}");
    assert!(!bare.exists());
}

/// Found by a hostile probe: a symbolic link planted inside a hosted
/// repository (the server refused only a linked repository directory)
/// was followed, and the server sent the file it pointed at.
#[test]
fn a_symbolic_link_planted_in_a_hosted_repository_is_never_followed() {
    let env = Env::new();
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--create-on-push"],
    );
    let Some(root) = server.root.clone() else {
        return; // plants links on disk
    };
    let url = server.repo_url("film");
    commit_files(&env, &[("a.bin", 50_000, 1)], "one");
    ok_in(&env, &env.repo(), &["push", &url, "main"]);
    let secret = env.root().join("secret.txt");
    std::fs::write(&secret, b"server-side secret").unwrap();
    let planted = format!("packs/{}.idx", "cd".repeat(32));
    std::os::unix::fs::symlink(&secret, root.join("film").join(&planted)).unwrap();
    let (status, body) = http_get(&server.url, &format!("/v1/object?repo=film&key={planted}"));
    assert!(!status.contains(" 200"), "{status}");
    assert!(!body.contains("server-side secret"), "{body}");
    // A clone leaves the index without its pack behind and is whole.
    let dest = env.root().join("copy");
    ok_in(&env, env.root(), &["clone", &url, dest.to_str().unwrap()]);
    let fsck = env.ok_in(&dest, &["fsck"]);
    assert!(fsck.contains(" 0 problems"), "{fsck}");
    assert_eq!(tree_hashes(&dest), tree_hashes(&env.repo()));
}

/// Found by a hostile probe of clone: a pack without its index (junk)
/// and an index without its pack were copied; a repository whose branch
/// needs objects the server lacks was cloned "successfully"; an index of
/// any size was downloaded before its bound was checked; a local pack
/// that is a symbolic link was linked as a link.
#[test]
fn a_clone_takes_whole_pairs_bounds_indexes_and_needs_every_object_of_every_ref() {
    let env = Env::new();
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--create-on-push"],
    );
    let Some(root) = server.root.clone() else {
        return; // changes pack files on disk
    };
    env.ok(&["config", "media.records", "false"]);
    let url = server.repo_url("film");
    let repo_dir = root.join("film");
    let pack_files = |d: &Path| -> std::collections::BTreeSet<PathBuf> {
        all_files(d)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "pack"))
            .collect()
    };
    commit_files(&env, &[("a.bin", 200_000, 1)], "one");
    ok_in(&env, &env.repo(), &["push", &url, "main"]);
    let before = pack_files(&repo_dir);
    env.ok(&["switch", "-c", "other"]);
    commit_files(&env, &[("b.bin", 300_000, 2)], "two");
    ok_in(&env, &env.repo(), &["push", &url, "other"]);
    env.ok(&["switch", "main"]);
    let other_pack = pack_files(&repo_dir)
        .difference(&before)
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    let other_idx = other_pack.with_extension("idx");
    let idx_bytes = std::fs::read(&other_idx).unwrap();
    let clone = |name: &str| -> (Option<i32>, String, PathBuf) {
        let dest = env.root().join(name);
        let out = env
            .cmd_in(env.root(), &["clone", &url, dest.to_str().unwrap()])
            .output()
            .unwrap();
        (out.status.code(), text(&out.stderr), dest)
    };
    // Junk named as a pack, with no index: not copied.
    let junk = repo_dir.join(format!("packs/{}.pack", "ab".repeat(32)));
    std::fs::write(&junk, vec![7u8; 5000]).unwrap();
    let (code, err, dest) = clone("c1");
    assert_eq!(code, Some(0), "{err}");
    assert!(!dest
        .join(format!(".mediagit/packs/{}.pack", "ab".repeat(32)))
        .exists());
    let fsck = env.ok_in(&dest, &["fsck"]);
    assert!(fsck.contains(" 0 problems"), "{fsck}");
    std::fs::remove_file(&junk).unwrap();
    // The index of branch other's pack gone: its objects are missing, so
    // the clone fails (it used to succeed with a broken branch).
    std::fs::remove_file(&other_idx).unwrap();
    let (code, err, dest) = clone("c2");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("missing") && err.contains(&url), "{err}");
    assert!(err.contains("nothing was cloned"), "{err}");
    assert!(!dest.exists());
    // An index far larger than its pack can need: refused before a byte
    // of it is copied.
    let f = std::fs::File::create(&other_idx).unwrap();
    f.set_len(64 << 20).unwrap();
    let (code, err, dest) = clone("c3");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("more than its pack can need"), "{err}");
    assert!(!dest.exists());
    std::fs::write(&other_idx, &idx_bytes).unwrap();
    let (code, err, _) = clone("c4");
    assert_eq!(code, Some(0), "{err}");
    // A local repository whose pack is a symbolic link: refused, named.
    let local_pack = pack_files(&env.repo().join(".mediagit/packs"))
        .into_iter()
        .next()
        .unwrap();
    let moved = env.root().join("moved.pack");
    std::fs::rename(&local_pack, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &local_pack).unwrap();
    let dest = env.root().join("c5");
    let e = fail_in(
        &env,
        env.root(),
        &[
            "clone",
            env.repo().to_str().unwrap(),
            dest.to_str().unwrap(),
        ],
    );
    assert!(e.contains("not a regular file"), "{e}");
    assert!(!dest.exists());
}

#[test]
fn an_uploaded_pack_that_does_not_verify_is_refused_and_removed() {
    if test_encrypt() {
        // An encrypted repository's packs are ciphertext: the server
        // cannot check them (its clients check every entry they read).
        return;
    }
    let env = Env::new();
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--create-on-push"],
    );
    commit_files(&env, &[("a.bin", 300_000, 1)], "one");
    ok_in(
        &env,
        &env.repo(),
        &["push", &server.repo_url("good"), "main"],
    );
    // Another repository, created by a push of something else.
    let other = env.root().join("other");
    ok_in(&env, env.root(), &["init", other.to_str().unwrap()]);
    std::fs::write(other.join("x.txt"), b"x").unwrap();
    env.ok_in(&other, &["add", "."]);
    env.ok_in(&other, &["commit", "-m", "x"]);
    let evil_url = server.repo_url("evil");
    ok_in(&env, &other, &["push", &evil_url, "main"]);
    // The first repository's pack, one payload byte flipped, uploaded
    // under its own name (its headers, hence its name, unchanged).
    let backend =
        mediagit_protocol::HttpBackend::new(&server.repo_url("good"), &Default::default()).unwrap();
    use mediagit_storage::Storage;
    let packs = backend.list("packs/").unwrap();
    let pack = packs
        .iter()
        .find(|k| k.ends_with(".pack") && backend.size(k).unwrap().unwrap() > 200_000)
        .unwrap()
        .clone();
    let mut bytes = backend.get(&pack).unwrap();
    let n = bytes.len();
    bytes[n - 1000] ^= 0x55;
    let idx = backend.get(&pack.replace(".pack", ".idx")).unwrap();
    let evil = mediagit_protocol::HttpBackend::new(
        &evil_url,
        &mediagit_protocol::HttpOptions {
            attempts: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    evil.put(&pack, &bytes).unwrap();
    let e = evil
        .put(&pack.replace(".pack", ".idx"), &idx)
        .unwrap_err()
        .to_string();
    assert!(e.contains("refused by the server's check"), "{e}");
    assert_eq!(evil.size(&pack).unwrap(), None, "the pack is removed");
    assert_eq!(evil.size(&pack.replace(".pack", ".idx")).unwrap(), None);
    // A writer cannot delete or rewrite settings (no admin without an
    // auth file? without one everyone is admin: checked in the server's
    // own tests); the good repository still verifies.
    let dest = env.root().join("dest");
    ok_in(
        &env,
        env.root(),
        &["clone", &server.repo_url("good"), dest.to_str().unwrap()],
    );
    ok_in(&env, &dest, &["fsck"]);
}

#[test]
fn an_encrypted_repository_reaches_the_server_as_ciphertext() {
    let env = Env::empty();
    let repo = env.root().join("secret");
    ok_in(
        &env,
        env.root(),
        &[
            "init",
            repo.to_str().unwrap(),
            "--encrypt",
            "--kdf-memory",
            "19",
            "--kdf-passes",
            "2",
        ],
    );
    let marker = b"NDA-CLIENT-FOOTAGE-0123456789".repeat(4000);
    std::fs::write(repo.join("clip.txt"), &marker).unwrap();
    env.ok_in(&repo, &["add", "."]);
    env.ok_in(&repo, &["commit", "-m", "secret"]);
    env.ok_in(&repo, &["branch", "create", "project-falcon"]);
    let hosted = env.root().join("hosted");
    let server = Server::start(&env, &hosted, None, &["--create-on-push"]);
    let url = server.repo_url("vault");
    ok_in(&env, &repo, &["push", &url, "main", "project-falcon"]);
    if let Some(root) = &server.root {
        assert_none_of(
            &root.join("vault"),
            &[b"NDA-CLIENT-FOOTAGE", b"project-falcon", b"clip.txt"],
        );
    }
    let dest = env.root().join("dest");
    ok_in(&env, env.root(), &["clone", &url, dest.to_str().unwrap()]);
    assert_eq!(std::fs::read(dest.join("clip.txt")).unwrap(), marker);
}

#[test]
fn two_servers_on_one_store_serve_the_same_repositories() {
    let Some(shared) = fresh_store_url() else {
        // Needs the object-store run (scripts/test.sh sets
        // MEDIAGIT_TEST_STORAGE); a directory root is one machine's.
        return;
    };
    let env = Env::new();
    let a = Server::start(
        &env,
        &env.root().join("unused"),
        Some(&shared),
        &["--create-on-push"],
    );
    let b = Server::start(
        &env,
        &env.root().join("unused"),
        Some(&shared),
        &["--create-on-push"],
    );
    commit_files(&env, &[("a.bin", 500_000, 1)], "one");
    ok_in(&env, &env.repo(), &["push", &a.repo_url("film"), "main"]);
    // Two clones, one through each server, push at once to the same
    // branch: exactly one wins, the other is told the branch moved.
    let ca = env.root().join("ca");
    let cb = env.root().join("cb");
    ok_in(
        &env,
        env.root(),
        &["clone", &a.repo_url("film"), ca.to_str().unwrap()],
    );
    ok_in(
        &env,
        env.root(),
        &["clone", &b.repo_url("film"), cb.to_str().unwrap()],
    );
    for (d, seed) in [(&ca, 7u64), (&cb, 8u64)] {
        write_random(&d.join("n.bin"), 200_000, seed);
        env.ok_in(d, &["add", "."]);
        env.ok_in(d, &["commit", "-m", "concurrent"]);
    }
    let mut pa = env.std_cmd_in(&ca, &["push"]);
    let mut pb = env.std_cmd_in(&cb, &["push"]);
    let ha = pa
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let hb = pb
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let oa = ha.wait_with_output().unwrap();
    let ob = hb.wait_with_output().unwrap();
    let wins = [&oa, &ob].iter().filter(|o| o.status.success()).count();
    assert_eq!(wins, 1, "a: {}\nb: {}", text(&oa.stderr), text(&ob.stderr));
    // Both servers then show the same tip.
    let la = text(
        &env.cmd_in(&ca, &["ls-remote", &a.repo_url("film")])
            .output()
            .unwrap()
            .stdout,
    );
    let lb = text(
        &env.cmd_in(&ca, &["ls-remote", &b.repo_url("film")])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(la, lb);
}

#[test]
fn file_locks_name_their_owner_and_only_the_owner_or_an_admin_unlocks() {
    let env = Env::new();
    let auth = auth_file(
        &env,
        &[
            ("ann", "film", "write"),
            ("bob", "film", "write"),
            ("boss", "*", "admin"),
            ("rob", "*", "read"),
        ],
    );
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--auth-file", auth.to_str().unwrap(), "--create-on-push"],
    );
    std::fs::create_dir_all(env.repo().join("shots")).unwrap();
    commit_files(
        &env,
        &[("shots/hero.psd", 50_000, 1), ("edit.prproj", 20_000, 2)],
        "one",
    );
    env.ok(&["remote", "add", "origin", &server.repo_url("film")]);
    let run = |dir: &Path, token: &str, args: &[&str]| {
        let out = env
            .cmd_in(dir, args)
            .env("MEDIAGIT_TOKEN", token)
            .output()
            .unwrap();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (c, _, e) = run(
        &env.repo(),
        "ann-token-0123456789",
        &["push", "-u", "origin", "main"],
    );
    assert_eq!(c, Some(0), "{e}");
    // ann locks a file, by a path relative to where she is.
    let shots = env.repo().join("shots");
    let (c, _, e) = run(&shots, "ann-token-0123456789", &["lock", "hero.psd"]);
    assert_eq!(c, Some(0), "{e}");
    assert!(
        e.contains("Locked shots/hero.psd") && e.contains("owner ann"),
        "{e}"
    );
    // bob cannot take it, nor unlock it; the message names the owner.
    let (c, _, e) = run(
        &env.repo(),
        "bob-token-0123456789",
        &["lock", "shots/hero.psd", "edit.prproj"],
    );
    assert_eq!(c, Some(1), "{e}");
    assert!(e.contains("shots/hero.psd is locked by ann"), "{e}");
    assert!(
        e.contains("Locked edit.prproj"),
        "the other path is still locked: {e}"
    );
    let (c, _, e) = run(
        &env.repo(),
        "bob-token-0123456789",
        &["unlock", "shots/hero.psd"],
    );
    assert_eq!(c, Some(1));
    assert!(e.contains("locked by ann"), "{e}");
    let (c, _, e) = run(
        &env.repo(),
        "bob-token-0123456789",
        &["unlock", "--force", "shots/hero.psd"],
    );
    assert_eq!(c, Some(1));
    assert!(e.contains("admin right"), "{e}");
    // A reader sees the locks but cannot lock.
    let (c, out, e) = run(&env.repo(), "rob-token-0123456789", &["locks"]);
    assert_eq!(c, Some(0), "{e}");
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("edit.prproj\tbob\t") && lines[1].starts_with("shots/hero.psd\tann\t"),
        "{out}"
    );
    let (_, out, _) = run(
        &env.repo(),
        "rob-token-0123456789",
        &["locks", "--json", "--path", "shots/hero.psd"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["owner"], "ann");
    let (c, _, e) = run(
        &env.repo(),
        "rob-token-0123456789",
        &["lock", "edit.prproj"],
    );
    assert_eq!(c, Some(1));
    assert!(e.contains("needs the write right"), "{e}");
    // The owner unlocks; an admin breaks bob's lock.
    let (c, _, e) = run(&shots, "ann-token-0123456789", &["unlock", "hero.psd"]);
    assert_eq!(c, Some(0), "{e}");
    assert!(e.contains("was locked by ann"), "{e}");
    let (c, _, e) = run(
        &env.repo(),
        "boss-token-0123456789",
        &["unlock", "--force", "edit.prproj"],
    );
    assert_eq!(c, Some(0), "{e}");
    let (_, out, _) = run(&env.repo(), "rob-token-0123456789", &["locks"]);
    assert_eq!(out, "");
    let (c, _, e) = run(
        &env.repo(),
        "ann-token-0123456789",
        &["unlock", "edit.prproj"],
    );
    assert_eq!(c, Some(1));
    assert!(e.contains("not locked"), "{e}");
    // A lock of a directory or of no file of the commit is taken, with a
    // warning that it guards only that exact path.
    let (c, _, e) = run(
        &env.repo(),
        "ann-token-0123456789",
        &["lock", "shots", "Shots/HERO.psd"],
    );
    assert_eq!(c, Some(0), "{e}");
    assert!(e.contains("warning: shots is a directory"), "{e}");
    assert!(
        e.contains("warning: Shots/HERO.psd is not a file of the current commit"),
        "{e}"
    );
    // Paths outside the working tree are refused before anything is sent.
    let (c, _, e) = run(&env.repo(), "ann-token-0123456789", &["lock", "../outside"]);
    assert_eq!(c, Some(1), "{e}");
    // A remote that is not a server has no locks.
    env.ok(&[
        "remote",
        "add",
        "disk",
        env.root().join("hosted").to_str().unwrap(),
    ]);
    let (c, _, e) = run(&env.repo(), "x", &["locks", "--remote", "disk"]);
    assert_eq!(c, Some(1));
    assert!(e.contains("file locks live on a MediaGit server"), "{e}");
}

#[test]
fn a_push_that_changes_a_file_someone_else_locked_is_refused() {
    let env = Env::new();
    let auth = auth_file(&env, &[("ann", "film", "write"), ("bob", "film", "write")]);
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--auth-file", auth.to_str().unwrap(), "--create-on-push"],
    );
    commit_files(
        &env,
        &[("hero.psd", 50_000, 1), ("notes.txt", 1_000, 2)],
        "one",
    );
    let url = server.repo_url("film");
    env.ok(&["remote", "add", "origin", &url]);
    let run = |dir: &Path, token: &str, args: &[&str]| {
        let out = env
            .cmd_in(dir, args)
            .env("MEDIAGIT_TOKEN", token)
            .output()
            .unwrap();
        (out.status.code(), text(&out.stderr))
    };
    let (c, e) = run(
        &env.repo(),
        "ann-token-0123456789",
        &["push", "-u", "origin", "main"],
    );
    assert_eq!(c, Some(0), "{e}");
    let bob = env.root().join("bob");
    let (c, e) = run(
        env.root(),
        "bob-token-0123456789",
        &["clone", &url, bob.to_str().unwrap()],
    );
    assert_eq!(c, Some(0), "{e}");
    // ann locks hero.psd; bob changes it and pushes: refused, nothing moves.
    let (c, e) = run(&env.repo(), "ann-token-0123456789", &["lock", "hero.psd"]);
    assert_eq!(c, Some(0), "{e}");
    let before = text(
        &env.cmd_in(&bob, &["ls-remote"])
            .env("MEDIAGIT_TOKEN", "bob-token-0123456789")
            .output()
            .unwrap()
            .stdout,
    );
    write_random(&bob.join("hero.psd"), 50_000, 9);
    env.ok_in(&bob, &["add", "."]);
    env.ok_in(&bob, &["commit", "-m", "bob's hero"]);
    let (c, e) = run(&bob, "bob-token-0123456789", &["push"]);
    assert_eq!(c, Some(1), "{e}");
    assert!(
        e.contains("hero.psd (locked by ann") && e.contains("nothing was pushed"),
        "{e}"
    );
    // Nor by another spelling of the branch, a tag pushed to the branch,
    // --force, or a new branch: the commits sent are what is checked.
    env.ok_in(&bob, &["tag", "t4"]);
    for args in [
        &["push", "origin", "refs/heads/refs/heads/main"][..],
        &["push", "origin", "refs/tags/t4:main"],
        &["push", "--force"],
        &["push", "origin", "main:fresh"],
    ] {
        let (c, e) = run(&bob, "bob-token-0123456789", args);
        assert_eq!(c, Some(1), "{args:?}: {e}");
        assert!(e.contains("hero.psd (locked by ann)"), "{args:?}: {e}");
    }
    let after = text(
        &env.cmd_in(&bob, &["ls-remote"])
            .env("MEDIAGIT_TOKEN", "bob-token-0123456789")
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(before, after);
    // A change to another file goes through; so do ann's own changes.
    let bob2 = env.root().join("bob2");
    let (c, e) = run(
        env.root(),
        "bob-token-0123456789",
        &["clone", &url, bob2.to_str().unwrap()],
    );
    assert_eq!(c, Some(0), "{e}");
    std::fs::write(bob2.join("notes.txt"), b"bob's notes").unwrap();
    env.ok_in(&bob2, &["add", "."]);
    env.ok_in(&bob2, &["commit", "-m", "notes"]);
    let (c, e) = run(&bob2, "bob-token-0123456789", &["push"]);
    assert_eq!(c, Some(0), "{e}");
    let (c, e) = run(&env.repo(), "ann-token-0123456789", &["pull"]);
    assert_eq!(c, Some(0), "{e}");
    write_random(&env.repo().join("hero.psd"), 50_000, 10);
    env.ok(&["add", "."]);
    env.ok(&["commit", "-m", "ann's hero"]);
    let (c, e) = run(&env.repo(), "ann-token-0123456789", &["push"]);
    assert_eq!(c, Some(0), "{e}");
}

#[test]
fn on_a_server_without_users_your_own_lock_does_not_stop_your_push() {
    let env = Env::new();
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--create-on-push"],
    );
    commit_files(&env, &[("h.psd", 20_000, 1)], "one");
    env.ok(&["remote", "add", "origin", &server.repo_url("film")]);
    ok_in(&env, &env.repo(), &["push", "-u", "origin", "main"]);
    // Without users a lock records the locker's name: none, no lock (a
    // nameless lock would be everyone's).
    let out = env
        .cmd(&["lock", "h.psd"])
        .env_remove("MEDIAGIT_AUTHOR_NAME")
        .env_remove("MEDIAGIT_AUTHOR_EMAIL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("none is set"),
        "{}",
        text(&out.stderr)
    );
    assert!(env.ok(&["locks"]).trim().is_empty());
    // A lock an older server recorded as "anonymous" is no one's: not
    // released by a client calling itself that (only --force breaks it).
    if let Some(root) = &server.root {
        let dir = root.join("film/locks/files");
        std::fs::create_dir_all(&dir).unwrap();
        let key = std::process::Command::new("sh")
            .args(["-c", "printf %s legacy.psd | sha256sum"])
            .output()
            .unwrap();
        std::fs::write(
            dir.join(&text(&key.stdout)[..64]),
            br#"{"path":"legacy.psd","owner":"anonymous","created":1700000000}"#,
        )
        .unwrap();
        let out = env
            .cmd(&["unlock", "legacy.psd"])
            .env("MEDIAGIT_AUTHOR_NAME", "anonymous")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(env.ok(&["locks"]).contains("legacy.psd"));
        env.ok(&["unlock", "--force", "legacy.psd"]);
    }
    ok_in(&env, &env.repo(), &["lock", "h.psd"]);
    write_random(&env.repo().join("h.psd"), 20_000, 2);
    env.ok(&["add", "."]);
    env.ok(&["commit", "-m", "two"]);
    ok_in(&env, &env.repo(), &["push"]);
    // Someone else (another author name) is stopped.
    let other = env.root().join("other");
    ok_in(
        &env,
        env.root(),
        &["clone", &server.repo_url("film"), other.to_str().unwrap()],
    );
    write_random(&other.join("h.psd"), 20_000, 3);
    env.ok_in(&other, &["add", "."]);
    env.ok_in(&other, &["commit", "-m", "theirs"]);
    let out = env
        .cmd_in(&other, &["push"])
        .env("MEDIAGIT_AUTHOR_NAME", "Somebody Else")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("h.psd (locked by Test User)"),
        "{}",
        text(&out.stderr)
    );
}

/// The permission bits of a working-tree file (tests run as root, who
/// writes read-only files anyway: the bits are what a user meets).
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn lockable_files_are_read_only_until_locked_here() {
    let env = Env::new();
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--create-on-push"],
    );
    std::fs::create_dir_all(env.repo().join("art")).unwrap();
    commit_files(
        &env,
        &[
            ("art/cover.psd", 5_000, 1),
            ("scene.blend", 5_000, 2),
            ("notes.txt", 100, 3),
        ],
        "one",
    );
    std::fs::set_permissions(
        env.repo().join("scene.blend"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    env.ok(&["add", "."]);
    env.ok(&["commit", "-m", "executable"]);
    env.ok(&["remote", "add", "origin", &server.repo_url("film")]);
    ok_in(&env, &env.repo(), &["push", "-u", "origin", "main"]);
    let r = env.repo();

    // Setting the patterns makes tracked matches read-only at once.
    let err = fail_in(&env, &r, &["config", "locks.patterns", "*.psd, [z-a]"]);
    assert!(
        err.contains("\"[z-a]\"") && err.contains("invalid range"),
        "{err}"
    );
    assert!(
        env.cmd(&["config", "locks.patterns"])
            .output()
            .unwrap()
            .status
            .code()
            == Some(1)
    );
    let err = ok_in(&env, &r, &["config", "locks.patterns", "*.psd, *.blend"]);
    assert!(err.contains("2 lockable file(s) made read-only"), "{err}");
    assert_eq!(mode(&r.join("art/cover.psd")), 0o444);
    assert_eq!(mode(&r.join("scene.blend")), 0o555, "exec bit kept");
    assert_eq!(mode(&r.join("notes.txt")), 0o644);
    assert_eq!(
        env.ok(&["config", "locks.patterns"]).trim(),
        r#"["*.psd", "*.blend"]"#
    );
    // A permission change is not a change of the file.
    assert_eq!(env.ok(&["status", "--porcelain"]).trim(), "");

    // Locking makes it writable here; unlocking read-only again.
    let err = ok_in(&env, &r, &["lock", "art/cover.psd"]);
    assert!(err.contains("art/cover.psd is writable"), "{err}");
    assert_eq!(mode(&r.join("art/cover.psd")), 0o644);
    // Checking out again (another branch, the same file) keeps it writable:
    // the lock is held here.
    env.ok(&["switch", "-c", "other"]);
    write_random(&r.join("art/cover.psd"), 5_000, 9);
    // Changes not committed: unlock refuses (they would be lost to
    // whoever locks next), and the lock and the mode stay.
    let err = fail_in(&env, &r, &["unlock", "art/cover.psd"]);
    assert!(
        err.contains("art/cover.psd has changes that are not committed"),
        "{err}"
    );
    assert_eq!(mode(&r.join("art/cover.psd")), 0o644);
    assert!(ok_in(&env, &r, &["locks"]).is_empty());
    assert!(env.ok(&["locks"]).contains("art/cover.psd"));
    env.ok(&["add", "."]);
    env.ok(&["commit", "-m", "new cover"]);
    let err = ok_in(&env, &r, &["unlock", "art/cover.psd"]);
    assert!(err.contains("art/cover.psd is read-only again"), "{err}");
    assert_eq!(mode(&r.join("art/cover.psd")), 0o444);
    assert!(!env.ok(&["locks"]).contains("art/cover.psd"));

    // Files a checkout writes come out read-only unless held here.
    env.ok(&["switch", "main"]);
    assert_eq!(mode(&r.join("art/cover.psd")), 0o444);
    ok_in(&env, &r, &["lock", "art/cover.psd"]);
    env.ok(&["switch", "other"]);
    assert_eq!(mode(&r.join("art/cover.psd")), 0o644, "held here: writable");
    ok_in(&env, &r, &["unlock", "art/cover.psd"]);

    // A fresh clone with the patterns set: read-only from the start.
    let other = env.root().join("other");
    ok_in(
        &env,
        env.root(),
        &["clone", &server.repo_url("film"), other.to_str().unwrap()],
    );
    let err = ok_in(&env, &other, &["config", "locks.patterns", "art/"]);
    assert!(err.contains("1 lockable file(s) made read-only"), "{err}");
    assert_eq!(
        mode(&other.join("art/cover.psd")),
        0o444,
        "a directory pattern"
    );
    assert_eq!(mode(&other.join("scene.blend")), 0o755);

    // Locking what you hold already is no error (and records it here).
    ok_in(&env, &r, &["lock", "art/cover.psd"]);
    let err = ok_in(&env, &r, &["lock", "art/cover.psd"]);
    assert!(err.contains("already locked by you"), "{err}");
    // On a server without users, another name cannot release it...
    let out = env
        .cmd_in(&other, &["unlock", "art/cover.psd"])
        .env("MEDIAGIT_AUTHOR_NAME", "Somebody Else")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("only its owner unlocks it"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(mode(&r.join("art/cover.psd")), 0o644);
    // ...but may break it with --force; the working tree that held it
    // then finds it gone on its next unlock, and the file is read-only
    // again (not writable for good).
    let out = env
        .cmd_in(&other, &["unlock", "--force", "art/cover.psd"])
        .env("MEDIAGIT_AUTHOR_NAME", "Somebody Else")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = fail_in(&env, &r, &["unlock", "art/cover.psd"]);
    assert!(err.contains("is not locked"), "{err}");
    assert_eq!(mode(&r.join("art/cover.psd")), 0o444);
    assert!(!std::fs::read_to_string(r.join(".mediagit/locks-held"))
        .unwrap()
        .contains("cover.psd"));

    // Removing the patterns gives the files back their write bit.
    let err = ok_in(&env, &r, &["config", "--unset", "locks.patterns"]);
    assert!(err.contains("2 file(s) made writable"), "{err}");
    assert_eq!(mode(&r.join("art/cover.psd")), 0o644);
    assert_eq!(mode(&r.join("scene.blend")), 0o755);
    assert_eq!(env.ok(&["status", "--porcelain"]).trim(), "");

    // A symlink matching a pattern is never followed to its target.
    let outside = env.root().join("outside.psd");
    std::fs::write(&outside, b"not yours").unwrap();
    std::os::unix::fs::symlink(&outside, r.join("link.psd")).unwrap();
    env.ok(&["add", "link.psd"]);
    env.ok(&["commit", "-m", "link"]);
    ok_in(&env, &r, &["config", "locks.patterns", "*.psd"]);
    assert_eq!(mode(&outside), 0o644, "the link's target is untouched");

    // A damaged list of held locks names itself and the way out, and a
    // FIFO in its place hangs nothing; the checkout changes nothing.
    let held = r.join(".mediagit/locks-held");
    std::fs::write(&held, b"{not json").unwrap();
    let err = fail_in(&env, &r, &["switch", "main"]);
    assert!(
        err.contains("locks-held") && err.contains("delete it"),
        "{err}"
    );
    assert!(env.ok(&["status", "-s"]).contains("## other"));
    std::fs::remove_file(&held).unwrap();
    let fifo = std::ffi::CString::new(held.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path we own; no memory is kept.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let mut child = env.std_cmd_in(&r, &["switch", "main"]).spawn().unwrap();
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed().as_secs() > 30 {
            let _ = child.kill();
            panic!("switch hung on a FIFO at .mediagit/locks-held");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    std::fs::remove_file(&held).unwrap();
    env.ok(&["switch", "main"]);
}

#[test]
fn init_bare_with_a_server_url_creates_the_repository_there() {
    let env = Env::empty();
    let auth = auth_file(&env, &[("ann", "**", "write"), ("boss", "**", "admin")]);
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--auth-file", auth.to_str().unwrap()],
    );
    let url = server.repo_url("team/film");
    let as_user = |user: &str, dir: &Path, args: &[&str]| {
        env.cmd_in(dir, args)
            .env("MEDIAGIT_TOKEN", format!("{user}-token-0123456789"))
            .output()
            .unwrap()
    };
    // Without --bare: a usage error (a server repository has no working tree).
    let out = as_user("boss", env.root(), &["init", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("init --bare"),
        "{}",
        text(&out.stderr)
    );
    // A writer may not create repositories (the server has no
    // --create-on-push); nothing is made.
    let out = as_user("ann", env.root(), &["init", "--bare", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ann may not create repository team/film"),
        "{}",
        text(&out.stderr)
    );
    if let Some(root) = &server.root {
        assert!(!root.join("team/film").exists());
    }
    // A name that would leave the server's root is refused by the client.
    let bad = format!("{}/../etc", server.url);
    let out = as_user("boss", env.root(), &["init", "--bare", &bad]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("repository name"),
        "{}",
        text(&out.stderr)
    );
    // An admin creates it, with the first branch's name; twice is refused.
    let out = as_user("boss", env.root(), &["init", "--bare", "-b", "trunk", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Initialized empty MediaGit repository team/film on"),
        "{}",
        text(&out.stdout)
    );
    let out = as_user("boss", env.root(), &["init", "--bare", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already holds a MediaGit repository"));
    // Nor around one, nor inside one.
    for (name, why) in [
        ("team", "repository team/film is inside it"),
        ("team/film/x", "inside repository team/film"),
    ] {
        let out = as_user(
            "boss",
            env.root(),
            &["init", "--bare", &server.repo_url(name)],
        );
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(
            text(&out.stderr).contains(why),
            "{name}: {}",
            text(&out.stderr)
        );
    }
    // A writer now pushes to it (no --create-on-push needed) and another
    // clone gets the bytes back, on the branch the admin chose.
    let a = env.root().join("a");
    let out = as_user("ann", env.root(), &["clone", &url, a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    write_random(&a.join("shot.mov"), 300_000, 7);
    env.ok_in(&a, &["add", "."]);
    env.ok_in(&a, &["commit", "-m", "first"]);
    let out = as_user("ann", &a, &["push"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("trunk -> trunk"),
        "{}",
        text(&out.stderr)
    );
    let b = env.root().join("b");
    let out = as_user("ann", env.root(), &["clone", &url, b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        sha256_file(&b.join("shot.mov")),
        sha256_file(&a.join("shot.mov"))
    );

    // Encrypted: the key files are made by the client; the server gets
    // ciphertext and never the branch name.
    let vault = server.repo_url("vault");
    let out = as_user(
        "boss",
        env.root(),
        &[
            "init",
            "--bare",
            "--encrypt",
            "--kdf-memory",
            "19",
            "--kdf-passes",
            "2",
            "-b",
            "project-falcon",
            &vault,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("empty encrypted MediaGit repository vault"));
    let c = env.root().join("c");
    let out = as_user("ann", env.root(), &["clone", &vault, c.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(c.join("nda.txt"), b"NDA-CLIENT-FOOTAGE".repeat(100)).unwrap();
    env.ok_in(&c, &["add", "."]);
    env.ok_in(&c, &["commit", "-m", "secret"]);
    let out = as_user("ann", &c, &["push"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    if let Some(root) = &server.root {
        assert!(root.join("vault/keys").is_dir());
        assert_none_of(
            &root.join("vault"),
            &[b"NDA-CLIENT-FOOTAGE", b"project-falcon", b"nda.txt"],
        );
    }
    let d = env.root().join("d");
    let out = as_user("ann", env.root(), &["clone", &vault, d.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(d.join("nda.txt")).unwrap(),
        b"NDA-CLIENT-FOOTAGE".repeat(100)
    );
    // On the server's disk it is a bare repository like any other, though
    // its HEAD arrived sealed: server-side commands work on it.
    if let Some(root) = &server.root {
        let v = root.join("vault");
        assert!(env.ok_in(&v, &["fsck"]).contains("0 problems"));
        assert!(env.ok_in(&v, &["log"]).contains("secret"));
        assert!(env.ok_in(&v, &["branch"]).contains("* project-falcon"));
        env.ok_in(&v, &["gc"]);
        let copy = env.root().join("vault-copy");
        env.ok_in(
            env.root(),
            &[
                "clone",
                "--bare",
                v.to_str().unwrap(),
                copy.to_str().unwrap(),
            ],
        );
        assert!(env.ok_in(&copy, &["log"]).contains("secret"));
    }
}

/// Whether process `pid` is stopped (SIGSTOP).
#[cfg(feature = "failpoints")]
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
        .unwrap_or(false)
}

/// The stored bytes of chunks a `push --json` reports it sent.
#[cfg(feature = "failpoints")]
fn pushed_bytes(out: &std::process::Output) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("push --json: {e}: {}", text(&out.stdout)));
    v["transfer"]["bytes"].as_u64().unwrap()
}

/// A push killed midway, then one cut off by the server going down, each
/// resumed by the next push without sending again what had arrived; the
/// server's branch moves only when everything is there.
#[cfg(feature = "failpoints")]
#[test]
fn an_interrupted_push_through_a_server_resumes_without_resending() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    let root = env.root().join("hosted");
    let mut server = Server::start(&env, &root, None, &["--create-on-push"]);
    // Checkpoints every MiB (the server's repository takes this setting
    // when the push creates it), so a 12 MiB push stores ~12 packs.
    env.ok(&["config", "core.checkpoint_bytes", "1048576"]);
    let files = [
        ("a.mov", 4u64 << 20, 1u64),
        ("b.mov", 4 << 20, 2),
        ("c.mov", 4 << 20, 3),
    ];
    commit_files(&env, &files, "footage");
    let url = server.repo_url("film");
    env.ok(&["remote", "add", "origin", &url]);
    let remote_main = |env: &Env| env.ok(&["ls-remote", "origin"]).contains("refs/heads/main");
    // A full push's chunk bytes, measured on a second repository.
    let total = {
        let probe = env.root().join("probe");
        ok_in(
            &env,
            env.root(),
            &[
                "clone",
                env.repo().to_str().unwrap(),
                probe.to_str().unwrap(),
            ],
        );
        let out = env
            .cmd_in(
                &probe,
                &["push", "--json", &server.repo_url("probe"), "main"],
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        pushed_bytes(&out)
    };
    assert!(total > 12 << 20, "{total}");

    // 1. SIGKILLed after its third pack reached the server.
    let out = env
        .cmd(&["push", "-u", "origin", "main"])
        .env("MEDIAGIT_FAILPOINTS", "write:idx-stored@3")
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !remote_main(&env),
        "the branch moved before its objects were all there"
    );

    // 2. Stopped after two more packs; the server goes down meanwhile.
    let child = env
        .std_cmd_in(&env.repo(), &["push", "--json", "origin", "main"])
        .env("MEDIAGIT_FAILPOINTS", "write:idx-stored@2=stop")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !is_stopped(child.id()) {
        assert!(
            t0.elapsed().as_secs() < 60,
            "the push never reached its second pack"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let bind = server.url.trim_start_matches("http://").to_string();
    unsafe {
        // SAFETY: kill(2) on our own child's pid; no memory involved.
        libc::kill(server.child.id() as i32, libc::SIGKILL);
    }
    server.child.wait().unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-CONT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the push hung after its server went down")
        .unwrap();
    waiter.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&bind), "the error names the server: {err}");

    // 3. The server is back (same address, same repositories): the push
    // completes, sending only what had not arrived.
    let server = Server::start_at(
        &env,
        &root,
        server.store.as_deref(),
        &bind,
        &["--create-on-push"],
    );
    let out = env
        .cmd(&["push", "--json", "origin", "main"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rest = pushed_bytes(&out);
    assert!(
        rest + (5 << 20) <= total,
        "the last push sent {rest} of {total} bytes: what the two interrupted pushes stored (at least 5 packs of 1 MiB) was sent again"
    );
    assert!(remote_main(&env));
    let out = env
        .cmd(&["push", "--json", "origin", "main"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(pushed_bytes(&out), 0);
    // The server's copy is whole.
    let dest = env.root().join("dest");
    ok_in(
        &env,
        env.root(),
        &["clone", &server.repo_url("film"), dest.to_str().unwrap()],
    );
    for (name, ..) in files {
        assert_eq!(
            sha256_file(&dest.join(name)),
            sha256_file(&env.repo().join(name)),
            "{name}"
        );
    }
    ok_in(&env, &dest, &["fsck"]);
}

/// Two clients creating one repository name at once (`init --bare URL`,
/// one encrypted, one not): exactly one succeeds, the other is told, and
/// what is there is a whole repository of the winner.
#[test]
fn of_two_inits_of_one_name_at_once_exactly_one_wins() {
    let env = Env::empty();
    let server = Server::start(&env, &env.root().join("hosted"), None, &[]);
    for i in 0..6 {
        let url = server.repo_url(&format!("race{i}"));
        let enc = [
            "init",
            "--bare",
            "--encrypt",
            "--kdf-memory",
            "19",
            "--kdf-passes",
            "2",
            &url,
        ];
        let plain = ["init", "--bare", &url];
        let spawn = |args: &[&str]| {
            env.std_cmd_in(env.root(), args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        // Both running before either is waited for (the encrypted one
        // first: it spends a moment on its key before writing anything).
        let (a, b) = (spawn(&enc), spawn(&plain));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let won = [&a, &b].iter().filter(|o| o.status.success()).count();
        assert_eq!(won, 1, "{}\n{}", text(&a.stderr), text(&b.stderr));
        let lost = if a.status.success() { &b } else { &a };
        let e = text(&lost.stderr);
        assert!(
            e.contains("another client is creating a repository there")
                || e.contains("already holds"),
            "{e}"
        );
        let dest = env.root().join(format!("race{i}-clone"));
        ok_in(&env, env.root(), &["clone", &url, dest.to_str().unwrap()]);
        std::fs::write(dest.join("f.txt"), b"x").unwrap();
        env.ok_in(&dest, &["add", "."]);
        env.ok_in(&dest, &["commit", "-m", "one"]);
        ok_in(&env, &dest, &["push"]);
        if let Some(root) = &server.root {
            env.ok_in(&root.join(format!("race{i}")), &["fsck"]);
        }
    }
}

/// The upload spool of a server that was killed is removed by the next
/// server on that root, once an hour old; a live process's is kept.
#[test]
fn a_killed_servers_upload_spool_is_removed_at_the_next_start() {
    if fresh_store_url().is_some() {
        return; // (--root only: a store's spools are in the temporary directory)
    }
    let env = Env::new();
    let root = env.root().join("hosted");
    let spools = root.join(".mediagit-serve-tmp");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let make = |name: &str, aged: bool| {
        let d = spools.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("upload-x");
        std::fs::write(&f, vec![7u8; 1 << 20]).unwrap();
        if aged {
            for p in [&f, &d] {
                std::fs::File::open(p).unwrap().set_modified(old).unwrap();
            }
        }
        d
    };
    // (pid_max on Linux is at most 2^22: this one never runs.)
    let dead = make("4194305", true);
    let fresh = make("4194306", false);
    // Old at the top, a file changed recently two levels down: kept.
    let nested = make("4194307", true);
    std::fs::create_dir_all(nested.join("sub/deeper")).unwrap();
    std::fs::write(nested.join("sub/deeper/recent"), b"z").unwrap();
    for p in [
        nested.join("sub/deeper"),
        nested.join("sub"),
        nested.clone(),
    ] {
        std::fs::File::open(&p).unwrap().set_modified(old).unwrap();
    }
    let alive = make(&std::process::id().to_string(), true);
    let _server = Server::start(&env, &root, None, &[]);
    assert!(!dead.exists(), "a dead server's old spool stays");
    assert!(fresh.exists(), "a spool changed within the hour is kept");
    assert!(
        nested.exists(),
        "a spool with a recent file deep inside is kept"
    );
    assert!(alive.exists(), "a live process's spool is kept");
}

/// Whoever can write a store cannot make files read-only (or choose
/// remotes) in the working trees that join it: `[locks]`, `[remotes]` and
/// `[branches]` of a store's config.toml are ignored.
#[test]
fn a_stores_config_never_sets_a_working_trees_locks() {
    let env = Env::empty();
    let store = env.root().join("store");
    let w = env.root().join("w");
    let url = format!("file://{}", store.display());
    env.ok_in(
        env.root(),
        &["init", w.to_str().unwrap(), "--storage", &url],
    );
    std::fs::write(w.join("a.psd"), b"pixels").unwrap();
    env.ok_in(&w, &["add", "."]);
    env.ok_in(&w, &["commit", "-m", "one"]);
    let cfg = store.join("config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        "\n[locks]\npatterns = [\"*.psd\"]\n\n[remotes.evil]\nurl = \"/tmp/elsewhere\"\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let joined = env.root().join("joined");
    env.ok_in(env.root(), &["clone", &url, joined.to_str().unwrap()]);
    assert_eq!(mode(&joined.join("a.psd")), 0o644);
    let local = std::fs::read_to_string(joined.join(".mediagit/config.toml")).unwrap();
    assert!(
        !local.contains("locks") && !local.contains("evil"),
        "{local}"
    );
    env.ok_in(&joined, &["switch", "-c", "b"]);
    assert!(env.ok_in(&joined, &["remote", "-v"]).trim().is_empty());
}

/// Every entry of a directory, sorted (what must not change outside the
/// hosted repositories).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir_names(dir, dir);
    v.sort();
    v
}

fn walkdir_names(top: &Path, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        out.push(p.strip_prefix(top).unwrap().display().to_string());
        if e.file_type().unwrap().is_dir() {
            out.extend(walkdir_names(top, &p));
        }
    }
    out
}

/// Found by a hostile probe: the upload spool `ROOT/.mediagit-serve-tmp/PID`
/// was reached by its path, so someone able to write the root (a shared,
/// group-writable one) could swap it for a link: the server then read an
/// outside file into a pack, or made files where the link pointed; and at
/// start the server swept "dead spools" (numbered folders) wherever a
/// linked `.mediagit-serve-tmp` pointed, deleting them.
#[test]
fn the_upload_spool_is_private_and_never_reached_through_a_link() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let root = env.root().join("hosted");
    std::fs::create_dir_all(&root).unwrap();
    let outside = env.root().join("outside");
    std::fs::create_dir_all(outside.join("2019/album")).unwrap();
    std::fs::write(outside.join("2019/album/photo.jpg"), b"keep").unwrap();
    let hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for p in [
        outside.join("2019/album/photo.jpg"),
        outside.join("2019/album"),
        outside.join("2019"),
    ] {
        std::fs::File::open(&p)
            .unwrap()
            .set_modified(hours_ago)
            .unwrap();
    }
    let before = listing(&outside);
    let spools = root.join(".mediagit-serve-tmp");
    std::os::unix::fs::symlink(&outside, &spools).unwrap();
    let root_s = root.to_str().unwrap();
    let out = env
        .cmd_in(
            env.root(),
            &["serve", "--root", root_s, "--bind", "127.0.0.1:0"],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains(".mediagit-serve-tmp") && e.contains("symbolic link"),
        "{e}"
    );
    assert_eq!(listing(&outside), before, "the sweep went through the link");

    // Another user's folder is not used either.
    std::fs::remove_file(&spools).unwrap();
    std::fs::create_dir(&spools).unwrap();
    if unsafe { libc::geteuid() } == 0 {
        // SAFETY: geteuid(2) reads the process's id; chown(2) of a path
        // we made; no memory involved beyond the C string.
        let c = std::ffi::CString::new(spools.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        let out = env
            .cmd_in(
                env.root(),
                &["serve", "--root", root_s, "--bind", "127.0.0.1:0"],
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let e = text(&out.stderr);
        assert!(e.contains("another user"), "{e}");
        std::fs::remove_dir(&spools).unwrap();
        std::fs::create_dir(&spools).unwrap();
    }
    // A folder others may write in is made private.
    std::fs::set_permissions(&spools, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut args = vec![
        "serve",
        "--root",
        root_s,
        "--bind",
        "127.0.0.1:0",
        "--create-on-push",
    ];
    let mut cmd = env.std_cmd_in(env.root(), &args);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("mediagit serve: listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let server = Server {
        child,
        url: base,
        root: Some(root.clone()),
        store: None,
    };
    args.clear();
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&spools), 0o700);
    let mine = spools.join(server.child.id().to_string());
    assert_eq!(mode(&mine), 0o700);
    let url = server.repo_url("film");
    commit_files(&env, &[("a.bin", 3_000_000, 1)], "one");
    ok_in(&env, &env.repo(), &["push", &url, "main"]);
    // The spool swapped for a link while the server runs: uploads still
    // go to the server's own folder, never where the link points.
    std::fs::rename(&spools, root.join(".moved")).unwrap();
    std::os::unix::fs::symlink(&outside, &spools).unwrap();
    commit_files(&env, &[("b.bin", 5_000_000, 2)], "two");
    ok_in(&env, &env.repo(), &["push", &url, "main"]);
    assert_eq!(listing(&outside), before);
    let dest = env.root().join("copy");
    ok_in(&env, env.root(), &["clone", &url, dest.to_str().unwrap()]);
    assert_eq!(tree_hashes(&dest), tree_hashes(&env.repo()));
    drop(server);
    // Stopped: its own folder is gone (from where it really is).
    assert!(!root.join(".moved").join(mine.file_name().unwrap()).exists());
}

/// Found by a hostile probe: creating a repository made its layout
/// (`refs/heads`, `refs/tags`, `packs`) by path, so links planted in the
/// new repository's directory made the server create folders outside.
#[test]
fn creating_a_repository_never_follows_a_link_planted_in_its_directory() {
    let env = Env::new();
    let server = Server::start(
        &env,
        &env.root().join("hosted"),
        None,
        &["--create-on-push"],
    );
    let Some(root) = server.root.clone() else {
        return; // plants links on disk
    };
    let outside = env.root().join("outside");
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    let before = listing(&outside);
    std::fs::create_dir_all(root.join("newrepo")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("newrepo/refs")).unwrap();
    std::os::unix::fs::symlink(outside.join("sub"), root.join("newrepo/packs")).unwrap();
    commit_files(&env, &[("a.bin", 50_000, 1)], "one");
    let e = fail_in(
        &env,
        &env.repo(),
        &["push", &server.repo_url("newrepo"), "main"],
    );
    assert!(e.contains("newrepo"), "{e}");
    assert_eq!(listing(&outside), before);
}

/// Found by a hostile probe: any command taking a bare repository's lock
/// (`gc`, `fsck` run by the admin) emptied its `tmp/`, where a server
/// hosting it writes (`put-*`, renamed into place a moment later); and
/// nothing ever removed the `put-*` files of a killed server.
#[test]
fn a_locking_command_leaves_the_stores_fresh_writes_and_removes_old_ones() {
    let env = Env::new();
    if fresh_store_url().is_some() {
        return; // files in a directory repository's tmp/
    }
    let bare = env.root().join("hosted/film");
    ok_in(
        &env,
        env.root(),
        &["init", "--bare", bare.to_str().unwrap()],
    );
    let tmp = bare.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    for n in ["put-live", "put-dead", "left-by-a-crash"] {
        std::fs::write(tmp.join(n), b"x").unwrap();
    }
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(tmp.join("put-dead"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    ok_in(&env, &bare, &["gc"]);
    let mut left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["put-live"]);
}

/// Found by a hostile probe: with a `--root` others can write and no
/// sticky bit, anyone could rename a repository under a name their token
/// has rights on (past the auth file), or make a folder the server's spool.
#[test]
fn a_root_others_can_write_without_the_sticky_bit_is_not_served() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let root = env.root().join("shared-root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o2775)).unwrap();
    let root_s = root.to_str().unwrap();
    let out = env
        .cmd_in(
            env.root(),
            &["serve", "--root", root_s, "--bind", "127.0.0.1:0"],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(e.contains("sticky bit") && e.contains("chmod +t"), "{e}");
    assert!(!root.join(".mediagit-serve-tmp").exists());
    // With the sticky bit it is served.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o3775)).unwrap();
    let mut child = env
        .std_cmd_in(
            env.root(),
            &["serve", "--root", root_s, "--bind", "127.0.0.1:0"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server {
        child,
        url: line
            .trim()
            .trim_start_matches("mediagit serve: listening on ")
            .to_string(),
        root: Some(root.clone()),
        store: None,
    };
    assert!(line.contains("listening"), "{line}");
    drop(server);
}

#[test]
fn folders_of_another_user_below_the_root_and_a_root_of_another_user_are_not_served() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    if fresh_store_url().is_some() {
        return; // folders on the server's disk
    }
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return; // needs chown to another user
    }
    let root = env.root().join("hosted");
    // Someone else made `team` before anyone pushed below it: whatever
    // the server made there, they could swap.
    std::fs::create_dir_all(root.join("team")).unwrap();
    std::os::unix::fs::chown(root.join("team"), Some(65534), Some(65534)).unwrap();
    // And `open` anyone can write.
    std::fs::create_dir_all(root.join("open")).unwrap();
    std::fs::set_permissions(root.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = Server::start(&env, &root, None, &["--create-on-push"]);
    commit_files(&env, &[("a.bin", 10_000, 1)], "one");
    for (name, why) in [
        ("team/film", "belongs to another user (uid 65534)"),
        ("open/film", "every user can write it (mode 0777)"),
    ] {
        let e = fail_in(&env, &env.repo(), &["push", &server.repo_url(name), "main"]);
        assert!(e.contains(why), "{name}: {e}");
        assert!(!root.join(name).exists(), "{name}");
    }
    // A folder the server made itself is served.
    ok_in(
        &env,
        &env.repo(),
        &["push", &server.repo_url("mine/film"), "main"],
    );
    assert!(root.join("mine/film").is_dir());
    drop(server);

    // A root another user owns (even with the sticky bit): its owner can
    // rename what it holds.
    let theirs = env.root().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = env
        .cmd_in(
            env.root(),
            &[
                "serve",
                "--root",
                theirs.to_str().unwrap(),
                "--bind",
                "127.0.0.1:0",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(e.contains("belongs to another user (uid 65534)"), "{e}");
    assert!(!theirs.join(".mediagit-serve-tmp").exists());
    // Nor a root of ours below a folder others may rename entries of.
    let parent = env.root().join("shared");
    std::fs::create_dir_all(parent.join("srv")).unwrap();
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env
        .cmd_in(
            env.root(),
            &[
                "serve",
                "--root",
                parent.join("srv").to_str().unwrap(),
                "--bind",
                "127.0.0.1:0",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(e.contains("no sticky bit") && e.contains("shared"), "{e}");
}
