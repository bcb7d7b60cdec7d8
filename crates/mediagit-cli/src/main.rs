//! `mediagit`: version control and backup for large media files.
//!
//! This binary parses arguments, reads the environment (identity), draws
//! progress and prints results; all repository work happens in
//! `mediagit-repo`.

// Every line this binary prints may carry names and messages from a
// repository or a store, which may hold control characters (`ESC[2J` in a
// file name): `println!`/`eprintln!` are shadowed, for every module below,
// by versions that escape them (`output::safe`). Raw content goes through
// `commands::raw_stdout` instead.
macro_rules! println {
    () => { std::println!() };
    ($($arg:tt)*) => { std::println!("{}", $crate::output::safe(&format!($($arg)*))) };
}
// Diagnostics never fail a command: a stderr that was closed (a pipe
// whose reader went away) drops them instead of panicking.
macro_rules! eprintln {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "{}", $crate::output::safe(&format!($($arg)*)));
    }};
}

mod backup_cmd;
mod command_error;
mod commands;
mod completion_refs;
mod config_cmd;
mod help_topics;
mod history_cmd;
mod key_cache;
mod lock_cmd;
mod maintenance;
mod media_cmd;
mod output;
mod pager;
mod passphrase;
mod progress;
mod remote_cmd;
mod serve_cmd;
mod user_config;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use command_error::CommandError;

#[derive(Parser)]
#[command(
    name = "mediagit",
    version,
    about = "Version control and backup for large media files",
    disable_help_subcommand = true,
    after_help = "Concepts: `mediagit help revisions`, `help ignore`, `help storage`, `help format`."
)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// No progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log what the command does to stderr, with the time each phase of
    /// add, commit, checkout, status, gc and fsck took (`-vv`: more
    /// detail). MEDIAGIT_LOG=debug (or any tracing filter) does the same.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print log, show, diff and reflog straight to the terminal, without
    /// a pager.
    #[arg(long, global = true)]
    pub no_pager: bool,
    /// Colour the output: `auto` (on a terminal, unless NO_COLOR is set),
    /// `always` (also into a pipe or a file) or `never`.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto"
    )]
    pub color: output::color::When,
    #[command(subcommand)]
    pub command: Command,
}

/// A new passphrase and the cost of its key file.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NewKeyArgs {
    /// Read the new passphrase from FILE (all of it but one trailing newline).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Argon2id memory for this key file, MiB (19..=1024; default 128).
    #[arg(long, value_name = "MIB")]
    pub kdf_memory: Option<u32>,
    /// Argon2id passes for this key file (2..=16; default 4).
    #[arg(long, value_name = "N")]
    pub kdf_passes: Option<u32>,
    /// A note kept in the key file and shown by `key list`; stored in the
    /// clear (the store sees it). None by default.
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
}

#[derive(Subcommand)]
pub enum KeyAction {
    /// List the key files: id, date, label, Argon2 cost; `*` marks the one
    /// this command was opened with.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a passphrase.
    Add {
        #[command(flatten)]
        key: NewKeyArgs,
    },
    /// Remove the key file ID (or a unique prefix of 8+ digits). The key
    /// this command was opened with (so the last one) is never removed.
    Remove { id: String },
    /// Change the passphrase this command was opened with.
    Passwd {
        #[command(flatten)]
        key: NewKeyArgs,
    },
    /// Ask the passphrase once and keep the unlocked key for a while, so
    /// that the commands that follow (in any working tree of this store)
    /// neither ask for it nor pay its Argon2id cost. Kept only in
    /// `$XDG_RUNTIME_DIR` (memory, closed to other users, emptied at
    /// logout); `key add|remove|passwd|unlock` always ask the passphrase.
    Unlock {
        /// How long: "15 minutes" (the default), "8h", "1 day" (at most 7
        /// days).
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
    },
    /// Forget the key kept by `key unlock` for this repository's store.
    Lock {
        /// Forget every kept key, of every repository (needs no repository).
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
pub enum Command {
    /// Create an empty repository.
    Init {
        /// Where to create it (default: the current directory); with
        /// --bare, a server URL (http(s)://HOST[:PORT]/NAME) creates it on
        /// that MediaGit server.
        dir: Option<PathBuf>,
        /// A repository without a working tree.
        #[arg(long)]
        bare: bool,
        /// Name of the first branch.
        #[arg(short = 'b', long, value_name = "NAME")]
        initial_branch: Option<String>,
        /// Keep objects and refs in this store: s3://BUCKET/PREFIX,
        /// az://CONTAINER/PREFIX, gs://BUCKET/PREFIX, b2://BUCKET/PREFIX or a
        /// directory. It must be empty. Credentials come from the environment.
        #[arg(long, value_name = "URL")]
        storage: Option<String>,
        /// Object store endpoint (MinIO, Ceph, Spaces, Azurite, an emulator...).
        #[arg(long, value_name = "URL", requires = "storage")]
        endpoint: Option<String>,
        /// Object store region (S3).
        #[arg(long, value_name = "REGION", requires = "storage")]
        region: Option<String>,
        /// Encrypt everything stored (AES-256-GCM; docs/FORMAT.md §13). The
        /// passphrase comes from --passphrase-file, else MEDIAGIT_PASSPHRASE,
        /// else it is asked twice on the terminal. Without it nobody can read
        /// the repository: keep it safe, or add a second one (`mediagit key add`).
        #[arg(long)]
        encrypt: bool,
        #[command(flatten)]
        key: NewKeyArgs,
    },
    /// Copy a repository from a local path or a MediaGit server
    /// (http(s)://HOST[:PORT]/NAME), or join one in a store (s3://, az://,
    /// gs://, b2://, file://), and check out its current branch. From a
    /// backup target (a directory or store URL made by `backup init`), the
    /// repository as its newest backup (or --at) has it.
    Clone {
        /// Path of a repository or URL of a server (copied), or the URL of
        /// a store (shared: the new working tree uses the store's objects
        /// and refs directly).
        src: String,
        /// New directory to create (must not exist, or be empty; default:
        /// the last part of SRC).
        dest: Option<PathBuf>,
        /// Check out this branch instead of the source's current one
        /// (copying clones).
        #[arg(short, long, value_name = "BRANCH")]
        branch: Option<String>,
        /// Copy into this store instead of the new .mediagit directory
        /// (cloning from a path only).
        #[arg(long, value_name = "URL")]
        storage: Option<String>,
        /// Make a bare repository (no working tree): a copy to push to
        /// (cloning from a path only).
        #[arg(long)]
        bare: bool,
        /// Object store endpoint, for a store URL in SRC or --storage.
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// Object store region (S3).
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// The passphrase of an encrypted source, from this file (else
        /// MEDIAGIT_PASSPHRASE_FILE, MEDIAGIT_PASSPHRASE, or the terminal).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Cloning from a backup target that holds several repositories:
        /// the id of the one to clone.
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// Cloning from a backup target: the repository as it was at TIME
        /// (default: its newest record), as `backup restore --at`.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Host repositories for push, fetch and clone over HTTP(S): every
    /// repository under a directory, or under an object-store prefix.
    Serve(serve_cmd::ServeArgs),
    /// List, add, remove, rename remotes or change their URLs.
    Remote {
        /// (`mediagit remote -v` lists them with their URLs: for this
        /// command -v means that, not logging.)
        #[command(subcommand)]
        action: Option<remote_cmd::RemoteAction>,
    },
    /// Download a remote's branches (as REMOTE/BRANCH), its new tags and
    /// the objects they need that this repository lacks.
    Fetch {
        /// A remote's name or a URL (default: the branch's upstream, else origin).
        remote: Option<String>,
        /// Every remote.
        #[arg(long, conflicts_with = "remote")]
        all: bool,
        /// Delete remote-tracking branches the remote no longer has.
        #[arg(short, long)]
        prune: bool,
        /// Leave the remote's tags.
        #[arg(long)]
        no_tags: bool,
        /// One JSON document on stdout (fields in docs/CLI.md).
        #[arg(long)]
        json: bool,
    },
    /// Fetch, then fast-forward the current branch to the remote branch.
    Pull {
        /// Default: the branch's upstream remote, else origin.
        remote: Option<String>,
        /// The remote's branch (default: the upstream's, else the same name).
        branch: Option<String>,
    },
    /// Upload branches (and tags) and the objects they need to a remote.
    Push {
        /// A remote's name or a URL (default: the branch's upstream, else origin).
        remote: Option<String>,
        /// BRANCH or SRC:DST (default: the current branch).
        refspecs: Vec<String>,
        /// Move remote branches that would not fast-forward.
        #[arg(short, long)]
        force: bool,
        /// Like --force, but only where the remote branch is where the last
        /// fetch saw it.
        #[arg(long, conflicts_with = "force")]
        force_with_lease: bool,
        /// Push every tag too.
        #[arg(long)]
        tags: bool,
        /// Delete this branch on the remote.
        #[arg(short, long, value_name = "BRANCH")]
        delete: Vec<String>,
        /// Make the remote branch each pushed branch's upstream.
        #[arg(short = 'u', long)]
        set_upstream: bool,
        /// One JSON document on stdout (fields in docs/CLI.md).
        #[arg(long)]
        json: bool,
    },
    /// Lock files on the remote's server so that nobody else changes
    /// them until you unlock them (binary files cannot be merged).
    Lock {
        /// Files (relative to the current directory, inside the working tree).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The server's remote (default: the branch's upstream, else origin).
        #[arg(long, value_name = "REMOTE")]
        remote: Option<String>,
    },
    /// Release your locks (another user's only with --force and the admin
    /// right on the server).
    Unlock {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, value_name = "REMOTE")]
        remote: Option<String>,
        /// Release it even though the file has changes not committed, or
        /// break another user's lock (that needs the admin right).
        #[arg(short, long)]
        force: bool,
    },
    /// List the file locks on the remote's server: PATH, owner, since when.
    Locks {
        /// Only the lock of this file.
        #[arg(long, value_name = "PATH")]
        path: Option<PathBuf>,
        #[arg(long, value_name = "REMOTE")]
        remote: Option<String>,
        /// One JSON array on stdout: [{"path", "owner", "created"}].
        #[arg(long)]
        json: bool,
    },
    /// List a remote's branches and tags.
    LsRemote {
        remote: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stage files (new, modified or deleted) for the next commit.
    Add {
        paths: Vec<PathBuf>,
        /// Stage every change in the working tree.
        #[arg(short = 'A', long)]
        all: bool,
        /// Show what would be staged, stage nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
    /// Remove files from the index and the working tree.
    Rm {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Only unstage; keep the files in the working tree.
        #[arg(long)]
        cached: bool,
        /// Remove directories recursively.
        #[arg(short, long)]
        recursive: bool,
        /// Remove even with uncommitted changes.
        #[arg(short, long)]
        force: bool,
    },
    /// Move or rename a tracked file or directory.
    Mv { src: PathBuf, dst: PathBuf },
    /// Show staged, unstaged and untracked changes.
    Status {
        /// Stable machine-readable output (see docs/CLI.md).
        #[arg(long)]
        porcelain: bool,
        /// Short format (same as --porcelain plus a branch line).
        #[arg(short, long)]
        short: bool,
        /// One JSON document on stdout (fields in docs/CLI.md).
        #[arg(long, conflicts_with_all = ["porcelain", "short"])]
        json: bool,
    },
    /// Record the staged changes as a new commit.
    Commit {
        #[arg(short, long)]
        message: Option<String>,
        /// Stage changes to tracked files first.
        #[arg(short, long)]
        all: bool,
        #[arg(long)]
        allow_empty: bool,
        /// Override the author: "Name <email>".
        #[arg(long)]
        author: Option<String>,
    },
    /// Show commit history.
    Log(LogArgs),
    /// Show a commit (or tag) and the files it changed.
    Show {
        rev: Option<String>,
        /// One JSON document on stdout (fields in docs/CLI.md).
        #[arg(long)]
        json: bool,
        /// Print the media record of these files at REV instead (after `--`).
        #[arg(last = true)]
        paths: Vec<PathBuf>,
    },
    /// Back up to a write-once target, restore any moment, verify,
    /// forget and prune (docs/BACKUP.md).
    Backup {
        #[command(subcommand)]
        action: backup_cmd::BackupAction,
    },
    /// Show a file's media record: kind, dimensions, codecs, duration, EXIF, layers...
    #[command(visible_alias = "info")]
    Media(media_cmd::MediaArgs),
    /// List the files whose media record matches a condition.
    Find(media_cmd::FindArgs),
    /// Show which files differ, with sizes.
    Diff {
        /// Compare HEAD with the index instead of the index with the working tree.
        #[arg(long, alias = "staged")]
        cached: bool,
        /// Summary per file and totals.
        #[arg(long)]
        stat: bool,
        /// One JSON document on stdout: every file with both sides, and totals.
        #[arg(long, conflicts_with = "stat")]
        json: bool,
        /// Zero, one or two revisions.
        revs: Vec<String>,
        /// Only these paths (after `--`).
        #[arg(last = true)]
        paths: Vec<String>,
    },
    /// List, create, delete or rename branches.
    Branch {
        #[command(subcommand)]
        action: Option<BranchAction>,
        /// List the remote-tracking branches (`origin/main`...).
        #[arg(short, long, conflicts_with = "all")]
        remotes: bool,
        /// List local and remote-tracking branches.
        #[arg(short, long)]
        all: bool,
        /// List as one JSON document (fields in docs/CLI.md).
        #[arg(long, global = true)]
        json: bool,
    },
    /// Switch to a branch.
    Switch {
        /// The branch to switch to; with -c, where the new branch starts (default HEAD).
        #[arg(value_name = "BRANCH|START")]
        target: Option<String>,
        /// Create the branch NAME (at START or HEAD) and switch to it.
        #[arg(short = 'c', long, value_name = "NAME")]
        create: Option<String>,
        /// Discard local changes that would be overwritten.
        #[arg(short, long)]
        force: bool,
    },
    /// Check out a branch or revision, or restore paths from one.
    Checkout {
        /// BRANCH or REV (with `-- PATH...`: where to restore the paths from).
        target: Option<String>,
        /// Restore only these paths (after `--`), from REV or from the index.
        #[arg(last = true)]
        paths: Vec<String>,
        /// Discard local changes that would be overwritten.
        #[arg(short, long)]
        force: bool,
    },
    /// Join another branch's (or revision's) history into the current branch.
    Merge(history_cmd::MergeArgs),
    /// Settle conflicted paths of a merge, cherry-pick, revert or rebase with one side, the other, or both.
    Resolve(history_cmd::ResolveArgs),
    /// Apply the changes of existing commits on top of HEAD.
    CherryPick(history_cmd::PickArgs),
    /// Make commits that undo earlier commits.
    Revert(history_cmd::PickArgs),
    /// Replay the current branch's own commits on top of another base.
    Rebase(history_cmd::RebaseArgs),
    /// Move HEAD (and the index, and with --hard the working tree) to a revision; or unstage paths.
    Reset(history_cmd::ResetArgs),
    /// Put files of the working tree or the index back from the index or a revision.
    Restore(history_cmd::RestoreArgs),
    /// Set local changes aside (`stash` / `stash push`), list them, bring them back.
    Stash(history_cmd::StashArgs),
    /// Create, list or delete tags.
    Tag(TagArgs),
    /// Show where HEAD or a branch has been (or `reflog expire`).
    Reflog(ReflogArgs),
    /// Check every pack, index, object and ref; report and optionally repair damage.
    Fsck {
        /// List unreachable objects.
        #[arg(long)]
        dangling: bool,
        /// Save unreachable commits and files into .mediagit/lost-found/.
        #[arg(long)]
        lost_found: bool,
        /// Rebuild what can be rebuilt locally (pack indexes, damaged packs'
        /// sound objects, missing chunks from the working tree, the index,
        /// refs), then fetch what is still missing or damaged from the
        /// remotes (every remote in turn, or --from).
        #[arg(long)]
        repair: bool,
        /// With --repair: the remote (name or URL) to fetch missing objects
        /// from; repeat for several. Default: every configured remote.
        #[arg(long, value_name = "REMOTE", requires = "repair")]
        from: Vec<String>,
        /// One JSON document on stdout (fields in docs/CLI.md).
        #[arg(long)]
        json: bool,
    },
    /// Re-read and re-hash a revision's files; report any that would not restore exactly.
    Verify {
        /// Revision (default HEAD).
        rev: Option<String>,
        /// Only these paths (repeatable).
        #[arg(long = "path", value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// One JSON document on stdout (fields in docs/CLI.md).
        #[arg(long)]
        json: bool,
    },
    /// Repack and delete unreachable data older than the grace period.
    Gc {
        /// List what would be removed and the bytes freed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Remove unreachable objects older than WHEN: "2.weeks.ago" (default),
        /// "3 days ago", "now", "never", or a date (2026-01-31, RFC 3339).
        #[arg(long, value_name = "WHEN", default_value = "2.weeks.ago")]
        prune: String,
        /// Repack an old pack only when more than PERCENT of its bytes are
        /// unreachable (0: whenever anything is; 100: only delete packs that
        /// hold nothing reachable).
        #[arg(long, value_name = "PERCENT", default_value_t = mediagit_repo::gc::DEFAULT_MAX_UNUSED,
              value_parser = clap::value_parser!(u8).range(0..=100))]
        max_unused: u8,
        /// One JSON document on stdout (fields in docs/CLI.md).
        #[arg(long)]
        json: bool,
    },
    /// Object counts, sizes, deduplication and compression ratios.
    Stats {
        /// One JSON document on stdout (fields in docs/CLI.md).
        #[arg(long)]
        json: bool,
        /// How many of the largest files to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// List staged files (with -l: mode, size, mtime, SHA-256, path).
    LsFiles {
        #[arg(short, long)]
        long: bool,
        /// Add each file's media summary (kind, dimensions, codec, duration) as a
        /// column before the path (with --json: its whole record as "media").
        #[arg(long)]
        media: bool,
        /// JSON Lines: one object per file (fields in docs/CLI.md).
        #[arg(long, conflicts_with = "long")]
        json: bool,
    },
    /// List the files of a revision.
    LsTree {
        rev: String,
        #[arg(short, long)]
        recursive: bool,
        #[arg(short, long)]
        long: bool,
        /// JSON Lines: one object per file or directory (fields in docs/CLI.md).
        #[arg(long, conflicts_with = "long")]
        json: bool,
    },
    /// Convert the repository to the newest format version, in place.
    Upgrade {
        /// Say what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write one file's content at a revision to stdout: REV:PATH.
    Cat {
        #[arg(value_name = "REV:PATH")]
        spec: String,
    },
    /// Get and set settings by dotted key: author.name, author.email (the
    /// repository's .mediagit/config.toml, or with --global your own
    /// settings file), core.pager (--global); core.checkpoint_bytes,
    /// core.checkpoint_seconds and compression.level (the repository).
    ///
    /// `config KEY` prints the value in use (the repository's over yours);
    /// `config KEY VALUE` sets it; `--unset KEY` removes it; `--list` shows
    /// every setting (`--show-origin`: with its file); `--edit` opens the
    /// file in $VISUAL or $EDITOR. Environment variables (MEDIAGIT_AUTHOR_NAME,
    /// MEDIAGIT_AUTHOR_EMAIL, MEDIAGIT_PAGER) win over both files.
    Config(config_cmd::ConfigArgs),
    /// The passphrases of an encrypted repository: list, add, remove,
    /// passwd; unlock and lock keep and forget its key for a while.
    ///
    /// Each passphrase has a key file in the store that wraps the
    /// repository's one master key; adding or removing one changes nothing
    /// else. `key add|remove|passwd|unlock` open the repository with
    /// MEDIAGIT_PASSPHRASE_FILE, MEDIAGIT_PASSPHRASE or a prompt (never with
    /// a kept key); a new passphrase comes from --passphrase-file,
    /// MEDIAGIT_NEW_PASSPHRASE or a prompt (twice). `key unlock` keeps the
    /// key in $XDG_RUNTIME_DIR until its timeout, so other commands need no
    /// passphrase; `key lock` forgets it.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    ///
    /// bash: `mediagit completions bash > ~/.local/share/bash-completion/completions/mediagit`;
    /// zsh: into a directory of `$fpath` as `_mediagit`;
    /// fish: `~/.config/fish/completions/mediagit.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one per command into DIR.
    ///
    /// `mediagit man | man -l -` reads it; `mediagit man --out-dir
    /// ~/.local/share/man/man1` installs `mediagit.1` and
    /// `mediagit-COMMAND.1` for every command.
    Man {
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Branch and tag names, one per line, for completion scripts.
    #[command(name = "__complete-refs", hide = true)]
    CompleteRefs {
        /// all, branches or tags.
        #[arg(default_value = "all")]
        which: String,
    },
    /// Help for a command (`mediagit help branch create`), or a concept:
    /// revisions, ignore, storage, format (from the documentation).
    Help {
        /// A command (and subcommand), or a topic; none: every command and
        /// topic.
        #[arg(value_name = "COMMAND|TOPIC")]
        what: Vec<String>,
    },
}

#[derive(Args)]
pub struct LogArgs {
    #[arg(long)]
    pub oneline: bool,
    /// JSON Lines: one object per commit (fields in docs/CLI.md).
    #[arg(long, conflicts_with = "oneline")]
    pub json: bool,
    /// Show at most N commits (also -N).
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub max: Option<usize>,
    /// Files changed by each commit, with sizes.
    #[arg(long)]
    pub stat: bool,
    /// The media fields each commit changed ("1920x1080 -> 3840x2160"), per file.
    #[arg(long)]
    pub media: bool,
    /// Revision to start from (default HEAD).
    pub rev: Option<String>,
    /// Only commits that change these paths (after `--`).
    #[arg(last = true)]
    pub paths: Vec<String>,
}

#[derive(Subcommand)]
pub enum BranchAction {
    /// List branches (the default).
    List,
    /// Create a branch at START (default HEAD).
    Create { name: String, start: Option<String> },
    /// Delete a branch.
    Delete {
        name: String,
        /// Delete even if not merged into HEAD.
        #[arg(short = 'D', long)]
        force: bool,
    },
    /// Rename a branch.
    Rename { old: String, new: String },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TagArgs {
    #[command(subcommand)]
    pub action: Option<TagAction>,
    /// Tag name (with no name: list tags).
    pub name: Option<String>,
    /// Commit to tag (default HEAD).
    pub rev: Option<String>,
    /// Make an annotated tag with this message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// List as one JSON document (fields in docs/CLI.md).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReflogArgs {
    #[command(subcommand)]
    pub action: Option<ReflogAction>,
    /// HEAD (default) or a branch name.
    #[arg(value_name = "REF")]
    pub reference: Option<String>,
    /// One JSON document on stdout (fields in docs/CLI.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ReflogAction {
    /// Drop reflog records older than WHEN.
    Expire {
        /// "90.days.ago" (default), "now", "never", a date...
        #[arg(long, value_name = "WHEN", default_value = "90.days.ago")]
        expire: String,
        /// HEAD or a branch (default: every reflog).
        #[arg(value_name = "REF")]
        reference: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum TagAction {
    List,
    Delete { name: String },
}

/// Turns `log -5` into `log -n 5`, as Git users type it.
fn expand_numeric_flags(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut in_log = false;
    for a in args {
        if a == "--" {
            in_log = false;
        }
        if in_log && a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| c.is_ascii_digit())
        {
            out.push("-n".to_string());
            out.push(a[1..].to_string());
            continue;
        }
        if a == "log" {
            in_log = true;
        }
        out.push(a);
    }
    out
}

/// glibc's malloc raises its mmap threshold as large buffers are freed (up
/// to 32 MiB), after which the chunker's and pack writer's multi-MiB
/// buffers come from the heap arenas, one per thread, and the holes they
/// leave are kept: `add -A` of a million files peaked at 528 MiB RSS for a
/// 382 MiB heap. A fixed 1 MiB threshold sends those buffers to `mmap`, given
/// back whole on `free`: 464 MiB for the same add, no slower (see
/// docs/PERFORMANCE.md). The policy of the process belongs to the binary,
/// not the library. `MALLOC_MMAP_THRESHOLD_` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return;
    }
    // SAFETY: `mallopt` takes two integers and changes a tuning parameter
    // of glibc's allocator under its own lock; it reads and writes no
    // memory of ours, and it runs here before any thread is started.
    // A refusal (return value 0) leaves the default policy: harmless.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// `--version`: the program's, and the versions of the formats it reads
/// and writes (a repository, index or pack newer than these is refused).
pub fn long_version() -> String {
    use mediagit_format::{config, index, journal, object, pack};
    let mut features: Vec<&str> = Vec::new();
    if cfg!(feature = "failpoints") {
        features.push("failpoints (crash-test build)");
    }
    format!(
        "{}\nrepository format {} (reads {}..={}), worktree index {} (reads {}..={}), \
         pack {}, object {}, add journal {}\nstorage: local directory, s3://, az://, gs://, b2://\n\
         features: {}",
        env!("CARGO_PKG_VERSION"),
        config::FORMAT_VERSION,
        config::FORMAT_MIN_VERSION,
        config::FORMAT_VERSION,
        index::INDEX_VERSION,
        index::INDEX_MIN_VERSION,
        index::INDEX_VERSION,
        pack::PACK_VERSION,
        object::OBJECT_VERSION,
        journal::JOURNAL_VERSION,
        if features.is_empty() {
            "none".to_string()
        } else {
            features.join(", ")
        }
    )
}

/// The command-line definition, with the long version filled in.
pub fn cli_command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().long_version(long_version())
}

fn main() -> ExitCode {
    tune_allocator();
    // Arguments that are not UTF-8 (a file name in another encoding) are
    // refused by name, not a panic: paths and names are UTF-8 (FORMAT.md).
    let mut args = Vec::new();
    let mut bad = None;
    for a in std::env::args_os() {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(os) => bad = bad.or(Some(os.to_string_lossy().into_owned())),
        }
    }
    let args = expand_numeric_flags(args);
    // `--json` anywhere before `--`: errors go to stderr as JSON, usage
    // errors found by clap included.
    let json_arg = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    if let Some(bad) = bad {
        let e = CommandError::user(
            "non-utf8-path",
            format!("argument {bad:?} is not valid UTF-8 (MediaGit's paths and names are UTF-8)"),
        );
        return report(e, json_arg);
    }
    // clap's own colour follows --color too (help and usage errors).
    let when = args
        .iter()
        .take_while(|a| *a != "--")
        .zip(args.iter().skip(1).map(Some).chain([None]))
        .find_map(|(a, next)| match a.strip_prefix("--color=") {
            Some(v) => Some(v.to_string()),
            None if a == "--color" => next.cloned(),
            None => None,
        });
    let color = match when.as_deref() {
        Some("always") => clap::ColorChoice::Always,
        Some("never") => clap::ColorChoice::Never,
        _ => clap::ColorChoice::Auto,
    };
    let (cli, json) = {
        use clap::FromArgMatches;
        let parsed = cli_command()
            .color(color)
            .try_get_matches_from(args)
            .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, wants_json(&m))));
        match parsed {
            Ok(v) => v,
            // Help and version: clap prints them (to stdout).
            Err(e) if !e.use_stderr() => e.exit(),
            Err(e) => {
                // The message first (its lines joined), then what clap
                // adds (a tip, the usage line) as the hint; escaped: an
                // argument (a file name) may hold terminal codes.
                let rendered = e.render().to_string();
                let body = rendered.strip_prefix("error: ").unwrap_or(&rendered);
                let mut parts = body.splitn(2, "\n\n");
                let message: Vec<&str> = parts
                    .next()
                    .unwrap_or("")
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                let hint = parts.next().map(str::trim).filter(|h| !h.is_empty());
                let mut err = CommandError::usage(message.join(" "));
                if json_arg {
                    err.hint = hint.map(str::to_string);
                    return report(err, true);
                }
                std::eprint!("{}", output::safe(&rendered));
                return ExitCode::from(command_error::exit::USAGE as u8);
            }
        }
    };
    // Crash testing only: die by SIGKILL at a named write point (docs/FORMAT.md §9).
    // Only in builds with the `failpoints` feature (the crash tests').
    #[cfg(feature = "failpoints")]
    if let Ok(spec) = std::env::var("MEDIAGIT_FAILPOINTS") {
        mediagit_repo::failpoint::configure(&spec);
    }
    output::color::init(cli.color);
    // `remote -v` lists URLs, as in Git: no logging for it.
    init_logging(match cli.command {
        Command::Remote { .. } => 0,
        // Sets up its own logs (--log-format).
        Command::Serve(_) => 0,
        _ => cli.verbose,
    });
    let chdir = match &cli.chdir {
        Some(dir) => std::env::set_current_dir(dir).map_err(|e| {
            CommandError::user(
                "io",
                format!("cannot change to directory {}: {e}", dir.display()),
            )
        }),
        None => Ok(()),
    };
    match chdir.and_then(|()| commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e, json),
    }
}

/// Prints a failed command's error (JSON for `--json` commands) and gives
/// its exit code; a closed stdout ends quietly.
fn report(e: CommandError, json: bool) -> ExitCode {
    if e.is_broken_pipe() {
        return ExitCode::SUCCESS;
    }
    if json {
        eprintln!("{}", e.to_json());
    } else {
        // (std's: the colour codes are not escaped, the text is.)
        use output::color::{paint_err, Style};
        std::eprintln!(
            "{} {}",
            paint_err(Style::Red, "error:"),
            output::safe(&e.message)
        );
        if let Some(h) = e.hint {
            std::eprintln!("{} {}", paint_err(Style::Yellow, "hint:"), output::safe(&h));
        }
    }
    ExitCode::from(e.code as u8)
}

pub type CmdResult = Result<(), CommandError>;

/// `-v` / `MEDIAGIT_LOG`: tracing events and phase timings (each span's
/// `close` line carries `time.busy`) on stderr. Nothing is set up (and
/// nothing costs) without either.
fn init_logging(verbose: u8) {
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::EnvFilter;
    let ours = |level: &str| {
        format!("mediagit={level},mediagit_repo={level},mediagit_storage={level},mediagit_pipeline={level}")
    };
    let filter = match std::env::var("MEDIAGIT_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(f) => f,
            Err(e) => {
                eprintln!(
                    "warning: MEDIAGIT_LOG={spec:?} is not a log filter ({e}); using \"debug\""
                );
                EnvFilter::new(ours("debug"))
            }
        },
        _ => match verbose {
            0 => return,
            1 => EnvFilter::new(ours("info")),
            2 => EnvFilter::new(ours("debug")),
            _ => EnvFilter::new(ours("trace")),
        },
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_ansi(output::color::stderr_on())
        .with_target(false)
        .try_init();
}

/// Whether the command given asked for `--json` output (then its errors
/// are JSON too).
fn wants_json(m: &clap::ArgMatches) -> bool {
    matches!(m.try_get_one::<bool>("json"), Ok(Some(true)))
        || m.subcommand().is_some_and(|(_, sub)| wants_json(sub))
}
