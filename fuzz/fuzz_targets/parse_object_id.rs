//! Object ids as users and ref files spell them (64 hex digits, surrounding
//! whitespace allowed): an error or an id, never a panic; an accepted id
//! prints as the trimmed input in lowercase, and its printed form parses
//! back to it. Binary ids (`from_slice`) accept exactly 32 bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::ObjectId;

fuzz_target!(|data: &[u8]| {
    assert_eq!(
        ObjectId::from_slice(data).is_some(),
        data.len() == ObjectId::LEN
    );
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = s.parse::<ObjectId>() {
        let hex = id.to_hex();
        assert_eq!(hex, s.trim().to_ascii_lowercase());
        assert_eq!(hex.parse::<ObjectId>().ok(), Some(id));
        assert!(id.has_hex_prefix(&hex[..s.trim().len().min(7)]));
    }
});
