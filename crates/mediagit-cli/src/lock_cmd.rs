//! `mediagit lock`, `unlock`, `locks`: file locks on a MediaGit server,
//! so that two people do not edit the same binary file (which cannot be
//! merged) at once. Locks live on the server (conditional writes in its
//! store, so every server of one bucket sees them); a remote that is a
//! directory or a bucket has no one to enforce them.
use std::io::Write;
use std::path::PathBuf;

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
    let (name, server) = server(repo, remote)?;
    let mut failed = Vec::new();
    for p in &paths {
        match server.lock(p, owner.as_deref()) {
            Ok(r) => eprintln!("Locked {} on remote '{name}' (owner {})", r.path, r.owner),
            Err(e) => {
                eprintln!("error: {}", storage_err(e).message);
                failed.push(p.clone());
            }
        }
    }
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

pub fn unlock(
    repo: &Repository,
    paths: Vec<String>,
    remote: Option<String>,
    force: bool,
) -> CmdResult {
    let (name, server) = server(repo, remote)?;
    let mut failed = Vec::new();
    for p in &paths {
        match server.unlock(p, force) {
            Ok(r) => eprintln!(
                "Unlocked {} on remote '{name}' (was locked by {})",
                r.path, r.owner
            ),
            Err(e) => {
                eprintln!("error: {}", storage_err(e).message);
                failed.push(p.clone());
            }
        }
    }
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

/// Working-tree paths from the command line (relative to the current
/// directory, as every path argument).
pub fn repo_paths(
    repo: &Repository,
    cwd: &std::path::Path,
    paths: &[PathBuf],
) -> Result<Vec<String>, CommandError> {
    paths
        .iter()
        .map(|p| {
            repo.workspace()?
                .repo_path(cwd, p)
                .map_err(CommandError::from)
        })
        .collect()
}

/// Before a push to a server: refuses (nothing is pushed) when a branch
/// being pushed changes a file that someone else has locked there, as Git
/// LFS's pre-push lock check does. Changes are what differs between the
/// remote branch (or, for a new branch, the remote's current branch) and
/// the commit pushed; a remote value this repository does not have is a
/// push that would be refused as not a fast-forward anyway, and is not
/// checked.
pub fn check_push_locks(
    repo: &Repository,
    remote: &mediagit_repo::remote::Remote,
    refspecs: &[String],
) -> CmdResult {
    if !matches!(RemoteUrl::parse(&remote.url)?, RemoteUrl::Http(_)) {
        return Ok(());
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
        return Ok(());
    }
    let me = server.info().map_err(storage_err)?.user;
    let others: Vec<&LockRecord> = locks.iter().filter(|l| l.owner != me).collect();
    if others.is_empty() {
        return Ok(());
    }
    let specs: Vec<(String, String)> = if refspecs.is_empty() {
        match repo.workspace()?.head()? {
            mediagit_repo::refs::Head::Branch(b) => vec![(b.clone(), b)],
            mediagit_repo::refs::Head::Detached(_) => vec![],
        }
    } else {
        refspecs
            .iter()
            .map(|s| match s.split_once(':') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (s.clone(), s.clone()),
            })
            .collect()
    };
    let theirs = repo.remote_refs(remote)?;
    let head_value = theirs.head.as_ref().and_then(|h| {
        let r = format!("refs/heads/{h}");
        theirs.refs.iter().find(|(n, _)| *n == r).map(|(_, id)| *id)
    });
    let mut blocked = Vec::new();
    for (src, dst) in specs {
        if src.starts_with("refs/tags/") || dst.starts_with("refs/tags/") || src.is_empty() {
            continue;
        }
        let Ok(to) = repo.resolve(&src) else {
            // The push itself says what is wrong with SRC.
            continue;
        };
        let dst_ref = format!(
            "refs/heads/{}",
            dst.strip_prefix("refs/heads/").unwrap_or(&dst)
        );
        let from = theirs
            .refs
            .iter()
            .find(|(n, _)| *n == dst_ref)
            .map(|(_, id)| *id)
            .or(head_value);
        let Some(from) = from.filter(|id| repo.odb().is_ok_and(|o| o.read_commit(id).is_ok()))
        else {
            continue;
        };
        let changed = repo.paths_changed(Some(from), to)?;
        for l in &others {
            if changed.binary_search(&l.path).is_ok() {
                blocked.push(format!(
                    "{} (locked by {}, changed on {dst})",
                    l.path, l.owner
                ));
            }
        }
    }
    if blocked.is_empty() {
        return Ok(());
    }
    Err(CommandError::user(
        "push-locked",
        format!(
            "files locked by others would change on remote '{}'; nothing was pushed:\n  {}",
            remote.name.as_deref().unwrap_or(&remote.url),
            blocked.join("\n  ")
        ),
    )
    .with_hint("ask the owner to unlock them (`mediagit locks` shows who holds what), or an admin to break the lock with `mediagit unlock --force PATH`"))
}
