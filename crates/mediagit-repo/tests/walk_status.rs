//! The walk emits paths in the index's order (bytes of the full path), which
//! `status` relies on to merge the two without maps; names that sort
//! differently as names and as paths (`a-b`, `a.b`, `a/x`, `a0`) are the
//! cases that matter.
use std::collections::BTreeSet;

use mediagit_format::Signature;
use mediagit_repo::add::AddOptions;
use mediagit_repo::commit::CommitOptions;
use mediagit_repo::progress::NoProgress;
use mediagit_repo::status::{Change, ChangeKind};
use mediagit_repo::worktree::walk;
use mediagit_repo::{InitOptions, Repository};
use proptest::prelude::*;

fn sig() -> Signature {
    Signature {
        name: "P".into(),
        email: "p@example.com".into(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    }
}

/// Path components from an alphabet whose bytes sit on both sides of `/`.
fn component() -> impl Strategy<Value = String> {
    // `Just`: a bare `&str` would be a regex, and `.` would yield any char.
    let byte = proptest::sample::select(vec!["a", "b", "-", ".", "0", "_", "é"]);
    proptest::collection::vec(byte, 1..4)
        .prop_map(|v| v.concat())
        .prop_filter("not . or ..", |s| s != "." && s != "..")
}

/// Paths where no file is also a directory of another path.
fn tree() -> impl Strategy<Value = BTreeSet<String>> {
    proptest::collection::vec(proptest::collection::vec(component(), 1..4), 1..25).prop_map(
        |paths| {
            let mut files = BTreeSet::new();
            let mut dirs = BTreeSet::new();
            for p in paths {
                let path = p.join("/");
                let prefixes: Vec<String> = (1..p.len()).map(|i| p[..i].join("/")).collect();
                if dirs.contains(&path) || prefixes.iter().any(|d| files.contains(d)) {
                    continue;
                }
                dirs.extend(prefixes);
                files.insert(path);
            }
            files
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn walk_is_in_index_order_and_status_merges_it(files in tree(), tracked_mask in any::<u32>()) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root, &InitOptions::default()).unwrap();
        for (i, p) in files.iter().enumerate() {
            let abs = root.join(p);
            std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
            std::fs::write(&abs, format!("file {i}")).unwrap();
        }
        let (walked, problems) = walk(root, "");
        prop_assert!(problems.is_empty());
        let paths: Vec<String> = walked.iter().map(|f| f.path.clone()).collect();
        prop_assert_eq!(walked.len(), paths.len());
        // Exactly the files, sorted by bytes as the BTreeSet (and the index) is.
        prop_assert_eq!(&paths, &files.iter().cloned().collect::<Vec<_>>());

        // Track some of them; the others are untracked, in order.
        let tracked: Vec<String> = files
            .iter()
            .enumerate()
            .filter(|(i, _)| tracked_mask & (1 << (i % 32)) != 0)
            .map(|(_, p)| p.clone())
            .collect();
        prop_assume!(!tracked.is_empty());
        repo.add(&AddOptions { paths: tracked.clone(), ..Default::default() }, &NoProgress).unwrap();
        repo.commit(&CommitOptions { message: "m".into(), all: false, allow_empty: false, author: sig(), committer: sig() }, &NoProgress).unwrap();
        let st = repo.status().unwrap();
        prop_assert!(st.staged.is_empty(), "staged: {:?}", st.staged);
        prop_assert!(st.unstaged.is_empty(), "unstaged: {:?}", st.unstaged);
        let untracked: Vec<String> = files.iter().filter(|p| !tracked.contains(p)).cloned().collect();
        prop_assert_eq!(&st.untracked, &untracked);

        // Change the first tracked file's size, delete the last one.
        std::fs::write(root.join(&tracked[0]), "longer content than before").unwrap();
        let mut expected = vec![Change::new(tracked[0].clone(), ChangeKind::Modified)];
        if tracked.len() > 1 {
            let last = tracked.last().unwrap();
            std::fs::remove_file(root.join(last)).unwrap();
            expected.push(Change::new(last.clone(), ChangeKind::Deleted));
        }
        let st = repo.status().unwrap();
        prop_assert_eq!(&st.unstaged, &expected);
        prop_assert_eq!(&st.untracked, &untracked);
    }
}

/// `status` trusts the root tree id saved in the index only while it matches
/// the entries: staging a change must show as staged.
#[test]
fn staged_change_is_seen_with_the_saved_tree_id() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let repo = Repository::init(root, &InitOptions::default()).unwrap();
    std::fs::write(root.join("a.txt"), "one").unwrap();
    let all = AddOptions {
        all: true,
        ..Default::default()
    };
    repo.add(&all, &NoProgress).unwrap();
    repo.commit(
        &CommitOptions {
            message: "m".into(),
            all: false,
            allow_empty: false,
            author: sig(),
            committer: sig(),
        },
        &NoProgress,
    )
    .unwrap();
    let idx = repo.workspace().unwrap().load_index().unwrap();
    let head = repo.head_commit().unwrap().unwrap();
    let head_tree = repo.odb().unwrap().read_commit(&head).unwrap().tree;
    assert_eq!(idx.saved_tree, Some(head_tree));
    assert!(repo.status().unwrap().is_clean());

    std::fs::write(root.join("a.txt"), "two!").unwrap();
    repo.add(&all, &NoProgress).unwrap();
    let idx = repo.workspace().unwrap().load_index().unwrap();
    assert_ne!(idx.saved_tree, Some(head_tree));
    let st = repo.status().unwrap();
    assert_eq!(
        st.staged,
        vec![Change::new("a.txt".into(), ChangeKind::Modified)]
    );
    assert!(st.unstaged.is_empty());
}

/// The walk's own `fstatat` gives the very numbers `std`'s `lstat` gives
/// (which `add` stores): otherwise every file would look changed to
/// `status` and be hashed again.
#[test]
fn walk_stat_matches_std_lstat() {
    use mediagit_format::index::IndexKind;
    use mediagit_repo::worktree::{index_kind, stat_info};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("plain.bin"), vec![7u8; 12_345]).unwrap();
    std::fs::write(root.join("sub/run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        root.join("sub/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("../plain.bin", root.join("sub/deeper/link")).unwrap();
    let (walked, problems) = walk(root, "");
    assert!(problems.is_empty(), "{problems:?}");
    let kinds: Vec<(&str, IndexKind)> = walked.iter().map(|f| (f.path.as_str(), f.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("plain.bin", IndexKind::File),
            ("sub/deeper/link", IndexKind::Symlink),
            ("sub/run.sh", IndexKind::Executable),
        ]
    );
    for f in walked.iter() {
        let m = std::fs::symlink_metadata(root.join(&f.path)).unwrap();
        assert_eq!(f.stat, stat_info(&m), "{}", f.path);
        assert_eq!(Some(f.kind), index_kind(&m), "{}", f.path);
    }
    assert_eq!(walked.iter().next().unwrap().stat.size, 12_345);
}

/// Names no tree can hold (a backslash) are skipped with a warning, not
/// staged into an index that every later command would then refuse; a
/// `.mediagitignore` that is a symlink is not followed out of the tree.
#[test]
fn unstorable_names_and_symlinked_ignore_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("back\\slash"), "x").unwrap();
    std::fs::write(root.join("kept.txt"), "x").unwrap();
    std::fs::write(root.join("secret.txt"), "x").unwrap();
    std::fs::write(outside.path().join("rules"), "secret.txt\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("rules"), root.join(".mediagitignore")).unwrap();
    let (walked, problems) = walk(root, "");
    let paths: Vec<&str> = walked.iter().map(|f| f.path.as_str()).collect();
    // The symlink itself is content (as any symlink); its rules are not used.
    assert_eq!(paths, [".mediagitignore", "kept.txt", "secret.txt"]);
    let msgs: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.path.display(), p.message))
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("back\\slash") && m.contains("path separator")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains(".mediagitignore") && m.contains("symbolic link")),
        "{msgs:?}"
    );
    let repo = Repository::init(root, &InitOptions::default()).unwrap();
    repo.add(
        &AddOptions {
            all: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    // The index stays readable.
    let st = repo.status().unwrap();
    assert!(st.untracked.is_empty(), "{:?}", st.untracked);
}

/// A walk below a directory that is a symlink (to outside the tree) lists
/// nothing from there: every directory is opened from the root with no
/// symlink allowed on the way.
#[test]
fn walk_below_a_symlinked_directory_lists_nothing_outside() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("sub")).unwrap();
    std::fs::write(outside.path().join("sub/private"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("d")).unwrap();
    let (walked, problems) = walk(dir.path(), "d/sub");
    assert!(
        walked.is_empty(),
        "{:?}",
        walked.iter().map(|f| &f.path).collect::<Vec<_>>()
    );
    assert!(!problems.is_empty());
}
