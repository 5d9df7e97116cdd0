//! The breaker's state and its transitions, as pure functions of (state,
//! configuration, time, input). Nothing here reads a clock or touches
//! storage: the update loop in `txn` applies these plans with CAS.

use super::config::BreakerConfig;
use super::report::{Event, TripReason};

/// Number of buckets the rolling window is made of. With ten, the window
/// slides in steps of a tenth of `window_seconds`: an outcome stops counting
/// between 0.9 × and 1 × `window_seconds` after it was recorded.
pub const WINDOW_BUCKETS: usize = 10;

/// Outcomes recorded in one bucket of the rolling window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Requests that failed (a counted violation).
    pub failures: u32,
    /// Requests recorded, failed or passed.
    pub total: u32,
}

/// Counts of the closed state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closed {
    /// Failures since the last success.
    pub consecutive: u32,
    /// Index (`now_ms / bucket_ms`) of the newest bucket; bucket `e` lives at
    /// `buckets[e % WINDOW_BUCKETS]`, and only epochs `head_epoch - 9 ..=
    /// head_epoch` are held.
    pub head_epoch: u64,
    /// The ring of buckets.
    pub buckets: [Bucket; WINDOW_BUCKETS],
}

/// A half-open probe slot held by one request. Identified by the sequence
/// number *and* the time it was taken, so that a probe from an earlier
/// half-open period can never be mistaken for a current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Sequence number within the half-open period.
    pub seq: u32,
    /// Host time the slot was taken; the lease expires
    /// [`BreakerConfig::probe_lease_ms`] later.
    pub taken_at_ms: u64,
}

/// State of the half-open breaker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HalfOpen {
    /// Failed probes in a row before this period (drives the backoff).
    pub reopens: u32,
    /// Sequence number of the next lease.
    pub next_seq: u32,
    /// Probe slots in flight (at most `half_open_probes` live ones).
    pub leases: Vec<Lease>,
}

/// The state of one breaker slot, as stored in shared data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Requests pass and their outcomes are counted.
    Closed(Closed),
    /// Requests are rejected until `until_ms`.
    Open {
        /// Host time at which the breaker turns half-open.
        until_ms: u64,
        /// Failed probes in a row so far (0 when opened from closed).
        reopens: u32,
    },
    /// A few probe requests decide between closing and reopening.
    HalfOpen(HalfOpen),
}

impl Default for State {
    /// A breaker nobody has written yet: closed with no history.
    fn default() -> Self {
        State::Closed(Closed::default())
    }
}

/// The three states by name, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateName {
    /// Requests pass.
    Closed,
    /// Requests are rejected.
    Open,
    /// Probes are let through.
    HalfOpen,
}

impl StateName {
    /// The snake_case name used in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Closed => "closed",
            StateName::Open => "open",
            StateName::HalfOpen => "half_open",
        }
    }
}

/// How a request admitted by the breaker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The body was inspected and passed.
    Success,
    /// The body was rejected for a violation kind the breaker counts.
    Failure,
    /// The request ended without a verdict that counts (the client went
    /// away, a violation kind not counted, a skipped body): nothing is
    /// counted, but a probe slot it held is released.
    Abandoned,
}

/// Window totals at a point in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Failures in the window.
    pub failures: u64,
    /// Outcomes in the window.
    pub total: u64,
    /// Failures in a row.
    pub consecutive: u32,
}

impl Closed {
    /// Moves the window to `epoch`, emptying the buckets that fell out of it.
    /// An epoch older than the head (another worker's clock a little behind)
    /// is counted in the head bucket rather than dropped. A head a whole
    /// window or more ahead was written by a clock that was wrong (or has
    /// jumped back since): kept, it would swallow every later outcome into
    /// one bucket that never ages out, so the window starts again at `epoch`.
    ///
    /// Failures in a row age out with the window too: the run is the latest
    /// outcomes, so no more of it is left in the window than there are
    /// outcomes in it. Otherwise three failures days apart on a quiet scope
    /// would open the breaker as if they had come together.
    fn advance(&mut self, epoch: u64) {
        if epoch.saturating_add(WINDOW_BUCKETS as u64) <= self.head_epoch {
            self.buckets = [Bucket::default(); WINDOW_BUCKETS];
            self.head_epoch = epoch;
            self.consecutive = 0;
            return;
        }
        if epoch <= self.head_epoch {
            return;
        }
        let gap = epoch - self.head_epoch;
        if gap >= WINDOW_BUCKETS as u64 {
            self.buckets = [Bucket::default(); WINDOW_BUCKETS];
        } else {
            for e in self.head_epoch + 1..=epoch {
                self.buckets[(e % WINDOW_BUCKETS as u64) as usize] = Bucket::default();
            }
        }
        self.head_epoch = epoch;
        let left = self.sums().total;
        self.consecutive =
            u32::try_from(left).map_or(self.consecutive, |left| self.consecutive.min(left));
    }

    fn head(&mut self) -> &mut Bucket {
        &mut self.buckets[(self.head_epoch % WINDOW_BUCKETS as u64) as usize]
    }

    /// The window totals as they stand at `now_ms`.
    pub fn counts_at(&self, cfg: &BreakerConfig, now_ms: u64) -> WindowCounts {
        let mut c = self.clone();
        c.advance(now_ms / cfg.bucket_ms());
        c.sums()
    }

    fn sums(&self) -> WindowCounts {
        let (failures, total) = self.buckets.iter().fold((0u64, 0u64), |(f, t), b| {
            (f + u64::from(b.failures), t + u64::from(b.total))
        });
        WindowCounts {
            failures,
            total,
            consecutive: self.consecutive,
        }
    }
}

impl State {
    /// Which of the three states this is.
    pub fn name(&self) -> StateName {
        match self {
            State::Closed(_) => StateName::Closed,
            State::Open { .. } => StateName::Open,
            State::HalfOpen(_) => StateName::HalfOpen,
        }
    }
}

/// What a transaction wants written, what it answers, and what it reports —
/// valid only if the write (when there is one) lands.
#[derive(Debug)]
pub(crate) struct Plan<T> {
    pub write: Option<State>,
    pub out: T,
    pub events: Vec<Event>,
}

/// The admission verdict before it is tied to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow { lease: Option<Lease> },
    Reject { retry_after_secs: u32 },
}

/// Whole seconds from `now_ms` until `until_ms`, rounded up, at least 1 (a
/// `Retry-After: 0` would invite an immediate retry storm).
pub fn retry_after_secs(until_ms: u64, now_ms: u64) -> u32 {
    let secs = until_ms.saturating_sub(now_ms).div_ceil(1000).max(1);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Retry-After given when half-open and every probe slot is taken: probes
/// normally finish within a request's time, so the answer is usually known
/// within a second.
pub const HALF_OPEN_RETRY_AFTER_SECS: u32 = 1;

/// Admission at `now_ms`. Closed: allow, nothing to write. Open and not yet
/// elapsed: reject. Open and elapsed: turn half-open and take the first
/// probe slot (one write). Half-open: take a free slot (expired leases are
/// free) or reject.
pub(crate) fn plan_admit(cfg: &BreakerConfig, state: &State, now_ms: u64) -> Plan<Verdict> {
    match state {
        State::Closed(_) => Plan {
            write: None,
            out: Verdict::Allow { lease: None },
            events: Vec::new(),
        },
        // An end further ahead than the longest open period (plus a probe
        // lease of slack for workers that read the clock a moment apart) was
        // set by a clock that was wrong; honouring it could keep the breaker
        // open for years, so it counts as elapsed.
        State::Open { until_ms, .. }
            if now_ms < *until_ms
                && *until_ms - now_ms
                    <= cfg
                        .open_duration_ms(u32::MAX)
                        .saturating_add(cfg.probe_lease_ms()) =>
        {
            let retry_after_secs = retry_after_secs(*until_ms, now_ms);
            Plan {
                write: None,
                out: Verdict::Reject { retry_after_secs },
                events: vec![Event::Rejected { retry_after_secs }],
            }
        }
        State::Open { reopens, .. } => {
            let lease = Lease {
                seq: 0,
                taken_at_ms: now_ms,
            };
            Plan {
                write: Some(State::HalfOpen(HalfOpen {
                    reopens: *reopens,
                    next_seq: 1,
                    leases: vec![lease],
                })),
                out: Verdict::Allow { lease: Some(lease) },
                events: vec![Event::HalfOpened, Event::ProbeStarted],
            }
        }
        State::HalfOpen(h) => {
            let lease_ms = cfg.probe_lease_ms();
            let mut next = h.clone();
            // A lease lives for `lease_ms` from when it was taken; one taken
            // further in the future than that came from a wrong clock and
            // would otherwise hold its slot until then.
            next.leases
                .retain(|l| now_ms.abs_diff(l.taken_at_ms) < lease_ms);
            if next.leases.len() < cfg.half_open_probes as usize {
                let lease = Lease {
                    seq: next.next_seq,
                    taken_at_ms: now_ms,
                };
                next.next_seq = next.next_seq.wrapping_add(1);
                next.leases.push(lease);
                Plan {
                    write: Some(State::HalfOpen(next)),
                    out: Verdict::Allow { lease: Some(lease) },
                    events: vec![Event::ProbeStarted],
                }
            } else {
                let retry_after_secs = HALF_OPEN_RETRY_AFTER_SECS;
                Plan {
                    write: None,
                    out: Verdict::Reject { retry_after_secs },
                    events: vec![Event::Rejected { retry_after_secs }],
                }
            }
        }
    }
}

/// Recording an outcome at `now_ms` for a request admitted with `lease`.
///
/// - Closed: count it (any request, probe or not); trip when the consecutive
///   or the ratio condition holds. The ratio is checked after every counted
///   outcome because it is a property of the window, which changes with every
///   outcome and with time. `Abandoned` writes nothing.
/// - Open: nothing (the outcome belongs to a period already judged).
/// - Half-open: only a request holding a current lease decides: success
///   closes (fresh counts, backoff reset), failure reopens for the next
///   backoff step, abandoned releases the slot. Other requests (admitted
///   before the breaker opened) write nothing.
pub(crate) fn plan_record(
    cfg: &BreakerConfig,
    state: &State,
    now_ms: u64,
    lease: Option<Lease>,
    outcome: Outcome,
) -> Plan<()> {
    let none = || Plan {
        write: None,
        out: (),
        events: Vec::new(),
    };
    match state {
        State::Closed(c) => {
            let failed = match outcome {
                Outcome::Abandoned => return none(),
                Outcome::Success => false,
                Outcome::Failure => true,
            };
            let mut c = c.clone();
            c.advance(now_ms / cfg.bucket_ms());
            let head = c.head();
            head.total = head.total.saturating_add(1);
            if failed {
                head.failures = head.failures.saturating_add(1);
                c.consecutive = c.consecutive.saturating_add(1);
            } else {
                c.consecutive = 0;
            }
            let sums = c.sums();
            let reason = if failed && sums.consecutive >= cfg.consecutive_failures {
                Some(TripReason::Consecutive)
            } else if sums.total >= u64::from(cfg.min_requests)
                && sums.failures as f64 / sums.total as f64 > cfg.failure_ratio
            {
                Some(TripReason::Ratio)
            } else {
                None
            };
            match reason {
                None => Plan {
                    write: Some(State::Closed(c)),
                    out: (),
                    events: Vec::new(),
                },
                Some(reason) => {
                    let open_ms = cfg.open_duration_ms(0);
                    Plan {
                        write: Some(State::Open {
                            until_ms: now_ms.saturating_add(open_ms),
                            reopens: 0,
                        }),
                        out: (),
                        events: vec![Event::Opened {
                            reason,
                            consecutive: sums.consecutive,
                            failures: u32::try_from(sums.failures).unwrap_or(u32::MAX),
                            total: u32::try_from(sums.total).unwrap_or(u32::MAX),
                            open_ms,
                        }],
                    }
                }
            }
        }
        State::Open { .. } => none(),
        State::HalfOpen(h) => {
            let Some(lease) = lease.filter(|l| h.leases.contains(l)) else {
                return none();
            };
            match outcome {
                Outcome::Success => Plan {
                    write: Some(State::default()),
                    out: (),
                    events: vec![Event::Closed],
                },
                Outcome::Failure => {
                    let reopens = h.reopens.saturating_add(1);
                    let open_ms = cfg.open_duration_ms(reopens);
                    Plan {
                        write: Some(State::Open {
                            until_ms: now_ms.saturating_add(open_ms),
                            reopens,
                        }),
                        out: (),
                        events: vec![Event::Reopened { reopens, open_ms }],
                    }
                }
                Outcome::Abandoned => {
                    let mut next = h.clone();
                    next.leases.retain(|l| *l != lease);
                    Plan {
                        write: Some(State::HalfOpen(next)),
                        out: (),
                        events: Vec::new(),
                    }
                }
            }
        }
    }
}
