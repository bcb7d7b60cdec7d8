//! Revision syntax (`HEAD`, `@`, `main~2`, `v1^`, `refs/tags/v1`, id
//! prefixes), ref-name validation and `Name <email>` identities, on a
//! scratch repository with a short history (three commits, a branch, an
//! annotated and a lightweight tag). Properties: no panic; a resolved
//! revision is a commit the repository holds; a name `validate_ref_name`
//! accepts is a valid storage key under `refs/heads/`; an accepted identity
//! has a non-empty name and an email without angle brackets; and only
//! revisions in the documented syntax resolve: after the base (up to the
//! first `~` or `^`) come only `~N` and `^N` steps.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_fuzz::scratch_repo;
use mediagit_repo::commit::parse_identity;
use mediagit_repo::refs::{branch_ref, validate_ref_name};

fuzz_target!(|data: &[u8]| {
    // Text input: invalid UTF-8 becomes U+FFFD rather than being wasted.
    let s = &*String::from_utf8_lossy(data);
    let repo = scratch_repo();
    if let Ok(id) = repo.resolve(s) {
        let suffix = &s[s.find(['~', '^']).unwrap_or(s.len())..];
        assert!(
            suffix
                .bytes()
                .all(|b| b == b'~' || b == b'^' || b.is_ascii_digit()),
            "{s:?} resolved to {id} though {suffix:?} is not a ~N/^N suffix"
        );
        repo.odb()
            .expect("odb")
            .read_commit(&id)
            .unwrap_or_else(|e| panic!("{s:?} resolved to {id}, not a readable commit: {e}"));
    }
    if validate_ref_name("branch", s).is_ok() {
        // Reading an absent ref is Ok(None); an error means the name made
        // an invalid storage key.
        repo.read_ref(&branch_ref(s))
            .unwrap_or_else(|e| panic!("valid branch name {s:?} is not a valid ref: {e}"));
    }
    if let Ok((name, email)) = parse_identity(s) {
        assert!(!name.trim().is_empty());
        assert!(!email.contains(['<', '>']));
    }
});
