//! What a new user installs beside the binary: shell completion scripts
//! (each checked by its own shell's parser), manual pages (rendered by
//! `man`), and `--version` naming the formats the binary reads.
mod common;

use std::process::Command as Proc;

use common::*;

/// The shell's own syntax check of a generated script; the shells come
/// from Debian via scripts/install-test-deps.sh, so a missing one fails.
fn parses(shell: &str, check: &[&str], script: &str, ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("mediagit.{ext}"));
    std::fs::write(&file, script).unwrap();
    let out = Proc::new(shell)
        .args(check)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{shell} is needed (scripts/install-test-deps.sh): {e}"));
    assert!(
        out.status.success(),
        "{shell} rejects the script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completion_scripts_parse_in_their_shells_and_name_the_commands() {
    let env = Env::empty();
    let bash = env.ok(&["completions", "bash"]);
    let zsh = env.ok(&["completions", "zsh"]);
    let fish = env.ok(&["completions", "fish"]);
    let pwsh = env.ok(&["completions", "powershell"]);
    for (name, script) in [
        ("bash", &bash),
        ("zsh", &zsh),
        ("fish", &fish),
        ("pwsh", &pwsh),
    ] {
        for cmd in ["commit", "checkout", "fsck", "branch", "completions"] {
            assert!(script.contains(cmd), "{name} script lacks {cmd}");
        }
    }
    parses("bash", &["-n"], &bash, "bash");
    parses("zsh", &["-n"], &zsh, "zsh");
    parses("fish", &["--no-execute"], &fish, "fish");
    // bash: the function completes subcommands when sourced.
    let out = Proc::new("bash")
        .arg("-c")
        .arg(format!(
            "{bash}\nCOMP_WORDS=(mediagit chec); COMP_CWORD=1; _mediagit mediagit chec mediagit; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        ))
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&out.stdout);
    assert!(words.lines().any(|w| w == "checkout"), "{words}");
    // An unknown shell is a usage error naming the choices.
    let out = env.cmd(&["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

#[test]
fn manual_pages_render_with_man_one_per_command() {
    let env = Env::empty();
    let top = env.ok(&["man"]);
    assert!(
        top.starts_with(".ie") || top.contains(".TH mediagit 1"),
        "{top}"
    );
    let dir = env.root().join("man1");
    env.ok(&["man", "--out-dir", dir.to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for want in [
        "mediagit.1",
        "mediagit-add.1",
        "mediagit-checkout.1",
        "mediagit-fsck.1",
        "mediagit-branch-create.1",
        "mediagit-reflog-expire.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want} missing: {pages:?}");
    }
    // Every page a page refers to exists (and clap's `help` has none).
    for p in &pages {
        let text = std::fs::read_to_string(dir.join(p))
            .unwrap()
            .replace("\\-", "-");
        for word in text.split_whitespace() {
            if let Some(name) = word.strip_suffix("(1)") {
                // clap's `help` of commands with subcommands has no page;
                // MediaGit's own `mediagit help` has one.
                assert!(
                    !name.ends_with("-help") || name == "mediagit-help",
                    "{p} refers to {name}(1)"
                );
                if name.starts_with("mediagit") {
                    assert!(
                        pages.contains(&format!("{name}.1")),
                        "{p} refers to {name}(1), not written"
                    );
                }
            }
        }
    }
    // `man` renders a page: its name, synopsis and an option with its help.
    let out = Proc::new("man")
        .args(["-l", "-P", "cat"])
        .arg(dir.join("mediagit-fsck.1"))
        .env("MANWIDTH", "100")
        .output()
        .expect("man is needed (scripts/install-test-deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("mediagit-fsck"), "{text}");
    assert!(text.contains("--repair"), "{text}");
    // The synopsis is the command as typed (man justifies lines: spaces
    // between words vary).
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("mediagit fsck ["), "{text}");
}

#[test]
fn version_names_the_formats_it_reads() {
    let env = Env::empty();
    let short = env.ok(&["-V"]);
    assert_eq!(
        short.trim(),
        format!("mediagit {}", env!("CARGO_PKG_VERSION"))
    );
    let long = env.ok(&["--version"]);
    assert!(long.contains("repository format 2 (reads 1..=2)"), "{long}");
    assert!(long.contains("worktree index 4"), "{long}");
    assert!(long.contains("features:"), "{long}");
}

/// `mediagit help TOPIC` prints the documents' own sections; `help
/// COMMAND...` a command's help; anything else is a usage error naming
/// the topics.
#[test]
fn help_topics_come_from_the_docs_and_help_commands_from_clap() {
    let env = Env::empty();
    let out = env.ok(&["help", "revisions"]);
    assert!(out.starts_with("## Revisions"), "{out}");
    assert!(
        out.contains("`REV~N`") && out.contains("unique prefix"),
        "{out}"
    );
    assert!(out.contains("docs/CLI.md"), "{out}");
    let out = env.ok(&["help", "ignore"]);
    assert!(out.starts_with("## Ignore rules"), "{out}");
    let out = env.ok(&["help", "storage"]);
    assert!(
        out.starts_with("# Storage backends") && out.contains("s3://"),
        "{out}"
    );
    assert!(out.contains("## Credentials"), "{out}");
    let out = env.ok(&["help", "format"]);
    assert!(
        out.contains("## 1. Versioning") && out.contains("## 2. Layout"),
        "{out}"
    );
    assert!(
        !out.contains("## 5. Pack files"),
        "only the sections named: {out}"
    );
    let out = env.ok(&["help", "branch", "create"]);
    assert!(out.contains("Usage: mediagit branch create"), "{out}");
    let out = env.ok(&["help"]);
    assert!(out.contains("Usage: mediagit"), "{out}");
    for t in ["revisions", "ignore", "storage", "format"] {
        assert!(out.contains(&format!("  {t:<10} ")), "{t}: {out}");
    }
    assert!(env.ok(&["--help"]).contains("mediagit help revisions"));
    let err = env.fail_with(2, &["help", "nosuch"]);
    assert!(
        err.contains("no command or topic named \"nosuch\""),
        "{err}"
    );
    assert!(err.contains("revisions, ignore, storage, format"), "{err}");
    let err = env.fail_with(2, &["help", "branch", "nosuch"]);
    assert!(err.contains("in `branch`"), "{err}");
    env.fail_with(2, &["help", "format", "extra"]);
}

/// bash's and fish's scripts complete branch and tag names from the
/// repository at hand (mediagit __complete-refs), after `switch`,
/// `checkout`, `log`..., and after `branch delete`; options still come
/// from clap's script.
#[test]
fn completion_offers_the_repositorys_branches_and_tags() {
    let env = Env::new();
    env.write("a.txt", b"a");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "one"]);
    env.ok(&["branch", "create", "feature/grade"]);
    env.ok(&["tag", "v1.0"]);
    assert_eq!(env.ok(&["__complete-refs"]), "feature/grade\nmain\nv1.0\n");
    assert_eq!(
        env.ok(&["__complete-refs", "branches"]),
        "feature/grade\nmain\n"
    );
    assert_eq!(env.ok(&["__complete-refs", "tags"]), "v1.0\n");
    // A tag naming an object that is not there hides nothing.
    std::fs::write(
        env.repo().join(".mediagit/refs/tags/ghost"),
        format!("{:064}\n", 7),
    )
    .unwrap();
    assert_eq!(env.ok(&["__complete-refs", "tags"]), "ghost\nv1.0\n");
    // Nor does a ref file that does not parse.
    std::fs::write(env.repo().join(".mediagit/refs/heads/zzz"), "garbage\n").unwrap();
    assert_eq!(
        env.ok(&["__complete-refs", "branches"]),
        "feature/grade\nmain\nzzz\n"
    );
    std::fs::remove_file(env.repo().join(".mediagit/refs/heads/zzz")).unwrap();
    std::fs::remove_file(env.repo().join(".mediagit/refs/tags/ghost")).unwrap();
    // Outside a repository: nothing, and no error.
    let outside = Env::empty();
    assert_eq!(outside.ok(&["__complete-refs"]), "");
    assert!(!env.ok(&["--help"]).contains("__complete-refs"));

    let bin_dir = assert_cmd::cargo::cargo_bin("mediagit")
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let bash = env.ok(&["completions", "bash"]);
    let complete = |words: &str, cword: usize| -> Vec<String> {
        let out = Proc::new("bash")
            .arg("-c")
            .arg(format!(
                "{bash}\nCOMP_WORDS=({words}); COMP_CWORD={cword}; _mediagit_refs mediagit \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\""
            ))
            .current_dir(env.repo())
            .env("PATH", &path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        complete("mediagit switch ''", 2),
        ["feature/grade", "main", "v1.0"]
    );
    assert_eq!(complete("mediagit checkout fe", 2), ["feature/grade"]);
    assert_eq!(complete("mediagit branch delete m", 3), ["main"]);
    assert!(complete("mediagit switch --fo", 2)
        .iter()
        .any(|w| w == "--force"));
    assert!(complete("mediagit chec", 1).iter().any(|w| w == "checkout"));
    assert_eq!(complete("mediagit tag delete ''", 3), ["v1.0"]);
    assert_eq!(complete("mediagit --color never switch m", 4), ["main"]);
    // bash splits `--color=never` at the `=`.
    assert_eq!(complete("mediagit --color = never switch m", 5), ["main"]);
    // A hostile repository's branch name is never run by the shell: it is
    // offered quoted, and nothing it names happens.
    env.ok(&["branch", "create", "$(touch${IFS}pwned)"]);
    env.ok(&["branch", "create", "`touch${IFS}pwned2`"]);
    let offered = complete("mediagit switch ''", 2);
    assert!(
        offered
            .iter()
            .any(|w| w == "\\$\\(touch\\$\\{IFS\\}pwned\\)"),
        "{offered:?}"
    );
    assert!(!env.repo().join("pwned").exists() && !env.repo().join("pwned2").exists());
    env.ok(&["branch", "delete", "-D", "$(touch${IFS}pwned)"]);
    env.ok(&["branch", "delete", "-D", "`touch${IFS}pwned2`"]);
    // -C DIR: the names of that repository.
    let elsewhere = format!("mediagit -C {} log v", env.repo().display());
    let out = Proc::new("bash")
        .arg("-c")
        .arg(format!(
            "{bash}\nCOMP_WORDS=({elsewhere}); COMP_CWORD=4; _mediagit_refs; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        ))
        .current_dir(outside.root())
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v1.0\n");

    // zsh: clap's function becomes _mediagit_clap, wrapped; compadd and
    // the clap part are stood in for (no interactive shell here).
    let zsh = env.ok(&["completions", "zsh"]);
    parses("zsh", &["-n"], &zsh, "zsh");
    let zdir = tempfile::tempdir().unwrap();
    let zfile = zdir.path().join("_mediagit");
    std::fs::write(&zfile, &zsh).unwrap();
    let zcomplete = |words: &str, prefix: &str| -> String {
        let out = Proc::new("zsh")
            .arg("-fc")
            .arg(format!(
                "compdef() {{ : }}; source {}; compadd() {{ [[ $1 == -a ]] && print -l -- ${{(P)2}} }}; _mediagit_clap() {{ print CLAP }}; words=({words}); CURRENT=${{#words}}; PREFIX='{prefix}'; _mediagit",
                zfile.display()
            ))
            .current_dir(env.repo())
            .env("PATH", &path)
            .output()
            .expect("zsh is needed (scripts/install-test-deps.sh)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        zcomplete("mediagit switch ''", ""),
        "feature/grade\nmain\nv1.0\n"
    );
    assert_eq!(zcomplete("mediagit tag delete v", "v"), "v1.0\n");
    assert_eq!(zcomplete("mediagit switch --fo", "--fo"), "CLAP\n");
    assert_eq!(zcomplete("mediagit add ''", ""), "CLAP\n");

    let fish = env.ok(&["completions", "fish"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mediagit.fish");
    std::fs::write(&file, &fish).unwrap();
    let out = Proc::new("fish")
        .arg("-c")
        .arg(format!(
            "source {}; complete -C 'mediagit switch '",
            file.display()
        ))
        .current_dir(env.repo())
        .env("PATH", &path)
        .output()
        .expect("fish is needed (scripts/install-test-deps.sh)");
    let words: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect();
    for want in ["feature/grade", "main", "v1.0"] {
        assert!(words.iter().any(|w| w == want), "fish: {want} in {words:?}");
    }
}
