//! `.mediagit/config.toml` and storage URLs from arbitrary text: an error or
//! a value, never a panic. An accepted config survives `to_toml` →
//! `from_toml` unchanged; an accepted object-store URL survives `url()` →
//! `from_url` unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_format::config::StorageConfig;
use mediagit_format::RepoConfig;

fuzz_target!(|data: &[u8]| {
    // Text input: invalid UTF-8 becomes U+FFFD rather than being wasted.
    let s = &*String::from_utf8_lossy(data);
    if let Ok(cfg) = RepoConfig::from_toml(s) {
        let text = cfg.to_toml();
        match RepoConfig::from_toml(&text) {
            Ok(again) => assert_eq!(again, cfg),
            Err(e) => panic!("accepted config does not re-read: {e}\n{text}"),
        }
    }
    if let Ok(st) = StorageConfig::from_url(s) {
        if st.is_object_store() {
            let url = st.url();
            assert_eq!(StorageConfig::from_url(&url).ok(), Some(st), "{url}");
        }
    }
});
