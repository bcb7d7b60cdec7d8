//! Where the hosted repositories are: a directory (each repository a bare
//! repository at `DIR/NAME`) or an object-store prefix (each repository a
//! store at `PREFIX/NAME`). A repository is its storage keys and nothing
//! else: the server keeps no state of its own, so several servers on one
//! bucket serve the same repositories.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mediagit_format::config::StorageConfig;
use mediagit_protocol::wire::check_repo_name;
use mediagit_storage::{CloudEnv, LocalBackend, Storage, StorageError};

/// Most opened repositories kept (their backends are cheap to open
/// again; this only saves connecting per request).
const MAX_OPEN: usize = 4096;

#[derive(Debug, Clone)]
pub enum Hosting {
    /// `--root DIR`.
    Root(PathBuf),
    /// `--storage URL`.
    Store {
        config: StorageConfig,
        env: CloudEnv,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum HostingError {
    #[error("repository name {name:?}: {why}")]
    BadName { name: String, why: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Repo(String),
}

/// Opens (and keeps) the storage of each repository.
pub struct Repos {
    hosting: Hosting,
    open: Mutex<HashMap<String, Arc<dyn Storage>>>,
    /// A temporary directory for uploads on the server's disk.
    tmp: PathBuf,
}

impl Repos {
    pub fn new(hosting: Hosting, tmp: PathBuf) -> Repos {
        Repos {
            hosting,
            open: Mutex::new(HashMap::new()),
            tmp,
        }
    }

    pub fn hosting(&self) -> &Hosting {
        &self.hosting
    }

    /// Where uploads are spooled before they are stored: inside the root
    /// (so a local store renames them into place), else the temporary
    /// directory given.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    pub fn open_count(&self) -> usize {
        self.open.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// The storage of repository `name` (which need not exist yet).
    pub fn storage(&self, name: &str) -> Result<Arc<dyn Storage>, HostingError> {
        check_repo_name(name).map_err(|why| HostingError::BadName {
            name: name.to_string(),
            why: why.to_string(),
        })?;
        // Checked on every request, not only the first: a repository
        // replaced by a link since would otherwise still be served (its
        // backend also refuses files opened outside where it was).
        if let Hosting::Root(root) = &self.hosting {
            check_no_symlink(root, name)?;
        }
        if let Ok(m) = self.open.lock() {
            if let Some(s) = m.get(name) {
                return Ok(s.clone());
            }
        }
        let s: Arc<dyn Storage> = match &self.hosting {
            // Where NAME is below the root by name: a directory swapped
            // for a link before this first request is refused too.
            Hosting::Root(root) => Arc::new(LocalBackend::refusing_links_below(root, name)),
            Hosting::Store { config, env } => {
                let mut sc = config.clone();
                sc.prefix = match sc.prefix.trim_end_matches('/') {
                    "" => name.to_string(),
                    p => format!("{p}/{name}"),
                };
                mediagit_repo::repo::open_storage(Path::new("."), Some(&sc), env)
                    .map_err(|e| HostingError::Repo(e.to_string()))?
            }
        };
        if let Ok(mut m) = self.open.lock() {
            if m.len() >= MAX_OPEN {
                m.clear();
            }
            m.insert(name.to_string(), s.clone());
        }
        Ok(s)
    }

    /// Whether repository `name` exists (its `config.toml` is stored).
    pub fn exists(&self, storage: &dyn Storage) -> Result<bool, HostingError> {
        Ok(storage.size("config.toml")?.is_some())
    }

    /// Before a repository is created at `name`: no repository may hold
    /// it (a name inside another repository would put keys among that
    /// one's), and, under a root, no part of the path may be a symlink.
    pub fn check_creatable(&self, name: &str) -> Result<(), HostingError> {
        let parts: Vec<&str> = name.split('/').collect();
        for i in 1..parts.len() {
            let outer = parts[..i].join("/");
            let s = self.storage(&outer)?;
            if self.exists(s.as_ref())? {
                return Err(HostingError::BadName {
                    name: name.to_string(),
                    why: format!("it is inside repository {outer}"),
                });
            }
        }
        // Nor may it hold one (`outer` around an existing `outer/inner`).
        let here = self.storage(name)?;
        if let Some(inner) = here
            .list("")?
            .into_iter()
            .find_map(|k| k.strip_suffix("/config.toml").map(str::to_string))
        {
            return Err(HostingError::BadName {
                name: name.to_string(),
                why: format!("repository {name}/{inner} is inside it"),
            });
        }
        if let Hosting::Root(root) = &self.hosting {
            check_no_symlink(root, name)?;
            // Made by handles opened one inside the other, never through
            // a link (one planted in the new directory, or swapped in for
            // a part of NAME meanwhile, fails the creation).
            let dir = LocalBackend::refusing_links_below(root, name);
            dir.make_dirs("")?;
            // The layout of a bare repository, so that server-side
            // commands (fsck, gc) find one even if the push that creates
            // it stops before its first ref.
            for sub in ["refs/heads", "refs/tags", "packs"] {
                dir.make_dirs(sub)?;
            }
            // Again, now that the folders are there: one someone else
            // made between the first check and the creation is refused
            // before anything is stored in it.
            check_no_symlink(root, name)?;
        }
        Ok(())
    }
}

/// No part of `root/name` that exists is a symlink (a repository is
/// never served from outside the root, whatever is put inside it).
/// Why a folder on the way to a repository is not the server's to serve:
/// one another user owns (or others can write) could have its repository
/// swapped, under the same name and rights, for whatever that user likes
/// (a folder made before the first push to a name below it is theirs).
/// Owned by the server's user or by root, written by them and, at most,
/// the server's own group (mode bits and POSIX ACL entries alike).
pub fn not_the_servers(path: &Path, m: &std::fs::Metadata) -> Option<String> {
    use mediagit_storage::permissions::{others_can_write, Writers};
    use std::os::unix::fs::MetadataExt;
    let w = Writers::me_and_my_group();
    if m.uid() != w.uid && m.uid() != 0 {
        return Some(format!(
            "a folder of it belongs to another user (uid {})",
            m.uid()
        ));
    }
    match others_can_write(path, m, false, w) {
        Ok(None) => None,
        Ok(Some(why)) => Some(format!("a folder of it is not the server's alone: {why}")),
        Err(e) => Some(format!("the rights of a folder of it do not read: {e}")),
    }
}

fn check_no_symlink(root: &Path, name: &str) -> Result<(), HostingError> {
    let mut p = root.to_path_buf();
    for part in name.split('/') {
        p.push(part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(HostingError::BadName {
                    name: name.to_string(),
                    why: "a part of it is a symlink on the server (not served)".into(),
                })
            }
            Ok(m) if !m.is_dir() => {
                return Err(HostingError::BadName {
                    name: name.to_string(),
                    why: "a part of it is a file on the server".into(),
                })
            }
            Ok(m) => {
                if let Some(why) = not_the_servers(&p, &m) {
                    return Err(HostingError::BadName {
                        name: name.to_string(),
                        why: format!("{why} (not served)"),
                    });
                }
            }
            Err(_) => break,
        }
    }
    Ok(())
}
