//! Reading the audit log in order after a cursor, for what pushes it out (syslog forwarding,
//! webhooks): the next run of consecutive events. Sequence numbers are taken at commit, but a
//! transaction with a lower number can become visible a moment after one with a higher, so a
//! gap right after the cursor is waited for (up to [`GAP_WAIT`]) before it is passed over; a
//! batch always stops before a later gap.

use std::time::{Duration, Instant};

use brevet_audit::Sealed;
use brevet_store::Store;

/// How long a gap right after the cursor is waited for before it is passed over.
pub(crate) const GAP_WAIT: Duration = Duration::from_secs(5);

/// Where one reader stands with respect to a gap.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    gap_since: Option<Instant>,
}

impl Tail {
    /// Up to `limit` consecutive events after `cursor`; empty while a gap right after it is
    /// younger than [`GAP_WAIT`]. `who` names the reader in the warning about a gap passed over.
    pub(crate) async fn next(
        &mut self,
        store: &Store,
        cursor: u64,
        limit: i64,
        who: &str,
    ) -> Result<Vec<Sealed>, brevet_store::Error> {
        let batch = store.audit_events(cursor, limit).await?;
        let Some(first) = batch.first().map(|s| s.event.seq) else {
            self.gap_since = None;
            return Ok(Vec::new());
        };
        if first != cursor + 1 {
            let since = *self.gap_since.get_or_insert_with(Instant::now);
            if since.elapsed() < GAP_WAIT {
                return Ok(Vec::new());
            }
            tracing::warn!(
                reader = who,
                from = cursor + 1,
                to = first - 1,
                "audit events missing from the log; going on past them"
            );
        }
        self.gap_since = None;
        let mut out: Vec<Sealed> = Vec::with_capacity(batch.len());
        for s in batch {
            if out.last().is_some_and(|p| s.event.seq != p.event.seq + 1) {
                break;
            }
            out.push(s);
        }
        Ok(out)
    }
}
