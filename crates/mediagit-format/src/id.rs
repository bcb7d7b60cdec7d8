//! SHA-256 object ids.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::FormatError;

/// A SHA-256 digest naming an object: a chunk (hash of its bytes), a file
/// (hash of its whole content), or a manifest, tree, commit or tag (hash of
/// its canonical encoding).
///
/// Serialized as its 32 bytes in binary formats (postcard: the object and
/// index encodings, unchanged) and as 64 lowercase hex digits in
/// human-readable ones (the CLI's `--json` output).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectId(pub [u8; 32]);

/// The binary representation: what `#[derive]` gave before ids had a
/// human-readable form (a newtype around 32 bytes).
#[derive(Serialize, Deserialize)]
#[serde(rename = "ObjectId")]
struct RawId([u8; 32]);

impl Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            RawId(self.0).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            RawId::deserialize(d).map(|r| ObjectId(r.0))
        }
    }
}

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

/// What an error shows of text that is no id: its start, escaped (the
/// text may be anything a file held: a ref planted as a link to another
/// file, a device, binary bytes).
fn shown(s: &str) -> String {
    const MAX: usize = 72;
    let head: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().nth(MAX).is_some() {
        format!("{head}... ({} bytes)", s.len())
    } else {
        head
    }
}

impl FromStr for ObjectId {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 64 {
            return Err(FormatError::BadId(shown(s)));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| FormatError::BadId(shown(s)))?;
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

/// SHA-256 whose state can be saved at a 64-byte boundary and resumed
/// later: `add` keeps such checkpoints along a large file, and when a new
/// version of the file starts with the same chunks (appended to, edited
/// in the second half, or only touched) the whole-file hash resumes from the
/// last checkpoint inside the unchanged prefix instead of re-reading it.
/// The output is plain SHA-256 (FIPS 180-4), equal to [`ObjectId::hash`].
#[derive(Clone, Debug)]
pub struct ResumableSha256 {
    state: [u32; 8],
    /// Bytes already compressed into `state`: a multiple of 64.
    done: u64,
    block: [u8; 64],
    fill: usize,
}

const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

impl Default for ResumableSha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl ResumableSha256 {
    pub fn new() -> Self {
        ResumableSha256 {
            state: SHA256_IV,
            done: 0,
            block: [0; 64],
            fill: 0,
        }
    }

    /// Continues from a state saved by [`ResumableSha256::checkpoint`]:
    /// the next byte fed is the byte at `offset` (a multiple of 64).
    /// `None` when `offset` is not a multiple of 64.
    pub fn resume(offset: u64, state: [u32; 8]) -> Option<Self> {
        offset.is_multiple_of(64).then_some(ResumableSha256 {
            state,
            done: offset,
            block: [0; 64],
            fill: 0,
        })
    }

    /// The state over the bytes `[0, offset)`, with `offset` the largest
    /// multiple of 64 not above [`ResumableSha256::len`].
    pub fn checkpoint(&self) -> (u64, [u32; 8]) {
        (self.done, self.state)
    }

    /// Bytes fed so far (including those before a resume point).
    pub fn len(&self) -> u64 {
        self.done + self.fill as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn compress(&mut self, blocks: &[u8]) {
        debug_assert_eq!(blocks.len() % 64, 0);
        // SAFETY: `GenericArray<u8, U64>` is `#[repr(transparent)]` over
        // `[u8; 64]` (generic-array documents the same layout as an array;
        // sha2's own `compress256` casts the other way on the same
        // grounds): size 64, alignment 1. `blocks.len()` is a multiple of
        // 64, so the pointer and the count `len / 64` describe exactly the
        // bytes of `blocks`, which stay borrowed (immutably) for the call.
        let blocks: &[sha2::digest::generic_array::GenericArray<u8, sha2::digest::consts::U64>] =
            unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast(), blocks.len() / 64) };
        sha2::compress256(&mut self.state, blocks);
        self.done += blocks.len() as u64 * 64;
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if self.fill > 0 {
            let n = (64 - self.fill).min(data.len());
            self.block[self.fill..self.fill + n].copy_from_slice(&data[..n]);
            self.fill += n;
            data = &data[n..];
            if self.fill < 64 {
                return;
            }
            let block = self.block;
            self.compress(&block);
            self.fill = 0;
        }
        let whole = data.len() / 64 * 64;
        if whole > 0 {
            self.compress(&data[..whole]);
        }
        let rest = &data[whole..];
        self.block[..rest.len()].copy_from_slice(rest);
        self.fill = rest.len();
    }

    pub fn finish(mut self) -> ObjectId {
        let bits = self.len().wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.fill].copy_from_slice(&self.block[..self.fill]);
        tail[self.fill] = 0x80;
        let n = if self.fill < 56 { 64 } else { 128 };
        tail[n - 8..n].copy_from_slice(&bits.to_be_bytes());
        self.compress(&tail[..n]);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        ObjectId(out)
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

    proptest::proptest! {
        #[test]
        fn resumable_sha256_is_sha256_at_any_split_and_resume_point(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..700),
            cuts in proptest::collection::vec(0usize..700, 0..6),
            at in 0usize..700,
        ) {
            let want = ObjectId::hash(&data);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.push(data.len());
            cuts.sort();
            let mut h = ResumableSha256::new();
            let mut from = 0;
            let mut saved = None;
            let at = at.min(data.len());
            for c in cuts {
                if from <= at && at <= c {
                    h.update(&data[from..at]);
                    saved = Some(h.checkpoint());
                    h.update(&data[at..c]);
                } else {
                    h.update(&data[from..c]);
                }
                from = c;
            }
            proptest::prop_assert_eq!(h.len(), data.len() as u64);
            proptest::prop_assert_eq!(h.finish(), want);
            // Resume from the checkpoint: feed the bytes after it.
            let (offset, state) = saved.unwrap();
            proptest::prop_assert_eq!(offset % 64, 0);
            let mut r = ResumableSha256::resume(offset, state).unwrap();
            r.update(&data[offset as usize..]);
            proptest::prop_assert_eq!(r.finish(), want);
        }
    }
}
