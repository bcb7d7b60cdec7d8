//! Flattening a tree lists the same files whether its decoded trees are
//! kept between checking and listing them or read again (what a checkout
//! of a million files does, to hold less), with directories shared by
//! several paths (one tree object named many times) and nested ones.
use std::collections::BTreeSet;

use mediagit_format::Signature;
use mediagit_repo::add::AddOptions;
use mediagit_repo::commit::CommitOptions;
use mediagit_repo::progress::NoProgress;
use mediagit_repo::tree::{flatten, flatten_sorted_keeping};
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
        let listed = |keep: usize| -> Vec<(String, [u8; 32])> {
            flatten_sorted_keeping(odb, &tree, keep)
                .unwrap()
                .iter()
                .map(|(p, e)| (p.to_string(), e.content.0))
                .collect()
        };
        let kept = listed(usize::MAX);
        let read_again = listed(0);
        // Some kept, some not.
        let partly = listed(300);
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
