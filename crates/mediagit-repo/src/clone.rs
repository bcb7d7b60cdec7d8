//! `clone`: from a repository on a local path, or from a store.
//!
//! From a path: packs and pack indexes are immutable, so they are hard-linked
//! when source and destination share a filesystem (as `git clone` does
//! locally) and streamed otherwise (uploaded, when the new repository's
//! objects live in an object store). A streamed pack (from a server too)
//! is read and checked before anything refers to it, except the chunks
//! the checkout will read and check anyway; branches and tags are copied by
//! compare-and-swap (every branch as a local branch, as earlier builds
//! did, and as `origin/BRANCH`); the source becomes the remote `origin`,
//! the upstream of HEAD's branch, which is then checked out.
//!
//! From a store URL (`s3://bucket/prefix`...): nothing is copied. The new
//! working tree is one more client of the repository in the store, sharing
//! its objects and refs with every other client (that is how a team shares
//! one bucket); its HEAD, index and reflogs are its own.
use std::path::Path;

use mediagit_format::config::StorageConfig;
use mediagit_format::{ObjectId, Signature};
use mediagit_storage::{CloudEnv, Storage};

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
    /// Keys under `refs/` of the source that are no valid ref names (not
    /// copied), with why.
    pub skipped_refs: Vec<(String, String)>,
}

/// Where the clone's objects go, and the environment's credentials.
#[derive(Debug, Clone, Default)]
pub struct CloneOptions {
    /// `None`: inside the new `.mediagit/`.
    pub storage: Option<StorageConfig>,
    pub env: CloudEnv,
    /// Repositories of other users the caller trusts (the source is opened
    /// with [`Repository::discover_trusting`]).
    pub safe: crate::repo::SafeDirectories,
    /// Opens an encrypted source (the clone shares its key).
    pub credential: Option<crate::keys::Credential>,
    /// A bare repository (no working tree, nothing checked out, no
    /// `origin`): a copy to push to, as `git clone --bare` makes.
    pub bare: bool,
    /// The branch to check out (and to name in HEAD) instead of the
    /// source's current one; it must exist there.
    pub branch: Option<String>,
}

/// Opens `store` with `credential` if it is encrypted.
fn unlock_source(
    repo: Repository,
    credential: Option<&crate::keys::Credential>,
) -> Result<Repository> {
    if !repo.is_encrypted() {
        return Ok(repo);
    }
    match credential {
        Some(c) => repo.unlock_with(c),
        None => Err(RepoError::NeedsPassphrase {
            store: repo.storage().describe(),
        }),
    }
}

/// Removes what a failed clone created: the directory if it made it, or the
/// contents of a directory that was empty.
pub(crate) fn clean_failed_clone<T>(
    dest: &Path,
    r: Result<T>,
    existed: bool,
    was_empty: bool,
) -> Result<T> {
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

pub(crate) fn dest_state(dest: &Path) -> Result<(bool, bool)> {
    // A dangling symlink exists too: it is never removed after a failure.
    let existed = dest.symlink_metadata().is_ok();
    let was_empty = existed
        && std::fs::read_dir(dest)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    if existed && !was_empty {
        return Err(RepoError::Invalid(format!(
            "destination {} already exists and is not an empty directory",
            dest.display()
        )));
    }
    Ok((existed, was_empty))
}

/// Copies one immutable object between stores: a hard link or a streamed
/// copy of at most `max` bytes (the size is asked once, and nothing past
/// it is read: a source whose answers change cannot make it copy more).
pub(crate) fn copy_object(
    src: &dyn Storage,
    dst: &dyn Storage,
    key: &str,
    tmp_dir: &Path,
    max: u64,
) -> Result<bool> {
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
    if size > max {
        return Err(RepoError::Invalid(format!(
            "{}: {key} is {size} bytes, more than it can be (at most {max}); not copied",
            src.describe()
        )));
    }
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

/// A pack copied whole, with the entries of its own index.
pub(crate) type CopiedPack = (ObjectId, Vec<mediagit_format::pack::IdxEntry>);

/// Reads every entry of `packs` (each with its own index's entries, in
/// `repo`'s store) and checks it against its id, except the chunks of the
/// files a checkout of `checked_out` will write (a checkout checks every
/// chunk it writes): packs copied whole from elsewhere (a clone from a
/// server, a restore from a backup) never enter a repository unread.
pub(crate) fn verify_copied_packs(
    repo: &Repository,
    packs: &[CopiedPack],
    checked_out: Option<ObjectId>,
) -> Result<()> {
    if packs.is_empty() {
        return Ok(());
    }
    let odb = repo.odb()?;
    let mut by_checkout: std::collections::HashSet<ObjectId> = Default::default();
    if let Some(c) = checked_out {
        let tree = odb.read_commit(&c)?.tree;
        for (_, e) in crate::tree::flatten(odb, &tree)? {
            if e.kind != mediagit_format::index::IndexKind::Symlink {
                for ch in odb.read_manifest(&e.manifest)?.chunks {
                    by_checkout.insert(ch.id);
                }
            }
        }
    }
    let slots = odb.packs();
    let mut want = Vec::new();
    for (pack, entries) in packs {
        let Some(slot) = slots.iter().position(|p| p == pack) else {
            return Err(RepoError::Invalid(format!(
                "pack {pack} was copied but is not in the new repository"
            )));
        };
        for e in entries {
            if e.kind == mediagit_format::ObjectKind::Chunk && by_checkout.contains(&e.id) {
                continue;
            }
            let loc = crate::odb::Location::of_entry(e, slot as u32, false);
            want.push((e.id, *pack, loc));
        }
    }
    crate::transfer::read_in_parallel(odb, want, repo.read_workers(), &mut |_, _, _| Ok(()))?;
    Ok(())
}

impl Repository {
    /// Clones the repository at `src` into a new working tree at `dest`.
    /// On failure nothing is left behind: a directory it created is removed.
    pub fn clone_local(
        src: &Path,
        dest: &Path,
        opts: &CloneOptions,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<(Repository, CloneOutcome)> {
        // Decided before anything is written: only a directory this clone
        // creates, or one that was empty, is cleaned up after a failure.
        let (existed, was_empty) = dest_state(dest)?;
        let mut store: Option<std::sync::Arc<dyn Storage>> = None;
        let r = Repository::clone_into(src, dest, opts, who, progress, &mut store);
        if let (Err(_), Some(store)) = (&r, store) {
            // The store was empty before (init checks): take back what this
            // clone put there.
            crate::repo::wipe_store(store.as_ref());
        }
        clean_failed_clone(dest, r, existed, was_empty)
    }

    /// A new working tree at `dest` for the repository in the store `sc`
    /// names (see the module docs: nothing is copied).
    pub fn clone_store(
        sc: &StorageConfig,
        dest: &Path,
        env: &CloudEnv,
        credential: Option<&crate::keys::Credential>,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<(Repository, CloneOutcome)> {
        let (existed, was_empty) = dest_state(dest)?;
        let r = Repository::attach_store(sc, dest, env, credential, who, progress);
        clean_failed_clone(dest, r, existed, was_empty)
    }

    /// How the store `sc` names describes itself (as
    /// `repo.storage().describe()` of a working tree that uses it).
    pub fn store_description(sc: &StorageConfig, dest: &Path, env: &CloudEnv) -> Result<String> {
        Ok(crate::repo::open_storage(dest, Some(sc), env)?.describe())
    }

    /// Whether the repository in the store `sc` names is encrypted (so a
    /// clone of it needs a passphrase).
    pub fn store_is_encrypted(sc: &StorageConfig, dest: &Path, env: &CloudEnv) -> Result<bool> {
        let storage = crate::repo::open_storage(dest, Some(sc), env)?;
        Ok(crate::repo::read_store_config(storage.as_ref())?
            .format
            .is_encrypted())
    }

    fn attach_store(
        sc: &StorageConfig,
        dest: &Path,
        env: &CloudEnv,
        credential: Option<&crate::keys::Credential>,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<(Repository, CloneOutcome)> {
        let mut sc = sc.clone();
        let storage = crate::repo::open_storage(dest, Some(&sc), env)?;
        let store_cfg = crate::repo::read_store_config(storage.as_ref())?;
        if let Some(p) = storage.conditional_writes_probe() {
            sc.conditional_writes = p?;
        }
        // An encrypted store's HEAD is sealed: opened with the passphrase
        // (which is checked here, before anything is written locally).
        let branch = if store_cfg.format.is_encrypted() {
            let Some(c) = credential else {
                return Err(RepoError::NeedsPassphrase {
                    store: storage.describe(),
                });
            };
            crate::store::Store::from_parts(
                storage.clone(),
                storage.clone(),
                store_cfg.clone(),
                std::env::temp_dir(),
            )
            .unlock_with(c, None)?
            .head_branch()?
        } else {
            crate::repo::read_store_head(storage.as_ref())?
        }
        .unwrap_or_else(|| "main".into());
        crate::refs::validate_ref_name("branch", &branch)?;
        std::fs::create_dir_all(dest).map_err(|e| RepoError::io("create directory", dest, e))?;
        let root = dest
            .canonicalize()
            .map_err(|e| RepoError::io("resolve", dest, e))?;
        let dir = root.join(crate::repo::DOT_DIR);
        for sub in ["logs", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| RepoError::io("create directory", dir.join(sub), e))?;
        }
        let mut cfg = store_cfg;
        cfg.core.bare = false;
        // Identity belongs to the user, never to whoever can write the store.
        cfg.author = Default::default();
        // Nor where it pushes: a store's config.toml never names remotes.
        cfg.remotes.clear();
        cfg.backups.clear();
        cfg.branches.clear();
        cfg.locks = Default::default();
        cfg.merge = Default::default();
        cfg.media = Default::default();
        cfg.storage = Some(sc.clone());
        write_atomic(
            &dir.join("HEAD"),
            format!("ref: refs/heads/{branch}\n").as_bytes(),
        )?;
        write_atomic(&dir.join("config.toml"), cfg.to_toml().as_bytes())?;
        let repo = unlock_source(Repository::discover_with_env(&root, env)?, credential)?;
        let mut out = CloneOutcome {
            refs: storage.list("refs/")?.len(),
            packs: storage
                .list("packs/")?
                .iter()
                .filter(|k| k.ends_with(".pack"))
                .count(),
            ..Default::default()
        };
        // Nothing checked out yet: based on an unborn branch until the
        // checkout below records the tip.
        repo.workspace()?.write_base(None)?;
        let bref = crate::refs::branch_ref(&branch);
        if let Some(id) = repo.read_ref(&bref)? {
            repo.workspace()?.append_reflog(
                &bref,
                &ReflogEntry {
                    old: ObjectId::ZERO,
                    new: id,
                    who: who.clone(),
                    message: format!("clone: from {}", sc.url()),
                },
            )?;
            let c = repo.checkout(&CheckoutTarget::Branch(branch.clone()), true, who, progress)?;
            out.files = c.written;
            out.bytes = c.bytes;
            out.branch = Some(branch);
        }
        Ok((repo, out))
    }

    /// Clones the repository at `src` into a new working tree at `dest`.
    fn clone_into(
        src: &Path,
        dest: &Path,
        opts: &CloneOptions,
        who: &Signature,
        progress: &dyn Progress,
        created_store: &mut Option<std::sync::Arc<dyn Storage>>,
    ) -> Result<(Repository, CloneOutcome)> {
        let source = unlock_source(
            Repository::discover_trusting(src, &opts.env, &opts.safe)?,
            opts.credential.as_ref(),
        )?;
        // The source becomes the remote `origin`: its branches are also
        // remote-tracking branches `origin/BRANCH`, and the branch checked
        // out follows its namesake there. (Its own remote-tracking refs
        // are its business, not copied.)
        let origin = match source.workspace_opt() {
            Some(ws) if !ws.is_bare() => ws.worktree()?.to_path_buf(),
            Some(ws) => ws.dir().to_path_buf(),
            None => src.to_path_buf(),
        };
        let label = origin.display().to_string();
        // (A source path that is not UTF-8 cannot be written in the
        // settings: that clone has no `origin`.)
        let origin = origin.to_str().map(str::to_string);
        Repository::clone_source(
            source,
            origin,
            &label,
            dest,
            opts,
            who,
            progress,
            created_store,
        )
    }

    /// Clones the repository on a MediaGit server at `url` (opened through
    /// `access`) into a new working tree at `dest`; `origin` is `url`.
    /// On failure nothing is left behind.
    pub fn clone_server(
        url: &str,
        dest: &Path,
        opts: &CloneOptions,
        access: &crate::remote::RemoteAccess,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<(Repository, CloneOutcome)> {
        let (existed, was_empty) = dest_state(dest)?;
        let source = Repository::open_server(url, access)?;
        let source = unlock_source(source, opts.credential.as_ref())?;
        let mut store = None;
        let r = Repository::clone_source(
            source,
            Some(url.to_string()),
            url,
            dest,
            opts,
            who,
            progress,
            &mut store,
        );
        if let (Err(_), Some(store)) = (&r, store) {
            crate::repo::wipe_store(store.as_ref());
        }
        clean_failed_clone(dest, r, existed, was_empty)
    }

    /// The repository on a MediaGit server at `url` (not unlocked), for
    /// a clone: its settings say whether it is encrypted.
    pub fn open_server(url: &str, access: &crate::remote::RemoteAccess) -> Result<Repository> {
        let backend = crate::remote::http_backend(url, None, access)?;
        let info = backend.info()?;
        if !info.exists {
            return Err(RepoError::Invalid(format!(
                "{url}: no repository {} on that server",
                info.repo
            )));
        }
        let store = crate::store::Store::open(std::sync::Arc::new(backend), std::env::temp_dir())?;
        Ok(Repository::on_store(store))
    }

    /// Copies `source` into a new repository at `dest`.
    #[allow(clippy::too_many_arguments)]
    fn clone_source(
        source: Repository,
        origin: Option<String>,
        label: &str,
        dest: &Path,
        opts: &CloneOptions,
        who: &Signature,
        progress: &dyn Progress,
        created_store: &mut Option<std::sync::Arc<dyn Storage>>,
    ) -> Result<(Repository, CloneOutcome)> {
        let mut head = source.head()?;
        if let Some(b) = &opts.branch {
            let r = crate::refs::branch_ref(b);
            if source.read_ref(&r)?.is_none() {
                return Err(RepoError::Invalid(format!("{label} has no branch {b}")));
            }
            head = Head::Branch(b.clone());
        }
        let branch = match &head {
            Head::Branch(b) => b.clone(),
            Head::Detached(_) => "main".into(),
        };
        let repo = Repository::init(
            dest,
            &InitOptions {
                bare: opts.bare,
                initial_branch: Some(branch.clone()),
                storage: opts.storage.clone(),
                // Same chunking and compression settings, so new content
                // deduplicates against the cloned content.
                template: Some(source.config().clone()),
                env: opts.env.clone(),
                // The source's key: its packs are copied as they are.
                encryption: source
                    .is_encrypted()
                    .then(|| crate::repo::InitEncryption::From(Box::new((*source).clone()))),
            },
        )?;
        if opts.storage.is_some() {
            *created_store = Some(repo.storage().clone());
        }
        let _lock = repo.workspace()?.lock()?;
        let mut out = CloneOutcome::default();
        let (s, d) = (source.storage().clone(), repo.storage().clone());
        // The refs first, once: the packs listed after them hold every
        // object they name (objects are stored before a ref moves), and
        // what is checked, written and checked out is this one snapshot.
        // A key that is no valid ref name (planted in the source's store,
        // or in an encrypted one a value that does not open) is not
        // copied; the other refs are, by name (sealed again in the clone).
        out.skipped_refs.extend(source.invalid_ref_keys()?);
        let mut snapshot: Vec<(String, ObjectId)> = Vec::new();
        let mut names = source.ref_keys("refs/heads/")?;
        names.extend(source.ref_keys("refs/tags/")?);
        for key in names {
            if let Some(id) = source.read_ref(&key)? {
                snapshot.push((key, id));
            }
        }
        let notes = source.read_ref(crate::media::NOTES_REF).ok().flatten();
        let tip = |name: &str| snapshot.iter().find(|(k, _)| k == name).map(|(_, id)| *id);
        let checked_out = match &head {
            _ if opts.bare => None,
            Head::Detached(id) => Some(*id),
            Head::Branch(b) => tip(&crate::refs::branch_ref(b)),
        };
        // Whole pairs only: a pack without its index is invisible, and an
        // index without its pack is damage; neither is copied.
        let keys = s.list("packs/")?;
        let listed: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let mut pairs = Vec::new();
        for key in &keys {
            let Some(id) = key
                .strip_prefix("packs/")
                .and_then(|k| k.strip_suffix(".pack"))
                .and_then(|h| h.parse::<ObjectId>().ok())
            else {
                continue;
            };
            let ik = crate::odb::idx_key(&id);
            if !listed.contains(ik.as_str()) {
                continue;
            }
            for k in [key.as_str(), ik.as_str()] {
                // In a local source, only regular files (a symbolic link
                // would be linked or read as it points).
                if let Some(p) = s.local_path(k) {
                    if !p.symlink_metadata().is_ok_and(|m| m.file_type().is_file()) {
                        return Err(RepoError::Invalid(format!(
                            "{label}: {k} is not a regular file (a symbolic link?); nothing was cloned"
                        )));
                    }
                }
            }
            // An index is bounded by its pack's size before a byte of it
            // is copied (a server could send gigabytes).
            let max = crate::odb::index_bound(s.as_ref(), &id)?;
            if let Some(n) = s.size(&ik)?.filter(|&n| n > max) {
                return Err(RepoError::CorruptObject {
                    id,
                    kind: "pack index",
                    location: format!("{ik} in {label}"),
                    reason: format!(
                        "it is {n} bytes, more than its pack can need (at most {max}); not copied"
                    ),
                });
            }
            pairs.push((id, max));
        }
        // Packs first, then their indexes (the write order of FORMAT.md §9).
        let mut streamed = Vec::new();
        let tmp = repo.workspace()?.dir().join("tmp");
        for (id, _) in &pairs {
            let pk = crate::odb::pack_key(id);
            let linked = copy_object(s.as_ref(), d.as_ref(), &pk, &tmp, u64::MAX)?;
            out.packs += 1;
            if linked {
                out.linked += 1;
            } else {
                streamed.push(*id);
            }
        }
        for (id, max) in &pairs {
            if copy_object(s.as_ref(), d.as_ref(), &crate::odb::idx_key(id), &tmp, *max)? {
                out.linked += 1;
            }
        }
        // Packs that came as bytes (from a server, a store or another
        // filesystem; a hard link is the source's own file, as in a local
        // `git clone`) are checked before anything refers to them: every
        // entry the checkout below will not read (it checks what it
        // reads), and the parts of each pack no entry read looks at.
        // Read where reading is local: the copy, or (a clone uploaded to a
        // bucket from a local repository) the same bytes at the source,
        // rather than downloading what was just uploaded.
        let at: &Repository = match (d.local_path("config.toml"), s.local_path("config.toml")) {
            (None, Some(_)) => &source,
            _ => &repo,
        };
        let copied_from = |e: RepoError| match e {
            RepoError::CorruptObject {
                id,
                kind,
                location,
                reason,
            } => RepoError::CorruptObject {
                id,
                kind,
                location: format!("{location}; copied from {label}"),
                reason,
            },
            e => e,
        };
        let mut copied = Vec::new();
        for pack in streamed {
            let ik = crate::odb::idx_key(&pack);
            let raw = at.storage().as_ref();
            let max = crate::odb::index_bound(raw, &pack)?;
            let (idx, salt) = crate::odb::read_pack_index(raw, &at.codec(), &ik, pack, max, None)
                .map_err(copied_from)?;
            // (Every entry header on local disk; in a bucket, the
            // header and layout: one request, not one per entry.)
            let local = raw.local_path(&ik).is_some();
            if let Some(why) = crate::odb::check_pack_frame(raw, &pack, &idx, salt, local)? {
                return Err(RepoError::CorruptObject {
                    id: pack,
                    kind: "pack",
                    location: format!("{} from {label}", crate::odb::pack_key(&pack)),
                    reason: why,
                });
            }
            copied.push((pack, idx.entries));
        }
        verify_copied_packs(at, &copied, checked_out).map_err(copied_from)?;
        // Every object the refs need is there (the chunks by the object
        // table: those the checkout does not read were read above). Only
        // absence fails the clone: an object that is there but refused
        // (a tree nested past the limits, planted in one branch) is the
        // source's as it is, and every command refuses it there too.
        let odb = repo.odb()?;
        let roots: Vec<crate::reach::Root> = snapshot
            .iter()
            .map(|(k, id)| crate::backup::tip_root(odb, *id, k.clone()))
            .collect();
        let reach = crate::reach::walk(odb, &roots, &|id| odb.contains(id));
        let missing: Vec<_> = reach
            .unreadable
            .iter()
            .filter(|u| !odb.contains(&u.id))
            .collect();
        if let Some(u) = missing.first() {
            return Err(RepoError::MissingObject {
                id: u.id,
                kind: u.kind.name(),
                context: Some(format!(
                    "{}; {} lacks it ({} object(s) in all)",
                    u.needed_by,
                    label,
                    missing.len()
                )),
            });
        }
        let origin = origin.filter(|_| !opts.bare);
        for (key, id) in &snapshot {
            let id = *id;
            repo.cas_ref(key, None, Some(id))?;
            out.refs += 1;
            if let (Some(b), Some(_)) = (key.strip_prefix("refs/heads/"), &origin) {
                repo.cas_ref(&format!("refs/remotes/origin/{b}"), None, Some(id))?;
            }
            if key.starts_with("refs/heads/") {
                repo.workspace()?.append_reflog(
                    key,
                    &ReflogEntry {
                        old: ObjectId::ZERO,
                        new: id,
                        who: who.clone(),
                        message: format!("clone: from {label}"),
                    },
                )?;
            }
        }
        // The media records (their objects came with the packs). Derived
        // data: a value that does not read is left behind, not an error.
        if let Some(id) = notes {
            if repo.odb()?.contains(&id) {
                let _ = repo
                    .store()
                    .cas_ref(crate::media::NOTES_REF, None, Some(id));
            }
        }
        if let Some(url) = origin {
            let path = repo.workspace()?.dir().join("config.toml");
            let text = crate::repo::read_config_text(&path)?;
            let mut cfg = mediagit_format::config::RepoConfig::from_toml(&text)
                .map_err(|e| RepoError::format(path.display().to_string(), e))?;
            cfg.remotes.insert(
                "origin".into(),
                mediagit_format::config::RemoteConfig {
                    url,
                    token_env: None,
                },
            );
            if let Head::Branch(b) = &head {
                cfg.branches.insert(
                    b.clone(),
                    mediagit_format::config::BranchConfig {
                        remote: "origin".into(),
                        merge: b.clone(),
                    },
                );
            }
            write_atomic(&path, cfg.to_toml().as_bytes())?;
        }
        drop(_lock);
        if opts.bare {
            // HEAD names the source's branch (init wrote it); nothing to
            // check out.
            out.branch = match head {
                Head::Branch(b) => Some(b),
                Head::Detached(_) => None,
            };
            return Ok((repo, out));
        }
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
