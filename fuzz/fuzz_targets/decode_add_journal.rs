//! The add journal (`.mediagit/add-journal`) from arbitrary bytes: records
//! or an early stop, never a panic; every record read re-encodes to the
//! frame it came from. Each frame ends with a SHA-256 check that random
//! bytes never match, so every input is also tried as the body of one
//! sealed frame behind a valid header: that lets the fuzzer reach the
//! record decoding and its invariant checks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::journal::{encode_header, encode_record, JournalReader};
use mediagit_format::ObjectId;

fn check(bytes: &[u8]) {
    let Ok(mut r) = JournalReader::new(bytes) else {
        return;
    };
    let mut at = 12usize;
    for rec in r.by_ref() {
        let frame = encode_record(&rec);
        assert_eq!(&bytes[at..at + frame.len()], &frame[..]);
        at += frame.len();
    }
    assert_eq!(r.valid_len, at as u64);
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut sealed = encode_header().to_vec();
    sealed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    sealed.extend_from_slice(data);
    sealed.extend_from_slice(&ObjectId::hash(data).0[..8]);
    check(&sealed);
});
