//! Randomness for keys, salts, serial numbers, passwords, TOTP secrets and tokens.
//!
//! Everything comes from ring's `SystemRandom` (the kernel's CSPRNG via `getrandom`). Fallible
//! callers get an [`Error::Random`]; the few infallible API functions (`new_token`,
//! `generate_password`, `totp::generate_secret`) panic instead, because there is no safe degraded
//! mode for a secret generator and `getrandom` does not fail on any supported kernel.

use ring::rand::{SecureRandom, SystemRandom};

use crate::{Error, Result};

/// Fills `buf` with random bytes from the operating system.
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(buf).map_err(|_| Error::Random)
}

/// `N` random bytes; panics only if the operating system's generator fails (see module docs).
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if fill(&mut buf).is_err() {
        // INVARIANT: a secret is never produced from anything but the system CSPRNG.
        panic!("the system random number generator failed; refusing to make a secret");
    }
    buf
}
