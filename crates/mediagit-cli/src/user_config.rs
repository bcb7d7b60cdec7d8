//! The user's own settings: `$XDG_CONFIG_HOME/mediagit/config.toml`
//! (default `~/.config/mediagit/config.toml`). Unlike a repository's
//! `.mediagit/config.toml`, nobody else can write it, so it is where trust
//! decisions live: which repositories owned by other users may be opened.
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

/// The user's settings (defaults when there is no file).
fn load() -> Result<UserConfig, CommandError> {
    let Some(p) = path() else {
        return Ok(UserConfig::default());
    };
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
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
