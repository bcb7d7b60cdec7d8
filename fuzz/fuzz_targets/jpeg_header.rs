//! The JPEG marker walk that places a chunk boundary after a photo's
//! metadata: any bytes, never a panic, and an answer only at an SOS marker.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_pipeline::media::jpeg_header_len;

fuzz_target!(|data: &[u8]| {
    if let Some(n) = jpeg_header_len(data) {
        assert_eq!(&data[n..n + 2], &[0xFF, 0xDA]);
    }
});
