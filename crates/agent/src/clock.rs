//! The agent's clocks: the shared [`Clock`] trait and [`SystemClock`] (from `brevet-proto`),
//! and [`FakeClock`], which only moves when a test says so.

use std::sync::atomic::{AtomicI64, Ordering};

pub use brevet_proto::clock::{Clock, SystemClock};

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct FakeClock {
    ms: AtomicI64,
}

impl FakeClock {
    pub fn at(secs: i64) -> FakeClock {
        FakeClock {
            ms: AtomicI64::new(secs * 1000),
        }
    }

    pub fn set(&self, secs: i64) {
        self.ms.store(secs * 1000, Ordering::SeqCst);
    }

    pub fn advance(&self, secs: i64) {
        self.ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
}
