//! Every decoder of repository objects, fed arbitrary bytes: they must return
//! an error or a value, never panic, and a value must re-encode to the same
//! bytes (encodings are canonical).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::index::IndexFile;
use mediagit_format::{Commit, Manifest, Tag, Tree};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tree::decode(data) {
        assert_eq!(t.encode(), data);
    }
    if let Ok(c) = Commit::decode(data) {
        assert_eq!(c.encode(), data);
    }
    if let Ok(m) = Manifest::decode(data) {
        assert_eq!(m.encode(), data);
    }
    if let Ok(t) = Tag::decode(data) {
        assert_eq!(t.encode(), data);
    }
    let _ = IndexFile::decode(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = mediagit_format::RepoConfig::from_toml(s);
    }
});
