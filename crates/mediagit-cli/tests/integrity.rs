//! Integrity: `fsck` (check, --dangling, --lost-found, --repair), `verify`,
//! `gc` and `stats`, on repositories holding real media. Damage is made by
//! editing the on-disk format (docs/FORMAT.md §5-§8) directly: flipped bytes
//! in a chunk payload, a truncated pack, a lost or damaged pack index, a
//! garbage branch ref, a damaged worktree index. Every case asserts what the
//! user reads, the exit code, and that what is restored is byte-exact.
mod common;
use common::*;

/// A repository without media records: these tests find objects by their
/// place in packs and count what gc and fsck see, so records (tested with
/// fsck and gc in media_info.rs) would only move them around.
fn plain_env() -> Env {
    let env = Env::new();
    env.ok(&["config", "media.records", "false"]);
    env
}

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use sha2::Digest;

// ---------------------------------------------------------------- helpers

struct Out {
    code: Option<i32>,
    out: String,
    err: String,
    stdout: Vec<u8>,
}

fn mg(env: &Env, args: &[&str]) -> Out {
    let o = env.cmd(args).output().expect("run mediagit");
    Out {
        code: o.status.code(),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
        stdout: o.stdout,
    }
}

/// Runs, asserts exit 1, returns stdout and stderr.
/// A command that must fail: `fsck` and `verify` finding damage exit 4,
/// any other command meeting it exits 1 (docs/CLI.md, exit codes).
fn mg_fail(env: &Env, args: &[&str]) -> Out {
    let o = mg(env, args);
    let want = match args.first() {
        Some(&"fsck") | Some(&"verify") => 4,
        _ => 1,
    };
    assert_eq!(
        o.code,
        Some(want),
        "mediagit {args:?} should exit {want}:\nstdout: {}\nstderr: {}",
        o.out,
        o.err
    );
    o
}

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// The `B` of a gc summary's "packs A -> B;".
fn packs_after(summary: &str) -> usize {
    summary
        .split("; packs ")
        .nth(1)
        .and_then(|r| r.split(" -> ").nth(1))
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pack count in {summary:?}"))
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn pack_id(pack: &Path) -> String {
    pack.file_stem().unwrap().to_string_lossy().into_owned()
}

fn pack_key(pack: &Path) -> String {
    format!("packs/{}.pack", pack_id(pack))
}

fn idx_path(pack: &Path) -> PathBuf {
    pack.with_extension("idx")
}

fn idx_key(pack: &Path) -> String {
    format!("packs/{}.idx", pack_id(pack))
}

/// One entry of a pack file (FORMAT.md §5).
#[derive(Debug, Clone)]
struct PackEntry {
    offset: usize,
    kind: u8,
    stored: usize,
    id: String,
}

const PACK_HEADER: usize = 16;
const ENTRY_HEADER: usize = 44;
const CHUNK: u8 = 1;
const COMMIT: u8 = 4;

fn kind_name(k: u8) -> &'static str {
    match k {
        1 => "chunk",
        2 => "manifest",
        3 => "tree",
        4 => "commit",
        5 => "tag",
        _ => panic!("unknown kind {k}"),
    }
}

fn pack_entries(pack: &Path) -> Vec<PackEntry> {
    let data = fs::read(pack).unwrap();
    assert_eq!(&data[..8], b"MGPACK\0\0", "{}", pack.display());
    let mut off = PACK_HEADER;
    let mut v = Vec::new();
    while off < data.len() {
        assert!(
            off + ENTRY_HEADER <= data.len(),
            "entry header past the end"
        );
        let stored = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        v.push(PackEntry {
            offset: off,
            kind: data[off],
            stored,
            id: hex::encode(&data[off + 12..off + 44]),
        });
        off += ENTRY_HEADER + stored;
    }
    assert_eq!(off, data.len(), "entries end at the end of the pack");
    v
}

/// Every object id in every pack of the repository.
fn all_ids(env: &Env) -> BTreeSet<String> {
    packs(env)
        .iter()
        .flat_map(|p| pack_entries(p).into_iter().map(|e| e.id))
        .collect()
}

fn object_count(env: &Env) -> usize {
    packs(env).iter().map(|p| pack_entries(p).len()).sum()
}

/// fsck's summary line for a healthy repository.
fn clean_summary(env: &Env) -> String {
    format!(
        "checked {}, {} objects: 0 problems",
        plural(packs(env).len(), "pack", "packs"),
        object_count(env)
    )
}

/// Flips 16 bytes in the middle of the payload of the largest chunk of
/// `pack`; returns the chunk's id.
fn corrupt_chunk(pack: &Path) -> String {
    let e = pack_entries(pack)
        .into_iter()
        .filter(|e| e.kind == CHUNK)
        .max_by_key(|e| e.stored)
        .expect("a chunk in the pack");
    assert!(e.stored >= 1024, "payload big enough to damage");
    let mut data = fs::read(pack).unwrap();
    let pos = e.offset + ENTRY_HEADER + e.stored / 2;
    for b in &mut data[pos..pos + 16] {
        *b ^= 0xa5;
    }
    fs::write(pack, &data).unwrap();
    e.id
}

fn flip_bytes(path: &Path, at: usize, n: usize) {
    let mut data = fs::read(path).unwrap();
    for b in &mut data[at..at + n] {
        *b ^= 0xff;
    }
    fs::write(path, &data).unwrap();
}

/// The full id a branch points at.
fn branch_tip(env: &Env, name: &str) -> String {
    let s = fs::read_to_string(env.repo().join(".mediagit/refs/heads").join(name)).unwrap();
    let id = s.trim().to_string();
    assert_eq!(id.len(), 64, "{s:?}");
    id
}

/// Removes everything in the working tree but `.mediagit`.
fn clear_worktree(env: &Env) {
    for e in fs::read_dir(env.repo()).unwrap() {
        let e = e.unwrap();
        if e.file_name() == ".mediagit" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            fs::remove_dir_all(e.path()).unwrap();
        } else {
            fs::remove_file(e.path()).unwrap();
        }
    }
}

fn media_size() -> u64 {
    fs::read_dir(media_dir())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn commit_all(env: &Env, msg: &str) {
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", msg]);
}

const BIG: u64 = 3 * 1024 * 1024;

/// A repository with real media committed, then a 3 MB random file
/// committed on its own (so it sits in a pack of its own).
struct Setup {
    env: Env,
    /// The chunk pack `add big.bin` wrote (its manifest went into a
    /// metadata pack of its own: format 2, `metadata-packs`).
    big_pack: PathBuf,
    big: Vec<u8>,
    /// What `main` restores to.
    tree: BTreeMap<String, String>,
    head: String,
}

fn setup() -> Setup {
    let env = plain_env();
    copy_media(&env.repo().join("media"));
    commit_all(&env, "media");
    let before: BTreeSet<PathBuf> = packs(&env).into_iter().collect();
    write_random(&env.repo().join("big.bin"), BIG, 7);
    env.ok(&["add", "big.bin"]);
    let mut new: Vec<PathBuf> = packs(&env)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(
        new.len(),
        2,
        "add wrote a chunk and a metadata pack: {new:?}"
    );
    new.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
    env.ok(&["commit", "-m", "big"]);
    let out = mg(&env, &["fsck"]);
    assert_eq!(out.code, Some(0), "{}{}", out.out, out.err);
    Setup {
        big_pack: new[0].clone(),
        big: env.read("big.bin"),
        tree: tree_hashes(&env.repo()),
        head: branch_tip(&env, "main"),
        env,
    }
}

fn assert_fsck_clean(env: &Env, what: &str) {
    let o = mg(env, &["fsck"]);
    assert_eq!(o.code, Some(0), "{what}: fsck:\n{}{}", o.out, o.err);
    assert_eq!(o.out, format!("{}\n", clean_summary(env)), "{what}");
}

fn assert_verify_clean(env: &Env, what: &str) {
    let o = mg(env, &["verify"]);
    assert_eq!(o.code, Some(0), "{what}: verify:\n{}{}", o.out, o.err);
    assert!(!o.out.contains("FAILED"), "{what}: {}", o.out);
    assert!(
        last_line(&o.out).ends_with(": 0 would not restore exactly"),
        "{what}: {}",
        o.out
    );
}

fn problem_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("problem: ")).collect()
}

/// The `affects` lines that follow the problem line starting with `prefix`.
fn affects_of<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut v = Vec::new();
    let mut inside = false;
    for l in out.lines() {
        if l.starts_with("problem: ") {
            inside = l.starts_with(prefix);
        } else if inside {
            if let Some(a) = l.strip_prefix("    affects ") {
                v.push(a);
            }
        }
    }
    v
}

fn assert_summary_counts_problems(out: &str) {
    let n = problem_lines(out).len();
    assert!(n > 0, "{out}");
    let last = last_line(out);
    assert!(
        last.starts_with("checked ")
            && last.ends_with(&format!(": {}", plural(n, "problem", "problems"))),
        "{out}"
    );
}

// ---------------------------------------------------------------- healthy

#[test]
fn fsck_healthy_repository_with_media() {
    let env = plain_env();
    copy_media(&env.repo().join("media"));
    env.write("notes/readme.txt", b"shot list\n");
    commit_all(&env, "media");
    write_random(&env.repo().join("media/raw.bin"), 1_500_000, 3);
    fs::copy(
        media_dir().join("photo.jpg"),
        env.repo().join("notes/photo-copy.jpg"),
    )
    .unwrap();
    commit_all(&env, "more");
    env.ok(&["tag", "v1", "-m", "first cut"]);

    let n_packs = packs(&env).len();
    assert!(n_packs >= 4, "add and commit each wrote a pack");
    let objects = object_count(&env);
    let out = env.ok(&["fsck"]);
    assert_eq!(
        last_line(&out),
        format!("checked {n_packs} packs, {objects} objects: 0 problems")
    );
    assert_eq!(out.lines().count(), 1, "nothing else to say: {out}");
    // Nothing dangling: every object is reachable.
    let out = env.ok(&["fsck", "--dangling"]);
    assert_eq!(out, format!("{}\n", clean_summary(&env)));
    // --repair on a healthy repository changes nothing.
    let before = env.repo_state();
    let out = env.ok(&["fsck", "--repair"]);
    assert_eq!(out, format!("{}\n", clean_summary(&env)));
    assert_eq!(env.repo_state(), before);
}

// ---------------------------------------------------------------- corruption

#[test]
fn corrupt_chunk_is_reported_and_healed_from_the_working_tree() {
    let s = setup();
    let env = &s.env;
    let key = pack_key(&s.big_pack);
    let id = corrupt_chunk(&s.big_pack);
    let damaged_bytes = fs::read(&s.big_pack).unwrap();

    // fsck: names the chunk, the damage, the pack and the file it breaks.
    let o = mg_fail(env, &["fsck"]);
    let chunk_lines: Vec<&str> = problem_lines(&o.out)
        .into_iter()
        .filter(|l| l.starts_with(&format!("problem: chunk {id} (")))
        .collect();
    assert!(!chunk_lines.is_empty(), "{}", o.out);
    assert!(
        chunk_lines
            .iter()
            .any(|l| l.contains("corrupt") && l.contains(&key)),
        "{}",
        o.out
    );
    let affects = affects_of(&o.out, &format!("problem: chunk {id} "));
    assert!(
        affects.iter().any(|a| a.ends_with("big.bin")),
        "names the affected file: {}",
        o.out
    );
    assert!(!o.out.contains("media/"), "the media are fine: {}", o.out);
    assert_summary_counts_problems(&o.out);
    assert!(o.err.contains("fsck --repair"), "{}", o.err);

    // verify: that one file fails.
    let o = mg_fail(env, &["verify"]);
    let failed: Vec<&str> = o.out.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{}", o.out);
    assert!(failed[0].starts_with("FAILED big.bin: "), "{}", o.out);
    assert!(failed[0].contains(&id), "{}", o.out);
    assert!(
        last_line(&o.out).ends_with(": 1 would not restore exactly"),
        "{}",
        o.out
    );
    assert!(
        o.err.contains("would not restore byte-exactly"),
        "{}",
        o.err
    );

    // cat fails and never prints bytes that are not the file's.
    let before = env.repo_state();
    let o = mg_fail(env, &["cat", "HEAD:big.bin"]);
    assert!(
        o.err.contains("corrupt") && o.err.contains(&id),
        "{}",
        o.err
    );
    assert!(
        o.stdout.len() < s.big.len() && s.big.starts_with(&o.stdout),
        "cat wrote {} bytes that are not a prefix of big.bin",
        o.stdout.len()
    );
    assert_eq!(env.repo_state(), before, "cat changed nothing");

    // --repair heals from the intact working-tree file.
    let o = mg(env, &["fsck", "--repair"]);
    assert_eq!(o.code, Some(0), "{}{}", o.out, o.err);
    let repaired: Vec<&str> = o
        .out
        .lines()
        .filter(|l| l.starts_with("repaired: "))
        .collect();
    assert!(
        repaired
            .iter()
            .any(|l| l.starts_with(&format!("repaired: rewrote damaged pack {key} "))),
        "{}",
        o.out
    );
    assert!(
        repaired.contains(&"repaired: restored missing chunks of big.bin from the working tree"),
        "{}",
        o.out
    );
    assert_eq!(last_line(&o.out), clean_summary(env));
    // The damaged pack is kept aside, out of the object store.
    let moved = env
        .repo()
        .join(".mediagit/damaged")
        .join(format!("{}.pack", pack_id(&s.big_pack)));
    assert_eq!(fs::read(&moved).unwrap(), damaged_bytes);
    assert!(!s.big_pack.exists() && !idx_path(&s.big_pack).exists());

    assert_fsck_clean(env, "after repair");
    assert_verify_clean(env, "after repair");
    let o = mg(env, &["cat", "HEAD:big.bin"]);
    assert_eq!(o.code, Some(0), "{}", o.err);
    assert_eq!(sha256(&o.stdout), sha256(&s.big));
    // And a checkout into an empty tree restores every file exactly.
    clear_worktree(env);
    env.ok(&["checkout", "--force", "main"]);
    assert_eq!(tree_hashes(&env.repo()), s.tree);
}

#[test]
fn corrupt_chunk_without_a_working_copy_stays_reported_after_repair() {
    let s = setup();
    let env = &s.env;
    let key = pack_key(&s.big_pack);
    let entries = pack_entries(&s.big_pack);
    let ids_before = all_ids(env);
    fs::remove_file(env.repo().join("big.bin")).unwrap();
    let id = corrupt_chunk(&s.big_pack);

    let o = mg_fail(env, &["fsck", "--repair"]);
    assert!(
        o.out.contains(&format!(
            "repaired: rewrote damaged pack {key} keeping {} sound objects of {}",
            entries.len() - 1,
            entries.len()
        )),
        "{}",
        o.out
    );
    assert!(!o.out.contains("restored missing chunks"), "{}", o.out);
    assert!(
        problem_lines(&o.out)
            .iter()
            .any(|l| l.starts_with(&format!("problem: chunk {id} ("))),
        "the lost chunk is still reported: {}",
        o.out
    );
    let affects = affects_of(&o.out, &format!("problem: chunk {id} "));
    assert!(affects.iter().any(|a| a.ends_with("big.bin")), "{}", o.out);
    assert_summary_counts_problems(&o.out);
    assert!(o.err.contains("could not be repaired"), "{}", o.err);
    let moved = env
        .repo()
        .join(".mediagit/damaged")
        .join(format!("{}.pack", pack_id(&s.big_pack)));
    assert!(moved.is_file());
    assert!(!s.big_pack.exists());

    // Every sound object survived the rewrite; only the damaged one is gone.
    let mut expected = ids_before.clone();
    expected.remove(&id);
    assert_eq!(all_ids(env), expected);

    // It stays reported: nothing reachable was silently dropped.
    let o = mg_fail(env, &["fsck"]);
    assert!(
        o.out.contains(&format!("problem: chunk {id} (")),
        "{}",
        o.out
    );
    assert!(
        affects_of(&o.out, &format!("problem: chunk {id} "))
            .iter()
            .any(|a| a.ends_with("big.bin")),
        "{}",
        o.out
    );
    let o = mg_fail(env, &["verify"]);
    assert!(
        o.out.lines().any(|l| l.starts_with("FAILED big.bin: ")),
        "{}",
        o.out
    );
    // The rest restores exactly.
    let o = mg(env, &["verify", "--path", "media"]);
    assert_eq!(o.code, Some(0), "{}{}", o.out, o.err);
    clear_worktree(env);
    let o = mg_fail(env, &["checkout", "--force", "main"]);
    assert!(o.err.contains(&id), "{}", o.err);
    env.ok(&["checkout", "--force", "main", "--", "media"]);
    let mut media_only = s.tree.clone();
    media_only.remove("big.bin");
    assert_eq!(tree_hashes(&env.repo()), media_only);
}

#[test]
fn damaged_chunk_names_every_file_that_needs_it() {
    // The same content under two names: damage to it breaks both files, and
    // fsck must say so for each of them.
    let env = plain_env();
    copy_media(&env.repo().join("media"));
    commit_all(&env, "media");
    let before: BTreeSet<PathBuf> = packs(&env).into_iter().collect();
    write_random(&env.repo().join("a.bin"), BIG, 9);
    env.ok(&["add", "a.bin"]);
    let pack = packs(&env)
        .into_iter()
        .find(|p| !before.contains(p))
        .unwrap();
    env.ok(&["commit", "-m", "a"]);
    fs::copy(env.repo().join("a.bin"), env.repo().join("b.bin")).unwrap();
    commit_all(&env, "b");
    let id = corrupt_chunk(&pack);

    let o = mg_fail(&env, &["verify"]);
    let failed: BTreeSet<&str> = o
        .out
        .lines()
        .filter_map(|l| l.strip_prefix("FAILED "))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(failed, BTreeSet::from(["a.bin", "b.bin"]), "{}", o.out);

    let o = mg_fail(&env, &["fsck"]);
    let affects = affects_of(&o.out, &format!("problem: chunk {id} "));
    for name in ["a.bin", "b.bin"] {
        assert!(
            affects.iter().any(|a| a.ends_with(name)),
            "fsck must list {name} among what chunk {id} affects:\n{}",
            o.out
        );
    }
}

#[test]
fn truncated_pack_is_named() {
    let s = setup();
    let env = &s.env;
    let key = pack_key(&s.big_pack);
    let entries = pack_entries(&s.big_pack);
    let len = fs::metadata(&s.big_pack).unwrap().len() as usize;
    let cut = len - 1000;
    let f = fs::OpenOptions::new()
        .write(true)
        .open(&s.big_pack)
        .unwrap();
    f.set_len(cut as u64).unwrap();
    drop(f);
    // The first entry the cut damages.
    let hit = entries
        .iter()
        .find(|e| e.offset + ENTRY_HEADER + e.stored > cut)
        .unwrap();
    let expected = if hit.offset + ENTRY_HEADER <= cut {
        format!(
            "entry {} at offset {} runs past the end of the pack ({} bytes missing)",
            hit.id,
            hit.offset,
            hit.offset + ENTRY_HEADER + hit.stored - cut
        )
    } else {
        format!("truncated entry header at offset {}", hit.offset)
    };

    let o = mg_fail(env, &["fsck"]);
    let line = problem_lines(&o.out)
        .into_iter()
        .find(|l| l.starts_with(&format!("problem: pack {} (", pack_id(&s.big_pack))))
        .unwrap_or_else(|| panic!("names the pack: {}", o.out));
    assert!(line.contains(&key), "{line}");
    assert!(line.contains("damaged pack"), "{line}");
    assert!(line.contains(&expected), "expected {expected:?} in {line}");
    assert_summary_counts_problems(&o.out);

    // --repair keeps what is whole and sets the damaged file aside; whatever
    // it cannot restore is still reported, and fsck and verify agree.
    let o = mg(env, &["fsck", "--repair"]);
    assert!(
        o.out
            .contains(&format!("repaired: rewrote damaged pack {key} ")),
        "{}",
        o.out
    );
    assert!(env
        .repo()
        .join(".mediagit/damaged")
        .join(format!("{}.pack", pack_id(&s.big_pack)))
        .is_file());
    let whole: BTreeSet<String> = entries
        .iter()
        .filter(|e| e.offset + ENTRY_HEADER + e.stored <= cut)
        .map(|e| e.id.clone())
        .collect();
    let now = all_ids(env);
    assert!(whole.is_subset(&now), "whole entries kept");
    let fsck = mg(env, &["fsck"]);
    let verify = mg(env, &["verify"]);
    assert_eq!(
        fsck.code, verify.code,
        "fsck and verify agree:\n{}{}\n{}{}",
        fsck.out, fsck.err, verify.out, verify.err
    );
    if verify.code != Some(0) {
        assert!(
            verify
                .out
                .lines()
                .any(|l| l.starts_with("FAILED big.bin: ")),
            "{}",
            verify.out
        );
        assert!(fsck.out.contains("affects "), "{}", fsck.out);
    }
    let o = mg(env, &["verify", "--path", "media"]);
    assert_eq!(o.code, Some(0), "{}{}", o.out, o.err);
}

/// The pack holding the commit object `id`.
fn pack_with_commit(env: &Env, id: &str) -> PathBuf {
    packs(env)
        .into_iter()
        .find(|p| {
            pack_entries(p)
                .iter()
                .any(|e| e.kind == COMMIT && e.id == id)
        })
        .expect("the commit's pack")
}

#[test]
fn deleted_pack_index_is_rebuilt() {
    let s = setup();
    let env = &s.env;
    let pack = pack_with_commit(env, &s.head);
    let idx = idx_path(&pack);
    let idx_bytes = fs::read(&idx).unwrap();
    let n = pack_entries(&pack).len();
    fs::remove_file(&idx).unwrap();

    for args in [&["log"][..], &["status"]] {
        let o = mg_fail(env, args);
        assert!(
            o.err.contains(&format!("missing commit object {}", s.head)),
            "{args:?}: {}",
            o.err
        );
        assert!(o.err.contains("fsck"), "{args:?}: {}", o.err);
    }

    // fsck: the pack has no index (a note: by the write order that is also
    // what an interrupted write leaves), and what that makes unreadable.
    let o = mg_fail(env, &["fsck"]);
    assert!(
        o.out
            .lines()
            .any(|l| l.contains(&pack_key(&pack)) && l.contains("pack has no index")),
        "names the pack without an index:\n{}",
        o.out
    );
    assert!(
        problem_lines(&o.out)
            .iter()
            .any(|l| l.starts_with(&format!("problem: commit {} (", s.head))),
        "{}",
        o.out
    );
    assert!(
        affects_of(&o.out, &format!("problem: commit {} ", s.head)).contains(&"refs/heads/main"),
        "{}",
        o.out
    );
    assert_summary_counts_problems(&o.out);

    let o = mg(env, &["fsck", "--repair"]);
    assert_eq!(o.code, Some(0), "{}{}", o.out, o.err);
    assert!(
        o.out.lines().any(|l| l
            == format!(
                "repaired: rebuilt pack index {} from its pack ({n} objects)",
                idx_key(&pack)
            )),
        "{}",
        o.out
    );
    assert_eq!(fs::read(&idx).unwrap(), idx_bytes, "the same index again");
    assert_eq!(last_line(&o.out), clean_summary(env));

    assert!(env.ok(&["log", "--oneline"]).starts_with(&s.head[..12]));
    assert_eq!(env.ok(&["status", "--porcelain"]), "");
    assert_fsck_clean(env, "after rebuilding the index");
    assert_verify_clean(env, "after rebuilding the index");
    clear_worktree(env);
    env.ok(&["checkout", "--force", "main"]);
    assert_eq!(tree_hashes(&env.repo()), s.tree);
}

/// fsck reports the big pack's index, with `what` in the problem line.
fn assert_pack_index_problem(s: &Setup, out: &str, what: &str) {
    assert!(
        problem_lines(out)
            .iter()
            .any(|l| l.starts_with("problem: pack index")
                && l.contains(&idx_key(&s.big_pack))
                && l.contains(what)),
        "{out}"
    );
}

/// `fsck --repair` rebuilds the big pack's index byte for byte (`idx_bytes`
/// as first written), fsck is clean after, and the big file reads back.
fn assert_index_rebuilt(s: &Setup, idx_bytes: &[u8]) {
    let env = &s.env;
    let o = mg(env, &["fsck", "--repair"]);
    assert_eq!(o.code, Some(0), "{}{}", o.out, o.err);
    assert!(
        o.out.lines().any(|l| l.starts_with(&format!(
            "repaired: rebuilt pack index {} from its pack",
            idx_key(&s.big_pack)
        ))),
        "{}",
        o.out
    );
    assert_eq!(fs::read(idx_path(&s.big_pack)).unwrap(), idx_bytes);
    assert_fsck_clean(env, "after rebuilding the index");
    let o = mg(env, &["cat", "HEAD:big.bin"]);
    assert_eq!(o.code, Some(0), "{}", o.err);
    assert_eq!(sha256(&o.stdout), sha256(&s.big));
}

#[test]
fn corrupt_pack_index_is_rebuilt() {
    let s = setup();
    let env = &s.env;
    let idx = idx_path(&s.big_pack);
    let idx_bytes = fs::read(&idx).unwrap();
    // Inside the first entry (after the 48-byte header).
    flip_bytes(&idx, 48 + 40, 1);

    let o = mg_fail(env, &["log"]);
    assert!(o.err.contains(&idx_key(&s.big_pack)), "{}", o.err);
    assert!(o.err.contains("fsck --repair"), "{}", o.err);

    let o = mg_fail(env, &["fsck"]);
    assert_pack_index_problem(&s, &o.out, "damaged");
    assert_summary_counts_problems(&o.out);

    assert_index_rebuilt(&s, &idx_bytes);
    assert_verify_clean(env, "after rebuilding the index");
}

/// A pack index that leaves out an object the pack holds (a hostile or
/// damaged store): no command can read that object, so fsck reports the
/// index (not only the object as missing) and --repair re-indexes the pack.
#[test]
fn pack_index_leaving_out_an_object_is_reported_and_rebuilt() {
    let s = setup();
    let env = &s.env;
    let idx = idx_path(&s.big_pack);
    let idx_bytes = fs::read(&idx).unwrap();
    let mut parsed = mediagit_format::pack::PackIndex::decode(&idx_bytes).unwrap();
    let left_out = parsed.entries.remove(0).id.to_hex();
    fs::write(&idx, parsed.encode()).unwrap();

    let o = mg_fail(env, &["fsck"]);
    assert_pack_index_problem(&s, &o.out, "1 objects in the pack are not in its index");
    assert!(
        o.out.contains(&left_out),
        "the unreadable object is named:\n{}",
        o.out
    );
    assert_summary_counts_problems(&o.out);

    assert_index_rebuilt(&s, &idx_bytes);
}

#[test]
fn garbage_branch_ref_is_restored_from_the_reflog() {
    let s = setup();
    let env = &s.env;
    let ref_file = env.repo().join(".mediagit/refs/heads/main");
    let good = fs::read(&ref_file).unwrap();
    assert_eq!(good, format!("{}\n", s.head).as_bytes());
    fs::write(&ref_file, b"this is not a commit id\n").unwrap();

    let o = mg_fail(env, &["log"]);
    assert!(o.err.contains("refs/heads/main"), "{}", o.err);
    let o = mg_fail(env, &["fsck"]);
    assert!(
        problem_lines(&o.out)
            .iter()
            .any(|l| l.starts_with("problem: ref (refs/heads/main): ")),
        "{}",
        o.out
    );

    let o = mg(env, &["fsck", "--repair"]);
    assert_eq!(o.code, Some(0), "{}{}", o.out, o.err);
    assert!(
        o.out.lines().any(|l| l.starts_with(&format!(
            "repaired: restored refs/heads/main to {} from this working tree's reflog (if another working tree moved",
            &s.head[..12]
        )) && l.contains("fsck --dangling")),
        "{}",
        o.out
    );
    assert_eq!(fs::read(&ref_file).unwrap(), good, "the latest value");
    let log = env.ok(&["log", "--oneline"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[0].starts_with(&s.head[..12]) && lines[0].ends_with(" big"));
    assert!(lines[1].ends_with(" media"));
    assert_fsck_clean(env, "after restoring the ref");
}

#[test]
fn damaged_worktree_index_is_rebuilt() {
    let s = setup();
    let env = &s.env;
    let files = env.ok(&["ls-files"]);
    let n = files.lines().count();
    let index = env.repo().join(".mediagit/index");
    let len = fs::metadata(&index).unwrap().len() as usize;
    flip_bytes(&index, len / 2, 2);

    let o = mg_fail(env, &["status"]);
    assert!(o.err.contains(".mediagit/index"), "{}", o.err);
    let o = mg_fail(env, &["fsck"]);
    assert!(
        problem_lines(&o.out)
            .iter()
            .any(|l| l.starts_with("problem: index (") && l.contains(".mediagit/index")),
        "{}",
        o.out
    );

    let o = mg(env, &["fsck", "--repair"]);
    assert_eq!(o.code, Some(0), "{}{}", o.out, o.err);
    assert!(
        o.out.lines().any(|l| l.starts_with(&format!(
            "repaired: rebuilt the worktree index from HEAD ({n} files"
        ))),
        "{}",
        o.out
    );
    assert_eq!(env.ok(&["ls-files"]), files);
    assert_fsck_clean(env, "after rebuilding the index");
    // Nothing was changed in the working tree, so nothing is reported.
    assert_eq!(tree_hashes(&env.repo()), s.tree);
    assert_eq!(
        env.ok(&["status", "--porcelain"]),
        "",
        "an unchanged working tree must show no changes after the index is rebuilt"
    );
}

// ---------------------------------------------------------------- dangling, lost-found

#[test]
fn dangling_and_lost_found() {
    let env = plain_env();
    copy_media(&env.repo().join("media"));
    let flac = fs::read(env.repo().join("media/tone.flac")).unwrap();
    fs::remove_file(env.repo().join("media/tone.flac")).unwrap();
    commit_all(&env, "media");
    env.ok(&["switch", "-c", "feature"]);
    write_random(&env.repo().join("feature.bin"), 600_000, 41);
    let feature_bin = env.read("feature.bin");
    commit_all(&env, "feature work");
    let tip = branch_tip(&env, "feature");
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "delete", "-D", "feature"]);

    // The reflogs still keep it.
    let out = env.ok(&["fsck", "--dangling"]);
    assert!(
        !out.lines().any(|l| l.starts_with("dangling")),
        "nothing dangling while the reflog holds it: {out}"
    );
    assert_eq!(last_line(&out), clean_summary(&env));

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = env.ok(&["reflog", "expire", "--expire=now"]);
    assert!(out.starts_with("expired "), "{out}");
    let out = env.ok(&["fsck", "--dangling"]);
    assert!(
        out.lines()
            .any(|l| l == format!("dangling commit {tip} feature work")),
        "{out}"
    );
    assert_eq!(last_line(&out), clean_summary(&env));
    assert!(!env.repo().join(".mediagit/lost-found").exists());

    // --lost-found saves the commit.
    let out = env.ok(&["fsck", "--lost-found"]);
    let saved = env.repo().join(".mediagit/lost-found/commit").join(&tip);
    assert!(
        out.lines()
            .any(|l| l == format!("lost-found: {}", saved.display())),
        "{out}"
    );
    let text = fs::read_to_string(&saved).unwrap();
    assert!(
        text.starts_with(&format!("commit {tip}\nfeature work\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("mediagit branch create <name> {tip}")),
        "{text}"
    );
    assert!(
        !env.repo().join(".mediagit/lost-found/other").exists(),
        "files of a saved commit are not saved loose"
    );

    // A file staged, unstaged and deleted: its content is saved by its SHA-256.
    env.write("draft/tone.flac", &flac);
    env.ok(&["add", "draft/tone.flac"]);
    env.ok(&["rm", "--cached", "draft/tone.flac"]);
    fs::remove_file(env.repo().join("draft/tone.flac")).unwrap();
    let content = sha256(&flac);
    let out = env.ok(&["fsck", "--dangling", "--lost-found"]);
    assert!(
        out.lines().any(|l| l.starts_with("dangling file ")
            && l.ends_with(&format!("file content {content} ({} bytes)", flac.len()))),
        "{out}"
    );
    let other = env.repo().join(".mediagit/lost-found/other");
    let names: Vec<String> = fs::read_dir(&other)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, std::slice::from_ref(&content));
    assert_eq!(fs::read(other.join(&content)).unwrap(), flac);
    assert!(
        out.lines()
            .any(|l| l == format!("lost-found: {}", other.join(&content).display())),
        "{out}"
    );

    // The saved commit can be brought back, byte-exactly.
    env.ok(&["branch", "create", "rescued", &tip]);
    env.ok(&["switch", "rescued"]);
    assert_eq!(
        sha256_file(&env.repo().join("feature.bin")),
        sha256(&feature_bin)
    );
    let out = env.ok(&["verify"]);
    assert!(last_line(&out).ends_with(": 0 would not restore exactly"));
}

// ---------------------------------------------------------------- verify

fn tree_size(env: &Env) -> u64 {
    let mut total = 0;
    let mut stack = vec![env.repo()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_name() == ".mediagit" {
                continue;
            }
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

#[test]
fn verify_revisions_and_paths() {
    let env = plain_env();
    copy_media(&env.repo().join("media"));
    commit_all(&env, "media");
    let before: BTreeSet<PathBuf> = packs(&env).into_iter().collect();
    write_random(&env.repo().join("big.bin"), BIG, 51);
    env.ok(&["add", "big.bin"]);
    let v1_pack = packs(&env)
        .into_iter()
        .find(|p| !before.contains(p))
        .unwrap();
    env.ok(&["commit", "-m", "v1"]);
    let v1_files = 8;
    let v1_bytes = tree_size(&env);
    let v1 = env.rev("HEAD");
    write_random(&env.repo().join("big.bin"), BIG + 4096, 52);
    env.write("notes.txt", b"v2 notes\n");
    commit_all(&env, "v2");
    let v2 = env.rev("HEAD");
    let v2_bytes = tree_size(&env);

    assert_eq!(
        env.ok(&["verify"]),
        format!(
            "verified 9 files ({}) of HEAD ({v2}): 0 would not restore exactly\n",
            human_size(v2_bytes)
        )
    );
    assert_eq!(
        env.ok(&["verify", "HEAD~1"]),
        format!(
            "verified {v1_files} files ({}) of HEAD~1 ({v1}): 0 would not restore exactly\n",
            human_size(v1_bytes)
        )
    );
    let photo = fs::metadata(env.repo().join("media/photo.jpg"))
        .unwrap()
        .len();
    assert_eq!(
        env.ok(&["verify", "--path", "media/photo.jpg"]),
        format!(
            "verified 1 file ({}) of HEAD ({v2}): 0 would not restore exactly\n",
            human_size(photo)
        )
    );
    assert_eq!(
        env.ok(&["verify", "main", "--path", "media"]),
        format!(
            "verified 7 files ({}) of main ({v2}): 0 would not restore exactly\n",
            human_size(media_size())
        )
    );
    let out = env.ok(&["verify", "--path", "media/clip.mp4", "--path", "notes.txt"]);
    assert!(out.starts_with("verified 2 files ("), "{out}");

    let before = env.repo_state();
    let err = env.fail(&["verify", "--path", "nope.bin"]);
    assert!(
        err.contains("nope.bin") && err.contains("did not match"),
        "{err}"
    );
    let err = env.fail(&["verify", "HEAD~1", "--path", "notes.txt"]);
    assert!(err.contains("notes.txt"), "{err}");
    let err = env.fail(&["verify", "nosuchrev"]);
    assert!(err.contains("unknown revision \"nosuchrev\""), "{err}");
    assert_eq!(env.repo_state(), before);

    // Damage only v1's big.bin: HEAD still verifies, HEAD~1 does not.
    let id = corrupt_chunk(&v1_pack);
    env.ok(&["verify"]);
    let o = mg_fail(&env, &["verify", "HEAD~1"]);
    let failed: Vec<&str> = o.out.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{}", o.out);
    assert!(
        failed[0].starts_with("FAILED big.bin: ") && failed[0].contains(&id),
        "{}",
        o.out
    );
    assert_eq!(
        last_line(&o.out),
        format!(
            "verified {v1_files} files ({}) of HEAD~1 ({v1}): 1 would not restore exactly",
            human_size(v1_bytes)
        )
    );
    env.ok(&["verify", "HEAD~1", "--path", "media"]);
}

// ---------------------------------------------------------------- gc

#[test]
fn gc_prunes_only_what_nothing_reaches() {
    let env = plain_env();
    let mut versions: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    copy_media(&env.repo().join("media"));
    commit_all(&env, "media");
    versions.push((branch_tip(&env, "main"), tree_hashes(&env.repo())));
    write_random(&env.repo().join("big.bin"), BIG, 61);
    commit_all(&env, "big");
    versions.push((branch_tip(&env, "main"), tree_hashes(&env.repo())));

    // A side branch with content of its own.
    env.ok(&["switch", "-c", "side"]);
    let before: BTreeSet<PathBuf> = packs(&env).into_iter().collect();
    write_random(&env.repo().join("side.bin"), 2_000_000, 62);
    commit_all(&env, "side work");
    let side_tip = branch_tip(&env, "side");
    let side_entries: BTreeSet<(String, String)> = packs(&env)
        .into_iter()
        .filter(|p| !before.contains(p))
        .flat_map(|p| {
            pack_entries(&p)
                .into_iter()
                .map(|e| (kind_name(e.kind).to_string(), e.id))
        })
        .collect();
    let side_only: BTreeSet<String> = side_entries.iter().map(|(_, id)| id.clone()).collect();
    assert!(side_only.contains(&side_tip));
    env.ok(&["switch", "main"]);

    env.write("notes.txt", b"main goes on\n");
    commit_all(&env, "notes");
    versions.push((branch_tip(&env, "main"), tree_hashes(&env.repo())));
    env.ok(&["branch", "delete", "-D", "side"]);
    let n_packs = packs(&env).len();

    // Default grace period: nothing young is removed; the reflog still reaches all.
    let state = env.repo_state();
    assert_eq!(
        env.ok(&["gc"]),
        format!("deleted 0 packs holding nothing reachable (unread); repacked 0 packs: read and rewrote 0 B; 0 unreachable objects (0 B) left in packs under --max-unused 10%\nremoved 0 unreachable objects and 0 orphan packs, freeing 0 B; packs {n_packs} -> {n_packs}; 0 unreachable objects kept (newer than the grace period)\n")
    );
    assert_eq!(env.repo_state(), state);

    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.ok(&["reflog", "expire", "--expire=now"]);
    let k = side_only.len();
    let state = env.repo_state();
    assert_eq!(
        last_line(&env.ok(&["gc"])),
        format!(
            "removed 0 unreachable objects and 0 orphan packs, freeing 0 B; packs {n_packs} -> {n_packs}; {} kept (newer than the grace period)",
            plural(k, "unreachable object", "unreachable objects")
        )
    );
    assert_eq!(env.repo_state(), state, "default gc removed nothing");

    // Dry run: lists exactly the side branch's objects, changes nothing
    // (--max-unused 0: every pack holding any of them is repacked).
    let out = env.ok(&["gc", "--dry-run", "--prune=now", "--max-unused", "0"]);
    assert_eq!(env.repo_state(), state, "--dry-run changed nothing");
    let mut listed = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for l in out.lines().filter(|l| l.starts_with("would remove ")) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w[2] == "orphan" || w[3] == "unreachable" {
            continue;
        }
        kinds.insert(w[2].to_string());
        listed.insert((w[2].to_string(), w[3].to_string()));
    }
    assert_eq!(listed, side_entries, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("would remove commit {side_tip} ("))),
        "{out}"
    );
    for kind in ["commit", "tree", "manifest", "chunk"] {
        assert!(kinds.contains(kind), "{kind}: {out}");
    }
    let summary = last_line(&out);
    assert!(
        summary.starts_with(&format!(
            "would remove {k} unreachable objects and 0 orphan packs, freeing "
        )),
        "{summary}"
    );
    assert!(
        summary.ends_with("; 0 unreachable objects kept (newer than the grace period)"),
        "{summary}"
    );
    let planned = packs_after(summary);
    assert!(planned < n_packs, "{summary}");

    // For real.
    let objects_before = object_count(&env);
    let out = env.ok(&["gc", "--prune=now", "--max-unused", "0"]);
    let summary = last_line(&out);
    assert!(
        summary.starts_with(&format!(
            "removed {k} unreachable objects and 0 orphan packs, freeing "
        )),
        "{summary}"
    );
    assert_eq!(packs_after(summary), planned, "{summary}");
    assert_eq!(packs(&env).len(), planned);
    let ids = all_ids(&env);
    assert!(ids.is_disjoint(&side_only), "side objects gone");
    assert_eq!(object_count(&env), objects_before - k);
    assert_fsck_clean(&env, "after gc");
    assert_verify_clean(&env, "after gc");
    let err = env.fail(&["log", &side_tip]);
    assert!(
        err.contains(&side_tip[..12]) || err.contains(&side_tip),
        "{err}"
    );

    // Every version on main restores byte-exactly.
    for (id, tree) in &versions {
        clear_worktree(&env);
        env.ok(&["checkout", "--force", id]);
        assert_eq!(&tree_hashes(&env.repo()), tree, "commit {id}");
    }
    env.ok(&["checkout", "--force", "main"]);
    assert_eq!(&tree_hashes(&env.repo()), &versions[2].1);
    // A second gc has nothing left to do.
    let out = env.ok(&["gc", "--prune=now", "--max-unused", "0"]);
    assert!(
        last_line(&out).starts_with("removed 0 unreachable objects"),
        "{out}"
    );
    assert_eq!(packs(&env).len(), planned);

    // A bad --prune value is refused, naming the option.
    let state = env.repo_state();
    for bad in ["bogus", "3 fortnights ago", "yesterday-ish"] {
        let err = env.fail(&["gc", &format!("--prune={bad}")]);
        assert!(err.contains("--prune"), "{err}");
        assert!(err.contains(bad), "{err}");
    }
    assert_eq!(env.repo_state(), state);
}

#[test]
fn gc_keeps_what_reflogs_tags_and_the_index_reach() {
    let env = plain_env();
    copy_media(&env.repo().join("media"));
    commit_all(&env, "media");

    // Kept by tags only (the branch is deleted, the reflogs expired).
    env.ok(&["switch", "-c", "tagged"]);
    write_random(&env.repo().join("t1.bin"), 700_000, 71);
    let t1 = env.read("t1.bin");
    commit_all(&env, "t1");
    write_random(&env.repo().join("t2.bin"), 700_000, 72);
    let t2 = env.read("t2.bin");
    commit_all(&env, "t2");
    env.ok(&["tag", "light", "HEAD~1"]);
    env.ok(&["tag", "annotated", "-m", "release"]);
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "delete", "-D", "tagged"]);
    // Garbage: nothing keeps it once the reflogs are expired.
    env.ok(&["switch", "-c", "gone"]);
    write_random(&env.repo().join("gone.bin"), 700_000, 73);
    commit_all(&env, "gone");
    let gone = branch_tip(&env, "gone");
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "delete", "-D", "gone"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.ok(&["reflog", "expire", "--expire=now"]);

    // Kept by the reflog only: a branch deleted after the expiry.
    env.ok(&["switch", "-c", "ephemeral"]);
    write_random(&env.repo().join("eph.bin"), 700_000, 74);
    let eph = env.read("eph.bin");
    commit_all(&env, "ephemeral");
    let eph_tip = branch_tip(&env, "ephemeral");
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "delete", "-D", "ephemeral"]);

    // Kept by the index only: staged, never committed.
    write_random(&env.repo().join("staged.bin"), BIG, 75);
    let staged = env.read("staged.bin");
    env.ok(&["add", "staged.bin"]);

    let out = env.ok(&["gc", "--prune=now", "--max-unused", "0"]);
    let summary = last_line(&out);
    assert!(summary.starts_with("removed "), "{summary}");
    assert!(
        !summary.starts_with("removed 0 "),
        "the gone branch is pruned: {summary}"
    );
    assert_eq!(packs(&env).len(), packs_after(summary), "{summary}");
    assert_fsck_clean(&env, "after gc");
    let err = env.fail(&["log", &gone]);
    assert!(!err.is_empty());

    // The staged file: commit it now, and it restores exactly.
    env.ok(&["commit", "-m", "staged at last"]);
    fs::remove_file(env.repo().join("staged.bin")).unwrap();
    env.ok(&["checkout", "--force", "main"]);
    assert_eq!(sha256(&env.read("staged.bin")), sha256(&staged));
    assert_verify_clean(&env, "staged file");

    // The tags.
    env.ok(&["checkout", "--force", "light"]);
    assert_eq!(sha256(&env.read("t1.bin")), sha256(&t1));
    assert!(!env.repo().join("t2.bin").exists());
    env.ok(&["checkout", "--force", "annotated"]);
    assert_eq!(sha256(&env.read("t2.bin")), sha256(&t2));
    assert_eq!(sha256(&env.read("t1.bin")), sha256(&t1));
    env.ok(&["verify", "annotated"]);
    env.ok(&["verify", "light"]);

    // The reflog.
    env.ok(&["verify", &eph_tip]);
    env.ok(&["branch", "create", "back", &eph_tip]);
    env.ok(&["checkout", "--force", "back"]);
    assert_eq!(sha256(&env.read("eph.bin")), sha256(&eph));
    assert_fsck_clean(&env, "at the end");
}

// ---------------------------------------------------------------- stats

fn json_u64(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is a number: {v}"))
}

#[test]
fn stats_human_and_json() {
    let env = plain_env();
    copy_media(&env.repo().join("media"));
    commit_all(&env, "media");
    write_random(&env.repo().join("a.bin"), BIG, 81);
    commit_all(&env, "a");
    fs::copy(env.repo().join("a.bin"), env.repo().join("b.bin")).unwrap();
    commit_all(&env, "b, the same bytes");
    let m = media_size();
    let logical = m + (m + BIG) + (m + 2 * BIG);
    let pack_bytes: u64 = packs(&env)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();

    let out = env.ok(&["stats"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "packs:             {} ({})",
            packs(&env).len(),
            human_size(pack_bytes)
        )
    );
    assert!(lines.contains(&"commits:           3"), "{out}");
    assert!(
        lines
            .contains(&format!("HEAD:              9 files, {}", human_size(m + 2 * BIG)).as_str()),
        "{out}"
    );
    assert!(
        lines.contains(&format!("all versions:      {} (logical)", human_size(logical)).as_str()),
        "{out}"
    );
    let dedup: f64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("dedup ratio:"))
        .expect("dedup ratio line")
        .trim()
        .parse()
        .unwrap();
    assert!(dedup > 1.9, "{out}");
    assert!(
        lines.contains(&"by type (HEAD)     files        size   ratio"),
        "{out}"
    );
    let by_type = |ext: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("  .{ext} ")))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .next()
            .unwrap_or_else(|| panic!(".{ext} listed: {out}"))
    };
    for ext in ["mp4", "jpg", "png", "wav", "flac", "psd", "tiff"] {
        let w = by_type(ext);
        assert_eq!(w[1], "1", "{ext}: {out}");
        let size = fs::metadata(media_dir().join(match ext {
            "mp4" => "clip.mp4",
            "jpg" => "photo.jpg",
            "png" => "image.png",
            "wav" => "tone.wav",
            "flac" => "tone.flac",
            "psd" => "layers.psd",
            _ => "scan.tiff",
        }))
        .unwrap()
        .len();
        assert_eq!(
            format!("{} {}", w[2], w[3]),
            human_size(size),
            "{ext}: {out}"
        );
    }
    let bin = by_type("bin");
    assert_eq!(bin[1], "2", "{out}");
    assert_eq!(format!("{} {}", bin[2], bin[3]), human_size(2 * BIG));
    let at = lines
        .iter()
        .position(|l| *l == "largest files (HEAD)")
        .expect("largest files");
    assert_eq!(lines[at + 1], format!("  {:>11}  a.bin", human_size(BIG)));
    assert_eq!(lines[at + 2], format!("  {:>11}  b.bin", human_size(BIG)));
    assert_eq!(lines.len(), at + 1 + 9, "all 9 files listed: {out}");
    let out = env.ok(&["stats", "--top", "1"]);
    assert!(
        out.ends_with(&format!(
            "largest files (HEAD)\n  {:>11}  a.bin\n",
            human_size(BIG)
        )),
        "{out}"
    );

    // JSON.
    let out = env.ok(&["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(json_u64(&v, "packs"), packs(&env).len() as u64);
    assert_eq!(json_u64(&v, "pack_bytes"), pack_bytes);
    assert_eq!(json_u64(&v, "commits"), 3);
    assert_eq!(json_u64(&v, "logical_bytes"), logical);
    assert_eq!(json_u64(&v, "head_files"), 9);
    assert_eq!(json_u64(&v, "head_bytes"), m + 2 * BIG);
    let ratio = v["dedup_ratio"].as_f64().unwrap();
    assert!(ratio > 1.9, "dedup_ratio {ratio}");
    let chunk_raw = json_u64(&v["objects"]["chunk"], "raw_bytes");
    assert!(
        (ratio - logical as f64 / chunk_raw as f64).abs() < 1e-9,
        "{ratio} = logical / chunk bytes"
    );
    // a.bin and b.bin are stored once.
    assert!(chunk_raw < m + BIG + BIG / 10, "{chunk_raw}");
    assert!(v["compression_ratio"].as_f64().unwrap() >= 1.0);
    let types = v["by_type"].as_array().unwrap();
    let bin = types.iter().find(|t| t["ext"] == "bin").expect("bin");
    assert_eq!(json_u64(bin, "files"), 2);
    assert_eq!(json_u64(bin, "bytes"), 2 * BIG);
    let bin_chunks = json_u64(bin, "chunk_raw_bytes");
    assert_eq!(bin_chunks, BIG, "distinct chunks of the two .bin files");
    for ext in ["mp4", "jpg", "png", "wav", "flac", "psd", "tiff"] {
        let t = types
            .iter()
            .find(|t| t["ext"] == ext)
            .unwrap_or_else(|| panic!("{ext}"));
        assert_eq!(json_u64(t, "files"), 1, "{ext}");
    }
    let largest = v["largest"].as_array().unwrap();
    assert_eq!(largest.len(), 9);
    assert_eq!(largest[0]["path"], "a.bin");
    assert_eq!(json_u64(&largest[0], "size"), BIG);
    assert_eq!(largest[1]["path"], "b.bin");
}

/// Packs are named by their headers, so a gc that copies every entry of an
/// old pack writes a pack of the same name. It must not then delete that
/// name as the old pack (with metadata packs, a fully reachable chunk pack
/// is rewritten to itself on every gc past the grace period).
#[test]
fn gc_rewriting_a_pack_to_the_same_entries_keeps_it() {
    let env = plain_env();
    if env.remote() {
        return; // pack times are set on local files
    }
    write_random(&env.repo().join("clip.mov"), 3_000_000, 21);
    env.write("notes.txt", b"notes\n");
    let want = tree_hashes(&env.repo());
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    age_files(&env.repo().join(".mediagit/packs"), 30);
    let before: std::collections::BTreeSet<_> = packs(&env).into_iter().collect();
    let out = env.ok(&["gc"]);
    assert!(out.contains("removed 0 unreachable objects"), "{out}");
    let fsck = env.ok(&["fsck"]);
    assert!(fsck.contains(": 0 problems"), "{fsck}");
    env.ok(&["verify"]);
    fs::remove_file(env.repo().join("clip.mov")).unwrap();
    fs::remove_file(env.repo().join("notes.txt")).unwrap();
    env.ok(&["checkout", "HEAD", "--", "."]);
    assert_eq!(tree_hashes(&env.repo()), want);
    // The chunk pack was copied to itself: still there under its name.
    let after: std::collections::BTreeSet<_> = packs(&env).into_iter().collect();
    assert!(!before.is_disjoint(&after), "{before:?} {after:?}");
}

/// A checkout's files reach the disk before the index that vouches for
/// their stat (a power cut must not leave an index calling a file clean
/// whose bytes never landed): seen in the order of system calls.
#[test]
fn checkout_flushes_the_files_before_saving_the_index() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("MEDIAGIT_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "strace is missing (scripts/install-test-deps.sh installs it)"
        );
        return;
    }
    let env = plain_env();
    write_random(&env.repo().join("clip.mov"), 2_000_000, 4);
    env.write("notes.txt", b"notes\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    fs::remove_file(env.repo().join("clip.mov")).unwrap();
    fs::remove_file(env.repo().join("notes.txt")).unwrap();
    let trace = env.root().join("trace.txt");
    let out = std::process::Command::new("strace")
        .args(["-f", "-e", "trace=syncfs,rename,renameat,renameat2", "-o"])
        .arg(&trace)
        .arg(assert_cmd::cargo::cargo_bin("mediagit"))
        .args(["-q", "checkout", "HEAD", "--", "."])
        .current_dir(env.repo())
        .env("HOME", env.root().join("home"))
        .env("XDG_CONFIG_HOME", env.root().join("home/.config"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = fs::read_to_string(&trace).unwrap();
    let pos = |needle: &str| {
        calls
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in:\n{calls}"))
    };
    let sync = pos("syncfs(");
    let clip = pos("/clip.mov\"");
    let notes = pos("/notes.txt\"");
    let lines: Vec<&str> = calls.lines().collect();
    let index = lines
        .iter()
        .rposition(|l| l.contains(".mediagit/index\""))
        .unwrap_or_else(|| panic!("no index rename in:\n{calls}"));
    assert!(
        clip < sync && notes < sync,
        "files renamed after the flush:\n{calls}"
    );
    assert!(sync < index, "index saved before the flush:\n{calls}");
    assert_eq!(tree_hashes(&env.repo()).len(), 2);
}

/// A checkout that meets a missing chunk keeps the structured error: the
/// message names the file, and the CLI's hint points to fsck.
#[test]
fn checkout_of_a_missing_chunk_names_the_file_and_hints_fsck() {
    let s = setup();
    let env = &s.env;
    if env.remote() {
        return; // deletes local pack files
    }
    fs::remove_file(&s.big_pack).unwrap();
    fs::remove_file(idx_path(&s.big_pack)).unwrap();
    fs::remove_file(env.repo().join("big.bin")).unwrap();
    let err = env.fail(&["checkout", "HEAD", "--", "big.bin"]);
    assert!(err.contains("big.bin"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("mediagit fsck"),
        "{err}"
    );
}

/// A pack file gone while its index still lists reachable objects: gc
/// refuses (and says to run fsck) instead of repacking around the hole and
/// reporting success.
#[test]
fn gc_refuses_when_a_reachable_pack_file_is_missing() {
    let s = setup();
    let env = &s.env;
    if env.remote() {
        return; // deletes and ages local pack files
    }
    fs::remove_file(&s.big_pack).unwrap();
    age_files(&env.repo().join(".mediagit/packs"), 30);
    let before: BTreeSet<PathBuf> = packs(env).into_iter().collect();
    let err = env.fail(&["gc", "--prune=now"]);
    assert!(
        err.contains("gc will not run") && err.contains("is missing"),
        "{err}"
    );
    assert!(
        err.contains("hint:") && err.contains("mediagit fsck"),
        "{err}"
    );
    let after: BTreeSet<PathBuf> = packs(env).into_iter().collect();
    assert_eq!(before, after, "gc changed packs");
}

/// Only the pack file gone (its index kept): the error names the file
/// being restored and says the pack file is missing.
#[test]
fn checkout_with_a_missing_pack_file_names_the_file_and_the_pack() {
    let s = setup();
    let env = &s.env;
    if env.remote() {
        return; // deletes a local pack file
    }
    fs::remove_file(&s.big_pack).unwrap();
    fs::remove_file(env.repo().join("big.bin")).unwrap();
    let err = env.fail(&["checkout", "HEAD", "--", "big.bin"]);
    assert!(err.contains("needed by big.bin"), "{err}");
    assert!(err.contains("the pack file is missing"), "{err}");
    assert!(err.contains(&pack_key(&s.big_pack)), "{err}");
    assert!(
        err.contains("hint:") && err.contains("mediagit fsck"),
        "{err}"
    );
}

/// The sides of an unresolved merge are the user's to choose from: `gc`
/// keeps every stage's objects although no commit and no staged entry
/// names them.
#[test]
fn gc_keeps_every_side_of_a_conflicted_path() {
    use mediagit_format::index::{ConflictEntry, IndexFile, Stage};
    let env = plain_env();
    write_random(&env.repo().join("base.bin"), 300_000, 1);
    commit_all(&env, "base");
    // "theirs": a version only the conflict stage will name.
    write_random(&env.repo().join("take.wav"), 900_000, 2);
    let theirs = sha256(&fs::read(env.repo().join("take.wav")).unwrap());
    env.ok(&["add", "take.wav"]);
    let path = env.repo().join(".mediagit/index");
    let mut idx = IndexFile::decode(&fs::read(&path).unwrap()).unwrap();
    let at = idx
        .entries
        .iter()
        .position(|e| e.path == "take.wav")
        .unwrap();
    let entry = idx.entries.remove(at);
    idx.conflicts.push(ConflictEntry {
        stage: Stage::Theirs,
        entry: entry.clone(),
    });
    fs::write(&path, idx.encode()).unwrap();
    fs::remove_file(env.repo().join("take.wav")).unwrap();

    env.ok(&["gc", "--prune=now"]);
    assert_fsck_clean(&env, "after gc");
    // Choose "theirs" (put its entry back as the resolution) and restore it.
    let mut idx = IndexFile::decode(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(idx.conflicts.len(), 1, "gc kept the conflict");
    idx.conflicts.clear();
    idx.entries.push(entry);
    idx.entries.sort_by(|a, b| a.path.cmp(&b.path));
    fs::write(&path, idx.encode()).unwrap();
    env.ok(&["checkout", "--", "take.wav"]);
    assert_eq!(
        sha256(&fs::read(env.repo().join("take.wav")).unwrap()),
        theirs
    );
}

fn gc_json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["gc", "--prune=now", "--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&env.ok(&a)).unwrap()
}

fn pack_stamps(env: &Env) -> BTreeMap<PathBuf, std::time::SystemTime> {
    packs(env)
        .into_iter()
        .map(|p| {
            let t = fs::metadata(&p).unwrap().modified().unwrap();
            (p, t)
        })
        .collect()
}

/// A gc's cost follows the garbage: packs that hold nothing reachable go
/// without being read, packs with little garbage stay as they are, and a
/// gc with nothing to free reads and writes nothing.
#[test]
fn gc_deletes_dead_packs_unread_and_leaves_live_ones_alone() {
    let env = plain_env();
    if env.remote() {
        return; // counts local pack files
    }
    write_random(&env.repo().join("keep.bin"), BIG, 81);
    commit_all(&env, "keep");
    env.ok(&["switch", "-c", "side"]);
    write_random(&env.repo().join("dropped.bin"), BIG, 82);
    commit_all(&env, "side");
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "delete", "--force", "side"]);
    // (Records of this very second are not older than "now".)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.ok(&["reflog", "expire", "--expire=now"]);
    age_files(&env.repo().join(".mediagit/packs"), 30);
    let before = pack_stamps(&env);
    // Per add + commit: a chunk pack and a manifest pack (add), a tree
    // and commit pack (commit).
    assert_eq!(before.len(), 6);

    // Nothing read, the side commit's three packs freed whole, the rest
    // untouched.
    let dry = gc_json(&env, &["--dry-run"]);
    assert_eq!(dry["packs_deleted"], 3, "{dry}");
    assert_eq!(dry["packs_repacked"], 0, "{dry}");
    assert_eq!(dry["bytes_read"], 0, "{dry}");
    assert!(dry["bytes_freed"].as_u64().unwrap() > BIG, "{dry}");
    assert_eq!(pack_stamps(&env), before, "--dry-run changed packs");
    let done = gc_json(&env, &[]);
    assert_eq!(done["removed"], dry["removed"]);
    assert_eq!(done["bytes_read"], 0);
    let after = pack_stamps(&env);
    assert_eq!(after.len(), 3);
    for (p, t) in &after {
        assert_eq!(before.get(p), Some(t), "{} was rewritten", p.display());
    }
    assert_fsck_clean(&env, "after gc");
    assert_verify_clean(&env, "after gc");

    // A second gc has nothing to do, and does nothing.
    let again = gc_json(&env, &[]);
    assert_eq!(
        (
            again["removed"].as_array().unwrap().len(),
            again["bytes_read"].as_u64()
        ),
        (0, Some(0)),
        "{again}"
    );
    assert_eq!(pack_stamps(&env), after);
}

/// A pack whose unreachable share is under --max-unused stays (its
/// garbage reported as kept); at --max-unused 0 it is repacked and the
/// garbage goes; bad values are refused naming the option.
#[test]
fn gc_repacks_a_pack_only_past_its_unused_share() {
    let env = plain_env();
    if env.remote() {
        return;
    }
    env.write("readme.txt", b"r\n");
    commit_all(&env, "readme");
    write_random(&env.repo().join("clip.mov"), BIG, 91);
    write_random(&env.repo().join("note.bin"), 40_000, 92);
    env.ok(&["switch", "-c", "side"]);
    commit_all(&env, "clip and note");
    // main gets the same clip (deduplicated into side's pack), not the note.
    env.ok(&["switch", "main"]);
    write_random(&env.repo().join("clip.mov"), BIG, 91);
    env.ok(&["add", "clip.mov"]);
    env.ok(&["commit", "-m", "clip"]);
    env.ok(&["branch", "delete", "--force", "side"]);
    // (Records of this very second are not older than "now".)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.ok(&["reflog", "expire", "--expire=now"]);
    age_files(&env.repo().join(".mediagit/packs"), 30);
    let clip = sha256(&fs::read(env.repo().join("clip.mov")).unwrap());

    // The chunk pack (the clip, reachable, and the note's 40 KB) stays
    // unread; the side's small metadata packs go.
    let kept = gc_json(&env, &["--dry-run"]);
    assert!(kept["bytes_read"].as_u64().unwrap() < BIG / 10, "{kept}");
    assert!(kept["kept_unused"].as_u64().unwrap() >= 1, "{kept}");
    let text = env.ok(&["gc", "--prune=now", "--dry-run"]);
    assert!(
        text.contains("left in packs under --max-unused 10%"),
        "{text}"
    );

    let all = gc_json(&env, &["--max-unused", "0"]);
    assert!(all["packs_repacked"].as_u64().unwrap() >= 1, "{all}");
    assert!(all["bytes_read"].as_u64().unwrap() >= BIG, "{all}");
    assert_eq!(all["kept_unused"], 0, "{all}");
    assert_fsck_clean(&env, "after repack");
    fs::remove_file(env.repo().join("clip.mov")).unwrap();
    env.ok(&["checkout", "--", "clip.mov"]);
    assert_eq!(
        sha256(&fs::read(env.repo().join("clip.mov")).unwrap()),
        clip
    );

    // A usage error (exit 2), naming the option.
    for bad in ["101", "-1", "ten"] {
        let arg = format!("--max-unused={bad}");
        let out = env.cmd(&["gc", &arg]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("--max-unused"), "{err}");
    }
}

/// Small packs (one or two per add) are merged only past a bound, not on
/// every gc.
#[test]
fn gc_merges_small_packs_only_past_the_bound() {
    let env = plain_env();
    if env.remote() {
        return;
    }
    // Each add + commit writes one chunk pack and two metadata packs.
    let limit = mediagit_repo::gc::MAX_SMALL_PACKS;
    let rounds = limit / 2;
    let mut files = BTreeMap::new();
    for i in 0..rounds {
        let name = format!("f{i:02}.bin");
        write_random(&env.repo().join(&name), 20_000, 200 + i as u64);
        files.insert(
            name.clone(),
            sha256(&fs::read(env.repo().join(&name)).unwrap()),
        );
        env.ok(&["add", &name]);
        env.ok(&["commit", "-m", &name]);
    }
    // `limit` metadata packs: at the bound, nothing moves.
    let before = pack_stamps(&env);
    assert_eq!(before.len(), 3 * rounds);
    let r = gc_json(&env, &[]);
    assert_eq!(
        (r["packs_repacked"].as_u64(), r["bytes_read"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(pack_stamps(&env), before);
    // Past it: the metadata packs are merged into one; the chunk packs
    // (half as many) stay.
    write_random(&env.repo().join("last.bin"), 20_000, 999);
    commit_all(&env, "last");
    let r = gc_json(&env, &[]);
    assert_eq!(
        r["packs_repacked"].as_u64(),
        Some(2 * (rounds as u64 + 1)),
        "{r}"
    );
    assert_eq!(r["packs_after"].as_u64(), Some(rounds as u64 + 2), "{r}");
    assert_eq!(packs(&env).len(), rounds + 2);
    assert_fsck_clean(&env, "after merging");
    for (name, hash) in files {
        fs::remove_file(env.repo().join(&name)).unwrap();
        env.ok(&["checkout", "--", &name]);
        assert_eq!(
            sha256(&fs::read(env.repo().join(&name)).unwrap()),
            hash,
            "{name}"
        );
    }
}

/// A pack file gone while its index stays (a gc on another working tree
/// took it for an interrupted write): `commit` of files whose objects it
/// held is refused, not recorded over missing data.
#[test]
fn commit_refuses_staged_files_whose_pack_file_is_gone() {
    let env = plain_env();
    if env.remote() {
        return; // removes a local pack file
    }
    env.write("a.txt", b"first\n");
    commit_all(&env, "first");
    let before = pack_stamps(&env);
    write_random(&env.repo().join("clip.mov"), 700_000, 31);
    env.ok(&["add", "clip.mov"]);
    let head = env.rev("HEAD");
    let new: Vec<PathBuf> = packs(&env)
        .into_iter()
        .filter(|p| !before.contains_key(p))
        .collect();
    assert!(!new.is_empty());
    for p in &new {
        fs::remove_file(p).unwrap();
    }
    let err = env.fail(&["commit", "-m", "over a hole"]);
    assert!(err.contains("nothing was committed"), "{err}");
    assert!(err.contains("clip.mov"), "{err}");
    assert_eq!(env.rev("HEAD"), head);
}

/// Debris a gc must clear and fsck must judge right: an index whose pack
/// file is gone and that lists nothing reachable is deleted by gc (it used
/// to stay forever, its objects counted as recent); a pack without its
/// index that holds reachable objects is a problem for fsck (exit 1; it
/// used to be only a note, exit 0), and `fsck --repair` indexes it again.
#[test]
fn gc_and_fsck_judge_packs_missing_a_half() {
    let env = plain_env();
    if env.remote() {
        return;
    }
    env.write("keep.txt", b"keep\n");
    commit_all(&env, "keep");
    env.ok(&["switch", "-c", "side"]);
    write_random(&env.repo().join("gone.bin"), 500_000, 41);
    let side_before = pack_stamps(&env);
    commit_all(&env, "side");
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "delete", "-D", "side"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.ok(&["reflog", "expire", "--expire=now"]);
    // The side's chunk pack: remove its file, keep its index.
    let side_chunks = packs(&env)
        .into_iter()
        .filter(|p| !side_before.contains_key(p))
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    fs::remove_file(&side_chunks).unwrap();
    age_files(&env.repo().join(".mediagit/packs"), 30);
    let r = gc_json(&env, &[]);
    assert_eq!(r["kept_recent"], 0, "{r}");
    assert!(!side_chunks.with_extension("idx").exists(), "{r}");
    assert_fsck_clean(&env, "after gc");

    // A reachable pack loses its index.
    write_random(&env.repo().join("live.bin"), 500_000, 42);
    let live_before = pack_stamps(&env);
    commit_all(&env, "live");
    let live_chunks = packs(&env)
        .into_iter()
        .filter(|p| !live_before.contains_key(p))
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    fs::remove_file(live_chunks.with_extension("idx")).unwrap();
    let out = env.cmd(&["fsck"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(text.contains("live.bin"), "{text}");
    assert!(text.contains("reachable chunk cannot be read"), "{text}");
    assert!(
        text.contains("`mediagit fsck --repair` indexes it"),
        "{text}"
    );
    env.ok(&["fsck", "--repair"]);
    assert_fsck_clean(&env, "after repair");
    assert_verify_clean(&env, "after repair");
}

/// A manifest whose stored bytes are damaged: checkout refuses before it
/// writes anything, and the error names the file that needs it.
#[test]
fn a_damaged_manifest_is_named_by_its_file_in_checkout() {
    let env = plain_env();
    env.write("photo.bin", &[7u8; 5000]);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    let (pack, entry) = packs(&env)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .find_map(|p| {
            let e = pack_entries(&p)
                .into_iter()
                .find(|e| kind_name(e.kind) == "manifest")?;
            Some((p, e))
        })
        .expect("a manifest in some pack");
    flip_bytes(&pack, entry.offset + ENTRY_HEADER + entry.stored / 2, 1);
    fs::remove_file(env.repo().join("photo.bin")).unwrap();
    let o = mg_fail(&env, &["checkout", "--force", "HEAD"]);
    assert!(o.err.contains("manifest"), "{}", o.err);
    assert!(o.err.contains("needed by photo.bin"), "{}", o.err);
    assert!(!env.repo().join("photo.bin").exists());
}

/// A switch that fails while writing (a chunk of a file it writes is
/// damaged) has removed nothing that was not in its way: the files the
/// target drops are still there, and HEAD and the index are as they were.
#[test]
fn a_switch_failing_while_writing_has_removed_nothing_yet() {
    let env = plain_env();
    for i in 0..50 {
        env.write(&format!("old/f{i:02}.txt"), format!("old {i}").as_bytes());
    }
    env.write("keep.txt", b"keep");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.ok(&["switch", "-c", "two"]);
    fs::remove_dir_all(env.repo().join("old")).unwrap();
    let before = packs(&env);
    // Incompressible, so the stored chunk is big enough to damage.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    env.write("new/big.bin", &big);
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "two"]);
    let new_pack = packs(&env)
        .into_iter()
        .filter(|p| !before.contains(p))
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    env.ok(&["switch", "main"]);
    assert_eq!(env.read("old/f07.txt"), b"old 7");
    corrupt_chunk(&new_pack);
    let state = env.repo_state();
    let err = env.fail(&["switch", "two"]);
    assert!(err.contains("new/big.bin"), "{err}");
    for i in 0..50 {
        assert_eq!(
            env.read(&format!("old/f{i:02}.txt")),
            format!("old {i}").as_bytes(),
            "old/f{i:02}.txt was removed by a switch that failed"
        );
    }
    assert_eq!(env.read("keep.txt"), b"keep");
    assert_eq!(env.repo_state(), state);
    assert!(env.ok(&["status"]).contains("On branch main"));
}

/// A file the target drops that cannot be deleted once every file is
/// written (immutable, or in a read-only directory) does not fail the
/// switch half way: the switch completes, warns, and leaves the file
/// untracked (as Git does).
#[test]
fn a_file_that_cannot_be_removed_after_writing_is_a_warning_not_a_half_switch() {
    let env = plain_env();
    env.write("keep/x.txt", b"x");
    env.write("y.txt", b"y one");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.ok(&["switch", "-c", "two"]);
    fs::remove_file(env.repo().join("keep/x.txt")).unwrap();
    env.write("keep/z.txt", b"z");
    env.write("y.txt", b"y two");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "two"]);
    env.ok(&["switch", "main"]);
    assert_eq!(env.read("keep/x.txt"), b"x");
    let dir = env.repo().join("keep");
    let x = dir.join("x.txt");
    // Root ignores directory permissions: an immutable file instead.
    // SAFETY: geteuid takes no arguments, cannot fail and touches no
    // memory of ours.
    let root = unsafe { libc::geteuid() } == 0;
    let locked = if root {
        std::process::Command::new("chattr")
            .arg("+i")
            .arg(&x)
            .status()
            .is_ok_and(|s| s.success())
    } else {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).is_ok()
    };
    let unlock = || {
        if root {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&x)
                .status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o755));
        }
    };
    if !locked {
        unlock();
        eprintln!("chattr +i is not available on this filesystem; nothing to test");
        return;
    }
    let out = env.cmd(&["switch", "two"]).output().unwrap();
    unlock();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: could not remove keep/x.txt"),
        "{err}"
    );
    assert_eq!(env.read("y.txt"), b"y two");
    assert_eq!(env.read("keep/z.txt"), b"z");
    assert_eq!(env.read("keep/x.txt"), b"x");
    let st = env.ok(&["status", "--porcelain"]);
    assert_eq!(st, "?? keep/x.txt\n");
    assert!(env.ok(&["status"]).contains("On branch two"));
}

/// On a case-sensitive filesystem, `Photo.JPG` in one branch and
/// `photo.jpg` in the other are two files: a switch removes the one and
/// writes the other (the check that keeps a case-insensitive filesystem
/// from deleting the new file compares inodes, not names).
#[test]
fn a_name_changing_case_is_removed_and_written_as_two_files() {
    let env = plain_env();
    env.write("Photo.JPG", b"upper");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.ok(&["switch", "-c", "two"]);
    fs::remove_file(env.repo().join("Photo.JPG")).unwrap();
    env.write("photo.jpg", b"lower");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "two"]);
    env.ok(&["switch", "main"]);
    assert_eq!(env.read("Photo.JPG"), b"upper");
    assert!(!env.repo().join("photo.jpg").exists());
    env.ok(&["switch", "two"]);
    assert_eq!(env.read("photo.jpg"), b"lower");
    assert!(!env.repo().join("Photo.JPG").exists());
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
}

/// A store may serve an index far larger than its pack could need (to make
/// every reader allocate it): refused by its listed size before it is read,
/// named, and reported by fsck.
#[test]
fn an_oversized_pack_index_is_refused_before_it_is_read() {
    let env = plain_env();
    env.write("a.txt", b"alpha");
    mg(&env, &["add", "a.txt"]);
    mg(&env, &["commit", "-m", "one"]);
    let pack = packs(&env)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let idx = idx_path(&pack);
    let pack_len = std::fs::metadata(&pack).unwrap().len();
    let mut bytes = std::fs::read(&idx).unwrap();
    // 44-byte entries: a pack of pack_len bytes holds at most that many.
    let most = 48 + (pack_len / 44) * 52 + 4096;
    bytes.resize(most as usize + 1, 0);
    std::fs::write(&idx, &bytes).unwrap();
    let o = mg_fail(&env, &["log"]);
    assert!(
        o.err.contains(&idx_key(&pack)) && o.err.contains("more than its pack can need"),
        "{}",
        o.err
    );
    let o = mg_fail(&env, &["fsck"]);
    assert!(
        o.out.contains("more than its pack can need")
            || o.err.contains("more than its pack can need"),
        "{}\n{}",
        o.out,
        o.err
    );
}
