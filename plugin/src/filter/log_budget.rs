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
    /// `max_log_lines_per_second`; `None` for no bound.
    per_second: Option<u64>,
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
    /// Yes, after saying what was left out before it, if anything.
    Write(Option<LeftOut>),
    /// No: the second's lines are spent.
    LeaveOut,
}

/// Lines left out since the last one written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeftOut {
    /// How many.
    pub lines: u64,
    /// Whether one of them was a warning (so the notice is one too).
    pub warning: bool,
    /// The bound that left them out.
    pub per_second: u64,
}

impl LogBudget {
    /// A budget of `per_second` lines (`None`: no bound).
    pub fn new(per_second: Option<u64>) -> Self {
        Self {
            per_second,
            ..Self::default()
        }
    }

    /// Asks to write one request line (a `warning` or not); `now_ms` is
    /// asked only under a bound. Without a clock (a host that refuses to
    /// tell the time) lines are written: a bound that needs the time cannot
    /// hold without it, and the counters show the load anyway.
    pub fn admit(&self, now_ms: impl FnOnce() -> Option<u64>, warning: bool) -> Admission {
        let Some(per_second) = self.per_second else {
            return Admission::Write(None);
        };
        let Some(now_ms) = now_ms() else {
            return self.write(per_second);
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
        self.write(per_second)
    }

    fn write(&self, per_second: u64) -> Admission {
        let lines = self.left_out.replace(0);
        let warning = self.left_out_warning.replace(false);
        Admission::Write((lines > 0).then_some(LeftOut {
            lines,
            warning,
            per_second,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At the bound a second's lines are written, one over is left out;
    /// the next second writes again and first says how many were left out.
    /// At the bound a second's lines are written, one over is left out;
    /// the next second writes again and first says how many were left out.
    #[test]
    fn a_second_writes_its_bound_and_the_next_says_what_was_left_out() {
        let three = LogBudget::new(Some(3));
        let at = |now: u64| three.admit(|| Some(now), false);
        let left_out = |lines, warning, per_second| {
            Admission::Write(Some(LeftOut {
                lines,
                warning,
                per_second,
            }))
        };
        let fresh = Admission::Write(None);
        for _ in 0..3 {
            assert_eq!(at(5_000), fresh);
        }
        assert_eq!(at(5_999), Admission::LeaveOut);
        assert_eq!(at(5_500), Admission::LeaveOut);
        assert_eq!(at(6_000), left_out(2, false, 3));
        assert_eq!(at(6_001), fresh);
        // A clock that goes back starts a second too (it is a new one).
        let one = LogBudget::new(Some(1));
        assert_eq!(one.admit(|| Some(1_000), false), fresh);
        assert_eq!(one.admit(|| Some(1_000), false), Admission::LeaveOut);
        assert_eq!(one.admit(|| Some(500), false), left_out(1, false, 1));
        // No clock: written, and what was left out said.
        assert_eq!(one.admit(|| Some(500), false), Admission::LeaveOut);
        assert_eq!(one.admit(|| None, false), left_out(1, false, 1));
        // A warning left out makes the notice a warning, once.
        assert_eq!(one.admit(|| Some(20_000), false), fresh);
        assert_eq!(one.admit(|| Some(20_000), true), Admission::LeaveOut);
        assert_eq!(one.admit(|| Some(20_000), false), Admission::LeaveOut);
        assert_eq!(one.admit(|| Some(21_000), false), left_out(2, true, 1));
        assert_eq!(one.admit(|| Some(22_000), false), fresh);
        // No bound: every line, and the clock is not asked.
        let unbounded = LogBudget::new(None);
        for _ in 0..1000 {
            assert_eq!(unbounded.admit(|| panic!("the clock asked"), true), fresh);
        }
    }
}
