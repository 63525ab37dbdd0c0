//! Secrets the server must be able to read back (TOTP seeds), sealed at rest with AES-256-GCM
//! under a key kept in the data directory (`totp.key`), not in the database. A copy of the
//! database alone (a backup, a PostgreSQL replica, a stolen dump) then yields no seed.
//!
//! Sealed text is `v1:` + base64(12-byte random nonce ‖ ciphertext ‖ 16-byte tag). The
//! associated data is a caller-given label (the user name), so a sealed secret moved to another
//! row does not open.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::{Error, Result, random};

const PREFIX: &str = "v1:";

/// An AES-256-GCM key for sealing secrets.
pub struct SealKey {
    key: LessSafeKey,
}

impl SealKey {
    /// A new random key and its text form (base64, for the key file).
    pub fn generate() -> Result<(SealKey, String)> {
        let mut raw = [0u8; 32];
        random::fill(&mut raw)?;
        let text = data_encoding::BASE64.encode(&raw);
        Ok((SealKey::from_raw(&raw)?, text))
    }

    /// The key from its text form.
    pub fn from_text(text: &str) -> Result<SealKey> {
        let raw = data_encoding::BASE64
            .decode(text.trim().as_bytes())
            .map_err(|_| Error::Seal("the key is not base64".into()))?;
        if raw.len() != 32 {
            return Err(Error::Seal("the key is not 32 bytes".into()));
        }
        SealKey::from_raw(&raw)
    }

    fn from_raw(raw: &[u8]) -> Result<SealKey> {
        let unbound = UnboundKey::new(&AES_256_GCM, raw)
            .map_err(|_| Error::Seal("the key is not an AES-256 key".into()))?;
        Ok(SealKey {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Seals `secret`, bound to `label`.
    pub fn seal(&self, label: &str, secret: &str) -> Result<String> {
        let nonce_bytes: [u8; NONCE_LEN] = {
            let mut n = [0u8; NONCE_LEN];
            random::fill(&mut n)?;
            n
        };
        let mut buf = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(label.as_bytes()),
                &mut buf,
            )
            .map_err(|_| Error::Seal("sealing failed".into()))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", data_encoding::BASE64.encode(&out)))
    }

    /// Opens text made by [`SealKey::seal`] with the same `label`.
    pub fn open(&self, label: &str, sealed: &str) -> Result<String> {
        let body = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| Error::Seal("not a sealed secret".into()))?;
        let mut raw = data_encoding::BASE64
            .decode(body.as_bytes())
            .map_err(|_| Error::Seal("the sealed secret is not base64".into()))?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(Error::Seal("the sealed secret is too short".into()));
        }
        let (nonce, rest) = raw.split_at_mut(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Seal("bad nonce".into()))?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(label.as_bytes()), rest)
            .map_err(|_| {
                Error::Seal(
                    "the sealed secret does not open with this key (wrong `totp.key`, or the \
                     value was moved or edited)"
                        .into(),
                )
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| Error::Seal("not UTF-8".into()))
    }
}

/// Whether `text` is a sealed secret (and not a legacy plain one).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_the_label() {
        let (key, text) = SealKey::generate().unwrap();
        let sealed = key.seal("alice", "JBSWY3DPEHPK3PXP").unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("JBSWY3DP"));
        assert_eq!(key.open("alice", &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(key.open("bob", &sealed).is_err(), "moved to another user");
        let again = SealKey::from_text(&text).unwrap();
        assert_eq!(again.open("alice", &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        let (other, _) = SealKey::generate().unwrap();
        assert!(other.open("alice", &sealed).is_err(), "another key");
        assert_ne!(
            key.seal("alice", "x").unwrap(),
            key.seal("alice", "x").unwrap()
        );
        let mut edited = sealed.clone().into_bytes();
        let last = edited.len() - 3;
        edited[last] = if edited[last] == b'A' { b'B' } else { b'A' };
        assert!(
            key.open("alice", std::str::from_utf8(&edited).unwrap())
                .is_err()
        );
        assert!(key.open("alice", "JBSWY3DPEHPK3PXP").is_err());
        assert!(SealKey::from_text("c2hvcnQ=").is_err());
    }
}
