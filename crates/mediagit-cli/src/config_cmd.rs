//! `mediagit config`: reads and writes settings by dotted key, in the
//! repository's `.mediagit/config.toml` (`--local`, the default when
//! setting) or the user's own settings file (`--global`,
//! `$XDG_CONFIG_HOME/mediagit/config.toml`). Files are edited in place with
//! `toml_edit`, so comments and order survive; every edit is checked by the
//! same parser that reads the file, before it replaces it atomically.
//!
//! Precedence when MediaGit uses a setting: environment variables
//! (`MEDIAGIT_AUTHOR_NAME`, `MEDIAGIT_AUTHOR_EMAIL`, `MEDIAGIT_PAGER`), then
//! the repository's file, then the user's.
use std::path::{Path, PathBuf};

use crate::command_error::CommandError;
use crate::CmdResult;

/// Where a key may be set.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Both,
    GlobalOnly,
    /// Read from the repository's file only (they shape its storage).
    LocalOnly,
}

/// Every key `config` sets, with where it may live and what it holds.
const KEYS: &[(&str, Scope, &str)] = &[
    ("author.name", Scope::Both, "your name, recorded in commits"),
    (
        "author.email",
        Scope::Both,
        "your email address, recorded in commits",
    ),
    (
        "core.pager",
        Scope::GlobalOnly,
        "the pager for log, show, diff and reflog (\"\" or \"cat\": none)",
    ),
    (
        "core.checkpoint_bytes",
        Scope::LocalOnly,
        "add stores its packs after this many bytes of new data (a whole number)",
    ),
    (
        "core.checkpoint_seconds",
        Scope::LocalOnly,
        "... and at least this often, in seconds (a whole number)",
    ),
    (
        "compression.level",
        Scope::LocalOnly,
        "zstd level (1..=22) for content that compresses; new packs only",
    ),
    (
        "remotes.NAME.url",
        Scope::LocalOnly,
        "where remote NAME is: a repository directory or a store URL (`mediagit remote` manages them)",
    ),
    (
        "remotes.NAME.token_env",
        Scope::LocalOnly,
        "the environment variable holding the token for remote NAME's server",
    ),
    (
        "branches.NAME.remote",
        Scope::LocalOnly,
        "the remote branch NAME follows (`push -u` sets it)",
    ),
    (
        "branches.NAME.merge",
        Scope::LocalOnly,
        "the name of branch NAME's upstream on that remote",
    ),
    (
        "locks.patterns",
        Scope::LocalOnly,
        "files read-only until locked (`mediagit lock`), as patterns separated by commas: \"*.psd, art/*.blend\"",
    ),
    (
        "media.records",
        Scope::LocalOnly,
        "true (default) or false: whether add records each new file's media metadata (dimensions, codecs, EXIF camera, date and GPS) in the repository",
    ),
    (
        "merge.ours",
        Scope::LocalOnly,
        "files a merge keeps our version of when both sides changed them, as patterns separated by commas: \"*.lock, cache/\"",
    ),
    (
        "merge.theirs",
        Scope::LocalOnly,
        "files a merge takes their version of when both sides changed them, as patterns separated by commas",
    ),
];

/// A key as tables and a leaf: `author.name` is `(["author"], "name")`;
/// `remotes.NAME.url` is `(["remotes", NAME], "url")`, NAME whatever lies
/// between (remote and branch names may hold dots).
fn split_key(key: &str) -> (Vec<&str>, &str) {
    for table in ["remotes.", "branches."] {
        if let Some(rest) = key.strip_prefix(table) {
            if let Some((name, leaf)) = rest.rsplit_once('.') {
                if !name.is_empty() {
                    return (vec![&table[..table.len() - 1], name], leaf);
                }
            }
        }
    }
    match key.split_once('.') {
        Some((t, leaf)) => (vec![t], leaf),
        None => (vec![], key),
    }
}

/// The entry of [`KEYS`] a key is, `NAME` standing for any name.
fn pattern(key: &str) -> String {
    match split_key(key) {
        (t, leaf) if t.len() == 2 => format!("{}.NAME.{leaf}", t[0]),
        _ => key.to_string(),
    }
}

/// Keys whose values are lists (given separated by commas, written as
/// TOML arrays of strings).
fn is_list(key: &str) -> bool {
    matches!(key, "locks.patterns" | "merge.ours" | "merge.theirs")
}

/// The items of a list value: separated by commas, trimmed, none empty.
fn list_items(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Keys whose values are whole numbers (written as TOML integers).
/// Keys whose values are true or false.
fn is_bool(key: &str) -> bool {
    key == "media.records"
}

fn is_number(key: &str) -> bool {
    key.starts_with("core.checkpoint_") || key == "compression.level"
}

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// Your own settings file ($XDG_CONFIG_HOME/mediagit/config.toml).
    #[arg(long, conflicts_with = "local")]
    pub global: bool,
    /// This repository's .mediagit/config.toml (the default when setting).
    #[arg(long)]
    pub local: bool,
    #[arg(short, long, conflicts_with_all = ["unset", "edit", "key"])]
    pub list: bool,
    /// With --list: the file of each setting.
    #[arg(long, requires = "list")]
    pub show_origin: bool,
    #[arg(long, value_name = "KEY", conflicts_with_all = ["edit", "key"])]
    pub unset: Option<String>,
    #[arg(short, long, conflicts_with = "key")]
    pub edit: bool,
    pub key: Option<String>,
    pub value: Option<String>,
}

/// Finds the repository's settings file (the CLI's own discovery, with
/// its safety checks).
pub type LocalFile<'a> = &'a dyn Fn() -> Result<PathBuf, CommandError>;

/// The files, as (scope name, path), lowest precedence first.
fn files(
    cwd: LocalFile<'_>,
    global_only: bool,
    local_only: bool,
) -> Result<Vec<(&'static str, PathBuf)>, CommandError> {
    let global = || {
        crate::user_config::path().ok_or_else(|| {
            CommandError::user(
                "no-settings-file",
                "cannot find your settings file: neither XDG_CONFIG_HOME nor HOME is set",
            )
        })
    };
    let local = cwd;
    Ok(match (global_only, local_only) {
        (true, _) => vec![("global", global()?)],
        (_, true) => vec![("local", local()?)],
        // Reading: both (the repository's only inside one).
        _ => {
            let mut v = vec![("global", global()?)];
            if let Ok(l) = local() {
                v.push(("local", l));
            }
            v
        }
    })
}

/// The closest known key, for "did you mean".
fn nearest(key: &str) -> Option<&'static str> {
    let dist = |a: &str, b: &str| -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    };
    KEYS.iter()
        .map(|(k, ..)| (dist(key, k), *k))
        .filter(|(d, _)| *d <= 4)
        .min()
        .map(|(_, k)| k)
}

fn known(key: &str) -> Result<Scope, CommandError> {
    let pat = pattern(key);
    match KEYS.iter().find(|(k, ..)| *k == pat) {
        Some((_, scope, _)) => Ok(*scope),
        None => {
            let list: Vec<&str> = KEYS.iter().map(|(k, ..)| *k).collect();
            let e = CommandError::user("unknown-config-key", format!("unknown setting {key:?}"));
            Err(match nearest(&pat) {
                Some(k) => {
                    e.with_hint(format!("did you mean {k:?}? Settings: {}", list.join(", ")))
                }
                None => e.with_hint(format!("settings: {}", list.join(", "))),
            })
        }
    }
}

/// A settings file's text (empty when there is none): never a FIFO or
/// device, at most one byte more than a settings file may hold (the
/// parser then names the limit); a repository's never through a link, the
/// user's own through one (a dotfile manager's).
pub(crate) fn read(path: &Path) -> Result<String, CommandError> {
    let unreadable = |e: String| CommandError::user("config-unreadable", e);
    if crate::user_config::path().as_deref() != Some(path) {
        return match mediagit_repo::repo::read_private_text(
            path,
            mediagit_repo::repo::MAX_CONFIG_BYTES,
        ) {
            Ok(t) => Ok(t.unwrap_or_default()),
            Err(e) => Err(unreadable(e.to_string())),
        };
    }
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(unreadable(format!("cannot read {}: {e}", path.display()))),
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(unreadable(format!(
            "cannot read {}: not a regular file",
            path.display()
        )));
    }
    let mut text = String::new();
    f.take(mediagit_repo::repo::MAX_CONFIG_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| unreadable(format!("cannot read {}: {e}", path.display())))?;
    Ok(text)
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<toml_edit::DocumentMut, CommandError> {
    text.parse::<toml_edit::DocumentMut>().map_err(|e| {
        CommandError::user(
            "config-invalid",
            format!("{}: {}", path.display(), e.message()),
        )
    })
}

/// A value MediaGit would record as given: names and addresses of one
/// line, without the `<` `>` that delimit an address in a commit.
fn check_value(key: &str, value: &str) -> CmdResult {
    let bad = |why: &str| {
        Err(CommandError::user(
            "invalid-config-value",
            format!("{key} {why}"),
        ))
    };
    if is_number(key)
        && !value
            .parse::<u64>()
            .is_ok_and(|n| n > 0 && n <= i64::MAX as u64)
    {
        return bad("must be a whole number above 0");
    }
    if is_list(key) {
        let items = list_items(value);
        if items.is_empty() {
            return bad(&format!(
                "needs at least one pattern (`mediagit config --unset {key}` removes them all)"
            ));
        }
        if items.iter().any(|p| p.chars().any(|c| c.is_control())) {
            return bad("cannot hold control characters");
        }
        let root = Path::new("/");
        if let Err(e) = mediagit_repo::lockable::Lockable::new(root, &items, Default::default()) {
            return Err(CommandError::user("invalid-config-value", e.to_string()));
        }
    }
    if key.starts_with("author.") {
        if value.trim().is_empty() {
            return bad("cannot be empty");
        }
        if value.chars().any(|c| c.is_control()) {
            return bad("cannot hold control characters (a new line, a tab, ...)");
        }
        if value.contains(['<', '>']) {
            return bad("cannot hold '<' or '>'");
        }
        if key == "author.email" && value.chars().any(char::is_whitespace) {
            return bad("cannot hold spaces");
        }
    }
    Ok(())
}

/// Held while a file is read, changed and replaced: two `config` runs at
/// once do not lose each other's change. The repository's file is guarded
/// by the repository lock (`upgrade` holds it too); the user's by a lock
/// file beside it.
pub(crate) fn lock(scope: &str, path: &Path) -> Result<std::fs::File, CommandError> {
    use std::os::fd::AsRawFd;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| CommandError::user("io", format!("cannot create {}: {e}", dir.display())))?;
    let name = if scope == "local" {
        "lock"
    } else {
        ".config.toml.lock"
    };
    let lock_path = dir.join(name);
    // Never through a link (one planted as `lock` would have this create
    // whatever it names), never a FIFO (a hang).
    let f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&lock_path)
    }
    .map_err(|e| CommandError::user("io", format!("cannot open {}: {e}", lock_path.display())))?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(CommandError::user(
            "io",
            format!("cannot open {}: not a regular file", lock_path.display()),
        ));
    }
    // SAFETY: `flock` on a descriptor this function owns (kept open in the
    // returned File, which releases the lock when dropped); no memory is
    // shared with the kernel.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(CommandError::user(
            "io",
            format!("cannot lock {}: {e}", lock_path.display()),
        ));
    }
    Ok(f)
}

/// Why `text` would not be read as the file of `scope`, if it would not.
fn invalid(scope: &str, text: &str) -> Option<String> {
    match scope {
        "local" => mediagit_format::config::RepoConfig::from_toml(text)
            .err()
            .map(|e| e.to_string()),
        _ => crate::user_config::check(text).err(),
    }
}

/// Checks `text` as the reader of that file would, then replaces the file.
/// The user's file may be a symbolic link (a dotfile manager's): the file
/// it points to is replaced, the link kept; the repository's is replaced
/// where it is.
pub(crate) fn write(scope: &str, path: &Path, text: &str) -> CmdResult {
    if let Some(e) = invalid(scope, text) {
        return Err(CommandError::user(
            "config-invalid",
            format!("{}: the change would make it invalid: {e}", path.display()),
        ));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            CommandError::user("io", format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() && scope != "local" => std::fs::canonicalize(path)
            .map_err(|e| {
                CommandError::user(
                    "io",
                    format!(
                        "{} is a symbolic link to a file that cannot be reached: {e}",
                        path.display()
                    ),
                )
            })?,
        _ => path.to_path_buf(),
    };
    mediagit_repo::repo::write_atomic(&target, text.as_bytes())?;
    Ok(())
}

/// The value at a dotted key, as text (strings unquoted).
fn get(doc: &toml_edit::DocumentMut, key: &str) -> Option<String> {
    let mut item: &toml_edit::Item = doc.as_item();
    let (tables, leaf) = split_key(key);
    for part in tables.into_iter().chain([leaf]) {
        item = item.get(part)?;
    }
    match item.as_value()? {
        toml_edit::Value::String(s) => Some(s.value().clone()),
        v => Some(v.to_string().trim().to_string()),
    }
}

/// Every leaf of a document as (dotted key, value).
fn leaves(prefix: &str, table: &dyn toml_edit::TableLike, out: &mut Vec<(String, String)>) {
    for (k, item) in table.iter() {
        let key = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        match item {
            toml_edit::Item::Value(toml_edit::Value::String(s)) => {
                out.push((key, s.value().clone()))
            }
            other => match other.as_table_like() {
                Some(t) => leaves(&key, t, out),
                None => {
                    if let Some(v) = other.as_value() {
                        out.push((key, v.to_string().trim().to_string()));
                    }
                }
            },
        }
    }
}

pub fn config(cwd: LocalFile<'_>, args: ConfigArgs) -> CmdResult {
    if args.list {
        for (_, path) in files(cwd, args.global, args.local)? {
            let text = read(&path)?;
            let mut all = Vec::new();
            leaves("", parse(&path, &text)?.as_table(), &mut all);
            // (Printed escaped: a hand-edited file may hold control characters.)
            for (k, v) in all {
                if args.show_origin {
                    println!("file:{}\t{k}={v}", path.display());
                } else {
                    println!("{k}={v}");
                }
            }
        }
        return Ok(());
    }
    if args.edit {
        let (scope, path) = target(cwd, args.global)?;
        return edit(scope, &path);
    }
    if let Some(key) = &args.unset {
        let (scope, path) = set_target(cwd, &args, key)?;
        let _lock = lock(scope, &path)?;
        let text = read(&path)?;
        let mut doc = parse(&path, &text)?;
        let (tables, leaf) = split_key(key);
        let mut t: Option<&mut dyn toml_edit::TableLike> = Some(doc.as_table_mut());
        for part in &tables {
            t = t
                .and_then(|t| t.get_mut(part))
                .and_then(|i| i.as_table_like_mut());
        }
        let removed = t.and_then(|t| t.remove(leaf));
        if removed.is_none() {
            return Err(CommandError::user(
                "config-not-set",
                format!("{key} is not set in {}", path.display()),
            ));
        }
        return write(scope, &path, &doc.to_string());
    }
    let Some(key) = args.key.clone() else {
        return Err(CommandError::usage(
            "give a KEY (and a VALUE to set it), or --list, --unset KEY or --edit",
        ));
    };
    match args.value.clone() {
        None => {
            let scope = known(&key)?;
            // The repository's value wins over the user's; a personal
            // setting is never taken from a repository.
            let mut found = None;
            for (name, path) in files(cwd, args.global, args.local)? {
                if (scope == Scope::GlobalOnly && name != "global")
                    || (scope == Scope::LocalOnly && name == "global")
                {
                    continue;
                }
                let text = read(&path)?;
                if let Some(v) = get(&parse(&path, &text)?, &key) {
                    found = Some(v);
                }
            }
            match found {
                Some(v) => {
                    println!("{v}");
                    Ok(())
                }
                None => Err(CommandError::user(
                    "config-not-set",
                    format!("{key} is not set"),
                )),
            }
        }
        Some(value) => {
            let (scope, path) = set_target(cwd, &args, &key)?;
            check_value(&key, &value)?;
            let _lock = lock(scope, &path)?;
            let text = read(&path)?;
            let mut doc = parse(&path, &text)?;
            let (tables, leaf) = split_key(&key);
            // Each a `[table]` of its own (not `table = { ... }` inline),
            // after the file's other tables; `[remotes.NAME]` under an
            // implicit `[remotes]`.
            let mut t: &mut dyn toml_edit::TableLike = doc.as_table_mut();
            for (depth, part) in tables.iter().enumerate() {
                if t.get(part).is_none() {
                    let mut new = toml_edit::Table::new();
                    new.set_implicit(depth + 1 < tables.len());
                    t.insert(part, toml_edit::Item::Table(new));
                }
                let Some(next) = t.get_mut(part).and_then(|i| i.as_table_like_mut()) else {
                    return Err(CommandError::user(
                        "config-invalid",
                        format!(
                            "{} in {} is not a table of settings",
                            tables[..=depth].join("."),
                            path.display()
                        ),
                    )
                    .with_hint("fix the file with `mediagit config --edit`"));
                };
                t = next;
            }
            match value.parse::<i64>() {
                Ok(n) if is_number(&key) => t.insert(leaf, toml_edit::value(n)),
                _ if is_bool(&key) => {
                    let b = match value.as_str() {
                        "true" | "yes" | "on" | "1" => true,
                        "false" | "no" | "off" | "0" => false,
                        _ => {
                            return Err(CommandError::usage(format!(
                                "{key} is true or false, not {value:?}"
                            )))
                        }
                    };
                    t.insert(leaf, toml_edit::value(b))
                }
                _ if is_list(&key) => t.insert(
                    leaf,
                    toml_edit::value(toml_edit::Array::from_iter(list_items(&value))),
                ),
                _ => t.insert(leaf, toml_edit::value(value)),
            };
            write(scope, &path, &doc.to_string())
        }
    }
}

/// The file a key is set in or removed from: `--global`, or the
/// repository's (the default).
fn set_target(
    cwd: LocalFile<'_>,
    args: &ConfigArgs,
    key: &str,
) -> Result<(&'static str, PathBuf), CommandError> {
    if known(key)? == Scope::GlobalOnly && !args.global {
        return Err(CommandError::user(
            "wrong-config-scope",
            format!("{key} is a personal setting, kept in your own settings file"),
        )
        .with_hint(format!("use `mediagit config --global {key} ...`")));
    }
    if known(key)? == Scope::LocalOnly && args.global {
        return Err(CommandError::user(
            "wrong-config-scope",
            format!("{key} is a setting of the repository, kept in its .mediagit/config.toml"),
        )
        .with_hint(format!(
            "use `mediagit config {key} ...` inside the repository"
        )));
    }
    target(cwd, args.global)
}

/// The one file a change goes to: the user's with `--global`, else the
/// repository's.
fn target(cwd: LocalFile<'_>, global: bool) -> Result<(&'static str, PathBuf), CommandError> {
    files(cwd, global, !global)?
        .pop()
        .ok_or_else(|| CommandError::user("no-settings-file", "no settings file"))
}

/// Opens the file in `$VISUAL`, `$EDITOR` or `vi`, then checks it.
fn edit(scope: &str, path: &Path) -> CmdResult {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                CommandError::user("io", format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        mediagit_repo::repo::write_atomic(path, b"")?;
    }
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| {
            CommandError::user(
                "editor-failed",
                format!("cannot start the editor `{editor}`: {e}"),
            )
        })?;
    if !status.success() {
        return Err(CommandError::user(
            "editor-failed",
            format!("the editor `{editor}` failed ({status})"),
        ));
    }
    let text = read(path)?;
    match invalid(scope, &text) {
        Some(e) => Err(CommandError::user(
            "config-invalid",
            format!("{} is not valid now: {e}", path.display()),
        )
        .with_hint(
            "run `mediagit config --edit` again to fix it; MediaGit refuses the file until then",
        )),
        None => Ok(()),
    }
}
