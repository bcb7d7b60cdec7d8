//! Remotes: other copies of the repository, and fetch, push and ls-remote.
//!
//! A remote is named in the working tree's own `config.toml`
//! (`[remotes.NAME] url = "..."`, never taken from a store) or given as a
//! URL on the command line. Its URL is a directory (another repository: a
//! working tree or a bare one), `file://DIR`, or a store
//! (`s3://BUCKET/PREFIX`, `az://`, `gs://`, `b2://`): push and fetch then
//! copy between two stores with no server in between
//! ([`crate::transfer`]: only the objects the other side lacks move).
//!
//! What a fetch learns is kept as remote-tracking refs,
//! `refs/remotes/NAME/BRANCH`, in this repository's store (so they are gc
//! roots like every ref, and every working tree of a shared store sees
//! them). Tags are fetched when they are new; an existing tag is never
//! moved by a fetch. A push moves each remote ref by compare-and-swap from
//! the value it read: of two concurrent pushes to one branch exactly one
//! wins, the other is told the branch moved, and objects are always
//! stored before the ref that names them.
use std::path::{Path, PathBuf};

use serde::Serialize;

use mediagit_format::config::StorageConfig;
use mediagit_format::{ObjectId, Signature};
use mediagit_storage::CloudEnv;

use crate::error::{RepoError, Result};
use crate::progress::Progress;
use crate::refs::{Head, ReflogEntry};
use crate::repo::{Repository, SafeDirectories};
use crate::store::Store;
use crate::transfer::TransferStats;

/// Where a remote's URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteUrl {
    /// A repository on this machine (working tree or bare), or a
    /// `filesystem` store.
    Dir(PathBuf),
    /// A store in an object-store bucket.
    Store(StorageConfig),
    /// A MediaGit server.
    Http(String),
}

impl RemoteUrl {
    pub fn parse(url: &str) -> Result<RemoteUrl> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(RemoteUrl::Http(url.to_string()));
        }
        let sc = StorageConfig::from_url(url)
            .map_err(|e| RepoError::Invalid(format!("remote URL {url:?}: {e}")))?;
        if sc.is_object_store() {
            Ok(RemoteUrl::Store(sc))
        } else {
            Ok(RemoteUrl::Dir(PathBuf::from(sc.path.unwrap_or_default())))
        }
    }
}

/// What opening a remote needs from the caller.
#[derive(Clone, Default)]
pub struct RemoteAccess {
    pub env: CloudEnv,
    /// Repositories of other users the caller trusts (a directory remote
    /// is opened with the same ownership checks as any repository).
    pub safe: SafeDirectories,
    /// Tokens for servers by the name of the environment variable that
    /// holds them (`MEDIAGIT_TOKEN`, or a remote's `token_env`), collected
    /// by the caller: the library reads no environment.
    pub tokens: std::collections::BTreeMap<String, String>,
    /// A PEM file of CA certificates to trust besides the system's
    /// (`MEDIAGIT_CA_FILE`).
    pub ca_file: Option<PathBuf>,
    /// A server repository that does not exist yet is created (a push),
    /// when the server allows it.
    pub create: bool,
}

impl std::fmt::Debug for RemoteAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens.
        f.debug_struct("RemoteAccess")
            .field("safe", &self.safe)
            .field("token_vars", &self.tokens.keys().collect::<Vec<_>>())
            .field("ca_file", &self.ca_file)
            .field("create", &self.create)
            .finish()
    }
}

/// The default variable a server token is read from.
pub const TOKEN_VAR: &str = "MEDIAGIT_TOKEN";

/// The client of a server repository: the token from `token_env` (else
/// `MEDIAGIT_TOKEN`) in `access.tokens`.
pub fn http_backend(
    url: &str,
    token_env: Option<&str>,
    access: &RemoteAccess,
) -> Result<mediagit_protocol::HttpBackend> {
    let var = token_env.unwrap_or(TOKEN_VAR);
    let opts = mediagit_protocol::HttpOptions {
        token: access.tokens.get(var).cloned(),
        token_source: Some(var.to_string()),
        ca_file: access.ca_file.clone(),
        attempts: None,
    };
    Ok(mediagit_protocol::HttpBackend::new(url, &opts)?)
}

/// Creates an empty repository on the MediaGit server at `url`
/// (`init --bare URL`): needs the admin right there, or the write right on
/// a server that creates repositories on push. `opts` as for
/// [`Repository::init`] (branch, encryption); the server never sees an
/// encrypted repository's key. Returns the server's name for the
/// repository and for the user.
pub fn init_server(
    url: &str,
    opts: &crate::repo::InitOptions,
    access: &RemoteAccess,
) -> Result<(String, String)> {
    let RemoteUrl::Http(u) = RemoteUrl::parse(url)? else {
        return Err(RepoError::Invalid(format!(
            "{url} is not a MediaGit server URL (http(s)://HOST[:PORT]/NAME)"
        )));
    };
    let backend = http_backend(&u, None, access)?;
    let info = backend.info()?;
    if info.exists {
        return Err(RepoError::StoreHasRepository { store: u });
    }
    if !(info.may_create || info.right >= mediagit_protocol::wire::Right::Admin) {
        return Err(RepoError::Invalid(format!(
            "{u}: {} may not create repository {} on that server (it needs the admin right, or the write right on a server run with --create-on-push)",
            info.user, info.repo
        )));
    }
    crate::repo::init_store_only(&backend, opts)?;
    Ok((info.repo, info.user))
}

/// An opened remote.
pub struct Remote {
    /// The configured name; `None` for a URL given on the command line
    /// (no remote-tracking refs are kept for those).
    pub name: Option<String>,
    pub url: String,
    /// The remote's store, opened with this repository's key if encrypted.
    pub repo: Repository,
    /// The branch checked out in the remote's working tree (a non-bare
    /// directory remote): a push never moves it under that working tree.
    pub checked_out: Option<String>,
}

impl Remote {
    /// How errors and reports name it: its name, else its URL.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("remote '{n}'"),
            None => self.url.clone(),
        }
    }
}

/// How one ref fared.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RefStatus {
    New,
    FastForward,
    Forced,
    UpToDate,
    Deleted,
    /// Not moved; why.
    Rejected(String),
}

/// One ref a fetch or push looked at.
#[derive(Debug, Clone, Serialize)]
pub struct RefUpdate {
    /// The ref that moved (for a fetch, the local one; for a push, the
    /// remote's).
    pub name: String,
    /// The ref on the other side it came from.
    pub source: String,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
    pub status: RefStatus,
}

impl RefUpdate {
    pub fn rejected(&self) -> bool {
        matches!(self.status, RefStatus::Rejected(_))
    }
}

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Delete remote-tracking refs whose branch the remote no longer has.
    pub prune: bool,
    /// Fetch the remote's tags (new ones only).
    pub tags: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct FetchOutcome {
    pub remote: String,
    pub transfer: TransferStats,
    pub updates: Vec<RefUpdate>,
    /// Why the remote's media records could not be brought in (the refs
    /// were fetched; the records are derived data, `media --scan` redoes them).
    pub media_warning: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// `BRANCH` or `SRC:DST` (SRC any revision, DST a branch name on the
    /// remote). Empty: the checked-out branch.
    pub refspecs: Vec<String>,
    /// Every local tag too.
    pub tags: bool,
    /// Remote branches to delete.
    pub delete: Vec<String>,
    /// Move remote refs that would not fast-forward.
    pub force: bool,
    /// ... but only if the remote ref is where this repository's
    /// remote-tracking ref says (nobody pushed since the last fetch).
    pub force_with_lease: bool,
    /// Files locked on the remote by someone else: (path, owner). A push
    /// whose commits (those the remote lacks) change one is refused before
    /// anything is sent.
    pub locked: Vec<(String, String)>,
}

#[derive(Debug, Default, Serialize)]
pub struct PushOutcome {
    pub remote: String,
    pub transfer: TransferStats,
    pub updates: Vec<RefUpdate>,
    /// Why the media records of the pushed files could not be sent.
    pub media_warning: Option<String>,
}

/// The refs a remote has: (full name, value), branches then tags, and the
/// branch its HEAD names.
#[derive(Debug, Default, Serialize)]
pub struct RemoteRefs {
    pub head: Option<String>,
    pub refs: Vec<(String, ObjectId)>,
    /// Refs whose value does not read: (name or storage key, why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<(String, String)>,
}

/// Opens the repository at a directory remote, which must be the
/// repository itself (a working tree or a bare repository), not a
/// directory inside one.
fn open_dir_remote(path: &Path, access: &RemoteAccess) -> Result<(Repository, Option<String>)> {
    let canon = path
        .canonicalize()
        .map_err(|e| RepoError::io("open remote", path, e))?;
    let found = Repository::find_dir(&canon)?;
    if found != canon && found != canon.join(crate::repo::DOT_DIR) {
        return Err(RepoError::NotAStore {
            store: canon.display().to_string(),
            found: String::new(),
        });
    }
    let repo = Repository::discover_trusting(&canon, &access.env, &access.safe)?;
    // A working tree's branch, also when the remote is named by its
    // `.mediagit` directory (which looks like a bare repository, but its
    // settings say it is not one).
    let checked_out = match repo.workspace_opt() {
        Some(ws) if !ws.is_bare() || !repo.config().core.bare => match ws.head()? {
            Head::Branch(b) => Some(b),
            Head::Detached(_) => None,
        },
        _ => None,
    };
    Ok((repo, checked_out))
}

/// The full name of a ref on a remote that a push names: `refs/tags/T`
/// (a tag), `refs/heads/B` or `B` (a branch); checked as a new ref name.
/// Returns it and whether it is a tag.
fn remote_ref_name(d: &str) -> Result<(String, bool)> {
    if let Some(t) = d.strip_prefix("refs/tags/") {
        crate::refs::validate_new_ref_name("tag", t)?;
        return Ok((crate::refs::tag_ref(t), true));
    }
    let b = d.strip_prefix("refs/heads/").unwrap_or(d);
    if b.starts_with("refs/") || b == "HEAD" {
        return Err(RepoError::Invalid(format!(
            "{d}: a push names a branch (B or refs/heads/B) or a tag (refs/tags/T) on the remote"
        )));
    }
    crate::refs::validate_new_ref_name("branch", b)?;
    Ok((crate::refs::branch_ref(b), false))
}

impl Repository {
    /// Opens the remote `name` (a configured remote) or, if no remote has
    /// that name, the URL `name`. An encrypted remote is opened with this
    /// repository's key (it must be a copy of this repository).
    pub fn open_remote(&self, name: &str, access: &RemoteAccess) -> Result<Remote> {
        let (rname, url, token_env) = match self.config().remotes.get(name) {
            Some(r) => (Some(name.to_string()), r.url.clone(), r.token_env.clone()),
            None if name.contains(['/', ':', '.']) => (None, name.to_string(), None),
            None => return Err(RepoError::Invalid(format!("no remote named '{name}'"))),
        };
        let (repo, checked_out) = match RemoteUrl::parse(&url)? {
            RemoteUrl::Http(u) => {
                let backend = http_backend(&u, token_env.as_deref(), access)?;
                let info = backend.info()?;
                let storage: std::sync::Arc<dyn mediagit_storage::Storage> =
                    std::sync::Arc::new(backend);
                if !info.exists {
                    if !access.create {
                        return Err(RepoError::Invalid(format!(
                            "{u}: no repository {} on that server",
                            info.repo
                        )));
                    }
                    if !info.may_create {
                        return Err(RepoError::Invalid(format!(
                            "{u}: no repository {} on that server, and {} may not create one (the server needs --create-on-push and the write right, or the admin right)",
                            info.repo, info.user
                        )));
                    }
                    self.store().init_remote_store(storage.as_ref())?;
                }
                let store = Store::open(storage, self.store().tmp_dir().to_path_buf())?;
                (Repository::on_store(store), None)
            }
            RemoteUrl::Dir(p) => open_dir_remote(&p, access)?,
            RemoteUrl::Store(sc) => {
                let storage = crate::repo::open_storage(Path::new("."), Some(&sc), &access.env)?;
                let store = Store::open(storage, self.store().tmp_dir().to_path_buf())?;
                (Repository::on_store(store), None)
            }
        };
        let store = repo.store().clone().unlock_like(self.store())?;
        let label = rname
            .as_ref()
            .map(|n| format!("remote '{n}'"))
            .unwrap_or_else(|| url.clone());
        crate::transfer::check_same_naming(self.store(), &store, &label)?;
        Ok(Remote {
            name: rname,
            url,
            repo: Repository::on_store(store),
            checked_out,
        })
    }

    /// Under the repository lock: the remote is still configured (a
    /// `remote remove` that ran while this command was opening it must
    /// not see its remote-tracking branches come back).
    fn check_still_configured(&self, remote: &Remote) -> Result<()> {
        let (Some(name), Some(ws)) = (&remote.name, self.workspace_opt()) else {
            return Ok(());
        };
        let path = ws.dir().join("config.toml");
        let text = crate::repo::read_config_text(&path)?;
        let cfg = mediagit_format::config::RepoConfig::from_toml(&text)
            .map_err(|e| RepoError::format(path.display().to_string(), e))?;
        if !cfg.remotes.contains_key(name) {
            return Err(RepoError::Invalid(format!(
                "remote '{name}' was removed while this command was starting; nothing was fetched"
            )));
        }
        Ok(())
    }

    /// The remote's branches and tags; a ref whose value cannot be read
    /// is listed in `unreadable` with why, not an error.
    pub fn remote_refs(&self, remote: &Remote) -> Result<RemoteRefs> {
        let r = &remote.repo;
        let mut out = RemoteRefs {
            head: r.store().head_branch().ok().flatten(),
            ..Default::default()
        };
        let mut entries = r.ref_entries("refs/heads/")?;
        entries.extend(r.ref_entries("refs/tags/")?);
        for (name, v) in entries {
            match v {
                Ok(id) => out.refs.push((name, id)),
                Err(e) => {
                    if !out.unreadable.iter().any(|(n, _)| *n == name) {
                        out.unreadable.push((name, e.to_string()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Fetches the remote's branches (into `refs/remotes/NAME/`) and new
    /// tags, with every object they need that this repository lacks. A
    /// remote ref that cannot be read or whose name this repository does
    /// not accept, and a local ref that cannot be moved, are reported
    /// (rejected) without stopping the others.
    pub fn fetch(
        &self,
        remote: &Remote,
        opts: &FetchOptions,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<FetchOutcome> {
        let _lock = match self.workspace_opt() {
            Some(ws) => Some(ws.lock()?),
            None => None,
        };
        self.check_still_configured(remote)?;
        let mut out = FetchOutcome {
            remote: remote.label(),
            ..Default::default()
        };
        let reject = |name: &str, why: String| RefUpdate {
            name: name.to_string(),
            source: name.to_string(),
            old: None,
            new: None,
            status: RefStatus::Rejected(why),
        };
        // (branch name, id) and (tag name, id), names checked as a new
        // local ref's would be (no invisible characters, no '..').
        let mut heads: Vec<(String, ObjectId)> = Vec::new();
        let mut tags: Vec<(String, ObjectId)> = Vec::new();
        let mut listed = remote.repo.ref_entries("refs/heads/")?;
        if opts.tags {
            listed.extend(remote.repo.ref_entries("refs/tags/")?);
        }
        let mut unreadable = std::collections::HashSet::new();
        for (name, r) in listed {
            let (short, is_tag) = match (
                name.strip_prefix("refs/heads/"),
                name.strip_prefix("refs/tags/"),
            ) {
                (Some(b), _) => (b.to_string(), false),
                (_, Some(t)) => (t.to_string(), true),
                _ => (name.clone(), false),
            };
            match r {
                Err(e) => {
                    if unreadable.insert(name.clone()) {
                        out.updates
                            .push(reject(&name, format!("unreadable on the remote: {e}")));
                    }
                }
                Ok(id) => match crate::refs::validate_new_ref_name(
                    if is_tag { "tag" } else { "branch" },
                    &short,
                ) {
                    Err(e) => out.updates.push(reject(&name, format!("not taken: {e}"))),
                    Ok(()) if is_tag => tags.push((short, id)),
                    Ok(()) => heads.push((short, id)),
                },
            }
        }
        // Tags that would clobber a local one are not fetched at all.
        let mut tag_updates = Vec::new();
        for (tag, id) in &tags {
            let name = crate::refs::tag_ref(tag);
            let old = self.read_ref(&name).ok().flatten();
            let status = match old {
                None => RefStatus::New,
                Some(o) if o == *id => RefStatus::UpToDate,
                Some(_) => RefStatus::Rejected("would clobber an existing tag".into()),
            };
            tag_updates.push(RefUpdate {
                name: name.clone(),
                source: name,
                old,
                new: Some(*id),
                status,
            });
        }
        let mut tips: Vec<ObjectId> = heads.iter().map(|(_, id)| *id).collect();
        tips.extend(
            tag_updates
                .iter()
                .filter(|u| !u.rejected())
                .filter_map(|u| u.new),
        );
        let label = remote.label();
        out.transfer = crate::transfer::copy_missing(
            remote.repo.store(),
            self.store(),
            &tips,
            crate::transfer::Labels {
                src: &label,
                dst: crate::transfer::THIS,
            },
            progress,
        )?;
        // A reflog record is best effort: the ref has moved either way (a
        // name too long for a file name must not undo a fetch).
        let log = |name: &str, old: Option<ObjectId>, new: ObjectId, msg: String| {
            if let Some(ws) = self.workspace_opt() {
                let _ = ws.append_reflog(
                    name,
                    &ReflogEntry {
                        old: old.unwrap_or(ObjectId::ZERO),
                        new,
                        who: who.clone(),
                        message: msg,
                    },
                );
            }
        };
        if let Some(rname) = &remote.name {
            let prefix = format!("refs/remotes/{rname}/");
            // Pruned first: a branch `a/b` the remote replaced with `a`
            // must be gone before `a` can be written.
            if opts.prune {
                for (branch, id) in self.list_refs(&prefix)? {
                    // A branch the remote still has, but whose value did
                    // not read, is not pruned.
                    if heads.iter().any(|(n, _)| *n == branch)
                        || unreadable.contains(&crate::refs::branch_ref(&branch))
                    {
                        continue;
                    }
                    let local = format!("{prefix}{branch}");
                    let status = match self.cas_ref(&local, Some(id), None) {
                        Ok(()) => RefStatus::Deleted,
                        Err(e) => RefStatus::Rejected(format!("cannot delete: {e}")),
                    };
                    out.updates.push(RefUpdate {
                        name: local,
                        source: crate::refs::branch_ref(&branch),
                        old: Some(id),
                        new: None,
                        status,
                    });
                }
            }
            for (branch, id) in &heads {
                let local = format!("{prefix}{branch}");
                let old = self.read_ref(&local).ok().flatten();
                let mut status = match old {
                    None => RefStatus::New,
                    Some(o) if o == *id => RefStatus::UpToDate,
                    Some(o) if self.is_ancestor(o, *id).unwrap_or(false) => RefStatus::FastForward,
                    Some(_) => RefStatus::Forced,
                };
                if status != RefStatus::UpToDate {
                    match self.cas_ref(&local, old, Some(*id)) {
                        Ok(()) => log(&local, old, *id, format!("fetch: from {}", remote.url)),
                        Err(e) => {
                            status = RefStatus::Rejected(format!(
                                "cannot update {local}: {e} (`mediagit fetch --prune` removes stale remote-tracking branches)"
                            ))
                        }
                    }
                }
                out.updates.push(RefUpdate {
                    name: local,
                    source: crate::refs::branch_ref(branch),
                    old,
                    new: Some(*id),
                    status,
                });
            }
        }
        for mut u in tag_updates {
            if let (RefStatus::New, Some(id)) = (&u.status, u.new) {
                if let Err(e) = self.cas_ref(&u.name, None, Some(id)) {
                    u.status = RefStatus::Rejected(format!("cannot create: {e}"));
                }
            }
            out.updates.push(u);
        }
        if let Err(e) = self.fetch_media_records(&remote.repo, &label) {
            out.media_warning = Some(e.to_string());
        }
        Ok(out)
    }

    /// Pushes branches (and tags) to the remote: objects first, then each
    /// remote ref by compare-and-swap. Refused refs are reported, not
    /// errors; the others still move.
    pub fn push(
        &self,
        remote: &Remote,
        opts: &PushOptions,
        progress: &dyn Progress,
    ) -> Result<PushOutcome> {
        let mut planned: Vec<RefUpdate> = Vec::new();
        let mut specs = opts.refspecs.clone();
        if specs.is_empty() && opts.delete.is_empty() && !opts.tags {
            match self.head()? {
                Head::Branch(b) => specs.push(b),
                Head::Detached(_) => return Err(RepoError::Invalid(
                    "HEAD is detached: name the branch to push (`mediagit push REMOTE SRC:BRANCH`)"
                        .into(),
                )),
            }
        }
        let r = &remote.repo;
        for spec in &specs {
            planned.push(self.plan_spec(remote, spec, opts)?);
        }
        if opts.tags {
            for (tag, id) in self.list_refs("refs/tags/")? {
                let name = crate::refs::tag_ref(&tag);
                let old = r.read_ref(&name)?;
                let status = match old {
                    None => RefStatus::New,
                    Some(o) if o == id => RefStatus::UpToDate,
                    Some(_) if opts.force => RefStatus::Forced,
                    Some(_) => {
                        RefStatus::Rejected("the remote has another tag of that name".into())
                    }
                };
                planned.push(RefUpdate {
                    name: name.clone(),
                    source: name,
                    old,
                    new: Some(id),
                    status,
                });
            }
        }
        for b in &opts.delete {
            let (name, is_tag) = remote_ref_name(b)?;
            let b = name.strip_prefix("refs/heads/").unwrap_or(&name);
            let old = r.read_ref(&name)?;
            let status = if old.is_none() {
                RefStatus::Rejected(format!(
                    "the remote has no such {}",
                    if is_tag { "tag" } else { "branch" }
                ))
            } else if remote.checked_out.as_deref() == Some(b) && !is_tag {
                RefStatus::Rejected("checked out in the remote's working tree".into())
            } else {
                RefStatus::Deleted
            };
            planned.push(RefUpdate {
                name: name.clone(),
                source: String::new(),
                old,
                new: None,
                status,
            });
        }
        let moving = |u: &RefUpdate| {
            matches!(
                u.status,
                RefStatus::New | RefStatus::FastForward | RefStatus::Forced
            )
        };
        let tips: Vec<ObjectId> = planned
            .iter()
            .filter(|u| moving(u))
            .filter_map(|u| u.new)
            .collect();
        if !opts.locked.is_empty() && !tips.is_empty() {
            let changed = self.paths_changed_by_missing_commits(r.store(), &tips)?;
            let files: Vec<(String, String)> = opts
                .locked
                .iter()
                .filter(|(p, _)| changed.contains(p))
                .cloned()
                .collect();
            if !files.is_empty() {
                return Err(RepoError::PushLocked {
                    remote: remote.label(),
                    files,
                });
            }
        }
        let transfer = if tips.is_empty() {
            TransferStats::default()
        } else {
            let label = remote.label();
            crate::transfer::copy_missing(
                self.store(),
                r.store(),
                &tips,
                crate::transfer::Labels {
                    src: crate::transfer::THIS,
                    dst: &label,
                },
                progress,
            )?
        };
        for u in &mut planned {
            if u.rejected() {
                continue;
            }
            // Up to date: nothing to move there, but the tracking ref
            // below still learns where the remote branch is.
            let cas = if u.status == RefStatus::UpToDate {
                Ok(())
            } else {
                r.cas_ref(&u.name, u.old, u.new)
            };
            match cas {
                Ok(()) => {}
                Err(RepoError::RefRace { .. }) => {
                    u.status = RefStatus::Rejected(
                        "the remote ref moved while pushing (fetch first)".into(),
                    );
                    continue;
                }
                // One ref that cannot be written (a name that clashes
                // with a folder of branches there) does not stop the
                // others: it is reported.
                Err(e) => {
                    u.status = RefStatus::Rejected(format!("cannot update: {e}"));
                    continue;
                }
            }
            if let (Some(rname), Some(b)) = (&remote.name, u.name.strip_prefix("refs/heads/")) {
                // Best effort: the push happened; a tracking ref that
                // cannot be moved (a stale folder of them in the way) is
                // corrected by the next `fetch --prune`.
                let local = format!("refs/remotes/{rname}/{b}");
                if let Ok(cur) = self.read_ref(&local) {
                    if cur != u.new {
                        let _ = self.cas_ref(&local, cur, u.new);
                    }
                }
            }
        }
        let pushed: Vec<ObjectId> = planned
            .iter()
            .filter(|u| !u.rejected())
            .filter_map(|u| u.new)
            .collect();
        let media_warning = self
            .push_media_records(r, &pushed, &remote.label())
            .err()
            .map(|e| e.to_string());
        Ok(PushOutcome {
            remote: remote.label(),
            transfer,
            updates: planned,
            media_warning,
        })
    }

    /// `fsck --repair` from a remote: copies every object reachable from
    /// this repository's refs (and a detached HEAD) that it lacks or holds
    /// only damaged and that the remote has, verified. Returns what moved
    /// and the objects the remote could not give either.
    pub fn repair_from(
        &self,
        remote: &Remote,
        progress: &dyn Progress,
    ) -> Result<(TransferStats, Vec<ObjectId>)> {
        let _lock = match self.workspace_opt() {
            Some(ws) => Some(ws.lock()?),
            None => None,
        };
        let mut tips: Vec<ObjectId> = self
            .ref_entries("refs/")?
            .into_iter()
            .filter_map(|(_, r)| r.ok())
            .collect();
        if let Some(Head::Detached(id)) = self.workspace_opt().and_then(|ws| ws.head().ok()) {
            tips.push(id);
        }
        let label = remote.label();
        crate::transfer::copy_for_repair(
            remote.repo.store(),
            self.store(),
            &tips,
            crate::transfer::Labels {
                src: &label,
                dst: crate::transfer::THIS,
            },
            progress,
        )
    }

    /// One `SRC[:DST]` of a push: SRC is `HEAD`, a local branch, a local
    /// tag or any revision; DST a branch name, `refs/heads/B` or
    /// `refs/tags/T` (default: SRC's own name; `HEAD` is the current
    /// branch). The update's `source` is the local branch pushed
    /// (`refs/heads/B`), else SRC as given: only a branch gets an upstream.
    fn plan_spec(&self, remote: &Remote, spec: &str, opts: &PushOptions) -> Result<RefUpdate> {
        let current = || match self.head()? {
            Head::Branch(b) => Ok(b),
            Head::Detached(_) => Err(RepoError::Invalid(
                "HEAD is detached: name the remote branch (`mediagit push REMOTE HEAD:BRANCH`)"
                    .into(),
            )),
        };
        let (src, dst) = match spec.split_once(':') {
            Some((s, d)) => (s, Some(d)),
            None => (spec, None),
        };
        if src.is_empty() {
            return Err(RepoError::Invalid(format!(
                "push {spec:?}: nothing to push (use --delete BRANCH to delete one)"
            )));
        }
        // What is pushed, and what it is called here.
        let (new, source, own_name) = if src == "HEAD" || src == "@" {
            let b = current()?;
            let id = self
                .head_commit()?
                .ok_or_else(|| RepoError::UnbornBranch(b.clone()))?;
            (id, crate::refs::branch_ref(&b), crate::refs::branch_ref(&b))
        } else if let Some(id) = self.read_ref(&crate::refs::branch_ref(
            src.trim_start_matches("refs/heads/"),
        ))? {
            let b = crate::refs::branch_ref(src.trim_start_matches("refs/heads/"));
            (id, b.clone(), b)
        } else if let Some(id) =
            self.read_ref(&crate::refs::tag_ref(src.trim_start_matches("refs/tags/")))?
        {
            let t = crate::refs::tag_ref(src.trim_start_matches("refs/tags/"));
            (id, t.clone(), t)
        } else if dst.is_some() {
            (self.resolve(src)?, src.to_string(), String::new())
        } else {
            return Err(RepoError::Invalid(format!(
                "{src} is not a local branch or tag; to push another revision, name the remote branch: `mediagit push REMOTE {src}:BRANCH`"
            )));
        };
        let (name, is_tag) = match dst {
            Some(d) => remote_ref_name(d)?,
            None => (own_name.clone(), own_name.starts_with("refs/tags/")),
        };
        let r = &remote.repo;
        let old = r.read_ref(&name)?;
        let branch = name.strip_prefix("refs/heads/");
        let status = if !is_tag
            && branch.is_some()
            && remote.checked_out.as_deref() == branch
            && old != Some(new)
        {
            RefStatus::Rejected(
                "checked out in the remote's working tree (push to a bare repository)".into(),
            )
        } else if is_tag {
            match old {
                None => RefStatus::New,
                Some(o) if o == new => RefStatus::UpToDate,
                Some(_) if opts.force => RefStatus::Forced,
                Some(_) => RefStatus::Rejected("the remote has another tag of that name".into()),
            }
        } else {
            self.judge(remote, branch.unwrap_or(&name), old, new, opts)?
        };
        Ok(RefUpdate {
            name,
            source,
            old,
            new: Some(new),
            status,
        })
    }

    /// Whether moving the remote branch `dst` from `old` to `new` is
    /// allowed by the push options.
    fn judge(
        &self,
        remote: &Remote,
        dst: &str,
        old: Option<ObjectId>,
        new: ObjectId,
        opts: &PushOptions,
    ) -> Result<RefStatus> {
        let Some(old) = old else {
            return Ok(RefStatus::New);
        };
        if old == new {
            return Ok(RefStatus::UpToDate);
        }
        // A fast-forward: this repository has the remote's commit, and it
        // is an ancestor of the new one.
        if self.odb()?.contains(&old) && self.is_ancestor(old, new).unwrap_or(false) {
            return Ok(RefStatus::FastForward);
        }
        if opts.force_with_lease {
            let expected = match &remote.name {
                Some(n) => self
                    .read_ref(&format!("refs/remotes/{n}/{dst}"))
                    .ok()
                    .flatten(),
                None => None,
            };
            return Ok(if expected == Some(old) {
                RefStatus::Forced
            } else {
                RefStatus::Rejected(
                    "stale info: the remote branch is not where the last fetch saw it".into(),
                )
            });
        }
        if opts.force {
            return Ok(RefStatus::Forced);
        }
        Ok(RefStatus::Rejected(
            "non-fast-forward: the remote has commits this branch lacks (fetch, then pull)".into(),
        ))
    }

    /// Commits on `a` not on `b`, and on `b` not on `a` (ahead, behind),
    /// as Git counts them: both histories are walked newest first, each
    /// commit marked with the sides that reach it, until every commit
    /// still queued is reached by both (their common history is not read,
    /// beyond a few commits). Like Git's, the count trusts commit times:
    /// a clock skewed by more than the walk's slop can miscount.
    pub fn ahead_behind(&self, a: ObjectId, b: ObjectId) -> Result<(usize, usize)> {
        use std::collections::BinaryHeap;
        const A: u8 = 1;
        const B: u8 = 2;
        if a == b {
            return Ok((0, 0));
        }
        let odb = self.odb()?;
        let mut flags: mediagit_format::id::IdMap<u8> = Default::default();
        let mut heap = BinaryHeap::new();
        for (id, f) in [(a, A), (b, B)] {
            let c = odb.read_commit(&id)?;
            flags.insert(id, f);
            heap.push((c.committer.time, id, c.parents));
        }
        const SLOP: usize = 64;
        let mut slop = SLOP;
        while let Some((_, id, parents)) = heap.pop() {
            let f = flags[&id];
            for p in parents {
                let old = flags.get(&p).copied().unwrap_or(0);
                if old | f == old {
                    continue;
                }
                flags.insert(p, old | f);
                let c = odb.read_commit(&p)?;
                heap.push((c.committer.time, p, c.parents));
            }
            // The frontier is usually a few commits wide. Once it is all
            // common history the walk goes on a little (`slop`, as Git's
            // does): commits of one second, or a skewed clock, can put a
            // child after its parent, and the parent's side must still be
            // corrected.
            if heap.iter().all(|(_, id, _)| flags[id] == A | B) {
                if slop == 0 {
                    break;
                }
                slop -= 1;
            } else {
                slop = SLOP;
            }
        }
        let ahead = flags.values().filter(|f| **f == A).count();
        let behind = flags.values().filter(|f| **f == B).count();
        Ok((ahead, behind))
    }
}
