//! Domain-separated SHA-256 and the hex form of hashes.
//!
//! Every hash in this crate starts with a one-byte tag, so a hash of one kind can never be passed
//! off as another: `0x00` leaf and `0x01` interior node are RFC 6962/9162's; `0x02` chain link is
//! Brevet's own. (Reusing `0x01` for chain links would make every chain hash a valid Merkle node
//! over `prev || leaf`.)

use data_encoding::HEXLOWER;
use ring::digest;

use crate::Error;

/// A SHA-256 output.
pub(crate) type Hash = [u8; 32];

/// RFC 6962 leaf tag.
pub(crate) const LEAF: u8 = 0x00;
/// RFC 6962 interior-node tag.
pub(crate) const NODE: u8 = 0x01;
/// Brevet chain-link tag.
pub(crate) const CHAIN: u8 = 0x02;

/// SHA-256 over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    // INVARIANT: a SHA-256 digest is exactly 32 bytes.
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// RFC 6962 interior node: `SHA-256(0x01 || left || right)`.
pub(crate) fn node(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[NODE], left, right])
}

/// Lower-case hex, the only form this crate writes or accepts.
pub(crate) fn to_hex(hash: &Hash) -> String {
    HEXLOWER.encode(hash)
}

/// Parses 64 lower-case hex digits; `field` names the input in the error.
pub(crate) fn parse_hex(field: &'static str, hex: &str) -> Result<Hash, Error> {
    let bytes = HEXLOWER
        .decode(hex.as_bytes())
        .map_err(|_| Error::invalid(field, hex, "expected 64 lower-case hex digits"))?;
    Hash::try_from(bytes.as_slice())
        .map_err(|_| Error::invalid(field, hex, "expected 64 lower-case hex digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_is_the_well_known_sha256() {
        assert_eq!(
            to_hex(&sha256(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_round_trips_and_is_strict() {
        let h = sha256(&[b"x"]);
        assert_eq!(parse_hex("h", &to_hex(&h)), Ok(h));
        assert!(parse_hex("h", &to_hex(&h).to_uppercase()).is_err());
        assert!(parse_hex("h", "abcd").is_err());
        assert!(parse_hex("h", &"0".repeat(66)).is_err());
        assert!(parse_hex("h", "").is_err());
    }
}
