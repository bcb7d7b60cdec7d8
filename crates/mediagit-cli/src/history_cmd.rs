//! `merge`, `resolve`, `cherry-pick`, `revert`, `rebase`, `reset` and
//! `restore`: argument parsing and printing; the work is in
//! `mediagit_repo::sequencer` and `mediagit_repo::reset`.
use std::path::{Path, PathBuf};

use clap::Args;
use mediagit_format::Signature;
use mediagit_repo::merge::Side;
use mediagit_repo::reset::ResetMode;
use mediagit_repo::sequencer::{FastForward, MergeOptions, OpKind, OpOutcome, Resolution};
use mediagit_repo::Repository;

use crate::command_error::{exit, CommandError};
use crate::commands::repo_paths;
use crate::output::human_size;
use crate::CmdResult;

/// `-X ours|theirs`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Favor {
    Ours,
    Theirs,
}

impl From<Favor> for Side {
    fn from(f: Favor) -> Side {
        match f {
            Favor::Ours => Side::Ours,
            Favor::Theirs => Side::Theirs,
        }
    }
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The branch or revision to merge into the current branch.
    #[arg(required_unless_present_any = ["abort", "continue_"])]
    pub rev: Option<String>,
    /// The merge commit's message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Only fast-forward; refuse (exit 3) when a merge commit is needed.
    #[arg(long, conflicts_with_all = ["no_ff", "squash"])]
    pub ff_only: bool,
    /// Make a merge commit even when a fast-forward is possible.
    #[arg(long)]
    pub no_ff: bool,
    /// Stage the merged files without a merge commit (the next commit has one parent).
    #[arg(long, conflicts_with = "no_ff")]
    pub squash: bool,
    /// Settle every path both sides changed with this side's version.
    #[arg(short = 'X', value_enum, value_name = "ours|theirs")]
    pub strategy_option: Option<Favor>,
    /// Give up the merge under way: HEAD, the index and every file it touched as before.
    #[arg(long, conflicts_with_all = ["rev", "continue_"])]
    pub abort: bool,
    /// Commit the merge under way once every conflict is resolved.
    #[arg(long = "continue", conflicts_with = "rev")]
    pub continue_: bool,
    /// One JSON document on stdout (fields in docs/CLI.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("side").required(true).args(["ours", "theirs", "both"]))]
pub struct ResolveArgs {
    /// Conflicted paths (or directories holding them).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Keep our version (HEAD's); a path we deleted is deleted.
    #[arg(long)]
    pub ours: bool,
    /// Take their version; a path they deleted is deleted.
    #[arg(long)]
    pub theirs: bool,
    /// Keep both, side by side: NAME~ours.EXT and NAME~theirs.EXT.
    #[arg(long)]
    pub both: bool,
}

#[derive(Args, Debug)]
pub struct PickArgs {
    /// Commits, or ranges A..B (the commits of B that A lacks, oldest first).
    #[arg(required_unless_present_any = ["abort", "continue_", "skip"])]
    pub revs: Vec<String>,
    /// For a merge commit: the parent (1, 2, ...) whose side is the base.
    #[arg(short, long, value_name = "N")]
    pub mainline: Option<u32>,
    /// Apply the changes to the index and working tree without committing.
    #[arg(short, long)]
    pub no_commit: bool,
    /// Settle every path both sides changed with this side's version.
    #[arg(short = 'X', value_enum, value_name = "ours|theirs")]
    pub strategy_option: Option<Favor>,
    /// Give up: HEAD, the index and every file touched as before.
    #[arg(long, conflicts_with_all = ["revs", "continue_", "skip"])]
    pub abort: bool,
    /// Commit the resolved step and go on.
    #[arg(long = "continue", conflicts_with_all = ["revs", "skip"])]
    pub continue_: bool,
    /// Drop the step that stopped and go on.
    #[arg(long, conflicts_with = "revs")]
    pub skip: bool,
}

#[derive(Args, Debug)]
pub struct RebaseArgs {
    /// Replay the commits of UPSTREAM..HEAD on top of UPSTREAM.
    #[arg(required_unless_present_any = ["abort", "continue_", "skip"])]
    pub upstream: Option<String>,
    /// Replay them on NEWBASE instead.
    #[arg(long, value_name = "NEWBASE")]
    pub onto: Option<String>,
    /// Give up: the branch, the index and every file touched as before.
    #[arg(long, conflicts_with_all = ["upstream", "continue_", "skip"])]
    pub abort: bool,
    /// Commit the resolved step and go on.
    #[arg(long = "continue", conflicts_with_all = ["upstream", "skip"])]
    pub continue_: bool,
    /// Drop the step that stopped and go on.
    #[arg(long, conflicts_with = "upstream")]
    pub skip: bool,
}

#[derive(Args, Debug)]
pub struct ResetArgs {
    /// HEAD only.
    #[arg(long, conflicts_with_all = ["mixed", "hard"])]
    pub soft: bool,
    /// HEAD and the index (the default).
    #[arg(long, conflicts_with = "hard")]
    pub mixed: bool,
    /// HEAD, the index and the tracked files of the working tree (local changes are lost).
    #[arg(long)]
    pub hard: bool,
    /// Where to (default HEAD).
    pub rev: Option<String>,
    /// Only these paths' index entries (after `--`); the working tree is untouched.
    #[arg(last = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Take the files from REV (default: the index for the working tree, HEAD for --staged).
    #[arg(short, long, value_name = "REV")]
    pub source: Option<String>,
    /// Restore the index entries.
    #[arg(short = 'S', long)]
    pub staged: bool,
    /// Restore the working tree's files (the default; with --staged, both).
    #[arg(short = 'W', long)]
    pub worktree: bool,
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// What the history commands need from the CLI.
pub struct Env<'a> {
    pub cwd: &'a Path,
    pub quiet: bool,
    pub who: Signature,
    pub progress: &'a dyn mediagit_repo::progress::Progress,
}

/// Prints what an operation did; stopped at conflicts, an error with exit 3.
pub(crate) fn report(repo: &Repository, op: OpKind, out: &OpOutcome, quiet: bool) -> CmdResult {
    let cmd = op.command();
    for (side, old, new) in &out.renames {
        let who = match side {
            Side::Ours => "we",
            Side::Theirs => "they",
        };
        println!("Followed a rename ({who} renamed {old} -> {new})");
    }
    for c in &out.skipped {
        println!("Skipped {} (its changes are already here)", c.short(12));
    }
    if !out.commits.is_empty() && !quiet {
        let head = repo.head()?;
        let on = match &head {
            mediagit_repo::refs::Head::Branch(b) => b.clone(),
            mediagit_repo::refs::Head::Detached(_) => "detached HEAD".into(),
        };
        for c in &out.commits {
            let summary = repo
                .odb()
                .and_then(|o| o.read_commit(c))
                .map(|c| c.summary().to_string())
                .unwrap_or_default();
            println!("[{on} {}] {summary}", c.short(12));
        }
    }
    if out.conflicts.is_empty() {
        if out.staged_only {
            println!("Changes staged, not committed (`mediagit commit` records them)");
        }
        return Ok(());
    }
    let notes = mediagit_repo::media::MediaNotes::load(repo).ok();
    for c in &out.conflicts {
        let size = |e: &Option<mediagit_repo::tree::FlatEntry>| {
            e.as_ref()
                .map(|e| human_size(e.size))
                .unwrap_or_else(|| "deleted".into())
        };
        println!(
            "CONFLICT ({}): {}  (ours: {}, theirs: {})",
            c.kind.describe(),
            c.path,
            size(&c.ours),
            size(&c.theirs)
        );
        // For media, what each side holds, so a user can pick one.
        let media = |e: &Option<mediagit_repo::tree::FlatEntry>| {
            let e = e.as_ref()?;
            let r = repo.media_record(notes.as_ref()?, &c.path, e).ok()?.0;
            mediagit_repo::media::is_media(&r).then(|| mediagit_media::summary(&r))
        };
        if let (Some(o), Some(t)) = (media(&c.ours), media(&c.theirs)) {
            println!("    ours:   {}", crate::output::safe(&o));
            println!("    theirs: {}", crate::output::safe(&t));
        }
    }
    Err(CommandError::user(
        "merge-conflicts",
        format!(
            "{} path(s) conflict; the {cmd} stopped",
            out.conflicts.len()
        ),
    )
    .with_hint(format!(
        "settle each path with `mediagit resolve PATH --ours|--theirs|--both` (or put the file to keep there and `mediagit add` it), then run `mediagit {cmd} --continue`; `mediagit {cmd} --abort` goes back to where it began; `mediagit status` shows both sides"
    ))
    .exit_code(exit::CONFLICT))
}

pub fn merge(repo: &Repository, a: MergeArgs, env: &Env) -> CmdResult {
    if a.abort {
        let out = repo.abort_operation("merge", &env.who, env.progress)?;
        println!(
            "Merge aborted ({} file(s) restored, {} removed)",
            out.written, out.removed
        );
        return Ok(());
    }
    if a.continue_ {
        let out = repo.continue_operation("merge", &env.who, env.progress)?;
        return report(repo, OpKind::Merge, &out, env.quiet);
    }
    let Some(rev) = a.rev else {
        return Err(CommandError::usage("merge needs a branch or revision"));
    };
    let theirs = repo.resolve(&rev)?;
    let out = repo.merge(
        &MergeOptions {
            theirs,
            theirs_name: rev.clone(),
            message: a.message,
            ff: if a.ff_only {
                FastForward::Only
            } else if a.no_ff {
                FastForward::Never
            } else {
                FastForward::Allow
            },
            squash: a.squash,
            favor: a.strategy_option.map(Side::from),
            who: env.who.clone(),
        },
        env.progress,
    )?;
    if a.json {
        let mut o = std::io::stdout().lock();
        crate::output::write_json(&mut o, &out)?;
        if out.conflicts.is_empty() {
            return Ok(());
        }
        return Err(CommandError::user(
            "merge-conflicts",
            format!("{} path(s) conflict", out.conflicts.len()),
        )
        .exit_code(exit::CONFLICT));
    }
    if out.up_to_date {
        println!("Already up to date.");
        return Ok(());
    }
    if out.fast_forward {
        println!(
            "Fast-forward to {} ({} file(s) written, {} removed)",
            theirs.short(12),
            out.written,
            out.removed
        );
        return Ok(());
    }
    report(
        repo,
        if a.squash {
            OpKind::Squash
        } else {
            OpKind::Merge
        },
        &out,
        env.quiet,
    )
}

pub fn resolve(repo: &Repository, a: ResolveArgs, env: &Env) -> CmdResult {
    let paths = repo_paths(repo, env.cwd, &a.paths)?;
    let how = if a.ours {
        Resolution::Ours
    } else if a.theirs {
        Resolution::Theirs
    } else {
        Resolution::Both
    };
    let written = repo.resolve_conflicts(&paths, how, env.progress)?;
    match how {
        Resolution::Both => {
            for w in &written {
                println!("kept {w}");
            }
        }
        _ => {
            for w in &written {
                println!("resolved {w}");
            }
        }
    }
    let left = repo.workspace()?.load_index()?.conflicted_paths();
    if left.is_empty() {
        if let Some(op) = repo.operation()? {
            println!(
                "No conflicts left: `mediagit {} --continue` to go on",
                op.op.command()
            );
        }
    } else {
        println!("{} conflicted path(s) left", left.len());
    }
    Ok(())
}

/// Revisions and `A..B` ranges, in order.
fn pick_list(
    repo: &Repository,
    revs: &[String],
) -> Result<Vec<mediagit_format::ObjectId>, CommandError> {
    let mut out = Vec::new();
    for r in revs {
        match r.split_once("..") {
            Some((a, b)) => {
                let a = repo.resolve(if a.is_empty() { "HEAD" } else { a })?;
                let b = repo.resolve(if b.is_empty() { "HEAD" } else { b })?;
                out.extend(repo.commits_between(a, b)?);
            }
            None => out.push(repo.resolve(r)?),
        }
    }
    if out.is_empty() {
        return Err(CommandError::user(
            "empty-range",
            format!("no commits in {}", revs.join(" ")),
        ));
    }
    Ok(out)
}

pub fn pick(repo: &Repository, op: OpKind, a: PickArgs, env: &Env) -> CmdResult {
    let cmd = op.command();
    if a.abort {
        let out = repo.abort_operation(cmd, &env.who, env.progress)?;
        println!(
            "{cmd} aborted ({} file(s) restored, {} removed)",
            out.written, out.removed
        );
        return Ok(());
    }
    let out = if a.continue_ {
        repo.continue_operation(cmd, &env.who, env.progress)?
    } else if a.skip {
        repo.skip_step(cmd, &env.who, env.progress)?
    } else {
        let steps = pick_list(repo, &a.revs)?;
        repo.pick(
            op,
            &steps,
            a.mainline,
            a.no_commit,
            a.strategy_option.map(Side::from),
            &env.who,
            env.progress,
        )?
    };
    report(repo, op, &out, env.quiet)
}

pub fn rebase(repo: &Repository, a: RebaseArgs, env: &Env) -> CmdResult {
    if a.abort {
        let out = repo.abort_operation("rebase", &env.who, env.progress)?;
        println!(
            "Rebase aborted ({} file(s) restored, {} removed)",
            out.written, out.removed
        );
        return Ok(());
    }
    let out = if a.continue_ {
        repo.continue_operation("rebase", &env.who, env.progress)?
    } else if a.skip {
        repo.skip_step("rebase", &env.who, env.progress)?
    } else {
        let Some(up) = a.upstream else {
            return Err(CommandError::usage("rebase needs an upstream"));
        };
        let upstream = repo.resolve(&up)?;
        let onto = match &a.onto {
            Some(o) => Some(repo.resolve(o)?),
            None => None,
        };
        let name = a.onto.clone().unwrap_or(up.clone());
        let out = repo.rebase(upstream, onto, &name, &env.who, env.progress)?;
        if out.up_to_date {
            println!("Current branch is up to date.");
            return Ok(());
        }
        out
    };
    let r = report(repo, OpKind::Rebase, &out, true);
    if r.is_ok() && repo.operation()?.is_none() {
        println!(
            "Rebased: {} commit(s) replayed, now at {}",
            out.commits.len(),
            repo.head_commit()?.map(|c| c.short(12)).unwrap_or_default()
        );
    }
    r
}

pub fn reset(repo: &Repository, a: ResetArgs, env: &Env) -> CmdResult {
    let rev = a.rev.clone().unwrap_or_else(|| "HEAD".into());
    let target = repo.resolve(&rev)?;
    if !a.paths.is_empty() {
        if a.soft || a.hard {
            return Err(CommandError::usage(
                "--soft and --hard move HEAD; with paths, reset only changes their index entries",
            ));
        }
        let paths = repo_paths(repo, env.cwd, &a.paths)?;
        let done = repo.reset_paths(target, &paths)?;
        if !env.quiet {
            println!("Unstaged {} path(s) (index entries from {rev})", done.len());
        }
        return Ok(());
    }
    let mode = if a.soft {
        ResetMode::Soft
    } else if a.hard {
        ResetMode::Hard
    } else {
        ResetMode::Mixed
    };
    let out = repo.reset(target, &rev, mode, &env.who, env.progress)?;
    match mode {
        ResetMode::Hard => println!(
            "HEAD is now at {} ({} file(s) written, {} removed)",
            target.short(12),
            out.written,
            out.removed
        ),
        _ => println!("HEAD is now at {}", target.short(12)),
    }
    for (p, why) in &out.not_removed {
        eprintln!("warning: could not remove {p}: {why}");
    }
    Ok(())
}

pub fn restore(repo: &Repository, a: RestoreArgs, env: &Env) -> CmdResult {
    let paths = repo_paths(repo, env.cwd, &a.paths)?;
    let source = match &a.source {
        Some(s) => Some(repo.resolve(s)?),
        None => None,
    };
    let (matched, out) = repo.restore(source, a.staged, a.worktree, &paths, env.progress)?;
    if !env.quiet {
        println!(
            "Restored {} path(s) ({} file(s) written, {} removed)",
            matched.len(),
            out.written,
            out.removed
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StashArgs {
    #[command(subcommand)]
    pub action: Option<StashAction>,
    /// The entry's message (`stash` alone is `stash push`).
    #[arg(short, long)]
    pub message: Option<String>,
    /// Only these paths (after `--`).
    #[arg(last = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum StashAction {
    /// Store the changes to tracked files (under PATHs: every change there) and put the files back to HEAD's.
    Push {
        #[arg(short, long)]
        message: Option<String>,
        paths: Vec<PathBuf>,
    },
    /// The entries, newest first: `stash@{N}: MESSAGE`.
    List {
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The files entry N (default 0) changes.
    Show { n: Option<usize> },
    /// Bring entry N (default 0) back as local changes, keeping the entry.
    Apply { n: Option<usize> },
    /// Bring entry N (default 0) back and drop it.
    Pop { n: Option<usize> },
    /// Delete entry N (default 0).
    Drop { n: Option<usize> },
}

pub fn stash(repo: &Repository, a: StashArgs, env: &Env) -> CmdResult {
    let action = a.action.unwrap_or(StashAction::Push {
        message: a.message,
        paths: a.paths,
    });
    match action {
        StashAction::Push { message, paths } => {
            let paths = repo_paths(repo, env.cwd, &paths)?;
            match repo.stash_push(message.as_deref(), &paths, &env.who, env.progress)? {
                None => println!("No local changes to save"),
                Some(_) => {
                    let top = repo.stash_list()?.into_iter().next();
                    println!(
                        "Saved working directory and index state {}",
                        top.map(|e| e.message).unwrap_or_default()
                    );
                }
            }
        }
        StashAction::List { json } => {
            let list = repo.stash_list()?;
            let bad = repo.stash_unreadable()?;
            if bad > 0 {
                eprintln!(
                    "warning: {bad} line(s) of .mediagit/logs/refs%2Fstash do not read and are not listed (kept as they are; `mediagit fsck` reports them)"
                );
            }
            if json {
                let mut o = std::io::stdout().lock();
                crate::output::write_json(&mut o, &list)?;
            } else {
                for e in list {
                    println!("stash@{{{}}}: {}", e.index, e.message);
                }
            }
        }
        StashAction::Show { n } => {
            let (e, diffs) = repo.stash_show(n.unwrap_or(0))?;
            let mut out = crate::commands::stdout();
            use std::io::Write;
            writeln!(out, "stash@{{{}}}: {}", e.index, e.message)?;
            crate::commands::write_diff(&mut out, &diffs)?;
            out.flush()?;
        }
        StashAction::Apply { n } => {
            let done = repo.stash_apply(n.unwrap_or(0), false, env.progress)?;
            println!(
                "Applied stash@{{{}}} ({} file(s) written, {} removed)",
                n.unwrap_or(0),
                done.written,
                done.removed
            );
        }
        StashAction::Pop { n } => {
            let done = repo.stash_apply(n.unwrap_or(0), true, env.progress)?;
            if !done.staged_kept.is_empty() {
                println!(
                    "Applied stash@{{{}}}, and kept it: it also holds staged versions of {} that differ from the files brought back (`mediagit stash show`; `mediagit stash drop` once you no longer need them)",
                    n.unwrap_or(0),
                    done.staged_kept.join(", ")
                );
                return Ok(());
            }
            println!(
                "Applied and dropped stash@{{{}}} ({}; {} file(s) written, {} removed)",
                n.unwrap_or(0),
                done.dropped.map(|c| c.short(12)).unwrap_or_default(),
                done.written,
                done.removed
            );
        }
        StashAction::Drop { n } => {
            let c = repo.stash_drop(n.unwrap_or(0))?;
            println!("Dropped stash@{{{}}} ({})", n.unwrap_or(0), c.short(12));
        }
    }
    Ok(())
}
