//! Branches, switch, checkout (branches, detached revisions, paths), tags,
//! recovering a deleted branch from the reflog, and three versions of a
//! large file stored with deduplication.
mod common;
use common::*;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

// ---------------------------------------------------------------- helpers

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs, asserts success, returns stderr (where checkout/switch report).
fn ok_err(env: &Env, args: &[&str]) -> String {
    let out = env.cmd(args).output().expect("run mediagit");
    assert!(
        out.status.success(),
        "mediagit {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// Stages everything and commits; returns the full id of the new commit.
fn commit_all(env: &Env, msg: &str) -> String {
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", msg]);
    full_id(env, "HEAD")
}

/// The full (64 hex) id of a revision.
fn full_id(env: &Env, rev: &str) -> String {
    let out = env.ok(&["log", "-n", "1", rev]);
    let id = out
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("commit "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("log of {rev}: {out}"))
        .to_string();
    assert_eq!(id.len(), 64, "{out}");
    id
}

fn short(id: &str) -> &str {
    &id[..12]
}

fn branch_line(current: bool, name: &str, id: &str) -> String {
    format!(
        "{} {:<20} {}\n",
        if current { '*' } else { ' ' },
        name,
        short(id)
    )
}

fn porcelain(env: &Env) -> String {
    env.ok(&["status", "--porcelain"])
}

fn head_file(env: &Env) -> String {
    fs::read_to_string(env.repo().join(".mediagit/HEAD")).unwrap()
}

fn sum_file_sizes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        if m.is_dir() {
            total += sum_file_sizes(&e.path());
        } else {
            total += m.len();
        }
    }
    total
}

/// `n` deterministic pseudo-random bytes.
fn random_bytes(env: &Env, n: u64, seed: u64) -> Vec<u8> {
    let p = env.root().join(format!("rand-{seed}.bin"));
    write_random(&p, n, seed);
    let b = fs::read(&p).unwrap();
    fs::remove_file(&p).unwrap();
    b
}

// ---------------------------------------------------------------- branch

#[test]
fn branch_list_marks_current() {
    let env = Env::new();
    assert_eq!(env.ok(&["branch"]), "* main (no commits yet)\n");
    env.write("a.txt", b"a");
    let c1 = commit_all(&env, "one");
    env.write("a.txt", b"b");
    let c2 = commit_all(&env, "two");
    env.ok(&["branch", "create", "feature"]);
    env.ok(&["branch", "create", "old", "HEAD~1"]);
    env.ok(&["branch", "create", "topic/x"]);

    let list = format!(
        "{}{}{}{}",
        branch_line(false, "feature", &c2),
        branch_line(true, "main", &c2),
        branch_line(false, "old", &c1),
        branch_line(false, "topic/x", &c2)
    );
    assert_eq!(env.ok(&["branch"]), list);
    assert_eq!(env.ok(&["branch", "list"]), list);

    env.ok(&["switch", "old"]);
    assert_eq!(
        env.ok(&["branch"]),
        format!(
            "{}{}{}{}",
            branch_line(false, "feature", &c2),
            branch_line(false, "main", &c2),
            branch_line(true, "old", &c1),
            branch_line(false, "topic/x", &c2)
        )
    );
    // Detached: a first line for HEAD, no branch starred.
    env.ok(&["checkout", &c2]);
    assert_eq!(
        env.ok(&["branch"]),
        format!(
            "* (HEAD detached at {})\n{}{}{}{}",
            short(&c2),
            branch_line(false, "feature", &c2),
            branch_line(false, "main", &c2),
            branch_line(false, "old", &c1),
            branch_line(false, "topic/x", &c2)
        )
    );
}

#[test]
fn branch_create_from_head_and_older_revision() {
    let env = Env::new();
    env.write("a.txt", b"v1");
    let c1 = commit_all(&env, "one");
    let h1 = tree_hashes(&env.repo());
    env.write("a.txt", b"v2");
    env.write("b.txt", b"new");
    let c2 = commit_all(&env, "two");

    assert_eq!(
        env.ok(&["branch", "create", "f1"]),
        format!("Created branch f1 at {}\n", short(&c2))
    );
    assert_eq!(
        env.ok(&["branch", "create", "f2", "HEAD~1"]),
        format!("Created branch f2 at {}\n", short(&c1))
    );
    env.ok(&["branch", "create", "f3", &c1[..8]]);
    env.ok(&["tag", "ann", "HEAD~1", "-m", "annotated"]);
    env.ok(&["branch", "create", "f4", "ann"]);
    assert_eq!(
        full_id(&env, "f4"),
        c1,
        "an annotated tag peels to its commit"
    );
    assert_eq!(full_id(&env, "f1"), c2);
    assert_eq!(full_id(&env, "f2"), c1);
    assert_eq!(full_id(&env, "f3"), c1);
    // Creating does not switch.
    assert!(env.ok(&["status"]).starts_with("On branch main\n"));
    env.ok(&["switch", "f2"]);
    assert_eq!(tree_hashes(&env.repo()), h1);
    env.ok(&["switch", "main"]);

    // An existing name fails and changes nothing.
    let before = env.repo_state();
    let err = env.fail(&["branch", "create", "f1", "HEAD~1"]);
    assert!(
        err.contains("a branch named \"f1\" already exists"),
        "{err}"
    );
    let err = env.fail(&["branch", "create", "main"]);
    assert!(err.contains("\"main\" already exists"), "{err}");
    assert_eq!(env.repo_state(), before);
    assert_eq!(full_id(&env, "f1"), c2);

    // Invalid names.
    for bad in [
        "a..b",
        "-x",
        "has space",
        "x~1",
        "a:b",
        ".hidden",
        "end.lock",
        "HEAD",
    ] {
        let err = env.fail(&["branch", "create", "--", bad]);
        assert!(
            err.contains(&format!("invalid branch name \"{bad}\"")),
            "{bad}: {err}"
        );
    }
    assert_eq!(env.repo_state(), before, "invalid names created nothing");
    // An unknown start.
    let err = env.fail(&["branch", "create", "f5", "nope"]);
    assert!(err.contains("unknown revision \"nope\""), "{err}");
    let out = env.ok(&["branch"]);
    // Compare branch names, not the text: a short id can contain "f5".
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.get(2..).and_then(|r| r.split_whitespace().next()))
        .collect();
    assert!(!names.contains(&"f5"), "{out}");
}

#[test]
fn branch_delete_refuses_current_and_unmerged() {
    let env = Env::new();
    env.write("a.txt", b"a");
    let c1 = commit_all(&env, "one");
    env.ok(&["switch", "-c", "topic"]);
    env.write("t.txt", b"topic work");
    let c2 = commit_all(&env, "topic work");
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "create", "merged"]);
    env.ok(&["branch", "create", "other"]);
    env.ok(&["branch", "create", "other2", "topic"]);

    let before = env.repo_state();
    let err = env.fail(&["branch", "delete", "main"]);
    assert!(
        err.contains("cannot delete branch \"main\": it is checked out"),
        "{err}"
    );
    let err = env.fail(&["branch", "delete", "topic"]);
    assert!(
        err.contains("branch \"topic\" is not fully merged"),
        "{err}"
    );
    assert!(err.contains("--force") && err.contains("-D"), "{err}");
    let err = env.fail(&["branch", "delete", "nope"]);
    assert!(err.contains("branch \"nope\" not found"), "{err}");
    assert_eq!(env.repo_state(), before, "refusals change nothing");
    assert_eq!(full_id(&env, "topic"), c2);

    // A merged branch goes without force.
    assert_eq!(
        env.ok(&["branch", "delete", "merged"]),
        format!("Deleted branch merged (was {})\n", short(&c1))
    );
    // -D and --force delete unmerged branches.
    assert_eq!(
        env.ok(&["branch", "delete", "-D", "topic"]),
        format!("Deleted branch topic (was {})\n", short(&c2))
    );
    assert_eq!(
        env.ok(&["branch", "delete", "--force", "other2"]),
        format!("Deleted branch other2 (was {})\n", short(&c2))
    );
    assert_eq!(
        env.ok(&["branch"]),
        format!(
            "{}{}",
            branch_line(true, "main", &c1),
            branch_line(false, "other", &c1)
        )
    );
    let err = env.fail(&["log", "topic"]);
    assert!(err.contains("unknown revision \"topic\""), "{err}");
    // Even with force, the current branch stays.
    let err = env.fail(&["branch", "delete", "-D", "main"]);
    assert!(err.contains("checked out"), "{err}");
    assert!(!env.repo().join("t.txt").exists());
}

#[test]
fn deleted_branch_recovered_from_reflog() {
    let env = Env::new();
    env.write("readme.txt", b"project\n");
    commit_all(&env, "start");
    let main_tree = tree_hashes(&env.repo());
    env.ok(&["switch", "-c", "work"]);
    copy_media(&env.repo().join("media"));
    commit_all(&env, "add media");
    let mut clip = env.read("media/clip.mp4");
    clip.extend_from_slice(b"trailer");
    env.write("media/clip.mp4", &clip);
    fs::remove_file(env.repo().join("media/tone.wav")).unwrap();
    let tip = commit_all(&env, "edit media");
    let work_tree = tree_hashes(&env.repo());

    env.ok(&["switch", "main"]);
    assert_eq!(tree_hashes(&env.repo()), main_tree);
    env.ok(&["branch", "delete", "-D", "work"]);
    let err = env.fail(&["switch", "work"]);
    assert!(err.contains("branch \"work\" not found"), "{err}");

    // The reflog of the deleted branch still names its last commit.
    let log = env.ok(&["reflog", "work"]);
    let first = log.lines().next().expect("a reflog entry");
    assert!(
        first.starts_with(&format!("{} work@{{0}}: ", short(&tip))),
        "{log}"
    );
    assert!(
        first.ends_with(&format!("branch: deleted work at {}", short(&tip))),
        "{log}"
    );
    assert!(log.contains("commit: edit media"), "{log}");
    let id = first.split(' ').next().unwrap();

    env.ok(&["branch", "create", "work", id]);
    assert_eq!(full_id(&env, "work"), tip);
    env.ok(&["checkout", "work"]);
    assert_eq!(
        tree_hashes(&env.repo()),
        work_tree,
        "files restored byte-exactly"
    );
    assert_eq!(
        sha256_file(&env.repo().join("media/photo.jpg")),
        sha256_file(&media_dir().join("photo.jpg"))
    );
    assert_eq!(porcelain(&env), "");
}

#[test]
fn branch_rename_other_and_current() {
    let env = Env::new();
    env.write("a.txt", b"a");
    let c1 = commit_all(&env, "one");
    env.ok(&["branch", "create", "feature"]);

    assert_eq!(
        env.ok(&["branch", "rename", "feature", "feat2"]),
        "Renamed branch feature to feat2\n"
    );
    assert_eq!(full_id(&env, "feat2"), c1);
    let err = env.fail(&["log", "feature"]);
    assert!(err.contains("unknown revision \"feature\""), "{err}");

    // Renaming the current branch moves HEAD with it.
    env.ok(&["branch", "rename", "main", "trunk"]);
    assert_eq!(head_file(&env), "ref: refs/heads/trunk\n");
    let st = env.ok(&["status"]);
    assert!(st.starts_with("On branch trunk\n"), "{st}");
    assert_eq!(
        env.ok(&["branch"]),
        format!(
            "{}{}",
            branch_line(false, "feat2", &c1),
            branch_line(true, "trunk", &c1)
        )
    );
    let top = env.ok(&["reflog", "trunk"]);
    assert!(
        top.lines()
            .next()
            .unwrap()
            .ends_with("branch: renamed main to trunk"),
        "{top}"
    );
    env.write("b.txt", b"b");
    env.ok(&["add", "b.txt"]);
    let out = env.ok(&["commit", "-m", "on trunk"]);
    assert!(out.starts_with("[trunk "), "{out}");
    let c2 = full_id(&env, "trunk");
    assert_eq!(full_id(&env, "HEAD"), c2);
    assert_eq!(full_id(&env, "trunk~1"), c1);

    // Refusals.
    let err = env.fail(&["branch", "rename", "trunk", "feat2"]);
    assert!(err.contains("\"feat2\" already exists"), "{err}");
    let err = env.fail(&["branch", "rename", "nope", "x"]);
    assert!(err.contains("branch \"nope\" not found"), "{err}");
    let err = env.fail(&["branch", "rename", "feat2", "has space"]);
    assert!(err.contains("invalid branch name \"has space\""), "{err}");
    assert_eq!(full_id(&env, "feat2"), c1);
}

#[test]
fn branch_names_with_slashes() {
    let env = Env::new();
    env.write("a.txt", b"a");
    let c1 = commit_all(&env, "one");
    env.ok(&["branch", "create", "topic/y"]);
    env.ok(&["branch", "create", "feature"]);
    assert_eq!(full_id(&env, "topic/y"), c1);
    env.ok(&["switch", "topic/y"]);
    assert!(env.ok(&["status"]).starts_with("On branch topic/y\n"));
    env.ok(&["switch", "main"]);

    // `feature/x` cannot exist next to `feature`: refused, nothing created.
    let before = env.repo_state();
    let err = env.fail(&["branch", "create", "feature/x"]);
    assert!(err.contains("feature/x"), "{err}");
    assert_eq!(env.repo_state(), before);
    assert_eq!(full_id(&env, "feature"), c1);

    // Once `topic/y` is deleted, the name `topic` is free.
    env.ok(&["branch", "delete", "topic/y"]);
    env.ok(&["branch", "create", "topic"]);
    assert_eq!(full_id(&env, "topic"), c1);
    assert_eq!(
        env.ok(&["branch"]),
        format!(
            "{}{}{}",
            branch_line(false, "feature", &c1),
            branch_line(true, "main", &c1),
            branch_line(false, "topic", &c1)
        )
    );
}

// ---------------------------------------------------------------- switch

#[test]
fn switch_existing_create_and_missing() {
    let env = Env::new();
    env.write("a.txt", b"a");
    let c1 = commit_all(&env, "one");
    let err = ok_err(&env, &["switch", "-c", "feature"]);
    assert!(err.contains("Switched to a new branch 'feature'"), "{err}");
    assert_eq!(head_file(&env), "ref: refs/heads/feature\n");
    assert!(env.ok(&["status"]).starts_with("On branch feature\n"));
    env.write("b.txt", b"b");
    let c2 = commit_all(&env, "two");
    assert_eq!(full_id(&env, "feature"), c2);
    assert_eq!(full_id(&env, "main"), c1);

    let err = ok_err(&env, &["switch", "main"]);
    assert!(err.contains("Switched to branch 'main'"), "{err}");
    assert!(!env.repo().join("b.txt").exists());
    env.ok(&["switch", "feature"]);
    assert_eq!(env.read("b.txt"), b"b");

    // Missing branch: an error with a hint about -c, nothing changed.
    let before = env.repo_state();
    let err = env.fail(&["switch", "nope"]);
    assert!(err.contains("branch \"nope\" not found"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("switch -c nope"),
        "{err}"
    );
    let err = env.fail(&["switch", "-c", "feature"]);
    assert!(err.contains("\"feature\" already exists"), "{err}");
    let err = env.fail(&["switch", "-c", "bad name"]);
    assert!(err.contains("invalid branch name"), "{err}");
    // No branch named: a usage error (exit 2).
    let err = env.fail_with(2, &["switch"]);
    assert!(err.contains("-c"), "{err}");
    assert_eq!(env.repo_state(), before);
    assert_eq!(head_file(&env), "ref: refs/heads/feature\n");
    assert_eq!(env.read("b.txt"), b"b");
}

#[test]
fn switch_create_with_start_point() {
    let env = Env::new();
    env.write("a.txt", b"a");
    let c1 = commit_all(&env, "one");
    let t1 = tree_hashes(&env.repo());
    env.write("b.txt", b"b");
    let c2 = commit_all(&env, "two");
    // `switch -c NAME START` (docs/CLI.md): the branch starts at START.
    let err = ok_err(&env, &["switch", "-c", "from-old", "HEAD~1"]);
    assert!(err.contains("Switched to a new branch 'from-old'"), "{err}");
    assert_eq!(full_id(&env, "from-old"), c1);
    assert_eq!(full_id(&env, "main"), c2);
    assert_eq!(tree_hashes(&env.repo()), t1);
    assert!(env.ok(&["status"]).starts_with("On branch from-old\n"));
    let log = env.ok(&["reflog", "from-old"]);
    assert!(log.contains("branch: created from HEAD~1"), "{log}");
}

#[test]
fn switch_create_on_repository_without_commits() {
    let env = Env::new();
    let err = ok_err(&env, &["switch", "-c", "dev"]);
    assert!(err.contains("Switched to a new branch 'dev'"), "{err}");
    let st = env.ok(&["status"]);
    assert!(st.starts_with("On branch dev\n\nNo commits yet\n"), "{st}");
    assert_eq!(env.ok(&["branch"]), "* dev (no commits yet)\n");
    env.write("a.txt", b"first");
    env.ok(&["add", "a.txt"]);
    let out = env.ok(&["commit", "-m", "first"]);
    assert!(out.starts_with("[dev "), "{out}");
    let c1 = full_id(&env, "HEAD");
    assert_eq!(env.ok(&["branch"]), branch_line(true, "dev", &c1));
    // `main` never got a commit, so it does not exist.
    let err = env.fail(&["switch", "main"]);
    assert!(err.contains("branch \"main\" not found"), "{err}");
    // And again -c works on the now-born repository.
    env.ok(&["switch", "-c", "main"]);
    assert_eq!(full_id(&env, "main"), c1);
}

// ---------------------------------------------------------------- checkout

#[test]
fn checkout_branch_makes_worktree_exact() {
    let env = Env::new();
    copy_media(&env.repo().join("media"));
    env.write("common.txt", b"same on both\n");
    env.write("only_main/deep/er/x.bin", &[1u8; 10_000]);
    env.write("shared/dir/a.txt", b"main version\n");
    commit_all(&env, "main");
    let main_tree = tree_hashes(&env.repo());

    env.ok(&["switch", "-c", "feature"]);
    fs::remove_dir_all(env.repo().join("only_main")).unwrap();
    env.write("only_feature/sub/deeper/y.bin", &[2u8; 20_000]);
    env.write("shared/dir/a.txt", b"feature version\n");
    env.write("shared/dir/extra.txt", b"extra\n");
    let mut clip = env.read("media/clip.mp4");
    clip.extend_from_slice(&[3u8; 70_000]);
    env.write("media/clip.mp4", &clip);
    fs::remove_file(env.repo().join("media/scan.tiff")).unwrap();
    commit_all(&env, "feature");
    let feature_tree = tree_hashes(&env.repo());
    assert_ne!(main_tree, feature_tree);

    for _ in 0..2 {
        env.ok(&["checkout", "main"]);
        assert_eq!(tree_hashes(&env.repo()), main_tree);
        assert!(
            !env.repo().join("only_feature").exists(),
            "empty directories left behind are removed"
        );
        assert!(!env.repo().join("shared/dir/extra.txt").exists());
        assert!(env.ok(&["status"]).starts_with("On branch main\n"));
        assert_eq!(porcelain(&env), "");

        env.ok(&["checkout", "feature"]);
        assert_eq!(tree_hashes(&env.repo()), feature_tree);
        assert!(!env.repo().join("only_main").exists());
        assert!(env.repo().join("shared/dir").is_dir());
        assert_eq!(porcelain(&env), "");
    }
    let err = env.fail(&["checkout", "nope"]);
    assert!(err.contains("unknown revision \"nope\""), "{err}");
}

#[test]
fn checkout_swaps_file_and_directory() {
    let env = Env::new();
    env.write("swap/inner.txt", b"inside a directory\n");
    env.write("keep.txt", b"k");
    commit_all(&env, "dir");
    let dir_tree = tree_hashes(&env.repo());
    env.ok(&["switch", "-c", "file"]);
    fs::remove_dir_all(env.repo().join("swap")).unwrap();
    env.write("swap", b"now a file\n");
    commit_all(&env, "file");
    let file_tree = tree_hashes(&env.repo());

    env.ok(&["checkout", "main"]);
    assert_eq!(tree_hashes(&env.repo()), dir_tree);
    assert!(env.repo().join("swap").is_dir());
    env.ok(&["checkout", "file"]);
    assert_eq!(tree_hashes(&env.repo()), file_tree);
    assert!(env.repo().join("swap").is_file());
    assert_eq!(porcelain(&env), "");
}

#[test]
fn checkout_revision_detaches_head() {
    let env = Env::new();
    env.write("a.txt", b"one");
    let c1 = commit_all(&env, "one");
    let t1 = tree_hashes(&env.repo());
    env.write("a.txt", b"two");
    env.write("b.txt", b"b");
    let c2 = commit_all(&env, "two");
    env.ok(&["tag", "v1", "HEAD~1"]);

    let err = ok_err(&env, &["checkout", "HEAD~1"]);
    assert!(
        err.contains(&format!("HEAD is now at {} (detached)", short(&c1))),
        "{err}"
    );
    assert_eq!(head_file(&env), format!("{c1}\n"));
    assert_eq!(tree_hashes(&env.repo()), t1);
    let st = env.ok(&["status"]);
    assert!(
        st.starts_with(&format!("HEAD detached at {}\n", short(&c1))),
        "{st}"
    );
    assert_eq!(env.ok(&["status", "--short"]), "## HEAD (no branch)\n");
    // The branch did not move.
    assert_eq!(full_id(&env, "main"), c2);

    // A commit on a detached HEAD moves only HEAD.
    env.write("c.txt", b"c");
    env.ok(&["add", "c.txt"]);
    let out = env.ok(&["commit", "-m", "detached work"]);
    assert!(out.starts_with("[detached HEAD "), "{out}");
    let c3 = full_id(&env, "HEAD");
    assert_eq!(full_id(&env, "HEAD~1"), c1);
    assert_eq!(full_id(&env, "main"), c2);

    // Tags and full ids detach too.
    env.ok(&["checkout", "v1"]);
    assert_eq!(head_file(&env), format!("{c1}\n"));
    assert_eq!(tree_hashes(&env.repo()), t1);
    env.ok(&["checkout", &c3]);
    assert_eq!(env.read("c.txt"), b"c");
    env.ok(&["checkout", "main"]);
    assert_eq!(head_file(&env), "ref: refs/heads/main\n");
    assert!(!env.repo().join("c.txt").exists());
    let reflog = env.ok(&["reflog"]);
    assert!(
        reflog
            .lines()
            .next()
            .unwrap()
            .ends_with(&format!("checkout: moving from {} to main", short(&c3))),
        "{reflog}"
    );
}

#[test]
fn checkout_rev_paths_restores_file_and_directory_and_stages() {
    let env = Env::new();
    env.write("a.txt", b"a v1\n");
    env.write("dir/x.txt", b"x v1\n");
    env.write("dir/sub/y.bin", &[1u8; 5000]);
    env.write("other.txt", b"other v1\n");
    commit_all(&env, "v1");
    let a1 = env.read("a.txt");
    let x1 = env.read("dir/x.txt");
    let y1 = env.read("dir/sub/y.bin");
    env.write("a.txt", b"a v2\n");
    env.write("dir/x.txt", b"x v2\n");
    env.write("dir/sub/y.bin", &[2u8; 7000]);
    env.write("other.txt", b"other v2\n");
    commit_all(&env, "v2");

    // One file.
    ok_err(&env, &["checkout", "HEAD~1", "--", "a.txt"]);
    assert_eq!(env.read("a.txt"), a1);
    assert_eq!(env.read("dir/x.txt"), b"x v2\n");
    assert_eq!(porcelain(&env), "M  a.txt\n");
    let st = env.ok(&["status"]);
    assert!(
        st.contains("Changes to be committed:\n\tmodified:   a.txt\n"),
        "{st}"
    );
    assert!(!st.contains("Changes not staged"), "{st}");

    // One directory, recursively.
    ok_err(&env, &["checkout", "HEAD~1", "--", "dir"]);
    assert_eq!(env.read("dir/x.txt"), x1);
    assert_eq!(env.read("dir/sub/y.bin"), y1);
    assert_eq!(env.read("other.txt"), b"other v2\n");
    assert_eq!(
        porcelain(&env),
        "M  a.txt\nM  dir/sub/y.bin\nM  dir/x.txt\n"
    );
    assert_eq!(env.ok(&["diff"]), "");
    assert_eq!(
        env.ok(&["diff", "--cached"]),
        "modified: a.txt (5 B -> 5 B)\n\
         modified: dir/sub/y.bin (6.8 KiB -> 4.9 KiB)\n\
         modified: dir/x.txt (5 B -> 5 B)\n"
    );
    // HEAD and the branch did not move.
    assert!(env.ok(&["status"]).starts_with("On branch main\n"));
    env.ok(&["commit", "-m", "back to v1 except other"]);
    assert_eq!(
        env.ok(&["diff", "HEAD~2", "HEAD"]),
        "modified: other.txt (9 B -> 9 B)\n"
    );

    let err = env.fail(&["checkout", "HEAD~1", "--", "missing.txt"]);
    assert!(err.contains("\"missing.txt\" does not exist"), "{err}");
    let err = env.fail(&["checkout", "nope", "--", "a.txt"]);
    assert!(err.contains("unknown revision \"nope\""), "{err}");
}

#[test]
fn checkout_dashdash_path_restores_from_index() {
    let env = Env::new();
    env.write("a.txt", b"one\n");
    env.write("dir/b.txt", b"bee\n");
    env.write("dir/c.txt", b"sea\n");
    commit_all(&env, "one");

    env.write("a.txt", b"two\n");
    env.ok(&["add", "a.txt"]); // staged: two
    env.write("a.txt", b"three, unstaged\n");
    env.write("dir/b.txt", b"edited\n");
    fs::remove_file(env.repo().join("dir/c.txt")).unwrap();
    assert_eq!(porcelain(&env), "MM a.txt\n M dir/b.txt\n D dir/c.txt\n");

    ok_err(&env, &["checkout", "--", "a.txt"]);
    assert_eq!(env.read("a.txt"), b"two\n", "restored from the index");
    assert_eq!(porcelain(&env), "M  a.txt\n M dir/b.txt\n D dir/c.txt\n");
    ok_err(&env, &["checkout", "--", "dir"]);
    assert_eq!(env.read("dir/b.txt"), b"bee\n");
    assert_eq!(env.read("dir/c.txt"), b"sea\n");
    assert_eq!(porcelain(&env), "M  a.txt\n");

    env.write("untracked.txt", b"u");
    let err = env.fail(&["checkout", "--", "untracked.txt"]);
    assert!(err.contains("\"untracked.txt\" did not match"), "{err}");
    assert_eq!(env.read("untracked.txt"), b"u");
}

#[test]
fn local_change_carried_across_switch() {
    let env = Env::new();
    env.write("same.txt", b"same everywhere\n");
    env.write("diff.txt", b"main\n");
    commit_all(&env, "main");
    env.ok(&["switch", "-c", "feature"]);
    env.write("diff.txt", b"feature\n");
    env.write("new.txt", b"only on feature\n");
    commit_all(&env, "feature");
    env.ok(&["switch", "main"]);

    // An unstaged edit of a file equal on both branches travels along.
    env.write("same.txt", b"local edit\n");
    env.ok(&["switch", "feature"]);
    assert_eq!(env.read("same.txt"), b"local edit\n");
    assert_eq!(env.read("diff.txt"), b"feature\n");
    assert_eq!(env.read("new.txt"), b"only on feature\n");
    assert_eq!(porcelain(&env), " M same.txt\n");
    env.ok(&["switch", "main"]);
    assert_eq!(env.read("same.txt"), b"local edit\n");
    assert_eq!(env.read("diff.txt"), b"main\n");
    assert!(!env.repo().join("new.txt").exists());
    assert_eq!(porcelain(&env), " M same.txt\n");

    // A staged one too.
    env.ok(&["add", "same.txt"]);
    env.ok(&["checkout", "feature"]);
    assert_eq!(porcelain(&env), "M  same.txt\n");
    assert_eq!(env.read("same.txt"), b"local edit\n");
    env.ok(&["checkout", "main"]);
    assert_eq!(porcelain(&env), "M  same.txt\n");

    // An untracked file where the other branch has a file blocks the switch.
    env.write("new.txt", b"mine, untracked\n");
    let state = env.repo_state();
    let err = env.fail(&["switch", "feature"]);
    assert!(
        err.contains("untracked files would be overwritten"),
        "{err}"
    );
    assert!(err.contains("new.txt"), "{err}");
    assert_eq!(env.read("new.txt"), b"mine, untracked\n");
    assert_eq!(env.repo_state(), state);
    fs::remove_file(env.repo().join("new.txt")).unwrap();

    // An edit of a file that differs between the branches blocks the switch.
    env.write("diff.txt", b"local change\n");
    let before = tree_hashes(&env.repo());
    let state = env.repo_state();
    let err = env.fail(&["switch", "feature"]);
    assert!(err.contains("would be overwritten"), "{err}");
    assert!(err.contains("diff.txt"), "{err}");
    assert_eq!(tree_hashes(&env.repo()), before);
    assert_eq!(env.repo_state(), state);
    assert_eq!(head_file(&env), "ref: refs/heads/main\n");
    // --force discards it.
    env.ok(&["switch", "--force", "feature"]);
    assert_eq!(env.read("diff.txt"), b"feature\n");
}

// ---------------------------------------------------------------- tags

#[test]
fn tags_create_list_delete() {
    let env = Env::new();
    env.write("a.txt", b"1");
    let c1 = commit_all(&env, "one");
    env.write("a.txt", b"2");
    let c2 = commit_all(&env, "two");
    assert_eq!(env.ok(&["tag"]), "");

    assert_eq!(
        env.ok(&["tag", "v1"]),
        format!("Tagged {} as v1\n", short(&c2))
    );
    assert_eq!(
        env.ok(&["tag", "v0", "HEAD~1", "-m", "first release\n\ndetails"]),
        format!("Tagged {} as v0\n", short(&c1))
    );
    env.ok(&["tag", "rc/2", &c1[..6]]);
    let expected = format!(
        "rc/2                 {}\nv0                   {} first release\nv1                   {}\n",
        short(&c1),
        short(&c1),
        short(&c2)
    );
    assert_eq!(env.ok(&["tag"]), expected);
    assert_eq!(env.ok(&["tag", "list"]), expected);
    assert_eq!(full_id(&env, "v0"), c1);
    assert_eq!(full_id(&env, "v1"), c2);

    // Tags stay where they are.
    env.write("a.txt", b"3");
    commit_all(&env, "three");
    assert_eq!(full_id(&env, "v1"), c2);

    // Duplicates and bad names fail and change nothing.
    let before = env.repo_state();
    let err = env.fail(&["tag", "v1"]);
    assert!(err.contains("a tag named \"v1\" already exists"), "{err}");
    let err = env.fail(&["tag", "v0", "HEAD", "-m", "again"]);
    assert!(err.contains("a tag named \"v0\" already exists"), "{err}");
    let err = env.fail(&["tag", "bad name"]);
    assert!(err.contains("invalid tag name \"bad name\""), "{err}");
    let err = env.fail(&["tag", "v9", "nope"]);
    assert!(err.contains("unknown revision \"nope\""), "{err}");
    assert_eq!(env.repo_state(), before);
    assert_eq!(full_id(&env, "v1"), c2);

    assert_eq!(
        env.ok(&["tag", "delete", "v1"]),
        format!("Deleted tag v1 (was {})\n", short(&c2))
    );
    let out = env.ok(&["tag", "delete", "v0"]);
    assert!(out.starts_with("Deleted tag v0 (was "), "{out}");
    assert_eq!(
        env.ok(&["tag"]),
        format!("rc/2                 {}\n", short(&c1))
    );
    let err = env.fail(&["tag", "delete", "v1"]);
    assert!(err.contains("tag \"v1\" not found"), "{err}");
    let err = env.fail(&["log", "v1"]);
    assert!(err.contains("unknown revision \"v1\""), "{err}");
    // The commits are still there.
    assert_eq!(full_id(&env, "HEAD~1"), c2);
    // A deleted name can be used again.
    env.ok(&["tag", "v1", "HEAD"]);
    assert_eq!(full_id(&env, "v1"), full_id(&env, "HEAD"));
}

// ---------------------------------------------------------------- large file

#[test]
fn large_file_three_versions_restore_and_deduplicate() {
    const MIB: u64 = 1024 * 1024;
    const SIZE: u64 = 200 * MIB;
    let env = Env::new();
    let big = env.repo().join("big.bin");
    write_random(&big, SIZE, 42);
    let v1 = sha256_file(&big);
    env.ok(&["add", "big.bin"]);
    env.ok(&["commit", "-m", "v1"]);
    // What the store holds: the pack files on disk, or what `stats` counts
    // when the objects live in an object store.
    let stored = || {
        if env.remote() {
            let j = env.ok(&["stats", "--json"]);
            let at = j.find("\"pack_bytes\": ").expect("pack_bytes in stats") + 14;
            let digits: String = j[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse::<u64>().unwrap()
        } else {
            sum_file_sizes(&env.repo().join(".mediagit/packs"))
        }
    };
    let after_v1 = stored();
    assert!(after_v1 >= SIZE, "random data is stored whole: {after_v1}");

    // v2: 1 MiB overwritten in the middle.
    {
        let patch = random_bytes(&env, MIB, 43);
        let mut f = fs::OpenOptions::new().write(true).open(&big).unwrap();
        f.seek(SeekFrom::Start(SIZE / 2 - MIB / 2)).unwrap();
        f.write_all(&patch).unwrap();
    }
    assert_eq!(fs::metadata(&big).unwrap().len(), SIZE);
    let v2 = sha256_file(&big);
    env.ok(&["commit", "-a", "-m", "v2"]);

    // v3: 5 MiB appended.
    {
        let tail = random_bytes(&env, 5 * MIB, 44);
        let mut f = fs::OpenOptions::new().append(true).open(&big).unwrap();
        f.write_all(&tail).unwrap();
    }
    let v3 = sha256_file(&big);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "v3"]);
    assert!(v1 != v2 && v2 != v3 && v1 != v3);

    let total = stored();
    let limit = SIZE + SIZE / 5 + 10 * MIB;
    assert!(
        total < limit,
        "three versions take {total} bytes, more than {limit}: no deduplication"
    );

    // Each version comes back exactly.
    env.ok(&["checkout", "HEAD~2"]);
    assert_eq!(sha256_file(&big), v1);
    env.ok(&["checkout", "main~1"]);
    assert_eq!(sha256_file(&big), v2);
    assert_eq!(fs::metadata(&big).unwrap().len(), SIZE);
    env.ok(&["checkout", "main"]);
    assert_eq!(sha256_file(&big), v3);
    assert_eq!(fs::metadata(&big).unwrap().len(), SIZE + 5 * MIB);
    env.ok(&["checkout", "HEAD~2"]);
    assert_eq!(sha256_file(&big), v1);
    env.ok(&["checkout", "main"]);
    assert_eq!(sha256_file(&big), v3);
    assert_eq!(porcelain(&env), "");
    assert_eq!(
        env.ok(&["diff", "HEAD~2", "HEAD"]),
        "modified: big.bin (200.0 MiB -> 205.0 MiB)\n"
    );
}

#[test]
fn checkout_head_stays_on_the_branch() {
    let env = Env::new();
    env.write("a.txt", b"one\n");
    let id = commit_all(&env, "one");
    let head_before = head_file(&env);
    assert!(head_before.contains("main"), "{head_before}");
    // `checkout --force HEAD` restores the working tree and keeps the
    // branch checked out, as in Git (no detached HEAD).
    fs::remove_file(env.repo().join("a.txt")).unwrap();
    env.write("a.txt.tmp", b"x");
    env.ok(&["checkout", "--force", "HEAD"]);
    assert_eq!(head_file(&env), head_before);
    assert_eq!(env.read("a.txt"), b"one\n");
    let err = ok_err(&env, &["checkout", "@"]);
    assert!(err.starts_with("Already on 'main'"), "{err}");
    assert_eq!(head_file(&env), head_before);
    // A revision that is not HEAD still detaches.
    env.ok(&["checkout", &id]);
    assert!(!head_file(&env).contains("main"), "{}", head_file(&env));
}

/// A staged new file where the target branch has a directory, which no
/// step of the switch removes: refused before anything is touched (found
/// deleting and writing files first, then reporting "nothing was changed").
#[test]
fn a_staged_file_where_the_target_has_a_directory_refuses_the_switch_untouched() {
    let env = Env::new();
    env.write("m", b"m\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    env.ok(&["switch", "-c", "c"]);
    env.write("p/x", b"x\n");
    fs::remove_file(env.repo().join("m")).unwrap();
    env.write("zz", b"zz\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "on c"]);
    env.ok(&["switch", "main"]);
    env.write("p", b"staged\n");
    env.ok(&["add", "p"]);
    let before = tree_hashes(&env.repo());
    let index_before = fs::read(env.repo().join(".mediagit/index")).unwrap();
    let err = env.fail(&["switch", "c"]);
    assert!(
        err.contains("your local changes to these files would be overwritten: p;")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(tree_hashes(&env.repo()), before);
    assert_eq!(
        fs::read(env.repo().join(".mediagit/index")).unwrap(),
        index_before
    );
    assert_eq!(porcelain(&env), "A  p\n");
}

/// `checkout REV -- PATH...` where REV has a directory at a path the index
/// tracks as a file: the file gives way to the directory (as in Git), the
/// other paths are checked out, and the index says what happened; nothing
/// is written before that is decided.
#[test]
fn checkout_paths_replaces_a_tracked_file_by_the_revisions_directory() {
    let env = Env::new();
    env.write("a", b"file\n");
    env.write("a.txt", b"old\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
    env.ok(&["switch", "-c", "b"]);
    fs::remove_file(env.repo().join("a")).unwrap();
    env.write("a/b", b"in\n");
    env.write("a.txt", b"newer\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "on b"]);
    env.ok(&["switch", "main"]);
    env.ok(&["checkout", "b", "--", "a", "a.txt"]);
    assert_eq!(fs::read(env.repo().join("a/b")).unwrap(), b"in\n");
    assert_eq!(fs::read(env.repo().join("a.txt")).unwrap(), b"newer\n");
    assert_eq!(porcelain(&env), "D  a\nM  a.txt\nA  a/b\n");

    // An untracked file where the directory must go: refused, untouched.
    env.ok(&["checkout", "--force", "main"]);
    env.ok(&["rm", "--cached", "a"]);
    let before = tree_hashes(&env.repo());
    let err = env.fail(&["checkout", "b", "--", "a.txt", "a"]);
    assert!(
        err.contains("untracked files would be overwritten: a;"),
        "{err}"
    );
    assert_eq!(tree_hashes(&env.repo()), before);
}
