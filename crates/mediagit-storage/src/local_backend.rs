//! Local filesystem backend: each key is a file under a root directory.
//!
//! Writes go to a temporary file in `<root>/tmp/`, are fsynced, renamed into
//! place, and the directory is fsynced: a crash leaves either the old state or
//! the new one, never a torn object.
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

use crate::backend::{validate_key, CasOutcome, Storage, StorageError};

/// How a backend refusing links opens a directory below its root: never
/// a link (`O_NOFOLLOW` on the last part; every part is opened this way
/// from its parent's handle), never blocking on a planted FIFO.
const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::RDONLY)
    .union(OFlags::NONBLOCK);

fn link_error(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} is a symbolic link (not followed)"),
    )
}

const MAX_OPEN: usize = 128;

/// The largest value a backend refusing links reads for compare-and-swap
/// (refs, HEAD, lock records and settings are far smaller).
const CAS_VALUE_MAX: u64 = 16 << 20;

pub struct LocalBackend {
    root: PathBuf,
    open: Mutex<HashMap<String, Arc<File>>>,
    /// Refuse every key whose path below the root passes through a
    /// symbolic link ([`LocalBackend::refusing_links`]): the root as it
    /// resolved then, which every file opened must still be below.
    no_links: Option<PathBuf>,
    /// For [`LocalBackend::refusing_links_below`]: the trusted directory
    /// (resolved) and the path below it, walked without following links
    /// whenever the root is opened.
    below: Option<(PathBuf, String)>,
}

/// Whether an error means "no such key": the file is missing, or a
/// leading directory of the key is a file (`refs/heads/main/x` while
/// `refs/heads/main` is a ref: found by fuzzing `resolve`).
fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// `path` with its deepest existing ancestor resolved and the rest
/// appended (the root of a repository a server is about to create).
fn canonical_prefix(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path.to_path_buf();
    loop {
        if let Ok(mut c) = fs::canonicalize(&at) {
            for part in rest.iter().rev() {
                c.push(part);
            }
            return c;
        }
        match (at.file_name().map(|n| n.to_os_string()), at.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n);
                at = p.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend {
            root: root.into(),
            open: Mutex::new(HashMap::new()),
            no_links: None,
            below: None,
        }
    }

    /// A backend refusing links ([`LocalBackend::refusing_links`]) whose
    /// root is `rel` (`team/film`) below the trusted directory `base` (a
    /// server's `--root`): the root is where `rel` is below `base` *by
    /// name*, never where a link put there sends it, from the first
    /// request on (a repository directory swapped for a link before the
    /// backend is made is refused too); the root and the directories on
    /// the way to it are opened, and made, without following a link.
    pub fn refusing_links_below(base: &Path, rel: &str) -> LocalBackend {
        let canon = fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
        let rel = rel.trim_matches('/').to_string();
        LocalBackend {
            root: base.join(&rel),
            open: Mutex::new(HashMap::new()),
            no_links: Some(canon.join(&rel)),
            below: Some((canon, rel)),
        }
    }

    /// Makes the directory `rel` below the root (and the root); for a
    /// backend refusing links, never through one.
    pub fn make_dirs(&self, rel: &str) -> Result<(), StorageError> {
        let r = if self.no_links.is_some() {
            self.walk_dirs(rel, true).map(|_| ())
        } else {
            fs::create_dir_all(self.root.join(rel))
        };
        r.map_err(|e| self.io("create directory", rel, e))
    }

    /// A backend that never follows a symbolic link below its root: a key
    /// whose file, or any directory on the way to it, is a link is refused
    /// (a server must not serve `/etc/...` through a link planted in a
    /// repository it hosts). A repository of one's own may keep its packs
    /// on another disk through a link; a server's may not. Besides the
    /// check of each part of a key's path, every file opened is checked
    /// (through `/proc/self/fd`) to be below the root as it resolved here,
    /// so a directory swapped for a link between the check and the open
    /// is refused too; a link is no key (reads find nothing, listings
    /// leave it out). Writes, deletes, listings and the compare-and-swap
    /// lock go by directory handles opened one inside the other from the
    /// root (`openat` with `O_NOFOLLOW`, then `renameat`/`unlinkat`), so
    /// no swap at any moment makes them act outside the root: a write
    /// through a linked directory fails, and a key that is itself a link
    /// is replaced or removed as a link, never what it points to. Such a
    /// backend gives no [`Storage::local_path`].
    pub fn refusing_links(mut self) -> LocalBackend {
        self.no_links = Some(canonical_prefix(&self.root));
        self
    }

    /// Whether the open file `f` is below the root (always, for a
    /// backend that follows links, or where `/proc` cannot say).
    fn inside(&self, f: &impl AsRawFd) -> bool {
        let Some(root) = &self.no_links else {
            return true;
        };
        match fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())) {
            Ok(p) => p.starts_with(root),
            Err(_) => true,
        }
    }

    /// The root, opened, for a backend refusing links: still the
    /// directory it resolved to when the backend was made (a repository
    /// directory swapped for a link since is refused). `create` makes it
    /// first if it is missing.
    fn root_fd(&self, create: bool) -> io::Result<OwnedFd> {
        let fd = match &self.below {
            Some((base, rel)) => {
                let mut fd =
                    rustix::fs::openat(CWD, base, DIR_FLAGS - OFlags::NOFOLLOW, Mode::empty())?;
                for part in rel.split('/').filter(|p| !p.is_empty()) {
                    fd = Self::open_sub(&fd, part, create)?;
                }
                fd
            }
            None => {
                if create {
                    fs::create_dir_all(&self.root)?;
                }
                rustix::fs::openat(CWD, &self.root, DIR_FLAGS - OFlags::NOFOLLOW, Mode::empty())?
            }
        };
        let same = match (
            &self.no_links,
            fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        ) {
            (Some(root), Ok(p)) => &p == root,
            _ => true,
        };
        if !same {
            return Err(link_error("the root"));
        }
        Ok(fd)
    }

    /// Opens the directories of `rel` (`a/b`) one inside the other from
    /// the root, each by a handle to the one above and never through a
    /// link, so no swap of a directory for a link at any moment sends a
    /// write or delete outside the root. `create` makes missing ones.
    /// Returns the handles, the root's first.
    fn walk_dirs(&self, rel: &str, create: bool) -> io::Result<Vec<OwnedFd>> {
        let mut fds = vec![self.root_fd(create)?];
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            let at = fds.last().expect("the root is there");
            let fd = Self::open_sub(at, part, create)?;
            fds.push(fd);
        }
        Ok(fds)
    }

    /// Opens the directory `part` in `at` (making it first if `create`),
    /// never through a link.
    fn open_sub(at: &OwnedFd, part: &str, create: bool) -> io::Result<OwnedFd> {
        if create {
            // 0755: a server's repositories are its own to write, whatever
            // its umask (a folder others can write lets them plant links
            // for the commands an admin runs there).
            match rustix::fs::mkdirat(at, part, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        rustix::fs::openat(at, part, DIR_FLAGS, Mode::empty()).map_err(|e| match e {
            // (O_DIRECTORY | O_NOFOLLOW on a link fails with either.)
            Errno::LOOP => link_error(part),
            Errno::NOTDIR
                if rustix::fs::statat(at, part, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink) =>
            {
                link_error(part)
            }
            e => e.into(),
        })
    }

    /// [`Self::write_new`] for a backend refusing links: the temporary
    /// file is made in `tmp/` by a handle to it, and renamed from that
    /// handle to one of the key's directory.
    fn write_new_beneath(
        &self,
        key: &str,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<(), StorageError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let err = |e| self.io("create temp file for", key, e);
        let tmp = self.walk_dirs("tmp", true).map_err(err)?;
        let tmp = tmp.last().expect("tmp is there");
        let (name, mut file) = loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let name = format!(
                "put-{}-{}-{nanos:x}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            match rustix::fs::openat(
                tmp,
                name.as_str(),
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            ) {
                Ok(fd) => break (name, File::from(fd)),
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(err(e.into())),
            }
        };
        let r = write(&mut file)
            .and_then(|_| file.sync_all())
            .map_err(|e| self.io("write", key, e))
            .and_then(|_| self.install_beneath(key, tmp.as_fd(), Path::new(&name)));
        if r.is_err() {
            let _ = rustix::fs::unlinkat(tmp, name.as_str(), AtFlags::empty());
        }
        r
    }

    /// Renames `name` in the directory `from` to `key`, by handles to
    /// both directories (for a backend refusing links); the rename is
    /// durable when this returns.
    fn install_beneath(
        &self,
        key: &str,
        from: BorrowedFd<'_>,
        name: &Path,
    ) -> Result<(), StorageError> {
        let (parent, base) = key.rsplit_once('/').unwrap_or(("", key));
        let dirs = self
            .walk_dirs(parent, true)
            .map_err(|e| self.io("create directory for", key, e))?;
        let dir = dirs.last().expect("the root is there");
        rustix::fs::renameat(from, name, dir, base)
            .map_err(|e| self.io("rename into place", key, e.into()))?;
        rustix::fs::fsync(dir).map_err(|e| self.io("fsync directory of", key, e.into()))?;
        self.forget(key);
        Ok(())
    }

    /// [`Storage::delete`] for a backend refusing links: by handles to
    /// the key's directories, so a link swapped in anywhere on the way
    /// makes it delete nothing outside the root.
    fn delete_beneath(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        let (parent, base) = key.rsplit_once('/').unwrap_or(("", key));
        let dirs = match self.walk_dirs(parent, false) {
            Ok(d) => d,
            Err(e) if absent(&e) => return Ok(()),
            Err(e) => return Err(self.io("delete", key, e)),
        };
        let dir = dirs.last().expect("the root is there");
        match rustix::fs::unlinkat(dir, base, AtFlags::empty()) {
            Ok(()) => {}
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(self.io("delete", key, e.into())),
        }
        rustix::fs::fsync(dir).map_err(|e| self.io("fsync", key, e.into()))?;
        // Directories the removal left empty go too, each by its
        // parent's handle.
        let parts: Vec<&str> = parent.split('/').filter(|p| !p.is_empty()).collect();
        for i in (0..parts.len()).rev() {
            if rustix::fs::unlinkat(&dirs[i], parts[i], AtFlags::REMOVEDIR).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// [`Storage::list`] for a backend refusing links: every directory
    /// read by a handle opened from its parent's without following a
    /// link, so no swap lists names from outside the root.
    fn list_beneath(&self, prefix: &str, dir_part: &str) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        let start = match self.walk_dirs(dir_part, false) {
            Ok(mut d) => d.pop().expect("the root is there"),
            Err(e) if absent(&e) || e.kind() == io::ErrorKind::InvalidInput => return Ok(out),
            Err(e) => return Err(self.io("list", prefix, e)),
        };
        let mut stack = vec![(start, dir_part.to_string())];
        while let Some((fd, rel)) = stack.pop() {
            let dir = rustix::fs::Dir::new(fd).map_err(|e| self.io("list", prefix, e.into()))?;
            let at = dir.fd().map_err(|e| self.io("list", prefix, e.into()))?;
            let at = at
                .try_clone_to_owned()
                .map_err(|e| self.io("list", prefix, e))?;
            for ent in dir {
                let ent = ent.map_err(|e| self.io("list", prefix, e.into()))?;
                let Ok(name) = ent.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if name == "." || name == ".." || (rel.is_empty() && name == "tmp") {
                    continue;
                }
                let key = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                let mut kind = ent.file_type();
                if kind == FileType::Unknown {
                    kind = match rustix::fs::statat(&at, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) => FileType::from_raw_mode(st.st_mode),
                        Err(_) => continue,
                    };
                }
                match kind {
                    // A directory swapped for a link since it was read
                    // is not opened (ELOOP): left out.
                    FileType::Directory
                        if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) =>
                    {
                        if let Ok(sub) =
                            rustix::fs::openat(&at, name.as_str(), DIR_FLAGS, Mode::empty())
                        {
                            stack.push((sub, key));
                        }
                    }
                    FileType::RegularFile if key.starts_with(prefix) => out.push(key),
                    // Links are never read, so not listed; nor are
                    // sockets, FIFOs or devices.
                    _ => {}
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Opens `key` for reading; for a backend refusing links, never
    /// through one (a key behind a link is not found).
    fn open_read(&self, key: &str) -> Result<File, StorageError> {
        let not_found = || StorageError::NotFound {
            backend: self.describe(),
            key: key.into(),
        };
        let path = self.read_path(key)?;
        let mut o = OpenOptions::new();
        o.read(true);
        if self.no_links.is_some() {
            // (O_NONBLOCK: a FIFO planted as a key must not hang the
            // open; it changes nothing for a regular file.)
            use std::os::unix::fs::OpenOptionsExt;
            o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        let f = o.open(&path).map_err(|e| match e.raw_os_error() {
            // A link, a socket, a device without a driver: no key.
            Some(libc::ELOOP | libc::ENXIO | libc::ENODEV | libc::EOPNOTSUPP)
                if self.no_links.is_some() =>
            {
                not_found()
            }
            _ => self.io("open", key, e),
        })?;
        if self.no_links.is_some() {
            // Only files and directories are below the root as keys.
            let kind = f
                .metadata()
                .map_err(|e| self.io("stat", key, e))?
                .file_type();
            if !(kind.is_file() || kind.is_dir()) || !self.inside(&f) {
                return Err(not_found());
            }
        }
        Ok(f)
    }

    /// [`Self::path`] for reading: a key behind a link is not found.
    fn read_path(&self, key: &str) -> Result<PathBuf, StorageError> {
        match self.path(key) {
            Err(StorageError::Io { op: "refuse", .. }) => Err(StorageError::NotFound {
                backend: self.describe(),
                key: key.into(),
            }),
            r => r,
        }
    }

    /// The metadata of `key` (`None`: absent, a directory, or behind a
    /// link for a backend refusing links).
    fn key_metadata(&self, key: &str) -> Result<Option<fs::Metadata>, StorageError> {
        let m = if self.no_links.is_some() {
            match self.open_read(key) {
                Ok(f) => f.metadata(),
                Err(StorageError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e),
            }
        } else {
            fs::metadata(self.path(key)?)
        };
        match m {
            // A directory is no key (`refs/heads` beside `refs/heads/main`).
            Ok(m) if m.is_dir() => Ok(None),
            Ok(m) => Ok(Some(m)),
            Err(e) if absent(&e) => Ok(None),
            Err(e) => Err(self.io("stat", key, e)),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        validate_key(key)?;
        let path = self.root.join(key);
        if self.no_links.is_some() {
            let mut at = self.root.clone();
            for part in key.split('/') {
                at.push(part);
                match fs::symlink_metadata(&at) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(self.io(
                            "refuse",
                            key,
                            io::Error::new(
                                io::ErrorKind::InvalidInput,
                                format!(
                                    "{} is a symbolic link (not followed)",
                                    at.strip_prefix(&self.root).unwrap_or(&at).display()
                                ),
                            ),
                        ));
                    }
                    Ok(_) => {}
                    // What does not exist yet is no link.
                    Err(_) => break,
                }
            }
        }
        Ok(path)
    }

    fn io(&self, op: &'static str, key: &str, source: io::Error) -> StorageError {
        if absent(&source) && matches!(op, "read" | "open") {
            return StorageError::NotFound {
                backend: self.describe(),
                key: key.into(),
            };
        }
        StorageError::Io {
            backend: self.describe(),
            op,
            key: key.into(),
            source,
        }
    }

    fn tmp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        let dir = self.root.join("tmp");
        let link = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "tmp is a symbolic link (not followed)",
            )
        };
        if self.no_links.is_some()
            && fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(link());
        }
        fs::create_dir_all(&dir)?;
        let f = tempfile::Builder::new().prefix("put-").tempfile_in(dir)?;
        if !self.inside(f.as_file()) {
            return Err(link());
        }
        Ok(f)
    }

    fn install(&self, key: &str, tmp: &Path) -> Result<(), StorageError> {
        let dst = self.path(key)?;
        let parent = dst.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&parent).map_err(|e| self.io("create directory for", key, e))?;
        fs::rename(tmp, &dst).map_err(|e| self.io("rename into place", key, e))?;
        sync_dir(&parent).map_err(|e| self.io("fsync directory of", key, e))?;
        self.forget(key);
        Ok(())
    }

    /// Writes a temporary file with `write`, fsyncs it and installs it as
    /// `key`; on error nothing is left behind.
    fn write_new(
        &self,
        key: &str,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<(), StorageError> {
        if self.no_links.is_some() {
            return self.write_new_beneath(key, write);
        }
        let mut tmp = self
            .tmp_file()
            .map_err(|e| self.io("create temp file for", key, e))?;
        write(tmp.as_file_mut())
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| self.io("write", key, e))?;
        let (_, path) = tmp
            .keep()
            .map_err(|e| self.io("keep temp file for", key, e.error))?;
        self.install(key, &path).inspect_err(|_| {
            let _ = fs::remove_file(&path);
        })
    }

    fn forget(&self, key: &str) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    fn open_cached(&self, key: &str) -> Result<Arc<File>, StorageError> {
        // Only packs and their indexes are kept open: they are named by
        // their content and never change. Any other key (a ref, HEAD,
        // config.toml) may be replaced by another process at any time (a
        // server's repository by a command run on the server), and a kept
        // handle would go on reading the replaced file.
        if !key.starts_with("packs/") {
            return self.open_read(key).map(Arc::new);
        }
        let path = self.read_path(key)?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = open.get(key) {
            // Still the file at that name? `fsck --repair` may have put a
            // rebuilt pack or index in its place, `gc` deleted it: a
            // handle to the old one would serve stale bytes (and keep a
            // deleted file's space). One stat per read.
            use std::os::unix::fs::MetadataExt;
            let same = match (fs::metadata(&path), f.metadata()) {
                (Ok(now), Ok(held)) => now.dev() == held.dev() && now.ino() == held.ino(),
                _ => false,
            };
            if same {
                return Ok(f.clone());
            }
            open.remove(key);
        }
        let f = Arc::new(self.open_read(key)?);
        // Handles of files deleted since (packs `gc` removed, replaced
        // ones) are let go, so their space is freed: checked whenever a
        // file is opened (an fstat each, of at most MAX_OPEN).
        {
            use std::os::unix::fs::MetadataExt;
            open.retain(|_, f| f.metadata().is_ok_and(|m| m.nlink() > 0));
        }
        if open.len() >= MAX_OPEN {
            open.clear();
        }
        open.insert(key.to_string(), f.clone());
        Ok(f)
    }

    fn read_opt(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if self.no_links.is_some() {
            // The value compare-and-swap compares: read as every read is
            // (never through a link, only a file), and bounded (a device
            // node planted as a key reads forever).
            let f = match self.open_read(key) {
                Ok(f) => f,
                Err(StorageError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            if !f.metadata().is_ok_and(|m| m.is_file()) {
                return Ok(None);
            }
            let mut out = Vec::new();
            io::Read::read_to_end(&mut io::Read::take(f, CAS_VALUE_MAX + 1), &mut out)
                .map_err(|e| self.io("read", key, e))?;
            if out.len() as u64 > CAS_VALUE_MAX {
                return Err(self.io(
                    "read",
                    key,
                    io::Error::new(io::ErrorKind::InvalidData, "larger than any value compared"),
                ));
            }
            return Ok(Some(out));
        }
        match fs::read(self.path(key)?) {
            Ok(v) => Ok(Some(v)),
            Err(e) if absent(&e) => Ok(None),
            Err(e) => Err(self.io("read", key, e)),
        }
    }

    /// Reads `key` whole, at most `max` bytes (more is
    /// [`StorageError::TooLarge`], read no further than `max + 1`).
    /// `follow`: through a link at the key itself (a pack kept on another
    /// disk); never for anything else.
    fn get_bounded(&self, key: &str, max: u64, follow: bool) -> Result<Vec<u8>, StorageError> {
        if self.no_links.is_none() {
            // Only a file, and not through a link (small keys are refs: a
            // ref is never a link, and one planted as `refs/heads/x ->
            // ~/secret` would have its target read, its size shown): a
            // device or FIFO planted as a key (`/dev/zero`) would read
            // forever or hang.
            use std::os::unix::fs::OpenOptionsExt;
            let f = OpenOptions::new()
                .read(true)
                .custom_flags(if follow {
                    libc::O_NONBLOCK
                } else {
                    libc::O_NONBLOCK | libc::O_NOFOLLOW
                })
                .open(self.path(key)?)
                .map_err(|e| {
                    if e.raw_os_error() == Some(libc::ELOOP) {
                        self.io(
                            "read",
                            key,
                            io::Error::new(
                                io::ErrorKind::InvalidData,
                                "a symbolic link (a ref never is one; not followed)",
                            ),
                        )
                    } else {
                        self.io("read", key, e)
                    }
                })?;
            if !f.metadata().is_ok_and(|m| m.is_file()) {
                return Err(self.io(
                    "read",
                    key,
                    io::Error::new(io::ErrorKind::InvalidData, "not a regular file"),
                ));
            }
            return self.read_bounded(key, f, max);
        }
        let f = self.open_read(key)?;
        self.read_bounded(key, f, max)
    }

    fn read_bounded(&self, key: &str, f: File, max: u64) -> Result<Vec<u8>, StorageError> {
        let mut out = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(f, max.saturating_add(1)), &mut out)
            .map_err(|e| self.io("read", key, e))?;
        if out.len() as u64 > max {
            return Err(StorageError::TooLarge {
                backend: self.describe(),
                key: key.to_string(),
                max,
            });
        }
        Ok(out)
    }
}

/// fsync a directory so a rename or create in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for LocalBackend {
    fn describe(&self) -> String {
        format!("local filesystem at {}", self.root.display())
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        self.write_new(key, |f| f.write_all(data))
    }

    fn put_file(&self, key: &str, file: &Path) -> Result<(), StorageError> {
        validate_key(key)?;
        // Dated now, not when its last byte was written: a key's
        // modification time is when it was stored (as on an object store),
        // which is what `gc` compares with its grace period. A pack that
        // took an hour to fill must not look an hour old the moment it is
        // stored, before its index is.
        OpenOptions::new()
            .write(true)
            .open(file)
            .and_then(|f| {
                f.set_modified(std::time::SystemTime::now())?;
                f.sync_all()
            })
            .map_err(|e| self.io("fsync", key, e))?;
        let installed = if self.no_links.is_some() {
            self.install_beneath(key, CWD, file)
        } else {
            self.install(key, file)
        };
        match installed {
            Ok(()) => Ok(()),
            Err(StorageError::Io { source, .. }) if source.raw_os_error() == Some(18) => {
                // EXDEV: the file is on another filesystem; copy it (streamed:
                // packs are up to gigabytes) into a temporary file here.
                let mut src =
                    File::open(file).map_err(|e| self.io("read local file for", key, e))?;
                self.write_new(key, |f| io::copy(&mut src, f).map(|_| ()))?;
                let _ = fs::remove_file(file);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        // Only a pack file may be a link (kept on another disk); refs,
        // sealed refs, HEAD, settings and key files never are.
        self.get_bounded(key, u64::MAX, key.starts_with("packs/"))
    }

    fn get_small(&self, key: &str, max: u64) -> Result<Vec<u8>, StorageError> {
        self.get_bounded(key, max, false)
    }

    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let f = self.open_cached(key)?;
        match f.read_exact_at(buf, offset) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(StorageError::ShortRead {
                backend: self.describe(),
                key: key.into(),
                offset,
                len: buf.len(),
                size: f.metadata().map(|m| m.len()).unwrap_or(0),
            }),
            Err(e) => Err(self.io("read", key, e)),
        }
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        Ok(self.key_metadata(key)?.map(|m| m.len()))
    }

    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StorageError> {
        match self.key_metadata(key)? {
            Some(m) => Ok(Some(m.modified().map_err(|e| self.io("stat", key, e))?)),
            None => Ok(None),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        crate::backend::validate_prefix(prefix)?;
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        if self.no_links.is_some() {
            return self.list_beneath(prefix, dir_part);
        }
        let mut out = Vec::new();
        let mut stack = vec![(self.root.join(dir_part), dir_part.to_string())];
        while let Some((dir, rel)) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if absent(&e) => continue,
                Err(e) => return Err(self.io("list", prefix, e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| self.io("list", prefix, e))?;
                let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let key = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if rel.is_empty() && name == "tmp" {
                    continue;
                }
                let ft = ent.file_type().map_err(|e| self.io("list", prefix, e))?;
                if ft.is_dir() {
                    if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                        stack.push((ent.path(), key));
                    }
                } else if key.starts_with(prefix) {
                    out.push(key);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        // A backend refusing links hands out no path: whoever used it
        // (a hard link, a copy) would follow the links it refuses.
        if self.no_links.is_some() {
            return None;
        }
        self.path(key).ok()
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.forget(key);
        if self.no_links.is_some() {
            return self.delete_beneath(key);
        }
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                // The removal is durable once its directory is fsynced
                // (a deleted ref must not come back after a power cut).
                if let Some(d) = path.parent() {
                    sync_dir(d).map_err(|e| self.io("fsync", key, e))?;
                }
                // Drop directories the key's removal left empty (refs/heads/a/
                // after deleting a/b), so key a can be created again.
                let mut dir = path.parent();
                while let Some(d) = dir {
                    if d == self.root || fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
                Ok(())
            }
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(self.io("delete", key, e)),
        }
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome, StorageError> {
        validate_key(key)?;
        // One lock file serializes every compare-and-swap of this store, across
        // threads and processes (flock; released if the process dies).
        if self.no_links.is_none() {
            fs::create_dir_all(&self.root).map_err(|e| self.io("create", key, e))?;
        }
        // Never through a symlink: a link planted as `cas.lock` would make
        // this create a file wherever it points.
        let lock = if self.no_links.is_some() {
            // By a handle to the root as it resolved: a repository
            // directory swapped for a link takes no lock elsewhere.
            self.root_fd(true).and_then(|root| {
                rustix::fs::openat(
                    &root,
                    "cas.lock",
                    OFlags::CREATE
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC
                        | OFlags::NONBLOCK,
                    // Not for others to open (and flock: every writer
                    // would wait on them); the group shares a store.
                    Mode::from_raw_mode(0o660),
                )
                .map(File::from)
                .map_err(io::Error::from)
            })
        } else {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .mode(0o660)
                .open(self.root.join("cas.lock"))
        }
        .map_err(|e| self.io("open lock for", key, e))?;
        // Only a file is a lock (a FIFO planted as `cas.lock` would hang
        // every writer; opened without blocking, it is refused here).
        if !lock.metadata().is_ok_and(|m| m.is_file()) {
            return Err(self.io(
                "open lock for",
                key,
                io::Error::new(io::ErrorKind::InvalidData, "cas.lock is not a regular file"),
            ));
        }
        // One made 0644 by an older build: others could flock it.
        crate::permissions::keep_from_others(&lock);
        // Held for milliseconds by a writer; one held for minutes is not a
        // writer (a process of someone who could open it): an error, not a
        // wait without end.
        let started = std::time::Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock)
                    if started.elapsed() < std::time::Duration::from_secs(120) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(self.io(
                        "lock for",
                        key,
                        io::Error::new(
                            io::ErrorKind::WouldBlock,
                            "cas.lock has been held by another process for 2 minutes",
                        ),
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(self.io("lock for", key, e)),
            }
        }
        let actual = self.read_opt(key)?;
        if actual.as_deref() != expected {
            return Ok(CasOutcome::Conflict { actual });
        }
        match new {
            Some(data) => self.put(key, data)?,
            None => self.delete(key)?,
        }
        Ok(CasOutcome::Swapped)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        crate::conformance::run_all(&super::LocalBackend::new(dir.path().join("store")));
    }

    /// A key replaced by another process (a command run on a server's
    /// repository) reads as its new value: only immutable pack keys are
    /// kept open.
    #[test]
    fn a_key_replaced_by_another_writer_reads_fresh() {
        use crate::backend::Storage;
        let dir = tempfile::tempdir().unwrap();
        let b = super::LocalBackend::new(dir.path().join("store"));
        b.put("refs/heads/main", b"old value, longer than the new\n")
            .unwrap();
        let mut buf = [0u8; 3];
        b.read_at("refs/heads/main", 0, &mut buf).unwrap();
        assert_eq!(&buf, b"old");
        // Replaced by rename, as every writer does, behind b's back.
        let other = super::LocalBackend::new(dir.path().join("store"));
        other.put("refs/heads/main", b"new\n").unwrap();
        b.read_at("refs/heads/main", 0, &mut buf).unwrap();
        assert_eq!(&buf, b"new");
        assert_eq!(b.get("refs/heads/main").unwrap(), b"new\n");
        // A pack replaced under the same name (a repaired copy) reads as
        // the new file too; a deleted one is gone.
        b.put("packs/p.pack", b"damaged").unwrap();
        b.read_at("packs/p.pack", 0, &mut buf).unwrap();
        assert_eq!(&buf, b"dam");
        other.delete("packs/p.pack").unwrap();
        other.put("packs/p.pack", b"repaired").unwrap();
        b.read_at("packs/p.pack", 0, &mut buf).unwrap();
        assert_eq!(&buf, b"rep");
        other.delete("packs/p.pack").unwrap();
        assert!(b.read_at("packs/p.pack", 0, &mut buf).is_err());
    }

    /// Found by a hostile probe: a server read a key through a symbolic
    /// link planted in a repository it hosts, and served `/etc/hostname`.
    #[test]
    fn a_backend_refusing_links_never_reads_through_one() {
        use crate::backend::Storage;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        crate::conformance::run_all(&super::LocalBackend::new(&store).refusing_links());
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"outside").unwrap();
        std::fs::create_dir_all(store.join("packs")).unwrap();
        std::os::unix::fs::symlink(&secret, store.join("packs/a.idx")).unwrap();
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("b.idx"), b"outside too").unwrap();
        std::os::unix::fs::symlink(&outside, store.join("refs-link")).unwrap();
        let strict = super::LocalBackend::new(&store).refusing_links();
        let mut buf = [0u8; 3];
        for key in ["packs/a.idx", "refs-link/b.idx"] {
            // Behind a link is nowhere: not found, no size, not written.
            let e = strict.get(key).unwrap_err();
            assert!(matches!(e, crate::StorageError::NotFound { .. }), "{e}");
            assert!(strict.read_at(key, 0, &mut buf).is_err());
            assert_eq!(strict.size(key).unwrap(), None);
            assert_eq!(strict.modified(key).unwrap(), None);
        }
        // Nothing is written through a link to a directory.
        let e = strict.put("refs-link/b.idx", b"x").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(
            std::fs::read(outside.join("b.idx")).unwrap(),
            b"outside too"
        );
        assert!(strict.list("refs-link/").unwrap().is_empty());
        // A FIFO planted as a key neither hangs a read nor is one.
        std::fs::create_dir_all(store.join("refs/heads")).unwrap();
        let fifo = store.join("refs/heads/fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(strict.get("refs/heads/fifo").is_err());
        assert_eq!(strict.size("refs/heads/fifo").unwrap(), None);
        // Nor does compare-and-swap, which reads the value it compares
        // (it found no value, and wrote one in the FIFO's place).
        strict
            .compare_and_swap("refs/heads/fifo", None, Some(b"x\n"))
            .unwrap();
        assert_eq!(strict.get("refs/heads/fifo").unwrap(), b"x\n");
        std::fs::remove_file(&fifo).unwrap();
        assert_eq!(std::fs::read(&secret).unwrap(), b"outside");
        assert!(strict
            .list("")
            .unwrap()
            .iter()
            .all(|k| !k.contains("a.idx") && !k.contains("link")));
        // A repository of one's own still follows links to packs (kept on
        // another disk), never at any other key (a sealed ref, HEAD).
        let own = super::LocalBackend::new(&store);
        assert_eq!(own.get("packs/a.idx").unwrap(), b"outside");
        std::os::unix::fs::symlink(&secret, store.join("refs/heads/linked")).unwrap();
        assert!(own.get("refs/heads/linked").is_err());
        assert!(own.get_small("refs/heads/linked", 100).is_err());
        std::fs::remove_file(store.join("refs/heads/linked")).unwrap();
        // A key that is a link is replaced, the link itself (renamed over),
        // never what it points to.
        strict.put("packs/a.idx", b"x").unwrap();
        assert_eq!(strict.get("packs/a.idx").unwrap(), b"x");
        assert_eq!(std::fs::read(&secret).unwrap(), b"outside");
        strict.delete("packs/a.idx").unwrap();
        std::fs::create_dir_all(store.join("packs")).unwrap();
        std::os::unix::fs::symlink(&secret, store.join("packs/a.idx")).unwrap();
        strict.delete("packs/a.idx").unwrap();
        assert!(std::fs::symlink_metadata(store.join("packs/a.idx")).is_err());
        assert_eq!(std::fs::read(&secret).unwrap(), b"outside");
        // The root itself swapped for a link once the backend exists (a
        // hosted repository replaced behind a server's back): what is
        // opened is checked to be below the root as it was.
        strict.put("refs/heads/main", b"inside\n").unwrap();
        assert_eq!(strict.get("refs/heads/main").unwrap(), b"inside\n");
        let evil = dir.path().join("evil");
        std::fs::create_dir_all(evil.join("refs/heads")).unwrap();
        std::fs::write(evil.join("refs/heads/main"), b"LEAKED\n").unwrap();
        std::fs::rename(&store, dir.path().join("store-was")).unwrap();
        std::os::unix::fs::symlink(&evil, &store).unwrap();
        assert!(strict.get("refs/heads/main").is_err());
        assert_eq!(strict.size("refs/heads/main").unwrap(), None);
        assert!(strict.read_at("refs/heads/main", 0, &mut buf).is_err());
    }

    #[test]
    fn a_backend_refusing_links_never_writes_or_deletes_through_a_swapped_one() {
        use crate::backend::Storage;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("x"), b"keep").unwrap();
        let strict = super::LocalBackend::new(&store).refusing_links();
        strict.put("refs/heads/x", b"1").unwrap();
        // Another local user swaps `refs/heads` between the directory and
        // a link to `outside`, as fast as it can.
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, refs) = (stop.clone(), store.join("refs"));
            let outside = outside.clone();
            std::thread::spawn(move || {
                let (heads, real) = (refs.join("heads"), refs.join("real"));
                let mut swaps = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::rename(&heads, &real);
                    if std::os::unix::fs::symlink(&outside, &heads).is_ok() {
                        swaps += 1;
                    }
                    std::thread::yield_now();
                    if std::fs::symlink_metadata(&heads).is_ok_and(|m| m.is_symlink()) {
                        let _ = std::fs::remove_file(&heads);
                    }
                    let _ = std::fs::rename(&real, &heads);
                }
                swaps
            })
        };
        for i in 0..400 {
            let _ = strict.put("refs/heads/x", format!("{i}").as_bytes());
            let _ = strict.delete("refs/heads/x");
            let _ = strict.compare_and_swap("refs/heads/y", None, Some(b"v"));
            let _ = strict.delete("refs/heads/y");
            let _ = strict.list("refs/heads/");
        }
        stop.store(true, Ordering::Relaxed);
        assert!(swapper.join().unwrap() > 0);
        let mut names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["x"], "written or deleted outside the root");
        assert_eq!(std::fs::read(outside.join("x")).unwrap(), b"keep");

        // The root itself swapped for a link: nothing is written, locked
        // or deleted in the directory it now points to.
        strict.put("refs/heads/z", b"inside\n").unwrap();
        std::fs::rename(&store, dir.path().join("store-was")).unwrap();
        std::os::unix::fs::symlink(&outside, &store).unwrap();
        assert!(strict.put("x", b"over").is_err());
        assert!(strict.put("new", b"planted").is_err());
        assert!(strict.compare_and_swap("y", None, Some(b"v")).is_err());
        let _ = strict.delete("x");
        let mut names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["x"]);
        assert_eq!(std::fs::read(outside.join("x")).unwrap(), b"keep");
    }

    /// Found by a hostile probe: a server's backend for a repository
    /// resolved the repository's directory when it was made, so a
    /// directory swapped for a link just before the first request made
    /// the outside directory "the repository".
    #[test]
    fn a_backend_below_a_trusted_directory_is_where_its_name_says() {
        use crate::backend::Storage;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("refs/heads")).unwrap();
        std::fs::write(outside.join("config.toml"), b"outside").unwrap();
        std::fs::create_dir_all(base.join("team")).unwrap();
        std::os::unix::fs::symlink(&outside, base.join("proj")).unwrap();
        std::os::unix::fs::symlink(&outside, base.join("team/film")).unwrap();
        std::os::unix::fs::symlink(&outside, base.join("linked-team")).unwrap();
        for name in ["proj", "team/film", "linked-team/refs"] {
            let b = super::LocalBackend::refusing_links_below(&base, name);
            assert_eq!(b.size("config.toml").unwrap(), None, "{name}");
            assert!(b.get("config.toml").is_err(), "{name}");
            assert!(b.put("config.toml", b"x").is_err(), "{name}");
            assert!(b.put("refs/heads/main", b"x").is_err(), "{name}");
            assert!(
                b.compare_and_swap("HEAD", None, Some(b"x")).is_err(),
                "{name}"
            );
            assert!(b.make_dirs("packs").is_err(), "{name}");
            let _ = b.delete("config.toml");
            assert!(b.list("").unwrap().is_empty(), "{name}");
        }
        let mut names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["config.toml", "refs"]);
        assert_eq!(
            std::fs::read(outside.join("config.toml")).unwrap(),
            b"outside"
        );
        assert!(std::fs::read_dir(outside.join("refs/heads"))
            .unwrap()
            .next()
            .is_none());
        // A real directory works, made on the first write.
        let b = super::LocalBackend::refusing_links_below(&base, "team/new");
        b.make_dirs("refs/heads").unwrap();
        b.compare_and_swap("refs/heads/main", None, Some(b"v\n"))
            .unwrap();
        assert_eq!(b.get("refs/heads/main").unwrap(), b"v\n");
        assert!(base.join("team/new/refs/heads/main").is_file());
    }

    /// Found by a hostile probe: a FIFO planted as `cas.lock` made every
    /// compare-and-swap of the repository hang, one server thread each.
    #[test]
    fn a_fifo_planted_as_the_lock_is_refused_not_waited_on() {
        use crate::backend::Storage;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(store.join("cas.lock"))
            .status()
            .unwrap()
            .success());
        for b in [
            super::LocalBackend::new(&store),
            super::LocalBackend::new(&store).refusing_links(),
        ] {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let r = b.compare_and_swap("refs/heads/main", None, Some(b"x"));
                let _ = tx.send(r.map(|_| ()).map_err(|e| e.to_string()));
            });
            let r = rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .expect("compare-and-swap hung on a FIFO");
            let e = r.unwrap_err();
            assert!(e.contains("lock"), "{e}");
        }
    }

    #[test]
    fn put_file_dates_the_key_when_it_is_stored() {
        use crate::backend::Storage;
        // A pack filled over an hour is stored now: gc compares the key's
        // time with its grace period and must not take it for an old
        // orphan before its index is stored.
        let dir = tempfile::tempdir().unwrap();
        let b = super::LocalBackend::new(dir.path().join("store"));
        let src = dir.path().join("filled-slowly");
        std::fs::write(&src, b"pack bytes").unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&src)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        b.put_file("packs/x.pack", &src).unwrap();
        let t = b.modified("packs/x.pack").unwrap().unwrap();
        let age = std::time::SystemTime::now()
            .duration_since(t)
            .unwrap_or_default();
        assert!(age.as_secs() < 60, "stored key dated {age:?} ago");
    }

    /// `put_file` of a file on another filesystem (rename fails with EXDEV)
    /// copies it, streamed, and removes the source. Needs `/dev/shm` on a
    /// filesystem other than the temporary directory's (Debian: tmpfs).
    #[test]
    fn put_file_across_filesystems_copies() {
        use crate::backend::Storage;
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let shm = std::path::Path::new("/dev/shm");
        let Ok(m) = std::fs::metadata(shm) else {
            eprintln!("skipped: no /dev/shm");
            return;
        };
        if m.dev() == std::fs::metadata(dir.path()).unwrap().dev() {
            eprintln!("skipped: /dev/shm is on the same filesystem");
            return;
        }
        let b = super::LocalBackend::new(dir.path().join("store"));
        let src = tempfile::NamedTempFile::new_in(shm).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(src.path(), &data).unwrap();
        let (_, path) = src.keep().unwrap();
        b.put_file("packs/x.pack", &path).unwrap();
        assert_eq!(b.get("packs/x.pack").unwrap(), data);
        assert!(!path.exists(), "the source is removed after the copy");
    }
}
