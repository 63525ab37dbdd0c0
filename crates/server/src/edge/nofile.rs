//! The open-file limit: raised to the hard limit at start (no `unsafe`: rustix's safe
//! `getrlimit`/`setrlimit`), and the connection budget fitted under it, so `accept` does not run
//! out of file descriptors before the budget does.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use super::RESERVED_FDS;
use super::pool::Budget;

/// The most file descriptors asked for, even when the hard limit is unlimited.
const CEILING: u64 = 1 << 20;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (at most [`CEILING`]) and returns the soft
/// limit in force afterwards.
pub(crate) fn raise() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(CEILING).min(CEILING);
    let soft = limit.current.unwrap_or(CEILING);
    if soft >= hard {
        return soft;
    }
    let wanted = Rlimit {
        current: Some(hard),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, wanted) {
        Ok(()) => {
            tracing::debug!(from = soft, to = hard, "raised the open-file limit");
            hard
        }
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit");
            soft
        }
    }
}

/// `budget` scaled down, when needed, to fit `nofile` descriptors with [`RESERVED_FDS`] kept
/// for the rest of the server.
pub(crate) fn fit(budget: Budget, nofile: u64) -> Budget {
    let room = usize::try_from(nofile.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    if room >= budget.total {
        return budget;
    }
    let fitted = budget.scaled_to(room);
    tracing::warn!(
        nofile,
        configured = budget.total,
        max_connections = fitted.total,
        device_connections = fitted.device,
        "the open-file limit is too low for server.max_connections: serving fewer connections \
         (raise LimitNOFILE in the service unit, or `ulimit -n`)"
    );
    fitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_under_the_limit() {
        let b = Budget::new(16384, 8192, 128, 4).unwrap();
        assert_eq!(fit(b, 65536), b);
        let f = fit(b, 1024);
        assert_eq!(f.total, 768);
        assert!(f.device > 0 && f.anonymous > 0 && f.handshake > 0);
        assert!(fit(b, 10).total >= 24);
    }

    #[test]
    fn raise_is_idempotent() {
        let first = raise();
        assert!(first >= 1);
        assert_eq!(raise(), first);
    }
}
