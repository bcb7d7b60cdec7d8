//! `media` (alias `info`), `find` and `show REV -- PATH`: printing media
//! records; the records themselves are in `mediagit_repo::media`.
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use mediagit_format::index::IndexKind;
use mediagit_format::ObjectId;
use mediagit_media::Metadata;
use mediagit_repo::media::{extract_file, MediaNotes};
use mediagit_repo::tree::{lookup, FlatEntry, Lookup};
use mediagit_repo::Repository;

use crate::command_error::CommandError;
use crate::commands::{repo_paths, stdout, SafeOut};
use crate::output::human_size;
use crate::CmdResult;

#[derive(Args, Debug)]
pub struct MediaArgs {
    /// The file (a path in the working tree).
    #[arg(required_unless_present = "scan")]
    pub path: Option<PathBuf>,
    /// The revision to read the file from (default: the working tree's file).
    pub rev: Option<String>,
    /// One JSON document on stdout: the whole record.
    #[arg(long)]
    pub json: bool,
    /// Store the records missing for the files of HEAD (or REV...), read
    /// from stored content (headers only): for files added before media
    /// records existed.
    #[arg(long, conflicts_with_all = ["path", "json"])]
    pub scan: bool,
    /// With --scan: every commit reachable from a branch or tag.
    #[arg(long, requires = "scan")]
    pub all_history: bool,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    /// The revision to search (default HEAD).
    pub rev: Option<String>,
    /// The condition, e.g. 'kind=video and height>=2160' or
    /// 'camera~Canon and taken>=2024-01-01'.
    ///
    /// FIELD OP VALUE, joined by and, or, not and parentheses; OP is one of
    /// = != < <= > >= ~ (contains, any case); a bare FIELD is true when the
    /// field is present. Numbers compare as numbers, other values as text.
    /// Fields: kind mime format path width height orientation colorspace
    /// depth camera make model lens taken exposure fnumber iso gps lat lon
    /// duration container codec fps bitrate created audio_codec channels
    /// samplerate title artist album colormode layers layer pages unreadable.
    #[arg(long = "where", value_name = "EXPR")]
    pub condition: String,
    /// Search every version of every file reachable from a branch or tag.
    #[arg(long, conflicts_with = "rev")]
    pub all_history: bool,
    /// JSON Lines: one object per file (path, content, size, metadata).
    #[arg(long)]
    pub json: bool,
}

#[derive(serde::Serialize)]
struct RecordJson<'a> {
    path: &'a str,
    /// The revision read (`None`: the working tree).
    rev: Option<String>,
    content: Option<ObjectId>,
    size: u64,
    /// Whether the record is stored in the repository (else extracted now).
    stored: bool,
    metadata: &'a Metadata,
}

fn print_record(out: &mut SafeOut, r: &RecordJson<'_>, json: bool) -> std::io::Result<()> {
    if json {
        return crate::output::write_json(out, r);
    }
    let content = r
        .content
        .map(|c| format!("content {}, ", c.short(12)))
        .unwrap_or_default();
    let from = match &r.rev {
        Some(rev) => format!(" at {rev}"),
        None => String::new(),
    };
    writeln!(out, "{}{from} ({content}{})", r.path, human_size(r.size))?;
    let fields = mediagit_media::fields(r.metadata);
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (k, v) in &fields {
        writeln!(out, "  {:<width$} {v}", format!("{k}:"))?;
    }
    if !r.stored {
        writeln!(
            out,
            "  (not stored in the repository: read from the file now; `mediagit media --scan` stores records of committed files)"
        )?;
    }
    Ok(())
}

/// The record of `path` at commit `rev`.
fn record_at(
    repo: &Repository,
    notes: &MediaNotes<'_>,
    rev: &str,
    path: &str,
) -> Result<(FlatEntry, Metadata, bool), CommandError> {
    let id = repo.resolve(rev)?;
    let odb = repo.odb()?;
    let tree = odb.read_commit(&id)?.tree;
    match lookup(odb, &tree, path)? {
        Some(Lookup::File(e)) if e.kind != IndexKind::Symlink => {
            let (m, stored) = repo.media_record(notes, path, &e)?;
            Ok((e, m, stored))
        }
        Some(Lookup::File(_)) => Err(CommandError::user(
            "not-a-file",
            format!("{path} is a symbolic link at {rev}: it has no media record"),
        )),
        Some(Lookup::Dir(_)) => Err(CommandError::user(
            "not-a-file",
            format!("{path} is a directory at {rev}"),
        )
        .with_hint("name a file; `mediagit find --where ...` searches a directory")),
        None => Err(CommandError::user(
            "path-not-in-revision",
            format!("{path} is not in {rev}"),
        )),
    }
}

pub fn media(repo: &Repository, cwd: &Path, quiet: bool, args: MediaArgs) -> CmdResult {
    if args.scan {
        let commits = if args.all_history {
            repo.all_commits()?
        } else {
            let rev = args.rev.as_deref().unwrap_or("HEAD");
            vec![repo.resolve(rev)?]
        };
        let (files, stored) = repo.media_scan(&commits)?;
        if !quiet {
            println!("{files} file(s) looked at, {stored} media record(s) stored");
        }
        return Ok(());
    }
    let Some(path) = args.path else {
        return Err(CommandError::user("nothing-specified", "name a file"));
    };
    let p = repo_paths(repo, cwd, &[path])?.remove(0);
    let notes = MediaNotes::load(repo)?;
    let mut out = stdout();
    match &args.rev {
        Some(rev) => {
            let (e, m, stored) = record_at(repo, &notes, rev, &p)?;
            let r = RecordJson {
                path: &p,
                rev: Some(rev.clone()),
                content: Some(e.content),
                size: e.size,
                stored,
                metadata: &m,
            };
            print_record(&mut out, &r, args.json)?;
        }
        None => {
            // The working tree's file: its stored record when the index
            // vouches for it (same size and mtime), else read now. Never
            // through a symlinked directory (out of the working tree).
            let root = repo.worktree()?;
            mediagit_repo::worktree::ParentGuard::new(root).check(&p)?;
            let abs = root.join(&p);
            let meta = std::fs::symlink_metadata(&abs).map_err(|e| {
                CommandError::user("no-such-file", format!("{p}: {e}")).with_hint(
                    "name a file of the working tree, or a revision: `mediagit media PATH REV`",
                )
            })?;
            if !meta.is_file() {
                return Err(CommandError::user(
                    "not-a-file",
                    format!("{p} is not a regular file"),
                ));
            }
            let st = mediagit_repo::worktree::stat_info(&meta);
            let idx = repo.workspace()?.load_index()?;
            let known = idx
                .entries
                .get(&p)
                .filter(|e| e.stat.size == st.size && e.stat.mtime == st.mtime);
            let stored = match known {
                Some(e) => notes.get(&e.content)?.map(|m| (e.content, m)),
                None => None,
            };
            let (content, m, is_stored) = match stored {
                Some((c, m)) => (Some(c), m, true),
                None => {
                    let m = extract_file(&abs, &p).ok_or_else(|| {
                        CommandError::user("no-such-file", format!("{p}: cannot be read"))
                    })?;
                    (known.map(|e| e.content), m, false)
                }
            };
            let r = RecordJson {
                path: &p,
                rev: None,
                content,
                size: st.size,
                stored: is_stored,
                metadata: &m,
            };
            print_record(&mut out, &r, args.json)?;
        }
    }
    Ok(out.flush()?)
}

/// `show REV -- PATH...`: each file's media record at REV.
pub fn show_paths(
    repo: &Repository,
    cwd: &Path,
    rev: &str,
    paths: &[PathBuf],
    json: bool,
) -> CmdResult {
    let notes = MediaNotes::load(repo)?;
    let mut out = stdout();
    for p in repo_paths(repo, cwd, paths)? {
        let (e, m, stored) = record_at(repo, &notes, rev, &p)?;
        let r = RecordJson {
            path: &p,
            rev: Some(rev.to_string()),
            content: Some(e.content),
            size: e.size,
            stored,
            metadata: &m,
        };
        print_record(&mut out, &r, json)?;
    }
    Ok(out.flush()?)
}

pub fn find(repo: &Repository, quiet: bool, args: FindArgs) -> CmdResult {
    let query = mediagit_media::Query::parse(&args.condition).map_err(|e| {
        CommandError::usage(format!("--where: {e}")).with_hint(
            "e.g. --where 'kind=video and height>=2160'; the fields: `mediagit find --help`",
        )
    })?;
    let commits = if args.all_history {
        repo.all_commits()?
    } else {
        vec![repo.resolve(args.rev.as_deref().unwrap_or("HEAD"))?]
    };
    let found = repo.find_media(&commits, &query)?;
    let mut out = stdout();
    for f in &found.found {
        if args.json {
            crate::output::write_json_line(&mut out, f)?;
        } else if args.all_history {
            writeln!(
                out,
                "{}\t{}\t{}",
                f.content.short(12),
                f.path,
                mediagit_media::summary(&f.metadata)
            )?;
        } else {
            writeln!(out, "{}\t{}", f.path, mediagit_media::summary(&f.metadata))?;
        }
    }
    out.flush()?;
    for u in &found.unreadable {
        eprintln!("warning: {}", crate::output::safe(u));
    }
    if found.without_record > 0 && !quiet {
        eprintln!(
            "note: {} of {} file(s) have no media record and were not searched; `mediagit media --scan{}` reads their headers once",
            found.without_record,
            found.files,
            if args.all_history { " --all-history" } else { "" }
        );
    }
    Ok(())
}
