//! The user's own settings: `$XDG_CONFIG_HOME/mediagit/config.toml`
//! (default `~/.config/mediagit/config.toml`). Unlike a repository's
//! `.mediagit/config.toml`, nobody else can write it, so it is where trust
//! decisions live: which repositories owned by other users may be opened.
//! (Checked: a file, or a folder it is in, that another user owns or can
//! write is ignored with a warning.)
//!
//! ```toml
//! [safe]
//! directories = ["/srv/projects/film", "/mnt/shared/photos"]   # or ["*"]
//!
//! [core]
//! pager = "less -S"   # for log, show, diff, reflog; "" or "cat": none
//!
//! [author]            # under a repository's own [author] and the environment
//! name = "Ann Editor"
//! email = "ann@example.com"
//! ```
use std::path::PathBuf;

use mediagit_repo::SafeDirectories;

use crate::command_error::CommandError;

/// Where the user's settings are read from.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("mediagit").join("config.toml"))
}

/// [`path`] for messages.
pub fn describe_path() -> String {
    path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.config/mediagit/config.toml".into())
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UserConfig {
    #[serde(default)]
    safe: Safe,
    #[serde(default)]
    core: Core,
    #[serde(default)]
    author: Author,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Core {
    /// The pager for `log`, `show`, `diff` and `reflog` (docs/CLI.md).
    pager: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Author {
    name: Option<String>,
    email: Option<String>,
}

/// Whether `text` is a valid settings file (`mediagit config` checks each
/// change before it writes it).
pub fn check(text: &str) -> Result<(), String> {
    toml::from_str::<UserConfig>(text)
        .map(|_| ())
        .map_err(|e| e.message().to_string())
}

/// `[author] name` and `email`: used when neither the environment nor the
/// repository gives them.
pub fn author() -> Result<(Option<String>, Option<String>), CommandError> {
    let a = load()?.author;
    Ok((a.name, a.email))
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Safe {
    #[serde(default)]
    directories: Vec<PathBuf>,
}

/// The `[safe] directories` setting (empty when there is no file).
pub fn safe_directories() -> Result<SafeDirectories, CommandError> {
    Ok(SafeDirectories {
        directories: load()?.safe.directories,
    })
}

/// The `[core] pager` setting.
pub fn pager() -> Result<Option<String>, CommandError> {
    Ok(load()?.core.pager)
}

/// Why the settings file at `p` (metadata `m`, of where a link leads) is
/// not this user's alone: another user (but root) owns it, or others can
/// write it or the folder it is in (mode bits or an ACL naming another
/// user; a folder with the sticky bit keeps others from replacing it).
fn not_yours(p: &std::path::Path, m: &std::fs::Metadata) -> Option<String> {
    use mediagit_storage::permissions::{others_can_write, GroupRule, Writers};
    use std::os::unix::fs::MetadataExt;
    let w = Writers::me(GroupRule::Mine);
    if m.uid() != w.uid && m.uid() != 0 {
        return Some(format!("it belongs to uid {}", m.uid()));
    }
    if let Ok(Some(why)) = others_can_write(p, m, true, w) {
        return Some(why);
    }
    // Resolved by hand, one name at a time, links included (at most 40):
    // every folder a name is looked up in and every link met on the way
    // must be the user's or root's, and no such folder writable by others
    // without the sticky bit (whoever may replace one of its entries, or
    // owns a link, decides what is read).
    let named = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    let mut todo: std::collections::VecDeque<std::ffi::OsString> = named
        .components()
        .skip(1)
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    let mut cur = std::path::PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == "." {
            continue;
        }
        if name == ".." {
            cur.pop();
            continue;
        }
        let dm = std::fs::metadata(&cur).ok()?;
        if dm.uid() != w.uid && dm.uid() != 0 {
            return Some(format!(
                "the folder {} belongs to uid {}",
                cur.display(),
                dm.uid()
            ));
        }
        if let Ok(Some(why)) = others_can_write(&cur, &dm, true, w) {
            if dm.mode() & 0o1000 == 0 {
                return Some(format!("the folder {}: {why}", cur.display()));
            }
        }
        let next = cur.join(&name);
        let lm = std::fs::symlink_metadata(&next).ok()?;
        if !lm.file_type().is_symlink() {
            cur = next;
            continue;
        }
        if lm.uid() != w.uid && lm.uid() != 0 {
            return Some(format!(
                "the link {} belongs to uid {}",
                next.display(),
                lm.uid()
            ));
        }
        links += 1;
        if links > 40 {
            return Some("too many links on the way to it".into());
        }
        let target = std::fs::read_link(&next).ok()?;
        if target.is_absolute() {
            cur = std::path::PathBuf::from("/");
        }
        for c in target.components().rev() {
            if !matches!(c, std::path::Component::RootDir) {
                todo.push_front(c.as_os_str().to_os_string());
            }
        }
    }
    None
}

/// The user's settings (defaults when there is no file).
fn load() -> Result<UserConfig, CommandError> {
    let Some(p) = path() else {
        return Ok(UserConfig::default());
    };
    // Through a link (dotfiles kept elsewhere), never a FIFO.
    let opened = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
    };
    let text = match opened.and_then(|f| {
        let m = f.metadata()?;
        if !m.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a regular file",
            ));
        }
        Ok((f, m))
    }) {
        Ok((f, m)) => {
            // It decides which repositories are trusted and what runs as
            // the pager: one another user owns or can write is theirs.
            if let Some(why) = not_yours(&p, &m) {
                static WARNED: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!(
                        "warning: your settings {} are not yours alone ({why}); ignoring them",
                        p.display()
                    );
                }
                return Ok(UserConfig::default());
            }
            let mut text = String::new();
            use std::io::Read;
            f.take(mediagit_repo::repo::MAX_CONFIG_BYTES)
                .read_to_string(&mut text)
                .map_err(|e| {
                    CommandError::user(
                        "config-unreadable",
                        format!("cannot read your settings {}: {e}", p.display()),
                    )
                })?;
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UserConfig::default()),
        // Run as another user with this HOME (sudo, setpriv): as if there
        // were no settings, which trusts nothing more (as Git does).
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!(
                "warning: cannot read your settings {}: {e}; ignoring them",
                p.display()
            );
            return Ok(UserConfig::default());
        }
        Err(e) => {
            return Err(CommandError::user(
                "config-unreadable",
                format!("cannot read your settings {}: {e}", p.display()),
            ))
        }
    };
    toml::from_str(&text).map_err(|e| {
        CommandError::user("config-invalid", format!("{}: {}", p.display(), e.message())).with_hint(
            "the file holds `[safe] directories = [\"/path/to/repo\"]`, `[core] pager = \"less -S\"` and `[author] name = ...`, `email = ...`; `mediagit config --global --edit` opens it",
        )
    })
}
