//! Format 2 (`metadata-packs`): chunks and metadata objects never share a
//! pack, so history can be listed and verified without reading content. A
//! format-1 repository keeps getting mixed packs until it is upgraded.
use std::collections::{BTreeMap, BTreeSet};

use mediagit_format::{ObjectKind, Signature};
use mediagit_repo::add::AddOptions;
use mediagit_repo::commit::CommitOptions;
use mediagit_repo::progress::NoProgress;
use mediagit_repo::{InitOptions, Repository};

fn sig() -> Signature {
    Signature {
        name: "P".into(),
        email: "p@example.com".into(),
        time: 1_700_000_000,
        tz_offset_minutes: 0,
    }
}

fn add_and_commit(root: &std::path::Path, n: u8) {
    let repo = Repository::discover(root).unwrap();
    std::fs::write(root.join(format!("f{n}.bin")), vec![n; 300_000]).unwrap();
    repo.add(
        &AddOptions {
            all: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    repo.commit(
        &CommitOptions {
            message: format!("commit {n}"),
            all: false,
            allow_empty: false,
            author: sig(),
            committer: sig(),
        },
        &NoProgress,
    )
    .unwrap();
}

/// For each pack, whether it holds chunks and whether it holds other objects.
fn pack_kinds(root: &std::path::Path) -> Vec<(bool, bool)> {
    let repo = Repository::discover(root).unwrap();
    let mut by_pack: BTreeMap<_, BTreeSet<bool>> = BTreeMap::new();
    for (_, pack, loc) in repo.odb().unwrap().all_objects() {
        by_pack
            .entry(pack)
            .or_default()
            .insert(loc.kind == ObjectKind::Chunk);
    }
    by_pack
        .values()
        .map(|k| (k.contains(&true), k.contains(&false)))
        .collect()
}

#[test]
fn format_2_writes_chunks_and_metadata_into_separate_packs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    Repository::init(root, &InitOptions::default()).unwrap();
    assert!(Repository::discover(root)
        .unwrap()
        .config()
        .format
        .has_feature("metadata-packs"));
    add_and_commit(root, 1);
    add_and_commit(root, 2);
    let kinds = pack_kinds(root);
    assert!(kinds.contains(&(true, false)), "{kinds:?}");
    assert!(kinds.contains(&(false, true)), "{kinds:?}");
    assert!(
        kinds.iter().all(|(c, m)| !(c & m)),
        "a pack mixes chunks and metadata: {kinds:?}"
    );
}

#[test]
fn format_1_keeps_mixed_packs_until_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    Repository::init(root, &InitOptions::default()).unwrap();
    let cfg = root.join(".mediagit/config.toml");
    let v1 = mediagit_testutils::rewrite_config_as_format_1(&cfg);
    add_and_commit(root, 1);
    // `add` wrote chunks and the manifest into one pack, as format 1 does.
    assert!(pack_kinds(root).contains(&(true, true)));
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), v1, "format 1 kept");

    let report = Repository::discover(root).unwrap().upgrade(false).unwrap();
    assert_eq!((report.from, report.to, report.changed), (1, 2, true));
    assert_eq!(report.features_added, ["metadata-packs"]);
    let before = pack_kinds(root).len();
    add_and_commit(root, 2);
    let kinds = pack_kinds(root);
    assert!(kinds[..].len() > before);
    // Everything written after the upgrade is split.
    assert_eq!(
        kinds.iter().filter(|k| **k == (true, true)).count(),
        1,
        "only the pre-upgrade pack mixes: {kinds:?}"
    );
    let again = Repository::discover(root).unwrap().upgrade(false).unwrap();
    assert!(!again.changed);
}
