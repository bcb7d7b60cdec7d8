//! Creating repositories and staging: init, add, rm, mv, status, ignore
//! rules, commit options, special files and the stat cache.
mod common;
use common::*;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

// ---------------------------------------------------------------- helpers

fn run(c: &mut assert_cmd::Command) -> Output {
    c.output().expect("run mediagit")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs in `dir`, asserts success, returns stdout.
fn ok_in(env: &Env, dir: &Path, args: &[&str]) -> String {
    let out = run(&mut env.cmd_in(dir, args));
    assert!(
        out.status.success(),
        "mediagit {args:?} in {} failed ({}):\nstdout: {}\nstderr: {}",
        dir.display(),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs in `dir`, asserts exit code 1, returns stderr.
fn fail_in(env: &Env, dir: &Path, args: &[&str]) -> String {
    let out = run(&mut env.cmd_in(dir, args));
    assert_eq!(
        out.status.code(),
        Some(1),
        "mediagit {args:?} in {} should fail with exit 1:\nstdout: {}\nstderr: {}",
        dir.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn ls_files(env: &Env) -> Vec<String> {
    env.ok(&["ls-files"]).lines().map(str::to_string).collect()
}

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Removes everything in the working tree except `.mediagit`.
fn empty_worktree(root: &Path) {
    for e in fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        if e.file_name() == ".mediagit" {
            continue;
        }
        let p = e.path();
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Git Person",
            "-c",
            "user.email=git@example.com",
            "-c",
            "init.defaultBranch=master",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

// ---------------------------------------------------------------- init

#[test]
fn init_bare_creates_repository_without_worktree() {
    let env = Env::empty();
    let out = env.ok(&["init", "--bare", "store.mg"]);
    let dir = env.root().canonicalize().unwrap().join("store.mg");
    assert_eq!(
        out,
        format!(
            "Initialized empty bare MediaGit repository in {}\n",
            dir.display()
        )
    );
    assert!(dir.join("config.toml").is_file());
    assert!(dir.join("refs/heads").is_dir());
    assert!(dir.join("packs").is_dir());
    assert!(!dir.join(".mediagit").exists(), "bare: no .mediagit inside");
    assert_eq!(
        fs::read_to_string(dir.join("HEAD")).unwrap(),
        "ref: refs/heads/main\n"
    );
    let cfg = fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(cfg.contains("bare = true"), "{cfg}");

    // Repository commands find it; working-tree commands refuse.
    assert_eq!(ok_in(&env, &dir, &["branch"]), "* main (no commits yet)\n");
    let err = fail_in(&env, &dir, &["status"]);
    assert!(err.contains("bare"), "{err}");
    let err = fail_in(&env, &dir, &["add", "-A"]);
    assert!(err.contains("bare"), "{err}");

    // A second init of the same bare repository fails and changes nothing.
    let before = tree_hashes(&dir);
    let err = env.fail(&["init", "--bare", "store.mg"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(tree_hashes(&dir), before);
}

#[test]
fn init_initial_branch_long_and_short() {
    let env = Env::empty();
    env.ok(&["init", "--initial-branch", "trunk", "one"]);
    env.ok(&["init", "-b", "dev/next", "two"]);
    let one = env.root().join("one");
    let two = env.root().join("two");
    assert_eq!(
        fs::read_to_string(one.join(".mediagit/HEAD")).unwrap(),
        "ref: refs/heads/trunk\n"
    );
    assert_eq!(
        fs::read_to_string(two.join(".mediagit/HEAD")).unwrap(),
        "ref: refs/heads/dev/next\n"
    );
    assert!(ok_in(&env, &one, &["status"]).starts_with("On branch trunk\n"));
    assert_eq!(ok_in(&env, &two, &["status", "-s"]), "## dev/next\n");

    fs::write(one.join("a.txt"), b"a\n").unwrap();
    ok_in(&env, &one, &["add", "a.txt"]);
    let out = ok_in(&env, &one, &["commit", "-m", "first"]);
    assert!(out.starts_with("[trunk "), "{out}");
    assert!(out.ends_with("] first\n"), "{out}");
    let branches = ok_in(&env, &one, &["branch"]);
    assert_eq!(branches.lines().count(), 1, "{branches}");
    assert!(branches.starts_with("* trunk "), "{branches}");

    // An invalid name is refused and creates nothing.
    let err = env.fail(&["init", "-b", "bad name", "three"]);
    assert!(err.contains("bad name"), "{err}");
    assert!(!env.root().join("three/.mediagit/config.toml").exists());
}

#[test]
fn init_twice_fails_with_already_exists() {
    let env = Env::new();
    env.write("a.txt", b"a");
    env.ok(&["add", "a.txt"]);
    let before = env.repo_state();
    let err = env.fail(&["init"]);
    assert!(err.contains("already exists"), "{err}");
    assert!(err.contains(".mediagit"), "{err}");
    let err = env.fail(&["init", "-b", "other"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(env.repo_state(), before, "a failed init changes nothing");
    assert_eq!(ls_files(&env), ["a.txt"]);
    // Initialising from outside, naming the directory, fails the same way.
    let err = fail_in(&env, env.root(), &["init", "repo"]);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn dash_c_and_subdirectories() {
    let env = Env::new();
    env.write("a.txt", b"top\n");
    env.write("sub/deeper/b.txt", b"deep\n");
    let root = env.root().to_path_buf();

    // -C DIR: run as if started in DIR.
    ok_in(&env, &root, &["-C", "repo", "add", "a.txt"]);
    assert_eq!(ls_files(&env), ["a.txt"]);
    assert_eq!(
        ok_in(&env, &root, &["-C", "repo", "status", "--porcelain"]),
        "A  a.txt\n?? sub/deeper/b.txt\n"
    );
    // -C after the subcommand (global flag), to a subdirectory.
    ok_in(&env, &root, &["add", "-C", "repo/sub/deeper", "b.txt"]);
    assert_eq!(ls_files(&env), ["a.txt", "sub/deeper/b.txt"]);
    let err = fail_in(&env, &root, &["-C", "no/such/dir", "status"]);
    assert!(err.contains("no/such/dir"), "{err}");

    // Commands from a subdirectory find the repository above.
    let deeper = env.repo().join("sub/deeper");
    let out = ok_in(&env, &deeper, &["commit", "-m", "from below"]);
    assert!(out.starts_with("[main "), "{out}");
    assert_eq!(
        ok_in(&env, &deeper, &["log", "--oneline"]).trim_end(),
        env.ok(&["log", "--oneline"]).trim_end()
    );
    fs::write(deeper.join("c.txt"), b"c\n").unwrap();
    fs::write(deeper.join("b.txt"), b"deeper edit\n").unwrap();
    assert_eq!(
        ok_in(&env, &deeper, &["status", "--porcelain"]),
        " M sub/deeper/b.txt\n?? sub/deeper/c.txt\n"
    );
    // Paths are relative to the current directory.
    ok_in(&env, &deeper, &["add", "c.txt", "../deeper/b.txt"]);
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "M  sub/deeper/b.txt\nA  sub/deeper/c.txt\n"
    );
    let cat = run(&mut env.cmd_in(&deeper, &["cat", "HEAD:sub/deeper/b.txt"]));
    assert!(cat.status.success());
    assert_eq!(cat.stdout, b"deep\n");
}

// ---------------------------------------------------------------- add

#[test]
fn add_paths_all_and_dry_run() {
    let env = Env::new();
    env.write("a.txt", b"alpha\n");
    env.write("b/c.txt", b"charlie\n");
    env.write("b/e.txt", b"echo\n");
    env.write("d.txt", b"delta\n");

    let err = env.fail(&["add"]);
    assert!(err.contains("nothing specified"), "{err}");

    // Explicit paths: a file and a directory.
    assert_eq!(env.ok(&["add", "a.txt", "b"]), "");
    assert_eq!(ls_files(&env), ["a.txt", "b/c.txt", "b/e.txt"]);

    // Let the just-staged entries leave the racy window (status refreshes the
    // cache), so this test is about listing; `add_dry_run_right_after_add`
    // covers the racy case.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.ok(&["status"]);

    // Dry run: lists, stages nothing, writes nothing.
    let before = env.repo_state();
    assert_eq!(env.ok(&["add", "--dry-run", "-A"]), "add 'd.txt'\n");
    assert_eq!(env.repo_state(), before, "--dry-run changes nothing");
    assert_eq!(ls_files(&env), ["a.txt", "b/c.txt", "b/e.txt"]);

    // Deletions and modifications.
    fs::remove_file(env.repo().join("a.txt")).unwrap();
    env.write("b/c.txt", b"charlie, longer now\n");
    let before = env.repo_state();
    assert_eq!(
        env.ok(&["add", "-n", "-A"]),
        "remove 'a.txt'\nadd 'b/c.txt'\nadd 'd.txt'\n"
    );
    assert_eq!(
        env.ok(&["add", "--dry-run", "b/c.txt", "a.txt"]),
        "remove 'a.txt'\nadd 'b/c.txt'\n"
    );
    assert_eq!(env.repo_state(), before);
    assert_eq!(ls_files(&env), ["a.txt", "b/c.txt", "b/e.txt"]);

    assert_eq!(env.ok(&["add", "-A"]), "");
    assert_eq!(ls_files(&env), ["b/c.txt", "b/e.txt", "d.txt"]);
    let listing = env.ok(&["ls-files", "-l"]);
    let c = listing.lines().find(|l| l.ends_with("\tb/c.txt")).unwrap();
    assert!(c.contains(&sha256_file(&env.repo().join("b/c.txt"))), "{c}");
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "A  b/c.txt\nA  b/e.txt\nA  d.txt\n"
    );
}

#[test]
fn add_dry_run_right_after_add_lists_only_real_changes() {
    let env = Env::new();
    env.write("a.txt", b"alpha\n");
    env.write("b/c.txt", b"charlie\n");
    env.ok(&["add", "-A"]);
    env.write("d.txt", b"delta\n");
    // Unchanged files are not "to be added", however recently they were staged.
    assert_eq!(env.ok(&["add", "--dry-run", "-A"]), "add 'd.txt'\n");
    env.ok(&["commit", "-m", "c"]);
    assert_eq!(env.ok(&["add", "--dry-run", "-A"]), "add 'd.txt'\n");
    assert_eq!(env.ok(&["add", "--dry-run", "a.txt", "b"]), "");
}

#[test]
fn add_dot_from_subdirectory_stages_only_it() {
    let env = Env::new();
    env.write("top.txt", b"top\n");
    env.write("sub/x.txt", b"x\n");
    env.write("sub/inner/y.txt", b"y\n");
    env.write("other/z.txt", b"z\n");
    let sub = env.repo().join("sub");
    ok_in(&env, &sub, &["add", "."]);
    assert_eq!(ls_files(&env), ["sub/inner/y.txt", "sub/x.txt"]);

    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "all"]);
    // Changes everywhere; `add .` in sub stages only what is below sub.
    fs::remove_file(env.repo().join("top.txt")).unwrap();
    env.write("other/z.txt", b"z changed\n");
    env.write("sub/new.txt", b"new\n");
    fs::remove_file(env.repo().join("sub/x.txt")).unwrap();
    env.write("sub/inner/y.txt", b"y changed\n");
    ok_in(&env, &sub, &["add", "."]);
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        " M other/z.txt\nM  sub/inner/y.txt\nA  sub/new.txt\nD  sub/x.txt\n D top.txt\n"
    );
    // `add -A` from the subdirectory means the whole tree.
    ok_in(&env, &sub, &["add", "-A"]);
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "M  other/z.txt\nM  sub/inner/y.txt\nA  sub/new.txt\nD  sub/x.txt\nD  top.txt\n"
    );
}

// ---------------------------------------------------------------- rm

#[test]
fn rm_variants() {
    let env = Env::new();
    env.write("a.txt", b"a\n");
    env.write("b.txt", b"b\n");
    env.write("keep.txt", b"keep\n");
    env.write("dir/one.txt", b"1\n");
    env.write("dir/sub/two.txt", b"2\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);

    // rm: gone from disk and index.
    assert_eq!(env.ok(&["rm", "a.txt"]), "rm 'a.txt'\n");
    assert!(!env.repo().join("a.txt").exists());
    assert!(!ls_files(&env).contains(&"a.txt".to_string()));

    // rm --cached: kept on disk, untracked now.
    assert_eq!(env.ok(&["rm", "--cached", "b.txt"]), "rm 'b.txt'\n");
    assert_eq!(env.read("b.txt"), b"b\n");
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "D  a.txt\nD  b.txt\n?? b.txt\n"
    );

    // A modified file is refused without --force.
    env.write("keep.txt", b"keep, edited\n");
    let before = env.repo_state();
    let err = env.fail(&["rm", "keep.txt"]);
    assert!(err.contains("keep.txt"), "{err}");
    assert!(err.contains("local modifications"), "{err}");
    assert_eq!(env.read("keep.txt"), b"keep, edited\n");
    assert_eq!(env.repo_state(), before);
    assert!(ls_files(&env).contains(&"keep.txt".to_string()));
    // Same-size edit is detected too.
    env.write("keep.txt", b"KEEP\n");
    let err = env.fail(&["rm", "keep.txt"]);
    assert!(err.contains("keep.txt"), "{err}");
    assert_eq!(env.read("keep.txt"), b"KEEP\n");
    assert_eq!(env.ok(&["rm", "--force", "keep.txt"]), "rm 'keep.txt'\n");
    assert!(!env.repo().join("keep.txt").exists());

    // A directory needs -r.
    let before = env.repo_state();
    let err = env.fail(&["rm", "dir"]);
    assert!(err.contains("dir"), "{err}");
    assert!(err.contains("-r"), "{err}");
    assert_eq!(env.repo_state(), before);
    assert!(env.repo().join("dir/sub/two.txt").exists());
    assert_eq!(
        env.ok(&["rm", "-r", "dir"]),
        "rm 'dir/one.txt'\nrm 'dir/sub/two.txt'\n"
    );
    assert!(!env.repo().join("dir").exists(), "empty directories go too");

    // Untracked paths do not match.
    env.write("loose.txt", b"loose\n");
    let err = env.fail(&["rm", "loose.txt"]);
    assert!(err.contains("loose.txt"), "{err}");
    assert!(err.contains("did not match"), "{err}");
    assert!(env.repo().join("loose.txt").exists());

    env.ok(&["commit", "-m", "removed"]);
    let tree = env.ok(&["ls-tree", "-r", "HEAD"]);
    assert_eq!(tree, "", "everything tracked was removed: {tree}");
}

// ---------------------------------------------------------------- mv

#[test]
fn mv_files_and_directories() {
    let env = Env::new();
    env.write("a.txt", b"alpha\n");
    write_random(&env.repo().join("clip.bin"), 700_000, 9);
    env.write("dir/x.txt", b"x\n");
    env.write("dir/sub/y.txt", b"y\n");
    env.write("dest/existing.txt", b"e\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    let before = tree_hashes(&env.repo());

    // File rename.
    assert_eq!(
        env.ok(&["mv", "a.txt", "b.txt"]),
        "renamed a.txt -> b.txt\n"
    );
    assert!(!env.repo().join("a.txt").exists());
    assert_eq!(env.read("b.txt"), b"alpha\n");
    assert_eq!(env.ok(&["status", "--porcelain"]), "R  a.txt -> b.txt\n");

    // Into an existing directory keeps the name.
    assert_eq!(
        env.ok(&["mv", "clip.bin", "dest"]),
        "renamed clip.bin -> dest/clip.bin\n"
    );
    assert_eq!(
        sha256_file(&env.repo().join("dest/clip.bin")),
        before["clip.bin"]
    );

    // Directory rename moves everything below it.
    assert_eq!(env.ok(&["mv", "dir", "moved"]), "renamed dir -> moved\n");
    assert!(!env.repo().join("dir").exists());
    assert_eq!(env.read("moved/sub/y.txt"), b"y\n");

    // Directory into an existing directory.
    assert_eq!(
        env.ok(&["mv", "moved", "dest"]),
        "renamed moved -> dest/moved\n"
    );
    assert_eq!(
        ls_files(&env),
        [
            "b.txt",
            "dest/clip.bin",
            "dest/existing.txt",
            "dest/moved/sub/y.txt",
            "dest/moved/x.txt"
        ]
    );
    // Nothing unstaged: the stat cache followed the rename.
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "R  a.txt -> b.txt\nR  clip.bin -> dest/clip.bin\nR  dir/sub/y.txt -> dest/moved/sub/y.txt\nR  dir/x.txt -> dest/moved/x.txt\n"
    );

    // Refusals change nothing.
    let state = env.repo_state();
    let wt = tree_hashes(&env.repo());
    let err = env.fail(&["mv", "b.txt", "dest/existing.txt"]);
    assert!(err.contains("destination exists"), "{err}");
    env.write("untracked.txt", b"u\n");
    let err = env.fail(&["mv", "untracked.txt", "u2.txt"]);
    assert!(
        err.contains("untracked.txt") && err.contains("not tracked"),
        "{err}"
    );
    let err = env.fail(&["mv", "dest", "dest/inside"]);
    assert!(err.contains("into itself"), "{err}");
    fs::remove_file(env.repo().join("untracked.txt")).unwrap();
    assert_eq!(env.repo_state(), state);
    assert_eq!(tree_hashes(&env.repo()), wt);

    env.ok(&["commit", "-m", "moves"]);
    let show = env.ok(&["show"]);
    assert!(show.contains("renamed:  a.txt -> b.txt"), "{show}");
    assert!(
        show.contains("renamed:  clip.bin -> dest/clip.bin"),
        "{show}"
    );
    assert_eq!(env.ok(&["status", "--porcelain"]), "");
}

// ---------------------------------------------------------------- status

#[test]
fn status_human_and_porcelain_output() {
    let env = Env::new();
    assert_eq!(
        env.ok(&["status"]),
        "On branch main\n\nNo commits yet\n\nnothing to commit, working tree clean\n"
    );
    env.write("a.txt", b"a\n");
    env.write("b.txt", b"b\n");
    env.write("c.txt", b"c\n");
    assert_eq!(
        env.ok(&["status"]),
        "On branch main\n\nNo commits yet\n\nUntracked files:\n\ta.txt\n\tb.txt\n\tc.txt\n\nno changes added to commit (use \"mediagit add\")\n"
    );
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    assert_eq!(
        env.ok(&["status"]),
        "On branch main\n\nnothing to commit, working tree clean\n"
    );
    assert_eq!(env.ok(&["status", "--porcelain"]), "");
    assert_eq!(env.ok(&["status", "--short"]), "## main\n");

    env.write("a.txt", b"a staged\n");
    env.ok(&["add", "a.txt"]);
    env.write("a.txt", b"a staged, then edited\n");
    env.write("b.txt", b"b edited\n");
    fs::remove_file(env.repo().join("c.txt")).unwrap();
    env.write("n.txt", b"new\n");
    env.ok(&["add", "n.txt"]);
    env.write("u.txt", b"untracked\n");
    env.write("ud/deep.txt", b"untracked too\n");
    assert_eq!(
        env.ok(&["status"]),
        "On branch main\n\
         \nChanges to be committed:\n\
         \tmodified:   a.txt\n\
         \tnew file:   n.txt\n\
         \nChanges not staged for commit:\n\
         \tmodified:   a.txt\n\
         \tmodified:   b.txt\n\
         \tdeleted:    c.txt\n\
         \nUntracked files:\n\
         \tu.txt\n\
         \tud/deep.txt\n"
    );
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "MM a.txt\n M b.txt\n D c.txt\nA  n.txt\n?? u.txt\n?? ud/deep.txt\n"
    );
    assert_eq!(
        env.ok(&["status", "-s"]),
        "## main\nMM a.txt\n M b.txt\n D c.txt\nA  n.txt\n?? u.txt\n?? ud/deep.txt\n"
    );
    // Only unstaged changes.
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "second"]);
    env.write("b.txt", b"b edited again\n");
    assert_eq!(
        env.ok(&["status"]),
        "On branch main\n\nChanges not staged for commit:\n\tmodified:   b.txt\n\nno changes added to commit (use \"mediagit add\")\n"
    );
    // Detached HEAD.
    env.ok(&["checkout", "--force", "HEAD~1"]);
    let id = env.rev("HEAD");
    let st = env.ok(&["status"]);
    assert!(st.starts_with(&format!("HEAD detached at {id}\n")), "{st}");
    assert!(env
        .ok(&["status", "-s"])
        .starts_with("## HEAD (no branch)\n"));
}

// ---------------------------------------------------------------- ignore rules

#[test]
fn ignore_rules_and_nested_git_repository() {
    let env = Env::new();
    env.write(
        ".mediagitignore",
        b"# comment\n*.tmp\n!keep.tmp\nbuild/\n/rootonly.log\ncache/**/*.bin\n",
    );
    env.write("sub/.mediagitignore", b"*.cache\n!important.cache\n");
    let kept = [
        ".mediagitignore",
        "keep.tmp",
        "sub/.mediagitignore",
        "sub/rootonly.log",
        "sub/important.cache",
        "x.cache",
        "cache/notes.txt",
        "media/clip.bin",
    ];
    let ignored = [
        "a.tmp",
        "sub/deep/b.tmp",
        "build/out.bin",
        "sub/build/x.o",
        "rootonly.log",
        "sub/x.cache",
        "sub/deeper/y.cache",
        "cache/a/b/c.bin",
    ];
    for p in kept.iter().chain(ignored.iter()) {
        if !env.repo().join(p).exists() {
            env.write(p, format!("content of {p}\n").as_bytes());
        }
    }

    // A nested Git repository with a .gitignore: all of it is content to mediagit.
    let proj = env.repo().join("proj");
    fs::create_dir_all(&proj).unwrap();
    git(&proj, &["init", "-q"]);
    fs::write(proj.join(".gitignore"), "*.o\nsecret/\n").unwrap();
    fs::write(proj.join("main.c"), "int main(void) { return 0; }\n").unwrap();
    fs::write(proj.join("main.o"), [0x7f, b'E', b'L', b'F', 0, 1, 2, 3]).unwrap();
    fs::create_dir_all(proj.join("secret")).unwrap();
    fs::write(proj.join("secret/key"), "hunter2\n").unwrap();
    git(&proj, &["add", "-A"]);
    git(&proj, &["commit", "-q", "-m", "nested"]);
    fs::write(proj.join("main.c"), "int main(void) { return 1; }\n").unwrap();
    let git_status = git(&proj, &["status", "--porcelain"]);
    assert_eq!(git_status, " M main.c\n");
    let git_head = git(&proj, &["rev-parse", "HEAD"]);
    let git_files: Vec<String> = tree_hashes(&proj)
        .keys()
        .map(|k| format!("proj/{k}"))
        .collect();
    assert!(git_files
        .iter()
        .any(|p| p.starts_with("proj/.git/objects/")));
    assert!(git_files.contains(&"proj/.git/HEAD".to_string()));

    // Dry run and status agree with the rules.
    let dry = env.ok(&["add", "-n", "-A"]);
    let mut expected: Vec<String> = kept.iter().map(|s| s.to_string()).collect();
    expected.extend(git_files.iter().cloned());
    expected.sort();
    let listed: Vec<String> = dry
        .lines()
        .map(|l| {
            l.strip_prefix("add '")
                .and_then(|l| l.strip_suffix('\''))
                .unwrap_or_else(|| panic!("unexpected dry-run line {l}"))
                .to_string()
        })
        .collect();
    assert_eq!(listed, expected);
    let untracked: Vec<String> = env
        .ok(&["status", "--porcelain"])
        .lines()
        .map(|l| l.strip_prefix("?? ").expect("only untracked").to_string())
        .collect();
    assert_eq!(untracked, expected);

    env.ok(&["add", "-A"]);
    assert_eq!(ls_files(&env), expected);
    for p in ignored {
        assert!(!ls_files(&env).contains(&p.to_string()), "{p} is ignored");
    }
    // Naming a directory honours the rules below it, including parent rules.
    let err_free = env.ok(&["add", "sub"]);
    assert_eq!(err_free, "");
    assert_eq!(ls_files(&env), expected);
    env.ok(&["commit", "-m", "with nested git"]);
    assert_eq!(env.ok(&["status", "--porcelain"]), "");

    // A fresh checkout restores the whole tree, .git internals included.
    let mut snapshot = tree_hashes(&env.repo());
    for p in ignored {
        snapshot.remove(p);
    }
    empty_worktree(&env.repo());
    env.ok(&["checkout", "--force", "main"]);
    assert_eq!(tree_hashes(&env.repo()), snapshot);
    // And Git still sees its repository exactly as before.
    assert_eq!(git(&proj, &["rev-parse", "HEAD"]), git_head);
    assert_eq!(git(&proj, &["status", "--porcelain"]), git_status);
    assert_eq!(
        git(&proj, &["show", "HEAD:main.c"]),
        "int main(void) { return 0; }\n"
    );
    git(&proj, &["fsck", "--no-progress"]);
}

// ---------------------------------------------------------------- commit

#[test]
fn commit_all_allow_empty_and_nothing_to_commit() {
    let env = Env::new();
    let err = env.fail(&["commit", "-m", "nothing yet"]);
    assert!(err.contains("nothing to commit"), "{err}");
    env.write("a.txt", b"a\n");
    env.write("b.txt", b"b\n");
    env.ok(&["add", "-A"]);
    let err = env.fail(&["commit"]);
    assert!(err.contains("message"), "{err}");
    let out = env.ok(&["commit", "-m", "base"]);
    let id = env.rev("HEAD");
    assert_eq!(out, format!("[main {id}] base\n"));

    // Nothing staged: refused, nothing written.
    let before = env.repo_state();
    let err = env.fail(&["commit", "-m", "again"]);
    assert!(err.contains("nothing to commit"), "{err}");
    assert_eq!(env.repo_state(), before);

    // --allow-empty makes a commit with the same tree.
    let out = env.ok(&["commit", "--allow-empty", "-m", "marker"]);
    assert!(out.ends_with("] marker\n"), "{out}");
    assert_eq!(
        env.ok(&["ls-tree", "-r", "HEAD"]),
        env.ok(&["ls-tree", "-r", "HEAD~1"])
    );
    let log = env.ok(&["log", "--oneline"]);
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.lines().next().unwrap().ends_with(" marker"), "{log}");

    // -a stages modifications and deletions of tracked files, not new files.
    env.write("a.txt", b"a modified\n");
    fs::remove_file(env.repo().join("b.txt")).unwrap();
    env.write("new.txt", b"new\n");
    env.ok(&["commit", "-a", "-m", "all tracked"]);
    let tree = env.ok(&["ls-tree", "-r", "HEAD"]);
    assert_eq!(
        tree,
        format!(
            "100644\t{}\ta.txt\n",
            sha256_file(&env.repo().join("a.txt"))
        )
    );
    assert_eq!(env.ok(&["status", "--porcelain"]), "?? new.txt\n");
}

#[test]
fn commit_author_and_identity_sources() {
    let env = Env::new();
    env.write("a.txt", b"a\n");
    env.ok(&["add", "a.txt"]);
    env.ok(&[
        "commit",
        "--author",
        "Jane Doe <jane@example.org>",
        "-m",
        "by jane",
    ]);
    let log = env.ok(&["log", "-n", "1"]);
    assert!(
        log.contains("\nAuthor: Jane Doe <jane@example.org>\n"),
        "{log}"
    );
    assert!(log.contains("    by jane\n"), "{log}");

    // A malformed --author is refused, naming it.
    env.write("a.txt", b"a2\n");
    env.ok(&["add", "a.txt"]);
    let before = env.repo_state();
    let err = env.fail(&["commit", "--author", "Jane Doe", "-m", "x"]);
    assert!(
        err.contains("Jane Doe") && err.contains("Name <email>"),
        "{err}"
    );
    assert_eq!(env.repo_state(), before);

    // No identity anywhere: a clear error, nothing committed.
    let no_env = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.env_remove("MEDIAGIT_AUTHOR_NAME")
            .env_remove("MEDIAGIT_AUTHOR_EMAIL");
        run(&mut c)
    };
    let out = no_env(&["commit", "-m", "anonymous"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no author identity"), "{err}");
    assert!(err.contains("[author]"), "{err}");
    assert!(err.contains("MEDIAGIT_AUTHOR_NAME"), "{err}");
    assert_eq!(env.repo_state(), before);
    // Empty variables count as unset.
    let mut c = env.cmd(&["commit", "-m", "anonymous"]);
    c.env("MEDIAGIT_AUTHOR_NAME", "")
        .env("MEDIAGIT_AUTHOR_EMAIL", "");
    let out = run(&mut c);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no author identity"));
    assert_eq!(env.repo_state(), before);

    // --author alone is enough.
    let out = no_env(&[
        "commit",
        "--author",
        "Solo <solo@example.org>",
        "-m",
        "solo",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(env
        .ok(&["log", "-n", "1"])
        .contains("\nAuthor: Solo <solo@example.org>\n"));

    // Identity from config.toml [author].
    let cfg_path = env.repo().join(".mediagit/config.toml");
    let mut cfg = fs::read_to_string(&cfg_path).unwrap();
    cfg.push_str("\n[author]\nname = \"Config Person\"\nemail = \"config@example.net\"\n");
    fs::write(&cfg_path, cfg).unwrap();
    env.write("a.txt", b"a3\n");
    env.ok(&["add", "a.txt"]);
    let out = no_env(&["commit", "-m", "from config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = env.ok(&["log", "-n", "1"]);
    assert!(
        log.contains("\nAuthor: Config Person <config@example.net>\n"),
        "{log}"
    );
    // The environment overrides the config.
    env.write("a.txt", b"a4\n");
    env.ok(&["commit", "-a", "-m", "from env"]);
    assert!(env
        .ok(&["log", "-n", "1"])
        .contains("\nAuthor: Test User <test@example.com>\n"));
}

// ---------------------------------------------------------------- special files

#[test]
fn executable_symlinks_and_empty_files_survive_checkout() {
    let env = Env::new();
    let r = env.repo();
    env.write("tools/run.sh", b"#!/bin/sh\necho hi\n");
    set_mode(&r.join("tools/run.sh"), 0o755);
    env.write("empty.dat", b"");
    env.write("real/inside.txt", b"inside\n");
    env.write("target.txt", b"target\n");
    std::os::unix::fs::symlink("target.txt", r.join("link.txt")).unwrap();
    std::os::unix::fs::symlink("real", r.join("linkdir")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", r.join("dangling")).unwrap();
    let outside = env.root().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret.txt"), b"not for the repo\n").unwrap();
    std::os::unix::fs::symlink(&outside, r.join("out")).unwrap();

    env.ok(&["add", "-A"]);
    // Symlinks are stored as links, never followed.
    let files = ls_files(&env);
    assert_eq!(
        files,
        [
            "dangling",
            "empty.dat",
            "link.txt",
            "linkdir",
            "out",
            "real/inside.txt",
            "target.txt",
            "tools/run.sh"
        ]
    );
    let long = env.ok(&["ls-files", "-l"]);
    let row = |p: &str| -> Vec<String> {
        long.lines()
            .find(|l| l.ends_with(&format!("\t{p}")))
            .unwrap_or_else(|| panic!("{p} in {long}"))
            .split('\t')
            .map(str::to_string)
            .collect()
    };
    use sha2::Digest;
    let hash = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    assert_eq!(row("link.txt")[0], "120000");
    assert_eq!(row("link.txt")[3], hash(b"target.txt"));
    assert_eq!(row("out")[0], "120000");
    assert_eq!(row("out")[3], hash(outside.to_str().unwrap().as_bytes()));
    assert_eq!(row("dangling")[0], "120000");
    assert_eq!(row("tools/run.sh")[0], "100755");
    assert_eq!(row("empty.dat")[0], "100644");
    assert_eq!(row("empty.dat")[1], "0");
    assert_eq!(row("empty.dat")[3], hash(b""));
    env.ok(&["commit", "-m", "special"]);
    let cat = run(&mut env.cmd(&["cat", "HEAD:link.txt"]));
    assert_eq!(cat.stdout, b"target.txt");
    let v1 = tree_hashes(&r);

    // Mode change is seen.
    set_mode(&r.join("tools/run.sh"), 0o644);
    assert_eq!(env.ok(&["status", "--porcelain"]), " T tools/run.sh\n");
    env.ok(&["commit", "-a", "-m", "not executable"]);
    assert!(env
        .ok(&["show"])
        .contains("mode:     tools/run.sh (100755 -> 100644)"));

    // Back to v1: the bit comes back.
    let v1_id = env.rev("HEAD~1");
    env.ok(&["checkout", "HEAD~1"]);
    assert_eq!(tree_hashes(&r), v1);
    let mode = fs::metadata(r.join("tools/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);

    // Into an emptied tree.
    empty_worktree(&r);
    assert!(outside.join("secret.txt").exists(), "link target untouched");
    env.ok(&["checkout", "--force", &v1_id]);
    assert_eq!(tree_hashes(&r), v1);
    for l in ["link.txt", "linkdir", "dangling", "out"] {
        assert!(
            fs::symlink_metadata(r.join(l))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{l}"
        );
    }
    assert_eq!(
        fs::read_link(r.join("dangling")).unwrap(),
        Path::new("does/not/exist")
    );
    assert_eq!(fs::read_link(r.join("out")).unwrap(), outside);
    assert_eq!(fs::metadata(r.join("empty.dat")).unwrap().len(), 0);
    assert!(fs::symlink_metadata(r.join("empty.dat")).unwrap().is_file());
    assert_eq!(env.ok(&["status", "--porcelain"]), "");
}

// ---------------------------------------------------------------- output discipline

#[test]
fn add_is_silent_and_has_no_progress_when_not_a_terminal() {
    let env = Env::new();
    copy_media(&env.repo().join("media"));
    fs::copy(
        media_dir().join("clip.mp4"),
        env.repo().join("media/clip copy.mp4"),
    )
    .unwrap();
    write_random(&env.repo().join("big.bin"), 6_000_000, 1);
    let out = run(&mut env.cmd(&["add", "-A"]));
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "", "no progress bar on a pipe");
    let out = run(&mut env.cmd(&["commit", "-m", "m"]));
    assert!(out.status.success());
    assert_eq!(text(&out.stderr), "");

    // An unchanged tree: add prints nothing at all, now and after the racy window.
    let state = env.ok(&["ls-files", "-l"]);
    for _ in 0..2 {
        let out = run(&mut env.cmd(&["add", "-A"]));
        assert!(out.status.success());
        assert_eq!(text(&out.stdout), "");
        assert_eq!(text(&out.stderr), "");
        assert_eq!(env.ok(&["ls-files", "-l"]), state, "nothing restaged");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        env.ok(&["status"]);
    }
    let out = run(&mut env.cmd(&["status", "--porcelain"]));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "");
    // Checkout reports on stderr but draws no bar.
    let big = sha256_file(&env.repo().join("big.bin"));
    env.write("big.bin", b"small now");
    env.ok(&["commit", "-a", "-m", "shrink"]);
    let out = run(&mut env.cmd(&["checkout", "HEAD~1"]));
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one summary line: {err:?}");
    assert!(!err.contains('\r') && !err.contains('\u{1b}'), "{err:?}");
    assert_eq!(sha256_file(&env.repo().join("big.bin")), big);
}

// ---------------------------------------------------------------- stat cache

#[test]
fn stat_cache_detects_same_size_edits() {
    let env = Env::new();
    env.write("f.txt", b"version 1\n");
    write_random(&env.repo().join("big.bin"), 2_000_000, 4);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    assert_eq!(env.ok(&["status", "--porcelain"]), "");
    assert_eq!(env.ok(&["status", "--porcelain"]), "");

    // Immediately (within the timestamp granularity window): same size, new bytes.
    env.write("f.txt", b"version 2\n");
    assert_eq!(env.ok(&["status", "--porcelain"]), " M f.txt\n");
    env.ok(&["commit", "-a", "-m", "two"]);
    assert_eq!(env.ok(&["status", "--porcelain"]), "");

    // Later, with the cache settled and the mtime put back: still detected.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(env.ok(&["status", "--porcelain"]), "");
    let p = env.repo().join("f.txt");
    let mtime = fs::metadata(&p).unwrap().modified().unwrap();
    fs::write(&p, b"version 3\n").unwrap();
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), mtime);
    assert_eq!(env.ok(&["status", "--porcelain"]), " M f.txt\n");
    assert_eq!(env.ok(&["status", "--porcelain"]), " M f.txt\n");

    // A same-size edit in the middle of a big file.
    let big = env.repo().join("big.bin");
    let mut data = fs::read(&big).unwrap();
    data[1_000_000] ^= 0xff;
    fs::write(&big, &data).unwrap();
    assert_eq!(env.ok(&["status", "--porcelain"]), " M big.bin\n M f.txt\n");
    env.ok(&["add", "-A"]);
    assert_eq!(env.ok(&["status", "--porcelain"]), "M  big.bin\nM  f.txt\n");
    let long = env.ok(&["ls-files", "-l"]);
    assert!(long.contains(&sha256_file(&big)), "{long}");
    assert!(long.contains(&sha256_file(&p)), "{long}");

    // Touching (mtime only, same content) is not a change.
    env.ok(&["commit", "-m", "three"]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    assert_eq!(env.ok(&["status", "--porcelain"]), "");
}

/// What a merge will leave (the index's base/ours/theirs stages, format
/// version 4): `status` lists the path as unresolved, not untracked;
/// `commit` and `switch` refuse and name it; `add` of the chosen version
/// (or `rm`) resolves it.
#[test]
fn conflict_stages_in_the_index_block_commit_until_the_path_is_added() {
    use mediagit_format::index::{ConflictEntry, IndexFile, Stage};
    let env = Env::new();
    env.write("song.wav", b"base take\n");
    env.write("old.psd", b"layers\n");
    env.write("notes.txt", b"n\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    env.ok(&["branch", "create", "other"]);
    let path = env.repo().join(".mediagit/index");
    let mut idx = IndexFile::decode(&fs::read(&path).unwrap()).unwrap();
    for name in ["old.psd", "song.wav"] {
        let at = idx.entries.iter().position(|e| e.path == name).unwrap();
        let base = idx.entries.remove(at);
        for (stage, content) in [(Stage::Base, 1u8), (Stage::Ours, 2), (Stage::Theirs, 3)] {
            let mut entry = base.clone();
            entry.content = mediagit_format::ObjectId([content; 32]);
            idx.conflicts.push(ConflictEntry { stage, entry });
        }
    }
    fs::write(&path, idx.encode()).unwrap();
    env.write("song.wav", b"our take\n");

    let porcelain = env.ok(&["status", "--porcelain"]);
    assert_eq!(porcelain, "UU old.psd\nUU song.wav\n");
    let err = env.fail_with(3, &["switch", "other"]);
    assert!(
        err.contains("unresolved merge conflicts (old.psd, song.wav)"),
        "{err}"
    );
    assert!(env.ok(&["status"]).starts_with("On branch main"));
    env.ok(&["rm", "old.psd"]);
    assert!(!env.repo().join("old.psd").exists());
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "D  old.psd\nUU song.wav\n"
    );
    let long = env.ok(&["status"]);
    assert!(
        long.contains("Unmerged paths:") && long.contains("both changed:   song.wav"),
        "{long}"
    );
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["status", "--json"])).unwrap();
    assert_eq!(json["conflicted"], serde_json::json!(["song.wav"]));
    assert_eq!(json["clean"], serde_json::json!(false));
    assert_eq!(json["untracked"], serde_json::json!([]));

    let before = env.rev("HEAD");
    let err = env.fail_with(3, &["commit", "-m", "too early"]);
    assert!(
        err.contains("unresolved merge conflicts (song.wav)"),
        "{err}"
    );
    assert!(err.contains("mediagit add"), "{err}");
    assert_eq!(env.rev("HEAD"), before);
    // The stages survived the refused commit and other commands' saves.
    env.ok(&["add", "notes.txt"]);
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "D  old.psd\nUU song.wav\n"
    );

    env.ok(&["add", "song.wav"]);
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "D  old.psd\nM  song.wav\n"
    );
    env.ok(&["commit", "-m", "resolved"]);
    let idx = IndexFile::decode(&fs::read(&path).unwrap()).unwrap();
    assert!(idx.conflicts.is_empty());
    assert_eq!(&fs::read(&path).unwrap()[8..12], &4u32.to_le_bytes());
    assert_eq!(env.ok(&["cat", "HEAD:song.wav"]), "our take\n");
}

/// The other ways out of a conflict: `add` of a path the user deleted
/// resolves it as deleted; a file replacing the conflicted path's
/// directory resolves what was below it.
#[test]
fn add_resolves_a_deleted_conflicted_path_and_one_a_file_replaced() {
    use mediagit_format::index::{ConflictEntry, IndexFile, Stage};
    let env = Env::new();
    env.write("take.wav", b"base\n");
    env.write("d/b.txt", b"b\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    let path = env.repo().join(".mediagit/index");
    let mut idx = IndexFile::decode(&fs::read(&path).unwrap()).unwrap();
    let moved: Vec<_> = std::mem::take(&mut idx.entries);
    for e in moved {
        for stage in [Stage::Ours, Stage::Theirs] {
            idx.conflicts.push(ConflictEntry {
                stage,
                entry: e.clone(),
            });
        }
    }
    idx.conflicts.sort_by(|a, b| {
        (a.entry.path.as_bytes(), a.stage).cmp(&(b.entry.path.as_bytes(), b.stage))
    });
    fs::write(&path, idx.encode()).unwrap();
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "UU d/b.txt\nUU take.wav\n"
    );
    fs::remove_file(env.repo().join("take.wav")).unwrap();
    env.ok(&["add", "take.wav"]);
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "D  take.wav\nUU d/b.txt\n"
    );
    fs::remove_dir_all(env.repo().join("d")).unwrap();
    env.write("d", b"now a file\n");
    env.ok(&["add", "-A"]);
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "D  d/b.txt\nA  d\nD  take.wav\n"
            .lines()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    env.ok(&["commit", "-m", "resolved"]);
    assert!(IndexFile::decode(&fs::read(&path).unwrap())
        .unwrap()
        .conflicts
        .is_empty());
}

/// What the index says about a file (size, content id) is written into
/// history, so it must agree with the stored manifest: a crafted or
/// damaged index is refused at commit, naming the file, and `add`
/// records the file again.
#[test]
fn commit_refuses_an_index_whose_size_disagrees_with_the_stored_file() {
    use mediagit_format::index::IndexFile;
    let env = Env::new();
    env.write("a.txt", b"hello\n");
    env.write("b.txt", b"bee\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    let head = env.rev("HEAD");
    let path = env.repo().join(".mediagit/index");
    for (file, new) in [("a.txt", false), ("b.txt", true)] {
        if new {
            // A newly staged file, not only one HEAD already has.
            env.write("b.txt", b"bee two\n");
            env.ok(&["add", "b.txt"]);
        }
        let mut idx = IndexFile::decode(&fs::read(&path).unwrap()).unwrap();
        let e = idx.entries.iter_mut().find(|e| e.path == file).unwrap();
        e.stat.size = u64::MAX;
        fs::write(&path, idx.encode()).unwrap();
        let err = env.fail(&["commit", "-m", "crafted"]);
        assert!(err.contains("disagrees with the stored file"), "{err}");
        assert!(err.contains(file), "{err}");
        assert!(err.contains("mediagit add"), "{err}");
        assert_eq!(env.rev("HEAD"), head);
        env.ok(&["add", file]);
    }
    env.ok(&["commit", "-m", "b two"]);
    assert_eq!(
        env.ok(&["ls-tree", "-l", "HEAD"])
            .matches("18446744073709551615")
            .count(),
        0
    );
    env.ok(&["fsck"]);
}
