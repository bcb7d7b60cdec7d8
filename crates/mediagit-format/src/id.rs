//! SHA-256 object ids.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::FormatError;

/// A SHA-256 digest naming an object: a chunk (hash of its bytes), a file
/// (hash of its whole content), or a manifest, tree, commit or tag (hash of
/// its canonical encoding).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    pub const LEN: usize = 32;
    /// The all-zero id, used in the reflog for "no previous value".
    pub const ZERO: ObjectId = ObjectId([0; 32]);

    /// SHA-256 of `data`.
    pub fn hash(data: &[u8]) -> ObjectId {
        ObjectId(Sha256::digest(data).into())
    }

    pub fn from_slice(b: &[u8]) -> Option<ObjectId> {
        Some(ObjectId(b.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first `n` hex digits, for short display.
    pub fn short(&self, n: usize) -> String {
        let mut s = self.to_hex();
        s.truncate(n);
        s
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }

    /// Whether the hex form of this id starts with `prefix` (lowercase hex).
    pub fn has_hex_prefix(&self, prefix: &str) -> bool {
        self.to_hex().starts_with(prefix)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short(12))
    }
}

impl FromStr for ObjectId {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 64 {
            return Err(FormatError::BadId(s.to_string()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| FormatError::BadId(s.to_string()))?;
        Ok(ObjectId(out))
    }
}

/// A `Hasher` for maps keyed by [`ObjectId`]: the id is already a uniform
/// SHA-256, so its first 8 bytes are used as they are (SipHash over 32 bytes
/// showed up in profiles of `status` on 100,000 files).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        if bytes.len() >= 8 {
            self.0 ^= u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        } else {
            for &b in bytes {
                self.0 = self.0.rotate_left(8) ^ b as u64;
            }
        }
    }
    fn write_usize(&mut self, _: usize) {}
}

pub type IdBuildHasher = std::hash::BuildHasherDefault<IdHasher>;
/// A `HashMap` keyed by object id.
pub type IdMap<V> = std::collections::HashMap<ObjectId, V, IdBuildHasher>;
/// A `HashSet` of object ids.
pub type IdSet = std::collections::HashSet<ObjectId, IdBuildHasher>;

/// An incremental SHA-256, for hashing a file while it streams by.
#[derive(Default, Clone)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(self) -> ObjectId {
        ObjectId(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_sha256_vector() {
        let id = ObjectId::hash(b"abc");
        assert_eq!(
            id.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(id.to_hex().parse::<ObjectId>().unwrap(), id);
        assert!("xyz".parse::<ObjectId>().is_err());
        assert!(id.has_hex_prefix("ba78"));
    }
}
