//! The FastCDC chunker on arbitrary content, with chunk sizes (within the
//! ranges `RepoConfig::from_toml` accepts, `max_size` capped at 64 KiB to
//! keep runs fast) and a forced cut (the JPEG metadata boundary) taken from
//! the first bytes. Properties: no panic; the chunks concatenate to the
//! input; none is empty or longer than `max_size`; only the last chunk, or
//! one ending at the forced cut, is shorter than `min_size` rounded down to
//! an even number (fastcdc's `cut_gear` tests its first cut point at offset
//! `min_size / 2 * 2`, so an odd `min_size` allows chunks one byte shorter:
//! harmless, found by this target); the forced cut is a chunk boundary.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::config::ChunkingConfig;
use mediagit_pipeline::Chunker;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, content) = data.split_at(8);
    let u = |i: usize| u16::from_le_bytes([head[i], head[i + 1]]) as u32;
    let min_size = 64 + u(0) % 1024;
    let avg_size = (256 + u(2) % 8192).max(min_size);
    let max_size = (1024 + u(4) % (64 << 10)).max(avg_size);
    let cfg = ChunkingConfig {
        min_size,
        avg_size,
        max_size,
    };
    let cut = u(6) as u64 % (content.len() as u64 + 1);
    let mut ch = Chunker::new(content, cfg);
    ch.cut_at(cut);
    let mut pos = 0usize;
    let mut saw_cut = cut == 0;
    while let Some(c) = ch.next_chunk().expect("reading a slice") {
        assert!(!c.is_empty() && c.len() <= max_size as usize);
        assert_eq!(c, &content[pos..pos + c.len()]);
        let end = pos + c.len();
        assert!(
            pos >= cut as usize || end <= cut as usize,
            "chunk {pos}..{end} spans the cut at {cut}"
        );
        if c.len() < (min_size as usize & !1) {
            assert!(
                end == content.len() || end as u64 == cut,
                "short chunk {pos}..{end}"
            );
        }
        saw_cut |= end as u64 == cut;
        pos = end;
    }
    assert_eq!(pos, content.len());
    assert!(saw_cut);
});
