//! Server-side identity for Brevet: the CA and the certificates it issues, the rustls
//! configurations for the server and its clients, Argon2id passwords, TOTP and bearer tokens.
//!
//! Everything cryptographic comes from ring (also as the rustls provider); nothing here keeps
//! state or reads the clock except where a function says "now", and each of those has an `_at`
//! twin taking the time as a parameter.

pub mod ca;
pub mod error;
pub mod password;
mod random;
pub mod seal;
pub mod tls;
pub mod token;
pub mod totp;

pub use error::{Error, Result};
