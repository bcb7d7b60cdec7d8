//! # mediagit-crypto
//!
//! The keys of an encrypted repository and the one way each kind of stored
//! byte is sealed. Media often belongs to clients under NDA: the bucket, the
//! backup disk and the server must learn neither content, nor file names,
//! nor sizes of individual files, nor branch names. Everything here is pure
//! computation (no I/O, no environment, no terminal): the CLI asks for the
//! passphrase, the repository layer decides what to seal, and this crate
//! holds the only code that touches keys, so that docs/FORMAT.md §13 has
//! exactly one implementation to describe and review.
//!
//! The key hierarchy:
//!
//! * A random 32-byte **master key** per repository. It never changes (a
//!   new passphrase re-wraps it), so every client of a store derives the
//!   same subkeys and their content deduplicates.
//! * **Key files** ([`KeyFile`]) hold the master key wrapped (AES-256-GCM)
//!   by a key derived from a passphrase with Argon2id; the Argon2 parameters
//!   and salt are in the file and authenticated as associated data, so a
//!   file whose parameters were changed (say, memory cost lowered) no longer
//!   opens.
//! * **Subkeys** ([`RepoKeys`]) derived from the master key with
//!   HKDF-SHA256, one per purpose: object ids (HMAC-SHA256, so nobody
//!   without the key can confirm that a known file is stored), pack entries
//!   (a key per pack, from a random 256-bit salt in the pack's header, with
//!   nonces made of the entry's offset: unique by construction, so GCM's
//!   nonce limits never come into play), and small sealed values (pack
//!   indexes, refs, HEAD: a random 96-bit nonce each, far below the 2^32
//!   messages per key for which random nonces are safe).
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::{hkdf, hmac};
use zeroize::Zeroizing;

mod key_file;

pub use key_file::{KdfParams, KeyFile, KEY_FILE_LEN};

/// Length of every key and id here.
pub const KEY_LEN: usize = 32;
/// Length of an AES-GCM authentication tag.
pub const TAG_LEN: usize = 16;
/// What [`RepoKeys::seal`] adds to a plaintext: the nonce and the tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// No key file opened with the passphrase (a wrong passphrase, or a key
    /// file whose authenticated fields were altered).
    #[error("wrong passphrase: no key of this repository opens with it")]
    WrongPassphrase,
    /// Sealed bytes that do not open: damaged, altered, moved to another
    /// place, or sealed by another repository.
    #[error("{what} does not authenticate: damaged, altered or moved")]
    Tampered { what: String },
    #[error("key file is malformed: {reason}")]
    BadKeyFile { reason: String },
    /// Argon2 parameters outside what this build accepts: below the minimum
    /// (a weakened file) or above the maximum (a file that would exhaust
    /// memory or time before failing).
    #[error("key file has Argon2 parameters {found}, outside the accepted {accepted}; refused (it may have been tampered with)")]
    KdfParams { found: String, accepted: String },
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("the system random number generator failed")]
    Random,
}

pub type Result<T> = std::result::Result<T, CryptoError>;

/// Fills `buf` from the operating system's random number generator.
pub fn random(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CryptoError::Random)
}

/// A repository's master key. Zeroed when dropped; never printed.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    /// A fresh random master key, for `init --encrypt`.
    pub fn generate() -> Result<MasterKey> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        random(&mut k[..])?;
        Ok(MasterKey(k))
    }

    /// A master key from its bytes: one a caller kept after an unlock
    /// (the CLI's key cache), checked against the store before use.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> MasterKey {
        MasterKey(Zeroizing::new(bytes))
    }

    /// The key's bytes, for a caller that keeps the unlocked key (the
    /// CLI's key cache in the user's private runtime directory).
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<secret>)")
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 of `secret` with `salt`, for `info`: 32 bytes.
fn derive(secret: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(secret);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    let infos = [info];
    // Cannot fail: 32 bytes is far below HKDF-SHA256's 255 × 32. Were it
    // to, an all-zero key must never be used in its place.
    prk.expand(&infos, Len(KEY_LEN))
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("HKDF-SHA256 of 32 bytes");
    out
}

fn aead_key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    // Cannot fail: AES-256-GCM takes exactly 32 bytes.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES-256 key"))
}

/// What a small sealed value is; each purpose has its own key, so a value
/// sealed for one can never be opened as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A pack index (associated data: the pack's name).
    PackIndex,
    /// A ref's value (associated data: the ref's storage key).
    Ref,
    /// The store's HEAD.
    Head,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Purpose::PackIndex => b"mediagit v1 pack index",
            Purpose::Ref => b"mediagit v1 ref value",
            Purpose::Head => b"mediagit v1 head",
        }
    }
}

/// The subkeys of one repository, derived from its master key.
pub struct RepoKeys {
    id: hmac::Key,
    ref_name: hmac::Key,
    pack: Zeroizing<[u8; KEY_LEN]>,
    pack_index: LessSafeKey,
    refs: LessSafeKey,
    head: LessSafeKey,
}

impl std::fmt::Debug for RepoKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RepoKeys(<secret>)")
    }
}

const HKDF_SALT: &[u8] = b"mediagit repository keys";

impl RepoKeys {
    pub fn derive(master: &MasterKey) -> RepoKeys {
        let m = master.bytes();
        let sub = |info: &[u8]| derive(m, HKDF_SALT, info);
        RepoKeys {
            id: hmac::Key::new(hmac::HMAC_SHA256, &sub(b"mediagit v1 object id")[..]),
            ref_name: hmac::Key::new(hmac::HMAC_SHA256, &sub(b"mediagit v1 ref name")[..]),
            pack: sub(b"mediagit v1 pack"),
            pack_index: aead_key(&sub(Purpose::PackIndex.info())),
            refs: aead_key(&sub(Purpose::Ref.info())),
            head: aead_key(&sub(Purpose::Head.info())),
        }
    }

    /// The keyed id of an object of `kind` (its kind byte, FORMAT.md §4)
    /// with these decoded bytes: HMAC-SHA256 of the kind byte and the
    /// bytes, so a chunk can never take the id of a tree (or any other
    /// object) whose encoding it copies.
    pub fn object_id(&self, kind: u8, bytes: &[u8]) -> [u8; KEY_LEN] {
        let mut ctx = hmac::Context::with_key(&self.id);
        ctx.update(&[kind]);
        ctx.update(bytes);
        let tag = ctx.sign();
        let mut out = [0u8; KEY_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The keyed name of a ref (its full name, `refs/heads/main`): what the
    /// store sees instead of the name.
    pub fn ref_token(&self, full_name: &str) -> [u8; KEY_LEN] {
        let tag = hmac::sign(&self.ref_name, full_name.as_bytes());
        let mut out = [0u8; KEY_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The key of the pack whose header holds `salt`.
    pub fn pack_key(&self, salt: &[u8; KEY_LEN]) -> PackKey {
        PackKey(aead_key(&derive(
            &self.pack[..],
            salt,
            b"mediagit v1 pack entries",
        )))
    }

    fn purpose_key(&self, p: Purpose) -> &LessSafeKey {
        match p {
            Purpose::PackIndex => &self.pack_index,
            Purpose::Ref => &self.refs,
            Purpose::Head => &self.head,
        }
    }

    /// Seals a small value: `nonce (12) || ciphertext || tag (16)`, with a
    /// fresh random nonce, bound to `aad` (where the value belongs).
    pub fn seal(&self, p: Purpose, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce)?;
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.purpose_key(p)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| CryptoError::Tampered {
                what: "a value to seal".into(),
            })?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what [`Self::seal`] made for the same purpose and `aad`.
    /// `what` names the value in the error.
    pub fn open(&self, p: Purpose, aad: &[u8], sealed: &[u8], what: &str) -> Result<Vec<u8>> {
        let tampered = || CryptoError::Tampered { what: what.into() };
        if sealed.len() < SEAL_OVERHEAD {
            return Err(tampered());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| tampered())?;
        let mut body = body.to_vec();
        let n = self
            .purpose_key(p)
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .map_err(|_| tampered())?
            .len();
        body.truncate(n);
        Ok(body)
    }
}

/// Which part of a pack entry: each has its own nonce at the same offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryPart {
    Header = 1,
    Payload = 2,
}

/// The key of one pack. Nonces are `part (1 byte) || 0 0 0 || offset of
/// the entry (u64 LE)`: a pack is written once, by one writer, entries at
/// strictly increasing offsets, so no (key, nonce) pair repeats; and an
/// entry moved to another offset or another pack does not open.
pub struct PackKey(LessSafeKey);

impl std::fmt::Debug for PackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PackKey(<secret>)")
    }
}

fn entry_nonce(part: EntryPart, offset: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[0] = part as u8;
    n[4..].copy_from_slice(&offset.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

impl PackKey {
    /// Seals `buf` in place (appends the tag) as `part` of the entry at
    /// `offset`.
    pub fn seal(&self, part: EntryPart, offset: u64, aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        self.0
            .seal_in_place_append_tag(entry_nonce(part, offset), Aad::from(aad), buf)
            .map_err(|_| CryptoError::Tampered {
                what: "a pack entry to seal".into(),
            })
    }

    /// Seals `plaintext` as `part` of the entry at `offset` into `out`
    /// (replacing what it held: ciphertext and tag), without copying the
    /// plaintext first; `out` can be reused from entry to entry.
    pub fn seal_into(
        &self,
        part: EntryPart,
        offset: u64,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        out.resize(plaintext.len() + TAG_LEN, 0);
        let (ct, tag) = out.split_at_mut(plaintext.len());
        self.0
            .seal_out_of_place_scatter(
                entry_nonce(part, offset),
                Aad::from(aad),
                plaintext,
                ct,
                &[],
                tag,
            )
            .map_err(|_| CryptoError::Tampered {
                what: "a pack entry to seal".into(),
            })
    }

    /// Opens `buf` (ciphertext and tag) in place; returns the plaintext
    /// (`buf` minus the tag). `what` names the entry in the error.
    pub fn open<'a>(
        &self,
        part: EntryPart,
        offset: u64,
        aad: &[u8],
        buf: &'a mut [u8],
        what: &dyn Fn() -> String,
    ) -> Result<&'a mut [u8]> {
        self.0
            .open_in_place(entry_nonce(part, offset), Aad::from(aad), buf)
            .map_err(|_| CryptoError::Tampered { what: what() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> RepoKeys {
        RepoKeys::derive(&MasterKey::from_bytes([7u8; KEY_LEN]))
    }

    #[test]
    fn ids_are_keyed_and_stable() {
        let a = keys();
        let b = RepoKeys::derive(&MasterKey::from_bytes([8u8; KEY_LEN]));
        let id = a.object_id(1, b"hello");
        assert_eq!(id, a.object_id(1, b"hello"));
        assert_ne!(id, a.object_id(3, b"hello"));
        assert_ne!(id, b.object_id(1, b"hello"));
        use sha2::Digest;
        assert_ne!(&id[..], &sha2::Sha256::digest(b"hello")[..]);
        assert_ne!(
            a.ref_token("refs/heads/main"),
            a.ref_token("refs/heads/mainx")
        );
    }

    #[test]
    fn sealed_values_open_only_for_their_purpose_and_place() {
        let k = keys();
        let s = k.seal(Purpose::Ref, b"refs/x", b"value").unwrap();
        assert_eq!(s.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(
            k.open(Purpose::Ref, b"refs/x", &s, "ref").unwrap(),
            b"value"
        );
        // Fresh nonce each time.
        assert_ne!(s, k.seal(Purpose::Ref, b"refs/x", b"value").unwrap());
        assert!(k.open(Purpose::Ref, b"refs/y", &s, "ref").is_err());
        assert!(k.open(Purpose::Head, b"refs/x", &s, "ref").is_err());
        for i in 0..s.len() {
            let mut t = s.clone();
            t[i] ^= 1;
            assert!(
                k.open(Purpose::Ref, b"refs/x", &t, "ref").is_err(),
                "flip at {i}"
            );
        }
        assert!(k
            .open(Purpose::Ref, b"refs/x", &s[..s.len() - 1], "ref")
            .is_err());
        assert!(k.open(Purpose::Ref, b"refs/x", &s[..3], "ref").is_err());
    }

    #[test]
    fn pack_entries_are_bound_to_pack_offset_and_part() {
        let k = keys();
        let p1 = k.pack_key(&[1u8; 32]);
        let p2 = k.pack_key(&[2u8; 32]);
        let mut buf = b"entry bytes".to_vec();
        p1.seal(EntryPart::Payload, 48, b"hdr", &mut buf).unwrap();
        let what = || "e".to_string();
        assert_eq!(
            p1.open(EntryPart::Payload, 48, b"hdr", &mut buf.clone(), &what)
                .unwrap(),
            b"entry bytes"
        );
        assert!(p1
            .open(EntryPart::Payload, 49, b"hdr", &mut buf.clone(), &what)
            .is_err());
        assert!(p1
            .open(EntryPart::Header, 48, b"hdr", &mut buf.clone(), &what)
            .is_err());
        assert!(p2
            .open(EntryPart::Payload, 48, b"hdr", &mut buf.clone(), &what)
            .is_err());
        assert!(p1
            .open(EntryPart::Payload, 48, b"hdx", &mut buf.clone(), &what)
            .is_err());
    }
}
