//! Shared harness for CLI tests: a temp directory, the real `mediagit` binary.
#![allow(dead_code, unused_imports)]
use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub use mediagit_testutils::{
    age_files, copy_media, media_dir, rewrite_config_as_format_1, sha256_file, tree_hashes,
    write_random,
};

pub struct Env {
    pub tmp: tempfile::TempDir,
}

/// `MEDIAGIT_TEST_STORAGE=s3://BUCKET` (or az://, gs://) re-runs the CLI
/// tests with every repository's objects and refs in that store, each under
/// its own prefix; `scripts/test.sh` does so against its S3 server.
pub fn test_store() -> Option<String> {
    std::env::var("MEDIAGIT_TEST_STORAGE")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A fresh store URL under the test store, or `None` when tests run locally.
pub fn fresh_store_url() -> Option<String> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    test_store().map(|base| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!(
            "{}/cli-{}-{nanos}-{n}",
            base.trim_end_matches('/'),
            std::process::id()
        )
    })
}

/// `MEDIAGIT_TEST_ENCRYPT=1` re-runs the CLI tests with every repository
/// made by [`Env::new`] encrypted (`init --encrypt`, the cheapest key
/// file); `scripts/test.sh` does so against its S3 server.
pub fn test_encrypt() -> bool {
    std::env::var_os("MEDIAGIT_TEST_ENCRYPT").is_some_and(|v| !v.is_empty())
}

/// The passphrase every test command gets in `MEDIAGIT_PASSPHRASE`.
pub const TEST_PASSPHRASE: &str = "test passphrase";

impl Env {
    /// A temp dir with an initialized repository in `repo/` (its objects in
    /// the test store when `MEDIAGIT_TEST_STORAGE` is set; encrypted when
    /// `MEDIAGIT_TEST_ENCRYPT` is).
    pub fn new() -> Env {
        let env = Env::empty();
        let mut args = vec!["init".to_string(), "repo".to_string()];
        if let Some(url) = fresh_store_url() {
            args.extend(["--storage".into(), url]);
        }
        if test_encrypt() {
            args.extend(["--encrypt", "--kdf-memory", "19", "--kdf-passes", "2"].map(String::from));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.ok(&args);
        env
    }

    /// Whether this run keeps objects in an object store (see [`test_store`]).
    pub fn remote(&self) -> bool {
        test_store().is_some()
    }

    /// A temp dir, nothing in it.
    pub fn empty() -> Env {
        Env {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The working tree of `repo/`.
    pub fn repo(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// `mediagit` run in `repo/` (or in the temp root if `repo/` does not exist).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let dir = if self.repo().exists() {
            self.repo()
        } else {
            self.root().to_path_buf()
        };
        self.cmd_in(&dir, args)
    }

    pub fn cmd_in(&self, dir: &Path, args: &[&str]) -> Command {
        Command::from_std(self.std_cmd_in(dir, args))
    }

    /// [`Env::cmd_in`] as a `std::process::Command`, to spawn (a server,
    /// commands running at once).
    pub fn std_cmd_in(&self, dir: &Path, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("mediagit"));
        c.current_dir(dir)
            .env("MEDIAGIT_AUTHOR_NAME", "Test User")
            .env("MEDIAGIT_AUTHOR_EMAIL", "test@example.com")
            // The developer's own settings and credential files stay out:
            // a test must not depend on, or send, what is in their $HOME.
            .env("HOME", self.root().join("home"))
            .env("XDG_CONFIG_HOME", self.root().join("home/.config"))
            // Keys kept by `key unlock` go here (absent unless a test
            // makes it), never into the developer's session.
            .env("XDG_RUNTIME_DIR", self.root().join("run"))
            .env_remove("MEDIAGIT_FRESHEN_AFTER")
            // Opens encrypted repositories; unused by the others.
            .env("MEDIAGIT_PASSPHRASE", TEST_PASSPHRASE)
            .env_remove("MEDIAGIT_PASSPHRASE_FILE")
            .env_remove("MEDIAGIT_NEW_PASSPHRASE")
            .env_remove("MEDIAGIT_TOKEN")
            .env_remove("MEDIAGIT_CA_FILE")
            .args(args);
        // Cloud credentials only when scripts/test.sh started the local
        // servers (with fake ones); never a developer's real ones.
        if std::env::var_os("MEDIAGIT_TEST_S3").is_none() {
            for v in mediagit_storage::object_store_backend::CLOUD_ENV_VARS {
                c.env_remove(v);
            }
        }
        c
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run mediagit");
        assert!(
            out.status.success(),
            "mediagit {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts failure with exit code 1; returns stderr.
    /// Runs in `dir` and asserts success; returns stdout.
    pub fn ok_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.cmd_in(dir, args).output().expect("run mediagit");
        assert!(
            out.status.success(),
            "mediagit {args:?} in {} failed:\nstdout: {}\nstderr: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn fail(&self, args: &[&str]) -> String {
        self.fail_with(1, args)
    }

    /// Runs a command that must fail with exit code `code`; its stderr.
    pub fn fail_with(&self, code: i32, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run mediagit");
        assert_eq!(
            out.status.code(),
            Some(code),
            "mediagit {args:?} should fail with exit {code}:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn write(&self, rel: &str, data: &[u8]) {
        let p = self.repo().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.repo().join(rel)).unwrap()
    }

    /// The full id of a revision.
    pub fn rev(&self, rev: &str) -> String {
        let out = self.ok(&["log", "-n", "1", "--oneline", rev]);
        let short = out.split_whitespace().next().expect("a commit").to_string();
        short
    }

    /// A user settings directory (for `XDG_CONFIG_HOME`) that trusts every
    /// repository: for tests that run the binary as another user
    /// (`setpriv`) on repositories root made.
    pub fn trusting_settings(&self) -> PathBuf {
        let xdg = self.root().join("xdg-trust-all");
        std::fs::create_dir_all(xdg.join("mediagit")).unwrap();
        std::fs::write(
            xdg.join("mediagit/config.toml"),
            "[safe]\ndirectories = [\"*\"]\n",
        )
        .unwrap();
        // Settings others could rewrite are ignored: these stay root's
        // alone (0755/0644), and a test root others may write (opened up
        // for the other user) gets the sticky bit, so nobody can replace
        // them.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode(&xdg, 0o755);
        mode(&xdg.join("mediagit"), 0o755);
        mode(&xdg.join("mediagit/config.toml"), 0o644);
        let root_mode = std::fs::metadata(self.root()).unwrap().permissions().mode();
        if root_mode & 0o002 != 0 {
            mode(self.root(), (root_mode & 0o7777) | 0o1000);
        }
        xdg
    }

    /// Snapshot of `.mediagit` (every file's hash), to prove a failed command changed nothing.
    pub fn repo_state(&self) -> std::collections::BTreeMap<String, String> {
        let mut m = tree_hashes(&self.repo().join(".mediagit"));
        m.remove("lock");
        m
    }
}

/// The size format the CLI prints (`diff`, `show`, `stats`): bytes below
/// 1 KiB, else one decimal and a binary unit. Written out independently of
/// the CLI's own code, so a change there shows up as a failing test.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// The pack files of the repository in `env`, sorted.
pub fn packs(env: &Env) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(env.repo().join(".mediagit/packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map(|e| e == "pack").unwrap_or(false))
        .collect();
    v.sort();
    v
}

/// Every file below `dir` (not following symlinks to directories), sorted.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
