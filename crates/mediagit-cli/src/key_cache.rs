//! The key cache: `mediagit key unlock` keeps an encrypted store's master
//! key for a while, so that the commands that follow neither ask for the
//! passphrase nor pay its Argon2id run (as `ssh-agent` or
//! `git credential-cache` keep a secret for a session).
//!
//! One file per store under `$XDG_RUNTIME_DIR/mediagit/keys/` (on Debian
//! `/run/user/UID`, a tmpfs that only its user can enter and that is
//! emptied at logout and reboot; MediaGit checks owner and mode, not that
//! the file system is in memory). Without `$XDG_RUNTIME_DIR` nothing is
//! kept. To keep or read a key, the directories and files must belong to
//! the user and be closed to everyone else, and are never followed through
//! a symlink; anything else is ignored with a warning (reading) or refused
//! (keeping). Forgetting (`key lock`) skips the mode check, so a key can be
//! forgotten wherever it is, but never deletes through a symlink or in a
//! directory of another user, nor anything but a kept key.
//!
//! A file is 113 bytes: `MGKCACHE`, version 1, the expiry (u64 big-endian
//! Unix seconds), the key file's id (64 hex digits) and the 32-byte master
//! key. Expired entries, of every store, are removed whenever the cache is
//! read. The library checks a kept key before use (its key file must still
//! be in the store, and the key must open the store's sealed values), so a
//! removed passphrase ends what was kept from it.
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mediagit_crypto::MasterKey;
use mediagit_repo::keys::Credential;
use sha2::Digest;
use zeroize::Zeroizing;

use crate::command_error::CommandError;

const MAGIC: &[u8; 8] = b"MGKCACHE";
const VERSION: u8 = 1;
const ID_LEN: usize = 64;
const FILE_LEN: usize = 8 + 1 + 8 + ID_LEN + 32;
/// `key unlock` keeps a key this long unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// And never longer than this.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);

fn warn(msg: &str) {
    eprintln!("warning: {}", crate::output::safe(msg));
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why `path` may not hold a secret, if it may not: it must be a directory
/// (not a symlink to one) of this user that no one else can write, and, if
/// `closed`, that no one else can enter.
fn not_private(path: &Path, closed: bool) -> Option<String> {
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("{}: {e}", path.display())),
    };
    let euid = rustix::process::geteuid().as_raw();
    if !m.file_type().is_dir() {
        return Some(format!("{} is not a directory", path.display()));
    }
    if m.uid() != euid {
        return Some(format!("{} belongs to another user", path.display()));
    }
    let open_to_others = if closed { 0o077 } else { 0o022 };
    if m.mode() & open_to_others != 0 {
        return Some(format!(
            "{} is open to other users (mode {:o})",
            path.display(),
            m.mode() & 0o777
        ));
    }
    None
}

/// The runtime directory, if `$XDG_RUNTIME_DIR` names one.
fn runtime_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The cache directory, checked; created (mode 0700) if `create`. `None`
/// when there is none to use (reading quietly goes on without it).
fn cache_dir(create: bool) -> Result<Option<PathBuf>, CommandError> {
    let refuse = |why: String| {
        CommandError::user("no-key-cache", format!("cannot keep the key: {why}"))
            .with_hint("set XDG_RUNTIME_DIR to a private memory-backed directory (on Debian a login session has /run/user/UID)")
    };
    let Some(runtime) = runtime_dir() else {
        return match create {
            true => Err(refuse(
                "XDG_RUNTIME_DIR is not set (or is not an absolute path)".into(),
            )),
            false => Ok(None),
        };
    };
    // No runtime directory, or none of ours in it: nothing kept, quietly.
    if !create && std::fs::symlink_metadata(runtime.join("mediagit")).is_err() {
        return Ok(None);
    }
    let mut dir = runtime.clone();
    for (i, part) in ["mediagit", "keys"].iter().enumerate() {
        let parent = dir.clone();
        dir.push(part);
        if let Some(why) = not_private(&parent, i > 0) {
            if create {
                return Err(refuse(why));
            }
            warn(&format!("not using the key cache: {why}"));
            return Ok(None);
        }
        match std::fs::symlink_metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&dir)
                    .map_err(|e| refuse(format!("cannot create {}: {e}", dir.display())))?;
            }
            Err(e) => return Err(refuse(format!("{}: {e}", dir.display()))),
        }
    }
    if let Some(why) = not_private(&dir, true) {
        if create {
            return Err(refuse(why));
        }
        warn(&format!("not using the key cache: {why}"));
        return Ok(None);
    }
    Ok(Some(dir))
}

/// The file name for a store (named by its description: the same for
/// every working tree that shares it).
fn entry_name(store: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"mediagit key cache v1\0");
    h.update(store.as_bytes());
    hex::encode(h.finalize())
}

fn encode(key_id: &str, master: &MasterKey, until: u64) -> Zeroizing<Vec<u8>> {
    let mut b = Zeroizing::new(Vec::with_capacity(FILE_LEN));
    b.extend_from_slice(MAGIC);
    b.push(VERSION);
    b.extend_from_slice(&until.to_be_bytes());
    b.extend_from_slice(key_id.as_bytes());
    b.extend_from_slice(master.bytes());
    b
}

/// (expiry, key id, master key) from a cache file's bytes.
fn decode(b: &[u8]) -> Option<(u64, String, MasterKey)> {
    if b.len() != FILE_LEN || &b[..8] != MAGIC || b[8] != VERSION {
        return None;
    }
    let until = u64::from_be_bytes(b[9..17].try_into().ok()?);
    let id = std::str::from_utf8(&b[17..17 + ID_LEN]).ok()?;
    if !id.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let key: [u8; 32] = b[17 + ID_LEN..].try_into().ok()?;
    Some((until, id.to_string(), MasterKey::from_bytes(key)))
}

/// Opens a cache file for reading: never through a symlink, and a FIFO
/// put there must not block.
fn open_entry(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
}

/// Reads a cache file without following a symlink; `None` (with a warning
/// for anything but absence) when it cannot be used.
fn read_entry(path: &Path) -> Option<(u64, String, MasterKey)> {
    let f = match open_entry(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn(&format!("not using the kept key {}: {e}", path.display()));
            return None;
        }
    };
    let euid = rustix::process::geteuid().as_raw();
    let bad = match f.metadata() {
        Ok(m) if !m.is_file() => Some("not a regular file".to_string()),
        Ok(m) if m.uid() != euid => Some("it belongs to another user".into()),
        Ok(m) if m.mode() & 0o077 != 0 => Some("it is open to other users".into()),
        Ok(m) if m.len() != FILE_LEN as u64 => Some(format!("{} bytes", m.len())),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    let mut bytes = Zeroizing::new(Vec::with_capacity(FILE_LEN));
    let decoded = match bad {
        Some(why) => Err(why),
        None => (&f)
            .take(FILE_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())
            .and_then(|_| decode(&bytes).ok_or_else(|| "not a key cache file".to_string())),
    };
    match decoded {
        Ok(d) => Some(d),
        Err(why) => {
            warn(&format!("not using the kept key {}: {why}", path.display()));
            None
        }
    }
}

/// The key kept for `store`, if one is kept and has not expired (an expired
/// one is removed).
pub fn load(store: &str) -> Option<Credential> {
    let dir = cache_dir(false).ok().flatten()?;
    sweep(&dir);
    let (until, key_id, master) = read_entry(&dir.join(entry_name(store)))?;
    (until > unix_now()).then_some(Credential::Kept { key_id, master })
}

/// When the key kept for `store` expires, if one is kept.
pub fn kept_until(store: &str) -> Option<u64> {
    let dir = cache_dir(false).ok().flatten()?;
    sweep(&dir);
    let (until, _, _) = read_entry(&dir.join(entry_name(store)))?;
    Some(until)
}

/// Whether `name` is a cache entry's (64 hex digits) or a temporary file's.
fn is_entry_name(name: &str) -> bool {
    (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())) || name.starts_with(".tmp-")
}

/// Removes every expired entry (of every store: a key must not outlive its
/// timeout because its repository is not used again), every entry whose
/// expiry lies further ahead than any `key unlock` gives, and temporary
/// files a crash left over a minute ago.
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = unix_now();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str().filter(|n| is_entry_name(n)) else {
            continue;
        };
        let path = e.path();
        let stale = if name.starts_with(".tmp-") {
            std::fs::symlink_metadata(&path)
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 60)
        } else {
            read_expiry(&path).is_some_and(|until| {
                until <= now || until > now.saturating_add(MAX_TIMEOUT.as_secs() + 60)
            })
        };
        if stale {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// An entry's expiry, read quietly (no symlink followed, nothing but a
/// regular file of the right size); `None` if it cannot be read.
fn read_expiry(path: &Path) -> Option<u64> {
    let f = open_entry(path).ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || m.len() != FILE_LEN as u64 {
        return None;
    }
    let mut head = [0u8; 17];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut head, 0).ok()?;
    if &head[..8] != MAGIC {
        return None;
    }
    Some(u64::from_be_bytes(head[9..17].try_into().ok()?))
}

/// Keeps `master` (from the key file `key_id`) for `store` until `for_`
/// from now; returns the expiry (Unix seconds).
pub fn keep(
    store: &str,
    key_id: &str,
    master: &MasterKey,
    for_: Duration,
) -> Result<u64, CommandError> {
    let Some(dir) = cache_dir(true)? else {
        return Err(CommandError::user(
            "no-key-cache",
            "cannot keep the key: XDG_RUNTIME_DIR is not set",
        ));
    };
    if key_id.len() != ID_LEN {
        return Err(CommandError::user(
            "no-key-cache",
            format!("cannot keep the key: key id {key_id:?} is not 64 hex digits"),
        ));
    }
    let until = unix_now().saturating_add(for_.as_secs());
    let bytes = encode(key_id, master, until);
    let path = dir.join(entry_name(store));
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), unix_now()));
    let io = |e: std::io::Error, p: &Path| {
        CommandError::user(
            "no-key-cache",
            format!("cannot keep the key in {}: {e}", p.display()),
        )
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .map_err(|e| io(e, &tmp))?;
    let written = f.write_all(&bytes).and_then(|_| f.flush());
    drop(f);
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e, &path));
    }
    Ok(until)
}

/// A key kept for `store` from the key file `old` is kept on under `new`
/// (after `key passwd` replaced one with the other), until the same time.
pub fn rename_kept(store: &str, old: &str, new: &str) {
    let Some(dir) = cache_dir(false).ok().flatten() else {
        return;
    };
    let path = dir.join(entry_name(store));
    let Some((until, id, master)) = read_entry(&path) else {
        return;
    };
    let now = unix_now();
    if id == old && until > now {
        if let Err(e) = keep(store, new, &master, Duration::from_secs(until - now)) {
            warn(&e.message);
        }
    }
}

/// The cache directory to forget keys in: the same checks as for keeping
/// them, except the mode (forgetting must work where keeping or reading
/// would be refused, e.g. a directory whose mode was changed since), but
/// never through a symlink or a directory of another user: deleting there
/// could delete someone's files (a symlinked `keys/` pointing at a
/// repository's key files). `None` when there is no directory.
fn forget_dir() -> Result<Option<PathBuf>, CommandError> {
    let refuse =
        |why: String| CommandError::user("no-key-cache", format!("cannot forget kept keys: {why}"));
    let Some(runtime) = runtime_dir() else {
        return Err(refuse(
            "XDG_RUNTIME_DIR is not set (or is not an absolute path), so kept keys cannot be looked for".into(),
        ));
    };
    let euid = rustix::process::geteuid().as_raw();
    let mut dir = runtime;
    for part in ["mediagit", "keys"] {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_dir() && m.uid() == euid => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse(format!("{} is a symlink", dir.display())))
            }
            Ok(_) => {
                return Err(refuse(format!(
                    "{} is not a directory of this user",
                    dir.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(refuse(format!("{}: {e}", dir.display()))),
        }
    }
    Ok(Some(dir))
}

/// Whether `path` is a kept key (a regular file of this user, 113 bytes,
/// starting with the magic; never followed if a symlink): only those are
/// deleted or counted.
fn is_kept_key(path: &Path) -> bool {
    read_expiry(path).is_some()
        && std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.uid() == rustix::process::geteuid().as_raw())
}

/// Forgets the key kept for `store`, which no longer opens it, and says so.
pub fn forget_stale(store: &str) {
    let _ = forget(store);
    warn(&format!(
        "the key kept by `mediagit key unlock` for {store} does not open it (its passphrase was removed or changed, or another store has the same description): forgotten"
    ));
}

/// Forgets the key kept for `store`; whether one was kept.
pub fn forget(store: &str) -> Result<bool, CommandError> {
    let Some(dir) = forget_dir()? else {
        return Ok(false);
    };
    sweep(&dir);
    let path = dir.join(entry_name(store));
    if !is_kept_key(&path) {
        if std::fs::symlink_metadata(&path).is_ok() {
            warn(&format!("{} is not a kept key; left alone", path.display()));
        }
        return Ok(false);
    }
    remove(&path)
}

/// Forgets every kept key; how many were kept. Temporary files a crash
/// left are removed too; anything else in the directory is left alone.
pub fn forget_all() -> Result<usize, CommandError> {
    let Some(dir) = forget_dir()? else {
        return Ok(0);
    };
    sweep(&dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(CommandError::from(mediagit_repo::error::RepoError::io(
                "list", &dir, e,
            )))
        }
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str().filter(|n| is_entry_name(n)) else {
            continue;
        };
        let path = e.path();
        if name.starts_with(".tmp-") {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                remove(&path)?;
            }
        } else if is_kept_key(&path) && remove(&path)? {
            n += 1;
        }
    }
    Ok(n)
}

fn remove(path: &Path) -> Result<bool, CommandError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CommandError::from(mediagit_repo::error::RepoError::io(
            "remove", path, e,
        ))),
    }
}

/// `--timeout` of `key unlock`: "15 minutes", "8 hours", "1.day", or
/// compact "90s", "15m", "8h", "1d".
pub fn parse_timeout(s: &str) -> Result<Duration, CommandError> {
    let t = s.trim().to_ascii_lowercase();
    let bad = || {
        CommandError::usage(format!(
            "--timeout: cannot understand {s:?}; use e.g. \"15 minutes\", \"8h\" or \"1 day\""
        ))
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit = unit.strip_prefix([' ', '.']).unwrap_or(unit);
    let unit_secs = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let d = Duration::from_secs(n.saturating_mul(unit_secs));
    if d.is_zero() || d > MAX_TIMEOUT {
        return Err(CommandError::usage(format!(
            "--timeout: {s:?} is out of range (1 second to 7 days)"
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(
            parse_timeout("15 minutes").ok().map(|d| d.as_secs()),
            Some(900)
        );
        assert_eq!(parse_timeout("90s").ok().map(|d| d.as_secs()), Some(90));
        assert_eq!(
            parse_timeout("8h").ok().map(|d| d.as_secs()),
            Some(8 * 3600)
        );
        assert_eq!(
            parse_timeout("1.day").ok().map(|d| d.as_secs()),
            Some(86_400)
        );
        assert_eq!(parse_timeout("2 weeks").unwrap_err().code, 2);
        for bad in [
            "",
            "15",
            "m",
            "0s",
            "3 fortnights",
            "-1h",
            "8 days",
            "500ms",
            "1sss",
            "2 hourss",
            "1  h",
        ] {
            assert!(parse_timeout(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn entries_round_trip_and_refuse_damage() {
        let m = MasterKey::from_bytes([7; 32]);
        let id = "a".repeat(64);
        let b = encode(&id, &m, 1234);
        let (until, back_id, back) = decode(&b).unwrap();
        assert_eq!(
            (until, back_id.as_str(), back.bytes()),
            (1234, id.as_str(), m.bytes())
        );
        for i in [0, 8, 17] {
            let mut t = b.to_vec();
            t[i] ^= 0x40;
            assert!(decode(&t).is_none(), "byte {i} flipped accepted");
        }
        assert!(decode(&b[..b.len() - 1]).is_none());
    }
}
