//! Wire types shared by `brevetd`, `brevet` and `brevet-agent`.
//!
//! Everything that crosses a process boundary is defined here: the signed grant document,
//! the API bodies, the stable error codes, and the validation of every untrusted name,
//! command, duration, ticket and reason (DESIGN §10). The agent links this crate, so it stays
//! small: no I/O, no async, no server dependencies.

pub mod agent;
pub mod api;
pub mod canonical;
pub mod clock;
mod error;
pub mod grant;
pub mod ocsf;
pub mod state;
pub mod timefmt;
pub mod validate;

pub use error::Error;
