//! `.mediagit/config.toml`: the repository configuration.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::FormatError;

/// The repository format version this build writes (and the newest it reads).
///
/// Version 2 added `[format] required_features` and `optional_features`
/// and writes metadata objects in packs of their own. Version 1
/// repositories are read and written as they are (nothing this build
/// writes there is unreadable to a version-1 build) until `mediagit
/// upgrade` converts them.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest repository format version this build reads.
pub const FORMAT_MIN_VERSION: u32 = 1;

/// Features this build implements, which a repository may also require
/// (`[format] required_features`). A reader MUST refuse a repository
/// requiring any other. `encryption` (FORMAT.md §13) is the first that
/// repositories require.
pub const KNOWN_FEATURES: &[&str] = &["metadata-packs", ENCRYPTION_FEATURE];

/// The required feature of encrypted repositories (FORMAT.md §13).
pub const ENCRYPTION_FEATURE: &str = "encryption";

/// The largest `config.toml` a reader parses (a store's copy may be hostile).
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Optional features this build writes: `metadata-packs` (manifests,
/// trees, commits and tags go into packs without chunks). Readers ignore
/// optional features they do not know.
pub const WRITTEN_OPTIONAL_FEATURES: &[&str] = &["metadata-packs"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub format: FormatSection,
    #[serde(default)]
    pub chunking: ChunkingConfig,
    #[serde(default)]
    pub compression: CompressionConfig,
    #[serde(default)]
    pub core: CoreConfig,
    #[serde(default, skip_serializing_if = "AuthorConfig::is_empty")]
    pub author: AuthorConfig,
    /// Where objects, packs and refs live. Absent: inside `.mediagit/`.
    /// Never holds credentials: those come from each cloud's environment
    /// variables and credential files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageConfig>,
    /// Other copies of the repository this working tree pushes to and
    /// fetches from (`[remotes.NAME]`). Local settings only: never taken
    /// from a store's `config.toml` (whoever can write a store must not
    /// choose where this working tree pushes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remotes: BTreeMap<String, RemoteConfig>,
    /// Upstream of each local branch (`[branches.NAME] remote, merge`),
    /// set by `push -u` and `clone`: what `pull` and `status` compare with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub branches: BTreeMap<String, BranchConfig>,
    /// Backup targets of this repository (`[backups.NAME] url,
    /// repository`, written by `mediagit backup init`). Local settings
    /// only, as `[remotes]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backups: BTreeMap<String, BackupTargetConfig>,
    /// `[locks] patterns`: files that are read-only in this working tree
    /// until locked on a server (as Git LFS's lockable files).
    #[serde(default, skip_serializing_if = "LocksConfig::is_empty")]
    pub locks: LocksConfig,
    /// `[merge] ours`, `theirs`: files a merge takes from one side when
    /// both changed them. Local settings only, as `[locks]`.
    #[serde(default, skip_serializing_if = "MergeConfig::is_empty")]
    pub merge: MergeConfig,
    /// `[media] records`: whether `add` records media metadata (FORMAT.md
    /// §14). Local setting, as `[merge]`.
    #[serde(default, skip_serializing_if = "MediaConfig::is_default")]
    pub media: MediaConfig,
}

/// `[media]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaConfig {
    /// `false`: `add` stores no media records (a repository whose files'
    /// metadata, such as GPS positions, must not be copied into it).
    #[serde(default = "records_default")]
    pub records: bool,
}

fn records_default() -> bool {
    true
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        MediaConfig { records: true }
    }
}

impl MediaConfig {
    pub fn is_default(&self) -> bool {
        *self == MediaConfig::default()
    }
}

/// `[merge]`: per-file merge strategies by pattern.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeConfig {
    /// Patterns (`.mediagitignore` syntax) of files that keep our version
    /// when both sides changed them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ours: Vec<String>,
    /// Patterns of files that take their version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub theirs: Vec<String>,
}

impl MergeConfig {
    fn is_empty(&self) -> bool {
        self.ours.is_empty() && self.theirs.is_empty()
    }
}

/// `[locks]`: lockable files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocksConfig {
    /// Patterns in `.mediagitignore` syntax (`*.psd` at any depth,
    /// `art/*.blend` from the top, `!keep.psd` excepts): matching files are
    /// written read-only unless this working tree holds their lock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
}

impl LocksConfig {
    fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// `[remotes.NAME]`: another copy of the repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteConfig {
    /// A directory (another repository), `file://DIR`, or a store URL
    /// (`s3://BUCKET/PREFIX`, `az://`, `gs://`, `b2://`).
    pub url: String,
    /// The environment variable that holds the token for this remote's
    /// server (the default is `MEDIAGIT_TOKEN`). Never the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

/// `[backups.NAME]`: a backup target (FORMAT.md §15).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupTargetConfig {
    /// A directory or a store URL (`s3://BUCKET/PREFIX`, `az://`, `gs://`, `b2://`).
    pub url: String,
    /// This repository's id in the target.
    pub repository: String,
}

/// `[branches.NAME]`: the remote branch a local branch follows. Both
/// fields may be set one at a time (`mediagit config`): without `remote`
/// the branch has no upstream; without `merge` it follows its namesake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchConfig {
    #[serde(default)]
    pub remote: String,
    /// The branch's name on the remote.
    #[serde(default)]
    pub merge: String,
}

impl RepoConfig {
    /// The upstream of local branch `branch`: (remote, its branch there).
    pub fn upstream(&self, branch: &str) -> Option<(String, String)> {
        let b = self.branches.get(branch)?;
        if b.remote.is_empty() {
            return None;
        }
        let merge = if b.merge.is_empty() { branch } else { &b.merge };
        Some((b.remote.clone(), merge.to_string()))
    }
}

/// Why `name` cannot name a remote, if it cannot: remote names become
/// one component of `refs/remotes/NAME/BRANCH` and a TOML table key.
pub fn invalid_remote_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty");
    }
    if name.len() > 100 {
        return Some("longer than 100 bytes");
    }
    if name.starts_with(['-', '.']) {
        return Some("starts with '-' or '.'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Some("uses characters other than letters, digits, '-', '_' and '.'");
    }
    if name.ends_with(".lock") || name.contains("..") || name == "HEAD" {
        return Some("reserved (ends with '.lock', holds '..' or is HEAD)");
    }
    None
}

/// The kinds of store a repository's objects can live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Filesystem,
    S3,
    Azure,
    Gcs,
    B2,
}

impl StorageKind {
    pub fn name(self) -> &'static str {
        match self {
            StorageKind::Filesystem => "filesystem",
            StorageKind::S3 => "s3",
            StorageKind::Azure => "azure",
            StorageKind::Gcs => "gcs",
            StorageKind::B2 => "b2",
        }
    }
}

/// The `[storage]` section of `.mediagit/config.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageConfig {
    pub backend: StorageKind,
    /// Bucket (S3, GCS, B2) or container (Azure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Key prefix inside the bucket: one bucket can hold many repositories.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Service endpoint (MinIO, Ceph, Spaces, Azurite, a GCS emulator...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Directory of a `filesystem` store (a NAS mount, another disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Azure storage account (else `AZURE_STORAGE_ACCOUNT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Native B2 API: the bucket's id (B2 needs both name and id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_id: Option<String>,
    /// Whether the store enforces conditional writes, as probed by `init` or
    /// `clone`. `false`: two clients moving the same ref at the same moment
    /// can lose one update (native B2, some S3 clones and emulators).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub conditional_writes: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl StorageConfig {
    /// Parses `s3://BUCKET/PREFIX`, `az://CONTAINER/PREFIX`, `gs://BUCKET/PREFIX`,
    /// `b2://BUCKET/PREFIX`, `file:///DIR` or a plain directory path.
    pub fn from_url(url: &str) -> Result<StorageConfig, FormatError> {
        let bad = |why: &str| FormatError::Config(format!("storage URL {url:?}: {why}"));
        let cloud = [
            ("s3://", StorageKind::S3),
            ("az://", StorageKind::Azure),
            ("gs://", StorageKind::Gcs),
            ("b2://", StorageKind::B2),
        ];
        let mut cfg = StorageConfig {
            backend: StorageKind::Filesystem,
            bucket: None,
            prefix: String::new(),
            endpoint: None,
            region: None,
            path: None,
            account: None,
            bucket_id: None,
            conditional_writes: true,
        };
        for (scheme, kind) in cloud {
            if let Some(rest) = url.strip_prefix(scheme) {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(bad("the bucket name is missing"));
                }
                if !bucket
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return Err(bad(
                        "bucket names use only letters, digits, '-', '_' and '.'",
                    ));
                }
                cfg.backend = kind;
                cfg.bucket = Some(bucket.to_string());
                cfg.prefix = normalize_prefix(prefix).map_err(bad)?;
                return Ok(cfg);
            }
        }
        if let Some((scheme, _)) = url.split_once("://") {
            if scheme != "file" {
                return Err(bad(
                    "unknown scheme (use s3://, az://, gs://, b2://, file:// or a directory path)",
                ));
            }
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.is_empty() {
            return Err(bad("the directory is missing"));
        }
        cfg.path = Some(path.to_string());
        Ok(cfg)
    }

    /// An object store (anything but a `filesystem` directory).
    pub fn is_object_store(&self) -> bool {
        self.backend != StorageKind::Filesystem
    }

    /// The URL form, as users type it (`s3://media/projects/film`).
    pub fn url(&self) -> String {
        let scheme = match self.backend {
            StorageKind::Filesystem => {
                return self.path.clone().unwrap_or_default();
            }
            StorageKind::S3 => "s3",
            StorageKind::Azure => "az",
            StorageKind::Gcs => "gs",
            StorageKind::B2 => "b2",
        };
        let bucket = self.bucket.as_deref().unwrap_or("");
        if self.prefix.is_empty() {
            format!("{scheme}://{bucket}")
        } else {
            format!("{scheme}://{bucket}/{}", self.prefix)
        }
    }

    fn validate(&self) -> Result<(), FormatError> {
        let bad = |why: String| Err(FormatError::Config(format!("[storage] {why}")));
        match self.backend {
            StorageKind::Filesystem => {
                if self.path.as_deref().unwrap_or("").is_empty() {
                    return bad("backend = \"filesystem\" needs path = \"DIR\"".into());
                }
            }
            kind => {
                if self.bucket.as_deref().unwrap_or("").is_empty() {
                    return bad(format!(
                        "backend = {:?} needs bucket = \"NAME\"",
                        kind.name()
                    ));
                }
                if let Err(why) = normalize_prefix(&self.prefix) {
                    return bad(format!("prefix = {:?}: {why}", self.prefix));
                }
                if kind == StorageKind::B2 && self.bucket_id.is_none() {
                    return bad(
                        "backend = \"b2\" needs bucket_id = \"...\" (the native B2 API addresses buckets by id; B2's S3 endpoint works with backend = \"s3\")".into(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// `a/b/` and `/a/b` become `a/b`; empty, `.` and `..` components are refused.
fn normalize_prefix(p: &str) -> Result<String, &'static str> {
    let p = p.trim_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err("empty, '.' or '..' component in the prefix");
    }
    Ok(p.to_string())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatSection {
    pub version: u32,
    /// The function that names chunks. Encrypted repositories will name a
    /// keyed function here.
    #[serde(default)]
    pub chunk_id: ChunkIdFunction,
    /// Features a reader MUST know to read or write this repository
    /// (version 2 and later).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_features: Vec<String>,
    /// Features a reader may ignore (version 2 and later).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional_features: Vec<String>,
}

impl FormatSection {
    /// Whether the repository is encrypted (requires `encryption`).
    pub fn is_encrypted(&self) -> bool {
        self.required_features
            .iter()
            .any(|f| f == ENCRYPTION_FEATURE)
    }

    /// Whether the repository declares an optional or required feature.
    pub fn has_feature(&self, name: &str) -> bool {
        self.required_features
            .iter()
            .chain(&self.optional_features)
            .any(|f| f == name)
    }
}

/// The function that names chunks (`[format] chunk_id`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ChunkIdFunction {
    /// Plain SHA-256 of the chunk's bytes: `"sha256"`.
    #[default]
    Sha256,
    /// HMAC-SHA256 under the repository's id key: `"hmac-sha256"`, only in
    /// encrypted repositories (FORMAT.md §13.2), where every object id is
    /// keyed.
    HmacSha256,
}

impl ChunkIdFunction {
    pub fn name(self) -> &'static str {
        match self {
            ChunkIdFunction::Sha256 => "sha256",
            ChunkIdFunction::HmacSha256 => "hmac-sha256",
        }
    }
}

impl TryFrom<String> for ChunkIdFunction {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "sha256" => Ok(ChunkIdFunction::Sha256),
            "hmac-sha256" => Ok(ChunkIdFunction::HmacSha256),
            _ => Err(format!(
                "[format] chunk_id = {s:?} is not supported by this build (supported: \"sha256\", \"hmac-sha256\")"
            )),
        }
    }
}

impl From<ChunkIdFunction> for String {
    fn from(f: ChunkIdFunction) -> String {
        f.name().to_string()
    }
}

/// FastCDC (v2020, normalization level 1) parameters, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkingConfig {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkingConfig {
    fn default() -> Self {
        ChunkingConfig {
            min_size: 128 * 1024,
            avg_size: 512 * 1024,
            max_size: 2 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressionConfig {
    /// zstd level used for content that compresses.
    pub level: i32,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig { level: 3 }
    }
}

/// Smallest `[core] checkpoint_bytes` (below it a checkpoint would store a
/// pack for every few chunks).
pub const MIN_CHECKPOINT_BYTES: u64 = 64 << 10;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreConfig {
    /// A bare repository has no working tree.
    #[serde(default)]
    pub bare: bool,
    /// `add` stores its packs (a checkpoint an interrupted add resumes
    /// from) after this many bytes of new objects. Default: a quarter of
    /// the pack size (256 MiB on a local disk, 32 MiB in a bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_bytes: Option<u64>,
    /// ... and at least this often, in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl AuthorConfig {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none()
    }
}

impl RepoConfig {
    pub fn new(bare: bool) -> RepoConfig {
        RepoConfig {
            format: FormatSection {
                version: FORMAT_VERSION,
                chunk_id: ChunkIdFunction::Sha256,
                required_features: Vec::new(),
                optional_features: WRITTEN_OPTIONAL_FEATURES
                    .iter()
                    .map(|f| f.to_string())
                    .collect(),
            },
            chunking: ChunkingConfig::default(),
            compression: CompressionConfig::default(),
            core: CoreConfig {
                bare,
                ..Default::default()
            },
            author: AuthorConfig::default(),
            storage: None,
            remotes: BTreeMap::new(),
            backups: BTreeMap::new(),
            branches: BTreeMap::new(),
            locks: LocksConfig::default(),
            merge: MergeConfig::default(),
            media: MediaConfig::default(),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes to TOML")
    }

    /// Parses and validates a config; refuses format versions this build does not know.
    pub fn from_toml(s: &str) -> Result<RepoConfig, FormatError> {
        if s.len() > MAX_CONFIG_BYTES {
            return Err(FormatError::Config(format!(
                "{} bytes; a config.toml is at most {MAX_CONFIG_BYTES}",
                s.len()
            )));
        }
        // Check the version before the rest, so a newer format with new
        // fields gets the "upgrade" message rather than a parse error.
        let raw: toml::Value = toml::from_str(s).map_err(|e| FormatError::Config(e.to_string()))?;
        let version = raw
            .get("format")
            .and_then(|f| f.get("version"))
            .and_then(|v| v.as_integer())
            .ok_or_else(|| FormatError::Config("missing [format] version".into()))?;
        if !(FORMAT_MIN_VERSION as i64..=FORMAT_VERSION as i64).contains(&version) {
            return Err(FormatError::UnknownVersion {
                what: "repository",
                found: version.clamp(0, u32::MAX as i64) as u32,
                supported: FORMAT_VERSION,
            });
        }
        let has_lists = raw.get("format").is_some_and(|f| {
            f.get("required_features").is_some() || f.get("optional_features").is_some()
        });
        let cfg: RepoConfig = toml::from_str(s).map_err(|e| FormatError::Config(e.to_string()))?;
        if cfg.format.version < 2 && has_lists {
            return Err(FormatError::Config(
                "[format] features need format version 2 or later".into(),
            ));
        }
        if let Some(f) = cfg
            .format
            .required_features
            .iter()
            .find(|f| !KNOWN_FEATURES.contains(&f.as_str()))
        {
            return Err(FormatError::UnknownFeature { feature: f.clone() });
        }
        // Keyed ids and encryption go together: a config that claims one
        // without the other would name objects one way and read them
        // another.
        let encrypted = cfg
            .format
            .required_features
            .iter()
            .any(|f| f == ENCRYPTION_FEATURE);
        if encrypted != (cfg.format.chunk_id == ChunkIdFunction::HmacSha256) {
            return Err(FormatError::Config(format!(
                "[format] chunk_id = {:?} and required feature \"{ENCRYPTION_FEATURE}\" go together (an encrypted repository names objects with \"hmac-sha256\")",
                cfg.format.chunk_id.name()
            )));
        }
        const MAX_FEATURES: usize = 64;
        if cfg.format.required_features.len() + cfg.format.optional_features.len() > MAX_FEATURES {
            return Err(FormatError::Config(format!(
                "more than {MAX_FEATURES} [format] features"
            )));
        }
        let c = cfg.chunking;
        let sizes_ok = (64..=1 << 20).contains(&c.min_size)
            && (256..=4 << 20).contains(&c.avg_size)
            && (1024..=16 << 20).contains(&c.max_size)
            && c.min_size <= c.avg_size
            && c.avg_size <= c.max_size;
        if !sizes_ok {
            return Err(FormatError::Config(format!(
                "[chunking] sizes out of range: need 64 <= min_size <= 1 MiB, 256 <= avg_size <= 4 MiB, 1 KiB <= max_size <= 16 MiB and min <= avg <= max (got {}/{}/{})",
                c.min_size, c.avg_size, c.max_size
            )));
        }
        if !(1..=22).contains(&cfg.compression.level) {
            return Err(FormatError::Config(format!(
                "[compression] level = {} must be between 1 and 22",
                cfg.compression.level
            )));
        }
        if cfg
            .core
            .checkpoint_bytes
            .is_some_and(|b| b < MIN_CHECKPOINT_BYTES)
        {
            return Err(FormatError::Config(format!(
                "[core] checkpoint_bytes must be at least {MIN_CHECKPOINT_BYTES} (64 KiB); leave it out for the default"
            )));
        }
        if cfg.core.checkpoint_seconds == Some(0) {
            return Err(FormatError::Config(
                "[core] checkpoint_seconds must be at least 1; leave it out for the default".into(),
            ));
        }
        if let Some(st) = &cfg.storage {
            st.validate()?;
        }
        const MAX_REMOTES: usize = 256;
        if cfg.remotes.len() > MAX_REMOTES || cfg.branches.len() > 100_000 {
            return Err(FormatError::Config(format!(
                "more than {MAX_REMOTES} [remotes] or 100000 [branches]"
            )));
        }
        for (name, r) in &cfg.remotes {
            if let Some(why) = invalid_remote_name(name) {
                return Err(FormatError::Config(format!(
                    "[remotes.{name:?}]: not a remote name: {why}"
                )));
            }
            if r.url.trim().is_empty() || r.url.chars().any(char::is_control) {
                return Err(FormatError::Config(format!(
                    "[remotes.{name}] url is empty or holds control characters"
                )));
            }
            if let Some(v) = &r.token_env {
                if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(FormatError::Config(format!(
                        "[remotes.{name}] token_env must name an environment variable (letters, digits, '_')"
                    )));
                }
            }
        }
        for (name, b) in &cfg.branches {
            if (!b.remote.is_empty() && invalid_remote_name(&b.remote).is_some())
                || b.merge.chars().any(char::is_control)
            {
                return Err(FormatError::Config(format!(
                    "[branches.{name:?}]: remote {:?} / merge {:?} is not a remote and branch",
                    b.remote, b.merge
                )));
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_settings_are_bounded() {
        let base = RepoConfig::new(false).to_toml();
        let with = |extra: &str| base.replace("bare = false", &format!("bare = false\n{extra}"));
        let c = RepoConfig::from_toml(&with("checkpoint_bytes = 1048576\ncheckpoint_seconds = 5"))
            .unwrap();
        assert_eq!(c.core.checkpoint_bytes, Some(1 << 20));
        assert_eq!(c.core.checkpoint_seconds, Some(5));
        for bad in [
            "checkpoint_bytes = 0",
            "checkpoint_bytes = 1000",
            "checkpoint_seconds = 0",
        ] {
            let e = RepoConfig::from_toml(&with(bad)).unwrap_err().to_string();
            assert!(e.contains(bad.split(' ').next().unwrap()), "{bad}: {e}");
        }
        assert!(RepoConfig::from_toml(&with("checkpoint_bytes = -1")).is_err());
    }

    #[test]
    fn round_trip_and_version_check() {
        let c = RepoConfig::new(false);
        assert_eq!(RepoConfig::from_toml(&c.to_toml()).unwrap(), c);
        let newer = c.to_toml().replace("version = 2", "version = 3");
        let err = RepoConfig::from_toml(&newer).unwrap_err().to_string();
        assert!(err.contains("unknown format version 3"), "{err}");
        assert!(err.contains("upgrade mediagit"), "{err}");
        // Version 1 (no feature lists) is still read.
        let v1 = "[format]\nversion = 1\nchunk_id = \"sha256\"\n";
        let old = RepoConfig::from_toml(v1).unwrap();
        assert_eq!(old.format.version, 1);
        assert!(!old.format.has_feature("metadata-packs"));
        assert!(RepoConfig::from_toml(&format!("{v1}optional_features = [\"x\"]\n")).is_err());
        assert!(RepoConfig::from_toml(&format!("{v1}required_features = []\n")).is_err());
        // A feature this build implements may be required.
        let t = c.to_toml().replace(
            "optional_features = [",
            "required_features = [\"metadata-packs\"]\noptional_features = [",
        );
        assert!(RepoConfig::from_toml(&t).is_ok());
        // Size is bounded before parsing (a hostile store's copy).
        let huge = format!(
            "{}\noptional_features = [{}]\n",
            c.to_toml(),
            "\"x\",".repeat(MAX_CONFIG_BYTES / 4)
        );
        let err = RepoConfig::from_toml(&huge).unwrap_err().to_string();
        assert!(err.contains("at most 65536"), "{err}");
        // An unknown required feature is refused by name; optional ones are ignored.
        let t = c.to_toml().replace(
            "optional_features = [",
            "required_features = [\"zstd-dictionaries\"]\noptional_features = [\"future-thing\", ",
        );
        let err = RepoConfig::from_toml(&t).unwrap_err().to_string();
        assert!(err.contains("\"zstd-dictionaries\""), "{err}");
        let t = c.to_toml().replace(
            "optional_features = [",
            "optional_features = [\"future-thing\", ",
        );
        assert!(RepoConfig::from_toml(&t)
            .unwrap()
            .format
            .has_feature("future-thing"));
        let t = c
            .to_toml()
            .replace("chunk_id = \"sha256\"", "chunk_id = \"blake3\"");
        let err = RepoConfig::from_toml(&t).unwrap_err().to_string();
        assert!(err.contains("blake3"), "{err}");
        let bad = c.to_toml().replace("min_size = 131072", "min_size = 1");
        assert!(RepoConfig::from_toml(&bad).is_err());
    }

    #[test]
    fn storage_urls() {
        let s = StorageConfig::from_url("s3://media/projects/film/").unwrap();
        assert_eq!(s.backend, StorageKind::S3);
        assert_eq!(s.bucket.as_deref(), Some("media"));
        assert_eq!(s.prefix, "projects/film");
        assert_eq!(s.url(), "s3://media/projects/film");
        assert_eq!(StorageConfig::from_url("gs://b").unwrap().prefix, "");
        assert_eq!(
            StorageConfig::from_url("az://c/p").unwrap().backend,
            StorageKind::Azure
        );
        let f = StorageConfig::from_url("file:///mnt/nas/repo").unwrap();
        assert_eq!(f.path.as_deref(), Some("/mnt/nas/repo"));
        for bad in ["s3://", "s3:///x", "ftp://x/y", "s3://a/../b", "s3://a b/c"] {
            assert!(StorageConfig::from_url(bad).is_err(), "{bad}");
        }
        let mut c = RepoConfig::new(false);
        c.storage = Some(StorageConfig::from_url("s3://media/film").unwrap());
        assert_eq!(RepoConfig::from_toml(&c.to_toml()).unwrap(), c);
        assert!(c.to_toml().contains("backend = \"s3\""));
        c.storage = Some(StorageConfig::from_url("b2://media/film").unwrap());
        let err = RepoConfig::from_toml(&c.to_toml()).unwrap_err().to_string();
        assert!(err.contains("bucket_id"), "{err}");
    }
}
