//! The worktree index (`.mediagit/index`, every version, and version 4
//! read in place by `IndexView`) from arbitrary bytes: an error or
//! a value, never a panic. A value has its entries strictly sorted by path
//! and survives encode → decode unchanged (the index is not canonical:
//! version 1 files and redundant varints decode too, so the bytes may
//! differ). Like the pack index, the file ends with a SHA-256 of the rest,
//! so each input is also tried with that checksum appended.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::index::{IndexFile, IndexView};
use mediagit_format::ObjectId;

fn check(bytes: &[u8]) {
    // Version 4 read in place: every entry readable once parse accepted
    // the file, and the same as the owned decode.
    if let Ok(view) = IndexView::parse(bytes) {
        let owned = IndexFile::decode(bytes).expect("a parsed view decodes");
        assert_eq!(view.len(), owned.entries.len() + owned.conflicts.len());
        for e in view.iter() {
            assert!(!e.path.is_empty());
        }
    }
    if let Ok(idx) = IndexFile::decode(bytes) {
        assert!(idx
            .entries
            .windows(2)
            .all(|w| w[0].path.as_bytes() < w[1].path.as_bytes()));
        let again = idx.encode();
        assert_eq!(
            IndexFile::decode(&again).expect("re-encoded index decodes"),
            idx
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&ObjectId::hash(data).0);
    check(&sealed);
});
