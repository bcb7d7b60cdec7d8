//! A pack read the way `fsck`/`verify` scan one (`scan_pack` in
//! mediagit-repo): the pack header, then entries, each an `EntryHeader`
//! and a payload decoded with `decompress(codec, payload, raw_len)`.
//! Input without the pack magic is read as one entry. Properties: no panic;
//! the pack header and each entry header re-encode to their bytes; a
//! successful decode returns exactly `raw_len` bytes (raw: the payload
//! itself); and whatever a payload decodes to survives `compress_chunk` +
//! `decompress` unchanged.
//!
//! `raw_len` comes from the untrusted header (up to 4 GiB) and `decompress`
//! reserves that much up front; it is capped at `RAW_CAP` here so that
//! libFuzzer's malloc limit does not report the reservation itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::pack::{
    decode_pack_header, encode_pack_header, Codec, EntryHeader, PACK_HEADER_LEN,
};
use mediagit_pipeline::{compress_chunk, decompress, CompressionHint};

const RAW_CAP: usize = 1 << 20;

fn entry(h: &EntryHeader, payload: &[u8]) {
    let raw_len = (h.raw_len as usize).min(RAW_CAP);
    match decompress(h.codec, payload, raw_len) {
        Ok(out) => {
            assert_eq!(out.len(), raw_len);
            if h.codec == Codec::Raw {
                assert_eq!(out, payload);
            }
            let mut enc = Vec::new();
            let codec = compress_chunk(&out, CompressionHint::Try, 1, &mut enc)
                .expect("compressing in memory");
            let stored: &[u8] = if codec == Codec::Raw { &out } else { &enc };
            assert_eq!(
                decompress(codec, stored, out.len()).expect("own output"),
                out
            );
        }
        Err(_) => assert!(h.codec != Codec::Raw || payload.len() != raw_len),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rest = if decode_pack_header(data).is_ok() {
        // Canonical like every other encoding: the reserved u32 is 0.
        assert_eq!(&data[..PACK_HEADER_LEN], &encode_pack_header()[..]);
        &data[PACK_HEADER_LEN..]
    } else {
        // One entry on its own: its payload is whatever follows the header.
        if let Ok(h) = EntryHeader::decode(data) {
            assert_eq!(&h.encode()[..], &data[..EntryHeader::LEN]);
            entry(&h, &data[EntryHeader::LEN..]);
        }
        return;
    };
    while !rest.is_empty() {
        let Ok(h) = EntryHeader::decode(rest) else {
            return;
        };
        assert_eq!(&h.encode()[..], &rest[..EntryHeader::LEN]);
        let body = &rest[EntryHeader::LEN..];
        let Some(payload) = body.get(..h.stored_len as usize) else {
            return;
        };
        entry(&h, payload);
        rest = &body[payload.len()..];
    }
});
