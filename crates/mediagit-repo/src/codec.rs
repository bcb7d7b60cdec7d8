//! The object codec: the one place that decides how an object is named and
//! how its bytes are stored.
//!
//! Why one place: encryption (a keyed chunk id, sealed payloads) must apply
//! to every object a repository stores, whichever command writes it. So no
//! writer hashes or compresses on its own: `add`'s workers, the pack
//! session (commit, tag, gc, fsck) and the readers that verify what they
//! read all ask the [`ObjectCodec`] of their repository.
//!
//! Two ids are deliberately *not* the codec's: a file's content id, which
//! MUST stay the plain SHA-256 of its bytes (what `sha256sum` prints and Git
//! LFS uses as its oid, docs/FORMAT.md §1), is [`content_id`]; and the names
//! of packs and checksums of binary files, which are about bytes on disk.
use std::sync::Arc;

use mediagit_crypto::RepoKeys;
use mediagit_format::config::{ChunkIdFunction, RepoConfig};
use mediagit_format::pack::Codec;
use mediagit_format::{ObjectId, ObjectKind};
use mediagit_pipeline::{compress_chunk, CompressionHint};

use crate::error::{RepoError, Result};

/// A file's content id: the SHA-256 of its whole content (for a symlink,
/// of its target). Never keyed, whatever the repository's chunk ids are.
pub fn content_id(bytes: &[u8]) -> ObjectId {
    ObjectId::hash(bytes)
}

/// An object ready to be appended to a pack.
pub struct Encoded {
    pub kind: ObjectKind,
    pub id: ObjectId,
    pub codec: Codec,
    pub raw_len: usize,
    pub payload: Vec<u8>,
}

/// Names and encodes objects for one repository (`[format] chunk_id`,
/// `[compression] level`), and with the repository's keys seals them
/// (FORMAT.md §13): ids become HMAC-SHA256 under the id key, and packs and
/// pack indexes written through the object database are sealed.
#[derive(Clone, Debug)]
pub struct ObjectCodec {
    chunk_id: ChunkIdFunction,
    level: i32,
    keys: Option<Arc<RepoKeys>>,
}

impl ObjectCodec {
    pub fn new(cfg: &RepoConfig) -> ObjectCodec {
        ObjectCodec {
            chunk_id: cfg.format.chunk_id,
            level: cfg.compression.level,
            keys: None,
        }
    }

    /// The codec of an encrypted repository: every object id keyed, every
    /// pack and pack index sealed.
    pub fn sealed(cfg: &RepoConfig, keys: Arc<RepoKeys>) -> ObjectCodec {
        ObjectCodec {
            keys: Some(keys),
            ..ObjectCodec::new(cfg)
        }
    }

    /// The repository's keys, when it is encrypted.
    pub fn keys(&self) -> Option<&RepoKeys> {
        self.keys.as_deref()
    }

    /// The zstd level used for content that compresses.
    pub fn level(&self) -> i32 {
        self.level
    }

    /// The id of an object of `kind` with these decoded bytes: a chunk by
    /// the repository's chunk id function, any other object by the SHA-256
    /// of its canonical encoding; in an encrypted repository every object
    /// by HMAC-SHA256 under the id key (so nobody without the key can tell
    /// whether a known file, or a known commit, is stored).
    pub fn id(&self, kind: ObjectKind, bytes: &[u8]) -> ObjectId {
        if let Some(k) = &self.keys {
            return ObjectId(k.object_id(kind as u8, bytes));
        }
        match kind {
            ObjectKind::Chunk => match self.chunk_id {
                ChunkIdFunction::Sha256 => ObjectId::hash(bytes),
                // Without keys an encrypted repository's codec is never
                // used: the store refuses to open its object database
                // (`Store::require_unlocked`). Named here so that a codec
                // built wrongly can only fail to verify, never mix ids.
                ChunkIdFunction::HmacSha256 => ObjectId([0; 32]),
            },
            _ => ObjectId::hash(bytes),
        }
    }

    /// Whether a chunk's id equals the [`content_id`] of the same bytes, so
    /// that a file of one chunk needs no second hash pass. False for keyed
    /// chunk ids.
    pub fn chunk_id_is_content_id(&self) -> bool {
        self.keys.is_none() && self.chunk_id == ChunkIdFunction::Sha256
    }

    /// Encodes an object whose id the caller has computed with [`Self::id`]
    /// (it may have checked for a duplicate first): compressed when that
    /// pays (`hint`), raw otherwise.
    pub fn encode(
        &self,
        kind: ObjectKind,
        id: ObjectId,
        bytes: &[u8],
        hint: CompressionHint,
    ) -> Result<Encoded> {
        self.encode_with(kind, id, bytes, hint, Vec::new)
    }

    /// [`Self::encode`] with the buffer a raw payload is copied into coming
    /// from `raw_buffer` (a pool of reused buffers, for chunks).
    pub fn encode_with(
        &self,
        kind: ObjectKind,
        id: ObjectId,
        bytes: &[u8],
        hint: CompressionHint,
        raw_buffer: impl FnOnce() -> Vec<u8>,
    ) -> Result<Encoded> {
        let mut out = Vec::new();
        let codec = compress_chunk(bytes, hint, self.level, &mut out)
            .map_err(|e| RepoError::io("compress object", "memory", e))?;
        let payload = if codec == Codec::Raw {
            let mut b = raw_buffer();
            b.clear();
            b.extend_from_slice(bytes);
            b
        } else {
            out
        };
        Ok(Encoded {
            kind,
            id,
            codec,
            raw_len: bytes.len(),
            payload,
        })
    }

    /// Encodes `bytes` as a new object of `kind`, naming it.
    pub fn encode_new(&self, kind: ObjectKind, bytes: &[u8]) -> Result<Encoded> {
        self.encode(kind, self.id(kind, bytes), bytes, CompressionHint::Try)
    }

    /// Whether decoded `bytes` are the object `id` of `kind`.
    pub fn verify(&self, kind: ObjectKind, id: &ObjectId, bytes: &[u8]) -> Option<ObjectId> {
        let actual = self.id(kind, bytes);
        (actual != *id).then_some(actual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sha256_and_encoding_round_trips() {
        let c = ObjectCodec::new(&RepoConfig::new(false));
        let bytes = b"hello hello hello hello hello hello hello hello".repeat(100);
        assert_eq!(c.id(ObjectKind::Chunk, &bytes), content_id(&bytes));
        assert!(c.chunk_id_is_content_id());
        let e = c.encode_new(ObjectKind::Tree, &bytes).unwrap();
        assert_eq!(e.id, ObjectId::hash(&bytes));
        assert_eq!(e.raw_len, bytes.len());
        assert_eq!(e.codec, Codec::Zstd);
        let back = mediagit_pipeline::decompress(e.codec, &e.payload, e.raw_len).unwrap();
        assert_eq!(back, bytes);
        assert_eq!(c.verify(ObjectKind::Tree, &e.id, &back), None);
        assert!(c.verify(ObjectKind::Tree, &e.id, b"other").is_some());
    }
}
