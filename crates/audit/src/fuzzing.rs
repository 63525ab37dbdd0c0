//! Entry points for the fuzz targets in `fuzz/` (not an API: hidden from the docs, may change).
//!
//! They expose the two ways an export line is read (the strict recogniser and the serde path)
//! separately, so a target can check that they agree, and the block reader with a small block,
//! so a target can check that cutting the input into blocks and threads changes no verdict.

use std::io::Read;

use crate::error::VerifyError;
use crate::verifier::{ExportVerifier, Hashed};

/// What reading one line gave: its `seq`, the leaf hash recomputed from its contents (`None`
/// when it could not be computed), and the leaf and chain hashes it records (`None` when not 64
/// lower-case hex digits).
pub type LineView = (u64, Option<[u8; 32]>, Option<[u8; 32]>, Option<[u8; 32]>);

fn view(h: &Hashed) -> LineView {
    let (record, leaf) = h.parts();
    (record.seq, leaf, record.leaf, record.chain)
}

/// The strict recogniser alone (`None`: not recognised, the line goes to serde).
pub fn export_line_fast(line: &[u8]) -> Option<LineView> {
    crate::export_line::fast(line.trim_ascii_end()).map(|h| view(&h))
}

/// The serde path alone.
pub fn export_line_slow(line: &[u8]) -> Result<LineView, String> {
    crate::export_line::slow(line.trim_ascii_end()).map(|h| view(&h))
}

/// What [`Hashed::from_export_line`] gives, as a [`LineView`].
pub fn export_line(line: &[u8]) -> Result<LineView, String> {
    Hashed::from_export_line(line).map(|h| view(&h))
}

/// [`crate::verify_export`] with a chosen block size.
pub fn verify_export_in_blocks(
    input: impl Read,
    verifier: &mut ExportVerifier,
    threads: usize,
    block_size: usize,
) -> Result<(), VerifyError> {
    crate::export_reader::verify_in_blocks(input, verifier, threads, block_size)
}
