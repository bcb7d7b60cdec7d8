//! `--json` on every read command: each output parses, and its fields
//! (docs/CLI.md, "JSON output") hold what the repository holds.
mod common;

use common::*;
use serde_json::Value;

fn doc(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{s}"))
}

fn lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}")))
        .collect()
}

/// A full 64-digit id that `env.rev` (12 digits) abbreviates.
fn is_rev(v: &Value, env: &Env, rev: &str) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 64 && s.starts_with(&env.rev(rev))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

/// Two commits (the first tagged v1, annotated), then a staged rename, an
/// unstaged modification and an untracked file.
fn history(env: &Env) {
    env.write("a.txt", b"alpha");
    env.write("dir/b.bin", b"bravo bytes");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "first"]);
    env.ok(&["tag", "-m", "release one", "v1"]);
    env.write("dir/b.bin", b"bravo bytes, longer");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "second\n\nbody"]);
    env.ok(&["mv", "a.txt", "renamed.txt"]);
    env.write("dir/b.bin", b"changed again");
    env.write("new.txt", b"untracked");
}

#[test]
fn status_json_names_each_change_and_the_rename_source() {
    let env = Env::new();
    history(&env);
    let v = doc(&env.ok(&["status", "--json"]));
    assert_eq!(v["head"]["branch"], "main");
    assert!(is_rev(&v["head_commit"], &env, "HEAD"));
    assert_eq!(v["clean"], false);
    let staged = v["staged"].as_array().unwrap();
    assert_eq!(staged.len(), 1, "{v}");
    assert_eq!(staged[0]["path"], "renamed.txt");
    assert_eq!(staged[0]["change"], "renamed");
    assert_eq!(staged[0]["from"], "a.txt");
    let unstaged = v["unstaged"].as_array().unwrap();
    assert_eq!(unstaged.len(), 1, "{v}");
    assert_eq!(unstaged[0]["path"], "dir/b.bin");
    assert_eq!(unstaged[0]["change"], "modified");
    assert!(unstaged[0].get("from").is_none());
    assert_eq!(v["untracked"], serde_json::json!(["new.txt"]));
    assert_eq!(v["problems"], serde_json::json!([]));

    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "third"]);
    let v = doc(&env.ok(&["status", "--json"]));
    assert_eq!(v["clean"], true);
    assert_eq!(v["staged"], serde_json::json!([]));
}

#[test]
fn json_output_carries_hostile_names_escaped_and_exact() {
    let env = Env::new();
    // ESC (C0), DEL and a C1 control in a file name: no raw control byte
    // reaches the terminal, and a JSON parser gets the name back exactly.
    let name = "evil\u{1b}[2J\u{7f}\u{9b}31m.txt";
    env.write(name, b"x");
    let raw = env.cmd(&["status", "--json"]).output().unwrap().stdout;
    assert!(
        !raw.iter().any(|&b| b == 0x1b || b == 0x7f) && !raw.windows(2).any(|w| w == [0xc2, 0x9b]),
        "raw control bytes in {}",
        String::from_utf8_lossy(&raw)
    );
    let v = doc(&String::from_utf8(raw).unwrap());
    assert_eq!(v["untracked"][0], name);
    env.ok(&["add", "-A"]);
    let files = lines(&env.ok(&["ls-files", "--json"]));
    assert_eq!(files[0]["path"], name);
}

#[test]
fn log_json_is_one_line_per_commit_with_refs_and_files() {
    let env = Env::new();
    history(&env);
    let out = env.ok(&["log", "--json"]);
    let commits = lines(&out);
    assert_eq!(commits.len(), 2);
    assert!(is_rev(&commits[0]["id"], &env, "HEAD"));
    assert!(is_rev(&commits[1]["id"], &env, "HEAD~1"));
    assert_eq!(commits[0]["parents"].as_array().unwrap().len(), 1);
    assert!(is_rev(&commits[0]["parents"][0], &env, "HEAD~1"));
    assert_eq!(commits[0]["message"], "second\n\nbody\n");
    assert_eq!(
        commits[0]["refs"],
        serde_json::json!(["HEAD", "refs/heads/main"])
    );
    assert_eq!(commits[1]["refs"], serde_json::json!(["refs/tags/v1"]));
    assert!(commits[0]["author"]["time"].as_i64().unwrap() > 1_600_000_000);
    assert!(commits[0].get("files").is_none(), "files only with --stat");

    let with_files = lines(&env.ok(&["log", "--json", "--stat", "-1"]));
    assert_eq!(with_files.len(), 1);
    let files = with_files[0]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["path"], "dir/b.bin");
    assert_eq!(files[0]["change"], "modified");
    assert_eq!(files[0]["old"]["size"], 11);
    assert_eq!(files[0]["new"]["size"], 19);
    // The content id is the SHA-256 of the bytes (a Git LFS oid).
    let expected = {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), b"bravo bytes, longer").unwrap();
        sha256_file(t.path())
    };
    assert_eq!(files[0]["new"]["content"], expected);

    env.cmd(&["log", "--json", "--oneline"]).assert().code(2);
}

#[test]
fn show_json_gives_the_tag_and_the_commit_with_its_files() {
    let env = Env::new();
    history(&env);
    let v = doc(&env.ok(&["show", "--json", "v1"]));
    assert_eq!(v["tag"]["name"], "v1");
    assert_eq!(v["tag"]["annotation"]["message"], "release one\n");
    assert!(is_rev(&v["tag"]["commit"], &env, "HEAD~1"));
    assert!(is_rev(&v["commit"]["id"], &env, "HEAD~1"));
    let files: Vec<&str> = v["commit"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["a.txt", "dir/b.bin"]);
    let v = doc(&env.ok(&["show", "--json"]));
    assert!(v["tag"].is_null());
}

#[test]
fn diff_json_lists_files_and_totals() {
    let env = Env::new();
    history(&env);
    let v = doc(&env.ok(&["diff", "--json", "--cached"]));
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    assert_eq!(v["files"][0]["change"], "renamed");
    assert_eq!(v["totals"]["renamed"], 1);
    let v = doc(&env.ok(&["diff", "--json", "HEAD~1", "HEAD"]));
    assert_eq!(v["totals"]["files"], 1);
    assert_eq!(v["totals"]["modified"], 1);
    let v = doc(&env.ok(&["diff", "--json"]));
    assert_eq!(v["files"][0]["path"], "dir/b.bin");
    assert_eq!(v["files"][0]["new"]["size"], 13);
    env.cmd(&["diff", "--json", "--stat"]).assert().code(2);
}

#[test]
fn ls_files_and_ls_tree_json_match_the_bytes() {
    let env = Env::new();
    history(&env);
    env.ok(&["add", "-A"]);
    let files = lines(&env.ok(&["ls-files", "--json"]));
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["dir/b.bin", "new.txt", "renamed.txt"]);
    for f in &files {
        let p = env.repo().join(f["path"].as_str().unwrap());
        assert_eq!(f["content"], sha256_file(&p), "{f}");
        assert_eq!(f["size"], std::fs::metadata(&p).unwrap().len());
        assert_eq!(f["kind"], "file");
    }
    let top = lines(&env.ok(&["ls-tree", "--json", "HEAD"]));
    assert_eq!(
        top[0],
        serde_json::json!({"path": "a.txt", "kind": "file", "size": 5, "mtime": top[0]["mtime"], "content": top[0]["content"], "manifest": top[0]["manifest"], "target": null})
    );
    assert_eq!(top[1], serde_json::json!({"path": "dir", "kind": "tree"}));
    let all = lines(&env.ok(&["ls-tree", "--json", "-r", "HEAD"]));
    assert_eq!(all.len(), 2);
    assert_eq!(all[1]["path"], "dir/b.bin");
    env.cmd(&["ls-files", "--json", "-l"]).assert().code(2);
}

#[test]
fn branch_tag_and_reflog_json() {
    let env = Env::new();
    history(&env);
    env.ok(&["branch", "create", "side", "HEAD~1"]);
    let v = doc(&env.ok(&["branch", "--json"]));
    assert_eq!(v["head"]["branch"], "main");
    let b = v["branches"].as_array().unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0]["name"], "main");
    assert_eq!(b[0]["current"], true);
    assert_eq!(b[1]["name"], "side");
    assert!(is_rev(&b[1]["commit"], &env, "HEAD~1"));

    env.ok(&["tag", "light"]);
    let v = doc(&env.ok(&["tag", "--json"]));
    let t = v["tags"].as_array().unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0]["name"], "light");
    assert!(t[0]["annotation"].is_null());
    assert_eq!(t[1]["name"], "v1");
    assert_eq!(t[1]["annotation"]["tagger"]["name"], "Test User");

    let v = doc(&env.ok(&["reflog", "--json"]));
    assert_eq!(v["ref"], "HEAD");
    let e = v["entries"].as_array().unwrap();
    assert_eq!(e.len(), 2, "{v}");
    assert!(is_rev(&e[0]["new"], &env, "HEAD"));
    assert_eq!(str_of(&e[1], "old"), "0".repeat(64));
    let v = doc(&env.ok(&["reflog", "--json", "side"]));
    assert_eq!(v["ref"], "refs/heads/side");

    // --json lists; it is refused where nothing is listed (a usage error,
    // itself in JSON since --json was given).
    let err = env.fail_with(2, &["branch", "--json", "create", "x"]);
    let e = doc(&err);
    assert_eq!(e["error"]["code"], "usage", "{err}");
    assert_eq!(e["error"]["exit_code"], 2, "{err}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--json applies to listing branches"),
        "{err}"
    );
    let err = env.fail_with(2, &["tag", "--json", "t2"]);
    assert!(err.contains("--json applies to listing tags"), "{err}");
    let v = doc(&env.ok(&["tag", "--json"]));
    assert_eq!(
        v["tags"].as_array().unwrap().len(),
        2,
        "no tag was made: {v}"
    );
    // The listing subcommands take --json on either side of them.
    for args in [
        ["tag", "--json", "list"],
        ["tag", "list", "--json"],
        ["branch", "--json", "list"],
        ["branch", "list", "--json"],
    ] {
        let v = doc(&env.ok(&args));
        let key = if args[0] == "tag" { "tags" } else { "branches" };
        assert_eq!(v[key].as_array().unwrap().len(), 2, "{args:?}: {v}");
    }
    let err = env.fail_with(2, &["tag", "--json", "list", "HEAD"]);
    assert!(err.contains("--json applies to listing tags"), "{err}");
    assert!(env.fail(&["tag", "delete", "list"]).contains("not found"));
}

#[test]
fn fsck_verify_gc_json_report_damage_and_garbage() {
    let env = Env::new();
    history(&env);
    let v = doc(&env.ok(&["fsck", "--json"]));
    assert_eq!(v["problems"], serde_json::json!([]));
    assert!(v["objects"].as_u64().unwrap() >= 8);
    let v = doc(&env.ok(&["verify", "--json"]));
    assert_eq!(v["revision"], "HEAD");
    assert!(is_rev(&v["commit"], &env, "HEAD"));
    assert_eq!(v["files"], 2);
    assert_eq!(v["bad"], serde_json::json!([]));

    // An unreachable commit: gc --dry-run lists it, fsck --dangling too.
    env.ok(&["branch", "create", "doomed"]);
    env.ok(&["switch", "doomed"]);
    env.write("gone.txt", b"soon unreachable");
    env.ok(&["add", "gone.txt"]);
    env.ok(&["commit", "-m", "doomed work"]);
    let doomed = env.rev("HEAD");
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "delete", "-D", "doomed"]);
    // Reflog times have one-second resolution.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.ok(&["reflog", "expire", "--expire=now"]);
    let v = doc(&env.ok(&["gc", "--dry-run", "--prune", "now", "--json"]));
    assert_eq!(v["dry_run"], true);
    let removed = v["removed"].as_array().unwrap();
    assert!(
        removed
            .iter()
            .any(|r| is_rev(&r["id"], &env, &doomed) && r["kind"] == "commit"),
        "{v}"
    );
    assert!(v["bytes_freed"].as_u64().unwrap() > 0);
    let v = doc(&env.ok(&["fsck", "--json", "--dangling"]));
    let d = v["dangling"].as_array().unwrap();
    assert!(
        d.iter()
            .any(|x| is_rev(&x["id"], &env, &doomed) && x["summary"] == "doomed work"),
        "{v}"
    );
    assert!(
        d.iter().any(|x| x["kind"] == "manifest" && x["size"] == 16),
        "{v}"
    );

    if env.remote() {
        return;
    }
    // Damage: fsck --json still prints the document, and exits 1.
    for p in packs(&env) {
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 40] ^= 0xff;
        std::fs::write(&p, b).unwrap();
    }
    let out = env.cmd(&["fsck", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let v = doc(&String::from_utf8(out.stdout).unwrap());
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v}");
    let p = &v["problems"][0];
    assert!(p["kind"].is_string() && p["location"].is_string() && p["message"].is_string());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fsck found"));
}

/// With `--json`, an error is one JSON line on stderr with its stable code
/// and the exit code; without, the text form. Usage errors clap finds are
/// JSON too when `--json` was given.
#[test]
fn errors_are_json_with_stable_codes_when_json_is_asked() {
    let env = Env::empty();
    let out = env.cmd(&["log", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    let e = doc(&err);
    assert_eq!(e["error"]["code"], "not-a-repository", "{err}");
    assert_eq!(e["error"]["exit_code"], 1, "{err}");
    assert!(
        e["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("mediagit init"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = env.cmd(&["status", "--json", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = doc(&String::from_utf8(out.stderr).unwrap());
    assert_eq!(e["error"]["code"], "usage");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("--bogus"),
        "{e}"
    );

    // Text without --json (and `--json` after `--` is a path, not the flag).
    let out = env.cmd(&["log"]).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(err.starts_with("error: not a mediagit repository"), "{err}");
    assert!(err.contains("\nhint: "), "{err}");
    let out = env.cmd(&["log", "--", "--json"]).output().unwrap();
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .starts_with("error: "));

    let env = Env::new();
    let out = env.cmd(&["show", "--json", "nosuchrev"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = doc(&String::from_utf8(out.stderr).unwrap());
    assert_eq!(e["error"]["code"], "unknown-revision", "{e}");
}

/// Every error code the code can produce is in docs/CLI.md's list.
#[test]
fn every_error_code_is_documented() {
    let docs = include_str!("../../../docs/CLI.md");
    let table = docs
        .split("Error codes (stable")
        .nth(1)
        .expect("docs/CLI.md lists the error codes");
    let library = include_str!("../../mediagit-repo/src/error.rs");
    let cli = [
        include_str!("../src/command_error.rs"),
        include_str!("../src/commands.rs"),
        include_str!("../src/backup_cmd.rs"),
        include_str!("../src/config_cmd.rs"),
        include_str!("../src/maintenance.rs"),
        include_str!("../src/pager.rs"),
        include_str!("../src/user_config.rs"),
        include_str!("../src/main.rs"),
    ];
    let mut codes = Vec::new();
    // `=> "code"` in RepoError::code, `CommandError::user("code", ...` in the CLI.
    let parts = library.split("=> \"").skip(1).map(str::to_string).chain(
        cli.iter()
            .flat_map(|src| src.split("CommandError::user(").skip(1))
            .filter_map(|p| p.trim_start().strip_prefix('"').map(str::to_string)),
    );
    for part in parts {
        let code = &part[..part.find('"').unwrap()];
        if !code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-' || b.is_ascii_digit())
        {
            codes.push(code.to_string());
        }
    }
    assert!(codes.len() > 60, "{codes:?}");
    for c in [
        "usage",
        "interrupted",
        "not-a-repository",
        "fsck-problems",
        "unknown-config-key",
    ] {
        assert!(codes.iter().any(|x| x == c), "{c} not found in the sources");
    }
    for c in &codes {
        assert!(
            table.contains(&format!("`{c}`")),
            "error code {c:?} is not in docs/CLI.md"
        );
    }
}

/// Usage errors in JSON keep clap's whole message (the missing argument)
/// with its tip and usage line as the hint; an argument that is not UTF-8
/// is refused by name (not a panic); clap's errors never send an
/// argument's terminal codes; an error that only mentions a broken pipe
/// is an error.
#[test]
fn usage_errors_are_whole_and_safe_and_only_a_real_broken_pipe_is_quiet() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let out = env.cmd(&["ls-tree", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = doc(&String::from_utf8(out.stderr).unwrap());
    assert!(
        e["error"]["message"].as_str().unwrap().ends_with("<REV>"),
        "{e}"
    );
    assert!(
        e["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("Usage: mediagit ls-tree"),
        "{e}"
    );
    let out = env.cmd(&["statsu", "--json"]).output().unwrap();
    let e = doc(&String::from_utf8(out.stderr).unwrap());
    assert!(
        e["error"]["hint"].as_str().unwrap().contains("'stats'"),
        "{e}"
    );

    let bad = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
    for json in [false, true] {
        let mut cmd = env.cmd(&["add"]);
        cmd.arg(bad);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("not valid UTF-8"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = env.cmd(&["status", "--json"]).arg(bad).output().unwrap();
    let e = doc(&String::from_utf8(out.stderr).unwrap());
    assert_eq!(e["error"]["code"], "non-utf8-path", "{e}");

    for args in [
        vec!["cat", "x\x1b[2Jy", "b"],
        vec!["--color", "\x1b]0;T\x07", "status"],
    ] {
        let out = env.cmd(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            !out.stderr.contains(&0x1b) && !out.stderr.contains(&0x07),
            "{out:?}"
        );
    }
    // Command lines that ask for nothing MediaGit does are usage errors,
    // and change nothing.
    env.write("a.txt", b"a");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    let err = env.fail_with(2, &["tag", "-m", "msg"]);
    assert!(err.contains("needs a name"), "{err}");
    let err = env.fail_with(2, &["tag", "-m", "x", "list"]);
    assert!(err.contains("subcommand of `tag`"), "{err}");
    assert_eq!(env.ok(&["tag", "list"]), "");
    let err = env.fail_with(2, &["diff", "HEAD", "HEAD", "HEAD"]);
    assert!(err.contains("at most two revisions"), "{err}");
    let out = env.cmd(&["show", "Broken pipe"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("unknown revision"));
}
