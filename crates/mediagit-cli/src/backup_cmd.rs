//! `mediagit backup ...`: arguments, the working tree's `[backups.NAME]`
//! settings, passphrases and printing; the backups themselves are
//! `mediagit_repo::backup`.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use clap::Subcommand;
use mediagit_repo::backup::{self, fmt_ms, KeepPolicy, Record, RecordKind, RepoEntry, Target};
use mediagit_repo::store::Store;
use mediagit_repo::Repository;
use mediagit_storage::LockMode;

use crate::command_error::CommandError;
use crate::commands::stdout;
use crate::output::{human_size, mode_str};
use crate::CmdResult;

#[derive(Subcommand, Debug)]
pub enum BackupAction {
    /// Register a backup target for this repository: a directory, or
    /// s3://BUCKET/PREFIX, az://, gs://, b2://. Several repositories may
    /// share one target; each has its own id there.
    Init {
        url: String,
        /// The target's name in this repository's settings.
        #[arg(long, default_value = "backup")]
        name: String,
        /// This repository's id in the target (default: the working
        /// tree's directory name).
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// Never remove a record or pack younger than DAYS (`forget` and
        /// `prune` keep them). Fixed when the repository is first backed
        /// up to the target.
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=36500))]
        retain: Option<u32>,
        /// On an s3:// target: have S3 Object Lock keep every object for
        /// at least --retain days in this mode ("governance": users with
        /// s3:BypassGovernanceRetention may lift it; "compliance":
        /// nobody), as the bucket's default retention. The bucket must
        /// have Object Lock on.
        #[arg(long, value_name = "MODE", requires = "retain", value_parser = ["governance", "compliance"])]
        lock: Option<String>,
    },
    /// Back up: copy the objects the target lacks, then write a snapshot
    /// record of every branch and tag. Runs while others commit.
    Create {
        /// A target name from `backup init` or a URL (default: the only
        /// one, or the one named "backup").
        #[arg(conflicts_with = "target_opt")]
        target: Option<String>,
        /// The same as TARGET (as `restore`, `ls` and `diff` take it).
        #[arg(long = "target", value_name = "TARGET")]
        target_opt: Option<String>,
        /// This repository's id in the target (with --all: ignored).
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// Keep running: after the snapshot, append a journal record each
        /// time a ref changes (checked every --interval seconds), so that
        /// `restore --at` reaches any second.
        #[arg(long)]
        watch: bool,
        /// With --watch: seconds between checks of the refs.
        #[arg(long, default_value_t = 1, value_name = "SECONDS", requires = "watch")]
        interval: u64,
        /// Back up every repository under --root (bare repositories and
        /// working trees, one or two levels down), each with its path as id.
        #[arg(long, requires = "root", conflicts_with = "watch")]
        all: bool,
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Walk the whole history and store again what the target lacks
        /// or holds damaged (after `backup verify` reported damage).
        #[arg(long)]
        repair: bool,
        /// One JSON document per repository on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List the snapshots and journal records in the target.
    List {
        #[arg(conflicts_with = "target_opt")]
        target: Option<String>,
        /// The same as TARGET (as `restore`, `ls` and `diff` take it).
        #[arg(long = "target", value_name = "TARGET")]
        target_opt: Option<String>,
        /// Only this repository (default: this one inside a repository,
        /// else every repository of the target).
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// Also journal records (one per ref change of `create --watch`).
        #[arg(long)]
        journal: bool,
        #[arg(long)]
        json: bool,
    },
    /// The files of a snapshot (of HEAD's branch, or --ref): mode, mtime,
    /// size, SHA-256 and path.
    Ls {
        snapshot: String,
        /// Only this folder or file.
        path: Option<String>,
        #[arg(long, value_name = "TARGET")]
        target: Option<String>,
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// The branch or tag to list instead of HEAD's branch.
        #[arg(long = "ref", value_name = "REF")]
        reference: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// What changed between two snapshots: refs, then files of HEAD's branch.
    Diff {
        snapshot1: String,
        snapshot2: String,
        #[arg(long, value_name = "TARGET")]
        target: Option<String>,
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
    },
    /// Restore a repository as it was at a moment (every branch and tag),
    /// into a new directory, checked out.
    #[command(group(clap::ArgGroup::new("when").required(true).args(["at", "snapshot"])))]
    #[command(group(clap::ArgGroup::new("where").required(true).args(["dest", "root"])))]
    Restore {
        /// The new repository's directory (with --all: the directory
        /// that receives one repository per id).
        dest: Option<PathBuf>,
        /// With --all: the directory that receives one repository per id
        /// (the same as DEST).
        #[arg(long, value_name = "DIR", requires = "all", conflicts_with = "dest")]
        root: Option<PathBuf>,
        /// The moment: "2026-12-04 17:30:05" (local time), an RFC 3339
        /// time, "3 hours ago", "@UNIXSECONDS".
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// A snapshot or journal record id (from `backup list`).
        #[arg(long, value_name = "ID", conflicts_with_all = ["at", "all"])]
        snapshot: Option<String>,
        /// A target name or URL.
        #[arg(long, value_name = "TARGET")]
        target: Option<String>,
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// Every repository of the target, to the same moment, each into
        /// DEST/ID.
        #[arg(long, conflicts_with = "repository", requires = "at")]
        all: bool,
        /// A bare repository (no working tree).
        #[arg(long)]
        bare: bool,
        /// Read the passphrase of an encrypted backup from FILE.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// On a versioned bucket (S3 Object Lock): read each key that was
        /// written over at its first version (after `backup verify`
        /// reported keys "written over").
        #[arg(long)]
        first_versions: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check that every object every record needs is in the target;
    /// --read-data also reads them back and checks their hashes.
    Verify {
        #[arg(conflicts_with = "target_opt")]
        target: Option<String>,
        /// The same as TARGET (as `restore`, `ls` and `diff` take it).
        #[arg(long = "target", value_name = "TARGET")]
        target_opt: Option<String>,
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// Read back this percentage of the packs (default 100).
        #[arg(long, value_name = "PERCENT", num_args = 0..=1, default_missing_value = "100")]
        read_data: Option<u8>,
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Remove the records the rules do not keep (a record is kept if any
    /// rule keeps it); their data goes with `backup prune`.
    Forget {
        #[arg(conflicts_with = "target_opt")]
        target: Option<String>,
        /// The same as TARGET (as `restore`, `ls` and `diff` take it).
        #[arg(long = "target", value_name = "TARGET")]
        target_opt: Option<String>,
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep_last: usize,
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep_hourly: usize,
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep_daily: usize,
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep_weekly: usize,
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep_monthly: usize,
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep_yearly: usize,
        /// Every record within this span before the newest ("7 days").
        #[arg(long, value_name = "DURATION")]
        keep_within: Option<String>,
        /// Say what would be removed; remove nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Also remove the records that do not read (damaged or planted;
        /// with the right passphrase given), which otherwise stop forget
        /// and prune.
        #[arg(long)]
        drop_unreadable: bool,
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Remove the packs no remaining record needs: marked by one prune,
    /// removed by a later one at least --grace after (so a backup running
    /// meanwhile loses nothing).
    Prune {
        #[arg(conflicts_with = "target_opt")]
        target: Option<String>,
        /// The same as TARGET (as `restore`, `ls` and `diff` take it).
        #[arg(long = "target", value_name = "TARGET")]
        target_opt: Option<String>,
        /// This repository and every other sharing its objects in the target.
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// "1 day" (default), "2 hours", or "0 seconds" to remove at once
        /// (only when no backup to this target is running).
        #[arg(long, value_name = "DURATION", default_value = "1 day")]
        grace: String,
        #[arg(short = 'n', long)]
        dry_run: bool,
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

/// What the command needs from its caller.
pub struct BackupCtx<'a> {
    pub cwd: &'a Path,
    pub quiet: bool,
    pub prompt: bool,
    /// The repository the command runs in (unlocked), if any.
    pub repo: &'a dyn Fn() -> Result<Repository, CommandError>,
    pub progress: &'a dyn Fn() -> crate::progress::TermProgress,
}

fn tmp_dir() -> PathBuf {
    std::env::temp_dir()
}

/// Opens a target; `MEDIAGIT_FRESHEN_AFTER` also sets its pools' freshen
/// window (FORMAT.md §15.5).
fn open_target(
    url: &str,
    env: &mediagit_storage::CloudEnv,
    tmp: &Path,
    create: bool,
) -> Result<Target, CommandError> {
    with_freshen(Target::open(url, env, tmp, create))
}

/// A target just opened, with the freshen window `MEDIAGIT_FRESHEN_AFTER`
/// sets.
fn with_freshen(t: mediagit_repo::error::Result<Target>) -> Result<Target, CommandError> {
    let mut t = t?;
    if let Some(v) = crate::commands::env_var("MEDIAGIT_FRESHEN_AFTER") {
        if let Some(d) = crate::commands::freshen_after(&v)? {
            t.set_freshen_after(d);
        }
    }
    Ok(t)
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A target URL as given: a relative directory from the current one.
fn normalize(cwd: &Path, url: &str) -> String {
    if url.contains("://") {
        return url.to_string();
    }
    let p = Path::new(url);
    if p.is_absolute() {
        url.to_string()
    } else {
        cwd.join(p).to_string_lossy().into_owned()
    }
}

/// Whether two normalized target URLs name the same target: equal but
/// for trailing slashes, or directories that resolve to one.
fn same_target(a: &str, b: &str) -> bool {
    let local = |u: &str| {
        u.strip_prefix("file://")
            .unwrap_or(u)
            .trim_end_matches('/')
            .to_string()
    };
    let (a, b) = (local(a), local(b));
    let (a, b) = (a.as_str(), b.as_str());
    if a == b {
        return true;
    }
    if a.contains("://") || b.contains("://") {
        return false;
    }
    matches!(
        (std::fs::canonicalize(a), std::fs::canonicalize(b)),
        (Ok(x), Ok(y)) if x == y
    )
}

/// (URL, the configured repository id) of the target `name` names.
fn resolve(
    cwd: &Path,
    repo: Option<&Repository>,
    name: Option<&str>,
) -> Result<(String, Option<String>), CommandError> {
    let configured = repo.map(|r| r.config().backups.clone()).unwrap_or_default();
    match name {
        Some(n) => match configured.get(n) {
            Some(b) => Ok((b.url.clone(), Some(b.repository.clone()))),
            // A URL: the repository's id there is the one `backup init`
            // registered for the same URL, if it registered it.
            None if n.contains(['/', ':', '.']) => {
                let url = normalize(cwd, n);
                let id = configured
                    .values()
                    .find(|b| same_target(&b.url, &url))
                    .map(|b| b.repository.clone());
                Ok((url, id))
            }
            None => Err(CommandError::user(
                "no-backup-target",
                format!("no backup target named '{n}'"),
            )
            .with_hint("`mediagit backup init URL --name NAME` registers one; or give its URL")),
        },
        None => {
            let pick = if configured.len() == 1 {
                configured.values().next()
            } else {
                configured.get("backup")
            };
            match pick {
                Some(b) => Ok((b.url.clone(), Some(b.repository.clone()))),
                None => Err(CommandError::user(
                    "no-backup-target",
                    if configured.is_empty() {
                        "no backup target given, and this repository has none".to_string()
                    } else {
                        "several backup targets: name one".to_string()
                    },
                )
                .with_hint("`mediagit backup init URL` registers one; or give its name or URL")),
            }
        }
    }
}

/// This repository's default id in a target: its directory's name.
fn default_id(repo: &Repository) -> Result<String, CommandError> {
    let dir = match repo.workspace_opt() {
        Some(ws) if !ws.is_bare() => ws.worktree()?.to_path_buf(),
        Some(ws) => ws.dir().to_path_buf(),
        None => PathBuf::from("repository"),
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id: String = name
        .trim_end_matches(".mediagit")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let id = id.trim_start_matches('.').to_string();
    Ok(if id.is_empty() {
        "repository".into()
    } else {
        id
    })
}

fn json_out(v: &impl serde::Serialize) -> CmdResult {
    let mut out = stdout();
    writeln!(
        out,
        "{}",
        serde_json::to_string(v).map_err(|e| CommandError::user("invalid", e.to_string()))?
    )?;
    Ok(out.flush()?)
}

/// Opens the pool of `entry`: with `repo`'s key when it is a copy of that
/// repository, else (encrypted) with a passphrase.
fn pool_for(
    ctx: &BackupCtx<'_>,
    target: &Target,
    entry: &RepoEntry,
    repo: Option<&Repository>,
    file: Option<&Path>,
) -> Result<Store, CommandError> {
    if let Some(r) = repo {
        if backup::pool_id(r.store()) == entry.pool {
            return Ok(target.pool_like(entry, r.store())?);
        }
    }
    if !entry.encrypted {
        return Ok(target.pool_with(entry, None)?);
    }
    let p = crate::passphrase::existing(
        file,
        &format!("backup of {} in {}", entry.repository, target.url()),
        ctx.prompt,
    )?;
    Ok(target.pool_with(entry, Some(&p.into()))?)
}

/// The repositories a command applies to: `--repository`, else the
/// configured id, else this repository's directory name if the target
/// has it, else every repository of the target (`all_ok`) or the only one.
fn repo_ids(
    target: &Target,
    given: Option<String>,
    configured: Option<String>,
    repo: Option<&Repository>,
    all_ok: bool,
) -> Result<Vec<String>, CommandError> {
    if let Some(id) = given.or(configured) {
        target.require_entry(&id)?;
        return Ok(vec![id]);
    }
    if let Some(r) = repo {
        let id = default_id(r)?;
        if target.entry(&id)?.is_some() {
            return Ok(vec![id]);
        }
    }
    let all = target.repositories()?;
    if all.is_empty() {
        return Err(CommandError::user(
            "backup-repository",
            format!("{} holds no repository yet", target.url()),
        )
        .with_hint("`mediagit backup create` in a repository backs it up there"));
    }
    if all_ok || all.len() == 1 {
        return Ok(all);
    }
    Err(CommandError::user(
        "backup-repository",
        format!(
            "{} holds {} repositories: name one with --repository ({})",
            target.url(),
            all.len(),
            all.join(", ")
        ),
    ))
}

/// `--at`: a time in Unix milliseconds; a time given to the second means
/// its end (a record written during that second is "at" it).
fn parse_at(s: &str) -> Result<i64, CommandError> {
    let t = s.trim();
    let bad = || {
        CommandError::user("bad-time", format!("--at: cannot understand the time {t:?}"))
            .with_hint("use e.g. \"2026-12-04 17:30:05\" (local time), \"2026-12-04T17:30:05Z\", \"2026-12-04\" (the end of that day), \"@UNIXSECONDS\", \"3 hours ago\" or \"now\"")
    };
    // Up to the year 9999.
    const MAX_SECS: i64 = 253_402_300_799;
    let end_of = |secs: i64| -> Result<i64, CommandError> {
        if !(0..=MAX_SECS).contains(&secs) {
            return Err(bad());
        }
        Ok(secs * 1000 + 999)
    };
    if let Some(n) = t.strip_prefix('@') {
        return end_of(n.parse::<i64>().map_err(|_| bad())?);
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        // With a fraction of a second: exactly then; else that whole second.
        let frac = t
            .split(['Z', 'z', '+'])
            .next()
            .is_some_and(|x| x.contains('.'));
        return if frac {
            Ok(d.timestamp_millis())
        } else {
            end_of(d.timestamp())
        };
    }
    let (body, utc) = match t.strip_suffix(" UTC").or_else(|| t.strip_suffix('Z')) {
        Some(b) => (b.trim(), true),
        None => (t, false),
    };
    let local = |n: chrono::NaiveDateTime| -> i64 {
        if utc {
            return n.and_utc().timestamp();
        }
        match n.and_local_timezone(chrono::Local).latest() {
            Some(d) => d.timestamp(),
            None => n.and_utc().timestamp(),
        }
    };
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(body, f) {
            return end_of(local(n));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(body, "%Y-%m-%d") {
        // A day: as it was at its end.
        let end = d.and_hms_opt(23, 59, 59).ok_or_else(bad)?;
        return end_of(local(end));
    }
    if t.eq_ignore_ascii_case("now") {
        return Ok(std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0));
    }
    match crate::maintenance::parse_when(t, "--at") {
        Ok(Some(when)) => Ok(when
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)),
        _ => Err(bad()),
    }
}

/// Longest duration accepted: 1,000 years.
const MAX_DURATION_SECS: u64 = 1000 * 365 * 86_400;

pub(crate) fn parse_duration(s: &str, option: &str) -> Result<Duration, CommandError> {
    let t = s.trim().to_ascii_lowercase();
    let bad = || {
        CommandError::user(
            "bad-duration",
            format!("{option}: cannot understand the duration {s:?}"),
        )
        .with_hint("use e.g. \"0s\", \"90 seconds\", \"2h\", \"1 day\", \"2 weeks\"")
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..split].parse().map_err(|_| bad())?;
    let unit = t[split..].trim();
    let secs = match unit {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "y" | "year" | "years" => 365 * 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(secs).filter(|s| *s <= MAX_DURATION_SECS) {
        Some(s) => Ok(Duration::from_secs(s)),
        None => Err(CommandError::user(
            "bad-duration",
            format!("{option}: {s:?} is longer than 1,000 years"),
        )),
    }
}

pub fn backup(ctx: &BackupCtx<'_>, action: BackupAction) -> CmdResult {
    match action {
        BackupAction::Init {
            url,
            name,
            repository,
            retain,
            lock,
        } => {
            let repo = (ctx.repo)()?;
            let ws = repo.workspace()?;
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                || name.is_empty()
            {
                return Err(CommandError::usage(format!(
                    "--name {name:?}: use letters, digits, '_' or '-'"
                )));
            }
            let url = normalize(ctx.cwd, &url);
            let explicit = repository.is_some();
            let id = match repository {
                Some(id) => id,
                None => default_id(&repo)?,
            };
            backup::validate_repo_id(&id)?;
            if retain == Some(0) && lock.is_some() {
                return Err(CommandError::usage(
                    "--lock needs --retain of at least 1 day",
                ));
            }
            let target = match (lock.as_deref().and_then(LockMode::parse), retain) {
                (Some(mode), Some(days)) => with_freshen(Target::open_locked(
                    &url,
                    &crate::commands::cloud_env(),
                    &ws.dir().join("tmp"),
                    mode,
                    days,
                ))?,
                _ => open_target(
                    &url,
                    &crate::commands::cloud_env(),
                    &ws.dir().join("tmp"),
                    true,
                )?,
            };
            refuse_taken_id(&target, &id, explicit)?;
            let entry = target.init_repository(&id, repo.store(), retain)?;
            crate::remote_cmd::edit_config(&repo, |doc| {
                let t = crate::remote_cmd::table(doc, "backups")?;
                let mut r = toml_edit::Table::new();
                r.insert("url", toml_edit::value(url.clone()));
                r.insert("repository", toml_edit::value(id.clone()));
                t.insert(&name, toml_edit::Item::Table(r));
                Ok(())
            })?;
            if !ctx.quiet {
                eprintln!(
                    "Backup target '{name}' is {url}; this repository is {id:?} there{}.",
                    if entry.retain_days > 0 {
                        format!(", kept at least {} days", entry.retain_days)
                    } else {
                        String::new()
                    }
                );
                if let Some((mode, days)) = target.object_lock().and_then(|l| l.default_retention) {
                    eprintln!(
                        "The bucket's S3 Object Lock keeps every object {days} days after it is written ({mode} mode)."
                    );
                }
                eprintln!("Run `mediagit backup create` to back up.");
            }
            Ok(())
        }
        BackupAction::Create {
            target,
            target_opt,
            repository,
            watch,
            interval,
            all,
            root,
            repair,
            json,
        } => {
            let target = target.or(target_opt);
            if all {
                return create_all(ctx, target, root.unwrap_or_default(), json);
            }
            let repo = (ctx.repo)()?;
            let (url, configured) = resolve(ctx.cwd, Some(&repo), target.as_deref())?;
            let chosen = repository.is_some() || configured.is_some();
            let id = match repository.or(configured) {
                Some(id) => id,
                None => default_id(&repo)?,
            };
            let tmp = repo.workspace()?.dir().join("tmp");
            let t = open_target(&url, &crate::commands::cloud_env(), &tmp, true)?;
            refuse_taken_id(&t, &id, chosen)?;
            let progress = (ctx.progress)();
            let opts = backup::CreateOptions {
                repository: &id,
                kind: RecordKind::Snapshot,
                host: host(),
                unless_same_as: None,
                retain_days: None,
                repair,
                check_same: false,
            };
            let out = backup::create(&repo, &t, &opts, &progress)?;
            report_create(ctx, &url, &out, json)?;
            if !watch {
                return Ok(());
            }
            // The journal: a record each time the refs change. Ends when
            // killed; every record is whole or absent.
            let entry = t.require_entry(&id)?;
            let pool = t.pool_like(&entry, repo.store())?;
            let mut last: Option<Record> = t.latest_record(&id, &pool)?;
            loop {
                std::thread::sleep(Duration::from_secs(interval.max(1)));
                // Each round sees the packs and refs written since.
                let cur = repo.with_fresh_odb();
                let jopts = backup::CreateOptions {
                    repository: &id,
                    kind: RecordKind::Journal,
                    host: opts.host.clone(),
                    unless_same_as: last.as_ref(),
                    retain_days: None,
                    repair: false,
                    check_same: false,
                };
                let out = backup::create(&cur, &t, &jopts, &progress)?;
                if out.record.is_some() {
                    report_create(ctx, &url, &out, json)?;
                    last = t.latest_record(&id, &pool)?;
                }
            }
        }
        BackupAction::List {
            target,
            target_opt,
            repository,
            journal,
            json,
        } => {
            let target = target.or(target_opt);
            let repo = (ctx.repo)().ok();
            let (url, configured) = target_url(ctx, repo.as_ref(), target.as_deref())?;
            let t = open_target(&url, &crate::commands::cloud_env(), &tmp_dir(), false)?;
            let ids = repo_ids(&t, repository, configured, repo.as_ref(), true)?;
            let mut all = Vec::new();
            for id in &ids {
                let entry = t.require_entry(id)?;
                let pool = pool_for(ctx, &t, &entry, repo.as_ref(), None)?;
                let (records, bad) = t.records(id, &pool)?;
                for (_, why) in bad {
                    eprintln!("warning: {why}");
                }
                all.extend(
                    records
                        .into_iter()
                        .filter(|r| journal || r.kind == RecordKind::Snapshot),
                );
            }
            if json {
                return json_out(&all);
            }
            let mut out = stdout();
            for r in &all {
                writeln!(
                    out,
                    "{}  {}  {:<8}  {:<20}  {:>3} refs  {:<9}  {}",
                    r.id,
                    fmt_ms(r.time_ms),
                    if r.kind == RecordKind::Snapshot {
                        "snapshot"
                    } else {
                        "journal"
                    },
                    r.repository,
                    r.refs.len(),
                    human_size(r.copied_bytes),
                    r.head.as_deref().unwrap_or("(detached)"),
                )?;
            }
            Ok(out.flush()?)
        }
        BackupAction::Ls {
            snapshot,
            path,
            target,
            repository,
            reference,
            json,
        } => {
            let repo = (ctx.repo)().ok();
            let (t, pool, rec) = open_record(ctx, repo.as_ref(), target, repository, &snapshot)?;
            drop(t);
            let commit = match &reference {
                Some(r) => {
                    let names = [
                        r.clone(),
                        format!("refs/heads/{r}"),
                        format!("refs/tags/{r}"),
                    ];
                    names
                        .iter()
                        .find_map(|n| rec.refs.get(n).copied())
                        .ok_or_else(|| {
                            CommandError::user(
                                "unknown-revision",
                                format!("snapshot {} has no branch or tag {r:?}", rec.id),
                            )
                        })?
                }
                None => rec.head_commit().ok_or_else(|| {
                    CommandError::user(
                        "unknown-revision",
                        format!(
                            "snapshot {}: HEAD's branch has no commit (use --ref)",
                            rec.id
                        ),
                    )
                })?,
            };
            let odb = pool.odb()?;
            let odb = match odb.locate(&commit).map(|(_, l)| l.kind) {
                Some(mediagit_format::ObjectKind::Tag) => {
                    let tag = odb.read_tag(&commit)?;
                    (odb, tag.target)
                }
                _ => (odb, commit),
            };
            let (odb, commit) = odb;
            let tree = odb.read_commit(&commit)?.tree;
            let files = mediagit_repo::tree::flatten(odb, &tree)?;
            let prefix = path.as_deref().map(|p| p.trim_matches('/')).unwrap_or("");
            let mut rows = Vec::new();
            for (p, e) in &files {
                if !prefix.is_empty() && p != prefix && !p.starts_with(&format!("{prefix}/")) {
                    continue;
                }
                rows.push((p, e));
            }
            if !prefix.is_empty() && rows.is_empty() {
                return Err(CommandError::user(
                    "path-not-in-revision",
                    format!("snapshot {} has no file or folder {prefix:?}", rec.id),
                ));
            }
            if json {
                let v: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(p, e)| {
                        serde_json::json!({
                            "path": p, "mode": mode_str(e.kind), "size": e.size,
                            "mtime": e.mtime.secs, "sha256": e.content.to_string(),
                        })
                    })
                    .collect();
                return json_out(&v);
            }
            let mut out = stdout();
            for (p, e) in rows {
                writeln!(
                    out,
                    "{} {} {:>14} {} {p}",
                    mode_str(e.kind),
                    fmt_ms(e.mtime.secs.saturating_mul(1000)),
                    e.size,
                    e.content
                )?;
            }
            Ok(out.flush()?)
        }
        BackupAction::Diff {
            snapshot1,
            snapshot2,
            target,
            repository,
        } => {
            let repo = (ctx.repo)().ok();
            let (t, pool, a) = open_record(
                ctx,
                repo.as_ref(),
                target.clone(),
                repository.clone(),
                &snapshot1,
            )?;
            let (records, _) = t.records(&a.repository, &pool)?;
            let b = backup::find_record(&records, &snapshot2)?.clone();
            let mut out = stdout();
            let names: std::collections::BTreeSet<&String> =
                a.refs.keys().chain(b.refs.keys()).collect();
            for n in names {
                match (a.refs.get(n), b.refs.get(n)) {
                    (None, Some(y)) => writeln!(out, "+ {n} {}", y.short(12))?,
                    (Some(x), None) => writeln!(out, "- {n} {}", x.short(12))?,
                    (Some(x), Some(y)) if x != y => {
                        writeln!(out, "~ {n} {} -> {}", x.short(12), y.short(12))?
                    }
                    _ => {}
                }
            }
            let odb = pool.odb()?;
            let flat = |c: Option<mediagit_format::ObjectId>| -> Result<mediagit_repo::tree::FlatTree, CommandError> {
                match c {
                    None => Ok(Default::default()),
                    Some(c) => Ok(mediagit_repo::tree::flatten(odb, &odb.read_commit(&c)?.tree)?),
                }
            };
            let (fa, fb) = (flat(a.head_commit())?, flat(b.head_commit())?);
            for (p, e) in &fb {
                match fa.get(p) {
                    None => writeln!(out, "A {p} ({})", human_size(e.size))?,
                    Some(o) if !o.same_content(e) => writeln!(
                        out,
                        "M {p} ({} -> {})",
                        human_size(o.size),
                        human_size(e.size)
                    )?,
                    _ => {}
                }
            }
            for p in fa.keys().filter(|p| !fb.contains_key(*p)) {
                writeln!(out, "D {p}")?;
            }
            Ok(out.flush()?)
        }
        BackupAction::Restore {
            dest,
            root,
            at,
            snapshot,
            target,
            repository,
            all,
            bare,
            passphrase_file,
            first_versions,
            json,
        } => {
            let repo = (ctx.repo)().ok();
            let (url, configured) = target_url(ctx, repo.as_ref(), target.as_deref())?;
            let t = if first_versions {
                with_freshen(Target::open_first_versions(
                    &url,
                    &crate::commands::cloud_env(),
                    &tmp_dir(),
                ))?
            } else {
                open_target(&url, &crate::commands::cloud_env(), &tmp_dir(), false)?
            };
            let Some(dest) = dest.or(root) else {
                return Err(CommandError::usage(
                    "name the destination: DEST, or --root DIR with --all",
                ));
            };
            let dest = if dest.is_absolute() {
                dest
            } else {
                ctx.cwd.join(dest)
            };
            let at_ms = at.as_deref().map(parse_at).transpose()?;
            let ids = if all {
                t.repositories()?
            } else {
                repo_ids(&t, repository, configured, repo.as_ref(), false)?
            };
            if all && ids.is_empty() {
                return Err(CommandError::user(
                    "backup-repository",
                    format!("{url} holds no repository"),
                ));
            }
            // Choose every record first: a moment one repository cannot
            // reach stops the command before anything is written.
            let mut plan = Vec::new();
            for id in &ids {
                let entry = t.require_entry(id)?;
                let pool = pool_for(ctx, &t, &entry, repo.as_ref(), passphrase_file.as_deref())?;
                let (records, bad) = t.records(id, &pool)?;
                for (_, why) in bad {
                    eprintln!("warning: {why}");
                }
                let rec = match (&snapshot, at_ms) {
                    (Some(s), _) => backup::find_record(&records, s)?.clone(),
                    (None, Some(ms)) => backup::record_at(&records, ms, id)?.clone(),
                    (None, None) => unreachable!("clap requires --at or --snapshot"),
                };
                let d = if all { dest.join(id) } else { dest.clone() };
                plan.push((pool, rec, d));
            }
            let who = crate::output::now_signature(
                crate::commands::env_var("MEDIAGIT_AUTHOR_NAME")
                    .unwrap_or_else(|| "unknown".into()),
                crate::commands::env_var("MEDIAGIT_AUTHOR_EMAIL")
                    .unwrap_or_else(|| "unknown".into()),
            );
            let progress = (ctx.progress)();
            // With --all, a failure takes back the repositories this command
            // restored before it (and DEST if it made it): all or nothing.
            let dest_existed = dest.symlink_metadata().is_ok();
            let mut done: Vec<PathBuf> = Vec::new();
            for (pool, rec, d) in plan {
                let r = backup::restore(
                    &t,
                    &pool,
                    &rec,
                    &d,
                    bare,
                    &crate::commands::cloud_env(),
                    &who,
                    &progress,
                );
                let out = match r {
                    Ok((_, out)) => out,
                    Err(e) => {
                        for p in &done {
                            let _ = std::fs::remove_dir_all(p);
                        }
                        if all && !dest_existed {
                            let _ = std::fs::remove_dir_all(&dest);
                        }
                        let mut e = backup_hint(e.into());
                        if !done.is_empty() {
                            e.message = format!(
                                "{} (restoring {}); the {} repositor{} restored before it were removed again",
                                e.message,
                                rec.repository,
                                done.len(),
                                if done.len() == 1 { "y" } else { "ies" }
                            );
                        }
                        return Err(e);
                    }
                };
                done.push(d.clone());
                if json {
                    json_out(&out)?;
                } else if !ctx.quiet {
                    eprintln!(
                        "Restored {} as of {} (record {}) into {}: {} refs, {} files ({})",
                        out.repository,
                        fmt_ms(out.time_ms),
                        out.record,
                        d.display(),
                        out.refs,
                        out.files,
                        human_size(out.bytes)
                    );
                }
            }
            Ok(())
        }
        BackupAction::Verify {
            target,
            target_opt,
            repository,
            read_data,
            passphrase_file,
            json,
        } => {
            let target = target.or(target_opt);
            if read_data.is_some_and(|p| p == 0 || p > 100) {
                return Err(CommandError::usage(
                    "--read-data: a percentage from 1 to 100",
                ));
            }
            let repo = (ctx.repo)().ok();
            let (url, configured) = target_url(ctx, repo.as_ref(), target.as_deref())?;
            let t = open_target(&url, &crate::commands::cloud_env(), &tmp_dir(), false)?;
            let mut out = backup::VerifyOutcome::default();
            // Keys written over first: shown even when what they hold
            // stops the checks below.
            backup::verify_versions(&t, &mut out)?;
            let checked = (|| -> Result<(), CommandError> {
                let ids = repo_ids(&t, repository, configured, repo.as_ref(), true)?;
                for id in &ids {
                    let entry = t.require_entry(id)?;
                    let pool =
                        pool_for(ctx, &t, &entry, repo.as_ref(), passphrase_file.as_deref())?;
                    backup::verify(&t, id, &pool, read_data, &mut out)?;
                }
                Ok(())
            })();
            if let Err(e) = checked {
                for p in &out.problems {
                    eprintln!(
                        "{}: {} {}: {}",
                        p.repository,
                        p.kind,
                        p.object.as_deref().unwrap_or(""),
                        p.detail
                    );
                }
                return Err(e);
            }
            if json {
                json_out(&out)?;
            } else {
                let mut o = stdout();
                const SHOWN: usize = 50;
                for p in out.problems.iter().take(SHOWN) {
                    writeln!(
                        o,
                        "{}: {} {}: {}",
                        p.repository,
                        p.kind,
                        p.object.as_deref().unwrap_or(""),
                        p.detail
                    )?;
                }
                if out.problems.len() > SHOWN {
                    writeln!(
                        o,
                        "... and {} more problem(s) (`--json` lists them all)",
                        out.problems.len() - SHOWN
                    )?;
                }
                writeln!(
                    o,
                    "{} repositor{}, {} records, {} objects needed{}: {}",
                    out.repositories,
                    if out.repositories == 1 { "y" } else { "ies" },
                    out.records,
                    out.objects,
                    if read_data.is_some() {
                        format!(
                            ", {} read back ({})",
                            out.objects_read,
                            human_size(out.bytes_read)
                        )
                    } else {
                        String::new()
                    },
                    if out.problems.is_empty() {
                        "no problems".to_string()
                    } else {
                        format!("{} problem(s)", out.problems.len())
                    }
                )?;
                o.flush()?;
            }
            if out.problems.is_empty() {
                Ok(())
            } else if out.problems.iter().all(|p| p.kind == "written over") {
                Err(CommandError::user(
                    "backup-damaged",
                    format!(
                        "{} key(s) of the backup in {url} were written over after MediaGit wrote them",
                        out.problems.len()
                    ),
                )
                .with_hint("`mediagit backup restore --first-versions` reads what MediaGit wrote; put each key's first version back on top to clear this (docs/BACKUP.md)"))
            } else {
                Err(CommandError::user(
                    "backup-damaged",
                    format!(
                        "the backup in {url} is missing or has damaged {} object(s) or record(s)",
                        out.problems.len()
                    ),
                )
                .with_hint("run `mediagit backup create --repair` from a sound copy of the repository to store them again (keys \"written over\": `backup restore --first-versions`, docs/BACKUP.md)"))
            }
        }
        BackupAction::Forget {
            target,
            target_opt,
            repository,
            keep_last,
            keep_hourly,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
            keep_within,
            dry_run,
            drop_unreadable,
            passphrase_file,
            json,
        } => {
            let target = target.or(target_opt);
            let policy = KeepPolicy {
                last: keep_last,
                hourly: keep_hourly,
                daily: keep_daily,
                weekly: keep_weekly,
                monthly: keep_monthly,
                yearly: keep_yearly,
                within_secs: keep_within
                    .as_deref()
                    .map(|w| {
                        parse_duration(w, "--keep-within")
                            .map(|d| d.as_secs().min(MAX_DURATION_SECS) as i64)
                    })
                    .transpose()?,
            };
            if policy.is_empty() {
                return Err(CommandError::usage(
                    "forget needs at least one --keep-* rule (it would remove every backup)",
                ));
            }
            let repo = (ctx.repo)().ok();
            let (url, configured) = target_url(ctx, repo.as_ref(), target.as_deref())?;
            let t = open_target(&url, &crate::commands::cloud_env(), &tmp_dir(), false)?;
            let ids = repo_ids(&t, repository, configured, repo.as_ref(), false)?;
            for id in &ids {
                let entry = t.require_entry(id)?;
                let pool = pool_for(ctx, &t, &entry, repo.as_ref(), passphrase_file.as_deref())?;
                let out = backup::forget(&t, id, &pool, &policy, dry_run, drop_unreadable)?;
                if json {
                    json_out(&out)?;
                    continue;
                }
                let mut o = stdout();
                for k in &out.kept {
                    writeln!(o, "keep    {k}")?;
                }
                for k in &out.retained {
                    writeln!(o, "retain  {k} (younger than the retention)")?;
                }
                for k in &out.dropped {
                    writeln!(
                        o,
                        "{} {k} (did not read)",
                        if dry_run { "would remove" } else { "remove  " }
                    )?;
                }
                for k in &out.removed {
                    writeln!(
                        o,
                        "{} {k}",
                        if dry_run { "would remove" } else { "remove  " }
                    )?;
                }
                o.flush()?;
            }
            Ok(())
        }
        BackupAction::Prune {
            target,
            target_opt,
            repository,
            grace,
            dry_run,
            passphrase_file,
            json,
        } => {
            let target = target.or(target_opt);
            let grace = parse_duration(&grace, "--grace")?;
            let repo = (ctx.repo)().ok();
            let (url, configured) = target_url(ctx, repo.as_ref(), target.as_deref())?;
            let t = open_target(&url, &crate::commands::cloud_env(), &tmp_dir(), false)?;
            let ids = repo_ids(&t, repository, configured, repo.as_ref(), false)?;
            let Some(first) = ids.first() else {
                return Ok(());
            };
            let entry = t.require_entry(first)?;
            let pool = pool_for(ctx, &t, &entry, repo.as_ref(), passphrase_file.as_deref())?;
            let mut members = Vec::new();
            for id in t.repositories()? {
                if t.require_entry(&id)?.pool == entry.pool {
                    members.push(id);
                }
            }
            let out = backup::prune(&t, &pool, &members, grace, dry_run)?;
            if json {
                return json_out(&out);
            }
            let mut o = stdout();
            writeln!(
                o,
                "{} {} of {} pack(s) ({}){}; {} unneeded pack(s) marked, removed by a prune after the grace period; {} of unneeded objects stay in packs still needed",
                if dry_run { "would remove" } else { "removed" },
                out.removed_packs.len(),
                out.packs,
                human_size(out.removed_bytes),
                if members.len() > 1 {
                    format!(" shared by {}", members.join(", "))
                } else {
                    String::new()
                },
                out.pending_packs,
                human_size(out.unneeded_bytes_in_kept_packs),
            )?;
            Ok(o.flush()?)
        }
    }
}

/// An id chosen by default (the directory's name) that the target already
/// holds may be another repository's: backing up into it would mix two
/// histories, so it must be named on purpose.
fn refuse_taken_id(target: &Target, id: &str, chosen: bool) -> CmdResult {
    if chosen || target.entry(id)?.is_none() {
        return Ok(());
    }
    Err(CommandError::user(
        "backup-repository",
        format!(
            "{} already holds backups of a repository {id:?}: another repository with the same directory name, or a copy of this one",
            target.url()
        ),
    )
    .with_hint(format!(
        "choose a new id with --repository ID; or, if it is this repository (a clone of it), add to its backups with --repository {id}"
    )))
}

/// Whether `src` (a directory or a store URL) is a backup target: what
/// `mediagit clone` checks before treating it as a repository.
pub fn is_backup_target(cwd: &Path, src: &str) -> Result<bool, CommandError> {
    if src.starts_with("http://") || src.starts_with("https://") {
        return Ok(false);
    }
    let url = normalize(cwd, src.strip_prefix("file://").unwrap_or(src));
    Ok(Target::exists_at(&url, &crate::commands::cloud_env())?)
}

/// `mediagit clone TARGET [DEST]` of a backup target: a restore of the
/// newest record (or the one `--at` names) of the target's repository
/// (`--repository` when it holds several), checked out on the branch
/// `-b` names or the one HEAD named then.
#[allow(clippy::too_many_arguments)]
pub fn clone_from_backup(
    ctx: &BackupCtx<'_>,
    src: &str,
    dest: Option<PathBuf>,
    repository: Option<String>,
    at: Option<&str>,
    branch: Option<&str>,
    bare: bool,
    passphrase_file: Option<&Path>,
) -> CmdResult {
    let url = normalize(ctx.cwd, src.strip_prefix("file://").unwrap_or(src));
    let t = open_target(&url, &crate::commands::cloud_env(), &tmp_dir(), false)?;
    let id = repo_ids(&t, repository, None, None, false)?
        .into_iter()
        .next()
        .ok_or_else(|| {
            CommandError::user("backup-repository", format!("{url} holds no repository"))
        })?;
    let entry = t.require_entry(&id)?;
    let pool = pool_for(ctx, &t, &entry, None, passphrase_file)?;
    let (records, bad) = t.records(&id, &pool)?;
    for (_, why) in bad {
        eprintln!("warning: {why}");
    }
    let at_ms = match at {
        Some(a) => parse_at(a)?,
        None => i64::MAX,
    };
    let mut rec = backup::record_at(&records, at_ms, &id)?.clone();
    if let Some(b) = branch {
        if !rec.refs.contains_key(&format!("refs/heads/{b}")) {
            return Err(CommandError::user(
                "branch-not-found",
                format!(
                    "the backup of {id} of {} has no branch {b:?}",
                    fmt_ms(rec.time_ms)
                ),
            )
            .with_hint("`mediagit backup list --json` shows the refs of every record"));
        }
        rec.head = Some(b.to_string());
        rec.detached = None;
    }
    let dest = match dest {
        Some(d) if d.is_absolute() => d,
        Some(d) => ctx.cwd.join(d),
        None => ctx.cwd.join(&id),
    };
    let who = crate::output::now_signature(
        crate::commands::env_var("MEDIAGIT_AUTHOR_NAME").unwrap_or_else(|| "unknown".into()),
        crate::commands::env_var("MEDIAGIT_AUTHOR_EMAIL").unwrap_or_else(|| "unknown".into()),
    );
    let progress = (ctx.progress)();
    let (_, out) = backup::restore(
        &t,
        &pool,
        &rec,
        &dest,
        bare,
        &crate::commands::cloud_env(),
        &who,
        &progress,
    )
    .map_err(|e| backup_hint(e.into()))?;
    if !ctx.quiet {
        eprintln!(
            "Cloned {} from the backup in {url} as of {} (record {}) into {}: {} refs, {} files ({})",
            out.repository,
            fmt_ms(out.time_ms),
            out.record,
            dest.display(),
            out.refs,
            out.files,
            human_size(out.bytes)
        );
    }
    Ok(())
}

/// Restore errors about objects point at the backup, not the repository.
fn backup_hint(e: CommandError) -> CommandError {
    if matches!(e.kind, "corrupt-object" | "missing-object") {
        e.with_hint("the backup is damaged: `mediagit backup verify` names what is missing or damaged; `mediagit backup create --repair` from a sound copy of the repository stores it again")
    } else {
        e
    }
}

/// The target of a command that may run outside a repository.
fn target_url(
    ctx: &BackupCtx<'_>,
    repo: Option<&Repository>,
    target: Option<&str>,
) -> Result<(String, Option<String>), CommandError> {
    match (repo, target) {
        (Some(r), t) => resolve(ctx.cwd, Some(r), t),
        (None, Some(t)) => Ok((normalize(ctx.cwd, t), None)),
        (None, None) => Err(CommandError::user(
            "no-backup-target",
            "outside a repository: name the backup target's URL",
        )),
    }
}

/// The target, the pool and the record `sel` names.
fn open_record(
    ctx: &BackupCtx<'_>,
    repo: Option<&Repository>,
    target: Option<String>,
    repository: Option<String>,
    sel: &str,
) -> Result<(Target, Store, Record), CommandError> {
    let (url, configured) = target_url(ctx, repo, target.as_deref())?;
    let t = open_target(&url, &crate::commands::cloud_env(), &tmp_dir(), false)?;
    let ids = repo_ids(&t, repository, configured, repo, true)?;
    for id in &ids {
        let entry = t.require_entry(id)?;
        let pool = pool_for(ctx, &t, &entry, repo, None)?;
        let (records, _) = t.records(id, &pool)?;
        if records.iter().any(|r| r.id.starts_with(sel.trim())) {
            let rec = backup::find_record(&records, sel)?.clone();
            return Ok((t, pool, rec));
        }
    }
    Err(
        CommandError::user("unknown-snapshot", format!("no snapshot {sel:?} in {url}"))
            .with_hint("`mediagit backup list` shows them"),
    )
}

fn report_create(
    ctx: &BackupCtx<'_>,
    url: &str,
    out: &backup::CreateOutcome,
    json: bool,
) -> CmdResult {
    for (name, why) in &out.skipped_refs {
        eprintln!("warning: ref {name} not backed up: {why}");
    }
    if !out.stale_keys.is_empty() {
        eprintln!(
            "warning: the backup target keeps {} key file(s) this repository no longer has ({}): their passphrases still open every backup of it there, new ones included (the target is write-once). If one leaked, back up to a new target (and retire this one) or re-encrypt",
            out.stale_keys.len(),
            out.stale_keys.join(", ")
        );
    }
    if json {
        return json_out(out);
    }
    if !ctx.quiet {
        eprintln!(
            "{} {} of {} at {}: {} refs; copied {} objects ({}) in {} reads",
            if out.kind == RecordKind::Snapshot {
                "Snapshot"
            } else {
                "Journal record"
            },
            out.record.as_deref().unwrap_or("-"),
            out.repository,
            fmt_ms(out.time_ms),
            out.refs,
            out.transfer.objects,
            human_size(out.transfer.bytes),
            out.transfer.reads,
        );
        if out.transfer.server_side_packs > 0 {
            eprintln!(
                "  of which {} pack{} ({}) verified, then copied inside the storage service",
                out.transfer.server_side_packs,
                if out.transfer.server_side_packs == 1 {
                    ""
                } else {
                    "s"
                },
                human_size(out.transfer.server_side_bytes)
            );
        }
        let _ = url;
    }
    Ok(())
}

/// `create --all --root DIR`: every repository under DIR, each as its own
/// id; one that fails is reported and the others still run.
fn create_all(ctx: &BackupCtx<'_>, target: Option<String>, root: PathBuf, json: bool) -> CmdResult {
    let root = if root.is_absolute() {
        root
    } else {
        ctx.cwd.join(root)
    };
    let Some(url) = target else {
        return Err(CommandError::usage("--all: name the backup target's URL"));
    };
    let url = normalize(ctx.cwd, &url);
    let t = open_target(&url, &crate::commands::cloud_env(), &tmp_dir(), true)?;
    let progress = (ctx.progress)();
    let mut failed = Vec::new();
    for (id, path) in backup::repositories_under(&root)? {
        let r = (|| -> CmdResult {
            let mut repo = Repository::discover_trusting(
                &path,
                &crate::commands::cloud_env(),
                &crate::user_config::safe_directories()?,
            )?;
            if repo.is_encrypted() {
                let p = crate::passphrase::existing(None, &id, ctx.prompt)?;
                repo = repo.unlock_with(&p.into())?;
            }
            let out = backup::create(
                &repo,
                &t,
                &backup::CreateOptions {
                    repository: &id,
                    kind: RecordKind::Snapshot,
                    host: host(),
                    unless_same_as: None,
                    retain_days: None,
                    repair: false,
                    check_same: true,
                },
                &progress,
            )?;
            report_create(ctx, &url, &out, json)
        })();
        if let Err(e) = r {
            eprintln!("error: {id}: {}", e.message);
            failed.push(id);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CommandError::user(
            "backup-failed",
            format!(
                "{} repositor{} not backed up: {}",
                failed.len(),
                if failed.len() == 1 {
                    "y was"
                } else {
                    "ies were"
                },
                failed.join(", ")
            ),
        ))
    }
}
