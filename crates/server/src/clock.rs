//! The server's clocks: the shared [`Clock`] trait and [`SystemClock`] (from `brevet-proto`),
//! and [`OffsetClock`], the real clock shifted by an offset a test moves.

use std::sync::atomic::{AtomicI64, Ordering};

pub use brevet_proto::clock::{Clock, SystemClock};

/// The real clock shifted by an adjustable offset: lets a test move a running server through
/// hours in milliseconds while timers keep working. A test that must not depend on how fast the
/// machine is can [`freeze`](OffsetClock::freeze) it: then only [`advance`](OffsetClock::advance)
/// moves it.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
    /// The real time at which the clock was frozen; 0 when it runs.
    frozen_at_ms: AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// Stops the clock at the current time; it moves only by `advance` until `thaw`.
    pub fn freeze(&self) {
        self.frozen_at_ms
            .store(SystemClock.now_ms(), Ordering::SeqCst);
    }

    /// Lets the clock run again from where it stood (the time it was frozen is skipped).
    pub fn thaw(&self) {
        let frozen = self.frozen_at_ms.swap(0, Ordering::SeqCst);
        if frozen != 0 {
            self.offset_ms
                .fetch_sub(SystemClock.now_ms() - frozen, Ordering::SeqCst);
        }
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        let base = match self.frozen_at_ms.load(Ordering::SeqCst) {
            0 => SystemClock.now_ms(),
            frozen => frozen,
        };
        base + self.offset_ms.load(Ordering::SeqCst)
    }
}

/// The real clock, shared.
pub fn system() -> std::sync::Arc<dyn Clock> {
    std::sync::Arc::new(SystemClock)
}
