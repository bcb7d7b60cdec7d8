//! `mediagit lock`, `unlock`, `locks`: file locks on a MediaGit server,
//! so that two people do not edit the same binary file (which cannot be
//! merged) at once. Locks live on the server (conditional writes in its
//! store, so every server of one bucket sees them); a remote that is a
//! directory or a bucket has no one to enforce them.
use std::io::Write;

use mediagit_protocol::wire::LockRecord;
use mediagit_protocol::HttpBackend;
use mediagit_repo::remote::RemoteUrl;
use mediagit_repo::Repository;

use crate::command_error::CommandError;
use crate::CmdResult;

/// The server of remote `name` (default: the upstream's, else origin).
fn server(repo: &Repository, name: Option<String>) -> Result<(String, HttpBackend), CommandError> {
    let name = match name {
        Some(n) => n,
        None => crate::remote_cmd::default_remote(repo)?,
    };
    let Some(cfg) = repo.config().remotes.get(&name) else {
        return Err(CommandError::user(
            "no-such-remote",
            format!("no remote named '{name}'"),
        ));
    };
    if !matches!(RemoteUrl::parse(&cfg.url)?, RemoteUrl::Http(_)) {
        return Err(CommandError::user(
            "no-lock-server",
            format!(
                "remote '{name}' is {}: file locks live on a MediaGit server (an http(s):// remote)",
                cfg.url
            ),
        ));
    }
    let access = crate::remote_cmd::remote_access(cfg.token_env.clone().into_iter(), false)?;
    let b = mediagit_repo::remote::http_backend(&cfg.url, cfg.token_env.as_deref(), &access)?;
    Ok((name, b))
}

fn when(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| secs.to_string())
}

fn storage_err(e: mediagit_storage::StorageError) -> CommandError {
    CommandError::from(mediagit_repo::RepoError::from(e))
}

/// `lock PATH...`: each path locked for this user; a path someone else
/// holds is reported (the others are still locked) and the exit is 1.
pub fn lock(
    repo: &Repository,
    paths: Vec<String>,
    remote: Option<String>,
    owner: Option<String>,
) -> CmdResult {
    if paths.iter().any(String::is_empty) {
        return Err(CommandError::user(
            "lock-failed",
            "the top of the working tree is not a file: name the files to lock",
        ));
    }
    let (name, server) = server(repo, remote)?;
    let mine = owned_by_me(&server, owner.as_deref())?;
    if owner.is_none() && server.info().map_err(storage_err)?.user == "anonymous" {
        return Err(CommandError::user(
            "lock-failed",
            format!(
                "remote '{name}' has no users: a lock there records your name, and none is set"
            ),
        )
        .with_hint("mediagit config --global author.name \"Your Name\" (and author.email)"));
    }
    if repo.is_encrypted() {
        eprintln!(
            "warning: file locks are not encrypted: the server sees the path of each file you lock and your name (FORMAT.md §13.7)"
        );
    }
    let mut failed = Vec::new();
    let mut locked = Vec::new();
    for p in &paths {
        // A lock guards one exact path: say so when it names no file of
        // the current commit (a directory, another case, a typo; a file
        // not committed yet is a fine thing to lock).
        match in_head(repo, p) {
            Some(Some(mediagit_repo::tree::Lookup::Dir(_))) => eprintln!(
                "warning: {p} is a directory; a lock guards only a file at this exact path, not what is inside"
            ),
            Some(None) => eprintln!(
                "warning: {p} is not a file of the current commit; the lock guards only this exact path"
            ),
            _ => {}
        }
        match server.lock(p, owner.as_deref()) {
            Ok(r) => {
                eprintln!("Locked {} on remote '{name}' (owner {})", r.path, r.owner);
                locked.push(p.clone());
            }
            // Already yours (taken before, by this or another working
            // tree): held, and recorded here.
            Err(_) if holder(&server, p)?.is_some_and(|o| mine(&o)) => {
                eprintln!("{p} is already locked by you on remote '{name}'");
                locked.push(p.clone());
            }
            Err(e) => {
                eprintln!("error: {}", storage_err(e).message);
                failed.push(p.clone());
            }
        }
    }
    // Held here now: a lockable file becomes writable.
    permissions(repo, &locked, true)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CommandError::user(
            "lock-failed",
            format!("{} of {} path(s) not locked: {}", failed.len(), paths.len(), failed.join(", ")),
        )
        .with_hint("`mediagit locks` shows who holds what; the owner unlocks (`mediagit unlock PATH`), an admin may break a lock with `unlock --force`"))
    }
}

/// Records the locks this working tree now holds (or no longer holds) and
/// sets the files' permissions (`[locks] patterns`), waiting up to 10 s
/// for another command of this working tree to finish. The locks are
/// taken or released on the server already: a failure says how to finish.
fn permissions(repo: &Repository, paths: &[String], held: bool) -> CmdResult {
    if paths.is_empty() || repo.is_bare() {
        return Ok(());
    }
    let t0 = std::time::Instant::now();
    let c = loop {
        match repo.set_locks_held(paths, held) {
            Err(mediagit_repo::RepoError::Locked { .. }) if t0.elapsed().as_secs() < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            r => break r,
        }
    };
    match c {
        Ok(c) => {
            for p in &c.writable {
                eprintln!("{p} is writable (locked here)");
            }
            for p in &c.read_only {
                eprintln!("{p} is read-only again (lockable: [locks] patterns)");
            }
            Ok(())
        }
        Err(e) => {
            let e = CommandError::from(e);
            let (what, again) = if held {
                ("locked on the server", "mediagit lock")
            } else {
                ("released on the server", "mediagit unlock")
            };
            Err(CommandError::user(
                e.kind,
                format!(
                    "{} {what}, but this working tree could not record it: {}",
                    paths.join(", "),
                    e.message
                ),
            )
            .with_hint(format!("run `{again} {}` again", paths.join(" "))))
        }
    }
}

/// Who holds the lock of `path` on `server` (`None`: nobody).
fn holder(server: &HttpBackend, path: &str) -> Result<Option<String>, CommandError> {
    Ok(server
        .locks(Some(path))
        .map_err(storage_err)?
        .into_iter()
        .find(|l| l.path == path)
        .map(|l| l.owner))
}

/// Whether a lock owner is this client: the server's name for its user,
/// or on a server without users the name it locks as (`me`).
fn owned_by_me(
    server: &HttpBackend,
    me: Option<&str>,
) -> Result<impl Fn(&str) -> bool, CommandError> {
    let user = server.info().map_err(storage_err)?.user;
    let me = me.map(str::to_string);
    // Without users every client is "anonymous": owners are the names
    // clients lock as, and a lock recorded as "anonymous" (by an older
    // server) is no one's.
    Ok(move |owner: &str| match user.as_str() {
        "anonymous" => owner != "anonymous" && Some(owner) == me.as_deref(),
        u => owner == u,
    })
}

/// What `path` is in the commit checked out (`None`: no commit to ask).
fn in_head(repo: &Repository, path: &str) -> Option<Option<mediagit_repo::tree::Lookup>> {
    let head = repo.resolve("HEAD").ok()?;
    let odb = repo.odb().ok()?;
    let commit = odb.read_commit(&head).ok()?;
    mediagit_repo::tree::lookup(odb, &commit.tree, path).ok()
}

pub fn unlock(
    repo: &Repository,
    paths: Vec<String>,
    remote: Option<String>,
    force: bool,
    owner: Option<String>,
) -> CmdResult {
    let (name, server) = server(repo, remote)?;
    let mine = owned_by_me(&server, owner.as_deref())?;
    // Paths this working tree records as held whose lock is gone or
    // someone else's: no longer held here.
    let mut stale = Vec::new();
    let mut failed = Vec::new();
    let mut unlocked = Vec::new();
    // Unlocking a file with changes not committed would let someone else
    // start on the old version (Git LFS refuses it too): --force to insist.
    let changed: std::collections::BTreeSet<String> = if force || repo.is_bare() {
        Default::default()
    } else {
        let st = repo.status()?;
        st.staged
            .iter()
            .chain(&st.unstaged)
            .flat_map(|c| std::iter::once(c.path.clone()).chain(c.from.clone()))
            .collect()
    };
    for p in &paths {
        if changed.contains(p) {
            eprintln!(
                "error: {p} has changes that are not committed; commit (and push) them first, or `mediagit unlock --force` to release the lock anyway"
            );
            failed.push(p.clone());
            continue;
        }
        match server.unlock(p, force, owner.as_deref()) {
            Ok(r) => {
                eprintln!(
                    "Unlocked {} on remote '{name}' (was locked by {})",
                    r.path, r.owner
                );
                unlocked.push(p.clone());
            }
            Err(e) => {
                eprintln!("error: {}", storage_err(e).message);
                failed.push(p.clone());
                if !holder(&server, p)?.is_some_and(|o| mine(&o)) {
                    stale.push(p.clone());
                }
            }
        }
    }
    // No longer held here: a lockable file becomes read-only again.
    unlocked.extend(stale);
    permissions(repo, &unlocked, false)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CommandError::user(
            "unlock-failed",
            format!(
                "{} of {} path(s) not unlocked: {}",
                failed.len(),
                paths.len(),
                failed.join(", ")
            ),
        ))
    }
}

pub fn locks(
    repo: &Repository,
    path: Option<String>,
    remote: Option<String>,
    json: bool,
) -> CmdResult {
    let (_, server) = server(repo, remote)?;
    let list: Vec<LockRecord> = server.locks(path.as_deref()).map_err(storage_err)?;
    let mut out = crate::output::SafeText::new(std::io::stdout().lock());
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&list)
                .map_err(|e| CommandError::user("output-failed", e.to_string()))?
        )?;
        return Ok(());
    }
    for r in list {
        writeln!(out, "{}\t{}\t{}", r.path, r.owner, when(r.created))?;
    }
    Ok(())
}

/// Before a push to a server: the files someone else has locked there,
/// (path, owner), for the push to refuse changing (checked by the library
/// against exactly the commits the push sends, as Git LFS's pre-push lock
/// check). `me`: the author name this client records as the owner on a
/// server without users (which knows every client as `anonymous`).
pub fn locked_by_others(
    repo: &Repository,
    remote: &mediagit_repo::remote::Remote,
    me: Option<&str>,
) -> Result<Vec<(String, String)>, CommandError> {
    if !matches!(RemoteUrl::parse(&remote.url)?, RemoteUrl::Http(_)) {
        return Ok(Vec::new());
    }
    let token_env = remote
        .name
        .as_ref()
        .and_then(|n| repo.config().remotes.get(n))
        .and_then(|r| r.token_env.clone());
    let access = crate::remote_cmd::remote_access(token_env.clone().into_iter(), false)?;
    let server = mediagit_repo::remote::http_backend(&remote.url, token_env.as_deref(), &access)?;
    let locks = server.locks(None).map_err(storage_err)?;
    if locks.is_empty() {
        return Ok(Vec::new());
    }
    let mine = owned_by_me(&server, me)?;
    Ok(locks
        .into_iter()
        .filter(|l| !mine(&l.owner))
        .map(|l| (l.path, l.owner))
        .collect())
}
