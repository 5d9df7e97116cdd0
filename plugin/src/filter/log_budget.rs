//! A bound on the request log lines a worker writes each second.
//!
//! Every refused request (and every one `report` mode or `report_only`
//! would have refused) writes a line, which is right for the odd bad
//! request and ruinous in a flood: an attack that an open breaker sheds at
//! thousands of requests a second would write megabytes of identical lines
//! a second into every sidecar's log. The counters count every one; the log
//! keeps the first `max_log_lines_per_second` of each second, and says how
//! many it left out with the next line it writes. The breaker's warnings of
//! a request (shared data refusing an update, a missing clock) count too:
//! contention an attacker drives could otherwise write one a request.

use std::cell::Cell;

/// One worker's (one plugin instance's) count of the request lines written
/// in the current second, and of those left out since the last said so.
#[derive(Debug, Default)]
pub struct LogBudget {
    /// The second (`now_ms / 1000`) being counted.
    second: Cell<u64>,
    /// Lines written in it.
    written: Cell<u64>,
    /// Lines left out and not yet reported.
    left_out: Cell<u64>,
    /// Whether a warning was among them.
    left_out_warning: Cell<bool>,
}

/// Whether a request line may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes; `left_out` lines were left out before it, to be said first.
    Write {
        /// Lines left out since the last one written.
        left_out: u64,
        /// Whether one of them was a warning (so the notice is one too).
        warning: bool,
    },
    /// No: the second's lines are spent.
    LeaveOut,
}

impl LogBudget {
    /// Asks to write one request line (a `warning` or not) at `now_ms`
    /// under `per_second` (`None`: no bound). Without a clock (a host that
    /// refuses to tell the time) lines are written: a bound that needs the
    /// time cannot hold without it, and the counters show the load anyway.
    pub fn admit(&self, now_ms: Option<u64>, per_second: Option<u64>, warning: bool) -> Admission {
        let (Some(now_ms), Some(per_second)) = (now_ms, per_second) else {
            return self.write();
        };
        let second = now_ms / 1000;
        if second != self.second.get() {
            self.second.set(second);
            self.written.set(0);
        }
        if self.written.get() >= per_second {
            self.left_out.set(self.left_out.get().saturating_add(1));
            self.left_out_warning
                .set(self.left_out_warning.get() || warning);
            return Admission::LeaveOut;
        }
        self.written.set(self.written.get() + 1);
        self.write()
    }

    fn write(&self) -> Admission {
        Admission::Write {
            left_out: self.left_out.replace(0),
            warning: self.left_out_warning.replace(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At the bound a second's lines are written, one over is left out;
    /// the next second writes again and first says how many were left out.
    #[test]
    fn a_second_writes_its_bound_and_the_next_says_what_was_left_out() {
        let budget = LogBudget::default();
        let write = |left_out| Admission::Write {
            left_out,
            warning: false,
        };
        let info = |now, per_second| budget.admit(now, per_second, false);
        for _ in 0..3 {
            assert_eq!(info(Some(5_000), Some(3)), write(0));
        }
        assert_eq!(info(Some(5_999), Some(3)), Admission::LeaveOut);
        assert_eq!(info(Some(5_500), Some(3)), Admission::LeaveOut);
        assert_eq!(info(Some(6_000), Some(3)), write(2));
        assert_eq!(info(Some(6_001), Some(3)), write(0));
        // A clock that goes back starts a second too (it is a new one).
        assert_eq!(info(Some(1_000), Some(1)), write(0));
        assert_eq!(info(Some(1_000), Some(1)), Admission::LeaveOut);
        // No bound, or no clock: written, and what was left out said.
        assert_eq!(info(Some(1_000), None), write(1));
        assert_eq!(info(None, Some(1)), write(0));
        for _ in 0..1000 {
            assert_eq!(info(Some(9_000), None), write(0));
        }
        // A warning left out makes the notice a warning, once.
        assert_eq!(info(Some(20_000), Some(1)), write(0));
        assert_eq!(
            budget.admit(Some(20_000), Some(1), true),
            Admission::LeaveOut
        );
        assert_eq!(info(Some(20_000), Some(1)), Admission::LeaveOut);
        assert_eq!(
            info(Some(21_000), Some(1)),
            Admission::Write {
                left_out: 2,
                warning: true
            }
        );
        assert_eq!(info(Some(22_000), Some(1)), write(0));
    }
}
