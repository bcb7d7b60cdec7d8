//! The conformance suite every backend must pass.
//!
//! Call [`run_all`] with an empty store. It panics with a message naming the
//! failed property.
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{CasOutcome, Storage};

pub fn run_all(s: &dyn Storage) {
    run_all_clients(s, s, true);
}

/// The suite with two clients of the same store (two connections, as two
/// machines would have). `conditional`: the store enforces conditional
/// writes; without it the two-client compare-and-swap race cannot hold and is
/// skipped (the single-client semantics still run).
pub fn run_all_clients(s: &dyn Storage, other: &dyn Storage, conditional: bool) {
    put_get_size(s);
    ranged_reads(s);
    listing(s);
    listing_with_meta(s);
    delete_is_idempotent(s);
    put_file_consumes(s);
    bad_keys_rejected(s);
    key_below_a_key_is_absent(s);
    cas_semantics(s);
    two_clients_see_each_other(s, other);
    if conditional {
        cas_races(s, other);
    } else {
        eprintln!(
            "{}: store does not enforce conditional writes; two-client CAS race skipped",
            s.describe()
        );
    }
}

/// A key "below" an existing key (`refs/heads/main/x` beside the ref
/// `refs/heads/main`) is absent, not an error: on disk that path runs into
/// a file (ENOTDIR). Found by fuzzing revision parsing.
fn key_below_a_key_is_absent(s: &dyn Storage) {
    s.put("below/k", b"a ref").unwrap();
    assert!(s.get("below/k/x").unwrap_err().is_not_found());
    assert_eq!(s.size("below/k/x").unwrap(), None);
    assert_eq!(s.modified("below/k/x").unwrap(), None);
    s.delete("below/k/x").unwrap();
    s.delete("below/k").unwrap();
}

/// `list_meta` lists what `list` lists, each with the size and time that
/// `size` and `modified` give (times to within 2 s: a listing may be more
/// precise than a HEAD's whole seconds).
fn listing_with_meta(s: &dyn Storage) {
    s.put("lm/a", b"12345").unwrap();
    s.put("lm/sub/b", b"").unwrap();
    s.put("lmx", b"not below lm/").unwrap();
    let listed = s.list_meta("lm/").unwrap();
    let keys: Vec<&str> = listed.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys, ["lm/a", "lm/sub/b"], "list_meta keys");
    assert_eq!(
        keys,
        s.list("lm/").unwrap(),
        "list_meta lists what list lists"
    );
    for l in &listed {
        assert_eq!(Some(l.size), s.size(&l.key).unwrap(), "size of {}", l.key);
        let m = s.modified(&l.key).unwrap().unwrap();
        let gap = l
            .modified
            .duration_since(m)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .unwrap_or_default();
        assert!(
            gap.as_secs() < 2,
            "time of {}: {:?} vs {m:?}",
            l.key,
            l.modified
        );
    }
    assert!(s.list_meta("lm-none/").unwrap().is_empty());
    for k in ["lm/a", "lm/sub/b", "lmx"] {
        s.delete(k).unwrap();
    }
}

fn two_clients_see_each_other(a: &dyn Storage, b: &dyn Storage) {
    a.put("two/x", b"from a").unwrap();
    assert_eq!(b.get("two/x").unwrap(), b"from a");
    assert_eq!(b.list("two/").unwrap(), vec!["two/x"]);
    b.delete("two/x").unwrap();
    assert_eq!(a.size("two/x").unwrap(), None);
}

fn put_get_size(s: &dyn Storage) {
    s.put("a/one", b"hello").unwrap();
    assert_eq!(s.get("a/one").unwrap(), b"hello");
    assert_eq!(s.size("a/one").unwrap(), Some(5));
    assert_eq!(s.size("a/none").unwrap(), None);
    let m = s
        .modified("a/one")
        .unwrap()
        .expect("modified time of a stored object");
    let age = std::time::SystemTime::now()
        .duration_since(m)
        .unwrap_or_default();
    assert!(age.as_secs() < 600, "modified time is recent");
    assert_eq!(s.modified("a/none").unwrap(), None);
    let err = s.get("a/none").unwrap_err();
    assert!(err.is_not_found(), "missing key must be NotFound: {err}");
    assert!(
        err.to_string().contains("a/none"),
        "error names the key: {err}"
    );
    s.put("a/empty", b"").unwrap();
    assert_eq!(s.get("a/empty").unwrap(), b"");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
    s.put("a/big", &big).unwrap();
    assert_eq!(s.get("a/big").unwrap(), big);
}

fn ranged_reads(s: &dyn Storage) {
    s.put("r/x", b"0123456789").unwrap();
    let mut b = [0u8; 4];
    s.read_at("r/x", 3, &mut b).unwrap();
    assert_eq!(&b, b"3456");
    assert!(
        s.read_at("r/x", 8, &mut b).is_err(),
        "read past end must fail"
    );
    assert!(s
        .read_at("r/missing", 0, &mut b)
        .unwrap_err()
        .is_not_found());
}

fn listing(s: &dyn Storage) {
    for k in ["l/p/1", "l/p/2", "l/q/3", "l/pz"] {
        s.put(k, k.as_bytes()).unwrap();
    }
    assert_eq!(s.list("l/p/").unwrap(), vec!["l/p/1", "l/p/2"]);
    assert_eq!(s.list("l/p").unwrap(), vec!["l/p/1", "l/p/2", "l/pz"]);
    assert_eq!(s.list("l/").unwrap().len(), 4);
    assert!(s.list("nothing/").unwrap().is_empty());
}

fn delete_is_idempotent(s: &dyn Storage) {
    s.put("d/x", b"1").unwrap();
    s.delete("d/x").unwrap();
    assert_eq!(s.size("d/x").unwrap(), None);
    s.delete("d/x").unwrap();
}

fn put_file_consumes(s: &dyn Storage) {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f");
    std::fs::write(&f, b"file body").unwrap();
    s.put_file("f/body", &f).unwrap();
    assert_eq!(s.get("f/body").unwrap(), b"file body");
    assert!(!f.exists(), "put_file consumes the local file");
    // Large enough to go up in several parts on object stores.
    let big: Vec<u8> = (0..(19u32 << 20)).map(|i| (i ^ (i >> 11)) as u8).collect();
    std::fs::write(&f, &big).unwrap();
    s.put_file("f/big", &f).unwrap();
    assert_eq!(s.size("f/big").unwrap(), Some(big.len() as u64));
    let mut tail = vec![0u8; 1000];
    s.read_at("f/big", (17 << 20) + 5, &mut tail).unwrap();
    assert_eq!(tail, big[(17 << 20) + 5..(17 << 20) + 1005]);
    assert!(
        s.get("f/big").unwrap() == big,
        "multi-part upload round-trips"
    );
}

fn bad_keys_rejected(s: &dyn Storage) {
    for k in ["", "/abs", "a/../b", "a//b", "./a"] {
        assert!(s.put(k, b"x").is_err(), "key {k:?} accepted");
    }
}

fn cas_semantics(s: &dyn Storage) {
    assert_eq!(
        s.compare_and_swap("c/r", None, Some(b"1")).unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(
        s.compare_and_swap("c/r", None, Some(b"2")).unwrap(),
        CasOutcome::Conflict {
            actual: Some(b"1".to_vec())
        }
    );
    assert_eq!(
        s.compare_and_swap("c/r", Some(b"1"), Some(b"2")).unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(s.get("c/r").unwrap(), b"2");
    assert_eq!(
        s.compare_and_swap("c/r", Some(b"2"), None).unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(s.size("c/r").unwrap(), None);
}

/// Two clients increment a counter by compare-and-swap; no update is lost.
fn cas_races(a: &dyn Storage, b: &dyn Storage) {
    a.put("c/counter", b"0").unwrap();
    let conflicts = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for s in [a, b] {
            let conflicts = &conflicts;
            sc.spawn(move || {
                for _ in 0..50 {
                    loop {
                        let cur = s.get("c/counter").unwrap();
                        let n: u64 = std::str::from_utf8(&cur).unwrap().parse().unwrap();
                        let next = (n + 1).to_string();
                        match s
                            .compare_and_swap("c/counter", Some(&cur), Some(next.as_bytes()))
                            .unwrap()
                        {
                            CasOutcome::Swapped => break,
                            CasOutcome::Conflict { .. } => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            });
        }
    });
    assert_eq!(a.get("c/counter").unwrap(), b"100", "lost updates");
}
