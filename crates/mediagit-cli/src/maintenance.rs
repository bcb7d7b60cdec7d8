//! fsck, verify, gc, stats and reflog expiry: output for the integrity commands.
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate};
use mediagit_format::{ObjectId, ObjectKind};
use mediagit_repo::fsck::FsckOptions;
use mediagit_repo::gc::GcOptions;
use mediagit_repo::progress::Progress;
use mediagit_repo::Repository;

use crate::command_error::{exit, CommandError};
use crate::output::human_size;
use crate::CmdResult;

/// Parses a point in time: `now`, `never`, `N.unit.ago`, `N unit ago`,
/// `YYYY-MM-DD` or RFC 3339. `Ok(None)` means never.
pub fn parse_when(s: &str, option: &str) -> Result<Option<SystemTime>, CommandError> {
    let t = s.trim().to_ascii_lowercase();
    let bad = || {
        CommandError::user("bad-time", format!("{option}: cannot understand the time {s:?}"))
            .with_hint("use e.g. \"2.weeks.ago\", \"3 days ago\", \"now\", \"never\", \"2026-01-31\" or an RFC 3339 time")
    };
    match t.as_str() {
        "now" | "all" => return Ok(Some(SystemTime::now())),
        "never" | "false" => return Ok(None),
        _ => {}
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s.trim()) {
        let secs = d.timestamp();
        return Ok(Some(UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        let secs = d
            .and_hms_opt(0, 0, 0)
            .map(|x| x.and_utc().timestamp())
            .unwrap_or(0);
        return Ok(Some(UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)));
    }
    let words: Vec<&str> = t.split(['.', ' ']).filter(|w| !w.is_empty()).collect();
    let (n, unit) = match words.as_slice() {
        [n, unit, "ago"] | [n, unit] => (*n, *unit),
        _ => return Err(bad()),
    };
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit_secs = match unit.trim_end_matches('s') {
        "second" | "sec" => 1,
        "minute" | "min" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 7 * 86_400,
        "month" => 30 * 86_400,
        "year" => 365 * 86_400,
        _ => return Err(bad()),
    };
    let ago = Duration::from_secs(n.saturating_mul(unit_secs));
    Ok(Some(
        SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH),
    ))
}

pub fn fsck(
    repo: &Repository,
    opts: &FsckOptions,
    from: &[String],
    json: bool,
    progress: &dyn Progress,
) -> CmdResult {
    let mut report = repo.fsck(opts, progress)?;
    if opts.repair && !report.problems.is_empty() {
        report = repair_from_remotes(repo, opts, report, from, progress)?;
    }
    let mut out = crate::output::SafeText::new(std::io::stdout().lock());
    if json {
        crate::output::write_json(&mut out, &report)?;
        out.flush()?;
        return fsck_result(repo, &report, opts.repair);
    }
    for r in &report.repaired {
        writeln!(out, "repaired: {r}")?;
    }
    for n in &report.notes {
        writeln!(out, "note: {n}")?;
    }
    for p in &report.problems {
        let id = p.id.map(|i| format!(" {i}")).unwrap_or_default();
        writeln!(
            out,
            "problem: {}{id} ({}): {}",
            p.kind, p.location, p.message
        )?;
        for a in &p.affects {
            writeln!(out, "    affects {a}")?;
        }
    }
    if opts.dangling {
        for d in &report.dangling {
            let id = d.id;
            match (d.kind, &d.summary, d.content, d.size) {
                (ObjectKind::Manifest, _, Some(content), Some(size)) => writeln!(
                    out,
                    "dangling file {id} file content {content} ({size} bytes)"
                )?,
                (ObjectKind::Manifest, ..) => writeln!(out, "dangling file {id}")?,
                (kind, Some(summary), ..) => {
                    writeln!(out, "dangling {} {id} {summary}", kind.name())?
                }
                (kind, None, ..) => writeln!(out, "dangling {} {id}", kind.name())?,
            }
        }
    }
    for p in &report.lost_found {
        writeln!(out, "lost-found: {}", p.display())?;
    }
    writeln!(
        out,
        "checked {} pack{}, {} objects: {} problem{}",
        report.packs,
        if report.packs == 1 { "" } else { "s" },
        report.objects,
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" }
    )?;
    out.flush()?;
    fsck_result(repo, &report, opts.repair)
}

/// What local repair left is fetched from the remotes (`from`, else every
/// configured one, in turn, until nothing is missing), then the repository
/// is checked again: the report says what each remote gave, and its
/// problems are what no remote had.
fn repair_from_remotes(
    repo: &Repository,
    opts: &FsckOptions,
    first: mediagit_repo::fsck::FsckReport,
    from: &[String],
    progress: &dyn Progress,
) -> Result<mediagit_repo::fsck::FsckReport, CommandError> {
    let names: Vec<String> = if from.is_empty() {
        repo.config().remotes.keys().cloned().collect()
    } else {
        from.to_vec()
    };
    if names.is_empty() {
        return Ok(first);
    }
    let mut repaired = first.repaired.clone();
    let mut notes = first.notes.clone();
    let mut copied_any = false;
    for (k, name) in names.iter().enumerate() {
        let last = k + 1 == names.len();
        let remote = match crate::remote_cmd::open(repo, name) {
            Ok(r) => r,
            Err(e) => {
                notes.push(format!("remote '{name}' not used: {}", e.message));
                continue;
            }
        };
        match repo.repair_from(&remote, progress) {
            Ok((t, _)) if t.objects > 0 => {
                copied_any = true;
                repaired.push(format!(
                    "fetched {} object(s) ({}) from {}",
                    t.objects,
                    crate::output::human_size(t.bytes),
                    remote.label()
                ));
                // Stop at the first remote that filled every gap (the
                // last one needs no check of its own: the final check
                // below is it).
                if last {
                    break;
                }
                let check = repo.fsck(
                    &FsckOptions {
                        repair: false,
                        ..opts.clone()
                    },
                    progress,
                )?;
                if check.problems.is_empty() {
                    break;
                }
            }
            Ok(_) => notes.push(format!(
                "{} had nothing this repository lacks",
                remote.label()
            )),
            Err(e) => notes.push(format!("{}: {e}", remote.label())),
        }
    }
    if !copied_any {
        let mut r = first;
        r.notes = notes;
        return Ok(r);
    }
    // Once more with repair: indexes, refs and the working tree's index
    // are settled against what arrived.
    let mut last = repo.fsck(opts, progress)?;
    repaired.append(&mut last.repaired);
    notes.append(&mut last.notes);
    last.repaired = repaired;
    last.notes = notes;
    Ok(last)
}

/// fsck fails (exit 1) when it found problems, whatever the output format.
fn fsck_result(
    repo: &Repository,
    report: &mediagit_repo::fsck::FsckReport,
    repair: bool,
) -> CmdResult {
    if report.problems.is_empty() {
        Ok(())
    } else {
        let hint = if repair {
            "what is listed could not be repaired locally nor fetched from a remote; content that is lost here can only come from another copy (`mediagit fsck --repair --from REMOTE`)"
        } else {
            "run `mediagit fsck --repair` to rebuild what can be rebuilt"
        };
        Err(CommandError::user(
            "fsck-problems",
            format!(
                "fsck found {} problem(s) in {}",
                report.problems.len(),
                repo.workspace()?.dir().display()
            ),
        )
        .with_hint(hint)
        .exit_code(exit::INTEGRITY))
    }
}

pub fn verify(
    repo: &Repository,
    rev: Option<String>,
    paths: Vec<String>,
    json: bool,
    progress: &dyn Progress,
) -> CmdResult {
    let rev_name = rev.unwrap_or_else(|| "HEAD".into());
    let id = repo.resolve(&rev_name)?;
    let report = repo.verify(id, &paths, progress)?;
    let mut out = crate::output::SafeText::new(std::io::stdout().lock());
    if json {
        #[derive(serde::Serialize)]
        struct VerifyJson<'a> {
            revision: &'a str,
            commit: ObjectId,
            #[serde(flatten)]
            report: &'a mediagit_repo::verify::VerifyReport,
        }
        crate::output::write_json(
            &mut out,
            &VerifyJson {
                revision: &rev_name,
                commit: id,
                report: &report,
            },
        )?;
    } else {
        for b in &report.bad {
            writeln!(out, "FAILED {}: {}", b.path, b.reason)?;
        }
        writeln!(
            out,
            "verified {} file{} ({}) of {} ({}): {} would not restore exactly",
            report.files,
            if report.files == 1 { "" } else { "s" },
            human_size(report.bytes),
            rev_name,
            id.short(12),
            report.bad.len()
        )?;
    }
    out.flush()?;
    if report.bad.is_empty() {
        Ok(())
    } else {
        Err(CommandError::user("verify-failed", format!("{} file(s) of {rev_name} would not restore byte-exactly", report.bad.len()))
            .with_hint("run `mediagit fsck` for details, `mediagit fsck --repair` to heal what the working tree still has")
            .exit_code(exit::INTEGRITY))
    }
}

pub struct GcArgs {
    pub dry_run: bool,
    pub prune: String,
    pub max_unused: u8,
    pub json: bool,
}

pub fn gc(repo: &Repository, args: &GcArgs, progress: &dyn Progress) -> CmdResult {
    let (dry_run, json) = (args.dry_run, args.json);
    let prune_before = parse_when(&args.prune, "--prune")?;
    let report = repo.gc(
        &GcOptions {
            dry_run,
            prune_before,
            max_unused_percent: args.max_unused,
        },
        progress,
    )?;
    let mut out = crate::output::SafeText::new(std::io::stdout().lock());
    if json {
        #[derive(serde::Serialize)]
        struct GcJson<'a> {
            dry_run: bool,
            #[serde(flatten)]
            report: &'a mediagit_repo::gc::GcReport,
        }
        crate::output::write_json(
            &mut out,
            &GcJson {
                dry_run,
                report: &report,
            },
        )?;
        return Ok(out.flush()?);
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    if dry_run {
        for r in &report.removed {
            writeln!(
                out,
                "would remove {} {} ({})",
                r.kind.name(),
                r.id,
                human_size(r.bytes)
            )?;
        }
        for k in &report.orphan_packs {
            writeln!(out, "would remove orphan pack {k}")?;
        }
    }
    let s = |n: usize| if n == 1 { "" } else { "s" };
    let (read, deleted, repacked) = if dry_run {
        ("would read and rewrite", "would delete", "would repack")
    } else {
        ("read and rewrote", "deleted", "repacked")
    };
    writeln!(
        out,
        "{deleted} {} pack{} holding nothing reachable (unread); {repacked} {} pack{}: {read} {}; {} unreachable object{} ({}) left in packs under --max-unused {}%",
        report.packs_deleted,
        s(report.packs_deleted),
        report.packs_repacked,
        s(report.packs_repacked),
        human_size(report.bytes_read),
        report.kept_unused,
        s(report.kept_unused),
        human_size(report.kept_unused_bytes),
        args.max_unused,
    )?;
    writeln!(
        out,
        "{verb} {} unreachable object{} and {} orphan pack{}, freeing {}; packs {} -> {}; {} unreachable object{} kept (newer than the grace period)",
        report.removed.len(),
        s(report.removed.len()),
        report.orphan_packs.len(),
        s(report.orphan_packs.len()),
        human_size(report.bytes_freed),
        report.packs_before,
        report.packs_after,
        report.kept_recent,
        s(report.kept_recent),
    )?;
    Ok(out.flush()?)
}

pub fn stats(repo: &Repository, as_json: bool, top: usize) -> CmdResult {
    let s = repo.stats(top)?;
    let mut out = crate::output::SafeText::new(std::io::stdout().lock());
    if as_json {
        crate::output::write_json(&mut out, &s)?;
        return Ok(out.flush()?);
    }
    writeln!(
        out,
        "packs:             {} ({})",
        s.packs,
        human_size(s.pack_bytes)
    )?;
    for (k, v) in &s.objects {
        writeln!(
            out,
            "{:<18} {} ({} decoded, {} stored)",
            format!("{k} objects:"),
            v.count,
            human_size(v.raw_bytes),
            human_size(v.stored_bytes)
        )?;
    }
    writeln!(out, "commits:           {}", s.commits_reachable)?;
    writeln!(
        out,
        "HEAD:              {} files, {}",
        s.head_files,
        human_size(s.head_bytes)
    )?;
    writeln!(
        out,
        "all versions:      {} (logical)",
        human_size(s.logical_bytes)
    )?;
    writeln!(out, "dedup ratio:       {:.2}", s.dedup_ratio)?;
    writeln!(out, "compression ratio: {:.2}", s.compression_ratio)?;
    writeln!(out, "\nby type (HEAD)     files        size   ratio")?;
    for t in &s.by_type {
        let ratio = t.compression_ratio;
        let ext = if t.ext.is_empty() {
            "(none)".to_string()
        } else {
            format!(".{}", t.ext)
        };
        writeln!(
            out,
            "  {ext:<14} {:>8} {:>11} {ratio:>7.2}",
            t.files,
            human_size(t.bytes)
        )?;
    }
    writeln!(out, "\nlargest files (HEAD)")?;
    for f in &s.largest {
        writeln!(out, "  {:>11}  {}", human_size(f.size), f.path)?;
    }
    Ok(out.flush()?)
}

pub fn reflog_expire(repo: &Repository, expire: &str, reference: Option<String>) -> CmdResult {
    let before = match parse_when(expire, "--expire")? {
        Some(t) => t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        None => {
            println!("nothing expired (--expire=never)");
            return Ok(());
        }
    };
    let name = reference.map(|r| match r.as_str() {
        "HEAD" => r,
        r if r.starts_with("refs/") => r.to_string(),
        r => format!("refs/heads/{r}"),
    });
    let n = repo.reflog_expire(name.as_deref(), before)?;
    println!("expired {n} reflog record{}", if n == 1 { "" } else { "s" });
    Ok(())
}
