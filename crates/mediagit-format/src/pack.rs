//! Pack files and pack indexes.
//!
//! A pack is a header followed by entries, each entry an [`EntryHeader`] and
//! its payload. Every entry is self-describing (kind, codec, lengths, id), so
//! one entry can be read by a ranged read given its offset, and a lost index
//! can be rebuilt by scanning the pack. A pack is named by the SHA-256 of its
//! header and entry headers (each entry header carries its object's id, the
//! hash of the payload's decoded bytes); its index carries the same name and
//! ends with a checksum.
use crate::{FormatError, ObjectId, ObjectKind};

pub const PACK_MAGIC: &[u8; 8] = b"MGPACK\0\0";
pub const PACK_VERSION: u32 = 1;
pub const PACK_HEADER_LEN: usize = 16;
/// Packs of encrypted repositories (FORMAT.md §13): the header carries a
/// 32-byte salt from which the pack's key is derived, and every entry
/// header and payload is sealed.
pub const PACK_VERSION_SEALED: u32 = 2;
pub const SEALED_PACK_HEADER_LEN: usize = PACK_HEADER_LEN + 32;
/// AES-GCM tag appended to each sealed entry header and payload.
pub const SEAL_TAG_LEN: usize = 16;
/// A sealed entry header: the 44-byte header and its tag.
pub const SEALED_ENTRY_HEADER_LEN: usize = EntryHeader::LEN + SEAL_TAG_LEN;
/// Pack indexes of encrypted repositories: magic, version 2, then the
/// version-1 index (preceded by the pack's salt) sealed as one value.
pub const IDX_VERSION_SEALED: u32 = 2;

/// What a pack header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackHeader {
    /// Version 1: plaintext entries.
    Plain,
    /// Version 2: sealed entries under the key derived from this salt.
    Sealed { salt: [u8; 32] },
}

impl PackHeader {
    /// Length of the header in the pack file.
    pub fn len(&self) -> usize {
        match self {
            PackHeader::Plain => PACK_HEADER_LEN,
            PackHeader::Sealed { .. } => SEALED_PACK_HEADER_LEN,
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            PackHeader::Plain => encode_pack_header().to_vec(),
            PackHeader::Sealed { salt } => {
                let mut b = Vec::with_capacity(SEALED_PACK_HEADER_LEN);
                b.extend_from_slice(PACK_MAGIC);
                b.extend_from_slice(&PACK_VERSION_SEALED.to_le_bytes());
                b.extend_from_slice(&[0u8; 4]);
                b.extend_from_slice(salt);
                b
            }
        }
    }
}

/// The bytes an entry occupies in a pack: its header and payload, and in a
/// sealed pack their two tags.
pub fn entry_len(sealed: bool, stored_len: u32) -> u64 {
    let extra = if sealed { 2 * SEAL_TAG_LEN as u64 } else { 0 };
    EntryHeader::LEN as u64 + stored_len as u64 + extra
}

/// Where an entry's payload starts, from the entry's offset.
pub fn payload_start(sealed: bool) -> usize {
    if sealed {
        SEALED_ENTRY_HEADER_LEN
    } else {
        EntryHeader::LEN
    }
}
pub const IDX_MAGIC: &[u8; 8] = b"MGIDX\0\0\0";
pub const IDX_VERSION: u32 = 1;
pub const IDX_HEADER_LEN: usize = 8 + 4 + 4 + 32;
pub const IDX_ENTRY_LEN: usize = 32 + 8 + 4 + 4 + 4;

/// How a payload is stored. Recorded per entry; a reader never guesses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    Raw = 0,
    Zstd = 1,
}

impl Codec {
    pub fn from_u8(v: u8) -> Option<Codec> {
        match v {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Raw => "raw",
            Codec::Zstd => "zstd",
        }
    }
}

/// The 44-byte header in front of every pack entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryHeader {
    pub kind: ObjectKind,
    pub codec: Codec,
    /// Length of the object once decoded.
    pub raw_len: u32,
    /// Length of the payload that follows the header.
    pub stored_len: u32,
    pub id: ObjectId,
}

impl EntryHeader {
    pub const LEN: usize = 1 + 1 + 2 + 4 + 4 + 32;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.kind as u8;
        b[1] = self.codec as u8;
        b[4..8].copy_from_slice(&self.raw_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.stored_len.to_le_bytes());
        b[12..44].copy_from_slice(&self.id.0);
        b
    }

    pub fn decode(b: &[u8]) -> Result<EntryHeader, FormatError> {
        if b.len() < Self::LEN {
            return Err(FormatError::Truncated {
                what: "pack entry header",
                len: b.len(),
                need: Self::LEN,
            });
        }
        let kind = ObjectKind::from_u8(b[0]).ok_or_else(|| FormatError::Decode {
            what: "pack entry header",
            reason: format!("unknown object kind {}", b[0]),
        })?;
        let codec = Codec::from_u8(b[1]).ok_or_else(|| FormatError::Decode {
            what: "pack entry header",
            reason: format!("unknown codec {}", b[1]),
        })?;
        if b[2] != 0 || b[3] != 0 {
            return Err(FormatError::Decode {
                what: "pack entry header",
                reason: "reserved bytes are not zero".into(),
            });
        }
        Ok(EntryHeader {
            kind,
            codec,
            raw_len: u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")),
            stored_len: u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")),
            id: ObjectId::from_slice(&b[12..44]).expect("32 bytes"),
        })
    }
}

pub fn encode_pack_header() -> [u8; PACK_HEADER_LEN] {
    let mut b = [0u8; PACK_HEADER_LEN];
    b[..8].copy_from_slice(PACK_MAGIC);
    b[8..12].copy_from_slice(&PACK_VERSION.to_le_bytes());
    b
}

/// Decodes a pack's header (the first [`SEALED_PACK_HEADER_LEN`] bytes, or
/// all of a shorter pack).
pub fn decode_any_pack_header(b: &[u8]) -> Result<PackHeader, FormatError> {
    if b.len() >= 12 && &b[..8] == PACK_MAGIC {
        let v = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
        if v == PACK_VERSION_SEALED {
            if b.len() < SEALED_PACK_HEADER_LEN {
                return Err(FormatError::Truncated {
                    what: "pack",
                    len: b.len(),
                    need: SEALED_PACK_HEADER_LEN,
                });
            }
            if b[12..16].iter().any(|&x| x != 0) {
                return Err(FormatError::Decode {
                    what: "pack",
                    reason: "reserved header bytes are not zero".into(),
                });
            }
            let mut salt = [0u8; 32];
            salt.copy_from_slice(&b[16..48]);
            return Ok(PackHeader::Sealed { salt });
        }
    }
    decode_pack_header(b).map(|()| PackHeader::Plain)
}

pub fn decode_pack_header(b: &[u8]) -> Result<(), FormatError> {
    if b.len() < PACK_HEADER_LEN {
        return Err(FormatError::Truncated {
            what: "pack",
            len: b.len(),
            need: PACK_HEADER_LEN,
        });
    }
    if &b[..8] != PACK_MAGIC {
        return Err(FormatError::BadMagic { what: "pack" });
    }
    let v = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if v != PACK_VERSION {
        return Err(FormatError::UnknownVersion {
            what: "pack",
            found: v,
            supported: PACK_VERSION,
        });
    }
    // Reserved: writers put zeros; a reader that ignored them could not
    // tell a later layout from this one (found by fuzzing).
    if b[12..PACK_HEADER_LEN].iter().any(|&x| x != 0) {
        return Err(FormatError::Decode {
            what: "pack",
            reason: "reserved header bytes are not zero".into(),
        });
    }
    Ok(())
}

/// Where an object lives inside a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdxEntry {
    pub id: ObjectId,
    /// Offset of the entry header in the pack.
    pub offset: u64,
    pub kind: ObjectKind,
    pub codec: Codec,
    pub raw_len: u32,
    pub stored_len: u32,
}

/// A pack index: the pack's id and its entries sorted by object id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackIndex {
    pub pack: ObjectId,
    pub entries: Vec<IdxEntry>,
}

/// The version of a pack index's bytes (1 plaintext, 2 sealed), if they
/// start with the index magic.
pub fn idx_version(b: &[u8]) -> Option<u32> {
    (b.len() >= 12 && &b[..8] == IDX_MAGIC)
        .then(|| u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")))
}

/// The 12-byte prefix of a sealed pack index (magic and version 2).
pub fn sealed_idx_prefix() -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(IDX_MAGIC);
    b[8..].copy_from_slice(&IDX_VERSION_SEALED.to_le_bytes());
    b
}

impl PackIndex {
    pub fn encode(&self) -> Vec<u8> {
        let mut entries = self.entries.clone();
        entries.sort_by_key(|e| e.id);
        let mut b = Vec::with_capacity(IDX_HEADER_LEN + entries.len() * IDX_ENTRY_LEN + 32);
        b.extend_from_slice(IDX_MAGIC);
        b.extend_from_slice(&IDX_VERSION.to_le_bytes());
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.pack.0);
        for e in &entries {
            b.extend_from_slice(&e.id.0);
            b.extend_from_slice(&e.offset.to_le_bytes());
            b.push(e.kind as u8);
            b.push(e.codec as u8);
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&e.raw_len.to_le_bytes());
            b.extend_from_slice(&e.stored_len.to_le_bytes());
        }
        let sum = ObjectId::hash(&b);
        b.extend_from_slice(&sum.0);
        b
    }

    pub fn decode(b: &[u8]) -> Result<PackIndex, FormatError> {
        const W: &str = "pack index";
        if b.len() < IDX_HEADER_LEN + 32 {
            return Err(FormatError::Truncated {
                what: W,
                len: b.len(),
                need: IDX_HEADER_LEN + 32,
            });
        }
        if &b[..8] != IDX_MAGIC {
            return Err(FormatError::BadMagic { what: W });
        }
        let version = u32::from_le_bytes(b[8..12].try_into().expect("4"));
        if version != IDX_VERSION {
            return Err(FormatError::UnknownVersion {
                what: W,
                found: version,
                supported: IDX_VERSION,
            });
        }
        let count = u32::from_le_bytes(b[12..16].try_into().expect("4")) as usize;
        let need = IDX_HEADER_LEN + count * IDX_ENTRY_LEN + 32;
        if b.len() != need {
            return Err(FormatError::Truncated {
                what: W,
                len: b.len(),
                need,
            });
        }
        let body = &b[..need - 32];
        if ObjectId::hash(body).0 != b[need - 32..] {
            return Err(FormatError::Checksum { what: W });
        }
        let pack = ObjectId::from_slice(&b[16..48]).expect("32");
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let e = &b[IDX_HEADER_LEN + i * IDX_ENTRY_LEN..][..IDX_ENTRY_LEN];
            let bad = |reason: String| FormatError::Decode { what: W, reason };
            if e[42..44] != [0, 0] {
                return Err(bad(format!("entry {i}: reserved bytes are not zero")));
            }
            entries.push(IdxEntry {
                id: ObjectId::from_slice(&e[..32]).expect("32"),
                offset: u64::from_le_bytes(e[32..40].try_into().expect("8")),
                kind: ObjectKind::from_u8(e[40])
                    .ok_or_else(|| bad(format!("unknown object kind {}", e[40])))?,
                codec: Codec::from_u8(e[41])
                    .ok_or_else(|| bad(format!("unknown codec {}", e[41])))?,
                raw_len: u32::from_le_bytes(e[44..48].try_into().expect("4")),
                stored_len: u32::from_le_bytes(e[48..52].try_into().expect("4")),
            });
        }
        if entries.windows(2).any(|w| w[0].id >= w[1].id) {
            return Err(FormatError::Decode {
                what: W,
                reason: "entries not sorted by id".into(),
            });
        }
        Ok(PackIndex { pack, entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reserved_bytes_must_be_zero() {
        // The fuzzer's finds: a reserved u32 in the pack header, reserved
        // bytes of an index entry.
        let mut h = encode_pack_header();
        assert!(decode_pack_header(&h).is_ok());
        h[13] = 1;
        assert!(decode_pack_header(&h).is_err());
        let idx = PackIndex {
            pack: ObjectId::hash(b"p"),
            entries: vec![IdxEntry {
                id: ObjectId::hash(b"x"),
                offset: 16,
                kind: ObjectKind::Chunk,
                codec: Codec::Raw,
                raw_len: 1,
                stored_len: 1,
            }],
        };
        let mut b = idx.encode();
        assert_eq!(PackIndex::decode(&b).unwrap(), idx);
        b[IDX_HEADER_LEN + 42] = 7;
        let n = b.len() - 32;
        let sum = ObjectId::hash(&b[..n]);
        b[n..].copy_from_slice(&sum.0);
        assert!(PackIndex::decode(&b).is_err());
    }

    proptest! {
        #[test]
        fn idx_round_trip(n in 0usize..40, off in any::<u64>()) {
            let entries: Vec<IdxEntry> = (0..n).map(|i| IdxEntry { id: ObjectId::hash(&(i as u32).to_le_bytes()), offset: off.wrapping_add(i as u64), kind: ObjectKind::Chunk, codec: if i % 2 == 0 { Codec::Raw } else { Codec::Zstd }, raw_len: i as u32 * 7, stored_len: i as u32 * 3 }).collect();
            let idx = PackIndex { pack: ObjectId::hash(b"p"), entries };
            let mut sorted = idx.clone();
            sorted.entries.sort_by_key(|e| e.id);
            let bytes = idx.encode();
            prop_assert_eq!(PackIndex::decode(&bytes).unwrap(), sorted);
        }

        #[test]
        fn idx_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = PackIndex::decode(&bytes);
            let _ = EntryHeader::decode(&bytes);
        }

        #[test]
        fn entry_header_round_trip(raw in any::<u32>(), stored in any::<u32>(), z in any::<bool>()) {
            let h = EntryHeader { kind: ObjectKind::Tree, codec: if z { Codec::Zstd } else { Codec::Raw }, raw_len: raw, stored_len: stored, id: ObjectId::hash(b"x") };
            prop_assert_eq!(EntryHeader::decode(&h.encode()).unwrap(), h);
        }
    }

    #[test]
    fn damaged_idx_is_detected() {
        let idx = PackIndex {
            pack: ObjectId::hash(b"p"),
            entries: vec![IdxEntry {
                id: ObjectId::hash(b"a"),
                offset: 16,
                kind: ObjectKind::Chunk,
                codec: Codec::Raw,
                raw_len: 1,
                stored_len: 1,
            }],
        };
        let mut b = idx.encode();
        b[60] ^= 1;
        assert!(matches!(
            PackIndex::decode(&b),
            Err(FormatError::Checksum { .. })
        ));
        assert!(PackIndex::decode(&b[..b.len() - 1]).is_err());
    }
}
