//! `clone` from a repository on a local path.
//!
//! Packs and pack indexes are immutable, so they are hard-linked when source
//! and destination share a filesystem (as `git clone` does locally) and
//! streamed otherwise; refs are copied by compare-and-swap; then HEAD's branch
//! is checked out. Remotes (fetch/push) come with the server; until then a
//! clone copies every branch and tag as local refs.
use std::path::Path;

use mediagit_format::{ObjectId, Signature};
use mediagit_storage::Storage;

use crate::checkout::CheckoutTarget;
use crate::error::{RepoError, Result};
use crate::progress::Progress;
use crate::refs::{Head, ReflogEntry};
use crate::repo::{write_atomic, InitOptions, Repository};

#[derive(Debug, Default)]
pub struct CloneOutcome {
    pub packs: usize,
    pub linked: usize,
    pub refs: usize,
    pub branch: Option<String>,
    pub files: usize,
    pub bytes: u64,
}

/// Copies one immutable object between stores: a hard link or a streamed copy.
fn copy_object(src: &dyn Storage, dst: &dyn Storage, key: &str, tmp_dir: &Path) -> Result<bool> {
    if let (Some(from), Some(to)) = (src.local_path(key), dst.local_path(key)) {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| RepoError::io("create directory", parent, e))?;
        }
        if std::fs::hard_link(&from, &to).is_ok() {
            return Ok(true);
        }
    }
    let size = src
        .size(key)?
        .ok_or_else(|| mediagit_storage::StorageError::NotFound {
            backend: src.describe(),
            key: key.into(),
        })?;
    std::fs::create_dir_all(tmp_dir).map_err(|e| RepoError::io("create directory", tmp_dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir)
        .map_err(|e| RepoError::io("create temp file in", tmp_dir, e))?;
    let mut buf = vec![0u8; 8 << 20];
    let mut off = 0u64;
    while off < size {
        let n = (size - off).min(buf.len() as u64) as usize;
        src.read_at(key, off, &mut buf[..n])?;
        std::io::Write::write_all(&mut tmp, &buf[..n])
            .map_err(|e| RepoError::io("write", tmp.path(), e))?;
        off += n as u64;
    }
    let path = tmp.into_temp_path();
    dst.put_file(key, &path)?;
    let _ = path.keep();
    Ok(false)
}

impl Repository {
    /// Clones the repository at `src` into a new working tree at `dest`.
    /// On failure nothing is left behind: a directory it created is removed.
    pub fn clone_local(
        src: &Path,
        dest: &Path,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<(Repository, CloneOutcome)> {
        // Decided before anything is written: only a directory this clone
        // creates, or one that was empty, is cleaned up after a failure.
        let existed = dest.exists();
        let was_empty = existed
            && std::fs::read_dir(dest)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        let r = Repository::clone_into(src, dest, who, progress);
        if r.is_err() {
            if !existed {
                let _ = std::fs::remove_dir_all(dest);
            } else if was_empty {
                if let Ok(rd) = std::fs::read_dir(dest) {
                    for e in rd.flatten() {
                        let p = e.path();
                        let _ = if p.is_dir() && !p.is_symlink() {
                            std::fs::remove_dir_all(&p)
                        } else {
                            std::fs::remove_file(&p)
                        };
                    }
                }
            }
        }
        r
    }

    /// Clones the repository at `src` into a new working tree at `dest`.
    fn clone_into(
        src: &Path,
        dest: &Path,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<(Repository, CloneOutcome)> {
        let source = Repository::discover(src)?;
        if dest.exists()
            && std::fs::read_dir(dest)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(RepoError::Invalid(format!(
                "destination {} already exists and is not an empty directory",
                dest.display()
            )));
        }
        let head = source.head()?;
        let branch = match &head {
            Head::Branch(b) => b.clone(),
            Head::Detached(_) => "main".into(),
        };
        let repo = Repository::init(
            dest,
            &InitOptions {
                bare: false,
                initial_branch: Some(branch.clone()),
            },
        )?;
        // Same chunking and compression settings, so new content deduplicates
        // against the cloned content. (The config holds no paths.)
        let mut cfg = source.config().clone();
        cfg.core.bare = false;
        write_atomic(&repo.dir().join("config.toml"), cfg.to_toml().as_bytes())?;
        let repo = Repository::discover(dest)?;
        let _lock = repo.lock()?;
        let mut out = CloneOutcome::default();
        let (s, d) = (source.storage().clone(), repo.storage().clone());
        let keys = s.list("packs/")?;
        // Packs first, then their indexes (the write order of FORMAT.md §9).
        for key in keys
            .iter()
            .filter(|k| k.ends_with(".pack"))
            .chain(keys.iter().filter(|k| k.ends_with(".idx")))
        {
            if copy_object(s.as_ref(), d.as_ref(), key, &repo.dir().join("tmp"))? {
                out.linked += 1;
            }
            if key.ends_with(".pack") {
                out.packs += 1;
            }
        }
        for key in s.list("refs/")? {
            if let Some(id) = source.read_ref(&key)? {
                repo.cas_ref(&key, None, Some(id))?;
                out.refs += 1;
                if key.starts_with("refs/heads/") {
                    repo.append_reflog(
                        &key,
                        &ReflogEntry {
                            old: ObjectId::ZERO,
                            new: id,
                            who: who.clone(),
                            message: format!("clone: from {}", source.dir().display()),
                        },
                    )?;
                }
            }
        }
        drop(_lock);
        let target = match head {
            Head::Detached(id) => Some(CheckoutTarget::Detached(id)),
            Head::Branch(b) => repo
                .read_ref(&crate::refs::branch_ref(&b))?
                .map(|_| CheckoutTarget::Branch(b)),
        };
        if let Some(t) = target {
            let c = repo.checkout(&t, true, who, progress)?;
            out.files = c.written;
            out.bytes = c.bytes;
            if let CheckoutTarget::Branch(b) = t {
                out.branch = Some(b);
            }
        }
        Ok((repo, out))
    }
}
