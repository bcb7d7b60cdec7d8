//! Paging long output as Git does: `log`, `show`, `diff` and `reflog`
//! write through a pager when stdout is a terminal. The pager is
//! `$MEDIAGIT_PAGER`, else `[core] pager` in the user's settings, else
//! `$PAGER`, else `less`; an empty value or `cat` means none, and
//! `--no-pager` turns it off for one command. `LESS=FRX` is set when
//! `LESS` is not (quit at once when the output fits one screen, keep
//! colours, leave the text on the screen), as Git sets it.
//!
//! The pager runs as `sh -c PAGER` with its stdin a pipe that replaces this
//! process's stdout (file descriptor 1): everything the command prints goes
//! to it, whatever writes it. When the command ends, stdout is flushed and
//! closed and the pager is waited for, so the shell's prompt comes back
//! only when the user has left the pager; a pager quit early makes the next
//! write fail with a broken pipe, which ends the command quietly.
use std::io::{IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};

use crate::command_error::CommandError;

/// A running pager; dropping it finishes the output and waits for it.
pub struct Pager {
    child: Child,
}

/// The pager command to use, or `None` for no pager.
fn choice() -> Result<Option<String>, CommandError> {
    let from_env = |k: &str| std::env::var(k).ok();
    let chosen = match from_env("MEDIAGIT_PAGER") {
        Some(p) => p,
        None => match crate::user_config::pager()? {
            Some(p) => p,
            None => from_env("PAGER").unwrap_or_else(|| "less".into()),
        },
    };
    let trimmed = chosen.trim();
    Ok((!trimmed.is_empty() && trimmed != "cat").then(|| trimmed.to_string()))
}

/// Whether a pager command can start: one without shell syntax must name
/// a program on `PATH` (or a path to one); a mistyped pager would
/// otherwise swallow the output (`sh` starts, the program does not).
fn findable(cmd: &str) -> bool {
    if cmd.contains(|c: char| "|&;<>()$`\\\"'*?[#~=%{}".contains(c)) {
        return true;
    }
    let Some(prog) = cmd.split_whitespace().next() else {
        return false;
    };
    let runnable = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if prog.contains('/') {
        return runnable(std::path::Path::new(prog));
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| runnable(&d.join(prog))))
}

/// Starts the pager when stdout is a terminal and one is configured.
pub fn start(disabled: bool) -> Result<Option<Pager>, CommandError> {
    if disabled || !std::io::stdout().is_terminal() {
        return Ok(None);
    }
    let Some(cmd) = choice()? else {
        return Ok(None);
    };
    if !findable(&cmd) {
        eprintln!("warning: the pager `{cmd}` is not found; printing without it");
        return Ok(None);
    }
    let mut c = Command::new("sh");
    c.arg("-c").arg(&cmd).stdin(Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        c.env("LESS", "FRX");
    }
    if std::env::var_os("LV").is_none() {
        c.env("LV", "-c");
    }
    // Ctrl-C is caught from before the pager starts (see below).
    let signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT]).ok();
    let mut child = c.spawn().map_err(|e| {
        CommandError::user(
            "pager-failed",
            format!("cannot start the pager `{cmd}`: {e}"),
        )
        .with_hint("set MEDIAGIT_PAGER (or PAGER) to a pager, or pass --no-pager")
    })?;
    let Some(stdin) = child.stdin.take() else {
        let _ = child.wait();
        return Ok(None);
    };
    // SAFETY: `dup2` makes descriptor 1 refer to the pipe; both descriptors
    // are open (the pipe's is owned by `stdin`, alive here), no other
    // thread exists yet that could be using descriptor 1, and Rust's
    // `Stdout` holds no state about the descriptor beyond its buffer,
    // which is empty (nothing was printed before the command started).
    let rc = unsafe { libc::dup2(stdin.as_raw_fd(), 1) };
    drop(stdin);
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        let _ = child.kill();
        let _ = child.wait();
        return Err(CommandError::user(
            "pager-failed",
            format!("cannot send output to the pager `{cmd}`: {e}"),
        ));
    }
    // Ctrl-C goes to the pager and to this process alike. This process
    // stops (exit 130) as it would without a pager, but first ends the
    // output and waits for the pager, as Git does: `less` (which ignores
    // Ctrl-C) keeps the terminal until the user leaves it, instead of the
    // shell taking the terminal back from under it.
    let pid = child.id() as libc::pid_t;
    if let Some(mut signals) = signals {
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
                end_output();
                // SAFETY: waits for our own child; a null status pointer
                // is allowed. If the main thread reaped it first, this
                // returns ECHILD at once.
                unsafe {
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                std::process::exit(130);
            }
        });
    }
    Ok(Some(Pager { child }))
}

/// Closes the pipe (the pager sees the end of the output): descriptor 1
/// becomes /dev/null, so nothing printed later can block or fail.
fn end_output() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: as in `start`: two open descriptors; the pipe's last
        // write end in this process is closed by the replacement.
        unsafe {
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
}

/// Set when Ctrl-C came while the pager ran: whichever thread sees the
/// pager end first ends the process with 130 (the main thread may reap
/// the pager before the signal's thread does).
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Drop for Pager {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        end_output();
        let _ = self.child.wait();
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
    }
}
