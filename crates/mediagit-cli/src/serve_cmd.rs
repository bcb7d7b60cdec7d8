//! `mediagit serve`: the CLI around `mediagit-server` (arguments, logs,
//! the runtime, signals). docs/SERVER.md is the admin's guide.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mediagit_server::{Auth, Hosting, Limits, Repos, ServerState};

use crate::command_error::CommandError;
use crate::CmdResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Host every repository under this directory (each a bare
    /// repository at DIR/NAME).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "storage",
        conflicts_with = "storage"
    )]
    root: Option<PathBuf>,
    /// Host every repository under this object-store prefix (each at
    /// PREFIX/NAME): s3://BUCKET/PREFIX, az://..., gs://...; nothing is
    /// kept on the server's disk.
    #[arg(long, value_name = "URL")]
    storage: Option<String>,
    /// Object store endpoint (MinIO, Ceph, Azurite, ...), for --storage.
    #[arg(long, value_name = "URL", requires = "storage")]
    endpoint: Option<String>,
    /// Object store region (S3), for --storage.
    #[arg(long, value_name = "REGION", requires = "storage")]
    region: Option<String>,
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8420")]
    bind: String,
    /// Users, their token hashes and their rights per repository
    /// (docs/SERVER.md). Without it everyone who can connect may do
    /// everything, so the server listens on loopback only.
    #[arg(long, value_name = "FILE")]
    auth_file: Option<PathBuf>,
    /// Listen on an address other than loopback without an auth file.
    #[arg(long)]
    insecure: bool,
    /// TLS certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A push to a repository that does not exist creates it (for users
    /// with the write right on its name).
    #[arg(long)]
    create_on_push: bool,
    /// Log lines as text or as JSON objects (stderr).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Largest object (pack) one upload may store, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16u64 << 30)]
    max_object_size: u64,
    /// On SIGTERM or SIGINT: seconds running transfers get to finish
    /// before they are aborted.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    shutdown_timeout: u64,
    /// A transfer whose client sends or takes nothing for this many
    /// seconds is abandoned.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    idle_timeout: u64,
    /// Pack uploads and large downloads at once (more are answered
    /// "busy", and clients retry).
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_transfers: usize,
    /// ... from one client address.
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_transfers_per_client: usize,
    /// Back up every hosted repository that changed since its last backup
    /// to this target (a directory or s3://, az://, gs://; docs/BACKUP.md),
    /// one repository after another, every --backup-every.
    #[arg(long, value_name = "URL")]
    backup: Option<String>,
    /// How often to back up: "1h" (default), "30 minutes", "1 day".
    #[arg(
        long,
        value_name = "DURATION",
        requires = "backup",
        default_value = "1h"
    )]
    backup_every: String,
}

fn init_logs(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("MEDIAGIT_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("mediagit_server=info"))
        }
        _ => EnvFilter::new("mediagit_server=info,mediagit=info"),
    };
    let b = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Text => b.with_ansi(crate::output::color::stderr_on()).try_init(),
    };
}

pub fn run(cwd: &std::path::Path, a: ServeArgs) -> CmdResult {
    let addr: SocketAddr = a.bind.parse().map_err(|e| {
        CommandError::usage(format!("--bind {}: not an ADDRESS:PORT ({e})", a.bind))
    })?;
    let auth = match &a.auth_file {
        Some(f) => Auth::load(f).map_err(|e| CommandError::user("bad-auth-file", e.to_string()))?,
        None => Auth::open(),
    };
    if auth.is_open() && !addr.ip().is_loopback() && !a.insecure {
        return Err(CommandError::user(
            "insecure-bind",
            format!("without --auth-file every client may read, push and delete: refusing to listen on {addr}, which is not loopback"),
        )
        .with_hint("give --auth-file FILE (docs/SERVER.md), or --insecure if the network is yours alone"));
    }
    init_logs(a.log_format);
    let (hosting, spool) = match (&a.root, &a.storage) {
        (Some(root), _) => {
            let root = if root.is_absolute() {
                root.clone()
            } else {
                cwd.join(root)
            };
            let root = root.canonicalize().map_err(|e| {
                CommandError::user("no-root", format!("--root {}: {e}", root.display()))
            })?;
            if !root.is_dir() {
                return Err(CommandError::user(
                    "no-root",
                    format!("--root {}: not a directory", root.display()),
                ));
            }
            // Repository names are folder names in DIR, and rights follow
            // names: whoever may rename folders in DIR could move a
            // repository under a name they have rights on (past the auth
            // file), or make one the server's spool. In a folder others
            // can write, only the sticky bit stops them renaming the
            // server's folders.
            {
                use std::os::unix::fs::MetadataExt;
                let mode = std::fs::metadata(&root).map(|m| m.mode()).unwrap_or(0);
                if mode & 0o022 != 0 && mode & 0o1000 == 0 {
                    return Err(CommandError::user(
                        "bad-root",
                        format!(
                            "--root {}: other users can write it (mode {:o}) and it has no sticky bit, so they could rename the repositories it holds past the auth file; not served",
                            root.display(),
                            mode & 0o7777
                        ),
                    )
                    .with_hint(format!(
                        "`chmod +t {0}` (others may still add folders, never rename the server's), or `chmod go-w {0}`",
                        root.display()
                    )));
                }
            }
            check_root_owners(&root)?;
            // Uploads are spooled inside the root (same filesystem: stored
            // by a rename; no repository name starts with '.'), in a
            // directory of this process's own (removed when it stops).
            let spool = Spool::in_root(&root)?;
            remove_dead_spools(&spool.parent_path(), |name| name.parse().ok());
            (Hosting::Root(root), spool)
        }
        (None, Some(url)) => {
            let mut sc = mediagit_format::config::StorageConfig::from_url(url)
                .map_err(|e| CommandError::user("bad-store-url", e.to_string()))?;
            if !sc.is_object_store() {
                return Err(CommandError::usage("--storage takes an object store URL (s3://, az://, gs://); for a directory use --root"));
            }
            sc.endpoint = a.endpoint.clone();
            sc.region = a.region.clone();
            let env = crate::commands::cloud_env();
            // Refs and locks move by conditional writes; several servers
            // on one bucket rely on them.
            let probe =
                mediagit_repo::repo::open_storage(std::path::Path::new("."), Some(&sc), &env)?;
            if let Some(p) = probe.conditional_writes_probe() {
                if !p.map_err(mediagit_repo::RepoError::from)? {
                    return Err(CommandError::user(
                        "no-conditional-writes",
                        format!("{url}: this store does not enforce conditional writes, so two pushes could lose a ref update; not served"),
                    ));
                }
            }
            remove_dead_spools(&std::env::temp_dir(), |name| {
                name.strip_prefix("mediagit-serve-")?
                    .split('-')
                    .next()?
                    .parse()
                    .ok()
            });
            (Hosting::Store { config: sc, env }, Spool::in_temp()?)
        }
        (None, None) => return Err(CommandError::usage("give --root DIR or --storage URL")),
    };
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => Some(
            mediagit_server::tls_config(c, k)
                .map_err(|e| CommandError::user("bad-tls", e.to_string()))?,
        ),
        _ => None,
    };
    let limits = Limits {
        max_object: a.max_object_size,
        idle: Duration::from_secs(a.idle_timeout.max(1)),
        max_transfers: a.max_transfers.max(1),
        max_transfers_per_client: a.max_transfers_per_client.max(1),
    };
    let backup = match &a.backup {
        Some(url) => {
            let every = crate::backup_cmd::parse_duration(&a.backup_every, "--backup-every")?;
            if every.is_zero() {
                return Err(CommandError::usage(
                    "--backup-every: give a duration above zero",
                ));
            }
            let url = if url.contains("://") || std::path::Path::new(url).is_absolute() {
                url.clone()
            } else {
                cwd.join(url).to_string_lossy().into_owned()
            };
            // Checked (and made a target if empty) before serving.
            mediagit_repo::backup::Target::open(
                &url,
                &crate::commands::cloud_env(),
                &spool.path(),
                true,
            )?;
            Some((url, every))
        }
        None => None,
    };
    let tmp = spool.path();
    let state = Arc::new(ServerState::new(
        Repos::new(hosting, tmp.clone()),
        auth,
        a.create_on_push,
        limits,
    ));
    if let Some((url, every)) = backup {
        let st = state.clone();
        let tmp = tmp.clone();
        std::thread::Builder::new()
            .name("mediagit-backup".into())
            .spawn(move || backup_loop(&st, &url, every, &tmp))
            .map_err(|e| {
                CommandError::user("io", format!("cannot start the backup thread: {e}"))
            })?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mediagit-serve")
        .build()
        .map_err(|e| CommandError::user("io", format!("cannot start the server's runtime: {e}")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let grace = Duration::from_secs(a.shutdown_timeout);
    let r = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            CommandError::user("bind-failed", format!("cannot listen on {addr}: {e}"))
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| CommandError::user("io", e.to_string()))?;
        // The one line on stdout: where to connect (the port, when
        // --bind asked for port 0).
        println!("mediagit serve: listening on {scheme}://{local}");
        tracing::info!(address = %local, scheme, "listening");
        let shutdown = async {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => tracing::info!("SIGTERM"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
            }
        };
        mediagit_server::serve(listener, mediagit_server::app(state), tls, shutdown, grace)
            .await
            .map_err(|e| CommandError::user("io", e.to_string()))
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    spool.remove();
    r
}

/// The directory a server spools uploads in: its own, mode 0700, and
/// held open for the server's whole life, so that it is always reached
/// through that handle (`/proc/self/fd/N`), never by a path someone who
/// can write the root (a shared, group-writable `--root`) could point
/// elsewhere by renaming or swapping a folder for a link.
struct Spool {
    parent: std::os::fd::OwnedFd,
    dir: std::os::fd::OwnedFd,
    name: String,
}

impl Spool {
    /// `ROOT/.mediagit-serve-tmp/PID` (same filesystem as the
    /// repositories: uploads are stored by a rename).
    /// `.mediagit-serve-tmp` must be a directory of this user's, not a
    /// link; it is made private if it is not.
    fn in_root(root: &std::path::Path) -> Result<Spool, CommandError> {
        use rustix::fs::{Mode, OFlags, CWD};
        let err = |what: String| CommandError::user("bad-spool", what);
        let parent_path = root.join(".mediagit-serve-tmp");
        let root_fd = rustix::fs::openat(
            CWD,
            root,
            OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err(format!("--root {}: {e}", root.display())))?;
        let parent = private_dir(&root_fd, ".mediagit-serve-tmp")
            .map_err(|why| err(format!("{}: {why}", parent_path.display())))?;
        let name = std::process::id().to_string();
        let dir = private_dir(&parent, &name)
            .map_err(|why| err(format!("{}/{name}: {why}", parent_path.display())))?;
        Ok(Spool { parent, dir, name })
    }

    /// `$TMPDIR/mediagit-serve-PID-RANDOM`, made new (never one that is
    /// there already: anyone can make folders in /tmp).
    fn in_temp() -> Result<Spool, CommandError> {
        use rustix::fs::{Mode, OFlags, CWD};
        let tmp = std::env::temp_dir();
        let err = |what: String| CommandError::user("bad-spool", what);
        let parent = rustix::fs::openat(
            CWD,
            &tmp,
            OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err(format!("{}: {e}", tmp.display())))?;
        for _ in 0..100 {
            let mut r = [0u8; 4];
            mediagit_crypto::random(&mut r).map_err(|e| err(e.to_string()))?;
            let name = format!(
                "mediagit-serve-{}-{}",
                std::process::id(),
                r.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            match rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o700)) {
                Ok(()) => {
                    let dir = private_dir(&parent, &name)
                        .map_err(|why| err(format!("{}/{name}: {why}", tmp.display())))?;
                    return Ok(Spool { parent, dir, name });
                }
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(err(format!("{}/{name}: {e}", tmp.display()))),
            }
        }
        Err(err(format!("{}: no new folder name found", tmp.display())))
    }

    /// The spool's path, through the held handle.
    fn path(&self) -> std::path::PathBuf {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", self.dir.as_raw_fd()).into()
    }

    /// The folder holding the spools, through the held handle.
    fn parent_path(&self) -> std::path::PathBuf {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", self.parent.as_raw_fd()).into()
    }

    /// Removes the spool: its files, then itself, by the handles.
    fn remove(self) {
        if let Ok(d) = rustix::fs::Dir::read_from(&self.dir) {
            for e in d.flatten() {
                let n = e.file_name().to_owned();
                if n.as_bytes() != b"." && n.as_bytes() != b".." {
                    let _ =
                        rustix::fs::unlinkat(&self.dir, n.as_c_str(), rustix::fs::AtFlags::empty());
                }
            }
        }
        let _ = rustix::fs::unlinkat(
            &self.parent,
            self.name.as_str(),
            rustix::fs::AtFlags::REMOVEDIR,
        );
    }
}

/// Opens (making it if missing) the directory `name` in `at`, never
/// through a link, and makes sure only this user can write in it: it must
/// be this user's, and loses any group or other rights.
fn private_dir(at: &impl std::os::fd::AsFd, name: &str) -> Result<std::os::fd::OwnedFd, String> {
    use rustix::fs::{Mode, OFlags};
    match rustix::fs::mkdirat(at, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.to_string()),
    }
    let fd = rustix::fs::openat(
        at,
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
            "not a directory, or a symbolic link (remove it; the server makes its own)".to_string()
        }
        e => e.to_string(),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| e.to_string())?;
    if st.st_uid != rustix::process::geteuid().as_raw() {
        return Err(format!(
            "belongs to another user (uid {}); remove it, the server makes its own",
            st.st_uid
        ));
    }
    if st.st_mode & 0o077 != 0 {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700)).map_err(|e| e.to_string())?;
    }
    Ok(fd)
}

/// `serve --backup`: every `every`, each hosted repository in turn is
/// backed up (`backup create`; nothing is written for one whose refs have
/// not changed since its last record), straight from its store to the
/// target; the outcome goes to the log and to `/metrics`. Ends with the
/// process (a run cut short leaves the target valid: it is write-once).
fn backup_loop(state: &ServerState, url: &str, every: Duration, tmp: &std::path::Path) {
    loop {
        let names = match hosted_repositories(state) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "backup: cannot list the hosted repositories");
                Vec::new()
            }
        };
        for name in names {
            let t0 = std::time::Instant::now();
            let r = backup_one(state, &name, url, tmp);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            match r {
                Ok((record, bytes)) => {
                    tracing::info!(repository = %name, record = record.as_deref().unwrap_or("-"), bytes, "backup done");
                    state
                        .metrics
                        .backup_done(&name, true, t0.elapsed(), bytes, now);
                }
                Err(e) => {
                    tracing::warn!(repository = %name, error = %e, "backup failed");
                    state
                        .metrics
                        .backup_done(&name, false, t0.elapsed(), 0, now);
                }
            }
        }
        std::thread::sleep(every);
    }
}

/// The names of the hosted repositories: bare repositories under the root
/// (one or two levels down), or the stores under the prefix (each has a
/// `NAME/config.toml`).
fn hosted_repositories(state: &ServerState) -> Result<Vec<String>, String> {
    match state.repos.hosting() {
        Hosting::Root(root) => Ok(mediagit_repo::backup::repositories_under(root)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|(_, p)| {
                let rel = p.strip_prefix(root).ok()?.to_str()?.to_string();
                Some(rel)
            })
            .filter(|n| !n.starts_with('.'))
            .collect()),
        Hosting::Store { config, env } => {
            let s = mediagit_repo::repo::open_storage(std::path::Path::new("."), Some(config), env)
                .map_err(|e| e.to_string())?;
            let mut names: Vec<String> = s
                .list("")
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter_map(|k| k.strip_suffix("/config.toml").map(str::to_string))
                .filter(|n| mediagit_protocol::wire::check_repo_name(n).is_ok())
                .collect();
            names.sort();
            names.dedup();
            Ok(names)
        }
    }
}

/// One repository's backup: (the record written, if any; bytes copied).
fn backup_one(
    state: &ServerState,
    name: &str,
    url: &str,
    tmp: &std::path::Path,
) -> Result<(Option<String>, u64), String> {
    use mediagit_repo::backup::{self, RecordKind, Target};
    let storage = state.repos.storage(name).map_err(|e| e.to_string())?;
    let store =
        mediagit_repo::store::Store::open(storage, tmp.to_path_buf()).map_err(|e| e.to_string())?;
    if store.is_encrypted() {
        return Err("encrypted: the server never holds the key; back up this repository from a client that has it (`mediagit backup create`)".into());
    }
    let repo = mediagit_repo::Repository::on_store(store);
    let target =
        Target::open(url, &crate::commands::cloud_env(), tmp, true).map_err(|e| e.to_string())?;
    let id = name.replace('/', "_");
    let last = match target.entry(&id).map_err(|e| e.to_string())? {
        Some(entry) => {
            let pool = target
                .pool_like(&entry, repo.store())
                .map_err(|e| e.to_string())?;
            target
                .records(&id, &pool)
                .map_err(|e| e.to_string())?
                .0
                .pop()
        }
        None => None,
    };
    let out = backup::create(
        &repo,
        &target,
        &backup::CreateOptions {
            repository: &id,
            kind: RecordKind::Snapshot,
            host: "mediagit serve".into(),
            unless_same_as: last.as_ref(),
            retain_days: None,
            repair: false,
            check_same: true,
        },
        &mediagit_repo::progress::NoProgress,
    )
    .map_err(|e| e.to_string())?;
    Ok((out.record, out.transfer.bytes))
}

/// Removes the upload spools of servers that died without cleaning up (a
/// SIGKILL, a crash): directories in `dir` whose name gives a process id
/// (`pid_of`) that no process of this machine has, and in which nothing
/// changed for an hour (a server of another machine sharing the root
/// keeps its own, busy, spool).
fn remove_dead_spools(dir: &std::path::Path, pid_of: impl Fn(&str) -> Option<i32>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let hour = Duration::from_secs(3600);
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(&pid_of) else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 only asks whether `pid` exists; it
        // touches no memory.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        let Ok(m) = e.metadata() else { continue };
        // Only a real folder (never a link), and only this user's.
        use std::os::unix::fs::MetadataExt;
        if !gone
            || !m.is_dir()
            || m.file_type().is_symlink()
            || m.uid() != rustix::process::geteuid().as_raw()
        {
            continue;
        }
        let mut budget = 100_000;
        let newest = newest_below(&e.path(), 8, &mut budget).max(m.modified().ok());
        if budget > 0 && newest.is_some_and(|t| t.elapsed().is_ok_and(|age| age > hour)) {
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => {
                    tracing::info!(dir = %e.path().display(), "removed the upload spool of a server that is gone")
                }
                Err(err) => {
                    tracing::warn!(dir = %e.path().display(), %err, "cannot remove the upload spool of a server that is gone")
                }
            }
        }
    }
}

/// The newest modification time of anything below `dir` (not following
/// links), looking at most `depth` levels down and `budget` entries (0
/// left: not all were seen).
fn newest_below(
    dir: &std::path::Path,
    depth: usize,
    budget: &mut usize,
) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if *budget == 0 {
            return newest;
        }
        *budget -= 1;
        let Ok(m) = e.metadata() else { continue };
        newest = newest.max(m.modified().ok());
        if m.is_dir() {
            if depth == 0 {
                *budget = 0;
                return newest;
            }
            newest = newest.max(newest_below(&e.path(), depth - 1, budget));
        }
    }
    newest
}

/// `--root` and every folder above it must be this user's or root's, and
/// none of the folders above writable by others without the sticky bit:
/// whoever owns the root (or may rename an entry on the way to it) can
/// move the repositories it holds, or the whole root, past the auth file.
fn check_root_owners(root: &Path) -> Result<(), CommandError> {
    use mediagit_storage::permissions::{others_can_write, Writers};
    use std::os::unix::fs::MetadataExt;
    let w = Writers::me_and_my_group();
    let refuse = |p: &Path, why: String| {
        CommandError::user(
            "bad-root",
            format!(
                "--root {}: {} {why}, so another user could swap the repositories it serves; not served",
                root.display(),
                if p == root {
                    "it".to_string()
                } else {
                    p.display().to_string()
                }
            ),
        )
        .with_hint("serve a folder that you (the server's user) own, below folders only you or root can change")
    };
    let mut cur = Some(root);
    while let Some(p) = cur {
        let m = std::fs::metadata(p).map_err(|e| {
            CommandError::user(
                "no-root",
                format!("--root {}: {}: {e}", root.display(), p.display()),
            )
        })?;
        if m.uid() != w.uid && m.uid() != 0 {
            return Err(refuse(
                p,
                format!("belongs to another user (uid {})", m.uid()),
            ));
        }
        // (The root was resolved: no link on the way.) Mode bits and ACL.
        let others = others_can_write(p, &m, true, w).map_err(|e| {
            CommandError::user(
                "no-root",
                format!("--root {}: {}: {e}", root.display(), p.display()),
            )
        })?;
        if let Some(why) = others.filter(|_| m.mode() & 0o1000 == 0) {
            return Err(refuse(p, format!("has no sticky bit and {why}")));
        }
        cur = p.parent();
    }
    Ok(())
}
