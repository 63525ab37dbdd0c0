//! Inclusion and consistency proofs over the stored log, for `/v1/audit/proof/*`.
//!
//! A proof needs the leaf hashes of the whole tree it is about, so it reads `size` leaf hashes
//! from the database (32 bytes of memory each): O(size) per proof, fine for an auditor's
//! occasional question, not for a hot path. The default size is that of the latest checkpoint,
//! whose signed root the answer then carries; any size up to the current log is accepted.

use brevet_audit::{
    ConsistencyProof, InclusionProof, consistency_proof, inclusion_proof, merkle_root,
};

use crate::Error;
use crate::app::App;

/// Proof that event `seq` is in the tree of the first `size` events.
pub async fn inclusion(app: &App, seq: u64, size: Option<u64>) -> Result<InclusionProof, Error> {
    let size = resolve_size(app, size).await?;
    if seq == 0 || seq > size {
        return Err(Error::Invalid(format!(
            "invalid seq `{seq}`: expected an event from 1 to {size}, the tree size"
        )));
    }
    let leaves = leaves(app, size).await?;
    let root = merkle_root(&leaves);
    let index = usize::try_from(seq - 1).map_err(|_| Error::Internal("seq".into()))?;
    let mut proof = InclusionProof::new(
        seq,
        size,
        &leaves[index],
        &root,
        &inclusion_proof(&leaves, index),
    );
    proof.checkpoint = checkpoint_with_root(app, size, &proof.root).await?;
    Ok(proof)
}

/// Proof that the tree of the first `from` events is a prefix of that of the first `to`.
pub async fn consistency(app: &App, from: u64, to: Option<u64>) -> Result<ConsistencyProof, Error> {
    let to = resolve_size(app, to).await?;
    if from > to {
        return Err(Error::Invalid(format!(
            "invalid from `{from}`: it must not exceed to ({to})"
        )));
    }
    let leaves = leaves(app, to).await?;
    let old = usize::try_from(from).map_err(|_| Error::Internal("size".into()))?;
    let mut proof = ConsistencyProof::new(
        from,
        to,
        &merkle_root(&leaves[..old]),
        &merkle_root(&leaves),
        &consistency_proof(&leaves, old),
    );
    proof.checkpoint = checkpoint_with_root(app, to, &proof.to_root).await?;
    Ok(proof)
}

/// `size`, or the latest checkpoint's, or the log's; never beyond the log.
async fn resolve_size(app: &App, size: Option<u64>) -> Result<u64, Error> {
    let log = app.store.audit_size().await?;
    let size = match size {
        Some(s) => s,
        None => match app.store.latest_checkpoint().await? {
            Some(c) => c.checkpoint.size,
            None => log,
        },
    };
    if size > log {
        return Err(Error::Invalid(format!(
            "invalid size `{size}`: the log holds {log} events"
        )));
    }
    Ok(size)
}

/// The stored checkpoint of `size`, which must agree with the root just computed.
async fn checkpoint_with_root(
    app: &App,
    size: u64,
    root: &str,
) -> Result<Option<brevet_audit::Checkpoint>, Error> {
    let cp = app.store.checkpoint(size).await?;
    match cp {
        Some(cp) if cp.root != root => Err(Error::Internal(format!(
            "the stored audit log no longer matches its checkpoint of size {size}"
        ))),
        cp => Ok(cp),
    }
}

/// The leaf hashes of events 1 to `size`.
async fn leaves(app: &App, size: u64) -> Result<Vec<[u8; 32]>, Error> {
    let cap = usize::try_from(size).map_err(|_| Error::Internal("size".into()))?;
    let mut out = Vec::with_capacity(cap);
    while (out.len() as u64) < size {
        let after = out.len() as u64;
        let want = i64::try_from((size - after).min(10_000)).unwrap_or(10_000);
        let page = app.store.audit_leaves(after, want).await?;
        if page.is_empty() {
            break;
        }
        for (seq, hex) in page {
            if seq != out.len() as u64 + 1 {
                return Err(Error::Internal(format!("audit event {seq} out of order")));
            }
            out.push(
                brevet_audit::hash_from_hex("leaf_hash", &hex)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            );
        }
    }
    if (out.len() as u64) < size {
        return Err(Error::Internal(format!(
            "the audit log ends after event {} of {size}",
            out.len()
        )));
    }
    Ok(out)
}
