//! Where passphrases come from (the library only takes bytes): a file
//! named on the command line, `MEDIAGIT_PASSPHRASE_FILE`,
//! `MEDIAGIT_PASSPHRASE`, or else a prompt on the terminal (`/dev/tty`,
//! echo off). Never printed, never in an error message.
use std::io::{BufRead, Write};
use std::path::Path;

use mediagit_repo::keys::Passphrase;

use crate::command_error::CommandError;

/// The largest passphrase file read (a passphrase, not a document).
const MAX_FILE: u64 = 64 * 1024;

/// Reads a passphrase file: its bytes, without one trailing newline.
fn from_file(path: &Path, what: &str) -> Result<Passphrase, CommandError> {
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(CommandError::user(
            "bad-passphrase-file",
            format!("the {what} file {} is a directory", path.display()),
        ));
    }
    // Read with a cap (a FIFO or /dev/zero has no size to check first).
    let mut bytes = Vec::new();
    use std::io::Read;
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| {
            CommandError::user(
                "bad-passphrase-file",
                format!("cannot read the {what} file {}: {e}", path.display()),
            )
        })?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(CommandError::user(
            "bad-passphrase-file",
            format!(
                "{} holds more than {MAX_FILE} bytes: a {what} file holds one passphrase",
                path.display()
            ),
        ));
    }
    strip_newline(&mut bytes);
    non_empty(Passphrase::new(bytes), &path.display().to_string())
}

/// Drops one trailing `\n` (or `\r\n`).
fn strip_newline(b: &mut Vec<u8>) {
    if b.ends_with(b"\n") {
        b.pop();
        if b.ends_with(b"\r") {
            b.pop();
        }
    }
}

fn non_empty(p: Passphrase, source: &str) -> Result<Passphrase, CommandError> {
    if p.as_bytes().is_empty() {
        return Err(CommandError::user(
            "empty-passphrase",
            format!("the passphrase from {source} is empty"),
        ));
    }
    Ok(p)
}

/// Asks on the terminal with echo off; `None` without a terminal.
fn prompt(question: &str) -> Result<Option<Passphrase>, CommandError> {
    let Ok(tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return Ok(None);
    };
    let Ok(saved) = rustix::termios::tcgetattr(&tty) else {
        return Ok(None);
    };
    let mut quiet = saved.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    let io = |e: std::io::Error| {
        CommandError::from(mediagit_repo::error::RepoError::io(
            "read passphrase from",
            "/dev/tty",
            e,
        ))
    };
    (&tty).write_all(question.as_bytes()).map_err(io)?;
    (&tty).flush().map_err(io)?;
    let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Flush, &quiet);
    let mut line = Vec::new();
    let read = std::io::BufReader::new(&tty).read_until(b'\n', &mut line);
    // Echo back on, whatever happened.
    let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &saved);
    let _ = (&tty).write_all(b"\n");
    read.map_err(io)?;
    strip_newline(&mut line);
    Ok(Some(Passphrase::new(line)))
}

/// The passphrase that opens an existing repository (`what` names it in
/// the prompt).
pub fn existing(file: Option<&Path>, what: &str, ask: bool) -> Result<Passphrase, CommandError> {
    if let Some(f) = file {
        return from_file(f, "passphrase");
    }
    if let Some(f) = std::env::var_os("MEDIAGIT_PASSPHRASE_FILE").filter(|v| !v.is_empty()) {
        return from_file(Path::new(&f), "MEDIAGIT_PASSPHRASE_FILE");
    }
    if let Some(v) = std::env::var_os("MEDIAGIT_PASSPHRASE").filter(|v| !v.is_empty()) {
        use std::os::unix::ffi::OsStrExt;
        return Ok(Passphrase::new(v.as_bytes().to_vec()));
    }
    let asked = match ask {
        true => prompt(&format!("Passphrase for {what}: "))?,
        false => None,
    };
    match asked {
        Some(p) => non_empty(p, "the terminal"),
        None => Err(CommandError::from(
            mediagit_repo::error::RepoError::NeedsPassphrase { store: what.into() },
        )),
    }
}

/// A new passphrase (init --encrypt, key add, key passwd): from `file`,
/// else `MEDIAGIT_NEW_PASSPHRASE` (for `key add`/`passwd`, where
/// `MEDIAGIT_PASSPHRASE` opens the repository) or `MEDIAGIT_PASSPHRASE`
/// (for `init`), else asked twice on the terminal.
pub fn new(file: Option<&Path>, env: &str) -> Result<Passphrase, CommandError> {
    if let Some(f) = file {
        return from_file(f, "passphrase");
    }
    // init reads the same variables, in the same order, as every later
    // command (MEDIAGIT_PASSPHRASE_FILE, then MEDIAGIT_PASSPHRASE).
    if env == "MEDIAGIT_PASSPHRASE" {
        if let Some(f) = std::env::var_os("MEDIAGIT_PASSPHRASE_FILE").filter(|v| !v.is_empty()) {
            return from_file(Path::new(&f), "MEDIAGIT_PASSPHRASE_FILE");
        }
    }
    if let Some(v) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        use std::os::unix::ffi::OsStrExt;
        return Ok(Passphrase::new(v.as_bytes().to_vec()));
    }
    let Some(first) = prompt("New passphrase: ")? else {
        return Err(CommandError::user(
            "needs-passphrase",
            format!(
                "a new passphrase is needed: give --passphrase-file FILE or set {env} (there is no terminal to ask on)"
            ),
        ));
    };
    let first = non_empty(first, "the terminal")?;
    let again = prompt("Repeat the passphrase: ")?.unwrap_or_default();
    if again.as_bytes() != first.as_bytes() {
        return Err(CommandError::user(
            "passphrase-mismatch",
            "the two passphrases differ; nothing was changed",
        ));
    }
    Ok(first)
}
