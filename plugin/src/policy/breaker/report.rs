//! What an operation tells the filter: events (one metric each), CAS
//! statistics and storage trouble, and the log line of each transition.

use super::state::StateName;
use super::store::StoreError;

/// Why a closed breaker opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripReason {
    /// `consecutive_failures` failures in a row.
    Consecutive,
    /// failures / total over the window above `failure_ratio`, with at
    /// least `min_requests` outcomes.
    Ratio,
}

impl TripReason {
    /// The name used in log lines (`consecutive` or `ratio`).
    pub fn as_str(self) -> &'static str {
        match self {
            TripReason::Consecutive => "consecutive",
            TripReason::Ratio => "ratio",
        }
    }
}

/// Something that happened to a breaker, reported only once it is durable
/// (its write landed). Each maps to one metric; transitions also to a log
/// line ([`Event::log_line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Closed → open (`json_sanitizer.breaker.opened`).
    Opened {
        /// Which condition tripped it.
        reason: TripReason,
        /// Failures in a row at that moment.
        consecutive: u32,
        /// Failures in the window.
        failures: u32,
        /// Outcomes in the window.
        total: u32,
        /// How long it stays open.
        open_ms: u64,
    },
    /// Open → half-open: the open time elapsed (no metric in the issue; a
    /// log line).
    HalfOpened,
    /// A probe slot was taken (`json_sanitizer.breaker.probes`).
    ProbeStarted,
    /// Half-open → closed: a probe passed (`json_sanitizer.breaker.closed`).
    Closed,
    /// Half-open → open: a probe failed (`json_sanitizer.breaker.reopened`).
    Reopened {
        /// Failed probes in a row, including this one.
        reopens: u32,
        /// How long it stays open this time (after backoff and cap).
        open_ms: u64,
    },
    /// A request was refused (`json_sanitizer.breaker.rejected`).
    Rejected {
        /// The `Retry-After` value sent.
        retry_after_secs: u32,
    },
}

impl Event {
    /// The state change this event is, if it is one.
    pub fn transition(&self) -> Option<(StateName, StateName)> {
        match self {
            Event::Opened { .. } => Some((StateName::Closed, StateName::Open)),
            Event::HalfOpened => Some((StateName::Open, StateName::HalfOpen)),
            Event::Closed => Some((StateName::HalfOpen, StateName::Closed)),
            Event::Reopened { .. } => Some((StateName::HalfOpen, StateName::Open)),
            Event::ProbeStarted | Event::Rejected { .. } => None,
        }
    }

    /// One log line for a transition (None for other events): scope
    /// description, old → new state, reason, counts, as `key=value` pairs so
    /// they can be grepped and parsed.
    pub fn log_line(&self, scope: &str) -> Option<String> {
        let (from, to) = self.transition()?;
        let detail = match self {
            Event::Opened {
                reason,
                consecutive,
                failures,
                total,
                open_ms,
            } => format!(
                "reason={} consecutive={consecutive} failures={failures} total={total} open_ms={open_ms}",
                reason.as_str()
            ),
            Event::HalfOpened => "reason=open_elapsed".to_string(),
            Event::Closed => "reason=probe_passed counts=reset".to_string(),
            Event::Reopened { reopens, open_ms } => {
                format!("reason=probe_failed reopens={reopens} open_ms={open_ms}")
            }
            Event::ProbeStarted | Event::Rejected { .. } => return None,
        };
        Some(format!(
            "breaker {scope}: {} -> {} {detail}",
            from.as_str(),
            to.as_str()
        ))
    }
}

/// What one `admit` or `record` did, for metrics and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events that took effect, in order.
    pub events: Vec<Event>,
    /// CAS mismatches that were retried (`json_sanitizer.breaker.cas_retries`).
    pub cas_retries: u32,
    /// The retry budget ran out and the update was skipped
    /// (`json_sanitizer.breaker.cas_exhausted`); the request is served as if
    /// the breaker were closed.
    pub cas_exhausted: bool,
    /// The host refused a get or set for another reason; the update was
    /// skipped and the request served normally. Worth a warning log.
    pub store_error: Option<StoreError>,
    /// The stored value was unreadable (garbage or an unknown format
    /// version) and was treated as a fresh closed breaker; it is overwritten
    /// by the next write.
    pub discarded_invalid_state: bool,
}

impl Report {
    /// The log line of every transition in this report.
    pub fn log_lines(&self, scope: &str) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| e.log_line(scope))
            .collect()
    }

    /// Whether this event kind occurred (convenience for metrics and tests).
    pub fn has(&self, pred: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(pred)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_name_scope_states_reason_and_counts() {
        let e = Event::Opened {
            reason: TripReason::Ratio,
            consecutive: 2,
            failures: 11,
            total: 20,
            open_ms: 30_000,
        };
        assert_eq!(
            e.log_line("route \"a\" (slot 3)").unwrap(),
            "breaker route \"a\" (slot 3): closed -> open reason=ratio consecutive=2 failures=11 total=20 open_ms=30000"
        );
        assert_eq!(
            Event::Reopened { reopens: 2, open_ms: 120_000 }.log_line("global (slot 0)").unwrap(),
            "breaker global (slot 0): half_open -> open reason=probe_failed reopens=2 open_ms=120000"
        );
        assert_eq!(
            Event::HalfOpened.log_line("s").unwrap(),
            "breaker s: open -> half_open reason=open_elapsed"
        );
        assert_eq!(
            Event::Closed.log_line("s").unwrap(),
            "breaker s: half_open -> closed reason=probe_passed counts=reset"
        );
        assert_eq!(Event::ProbeStarted.log_line("s"), None);
        assert_eq!(
            Event::Rejected {
                retry_after_secs: 3
            }
            .log_line("s"),
            None
        );
        let r = Report {
            events: vec![Event::HalfOpened, Event::ProbeStarted],
            ..Report::default()
        };
        assert_eq!(r.log_lines("s").len(), 1);
    }
}
