//! Key files: the master key wrapped by a passphrase (docs/FORMAT.md §13.2).
//!
//! ```text
//! 0        8  magic "MGKEY\0\0\0"
//! 8        4  version = 1 (u32 LE)
//! 12       4  Argon2id memory cost, KiB (u32 LE)
//! 16       4  Argon2id passes (u32 LE)
//! 20       4  Argon2id lanes (u32 LE)
//! 24      32  Argon2 salt
//! 56       8  created, Unix seconds (i64 LE)
//! 64       2  label length L <= 256 (u16 LE)
//! 66       L  label, UTF-8 (who made the key, e.g. "ann@laptop")
//! 66+L    12  AES-256-GCM nonce
//! 78+L    48  the master key sealed (32 bytes + 16-byte tag)
//! 126+L   32  key check: HMAC-SHA256(wrapping key, "mediagit v1 key check")
//! ```
//!
//! The wrapping key is Argon2id(passphrase, salt, parameters), 32 bytes;
//! the associated data is every byte before the nonce, so changing the
//! parameters, salt, date or label makes the file not open. AES-GCM alone
//! does not commit to its key (one crafted ciphertext can open under many
//! keys, which would let a planted key file test many passphrases at once):
//! the key check does, and is compared before the master key is opened.
use aws_lc_rs::aead::{Aad, Nonce, NONCE_LEN};
use zeroize::Zeroizing;

use crate::{aead_key, random, CryptoError, MasterKey, Result, KEY_LEN, TAG_LEN};

const MAGIC: &[u8; 8] = b"MGKEY\0\0\0";
const VERSION: u32 = 1;
const MAX_LABEL: usize = 256;
const FIXED: usize = 66;
/// Length of a key file without its label.
pub const KEY_FILE_LEN: usize = FIXED + NONCE_LEN + KEY_LEN + TAG_LEN + KEY_LEN;

const CHECK_INFO: &[u8] = b"mediagit v1 key check";

/// The key check of a wrapping key (commits the file to it).
fn key_check(wk: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, wk),
        CHECK_INFO,
    );
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_cost_kib: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// What new key files use: 128 MiB, 4 passes, 1 lane, about 0.5 s on
    /// the 2-core machine of docs/PERFORMANCE.md (measured there: 64 MiB ×
    /// 3 passes 0.16 s, 128 MiB × 3 0.39 s, 256 MiB × 2 0.55 s). Every
    /// command of an encrypted repository pays it once, in time and in peak
    /// memory, so the memory stays at 128 MiB (RFC 9106's second
    /// recommendation is 64 MiB × 3) and the passes make up the time.
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost_kib: 128 * 1024,
        t_cost: 4,
        p_cost: 1,
    };
    /// The least a key file may ask for: OWASP's minimum for Argon2id
    /// (19 MiB, 2 passes). A file below it is refused as weakened.
    pub const MIN: KdfParams = KdfParams {
        m_cost_kib: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };
    /// The most a key file may ask for (1 GiB, 16 passes, 16 lanes): a
    /// planted key file must not be able to exhaust memory or hold a
    /// client for minutes before it fails.
    pub const MAX: KdfParams = KdfParams {
        m_cost_kib: 1024 * 1024,
        t_cost: 16,
        p_cost: 16,
    };

    /// Refuses parameters outside [`Self::MIN`] ..= [`Self::MAX`].
    pub fn check(&self) -> Result<()> {
        let (lo, hi) = (KdfParams::MIN, KdfParams::MAX);
        let ok = |v: u32, a: u32, b: u32| (a..=b).contains(&v);
        if ok(self.m_cost_kib, lo.m_cost_kib, hi.m_cost_kib)
            && ok(self.t_cost, lo.t_cost, hi.t_cost)
            && ok(self.p_cost, lo.p_cost, hi.p_cost)
            // Argon2 needs 8 KiB of memory per lane.
            && self.m_cost_kib >= 8 * self.p_cost
        {
            return Ok(());
        }
        Err(CryptoError::KdfParams {
            found: self.to_string(),
            accepted: format!("{lo} to {hi}"),
        })
    }

    fn wrapping_key(&self, passphrase: &[u8], salt: &[u8; 32]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        self.check()?;
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| CryptoError::Kdf(e.to_string()))?;
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        a.hash_password_into(passphrase, salt, &mut out[..])
            .map_err(|e| CryptoError::Kdf(e.to_string()))?;
        Ok(out)
    }
}

impl std::fmt::Display for KdfParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory {} MiB, {} passes, {} lanes",
            self.m_cost_kib / 1024,
            self.t_cost,
            self.p_cost
        )
    }
}

/// A decoded key file. Its id is [`KeyFile::id`] of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFile {
    pub params: KdfParams,
    pub salt: [u8; 32],
    pub created: i64,
    pub label: String,
    nonce: [u8; NONCE_LEN],
    wrapped: [u8; KEY_LEN + TAG_LEN],
    check: [u8; KEY_LEN],
}

impl KeyFile {
    /// Wraps `master` with `passphrase`.
    pub fn create(
        master: &MasterKey,
        passphrase: &[u8],
        params: KdfParams,
        created: i64,
        label: &str,
    ) -> Result<KeyFile> {
        // No control characters (a label is printed by `key list`).
        let mut label: String = label.chars().filter(|c| !c.is_control()).collect();
        while label.len() > MAX_LABEL {
            label.pop();
        }
        let mut salt = [0u8; 32];
        random(&mut salt)?;
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce)?;
        let mut kf = KeyFile {
            params,
            salt,
            created,
            label,
            nonce,
            wrapped: [0u8; KEY_LEN + TAG_LEN],
            check: [0u8; KEY_LEN],
        };
        let wk = params.wrapping_key(passphrase, &salt)?;
        kf.check = key_check(&wk);
        let mut buf = master.bytes().to_vec();
        aead_key(&wk)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&kf.associated_data()[..]),
                &mut buf,
            )
            .map_err(|_| CryptoError::Kdf("sealing the master key failed".into()))?;
        kf.wrapped.copy_from_slice(&buf);
        buf.iter_mut().for_each(|b| *b = 0);
        Ok(kf)
    }

    /// The master key, if `passphrase` is this file's.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<MasterKey> {
        let wk = self.params.wrapping_key(passphrase, &self.salt)?;
        if aws_lc_rs::hmac::verify(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &wk[..]),
            CHECK_INFO,
            &self.check,
        )
        .is_err()
        {
            return Err(CryptoError::WrongPassphrase);
        }
        let mut buf = Zeroizing::new(self.wrapped.to_vec());
        let plain = aead_key(&wk)
            .open_in_place(
                Nonce::assume_unique_for_key(self.nonce),
                Aad::from(&self.associated_data()[..]),
                &mut buf[..],
            )
            .map_err(|_| CryptoError::WrongPassphrase)?;
        let mut m = Zeroizing::new([0u8; KEY_LEN]);
        m.copy_from_slice(plain);
        Ok(MasterKey::from_bytes(*m))
    }

    fn associated_data(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + self.label.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.params.m_cost_kib.to_le_bytes());
        out.extend_from_slice(&self.params.t_cost.to_le_bytes());
        out.extend_from_slice(&self.params.p_cost.to_le_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.created.to_le_bytes());
        out.extend_from_slice(&(self.label.len() as u16).to_le_bytes());
        out.extend_from_slice(self.label.as_bytes());
        out
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.associated_data();
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.wrapped);
        out.extend_from_slice(&self.check);
        out
    }

    /// Decodes a key file, refusing anything but exactly the layout above
    /// (the length is checked before anything is read) and parameters
    /// outside [`KdfParams::MIN`] ..= [`KdfParams::MAX`].
    pub fn decode(bytes: &[u8]) -> Result<KeyFile> {
        let bad = |reason: &str| CryptoError::BadKeyFile {
            reason: reason.into(),
        };
        if bytes.len() < KEY_FILE_LEN || bytes.len() > KEY_FILE_LEN + MAX_LABEL {
            return Err(bad(&format!(
                "{} bytes, a key file has {} to {}",
                bytes.len(),
                KEY_FILE_LEN,
                KEY_FILE_LEN + MAX_LABEL
            )));
        }
        if &bytes[..8] != MAGIC {
            return Err(bad("not a MediaGit key file (wrong magic)"));
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let version = u32_at(8);
        if version != VERSION {
            return Err(bad(&format!(
                "version {version}, this build reads version {VERSION}; upgrade mediagit"
            )));
        }
        let params = KdfParams {
            m_cost_kib: u32_at(12),
            t_cost: u32_at(16),
            p_cost: u32_at(20),
        };
        params.check()?;
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&bytes[24..56]);
        let mut created = [0u8; 8];
        created.copy_from_slice(&bytes[56..64]);
        let label_len = u16::from_le_bytes([bytes[64], bytes[65]]) as usize;
        if label_len > MAX_LABEL || bytes.len() != KEY_FILE_LEN + label_len {
            return Err(bad("label length does not match the file's length"));
        }
        let label = std::str::from_utf8(&bytes[FIXED..FIXED + label_len])
            .map_err(|_| bad("label is not UTF-8"))?
            .to_string();
        if label.chars().any(char::is_control) {
            return Err(bad("label holds control characters"));
        }
        let at = FIXED + label_len;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[at..at + NONCE_LEN]);
        let mut wrapped = [0u8; KEY_LEN + TAG_LEN];
        wrapped.copy_from_slice(&bytes[at + NONCE_LEN..at + NONCE_LEN + KEY_LEN + TAG_LEN]);
        let mut check = [0u8; KEY_LEN];
        check.copy_from_slice(&bytes[at + NONCE_LEN + KEY_LEN + TAG_LEN..]);
        Ok(KeyFile {
            params,
            salt,
            created: i64::from_le_bytes(created),
            label,
            nonce,
            wrapped,
            check,
        })
    }

    /// A key file's id: the SHA-256 of its bytes, in hex (its store key is
    /// `keys/<id>`).
    pub fn id(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> KdfParams {
        KdfParams::MIN
    }

    #[test]
    fn wraps_and_unwraps_with_the_passphrase_only() {
        let m = MasterKey::generate().unwrap();
        let kf =
            KeyFile::create(&m, b"correct horse", cheap(), 1_700_000_000, "ann@laptop").unwrap();
        let bytes = kf.encode();
        assert_eq!(bytes.len(), KEY_FILE_LEN + "ann@laptop".len());
        let back = KeyFile::decode(&bytes).unwrap();
        assert_eq!(back, kf);
        assert_eq!(back.unlock(b"correct horse").unwrap().bytes(), m.bytes());
        assert_eq!(
            back.unlock(b"wrong").unwrap_err(),
            CryptoError::WrongPassphrase
        );
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let m = MasterKey::generate().unwrap();
        let bytes = KeyFile::create(&m, b"pw", cheap(), 5, "x")
            .unwrap()
            .encode();
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            let r = KeyFile::decode(&t).and_then(|k| k.unlock(b"pw"));
            assert!(r.is_err(), "flip at byte {i} still opened");
        }
    }

    #[test]
    fn weakened_or_huge_parameters_are_refused_before_argon2_runs() {
        let m = MasterKey::generate().unwrap();
        let bytes = KeyFile::create(&m, b"pw", cheap(), 5, "").unwrap().encode();
        // Memory cost lowered to 8 MiB.
        let mut t = bytes.clone();
        t[12..16].copy_from_slice(&(8 * 1024u32).to_le_bytes());
        assert!(matches!(
            KeyFile::decode(&t),
            Err(CryptoError::KdfParams { .. })
        ));
        // Raised to 64 GiB.
        let mut t = bytes.clone();
        t[12..16].copy_from_slice(&(64 * 1024 * 1024u32).to_le_bytes());
        assert!(matches!(
            KeyFile::decode(&t),
            Err(CryptoError::KdfParams { .. })
        ));
        // Passes lowered to 1.
        let mut t = bytes.clone();
        t[16..20].copy_from_slice(&1u32.to_le_bytes());
        assert!(matches!(
            KeyFile::decode(&t),
            Err(CryptoError::KdfParams { .. })
        ));
        // Raised within the bounds: decodes, but no longer opens.
        let mut t = bytes;
        t[16..20].copy_from_slice(&3u32.to_le_bytes());
        let k = KeyFile::decode(&t).unwrap();
        assert_eq!(k.unlock(b"pw").unwrap_err(), CryptoError::WrongPassphrase);
    }

    #[test]
    fn malformed_files_are_named_errors() {
        for bytes in [
            Vec::new(),
            vec![0u8; KEY_FILE_LEN],
            vec![0u8; KEY_FILE_LEN + MAX_LABEL + 1],
        ] {
            assert!(matches!(
                KeyFile::decode(&bytes),
                Err(CryptoError::BadKeyFile { .. })
            ));
        }
        let m = MasterKey::generate().unwrap();
        let mut bytes = KeyFile::create(&m, b"pw", cheap(), 5, "ab")
            .unwrap()
            .encode();
        bytes[64] = 3; // label length says 3, file holds 2
        assert!(matches!(
            KeyFile::decode(&bytes),
            Err(CryptoError::BadKeyFile { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let m = MasterKey::generate().unwrap();
        assert_eq!(format!("{m:?}"), "MasterKey(<secret>)");
    }
}
