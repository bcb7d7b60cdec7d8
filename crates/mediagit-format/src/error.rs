use crate::id::ObjectId;

/// Everything that can be wrong with bytes handed to a decoder.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{what}: unknown format version {found} (this build reads up to version {supported}); upgrade mediagit")]
    UnknownVersion {
        what: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("{what}: bad magic bytes (not a MediaGit {what})")]
    BadMagic { what: &'static str },
    #[error("{what}: truncated ({len} bytes, need at least {need})")]
    Truncated {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("{what}: checksum mismatch (file is damaged)")]
    Checksum { what: &'static str },
    #[error("{what}: cannot decode: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("invalid object id {0:?}: expected 64 hex digits")]
    BadId(String),
    #[error("object {id}: content hashes to {actual} (object is corrupt)")]
    HashMismatch { id: ObjectId, actual: ObjectId },
    #[error("tree entry name {name:?} is not allowed: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("invalid config: {0}")]
    Config(String),
    #[error("this repository requires the format feature {feature:?}, which this build of mediagit does not know; upgrade mediagit")]
    UnknownFeature { feature: String },
}
