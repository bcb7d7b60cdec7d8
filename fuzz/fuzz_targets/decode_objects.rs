//! Every decoder of version-history objects (tree, commit, manifest, tag),
//! fed arbitrary bytes: each returns an error or a value, never panics, and
//! a value re-encodes to exactly the input (encodings are canonical, so an
//! object has one id) and satisfies the invariants its decoder promises.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::{Commit, Manifest, Tag, Tree};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tree::decode(data) {
        assert_eq!(t.encode(), data);
        t.validate().expect("a decoded tree is valid");
        for e in &t.entries {
            assert!(
                t.get(&e.name).is_some(),
                "sorted: binary search finds every entry"
            );
        }
    }
    if let Ok(c) = Commit::decode(data) {
        assert_eq!(c.encode(), data);
        let _ = c.summary();
    }
    if let Ok(m) = Manifest::decode(data) {
        assert_eq!(m.encode(), data);
        assert_eq!(m.chunks.iter().map(|c| c.len as u64).sum::<u64>(), m.size);
    }
    if let Ok(t) = Tag::decode(data) {
        assert_eq!(t.encode(), data);
    }
});
