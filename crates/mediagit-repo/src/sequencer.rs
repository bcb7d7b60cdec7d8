//! `merge`, `cherry-pick`, `revert` and `rebase`: operations that apply
//! three-way merges to the working tree and may stop at conflicts, with
//! `--continue` and `--abort`; and `resolve`, which settles a conflicted
//! path with one side, the other or both.
//!
//! Why one machine for all four: each computes new trees (and commits)
//! in memory from trees alone — no file content is read — then moves the
//! working tree, the index and HEAD once. When a step conflicts, the
//! operation stops with the index holding base/ours/theirs for each
//! conflicted path, and its state (`.mediagit/operation`, FORMAT.md §7.2)
//! says how to go on or go back.
//!
//! Crash safety: the state file and a copy of the index are written
//! before anything else changes, and name every path the operation may
//! touch. Killed at any point, `--abort` puts HEAD, the index and those
//! paths back as they were; `--continue` refuses until the working tree
//! was fully updated (the `applied` mark, written after the index).
use std::collections::BTreeMap;

use mediagit_format::index::{ConflictEntry, IndexEntry, Stage, StatInfo};
use mediagit_format::{Commit, ObjectId, ObjectKind, Signature};

use crate::checkout::{obstacles, CheckoutOutcome, Listed};
use crate::error::{RepoError, Result};
use crate::merge::{
    base_files, commit_files, merge_bases, merge_trees, ConflictStrategy, MergeStrategy,
    PathConflict, PatternStrategy, Side, SideStrategy, TreeMerge,
};
use crate::odb::{Odb, PackSession};
use crate::progress::Progress;
use crate::refs::{Head, ReflogEntry};
use crate::repo::{write_atomic, Repository};
use crate::tree::{write_tree, FlatEntry, FlatTree};
use crate::worktree::WorktreeIndex;

/// The state file, in `.mediagit/`.
pub const STATE_FILE: &str = "operation";
/// The index as it was before the operation, in `.mediagit/`.
pub const INDEX_BACKUP: &str = "operation-index";
/// Version of the state file this build writes and reads.
pub const STATE_VERSION: u32 = 1;
/// Largest state file read (it lists touched paths; a hostile one is
/// refused, not allocated).
const MAX_STATE_BYTES: u64 = 256 << 20;

/// Which operation is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    Merge,
    /// `merge --squash`: commits with one parent.
    Squash,
    CherryPick,
    Revert,
    Rebase,
}

impl OpKind {
    pub fn command(self) -> &'static str {
        match self {
            OpKind::Merge | OpKind::Squash => "merge",
            OpKind::CherryPick => "cherry-pick",
            OpKind::Revert => "revert",
            OpKind::Rebase => "rebase",
        }
    }
}

/// `.mediagit/operation` (JSON; FORMAT.md §7.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpState {
    pub version: u32,
    pub op: OpKind,
    /// The branch HEAD was on (`None`: detached).
    pub branch: Option<String>,
    /// HEAD's commit when the operation began.
    pub orig_head: ObjectId,
    /// The commit HEAD is at while stopped (and at the end of a merge:
    /// the merge commit being made); `orig_head` when HEAD does not move.
    pub tip: ObjectId,
    /// Merge: the commit merged in (MERGE_HEAD). Sequences: the commit
    /// whose step stopped.
    pub other: ObjectId,
    /// How the user named `other` (for messages).
    pub other_name: String,
    /// The message the commit that finishes this step gets.
    pub message: String,
    /// The author that commit keeps (a picked commit's); `None`: the
    /// committer.
    pub author: Option<Signature>,
    /// Every path the operation may have changed in the working tree (and
    /// the index): what `--abort` restores.
    pub touched: Vec<String>,
    /// The working tree and index were fully updated for this stop.
    pub applied: bool,
    /// Steps still to do after this one (sequences).
    pub remaining: Vec<ObjectId>,
    /// Parent number of merge commits picked or reverted (1-based).
    pub mainline: Option<u32>,
    /// Changes are staged, not committed (`--no-commit`).
    pub no_commit: bool,
    /// Conflicts are taken from this side (`-X`).
    pub favor: Option<Side>,
    /// Every commit this operation made and moved (or is about to move)
    /// HEAD to, oldest first: wherever a kill left HEAD among them,
    /// `--abort` knows it as the operation's own.
    #[serde(default)]
    pub made: Vec<ObjectId>,
}

/// `merge`'s fast-forward choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FastForward {
    #[default]
    Allow,
    /// `--ff-only`.
    Only,
    /// `--no-ff`.
    Never,
}

#[derive(Debug, Clone)]
pub struct MergeOptions {
    pub theirs: ObjectId,
    /// How the user named it (`feature`, `origin/main`, an id).
    pub theirs_name: String,
    pub message: Option<String>,
    pub ff: FastForward,
    pub squash: bool,
    /// `-X ours|theirs`.
    pub favor: Option<Side>,
    pub who: Signature,
}

/// What an operation did.
#[derive(Debug, Default, serde::Serialize)]
pub struct OpOutcome {
    /// Nothing to do (`merge`: already up to date).
    pub up_to_date: bool,
    pub fast_forward: bool,
    /// Commits made, oldest first.
    pub commits: Vec<ObjectId>,
    /// Steps with nothing left to change (already applied), skipped.
    pub skipped: Vec<ObjectId>,
    /// The paths left conflicted (the operation stopped), with each side.
    pub conflicts: Vec<PathConflict>,
    /// Changes staged, not committed (`--squash`, `--no-commit`).
    pub staged_only: bool,
    /// Renames followed: (side, old path, new path).
    pub renames: Vec<(Side, String, String)>,
    pub written: usize,
    pub removed: usize,
}

/// One conflicted path, as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConflictInfo {
    pub path: String,
    pub kind: crate::merge::ConflictKind,
    pub ours: Option<SideInfo>,
    pub theirs: Option<SideInfo>,
}

/// One side of a conflicted path: the file and the commit that last
/// changed it on that side.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SideInfo {
    pub size: u64,
    pub mtime: mediagit_format::object::Timestamp,
    pub content: ObjectId,
    pub last_commit: Option<ObjectId>,
    pub last_author: Option<String>,
    pub last_time: Option<i64>,
    /// The media summary of this side's file ("image 6000x4000 Canon EOS
    /// R5"), so a user can pick a side; `None` for files that are not media.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    /// The whole media record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_record: Option<mediagit_media::Metadata>,
}

/// How `resolve` settles a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Ours,
    Theirs,
    /// Both versions side by side: `NAME~ours.EXT`, `NAME~theirs.EXT`.
    Both,
}

/// How far `last_change` walks back for a conflicted path's history.
const LAST_CHANGE_WALK: usize = 10_000;

pub(crate) fn entry_of(path: &str, e: &FlatEntry) -> IndexEntry {
    IndexEntry {
        path: path.to_string(),
        kind: e.kind,
        stat: StatInfo {
            size: e.size,
            mtime: e.mtime,
            ..Default::default()
        },
        content: e.content,
        manifest: e.manifest,
        target: e.target.clone(),
    }
}

pub use crate::merge::side_name;

/// Paths where two trees differ, sorted.
fn differing(a: &FlatTree, b: &FlatTree) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (p, e) in a {
        if b.get(p).is_none_or(|f| !f.same_content(e)) {
            out.push(p.clone());
        }
    }
    for p in b.keys() {
        if !a.contains_key(p) {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The files of an index (merged entries only).
fn index_files(idx: &WorktreeIndex) -> FlatTree {
    idx.entries
        .values()
        .map(|e| (e.path.clone(), FlatEntry::from_index(e)))
        .collect()
}

/// A step computed in memory.
enum Steps {
    /// Every step applied: the commit they end on and its files.
    Done { tip: ObjectId, files: FlatTree },
    /// Step `at` conflicted on top of `tip`.
    Stopped {
        tip: ObjectId,
        at: ObjectId,
        merge: TreeMerge,
        remaining: Vec<ObjectId>,
    },
}

impl Repository {
    fn state_path(&self) -> Result<std::path::PathBuf> {
        Ok(self.workspace()?.dir().join(STATE_FILE))
    }

    /// The operation under way in this working tree, if any.
    pub fn operation(&self) -> Result<Option<OpState>> {
        let path = self.state_path()?;
        // Not through a link, never waiting on a FIFO.
        let opened = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)
        };
        let f = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RepoError::io("read", &path, e)),
        };
        let bad = |why: String| {
            RepoError::Invalid(format!(
                "{} is damaged ({why}); `mediagit reset --hard` (or `switch --force`) clears it",
                path.display()
            ))
        };
        let meta = f.metadata().map_err(|e| RepoError::io("read", &path, e))?;
        if !meta.is_file() || meta.len() > MAX_STATE_BYTES {
            return Err(bad("not a regular file of at most 256 MiB".into()));
        }
        let state: OpState =
            serde_json::from_reader(std::io::BufReader::new(f)).map_err(|e| bad(e.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(bad(format!(
                "version {}; this build reads version {STATE_VERSION}",
                state.version
            )));
        }
        if let Some(b) = &state.branch {
            crate::refs::validate_ref_name("branch", b)
                .map_err(|_| bad(format!("branch {b:?}")))?;
        }
        for p in &state.touched {
            mediagit_format::object::validate_path(p).map_err(|_| bad(format!("path {p:?}")))?;
        }
        Ok(Some(state))
    }

    fn save_state(&self, s: &OpState) -> Result<()> {
        let bytes = serde_json::to_vec(s)
            .map_err(|e| RepoError::Invalid(format!("cannot encode the operation state: {e}")))?;
        write_atomic(&self.state_path()?, &bytes)
    }

    fn clear_state(&self) -> Result<()> {
        let dir = self.workspace()?.dir().to_path_buf();
        for name in [STATE_FILE, INDEX_BACKUP] {
            let p = dir.join(name);
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(RepoError::io("remove", &p, e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Refuses to start an operation while another is under way.
    fn refuse_if_operating(&self) -> Result<()> {
        if let Some(s) = self.operation()? {
            return Err(RepoError::OperationInProgress { op: s.op.command() });
        }
        Ok(())
    }

    /// Forgets an operation under way (`switch --force`, `reset`).
    pub(crate) fn drop_operation(&self) -> Result<()> {
        self.clear_state()
    }

    /// The strategy for files both sides changed: `[merge]` patterns,
    /// then the media-aware merge (a photo's metadata from one side and
    /// its image data from the other; XMP sidecars property by property),
    /// then `favor` (`-X`), then a conflict.
    pub fn merge_strategy(&self, favor: Option<Side>) -> Result<Box<dyn MergeStrategy + '_>> {
        let rest: Box<dyn MergeStrategy> = match favor {
            Some(s) => Box::new(SideStrategy(s)),
            None => Box::new(ConflictStrategy),
        };
        let media = Box::new(crate::media_merge::MediaStrategy::new(self, rest));
        let m = &self.config().merge;
        if m.ours.is_empty() && m.theirs.is_empty() {
            return Ok(media);
        }
        Ok(Box::new(PatternStrategy::new(&m.ours, &m.theirs, media)?))
    }

    /// Staged changes (index against `head`), sorted.
    fn staged_changes(idx: &WorktreeIndex, head: &FlatTree) -> Vec<String> {
        differing(&index_files(idx), head)
    }

    /// Checks that moving the working tree from `from` (what HEAD and the
    /// index hold) to `to` loses nothing: no staged change anywhere, no
    /// change in the working tree at a path that changes, no untracked
    /// file in the way. Returns the paths that change.
    fn check_transition(
        &self,
        idx: &WorktreeIndex,
        from: &FlatTree,
        to: &FlatTree,
        conflicts: &[PathConflict],
    ) -> Result<Vec<String>> {
        self.check_transition_with(idx, from, to, conflicts, false)
    }

    /// [`Self::check_transition`] for `stash apply`: staged changes at
    /// paths it does not write are allowed (they stay staged).
    pub(crate) fn check_paths_free(
        &self,
        idx: &WorktreeIndex,
        from: &FlatTree,
        to: &FlatTree,
    ) -> Result<Vec<String>> {
        self.check_transition_with(idx, from, to, &[], true)
    }

    fn check_transition_with(
        &self,
        idx: &WorktreeIndex,
        from: &FlatTree,
        to: &FlatTree,
        conflicts: &[PathConflict],
        staged_elsewhere: bool,
    ) -> Result<Vec<String>> {
        let mut staged = Self::staged_changes(idx, from);
        let mut touched = differing(from, to);
        touched.extend(conflicts.iter().map(|c| c.path.clone()));
        touched.sort();
        touched.dedup();
        if staged_elsewhere {
            staged.retain(|p| touched.binary_search(p).is_ok());
            if !staged.is_empty() {
                return Err(RepoError::WouldOverwriteChanges { paths: staged });
            }
        } else if !staged.is_empty() {
            return Err(RepoError::StagedChanges { paths: staged });
        }
        if touched.is_empty() {
            return Ok(touched);
        }
        let scan = self.scan_worktree(idx, "")?;
        let mut dirty: Vec<String> = scan
            .changed
            .iter()
            .map(|(p, _)| p.clone())
            .filter(|p| touched.binary_search(p).is_ok())
            .collect();
        if !dirty.is_empty() {
            dirty.sort();
            return Err(RepoError::WouldOverwriteChanges { paths: dirty });
        }
        let root = self.worktree()?.to_path_buf();
        let tracked = |p: &str| idx.entries.contains_key(p);
        let mut in_the_way = Vec::new();
        // Never look behind a symlinked directory: a tracked link the
        // change removes goes before anything is written where it stood
        // (what lies behind it is not in the way), and `apply` refuses
        // any other path beyond a link, naming it.
        let mut guard = crate::worktree::ParentGuard::new(&root);
        for p in &touched {
            if to.get(p).is_none() || tracked(p) {
                continue;
            }
            if guard.beyond_symlink(p).is_some() {
                continue;
            }
            let m = std::fs::symlink_metadata(root.join(p)).ok();
            if m.as_ref().is_some_and(|m| !m.is_dir()) {
                in_the_way.push(p.clone());
            }
            let is_dir = m.as_ref().is_some_and(|m| m.is_dir());
            for (f, t) in obstacles(&root, p, is_dir, &tracked) {
                if !t {
                    in_the_way.push(f);
                }
            }
        }
        if !in_the_way.is_empty() {
            in_the_way.sort();
            in_the_way.dedup();
            return Err(RepoError::WouldOverwriteUntracked { paths: in_the_way });
        }
        Ok(touched)
    }

    /// Writes `paths` from `to` into the working tree and index (removing
    /// those `to` lacks). Files of `paths` that stand in the way of a
    /// directory `to` needs are tracked and go first.
    pub(crate) fn write_paths(
        &self,
        idx: &mut WorktreeIndex,
        to: &FlatTree,
        paths: &[String],
        progress: &dyn Progress,
    ) -> Result<CheckoutOutcome> {
        let root = self.worktree()?.to_path_buf();
        let odb = self.odb()?;
        let list: Vec<(&str, &FlatEntry)> = paths
            .iter()
            .filter_map(|p| to.get(p).map(|e| (p.as_str(), e)))
            .collect();
        let mut to_remove: Vec<String> = paths
            .iter()
            .filter(|p| !to.contains_key(*p))
            .cloned()
            .collect();
        to_remove.sort();
        self.apply(
            odb,
            &root,
            idx,
            &mut Listed(&list),
            &to_remove,
            false,
            progress,
        )
    }

    /// Puts the conflicts into the index: base/ours/theirs for each path,
    /// no merged entry.
    fn stage_conflicts(idx: &mut WorktreeIndex, conflicts: &[PathConflict]) {
        for c in conflicts {
            idx.entries.remove(&c.path);
            idx.conflicts.retain(|x| x.entry.path != c.path);
            for (stage, e) in [
                (Stage::Base, &c.base),
                (Stage::Ours, &c.ours),
                (Stage::Theirs, &c.theirs),
            ] {
                if let Some(e) = e {
                    idx.conflicts.push(ConflictEntry {
                        stage,
                        entry: entry_of(&c.path, e),
                    });
                }
            }
        }
        idx.conflicts.sort_by(|a, b| {
            a.entry
                .path
                .as_bytes()
                .cmp(b.entry.path.as_bytes())
                .then((a.stage as u8).cmp(&(b.stage as u8)))
        });
    }

    fn write_commit(
        session: &mut PackSession<'_>,
        files: &FlatTree,
        parents: Vec<ObjectId>,
        author: &Signature,
        committer: &Signature,
        message: &str,
    ) -> Result<ObjectId> {
        let entries: Vec<IndexEntry> = files.iter().map(|(p, e)| entry_of(p, e)).collect();
        let mut trees = Vec::new();
        let tree = write_tree(session, entries.iter(), &mut trees)?;
        let commit = Commit {
            tree,
            parents,
            author: author.clone(),
            committer: committer.clone(),
            message: format!("{}\n", message.trim_end()),
        };
        session.put_object(ObjectKind::Commit, &commit.encode())
    }

    /// Backs the index up and writes the state: before anything changes.
    fn begin(&self, state: &OpState) -> Result<()> {
        let dir = self.workspace()?.dir().to_path_buf();
        match self.workspace()?.read_index_bytes()? {
            Some(b) => write_atomic(&dir.join(INDEX_BACKUP), &b)?,
            None => {
                let p = dir.join(INDEX_BACKUP);
                let _ = std::fs::remove_file(&p);
            }
        }
        crate::failpoint::hit("write:operation-begin");
        self.save_state(state)
    }

    /// Moves HEAD's target from `from` to `to` (branch by compare-and-swap).
    fn move_head(&self, from: ObjectId, to: ObjectId, who: &Signature, msg: &str) -> Result<()> {
        if from == to {
            return Ok(());
        }
        self.update_head_target(Some(from), to, who, msg)
    }

    /// HEAD's commit and the index an operation starts from: a commit
    /// (not an unborn branch) and no conflict left.
    fn starting_point(&self) -> Result<(ObjectId, WorktreeIndex)> {
        let head = self.head()?;
        let Some(orig) = self.head_commit()? else {
            return Err(RepoError::UnbornBranch(match head {
                Head::Branch(b) => b,
                Head::Detached(_) => "HEAD".into(),
            }));
        };
        let idx = self.workspace()?.load_index()?;
        if !idx.conflicts.is_empty() {
            return Err(RepoError::UnresolvedConflicts {
                paths: idx.conflicted_paths(),
            });
        }
        Ok((orig, idx))
    }

    // ----- merge -----

    /// `mediagit merge`.
    pub fn merge(&self, opts: &MergeOptions, progress: &dyn Progress) -> Result<OpOutcome> {
        let _lock = self.workspace()?.lock()?;
        self.refuse_if_operating()?;
        let (ours, mut idx) = self.starting_point()?;
        let head = self.head()?;
        let theirs = self.peel(opts.theirs)?;
        let odb = self.odb()?;
        let bases = merge_bases(odb, &[ours], &[theirs])?;
        if bases.contains(&theirs) {
            return Ok(OpOutcome {
                up_to_date: true,
                ..Default::default()
            });
        }
        let ours_files = commit_files(odb, &ours)?;
        let into = match &head {
            Head::Branch(b) => b.clone(),
            Head::Detached(_) => "HEAD".into(),
        };
        let can_ff = bases.contains(&ours);
        if can_ff && opts.ff != FastForward::Never && !opts.squash {
            let theirs_files = commit_files(odb, &theirs)?;
            let touched = self.check_transition(&idx, &ours_files, &theirs_files, &[])?;
            let state = OpState {
                version: STATE_VERSION,
                op: OpKind::Merge,
                branch: self.current_branch()?,
                orig_head: ours,
                tip: theirs,
                other: theirs,
                other_name: opts.theirs_name.clone(),
                message: String::new(),
                author: None,
                touched: touched.clone(),
                applied: false,
                remaining: Vec::new(),
                mainline: None,
                no_commit: false,
                favor: None,
                made: Vec::new(),
            };
            self.begin(&state)?;
            let out = self.write_paths(&mut idx, &theirs_files, &touched, progress)?;
            self.workspace()?.save_index(&mut idx, &self.codec())?;
            self.move_head(
                ours,
                theirs,
                &opts.who,
                &format!("merge {}: Fast-forward", opts.theirs_name),
            )
            .map_err(|e| race(e, &state))?;
            self.clear_state()?;
            return Ok(OpOutcome {
                fast_forward: true,
                commits: vec![],
                written: out.written,
                removed: out.removed,
                ..Default::default()
            });
        }
        if opts.ff == FastForward::Only {
            return Err(RepoError::NotFastForward {
                what: format!("{into} to {}", opts.theirs_name),
            });
        }
        let base = base_files(odb, &bases)?;
        let theirs_files = commit_files(odb, &theirs)?;
        let strategy = self.merge_strategy(opts.favor)?;
        let m = merge_trees(&base, &ours_files, &theirs_files, strategy.as_ref());
        let target = m.provisional();
        let touched = self.check_transition(&idx, &ours_files, &target, &m.conflicts)?;
        let mut message = opts.message.clone().unwrap_or_else(|| {
            if opts.squash {
                format!("Squashed commit of {}", opts.theirs_name)
            } else if into == "main" || into == "HEAD" {
                format!("Merge {}", opts.theirs_name)
            } else {
                format!("Merge {} into {into}", opts.theirs_name)
            }
        });
        if !m.conflicts.is_empty() && opts.message.is_none() {
            message.push_str("\n\nConflicts:\n");
            for c in &m.conflicts {
                message.push_str(&format!("\t{}\n", c.path));
            }
        }
        let mut state = OpState {
            version: STATE_VERSION,
            op: if opts.squash {
                OpKind::Squash
            } else {
                OpKind::Merge
            },
            branch: self.current_branch()?,
            orig_head: ours,
            tip: ours,
            other: theirs,
            other_name: opts.theirs_name.clone(),
            message: message.clone(),
            author: None,
            touched: touched.clone(),
            applied: false,
            remaining: Vec::new(),
            mainline: None,
            no_commit: false,
            favor: opts.favor,
            made: Vec::new(),
        };
        // The merge commit is made before the working tree changes, so
        // that a kill after HEAD moved finds it named in the state.
        let commit = if m.conflicts.is_empty() && !opts.squash {
            let mut session = odb.session();
            let c = Self::write_commit(
                &mut session,
                &m.merged,
                vec![ours, theirs],
                &opts.who,
                &opts.who,
                &message,
            )?;
            session.finish()?;
            state.tip = c;
            state.made.push(c);
            Some(c)
        } else {
            None
        };
        self.begin(&state)?;
        let out = self.write_paths(&mut idx, &target, &touched, progress)?;
        Self::stage_conflicts(&mut idx, &m.conflicts);
        crate::failpoint::hit("write:merge-worktree");
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        let mut outcome = OpOutcome {
            conflicts: m.conflicts.clone(),
            renames: m.renames.clone(),
            written: out.written,
            removed: out.removed,
            ..Default::default()
        };
        match commit {
            Some(c) => {
                self.move_head(
                    ours,
                    c,
                    &opts.who,
                    &format!("merge {}: Merge made", opts.theirs_name),
                )
                .map_err(|e| race(e, &state))?;
                self.clear_state()?;
                outcome.commits.push(c);
            }
            None if opts.squash && m.conflicts.is_empty() => {
                // Staged; the next commit (with one parent) uses the message.
                state.applied = true;
                self.save_state(&state)?;
                outcome.staged_only = true;
            }
            None => {
                state.applied = true;
                self.save_state(&state)?;
                outcome.staged_only = opts.squash;
            }
        }
        Ok(outcome)
    }

    // ----- cherry-pick, revert, rebase -----

    /// The commits of `upstream..head` (reachable from `head`, not from
    /// `upstream`), oldest first, without merge commits.
    pub fn commits_between(&self, upstream: ObjectId, head: ObjectId) -> Result<Vec<ObjectId>> {
        let odb = self.odb()?;
        let mut excluded = std::collections::HashSet::new();
        let mut queue = std::collections::VecDeque::from([upstream]);
        while let Some(c) = queue.pop_front() {
            if excluded.insert(c) {
                queue.extend(odb.read_commit(&c)?.parents);
            }
        }
        // Walk from head in first-parent-first depth order, then order by
        // a topological sort (parents before children).
        let mut seen = std::collections::HashSet::new();
        let mut order: Vec<(ObjectId, Vec<ObjectId>)> = Vec::new();
        let mut stack = vec![head];
        while let Some(c) = stack.pop() {
            if excluded.contains(&c) || !seen.insert(c) {
                continue;
            }
            let parents = odb.read_commit(&c)?.parents;
            stack.extend(parents.iter().rev().copied());
            order.push((c, parents));
        }
        // Kahn's algorithm over the selected commits.
        let selected: std::collections::HashSet<ObjectId> = order.iter().map(|(c, _)| *c).collect();
        let mut placed = std::collections::HashSet::new();
        let mut out = Vec::new();
        while out.len() < order.len() {
            let before = out.len();
            for (c, ps) in order.iter().rev() {
                if placed.contains(c) {
                    continue;
                }
                if ps
                    .iter()
                    .all(|p| !selected.contains(p) || placed.contains(p))
                {
                    placed.insert(*c);
                    out.push((*c, ps.len()));
                }
            }
            if out.len() == before {
                break;
            }
        }
        Ok(out
            .into_iter()
            .filter(|(_, n)| *n <= 1)
            .map(|(c, _)| c)
            .collect())
    }

    /// Runs steps in memory on top of `tip` (whose files are `files`):
    /// each commit picked (or reverted) and, unless `no_commit`, committed.
    #[allow(clippy::too_many_arguments)]
    fn run_steps(
        &self,
        op: OpKind,
        mut tip: ObjectId,
        mut files: FlatTree,
        steps: &[ObjectId],
        mainline: Option<u32>,
        no_commit: bool,
        favor: Option<Side>,
        who: &Signature,
        commits: &mut Vec<ObjectId>,
        skipped: &mut Vec<ObjectId>,
    ) -> Result<(Steps, FlatTree)> {
        let odb = self.odb()?;
        let strategy = self.merge_strategy(favor)?;
        let mut session = odb.session();
        for (i, &c) in steps.iter().enumerate() {
            let commit = odb.read_commit(&c)?;
            let parent = self.step_parent(&c, &commit, mainline)?;
            let parent_files = match parent {
                Some(p) => commit_files(odb, &p)?,
                None => FlatTree::new(),
            };
            let picked_files = commit_files(odb, &c)?;
            let (base, theirs) = match op {
                OpKind::Revert => (picked_files, parent_files),
                _ => (parent_files, picked_files),
            };
            let m = merge_trees(&base, &files, &theirs, strategy.as_ref());
            if !m.conflicts.is_empty() {
                session.finish()?;
                return Ok((
                    Steps::Stopped {
                        tip,
                        at: c,
                        merge: m,
                        remaining: steps[i + 1..].to_vec(),
                    },
                    files,
                ));
            }
            if m.merged == files {
                skipped.push(c);
                continue;
            }
            files = m.merged;
            if no_commit {
                continue;
            }
            let (author, message) = self.step_message(op, &c, &commit, who);
            tip = Self::write_commit(&mut session, &files, vec![tip], &author, who, &message)?;
            commits.push(tip);
        }
        session.finish()?;
        Ok((
            Steps::Done {
                tip,
                files: files.clone(),
            },
            files,
        ))
    }

    fn step_parent(
        &self,
        id: &ObjectId,
        c: &Commit,
        mainline: Option<u32>,
    ) -> Result<Option<ObjectId>> {
        match (c.parents.len(), mainline) {
            (0 | 1, Some(_)) => Err(RepoError::Invalid(format!(
                "commit {} is not a merge: --mainline applies to merge commits only",
                id.short(12)
            ))),
            (0, None) => Ok(None),
            (1, None) => Ok(c.parents.first().copied()),
            (n, Some(m)) if m >= 1 && (m as usize) <= n => Ok(Some(c.parents[m as usize - 1])),
            (n, _) => Err(RepoError::Invalid(format!(
                "commit {} is a merge of {n} parents: say which parent's side to keep with --mainline N (1..={n})",
                id.short(12)
            ))),
        }
    }

    fn step_message(
        &self,
        op: OpKind,
        id: &ObjectId,
        c: &Commit,
        who: &Signature,
    ) -> (Signature, String) {
        match op {
            OpKind::Revert => (
                who.clone(),
                format!(
                    "Revert \"{}\"\n\nThis reverts commit {}.",
                    c.summary(),
                    id.to_hex()
                ),
            ),
            _ => (c.author.clone(), c.message.clone()),
        }
    }

    /// `cherry-pick` (or `revert`) of `steps`, in order.
    #[allow(clippy::too_many_arguments)]
    pub fn pick(
        &self,
        op: OpKind,
        steps: &[ObjectId],
        mainline: Option<u32>,
        no_commit: bool,
        favor: Option<Side>,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<OpOutcome> {
        let _lock = self.workspace()?.lock()?;
        self.refuse_if_operating()?;
        if steps.is_empty() {
            return Err(RepoError::Invalid(format!(
                "{}: no commits given",
                op.command()
            )));
        }
        let (orig, idx) = self.starting_point()?;
        let mut steps_peeled = Vec::with_capacity(steps.len());
        for s in steps {
            steps_peeled.push(self.peel(*s)?);
        }
        let odb = self.odb()?;
        let orig_files = commit_files(odb, &orig)?;
        let base_state = OpState {
            version: STATE_VERSION,
            op,
            branch: self.current_branch()?,
            orig_head: orig,
            tip: orig,
            other: steps_peeled[0],
            other_name: steps_peeled[0].short(12),
            message: String::new(),
            author: None,
            touched: Vec::new(),
            applied: false,
            remaining: Vec::new(),
            mainline,
            no_commit,
            favor,
            made: Vec::new(),
        };
        self.sequence(
            base_state,
            idx,
            orig,
            orig_files.clone(),
            orig_files,
            &steps_peeled,
            who,
            progress,
        )
    }

    /// Runs `steps` on top of `tip` and applies the result: from the
    /// working tree's files `from` (what HEAD, at `state.tip`, and the
    /// index hold) to the steps' end, or to where a step stopped.
    #[allow(clippy::too_many_arguments)]
    fn sequence(
        &self,
        mut state: OpState,
        mut idx: WorktreeIndex,
        tip: ObjectId,
        tip_files: FlatTree,
        from: FlatTree,
        steps: &[ObjectId],
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<OpOutcome> {
        let mut outcome = OpOutcome::default();
        let (result, _) = self.run_steps(
            state.op,
            tip,
            tip_files,
            steps,
            state.mainline,
            state.no_commit,
            state.favor,
            who,
            &mut outcome.commits,
            &mut outcome.skipped,
        )?;
        let odb = self.odb()?;
        let head_before = state.tip;
        let (new_tip, target, conflicts) = match &result {
            Steps::Done { tip, files } => (*tip, files.clone(), Vec::new()),
            Steps::Stopped { tip, merge, .. } => {
                (*tip, merge.provisional(), merge.conflicts.clone())
            }
        };
        // Across earlier stops the touched paths add up: --abort restores
        // everything since the operation began.
        let fresh_touched = self.check_transition(&idx, &from, &target, &conflicts)?;
        state.touched.extend(fresh_touched.iter().cloned());
        state.touched.sort();
        state.touched.dedup();
        state.tip = new_tip;
        state.applied = false;
        state.made.extend(outcome.commits.iter().copied());
        if let Steps::Stopped {
            at,
            merge,
            remaining,
            ..
        } = &result
        {
            let c = odb.read_commit(at)?;
            let (author, message) = self.step_message(state.op, at, &c, who);
            state.other = *at;
            if state.op != OpKind::Rebase {
                // (A rebase keeps the name of where it goes.)
                state.other_name = at.short(12);
            }
            state.author = Some(author);
            state.message = message;
            state.remaining = remaining.clone();
            outcome.conflicts = merge.conflicts.clone();
            outcome.renames = merge.renames.clone();
        } else {
            state.remaining.clear();
        }
        self.begin_or_update(&state)?;
        let out = self.write_paths(&mut idx, &target, &fresh_touched, progress)?;
        Self::stage_conflicts(&mut idx, &conflicts);
        crate::failpoint::hit("write:sequence-worktree");
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        outcome.written = out.written;
        outcome.removed = out.removed;
        let verb = state.op.command();
        match (&result, state.op) {
            (Steps::Done { .. }, OpKind::Rebase) => {
                self.finish_rebase(&state, new_tip, who)
                    .map_err(|e| race(e, &state))?;
                self.clear_state()?;
            }
            (Steps::Done { .. }, _) => {
                self.move_head(
                    head_before,
                    new_tip,
                    who,
                    &format!("{verb}: {} commit(s)", outcome.commits.len()),
                )
                .map_err(|e| race(e, &state))?;
                self.clear_state()?;
                outcome.staged_only = state.no_commit;
            }
            (Steps::Stopped { .. }, OpKind::Rebase) => {
                if head_before != new_tip {
                    self.workspace()?.set_head(&Head::Detached(new_tip))?;
                    self.workspace()?.clear_base()?;
                    self.workspace()?.append_reflog(
                        "HEAD",
                        &ReflogEntry {
                            old: head_before,
                            new: new_tip,
                            who: who.clone(),
                            message: format!("rebase: stopped at {}", state.other.short(12)),
                        },
                    )?;
                }
                state.applied = true;
                self.save_state(&state)?;
            }
            (Steps::Stopped { .. }, _) => {
                self.move_head(
                    head_before,
                    new_tip,
                    who,
                    &format!(
                        "{verb}: {} commit(s) before a conflict",
                        outcome.commits.len()
                    ),
                )
                .map_err(|e| race(e, &state))?;
                state.applied = true;
                self.save_state(&state)?;
            }
        }
        Ok(outcome)
    }

    /// First write of the state backs the index up; later ones (a
    /// `--continue` that stops again) keep the first backup.
    fn begin_or_update(&self, state: &OpState) -> Result<()> {
        let backup = self.workspace()?.dir().join(INDEX_BACKUP);
        if self.operation()?.is_some() && backup.exists() {
            self.save_state(state)
        } else {
            self.begin(state)
        }
    }

    /// Moves the rebased branch to `tip` and puts HEAD back on it.
    fn finish_rebase(&self, state: &OpState, tip: ObjectId, who: &Signature) -> Result<()> {
        let msg = format!("rebase: finished onto {}", tip.short(12));
        match &state.branch {
            Some(b) => {
                let name = crate::refs::branch_ref(b);
                if self.read_ref(&name)? != Some(tip) {
                    self.cas_ref(&name, Some(state.orig_head), Some(tip))?;
                }
                let ws = self.workspace()?;
                ws.set_head(&Head::Branch(b.clone()))?;
                ws.write_base(Some(tip))?;
                let entry = ReflogEntry {
                    old: state.orig_head,
                    new: tip,
                    who: who.clone(),
                    message: msg,
                };
                ws.append_reflog(&name, &entry)?;
                ws.append_reflog("HEAD", &entry)
            }
            None => {
                let ws = self.workspace()?;
                ws.set_head(&Head::Detached(tip))?;
                ws.append_reflog(
                    "HEAD",
                    &ReflogEntry {
                        old: state.orig_head,
                        new: tip,
                        who: who.clone(),
                        message: msg,
                    },
                )
            }
        }
    }

    /// `mediagit rebase UPSTREAM [--onto NEWBASE]`: the commits of
    /// `UPSTREAM..HEAD` replayed on NEWBASE (UPSTREAM by default).
    pub fn rebase(
        &self,
        upstream: ObjectId,
        onto: Option<ObjectId>,
        onto_name: &str,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<OpOutcome> {
        let _lock = self.workspace()?.lock()?;
        self.refuse_if_operating()?;
        let (orig, idx) = self.starting_point()?;
        let upstream = self.peel(upstream)?;
        let onto = match onto {
            Some(o) => self.peel(o)?,
            None => upstream,
        };
        let odb = self.odb()?;
        let steps = self.commits_between(upstream, orig)?;
        let bases = merge_bases(odb, &[orig], &[onto])?;
        if bases.first() == Some(&onto) && bases.len() == 1 && onto == upstream {
            return Ok(OpOutcome {
                up_to_date: true,
                ..Default::default()
            });
        }
        let orig_files = commit_files(odb, &orig)?;
        let onto_files = commit_files(odb, &onto)?;
        let state = OpState {
            version: STATE_VERSION,
            op: OpKind::Rebase,
            branch: self.current_branch()?,
            orig_head: orig,
            tip: orig,
            other: onto,
            other_name: onto_name.to_string(),
            message: String::new(),
            author: None,
            touched: Vec::new(),
            applied: false,
            remaining: Vec::new(),
            mainline: None,
            no_commit: false,
            favor: None,
            made: Vec::new(),
        };
        self.sequence(
            state, idx, onto, onto_files, orig_files, &steps, who, progress,
        )
    }

    // ----- continue, abort, skip -----

    /// Where HEAD is for an operation under way: at a commit it knows (its
    /// start, its tip or one it made), or at a merge commit that finished
    /// it (a `commit` or `--continue` killed before the state went).
    fn head_for(&self, state: &OpState) -> Result<HeadAt> {
        let Some(h) = self.head_commit()? else {
            return Ok(HeadAt::Elsewhere(None));
        };
        if h == state.tip {
            return Ok(HeadAt::Tip);
        }
        if h == state.orig_head || state.made.contains(&h) {
            return Ok(HeadAt::Known(h));
        }
        if matches!(state.op, OpKind::Merge | OpKind::Squash) {
            let parents = self.odb()?.read_commit(&h)?.parents;
            let finished = match state.op {
                OpKind::Merge => parents == [state.tip, state.other],
                _ => parents == [state.tip],
            };
            if finished {
                return Ok(HeadAt::Finished(h));
            }
        }
        Ok(HeadAt::Elsewhere(Some(h)))
    }

    /// `--continue`: commits the resolved step (a merge with its two
    /// parents) and goes on with the steps left.
    pub fn continue_operation(
        &self,
        op: &str,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<OpOutcome> {
        let _lock = self.workspace()?.lock()?;
        let state = self.expect_operation(op)?;
        let interrupted = || {
            RepoError::Invalid(format!(
                "the {} was interrupted while it changed the working tree or HEAD; run `mediagit {} --abort` (it puts everything back) and start it again",
                state.op.command(),
                state.op.command()
            ))
        };
        match self.head_for(&state)? {
            // The merge commit is made and HEAD is on it: nothing is left.
            HeadAt::Finished(c) => {
                self.clear_state()?;
                return Ok(OpOutcome {
                    commits: vec![c],
                    ..Default::default()
                });
            }
            // A merge that needed no resolution (or a fast-forward) whose
            // HEAD reached its end before the state went.
            HeadAt::Tip if state.op == OpKind::Merge && state.tip != state.orig_head => {
                self.clear_state()?;
                return Ok(OpOutcome {
                    commits: vec![state.tip],
                    ..Default::default()
                });
            }
            HeadAt::Known(c) if state.op == OpKind::Merge && state.made.last() == Some(&c) => {
                self.clear_state()?;
                return Ok(OpOutcome {
                    commits: vec![c],
                    ..Default::default()
                });
            }
            HeadAt::Tip if state.applied => {}
            HeadAt::Tip | HeadAt::Known(_) => return Err(interrupted()),
            HeadAt::Elsewhere(now) => return Err(self.head_moved(&state, now)),
        }
        let mut idx = self.workspace()?.load_index()?;
        if !idx.conflicts.is_empty() {
            return Err(RepoError::UnresolvedConflicts {
                paths: idx.conflicted_paths(),
            });
        }
        // What the user resolved and staged.
        let odb = self.odb()?;
        let staged = index_files(&idx);
        let mut outcome = OpOutcome::default();
        let tip_files = commit_files(odb, &state.tip)?;
        let mut next = state.clone();
        let new_tip = match state.op {
            OpKind::Merge | OpKind::Squash => {
                let parents = match state.op {
                    OpKind::Merge => vec![state.tip, state.other],
                    _ => vec![state.tip],
                };
                let mut session = odb.session();
                let c = Self::write_commit(
                    &mut session,
                    &staged,
                    parents,
                    &who.clone(),
                    who,
                    &state.message,
                )?;
                session.finish()?;
                // Recorded before HEAD moves: a kill after it is known.
                next.made.push(c);
                self.save_state(&next)?;
                self.move_head(
                    state.tip,
                    c,
                    who,
                    &format!("commit (merge): {}", first_line(&state.message)),
                )
                .map_err(|e| race(e, &state))?;
                self.clear_state()?;
                let _ = self.workspace()?.save_index(&mut idx, &self.codec());
                outcome.commits.push(c);
                return Ok(outcome);
            }
            _ if state.no_commit || staged == tip_files => {
                // Nothing left of this step (resolved to what HEAD has),
                // or changes are only staged.
                if staged == tip_files {
                    outcome.skipped.push(state.other);
                }
                state.tip
            }
            _ => {
                let author = state.author.clone().unwrap_or_else(|| who.clone());
                let mut session = odb.session();
                let c = Self::write_commit(
                    &mut session,
                    &staged,
                    vec![state.tip],
                    &author,
                    who,
                    &state.message,
                )?;
                session.finish()?;
                outcome.commits.push(c);
                c
            }
        };
        let remaining = state.remaining.clone();
        // The working tree holds `staged` (resolved), HEAD is still at the
        // stop: the sequence goes on from the new commit.
        let base_tip_files = if state.no_commit {
            staged.clone()
        } else {
            commit_files(odb, &new_tip)?
        };
        // HEAD to the step's commit first (its files are the index's),
        // recorded in the state before it moves.
        if new_tip != state.tip {
            // Both the stop HEAD is at and the commit it moves to are known
            // positions: a kill between saving and moving leaves HEAD at the
            // first.
            if !next.made.contains(&state.tip) {
                next.made.push(state.tip);
            }
            next.made.push(new_tip);
            next.tip = new_tip;
            self.save_state(&next)?;
            if state.op == OpKind::Rebase {
                self.workspace()?.set_head(&Head::Detached(new_tip))?;
            } else {
                self.move_head(
                    state.tip,
                    new_tip,
                    who,
                    &format!("{}: {}", state.op.command(), first_line(&state.message)),
                )
                .map_err(|e| race(e, &state))?;
            }
        }
        let rest = self.sequence(
            next,
            idx,
            new_tip,
            base_tip_files.clone(),
            base_tip_files,
            &remaining,
            who,
            progress,
        )?;
        outcome.commits.extend(rest.commits);
        outcome.skipped.extend(rest.skipped);
        outcome.conflicts = rest.conflicts;
        outcome.renames = rest.renames;
        outcome.written = rest.written;
        outcome.removed = rest.removed;
        outcome.staged_only = rest.staged_only;
        Ok(outcome)
    }

    fn expect_operation(&self, op: &str) -> Result<OpState> {
        match self.operation()? {
            Some(s) if s.op.command() == op => Ok(s),
            Some(s) => Err(RepoError::OperationInProgress { op: s.op.command() }),
            None => Err(RepoError::NoOperation { op: op.to_string() }),
        }
    }

    fn head_moved(&self, state: &OpState, now: Option<ObjectId>) -> RepoError {
        let cmd = state.op.command();
        RepoError::Invalid(format!(
            "HEAD moved to {} while the {cmd} was under way (another command or working tree moved it; the {cmd} expected {}), so it cannot go on or put HEAD back by itself; nothing was changed. `mediagit reset --mixed HEAD` ends the {cmd} where you are, keeping every file of the working tree as it is; to go back to where it began, `mediagit reset --hard {}` (it rewrites tracked files: copy away local changes you want first)",
            now.map(|c| c.short(12)).unwrap_or_else(|| "nothing".into()),
            state.tip.short(12),
            state.orig_head.short(12)
        ))
    }

    /// `--abort`: HEAD, the index and every touched path as before.
    pub fn abort_operation(
        &self,
        op: &str,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<CheckoutOutcome> {
        let _lock = self.workspace()?.lock()?;
        let state = self.expect_operation(op)?;
        let head_now = match self.head_for(&state)? {
            HeadAt::Elsewhere(now) => return Err(self.head_moved(&state, now)),
            HeadAt::Tip => state.tip,
            HeadAt::Known(h) | HeadAt::Finished(h) => h,
        };
        let odb = self.odb()?;
        let orig_files = commit_files(odb, &state.orig_head)?;
        // From here on only `--abort` may go on: a kill half way must not
        // leave a state `--continue` would commit.
        if state.applied {
            let mut aborting = state.clone();
            aborting.applied = false;
            self.save_state(&aborting)?;
        }
        // The index as it was, with the touched paths rewritten from the
        // original commit (they had no local changes when it began).
        // Without the copy, the original commit's files stand in.
        let backup = self.workspace()?.dir().join(INDEX_BACKUP);
        let mut idx = match crate::repo::read_private(&backup, u64::MAX - 1)? {
            Some(b) => self.workspace()?.index_from_bytes(&b)?,
            None => {
                let entries = orig_files.iter().map(|(p, e)| entry_of(p, e)).collect();
                WorktreeIndex {
                    entries: crate::worktree::IndexEntries::from_sorted(entries),
                    ..Default::default()
                }
            }
        };
        idx.conflicts.clear();
        let out = self.write_paths(&mut idx, &orig_files, &state.touched, progress)?;
        // A kill while a file was being written left its temporary file.
        crate::checkout::remove_stale_temps(self.worktree()?, &state.touched);
        crate::failpoint::hit("write:abort-worktree");
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        // HEAD back where it was.
        let msg = format!("{}: aborted", state.op.command());
        match (&state.branch, state.op) {
            (Some(b), OpKind::Rebase) => {
                // Killed while finishing: the branch may have moved already.
                let name = crate::refs::branch_ref(b);
                if let Some(at) = self.read_ref(&name)? {
                    if at != state.orig_head && (at == state.tip || state.made.contains(&at)) {
                        self.cas_ref(&name, Some(at), Some(state.orig_head))?;
                    }
                }
                let ws = self.workspace()?;
                ws.set_head(&Head::Branch(b.clone()))?;
                ws.write_base(Some(state.orig_head))?;
                ws.append_reflog(
                    "HEAD",
                    &ReflogEntry {
                        old: head_now,
                        new: state.orig_head,
                        who: who.clone(),
                        message: msg,
                    },
                )?;
            }
            (None, OpKind::Rebase) => self
                .workspace()?
                .set_head(&Head::Detached(state.orig_head))?,
            _ => {
                if head_now != state.orig_head {
                    self.update_head_target(Some(head_now), state.orig_head, who, &msg)?;
                }
            }
        }
        self.clear_state()?;
        Ok(out)
    }

    /// `rebase --skip` (and `cherry-pick --skip`): drops the stopped step
    /// (its paths back to HEAD's) and goes on with the rest.
    pub fn skip_step(
        &self,
        op: &str,
        who: &Signature,
        progress: &dyn Progress,
    ) -> Result<OpOutcome> {
        let _lock = self.workspace()?.lock()?;
        let state = self.expect_operation(op)?;
        if matches!(state.op, OpKind::Merge | OpKind::Squash) {
            return Err(RepoError::Invalid(
                "a merge has no step to skip; use --abort".into(),
            ));
        }
        match self.head_for(&state)? {
            HeadAt::Tip if state.applied => {}
            HeadAt::Elsewhere(now) => return Err(self.head_moved(&state, now)),
            _ => {
                return Err(RepoError::Invalid(format!(
                    "the {} was interrupted; run `mediagit {} --abort`",
                    state.op.command(),
                    state.op.command()
                )))
            }
        }
        let odb = self.odb()?;
        let tip_files = commit_files(odb, &state.tip)?;
        let mut idx = self.workspace()?.load_index()?;
        idx.conflicts.clear();
        // Every path that differs from the stop's commit goes back to it.
        let now = index_files(&idx);
        let mut paths = differing(&now, &tip_files);
        paths.extend(state.touched.iter().cloned());
        paths.sort();
        paths.dedup();
        self.write_paths(&mut idx, &tip_files, &paths, progress)?;
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        let remaining = state.remaining.clone();
        let mut next = state.clone();
        next.applied = true;
        self.save_state(&next)?;
        let mut out = self.sequence(
            next,
            idx,
            state.tip,
            tip_files.clone(),
            tip_files,
            &remaining,
            who,
            progress,
        )?;
        out.skipped.insert(0, state.other);
        Ok(out)
    }

    // ----- commit during an operation -----

    /// For `commit`: the extra parent of a merge under way (and its
    /// message), or a refusal during a sequence that `--continue` ends.
    pub(crate) fn commit_operation(&self) -> Result<Option<OpState>> {
        match self.operation()? {
            None => Ok(None),
            Some(s) if matches!(s.op, OpKind::Merge | OpKind::Squash) => {
                match self.head_for(&s)? {
                    // Already committed (a kill before the state went).
                    HeadAt::Finished(_) => {
                        self.clear_state()?;
                        Ok(None)
                    }
                    HeadAt::Known(c) if s.made.last() == Some(&c) && c != s.orig_head => {
                        self.clear_state()?;
                        Ok(None)
                    }
                    HeadAt::Tip if s.op == OpKind::Merge && s.tip != s.orig_head => {
                        self.clear_state()?;
                        Ok(None)
                    }
                    HeadAt::Tip if s.applied => Ok(Some(s)),
                    HeadAt::Elsewhere(now) => Err(self.head_moved(&s, now)),
                    _ => Err(RepoError::Invalid(
                        "the merge was interrupted while it changed the working tree or HEAD; run `mediagit merge --abort`".into(),
                    )),
                }
            }
            Some(s) => Err(RepoError::OperationInProgress { op: s.op.command() }),
        }
    }

    /// After `commit` made a merge commit: the operation is over.
    pub(crate) fn end_operation(&self) -> Result<()> {
        self.clear_state()
    }

    // ----- resolve -----

    /// `mediagit resolve PATH... --ours|--theirs|--both`.
    pub fn resolve_conflicts(
        &self,
        paths: &[String],
        how: Resolution,
        progress: &dyn Progress,
    ) -> Result<Vec<String>> {
        let _lock = self.workspace()?.lock()?;
        let mut idx = self.workspace()?.load_index()?;
        let conflicted = idx.conflicted_paths();
        let mut targets: Vec<String> = Vec::new();
        for p in paths {
            let matched: Vec<&String> = conflicted
                .iter()
                .filter(|c| crate::worktree::path_is_under(c, p))
                .collect();
            if matched.is_empty() {
                return Err(RepoError::NotConflicted { path: p.clone() });
            }
            targets.extend(matched.into_iter().cloned());
        }
        targets.sort();
        targets.dedup();
        let side = |p: &str, stage: Stage| -> Option<FlatEntry> {
            idx.conflicts
                .iter()
                .find(|c| c.entry.path == p && c.stage == stage)
                .map(|c| FlatEntry::from_index(&c.entry))
        };
        // A file the user edited at a conflicted path (neither side's
        // version) is theirs to keep: `add` it, or move it away first.
        let root = self.worktree()?.to_path_buf();
        let mut own = Vec::new();
        for p in &targets {
            let sides: Vec<ObjectId> = [Stage::Ours, Stage::Theirs]
                .into_iter()
                .filter_map(|st| side(p, st).map(|e| e.content))
                .collect();
            if let Some(h) = worktree_file_hash(&root, p)? {
                if !sides.contains(&h) {
                    own.push(p.clone());
                }
            }
        }
        if !own.is_empty() {
            return Err(RepoError::Invalid(format!(
                "{} hold(s) changes of your own (neither side's version); nothing was resolved: `mediagit add` the file to keep your version, or move it away and resolve again",
                own.join(", ")
            )));
        }
        let mut files: FlatTree = BTreeMap::new();
        let mut write: Vec<String> = Vec::new();
        let mut written_names = Vec::new();
        for p in &targets {
            match how {
                Resolution::Ours | Resolution::Theirs => {
                    let stage = if how == Resolution::Ours {
                        Stage::Ours
                    } else {
                        Stage::Theirs
                    };
                    if let Some(e) = side(p, stage) {
                        files.insert(p.clone(), e);
                    }
                    write.push(p.clone());
                    written_names.push(p.clone());
                }
                Resolution::Both => {
                    for (stage, tag) in [(Stage::Ours, "ours"), (Stage::Theirs, "theirs")] {
                        let Some(e) = side(p, stage) else { continue };
                        let name = side_name(p, tag);
                        if idx.entries.contains_key(&name)
                            || std::fs::symlink_metadata(root.join(&name)).is_ok()
                        {
                            return Err(RepoError::WouldOverwriteUntracked { paths: vec![name] });
                        }
                        files.insert(name.clone(), e);
                        write.push(name.clone());
                        written_names.push(name);
                    }
                    // The conflicted path itself goes.
                    write.push(p.clone());
                }
            }
        }
        write.sort();
        write.dedup();
        idx.conflicts
            .retain(|c| targets.binary_search(&c.entry.path).is_err());
        self.write_paths(&mut idx, &files, &write, progress)?;
        self.workspace()?.save_index(&mut idx, &self.codec())?;
        Ok(written_names)
    }

    // ----- what status shows -----

    /// Each conflicted path with both sides' sizes, times and the commit
    /// (and author) that last changed it on that side.
    pub fn conflict_details(&self) -> Result<Vec<ConflictInfo>> {
        let idx = self.workspace()?.load_index()?;
        // A damaged state file costs the history of each side, not the list.
        let state = self.operation().ok().flatten();
        let odb = self.odb()?;
        let notes = crate::media::MediaNotes::load(self).ok();
        let mut out = Vec::new();
        for p in idx.conflicted_paths() {
            let get = |stage| {
                idx.conflicts
                    .iter()
                    .find(|c| c.entry.path == p && c.stage == stage)
                    .map(|c| FlatEntry::from_index(&c.entry))
            };
            let (b, o, t) = (get(Stage::Base), get(Stage::Ours), get(Stage::Theirs));
            let kind = match (&b, &o, &t) {
                // One side's file moved aside for the other's directory.
                (None, None, _) | (None, _, None) => crate::merge::ConflictKind::FileDirectory,
                (_, None, _) | (_, _, None) => crate::merge::ConflictKind::DeleteModify,
                (None, _, _) => crate::merge::ConflictKind::AddAdd,
                _ => crate::merge::ConflictKind::Content,
            };
            let info = |e: Option<FlatEntry>, start: Option<ObjectId>| -> Option<SideInfo> {
                let e = e?;
                let last = start.and_then(|s| last_change(odb, s, &p, &e).ok().flatten());
                let commit = last.and_then(|c| odb.read_commit(&c).ok());
                let record = notes
                    .as_ref()
                    .and_then(|n| self.media_record(n, &p, &e).ok())
                    .map(|(m, _)| m)
                    .filter(crate::media::is_media);
                Some(SideInfo {
                    media: record.as_ref().map(mediagit_media::summary),
                    media_record: record,
                    size: e.size,
                    mtime: e.mtime,
                    content: e.content,
                    last_commit: last,
                    last_author: commit
                        .as_ref()
                        .map(|c| format!("{} <{}>", c.author.name, c.author.email)),
                    last_time: commit.as_ref().map(|c| c.author.time),
                })
            };
            let (ours_start, theirs_start) = match &state {
                Some(s) => (Some(s.tip), Some(s.other)),
                None => (self.head_commit()?, None),
            };
            out.push(ConflictInfo {
                path: p.clone(),
                kind,
                ours: info(o, ours_start),
                theirs: info(t, theirs_start),
            });
        }
        Ok(out)
    }
}

/// SHA-256 of the regular file at `path` (opened beneath `root`, never
/// through a symlink), `None` when there is none (missing, a directory,
/// a symlink).
fn worktree_file_hash(root: &std::path::Path, path: &str) -> Result<Option<ObjectId>> {
    use std::io::Read;
    let abs = root.join(path);
    match std::fs::symlink_metadata(&abs) {
        Ok(m) if m.is_file() => {}
        _ => return Ok(None),
    }
    let mut f = match crate::worktree::open_beneath(root, path) {
        Ok(f) => f,
        Err(_) => return Ok(None),
    };
    let mut h = mediagit_format::id::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| RepoError::io("read", &abs, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Some(h.finish()))
}

/// Where HEAD is for an operation under way ([`Repository::head_for`]).
enum HeadAt {
    Tip,
    /// Where it began, or a commit it made.
    Known(ObjectId),
    /// A merge commit that finished it.
    Finished(ObjectId),
    Elsewhere(Option<ObjectId>),
}

/// A lost compare-and-swap of the branch while an operation moved it: the
/// working tree already holds the result, so "nothing was updated" would
/// be wrong; the operation's state stays for `--abort`.
fn race(e: RepoError, state: &OpState) -> RepoError {
    match e {
        RepoError::RefRace { name, .. } => {
            let cmd = state.op.command();
            let branch = name.trim_start_matches("refs/heads/").to_string();
            RepoError::Invalid(format!(
                "{branch} moved in the store while the {cmd} ran (another working tree or machine committed to it); the working tree and index hold the {cmd}'s result, the branch does not: `mediagit {cmd} --abort` puts everything back, then `mediagit switch {branch}` brings this working tree up to the store's {branch}, and the {cmd} can run again"
            ))
        }
        e => e,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The commit that last changed `path` to `entry`'s content, walking the
/// first parents back from `start` (at most [`LAST_CHANGE_WALK`] commits).
fn last_change(
    odb: &Odb,
    start: ObjectId,
    path: &str,
    entry: &FlatEntry,
) -> Result<Option<ObjectId>> {
    let at = |c: &ObjectId| -> Result<Option<ObjectId>> {
        let tree = odb.read_commit(c)?.tree;
        Ok(match crate::tree::lookup(odb, &tree, path)? {
            Some(crate::tree::Lookup::File(e)) => Some(e.content),
            _ => None,
        })
    };
    if at(&start)? != Some(entry.content) {
        // The side's file came from elsewhere (a rename): no history here.
        return Ok(None);
    }
    let mut cur = start;
    for _ in 0..LAST_CHANGE_WALK {
        let parents = odb.read_commit(&cur)?.parents;
        let Some(p) = parents.first() else {
            return Ok(Some(cur));
        };
        if at(p)? != Some(entry.content) {
            return Ok(Some(cur));
        }
        cur = *p;
    }
    Ok(Some(cur))
}
