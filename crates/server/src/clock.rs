//! The server's clocks: the shared [`Clock`] trait and [`SystemClock`] (from `brevet-proto`),
//! and [`OffsetClock`], the real clock shifted by an offset a test moves.

use std::sync::atomic::{AtomicI64, Ordering};

pub use brevet_proto::clock::{Clock, SystemClock};

/// The real clock shifted by an adjustable offset: lets a test move a running server through
/// hours in milliseconds while timers keep working.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}

/// The real clock, shared.
pub fn system() -> std::sync::Arc<dyn Clock> {
    std::sync::Arc::new(SystemClock)
}
