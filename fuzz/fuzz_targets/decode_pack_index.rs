//! Pack indexes (`.idx`) from arbitrary bytes: an error or a value, never a
//! panic; a value re-encodes to the input. The index ends with a SHA-256 of
//! the rest, which random bytes never match, so every input is also tried
//! "sealed" (the checksum appended): that lets the fuzzer reach the entry
//! parsing behind the checksum check.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::pack::PackIndex;
use mediagit_format::ObjectId;

fn check(bytes: &[u8]) {
    if let Ok(idx) = PackIndex::decode(bytes) {
        assert_eq!(idx.encode(), bytes);
        assert!(idx.entries.windows(2).all(|w| w[0].id < w[1].id));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&ObjectId::hash(data).0);
    check(&sealed);
});
