//! Lockable files: `[locks] patterns` in a working tree's config.toml
//! makes matching files read-only there until this working tree holds
//! their lock on a server (as Git LFS's lockable files do), so that nobody
//! starts editing a Photoshop file, which cannot be merged, without
//! taking its lock first.
//!
//! Why here and not in the CLI: every command that writes files (checkout,
//! switch, pull, restore, clone) goes through [`crate::checkout`], which
//! asks [`Lockable::read_only`] for the mode of each file it writes. The
//! locks themselves live on the server; this module only keeps the list
//! of paths this working tree holds (`locks-held` in `.mediagit/`, written
//! by the CLI after `lock` and `unlock` succeed) and sets permissions.
//!
//! Permissions never follow a symbolic link and never reach beyond a
//! symlinked directory: only regular files of the working tree change.
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::error::{RepoError, Result};
use crate::repo::write_atomic;
use crate::worktree::{open_beneath, stat_info};
use crate::Repository;

/// Most patterns `[locks]` may hold.
pub const MAX_PATTERNS: usize = 1_000;
/// Largest `locks-held` file read.
const MAX_HELD_BYTES: u64 = 16 << 20;
const HELD_FILE: &str = "locks-held";

/// Which files are written read-only.
#[derive(Debug)]
pub struct Lockable {
    matcher: Option<Gitignore>,
    held: BTreeSet<String>,
}

impl Lockable {
    /// No patterns: nothing is read-only.
    pub fn none() -> Lockable {
        Lockable {
            matcher: None,
            held: BTreeSet::new(),
        }
    }

    /// Compiles `patterns` (`.mediagitignore` syntax) for the working tree
    /// at `root`.
    pub fn new(root: &Path, patterns: &[String], held: BTreeSet<String>) -> Result<Lockable> {
        if patterns.is_empty() {
            return Ok(Lockable {
                matcher: None,
                held,
            });
        }
        if patterns.len() > MAX_PATTERNS {
            return Err(RepoError::Invalid(format!(
                "config.toml: locks.patterns holds {} patterns; at most {MAX_PATTERNS}",
                patterns.len()
            )));
        }
        let mut b = GitignoreBuilder::new(root);
        for p in patterns {
            b.add_line(None, p).map_err(|e| {
                RepoError::Invalid(format!("config.toml: locks.patterns: {p:?}: {e}"))
            })?;
        }
        let m = b
            .build()
            .map_err(|e| RepoError::Invalid(format!("config.toml: locks.patterns: {e}")))?;
        Ok(Lockable {
            matcher: Some(m),
            held,
        })
    }

    /// Whether `path` matches `[locks] patterns`.
    pub fn is_lockable(&self, path: &str) -> bool {
        self.matcher
            .as_ref()
            .is_some_and(|m| m.matched_path_or_any_parents(path, false).is_ignore())
    }

    /// Whether `path` is written read-only: lockable and not held here.
    pub fn read_only(&self, path: &str) -> bool {
        self.is_lockable(path) && !self.held.contains(path)
    }

    /// The paths this working tree holds locks on.
    pub fn held(&self) -> &BTreeSet<String> {
        &self.held
    }
}

/// What [`Repository::set_locks_held`] and [`Repository::apply_lockable`]
/// changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PermissionChanges {
    /// Files made read-only.
    pub read_only: Vec<String>,
    /// Files made writable (by their owner).
    pub writable: Vec<String>,
}

impl Repository {
    /// The paths `locks-held` lists (none when there is no such file).
    fn read_held(&self) -> Result<BTreeSet<String>> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.workspace()?.dir().join(HELD_FILE);
        let fix = "it lists the file locks this working tree holds: delete it, then `mediagit lock PATH` again for those you hold";
        // Non-blocking: a FIFO put there cannot hang the command; not
        // through a link.
        let f = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(RepoError::io("read", &path, e)),
        };
        let m = f.metadata().map_err(|e| RepoError::io("stat", &path, e))?;
        if !m.is_file() {
            return Err(RepoError::Invalid(format!(
                "{} is not a regular file ({fix})",
                path.display()
            )));
        }
        let len = m.len();
        if len > MAX_HELD_BYTES {
            return Err(RepoError::Invalid(format!(
                "{}: {len} bytes; at most {MAX_HELD_BYTES}",
                path.display()
            )));
        }
        let list: Vec<String> = serde_json::from_reader(std::io::BufReader::new(f))
            .map_err(|e| RepoError::Invalid(format!("{}: {e} ({fix})", path.display())))?;
        Ok(list.into_iter().collect())
    }

    /// Which files checkouts write read-only here (see the module docs).
    pub fn lockable(&self) -> Result<Lockable> {
        let patterns = &self.config().locks.patterns;
        let Some(root) = self.workspace_opt().and_then(|w| w.worktree().ok()) else {
            return Ok(Lockable::none());
        };
        if patterns.is_empty() {
            return Ok(Lockable::none());
        }
        Lockable::new(root, patterns, self.read_held()?)
    }

    /// Records that this working tree now holds (`held`) or no longer
    /// holds the locks of `paths`, and makes those files writable or, when
    /// lockable, read-only again.
    pub fn set_locks_held(&self, paths: &[String], held: bool) -> Result<PermissionChanges> {
        let ws = self.workspace()?;
        let _lock = ws.lock()?;
        let mut set = self.read_held()?;
        for p in paths {
            if held {
                set.insert(p.clone());
            } else {
                set.remove(p);
            }
        }
        let list: Vec<&String> = set.iter().collect();
        let bytes = serde_json::to_vec(&list)
            .map_err(|e| RepoError::Invalid(format!("locks-held: {e}")))?;
        write_atomic(&ws.dir().join(HELD_FILE), &bytes)?;
        let root = ws.worktree()?;
        let lockable = Lockable::new(root, &self.config().locks.patterns, set)?;
        self.set_modes(&lockable, None, paths.iter().map(String::as_str))
    }

    /// Sets the permissions of every tracked file by `[locks] patterns`
    /// after they changed from `previous`: lockable files not held here
    /// read-only; held ones, and those only `previous` made lockable,
    /// writable. Other files are left as they are.
    pub fn apply_lockable(&self, previous: &[String]) -> Result<PermissionChanges> {
        let lockable = self.lockable()?;
        let ws = self.workspace()?;
        let before = Lockable::new(ws.worktree()?, previous, BTreeSet::new())?;
        let _lock = ws.lock()?;
        let idx = ws.load_index()?;
        let paths: Vec<String> = idx.entries.keys().cloned().collect();
        self.set_modes(&lockable, Some(&before), paths.iter().map(String::as_str))
    }

    /// Makes each of `paths` (that is a regular file) read-only or writable
    /// as `lockable` says; files neither lockable nor held keep their mode
    /// (unless `before` made them lockable: writable again). Index entries
    /// of files that were unchanged get the new status-change time, so
    /// `status` does not rehash them. The caller holds the lock.
    fn set_modes<'a>(
        &self,
        lockable: &Lockable,
        before: Option<&Lockable>,
        paths: impl Iterator<Item = &'a str>,
    ) -> Result<PermissionChanges> {
        let ws = self.workspace()?;
        let root = ws.worktree()?;
        let mut idx = ws.load_index()?;
        let mut out = PermissionChanges::default();
        let mut restat = false;
        for p in paths {
            let ro = lockable.read_only(p);
            let was = before.is_some_and(|b| b.is_lockable(p));
            if !ro && !lockable.held.contains(p) && !was {
                continue;
            }
            // Opened beneath the root without following a link at any
            // level (a folder swapped for a link to outside the tree since
            // the last look is refused), then changed through the handle.
            let abs = root.join(p);
            let Ok(f) = open_beneath(root, p) else {
                continue;
            };
            let m = f.metadata().map_err(|e| RepoError::io("stat", &abs, e))?;
            if !m.is_file() {
                continue;
            }
            let mode = m.permissions().mode() & 0o7777;
            let new = if ro { mode & !0o222 } else { mode | 0o200 };
            if new == mode {
                continue;
            }
            f.set_permissions(fs::Permissions::from_mode(new))
                .map_err(|e| RepoError::io("set permissions of", &abs, e))?;
            if ro {
                out.read_only.push(p.to_string());
            } else {
                out.writable.push(p.to_string());
            }
            if let Some(e) = idx.entries.get(p) {
                if e.stat == stat_info(&m) {
                    let after = f
                        .metadata()
                        .map_err(|err| RepoError::io("stat", &abs, err))?;
                    let mut e = e.clone();
                    e.stat = stat_info(&after);
                    idx.entries.insert(e);
                    restat = true;
                }
            }
        }
        if restat {
            ws.save_index(&mut idx, &self.codec())?;
        }
        Ok(out)
    }
}
