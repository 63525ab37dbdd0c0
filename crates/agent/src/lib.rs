//! `brevet-agent`: enforces signed Brevet grants on a Linux endpoint.
//!
//! The agent pins the server's grant key at enrollment and accepts nothing else
//! ([`verify`]). A verified grant becomes one sudoers drop-in ([`sudoers`]) or a group
//! membership, recorded first in the agent's own [`journal`]; the [`expiry`] timer removes it at
//! `not_after` from that journal, whether or not the server is reachable, and [`enforce`] closes
//! the fallback paths on removal (sudo timestamp records, processes started through sudo).
//! [`account`] refuses grants for system accounts (missing, UID 0, below `UID_MIN`);
//! [`server_state`] refuses answers from a server whose state went backwards (a restore).
//! [`reconcile`] repairs drift; [`scan`] reports standing privilege; [`usage`] records what was
//! run under each grant and what changed while it was in force. Time and the operating
//! system are parameters ([`clock`], [`system`]), so all of this is unit-tested with fakes.
//!
//! Dependencies stay few: no async runtime, no server crates.

pub mod account;
pub mod cli;
pub mod clock;
pub mod enforce;
pub mod enroll;
mod error;
pub mod expiry;
#[doc(hidden)]
pub mod fuzzing;
pub mod journal;
pub mod linux;
pub mod net;
pub mod reconcile;
pub mod root;
pub mod run;
pub mod scan;
pub mod server_state;
pub mod sudoers;
pub mod system;
pub mod usage;
pub mod verify;

pub use error::{Error, Result};
