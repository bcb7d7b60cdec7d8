//! `log`, `show`, `diff` and `reflog` page through a pager when stdout is a
//! terminal (a real one: the command runs under `script`, which gives it a
//! pseudo-terminal), never when it is a pipe or a file, and not with
//! `--no-pager` or an empty pager; and colour, decided the same way.
mod common;

use std::path::Path;
use std::process::Command as Proc;

use common::*;

/// Runs `mediagit ARGS` on a pseudo-terminal in the repository, with the
/// given environment; returns what reached the terminal.
fn on_terminal(env: &Env, args: &str, vars: &[(&str, &str)]) -> String {
    let bin = assert_cmd::cargo::cargo_bin("mediagit");
    let mut cmd = Proc::new("script");
    cmd.args(["-qec", &format!("{} {args}", bin.display()), "/dev/null"])
        .current_dir(env.repo())
        .env("MEDIAGIT_PASSPHRASE", TEST_PASSPHRASE)
        .env("MEDIAGIT_AUTHOR_NAME", "Pat")
        .env("MEDIAGIT_AUTHOR_EMAIL", "pat@example.com")
        .env("HOME", env.root().join("home"))
        .env("XDG_CONFIG_HOME", env.root().join("settings"))
        .env_remove("MEDIAGIT_PAGER")
        .env_remove("PAGER")
        .env_remove("LESS");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("script (bsdutils) is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn paged_into(file: &Path) -> String {
    format!("cat > '{}'", file.display())
}

fn history(env: &Env) {
    env.write("a.txt", b"one\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "first change"]);
    env.write("a.txt", b"two\n");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "second change"]);
}

#[test]
fn a_terminal_gets_the_pager_a_pipe_and_no_pager_do_not() {
    let env = Env::new();
    history(&env);
    let paged = env.root().join("paged.txt");
    let pager = paged_into(&paged);
    for args in ["log", "show", "diff HEAD~1 HEAD", "reflog"] {
        let _ = std::fs::remove_file(&paged);
        let screen = on_terminal(&env, args, &[("MEDIAGIT_PAGER", &pager)]);
        let got = std::fs::read_to_string(&paged)
            .unwrap_or_else(|_| panic!("`{args}` did not start the pager; screen: {screen}"));
        assert!(!got.is_empty(), "{args}: the pager got nothing");
        assert!(
            !screen.contains("a.txt") && !screen.contains("change"),
            "{args}: {screen}"
        );
        // --no-pager: straight to the terminal.
        let _ = std::fs::remove_file(&paged);
        let screen = on_terminal(
            &env,
            &format!("--no-pager {args}"),
            &[("MEDIAGIT_PAGER", &pager)],
        );
        assert!(!paged.exists(), "{args} --no-pager used the pager");
        assert!(
            screen.contains("change") || screen.contains("a.txt"),
            "{args}: {screen}"
        );
    }
    let log = std::fs::read_to_string({
        on_terminal(&env, "log", &[("MEDIAGIT_PAGER", &pager)]);
        &paged
    })
    .unwrap();
    assert!(
        log.contains("second change") && log.contains("first change"),
        "{log}"
    );
    // Not a terminal: no pager, even when one is set.
    let _ = std::fs::remove_file(&paged);
    let out = env
        .cmd(&["log"])
        .env("MEDIAGIT_PAGER", &pager)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("second change"));
    assert!(!paged.exists());
    // Commands that are not paged: status on a terminal.
    on_terminal(&env, "status", &[("MEDIAGIT_PAGER", &pager)]);
    assert!(!paged.exists());
}

#[test]
fn the_pager_is_chosen_as_documented_and_less_gets_frx() {
    let env = Env::new();
    history(&env);
    let seen = env.root().join("seen.txt");
    let record = |tag: &str| {
        format!(
            "echo {tag} \"LESS=$LESS\" > '{}'; cat > /dev/null",
            seen.display()
        )
    };
    let which = |vars: &[(&str, &str)]| {
        let _ = std::fs::remove_file(&seen);
        on_terminal(&env, "log", vars);
        std::fs::read_to_string(&seen).unwrap_or_default()
    };
    // $PAGER, with LESS=FRX added when unset.
    assert_eq!(
        which(&[("PAGER", &record("pager"))]).trim(),
        "pager LESS=FRX"
    );
    // A LESS of the user's own is kept.
    assert_eq!(
        which(&[("PAGER", &record("pager")), ("LESS", "-S")]).trim(),
        "pager LESS=-S"
    );
    // [core] pager in the user's settings is over $PAGER.
    let settings = env.root().join("settings/mediagit");
    std::fs::create_dir_all(&settings).unwrap();
    std::fs::write(
        settings.join("config.toml"),
        format!("[core]\npager = {:?}\n", record("settings")),
    )
    .unwrap();
    assert_eq!(
        which(&[("PAGER", &record("pager"))]).trim(),
        "settings LESS=FRX"
    );
    // $MEDIAGIT_PAGER is over both; empty or `cat` turns paging off.
    assert_eq!(
        which(&[
            ("PAGER", &record("pager")),
            ("MEDIAGIT_PAGER", &record("mediagit"))
        ])
        .trim(),
        "mediagit LESS=FRX"
    );
    for off in ["", "cat"] {
        let screen = {
            let _ = std::fs::remove_file(&seen);
            on_terminal(&env, "log", &[("MEDIAGIT_PAGER", off)])
        };
        assert!(!seen.exists(), "MEDIAGIT_PAGER={off:?} paged");
        assert!(screen.contains("second change"), "{screen}");
    }
}

#[test]
fn a_pager_that_quits_early_ends_the_command_quietly() {
    let env = Env::new();
    history(&env);
    for i in 0..40 {
        env.write("a.txt", format!("{i}\n").as_bytes());
        env.ok(&["add", "-A"]);
        env.ok(&[
            "commit",
            "-m",
            &format!("change number {i} with a longer message line"),
        ]);
    }
    // The pager closes its input at once: writes fail with a broken pipe.
    let screen = on_terminal(
        &env,
        "log; echo exit=$?",
        &[("MEDIAGIT_PAGER", "exec 0<&-; sleep 0.3")],
    );
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(!screen.contains("error"), "{screen}");
}

#[test]
fn a_missing_pager_is_skipped_and_ctrl_c_ends_the_command_after_the_pager() {
    let env = Env::new();
    history(&env);
    // A mistyped pager: the output is printed without it.
    let screen = on_terminal(&env, "log", &[("MEDIAGIT_PAGER", "no-such-pager-here")]);
    assert!(screen.contains("second change"), "{screen}");
    assert!(
        screen.contains("pager `no-such-pager-here` is not found"),
        "{screen}"
    );
    // Ctrl-C while the pager (which ignores it, as less does) still runs:
    // the command ends with 130 once the pager is done, not before.
    let bin = assert_cmd::cargo::cargo_bin("mediagit");
    let script = env.root().join("int.sh");
    std::fs::write(
        &script,
        format!(
            "MEDIAGIT_PAGER='trap \"\" INT; touch {ready}; sleep 1; cat > /dev/null' {bin} log &\np=$!\n\
             for i in $(seq 200); do [ -e {ready} ] && break; sleep 0.05; done\n\
             kill -INT $p; wait $p; echo rc=$?\n",
            ready = env.root().join("pager-started").display(),
            bin = bin.display()
        ),
    )
    .unwrap();
    let screen = on_terminal(
        &env,
        &format!("--version >/dev/null; bash '{}'", script.display()),
        &[],
    );
    assert!(screen.contains("rc=130"), "{screen}");
}

/// Colour (docs/CLI.md): on a terminal by default; never with `NO_COLOR`
/// set to anything, `TERM=dumb` or `--color=never`; never into a pipe
/// unless `--color=always`, which also overrides `NO_COLOR`. Errors are
/// coloured on stderr the same way.
#[test]
fn colour_on_a_terminal_unless_no_color_and_in_a_pipe_only_when_always() {
    const RED: &str = "\x1b[31m";
    const YELLOW: &str = "\x1b[33m";
    let env = Env::new();
    history(&env);
    env.write("new.txt", b"n");
    let term = ("TERM", "xterm");
    let screen = on_terminal(&env, "status", &[term]);
    assert!(
        screen.contains(&format!("{RED}new.txt\x1b[m")),
        "{screen:?}"
    );
    let screen = on_terminal(&env, "log", &[term, ("MEDIAGIT_PAGER", "cat")]);
    assert!(screen.contains(&format!("{YELLOW}commit ")), "{screen:?}");
    assert!(screen.contains("HEAD ->"), "{screen:?}");
    let screen = on_terminal(&env, "status", &[term, ("NO_COLOR", "")]);
    assert!(
        screen.contains(RED),
        "an empty NO_COLOR does not count: {screen:?}"
    );
    for (args, vars) in [
        ("status", vec![term, ("NO_COLOR", "1")]),
        ("status", vec![("TERM", "dumb")]),
        ("--color=never status", vec![term]),
        ("--color never log", vec![term, ("MEDIAGIT_PAGER", "cat")]),
    ] {
        let screen = on_terminal(&env, args, &vars);
        assert!(!screen.contains('\x1b'), "{args} {vars:?}: {screen:?}");
        assert!(
            screen.contains("new.txt") || screen.contains("commit "),
            "{screen:?}"
        );
    }
    // A pipe.
    let out = env.ok(&["status"]);
    assert!(!out.contains('\x1b'), "{out:?}");
    let out = env
        .cmd(&["--color=always", "status"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("{RED}new.txt\x1b[m")), "{text:?}");
    // A hostile name is still escaped inside the colour.
    env.write("evil\x1b[2J.txt", b"e");
    let out = env.cmd(&["--color=always", "status"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("{RED}evil\\u001b[2J.txt\x1b[m")),
        "{text:?}"
    );
    assert!(!text.contains("\x1b[2J"), "{text:?}");
    // Errors on stderr.
    let out = env
        .cmd(&["--color=always", "log", "nosuchrev"])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(&format!("{RED}error:\x1b[m unknown revision")),
        "{err:?}"
    );
    assert!(err.contains(&format!("{YELLOW}hint:\x1b[m")), "{err:?}");
    let err = env.fail(&["log", "nosuchrev"]);
    assert!(!err.contains('\x1b'), "{err:?}");
    // A value clap does not know is a usage error.
    let err = env.fail_with(2, &["--color=sometimes", "status"]);
    assert!(err.contains("sometimes"), "{err}");
}

/// In a terminal emulator (tmux, 10 rows): `log` longer than the screen
/// stays in `less` until `q` is pressed; `--no-pager` prints and returns.
#[test]
fn under_tmux_log_stays_in_less_until_q_and_no_pager_returns() {
    let env = Env::new();
    for i in 0..6 {
        env.write("a.txt", format!("{i}\n").as_bytes());
        env.ok(&["add", "-A"]);
        env.ok(&["commit", "-m", &format!("change {i}")]);
    }
    let bin = assert_cmd::cargo::cargo_bin("mediagit");
    let sock = env.root().join("tmux.sock");
    let tmux = |args: &[&str]| -> String {
        let out = Proc::new("tmux")
            .arg("-S")
            .arg(&sock)
            .args(args)
            .output()
            .expect("tmux is needed (scripts/install-test-deps.sh)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let screen_until = |what: &str| -> String {
        let mut last = String::new();
        for _ in 0..100 {
            last = tmux(&["capture-pane", "-p", "-t", "t"]);
            if last.contains(what) {
                return last;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{what:?} never appeared on the screen:\n{last}");
    };
    for (flags, paged) in [("", true), ("--no-pager", false)] {
        let shell = format!(
            "cd '{}' && env -u PAGER -u MEDIAGIT_PAGER -u LESS HOME='{}' XDG_CONFIG_HOME='{}' TERM=xterm '{}' {flags} log; echo COMMAND-DONE; sleep 30",
            env.repo().display(),
            env.root().join("home").display(),
            env.root().join("settings").display(),
            bin.display()
        );
        tmux(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "80",
            "-y",
            "10",
            &shell,
        ]);
        screen_until("commit ");
        if paged {
            // less waits at its prompt: the command has not returned.
            std::thread::sleep(std::time::Duration::from_millis(300));
            let screen = tmux(&["capture-pane", "-p", "-t", "t"]);
            assert!(
                !screen.contains("COMMAND-DONE"),
                "returned without paging:\n{screen}"
            );
            tmux(&["send-keys", "-t", "t", "q"]);
            screen_until("COMMAND-DONE");
        } else {
            let screen = screen_until("COMMAND-DONE");
            assert!(screen.contains("change 0"), "{screen}");
        }
        tmux(&["kill-session", "-t", "t"]);
    }
    tmux(&["kill-server"]);
}
