//! `-v` and `MEDIAGIT_LOG` (docs/CLI.md): tracing logs on stderr with the
//! time each phase took; nothing without them; stdout is never touched.
mod common;

use common::*;

fn run(env: &Env, args: &[&str], log: Option<&str>) -> (i32, String, String) {
    let mut cmd = env.cmd(args);
    match log {
        Some(v) => cmd.env("MEDIAGIT_LOG", v),
        None => cmd.env_remove("MEDIAGIT_LOG"),
    };
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn verbose_logs_phase_timings_on_stderr_and_quiet_runs_log_nothing() {
    let env = Env::new();
    env.write("a.bin", &[7u8; 5000]);
    env.write("dir/b.txt", b"b");
    let (code, out, err) = run(&env, &["-v", "add", "-A"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    for phase in [
        "add:load-index",
        "add:scan",
        "add:store{files=2}",
        "add:save-index{entries=2}",
        "add: close",
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(phase))
            .unwrap_or_else(|| panic!("no {phase}: {err}"));
        assert!(line.contains("time.busy="), "{line}");
    }
    let (code, out, err) = run(&env, &["--verbose", "commit", "-m", "one"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("[main "), "{out}");
    assert!(
        err.contains("commit:write-trees{files=2}: close time.busy="),
        "{err}"
    );
    // Nothing without -v or MEDIAGIT_LOG.
    std::fs::remove_file(env.repo().join("a.bin")).unwrap();
    let (code, _, err) = run(&env, &["checkout", "--force", "HEAD"], None);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("time.busy"), "{err}");
    // MEDIAGIT_LOG=debug: the phases and the debug events.
    std::fs::remove_file(env.repo().join("a.bin")).unwrap();
    let (code, _, err) = run(&env, &["checkout", "--force", "HEAD"], Some("debug"));
    assert_eq!(code, 0, "{err}");
    for phase in [
        "checkout:scan",
        "checkout:decide",
        "checkout:check",
        "checkout:write{files=1 bytes=5000}",
        "checkout:sync",
    ] {
        assert!(
            err.contains(&format!("{phase}: close time.busy=")),
            "no {phase}: {err}"
        );
    }
    assert!(
        err.contains("decided write=1 remove=0 conflicts=0"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(env.repo().join("a.bin")).unwrap(),
        vec![7u8; 5000]
    );
    // A filter that does not parse: a warning, and the command still runs.
    let (code, out, err) = run(&env, &["status"], Some("nope=["));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with("warning: MEDIAGIT_LOG=\"nope=[\" is not a log filter"),
        "{err}"
    );
    assert!(out.contains("nothing to commit"), "{out}");
}
