//! Bearer tokens: session tokens, enrollment tokens, API tokens.
//!
//! A token is a readable prefix (`bvs_`, …) followed by 256 random bits in lower-case base32. The
//! server stores only [`hash_token`] of it, so a leaked database does not leak usable tokens;
//! since the token has full entropy, a plain SHA-256 (no salt, no stretching) is enough, and
//! lookups by hash need no constant-time comparison.

use crate::random;

/// A new token: `prefix` followed by 52 lower-case base32 characters (32 random bytes).
pub fn new_token(prefix: &str) -> String {
    let body = data_encoding::BASE32_NOPAD.encode(&random::bytes::<32>());
    format!("{prefix}{}", body.to_ascii_lowercase())
}

/// The value the server stores for `token`: lower-case hex SHA-256.
pub fn hash_token(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    data_encoding::HEXLOWER.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_prefix_and_full_entropy_body() {
        let token = new_token("bvs_");
        let body = token.strip_prefix("bvs_").unwrap();
        assert_eq!(body.len(), 52);
        assert!(
            body.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')),
            "{token}"
        );
        assert_ne!(new_token("bvs_"), token);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let token = new_token("bve_");
        assert_eq!(hash_token(&token), hash_token(&token));
        assert_ne!(hash_token(&token), hash_token(&new_token("bve_")));
    }
}
