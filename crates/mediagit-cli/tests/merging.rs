//! History operations on real media files: merge (fast-forward, clean,
//! conflicts resolved each way and by hand, criss-cross, renames,
//! delete/modify, --ff-only, --no-ff, --squash, -X, [merge] patterns),
//! --abort after each kind of stop, rebase, cherry-pick, revert, reset,
//! restore, and kills at every write point of a merge.
mod common;
use common::*;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

type Tree = BTreeMap<String, String>;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The full ids of HEAD's parents, from `log --json`.
fn parents(env: &Env, rev: &str) -> Vec<String> {
    let out = env.ok(&["log", "--json", "-n", "1", rev]);
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    v["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

/// The newest `n` commits from `rev`, as `log --json` gives them.
fn commits(env: &Env, rev: &str, n: usize) -> Vec<serde_json::Value> {
    env.ok(&["log", "--json", "-n", &n.to_string(), rev])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(env: &Env, rev: &str) -> String {
    let c = &commits(env, rev, 1)[0];
    c["message"]
        .as_str()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

fn full(env: &Env, rev: &str) -> String {
    let out = env.ok(&["log", "--json", "-n", "1", rev]);
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn commit_all(env: &Env, msg: &str) -> String {
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", msg]);
    full(env, "HEAD")
}

fn media(name: &str) -> Vec<u8> {
    std::fs::read(media_dir().join(name)).unwrap()
}

/// A repository with the media fixtures committed on `main`, and a
/// branch `feat` from there.
fn base_repo() -> Env {
    let env = Env::new();
    copy_media(&env.repo().join("media"));
    std::fs::create_dir_all(env.repo().join("footage")).unwrap();
    write_random(&env.repo().join("footage/a.bin"), 3_000_000, 1);
    commit_all(&env, "base");
    env.ok(&["branch", "create", "feat"]);
    env
}

fn hashes(env: &Env) -> Tree {
    tree_hashes(&env.repo())
}

fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[test]
fn fast_forward_and_already_up_to_date() {
    let env = base_repo();
    env.ok(&["switch", "feat"]);
    env.write("media/photo.jpg", &media("image.png"));
    let tip = commit_all(&env, "feat: photo");
    let want = hashes(&env);
    env.ok(&["switch", "main"]);
    let out = env.ok(&["merge", "feat"]);
    assert!(out.starts_with("Fast-forward to "), "{out}");
    assert_eq!(full(&env, "HEAD"), tip);
    assert_eq!(hashes(&env), want);
    assert_eq!(env.ok(&["merge", "feat"]), "Already up to date.\n");
    let reflog = env.ok(&["reflog", "main"]);
    assert!(reflog.contains("merge feat: Fast-forward"), "{reflog}");
}

#[test]
fn clean_merge_of_different_files_makes_a_merge_commit() {
    let env = base_repo();
    env.ok(&["switch", "feat"]);
    env.write("media/photo.jpg", &media("scan.tiff"));
    env.write("new/clip2.mp4", &media("clip.mp4"));
    let feat = commit_all(&env, "feat: photo and clip");
    env.ok(&["switch", "main"]);
    env.write("media/tone.wav", &media("tone.flac"));
    std::fs::remove_file(env.repo().join("media/image.png")).unwrap();
    let main = commit_all(&env, "main: tone, no png");
    let out = env.ok(&["merge", "feat", "-m", "Join feat"]);
    assert!(out.contains("] Join feat"), "{out}");
    assert_eq!(parents(&env, "HEAD"), vec![main, feat]);
    let h = hashes(&env);
    assert_eq!(h["media/photo.jpg"], sha(&media("scan.tiff")));
    assert_eq!(h["new/clip2.mp4"], sha(&media("clip.mp4")));
    assert_eq!(h["media/tone.wav"], sha(&media("tone.flac")));
    assert!(!h.contains_key("media/image.png"));
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
    env.ok(&["fsck"]);
    // --no-ff on a fast-forward still makes a merge commit.
    env.ok(&["switch", "-c", "later", "HEAD"]);
    env.write("later.txt", b"later\n");
    let later = commit_all(&env, "later");
    env.ok(&["switch", "main"]);
    let before = full(&env, "HEAD");
    env.ok(&["merge", "--no-ff", "later"]);
    assert_eq!(parents(&env, "HEAD"), vec![before, later]);
}

/// main and feat change the same photo differently.
fn conflicted() -> (Env, String, String) {
    let env = base_repo();
    env.ok(&["switch", "feat"]);
    env.write("media/photo.jpg", &media("scan.tiff"));
    env.write("feat-only.txt", b"from feat\n");
    let feat = commit_all(&env, "feat edits photo");
    env.ok(&["switch", "main"]);
    env.write("media/photo.jpg", &media("image.png"));
    let main = commit_all(&env, "main edits photo");
    (env, main, feat)
}

#[test]
fn a_conflict_stops_the_merge_and_status_shows_both_sides() {
    let (env, main, _) = conflicted();
    let out = env.cmd(&["merge", "feat"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("CONFLICT (both changed): media/photo.jpg"));
    assert!(text(&out.stderr).contains("mediagit resolve PATH"));
    // Ours stays in the working tree; the clean part is applied.
    assert_eq!(env.read("media/photo.jpg"), media("image.png"));
    assert_eq!(env.read("feat-only.txt"), b"from feat\n");
    let st = env.ok(&["status"]);
    assert!(st.contains("You are merging feat."), "{st}");
    assert!(st.contains("both changed:   media/photo.jpg"), "{st}");
    let png = human_size(media("image.png").len() as u64);
    let tiff = human_size(media("scan.tiff").len() as u64);
    assert!(st.contains(&format!("ours:   {png}")), "{st}");
    assert!(st.contains(&format!("theirs: {tiff}")), "{st}");
    assert!(
        st.contains("last changed by Test User <test@example.com>"),
        "{st}"
    );
    let j: serde_json::Value = serde_json::from_str(&env.ok(&["status", "--json"])).unwrap();
    assert_eq!(j["operation"]["op"], "merge");
    assert_eq!(j["conflicts"][0]["path"], "media/photo.jpg");
    assert_eq!(
        j["conflicts"][0]["theirs"]["size"],
        media("scan.tiff").len() as u64
    );
    // Nothing can be committed or switched to until it is settled.
    env.fail_with(3, &["commit", "-m", "x"]);
    let e = env.fail(&["switch", "feat"]);
    assert!(e.contains("a merge is in progress"), "{e}");
    let e = env.fail(&["merge", "feat"]);
    assert!(e.contains("merge --continue"), "{e}");
    assert_eq!(full(&env, "HEAD"), main);
}

#[test]
fn conflicts_resolved_ours_theirs_both_and_by_hand() {
    for how in ["--ours", "--theirs", "--both", "hand"] {
        let (env, main, feat) = conflicted();
        env.fail_with(3, &["merge", "feat"]);
        match how {
            "hand" => {
                env.write("media/photo.jpg", &media("tone.wav"));
                env.ok(&["add", "media/photo.jpg"]);
            }
            _ => {
                env.ok(&["resolve", "media/photo.jpg", how]);
            }
        }
        let out = env.ok(&["merge", "--continue"]);
        assert!(out.contains("Merge feat"), "{how}: {out}");
        assert_eq!(
            parents(&env, "HEAD"),
            vec![main.clone(), feat.clone()],
            "{how}"
        );
        let h = hashes(&env);
        match how {
            "--ours" => assert_eq!(h["media/photo.jpg"], sha(&media("image.png"))),
            "--theirs" => assert_eq!(h["media/photo.jpg"], sha(&media("scan.tiff"))),
            "--both" => {
                assert!(!h.contains_key("media/photo.jpg"), "{how}");
                assert_eq!(h["media/photo~ours.jpg"], sha(&media("image.png")));
                assert_eq!(h["media/photo~theirs.jpg"], sha(&media("scan.tiff")));
            }
            _ => assert_eq!(h["media/photo.jpg"], sha(&media("tone.wav"))),
        }
        assert!(env.ok(&["status", "--porcelain"]).is_empty(), "{how}");
        // What was committed restores byte for byte.
        let want = hashes(&env);
        for f in std::fs::read_dir(env.repo().join("media")).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        env.ok(&["checkout", "--force", "HEAD"]);
        assert_eq!(hashes(&env), want, "{how}");
    }
}

#[test]
fn commit_ends_a_merge_with_its_message_and_both_parents() {
    let (env, main, feat) = conflicted();
    env.fail_with(3, &["merge", "feat"]);
    env.ok(&["resolve", "media", "--theirs"]);
    env.ok(&["commit"]);
    assert_eq!(parents(&env, "HEAD"), vec![main, feat]);
    assert_eq!(summary(&env, "HEAD"), "Merge feat");
    assert!(env.ok(&["status"]).contains("nothing to commit"));
}

#[test]
fn merge_abort_restores_everything_byte_for_byte() {
    let (env, main, _) = conflicted();
    // Local work the merge does not touch: a changed file and an untracked one.
    env.write("media/tone.wav", &media("tone.flac"));
    env.write("scratch/untracked.bin", b"mine\n");
    let before = hashes(&env);
    let status_before = env.ok(&["status", "--porcelain"]);
    env.fail_with(3, &["merge", "feat"]);
    // The user starts resolving, then gives up.
    env.write("media/photo.jpg", b"half-done edit");
    let out = env.ok(&["merge", "--abort"]);
    assert!(out.starts_with("Merge aborted"), "{out}");
    assert_eq!(hashes(&env), before);
    assert_eq!(env.ok(&["status", "--porcelain"]), status_before);
    assert_eq!(full(&env, "HEAD"), main);
    assert!(!env.repo().join(".mediagit/operation").exists());
    let e = env.fail(&["merge", "--abort"]);
    assert!(e.contains("no merge is in progress"), "{e}");
}

#[test]
fn merge_refuses_to_overwrite_local_changes_and_changes_nothing() {
    let (env, _, _) = conflicted();
    env.write("feat-only.txt", b"untracked in the way\n");
    let state = env.repo_state();
    let before = hashes(&env);
    let e = env.fail(&["merge", "feat"]);
    assert!(e.contains("feat-only.txt"), "{e}");
    assert_eq!(env.repo_state(), state);
    assert_eq!(hashes(&env), before);
    std::fs::remove_file(env.repo().join("feat-only.txt")).unwrap();
    // A changed tracked file the merge would write.
    env.write("media/photo.jpg", b"edited, not committed");
    let e = env.fail(&["merge", "feat"]);
    assert!(e.contains("media/photo.jpg"), "{e}");
    // Staged changes anywhere.
    env.ok(&["checkout", "--force", "HEAD"]);
    env.write("media/tone.wav", b"staged");
    env.ok(&["add", "media/tone.wav"]);
    let e = env.fail(&["merge", "feat"]);
    assert!(e.contains("staged changes"), "{e}");
}

#[test]
fn delete_modify_and_add_add_conflict() {
    let env = base_repo();
    env.ok(&["switch", "feat"]);
    env.write("media/clip.mp4", &media("tone.wav"));
    env.write("both.bin", b"feat's");
    commit_all(&env, "feat changes clip, adds both.bin");
    env.ok(&["switch", "main"]);
    std::fs::remove_file(env.repo().join("media/clip.mp4")).unwrap();
    env.write("both.bin", b"main's");
    commit_all(&env, "main deletes clip, adds both.bin");
    let out = env.cmd(&["merge", "feat"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let s = text(&out.stdout);
    assert!(
        s.contains("CONFLICT (deleted on one side, changed on the other): media/clip.mp4"),
        "{s}"
    );
    assert!(s.contains("CONFLICT (both added): both.bin"), "{s}");
    // Their changed clip is there to look at.
    assert_eq!(env.read("media/clip.mp4"), media("tone.wav"));
    env.ok(&["resolve", "media/clip.mp4", "--ours"]);
    assert!(
        !env.repo().join("media/clip.mp4").exists(),
        "ours deleted it"
    );
    env.ok(&["resolve", "both.bin", "--theirs"]);
    env.ok(&["merge", "--continue"]);
    assert_eq!(env.read("both.bin"), b"feat's");
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
}

#[test]
fn a_rename_on_one_side_keeps_the_edit_of_the_other() {
    let env = base_repo();
    env.ok(&["switch", "feat"]);
    std::fs::create_dir_all(env.repo().join("final")).unwrap();
    env.ok(&["mv", "media/clip.mp4", "final/clip.mp4"]);
    commit_all(&env, "feat renames the clip");
    env.ok(&["switch", "main"]);
    let mut edited = media("clip.mp4");
    edited.extend_from_slice(b"appended by main");
    env.write("media/clip.mp4", &edited);
    commit_all(&env, "main edits the clip");
    let out = env.ok(&["merge", "feat"]);
    assert!(
        out.contains("Followed a rename (they renamed media/clip.mp4 -> final/clip.mp4)"),
        "{out}"
    );
    assert!(!env.repo().join("media/clip.mp4").exists());
    assert_eq!(env.read("final/clip.mp4"), edited);
}

#[test]
fn criss_cross_merges_use_a_virtual_base() {
    // main and feat each merge the other once (two lowest common
    // ancestors); both already agreed on photo.jpg, so the final merge
    // must not conflict on it, while a later change on one side wins.
    let env = base_repo();
    env.ok(&["switch", "feat"]);
    env.write("f.txt", b"f1");
    let f1 = commit_all(&env, "f1");
    env.ok(&["switch", "main"]);
    env.write("m.txt", b"m1");
    let m1 = commit_all(&env, "m1");
    env.ok(&["merge", "feat", "-m", "main merges f1"]);
    env.write("media/photo.jpg", &media("scan.tiff"));
    commit_all(&env, "main: photo");
    env.ok(&["switch", "feat"]);
    env.ok(&["merge", &m1, "-m", "feat merges m1"]);
    env.write("media/photo.jpg", &media("scan.tiff"));
    env.write("f.txt", b"f2");
    commit_all(&env, "feat: same photo, f2");
    let _ = f1;
    env.ok(&["switch", "main"]);
    let out = env.ok(&["merge", "feat"]);
    assert!(!out.contains("CONFLICT"), "{out}");
    assert_eq!(env.read("f.txt"), b"f2");
    assert_eq!(env.read("m.txt"), b"m1");
    assert_eq!(env.read("media/photo.jpg"), media("scan.tiff"));
    assert_eq!(parents(&env, "HEAD").len(), 2);
}

#[test]
fn ff_only_squash_and_strategy_options() {
    let (env, main, _) = conflicted();
    let e = env.fail_with(3, &["merge", "--ff-only", "feat"]);
    assert!(e.contains("not possible to fast-forward"), "{e}");
    // -X theirs settles the photo with feat's.
    env.ok(&["merge", "-X", "theirs", "feat"]);
    assert_eq!(env.read("media/photo.jpg"), media("scan.tiff"));
    env.ok(&["reset", "--hard", &main]);
    assert_eq!(env.read("media/photo.jpg"), media("image.png"));
    assert!(!env.repo().join("feat-only.txt").exists());
    // --squash stages the result; the next commit has one parent.
    env.ok(&["merge", "--squash", "-X", "ours", "feat"]);
    let st = env.ok(&["status", "--porcelain"]);
    assert!(st.contains("A  feat-only.txt"), "{st}");
    env.ok(&["commit", "-m", "squashed"]);
    assert_eq!(parents(&env, "HEAD"), vec![main]);
    assert_eq!(env.read("media/photo.jpg"), media("image.png"));
}

#[test]
fn merge_patterns_in_config_decide_per_file() {
    let (env, _, _) = conflicted();
    env.ok(&["config", "merge.theirs", "*.jpg"]);
    let out = env.ok(&["merge", "feat"]);
    assert!(!out.contains("CONFLICT"), "{out}");
    assert_eq!(env.read("media/photo.jpg"), media("scan.tiff"));
}

/// A 5-commit branch whose third commit conflicts with main.
fn rebase_setup() -> (Env, Vec<String>) {
    let env = base_repo();
    env.ok(&["switch", "feat"]);
    let mut picks = Vec::new();
    for i in 1..=5 {
        if i == 3 {
            env.write("media/photo.jpg", &media("scan.tiff"));
        } else {
            env.write(&format!("feat/{i}.bin"), format!("feat {i}").as_bytes());
        }
        picks.push(commit_all(&env, &format!("feat {i}")));
    }
    env.ok(&["switch", "main"]);
    env.write("media/photo.jpg", &media("image.png"));
    env.write("main.txt", b"main");
    commit_all(&env, "main edits photo");
    env.ok(&["switch", "feat"]);
    (env, picks)
}

#[test]
fn rebase_with_a_conflict_in_the_middle() {
    let (env, _) = rebase_setup();
    let main = full(&env, "main");
    let out = env.cmd(&["rebase", "main"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let st = env.ok(&["status"]);
    assert!(st.contains("You are rebasing onto main"), "{st}");
    assert!(st.contains("2 more commit(s) to go"), "{st}");
    env.ok(&["resolve", "media/photo.jpg", "--theirs"]);
    env.ok(&["rebase", "--continue"]);
    assert!(env.ok(&["status"]).starts_with("On branch feat\n"));
    // Linear: five new commits on main's tip.
    let commits = commits(&env, "feat", 6);
    assert_eq!(
        commits[5]["id"],
        main.as_str(),
        "five commits on main's tip"
    );
    let commits = &commits[..5];
    assert!(commits
        .iter()
        .all(|c| c["parents"].as_array().unwrap().len() == 1));
    assert_eq!(commits[4]["parents"][0], main.as_str());
    assert_eq!(commits[0]["message"], "feat 5\n");
    assert_eq!(env.read("media/photo.jpg"), media("scan.tiff"));
    assert_eq!(env.read("main.txt"), b"main");
    assert_eq!(env.read("feat/5.bin"), b"feat 5");
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
    env.ok(&["fsck"]);
}

#[test]
fn rebase_abort_and_skip() {
    let (env, picks) = rebase_setup();
    let before = hashes(&env);
    env.fail_with(3, &["rebase", "main"]);
    env.ok(&["rebase", "--abort"]);
    assert_eq!(hashes(&env), before);
    assert_eq!(full(&env, "HEAD"), picks[4]);
    assert!(env.ok(&["status"]).starts_with("On branch feat"));
    // --skip drops the conflicting commit.
    env.fail_with(3, &["rebase", "main"]);
    env.ok(&["rebase", "--skip"]);
    let main = full(&env, "main");
    let c = commits(&env, "feat", 5);
    assert_eq!(c[4]["id"], main.as_str(), "four commits on main's tip");
    assert_eq!(env.read("media/photo.jpg"), media("image.png"));
}

#[test]
fn cherry_pick_of_a_range_and_abort() {
    let env = base_repo();
    env.ok(&["switch", "feat"]);
    let start = full(&env, "HEAD");
    for i in 1..=3 {
        env.write(&format!("pick/{i}.bin"), format!("p{i}").as_bytes());
        commit_all(&env, &format!("pick {i}"));
    }
    let feat = full(&env, "HEAD");
    env.ok(&["switch", "main"]);
    env.write("main.txt", b"main");
    let main = commit_all(&env, "main");
    let out = env.ok(&["cherry-pick", &format!("{start}..{feat}")]);
    assert_eq!(
        out.lines().filter(|l| l.contains("] pick ")).count(),
        3,
        "{out}"
    );
    let commits = commits(&env, "HEAD", 4);
    assert_eq!(commits[3]["id"], main.as_str());
    assert_eq!(commits[0]["message"], "pick 3\n");
    assert_eq!(commits[2]["parents"][0], main.as_str());
    for i in 1..=3 {
        assert_eq!(
            env.read(&format!("pick/{i}.bin")),
            format!("p{i}").as_bytes()
        );
    }
    // A pick that conflicts, then --abort.
    env.ok(&["reset", "--hard", &main]);
    let (env2, main2, feat2) = conflicted();
    let before = hashes(&env2);
    env2.fail_with(3, &["cherry-pick", &feat2]);
    assert!(env2.ok(&["status"]).contains("You are cherry-picking"));
    env2.ok(&["cherry-pick", "--abort"]);
    assert_eq!(hashes(&env2), before);
    assert_eq!(full(&env2, "HEAD"), main2);
    // And resolved: the pick keeps its author and message.
    env2.fail_with(3, &["cherry-pick", &feat2]);
    env2.ok(&["resolve", "media/photo.jpg", "--theirs"]);
    env2.ok(&["cherry-pick", "--continue"]);
    assert_eq!(parents(&env2, "HEAD"), vec![main2]);
    assert_eq!(summary(&env2, "HEAD"), "feat edits photo");
}

#[test]
fn revert_of_a_commit_and_of_a_merge_parent() {
    let env = base_repo();
    env.write("media/photo.jpg", &media("scan.tiff"));
    let edit = commit_all(&env, "edit photo");
    env.ok(&["revert", &edit]);
    assert_eq!(env.read("media/photo.jpg"), media("photo.jpg"));
    assert_eq!(summary(&env, "HEAD"), "Revert \"edit photo\"");
    // A merge reverted to its first parent's side.
    env.ok(&["switch", "feat"]);
    env.write("feat.bin", b"feat");
    commit_all(&env, "feat");
    env.ok(&["switch", "main"]);
    env.ok(&["merge", "--no-ff", "feat", "-m", "merge feat"]);
    let merge = full(&env, "HEAD");
    assert!(env.repo().join("feat.bin").exists());
    let e = env.fail(&["revert", &merge]);
    assert!(e.contains("--mainline"), "{e}");
    env.ok(&["revert", "-m", "1", &merge]);
    assert!(!env.repo().join("feat.bin").exists());
    // --no-commit stages it only.
    env.ok(&["revert", "--no-commit", "HEAD"]);
    assert!(env.repo().join("feat.bin").exists());
    assert!(env.ok(&["status", "--porcelain"]).contains("A  feat.bin"));
}

#[test]
fn reset_soft_mixed_hard_and_paths() {
    let env = base_repo();
    let base = full(&env, "HEAD");
    env.write("media/photo.jpg", &media("scan.tiff"));
    env.write("new.bin", b"new");
    let second = commit_all(&env, "second");
    env.ok(&["reset", "--soft", &base]);
    assert_eq!(full(&env, "HEAD"), base);
    let st = env.ok(&["status", "--porcelain"]);
    assert!(
        st.contains("M  media/photo.jpg") && st.contains("A  new.bin"),
        "{st}"
    );
    env.ok(&["reset", &second]);
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
    env.ok(&["reset", &base]);
    let st = env.ok(&["status", "--porcelain"]);
    assert!(
        st.contains(" M media/photo.jpg") && st.contains("?? new.bin"),
        "{st}"
    );
    env.ok(&["add", "-A"]);
    env.ok(&["reset", "HEAD", "--", "media"]);
    let st = env.ok(&["status", "--porcelain"]);
    assert!(
        st.contains(" M media/photo.jpg") && st.contains("A  new.bin"),
        "{st}"
    );
    env.ok(&["reset", "--hard", &second]);
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
    env.ok(&["reset", "--hard", &base]);
    assert_eq!(env.read("media/photo.jpg"), media("photo.jpg"));
    assert!(!env.repo().join("new.bin").exists());
    let reflog = env.ok(&["reflog"]);
    assert!(reflog.contains("reset: moving to"), "{reflog}");
}

#[test]
fn restore_worktree_staged_and_from_a_source() {
    let env = base_repo();
    let base = full(&env, "HEAD");
    env.write("media/photo.jpg", &media("scan.tiff"));
    commit_all(&env, "second");
    env.write("media/photo.jpg", b"scribbled");
    env.ok(&["restore", "media/photo.jpg"]);
    assert_eq!(env.read("media/photo.jpg"), media("scan.tiff"));
    env.write("media/photo.jpg", b"scribbled");
    env.ok(&["add", "media/photo.jpg"]);
    env.ok(&["restore", "--staged", "media/photo.jpg"]);
    assert_eq!(env.read("media/photo.jpg"), b"scribbled");
    assert!(env
        .ok(&["status", "--porcelain"])
        .contains(" M media/photo.jpg"));
    env.ok(&[
        "restore",
        "--source",
        &base,
        "--staged",
        "--worktree",
        "media",
    ]);
    assert_eq!(env.read("media/photo.jpg"), media("photo.jpg"));
    assert!(env
        .ok(&["status", "--porcelain"])
        .contains("M  media/photo.jpg"));
    let e = env.fail(&["restore", "nothing/here"]);
    assert!(e.contains("nothing/here"), "{e}");
}

/// Kills `merge` at every write point; after each kill `merge --abort`
/// (when a merge is under way) brings back exactly the state before, or
/// the merge completed.
#[test]
fn a_merge_killed_at_every_write_point_can_be_aborted() {
    // Copies of a working tree would share one store's refs: local only.
    if test_store().is_some() {
        return;
    }
    for conflicting in [true, false] {
        let (env, main, _) = conflicted();
        if !conflicting {
            env.ok(&["config", "merge.theirs", "*.jpg"]);
        }
        env.write("media/tone.wav", b"local, uncommitted");
        let before = hashes(&env);
        let scratch = tempfile::tempdir().unwrap();
        let mut completed = false;
        for n in 1..200 {
            let dir = scratch.path().join(format!("k{n}"));
            let st = std::process::Command::new("cp")
                .arg("-a")
                .arg(env.repo())
                .arg(&dir)
                .status()
                .unwrap();
            assert!(st.success());
            let out = env
                .std_cmd_in(&dir, &["merge", "feat"])
                .env("MEDIAGIT_FAILPOINTS", format!("write@{n}"))
                .output()
                .unwrap();
            if out.status.signal() != Some(9) {
                completed = true;
                break;
            }
            let what = format!("conflicting={conflicting}, killed at write@{n}");
            if dir.join(".mediagit/operation").exists() {
                env.ok_in(&dir, &["merge", "--abort"]);
            }
            assert_eq!(tree_hashes(&dir), before, "{what}");
            let head = env.ok_in(&dir, &["log", "--json", "-n", "1"]);
            assert!(head.contains(&main), "{what}: {head}");
            env.ok_in(&dir, &["fsck"]);
            // And the merge runs again from there.
            let again = env.std_cmd_in(&dir, &["merge", "feat"]).output().unwrap();
            assert_eq!(
                again.status.code(),
                Some(if conflicting { 3 } else { 0 }),
                "{what}: {}",
                text(&again.stderr)
            );
            std::fs::remove_dir_all(&dir).ok();
        }
        assert!(completed);
        let _ = Path::new("");
    }
}

#[test]
fn stash_of_a_dirty_tree_with_large_files_survives_gc_and_comes_back() {
    let env = base_repo();
    let head = full(&env, "HEAD");
    let clean = hashes(&env);
    // Large edits, a staged new file, a deleted file.
    write_random(&env.repo().join("footage/a.bin"), 12_000_000, 9);
    write_random(&env.repo().join("footage/b.bin"), 8_000_000, 10);
    env.ok(&["add", "footage/b.bin"]);
    std::fs::remove_file(env.repo().join("media/tone.wav")).unwrap();
    let dirty = hashes(&env);
    let out = env.ok(&["stash", "push", "-m", "grading pass"]);
    assert!(out.contains("On main: grading pass"), "{out}");
    assert_eq!(hashes(&env), clean, "the working tree is back to HEAD");
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
    assert_eq!(
        env.ok(&["stash", "list"]),
        "stash@{0}: On main: grading pass\n"
    );
    let show = env.ok(&["stash", "show"]);
    assert!(show.contains("modified: footage/a.bin"), "{show}");
    assert!(show.contains("added:    footage/b.bin"), "{show}");
    assert!(show.contains("deleted:  media/tone.wav"), "{show}");
    // Stash entries are gc roots.
    env.ok(&["gc", "--prune=now"]);
    env.ok(&["fsck"]);
    // HEAD moves on meanwhile (another file): the stash still applies.
    env.write("other.txt", b"other");
    commit_all(&env, "other");
    env.ok(&["stash", "pop"]);
    let mut want = dirty.clone();
    want.insert("other.txt".into(), sha(b"other"));
    assert_eq!(hashes(&env), want);
    let st = env.ok(&["status", "--porcelain"]);
    assert!(
        st.contains(" M footage/a.bin") && st.contains("A  footage/b.bin"),
        "{st}"
    );
    assert!(env.ok(&["stash", "list"]).is_empty());
    let _ = head;
    let e = env.fail(&["stash", "pop"]);
    assert!(e.contains("no stash entry"), "{e}");
}

#[test]
fn stash_apply_refuses_conflicts_and_paths_stash_only_those() {
    let env = base_repo();
    env.write("media/photo.jpg", &media("scan.tiff"));
    env.write("media/clip.mp4", b"edited clip");
    env.ok(&["stash", "push", "-m", "photo only", "media/photo.jpg"]);
    assert_eq!(env.read("media/photo.jpg"), media("photo.jpg"));
    assert_eq!(
        env.read("media/clip.mp4"),
        b"edited clip",
        "outside the paths: kept"
    );
    env.ok(&["checkout", "--force", "HEAD"]);
    // HEAD changes the photo differently: applying would conflict.
    env.write("media/photo.jpg", &media("image.png"));
    commit_all(&env, "photo differently");
    let before = hashes(&env);
    let e = env.fail(&["stash", "apply"]);
    assert!(e.contains("conflicts with HEAD at media/photo.jpg"), "{e}");
    assert_eq!(hashes(&env), before);
    assert_eq!(env.ok(&["stash", "list"]).lines().count(), 1);
    env.ok(&["stash", "drop"]);
    assert!(env.ok(&["stash", "list"]).is_empty());
    assert_eq!(env.ok(&["stash"]), "No local changes to save\n");
}

/// Runs `args` in `dir` killed at write point `n`; whether it was killed.
fn killed_at(env: &Env, dir: &Path, args: &[&str], n: usize) -> bool {
    let out = env
        .std_cmd_in(dir, args)
        .env("MEDIAGIT_FAILPOINTS", format!("write@{n}"))
        .output()
        .unwrap();
    out.status.signal() == Some(9)
}

fn copy_repo(env: &Env, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(env.repo())
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_killed_merge_continue_is_finished_by_continue_and_a_killed_abort_only_aborts() {
    // Copies of a working tree would share one store's refs: local only.
    if test_store().is_some() {
        return;
    }
    let (env, main, feat) = conflicted();
    env.write("media/tone.wav", b"local, uncommitted");
    env.fail_with(3, &["merge", "feat"]);
    env.ok(&["resolve", "media/photo.jpg", "--theirs"]);
    let stopped = hashes(&env);
    let scratch = tempfile::tempdir().unwrap();
    for n in 1..100 {
        let dir = scratch.path().join(format!("c{n}"));
        copy_repo(&env, &dir);
        if !killed_at(&env, &dir, &["merge", "--continue"], n) {
            break;
        }
        // Whatever point it died at, --continue finishes the merge.
        if dir.join(".mediagit/operation").exists() {
            env.ok_in(&dir, &["merge", "--continue"]);
        }
        let head = env.ok_in(&dir, &["log", "--json", "-n", "1"]);
        assert!(
            head.contains(&main) && head.contains(&feat),
            "n={n}: {head}"
        );
        assert_eq!(tree_hashes(&dir), stopped, "n={n}");
        std::fs::remove_dir_all(&dir).ok();
    }
    // A killed --abort: --continue is refused, --abort finishes going back.
    let (env, main, _) = conflicted();
    env.write("media/tone.wav", b"local, uncommitted");
    let before = hashes(&env);
    env.fail_with(3, &["merge", "feat"]);
    env.ok(&["resolve", "media/photo.jpg", "--theirs"]);
    let resolved = hashes(&env);
    let mut points = 0;
    for n in 1..100 {
        let dir = scratch.path().join(format!("a{n}"));
        copy_repo(&env, &dir);
        if !killed_at(&env, &dir, &["merge", "--abort"], n) {
            break;
        }
        points += 1;
        if dir.join(".mediagit/operation").exists() {
            // Killed before the abort changed anything, --continue may
            // still commit the resolution as it stands; killed later, it
            // is refused and only --abort goes on.
            let out = env
                .std_cmd_in(&dir, &["merge", "--continue"])
                .output()
                .unwrap();
            if out.status.success() {
                assert_eq!(tree_hashes(&dir), resolved, "n={n}: continued intact");
                std::fs::remove_dir_all(&dir).ok();
                continue;
            }
            assert_eq!(out.status.code(), Some(1), "n={n}");
            env.ok_in(&dir, &["merge", "--abort"]);
        }
        assert_eq!(tree_hashes(&dir), before, "n={n}");
        let head = env.ok_in(&dir, &["log", "--json", "-n", "1"]);
        assert!(
            head.contains(&format!("\"id\":\"{main}\"")),
            "n={n}: {head}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
    assert!(points >= 2, "the abort has write points");
}

#[test]
fn a_file_against_a_directory_moves_the_file_aside_as_a_conflict() {
    let env = base_repo();
    env.ok(&["switch", "feat"]);
    env.write("x/inside.bin", b"theirs, in a directory");
    commit_all(&env, "feat: directory x");
    env.ok(&["switch", "main"]);
    env.write("x", &media("tone.wav"));
    commit_all(&env, "main: file x");
    let out = env.cmd(&["merge", "feat"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let s = text(&out.stdout);
    assert!(
        s.contains("CONFLICT (a file on one side, a directory on the other): x~ours"),
        "{s}"
    );
    assert_eq!(env.read("x~ours"), media("tone.wav"));
    assert_eq!(env.read("x/inside.bin"), b"theirs, in a directory");
    let st = env.ok(&["status"]);
    assert!(st.contains("file/directory: x~ours"), "{st}");
    env.ok(&["resolve", "x~ours", "--ours"]);
    env.ok(&["merge", "--continue"]);
    assert_eq!(
        env.read("x~ours"),
        media("tone.wav"),
        "our file is kept, renamed"
    );
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
}

#[test]
fn resolve_never_throws_away_a_hand_edit_and_abort_survives_a_lost_index_copy() {
    let (env, _, _) = conflicted();
    let before = hashes(&env);
    env.fail_with(3, &["merge", "feat"]);
    env.write("media/photo.jpg", b"MY HAND MERGE");
    let e = env.fail(&["resolve", "media/photo.jpg", "--both"]);
    assert!(e.contains("changes of your own"), "{e}");
    assert_eq!(env.read("media/photo.jpg"), b"MY HAND MERGE");
    // The copy of the index gone: --abort rebuilds it from HEAD's files.
    std::fs::remove_file(env.repo().join(".mediagit/operation-index")).unwrap();
    env.ok(&["merge", "--abort"]);
    assert_eq!(hashes(&env), before);
    assert!(env.ok(&["status", "--porcelain"]).is_empty());
}

#[test]
fn a_damaged_operation_file_is_cleared_by_reset_or_a_forced_switch() {
    for way in [["reset", "--hard"], ["switch", "--force"]] {
        let (env, _, _) = conflicted();
        env.fail_with(3, &["merge", "feat"]);
        std::fs::write(env.repo().join(".mediagit/operation"), b"garbage").unwrap();
        let e = env.fail(&["merge", "--continue"]);
        assert!(e.contains("is damaged"), "{e}");
        let mut args = way.to_vec();
        if way[0] == "switch" {
            args.push("main");
        }
        env.ok(&args);
        assert!(!env.repo().join(".mediagit/operation").exists(), "{way:?}");
        assert!(env.ok(&["status", "--porcelain"]).is_empty(), "{way:?}");
    }
}

#[test]
fn a_rebase_that_loses_the_branch_to_another_working_tree_can_be_aborted() {
    let env = Env::empty();
    let store = format!("file://{}", env.root().join("store").display());
    let a = env.root().join("a");
    env.ok_in(env.root(), &["init", "a", "--storage", &store]);
    std::fs::write(a.join("c.txt"), b"base").unwrap();
    std::fs::write(a.join("k.txt"), b"k").unwrap();
    env.ok_in(&a, &["add", "-A"]);
    env.ok_in(&a, &["commit", "-m", "base"]);
    env.ok_in(&a, &["switch", "-c", "feat"]);
    std::fs::write(a.join("c.txt"), b"theirs").unwrap();
    env.ok_in(&a, &["commit", "-a", "-m", "f1"]);
    std::fs::write(a.join("f2.txt"), b"f2").unwrap();
    env.ok_in(&a, &["add", "-A"]);
    env.ok_in(&a, &["commit", "-m", "f2"]);
    env.ok_in(&a, &["switch", "main"]);
    std::fs::write(a.join("c.txt"), b"ours").unwrap();
    env.ok_in(&a, &["commit", "-a", "-m", "m"]);
    env.ok_in(env.root(), &["clone", &store, "b"]);
    let b = env.root().join("b");
    env.ok_in(&a, &["switch", "feat"]);
    let feat = env.ok_in(&a, &["log", "--json", "-n", "1"]);
    std::fs::write(a.join("k.txt"), b"LOCAL").unwrap();
    let out = env.std_cmd_in(&a, &["rebase", "main"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    // Meanwhile the other working tree commits to feat.
    env.ok_in(&b, &["switch", "feat"]);
    std::fs::write(b.join("b.txt"), b"b").unwrap();
    env.ok_in(&b, &["add", "-A"]);
    env.ok_in(&b, &["commit", "-m", "from b"]);
    env.ok_in(&a, &["resolve", "c.txt", "--theirs"]);
    let out = env
        .std_cmd_in(&a, &["rebase", "--continue"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("rebase --abort") && !e.contains("nothing was updated"),
        "{e}"
    );
    env.ok_in(&a, &["rebase", "--abort"]);
    assert_eq!(
        std::fs::read(a.join("k.txt")).unwrap(),
        b"LOCAL",
        "local work kept"
    );
    assert_eq!(std::fs::read(a.join("c.txt")).unwrap(), b"theirs");
    assert!(!a.join("f2.txt").exists() || std::fs::read(a.join("f2.txt")).unwrap() == b"f2");
    let st = env.ok_in(&a, &["status"]);
    assert!(st.starts_with("On branch feat"), "{st}");
    let _ = feat;
}

#[test]
fn pull_in_a_shared_store_merges_the_stores_tip_into_local_work() {
    let env = Env::empty();
    let store = format!("file://{}", env.root().join("store").display());
    let a = env.root().join("a");
    env.ok_in(env.root(), &["init", "a", "--storage", &store]);
    copy_media(&a.join("media"));
    env.ok_in(&a, &["add", "-A"]);
    env.ok_in(&a, &["commit", "-m", "base"]);
    env.ok_in(env.root(), &["clone", &store, "b"]);
    let b = env.root().join("b");
    // b commits; a has uncommitted work on another file.
    std::fs::write(b.join("media/photo.jpg"), media("scan.tiff")).unwrap();
    env.ok_in(&b, &["commit", "-a", "-m", "b edits photo"]);
    std::fs::write(a.join("media/tone.wav"), b"a's local edit").unwrap();
    env.ok_in(&a, &["pull"]);
    assert_eq!(
        std::fs::read(a.join("media/photo.jpg")).unwrap(),
        media("scan.tiff")
    );
    assert_eq!(
        std::fs::read(a.join("media/tone.wav")).unwrap(),
        b"a's local edit"
    );
    assert!(env
        .ok_in(&a, &["status", "--porcelain"])
        .contains(" M media/tone.wav"));
    env.ok_in(&a, &["commit", "-a", "-m", "a's tone"]);
    // Local work that collides with the tip: kept in a stash entry, exit 3.
    std::fs::write(b.join("media/clip.mp4"), b"b's clip").unwrap();
    env.ok_in(&b, &["pull"]);
    std::fs::write(b.join("media/clip.mp4"), b"b's clip").unwrap();
    env.ok_in(&b, &["commit", "-a", "-m", "b's clip"]);
    std::fs::write(a.join("media/clip.mp4"), b"a's clip").unwrap();
    let out = env.std_cmd_in(&a, &["pull"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("stash@{0}"));
    assert_eq!(
        std::fs::read(a.join("media/clip.mp4")).unwrap(),
        b"b's clip"
    );
    let show = env.ok_in(&a, &["stash", "show"]);
    assert!(show.contains("media/clip.mp4"), "{show}");
}

/// Kills `args` at every write point; after each kill, `OP --abort` (when
/// the operation is under way) puts back HEAD and every file, local
/// changes included, and the command then runs again to the same stop.
fn kill_loop_aborts(env: &Env, op: &str, args: &[&str], expect_code: i32) {
    env.write("scratch-local.txt", b"untracked, mine");
    let before = hashes(env);
    let head = full(env, "HEAD");
    let scratch = tempfile::tempdir().unwrap();
    let mut points = 0;
    for n in 1..300 {
        let dir = scratch.path().join(format!("k{n}"));
        copy_repo(env, &dir);
        if !killed_at(env, &dir, args, n) {
            break;
        }
        points += 1;
        let what = format!("{args:?} killed at write@{n}");
        if dir.join(".mediagit/operation").exists() {
            env.ok_in(&dir, &[op, "--abort"]);
        }
        assert_eq!(tree_hashes(&dir), before, "{what}");
        let now = env.ok_in(&dir, &["log", "--json", "-n", "1"]);
        assert!(now.contains(&format!("\"id\":\"{head}\"")), "{what}: {now}");
        assert!(
            env.ok_in(&dir, &["status"]).starts_with("On branch"),
            "{what}"
        );
        env.ok_in(&dir, &["fsck"]);
        let again = env.std_cmd_in(&dir, args).output().unwrap();
        assert_eq!(
            again.status.code(),
            Some(expect_code),
            "{what}: {}",
            text(&again.stderr)
        );
        std::fs::remove_dir_all(&dir).ok();
    }
    assert!(points >= 3, "{args:?}: only {points} write points");
}

#[test]
fn a_rebase_or_cherry_pick_killed_at_every_write_point_can_be_aborted() {
    // Copies of a working tree would share one store's refs: local only.
    if test_store().is_some() {
        return;
    }
    let (env, _) = rebase_setup();
    kill_loop_aborts(&env, "rebase", &["rebase", "main"], 3);
    let (env, _, feat) = conflicted();
    env.ok(&["config", "merge.theirs", "*.jpg"]);
    kill_loop_aborts(&env, "cherry-pick", &["cherry-pick", &feat], 0);
}

#[test]
fn revert_stops_at_a_conflict_and_aborts() {
    let env = base_repo();
    env.write("media/photo.jpg", &media("scan.tiff"));
    let edit = commit_all(&env, "edit photo");
    env.write("media/photo.jpg", &media("image.png"));
    let later = commit_all(&env, "edit photo again");
    let before = hashes(&env);
    env.fail_with(3, &["revert", &edit]);
    assert!(env.ok(&["status"]).contains("You are reverting"));
    env.ok(&["revert", "--abort"]);
    assert_eq!(hashes(&env), before);
    assert_eq!(full(&env, "HEAD"), later);
    env.fail_with(3, &["revert", &edit]);
    env.ok(&["resolve", "media/photo.jpg", "--theirs"]);
    env.ok(&["revert", "--continue"]);
    assert_eq!(env.read("media/photo.jpg"), media("photo.jpg"));
    assert_eq!(summary(&env, "HEAD"), "Revert \"edit photo\"");
}

#[test]
fn a_stash_push_killed_at_every_write_point_loses_nothing() {
    // Copies of a working tree would share one store's refs: local only.
    if test_store().is_some() {
        return;
    }
    let env = base_repo();
    env.write("media/photo.jpg", &media("scan.tiff"));
    env.ok(&["add", "media/photo.jpg"]);
    env.write("media/photo.jpg", &media("image.png")); // staged one version, another in the tree
    env.write("media/tone.wav", b"unstaged edit");
    let before = hashes(&env);
    let status_before = env.ok(&["status", "--porcelain"]);
    let scratch = tempfile::tempdir().unwrap();
    let mut points = 0;
    for n in 1..300 {
        let dir = scratch.path().join(format!("s{n}"));
        copy_repo(&env, &dir);
        if !killed_at(&env, &dir, &["stash", "push"], n) {
            break;
        }
        points += 1;
        let list = env.ok_in(&dir, &["stash", "list"]);
        if list.is_empty() {
            // No entry yet: the index and the files are as they were.
            assert_eq!(tree_hashes(&dir), before, "n={n}");
            assert_eq!(
                env.ok_in(&dir, &["status", "--porcelain"]),
                status_before,
                "n={n}"
            );
        } else {
            // The entry holds the working tree's files.
            env.ok_in(&dir, &["reset", "--hard"]);
            env.ok_in(&dir, &["stash", "pop"]);
            assert_eq!(tree_hashes(&dir), before, "n={n}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    assert!(points >= 3, "{points}");
}

#[test]
fn a_killed_rebase_continue_can_always_be_aborted() {
    // Copies of a working tree would share one store's refs: local only.
    if test_store().is_some() {
        return;
    }
    let (env, _) = rebase_setup();
    env.write("scratch-local.txt", b"mine");
    let before = hashes(&env);
    let head = full(&env, "HEAD");
    env.fail_with(3, &["rebase", "main"]);
    env.ok(&["resolve", "media/photo.jpg", "--theirs"]);
    let scratch = tempfile::tempdir().unwrap();
    for n in 1..300 {
        let dir = scratch.path().join(format!("r{n}"));
        copy_repo(&env, &dir);
        if !killed_at(&env, &dir, &["rebase", "--continue"], n) {
            break;
        }
        if dir.join(".mediagit/operation").exists() {
            env.ok_in(&dir, &["rebase", "--abort"]);
            assert_eq!(tree_hashes(&dir), before, "n={n}");
            let now = env.ok_in(&dir, &["log", "--json", "-n", "1"]);
            assert!(now.contains(&format!("\"id\":\"{head}\"")), "n={n}");
        }
        assert!(
            env.ok_in(&dir, &["status"]).starts_with("On branch feat"),
            "n={n}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn stash_drop_keeps_a_damaged_line_and_pull_refused_puts_local_work_back() {
    let env = base_repo();
    for i in 0..3 {
        env.write("media/tone.wav", format!("edit {i}").as_bytes());
        env.ok(&["stash"]);
    }
    let log = env.repo().join(".mediagit/logs/refs%2Fstash");
    let log_text = std::fs::read_to_string(&log).unwrap();
    let damaged: Vec<String> = log_text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 1 {
                l.replacen("0000", "zzzz", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&log, damaged.join("\n") + "\n").unwrap();
    let out = env.cmd(&["stash", "list"]).output().unwrap();
    assert!(
        text(&out.stderr).contains("do not read"),
        "{}",
        text(&out.stderr)
    );
    env.ok(&["stash", "drop"]);
    let after = std::fs::read_to_string(&log).unwrap();
    assert!(
        after.contains(&damaged[1]),
        "the damaged line stays: {after}"
    );
    assert_eq!(after.lines().count(), 2);

    // A shared store's pull refused by an untracked file changes nothing.
    let env = Env::empty();
    let store = format!("file://{}", env.root().join("store").display());
    let a = env.root().join("a");
    env.ok_in(env.root(), &["init", "a", "--storage", &store]);
    std::fs::write(a.join("b.txt"), b"b").unwrap();
    env.ok_in(&a, &["add", "-A"]);
    env.ok_in(&a, &["commit", "-m", "base"]);
    env.ok_in(env.root(), &["clone", &store, "b"]);
    let b = env.root().join("b");
    let out = env.std_cmd_in(&b, &["pull"]).output().unwrap();
    assert!(out.status.success() && text(&out.stderr).contains("Already up to date"));
    std::fs::write(a.join("c2.txt"), b"theirs").unwrap();
    env.ok_in(&a, &["add", "-A"]);
    env.ok_in(&a, &["commit", "-m", "c2"]);
    std::fs::write(b.join("b.txt"), b"local edit").unwrap();
    std::fs::write(b.join("c2.txt"), b"MINE").unwrap();
    let out = env.std_cmd_in(&b, &["pull"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("c2.txt"));
    assert_eq!(std::fs::read(b.join("b.txt")).unwrap(), b"local edit");
    assert_eq!(std::fs::read(b.join("c2.txt")).unwrap(), b"MINE");
    assert!(env.ok_in(&b, &["stash", "list"]).is_empty());
}

#[test]
fn a_tracked_symlink_against_a_directory_never_looks_behind_the_link() {
    let env = base_repo();
    let outside = env.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("f"), b"outside, not ours").unwrap();
    env.ok(&["switch", "feat"]);
    env.write("x/f", b"theirs");
    commit_all(&env, "feat: directory x");
    env.ok(&["switch", "main"]);
    std::os::unix::fs::symlink(&outside, env.repo().join("x")).unwrap();
    commit_all(&env, "main: x is a link");
    let out = env.cmd(&["merge", "feat"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("x~ours"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        std::fs::read(outside.join("f")).unwrap(),
        b"outside, not ours"
    );
    assert_eq!(env.read("x/f"), b"theirs");
    assert!(std::fs::symlink_metadata(env.repo().join("x~ours"))
        .unwrap()
        .file_type()
        .is_symlink());
    env.ok(&["merge", "--abort"]);
    assert!(std::fs::symlink_metadata(env.repo().join("x"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read(outside.join("f")).unwrap(),
        b"outside, not ours"
    );
}

#[test]
fn log_never_prints_a_parent_before_its_children_of_the_same_second() {
    let env = base_repo();
    let base = full(&env, "HEAD");
    env.ok(&["switch", "feat"]);
    env.write("f.txt", b"f");
    let f = commit_all(&env, "f");
    env.ok(&["switch", "main"]);
    env.write("m.txt", b"m");
    let m = commit_all(&env, "m");
    env.ok(&["merge", "feat"]);
    let ids: Vec<String> = commits(&env, "HEAD", 10)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let pos = |x: &str| ids.iter().position(|i| i == x).unwrap();
    assert!(pos(&base) > pos(&f) && pos(&base) > pos(&m), "{ids:?}");
}

#[test]
fn gc_keeps_what_a_stopped_merge_needs() {
    let (env, _, feat) = conflicted();
    // feat is reachable from nothing but the merge under way.
    env.ok(&["branch", "delete", "-D", "feat"]);
    env.ok(&["reflog", "expire", "--expire=2099-01-01"]);
    env.fail_with(3, &["merge", &feat]);
    // (Every pack with garbage rewritten.)
    env.ok(&["gc", "--prune=now", "--max-unused", "0"]);
    env.ok(&["resolve", "media/photo.jpg", "--theirs"]);
    env.ok(&["merge", "--continue"]);
    env.ok(&["fsck"]);
    assert_eq!(parents(&env, "HEAD")[1], feat);
    assert_eq!(env.read("feat-only.txt"), b"from feat\n");
}

#[test]
fn a_staged_version_is_never_dropped_by_stash_pop_or_pull() {
    let env = base_repo();
    env.write("media/photo.jpg", &media("scan.tiff"));
    env.ok(&["add", "media/photo.jpg"]);
    env.write("media/photo.jpg", &media("photo.jpg")); // staged differs from the file
    env.ok(&["stash"]);
    let out = env.ok(&["stash", "pop"]);
    assert!(out.contains("and kept it"), "{out}");
    assert_eq!(
        env.ok(&["stash", "list"]).lines().count(),
        1,
        "the entry stays"
    );
    let show = env.ok(&["stash", "show"]);
    assert!(
        show.contains("media/photo.jpg") || show.is_empty() || show.contains("stash@{0}"),
        "{show}"
    );

    // A shared store's pull refuses, changing nothing, where a staged
    // version differs from the working tree's file.
    let env = Env::empty();
    let store = format!("file://{}", env.root().join("store").display());
    let a = env.root().join("a");
    env.ok_in(env.root(), &["init", "a", "--storage", &store]);
    std::fs::write(a.join("f"), b"f1").unwrap();
    env.ok_in(&a, &["add", "-A"]);
    env.ok_in(&a, &["commit", "-m", "one"]);
    env.ok_in(env.root(), &["clone", &store, "b"]);
    let b = env.root().join("b");
    std::fs::write(a.join("u"), b"theirs").unwrap();
    env.ok_in(&a, &["add", "-A"]);
    env.ok_in(&a, &["commit", "-m", "u"]);
    std::fs::write(b.join("f"), b"STAGED").unwrap();
    env.ok_in(&b, &["add", "f"]);
    std::fs::write(b.join("f"), b"WORKTREE").unwrap();
    let before = env.ok_in(&b, &["status", "--porcelain"]);
    let out = env.std_cmd_in(&b, &["pull"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("staged version"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.ok_in(&b, &["status", "--porcelain"]), before);
    assert!(env.ok_in(&b, &["stash", "list"]).is_empty());
    assert!(!b.join("u").exists());
}

#[test]
fn a_later_write_removes_the_temporary_files_a_killed_one_left() {
    let env = base_repo();
    let before = hashes(&env);
    // As a command killed while writing photo.jpg and tone.wav leaves them.
    env.write("media/.photo.jpg.mediagit-tmp-AbC123", b"half a photo");
    env.write(".top.bin.mediagit-tmp-Zz9", b"half");
    env.write("media/.notes", b"the user's own");
    env.write("media/photo.jpg", b"edited");
    env.ok(&["reset", "--hard"]);
    let mut after = hashes(&env);
    assert_eq!(after.remove("media/.notes"), Some(sha(b"the user's own")));
    // The top directory held no file the reset wrote: its leftover stays
    // until a command writes there.
    assert!(after.remove(".top.bin.mediagit-tmp-Zz9").is_some());
    assert_eq!(after, before);
}
