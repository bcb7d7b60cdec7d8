//! Repositories written by older builds stay readable: layouts that changed
//! (pack naming, the worktree index) are read by this build, `fsck` is
//! clean on them, and every file checks out byte-exactly.
mod common;

use std::fs;

use common::*;
use mediagit_format::pack::PackIndex;
use mediagit_format::ObjectId;

/// Before 9047652 a pack was named by the SHA-256 of all its bytes. Renames
/// every pack of a repository to that name (and rewrites its index to name
/// it), as such a build would have left it.
fn rename_packs_to_whole_file_hashes(env: &Env) {
    let dir = env.repo().join(".mediagit/packs");
    for pack in packs(env) {
        let bytes = fs::read(&pack).unwrap();
        let old_id = ObjectId::hash(&bytes);
        let idx_path = pack.with_extension("idx");
        let mut idx = PackIndex::decode(&fs::read(&idx_path).unwrap()).unwrap();
        idx.pack = old_id;
        fs::write(dir.join(format!("{old_id}.pack")), &bytes).unwrap();
        fs::write(dir.join(format!("{old_id}.idx")), idx.encode()).unwrap();
        fs::remove_file(&pack).unwrap();
        fs::remove_file(&idx_path).unwrap();
    }
}

#[test]
fn packs_named_by_their_whole_content_are_sound_for_fsck() {
    let env = Env::new();
    if env.remote() {
        return;
    }
    write_random(&env.repo().join("clip.mov"), 2_500_000, 3);
    env.write("notes.txt", b"old naming\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "v1"]);
    let want = tree_hashes(&env.repo());
    rename_packs_to_whole_file_hashes(&env);
    let out = env.ok(&["fsck"]);
    assert!(out.contains(": 0 problems"), "{out}");
    // --repair must not move sound old packs aside.
    let out = env.ok(&["fsck", "--repair"]);
    assert!(!out.contains("rewrote"), "{out}");
    assert!(!env.repo().join(".mediagit/damaged").exists());
    fs::remove_file(env.repo().join("clip.mov")).unwrap();
    fs::remove_file(env.repo().join("notes.txt")).unwrap();
    env.ok(&["checkout", "HEAD", "--", "."]);
    assert_eq!(tree_hashes(&env.repo()), want);
    // A damaged old-named pack is still reported.
    let pack = packs(&env)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    fs::write(&pack, bytes).unwrap();
    let out = env.cmd(&["fsck"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}
