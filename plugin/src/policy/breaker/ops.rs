//! The two per-request operations, `admit` and `record`, over a [`Store`]:
//! the public face of the state machine (`state`) and the CAS loop (`txn`).

use super::codec::decode;
use super::config::BreakerConfig;
use super::report::Report;
use super::state::{Lease, Outcome, State, Verdict};
use super::store::{Store, StoreError};
use super::txn::{run, AdmitOp, Finish, Read, RecordOp};

/// What `admit` learned, to be handed back to [`record`] for the same
/// request. Opaque: it holds the state and CAS token read at admission (so a
/// closed-state record can CAS-write without another get) and the probe
/// lease, if the request holds one.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(crate) read: Option<Read>,
    pub(crate) lease: Option<Lease>,
}

impl Snapshot {
    /// Whether this request holds a half-open probe slot (its outcome
    /// decides the breaker; it must be recorded, as `Abandoned` if need be,
    /// or the slot is only freed when its lease expires).
    pub fn is_probe(&self) -> bool {
        self.lease.is_some()
    }

    /// The state seen at admission, if it was read and not changed by the
    /// admission itself (for logs and tests).
    pub fn state(&self) -> Option<&State> {
        self.read.as_ref().map(|(s, _)| s)
    }
}

/// The breaker's answer for one request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Inspect the request, then [`record`] its outcome with `snapshot`.
    Allow {
        /// The request holds a half-open probe slot.
        probe: bool,
        /// To pass to [`record`].
        snapshot: Snapshot,
    },
    /// Refuse it now (503 `breaker_open`) without reading the body.
    Reject {
        /// `Retry-After`: whole seconds until half-open, rounded up, >= 1.
        retry_after_secs: u32,
    },
}

/// [`admit`]'s result: the decision and what to count and log.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Allow or reject.
    pub decision: Decision,
    /// Events (`Rejected`, `HalfOpened`, `ProbeStarted`), CAS statistics,
    /// host errors.
    pub report: Report,
}

/// Decides whether a request in the breaker at `key` may be inspected.
///
/// One get. Closed: allow. Open: reject with `Retry-After`, or — once the
/// open time has elapsed — turn half-open and take a probe slot (a CAS
/// write). Half-open: take a free probe slot (CAS write) or reject. If
/// shared data fails or CAS retries run out, the request is allowed (as a
/// non-probe) and the report says why: the breaker is a safety valve, never a
/// reason to fail a request on its own.
pub fn admit<S: Store + ?Sized>(
    cfg: &BreakerConfig,
    store: &S,
    key: &str,
    now_ms: u64,
) -> Admission {
    admission(run(store, key, AdmitOp { cfg, now_ms }, None))
}

/// Turns a finished admission transaction into the public answer.
pub(crate) fn admission(finish: Finish<Verdict>) -> Admission {
    let decision = match finish.out {
        Verdict::Allow { lease } => Decision::Allow {
            probe: lease.is_some(),
            snapshot: Snapshot {
                read: finish.unchanged,
                lease,
            },
        },
        Verdict::Reject { retry_after_secs } => Decision::Reject { retry_after_secs },
    };
    Admission {
        decision,
        report: finish.report,
    }
}

/// Records how an allowed request ended.
///
/// First an optimistic CAS set computed from the snapshot (no get), then on
/// `CasMismatch` get → recompute → CAS set, at most [`MAX_CAS_RETRIES`](super::MAX_CAS_RETRIES)
/// times. An `Abandoned` outcome without a probe slot does nothing at all.
/// Never blocks, never panics; a skipped update is reported.
pub fn record<S: Store + ?Sized>(
    cfg: &BreakerConfig,
    store: &S,
    key: &str,
    now_ms: u64,
    snapshot: Snapshot,
    outcome: Outcome,
) -> Report {
    if outcome == Outcome::Abandoned && snapshot.lease.is_none() {
        return Report::default();
    }
    let op = RecordOp {
        cfg,
        now_ms,
        lease: snapshot.lease,
        outcome,
    };
    run(store, key, op, snapshot.read).report
}

/// Reads the state of one breaker (one get), for tests, debugging and the
/// harness: `None` if the key was never written or holds no valid state.
pub fn read_state<S: Store + ?Sized>(store: &S, key: &str) -> Result<Option<State>, StoreError> {
    let (value, _) = store.get(key)?;
    Ok(value.as_deref().and_then(decode))
}
