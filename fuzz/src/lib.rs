//! Helpers shared by the fuzz targets (and by `examples/gen_seeds.rs`).

/// A scratch repository for the targets that need one (feature `repo`):
/// created once per process under `$TMPDIR` (`scripts/fuzz.sh` points
/// that into `fuzz/target/` and removes it after each run), with a short
/// history: commits c1 ← c2 ← c3 on `main`, branch `side` at c1,
/// annotated tag `v1` and lightweight tag `light` at c2.
#[cfg(feature = "repo")]
pub fn scratch_repo() -> &'static mediagit_repo::Repository {
    use mediagit_format::Signature;
    use mediagit_repo::commit::CommitOptions;
    use mediagit_repo::progress::NoProgress;
    use mediagit_repo::{InitOptions, Repository};
    use std::sync::OnceLock;
    static REPO: OnceLock<Repository> = OnceLock::new();
    REPO.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mediagit-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        let repo = Repository::init(&dir, &InitOptions::default()).expect("init");
        let sig = Signature {
            name: "Fuzz Er".into(),
            email: "fuzz@example.com".into(),
            time: 1_700_000_000,
            tz_offset_minutes: -330,
        };
        let mut ids = Vec::new();
        // The last commit by a committer whose name is not ASCII, east of UTC.
        let zoe = Signature {
            name: "Zoë Ångström".into(),
            tz_offset_minutes: 60,
            ..sig.clone()
        };
        for (msg, who) in [("first", &sig), ("second\n\nbody", &sig), ("third", &zoe)] {
            let opts = CommitOptions {
                message: msg.into(),
                all: false,
                allow_empty: true,
                author: who.clone(),
                committer: who.clone(),
            };
            ids.push(repo.commit(&opts, &NoProgress).expect("commit"));
        }
        repo.create_branch("side", ids[0], &sig, "branch: fuzz")
            .expect("branch");
        repo.create_tag("v1", ids[1], Some("tag message"), &sig)
            .expect("tag");
        repo.create_tag("light", ids[1], None, &sig).expect("tag");
        // A fresh handle, so its object database sees every pack.
        Repository::discover(&dir).expect("reopen")
    })
}
