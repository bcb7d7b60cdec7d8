//! One function per command: parse what the user gave, call the library,
//! print the result.
use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use mediagit_format::config::StorageConfig;
use mediagit_format::{ObjectId, Signature};
use mediagit_repo::add::AddOptions;
use mediagit_repo::checkout::CheckoutTarget;
use mediagit_repo::clone::CloneOptions;
use mediagit_repo::commands::{CommitInfo, DiffQuery, LogQuery};
use mediagit_repo::commit::{parse_identity, CommitOptions};
use mediagit_repo::history::{DiffKind, FileDiff};
use mediagit_repo::refs::{branch_ref, Head};
use mediagit_repo::status::ChangeKind;
use mediagit_repo::tree::FlatEntry;
use mediagit_repo::{InitOptions, RepoError, Repository};
use mediagit_storage::CloudEnv;

use crate::command_error::CommandError;
use crate::maintenance::GcArgs;
use crate::output::color::{paint, Style};
use crate::output::{
    human_size, mode_str, mtime_str, now_signature, sig_date, sig_date_iso, unix_local,
};
use crate::progress::TermProgress;
use crate::{
    BranchAction, Cli, CmdResult, Command, LogArgs, ReflogAction, ReflogArgs, TagAction, TagArgs,
};

struct Ctx {
    cwd: PathBuf,
    quiet: bool,
    /// Whether a passphrase may be asked on the terminal (never from the
    /// completion helper, which runs while the user presses TAB).
    prompt: bool,
}

impl Ctx {
    /// The repository, unlocked if encrypted: with the key kept by `key
    /// unlock` if there is one, else with the passphrase.
    fn repo(&self) -> Result<Repository, CommandError> {
        self.repo_opened(true)
    }

    /// The repository, not unlocked.
    fn repo_locked(&self) -> Result<Repository, CommandError> {
        let safe = crate::user_config::safe_directories()?;
        let mut repo = Repository::discover_trusting(&self.cwd, &cloud_env(), &safe)?;
        if let Some(v) = env_var("MEDIAGIT_FRESHEN_AFTER") {
            repo.set_freshen_after(freshen_after(&v)?);
        }
        Ok(repo)
    }

    /// The repository, unlocked with the kept key if `kept` allows and
    /// there is one, else with the passphrase (key management and `key
    /// unlock` itself always ask the passphrase).
    fn repo_opened(&self, kept: bool) -> Result<Repository, CommandError> {
        let repo = self.repo_locked()?;
        if !repo.is_encrypted() {
            return Ok(repo);
        }
        let what = repo.storage().describe();
        let mut first = Some(repo);
        open_with_credential(&what, &what, None, kept, self.prompt, |c| {
            // A second try (after a kept key that no longer opens it)
            // needs the repository again: unlocking takes it.
            let repo = match first.take() {
                Some(r) => r,
                None => self.repo_locked()?,
            };
            Ok(repo.unlock_with(c)?)
        })
    }
    fn progress(&self) -> TermProgress {
        TermProgress::new(self.quiet)
    }
    fn repo_paths(
        &self,
        repo: &Repository,
        paths: &[PathBuf],
    ) -> Result<Vec<String>, CommandError> {
        repo_paths(repo, &self.cwd, paths)
    }
}

/// Repository paths of what the user named (relative to `cwd`).
pub(crate) fn repo_paths(
    repo: &Repository,
    cwd: &Path,
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

/// Runs `run` (an unlock, a clone) with the key `key unlock` kept for
/// `store` when `kept` allows, no passphrase `file` is given and one is
/// kept; else, or when that key no longer opens the store (then it is
/// forgotten, with a warning), with the passphrase (`file`, the
/// environment, or the terminal if `prompt`; `what` names the store there).
fn open_with_credential<T>(
    store: &str,
    what: &str,
    file: Option<&Path>,
    kept: bool,
    prompt: bool,
    mut run: impl FnMut(&mediagit_repo::keys::Credential) -> Result<T, CommandError>,
) -> Result<T, CommandError> {
    if kept && file.is_none() {
        if let Some(c) = crate::key_cache::load(store) {
            match run(&c) {
                Err(e) if e.kind == "wrong-passphrase" => crate::key_cache::forget_stale(store),
                r => return r,
            }
        }
    }
    let p = crate::passphrase::existing(file, what, prompt)?;
    run(&p.into())
}

/// `MEDIAGIT_FRESHEN_AFTER`: "1 day" (the default), "12 hours", "0
/// seconds", or "never".
pub(crate) fn freshen_after(v: &str) -> Result<Option<std::time::Duration>, CommandError> {
    if v.trim().eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let when =
        crate::maintenance::parse_when(&format!("{} ago", v.trim()), "MEDIAGIT_FRESHEN_AFTER")?
            .unwrap_or(std::time::SystemTime::now());
    Ok(Some(
        std::time::SystemTime::now()
            .duration_since(when)
            .unwrap_or_default(),
    ))
}

pub(crate) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The cloud credentials and endpoints of the environment (never stored).
pub(crate) fn cloud_env() -> CloudEnv {
    mediagit_storage::object_store_backend::CLOUD_ENV_VARS
        .iter()
        .filter_map(|k| env_var(k).map(|v| (k.to_string(), v)))
        .collect()
}

/// Parses a store URL; a relative directory is taken from the current one.
fn storage_arg(
    ctx: &Ctx,
    url: &str,
    endpoint: Option<String>,
    region: Option<String>,
) -> Result<StorageConfig, CommandError> {
    let mut sc = StorageConfig::from_url(url).map_err(|e| {
        CommandError::user("bad-store-url", e.to_string())
            .with_hint("use s3://BUCKET/PREFIX, az://CONTAINER/PREFIX, gs://BUCKET/PREFIX, b2://BUCKET/PREFIX or a directory")
    })?;
    if let Some(p) = &sc.path {
        let p = Path::new(p);
        if !p.is_absolute() {
            sc.path = Some(ctx.cwd.join(p).display().to_string());
        }
    }
    if sc.is_object_store() {
        sc.endpoint = endpoint;
        sc.region = region;
    } else if endpoint.is_some() || region.is_some() {
        return Err(CommandError::usage(
            "--endpoint and --region apply to object stores, not to a directory",
        ));
    }
    Ok(sc)
}

/// Where a copying clone went and what it checked out, for its report.
/// A clone's errors about objects are the source's: the hint points
/// there (the clone itself is gone).
fn clone_hint(e: CommandError, src: &str) -> CommandError {
    if matches!(e.kind, "corrupt-object" | "missing-object") {
        e.with_hint(format!(
            "nothing was cloned: the source is damaged or incomplete; `mediagit fsck` run on {src} (on a server: on its copy there) names what, and a fetch from a sound copy heals it"
        ))
    } else {
        e
    }
}

fn clone_report(
    repo: &Repository,
    out: &mediagit_repo::clone::CloneOutcome,
) -> Result<(PathBuf, String), CommandError> {
    let at = match repo.workspace()? {
        ws if ws.is_bare() => ws.dir().to_path_buf(),
        ws => ws.worktree()?.to_path_buf(),
    };
    let tail = match repo.is_bare() {
        true => format!("{} refs (bare: nothing checked out)", out.refs),
        false => clone_tail(out),
    };
    Ok((at, tail))
}

/// `clone SRC` without a destination: the last part of SRC, as Git
/// does (`http://host/team/film` -> `film`, `/disks/film.mg/` -> `film.mg`).
fn default_clone_dir(src: &str) -> Result<PathBuf, CommandError> {
    let trimmed = src.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/.mediagit").unwrap_or(trimmed);
    let last = trimmed.rsplit(['/', ':']).next().unwrap_or("");
    if last.is_empty() || last == "." || last == ".." {
        return Err(CommandError::usage(format!(
            "cannot tell a directory name from {src:?}: give the destination"
        )));
    }
    Ok(PathBuf::from(last))
}

fn is_store_url(s: &str) -> bool {
    ["s3://", "az://", "gs://", "b2://", "file://"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// The committer identity: environment, then config.
fn identity(repo: &Repository) -> Result<Signature, CommandError> {
    let (name, email) = repo.identity(
        env_var("MEDIAGIT_AUTHOR_NAME"),
        env_var("MEDIAGIT_AUTHOR_EMAIL"),
        crate::user_config::author()?,
    )?;
    Ok(now_signature(name, email))
}

/// After `[locks] patterns` changed: tracked files matching them become
/// read-only (except those locked here). The setting is saved already, so
/// a failure is a warning.
fn apply_lockable(ctx: &Ctx, previous: &[String]) {
    let r = ctx.repo().and_then(|repo| {
        if repo.is_bare() {
            return Ok(());
        }
        let c = repo.apply_lockable(previous).map_err(CommandError::from)?;
        if !c.read_only.is_empty() {
            eprintln!(
                "{} lockable file(s) made read-only (`mediagit lock PATH` makes one writable)",
                c.read_only.len()
            );
        }
        if !c.writable.is_empty() {
            eprintln!("{} file(s) made writable", c.writable.len());
        }
        Ok(())
    });
    if let Err(e) = r {
        eprintln!(
            "warning: the files already checked out keep their permissions: {}",
            e.message
        );
    }
}

/// The author name, if one is set (the owner a server without users
/// records for this client's locks).
pub(crate) fn author_name(repo: &Repository) -> Option<String> {
    // The whole identity when there is one; else a name alone will do (a
    // lock needs no email), in the identity's order of precedence.
    identity(repo).ok().map(|s| s.name).or_else(|| {
        env_var("MEDIAGIT_AUTHOR_NAME")
            .or_else(|| repo.config().author.name.clone())
            .or_else(|| crate::user_config::author().ok()?.0)
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty() && !n.chars().any(char::is_control))
    })
}

/// Who is recorded in the reflog: the identity if there is one.
/// Opens the repository and runs a history command (merge, rebase,
/// reset...) with the identity it commits and logs with.
fn with_history_env(
    ctx: &Ctx,
    run: impl FnOnce(&Repository, &crate::history_cmd::Env) -> CmdResult,
) -> CmdResult {
    let repo = ctx.repo()?;
    let progress = ctx.progress();
    let env = crate::history_cmd::Env {
        cwd: &ctx.cwd,
        quiet: ctx.quiet,
        who: identity(&repo)?,
        progress: &progress,
    };
    run(&repo, &env)
}

fn reflog_who(repo: &Repository) -> Signature {
    identity(repo).unwrap_or_else(|_| now_signature("unknown".into(), "unknown".into()))
}

/// Standard output for text: control characters in names are escaped
/// (see [`crate::output::SafeText`]).
pub(crate) fn stdout() -> SafeOut {
    crate::output::SafeText::new(BufWriter::new(io::stdout().lock()))
}

/// What [`stdout`] returns: escaping in front of the buffer, so that
/// colour codes can go around it ([`crate::output::SafeText::raw`]).
pub(crate) type SafeOut = crate::output::SafeText<BufWriter<io::StdoutLock<'static>>>;

/// Standard output for file content (`cat`): bytes as they are.
fn raw_stdout() -> BufWriter<io::StdoutLock<'static>> {
    BufWriter::new(io::stdout().lock())
}

pub fn run(cli: Cli) -> CmdResult {
    let cwd = std::env::current_dir()
        .map_err(|e| CommandError::user("io", format!("cannot read the current directory: {e}")))?;
    let ctx = Ctx {
        cwd,
        quiet: cli.quiet,
        prompt: true,
    };
    // Long output through a pager on a terminal (pager.rs); it is waited
    // for when `run` returns, before an error is printed.
    let pages = matches!(
        cli.command,
        Command::Log(_)
            | Command::Show { .. }
            | Command::Diff { .. }
            | Command::Reflog(ReflogArgs { action: None, .. })
    ) || matches!(&cli.command, Command::Help { what } if what.first().is_some_and(|w| crate::help_topics::find(w).is_some()));
    let _pager = match pages {
        true => crate::pager::start(cli.no_pager)?,
        false => None,
    };
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = crate::cli_command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "mediagit", &mut out);
            let script = String::from_utf8_lossy(&out).into_owned();
            write_stdout(crate::completion_refs::complete_refs(shell, script).as_bytes())
        }
        Command::CompleteRefs { which } => {
            // For completion scripts, while the user waits at a TAB: the
            // names only (no object is read, so a damaged tag cannot hide
            // the others), quiet and empty outside a repository, and given
            // up after 2 s (a store that does not answer must not freeze
            // the shell).
            let prefixes: &[&str] = match which.as_str() {
                "branches" => &["refs/heads/"],
                "tags" => &["refs/tags/"],
                _ => &["refs/heads/", "refs/tags/"],
            };
            let (tx, rx) = std::sync::mpsc::channel();
            let cwd = ctx.cwd.clone();
            std::thread::spawn(move || {
                let ctx = Ctx {
                    cwd,
                    quiet: true,
                    prompt: false,
                };
                let names: Vec<String> = match ctx.repo() {
                    // Keys only: a ref file that does not parse hides nothing.
                    Ok(repo) => prefixes
                        .iter()
                        .flat_map(|p| {
                            repo.ref_keys(p)
                                .unwrap_or_default()
                                .into_iter()
                                .filter_map(move |k| k.strip_prefix(p).map(str::to_string))
                        })
                        .collect(),
                    Err(_) => Vec::new(),
                };
                let _ = tx.send(names);
            });
            let names = rx
                .recv_timeout(std::time::Duration::from_secs(2))
                .unwrap_or_default();
            let mut out = stdout();
            for n in names {
                writeln!(out, "{n}")?;
            }
            Ok(out.flush()?)
        }
        Command::Man { out_dir } => man_pages(out_dir.map(|d| ctx.cwd.join(d))),
        Command::Help { what } => help(&what),
        Command::Config(args) => {
            // Lockable files change permissions as the patterns change.
            let patterns = |k: &Option<String>| k.as_deref() == Some("locks.patterns");
            let lockable = !args.global
                && ((patterns(&args.key) && args.value.is_some()) || patterns(&args.unset));
            let previous = match lockable {
                true => ctx
                    .repo()
                    .map(|r| r.config().locks.patterns.clone())
                    .unwrap_or_default(),
                false => Vec::new(),
            };
            crate::config_cmd::config(
                // Found, not opened: a repository whose settings do not parse
                // (or whose store is away) can still be read and repaired.
                &|| -> Result<PathBuf, CommandError> {
                    let safe = crate::user_config::safe_directories()?;
                    Ok(Repository::find_dir_trusting(&ctx.cwd, &safe)?.join("config.toml"))
                },
                args,
            )?;
            if lockable {
                apply_lockable(&ctx, &previous);
            }
            Ok(())
        }
        Command::Serve(args) => crate::serve_cmd::run(&ctx.cwd, args),
        Command::Clone {
            src,
            dest,
            branch,
            storage,
            bare,
            endpoint,
            region,
            passphrase_file,
            repository,
            at,
        } => {
            // (A backup target takes no --endpoint or --region: the
            // environment reaches its store. With them, SRC is a store.)
            if endpoint.is_none()
                && region.is_none()
                && crate::backup_cmd::is_backup_target(&ctx.cwd, &src)?
            {
                if storage.is_some() {
                    return Err(CommandError::usage(
                        "--storage does not apply to cloning from a backup target",
                    ));
                }
                return crate::backup_cmd::clone_from_backup(
                    &crate::backup_cmd::BackupCtx {
                        cwd: &ctx.cwd,
                        quiet: ctx.quiet,
                        prompt: ctx.prompt,
                        repo: &|| ctx.repo(),
                        progress: &|| ctx.progress(),
                    },
                    &src,
                    dest,
                    repository,
                    at.as_deref(),
                    branch.as_deref(),
                    bare,
                    passphrase_file.as_deref(),
                );
            }
            if repository.is_some() || at.is_some() {
                return Err(CommandError::usage(format!(
                    "--repository and --at apply to cloning from a backup target, and {src} is not one"
                )));
            }
            let abs = |p: PathBuf| if p.is_absolute() { p } else { ctx.cwd.join(p) };
            // Asked only for an encrypted source (read before anything is
            // written, so a wrong one leaves nothing behind). A key kept by
            // `key unlock` for the source's store is tried first when no
            // passphrase file is given.
            let file = passphrase_file.as_deref();
            let dest = abs(match dest {
                Some(d) => d,
                None => default_clone_dir(&src)?,
            });
            let who = now_signature(
                env_var("MEDIAGIT_AUTHOR_NAME").unwrap_or_else(|| "unknown".into()),
                env_var("MEDIAGIT_AUTHOR_EMAIL").unwrap_or_else(|| "unknown".into()),
            );
            let progress = ctx.progress();
            if src.starts_with("http://") || src.starts_with("https://") {
                if storage.is_some() || endpoint.is_some() || region.is_some() {
                    return Err(CommandError::usage(
                        "--storage, --endpoint and --region apply to cloning from a path or a store",
                    ));
                }
                let access = crate::remote_cmd::remote_access(std::iter::empty(), false)?;
                let opts = CloneOptions {
                    storage: None,
                    env: cloud_env(),
                    safe: Default::default(),
                    credential: None,
                    bare,
                    branch: branch.clone(),
                };
                let run = |c: Option<&mediagit_repo::keys::Credential>| {
                    let opts = CloneOptions {
                        credential: c.cloned(),
                        ..opts.clone()
                    };
                    Repository::clone_server(&src, &dest, &opts, &access, &who, &progress)
                        .map_err(|e| clone_hint(e.into(), &src))
                };
                let source = Repository::open_server(&src, &access)?;
                let (repo, out) = match source.is_encrypted() {
                    true => open_with_credential(
                        &source.storage().describe(),
                        &src,
                        file,
                        true,
                        true,
                        |c| run(Some(c)),
                    )?,
                    false => run(None)?,
                };
                let (at, tail) = clone_report(&repo, &out)?;
                eprintln!(
                    "Cloned {src} into {}: {} pack{}, {tail}",
                    at.display(),
                    out.packs,
                    if out.packs == 1 { "" } else { "s" },
                );
                return Ok(());
            }
            if is_store_url(&src) {
                if branch.is_some() {
                    return Err(CommandError::usage(
                        "-b applies to copying clones; a clone of a store URL shares that store (switch branches after it)",
                    ));
                }
                if storage.is_some() || bare {
                    return Err(CommandError::usage(
                        "--storage and --bare apply to cloning from a path; a clone of a store URL shares that store",
                    ));
                }
                let sc = storage_arg(&ctx, &src, endpoint, region)?;
                let run = |c: Option<&mediagit_repo::keys::Credential>| {
                    Repository::clone_store(&sc, &dest, &cloud_env(), c, &who, &progress)
                };
                let (repo, out) = match Repository::store_is_encrypted(&sc, &dest, &cloud_env())? {
                    true => open_with_credential(
                        &Repository::store_description(&sc, &dest, &cloud_env())?,
                        &sc.url(),
                        file,
                        true,
                        true,
                        |c| Ok(run(Some(c))?),
                    )?,
                    false => run(None)?,
                };
                eprintln!(
                    "Joined the repository in {} at {}: {} pack{}, {}",
                    sc.url(),
                    repo.worktree()?.display(),
                    out.packs,
                    if out.packs == 1 { "" } else { "s" },
                    clone_tail(&out)
                );
                warn_unconditional(&repo);
                return Ok(());
            }
            let opts = CloneOptions {
                storage: match storage {
                    Some(u) => Some(storage_arg(&ctx, &u, endpoint, region)?),
                    None if endpoint.is_some() || region.is_some() => {
                        return Err(CommandError::usage(
                            "--endpoint and --region need a store URL (SRC or --storage)",
                        ))
                    }
                    None => None,
                },
                env: cloud_env(),
                safe: crate::user_config::safe_directories()?,
                credential: None,
                bare,
                branch,
            };
            let src = abs(PathBuf::from(src));
            let run = |c: Option<&mediagit_repo::keys::Credential>| {
                let opts = CloneOptions {
                    credential: c.cloned(),
                    ..opts.clone()
                };
                Repository::clone_local(&src, &dest, &opts, &who, &progress)
                    .map_err(|e| clone_hint(e.into(), &src.display().to_string()))
            };
            let (repo, out) = match Repository::discover_trusting(&src, &opts.env, &opts.safe) {
                Ok(r) if r.is_encrypted() => open_with_credential(
                    &r.storage().describe(),
                    &src.display().to_string(),
                    file,
                    true,
                    true,
                    |c| run(Some(c)),
                )?,
                _ => run(None)?,
            };
            warn_unconditional(&repo);
            for (key, why) in &out.skipped_refs {
                eprintln!(
                    "warning: {}",
                    crate::output::safe(&format!("ref {key:?} not copied: {why}"))
                );
            }
            let (at, tail) = clone_report(&repo, &out)?;
            eprintln!(
                "Cloned into {}: {} pack{} ({} hard-linked), {tail}",
                at.display(),
                out.packs,
                if out.packs == 1 { "" } else { "s" },
                out.linked,
            );
            Ok(())
        }
        Command::Init {
            dir,
            bare,
            initial_branch,
            storage,
            endpoint,
            region,
            encrypt,
            key,
        } => {
            let storage = match storage {
                Some(u) => Some(storage_arg(&ctx, &u, endpoint, region)?),
                None => None,
            };
            let encryption = match encrypt {
                true => {
                    let k = new_key(&key, "MEDIAGIT_PASSPHRASE")?;
                    Some(mediagit_repo::repo::InitEncryption::New {
                        passphrase: k.passphrase,
                        params: k.params,
                        label: k.label,
                        created: k.created,
                    })
                }
                false if key.passphrase_file.is_some()
                    || key.kdf_memory.is_some()
                    || key.kdf_passes.is_some()
                    || key.label.is_some() =>
                {
                    return Err(CommandError::usage(
                        "--passphrase-file, --kdf-memory, --kdf-passes and --label apply to an encrypted repository: add --encrypt",
                    ))
                }
                false => None,
            };
            init(&ctx, dir, bare, initial_branch, storage, encryption)
        }
        Command::Key { action } => key_command(&ctx, action),
        Command::Add {
            paths,
            all,
            dry_run,
        } => add(&ctx, paths, all, dry_run),
        Command::Rm {
            paths,
            cached,
            recursive,
            force,
        } => {
            let repo = ctx.repo()?;
            let paths = ctx.repo_paths(&repo, &paths)?;
            let removed = repo.rm(&paths, cached, recursive, force)?;
            let mut out = stdout();
            for p in removed {
                writeln!(out, "rm '{p}'")?;
            }
            Ok(out.flush()?)
        }
        Command::Mv { src, dst } => {
            let repo = ctx.repo()?;
            let src = repo.workspace()?.repo_path(&ctx.cwd, &src)?;
            let dst = repo.workspace()?.repo_path(&ctx.cwd, &dst)?;
            let (s, d) = repo.mv(&src, &dst)?;
            println!("renamed {s} -> {d}");
            Ok(())
        }
        Command::Status {
            porcelain,
            short,
            json,
        } => status(&ctx, porcelain, short, json),
        Command::Commit {
            message,
            all,
            allow_empty,
            author,
        } => commit(&ctx, message, all, allow_empty, author),
        Command::Log(args) => log(&ctx, args),
        Command::Show { rev, json, paths } if !paths.is_empty() => crate::media_cmd::show_paths(
            &ctx.repo()?,
            &ctx.cwd,
            rev.as_deref().unwrap_or("HEAD"),
            &paths,
            json,
        ),
        Command::Show { rev, json, .. } => show(&ctx, rev, json),
        Command::Media(a) => crate::media_cmd::media(&ctx.repo()?, &ctx.cwd, ctx.quiet, a),
        Command::Find(a) => crate::media_cmd::find(&ctx.repo()?, ctx.quiet, a),
        Command::Backup { action } => crate::backup_cmd::backup(
            &crate::backup_cmd::BackupCtx {
                cwd: &ctx.cwd,
                quiet: ctx.quiet,
                prompt: ctx.prompt,
                repo: &|| ctx.repo(),
                progress: &|| ctx.progress(),
            },
            action,
        ),
        Command::Diff {
            cached,
            stat,
            json,
            revs,
            paths,
        } => diff(&ctx, cached, stat, json, revs, paths),
        Command::Branch {
            action,
            json,
            remotes,
            all,
        } => branch(&ctx, action, json, remotes, all),
        Command::Lock { paths, remote } => {
            let repo = ctx.repo()?;
            let paths = ctx.repo_paths(&repo, &paths)?;
            // The name a server without users records as the owner.
            let owner = author_name(&repo);
            crate::lock_cmd::lock(&repo, paths, remote, owner)
        }
        Command::Unlock {
            paths,
            remote,
            force,
        } => {
            let repo = ctx.repo()?;
            let paths = ctx.repo_paths(&repo, &paths)?;
            let owner = author_name(&repo);
            crate::lock_cmd::unlock(&repo, paths, remote, force, owner)
        }
        Command::Locks { path, remote, json } => {
            let repo = ctx.repo()?;
            let path = match path {
                Some(p) => ctx.repo_paths(&repo, &[p])?.pop(),
                None => None,
            };
            crate::lock_cmd::locks(&repo, path, remote, json)
        }
        Command::Remote { action } => crate::remote_cmd::remote(
            &ctx.repo()?,
            &ctx.cwd,
            action.unwrap_or(crate::remote_cmd::RemoteAction::List),
            cli.verbose > 0,
        ),
        Command::Fetch {
            remote,
            all,
            prune,
            no_tags,
            json,
        } => {
            let repo = ctx.repo()?;
            crate::remote_cmd::fetch(
                &repo,
                crate::remote_cmd::FetchArgs {
                    remote,
                    all,
                    prune,
                    no_tags,
                    json,
                },
                &reflog_who(&repo),
                ctx.quiet,
                &ctx.progress(),
            )
        }
        Command::Pull { remote, branch } => {
            let repo = ctx.repo()?;
            crate::remote_cmd::pull(
                &repo,
                remote,
                branch,
                &reflog_who(&repo),
                identity(&repo).ok().as_ref(),
                ctx.quiet,
                &ctx.progress(),
            )
        }
        Command::Push {
            remote,
            refspecs,
            force,
            force_with_lease,
            tags,
            delete,
            set_upstream,
            json,
        } => crate::remote_cmd::push(
            &ctx.repo()?,
            crate::remote_cmd::PushArgs {
                remote,
                refspecs,
                force,
                force_with_lease,
                tags,
                delete,
                set_upstream,
                json,
            },
            ctx.quiet,
            &ctx.progress(),
        ),
        Command::LsRemote { remote, json } => {
            crate::remote_cmd::ls_remote(&ctx.repo()?, remote, json)
        }
        Command::Switch {
            target,
            create,
            force,
        } => match create {
            Some(new) => switch(&ctx, None, Some(new), target, force),
            None => switch(&ctx, target, None, None, force),
        },
        Command::Checkout {
            target,
            paths,
            force,
        } => checkout(&ctx, target, paths, force),
        Command::Merge(a) => {
            with_history_env(&ctx, |repo, env| crate::history_cmd::merge(repo, a, env))
        }
        Command::Resolve(a) => {
            with_history_env(&ctx, |repo, env| crate::history_cmd::resolve(repo, a, env))
        }
        Command::CherryPick(a) => with_history_env(&ctx, |repo, env| {
            crate::history_cmd::pick(repo, mediagit_repo::sequencer::OpKind::CherryPick, a, env)
        }),
        Command::Revert(a) => with_history_env(&ctx, |repo, env| {
            crate::history_cmd::pick(repo, mediagit_repo::sequencer::OpKind::Revert, a, env)
        }),
        Command::Rebase(a) => {
            with_history_env(&ctx, |repo, env| crate::history_cmd::rebase(repo, a, env))
        }
        Command::Reset(a) => {
            with_history_env(&ctx, |repo, env| crate::history_cmd::reset(repo, a, env))
        }
        Command::Restore(a) => {
            with_history_env(&ctx, |repo, env| crate::history_cmd::restore(repo, a, env))
        }
        Command::Stash(a) => {
            with_history_env(&ctx, |repo, env| crate::history_cmd::stash(repo, a, env))
        }
        Command::Tag(args) => tag(&ctx, args),
        Command::Reflog(ReflogArgs {
            action: Some(ReflogAction::Expire { expire, reference }),
            json,
            ..
        }) => {
            if json {
                return Err(CommandError::usage(
                    "--json applies to listing a reflog, not to `reflog expire`",
                ));
            }
            crate::maintenance::reflog_expire(&ctx.repo()?, &expire, reference)
        }
        Command::Reflog(ReflogArgs {
            reference, json, ..
        }) => reflog(&ctx, reference, json),
        Command::Fsck {
            dangling,
            lost_found,
            repair,
            from,
            json,
        } => crate::maintenance::fsck(
            &ctx.repo()?,
            &mediagit_repo::fsck::FsckOptions {
                dangling,
                lost_found,
                repair,
            },
            &from,
            json,
            &ctx.progress(),
        ),
        Command::Verify { rev, paths, json } => {
            let repo = ctx.repo()?;
            let paths = ctx.repo_paths(&repo, &paths)?;
            crate::maintenance::verify(&repo, rev, paths, json, &ctx.progress())
        }
        Command::Gc {
            dry_run,
            prune,
            max_unused,
            json,
        } => crate::maintenance::gc(
            &ctx.repo()?,
            &GcArgs {
                dry_run,
                prune,
                max_unused,
                json,
            },
            &ctx.progress(),
        ),
        Command::Stats { json, top } => crate::maintenance::stats(&ctx.repo()?, json, top),
        Command::LsFiles { long, json, media } => ls_files(&ctx, long, json, media),
        Command::LsTree {
            rev,
            recursive,
            long,
            json,
        } => ls_tree(&ctx, &rev, recursive, long, json),
        Command::Cat { spec } => cat(&ctx, &spec),
        Command::Upgrade { dry_run } => {
            let repo = ctx.repo()?;
            let r = repo.upgrade(dry_run)?;
            let whose = if r.store {
                format!(
                    " (the store's settings: every working tree of {} reads them)",
                    repo.config()
                        .storage
                        .as_ref()
                        .map(|s| s.url())
                        .unwrap_or_default()
                )
            } else {
                String::new()
            };
            if !r.changed {
                println!("already at format version {}; nothing to do", r.from);
            } else if r.dry_run {
                println!(
                    "would upgrade from format version {} to {}{whose}; builds older than this one will no longer open it",
                    r.from, r.to
                );
            } else {
                println!("upgraded from format version {} to {}{whose}", r.from, r.to);
            }
            Ok(())
        }
    }
}

/// "N refs, N files (SIZE) checked out on branch B" of a clone's summary.
fn clone_tail(out: &mediagit_repo::clone::CloneOutcome) -> String {
    format!(
        "{} refs, {} files ({}) checked out{}",
        out.refs,
        out.files,
        human_size(out.bytes),
        out.branch
            .as_ref()
            .map(|b| format!(" on branch {b}"))
            .unwrap_or_default()
    )
}

/// Says so when the store does not enforce conditional writes.
fn warn_unconditional(repo: &Repository) {
    if let Some(sc) = &repo.config().storage {
        if !sc.conditional_writes {
            eprintln!(
                "warning: {} does not enforce conditional writes; if two clients move the same branch at the same moment, one update can be lost (see docs/BACKENDS.md)",
                repo.storage().describe()
            );
        }
    }
}

/// A new key's passphrase, cost and label from the command line (and
/// `env` or the terminal for the passphrase).
struct NewKeyParts {
    passphrase: mediagit_repo::keys::Passphrase,
    params: mediagit_crypto::KdfParams,
    label: String,
    created: i64,
}

impl NewKeyParts {
    fn as_new_key(&self) -> mediagit_repo::keys::NewKey<'_> {
        mediagit_repo::keys::NewKey {
            passphrase: self.passphrase.as_bytes(),
            params: self.params,
            label: &self.label,
            created: self.created,
        }
    }
}

fn new_key(args: &crate::NewKeyArgs, env: &str) -> Result<NewKeyParts, CommandError> {
    let mut params = mediagit_crypto::KdfParams::DEFAULT;
    if let Some(m) = args.kdf_memory {
        params.m_cost_kib = m.saturating_mul(1024);
    }
    if let Some(t) = args.kdf_passes {
        params.t_cost = t;
    }
    params
        .check()
        .map_err(|e| CommandError::usage(e.to_string()))?;
    let passphrase = crate::passphrase::new(args.passphrase_file.as_deref(), env)?;
    // Stored in the clear (the store sees it): nothing by default.
    let label = args.label.clone().unwrap_or_default();
    Ok(NewKeyParts {
        passphrase,
        params,
        label,
        created: now_signature(String::new(), String::new()).time,
    })
}

fn key_command(ctx: &Ctx, action: crate::KeyAction) -> CmdResult {
    use crate::KeyAction;
    if let KeyAction::Lock { all: true } = action {
        let n = crate::key_cache::forget_all()?;
        println!("Forgot {n} kept key{}", if n == 1 { "" } else { "s" });
        return Ok(());
    }
    // Only reading may use a kept key: changing keys, or keeping one,
    // needs the passphrase itself.
    let repo = match action {
        KeyAction::List { .. } => ctx.repo()?,
        KeyAction::Lock { .. } => ctx.repo_locked().map_err(|e| {
            e.with_hint("`mediagit key lock --all` forgets every kept key without opening any store")
        })?,
        _ => ctx.repo_opened(false).map_err(|e| match e.kind {
            "needs-passphrase" => e.with_hint(
                "changing keys, and keeping one, needs the passphrase itself even while a key is kept: set MEDIAGIT_PASSPHRASE (or MEDIAGIT_PASSPHRASE_FILE), or run the command on a terminal to be asked",
            ),
            _ => e,
        })?,
    };
    if !repo.is_encrypted() {
        return Err(CommandError::user(
            "not-encrypted",
            "this repository is not encrypted: it has no keys",
        ));
    }
    let store = repo.storage().describe();
    let new = |args: &crate::NewKeyArgs| new_key(args, "MEDIAGIT_NEW_PASSPHRASE");
    match action {
        KeyAction::List { json } => {
            let keys = repo.list_keys()?;
            let mut out = stdout();
            if json {
                writeln!(out, "{}", serde_json::json!({ "keys": keys }))?;
            } else {
                for k in keys {
                    writeln!(
                        out,
                        "{} {}  {}  {:<24} argon2id {} MiB, {} passes",
                        if k.current { "*" } else { " " },
                        k.id.get(..16).unwrap_or(&k.id),
                        sig_date_iso(&mediagit_format::Signature {
                            name: String::new(),
                            email: String::new(),
                            time: k.created,
                            tz_offset_minutes: 0,
                        }),
                        k.label,
                        k.memory_kib / 1024,
                        k.passes
                    )?;
                }
            }
            if !json {
                if let Some(until) = crate::key_cache::kept_until(&store) {
                    writeln!(
                        out,
                        "Unlocked until {} (`mediagit key lock` forgets the key)",
                        unix_local(until)
                    )?;
                }
            }
            Ok(out.flush()?)
        }
        KeyAction::Unlock { timeout } => {
            let for_ = match timeout {
                Some(t) => crate::key_cache::parse_timeout(&t)?,
                None => crate::key_cache::DEFAULT_TIMEOUT,
            };
            let Some((id, master)) = repo.store().unlocked_master() else {
                return Err(RepoError::NeedsPassphrase { store }.into());
            };
            let until = crate::key_cache::keep(&store, id, master, for_)?;
            println!(
                "Unlocked {} until {} (`mediagit key lock` forgets the key)",
                crate::output::safe(&store),
                unix_local(until)
            );
            Ok(())
        }
        KeyAction::Lock { .. } => {
            match crate::key_cache::forget(&store)? {
                true => println!("Forgot the kept key of {}", crate::output::safe(&store)),
                false => println!("No key is kept for {}", crate::output::safe(&store)),
            }
            Ok(())
        }
        KeyAction::Add { key } => {
            let id = repo.add_key(&new(&key)?.as_new_key())?;
            println!("Added key {}", id.get(..16).unwrap_or(&id));
            Ok(())
        }
        KeyAction::Remove { id } => {
            let removed = repo.remove_key(&id)?;
            println!("Removed key {}", removed.get(..16).unwrap_or(&removed));
            Ok(())
        }
        KeyAction::Passwd { key } => {
            let old = repo.store().unlocked_key_id().map(str::to_string);
            let id = repo.change_passphrase(&new(&key)?.as_new_key())?;
            // A key kept from the replaced key file goes on under the new one
            // (the same master key; the old id no longer opens the store).
            if let Some(old) = old {
                crate::key_cache::rename_kept(&store, &old, &id);
            }
            println!(
                "Changed the passphrase: key {} replaces the one used",
                &id[..16]
            );
            Ok(())
        }
    }
}

fn init(
    ctx: &Ctx,
    dir: Option<PathBuf>,
    bare: bool,
    initial_branch: Option<String>,
    storage: Option<StorageConfig>,
    encryption: Option<mediagit_repo::repo::InitEncryption>,
) -> CmdResult {
    // A server URL: the repository is made on that server.
    if let Some(url) = dir
        .as_deref()
        .and_then(|d| d.to_str())
        .filter(|d| d.starts_with("http://") || d.starts_with("https://"))
    {
        if !bare {
            return Err(CommandError::usage(format!(
                "a repository on a server has no working tree: `mediagit init --bare {url}`"
            )));
        }
        if storage.is_some() {
            return Err(CommandError::usage(
                "--storage and a server URL: the server decides where its repositories live",
            ));
        }
        let access = crate::remote_cmd::remote_access(std::iter::empty(), false)?;
        let encrypted = encryption.is_some();
        let (name, user) = mediagit_repo::remote::init_server(
            url,
            &InitOptions {
                bare: true,
                initial_branch,
                storage: None,
                template: None,
                env: cloud_env(),
                encryption,
            },
            &access,
        )?;
        let url = mediagit_protocol::wire::redact_url(url);
        let kind = if encrypted { "encrypted " } else { "" };
        println!("Initialized empty {kind}MediaGit repository {name} on {url} (as {user})");
        return Ok(());
    }
    let target = match dir {
        Some(d) if d.is_absolute() => d,
        Some(d) => ctx.cwd.join(d),
        None => ctx.cwd.clone(),
    };
    let repo = Repository::init(
        &target,
        &InitOptions {
            bare,
            initial_branch,
            storage,
            template: None,
            env: cloud_env(),
            encryption,
        },
    )?;
    let kind = match (bare, repo.is_encrypted()) {
        (true, true) => "bare encrypted ",
        (true, false) => "bare ",
        (false, true) => "encrypted ",
        (false, false) => "",
    };
    match &repo.config().storage {
        None => println!(
            "Initialized empty {kind}MediaGit repository in {}",
            repo.workspace()?.dir().display()
        ),
        Some(sc) => println!(
            "Initialized empty {kind}MediaGit repository in {} with objects and refs in {}",
            repo.workspace()?.dir().display(),
            sc.url()
        ),
    }
    warn_unconditional(&repo);
    Ok(())
}

/// A flag that the first Ctrl-C (or SIGTERM) sets, so a long command stops
/// cleanly and keeps what it stored; a second one ends the process at once
/// (exit 130), as users expect of a command that is taking too long to stop.
fn stop_on_interrupt() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Order matters: the shutdown hook runs first and only fires when
        // the flag is already set (by an earlier signal). Failing to
        // install a handler only leaves the default (the process ends).
        let _ = flag::register_conditional_shutdown(sig, 130, stop.clone());
        let _ = flag::register(sig, stop.clone());
    }
    stop
}

fn add(ctx: &Ctx, paths: Vec<PathBuf>, all: bool, dry_run: bool) -> CmdResult {
    let repo = ctx.repo()?;
    if paths.is_empty() && !all {
        return Err(
            CommandError::user("nothing-specified", "nothing specified, nothing added")
                .with_hint("use `mediagit add PATH...`, or `mediagit add -A` for everything"),
        );
    }
    let mut repo_paths = ctx.repo_paths(&repo, &paths)?;
    if all && !paths.is_empty() {
        // `add -A PATH` limits -A to PATH.
        repo_paths.sort();
    }
    let opts = AddOptions {
        all: all && paths.is_empty(),
        paths: repo_paths,
        dry_run,
        cancel: Some(stop_on_interrupt()),
        ..Default::default()
    };
    let progress = ctx.progress();
    let outcome = repo.add(&opts, &progress)?;
    if outcome.resumed_bytes > 0 && !ctx.quiet {
        eprintln!(
            "resumed an interrupted add: {} already stored ({} file(s) whole) were not read again",
            crate::output::human_size(outcome.resumed_bytes),
            outcome.resumed_files
        );
    }
    for p in &outcome.problems {
        eprintln!(
            "warning: {}",
            crate::output::safe(&format!("{}: {}", p.path.display(), p.message))
        );
    }
    if let Some(w) = &outcome.media_warning {
        eprintln!(
            "warning: the files were added, but their media records were not stored: {} (`mediagit media --scan` stores them later)",
            crate::output::safe(w)
        );
    }
    let mut out = stdout();
    if dry_run {
        for (p, c) in &outcome.changes {
            let verb = if *c == ChangeKind::Deleted {
                "remove"
            } else {
                "add"
            };
            writeln!(out, "{verb} '{p}'")?;
        }
    }
    Ok(out.flush()?)
}

/// The checked-out branch's upstream (`[branches.B]`) and how the two
/// differ, as `status` reports it.
#[derive(serde::Serialize)]
struct Upstream {
    /// `REMOTE/BRANCH`.
    name: String,
    /// The remote-tracking branch does not exist (never fetched, or the
    /// remote deleted the branch).
    gone: bool,
    ahead: usize,
    behind: usize,
}

fn upstream(repo: &Repository, head: &Head, commit: Option<ObjectId>) -> Option<Upstream> {
    let Head::Branch(b) = head else { return None };
    let (remote, merge) = repo.config().upstream(b)?;
    let name = format!("{remote}/{merge}");
    let theirs = repo
        .read_ref(&format!("refs/remotes/{name}"))
        .ok()
        .flatten();
    let (ahead, behind) = match (commit, theirs) {
        (Some(o), Some(t)) => repo.ahead_behind(o, t).ok()?,
        _ => (0, 0),
    };
    Some(Upstream {
        name,
        gone: theirs.is_none(),
        ahead,
        behind,
    })
}

fn status(ctx: &Ctx, porcelain: bool, short: bool, json: bool) -> CmdResult {
    let repo = ctx.repo()?;
    let st = repo.status()?;
    let up = upstream(&repo, &st.head, st.head_commit);
    let mut out = stdout();
    if json {
        // Problems are part of the document, not warnings on stderr.
        #[derive(serde::Serialize)]
        struct StoreBranch {
            branch: String,
            commit: Option<ObjectId>,
            /// What this working tree last saw there.
            last_seen: Option<ObjectId>,
            /// `commit` is an ancestor of `last_seen`: commits were taken
            /// off the branch (a rollback).
            moved_back: bool,
        }
        #[derive(serde::Serialize)]
        struct Operation {
            op: &'static str,
            other: ObjectId,
            other_name: String,
            /// Every step's changes applied; `--continue` may run.
            applied: bool,
            remaining: usize,
        }
        #[derive(serde::Serialize)]
        struct StatusJson<'a> {
            #[serde(flatten)]
            status: &'a mediagit_repo::status::Status,
            clean: bool,
            store_branch_moved: Option<StoreBranch>,
            upstream: Option<Upstream>,
            operation: Option<Operation>,
            conflicts: Vec<mediagit_repo::sequencer::ConflictInfo>,
        }
        let operation = repo.operation().ok().flatten().map(|o| Operation {
            op: o.op.command(),
            other: o.other,
            other_name: o.other_name,
            applied: o.applied,
            remaining: o.remaining.len(),
        });
        let conflicts = match st.conflicted.is_empty() {
            true => Vec::new(),
            false => repo.conflict_details()?,
        };
        let moved = match (&st.head, repo.branch_moved()?) {
            (Head::Branch(b), Some((base, tip))) => Some(StoreBranch {
                branch: b.clone(),
                commit: tip,
                moved_back: matches!((base, tip), (Some(x), Some(y)) if repo.branch_moved_back(x, y)),
                last_seen: base,
            }),
            _ => None,
        };
        crate::output::write_json(
            &mut out,
            &StatusJson {
                status: &st,
                clean: st.is_clean(),
                store_branch_moved: moved,
                upstream: up,
                operation,
                conflicts,
            },
        )?;
        return Ok(out.flush()?);
    }
    for p in &st.problems {
        eprintln!(
            "warning: {}",
            crate::output::safe(&format!("{}: {}", p.path.display(), p.message))
        );
    }
    if porcelain || short {
        if short {
            match &st.head {
                Head::Branch(b) => match &up {
                    Some(u) if u.gone => writeln!(out, "## {b}...{} [gone]", u.name)?,
                    Some(u) => {
                        let mut marks = Vec::new();
                        if u.ahead > 0 {
                            marks.push(format!("ahead {}", u.ahead));
                        }
                        if u.behind > 0 {
                            marks.push(format!("behind {}", u.behind));
                        }
                        match marks.is_empty() {
                            true => writeln!(out, "## {b}...{}", u.name)?,
                            false => writeln!(out, "## {b}...{} [{}]", u.name, marks.join(", "))?,
                        }
                    }
                    None => writeln!(out, "## {b}")?,
                },
                Head::Detached(_) => writeln!(out, "## HEAD (no branch)")?,
            }
        }
        let mut rows: std::collections::BTreeMap<&str, (char, char)> = Default::default();
        for c in &st.staged {
            rows.entry(&c.path).or_insert((' ', ' ')).0 = c.change.letter();
        }
        for c in &st.unstaged {
            rows.entry(&c.path).or_insert((' ', ' ')).1 = c.change.letter();
        }
        // A rename reads `OLD -> NEW`, as in git's short format.
        let from: HashMap<&str, &str> = st
            .staged
            .iter()
            .filter_map(|c| Some((c.path.as_str(), c.from.as_deref()?)))
            .collect();
        for (p, (x, y)) in rows {
            match from.get(p) {
                Some(f) => writeln!(out, "{x}{y} {f} -> {p}")?,
                None => writeln!(out, "{x}{y} {p}")?,
            }
        }
        for p in &st.conflicted {
            writeln!(out, "UU {p}")?;
        }
        for p in &st.untracked {
            writeln!(out, "?? {p}")?;
        }
        return Ok(out.flush()?);
    }
    match &st.head {
        Head::Branch(b) => {
            writeln!(out, "On branch {b}")?;
            match repo.branch_moved()? {
                Some((Some(base), Some(tip))) if repo.branch_moved_back(base, tip) => writeln!(
                    out,
                    "{}",
                    moved_back_message(b, base, tip)
                )?,
                Some((_, tip)) => writeln!(
                    out,
                    "The store's {b} is now at {} (committed from another working tree);\n  use \"mediagit switch {b}\" to bring this working tree up to it",
                    tip.map(|t| t.short(12)).unwrap_or_else(|| "nothing (deleted)".into())
                )?,
                None => {}
            }
            if let Some(u) = &up {
                let n = &u.name;
                match (u.gone, u.ahead, u.behind) {
                    (true, ..) => writeln!(
                        out,
                        "Your branch is based on '{n}', but the upstream is gone."
                    )?,
                    (_, 0, 0) => writeln!(out, "Your branch is up to date with '{n}'.")?,
                    (_, a, 0) => writeln!(
                        out,
                        "Your branch is ahead of '{n}' by {a} commit(s).\n  (use \"mediagit push\" to publish your local commits)"
                    )?,
                    (_, 0, b) => writeln!(
                        out,
                        "Your branch is behind '{n}' by {b} commit(s), and can be fast-forwarded.\n  (use \"mediagit pull\" to update your local branch)"
                    )?,
                    (_, a, b) => writeln!(
                        out,
                        "Your branch and '{n}' have diverged,\nand have {a} and {b} different commits each, respectively."
                    )?,
                }
            }
        }
        Head::Detached(id) => writeln!(out, "HEAD detached at {}", id.short(12))?,
    }
    if st.head_commit.is_none() {
        writeln!(out, "\nNo commits yet")?;
    }
    let operation = match repo.operation() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("warning: {e}");
            None
        }
    };
    if let Some(op) = operation {
        let cmd = op.op.command();
        let what = match op.op {
            mediagit_repo::sequencer::OpKind::Merge => format!("merging {}", op.other_name),
            mediagit_repo::sequencer::OpKind::Squash => format!("squash-merging {}", op.other_name),
            mediagit_repo::sequencer::OpKind::CherryPick => {
                format!("cherry-picking {}", op.other.short(12))
            }
            mediagit_repo::sequencer::OpKind::Revert => format!("reverting {}", op.other.short(12)),
            mediagit_repo::sequencer::OpKind::Rebase => format!(
                "rebasing onto {} (stopped at {})",
                op.other_name,
                op.other.short(12)
            ),
        };
        let left = match op.remaining.len() {
            0 => String::new(),
            n => format!("; {n} more commit(s) to go"),
        };
        if !op.applied {
            writeln!(out, "\nYou are {what}, interrupted before the working tree was updated{left}.\n  (use \"mediagit {cmd} --abort\" to go back to where it began)")?;
        } else if st.conflicted.is_empty() {
            writeln!(out, "\nYou are {what}{left}; all conflicts are resolved.\n  (use \"mediagit {cmd} --continue\" to finish, \"mediagit {cmd} --abort\" to go back)")?;
        } else {
            writeln!(out, "\nYou are {what}{left}.\n  (resolve the paths below, then \"mediagit {cmd} --continue\"; \"mediagit {cmd} --abort\" goes back)")?;
        }
    }
    let label = |c: &ChangeKind| match c {
        ChangeKind::Added => "new file:",
        ChangeKind::Modified => "modified:",
        ChangeKind::Deleted => "deleted:",
        ChangeKind::TypeChanged => "typechange:",
        ChangeKind::Renamed => "renamed:",
    };
    let shown = |c: &mediagit_repo::status::Change| match &c.from {
        Some(f) => format!("{f} -> {}", c.path),
        None => c.path.clone(),
    };
    if !st.staged.is_empty() {
        writeln!(out, "\nChanges to be committed:")?;
        for c in &st.staged {
            let line = format!("{:<12}{}", label(&c.change), shown(c));
            write!(out, "\t")?;
            out.raw(&paint(Style::Green, &line))?;
            writeln!(out)?;
        }
    }
    if !st.unstaged.is_empty() {
        writeln!(out, "\nChanges not staged for commit:")?;
        for c in &st.unstaged {
            let line = format!("{:<12}{}", label(&c.change), shown(c));
            write!(out, "\t")?;
            out.raw(&paint(Style::Red, &line))?;
            writeln!(out)?;
        }
    }
    if !st.conflicted.is_empty() {
        writeln!(
            out,
            "\nUnmerged paths:\n  (use \"mediagit resolve PATH --ours|--theirs|--both\", or put the version to keep at the path and \"mediagit add\" it)"
        )?;
        let side = |s: &Option<mediagit_repo::sequencer::SideInfo>| match s {
            None => "deleted".to_string(),
            Some(s) => {
                let mut t = format!("{}, modified {}", human_size(s.size), mtime_str(&s.mtime));
                if let (Some(a), Some(c)) = (&s.last_author, &s.last_commit) {
                    t.push_str(&format!(", last changed by {a} in {}", c.short(12)));
                }
                if let Some(m) = &s.media {
                    t.push_str(&format!("\n\t            {m}"));
                }
                t
            }
        };
        for c in repo.conflict_details()? {
            let line = format!("{:<16}{}", format!("{}:", short_kind(c.kind)), c.path);
            write!(out, "\t")?;
            out.raw(&paint(Style::Red, &line))?;
            writeln!(out)?;
            writeln!(out, "\t    ours:   {}", side(&c.ours))?;
            writeln!(out, "\t    theirs: {}", side(&c.theirs))?;
        }
    }
    if !st.untracked.is_empty() {
        writeln!(out, "\nUntracked files:")?;
        for p in &st.untracked {
            write!(out, "\t")?;
            out.raw(&paint(Style::Red, p))?;
            writeln!(out)?;
        }
    }
    if st.is_clean() {
        writeln!(out, "\nnothing to commit, working tree clean")?;
    } else if st.staged.is_empty() {
        writeln!(out, "\nno changes added to commit (use \"mediagit add\")")?;
    }
    Ok(out.flush()?)
}

/// What `status` says of a branch the store moved back (a rollback).
pub(crate) fn moved_back_message(b: &str, base: ObjectId, tip: ObjectId) -> String {
    format!(
        "The store's {b} went BACK to {}, an ancestor of {}, which this working tree last saw there:\n  commits were taken off the branch (a reset forced from another working tree, the store\n  restored from an older copy, or someone who can write to the store rolling it back).\n  Nothing here follows it by itself. To put {} back: \"mediagit switch {b}\", then\n  \"mediagit reset --hard {}\"; to follow it: \"mediagit switch {b}\".",
        tip.short(12),
        base.short(12),
        base.short(12),
        base.short(12),
    )
}

/// A commit refused because the store's branch moved: when it moved
/// back (a rollback), the error says so instead of "moved by another
/// working tree".
fn moved_back_error(repo: &Repository, e: RepoError) -> CommandError {
    if let RepoError::RefRace { name, .. } = &e {
        if let (Some(b), Ok(Some((Some(base), Some(tip))))) =
            (name.strip_prefix("refs/heads/"), repo.branch_moved())
        {
            if repo.branch_moved_back(base, tip) {
                return CommandError::user(
                    "branch-moved-back",
                    format!(
                        "the store's {b} went back to {}, an ancestor of {}, which this working tree last saw there; nothing was committed",
                        tip.short(12),
                        base.short(12)
                    ),
                )
                .with_hint(format!(
                    "commits were taken off the branch (a forced reset elsewhere, an older copy of the store, or a rollback by someone who can write to it); `mediagit status` explains; to put {} back: `mediagit switch {b}` then `mediagit reset --hard {}`",
                    base.short(12),
                    base.short(12)
                ));
            }
        }
    }
    e.into()
}

fn commit(
    ctx: &Ctx,
    message: Option<String>,
    all: bool,
    allow_empty: bool,
    author: Option<String>,
) -> CmdResult {
    let repo = ctx.repo()?;
    // A merge under way has its message ready.
    let message = message.or_else(|| {
        repo.operation()
            .ok()
            .flatten()
            .filter(|o| o.applied && !o.message.is_empty())
            .map(|o| o.message)
    });
    let message = message.ok_or_else(|| {
        CommandError::user("no-commit-message", "no commit message")
            .with_hint("pass one with -m MESSAGE")
    })?;
    let committer = identity(&repo);
    let author = match author {
        Some(a) => {
            let (n, e) = parse_identity(&a)?;
            now_signature(n, e)
        }
        None => match &committer {
            Ok(s) => s.clone(),
            Err(_) => return Err(RepoError::MissingIdentity.into()),
        },
    };
    let committer = committer.unwrap_or_else(|_| author.clone());
    let progress = ctx.progress();
    let id = repo
        .commit(
            &CommitOptions {
                message: message.clone(),
                all,
                allow_empty,
                author,
                committer,
            },
            &progress,
        )
        .map_err(|e| moved_back_error(&repo, e))?;
    let branch = match repo.head()? {
        Head::Branch(b) => b,
        Head::Detached(_) => "detached HEAD".into(),
    };
    let summary = message.lines().next().unwrap_or("");
    println!("[{branch} {}] {summary}", id.short(12));
    Ok(())
}

/// The label `status` gives a conflicted path.
fn short_kind(k: mediagit_repo::merge::ConflictKind) -> &'static str {
    use mediagit_repo::merge::ConflictKind as K;
    match k {
        K::Content => "both changed",
        K::AddAdd => "both added",
        K::DeleteModify => "deleted/changed",
        K::RenameDelete => "renamed/deleted",
        K::FileDirectory => "file/directory",
    }
}

/// `log`'s and `show`'s decoration of a commit: `HEAD -> main, tag: v1`.
fn decoration(names: &[String], head: &Head) -> String {
    if names.is_empty() {
        return String::new();
    }
    // The branch HEAD is on, when HEAD points here: shown as `HEAD -> B`.
    let on = match head {
        Head::Branch(b) if names.iter().any(|n| n == "HEAD") && names.contains(&branch_ref(b)) => {
            Some(b.as_str())
        }
        _ => None,
    };
    let mut labels = Vec::new();
    match on {
        Some(b) => labels.push(format!(
            "{} {}",
            paint(Style::Cyan, "HEAD ->"),
            paint(Style::Green, b)
        )),
        None if names.iter().any(|n| n == "HEAD") => labels.push(paint(Style::Cyan, "HEAD")),
        None => {}
    }
    for n in names {
        if let Some(b) = n.strip_prefix("refs/heads/") {
            if on != Some(b) {
                labels.push(paint(Style::Green, b));
            }
        } else if let Some(t) = n.strip_prefix("refs/tags/") {
            labels.push(paint(Style::Yellow, &format!("tag: {t}")));
        }
    }
    format!(
        " {}{}{}",
        paint(Style::Yellow, "("),
        labels.join(&paint(Style::Yellow, ", ")),
        paint(Style::Yellow, ")")
    )
}

fn log(ctx: &Ctx, args: LogArgs) -> CmdResult {
    let repo = ctx.repo()?;
    let paths = args
        .paths
        .iter()
        .map(|p| repo.workspace()?.repo_path(&ctx.cwd, Path::new(p)))
        .collect::<Result<Vec<_>, _>>()?;
    let commits = mediagit_repo::commands::log(
        &repo,
        &LogQuery {
            rev: args.rev.clone(),
            max: args.max,
            paths,
            with_files: args.stat || args.media,
        },
    )?;
    let head = repo.head()?;
    let mut out = stdout();
    for c in &commits {
        if args.json {
            crate::output::write_json_line(&mut out, c)?;
            continue;
        }
        let d = decoration(&c.refs, &head);
        if args.oneline {
            out.raw(&paint(Style::Yellow, &c.id.short(12)))?;
            out.raw(&d)?;
            writeln!(out, " {}", c.summary())?;
        } else {
            write_commit_header(&mut out, c, &d)?;
        }
        match &c.files {
            Some(files) if args.stat => {
                write_stat(&mut out, files)?;
                writeln!(out)?;
            }
            Some(files) => {
                // --media alone: only the media files and what changed.
                let mut any = false;
                for d in files.iter().filter(|d| !d.media.is_empty()) {
                    writeln!(out, " {}: {}", d.path, d.media.join("; "))?;
                    any = true;
                }
                if any {
                    writeln!(out)?;
                }
            }
            None => {}
        }
    }
    Ok(out.flush()?)
}

/// `commit ID (refs)`, then the header and the message. `deco` comes from
/// [`decoration`] (escaped and coloured already).
fn write_commit_header(out: &mut SafeOut, c: &CommitInfo, deco: &str) -> io::Result<()> {
    out.raw(&paint(Style::Yellow, &format!("commit {}", c.id)))?;
    out.raw(deco)?;
    writeln!(out)?;
    if c.parents.len() > 1 {
        let ps: Vec<String> = c.parents.iter().map(|p| p.short(12)).collect();
        writeln!(out, "Merge: {}", ps.join(" "))?;
    }
    writeln!(out, "Author: {} <{}>", c.author.name, c.author.email)?;
    writeln!(out, "Date:   {}", sig_date(&c.author))?;
    writeln!(out)?;
    for line in c.message.lines() {
        writeln!(out, "    {line}")?;
    }
    writeln!(out)
}

fn size_of(e: &Option<FlatEntry>) -> u64 {
    e.as_ref().map(|e| e.size).unwrap_or(0)
}

pub(crate) fn write_diff(out: &mut SafeOut, diffs: &[FileDiff]) -> io::Result<()> {
    for d in diffs {
        match &d.kind {
            DiffKind::Added => {
                let line = format!("added:    {} ({})", d.path, human_size(size_of(&d.new)));
                out.raw(&paint(Style::Green, &line))?;
                writeln!(out)?
            }
            DiffKind::Deleted => {
                let line = format!("deleted:  {} ({})", d.path, human_size(size_of(&d.old)));
                out.raw(&paint(Style::Red, &line))?;
                writeln!(out)?
            }
            DiffKind::Modified => writeln!(
                out,
                "modified: {} ({} -> {})",
                d.path,
                human_size(size_of(&d.old)),
                human_size(size_of(&d.new))
            )?,
            DiffKind::Renamed { from } => writeln!(
                out,
                "renamed:  {from} -> {} ({})",
                d.path,
                human_size(size_of(&d.new))
            )?,
            DiffKind::ModeChanged => writeln!(
                out,
                "mode:     {} ({} -> {})",
                d.path,
                d.old.as_ref().map(|e| mode_str(e.kind)).unwrap_or("-"),
                d.new.as_ref().map(|e| mode_str(e.kind)).unwrap_or("-")
            )?,
        }
        // What changed in the media fields (or an added file's summary).
        for l in &d.media {
            writeln!(out, "          {l}")?;
        }
    }
    Ok(())
}

fn write_stat(out: &mut impl Write, diffs: &[FileDiff]) -> io::Result<()> {
    let width = diffs
        .iter()
        .map(|d| match &d.kind {
            DiffKind::Renamed { from } => from.len() + 4 + d.path.len(),
            _ => d.path.len(),
        })
        .max()
        .unwrap_or(0);
    let (mut a, mut m, mut del, mut r) = (0, 0, 0, 0);
    for d in diffs {
        let name = match &d.kind {
            DiffKind::Renamed { from } => format!("{from} => {}", d.path),
            _ => d.path.clone(),
        };
        let sizes = match &d.kind {
            DiffKind::Added => {
                a += 1;
                format!("added {}", human_size(size_of(&d.new)))
            }
            DiffKind::Deleted => {
                del += 1;
                format!("deleted {}", human_size(size_of(&d.old)))
            }
            DiffKind::Renamed { .. } => {
                r += 1;
                format!("renamed {}", human_size(size_of(&d.new)))
            }
            _ => {
                m += 1;
                format!(
                    "{} -> {}",
                    human_size(size_of(&d.old)),
                    human_size(size_of(&d.new))
                )
            }
        };
        writeln!(out, " {name:<width$} | {sizes}")?;
        for l in &d.media {
            writeln!(out, " {:<width$}   {l}", "")?;
        }
    }
    writeln!(
        out,
        " {} file{} changed: {a} added, {m} modified, {del} deleted, {r} renamed",
        diffs.len(),
        if diffs.len() == 1 { "" } else { "s" }
    )
}

fn show(ctx: &Ctx, rev: Option<String>, json: bool) -> CmdResult {
    let repo = ctx.repo()?;
    let shown = mediagit_repo::commands::show(&repo, rev.as_deref().unwrap_or("HEAD"))?;
    let mut out = stdout();
    if json {
        crate::output::write_json(&mut out, &shown)?;
        return Ok(out.flush()?);
    }
    if let Some((_, tag)) = shown.tag.as_ref().and_then(|t| t.annotation.as_ref()) {
        writeln!(out, "tag {}", tag.name)?;
        writeln!(out, "Tagger: {} <{}>", tag.tagger.name, tag.tagger.email)?;
        writeln!(out, "Date:   {}\n", sig_date(&tag.tagger))?;
        for l in tag.message.lines() {
            writeln!(out, "{l}")?;
        }
        writeln!(out)?;
    }
    let c = &shown.commit;
    let d = decoration(&c.refs, &repo.head()?);
    write_commit_header(&mut out, c, &d)?;
    write_diff(&mut out, c.files.as_deref().unwrap_or(&[]))?;
    Ok(out.flush()?)
}

fn diff(
    ctx: &Ctx,
    cached: bool,
    stat: bool,
    json: bool,
    revs: Vec<String>,
    paths: Vec<String>,
) -> CmdResult {
    // The command line's shape is checked before the repository is opened.
    if revs.len() > 2 || (cached && revs.len() > 1) {
        return Err(CommandError::usage(
            "a diff compares at most two revisions, or one revision with the index (--cached)",
        ));
    }
    let repo = ctx.repo()?;
    let mut q = DiffQuery::from_revs(&repo, &revs, cached)?;
    q.paths = paths
        .iter()
        .map(|p| repo.workspace()?.repo_path(&ctx.cwd, Path::new(p)))
        .collect::<Result<Vec<_>, _>>()?;
    let result = mediagit_repo::commands::diff(&repo, &q)?;
    let diffs = &result.files;
    let mut out = stdout();
    if json {
        crate::output::write_json(&mut out, &result)?;
        return Ok(out.flush()?);
    }
    if stat {
        if !diffs.is_empty() {
            write_stat(&mut out, diffs)?;
        }
    } else {
        write_diff(&mut out, diffs)?;
    }
    Ok(out.flush()?)
}

fn branch(
    ctx: &Ctx,
    action: Option<BranchAction>,
    json: bool,
    remotes: bool,
    all: bool,
) -> CmdResult {
    let repo = ctx.repo()?;
    let who = reflog_who(&repo);
    let action = action.unwrap_or(BranchAction::List);
    if json && !matches!(action, BranchAction::List) {
        return Err(CommandError::usage(
            "--json applies to listing branches (`mediagit branch --json`)",
        ));
    }
    if (remotes || all) && !matches!(action, BranchAction::List) {
        return Err(CommandError::usage(
            "-r and -a apply to listing branches (`mediagit branch -a`)",
        ));
    }
    match action {
        BranchAction::List => {
            let mut out = stdout();
            let tracking = if remotes || all {
                repo.remote_branches()?
            } else {
                Vec::new()
            };
            let branches = if remotes {
                Vec::new()
            } else {
                repo.branches()?
            };
            if json {
                #[derive(serde::Serialize)]
                struct BranchesJson<'a> {
                    head: Head,
                    branches: &'a [mediagit_repo::branch::BranchInfo],
                    #[serde(skip_serializing_if = "<[_]>::is_empty")]
                    remotes: &'a [mediagit_repo::branch::BranchInfo],
                }
                crate::output::write_json(
                    &mut out,
                    &BranchesJson {
                        head: repo.head()?,
                        branches: &branches,
                        remotes: &tracking,
                    },
                )?;
                return Ok(out.flush()?);
            }
            if remotes {
                for b in tracking {
                    writeln!(out, "  {:<20} {}", b.name, b.commit.short(12))?;
                }
                return Ok(out.flush()?);
            }
            if let Head::Branch(b) = repo.head()? {
                if !branches.iter().any(|x| x.name == b) {
                    writeln!(out, "* {b} (no commits yet)")?;
                }
            }
            if let Head::Detached(id) = repo.head()? {
                writeln!(out, "* (HEAD detached at {})", id.short(12))?;
            }
            for b in branches {
                let name = format!("{:<20}", b.name);
                match b.current {
                    true => {
                        write!(out, "* ")?;
                        out.raw(&paint(Style::Green, &name))?;
                        writeln!(out, " {}", b.commit.short(12))?
                    }
                    false => writeln!(out, "  {name} {}", b.commit.short(12))?,
                }
            }
            for b in tracking {
                let name = format!("remotes/{}", b.name);
                writeln!(out, "  {name:<20} {}", b.commit.short(12))?;
            }
            Ok(out.flush()?)
        }
        BranchAction::Create { name, start } => {
            let start_rev = start.unwrap_or_else(|| "HEAD".into());
            let id = repo.resolve(&start_rev)?;
            repo.create_branch(
                &name,
                id,
                &who,
                &format!("branch: created from {start_rev}"),
            )?;
            println!("Created branch {name} at {}", id.short(12));
            Ok(())
        }
        BranchAction::Delete { name, force } => {
            let tip = repo.delete_branch(&name, force, &who)?;
            println!("Deleted branch {name} (was {})", tip.short(12));
            Ok(())
        }
        BranchAction::Rename { old, new } => {
            repo.rename_branch(&old, &new, &who)?;
            println!("Renamed branch {old} to {new}");
            Ok(())
        }
    }
}

fn report_checkout(out: &mediagit_repo::checkout::CheckoutOutcome, what: &str) {
    eprintln!(
        "{what} ({} file{} written, {}, {} removed)",
        out.written,
        if out.written == 1 { "" } else { "s" },
        human_size(out.bytes),
        out.removed
    );
    for (path, why) in &out.not_removed {
        eprintln!(
            "warning: could not remove {path} ({why}); it is left in the working tree, untracked"
        );
    }
}

fn switch(
    ctx: &Ctx,
    name: Option<String>,
    create: Option<String>,
    start: Option<String>,
    force: bool,
) -> CmdResult {
    let repo = ctx.repo()?;
    let who = reflog_who(&repo);
    let progress = ctx.progress();
    if let Some(new) = create {
        match repo.switch_create(&new, start.as_deref(), force, &who, &progress)? {
            mediagit_repo::checkout::SwitchCreated::CheckedOut(out) => {
                report_checkout(&out, &format!("Switched to a new branch '{new}'"))
            }
            mediagit_repo::checkout::SwitchCreated::Unborn => {
                eprintln!("Switched to a new branch '{new}'")
            }
        }
        return Ok(());
    }
    let name = name.ok_or_else(|| {
        CommandError::usage("which branch? give a branch name, or -c NAME to create one")
    })?;
    if repo.read_ref(&branch_ref(&name))?.is_none() {
        return Err(CommandError::from(RepoError::BranchNotFound(name.clone()))
            .with_hint(format!("create it with `mediagit switch -c {name}`; to look at a commit use `mediagit checkout REV`")));
    }
    let before = repo.head()?;
    let out = repo.checkout(
        &CheckoutTarget::Branch(name.clone()),
        force,
        &who,
        &progress,
    )?;
    report_checkout(&out, &switched(&before, &name));
    Ok(())
}

/// "Switched to branch 'NAME'", or Git's "Already on 'NAME'" when the
/// branch was checked out already (`switch main` on main, `checkout HEAD`).
fn switched(before: &mediagit_repo::refs::Head, name: &str) -> String {
    match before {
        mediagit_repo::refs::Head::Branch(b) if b == name => format!("Already on '{name}'"),
        _ => format!("Switched to branch '{name}'"),
    }
}

fn checkout(ctx: &Ctx, target: Option<String>, paths: Vec<String>, force: bool) -> CmdResult {
    let repo = ctx.repo()?;
    let who = reflog_who(&repo);
    let progress = ctx.progress();
    if !paths.is_empty() {
        let rev = match &target {
            Some(r) => Some(repo.resolve(r)?),
            None => None,
        };
        let paths = paths
            .iter()
            .map(|p| repo.workspace()?.repo_path(&ctx.cwd, Path::new(p)))
            .collect::<Result<Vec<_>, _>>()?;
        let out = repo.checkout_paths(rev, &paths, &progress)?;
        report_checkout(&out, "Restored paths");
        return Ok(());
    }
    let Some(target) = target else {
        return Err(CommandError::usage(
            "checkout needs a branch or revision (or `[REV] -- PATH...`)",
        ));
    };
    // `checkout HEAD` (or `@`) stays on the current branch, as in Git:
    // with --force it only resets the working tree and the index.
    let current = match (target.as_str(), repo.head()?) {
        ("HEAD" | "@", mediagit_repo::refs::Head::Branch(b))
            if repo.read_ref(&branch_ref(&b))?.is_some() =>
        {
            Some(b)
        }
        _ => None,
    };
    let t = if let Some(b) = current {
        CheckoutTarget::Branch(b)
    } else if repo.read_ref(&branch_ref(&target))?.is_some() {
        CheckoutTarget::Branch(target.clone())
    } else {
        CheckoutTarget::Detached(repo.resolve(&target)?)
    };
    let before = repo.head()?;
    let out = repo.checkout(&t, force, &who, &progress)?;
    match t {
        CheckoutTarget::Branch(b) => report_checkout(&out, &switched(&before, &b)),
        CheckoutTarget::Detached(id) => {
            report_checkout(&out, &format!("HEAD is now at {} (detached)", id.short(12)))
        }
    }
    Ok(())
}

fn tag(ctx: &Ctx, mut args: TagArgs) -> CmdResult {
    let repo = ctx.repo()?;
    // `tag --json list`: an option before the subcommand makes clap read
    // `list` as a tag name; creating a tag takes no --json, so it can only
    // mean the listing.
    if args.json
        && args.action.is_none()
        && args.name.as_deref() == Some("list")
        && args.rev.is_none()
        && args.message.is_none()
    {
        args.name = None;
    }
    let listing = matches!(
        (&args.action, &args.name),
        (Some(TagAction::List), _) | (None, None)
    );
    if args.json && !listing {
        return Err(CommandError::usage(
            "--json applies to listing tags (`mediagit tag --json`)",
        ));
    }
    if args.message.is_some() && args.name.is_none() {
        return Err(CommandError::usage(
            "-m makes an annotated tag, which needs a name: `mediagit tag NAME [REV] -m MESSAGE`",
        ));
    }
    // `tag -m x list`: options first make clap read a subcommand's name as
    // the tag's; a tag named so could not be deleted by name either.
    if let (None, Some(name)) = (&args.action, &args.name) {
        if name == "list" || name == "delete" {
            return Err(CommandError::usage(format!(
                "{name:?} is a subcommand of `tag`, not a tag name"
            ))
            .with_hint("put the subcommand first (`mediagit tag list`), or choose another name"));
        }
    }
    match (args.action, args.name) {
        (Some(TagAction::Delete { name }), _) => {
            let id = repo.delete_tag(&name)?;
            println!("Deleted tag {name} (was {})", id.short(12));
            Ok(())
        }
        (Some(TagAction::List), _) | (None, None) => {
            let mut out = stdout();
            let tags = repo.tags()?;
            if args.json {
                #[derive(serde::Serialize)]
                struct TagsJson<'a> {
                    tags: &'a [mediagit_repo::branch::TagInfo],
                }
                crate::output::write_json(&mut out, &TagsJson { tags: &tags })?;
                return Ok(out.flush()?);
            }
            for t in tags {
                match &t.annotation {
                    Some((_, tag)) => writeln!(
                        out,
                        "{:<20} {} {}",
                        t.name,
                        t.commit.short(12),
                        tag.message.lines().next().unwrap_or("")
                    )?,
                    None => writeln!(out, "{:<20} {}", t.name, t.commit.short(12))?,
                }
            }
            Ok(out.flush()?)
        }
        (None, Some(name)) => {
            let target = repo.resolve(args.rev.as_deref().unwrap_or("HEAD"))?;
            let tagger = match &args.message {
                Some(_) => identity(&repo)?,
                None => reflog_who(&repo),
            };
            repo.create_tag(&name, target, args.message.as_deref(), &tagger)?;
            println!("Tagged {} as {name}", target.short(12));
            Ok(())
        }
    }
}

fn reflog(ctx: &Ctx, reference: Option<String>, json: bool) -> CmdResult {
    let repo = ctx.repo()?;
    let (label, full) = match reference.as_deref() {
        None | Some("HEAD") => ("HEAD".to_string(), "HEAD".to_string()),
        Some(r) if r.starts_with("refs/") => (r.to_string(), r.to_string()),
        Some(r) => (r.to_string(), branch_ref(r)),
    };
    let entries = repo.workspace()?.reflog(&full)?;
    if entries.is_empty() && full != "HEAD" && repo.read_ref(&full)?.is_none() {
        return Err(RepoError::UnknownRevision { rev: label }.into());
    }
    let mut out = stdout();
    if json {
        #[derive(serde::Serialize)]
        struct ReflogJson<'a> {
            #[serde(rename = "ref")]
            reference: &'a str,
            /// Newest first: entry N is `REF@{N}`.
            entries: &'a [mediagit_repo::refs::ReflogEntry],
        }
        crate::output::write_json(
            &mut out,
            &ReflogJson {
                reference: &full,
                entries: &entries,
            },
        )?;
        return Ok(out.flush()?);
    }
    for (i, e) in entries.iter().enumerate() {
        let id = if e.new.is_zero() { e.old } else { e.new };
        writeln!(
            out,
            "{} {label}@{{{i}}}: {} {}",
            id.short(12),
            sig_date_iso(&e.who),
            e.message
        )?;
    }
    Ok(out.flush()?)
}

fn write_long(out: &mut impl Write, path: &str, e: &FlatEntry) -> io::Result<()> {
    write_long_prefix(out, e)?;
    writeln!(out, "{path}")
}

/// The columns of `-l` before the path.
fn write_long_prefix(out: &mut impl Write, e: &FlatEntry) -> io::Result<()> {
    write!(
        out,
        "{}\t{}\t{}\t{}\t",
        mode_str(e.kind),
        e.size,
        mtime_str(&e.mtime),
        e.content
    )
}

/// One line of `ls-files --json` and `ls-tree --json`.
#[derive(serde::Serialize)]
struct FileJson<'a> {
    path: &'a str,
    #[serde(flatten)]
    entry: &'a FlatEntry,
    /// With `ls-files --media`: the stored media record.
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<&'a mediagit_media::Metadata>,
}

fn ls_files(ctx: &Ctx, long: bool, json: bool, media: bool) -> CmdResult {
    let repo = ctx.repo()?;
    let tree = repo.index_tree()?;
    let mut out = stdout();
    // Stored records only: listing reads no content.
    let records = match media {
        true => {
            let notes = mediagit_repo::media::MediaNotes::load(&repo)?;
            let all = notes.all()?;
            for u in notes.unreadable() {
                eprintln!("warning: {}", crate::output::safe(&u));
            }
            all
        }
        false => Default::default(),
    };
    let mut unrecorded = 0usize;
    for (p, e) in &tree {
        if json {
            let line = FileJson {
                path: p,
                entry: e,
                media: records.get(&e.content),
            };
            crate::output::write_json_line(&mut out, &line)?;
            continue;
        }
        if media {
            let summary = match records.get(&e.content) {
                Some(m) => mediagit_media::summary(m),
                None if e.kind == mediagit_format::index::IndexKind::Symlink || e.size == 0 => {
                    "-".to_string()
                }
                None => {
                    unrecorded += 1;
                    "?".to_string()
                }
            };
            if long {
                write_long_prefix(&mut out, e)?;
            }
            writeln!(out, "{summary}\t{p}")?;
        } else if long {
            write_long(&mut out, p, e)?;
        } else {
            writeln!(out, "{p}")?;
        }
    }
    out.flush()?;
    if unrecorded > 0 && !ctx.quiet {
        eprintln!(
            "note: {unrecorded} file(s) marked ? have no media record yet (`mediagit media --scan` stores them)"
        );
    }
    Ok(())
}

fn ls_tree(ctx: &Ctx, rev: &str, recursive: bool, long: bool, json: bool) -> CmdResult {
    let repo = ctx.repo()?;
    let id = repo.resolve(rev)?;
    let tree = repo.commit_tree(&id)?;
    let mut out = stdout();
    let mut dirs_done = std::collections::BTreeSet::new();
    for (p, e) in &tree {
        if !recursive {
            if let Some((dir, _)) = p.split_once('/') {
                if dirs_done.insert(dir.to_string()) {
                    if json {
                        #[derive(serde::Serialize)]
                        struct DirJson<'a> {
                            path: &'a str,
                            kind: &'static str,
                        }
                        crate::output::write_json_line(
                            &mut out,
                            &DirJson {
                                path: dir,
                                kind: "tree",
                            },
                        )?;
                    } else {
                        writeln!(out, "040000\t-\t-\t-\t{dir}/")?;
                    }
                }
                continue;
            }
        }
        if json {
            crate::output::write_json_line(
                &mut out,
                &FileJson {
                    path: p,
                    entry: e,
                    media: None,
                },
            )?;
        } else if long {
            write_long(&mut out, p, e)?;
        } else {
            writeln!(out, "{}\t{}\t{p}", mode_str(e.kind), e.content)?;
        }
    }
    Ok(out.flush()?)
}

fn cat(ctx: &Ctx, spec: &str) -> CmdResult {
    let repo = ctx.repo()?;
    let (rev, path) = spec
        .split_once(':')
        .ok_or_else(|| CommandError::usage(format!("expected REV:PATH, got {spec:?}")))?;
    let id = repo.resolve(if rev.is_empty() { "HEAD" } else { rev })?;
    let path = path.trim_start_matches("./").trim_end_matches('/');
    let mut out = raw_stdout();
    repo.cat(id, path, &mut out)?;
    Ok(out.flush()?)
}

/// `mediagit help [COMMAND... | TOPIC]`.
fn help(what: &[String]) -> CmdResult {
    let mut out = stdout();
    if let Some(topic) = what.first().and_then(|w| crate::help_topics::find(w)) {
        if what.len() > 1 {
            return Err(CommandError::usage(format!(
                "`help {}` takes nothing after the topic",
                topic.name
            )));
        }
        let text = topic.text().ok_or_else(|| {
            CommandError::user(
                "help-missing",
                format!(
                    "the text of `help {}` is missing from this build",
                    topic.name
                ),
            )
        })?;
        out.write_all(text.as_bytes())?;
        return Ok(out.flush()?);
    }
    let mut cmd = crate::cli_command();
    cmd.build();
    let mut at = &mut cmd;
    for (i, name) in what.iter().enumerate() {
        at = match at.find_subcommand_mut(name) {
            Some(sub) => sub,
            None => {
                let topics: Vec<&str> = crate::help_topics::TOPICS.iter().map(|t| t.name).collect();
                let within = match i {
                    0 => String::new(),
                    _ => format!(" in `{}`", what[..i].join(" ")),
                };
                return Err(CommandError::usage(format!(
                    "no command{within} or topic named {name:?}"
                ))
                .with_hint(format!(
                    "commands: `mediagit --help`; topics: {}",
                    topics.join(", ")
                )));
            }
        };
    }
    let mut text = at.render_long_help().to_string();
    if what.is_empty() {
        text.push_str("\nTopics (`mediagit help TOPIC`):\n");
        for t in crate::help_topics::TOPICS {
            text.push_str(&format!("  {:<10} {}\n", t.name, t.summary));
        }
    }
    out.write_all(text.as_bytes())?;
    Ok(out.flush()?)
}

/// `mediagit man`: the top page on stdout, or every page into a directory.
fn man_pages(dir: Option<PathBuf>) -> CmdResult {
    let cmd = crate::cli_command();
    let render = |c: clap::Command| -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        clap_mangen::Man::new(c).render(&mut out)?;
        Ok(out)
    };
    let failed = |what: &str, e: std::io::Error| CommandError::user("io", format!("{what}: {e}"));
    let Some(dir) = dir else {
        let page = render(cmd).map_err(|e| failed("cannot render the manual page", e))?;
        return write_stdout(&page);
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| failed(&format!("cannot create {}", dir.display()), e))?;
    // Every command and subcommand (`mediagit-branch-create.1`): the pages
    // name their subcommands' pages, which must exist. A page's title is its
    // own name (`mediagit-add(1)`), its synopsis the command as typed
    // (`mediagit branch create ...`).
    let top = cmd.clone().disable_help_subcommand(true);
    let mut pages: Vec<(String, clap::Command)> = vec![("mediagit".into(), top)];
    // (The top level's `help` is MediaGit's own command, with a page.)
    let mut todo: Vec<(Vec<String>, clap::Command)> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| (vec![c.get_name().to_string()], c.clone()))
        .collect();
    while let Some((words, sub)) = todo.pop() {
        for child in sub.get_subcommands().filter(|c| c.get_name() != "help") {
            let mut w = words.clone();
            w.push(child.get_name().to_string());
            todo.push((w, child.clone()));
        }
        let name = format!("mediagit-{}", words.join("-"));
        let typed = format!("mediagit {}", words.join(" "));
        let page = sub
            .name(name.clone())
            .bin_name(typed)
            .version(env!("CARGO_PKG_VERSION"))
            // clap's own `help` subcommands get no page and are not listed.
            .disable_help_subcommand(true);
        pages.push((name, page));
    }
    for (name, c) in pages {
        let path = dir.join(format!("{name}.1"));
        let page = render(c).map_err(|e| failed("cannot render the manual page", e))?;
        std::fs::write(&path, page)
            .map_err(|e| failed(&format!("cannot write {}", path.display()), e))?;
    }
    Ok(())
}

/// Writes generated text (a completion script, a manual page) to stdout.
fn write_stdout(bytes: &[u8]) -> CmdResult {
    let mut out = raw_stdout();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe => CommandError::broken_pipe(),
            _ => CommandError::user("output-failed", format!("cannot write to stdout: {e}")),
        })
}
