//! Passwords for local accounts: Argon2id hashes and generated initial passwords.
//!
//! Hashes use the argon2 crate's defaults, which are OWASP's recommendation (Argon2id v1.3,
//! m = 19456 KiB, t = 2, p = 1), with a 16-byte salt from the system CSPRNG, stored as a PHC
//! string. Verification takes the parameters from the stored hash, so raising the defaults later
//! does not lock anyone out; only Argon2id hashes are accepted.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::{Error, Result, random};

/// Characters of generated passwords: letters and digits without look-alikes (0 O o 1 l I).
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Length of generated passwords: 24 × log2(56) ≈ 139 bits.
const GENERATED_LEN: usize = 24;

/// Hashes `pw` with Argon2id and a fresh salt; returns the PHC string to store.
pub fn hash_password(pw: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    random::fill(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(Error::PasswordHash)?;
    let hash = Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map_err(Error::PasswordHash)?;
    Ok(hash.to_string())
}

/// Whether `pw` matches the stored PHC string `phc`. A malformed or non-Argon2id hash never
/// matches. The final comparison is constant-time (done by the argon2 crate).
pub fn verify_password(pw: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    Argon2::default()
        .verify_password(pw.as_bytes(), &hash)
        .is_ok()
}

/// A random password of 24 characters from an unambiguous alphabet, for first sign-in.
pub fn generate_password() -> String {
    let mut out = String::with_capacity(GENERATED_LEN);
    // Rejection sampling: bytes at or above the largest multiple of the alphabet size are
    // dropped, so every character is equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    while out.len() < GENERATED_LEN {
        for b in random::bytes::<32>() {
            let b = usize::from(b);
            if b < limit && out.len() < GENERATED_LEN {
                out.push(char::from(ALPHABET[b % ALPHABET.len()]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify_roundtrip() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stapler", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn same_password_gets_different_salts() {
        assert_ne!(hash_password("pw").unwrap(), hash_password("pw").unwrap());
    }

    #[test]
    fn malformed_or_foreign_hashes_never_match() {
        assert!(!verify_password("pw", ""));
        assert!(!verify_password("pw", "not a hash"));
        // A valid Argon2i (not id) hash of "pw" is refused.
        let argon2i = Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            argon2::Params::default(),
        );
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let phc = argon2i.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(!verify_password("pw", &phc));
    }

    #[test]
    fn generated_passwords_are_long_unambiguous_and_distinct() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), GENERATED_LEN);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)), "{a}");
        assert_ne!(a, b);
    }
}
