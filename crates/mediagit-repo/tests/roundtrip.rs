//! Library-level round trips: whatever bytes go in through `add` + `commit`
//! come back out of `cat` and `checkout`, for arbitrary file contents and sizes.
use mediagit_format::Signature;
use mediagit_repo::add::AddOptions;
use mediagit_repo::commit::CommitOptions;
use mediagit_repo::progress::NoProgress;
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

fn small_chunks(repo_dir: &std::path::Path) {
    let cfg = repo_dir.join(".mediagit/config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let line = if line.starts_with("min_size") {
            "min_size = 256"
        } else if line.starts_with("avg_size") {
            "avg_size = 1024"
        } else if line.starts_with("max_size") {
            "max_size = 4096"
        } else {
            line
        };
        out.push_str(line);
        out.push('\n');
    }
    let text = out;
    std::fs::write(cfg, text).unwrap();
}

/// Content built from a few repeated blocks, so chunks deduplicate.
fn content(blocks: &[(u8, u16)]) -> Vec<u8> {
    let mut v = Vec::new();
    for &(seed, len) in blocks {
        let mut x = seed as u32 | 1;
        for _ in 0..len {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            v.push((x >> 16) as u8);
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn add_commit_cat_checkout_round_trip(
        files in proptest::collection::vec(proptest::collection::vec((0u8..4, 0u16..3000), 0..8), 1..6)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path(), &InitOptions::default()).unwrap();
        small_chunks(dir.path());
        let repo = Repository::discover(repo.worktree().unwrap()).unwrap();
        let datas: Vec<Vec<u8>> = files.iter().map(|f| content(f)).collect();
        for (i, d) in datas.iter().enumerate() {
            std::fs::write(dir.path().join(format!("f{i}.bin")), d).unwrap();
        }
        repo.add(&AddOptions { all: true, ..Default::default() }, &NoProgress).unwrap();
        let c = repo.commit(&CommitOptions { message: "m".into(), all: false, allow_empty: false, author: sig(), committer: sig() }, &NoProgress).unwrap();
        for (i, d) in datas.iter().enumerate() {
            let mut out = Vec::new();
            repo.cat(c, &format!("f{i}.bin"), &mut out).unwrap();
            prop_assert_eq!(&out, d);
            std::fs::remove_file(dir.path().join(format!("f{i}.bin"))).unwrap();
        }
        repo.checkout_paths(Some(c), &[String::new()], &NoProgress).unwrap();
        for (i, d) in datas.iter().enumerate() {
            prop_assert_eq!(&std::fs::read(dir.path().join(format!("f{i}.bin"))).unwrap(), d);
        }
    }
}

#[test]
fn identical_content_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    Repository::init(dir.path(), &InitOptions::default()).unwrap();
    let repo = Repository::discover(dir.path()).unwrap();
    let data = content(&[(1, 60000), (2, 60000), (3, 60000)]).repeat(20);
    for name in ["a.bin", "b.bin", "c/d.bin"] {
        std::fs::create_dir_all(dir.path().join(name).parent().unwrap()).unwrap();
        std::fs::write(dir.path().join(name), &data).unwrap();
    }
    repo.add(
        &AddOptions {
            all: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    let packs: u64 = std::fs::read_dir(dir.path().join(".mediagit/packs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    // Three copies of 3.6 MB (of incompressible-ish bytes) stored as roughly one.
    assert!(
        packs < data.len() as u64 + 200_000,
        "packs hold {packs} bytes for 3 copies of {}",
        data.len()
    );
}
