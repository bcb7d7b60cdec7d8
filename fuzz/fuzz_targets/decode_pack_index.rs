//! Pack headers, entry headers and pack indexes from arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::pack::{decode_pack_header, EntryHeader, PackIndex};

fuzz_target!(|data: &[u8]| {
    let _ = decode_pack_header(data);
    if let Ok(h) = EntryHeader::decode(data) {
        assert_eq!(&h.encode()[..], &data[..EntryHeader::LEN]);
    }
    if let Ok(idx) = PackIndex::decode(data) {
        assert_eq!(idx.encode(), data);
    }
});
