//! Flattening a tree lists the same files whether its decoded trees are
//! kept between checking and listing them or read again (what a checkout
//! of a million files does, to hold less), with directories shared by
//! several paths (one tree object named many times) and nested ones; and a
//! checkout, which walks trees in path order, switches between such trees.
use std::collections::BTreeSet;

use mediagit_format::Signature;
use mediagit_repo::add::AddOptions;
use mediagit_repo::commit::CommitOptions;
use mediagit_repo::progress::NoProgress;
use mediagit_repo::tree::{flatten, walk_keeping, Marks};
use mediagit_repo::{InitOptions, Repository};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn sig() -> Signature {
    Signature {
        name: "P".into(),
        email: "p@example.com".into(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    }
}

fn name() -> impl Strategy<Value = String> {
    proptest::sample::select(vec!["a", "b", "a.b", "a-", "c0"]).prop_map(str::to_string)
}

/// Files (path, content byte) where no file is also a directory.
fn files() -> impl Strategy<Value = Vec<(Vec<String>, u8)>> {
    proptest::collection::vec((proptest::collection::vec(name(), 1..4), 0u8..4), 1..20).prop_map(
        |v| {
            let mut files: BTreeSet<String> = BTreeSet::new();
            let mut dirs: BTreeSet<String> = BTreeSet::new();
            let mut out = Vec::new();
            for (p, b) in v {
                let path = p.join("/");
                let prefixes: Vec<String> = (1..p.len()).map(|i| p[..i].join("/")).collect();
                if files.contains(&path)
                    || dirs.contains(&path)
                    || prefixes.iter().any(|d| files.contains(d))
                {
                    continue;
                }
                dirs.extend(prefixes);
                files.insert(path);
                out.push((p, b));
            }
            out
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn kept_or_read_again_the_files_are_the_same(files in files(), copies in 1usize..4) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root, &InitOptions::default()).unwrap();
        // The same files under several directories: their trees are one
        // object, named `copies` times (and again below `deep/`).
        let mut want: BTreeSet<(String, [u8; 32])> = BTreeSet::new();
        let bases: Vec<String> = (0..copies)
            .map(|i| format!("copy{i}"))
            .chain(["deep/er/copy0".to_string()])
            .collect();
        for base in &bases {
            for (p, b) in &files {
                let path = format!("{base}/{}", p.join("/"));
                let abs = root.join(&path);
                std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
                let bytes = vec![*b; 10 + *b as usize];
                std::fs::write(&abs, &bytes).unwrap();
                want.insert((path, Sha256::digest(&bytes).into()));
            }
        }
        repo.add(&AddOptions { all: true, ..Default::default() }, &NoProgress).unwrap();
        let c = repo.commit(&CommitOptions { message: "t".into(), all: false, allow_empty: false, author: sig(), committer: sig() }, &NoProgress).unwrap();
        let odb = repo.odb().unwrap();
        let tree = odb.read_commit(&c).unwrap().tree;
        let listed = |keep: usize| -> Result<Vec<(String, [u8; 32])>, TestCaseError> {
            let mut w = walk_keeping(odb, &tree, keep).unwrap();
            let mut out = Vec::new();
            while let Some((p, e)) = w.current() {
                prop_assert_eq!(w.position(), out.len() as u64);
                out.push((p.to_string(), e.content.0));
                w.advance().unwrap();
            }
            // A second pass lists the same files (with trees retained
            // across the rewind, within the budget).
            w.retain_for_rewind();
            w.rewind().unwrap();
            let mut again = Vec::new();
            while let Some((p, e)) = w.current() {
                again.push((p.to_string(), e.content.0));
                w.advance().unwrap();
            }
            prop_assert_eq!(&again, &out);
            // Only marked files (every third, and the last), at the same
            // places in path order.
            let mut marks = Marks::new(w.len());
            let want: Vec<(u64, String)> = out
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 3 == 1 || *i + 1 == out.len())
                .map(|(i, (p, _))| (i as u64, p.clone()))
                .collect();
            for (i, _) in &want {
                marks.set(*i);
            }
            w.only(Some(marks));
            w.rewind().unwrap();
            let mut got = Vec::new();
            while let Some((p, _)) = w.current() {
                got.push((w.position(), p.to_string()));
                w.advance().unwrap();
            }
            prop_assert_eq!(&got, &want);
            Ok(out)
        };
        let kept = listed(usize::MAX)?;
        let read_again = listed(0)?;
        // Some kept, some not.
        let partly = listed(300)?;
        let want: Vec<_> = want.into_iter().collect();
        prop_assert_eq!(&kept, &want);
        prop_assert_eq!(&read_again, &want);
        prop_assert_eq!(&partly, &want);
        let map: Vec<(String, [u8; 32])> = flatten(odb, &tree)
            .unwrap()
            .into_iter()
            .map(|(p, e)| (p, e.content.0))
            .collect();
        prop_assert_eq!(&map, &want);
    }
}

/// Every file below `root` (outside `.mediagit`), with its SHA-256.
fn on_disk(root: &std::path::Path) -> Vec<(String, [u8; 32])> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            if rel == ".mediagit" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push((rel, Sha256::digest(std::fs::read(&p).unwrap()).into()));
            }
        }
    }
    out.sort();
    out
}

fn write_files(root: &std::path::Path, files: &[(Vec<String>, u8)], salt: u8) {
    for (p, b) in files {
        let abs = root.join(p.join("/"));
        std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
        std::fs::write(&abs, vec![b ^ salt; 5 + *b as usize]).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// A checkout walks the target tree in the index's path order (`a.b`
    /// and `a-` before `a/...`) while merging it with HEAD's walk and the
    /// index: switching between two trees whose names interleave so, where
    /// a file of one is a directory of the other, leaves exactly the files
    /// of each, byte for byte, both ways.
    #[test]
    fn switching_between_interleaved_trees_leaves_exactly_each_ones_files(
        one in files(),
        two in files(),
    ) {
        use mediagit_repo::checkout::CheckoutTarget;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root, &InitOptions::default()).unwrap();
        let commit = |repo: &Repository| {
            repo.add(&AddOptions { all: true, ..Default::default() }, &NoProgress).unwrap();
            repo.commit(&CommitOptions { message: "t".into(), all: false, allow_empty: true, author: sig(), committer: sig() }, &NoProgress).unwrap();
        };
        write_files(root, &one, 0);
        commit(&repo);
        let want_one = on_disk(root);
        repo.switch_create("two", None, false, &sig(), &NoProgress).unwrap();
        for e in std::fs::read_dir(root).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap() != ".mediagit" {
                if p.is_dir() { std::fs::remove_dir_all(&p).unwrap() } else { std::fs::remove_file(&p).unwrap() }
            }
        }
        write_files(root, &two, 0x40);
        commit(&repo);
        let want_two = on_disk(root);
        for (branch, want) in [("main", &want_one), ("two", &want_two), ("main", &want_one)] {
            repo.checkout(&CheckoutTarget::Branch(branch.into()), false, &sig(), &NoProgress).unwrap();
            prop_assert_eq!(&on_disk(root), want, "after switching to {}", branch);
            let st = repo.status().unwrap();
            prop_assert!(st.is_clean(), "{} is not clean after the switch", branch);
        }
    }
}

proptest! {
    /// `Marks::any_in` agrees with asking each place.
    #[test]
    fn marks_any_in_agrees_with_each_place(
        set in proptest::collection::vec(0u64..300, 0..20),
        start in 0u64..320,
        len in 0u64..200,
    ) {
        let mut m = Marks::new(300);
        for &i in &set {
            m.set(i);
        }
        let naive = (start..start + len).any(|i| m.get(i));
        prop_assert_eq!(m.any_in(start, len), naive);
        let mut distinct = set.clone();
        distinct.sort_unstable();
        distinct.dedup();
        prop_assert_eq!(m.count(), distinct.len() as u64);
    }
}
