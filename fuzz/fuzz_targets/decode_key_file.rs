//! Key files (`keys/<id>`, FORMAT.md §13.5) from arbitrary bytes: an error
//! or a value, never a panic; a value re-encodes to the input, and its
//! Argon2 parameters are inside the accepted bounds (a decoded file is
//! never one that would make Argon2 allocate more than 1 GiB). Unlocking
//! is not fuzzed (Argon2 takes a fraction of a second per try).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_crypto::{KdfParams, KeyFile};

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = KeyFile::decode(data) {
        assert_eq!(k.encode(), data);
        assert!(k.params.check().is_ok());
        assert!(k.params.m_cost_kib <= KdfParams::MAX.m_cost_kib);
    }
    let _ = mediagit_format::pack::decode_any_pack_header(data);
});
