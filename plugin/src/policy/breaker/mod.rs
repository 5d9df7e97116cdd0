//! Circuit breaker whose state lives in proxy-wasm shared data (issue 4).
//!
//! When a scope (the whole plugin, a route, a header value, a client address)
//! is flooded with bodies the sanitizer rejects, the breaker opens and sheds
//! that scope's traffic with 503 at the headers stage for a while, then lets
//! a few probes through to decide whether to close again.
//!
//! Pure: time (`now_ms`, from the host clock) and storage (a [`Store`]) are
//! passed in, so every transition is unit-tested natively; the filter layer
//! supplies `get_current_time` and `get/set_shared_data`.
//!
//! # Per request
//! 1. Headers: [`BreakerConfig::scope_key`] → [`shared_data_key`] →
//!    [`admit`]. A [`Decision::Reject`] becomes a 503 with `Retry-After`;
//!    a [`Decision::Allow`] carries a [`Snapshot`] the filter keeps.
//! 2. End of inspection: [`record`] with the snapshot and the [`Outcome`].
//!
//! Every operation returns a [`Report`]: events to count as metrics, log
//! lines for transitions, CAS retries, exhaustion and host errors.
//!
//! # Hostcalls per request (uncontended)
//! | state | admit | record | total |
//! |---|---|---|---|
//! | closed, pass or fail (trip included) | 1 get | 1 set (CAS from the admit's get) | 1 get + 1 set |
//! | open | 1 get | — (rejected, nothing recorded) | 1 get |
//! | open, time elapsed → half-open probe | 1 get + 1 set | 1 get + 1 set | 2 gets + 2 sets |
//! | half-open probe | 1 get + 1 set | 1 get + 1 set | 2 gets + 2 sets |
//! | half-open, slots full | 1 get | — | 1 get |
//! | closed, abandoned | 1 get | nothing | 1 get |
//!
//! A probe's record needs a get because a set does not return the new CAS.
//! Under contention each CAS mismatch adds one get and one set, at most
//! [`MAX_CAS_RETRIES`] times, after which the update is skipped and reported
//! (`cas_exhausted`).
//!
//! # Concurrency
//! Every write is a CAS on the token of the read it was computed from, so a
//! write computed from a stale state never lands: it is recomputed from a
//! fresh read. Events are reported only for writes that landed, so exactly
//! one worker reports each transition. The first write of a key is made
//! race-free without an extra hostcall: see [`CREATE_CAS`].
//!
//! # Scopes and slots
//! Scope keys are hashed into `max_keys` slots; two keys in one slot share a
//! breaker (a client may be shed with its slot-mate). That bounds shared
//! data, which has no delete, to `max_keys` values of at most a few hundred
//! bytes per plugin configuration.

mod codec;
mod config;
mod hash;
mod ops;
mod report;
mod scope;
mod state;
mod store;
mod txn;

/// An in-memory shared-data store with Envoy's semantics, for the crate's
/// tests and the fuzz targets (feature `test-support`); not in the plugin.
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use codec::{decode, encode, FORMAT_VERSION};
pub use config::{
    BreakerConfig, Scope, ALL_JSON_VIOLATIONS, MAX_HALF_OPEN_PROBES, MAX_KEYS_LIMIT,
    MAX_OPEN_SECONDS, MAX_WINDOW_SECONDS,
};
pub use hash::{fnv1a64, Fnv1a64};
pub use ops::{admit, read_state, record, Admission, Decision, Snapshot};
pub use report::{Event, Report, TripReason};
pub use scope::{namespace, scope_key, shared_data_key, strip_port, ScopeInput, ScopeKey};
pub use state::{
    retry_after_secs, Bucket, Closed, HalfOpen, Lease, Outcome, State, StateName, WindowCounts,
    HALF_OPEN_RETRY_AFTER_SECS, WINDOW_BUCKETS,
};
pub use store::{SetError, Store, StoreError, CREATE_CAS};
pub use txn::MAX_CAS_RETRIES;
