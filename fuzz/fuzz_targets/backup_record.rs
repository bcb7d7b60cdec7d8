//! Backup records (`mediagit_repo::backup::decode_record`, FORMAT.md
//! §15.2) on arbitrary bytes: what a hostile backup target can hand a
//! reader. The first byte picks the record's key (its time and kind,
//! which the content must agree with). Properties: no panic; a record
//! that decodes has at most `MAX_RECORD_REFS` refs, valid ref names, and
//! the repository, time and kind its key names.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_repo::backup::{decode_record, RecordKind, MAX_RECORD_REFS};

const KEYS: &[(&str, i64, RecordKind)] = &[
    ("repos/film/records/000000000000001-s-0011223344556677", 1, RecordKind::Snapshot),
    ("repos/film/records/001796407921216-j-8899aabbccddeeff", 1_796_407_921_216, RecordKind::Journal),
    ("repos/film/records/999999999999999-s-ffffffffffffffff", 999_999_999_999_999, RecordKind::Snapshot),
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (key, ms, kind) = KEYS[first as usize % KEYS.len()];
    if let Ok(r) = decode_record(None, "film", key, rest) {
        assert_eq!(r.repository, "film");
        assert_eq!(r.time_ms, ms);
        assert_eq!(r.kind, kind);
        assert!(r.refs.len() <= MAX_RECORD_REFS);
        for name in r.refs.keys() {
            assert!(name.starts_with("refs/"), "{name}");
        }
    }
});
