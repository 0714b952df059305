//! The wall clock the bank's time-based rules read (the login back-off, the UTC day of the
//! deposit ceilings, the openings bucket), injectable so tests move time instead of waiting
//! for it.

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Unix time in milliseconds: the system clock, or a hand-set one in tests.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicU64>>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.manual.is_some() {
            "Clock(manual)"
        } else {
            "Clock(system)"
        })
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that reads `now_ms` and moves only when the caller stores into it.
    pub fn manual(now_ms: Arc<AtomicU64>) -> Self {
        Self {
            manual: Some(now_ms),
        }
    }

    /// The current time, Unix ms.
    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            Some(now) => now.load(Ordering::SeqCst),
            None => crate::now_ms(),
        }
    }
}
