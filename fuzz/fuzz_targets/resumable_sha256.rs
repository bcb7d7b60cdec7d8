//! `ResumableSha256` (which has `unsafe` code, and resumes from checkpoints
//! that the worktree index stores and reads back) against plain SHA-256:
//! the input is fed in pieces cut where its first bytes say, a checkpoint
//! is taken at one of them, and both the straight hash and the hash resumed
//! from the checkpoint must equal `ObjectId::hash`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::id::ResumableSha256;
use mediagit_format::ObjectId;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, content) = data.split_at(4);
    let want = ObjectId::hash(content);
    let mut h = ResumableSha256::new();
    let mut saved = h.checkpoint();
    let mut pos = 0;
    for (i, &b) in head.iter().enumerate() {
        let end = (pos + b as usize * 3).min(content.len());
        h.update(&content[pos..end]);
        pos = end;
        if i == head[0] as usize % 4 {
            saved = h.checkpoint();
        }
    }
    h.update(&content[pos..]);
    assert_eq!(h.len(), content.len() as u64);
    assert_eq!(h.finish(), want);
    let (offset, state) = saved;
    assert_eq!(offset % 64, 0);
    let mut r = ResumableSha256::resume(offset, state).expect("multiple of 64");
    r.update(&content[offset as usize..]);
    assert_eq!(r.finish(), want);
    // Resuming at an offset that is not a multiple of 64 is refused.
    assert!(ResumableSha256::resume(offset + 1 + head[1] as u64 % 63, state).is_none());
});
