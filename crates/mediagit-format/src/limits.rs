//! Bounds on everything a reader allocates or walks because a store said
//! so. A store may be hostile (another machine on a shared bucket, anyone
//! who can write it): a 33 KB pack must not make a reader allocate 4 GiB, a
//! 2.6 MB pack must not overflow its stack, a 3 KB pack of shared subtrees
//! must not expand into gigabytes. `docs/FORMAT.md` (threat model) lists
//! these numbers; readers refuse what exceeds them, naming the object.
use crate::ObjectKind;

/// Largest decoded manifest: 256 MiB is about 7 million chunks, a 3.5 TB
/// file at the default chunk sizes.
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;
/// Largest decoded tree (one directory): millions of entries.
pub const MAX_TREE_BYTES: u64 = 256 << 20;
/// Largest decoded commit or tag (the message dominates).
pub const MAX_COMMIT_BYTES: u64 = 16 << 20;
/// Deepest directory nesting a tree may have. Linux paths end at 4096
/// bytes, so no working tree can hold more than 2048 levels; 1024 leaves
/// room for real projects and keeps every walk's memory small.
pub const MAX_TREE_DEPTH: usize = 1024;
/// Most files (and symlinks) one flattened tree may list: a commit with
/// more is refused before anything is allocated for it (trees can share
/// subtrees, so a few kilobytes of trees could otherwise name billions).
pub const MAX_TREE_FILES: u64 = 10_000_000;

/// Most tree entries listing one flattened tree may go through: each
/// directory's entries, once per place the directory appears (directories
/// without files are not entered). Real trees stay near files +
/// directories; this refuses a few kilobytes of shared subtrees with
/// hundreds of thousands of entries each, named over and over, that would
/// otherwise keep a reader busy for hours.
pub const MAX_TREE_VISITS: u64 = 4 * MAX_TREE_FILES;

/// Most bytes of names listing one flattened tree may go through (the
/// entries of [`MAX_TREE_VISITS`], by their names' bytes): real trees
/// stay near the bytes of their paths ([`MAX_TREE_PATH_BYTES`]); this
/// refuses a big directory of long names named over and over.
pub const MAX_TREE_VISITED_NAME_BYTES: u64 = 2 * MAX_TREE_PATH_BYTES;

/// Most bytes the paths of one flattened tree may add up to (the file cap
/// alone would let shared subtrees with long names ask for terabytes).
pub const MAX_TREE_PATH_BYTES: u64 = 1 << 30;

/// Largest decoded size of an object of `kind` in a repository whose
/// chunks are at most `max_chunk` bytes (its `[chunking] max_size`).
pub fn max_object_len(kind: ObjectKind, max_chunk: u32) -> u64 {
    match kind {
        ObjectKind::Chunk => max_chunk as u64,
        ObjectKind::Manifest => MAX_MANIFEST_BYTES,
        ObjectKind::Tree => MAX_TREE_BYTES,
        ObjectKind::Commit | ObjectKind::Tag => MAX_COMMIT_BYTES,
    }
}

/// Largest stored (encoded) payload of an object that decodes to at most
/// `raw` bytes: zstd's worst-case expansion of incompressible input is
/// below 1/128 plus a small constant.
pub fn max_stored_len(raw: u64) -> u64 {
    raw + raw / 128 + 1024
}
