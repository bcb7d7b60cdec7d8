//! The worktree index (`.mediagit/index`) from arbitrary bytes: an error or
//! a value, never a panic. A value has its entries strictly sorted by path
//! and survives encode → decode unchanged (the index is not canonical:
//! version 1 files and redundant varints decode too, so the bytes may
//! differ). Like the pack index, the file ends with a SHA-256 of the rest,
//! so each input is also tried with that checksum appended.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::index::IndexFile;
use mediagit_format::ObjectId;

fn check(bytes: &[u8]) {
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
