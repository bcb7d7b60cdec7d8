//! Reading history: log (formats, limits, --stat, path filters), show, diff
//! (index, working tree, revisions, paths), rename detection, revision
//! syntax, reflog, ls-tree and cat of older versions.
mod common;
use common::*;

use std::fs;
use std::path::Path;

// ---------------------------------------------------------------- helpers

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs in `dir`, asserts success, returns stdout.
fn ok_in(env: &Env, dir: &Path, args: &[&str]) -> String {
    let out = env.cmd_in(dir, args).output().expect("run mediagit");
    assert!(
        out.status.success(),
        "mediagit {args:?} in {} failed ({}):\nstdout: {}\nstderr: {}",
        dir.display(),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Stages everything and commits; returns the full id of the new commit.
fn commit_all(env: &Env, msg: &str) -> String {
    env.ok(&["add", "-A"]);
    let out = env.ok(&["commit", "-m", msg]);
    let id = full_id(env, "HEAD");
    let summary = msg.lines().next().unwrap();
    assert!(
        out.ends_with(&format!(" {}] {summary}\n", &id[..12])),
        "commit prints the short id and summary: {out}"
    );
    id
}

/// The full (64 hex) id of a revision, from the default `log` format.
fn full_id(env: &Env, rev: &str) -> String {
    let out = env.ok(&["log", "-n", "1", rev]);
    let first = out.lines().next().expect("a commit line");
    let id = first
        .strip_prefix("commit ")
        .unwrap_or_else(|| panic!("log starts with `commit `: {out}"))
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(is_hex(&id, 64), "{first}");
    id
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

fn size(env: &Env, rel: &str) -> u64 {
    fs::metadata(env.repo().join(rel)).unwrap().len()
}

/// `Mon Nov 23 13:45:04 2026 +0100` (day may be space-padded).
fn assert_git_date(s: &str) {
    let t: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(t.len(), 6, "date {s:?}");
    assert!(
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&t[0]),
        "{s:?}"
    );
    assert!(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            .contains(&t[1]),
        "{s:?}"
    );
    let day: u32 = t[2].parse().unwrap();
    assert!((1..=31).contains(&day), "{s:?}");
    let hms: Vec<&str> = t[3].split(':').collect();
    assert!(
        hms.len() == 3 && hms.iter().all(|x| x.len() == 2 && x.parse::<u32>().is_ok()),
        "{s:?}"
    );
    assert!(t[4].len() == 4 && t[4].parse::<u32>().is_ok(), "{s:?}");
    assert!(
        t[5].len() == 5 && (t[5].starts_with('+') || t[5].starts_with('-')),
        "{s:?}"
    );
}

/// One parsed `reflog` line: `ID SEL: YYYY-MM-DD HH:MM:SS +ZZZZ MESSAGE`.
fn reflog_lines(out: &str) -> Vec<(String, String, String)> {
    out.lines()
        .map(|l| {
            let p: Vec<&str> = l.splitn(6, ' ').collect();
            assert_eq!(p.len(), 6, "reflog line {l:?}");
            assert!(is_hex(p[0], 12), "{l:?}");
            let d: Vec<&str> = p[2].split('-').collect();
            assert!(d.len() == 3 && d[0].len() == 4, "{l:?}");
            assert_eq!(p[3].len(), 8, "{l:?}");
            assert_eq!(p[4].len(), 5, "{l:?}");
            (p[0].to_string(), p[1].to_string(), p[5].to_string())
        })
        .collect()
}

// ---------------------------------------------------------------- log

#[test]
fn log_default_format_with_decorations() {
    let env = Env::new();
    env.write("a.txt", b"one\n");
    let c1 = commit_all(&env, "first commit\n\nA body line.\nAnother line.");
    env.write("b.txt", b"two\n");
    let c2 = commit_all(&env, "second");
    env.write("a.txt", b"three\n");
    let c3 = commit_all(&env, "third");
    env.ok(&["tag", "v1"]);
    env.ok(&["tag", "v0", "HEAD~2", "-m", "the beginning"]);
    env.ok(&["branch", "create", "feature", "HEAD~1"]);

    let out = env.ok(&["log"]);
    let lines: Vec<&str> = out.lines().collect();
    // 3 commits; each: commit, Author, Date, blank, message lines, blank.
    let expected_heads = [
        format!("commit {c3} (HEAD -> main, tag: v1)"),
        format!("commit {c2} (feature)"),
        format!("commit {c1} (tag: v0)"),
    ];
    let messages: [&[&str]; 3] = [
        &["    third"],
        &["    second"],
        &[
            "    first commit",
            "    ",
            "    A body line.",
            "    Another line.",
        ],
    ];
    let mut i = 0;
    for (head, msg) in expected_heads.iter().zip(messages) {
        assert_eq!(lines[i], head, "{out}");
        assert_eq!(
            lines[i + 1],
            "Author: Test User <test@example.com>",
            "{out}"
        );
        let date = lines[i + 2].strip_prefix("Date:   ").expect("Date line");
        assert_git_date(date);
        assert_eq!(lines[i + 3], "", "{out}");
        for (k, m) in msg.iter().enumerate() {
            assert_eq!(lines[i + 4 + k].trim_end(), m.trim_end(), "{out}");
        }
        assert_eq!(lines[i + 4 + msg.len()], "", "{out}");
        i += 5 + msg.len();
    }
    assert_eq!(i, lines.len(), "nothing after the last commit: {out}");

    // Detached HEAD is decorated as plain HEAD.
    env.ok(&["checkout", "HEAD~1"]);
    let out = env.ok(&["log", "-n", "1"]);
    assert_eq!(
        out.lines().next().unwrap(),
        format!("commit {c2} (HEAD, feature)")
    );
    let out = env.ok(&["log", "--oneline", "main"]);
    assert_eq!(
        out,
        format!(
            "{} (main, tag: v1) third\n{} (HEAD, feature) second\n{} (tag: v0) first commit\n",
            &c3[..12],
            &c2[..12],
            &c1[..12]
        )
    );
}

#[test]
fn log_oneline_and_limits() {
    let env = Env::new();
    let mut ids = Vec::new();
    for i in 1..=4 {
        env.write("f.txt", format!("version {i}\n").as_bytes());
        ids.push(commit_all(&env, &format!("m{i}\n\nbody {i}")));
    }
    let line = |i: usize| {
        let deco = if i == 3 { " (HEAD -> main)" } else { "" };
        format!("{}{deco} m{}\n", &ids[i][..12], i + 1)
    };
    let all: String = (0..4).rev().map(line).collect();
    assert_eq!(env.ok(&["log", "--oneline"]), all);
    assert_eq!(env.ok(&["log", "--oneline", "-n", "10"]), all);
    let two: String = [line(3), line(2)].concat();
    assert_eq!(env.ok(&["log", "--oneline", "-n", "2"]), two);
    assert_eq!(env.ok(&["log", "--oneline", "-2"]), two);
    assert_eq!(env.ok(&["log", "-2", "--oneline"]), two);
    assert_eq!(env.ok(&["log", "--oneline", "--max-count", "2"]), two);
    assert_eq!(env.ok(&["log", "--oneline", "-1", "HEAD~2"]), line(1));
    assert_eq!(env.ok(&["log", "--oneline", "-n", "0"]), "");

    // -N also limits the default format: exactly N `commit` headers.
    let out = env.ok(&["log", "-3"]);
    let heads: Vec<&str> = out.lines().filter(|l| l.starts_with("commit ")).collect();
    assert_eq!(
        heads,
        [
            format!("commit {} (HEAD -> main)", ids[3]),
            format!("commit {}", ids[2]),
            format!("commit {}", ids[1]),
        ]
    );
    assert!(out.contains("    body 2\n"), "{out}");
    assert!(!out.contains("m1"), "{out}");
}

#[test]
fn log_stat_lists_files_with_sizes_and_summary() {
    let env = Env::new();
    env.write("a.bin", &[1u8; 1000]);
    env.write("d/b.bin", &[2u8; 2048]);
    env.write("c.txt", b"hello\n");
    env.write("keep.txt", b"kept\n");
    let c1 = commit_all(&env, "one");
    env.write("a.bin", &[3u8; 1536]);
    fs::remove_file(env.repo().join("c.txt")).unwrap();
    fs::create_dir_all(env.repo().join("e")).unwrap();
    fs::rename(env.repo().join("d/b.bin"), env.repo().join("e/b.bin")).unwrap();
    env.write("new.txt", b"0123456789");
    let c2 = commit_all(&env, "two");

    let out = env.ok(&["log", "--stat"]);
    let expected = format!(
        "commit {c2} (HEAD -> main)\n\
         Author: Test User <test@example.com>\n\
         DATE\n\
         \n    two\n\n \
         a.bin              | 1000 B -> 1.5 KiB\n \
         c.txt              | deleted 6 B\n \
         d/b.bin => e/b.bin | renamed 2.0 KiB\n \
         new.txt            | added 10 B\n \
         4 files changed: 1 added, 1 modified, 1 deleted, 1 renamed\n\
         \n\
         commit {c1}\n\
         Author: Test User <test@example.com>\n\
         DATE\n\
         \n    one\n\n \
         a.bin    | added 1000 B\n \
         c.txt    | added 6 B\n \
         d/b.bin  | added 2.0 KiB\n \
         keep.txt | added 5 B\n \
         4 files changed: 4 added, 0 modified, 0 deleted, 0 renamed\n\
         \n"
    );
    let masked: String = out
        .lines()
        .map(|l| {
            if let Some(d) = l.strip_prefix("Date:   ") {
                assert_git_date(d);
                "DATE\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_eq!(masked, expected);

    // With --oneline: the stat follows each one-line header.
    let out = env.ok(&["log", "--oneline", "--stat", "-1"]);
    assert_eq!(
        out,
        format!(
            "{} (HEAD -> main) two\n \
             a.bin              | 1000 B -> 1.5 KiB\n \
             c.txt              | deleted 6 B\n \
             d/b.bin => e/b.bin | renamed 2.0 KiB\n \
             new.txt            | added 10 B\n \
             4 files changed: 1 added, 1 modified, 1 deleted, 1 renamed\n\n",
            &c2[..12]
        )
    );
    // One file: singular "file".
    env.write("keep.txt", b"kept!\n");
    commit_all(&env, "three");
    let out = env.ok(&["log", "--oneline", "--stat", "-1"]);
    assert!(
        out.ends_with(
            " keep.txt | 5 B -> 6 B\n 1 file changed: 0 added, 1 modified, 0 deleted, 0 renamed\n\n"
        ),
        "{out}"
    );
}

#[test]
fn log_path_filter_lists_only_commits_touching_path() {
    let env = Env::new();
    env.write("a.txt", b"a1\n");
    env.write("d/x.txt", b"x1\n");
    env.write("other.txt", b"o1\n");
    let c1 = commit_all(&env, "c1 add a, d/x, other");
    env.write("a.txt", b"a2\n");
    let c2 = commit_all(&env, "c2 edit a");
    env.write("d/x.txt", b"x2\n");
    let c3 = commit_all(&env, "c3 edit d/x");
    env.write("d/sub/y.txt", b"y1\n");
    let c4 = commit_all(&env, "c4 add d/sub/y");
    env.write("other.txt", b"o2\n");
    let c5 = commit_all(&env, "c5 edit other");
    fs::remove_file(env.repo().join("a.txt")).unwrap();
    let c6 = commit_all(&env, "c6 delete a");

    let ids = |out: String| -> Vec<String> {
        out.lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    let short = |v: &[&String]| -> Vec<String> { v.iter().map(|s| s[..12].to_string()).collect() };

    // A file, also after it was deleted.
    assert_eq!(
        ids(env.ok(&["log", "--oneline", "--", "a.txt"])),
        short(&[&c6, &c2, &c1])
    );
    // A directory: any change below it.
    assert_eq!(
        ids(env.ok(&["log", "--oneline", "--", "d"])),
        short(&[&c4, &c3, &c1])
    );
    assert_eq!(
        ids(env.ok(&["log", "--oneline", "--", "d/"])),
        short(&[&c4, &c3, &c1])
    );
    assert_eq!(
        ids(env.ok(&["log", "--oneline", "--", "d/sub"])),
        short(&[&c4])
    );
    // Several paths: the union.
    assert_eq!(
        ids(env.ok(&["log", "--oneline", "--", "d/sub", "other.txt"])),
        short(&[&c5, &c4, &c1])
    );
    // With a starting revision and a limit.
    assert_eq!(
        ids(env.ok(&["log", "--oneline", "HEAD~3", "--", "d"])),
        short(&[&c3, &c1])
    );
    assert_eq!(
        ids(env.ok(&["log", "--oneline", "-n", "1", "--", "d"])),
        short(&[&c4])
    );
    // A path nothing touched: no commits.
    assert_eq!(env.ok(&["log", "--oneline", "--", "nope.txt"]), "");
    // Relative to the current directory.
    let sub = env.repo().join("d");
    assert_eq!(
        ids(ok_in(&env, &sub, &["log", "--oneline", "--", "x.txt"])),
        short(&[&c3, &c1])
    );
    // The default format filters the same way.
    let out = env.ok(&["log", "--", "d/sub"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("commit ")).count(),
        1,
        "{out}"
    );
    assert!(out.starts_with(&format!("commit {c4}\n")), "{out}");
}

#[test]
fn log_from_a_revision() {
    let env = Env::new();
    env.write("a.txt", b"1");
    let c1 = commit_all(&env, "one");
    env.write("a.txt", b"2");
    let c2 = commit_all(&env, "two");
    env.ok(&["switch", "-c", "feature"]);
    env.write("f.txt", b"f");
    let c3 = commit_all(&env, "on feature");
    env.ok(&["switch", "main"]);
    env.write("a.txt", b"3");
    let c4 = commit_all(&env, "three");

    let ids = |out: String| -> Vec<String> {
        out.lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    let s = |x: &String| x[..12].to_string();
    assert_eq!(ids(env.ok(&["log", "--oneline"])), [s(&c4), s(&c2), s(&c1)]);
    assert_eq!(
        ids(env.ok(&["log", "--oneline", "feature"])),
        [s(&c3), s(&c2), s(&c1)]
    );
    assert_eq!(
        env.ok(&["log", "--oneline", "feature"])
            .lines()
            .next()
            .unwrap(),
        format!("{} (feature) on feature", s(&c3))
    );
    assert_eq!(
        ids(env.ok(&["log", "--oneline", "main~1"])),
        [s(&c2), s(&c1)]
    );
    assert_eq!(ids(env.ok(&["log", "--oneline", &c1])), [s(&c1)]);

    let err = env.fail(&["log", "nope"]);
    assert!(err.contains("unknown revision \"nope\""), "{err}");
    // Two revisions: refused (a usage error), naming the extra argument.
    let out = env.cmd(&["log", "main", "feature"]).output().unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("feature"), "{err}");
    assert!(out.stdout.is_empty());
}

// ---------------------------------------------------------------- show

#[test]
fn show_head_revision_and_annotated_tag() {
    let env = Env::new();
    copy_media(&env.repo().join("media"));
    fs::remove_file(env.repo().join("media/scan.tiff")).unwrap();
    fs::remove_file(env.repo().join("media/layers.psd")).unwrap();
    fs::remove_file(env.repo().join("media/image.png")).unwrap();
    let clip1 = size(&env, "media/clip.mp4");
    let wav = size(&env, "media/tone.wav");
    let flac = size(&env, "media/tone.flac");
    let jpg = size(&env, "media/photo.jpg");
    let c1 = commit_all(&env, "import media");

    let mut clip = env.read("media/clip.mp4");
    clip.extend_from_slice(&[9u8; 4096]);
    env.write("media/clip.mp4", &clip);
    fs::remove_file(env.repo().join("media/tone.wav")).unwrap();
    env.write("notes.txt", b"cut at 00:01\n");
    fs::create_dir_all(env.repo().join("pics")).unwrap();
    fs::rename(
        env.repo().join("media/photo.jpg"),
        env.repo().join("pics/photo.jpg"),
    )
    .unwrap();
    let c2 = commit_all(&env, "edit\n\nlonger description");

    let body2 = format!(
        "modified: media/clip.mp4 ({} -> {})\n\
         deleted:  media/tone.wav ({})\n\
         added:    notes.txt (13 B)\n\
         renamed:  media/photo.jpg -> pics/photo.jpg ({})\n",
        human_size(clip1),
        human_size(clip1 + 4096),
        human_size(wav),
        human_size(jpg)
    );
    let show = env.ok(&["show"]);
    let lines: Vec<&str> = show.lines().collect();
    assert_eq!(lines[0], format!("commit {c2} (HEAD -> main)"));
    assert_eq!(lines[1], "Author: Test User <test@example.com>");
    assert_git_date(lines[2].strip_prefix("Date:   ").unwrap());
    assert_eq!(
        &lines[3..7],
        ["", "    edit", "    ", "    longer description"]
    );
    assert_eq!(lines[7], "");
    let rest: String = lines[8..].iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(rest, body2, "{show}");
    assert_eq!(env.ok(&["show", "HEAD"]), show);
    assert_eq!(env.ok(&["show", "main"]), show);
    assert_eq!(env.ok(&["show", &c2[..10]]), show);

    // An older revision: everything was added.
    let show1 = env.ok(&["show", "HEAD~1"]);
    assert!(show1.starts_with(&format!("commit {c1}\n")), "{show1}");
    assert!(
        show1.ends_with(&format!(
            "    import media\n\n\
             added:    media/clip.mp4 ({})\n          video 320x240 H.264 2.0 s\n\
             added:    media/photo.jpg ({})\n          image 640x480 TestCam\n\
             added:    media/tone.flac ({})\n          audio 44.1 kHz 2 ch 2.0 s\n\
             added:    media/tone.wav ({})\n          audio 44.1 kHz 2 ch 2.0 s\n",
            human_size(clip1),
            human_size(jpg),
            human_size(flac),
            human_size(wav)
        )),
        "{show1}"
    );

    // An annotated tag: its header first, then the commit it names.
    env.ok(&["tag", "rel1", "HEAD~1", "-m", "Release one\n\nNotes here."]);
    let out = env.ok(&["show", "rel1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "tag rel1");
    assert_eq!(lines[1], "Tagger: Test User <test@example.com>");
    assert_git_date(lines[2].strip_prefix("Date:   ").unwrap());
    assert_eq!(&lines[3..8], ["", "Release one", "", "Notes here.", ""]);
    assert_eq!(lines[8], format!("commit {c1} (tag: rel1)"));
    assert!(out.ends_with(&show1[show1.find('\n').unwrap()..]), "{out}");

    // A lightweight tag shows only the commit.
    env.ok(&["tag", "light"]);
    let out = env.ok(&["show", "light"]);
    assert_eq!(
        out.lines().next().unwrap(),
        format!("commit {c2} (HEAD -> main, tag: light)")
    );

    let err = env.fail(&["show", "nope"]);
    assert!(err.contains("unknown revision \"nope\""), "{err}");
}

// ---------------------------------------------------------------- diff

#[test]
fn diff_index_worktree_and_revisions() {
    let env = Env::new();
    env.write("a.txt", &[b'a'; 100]);
    env.write("b.bin", &[b'b'; 2000]);
    env.write("d/c.txt", b"ccc\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.write("a.txt", &[b'A'; 200]);
    env.write("e.txt", b"eeeee");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "two"]);

    // Nothing changed yet.
    assert_eq!(env.ok(&["diff"]), "");
    assert_eq!(env.ok(&["diff", "--cached"]), "");
    assert_eq!(env.ok(&["diff", "--stat"]), "");

    env.write("b.bin", &[b'B'; 3000]);
    env.ok(&["add", "b.bin"]); // staged
    env.write("d/c.txt", b"changed\n"); // unstaged
    fs::remove_file(env.repo().join("e.txt")).unwrap(); // unstaged deletion
    env.write("untracked.txt", b"u"); // never in a diff

    // Index vs working tree.
    assert_eq!(
        env.ok(&["diff"]),
        "modified: d/c.txt (4 B -> 8 B)\ndeleted:  e.txt (5 B)\n"
    );
    // HEAD vs index.
    assert_eq!(
        env.ok(&["diff", "--cached"]),
        "modified: b.bin (2.0 KiB -> 2.9 KiB)\n"
    );
    assert_eq!(env.ok(&["diff", "--staged"]), env.ok(&["diff", "--cached"]));
    // A revision vs the working tree.
    assert_eq!(
        env.ok(&["diff", "HEAD"]),
        "modified: b.bin (2.0 KiB -> 2.9 KiB)\n\
         modified: d/c.txt (4 B -> 8 B)\n\
         deleted:  e.txt (5 B)\n"
    );
    assert_eq!(
        env.ok(&["diff", "HEAD~1"]),
        "modified: a.txt (100 B -> 200 B)\n\
         modified: b.bin (2.0 KiB -> 2.9 KiB)\n\
         modified: d/c.txt (4 B -> 8 B)\n"
    );
    // A revision vs the index.
    assert_eq!(
        env.ok(&["diff", "--cached", "HEAD~1"]),
        "modified: a.txt (100 B -> 200 B)\n\
         modified: b.bin (2.0 KiB -> 2.9 KiB)\n\
         added:    e.txt (5 B)\n"
    );
    // Two revisions, both ways.
    assert_eq!(
        env.ok(&["diff", "HEAD~1", "HEAD"]),
        "modified: a.txt (100 B -> 200 B)\nadded:    e.txt (5 B)\n"
    );
    assert_eq!(
        env.ok(&["diff", "HEAD", "HEAD~1"]),
        "modified: a.txt (200 B -> 100 B)\ndeleted:  e.txt (5 B)\n"
    );
    assert_eq!(env.ok(&["diff", "HEAD", "main"]), "");
    // --stat.
    assert_eq!(
        env.ok(&["diff", "--stat", "HEAD~1", "HEAD"]),
        " a.txt | 100 B -> 200 B\n e.txt | added 5 B\n \
         2 files changed: 1 added, 1 modified, 0 deleted, 0 renamed\n"
    );
    assert_eq!(
        env.ok(&["diff", "--stat"]),
        " d/c.txt | 4 B -> 8 B\n e.txt   | deleted 5 B\n \
         2 files changed: 0 added, 1 modified, 1 deleted, 0 renamed\n"
    );
    assert_eq!(env.ok(&["diff", "--stat", "HEAD", "HEAD"]), "");
    // Limited to paths.
    assert_eq!(
        env.ok(&["diff", "HEAD~1", "HEAD", "--", "a.txt"]),
        "modified: a.txt (100 B -> 200 B)\n"
    );
    assert_eq!(env.ok(&["diff", "HEAD~1", "HEAD", "--", "d"]), "");
    assert_eq!(
        env.ok(&["diff", "HEAD~1", "HEAD", "--", "e.txt", "d"]),
        "added:    e.txt (5 B)\n"
    );
    assert_eq!(
        env.ok(&["diff", "--", "d"]),
        "modified: d/c.txt (4 B -> 8 B)\n"
    );
    assert_eq!(
        env.ok(&["diff", "HEAD", "--", "b.bin"]),
        "modified: b.bin (2.0 KiB -> 2.9 KiB)\n"
    );
    assert_eq!(
        ok_in(&env, &env.repo().join("d"), &["diff", "--", "c.txt"]),
        "modified: d/c.txt (4 B -> 8 B)\n"
    );

    // Errors name the problem.
    let err = env.fail(&["diff", "nope"]);
    assert!(err.contains("unknown revision \"nope\""), "{err}");
    let err = env.fail_with(2, &["diff", "HEAD", "HEAD~1", "main"]);
    assert!(err.contains("at most two revisions"), "{err}");
    let err = env.fail_with(2, &["diff", "--cached", "HEAD", "HEAD~1"]);
    assert!(err.contains("at most two revisions"), "{err}");
}

#[test]
fn diff_cached_before_the_first_commit() {
    let env = Env::new();
    env.write("a.txt", b"a\n");
    env.write("d/b.bin", &[7u8; 3000]);
    env.ok(&["add", "-A"]);
    // No HEAD yet: everything staged is new.
    assert_eq!(
        env.ok(&["diff", "--cached"]),
        "added:    a.txt (2 B)\nadded:    d/b.bin (2.9 KiB)\n"
    );
    assert_eq!(
        env.ok(&["diff", "--cached", "--stat"]),
        " a.txt   | added 2 B\n d/b.bin | added 2.9 KiB\n \
         2 files changed: 2 added, 0 modified, 0 deleted, 0 renamed\n"
    );
    assert_eq!(env.ok(&["diff"]), "");
    env.write("a.txt", b"ab\n");
    assert_eq!(env.ok(&["diff"]), "modified: a.txt (2 B -> 3 B)\n");
}

#[test]
fn show_and_stat_report_mode_changes() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.write("run.sh", b"#!/bin/sh\n");
    commit_all(&env, "script");
    fs::set_permissions(env.repo().join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(env.ok(&["diff"]), "mode:     run.sh (100644 -> 100755)\n");
    commit_all(&env, "make executable");
    let show = env.ok(&["show"]);
    assert!(
        show.ends_with("    make executable\n\nmode:     run.sh (100644 -> 100755)\n"),
        "{show}"
    );
    assert_eq!(
        env.ok(&["diff", "HEAD~1", "HEAD"]),
        "mode:     run.sh (100644 -> 100755)\n"
    );
    assert_eq!(
        env.ok(&["log", "--oneline", "--", "run.sh"])
            .lines()
            .count(),
        2
    );
}

#[test]
fn rename_detected_by_content_id() {
    let env = Env::new();
    copy_media(&env.repo().join("raw"));
    env.write("raw/empty.dat", b"");
    let clip = size(&env, "raw/clip.mp4");
    let flac = size(&env, "raw/tone.flac");
    let clip_sha = sha256_file(&env.repo().join("raw/clip.mp4"));
    commit_all(&env, "import");

    // Moved outside mediagit, then staged with add -A.
    fs::create_dir_all(env.repo().join("edit/final")).unwrap();
    fs::rename(
        env.repo().join("raw/clip.mp4"),
        env.repo().join("edit/final/clip.mp4"),
    )
    .unwrap();
    fs::rename(
        env.repo().join("raw/tone.flac"),
        env.repo().join("audio.flac"),
    )
    .unwrap();
    // An empty file is never a rename (all empty files share one id).
    fs::rename(
        env.repo().join("raw/empty.dat"),
        env.repo().join("edit/empty.dat"),
    )
    .unwrap();
    // Moved and changed: not a rename.
    let mut png = env.read("raw/image.png");
    png.push(0);
    fs::remove_file(env.repo().join("raw/image.png")).unwrap();
    env.write("edit/image.png", &png);

    let expected = format!(
        "renamed:  raw/tone.flac -> audio.flac ({})\n\
         added:    edit/empty.dat (0 B)\n\
         renamed:  raw/clip.mp4 -> edit/final/clip.mp4 ({})\n\
         added:    edit/image.png ({})\n          image 200x150\n\
         deleted:  raw/empty.dat (0 B)\n\
         deleted:  raw/image.png ({})\n",
        human_size(flac),
        human_size(clip),
        human_size(png.len() as u64),
        human_size(png.len() as u64 - 1)
    );
    // Before staging, the new paths are untracked: only the deletions show.
    assert_eq!(
        env.ok(&["diff"]),
        format!(
            "deleted:  raw/clip.mp4 ({})\n\
             deleted:  raw/empty.dat (0 B)\n\
             deleted:  raw/image.png ({})\n\
             deleted:  raw/tone.flac ({})\n",
            human_size(clip),
            human_size(png.len() as u64 - 1),
            human_size(flac)
        )
    );
    env.ok(&["add", "-A"]);
    assert_eq!(env.ok(&["diff", "--cached"]), expected);
    assert_eq!(env.ok(&["diff"]), "");
    env.ok(&["commit", "-m", "organize"]);
    let show = env.ok(&["show"]);
    assert!(show.ends_with(&expected), "{show}");
    assert_eq!(env.ok(&["diff", "HEAD~1", "HEAD"]), expected);

    let stat = env.ok(&[
        "diff",
        "--stat",
        "HEAD~1",
        "HEAD",
        "--",
        "raw/clip.mp4",
        "edit/final",
    ]);
    assert_eq!(
        stat,
        format!(
            " raw/clip.mp4 => edit/final/clip.mp4 | renamed {}\n \
             1 file changed: 0 added, 0 modified, 0 deleted, 1 renamed\n",
            human_size(clip)
        )
    );
    let log = env.ok(&["log", "--oneline", "--stat", "-1"]);
    assert!(
        log.contains(&format!(
            " raw/clip.mp4 => edit/final/clip.mp4 | renamed {}\n",
            human_size(clip)
        )),
        "{log}"
    );
    assert!(
        log.ends_with(" 6 files changed: 2 added, 0 modified, 2 deleted, 2 renamed\n\n"),
        "{log}"
    );
    // The content is the same object.
    let out = env
        .cmd(&["cat", "HEAD:edit/final/clip.mp4"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&out.stdout)),
        clip_sha
    );
}

// ---------------------------------------------------------------- revisions

#[test]
fn revision_syntax() {
    let env = Env::new();
    let mut c = Vec::new();
    for i in 1..=4 {
        env.write("f.txt", format!("{i}").as_bytes());
        c.push(commit_all(&env, &format!("c{i}")));
    }
    let (c1, c2, c3, c4) = (&c[0], &c[1], &c[2], &c[3]);
    let r = |rev: &str| full_id(&env, rev);

    assert_eq!(&r("HEAD"), c4);
    assert_eq!(&r("@"), c4);
    assert_eq!(&r("HEAD~0"), c4);
    assert_eq!(&r("HEAD^"), c3);
    assert_eq!(&r("HEAD^1"), c3);
    assert_eq!(&r("HEAD~"), c3);
    assert_eq!(&r("HEAD^^"), c2);
    assert_eq!(&r("HEAD~2"), c2);
    assert_eq!(&r("HEAD~1^"), c2);
    assert_eq!(&r("HEAD~3"), c1);
    assert_eq!(&r("main"), c4);
    assert_eq!(&r("main~1"), c3);
    assert_eq!(&r("refs/heads/main~2"), c2);

    // Past the root.
    let err = env.fail(&["log", "HEAD~4"]);
    assert!(err.contains("\"HEAD~4\" has no parent"), "{err}");
    // A second parent on a commit with one parent.
    let err = env.fail(&["log", "HEAD^2"]);
    assert!(err.contains("\"HEAD^2\" has no parent 2"), "{err}");
    let err = env.fail(&["show", &format!("{}^2", &c3[..12])]);
    assert!(err.contains("has no parent 2"), "{err}");

    // Full ids and unique prefixes (4+ hex digits), also in upper case.
    assert_eq!(&r(c2), c2);
    assert_eq!(&r(&c2.to_ascii_uppercase()), c2);
    for id in &c {
        let mut n = 4;
        while c.iter().filter(|o| o.starts_with(&id[..n])).count() > 1 {
            n += 1;
        }
        assert_eq!(&r(&id[..n]), id, "prefix {}", &id[..n]);
        assert_eq!(&r(&format!("{}~0", &id[..n])), id);
    }
    assert_eq!(&r(&format!("{}~1", &c3[..8])), c2);
    // Three digits is never enough, even if unique.
    let three = &c1[..3];
    let err = env.fail(&["log", three]);
    assert!(
        err.contains(&format!("unknown revision \"{three}\"")),
        "{err}"
    );
    // A prefix nothing has.
    let mut missing = String::from("0000");
    for h in [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f",
    ] {
        let cand = format!("{h}{h}{h}{h}{h}{h}");
        if !c.iter().any(|id| id.starts_with(&cand)) {
            missing = cand;
            break;
        }
    }
    let err = env.fail(&["log", &missing]);
    assert!(
        err.contains(&format!("unknown revision \"{missing}\"")),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");

    // Tags: lightweight and annotated both name the commit.
    env.ok(&["tag", "light", "HEAD~2"]);
    env.ok(&["tag", "ann", "HEAD~1", "-m", "annotated"]);
    assert_eq!(&r("light"), c2);
    assert_eq!(&r("ann"), c3, "annotated tags peel to their commit");
    assert_eq!(&r("ann~1"), c2);
    assert_eq!(&r("ann^"), c2);
    assert_eq!(&r("refs/tags/ann"), c3);
    assert_eq!(env.ok(&["ls-tree", "ann"]), env.ok(&["ls-tree", &c3[..12]]));
    assert_eq!(env.read("f.txt"), b"4");
    let out = env.cmd(&["cat", "ann:f.txt"]).output().unwrap();
    assert_eq!(out.stdout, b"3");

    let err = env.fail(&["log", "nope~1"]);
    assert!(err.contains("unknown revision \"nope~1\""), "{err}");
}

// ---------------------------------------------------------------- reflog

#[test]
fn reflog_head_and_branch() {
    let env = Env::new();
    env.write("a.txt", b"1");
    let c1 = commit_all(&env, "first");
    env.write("a.txt", b"2");
    let c2 = commit_all(&env, "second");
    env.ok(&["branch", "create", "feature"]);
    env.ok(&["checkout", "feature"]);
    env.write("b.txt", b"b");
    let c3 = commit_all(&env, "third\n\nbody not in reflog");
    env.ok(&["checkout", "main"]);
    env.ok(&["checkout", "HEAD~1"]);

    let s = |x: &String| x[..12].to_string();
    let out = env.ok(&["reflog"]);
    let got = reflog_lines(&out);
    let expected = [
        (
            s(&c1),
            "HEAD@{0}:",
            format!("checkout: moving from main to {}", s(&c1)),
        ),
        (
            s(&c2),
            "HEAD@{1}:",
            "checkout: moving from feature to main".into(),
        ),
        (s(&c3), "HEAD@{2}:", "commit: third".into()),
        (
            s(&c2),
            "HEAD@{3}:",
            "checkout: moving from main to feature".into(),
        ),
        (s(&c2), "HEAD@{4}:", "commit: second".into()),
        (s(&c1), "HEAD@{5}:", "commit (initial): first".into()),
    ];
    assert_eq!(got.len(), expected.len(), "{out}");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(
            (g.0.as_str(), g.1.as_str(), g.2.as_str()),
            (e.0.as_str(), e.1, e.2.as_str()),
            "{out}"
        );
    }
    assert_eq!(env.ok(&["reflog", "HEAD"]), out);

    let out = env.ok(&["reflog", "main"]);
    let got = reflog_lines(&out);
    assert_eq!(
        got,
        [
            (
                s(&c2),
                "main@{0}:".to_string(),
                "commit: second".to_string()
            ),
            (
                s(&c1),
                "main@{1}:".to_string(),
                "commit (initial): first".to_string()
            ),
        ],
        "{out}"
    );
    let out = env.ok(&["reflog", "feature"]);
    let got = reflog_lines(&out);
    assert_eq!(
        got,
        [
            (
                s(&c3),
                "feature@{0}:".to_string(),
                "commit: third".to_string()
            ),
            (
                s(&c2),
                "feature@{1}:".to_string(),
                "branch: created from HEAD".to_string()
            ),
        ],
        "{out}"
    );
    let err = env.fail(&["reflog", "nope"]);
    assert!(err.contains("unknown revision \"nope\""), "{err}");
}

// ---------------------------------------------------------------- ls-tree, cat

#[test]
fn ls_tree_top_level_and_recursive() {
    let env = Env::new();
    env.write("a.txt", b"aaa\n");
    env.write("z.bin", &[0u8; 5000]);
    env.write("d/x.txt", b"x\n");
    env.write("d/sub/y.txt", b"yy\n");
    env.write("e/f.sh", b"#!/bin/sh\n");
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(env.repo().join("e/f.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let files = ["a.txt", "d/sub/y.txt", "d/x.txt", "e/f.sh", "z.bin"];
    let sha: std::collections::HashMap<&str, String> = files
        .iter()
        .map(|f| (*f, sha256_file(&env.repo().join(f))))
        .collect();
    commit_all(&env, "one");
    env.write("a.txt", b"changed\n");
    fs::remove_file(env.repo().join("z.bin")).unwrap();
    commit_all(&env, "two");

    let top = env.ok(&["ls-tree", "HEAD~1"]);
    assert_eq!(
        top,
        format!(
            "100644\t{}\ta.txt\n040000\t-\t-\t-\td/\n040000\t-\t-\t-\te/\n100644\t{}\tz.bin\n",
            sha["a.txt"], sha["z.bin"]
        )
    );
    let rec = env.ok(&["ls-tree", "-r", "HEAD~1"]);
    let expected: String = files
        .iter()
        .map(|f| {
            let mode = if *f == "e/f.sh" { "100755" } else { "100644" };
            format!("{mode}\t{}\t{f}\n", sha[f])
        })
        .collect();
    assert_eq!(rec, expected);
    let long = env.ok(&["ls-tree", "-r", "-l", "HEAD~1"]);
    let rows: Vec<Vec<&str>> = long.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 5, "{long}");
    let sizes = [4u64, 3, 2, 10, 5000];
    for ((row, f), n) in rows.iter().zip(files).zip(sizes) {
        assert_eq!(row.len(), 5, "{long}");
        assert_eq!(row[0], if f == "e/f.sh" { "100755" } else { "100644" });
        assert_eq!(row[1], n.to_string(), "{long}");
        assert!(row[2].ends_with('Z') && row[2].len() == 30, "{long}");
        assert_eq!(row[3], sha[f]);
        assert_eq!(row[4], f);
    }
    // The newer revision.
    let top2 = env.ok(&["ls-tree", "HEAD"]);
    assert_eq!(
        top2,
        format!(
            "100644\t{}\ta.txt\n040000\t-\t-\t-\td/\n040000\t-\t-\t-\te/\n",
            sha256_file(&env.repo().join("a.txt"))
        )
    );
    let err = env.fail(&["ls-tree", "nope"]);
    assert!(err.contains("unknown revision \"nope\""), "{err}");
}

#[test]
fn cat_older_version_and_directory() {
    let env = Env::new();
    copy_media(&env.repo().join("media"));
    let v1 = sha256_file(&env.repo().join("media/clip.mp4"));
    commit_all(&env, "v1");
    env.ok(&["tag", "v1"]);
    let mut clip = env.read("media/clip.mp4");
    clip.truncate(clip.len() / 2);
    clip.extend_from_slice(&[5u8; 100_000]);
    env.write("media/clip.mp4", &clip);
    env.write("notes.txt", b"n\n");
    let v2 = sha256_file(&env.repo().join("media/clip.mp4"));
    commit_all(&env, "v2");
    assert_ne!(v1, v2);

    let cat_sha = |spec: &str| {
        let out = env.cmd(&["cat", spec]).output().unwrap();
        assert!(out.status.success(), "cat {spec}: {}", text(&out.stderr));
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&out.stdout))
    };
    assert_eq!(cat_sha("HEAD~1:media/clip.mp4"), v1);
    assert_eq!(cat_sha("v1:media/clip.mp4"), v1);
    assert_eq!(cat_sha("main~1:./media/clip.mp4"), v1);
    assert_eq!(cat_sha("HEAD:media/clip.mp4"), v2);
    assert_eq!(cat_sha(":media/clip.mp4"), v2);
    assert_eq!(
        cat_sha("HEAD~1:media/photo.jpg"),
        sha256_file(&media_dir().join("photo.jpg"))
    );

    let err = env.fail(&["cat", "HEAD:media"]);
    assert!(err.contains("\"media\" is a directory"), "{err}");
    let err = env.fail(&["cat", "HEAD~1:media/"]);
    assert!(err.contains("\"media\" is a directory"), "{err}");
    let err = env.fail(&["cat", "HEAD~1:notes.txt"]);
    assert!(err.contains("\"notes.txt\" does not exist"), "{err}");
    let err = env.fail(&["cat", "nope:notes.txt"]);
    assert!(err.contains("unknown revision \"nope\""), "{err}");
    let err = env.fail_with(2, &["cat", "notes.txt"]);
    assert!(err.contains("REV:PATH"), "{err}");
}
