//! The reflog parser (`ReflogEntry::parse`, private to mediagit-repo's
//! refs.rs) and the reflog scan of `gc`/`fsck` roots (reach.rs), through
//! their public entry points: the input is written as `.mediagit/logs/HEAD`
//! of a scratch repository, then read with `Workspace::reflog` and
//! `Repository::roots`. Properties: no panic; at most one record per line;
//! and a record written back with `append_reflog` reads back as a fixed
//! point after one round (writing sanitizes names and messages, so the
//! first round may change them; old/new ids and the time never change).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediagit_fuzz::scratch_repo;

fuzz_target!(|data: &[u8]| {
    let repo = scratch_repo();
    let ws = repo.workspace().expect("a working tree");
    let logs = ws.dir().join("logs");
    // Reflogs are read as UTF-8 (anything else is an error before any
    // parsing), so invalid bytes become U+FFFD here: that keeps every input
    // useful and puts multi-byte characters all over the fields.
    let text = String::from_utf8_lossy(data);
    std::fs::write(logs.join("HEAD"), text.as_bytes()).expect("write reflog");
    let entries = ws.reflog("HEAD").expect("a UTF-8 reflog reads");
    assert!(entries.len() <= text.lines().count());
    let _ = repo.roots(repo.odb().expect("odb"));
    let rt = "refs/heads/fuzz-round-trip";
    let path = logs.join("refs%2Fheads%2Ffuzz-round-trip");
    for e1 in entries.iter().take(8) {
        let _ = std::fs::remove_file(&path);
        ws.append_reflog(rt, e1).expect("append");
        let e2 = ws
            .reflog(rt)
            .expect("read back")
            .pop()
            .expect("one record");
        assert_eq!((e2.old, e2.new, e2.who.time), (e1.old, e1.new, e1.who.time));
        ws.append_reflog(rt, &e2).expect("append");
        let e3 = ws.reflog(rt).expect("read back");
        assert_eq!(e3.len(), 2);
        assert_eq!(e3[0], e2, "second round changed the record");
    }
});
