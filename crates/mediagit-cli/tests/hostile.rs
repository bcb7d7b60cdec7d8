//! Hostile stores and hostile working trees, each case as an outside probe
//! found it: crafted trees (20,000 levels deep, shared subtrees that expand
//! exponentially, forged sizes, NUL in symlink targets, reserved names),
//! decompression bombs, control characters in names, planted refs and
//! repositories, symlinked directories in the working tree, and `gc` on a
//! store shared by two working trees. Every test checks what the user sees
//! and that nothing outside the working tree was touched.
mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;
use mediagit_format::object::Timestamp;
use mediagit_format::pack::Codec;
use mediagit_format::{Commit, EntryKind, Manifest, ManifestChunk, ObjectId, ObjectKind};
use mediagit_format::{Signature, Tree, TreeEntry};
use mediagit_repo::Repository;

fn sig() -> Signature {
    Signature {
        name: "Mallory".into(),
        email: "m@example.com".into(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    }
}

/// Writes objects into the repository at `repo` with the library (as a
/// hostile machine sharing the store could), then points `branch` at the
/// commit of the root tree `build` returns.
fn craft(
    repo: &Path,
    branch: &str,
    build: impl FnOnce(&mut mediagit_repo::odb::PackSession<'_>) -> ObjectId,
) -> ObjectId {
    let r = Repository::discover(repo).unwrap();
    let odb = r.odb().unwrap();
    let mut s = odb.session();
    let tree = build(&mut s);
    let commit = Commit {
        tree,
        parents: vec![],
        author: sig(),
        committer: sig(),
        message: "crafted\n".into(),
    };
    let id = s.put_object(ObjectKind::Commit, &commit.encode()).unwrap();
    s.finish().unwrap();
    r.cas_ref(&format!("refs/heads/{branch}"), None, Some(id))
        .unwrap();
    id
}

/// A tree from entries, sorted as the format requires. Encoded without
/// validation, as a hostile writer would.
fn put_tree(s: &mut mediagit_repo::odb::PackSession<'_>, mut entries: Vec<TreeEntry>) -> ObjectId {
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    s.put_object(ObjectKind::Tree, &Tree { entries }.encode())
        .unwrap()
}

fn dir(name: &str, tree: ObjectId) -> TreeEntry {
    TreeEntry {
        name: name.into(),
        kind: EntryKind::Dir { tree },
    }
}

fn file(name: &str, size: u64, content: ObjectId, manifest: ObjectId) -> TreeEntry {
    TreeEntry {
        name: name.into(),
        kind: EntryKind::File {
            executable: false,
            size,
            mtime: Timestamp::default(),
            content,
            manifest,
        },
    }
}

/// Stores `data` as one chunk and its manifest; returns (content, manifest).
fn put_file(s: &mut mediagit_repo::odb::PackSession<'_>, data: &[u8]) -> (ObjectId, ObjectId) {
    let chunk = s.put_object(ObjectKind::Chunk, data).unwrap();
    let m = Manifest {
        content: ObjectId::hash(data),
        size: data.len() as u64,
        chunks: vec![ManifestChunk {
            id: chunk,
            len: data.len() as u32,
        }],
    };
    let mid = s.put_object(ObjectKind::Manifest, &m.encode()).unwrap();
    (m.content, mid)
}

fn run(env: &Env, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = env.cmd_in(dir, args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn base_commit(env: &Env) {
    env.write("keep.txt", b"keep\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "base"]);
}

// ---- 4. trees nested 20,000 levels deep ----

#[test]
fn a_tree_nested_20000_levels_is_refused_not_a_stack_overflow() {
    let env = Env::new();
    base_commit(&env);
    craft(&env.repo(), "deep", |s| {
        let (c, m) = put_file(s, b"bottom\n");
        let mut t = put_tree(s, vec![file("f", 7, c, m)]);
        for _ in 0..20_000 {
            t = put_tree(s, vec![dir("d", t)]);
        }
        t
    });
    for args in [
        &["ls-tree", "-r", "deep"][..],
        &["switch", "deep"][..],
        &["diff", "main", "deep"][..],
    ] {
        let (code, _, err) = run(&env, &env.repo(), args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("nested more than 1024 levels"),
            "{args:?}: {err}"
        );
    }
    // The working tree and HEAD are as they were.
    assert_eq!(env.read("keep.txt"), b"keep\n");
    assert!(env.ok(&["status"]).contains("main"));
    // fsck names it (every other command refuses it).
    let (code, out, err) = run(&env, &env.repo(), &["fsck"]);
    assert_eq!(code, Some(4), "{out}{err}");
    assert!(out.contains("nested more than 1024 levels"), "{out}");
    // clone of the repository (HEAD is main): fine; of the branch: refused.
    env.ok_in(env.root(), &["clone", "repo", "copy"]);
    let (code, _, err) = run(&env, &env.root().join("copy"), &["switch", "deep"]);
    assert_eq!(code, Some(1), "{err}");
}

// ---- 5. shared subtrees that expand exponentially ----

#[test]
fn shared_subtrees_that_expand_to_billions_of_files_are_refused_up_front() {
    let env = Env::new();
    base_commit(&env);
    craft(&env.repo(), "bomb", |s| {
        let (c, m) = put_file(s, b"x\n");
        let mut t = put_tree(s, vec![file("a", 2, c, m), file("b", 2, c, m)]);
        // 40 levels of two names for the same subtree: 2^41 files.
        for _ in 0..40 {
            t = put_tree(s, vec![dir("l", t), dir("r", t)]);
        }
        t
    });
    let started = std::time::Instant::now();
    let (code, _, err) = run(&env, &env.repo(), &["ls-tree", "-r", "bomb"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("expands to more than 10000000 files"), "{err}");
    // Refused from the counts, before building anything: well under the
    // seconds that materialising even the cap would take.
    assert!(started.elapsed().as_secs() < 60);
    let (code, _, err) = run(&env, &env.repo(), &["switch", "bomb"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(env.read("keep.txt"), b"keep\n");
}

#[test]
fn shared_subtrees_with_huge_directories_of_nothing_are_refused_up_front() {
    // Few files, but listing them would go through tens of millions of
    // entries: one directory of 40,000 empty subdirectories and a file,
    // named 1,001 times (found by a hostile review: 62 KB kept checkout
    // busy for 20 minutes).
    let env = Env::new();
    base_commit(&env);
    craft(&env.repo(), "wide", |s| {
        let (c, m) = put_file(s, b"x\n");
        let empty = put_tree(s, vec![]);
        let mut entries = vec![file("a", 2, c, m)];
        entries.extend((0..40_000).map(|i| dir(&format!("e{i:05}"), empty)));
        let wide = put_tree(s, entries);
        put_tree(
            s,
            (0..1_001).map(|i| dir(&format!("w{i:04}"), wide)).collect(),
        )
    });
    let started = std::time::Instant::now();
    for args in [&["ls-tree", "-r", "wide"][..], &["switch", "wide"][..]] {
        let (code, _, err) = run(&env, &env.repo(), args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("more than 40000000 tree entries"),
            "{args:?}: {err}"
        );
    }
    assert!(started.elapsed().as_secs() < 60);
    assert_eq!(env.read("keep.txt"), b"keep\n");
    assert!(env.ok(&["status"]).contains("main"));
}

#[test]
fn names_longer_than_1024_bytes_and_directories_of_long_names_named_over_and_over_are_refused() {
    let env = Env::new();
    base_commit(&env);
    // One name of 2,000 bytes: refused by every reader, its error showing
    // the start of the name only.
    craft(&env.repo(), "long", |s| {
        let (c, m) = put_file(s, b"x\n");
        put_tree(s, vec![file(&"n".repeat(2000), 2, c, m)])
    });
    let (code, _, err) = run(&env, &env.repo(), &["ls-tree", "-r", "long"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("longer than 1024 bytes"), "{err}");
    assert!(err.len() < 1000, "the whole name was printed: {err}");
    // 20,000 empty directories with 1,000-byte names beside a file, named
    // 110 times: 2.2 GB of names to go through for 110 files.
    craft(&env.repo(), "names", |s| {
        let (c, m) = put_file(s, b"x\n");
        let empty = put_tree(s, vec![]);
        let mut entries = vec![file("a", 2, c, m)];
        entries.extend((0..20_000).map(|i| dir(&format!("{i:05}{}", "e".repeat(995)), empty)));
        let wide = put_tree(s, entries);
        put_tree(
            s,
            (0..110).map(|i| dir(&format!("w{i:03}"), wide)).collect(),
        )
    });
    let started = std::time::Instant::now();
    for args in [&["ls-tree", "-r", "names"][..], &["switch", "names"][..]] {
        let (code, _, err) = run(&env, &env.repo(), args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains("bytes of names"), "{args:?}: {err}");
    }
    assert!(started.elapsed().as_secs() < 60);
    assert_eq!(env.read("keep.txt"), b"keep\n");
}

// ---- 6. decompression bombs ----

#[test]
fn a_chunk_claiming_gigabytes_is_refused_before_allocation() {
    let env = Env::new();
    base_commit(&env);
    // A zstd frame of 4 GiB of zeros is about 130 KB; a hostile entry need
    // not even be valid: the claim alone must be refused.
    let fake = ObjectId::hash(b"four gibibytes of zeros");
    craft(&env.repo(), "zip", |s| {
        s.put_encoded(
            ObjectKind::Chunk,
            fake,
            Codec::Zstd,
            u32::MAX as usize,
            &[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0],
        )
        .unwrap();
        let m = Manifest {
            content: fake,
            size: u32::MAX as u64,
            chunks: vec![ManifestChunk {
                id: fake,
                len: u32::MAX,
            }],
        };
        let mid = s.put_object(ObjectKind::Manifest, &m.encode()).unwrap();
        put_tree(s, vec![file("big.bin", u32::MAX as u64, fake, mid)])
    });
    let (code, out, err) = run(&env, &env.repo(), &["cat", "zip:big.bin"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("a chunk is at most 2097152 bytes") && err.contains(&fake.to_string()),
        "{err}"
    );
    // fsck's own scan refuses it too, and names the pack.
    let (code, out, err) = run(&env, &env.repo(), &["fsck"]);
    assert_eq!(code, Some(4), "{out}{err}");
    assert!(
        format!("{out}{err}").contains("a chunk is at most 2097152 bytes"),
        "{out}{err}"
    );
}

// ---- 7. forged sizes in trees ----

#[test]
fn a_tree_entry_that_disagrees_with_its_manifest_is_refused_before_writing() {
    let env = Env::new();
    base_commit(&env);
    let data = vec![7u8; 300_000];
    craft(&env.repo(), "forged", |s| {
        let (c, m) = put_file(s, &data);
        // The tree says 1 byte; the manifest restores 300,000.
        put_tree(s, vec![file("small.txt", 1, c, m), file("z.txt", 1, c, m)])
    });
    let (code, _, err) = run(&env, &env.repo(), &["switch", "forged"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("tree entry small.txt") && err.contains("300000 bytes"),
        "{err}"
    );
    assert!(!env.repo().join("small.txt").exists(), "nothing written");
    assert!(env.ok(&["status"]).contains("On branch main"));
    // A content id that is not the manifest's (ls-files would show a lie).
    craft(&env.repo(), "forged2", |s| {
        let (_, m) = put_file(s, &data);
        put_tree(
            s,
            vec![file("other.txt", 300_000, ObjectId::hash(b"else"), m)],
        )
    });
    let (code, _, err) = run(
        &env,
        &env.repo(),
        &["checkout", "forged2", "--", "other.txt"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("tree entry other.txt"), "{err}");
    assert!(!env.repo().join("other.txt").exists());
}

// ---- 8. symlink targets ----

#[test]
fn a_symlink_target_with_nul_is_refused_before_checkout_changes_anything() {
    let env = Env::new();
    base_commit(&env);
    craft(&env.repo(), "nul", |s| {
        let (c, m) = put_file(s, b"changed\n");
        put_tree(
            s,
            vec![
                file("keep.txt", 8, c, m),
                TreeEntry {
                    name: "link".into(),
                    kind: EntryKind::Symlink {
                        target: "a\0b".into(),
                        mtime: Timestamp::default(),
                    },
                },
            ],
        )
    });
    let (code, _, err) = run(&env, &env.repo(), &["switch", "nul"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("NUL"), "{err}");
    assert_eq!(env.read("keep.txt"), b"keep\n", "no file rewritten");
    assert!(
        env.ok(&["status"]).contains("On branch main"),
        "HEAD unchanged"
    );
}

#[test]
fn a_symlink_whose_target_is_not_utf8_is_skipped_with_a_warning() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    env.write("photo.jpg", b"jpeg\n");
    symlink(
        std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"),
        env.repo().join("latin1-link"),
    )
    .unwrap();
    let out = env.cmd(&["add", "-A"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("latin1-link") && err.contains("target is not valid UTF-8"),
        "{err}"
    );
    assert!(!err.contains("file name"), "the name is fine: {err}");
    let files = env.ok(&["ls-files"]);
    assert!(
        files.contains("photo.jpg") && !files.contains("latin1-link"),
        "{files}"
    );
}

// ---- 9. control characters on the terminal, planted ref names ----

#[test]
fn control_characters_in_names_never_reach_the_terminal() {
    let env = Env::new();
    env.write("evil\u{1b}[2J.txt", b"x\n");
    env.write("c1\u{9b}31m.txt", b"y\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "names"]);
    for args in [
        &["ls-files"][..],
        &["ls-tree", "-r", "HEAD"][..],
        &["log", "--stat"][..],
        &["show", "HEAD"][..],
    ] {
        let out = env.ok(args);
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{9b}'),
            "{args:?}: {out:?}"
        );
        assert!(out.contains("evil\\u001b[2J.txt"), "{args:?}: {out}");
    }
    // `cat` writes content as it is (a file may hold anything).
    env.write("esc.bin", b"\x1b[2J");
    env.ok(&["add", "esc.bin"]);
    env.ok(&["commit", "-m", "esc"]);
    let out = env.cmd(&["cat", "HEAD:esc.bin"]).output().unwrap();
    assert_eq!(out.stdout, b"\x1b[2J");
}

#[test]
fn a_planted_ref_name_is_ignored_by_branch_and_not_copied_by_clone() {
    let env = Env::new();
    base_commit(&env);
    let head = fs::read_to_string(env.repo().join(".mediagit/refs/heads/main")).unwrap();
    fs::write(
        env.repo().join(".mediagit/refs/heads/evil\u{1b}[31mRED"),
        &head,
    )
    .unwrap();
    let out = env.ok(&["branch"]);
    assert!(out.contains("main") && !out.contains("evil"), "{out:?}");
    env.ok(&["gc"]);
    let (code, out, err) = run(&env, env.root(), &["clone", "repo", "copy"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("not copied"), "{err}");
    assert!(!out.contains('\u{1b}'));
    let copied: Vec<String> = fs::read_dir(env.root().join("copy/.mediagit/refs/heads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(copied, vec!["main".to_string()]);
}

// ---- 10. names that are the repository directory elsewhere ----

#[test]
fn names_equal_to_mediagit_on_other_filesystems_are_refused() {
    let env = Env::new();
    base_commit(&env);
    // In a crafted tree: refused on decode, nothing written.
    for (i, name) in [".MediaGit", ".mediagit ", ".MEDIAGIT.", "MEDIAG~1"]
        .iter()
        .enumerate()
    {
        let branch = format!("case{i}");
        craft(&env.repo(), &branch, |s| {
            let (c, m) = put_file(s, b"[core]\n");
            let inner = put_tree(s, vec![file("config.toml", 7, c, m)]);
            put_tree(s, vec![dir(name, inner)])
        });
        let (code, _, err) = run(&env, &env.repo(), &["switch", &branch]);
        assert_eq!(code, Some(1), "{name:?}: {err}");
        assert!(err.contains("reserved"), "{name:?}: {err}");
        assert!(!env.repo().join(name).exists());
    }
    // In the working tree (a case-sensitive disk): skipped with a warning.
    env.write(".MediaGit/config.toml", b"[storage]\n");
    let out = env.cmd(&["add", "-A"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reserved"));
    assert!(!env.ok(&["ls-files"]).contains("MediaGit"));
    let err = env.fail(&["add", ".MediaGit/config.toml"]);
    assert!(err.contains("reserved"), "{err}");
}

// ---- 11. identity is not cloned ----

#[test]
fn a_clone_does_not_take_the_source_repositorys_author() {
    let env = Env::new();
    base_commit(&env);
    let cfg = env.repo().join(".mediagit/config.toml");
    let mut text = fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[author]\nname = \"Impostor\"\nemail = \"impostor@example.com\"\n");
    fs::write(&cfg, text).unwrap();
    env.ok_in(env.root(), &["clone", "repo", "copy"]);
    let copied = fs::read_to_string(env.root().join("copy/.mediagit/config.toml")).unwrap();
    assert!(!copied.contains("Impostor"), "{copied}");
    let out = env
        .cmd_in(
            &env.root().join("copy"),
            &["commit", "--allow-empty", "-m", "x"],
        )
        .env_remove("MEDIAGIT_AUTHOR_NAME")
        .env_remove("MEDIAGIT_AUTHOR_EMAIL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no author identity"));
}

// ---- 2, 3. symlinked directories in the working tree ----

/// A repository with `footage/a.mov` committed, then `footage` moved to
/// another disk (`nas/footage`) and symlinked back. Returns the NAS path.
fn moved_to_nas(env: &Env) -> std::path::PathBuf {
    env.write("footage/a.mov", b"original take\n");
    env.write("notes.txt", b"notes\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "footage"]);
    let nas = env.root().join("nas");
    fs::create_dir(&nas).unwrap();
    fs::rename(env.repo().join("footage"), nas.join("footage")).unwrap();
    symlink(nas.join("footage"), env.repo().join("footage")).unwrap();
    nas.join("footage")
}

#[test]
fn rm_never_deletes_through_a_symlinked_directory() {
    let env = Env::new();
    let nas = moved_to_nas(&env);
    for args in [
        &["rm", "-r", "footage"][..],
        &["rm", "-r", "-f", "footage"][..],
        &["rm", "footage/a.mov"][..],
    ] {
        let err = env.fail(args);
        assert!(err.contains("beyond a symbolic link"), "{args:?}: {err}");
    }
    assert_eq!(fs::read(nas.join("a.mov")).unwrap(), b"original take\n");
    // Only the index: allowed, nothing on disk touched.
    env.ok(&["rm", "-r", "--cached", "footage"]);
    assert_eq!(fs::read(nas.join("a.mov")).unwrap(), b"original take\n");
}

#[test]
fn mv_add_and_restore_refuse_paths_beyond_a_symlink() {
    let env = Env::new();
    let nas = moved_to_nas(&env);
    let err = env.fail(&["mv", "notes.txt", "footage"]);
    assert!(err.contains("beyond a symbolic link"), "{err}");
    assert!(!nas.join("notes.txt").exists());
    assert_eq!(env.read("notes.txt"), b"notes\n");
    let err = env.fail(&["mv", "footage/a.mov", "b.mov"]);
    assert!(err.contains("beyond a symbolic link"), "{err}");
    fs::write(nas.join("a.mov"), b"edited on the NAS\n").unwrap();
    let err = env.fail(&["add", "footage/a.mov"]);
    assert!(err.contains("beyond a symbolic link"), "{err}");
    let err = env.fail(&["checkout", "HEAD", "--", "footage/a.mov"]);
    assert!(err.contains("beyond a symbolic link"), "{err}");
    assert_eq!(fs::read(nas.join("a.mov")).unwrap(), b"edited on the NAS\n");
}

#[test]
fn commit_a_and_add_all_never_read_through_a_symlinked_directory() {
    let env = Env::new();
    let nas = moved_to_nas(&env);
    // Edited outside the working tree: must not be committed as footage/a.mov.
    fs::write(nas.join("a.mov"), b"secret from elsewhere\n").unwrap();
    let st = env.ok(&["status"]);
    assert!(
        st.contains("deleted:") && st.contains("footage/a.mov"),
        "{st}"
    );
    env.ok(&["commit", "-a", "-m", "tracked only"]);
    let files = env.ok(&["ls-files"]);
    assert!(!files.contains("footage/a.mov"), "{files}");
    let (code, out, _) = run(&env, &env.repo(), &["cat", "HEAD:footage/a.mov"]);
    assert_eq!(code, Some(1), "{out}");
    // add -A stages the symlink itself, and the index stays committable.
    env.ok(&["add", "-A"]);
    let files = env.ok(&["ls-files", "-l"]);
    assert!(
        files.contains("footage") && !files.contains("footage/"),
        "{files}"
    );
    env.ok(&["commit", "-m", "the link"]);
    assert!(env.ok(&["status"]).contains("nothing to commit"));
}

// ---- 13. repositories owned by someone else ----

#[test]
fn a_repository_owned_by_another_user_is_refused_unless_listed() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("not root: cannot chown to another user; skipping");
        return;
    }
    let env = Env::new();
    base_commit(&env);
    let outer = env.root().join("shared");
    fs::create_dir(&outer).unwrap();
    // Someone else's repository in a parent directory of the user's folder.
    env.ok_in(env.root(), &["init", "shared"]);
    let sub = outer.join("project");
    fs::create_dir(&sub).unwrap();
    let dot = outer.join(".mediagit");
    chown_r(&dot, 4242);
    let xdg = env.root().join("xdg");
    let status = |extra: Option<&str>| {
        if let Some(cfg) = extra {
            fs::create_dir_all(xdg.join("mediagit")).unwrap();
            fs::write(xdg.join("mediagit/config.toml"), cfg).unwrap();
        }
        env.cmd_in(&sub, &["status"])
            .env("XDG_CONFIG_HOME", &xdg)
            .output()
            .unwrap()
    };
    let out = status(None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("owned by") && err.contains("4242"), "{err}");
    assert!(err.contains("[safe]"), "{err}");
    let listed = format!(
        "[safe]\ndirectories = [{:?}]\n",
        outer.canonicalize().unwrap().display().to_string()
    );
    let out = status(Some(&listed));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = status(Some("[safe]\ndirectories = [\"/elsewhere\"]\n"));
    assert_eq!(out.status.code(), Some(1));
    let out = status(Some("[safe]\ndirectories = [\"*\"]\n"));
    assert!(out.status.success());
    // A relative entry trusts nothing (it would trust wherever one stands).
    let out = status(Some("[safe]\ndirectories = [\".\", \"..\"]\n"));
    assert_eq!(out.status.code(), Some(1));
    // Someone else's config.toml in a directory the user owns (a planted
    // bare repository in a shared folder) is refused too.
    chown_r(&dot, 0);
    std::process::Command::new("chown")
        .args(["4242", &dot.join("config.toml").display().to_string()])
        .status()
        .unwrap();
    let out = status(Some("[safe]\ndirectories = []\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("4242"));
    // clone honours the list too.
    let out = env
        .cmd_in(env.root(), &["clone", "shared", "copy"])
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    status(Some("[safe]\ndirectories = [\"*\"]\n"));
    let out = env
        .cmd_in(env.root(), &["clone", "shared", "copy"])
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chown_r(p: &Path, uid: u32) {
    let st = std::process::Command::new("chown")
        .args(["-R", &uid.to_string(), &p.display().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

// ---- 14. a damaged chunk heals when its file is added again ----

#[test]
fn adding_the_original_file_again_heals_a_damaged_chunk() {
    let env = Env::new();
    write_random(&env.repo().join("clip.mov"), 3_000_000, 11);
    let want = sha256_file(&env.repo().join("clip.mov"));
    let original = fs::read(env.repo().join("clip.mov")).unwrap();
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "clip"]);
    // Flip a byte in the middle of the pack (inside a chunk's payload).
    // The largest pack holds the clip's chunks (the commit has its own).
    let pack = packs(&env)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&pack, &bytes).unwrap();
    let (code, out, _) = run(&env, &env.repo(), &["fsck"]);
    assert_eq!(code, Some(4));
    assert!(out.contains("corrupt"), "{out}");
    // The user restores the file from a backup and adds it again.
    fs::remove_file(env.repo().join("clip.mov")).unwrap();
    fs::write(env.repo().join("clip.mov"), &original).unwrap();
    env.ok(&["rm", "--cached", "clip.mov"]);
    env.ok(&["add", "clip.mov"]);
    env.ok(&["commit", "--allow-empty", "-m", "re-added"]);
    let (code, out, err) = run(&env, &env.repo(), &["fsck"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("superseded"), "{out}");
    fs::remove_file(env.repo().join("clip.mov")).unwrap();
    env.ok(&["checkout", "HEAD~1", "--", "clip.mov"]);
    assert_eq!(sha256_file(&env.repo().join("clip.mov")), want);
    env.ok(&["verify", "HEAD~1"]);
}

// ---- 1. gc on a store shared by two working trees ----

/// Two working trees on one directory store: `a` (returned) and `b`.
fn shared_store(env: &Env) -> (std::path::PathBuf, std::path::PathBuf) {
    let store = env.root().join("store");
    env.ok_in(
        env.root(),
        &["init", "a", "--storage", &store.display().to_string()],
    );
    let a = env.root().join("a");
    fs::write(a.join("readme.txt"), b"shared\n").unwrap();
    env.ok_in(&a, &["add", "-A"]);
    env.ok_in(&a, &["commit", "-m", "first"]);
    // A file:// URL joins the store (a plain path would make a copy).
    let url = format!("file://{}", store.display());
    env.ok_in(env.root(), &["clone", &url, "b"]);
    (a, env.root().join("b"))
}

/// B commits a clip on a branch, deletes the branch, and the packs age past
/// the grace period; B adds the same clip again (every object deduplicated).
fn reuse_old_objects(env: &Env, b: &Path) -> String {
    env.ok_in(b, &["switch", "-c", "idea"]);
    write_random(&b.join("clip.mov"), 4_000_000, 5);
    let want = sha256_file(&b.join("clip.mov"));
    env.ok_in(b, &["add", "clip.mov"]);
    env.ok_in(b, &["commit", "-m", "idea"]);
    let keep = fs::read(b.join("clip.mov")).unwrap();
    env.ok_in(b, &["switch", "main"]);
    env.ok_in(b, &["branch", "delete", "-D", "idea"]);
    age_files(&env.root().join("store/packs"), 30);
    fs::write(b.join("clip.mov"), keep).unwrap();
    env.ok_in(b, &["add", "clip.mov"]);
    want
}

#[test]
fn gc_on_another_working_tree_keeps_objects_this_one_reused() {
    let env = Env::empty();
    let (a, b) = shared_store(&env);
    let want = reuse_old_objects(&env, &b);
    // A's gc: the clip is unreachable from A's roots and its pack is old.
    let out = env.ok_in(&a, &["gc"]);
    assert!(out.contains("removed"), "{out}");
    env.ok_in(&b, &["commit", "-m", "clip again"]);
    fs::remove_file(b.join("clip.mov")).unwrap();
    env.ok_in(&b, &["checkout", "HEAD", "--", "clip.mov"]);
    assert_eq!(sha256_file(&b.join("clip.mov")), want);
    // (Not `fsck` in b: b's reflog still names the deleted branch's commit,
    // which a's gc removed; gc sees only its own working tree's reflogs.)
    env.ok_in(&b, &["verify"]);
    // A later gc with the default grace period still keeps it (reachable).
    env.ok_in(&a, &["switch", "main"]);
    env.ok_in(&a, &["gc"]);
    env.ok_in(&b, &["verify"]);
}

#[test]
fn commit_refuses_objects_a_gc_removed_after_they_were_staged() {
    let env = Env::empty();
    let (a, b) = shared_store(&env);
    let want = reuse_old_objects(&env, &b);
    // `--prune=now` overrides the grace period (FORMAT.md says not to on a
    // shared store): the reused objects go despite their freshen markers.
    env.ok_in(&a, &["gc", "--prune=now"]);
    let out = env
        .cmd_in(&b, &["commit", "-m", "clip again"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was committed") && err.contains("clip.mov"),
        "{err}"
    );
    assert!(err.contains("mediagit add"), "{err}");
    // As the hint says: add again, commit, and the clip restores exactly.
    env.ok_in(&b, &["add", "clip.mov"]);
    env.ok_in(&b, &["commit", "-m", "clip again"]);
    fs::remove_file(b.join("clip.mov")).unwrap();
    env.ok_in(&b, &["checkout", "HEAD", "--", "clip.mov"]);
    assert_eq!(sha256_file(&b.join("clip.mov")), want);
    env.ok_in(&b, &["verify"]);
}

// ---- found by the hostile probe of the fixes above ----

#[test]
fn commit_refuses_a_new_file_whose_reused_chunks_a_gc_removed() {
    // The probe's race (gc between b's reuse and its marker), made
    // deterministic: b reuses without freshening at all.
    let env = Env::empty();
    let (a, b) = shared_store(&env);
    env.ok_in(&b, &["switch", "-c", "idea"]);
    write_random(&b.join("take.mov"), 3_000_000, 9);
    let take = fs::read(b.join("take.mov")).unwrap();
    env.ok_in(&b, &["add", "take.mov"]);
    env.ok_in(&b, &["commit", "-m", "idea"]);
    env.ok_in(&b, &["switch", "main"]);
    env.ok_in(&b, &["branch", "delete", "-D", "idea"]);
    age_files(&env.root().join("store/packs"), 30);
    // A longer take: a new manifest, most chunks reused from the old pack.
    let mut longer = take.clone();
    longer.extend_from_slice(&[1u8; 100_000]);
    fs::write(b.join("take.mov"), &longer).unwrap();
    let out = env
        .cmd_in(&b, &["add", "take.mov"])
        .env("MEDIAGIT_FRESHEN_AFTER", "never")
        .output()
        .unwrap();
    assert!(out.status.success());
    env.ok_in(&a, &["gc"]);
    let out = env
        .cmd_in(&b, &["commit", "-m", "longer"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("take.mov") && err.contains("nothing was committed"),
        "{err}"
    );
    env.ok_in(&b, &["add", "take.mov"]);
    env.ok_in(&b, &["commit", "-m", "longer"]);
    fs::remove_file(b.join("take.mov")).unwrap();
    env.ok_in(&b, &["checkout", "HEAD", "--", "take.mov"]);
    assert_eq!(fs::read(b.join("take.mov")).unwrap(), longer);
}

#[test]
fn a_freshen_marker_from_the_future_does_not_pin_a_pack() {
    let env = Env::empty();
    let (a, b) = shared_store(&env);
    env.ok_in(&b, &["switch", "-c", "idea"]);
    write_random(&b.join("x.bin"), 500_000, 2);
    env.ok_in(&b, &["add", "x.bin"]);
    env.ok_in(&b, &["commit", "-m", "idea"]);
    env.ok_in(&b, &["switch", "main"]);
    env.ok_in(&b, &["branch", "delete", "-D", "idea"]);
    let store = env.root().join("store");
    let before: Vec<_> = fs::read_dir(store.join("packs")).unwrap().collect();
    fs::create_dir_all(store.join("freshen")).unwrap();
    for e in fs::read_dir(store.join("packs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".pack") {
            // Year 3000.
            fs::write(store.join(format!("freshen/{id}-32503680000-0")), b"").unwrap();
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = env.ok_in(&a, &["gc", "--prune=now"]);
    assert!(
        out.contains("removed") && !out.contains("removed 0 "),
        "{out}"
    );
    let after: Vec<_> = fs::read_dir(store.join("packs")).unwrap().collect();
    assert!(after.len() < before.len());
    let markers = fs::read_dir(store.join("freshen"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(markers, 0, "markers that protect nothing are deleted");
}

#[test]
fn switching_from_a_symlinked_directory_to_a_real_one_works() {
    let env = Env::new();
    env.write("d/f", b"in the directory\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "dir"]);
    env.ok(&["switch", "-c", "ln"]);
    let out_dir = env.root().join("out/d");
    fs::create_dir_all(&out_dir).unwrap();
    fs::write(out_dir.join("f"), b"outside\n").unwrap();
    fs::remove_dir_all(env.repo().join("d")).unwrap();
    symlink(&out_dir, env.repo().join("d")).unwrap();
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "link"]);
    env.ok(&["switch", "main"]);
    assert!(fs::symlink_metadata(env.repo().join("d")).unwrap().is_dir());
    assert_eq!(env.read("d/f"), b"in the directory\n");
    assert_eq!(
        fs::read(out_dir.join("f")).unwrap(),
        b"outside\n",
        "untouched"
    );
    env.ok(&["switch", "ln"]);
    assert!(fs::symlink_metadata(env.repo().join("d"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(out_dir.join("f")).unwrap(), b"outside\n");
}

#[test]
fn long_names_in_shared_subtrees_are_refused_by_their_path_bytes() {
    let env = Env::new();
    base_commit(&env);
    craft(&env.repo(), "names", |s| {
        let (c, m) = put_file(s, b"x\n");
        let mut t = put_tree(s, vec![file("f", 2, c, m)]);
        let (l, r) = ("l".repeat(1000), "r".repeat(1000));
        for _ in 0..22 {
            t = put_tree(s, vec![dir(&l, t), dir(&r, t)]);
        }
        t
    });
    let (code, _, err) = run(&env, &env.repo(), &["ls-tree", "-r", "names"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("paths of its files add up to more than"),
        "{err}"
    );
}

#[test]
fn a_store_clone_does_not_take_the_stores_author_and_messages_are_escaped() {
    let env = Env::empty();
    let (_a, _) = shared_store(&env);
    let cfg = env.root().join("store/config.toml");
    let mut text = fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[author]\nname = \"Mallory\"\nemail = \"m@evil\"\n");
    fs::write(&cfg, text).unwrap();
    let url = format!("file://{}", env.root().join("store").display());
    env.ok_in(env.root(), &["clone", &url, "c"]);
    let local = fs::read_to_string(env.root().join("c/.mediagit/config.toml")).unwrap();
    assert!(!local.contains("Mallory"), "{local}");
    let out = env
        .cmd_in(
            &env.root().join("c"),
            &["commit", "--allow-empty", "-m", "m2\u{1b}]0;TITLE\u{7}"],
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains('\u{1b}') && text.contains("\\u001b]0;TITLE\\u0007"),
        "{text:?}"
    );
}

// ---- tags naming tags ----

/// Found by a hostile probe: the reachability walk (fsck, clone's check
/// that every object of every ref is there) read the target of a tag as
/// a commit, so behind a tag naming a tag nothing was checked: a clone
/// of a repository missing that history succeeded. And peeling a tag
/// recursed once per tag, without a bound.
#[test]
fn tags_naming_tags_are_walked_and_peeled_to_a_bound() {
    use mediagit_format::Tag;
    let env = Env::new();
    base_commit(&env);
    let r = Repository::discover(&env.repo()).unwrap();
    let odb = r.odb().unwrap();
    let mut s = odb.session();
    // A commit whose only file's chunk is stored nowhere.
    let data = b"never stored\n";
    let m = Manifest {
        content: ObjectId::hash(data),
        size: data.len() as u64,
        chunks: vec![ManifestChunk {
            id: ObjectId::hash(b"a chunk nobody stored"),
            len: data.len() as u32,
        }],
    };
    let mid = s.put_object(ObjectKind::Manifest, &m.encode()).unwrap();
    let tree = put_tree(&mut s, vec![file("f", data.len() as u64, m.content, mid)]);
    let commit = Commit {
        tree,
        parents: vec![],
        author: sig(),
        committer: sig(),
        message: "behind two tags\n".into(),
    };
    let mut target = s.put_object(ObjectKind::Commit, &commit.encode()).unwrap();
    let mut tag = |target: ObjectId, name: &str| {
        let t = Tag {
            target,
            name: name.into(),
            tagger: sig(),
            message: "t\n".into(),
        };
        s.put_object(ObjectKind::Tag, &t.encode()).unwrap()
    };
    let inner = tag(target, "inner");
    let outer = tag(inner, "outer");
    // A chain of 150 tags to a sound commit, and one of 10,001.
    let head = r.resolve("HEAD").unwrap();
    let mut medium = head;
    for i in 0..150 {
        medium = tag(medium, &format!("chain{i}"));
    }
    target = head;
    for i in 0..10_001 {
        target = tag(target, &format!("long{i}"));
    }
    s.finish().unwrap();
    r.cas_ref("refs/tags/outer", None, Some(outer)).unwrap();
    r.cas_ref("refs/tags/long", None, Some(target)).unwrap();
    r.cas_ref("refs/tags/medium", None, Some(medium)).unwrap();
    // 150 tags peel (a loop now, where it recursed once per tag), and
    // the tag that does not peel does not stop `log` decorating.
    let out = env.ok(&["log", "-n", "1", "medium"]);
    assert!(out.contains("medium"), "{out}");
    // fsck names the missing chunk behind the two tags.
    let (code, out, err) = run(&env, &env.repo(), &["fsck"]);
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(out.contains("missing"), "{out}");
    // A clone of it fails and says what is missing.
    let (code, _, err) = run(&env, env.root(), &["clone", "repo", "copy"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("missing chunk"), "{err}");
    assert!(!env.root().join("copy").exists());
    // The long chain is refused by name, not a stack overflow.
    let (code, _, err) = run(&env, &env.repo(), &["log", "long"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("more than 10000 tags"), "{err}");
}

/// Found by a hostile probe of a server's repositories, run on by the
/// admin: a ref planted as a link to `/dev/zero` made `gc` read until
/// memory ran out, a FIFO made it hang, and a link to another file put
/// that file's text into the error message.
#[test]
fn refs_planted_as_devices_fifos_or_links_to_large_files_are_refused_quickly() {
    let env = Env::new();
    if fresh_store_url().is_some() {
        return; // plants files on disk
    }
    base_commit(&env);
    let heads = env.repo().join(".mediagit/refs/heads");
    symlink("/dev/zero", heads.join("zero")).unwrap();
    let secret = env.root().join("secret.txt");
    fs::write(&secret, format!("password=hunter2 {}", "x".repeat(500))).unwrap();
    symlink(&secret, heads.join("secret")).unwrap();
    let big = env.root().join("big.bin");
    fs::File::create(&big).unwrap().set_len(8 << 30).unwrap();
    symlink(&big, heads.join("big")).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(heads.join("fifo"))
        .status()
        .unwrap()
        .success());
    for args in [
        &["gc"][..],
        &["fsck"],
        &["branch"],
        &["log", "--oneline", "zero"],
        &["log", "--oneline", "fifo"],
        &["log", "--oneline", "big"],
        &["log", "--oneline", "secret"],
    ] {
        // (Each would have run out of memory or hung: a timeout in the
        // harness would show as a test that never ends.)
        let (code, _, err) = run(&env, &env.repo(), args);
        assert_ne!(code, None, "{args:?}");
        assert!(
            err.len() < 20_000,
            "{args:?}: {} bytes of errors",
            err.len()
        );
        assert!(!err.contains("hunter2"), "{args:?}: {err}");
    }
    let (_, _, err) = run(&env, &env.repo(), &["log", "--oneline", "zero"]);
    // Links are not followed (a ref never is one).
    assert!(
        err.contains("zero") && err.contains("symbolic link"),
        "{err}"
    );
    let (_, _, err) = run(&env, &env.repo(), &["log", "--oneline", "big"]);
    assert!(err.contains("symbolic link"), "{err}");
    let (_, _, err) = run(&env, &env.repo(), &["log", "--oneline", "fifo"]);
    assert!(err.contains("not a regular file"), "{err}");
    // A plain file that is too big is still named as such.
    fs::remove_file(heads.join("big")).unwrap();
    fs::rename(&big, heads.join("big")).unwrap();
    let (_, _, err) = run(&env, &env.repo(), &["log", "--oneline", "big"]);
    assert!(err.contains("larger than any value it may hold"), "{err}");
    // fsck names each of them.
    let (code, out, err) = run(&env, &env.repo(), &["fsck"]);
    assert!(matches!(code, Some(c) if c != 0), "{out}{err}");
    for name in ["zero", "fifo", "big", "secret"] {
        assert!(
            out.contains(&format!("refs/heads/{name}"))
                || err.contains(&format!("refs/heads/{name}")),
            "{name}: {out}{err}"
        );
    }
}

/// Found by a hostile probe: in a repository others can write, a link
/// planted as `.mediagit/lock` made any command truncate and write the
/// file it pointed to, and a `tmp` swapped for a link made the lock's
/// clean-up empty the folder it pointed to.
#[test]
fn a_planted_lock_or_tmp_link_is_never_written_through() {
    let env = Env::new();
    if fresh_store_url().is_some() {
        return; // plants files on disk
    }
    base_commit(&env);
    let outside = env.root().join("outside");
    fs::create_dir_all(outside.join("d")).unwrap();
    fs::write(outside.join("victim.txt"), b"precious\n").unwrap();
    fs::write(outside.join("d/file.txt"), b"also precious\n").unwrap();
    let m = env.repo().join(".mediagit");
    fs::remove_file(m.join("lock")).ok();
    symlink(outside.join("victim.txt"), m.join("lock")).unwrap();
    let (code, _, err) = run(&env, &env.repo(), &["gc"]);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("lock"), "{err}");
    assert_eq!(fs::read(outside.join("victim.txt")).unwrap(), b"precious\n");
    fs::remove_file(m.join("lock")).unwrap();

    fs::remove_dir_all(m.join("tmp")).ok();
    symlink(outside.join("d"), m.join("tmp")).unwrap();
    let (_, _, _) = run(&env, &env.repo(), &["gc"]);
    assert_eq!(
        fs::read(outside.join("d/file.txt")).unwrap(),
        b"also precious\n"
    );
}

#[test]
fn a_planted_reflog_link_or_fifo_is_never_followed_nor_shown() {
    let env = Env::new();
    if fresh_store_url().is_some() {
        return; // plants files on disk
    }
    base_commit(&env);
    let outside = env.root().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret.txt"), b"root:SECRET-HASH:1:2\n").unwrap();
    let logs = env.repo().join(".mediagit/logs");
    fs::remove_file(logs.join("HEAD")).unwrap();
    symlink(outside.join("secret.txt"), logs.join("HEAD")).unwrap();
    // Read: refused, naming the file, never its target's bytes.
    for args in [&["reflog"][..], &["gc"][..]] {
        let (code, out, err) = run(&env, &env.repo(), args);
        assert_ne!(code, Some(0), "{args:?}: {out}{err}");
        assert!(
            err.contains("logs/HEAD") || err.contains("reflog"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("SECRET") && !out.contains("SECRET"),
            "{args:?}: {out}{err}"
        );
    }
    // Written: never appended through the link.
    fs::write(env.repo().join("new.txt"), b"new\n").unwrap();
    let _ = run(&env, &env.repo(), &["add", "new.txt"]);
    let _ = run(&env, &env.repo(), &["commit", "-m", "two"]);
    let _ = run(&env, &env.repo(), &["switch", "-c", "other"]);
    assert_eq!(
        fs::read(outside.join("secret.txt")).unwrap(),
        b"root:SECRET-HASH:1:2\n"
    );
    // A FIFO (or a device) as a reflog: an error, not a hang.
    fs::remove_file(logs.join("HEAD")).unwrap();
    let fifo = std::ffi::CString::new(logs.join("HEAD").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path we own; no memory kept.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let (code, _, err) = run(&env, &env.repo(), &["reflog"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not a regular file"), "{err}");
    fs::remove_file(logs.join("HEAD")).unwrap();
    // A damaged record is named by its line, not echoed.
    fs::write(logs.join("HEAD"), b"garbage SECRET-LINE\n").unwrap();
    let (code, out, err) = run(&env, &env.repo(), &["gc"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("line 1"), "{out}{err}");
    assert!(
        !err.contains("SECRET") && !out.contains("SECRET"),
        "{out}{err}"
    );
}

#[test]
fn a_repository_folder_every_user_can_write_is_refused_unless_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    base_commit(&env);
    let logs = env.repo().join(".mediagit/logs");
    fs::set_permissions(&logs, fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = run(&env, &env.repo(), &["status"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("every user can write it") && err.contains("chmod o-w"),
        "{err}"
    );
    // Listed in the user's own [safe] directories: trusted.
    let cfg = env.root().join("xdg/mediagit");
    fs::create_dir_all(&cfg).unwrap();
    fs::write(
        cfg.join("config.toml"),
        format!(
            "[safe]\ndirectories = [{:?}]\n",
            env.repo().to_str().unwrap()
        ),
    )
    .unwrap();
    let out = env
        .cmd_in(&env.repo(), &["status"])
        .env("XDG_CONFIG_HOME", env.root().join("xdg"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A settings file others can write is not the user's: ignored, with a
    // warning (its [safe] would let anyone trust anything).
    fs::set_permissions(cfg.join("config.toml"), fs::Permissions::from_mode(0o666)).unwrap();
    let out = env
        .cmd_in(&env.repo(), &["status"])
        .env("XDG_CONFIG_HOME", env.root().join("xdg"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not yours alone") && err.contains("ignoring them"),
        "{err}"
    );
    assert_eq!(err.matches("ignoring them").count(), 1, "{err}");
    // Nor a link there, to a file of the user's own, in a folder others
    // can write (they put the link there, and chose the file).
    fs::set_permissions(cfg.join("config.toml"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::rename(cfg.join("config.toml"), env.root().join("chosen.toml")).unwrap();
    symlink(env.root().join("chosen.toml"), cfg.join("config.toml")).unwrap();
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o777)).unwrap();
    let out = env
        .cmd_in(&env.repo(), &["status"])
        .env("XDG_CONFIG_HOME", env.root().join("xdg"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not yours alone") && err.contains("every user can write it"),
        "{err}"
    );
    // The same link in a folder of the user's alone is read (dotfiles).
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o755)).unwrap();
    let out = env
        .cmd_in(&env.repo(), &["status"])
        .env("XDG_CONFIG_HOME", env.root().join("xdg"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A link of someone else's met on the way (the user's link names an
    // entry of a sticky folder others can write, where they put a link).
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        let sticky = env.root().join("sticky");
        fs::create_dir_all(&sticky).unwrap();
        fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
        symlink(env.root().join("chosen.toml"), sticky.join("mg.toml")).unwrap();
        std::os::unix::fs::lchown(sticky.join("mg.toml"), Some(65534), Some(65534)).unwrap();
        fs::remove_file(cfg.join("config.toml")).unwrap();
        symlink(sticky.join("mg.toml"), cfg.join("config.toml")).unwrap();
        let out = env
            .cmd_in(&env.repo(), &["status"])
            .env("XDG_CONFIG_HOME", env.root().join("xdg"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("belongs to uid 65534"), "{err}");
    }
    // Group-writable (a umask of 002) is not refused.
    fs::set_permissions(&logs, fs::Permissions::from_mode(0o775)).unwrap();
    let (code, _, err) = run(&env, &env.repo(), &["status"]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn links_and_fifos_planted_around_the_repository_state_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    if fresh_store_url().is_some() {
        return; // plants files on disk
    }
    base_commit(&env);
    let m = env.repo().join(".mediagit");
    let outside = env.root().join("outside");
    fs::create_dir_all(&outside).unwrap();

    // `config` checks the repository as every command does, and never
    // creates what a planted `lock` link names.
    fs::set_permissions(&m, fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = run(&env, &env.repo(), &["config", "author.name", "Ann"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not yours alone"), "{err}");
    fs::set_permissions(&m, fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(m.join("lock")).ok();
    symlink(outside.join("PWNED"), m.join("lock")).unwrap();
    let (code, _, err) = run(&env, &env.repo(), &["config", "author.name", "Ann"]);
    assert_ne!(code, Some(0), "{err}");
    assert!(!outside.join("PWNED").exists());
    fs::remove_file(m.join("lock")).unwrap();

    // A `.mediagit` that is a link to a folder every user can write.
    let elsewhere = env.root().join("state");
    fs::rename(&m, &elsewhere).unwrap();
    symlink(&elsewhere, &m).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = run(&env, &env.repo(), &["status"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("every user can write it"), "{err}");
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(&m).unwrap();
    fs::rename(&elsewhere, &m).unwrap();

    // A branch folder below refs/ every user can write (rename the branch
    // folder, plant an old id: a silent rollback).
    fs::set_permissions(m.join("refs/heads"), fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = run(&env, &env.repo(), &["log"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("refs/heads"), "{err}");
    fs::set_permissions(m.join("refs/heads"), fs::Permissions::from_mode(0o755)).unwrap();
    // ... nor through a link to such a folder.
    let heads = env.root().join("heads");
    fs::rename(m.join("refs/heads"), &heads).unwrap();
    symlink(&heads, m.join("refs/heads")).unwrap();
    fs::set_permissions(&heads, fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = run(&env, &env.repo(), &["log"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("every user can write it"), "{err}");
    fs::set_permissions(&heads, fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(m.join("refs/heads")).unwrap();
    fs::rename(&heads, m.join("refs/heads")).unwrap();
    // Files directly in .mediagit: a config.toml others can rewrite
    // decides where this user's token is sent.
    fs::set_permissions(m.join("config.toml"), fs::Permissions::from_mode(0o666)).unwrap();
    let (code, _, err) = run(&env, &env.repo(), &["status"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("config.toml"), "{err}");
    fs::set_permissions(m.join("config.toml"), fs::Permissions::from_mode(0o644)).unwrap();
    // A folder of it that is a link to another user's folder.
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        let theirs = env.root().join("their-packs");
        fs::rename(m.join("packs"), &theirs).unwrap();
        symlink(&theirs, m.join("packs")).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let (code, _, err) = run(&env, &env.repo(), &["status"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("uid 65534"), "{err}");
        std::os::unix::fs::chown(&theirs, Some(0), Some(0)).unwrap();
        fs::remove_file(m.join("packs")).unwrap();
        fs::rename(&theirs, m.join("packs")).unwrap();
        // config.toml writable by a group this user is not in.
        std::os::unix::fs::chown(m.join("config.toml"), None, Some(65534)).unwrap();
        fs::set_permissions(m.join("config.toml"), fs::Permissions::from_mode(0o664)).unwrap();
        let (code, _, err) = run(&env, &env.repo(), &["status"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("group 65534 (not yours)"), "{err}");
        std::os::unix::fs::chown(m.join("config.toml"), None, Some(0)).unwrap();
        fs::set_permissions(m.join("config.toml"), fs::Permissions::from_mode(0o644)).unwrap();
    }
    // Lock files are not for others (whoever can open one can flock it
    // and lock the owner out): made without, and ones an older build made
    // 0644 lose, every right of others.
    fs::remove_file(m.join("lock")).ok();
    env.write("lock.txt", b"lock\n");
    env.ok(&["add", "lock.txt"]);
    env.ok(&["commit", "-m", "lock"]);
    for name in ["lock", "cas.lock"] {
        let mode = fs::metadata(m.join(name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "{name}: {mode:o}");
        fs::set_permissions(m.join(name), fs::Permissions::from_mode(0o644)).unwrap();
    }
    env.write("lock.txt", b"lock 2\n");
    env.ok(&["commit", "-a", "-m", "lock 2"]);
    for name in ["lock", "cas.lock"] {
        let mode = fs::metadata(m.join(name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "{name}: {mode:o}");
    }

    // `logs` as a link to a folder of the user's own: reflogs are not
    // appended there.
    let victim = env.root().join("victim");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("HEAD"), b"mine\n").unwrap();
    let logs_saved = env.root().join("logs-saved");
    fs::rename(m.join("logs"), &logs_saved).unwrap();
    symlink(&victim, m.join("logs")).unwrap();
    env.write("two.txt", b"two\n");
    let _ = run(&env, &env.repo(), &["add", "two.txt"]);
    let _ = run(&env, &env.repo(), &["commit", "-m", "two"]);
    assert_eq!(fs::read(victim.join("HEAD")).unwrap(), b"mine\n");
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 1);
    let (code, _, err) = run(&env, &env.repo(), &["reflog"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("never follows links"), "{err}");
    fs::remove_file(m.join("logs")).unwrap();
    fs::rename(&logs_saved, m.join("logs")).unwrap();

    // A FIFO as the add journal: not waited on (it was: a hang holding
    // the repository lock); it is no journal, and add goes on.
    fs::remove_file(m.join("add-journal")).ok();
    let fifo = std::ffi::CString::new(m.join("add-journal").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path we own; no memory kept.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    env.write("three.txt", b"three\n");
    let (code, _, err) = run(&env, &env.repo(), &["add", "three.txt"]);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = run(&env, &env.repo(), &["status", "--short"]);
    assert!(out.contains("three.txt"), "{out}");
}
