//! TOTP second factor (RFC 6238): HMAC-SHA1, 6 digits, 30-second steps.
//!
//! This is what authenticator apps implement, so no other algorithm is offered. [`verify`]
//! accepts the current step and one step either side (clock drift), compares in constant time,
//! and returns the step it matched; the caller stores that step and passes it back as
//! `last_used_step`, so a code is accepted at most once.

use data_encoding::BASE32_NOPAD;
use ring::hmac;

use crate::{Error, Result, random};

/// Seconds per step (RFC 6238 `X`).
const STEP_SECS: u64 = 30;

/// Digits of a code.
const DIGITS: u32 = 6;

/// Shortest secret accepted: RFC 4226 §4 R6 requires at least 128 bits.
const MIN_SECRET_LEN: usize = 16;

/// A new 160-bit secret (the length RFC 4226 recommends for HMAC-SHA1).
pub fn generate_secret() -> Vec<u8> {
    random::bytes::<20>().to_vec()
}

/// The secret as authenticator apps expect it: RFC 4648 base32, upper case, no padding.
pub fn secret_base32(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

/// Decodes a base32 secret. Case, spaces and trailing `=` are forgiven (people type these).
pub fn secret_from_base32(s: &str) -> Result<Vec<u8>> {
    let normalized: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .trim_end_matches('=')
        .to_ascii_uppercase();
    let secret = BASE32_NOPAD
        .decode(normalized.as_bytes())
        .map_err(|e| Error::TotpSecret {
            detail: format!("not base32 ({})", e.kind),
        })?;
    if secret.len() < MIN_SECRET_LEN {
        return Err(Error::TotpSecret {
            detail: format!(
                "{} bytes is too short, at least {MIN_SECRET_LEN} are needed",
                secret.len()
            ),
        });
    }
    Ok(secret)
}

/// The `otpauth://` URI for a QR code (Google Authenticator key URI format).
pub fn otpauth_uri(secret: &[u8], account: &str, issuer: &str) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        account = percent_encode(account),
        secret = secret_base32(secret),
    )
}

/// The code for the step containing `unix_secs`.
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    code_for_step(secret, unix_secs / STEP_SECS, DIGITS)
}

/// Checks `code` against the steps around `unix_secs` and returns the step it matched.
///
/// Refuses anything but exactly six ASCII digits, and any step at or before `last_used_step`.
/// If the code matches more than one step, the latest is returned so none can be replayed.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_secs: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix_secs / STEP_SECS;
    let mut matched = None;
    for step in [now.checked_sub(1), Some(now), now.checked_add(1)]
        .into_iter()
        .flatten()
    {
        if last_used_step.is_some_and(|last| step <= last) {
            continue;
        }
        // Every candidate is computed and compared; no early exit on a match.
        let expected = code_for_step(secret, step, DIGITS);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            matched = Some(step);
        }
    }
    matched
}

/// HOTP (RFC 4226 §5) of `step` with `digits` digits, zero-padded.
fn code_for_step(secret: &[u8], step: u64, digits: u32) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    // Dynamic truncation: the low nibble of the last byte picks four bytes. A SHA-1 tag is
    // 20 bytes, so offset + 3 <= 18 is always in range.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    let value = (word & 0x7fff_ffff) % 10u32.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// Byte-slice equality whose time depends only on the length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA1 column (secret "12345678901234567890", 8 digits).
    const RFC6238_SHA1: &[(u64, &str)] = &[
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        for &(t, code) in RFC6238_SHA1 {
            assert_eq!(code_for_step(RFC_SECRET, t / STEP_SECS, 8), code, "T = {t}");
            // The 6-digit code is the last six digits of the 8-digit one.
            assert_eq!(code_at(RFC_SECRET, t), code[2..], "T = {t}");
        }
    }

    #[test]
    fn accepts_current_and_adjacent_steps_once() {
        let t = 1_111_111_111;
        let step = t / STEP_SECS;
        let code = code_at(RFC_SECRET, t);
        assert_eq!(verify(RFC_SECRET, &code, t, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, t + STEP_SECS, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, t - STEP_SECS, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, t + 2 * STEP_SECS, None), None);
        assert_eq!(verify(RFC_SECRET, &code, t - 2 * STEP_SECS, None), None);
    }

    #[test]
    fn replay_is_refused() {
        let t = 1_234_567_890;
        let code = code_at(RFC_SECRET, t);
        let used = verify(RFC_SECRET, &code, t, None).unwrap();
        assert_eq!(verify(RFC_SECRET, &code, t, Some(used)), None);
        assert_eq!(verify(RFC_SECRET, &code, t + STEP_SECS, Some(used)), None);
        // An earlier code is refused too once a later one was used.
        let earlier = code_at(RFC_SECRET, t - STEP_SECS);
        assert_eq!(verify(RFC_SECRET, &earlier, t, Some(used)), None);
        // The next step's code is still fine.
        let next = code_at(RFC_SECRET, t + STEP_SECS);
        assert_eq!(
            verify(RFC_SECRET, &next, t + STEP_SECS, Some(used)),
            Some(used + 1)
        );
    }

    #[test]
    fn malformed_codes_are_refused() {
        let t = 59;
        let code = code_at(RFC_SECRET, t);
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            " 28708",
            "２８７０８２",
            "-28708",
        ] {
            assert_eq!(verify(RFC_SECRET, bad, t, None), None, "{bad:?}");
        }
        assert_eq!(verify(RFC_SECRET, &format!("{code} "), t, None), None);
        assert_eq!(verify(RFC_SECRET, "000000", t, None), None);
    }

    #[test]
    fn step_zero_has_no_previous_step() {
        let code = code_at(RFC_SECRET, 0);
        assert_eq!(verify(RFC_SECRET, &code, 0, None), Some(0));
    }

    #[test]
    fn base32_roundtrip_and_forgiveness() {
        let secret = generate_secret();
        assert_eq!(secret.len(), 20);
        let b32 = secret_base32(&secret);
        assert_eq!(b32.len(), 32);
        assert!(!b32.contains('='));
        assert_eq!(secret_from_base32(&b32).unwrap(), secret);
        let typed = format!("{} {}==", &b32[..16].to_lowercase(), &b32[16..]);
        assert_eq!(secret_from_base32(&typed).unwrap(), secret);
    }

    #[test]
    fn bad_base32_is_refused_without_echoing_it() {
        let err = secret_from_base32("NOT-BASE32-1890!!").unwrap_err();
        assert!(!err.to_string().contains("NOT-BASE32"), "{err}");
        assert!(
            secret_from_base32("GEZDGNBV").is_err(),
            "5 bytes is too short"
        );
        assert!(secret_from_base32("").is_err());
    }

    #[test]
    fn otpauth_uri_is_encoded() {
        let uri = otpauth_uri(RFC_SECRET, "alice@example.com", "Brevet Prod");
        assert_eq!(
            uri,
            "otpauth://totp/Brevet%20Prod:alice%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Brevet%20Prod\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
