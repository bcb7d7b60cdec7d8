//! The media sniffing done on a file's first bytes before it is chunked:
//! the JPEG marker walk that places a chunk boundary after a photo's
//! metadata (any bytes, never a panic, an answer only at an SOS marker
//! inside the input), and the file-type detection that picks the codec.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_pipeline::media::jpeg_header_len;
use mediagit_pipeline::CompressionHint;

fuzz_target!(|data: &[u8]| {
    if let Some(n) = jpeg_header_len(data) {
        assert!(n + 1 < data.len());
        assert_eq!(&data[n..n + 2], &[0xFF, 0xDA]);
    }
    let _ = CompressionHint::from_head(data);
});
