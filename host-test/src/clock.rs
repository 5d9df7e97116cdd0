//! The host clock: real time, or a manual clock that tests and `replay` move.
//!
//! One clock drives both `proxy_get_current_time_nanoseconds` and WASI
//! `clock_time_get`, so a plugin cannot see two different times, and every
//! worker VM of one host environment shares it (as Envoy's workers share the
//! wall clock), which is what makes breaker timing deterministic in tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where manual clocks start: 2023-11-14T22:13:20Z, a fixed, obviously
/// synthetic instant so replays print the same times on every run.
pub const MANUAL_EPOCH_MS: u64 = 1_700_000_000_000;

/// A shareable clock; clones observe and move the same time.
#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
enum Inner {
    Real,
    Manual(AtomicU64),
}

impl Clock {
    /// The system wall clock.
    pub fn real() -> Self {
        Clock {
            inner: Arc::new(Inner::Real),
        }
    }

    /// A clock that only moves when told to, starting at [`MANUAL_EPOCH_MS`].
    pub fn manual() -> Self {
        Self::manual_at_ms(MANUAL_EPOCH_MS)
    }

    /// A manual clock starting at `ms` milliseconds since the Unix epoch.
    pub fn manual_at_ms(ms: u64) -> Self {
        Clock {
            inner: Arc::new(Inner::Manual(AtomicU64::new(ms.saturating_mul(1_000_000)))),
        }
    }

    /// Whether this clock is manual (ticks are then fired by hand).
    pub fn is_manual(&self) -> bool {
        matches!(*self.inner, Inner::Manual(_))
    }

    /// Nanoseconds since the Unix epoch, as the guest sees them.
    pub fn now_ns(&self) -> u64 {
        match &*self.inner {
            Inner::Real => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
            Inner::Manual(ns) => ns.load(Ordering::SeqCst),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.now_ns() / 1_000_000
    }

    /// Moves a manual clock forward; panics on a real clock because a test
    /// that thinks it controls time but does not would pass for wrong reasons.
    pub fn advance(&self, by: Duration) {
        match &*self.inner {
            Inner::Manual(ns) => {
                ns.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
            }
            Inner::Real => panic!("Clock::advance on a real clock"),
        }
    }

    /// Sets a manual clock to `ms` milliseconds since the Unix epoch (may go
    /// backwards, to test how a plugin copes). Panics on a real clock.
    pub fn set_ms(&self, ms: u64) {
        match &*self.inner {
            Inner::Manual(ns) => ns.store(ms.saturating_mul(1_000_000), Ordering::SeqCst),
            Inner::Real => panic!("Clock::set_ms on a real clock"),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::real()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let c = Clock::manual();
        let c2 = c.clone();
        assert_eq!(c.now_ms(), MANUAL_EPOCH_MS);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c2.now_ms(), MANUAL_EPOCH_MS + 1500);
        c2.set_ms(42);
        assert_eq!(c.now_ns(), 42_000_000);
    }

    #[test]
    fn real_clock_is_recent() {
        assert!(Clock::real().now_ms() > MANUAL_EPOCH_MS);
    }
}
