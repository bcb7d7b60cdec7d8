//! Opening, creating and locking a repository.
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use mediagit_format::RepoConfig;
use mediagit_storage::{LocalBackend, Storage};

use crate::error::{RepoError, Result};
use crate::odb::Odb;

/// Name of the repository directory inside a working tree.
pub const DOT_DIR: &str = ".mediagit";

/// An open repository: its directory, config, storage and object database.
pub struct Repository {
    worktree: Option<PathBuf>,
    dir: PathBuf,
    config: RepoConfig,
    storage: Arc<dyn Storage>,
    odb: OnceLock<Odb>,
}

#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub bare: bool,
    /// Name of the first branch; `main` if `None`.
    pub initial_branch: Option<String>,
}

impl Repository {
    /// Creates a repository at `path` (`path/.mediagit`, or `path` itself if bare).
    pub fn init(path: &Path, opts: &InitOptions) -> Result<Repository> {
        let branch = opts.initial_branch.clone().unwrap_or_else(|| "main".into());
        crate::refs::validate_ref_name("branch", &branch)?;
        fs::create_dir_all(path).map_err(|e| RepoError::io("create directory", path, e))?;
        let path = path
            .canonicalize()
            .map_err(|e| RepoError::io("resolve", path, e))?;
        let dir = if opts.bare {
            path.clone()
        } else {
            path.join(DOT_DIR)
        };
        if dir.join("config.toml").exists() {
            return Err(RepoError::AlreadyExists { path: dir });
        }
        for sub in ["refs/heads", "refs/tags", "packs", "logs", "tmp"] {
            fs::create_dir_all(dir.join(sub))
                .map_err(|e| RepoError::io("create directory", dir.join(sub), e))?;
        }
        let config = RepoConfig::new(opts.bare);
        write_atomic(
            &dir.join("HEAD"),
            format!("ref: refs/heads/{branch}\n").as_bytes(),
        )?;
        // The config is written last: its presence is what makes a repository.
        write_atomic(&dir.join("config.toml"), config.to_toml().as_bytes())?;
        Repository::open_dir(&dir, if opts.bare { None } else { Some(path) })
    }

    /// Finds the repository containing `start` (or a parent of it).
    pub fn discover(start: &Path) -> Result<Repository> {
        let start = start
            .canonicalize()
            .map_err(|e| RepoError::io("resolve", start, e))?;
        let mut cur: Option<&Path> = Some(&start);
        while let Some(dir) = cur {
            let dot = dir.join(DOT_DIR);
            if dot.join("config.toml").is_file() {
                return Repository::open_dir(&dot, Some(dir.to_path_buf()));
            }
            if dir.join("config.toml").is_file()
                && dir.join("HEAD").is_file()
                && dir.join("refs").is_dir()
            {
                return Repository::open_dir(dir, None);
            }
            cur = dir.parent();
        }
        Err(RepoError::NotARepository { path: start })
    }

    fn open_dir(dir: &Path, worktree: Option<PathBuf>) -> Result<Repository> {
        let cfg_path = dir.join("config.toml");
        let text =
            fs::read_to_string(&cfg_path).map_err(|e| RepoError::io("read", &cfg_path, e))?;
        let config = RepoConfig::from_toml(&text)
            .map_err(|e| RepoError::format(cfg_path.display().to_string(), e))?;
        let worktree = if config.core.bare { None } else { worktree };
        let storage: Arc<dyn Storage> = Arc::new(LocalBackend::new(dir));
        Ok(Repository {
            worktree,
            dir: dir.to_path_buf(),
            config,
            storage,
            odb: OnceLock::new(),
        })
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The `.mediagit` directory (the repository itself when bare).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_bare(&self) -> bool {
        self.worktree.is_none()
    }

    /// The working tree root, or an error for a bare repository.
    pub fn worktree(&self) -> Result<&Path> {
        self.worktree.as_deref().ok_or(RepoError::Bare)
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn odb(&self) -> Result<&Odb> {
        if let Some(o) = self.odb.get() {
            return Ok(o);
        }
        let o = Odb::load(self.storage.clone(), self.dir.join("tmp"), &self.config)?;
        Ok(self.odb.get_or_init(|| o))
    }

    /// Takes the repository lock, failing at once if another process holds it.
    pub fn lock(&self) -> Result<RepoLock> {
        RepoLock::acquire(&self.dir)
    }

    /// Converts a user-supplied path (relative to `cwd`) into a repository path
    /// (`/`-separated, relative to the worktree root; `""` for the root).
    pub fn repo_path(&self, cwd: &Path, user: &Path) -> Result<String> {
        let root = self.worktree()?;
        let abs = if user.is_absolute() {
            user.to_path_buf()
        } else {
            cwd.join(user)
        };
        let norm = normalize(&abs);
        // Resolve symlinks in the parent (not the last component, which may be a link itself).
        let norm = match (norm.parent(), norm.file_name()) {
            (Some(p), Some(name)) => match p.canonicalize() {
                Ok(p) => p.join(name),
                Err(_) => norm.clone(),
            },
            _ => norm.clone(),
        };
        let rel = norm
            .strip_prefix(root)
            .map_err(|_| RepoError::PathOutsideRepo {
                path: user.to_path_buf(),
                root: root.to_path_buf(),
            })?;
        let mut parts = Vec::new();
        for c in rel.components() {
            let s = c
                .as_os_str()
                .to_str()
                .ok_or_else(|| RepoError::NonUtf8Path {
                    path: user.to_path_buf(),
                })?;
            parts.push(s.to_string());
        }
        if parts.first().map(|s| s == DOT_DIR).unwrap_or(false) {
            return Err(RepoError::Invalid(format!(
                "{} is inside the repository's own {DOT_DIR} directory",
                user.display()
            )));
        }
        Ok(parts.join("/"))
    }
}

/// Removes `.` and `..` components lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Writes a small local file atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| RepoError::io("create temp file in", dir, e))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| RepoError::io("write", path, e))?;
    crate::failpoint::hit("write:atomic-before-rename");
    tmp.persist(path)
        .map_err(|e| RepoError::io("rename into place", path, e.error))?;
    mediagit_storage::local_backend::sync_dir(dir).map_err(|e| RepoError::io("fsync", dir, e))?;
    crate::failpoint::hit("write:atomic-done");
    Ok(())
}

/// The exclusive repository lock (an `flock` on `.mediagit/lock`). Released
/// when dropped, and by the kernel if the process dies.
pub struct RepoLock {
    _file: File,
}

impl RepoLock {
    fn acquire(dir: &Path) -> Result<RepoLock> {
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| RepoError::io("open lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(RepoError::Locked {
                    path,
                    holder: if holder.is_empty() {
                        "unknown process".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(RepoError::io("lock", &path, e)),
        }
        let _ = file.set_len(0);
        let _ = file.write_all(format!("pid {}", std::process::id()).as_bytes());
        // Whatever a crashed process left in tmp/ is garbage now: nobody else
        // can be writing while we hold the lock.
        if let Ok(rd) = fs::read_dir(dir.join("tmp")) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(RepoLock { _file: file })
    }
}
