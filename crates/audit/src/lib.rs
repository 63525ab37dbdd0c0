//! Brevet's tamper-evident audit trail (DESIGN §7).
//!
//! Each [`Event`] is sealed onto the log with two hashes:
//!
//! - its **leaf hash**, the RFC 6962 leaf `SHA-256(0x00 || canonical_json(event))`, which covers
//!   every field including `seq`;
//! - its **chain hash**, `SHA-256(0x02 || previous chain hash || leaf hash)` from 32 zero bytes,
//!   which binds each event to all the events before it.
//!
//! [`verify`] walks a run of events and names the first bad sequence number: an edited event
//! (any field, or either hash), a deleted, inserted, duplicated or reordered event (sequence
//! numbers must run on without gaps), or a wrong hash.
//!
//! The chain holds no secret, so two things need more than the chain: a cut-off tail, and a log
//! rewritten from some event onward with every hash recomputed. Both are caught by a signed
//! [`Checkpoint`] — the log's size and the RFC 6962 Merkle root of its leaf hashes, signed with
//! Ed25519 — through [`verify_against_checkpoint`]. Checkpoints can be handed to an outside
//! witness; [`consistency_proof`] shows a later checkpoint extends an earlier one, and
//! [`inclusion_proof`] shows a single event is covered. Events appended after the latest
//! checkpoint are vouched for by nothing but the chain until the next checkpoint is signed.
//!
//! Everything here is pure computation over values passed in (the time included), so the
//! storage layer can call it inside its transactions.

mod chain;
mod checkpoint;
mod error;
mod event;
mod export_line;
mod export_reader;
mod frontier;
#[doc(hidden)]
pub mod fuzzing;
mod hash;
mod merkle;
mod proof;
mod verifier;

pub use chain::{Draft, Head, seal, verify};
pub use checkpoint::{Checkpoint, verify_against_checkpoint};
pub use error::{Error, VerifyError};
pub use event::{Event, Sealed, leaf_hash};
pub use export_line::write_export_line;
pub use export_reader::verify_export;
pub use frontier::Frontier;
pub use merkle::{
    consistency_proof, inclusion_proof, merkle_root, verify_consistency, verify_inclusion,
};
pub use proof::{ConsistencyProof, InclusionProof, parse_public_key};
pub use verifier::{ExportVerifier, Hashed, Summary};

/// Parses a hash written as 64 lower-case hex digits; `field` names it in the error.
pub fn hash_from_hex(field: &'static str, hex: &str) -> Result<[u8; 32], Error> {
    hash::parse_hex(field, hex)
}
