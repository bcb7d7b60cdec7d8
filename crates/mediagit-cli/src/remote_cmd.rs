//! `remote`, `fetch`, `pull`, `push`, `ls-remote`: the CLI side of
//! `mediagit_repo::remote`. Remotes and upstreams are settings of the
//! working tree (`[remotes.NAME]`, `[branches.NAME]` in its
//! `.mediagit/config.toml`), edited in place with `toml_edit` like every
//! `config` change.
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use mediagit_repo::remote::{
    FetchOptions, PushOptions, RefStatus, RefUpdate, Remote, RemoteAccess, RemoteUrl,
};
use mediagit_repo::transfer::TransferStats;
use mediagit_repo::Repository;

use crate::command_error::{exit, CommandError};
use crate::CmdResult;

#[derive(Subcommand)]
pub enum RemoteAction {
    /// Add a remote: a directory (another repository), file://DIR, or a
    /// store (s3://BUCKET/PREFIX, az://, gs://, b2://).
    Add { name: String, url: String },
    /// Remove a remote, its remote-tracking branches and the upstreams
    /// that name it.
    #[command(alias = "rm")]
    Remove { name: String },
    /// Rename a remote (its remote-tracking branches and upstreams follow).
    Rename { old: String, new: String },
    /// Change a remote's URL.
    SetUrl { name: String, url: String },
    /// List remotes (the default; `-v`: with their URLs).
    List,
}

/// The working tree's settings file.
fn config_path(repo: &Repository) -> Result<PathBuf, CommandError> {
    Ok(repo.workspace()?.dir().join("config.toml"))
}

/// Reads, edits and writes the repository's settings file under its lock.
pub(crate) fn edit_config(
    repo: &Repository,
    f: impl FnOnce(&mut toml_edit::DocumentMut) -> CmdResult,
) -> CmdResult {
    let path = config_path(repo)?;
    let _lock = crate::config_cmd::lock("local", &path)?;
    let text = crate::config_cmd::read(&path)?;
    let mut doc = crate::config_cmd::parse(&path, &text)?;
    f(&mut doc)?;
    crate::config_cmd::write("local", &path, &doc.to_string())
}

/// The `[NAME]` table of the document, made if absent (a table of its
/// own, with its entries as `[NAME.KEY]` sections).
pub(crate) fn table<'a>(
    doc: &'a mut toml_edit::DocumentMut,
    name: &str,
) -> Result<&'a mut toml_edit::Table, CommandError> {
    if doc.get(name).is_none() {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        doc.insert(name, toml_edit::Item::Table(t));
    }
    doc.get_mut(name)
        .and_then(|t| t.as_table_mut())
        .ok_or_else(|| {
            CommandError::user(
                "config-invalid",
                format!("[{name}] in the repository's config.toml is not a table"),
            )
            .with_hint("fix the file with `mediagit config --edit`")
        })
}

fn check_name(name: &str) -> CmdResult {
    match mediagit_format::config::invalid_remote_name(name) {
        None => Ok(()),
        Some(why) => Err(CommandError::user(
            "invalid-remote-name",
            format!("'{name}' is not a valid remote name: {why}"),
        )),
    }
}

/// The URL as stored: a directory becomes absolute (the remote must not
/// change with the directory a later command runs in).
fn normalize_url(cwd: &Path, url: &str) -> Result<String, CommandError> {
    match RemoteUrl::parse(url)? {
        RemoteUrl::Dir(p) => {
            let abs = if p.is_absolute() { p } else { cwd.join(p) };
            let abs = abs.canonicalize().unwrap_or(abs);
            abs.to_str().map(str::to_string).ok_or_else(|| {
                CommandError::user(
                    "invalid-remote-url",
                    format!("{} is not valid UTF-8", abs.display()),
                )
            })
        }
        RemoteUrl::Http(u) => {
            mediagit_protocol::wire::ServerUrl::parse(&u).map_err(|why| {
                CommandError::user(
                    "invalid-remote-url",
                    format!("{}: {why}", mediagit_protocol::wire::redact_url(&u)),
                )
            })?;
            Ok(u)
        }
        _ => Ok(url.to_string()),
    }
}

fn no_remote(name: &str) -> CommandError {
    CommandError::user("no-such-remote", format!("no remote named '{name}'"))
        .with_hint("`mediagit remote -v` lists the remotes")
}

pub fn remote(repo: &Repository, cwd: &Path, action: RemoteAction, verbose: bool) -> CmdResult {
    let cfg = repo.config();
    match action {
        RemoteAction::List => {
            let mut out = crate::output::SafeText::new(std::io::stdout().lock());
            for (name, r) in &cfg.remotes {
                if verbose {
                    writeln!(out, "{name}\t{}", r.url)?;
                } else {
                    writeln!(out, "{name}")?;
                }
            }
            Ok(out.flush()?)
        }
        RemoteAction::Add { name, url } => {
            check_name(&name)?;
            if cfg.remotes.contains_key(&name) {
                return Err(CommandError::user(
                    "remote-exists",
                    format!("remote '{name}' already exists"),
                )
                .with_hint(format!(
                    "change its URL with `mediagit remote set-url {name} URL`"
                )));
            }
            let url = normalize_url(cwd, &url)?;
            edit_config(repo, |doc| {
                let t = table(doc, "remotes")?;
                let mut r = toml_edit::Table::new();
                r.insert("url", toml_edit::value(url.clone()));
                t.insert(&name, toml_edit::Item::Table(r));
                Ok(())
            })
        }
        RemoteAction::SetUrl { name, url } => {
            if !cfg.remotes.contains_key(&name) {
                return Err(no_remote(&name));
            }
            let url = normalize_url(cwd, &url)?;
            edit_config(repo, |doc| {
                let t = table(doc, "remotes")?;
                let r = t
                    .get_mut(&name)
                    .and_then(|r| r.as_table_like_mut())
                    .ok_or_else(|| no_remote(&name))?;
                r.insert("url", toml_edit::value(url.clone()));
                Ok(())
            })
        }
        RemoteAction::Remove { name } => {
            if !cfg.remotes.contains_key(&name) {
                return Err(no_remote(&name));
            }
            edit_config(repo, |doc| {
                table(doc, "remotes")?.remove(&name);
                if let Some(b) = doc.get_mut("branches").and_then(|b| b.as_table_mut()) {
                    let stale: Vec<String> = b
                        .iter()
                        .filter(|(_, v)| {
                            v.get("remote").and_then(|r| r.as_str()) == Some(name.as_str())
                        })
                        .map(|(k, _)| k.to_string())
                        .collect();
                    for k in stale {
                        b.remove(&k);
                    }
                }
                Ok(())
            })?;
            let prefix = format!("refs/remotes/{name}/");
            for (branch, id) in repo.list_refs(&prefix)? {
                repo.cas_ref(&format!("{prefix}{branch}"), Some(id), None)?;
            }
            Ok(())
        }
        RemoteAction::Rename { old, new } => {
            if !cfg.remotes.contains_key(&old) {
                return Err(no_remote(&old));
            }
            check_name(&new)?;
            if cfg.remotes.contains_key(&new) {
                return Err(CommandError::user(
                    "remote-exists",
                    format!("remote '{new}' already exists"),
                ));
            }
            let (from, to) = (
                format!("refs/remotes/{old}/"),
                format!("refs/remotes/{new}/"),
            );
            if !repo.list_refs(&to)?.is_empty() {
                return Err(CommandError::user(
                    "remote-exists",
                    format!("remote-tracking branches {to}* exist already"),
                ));
            }
            edit_config(repo, |doc| {
                let t = table(doc, "remotes")?;
                let item = t.remove(&old).ok_or_else(|| no_remote(&old))?;
                t.insert(&new, item);
                if let Some(b) = doc.get_mut("branches").and_then(|b| b.as_table_mut()) {
                    for (_, v) in b.iter_mut() {
                        if let Some(t) = v.as_table_like_mut() {
                            if t.get("remote").and_then(|r| r.as_str()) == Some(old.as_str()) {
                                t.insert("remote", toml_edit::value(new.clone()));
                            }
                        }
                    }
                }
                Ok(())
            })?;
            // New names first, then the old ones go: an interruption
            // leaves both, never neither.
            let refs = repo.list_refs(&from)?;
            for (branch, id) in &refs {
                repo.cas_ref(&format!("{to}{branch}"), None, Some(*id))?;
            }
            for (branch, id) in refs {
                repo.cas_ref(&format!("{from}{branch}"), Some(id), None)?;
            }
            Ok(())
        }
    }
}

/// The remote a command without one uses: the current branch's
/// upstream, else `origin`, else the only remote.
pub fn default_remote(repo: &Repository) -> Result<String, CommandError> {
    let cfg = repo.config();
    if let Ok(mediagit_repo::refs::Head::Branch(b)) = repo.head() {
        if let Some((remote, _)) = cfg.upstream(&b) {
            return Ok(remote);
        }
    }
    if cfg.remotes.contains_key("origin") {
        return Ok("origin".into());
    }
    let mut names = cfg.remotes.keys();
    match (names.next(), names.next()) {
        (Some(n), None) => Ok(n.clone()),
        (None, _) => Err(
            CommandError::user("no-remote", "this repository has no remote")
                .with_hint("add one with `mediagit remote add origin URL`"),
        ),
        _ => Err(CommandError::user(
            "no-remote",
            "more than one remote and no upstream for this branch: name the remote",
        )),
    }
}

pub(crate) fn open(repo: &Repository, name: &str) -> Result<Remote, CommandError> {
    open_for(repo, name, false)
}

/// `create`: a server repository that does not exist yet is created
/// (a push), if the server allows it.
pub(crate) fn open_for(
    repo: &Repository,
    name: &str,
    create: bool,
) -> Result<Remote, CommandError> {
    let vars = repo
        .config()
        .remotes
        .values()
        .filter_map(|r| r.token_env.clone());
    let access = remote_access(vars, create)?;
    let configured = repo.config().remotes.contains_key(name);
    repo.open_remote(name, &access).map_err(|e| {
        let mut c = CommandError::from(e);
        if configured {
            c.message = format!("remote '{name}': {}", c.message);
        }
        c
    })
}

/// What opening a remote needs from the environment: cloud credentials,
/// trusted directories, the server tokens in `MEDIAGIT_TOKEN` and in
/// each variable `token_vars` names, and `MEDIAGIT_CA_FILE`.
pub(crate) fn remote_access(
    token_vars: impl Iterator<Item = String>,
    create: bool,
) -> Result<RemoteAccess, CommandError> {
    let mut tokens = std::collections::BTreeMap::new();
    for var in std::iter::once(mediagit_repo::remote::TOKEN_VAR.to_string()).chain(token_vars) {
        if let Some(v) = crate::commands::env_var(&var) {
            tokens.insert(var, v);
        }
    }
    Ok(RemoteAccess {
        env: crate::commands::cloud_env(),
        safe: crate::user_config::safe_directories()?,
        tokens,
        ca_file: crate::commands::env_var("MEDIAGIT_CA_FILE").map(std::path::PathBuf::from),
        create,
    })
}

fn short(id: Option<mediagit_format::ObjectId>) -> String {
    id.map(|i| i.short(12)).unwrap_or_default()
}

fn strip(name: &str) -> &str {
    ["refs/heads/", "refs/tags/", "refs/remotes/"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name)
}

/// A ref name from a remote as printed: characters that change how text
/// reads without showing (bidi overrides, zero-width spaces) escaped, so
/// a rejected name cannot reorder the rest of the line.
fn visible(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
            | '\u{ad}' => format!("\\u{{{:04x}}}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// Git's lines: ` * [new branch]  main -> origin/main`.
fn report(out: &mut dyn Write, u: &RefUpdate) -> std::io::Result<()> {
    let (flag, what, note) = match &u.status {
        RefStatus::New if u.name.starts_with("refs/tags/") => ('*', "[new tag]".into(), None),
        RefStatus::New => ('*', "[new branch]".into(), None),
        RefStatus::FastForward => (' ', format!("{}..{}", short(u.old), short(u.new)), None),
        RefStatus::Forced => (
            '+',
            format!("{}...{}", short(u.old), short(u.new)),
            Some("forced update".to_string()),
        ),
        RefStatus::UpToDate => ('=', "[up to date]".into(), None),
        RefStatus::Deleted => ('-', "[deleted]".into(), None),
        RefStatus::Rejected(why) => ('!', "[rejected]".into(), Some(why.clone())),
    };
    let arrow = if u.source.is_empty() {
        visible(strip(&u.name))
    } else {
        format!(
            "{} -> {}",
            visible(strip(&u.source)),
            visible(strip(&u.name))
        )
    };
    match note {
        Some(n) => writeln!(out, " {flag} {what:<27} {arrow} ({n})"),
        None => writeln!(out, " {flag} {what:<27} {arrow}"),
    }
}

fn transfer_line(verb: &str, t: &TransferStats) -> String {
    format!(
        "{verb} {} object(s) ({} chunk(s), {}) in {} read(s); {} new commit(s)",
        t.objects,
        t.chunks,
        crate::output::human_size(t.bytes),
        t.reads,
        t.commits
    )
}

pub struct FetchArgs {
    pub remote: Option<String>,
    pub all: bool,
    pub prune: bool,
    pub no_tags: bool,
    pub json: bool,
}

pub fn fetch(
    repo: &Repository,
    args: FetchArgs,
    who: &mediagit_format::Signature,
    quiet: bool,
    progress: &dyn mediagit_repo::progress::Progress,
) -> CmdResult {
    let names: Vec<String> = if args.all {
        repo.config().remotes.keys().cloned().collect()
    } else {
        vec![match args.remote {
            Some(r) => r,
            None => default_remote(repo)?,
        }]
    };
    let mut outcomes = Vec::new();
    // With --all, a remote that fails is reported and the others are
    // fetched; the command then fails.
    let mut failed: Vec<(String, CommandError)> = Vec::new();
    for name in names {
        let fetched = open(repo, &name).and_then(|remote| {
            let o = repo.fetch(
                &remote,
                &FetchOptions {
                    prune: args.prune,
                    tags: !args.no_tags,
                },
                who,
                progress,
            )?;
            Ok((remote, o))
        });
        let (remote, o) = match fetched {
            Ok(x) => x,
            Err(e) if args.all => {
                eprintln!("error: fetching '{name}': {}", e.message);
                failed.push((name, e));
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(w) = &o.media_warning {
            eprintln!(
                "warning: the remote's media records were not brought in: {}",
                crate::output::safe(w)
            );
        }
        if !args.json {
            let mut err = crate::output::SafeText::new(std::io::stderr().lock());
            let moved: Vec<&RefUpdate> = o
                .updates
                .iter()
                .filter(|u| u.status != RefStatus::UpToDate)
                .collect();
            if !quiet || moved.iter().any(|u| u.rejected()) {
                if !moved.is_empty() {
                    writeln!(err, "From {}", remote.url)?;
                }
                for u in moved {
                    if !quiet || u.rejected() {
                        report(&mut err, u)?;
                    }
                }
                if !quiet && o.transfer.objects > 0 {
                    writeln!(err, "{}", transfer_line("Received", &o.transfer))?;
                }
            }
        }
        outcomes.push(o);
    }
    if args.json {
        let mut out = std::io::stdout().lock();
        crate::output::write_json(&mut out, &outcomes)?;
        out.flush()?;
    }
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
        return Err(CommandError::user(
            "fetch-failed",
            format!("could not fetch from {}", names.join(", ")),
        ));
    }
    let rejected = outcomes
        .iter()
        .flat_map(|o| o.updates.iter())
        .filter(|u| u.rejected())
        .count();
    if rejected > 0 {
        return Err(CommandError::user(
            "fetch-rejected",
            format!("{rejected} ref(s) were not updated (the lines marked [rejected] say why)"),
        ));
    }
    Ok(())
}

pub struct PushArgs {
    pub remote: Option<String>,
    pub refspecs: Vec<String>,
    pub force: bool,
    pub force_with_lease: bool,
    pub tags: bool,
    pub delete: Vec<String>,
    pub set_upstream: bool,
    pub json: bool,
}

pub fn push(
    repo: &Repository,
    args: PushArgs,
    quiet: bool,
    progress: &dyn mediagit_repo::progress::Progress,
) -> CmdResult {
    let name = match &args.remote {
        Some(r) => r.clone(),
        None => default_remote(repo)?,
    };
    let remote = open_for(repo, &name, true)?;
    if args.set_upstream && remote.name.is_none() {
        return Err(CommandError::user(
            "no-remote",
            "-u needs a configured remote (`mediagit remote add NAME URL`), not a URL; nothing was pushed",
        ));
    }
    let me = crate::commands::author_name(repo);
    let locked = crate::lock_cmd::locked_by_others(repo, &remote, me.as_deref())?;
    let o = repo.push(
        &remote,
        &PushOptions {
            refspecs: args.refspecs.clone(),
            tags: args.tags,
            delete: args.delete.clone(),
            force: args.force,
            force_with_lease: args.force_with_lease,
            locked,
        },
        progress,
    )?;
    if let Some(w) = &o.media_warning {
        eprintln!(
            "warning: the pushed files' media records were not sent: {}",
            crate::output::safe(w)
        );
    }
    if args.set_upstream {
        let Some(rname) = &remote.name else {
            return Err(CommandError::user(
                "no-remote",
                "-u needs a configured remote (`mediagit remote add NAME URL`), not a URL",
            ));
        };
        let pushed: Vec<(String, String)> = o
            .updates
            .iter()
            .filter(|u| !u.rejected() && u.new.is_some())
            .filter_map(|u| {
                Some((
                    u.source.strip_prefix("refs/heads/")?.to_string(),
                    u.name.strip_prefix("refs/heads/")?.to_string(),
                ))
            })
            .collect();
        edit_config(repo, |doc| {
            let t = table(doc, "branches")?;
            for (local, merge) in &pushed {
                let mut b = toml_edit::Table::new();
                b.insert("remote", toml_edit::value(rname.clone()));
                b.insert("merge", toml_edit::value(merge.clone()));
                t.insert(local, toml_edit::Item::Table(b));
            }
            Ok(())
        })?;
        if !quiet && !args.json {
            for (local, merge) in &pushed {
                eprintln!("branch '{local}' set up to track '{rname}/{merge}'");
            }
        }
    }
    let rejected = o.updates.iter().filter(|u| u.rejected()).count();
    if args.json {
        let mut out = std::io::stdout().lock();
        crate::output::write_json(&mut out, &o)?;
        out.flush()?;
    } else {
        let mut err = crate::output::SafeText::new(std::io::stderr().lock());
        if !quiet || rejected > 0 {
            writeln!(err, "To {}", remote.url)?;
            for u in &o.updates {
                if !quiet || u.rejected() {
                    report(&mut err, u)?;
                }
            }
            if !quiet && o.transfer.objects > 0 {
                writeln!(err, "{}", transfer_line("Sent", &o.transfer))?;
            }
            if !quiet && o.updates.iter().all(|u| u.status == RefStatus::UpToDate) {
                writeln!(err, "Everything up-to-date")?;
            }
        }
    }
    if rejected > 0 {
        let why = |s: &str| {
            o.updates
                .iter()
                .any(|u| matches!(&u.status, RefStatus::Rejected(w) if w.contains(s)))
        };
        let hint = if why("stale info") {
            "someone pushed since your last fetch: `mediagit fetch`, look at what they pushed, then push again"
        } else if why("non-fast-forward") || why("moved while pushing") {
            "fetch and integrate the remote's changes (`mediagit pull`), then push again; --force-with-lease overwrites them only if nobody pushed since your last fetch"
        } else {
            "the lines marked [rejected] say why; the other refs were pushed"
        };
        return Err(CommandError::user(
            "push-rejected",
            format!("failed to push {rejected} ref(s) to {}", remote.label()),
        )
        .with_hint(hint)
        .exit_code(exit::CONFLICT));
    }
    Ok(())
}

pub fn ls_remote(repo: &Repository, remote: Option<String>, json: bool) -> CmdResult {
    let name = match remote {
        Some(r) => r,
        None => default_remote(repo)?,
    };
    let remote = open(repo, &name)?;
    let refs = repo.remote_refs(&remote)?;
    let mut out = crate::output::SafeText::new(std::io::stdout().lock());
    if json {
        crate::output::write_json(&mut out, &refs)?;
        return Ok(out.flush()?);
    }
    if let Some(h) = &refs.head {
        if let Some((_, id)) = refs
            .refs
            .iter()
            .find(|(n, _)| n.strip_prefix("refs/heads/") == Some(h.as_str()))
        {
            writeln!(out, "{id}\tHEAD")?;
        }
    }
    for (n, id) in &refs.refs {
        writeln!(out, "{id}\t{}", visible(n))?;
    }
    out.flush()?;
    for (n, why) in &refs.unreadable {
        eprintln!("warning: {}: {}", visible(n), crate::output::safe(why));
    }
    Ok(())
}

/// `pull [REMOTE [BRANCH]]`: fetch, then fast-forward the checked-out
/// branch to the remote branch (its upstream by default). A branch that
/// has commits of its own is not merged (merge comes with the history
/// commands): the user is told how the two differ.
pub fn pull(
    repo: &Repository,
    remote: Option<String>,
    branch: Option<String>,
    who: &mediagit_format::Signature,
    identity: Option<&mediagit_format::Signature>,
    quiet: bool,
    progress: &dyn mediagit_repo::progress::Progress,
) -> CmdResult {
    let mediagit_repo::refs::Head::Branch(cur) = repo.head()? else {
        return Err(CommandError::user(
            "detached-head",
            "HEAD is detached: switch to a branch to pull into it",
        ));
    };
    let upstream = repo.config().upstream(&cur);
    // A working tree of a shared store without remotes: the store's branch
    // moved (another machine committed); local work is merged onto it.
    if remote.is_none() && upstream.is_none() && repo.config().remotes.is_empty() {
        if let Some((base, tip)) = repo.branch_moved()? {
            return pull_shared(repo, &cur, base, tip, identity, quiet, progress);
        }
        if repo.workspace()?.tracks_base() {
            if !quiet {
                eprintln!("Already up to date (with the store's {cur}).");
            }
            warn_left_stash(repo);
            return Ok(());
        }
    }
    let rname = match (&remote, &upstream) {
        (Some(r), _) => r.clone(),
        (None, Some((r, _))) => r.clone(),
        (None, None) => default_remote(repo)?,
    };
    let merge = match (&branch, &upstream) {
        (Some(b), _) => b.clone(),
        (None, Some((r, m))) if *r == rname => m.clone(),
        _ => cur.clone(),
    };
    if !repo.config().remotes.contains_key(&rname) {
        return Err(no_remote(&rname));
    }
    fetch(
        repo,
        FetchArgs {
            remote: Some(rname.clone()),
            all: false,
            prune: false,
            no_tags: false,
            json: false,
        },
        who,
        quiet,
        progress,
    )?;
    let tracking = format!("refs/remotes/{rname}/{merge}");
    let Some(theirs) = repo.read_ref(&tracking)? else {
        return Err(CommandError::user(
            "no-such-branch",
            format!("{} has no branch '{merge}'", rname),
        ));
    };
    let ours = repo.head_commit()?;
    // A refused fast-forward changed nothing; what to do is not `--force`.
    let refused = |e: mediagit_repo::error::RepoError| -> CommandError {
        let overwrite = matches!(
            e,
            mediagit_repo::error::RepoError::WouldOverwriteChanges { .. }
                | mediagit_repo::error::RepoError::WouldOverwriteUntracked { .. }
        );
        let c = CommandError::from(e);
        match overwrite {
            true => c.with_hint(
                "commit your changes, or move those files away, then pull again (nothing was changed)",
            ),
            false => c,
        }
    };
    match ours {
        None => {
            // An unborn branch starts at theirs, with every file written.
            let out = repo
                .fast_forward(
                    &cur,
                    None,
                    theirs,
                    &format!("pull: from {rname}/{merge}"),
                    who,
                    progress,
                )
                .map_err(refused)?;
            if !quiet {
                eprintln!(
                    "Checked out {} from '{rname}/{merge}': {} file(s) written",
                    theirs.short(12),
                    out.written
                );
            }
        }
        Some(o) if o == theirs => {
            if !quiet {
                eprintln!("Already up to date.");
            }
        }
        Some(o) if repo.is_ancestor(theirs, o)? => {
            if !quiet {
                eprintln!("Already up to date (your branch is ahead of '{rname}/{merge}').");
            }
        }
        Some(o) if repo.is_ancestor(o, theirs)? => {
            let out = repo
                .fast_forward(
                    &cur,
                    Some(o),
                    theirs,
                    &format!("pull: fast-forward from {rname}/{merge}"),
                    who,
                    progress,
                )
                .map_err(refused)?;
            if !quiet {
                eprintln!(
                    "Updating {}..{}\nFast-forward: {} file(s) written, {} removed",
                    o.short(12),
                    theirs.short(12),
                    out.written,
                    out.removed
                );
            }
        }
        Some(_) => {
            // Diverged: merge the fetched branch (a merge commit, or a
            // stop at conflicts with exit 3).
            let who = identity.ok_or(mediagit_repo::RepoError::MissingIdentity)?;
            let name = format!("{rname}/{merge}");
            let out = repo.merge(
                &mediagit_repo::sequencer::MergeOptions {
                    theirs,
                    theirs_name: name,
                    message: None,
                    ff: mediagit_repo::sequencer::FastForward::Allow,
                    squash: false,
                    favor: None,
                    who: who.clone(),
                },
                progress,
            )?;
            crate::history_cmd::report(repo, mediagit_repo::sequencer::OpKind::Merge, &out, quiet)?;
        }
    }
    Ok(())
}

/// The message of the stash entry `pull` sets local changes aside in.
const PULL_STASH: &str = "pull: local changes";

/// An earlier `pull` that did not finish (killed) may have left the local
/// changes in a stash entry: say so, so they are not forgotten there.
fn warn_left_stash(repo: &Repository) {
    if let Ok(list) = repo.stash_list() {
        if let Some(e) = list.iter().find(|e| e.message.ends_with(PULL_STASH)) {
            eprintln!(
                "warning: stash@{{{}}} holds local changes an earlier pull set aside (`mediagit stash show {}`, `mediagit stash pop {}`)",
                e.index, e.index, e.index
            );
        }
    }
}

/// `pull` in a working tree of a shared store whose branch another
/// machine moved: the local changes are set aside (a stash entry), the
/// working tree brought up to the store's tip, and the changes merged back;
/// where they conflict with the tip they stay in the stash entry.
fn pull_shared(
    repo: &Repository,
    cur: &str,
    base: Option<mediagit_format::ObjectId>,
    tip: Option<mediagit_format::ObjectId>,
    identity: Option<&mediagit_format::Signature>,
    quiet: bool,
    progress: &dyn mediagit_repo::progress::Progress,
) -> CmdResult {
    let Some(tip) = tip else {
        return Err(CommandError::user(
            "no-such-branch",
            format!("the store's branch '{cur}' was deleted"),
        ));
    };
    // A branch that went back is not followed silently: that is how a
    // rollback of the store (or a forced reset elsewhere) would undo
    // this working tree's commits without a word.
    if let Some(base) = base.filter(|b| repo.branch_moved_back(*b, tip)) {
        return Err(CommandError::user(
            "branch-moved-back",
            format!(
                "the store's {cur} went back to {}, an ancestor of {}, which this working tree last saw there; pull does not follow a branch backwards; nothing was changed",
                tip.short(12),
                base.short(12)
            ),
        )
        .with_hint(format!(
            "`mediagit status` explains; to follow it anyway: `mediagit switch {cur}`; to put {} back: `mediagit switch {cur}` then `mediagit reset --hard {}`",
            base.short(12),
            base.short(12)
        )));
    }
    let who = identity.ok_or(mediagit_repo::RepoError::MissingIdentity)?;
    warn_left_stash(repo);
    // Local changes come back as working-tree changes: a staged version
    // that differs from the file would not. Refused before anything moves.
    let st = repo.status()?;
    let both: Vec<&str> = st
        .staged
        .iter()
        .filter(|c| st.unstaged.iter().any(|u| u.path == c.path))
        .map(|c| c.path.as_str())
        .collect();
    if !both.is_empty() {
        return Err(CommandError::user(
            "staged-changes",
            format!(
                "the store's {cur} moved; pull brings your local changes back as they are in the working tree, and {} file(s) have a staged version that differs from the file ({}): it would be lost; nothing was changed",
                both.len(),
                both.iter().take(5).copied().collect::<Vec<_>>().join(", ")
            ),
        )
        .with_hint("commit them, or unstage them with `mediagit reset` (the files keep their content), then pull again"));
    }
    let stashed = match base {
        Some(_) => repo.stash_push(Some(PULL_STASH), &[], who, progress)?,
        None => None,
    };
    let out = match repo.fast_forward(cur, base, tip, "pull: the store's tip", who, progress) {
        Ok(out) => out,
        Err(e) => {
            // Refused (untracked files in the way...): the local changes
            // come back before the refusal is reported.
            if stashed.is_some() {
                if let Err(pe) = repo.stash_apply(0, true, progress) {
                    return Err(CommandError::from(e).with_hint(format!(
                        "your local changes are kept as stash@{{0}} (they could not be put back: {pe}); `mediagit stash pop` once the way is clear"
                    )));
                }
            }
            return Err(CommandError::from(e).with_hint(
                "move those files away (or commit your changes), then pull again; your local changes are as they were",
            ));
        }
    };
    if !quiet {
        eprintln!(
            "Updated to the store's {cur} at {}: {} file(s) written, {} removed",
            tip.short(12),
            out.written,
            out.removed
        );
    }
    if stashed.is_some() {
        match repo.stash_apply(0, true, progress) {
            Ok(_) => {
                if !quiet {
                    eprintln!("Your local changes are merged back");
                }
            }
            Err(e) => {
                return Err(CommandError::user(
                    "merge-conflicts",
                    format!("your local changes could not be merged back: {e}"),
                )
                .with_hint("they are kept as stash@{0} (`mediagit stash show`); resolve by hand, `mediagit stash apply` once HEAD allows it, or `mediagit stash drop`")
                .exit_code(exit::CONFLICT))
            }
        }
    }
    Ok(())
}
