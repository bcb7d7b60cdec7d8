//! Which keys of a repository a request may touch, and with what right.
//!
//! A client sees a repository as a store (FORMAT.md §2.1): only store keys
//! are served; a bare repository's local files (`logs/`, `tmp/`, `lock`,
//! ...) are neither listed nor readable. Writers add immutable objects
//! and move refs by compare-and-swap; everything that could destroy or
//! rewrite history (deleting keys, overwriting settings or keys, writing
//! a ref without compare-and-swap) needs admin.
use mediagit_protocol::wire::Right;

/// What a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClass {
    /// `config.toml`, `HEAD`, `keys/<id>`, `check`: the repository's
    /// settings and key files.
    Settings,
    /// `refs/...`
    Ref,
    /// `packs/<64 hex>.pack`
    Pack,
    /// `packs/<64 hex>.idx`
    Index,
    /// `freshen/...`, `damaged-objects/...`: empty markers (FORMAT.md §11).
    Marker,
    /// `locks/...`
    Lock,
}

/// The class of a store key, or `None` for keys that are not served.
pub fn classify(key: &str) -> Option<KeyClass> {
    match key {
        "config.toml" | "HEAD" | "check" => return Some(KeyClass::Settings),
        _ => {}
    }
    let (top, rest) = key.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    match top {
        "keys" if !rest.contains('/') => Some(KeyClass::Settings),
        "refs" => Some(KeyClass::Ref),
        "packs" => {
            let (id, ext) = rest.split_once('.')?;
            let hex = id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            match (hex, ext) {
                (true, "pack") => Some(KeyClass::Pack),
                (true, "idx") => Some(KeyClass::Index),
                _ => None,
            }
        }
        "freshen" | "damaged-objects" if !rest.contains('/') => Some(KeyClass::Marker),
        "locks" => Some(KeyClass::Lock),
        _ => None,
    }
}

/// Whether a listing prefix can name served keys at all.
pub fn servable_prefix(prefix: &str) -> bool {
    prefix.is_empty() || classify(prefix).is_some() || {
        // A prefix of a served key ("packs/", "refs/heads/", "pa").
        [
            "config.toml",
            "HEAD",
            "check",
            "keys/",
            "refs/",
            "packs/",
            "freshen/",
            "damaged-objects/",
            "locks/",
        ]
        .iter()
        .any(|k| k.starts_with(prefix) || prefix.starts_with(k))
    }
}

/// The right a PUT of `class` needs (a new object: a pack, its index, a
/// marker), or `None` if only an admin may.
pub fn put_right(class: KeyClass) -> Right {
    match class {
        KeyClass::Pack | KeyClass::Index | KeyClass::Marker => Right::Write,
        KeyClass::Settings | KeyClass::Ref | KeyClass::Lock => Right::Admin,
    }
}

/// The right a compare-and-swap of `class` needs.
pub fn cas_right(class: KeyClass) -> Right {
    match class {
        KeyClass::Ref => Right::Write,
        _ => Right::Admin,
    }
}

/// Largest body of a PUT of a key that is not a pack: settings, key
/// files, refs, markers, and indexes (bounded again by their pack's size).
pub const MAX_SMALL_OBJECT: u64 = 1 << 20;

/// Largest pack index accepted (as readers, FORMAT.md §13.4).
pub const MAX_INDEX: u64 = 512 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_store_keys_are_served() {
        let p = "a".repeat(64);
        assert_eq!(classify("config.toml"), Some(KeyClass::Settings));
        assert_eq!(classify("keys/abc"), Some(KeyClass::Settings));
        assert_eq!(classify("refs/heads/main"), Some(KeyClass::Ref));
        assert_eq!(classify(&format!("packs/{p}.pack")), Some(KeyClass::Pack));
        assert_eq!(classify(&format!("packs/{p}.idx")), Some(KeyClass::Index));
        assert_eq!(classify("freshen/x-1-2"), Some(KeyClass::Marker));
        for no in [
            "logs/HEAD",
            "tmp/x",
            "lock",
            "cas.lock",
            "index",
            "last-key",
            "damaged/x.pack",
            "cache/x",
            "packs/x.pack",
            &format!("packs/{}.pack", "A".repeat(64)),
            &format!("packs/{p}.tmp"),
            "keys/a/b",
            "refs/",
            "BASE",
        ] {
            assert_eq!(classify(no), None, "{no}");
        }
        assert!(servable_prefix(""));
        assert!(servable_prefix("packs/"));
        assert!(servable_prefix("refs/heads/"));
        assert!(!servable_prefix("logs/"));
        assert!(!servable_prefix("tmp/"));
    }
}
