//! Scenario tests of the breaker through its public operations, over an
//! Envoy-like store double; and interleaving tests that step several
//! transactions by hand, one hostcall at a time.

use proptest::prelude::*;

use super::ops::admission;
use super::testing::EnvoyStore;
use super::txn::{AdmitOp, RecordOp, Step, Txn};
use super::*;

const KEY: &str = "json_sanitizer.0123456789abcdef.breaker.0";

fn cfg() -> BreakerConfig {
    BreakerConfig {
        enabled: true,
        ..BreakerConfig::default()
    }
}

/// Admits (panicking on reject) and returns the snapshot.
fn allow(cfg: &BreakerConfig, store: &EnvoyStore, now: u64) -> Snapshot {
    match admit(cfg, store, KEY, now).decision {
        Decision::Allow { snapshot, .. } => snapshot,
        Decision::Reject { retry_after_secs } => {
            panic!("rejected at {now} (retry after {retry_after_secs})")
        }
    }
}

/// Admits and records one request; returns the record report.
fn request(cfg: &BreakerConfig, store: &EnvoyStore, now: u64, outcome: Outcome) -> Report {
    let snap = allow(cfg, store, now);
    record(cfg, store, KEY, now, snap, outcome)
}

fn state(store: &EnvoyStore) -> State {
    read_state(store, KEY).unwrap().unwrap_or_default()
}

fn counts(cfg: &BreakerConfig, store: &EnvoyStore, now: u64) -> WindowCounts {
    match state(store) {
        State::Closed(c) => c.counts_at(cfg, now),
        other => panic!("not closed: {other:?}"),
    }
}

fn rejected_after(cfg: &BreakerConfig, store: &EnvoyStore, now: u64) -> Option<u32> {
    match admit(cfg, store, KEY, now).decision {
        Decision::Reject { retry_after_secs } => Some(retry_after_secs),
        Decision::Allow { .. } => None,
    }
}

fn opened(report: &Report) -> Option<(TripReason, u32, u32, u32)> {
    report.events.iter().find_map(|e| match e {
        Event::Opened {
            reason,
            consecutive,
            failures,
            total,
            ..
        } => Some((*reason, *consecutive, *failures, *total)),
        _ => None,
    })
}

/// Trips the default breaker at `now` with three failures.
fn trip(cfg: &BreakerConfig, store: &EnvoyStore, now: u64) {
    for _ in 0..cfg.consecutive_failures {
        request(cfg, store, now, Outcome::Failure);
    }
    assert!(matches!(state(store), State::Open { .. }));
}

/// Takes a probe (the breaker must be open and elapsed, or half-open).
fn probe(cfg: &BreakerConfig, store: &EnvoyStore, now: u64) -> Snapshot {
    let snap = allow(cfg, store, now);
    assert!(snap.is_probe());
    snap
}

// ---------------------------------------------------------------- closed

#[test]
fn exactly_consecutive_failures_trips() {
    let c = cfg();
    let s = EnvoyStore::new();
    assert_eq!(opened(&request(&c, &s, 1_000, Outcome::Failure)), None);
    assert_eq!(opened(&request(&c, &s, 1_001, Outcome::Failure)), None);
    assert_eq!(counts(&c, &s, 1_001).consecutive, 2);
    let r = request(&c, &s, 1_002, Outcome::Failure);
    assert_eq!(opened(&r), Some((TripReason::Consecutive, 3, 3, 3)));
    assert_eq!(
        state(&s),
        State::Open {
            until_ms: 31_002,
            reopens: 0
        }
    );
    assert_eq!(
        r.log_lines("route \"r\" (slot 0)"),
        ["breaker route \"r\" (slot 0): closed -> open reason=consecutive consecutive=3 failures=3 total=3 open_ms=30000"]
    );
}

#[test]
fn a_success_resets_the_consecutive_count() {
    let c = cfg();
    let s = EnvoyStore::new();
    for _ in 0..2 {
        request(&c, &s, 0, Outcome::Failure);
    }
    request(&c, &s, 0, Outcome::Success);
    for _ in 0..2 {
        request(&c, &s, 0, Outcome::Failure);
    }
    let w = counts(&c, &s, 0);
    assert_eq!((w.consecutive, w.failures, w.total), (2, 4, 5));
    assert!(opened(&request(&c, &s, 0, Outcome::Failure)).is_some());
}

#[test]
fn failures_in_a_row_age_out_with_the_window() {
    // 10 s window of 1 s buckets. Two failures at t = 0.5 s, one at 9.5 s:
    // all three in the window, so the third opens the breaker.
    let c = cfg();
    let s = EnvoyStore::new();
    request(&c, &s, 500, Outcome::Failure);
    request(&c, &s, 500, Outcome::Failure);
    assert_eq!(counts(&c, &s, 9_999).consecutive, 2);
    assert!(opened(&request(&c, &s, 9_500, Outcome::Failure)).is_some());

    // The same with the third at 10.0 s: the first two left the window with
    // their bucket, and one failure in a row does not open it.
    let s = EnvoyStore::new();
    request(&c, &s, 500, Outcome::Failure);
    request(&c, &s, 500, Outcome::Failure);
    assert_eq!(counts(&c, &s, 10_000).consecutive, 0);
    assert_eq!(opened(&request(&c, &s, 10_000, Outcome::Failure)), None);
    assert_eq!(counts(&c, &s, 10_000).consecutive, 1);

    // Half of the run left: one at 0.5 s, one at 5.5 s, then at 10.2 s only
    // the second is still in the window (2 in a row, not 3).
    let s = EnvoyStore::new();
    request(&c, &s, 500, Outcome::Failure);
    request(&c, &s, 5_500, Outcome::Failure);
    assert_eq!(counts(&c, &s, 10_200).consecutive, 1);
    assert_eq!(opened(&request(&c, &s, 10_200, Outcome::Failure)), None);
    assert!(opened(&request(&c, &s, 10_300, Outcome::Failure)).is_some());

    // Days apart: never.
    let s = EnvoyStore::new();
    for day in 0..5u64 {
        let r = request(&c, &s, day * 86_400_000, Outcome::Failure);
        assert_eq!(opened(&r), None, "day {day}");
    }
}

fn ratio_cfg() -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: 1_000,
        ..cfg()
    }
}

#[test]
fn ratio_exactly_at_threshold_does_not_trip_just_above_does() {
    let c = ratio_cfg(); // > 0.5 with >= 20
    let s = EnvoyStore::new();
    for i in 0..20 {
        let outcome = if i % 2 == 0 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        assert_eq!(opened(&request(&c, &s, 0, outcome)), None, "request {i}");
    }
    let w = counts(&c, &s, 0);
    assert_eq!((w.failures, w.total), (10, 20)); // exactly 0.5
    let r = request(&c, &s, 0, Outcome::Failure); // 11/21
    assert_eq!(opened(&r), Some((TripReason::Ratio, 1, 11, 21)));
}

#[test]
fn ratio_at_a_non_binary_threshold_is_exact() {
    // 3/10 == 0.3 must not count as above 0.3.
    let c = BreakerConfig {
        failure_ratio: 0.3,
        min_requests: 10,
        ..ratio_cfg()
    };
    let s = EnvoyStore::new();
    for i in 0..10 {
        let outcome = if i < 3 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        request(&c, &s, 0, outcome);
    }
    assert!(matches!(state(&s), State::Closed(_)));
    // 4/11 = 0.36 > 0.3.
    assert!(opened(&request(&c, &s, 0, Outcome::Failure)).is_some());
}

#[test]
fn below_min_requests_never_trips_on_ratio() {
    let c = ratio_cfg();
    let s = EnvoyStore::new();
    for _ in 0..19 {
        assert_eq!(opened(&request(&c, &s, 0, Outcome::Failure)), None);
    }
    assert_eq!(counts(&c, &s, 0).total, 19); // 100 % failures, but 19 < 20
    let r = request(&c, &s, 0, Outcome::Failure);
    assert_eq!(opened(&r), Some((TripReason::Ratio, 20, 20, 20)));
}

#[test]
fn ratio_is_judged_on_every_outcome_including_a_success() {
    let c = ratio_cfg();
    let s = EnvoyStore::new();
    for i in 0..19 {
        let outcome = if i % 4 == 3 {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        request(&c, &s, 0, outcome);
    }
    // 15 of 19 failed; the 20th outcome, a success, brings total to
    // min_requests with 15/20 = 0.75 > 0.5.
    let r = request(&c, &s, 0, Outcome::Success);
    assert_eq!(opened(&r), Some((TripReason::Ratio, 0, 15, 20)));
}

#[test]
fn the_window_slides_and_old_failures_age_out() {
    // 10 s window = 10 buckets of 1 s.
    let c = BreakerConfig {
        min_requests: 10,
        ..ratio_cfg()
    };
    // 9 failures at t = 0.5 s; one more at 9.999 s still sees them.
    let s = EnvoyStore::new();
    for _ in 0..9 {
        request(&c, &s, 500, Outcome::Failure);
    }
    assert_eq!(counts(&c, &s, 9_999).failures, 9);
    assert!(opened(&request(&c, &s, 9_999, Outcome::Failure)).is_some());

    // The same at 10.0 s: the bucket of t = 0 left the window.
    let s = EnvoyStore::new();
    for _ in 0..9 {
        request(&c, &s, 500, Outcome::Failure);
    }
    assert_eq!(counts(&c, &s, 10_000).failures, 0);
    assert_eq!(opened(&request(&c, &s, 10_000, Outcome::Failure)), None);
    assert_eq!(counts(&c, &s, 10_000).total, 1);
}

#[test]
fn the_window_slides_bucket_by_bucket() {
    let c = BreakerConfig {
        min_requests: 1_000,
        ..ratio_cfg()
    };
    let s = EnvoyStore::new();
    // One outcome per second for 10 s (failures at even seconds).
    for sec in 0..10u64 {
        let outcome = if sec % 2 == 0 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        request(&c, &s, sec * 1_000, outcome);
    }
    let at = |t| {
        let w = counts(&c, &s, t);
        (w.failures, w.total)
    };
    assert_eq!(at(9_999), (5, 10));
    assert_eq!(at(10_000), (4, 9)); // second 0 gone
    assert_eq!(at(11_000), (4, 8)); // second 1 gone
    assert_eq!(at(15_500), (2, 4));
    assert_eq!(at(19_999), (0, 0));
    assert_eq!(at(1_000_000), (0, 0));
    // A clock slightly behind the head counts in the head bucket.
    request(&c, &s, 8_000, Outcome::Failure);
    assert_eq!(at(9_999), (6, 11));
}

#[test]
fn a_one_second_window_has_tenth_second_buckets() {
    let c = BreakerConfig {
        window_seconds: 1,
        min_requests: 1_000,
        ..ratio_cfg()
    };
    let s = EnvoyStore::new();
    request(&c, &s, 0, Outcome::Failure);
    request(&c, &s, 500, Outcome::Failure);
    assert_eq!(counts(&c, &s, 999).failures, 2);
    assert_eq!(counts(&c, &s, 1_000).failures, 1);
    assert_eq!(counts(&c, &s, 1_500).failures, 0);
}

#[test]
fn skipped_outcomes_count_nothing_and_cost_nothing() {
    let c = cfg();
    let s = EnvoyStore::new();
    request(&c, &s, 0, Outcome::Failure);
    s.reset_calls();
    let snap = allow(&c, &s, 0);
    let r = record(&c, &s, KEY, 0, snap, Outcome::Abandoned);
    assert_eq!(r, Report::default());
    assert_eq!(s.calls(), (1, 0)); // the admit's get only
    let w = counts(&c, &s, 0);
    assert_eq!((w.failures, w.total, w.consecutive), (1, 1, 1));
}

// ---------------------------------------------------------------- open

#[test]
fn retry_after_rounds_up_and_is_never_zero() {
    assert_eq!(retry_after_secs(30_000, 0), 30);
    assert_eq!(retry_after_secs(29_001, 0), 30);
    assert_eq!(retry_after_secs(30_001, 0), 31);
    assert_eq!(retry_after_secs(1_001, 0), 2);
    assert_eq!(retry_after_secs(1_000, 0), 1);
    assert_eq!(retry_after_secs(1, 0), 1);
    assert_eq!(retry_after_secs(0, 0), 1);
    assert_eq!(retry_after_secs(5, 10), 1);
    assert_eq!(retry_after_secs(u64::MAX, 0), u32::MAX);
}

#[test]
fn open_rejects_with_retry_after_until_half_open() {
    let c = cfg();
    let s = EnvoyStore::new();
    trip(&c, &s, 10_000); // open until 40_000
    s.reset_calls();
    assert_eq!(rejected_after(&c, &s, 10_000), Some(30));
    assert_eq!(rejected_after(&c, &s, 10_999), Some(30)); // 29.001 s left
    assert_eq!(rejected_after(&c, &s, 11_000), Some(29));
    assert_eq!(rejected_after(&c, &s, 39_999), Some(1));
    assert_eq!(s.calls(), (4, 0)); // one get each, no write
    let a = admit(&c, &s, KEY, 20_000);
    assert_eq!(
        a.report.events,
        [Event::Rejected {
            retry_after_secs: 20
        }]
    );
    // At exactly 40 s it turns half-open and this request is the probe.
    let a = admit(&c, &s, KEY, 40_000);
    assert!(matches!(a.decision, Decision::Allow { probe: true, .. }));
    assert_eq!(a.report.events, [Event::HalfOpened, Event::ProbeStarted]);
    assert_eq!(
        a.report.log_lines("global (slot 0)"),
        ["breaker global (slot 0): open -> half_open reason=open_elapsed"]
    );
}

#[test]
fn outcomes_of_requests_admitted_before_the_trip_are_ignored_while_open() {
    let c = cfg();
    let s = EnvoyStore::new();
    let late = allow(&c, &s, 0);
    trip(&c, &s, 0);
    let before = s.raw(KEY);
    s.reset_calls();
    let r = record(&c, &s, KEY, 1, late, Outcome::Failure);
    assert_eq!(r.events, []);
    assert_eq!(s.raw(KEY), before);
    // Its optimistic set missed (the key moved on), then a get showed Open.
    assert_eq!(s.calls(), (1, 1));
    assert_eq!(r.cas_retries, 1);
}

// ---------------------------------------------------------------- half-open

#[test]
fn a_passing_probe_closes_and_resets_counts_and_backoff() {
    let c = cfg();
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    let p = probe(&c, &s, 30_000);
    // Fail once to build up backoff, then pass.
    let r = record(&c, &s, KEY, 30_001, p, Outcome::Failure);
    assert_eq!(
        r.events,
        [Event::Reopened {
            reopens: 1,
            open_ms: 60_000
        }]
    );
    let p = probe(&c, &s, 90_001);
    let r = record(&c, &s, KEY, 90_002, p, Outcome::Success);
    assert_eq!(r.events, [Event::Closed]);
    assert_eq!(
        r.log_lines("s"),
        ["breaker s: half_open -> closed reason=probe_passed counts=reset"]
    );
    assert_eq!(state(&s), State::default());
    // Counts were reset: two failures do not trip, the third does, and the
    // open time is back to open_seconds.
    request(&c, &s, 90_003, Outcome::Failure);
    request(&c, &s, 90_003, Outcome::Failure);
    assert!(matches!(state(&s), State::Closed(_)));
    let r = request(&c, &s, 90_003, Outcome::Failure);
    assert!(r.has(|e| matches!(
        e,
        Event::Opened {
            open_ms: 30_000,
            ..
        }
    )));
}

#[test]
fn failing_probes_back_off_up_to_the_cap() {
    let c = cfg(); // 30 s × 2, cap 300 s
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    let mut now = 30_000;
    let mut seen = Vec::new();
    for _ in 0..6 {
        let p = probe(&c, &s, now);
        let r = record(&c, &s, KEY, now, p, Outcome::Failure);
        let Some(Event::Reopened { reopens, open_ms }) = r.events.first().cloned() else {
            panic!("{r:?}")
        };
        assert_eq!(rejected_after(&c, &s, now), Some((open_ms / 1000) as u32));
        assert_eq!(rejected_after(&c, &s, now + open_ms - 1), Some(1));
        seen.push((reopens, open_ms / 1000));
        now += open_ms;
    }
    assert_eq!(
        seen,
        [(1, 60), (2, 120), (3, 240), (4, 300), (5, 300), (6, 300)]
    );
}

#[test]
fn half_open_admits_at_most_half_open_probes() {
    let c = BreakerConfig {
        half_open_probes: 2,
        ..cfg()
    };
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    let p1 = probe(&c, &s, 30_000);
    let p2 = probe(&c, &s, 30_001);
    let a = admit(&c, &s, KEY, 30_002);
    assert!(matches!(
        a.decision,
        Decision::Reject {
            retry_after_secs: 1
        }
    ));
    assert_eq!(
        a.report.events,
        [Event::Rejected {
            retry_after_secs: 1
        }]
    );
    // An abandoned probe frees its slot, without deciding anything.
    let r = record(&c, &s, KEY, 30_003, p1, Outcome::Abandoned);
    assert_eq!(r.events, []);
    assert!(matches!(state(&s), State::HalfOpen(_)));
    let p3 = probe(&c, &s, 30_004);
    assert_eq!(rejected_after(&c, &s, 30_005), Some(1));
    // Either remaining probe decides.
    let r = record(&c, &s, KEY, 30_006, p3, Outcome::Success);
    assert_eq!(r.events, [Event::Closed]);
    // p2's lease died with the half-open period; the breaker is closed, so
    // its outcome counts like any other request's.
    let r = record(&c, &s, KEY, 30_007, p2, Outcome::Failure);
    assert_eq!(r.events, []);
    let w = counts(&c, &s, 30_007);
    assert_eq!((w.failures, w.total, w.consecutive), (1, 1, 1));
}

/// The largest number of probes the configuration allows, through the
/// store: all 32 are admitted, the 33rd waits a second, and the state that
/// holds 32 leases (the codec's largest, 395 bytes) reads back the same.
#[test]
fn thirty_two_probes_are_the_most_and_their_state_reads_back() {
    let c = BreakerConfig {
        half_open_probes: 32,
        ..cfg()
    };
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    let probes: Vec<Snapshot> = (0..32).map(|k| probe(&c, &s, 30_000 + k)).collect();
    assert_eq!(rejected_after(&c, &s, 30_032), Some(1));
    let State::HalfOpen(h) = state(&s) else {
        panic!("should be half-open")
    };
    assert_eq!(h.leases.len(), 32);
    let bytes = s.raw(KEY).expect("stored");
    assert_eq!(bytes.len(), 395);
    assert_eq!(decode(&bytes), Some(State::HalfOpen(h)));
    // One passing probe closes it; the rest count as ordinary outcomes.
    let mut probes = probes.into_iter();
    let first = probes.next().expect("32 probes");
    let r = record(&c, &s, KEY, 30_040, first, Outcome::Success);
    assert_eq!(r.events, [Event::Closed]);
    assert!(matches!(state(&s), State::Closed(_)));
}

#[test]
fn a_lost_probe_lease_expires() {
    let c = cfg(); // lease = max(30 s, 30 s)
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    let lost = probe(&c, &s, 30_000); // its request vanishes
    assert_eq!(rejected_after(&c, &s, 59_999), Some(1));
    let p = probe(&c, &s, 60_000); // lease expired: slot reclaimed
                                   // The lost probe comes back late: its lease is gone, it decides nothing.
    let r = record(&c, &s, KEY, 60_001, lost, Outcome::Failure);
    assert_eq!(r.events, []);
    assert!(matches!(state(&s), State::HalfOpen(_)));
    let r = record(&c, &s, KEY, 60_002, p, Outcome::Success);
    assert_eq!(r.events, [Event::Closed]);
}

#[test]
fn a_late_probe_whose_lease_was_not_reclaimed_still_decides() {
    let c = cfg();
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    let slow = probe(&c, &s, 30_000);
    let r = record(&c, &s, KEY, 100_000, slow, Outcome::Failure);
    assert!(r.has(|e| matches!(e, Event::Reopened { .. })));
}

#[test]
fn the_lease_lasts_open_seconds_when_longer_than_30s() {
    let c = BreakerConfig {
        open_seconds: 45,
        max_open_seconds: 45,
        ..cfg()
    };
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    probe(&c, &s, 45_000);
    assert_eq!(rejected_after(&c, &s, 89_999), Some(1));
    probe(&c, &s, 90_000);
}

#[test]
fn a_probe_from_an_earlier_half_open_period_is_never_mistaken() {
    let c = cfg();
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    let old = probe(&c, &s, 30_000); // seq 0 of period 1
    let p = probe(&c, &s, 60_000); // old lease expired; seq 1
    record(&c, &s, KEY, 60_000, p, Outcome::Failure); // reopen for 60 s
    let new = probe(&c, &s, 120_000); // period 2 restarts at seq 0
    let r = record(&c, &s, KEY, 120_001, old, Outcome::Success);
    assert_eq!(r.events, []);
    let r = record(&c, &s, KEY, 120_002, new, Outcome::Success);
    assert_eq!(r.events, [Event::Closed]);
}

#[test]
fn non_probe_outcomes_in_half_open_are_ignored() {
    let c = cfg();
    let s = EnvoyStore::new();
    let early = allow(&c, &s, 0);
    trip(&c, &s, 0);
    let _p = probe(&c, &s, 30_000);
    let before = s.raw(KEY);
    let r = record(&c, &s, KEY, 30_001, early, Outcome::Success);
    assert_eq!(r.events, []);
    assert_eq!(s.raw(KEY), before);
}

#[test]
fn a_probe_recorded_after_another_closed_the_breaker_counts_normally() {
    let c = BreakerConfig {
        half_open_probes: 2,
        ..cfg()
    };
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    let p1 = probe(&c, &s, 30_000);
    let p2 = probe(&c, &s, 30_000);
    record(&c, &s, KEY, 30_001, p1, Outcome::Success);
    let r = record(&c, &s, KEY, 30_002, p2, Outcome::Failure);
    assert_eq!(r.events, []);
    let w = counts(&c, &s, 30_002);
    assert_eq!((w.failures, w.total, w.consecutive), (1, 1, 1));
}

// ---------------------------------------------------------------- cost

#[test]
fn hostcalls_per_request_in_each_state() {
    let c = cfg();
    let s = EnvoyStore::new();
    let cost = |f: &dyn Fn()| {
        s.reset_calls();
        f();
        s.calls()
    };
    // Closed, first request ever (key created): 1 get + 1 set.
    assert_eq!(cost(&|| drop(request(&c, &s, 0, Outcome::Success))), (1, 1));
    // Closed pass and closed fail: 1 get + 1 set.
    assert_eq!(cost(&|| drop(request(&c, &s, 0, Outcome::Success))), (1, 1));
    assert_eq!(cost(&|| drop(request(&c, &s, 0, Outcome::Failure))), (1, 1));
    assert_eq!(cost(&|| drop(request(&c, &s, 0, Outcome::Failure))), (1, 1));
    // The tripping request too.
    assert_eq!(cost(&|| drop(request(&c, &s, 0, Outcome::Failure))), (1, 1));
    assert!(matches!(state(&s), State::Open { .. }));
    // Open: 1 get, rejected.
    assert_eq!(
        cost(&|| assert!(rejected_after(&c, &s, 1).is_some())),
        (1, 0)
    );
    // Half-open probe: admit 1 get + 1 set, record 1 get + 1 set.
    s.reset_calls();
    let p = probe(&c, &s, 30_000);
    assert_eq!(s.calls(), (1, 1));
    // Half-open with every slot taken: 1 get.
    assert_eq!(
        cost(&|| assert!(rejected_after(&c, &s, 30_000).is_some())),
        (1, 0)
    );
    s.reset_calls();
    record(&c, &s, KEY, 30_001, p, Outcome::Success);
    assert_eq!(s.calls(), (1, 1));
}

// ---------------------------------------------------------------- storage

#[test]
fn garbage_and_unknown_versions_read_as_fresh_and_are_overwritten() {
    let c = cfg();
    let mut v2 = encode(&State::Open {
        until_ms: u64::MAX,
        reopens: 0,
    });
    v2[0] = FORMAT_VERSION + 1;
    for raw in [
        b"garbage".to_vec(),
        v2,
        vec![FORMAT_VERSION],
        vec![0xff; 1000],
    ] {
        let s = EnvoyStore::new();
        s.put_raw(KEY, &raw);
        let a = admit(&c, &s, KEY, 0);
        assert!(a.report.discarded_invalid_state);
        let Decision::Allow {
            probe: false,
            snapshot,
        } = a.decision
        else {
            panic!("{:?}", a.decision)
        };
        let r = record(&c, &s, KEY, 0, snapshot, Outcome::Failure);
        assert_eq!(r.cas_retries, 0);
        let w = counts(&c, &s, 0);
        assert_eq!((w.failures, w.total), (1, 1));
    }
}

#[test]
fn an_empty_value_is_a_fresh_breaker() {
    let c = cfg();
    let s = EnvoyStore::new();
    s.put_raw(KEY, b"");
    let a = admit(&c, &s, KEY, 0);
    assert!(!a.report.discarded_invalid_state);
    request(&c, &s, 0, Outcome::Success);
    assert_eq!(counts(&c, &s, 0).total, 1);
}

#[test]
fn an_existing_key_reported_without_value_is_judged_by_its_cas() {
    // The SDK may hand back an empty value as (None, Some(cas)).
    struct NoEmpty<'a>(&'a EnvoyStore);
    impl Store for NoEmpty<'_> {
        fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
            let (v, cas) = self.0.get(key)?;
            Ok((v.filter(|v| !v.is_empty()), cas))
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
            self.0.set(key, value, cas)
        }
    }
    let c = cfg();
    let inner = EnvoyStore::new();
    inner.put_raw(KEY, b"");
    let s = NoEmpty(&inner);
    let Decision::Allow { snapshot, .. } = admit(&c, &s, KEY, 0).decision else {
        panic!()
    };
    let r = record(&c, &s, KEY, 0, snapshot, Outcome::Failure);
    assert_eq!(r.cas_retries, 0); // the real CAS, not CREATE_CAS
    assert_eq!(counts(&c, &inner, 0).total, 1);
}

#[test]
fn n_cas_mismatches_then_success() {
    let c = cfg();
    for n in 0..=MAX_CAS_RETRIES {
        let s = EnvoyStore::new();
        request(&c, &s, 0, Outcome::Success);
        let snap = allow(&c, &s, 0);
        s.inject_mismatches.set(n);
        s.reset_calls();
        let r = record(&c, &s, KEY, 0, snap, Outcome::Failure);
        assert_eq!(r.cas_retries, n);
        assert!(!r.cas_exhausted);
        assert_eq!(s.calls(), (n, n + 1));
        let w = counts(&c, &s, 0);
        assert_eq!((w.failures, w.total), (1, 2), "n = {n}");
    }
}

#[test]
fn endless_cas_mismatches_exhaust_without_panic_or_update() {
    let c = cfg();
    let s = EnvoyStore::new();
    request(&c, &s, 0, Outcome::Success);
    let before = s.raw(KEY);
    s.always_mismatch.set(true);
    let snap = allow(&c, &s, 0);
    s.reset_calls();
    let r = record(&c, &s, KEY, 0, snap, Outcome::Failure);
    assert!(r.cas_exhausted);
    assert_eq!(r.cas_retries, MAX_CAS_RETRIES);
    assert_eq!(s.calls(), (MAX_CAS_RETRIES, MAX_CAS_RETRIES + 1));
    assert_eq!(s.raw(KEY), before);
    // Admission that needs a write (half-open) serves the request instead.
    s.always_mismatch.set(false);
    trip(&c, &s, 0);
    s.always_mismatch.set(true);
    let a = admit(&c, &s, KEY, 30_000);
    assert!(a.report.cas_exhausted);
    assert!(matches!(a.decision, Decision::Allow { probe: false, .. }));
    assert_eq!(a.report.events, []); // nothing landed, nothing reported
}

#[test]
fn host_errors_skip_the_update_and_serve_the_request() {
    let c = cfg();
    let s = EnvoyStore::new();
    request(&c, &s, 0, Outcome::Failure);
    let before = s.raw(KEY);
    // Get fails: allowed, unknown snapshot.
    s.fail_gets.set(true);
    let a = admit(&c, &s, KEY, 0);
    assert!(a.report.store_error.is_some());
    let Decision::Allow {
        probe: false,
        snapshot,
    } = a.decision
    else {
        panic!()
    };
    assert!(snapshot.state().is_none());
    let r = record(&c, &s, KEY, 0, snapshot, Outcome::Failure);
    assert_eq!(r.store_error, Some(StoreError::new("InternalFailure")));
    assert_eq!(s.raw(KEY), before);
    // Set fails: skipped, reported, no retry.
    s.fail_gets.set(false);
    s.fail_sets.set(true);
    let snap = allow(&c, &s, 0);
    s.reset_calls();
    let r = record(&c, &s, KEY, 0, snap, Outcome::Failure);
    assert!(r.store_error.is_some());
    assert!(!r.cas_exhausted);
    assert_eq!(s.calls(), (0, 1));
    assert_eq!(s.raw(KEY), before);
    // Once the host recovers, the next failure is counted: a failed write
    // delays a trip by one request but never loses the breaker's state.
    s.fail_sets.set(false);
    request(&c, &s, 0, Outcome::Failure);
    assert_eq!(counts(&c, &s, 0).consecutive, 2);
}

// ---------------------------------------------------------------- races

/// A worker stepping one transaction by hand, one hostcall per `step`.
enum Worker<'a> {
    Admit(Txn<AdmitOp<'a>>, Step<state::Verdict>),
    Record(Txn<RecordOp<'a>>, Step<()>),
}

impl<'a> Worker<'a> {
    fn admit(cfg: &'a BreakerConfig, now_ms: u64) -> Self {
        let mut t = Txn::new(AdmitOp { cfg, now_ms });
        let s = t.start(None);
        Worker::Admit(t, s)
    }

    fn record(cfg: &'a BreakerConfig, now_ms: u64, snap: Snapshot, outcome: Outcome) -> Self {
        let mut t = Txn::new(RecordOp {
            cfg,
            now_ms,
            lease: snap.lease,
            outcome,
        });
        let s = t.start(snap.read);
        Worker::Record(t, s)
    }

    /// Performs the pending hostcall.
    fn step(self, store: &EnvoyStore) -> Self {
        fn go<O: txn::Op>(t: &mut Txn<O>, s: Step<O::Out>, store: &EnvoyStore) -> Step<O::Out> {
            match s {
                Step::Get => t.on_get(store.get(KEY)),
                Step::Set { value, cas } => t.on_set(store.set(KEY, &value, cas)),
                done => done,
            }
        }
        match self {
            Worker::Admit(mut t, s) => {
                let s = go(&mut t, s, store);
                Worker::Admit(t, s)
            }
            Worker::Record(mut t, s) => {
                let s = go(&mut t, s, store);
                Worker::Record(t, s)
            }
        }
    }

    fn is_done(&self) -> bool {
        matches!(
            self,
            Worker::Admit(_, Step::Done(_)) | Worker::Record(_, Step::Done(_))
        )
    }

    fn admission(self) -> Admission {
        match self {
            Worker::Admit(_, Step::Done(f)) => admission(f),
            _ => panic!("not a finished admission"),
        }
    }

    fn report(self) -> Report {
        match self {
            Worker::Record(_, Step::Done(f)) => f.report,
            _ => panic!("not a finished record"),
        }
    }
}

fn allowed(a: Admission) -> Snapshot {
    match a.decision {
        Decision::Allow { snapshot, .. } => snapshot,
        d => panic!("{d:?}"),
    }
}

#[test]
fn two_workers_alternating_get_and_set_lose_nothing() {
    let c = ratio_cfg();
    let s = EnvoyStore::new();
    request(&c, &s, 0, Outcome::Success);
    // Both admitted from the same state; both get before either sets.
    let a = allowed(Worker::admit(&c, 0).step(&s).admission());
    let b = allowed(Worker::admit(&c, 0).step(&s).admission());
    let wa = Worker::record(&c, 0, a, Outcome::Failure); // pending: optimistic set
    let wb = Worker::record(&c, 0, b, Outcome::Success);
    let wa = wa.step(&s); // lands
    let wb = wb.step(&s); // mismatch -> pending get
    assert!(wa.is_done() && !wb.is_done());
    let wb = wb.step(&s).step(&s); // get, set
    let (ra, rb) = (wa.report(), wb.report());
    assert_eq!((ra.cas_retries, rb.cas_retries), (0, 1));
    let w = counts(&c, &s, 0);
    assert_eq!((w.failures, w.total), (1, 3));
}

#[test]
fn two_workers_creating_the_same_key_lose_nothing() {
    let c = ratio_cfg();
    // Whatever Envoy's CAS counter stands at (except handing out exactly
    // CREATE_CAS to the creator, the documented 1-in-2^32 hole).
    for counter in [0, 1_000, u32::MAX - 3] {
        let s = EnvoyStore::with_cas_counter(counter);
        let a = allowed(Worker::admit(&c, 0).step(&s).admission());
        let b = allowed(Worker::admit(&c, 0).step(&s).admission());
        assert_eq!(s.raw(KEY), None); // both saw the key missing
        let ra = Worker::record(&c, 0, a, Outcome::Failure).step(&s).report();
        let rb = Worker::record(&c, 0, b, Outcome::Failure);
        let rb = rb.step(&s); // CREATE_CAS on an existing key: mismatch
        let rb = rb.step(&s).step(&s).report();
        assert_eq!((ra.cas_retries, rb.cas_retries), (0, 1));
        let w = counts(&c, &s, 0);
        assert_eq!(
            (w.failures, w.total, w.consecutive),
            (2, 2, 2),
            "counter {counter}"
        );
    }
}

#[test]
fn an_unconditional_first_write_would_have_lost_an_update() {
    // The control experiment for the test above: what CREATE_CAS prevents.
    let s = EnvoyStore::new();
    let c = ratio_cfg();
    let a = allowed(Worker::admit(&c, 0).step(&s).admission());
    let b = allowed(Worker::admit(&c, 0).step(&s).admission());
    for snap in [a, b] {
        let plan = state::plan_record(&c, snap.state().unwrap(), 0, None, Outcome::Failure);
        s.set(KEY, &encode(&plan.write.unwrap()), None).unwrap();
    }
    assert_eq!(counts(&c, &s, 0).total, 1);
}

#[test]
fn only_the_write_that_lands_reports_the_trip() {
    let c = cfg();
    let s = EnvoyStore::new();
    request(&c, &s, 0, Outcome::Failure);
    request(&c, &s, 0, Outcome::Failure);
    let a = allowed(Worker::admit(&c, 0).step(&s).admission());
    let b = allowed(Worker::admit(&c, 0).step(&s).admission());
    // Both would trip the breaker from what they read.
    let ra = Worker::record(&c, 0, a, Outcome::Failure).step(&s).report();
    let rb = Worker::record(&c, 0, b, Outcome::Failure)
        .step(&s)
        .step(&s)
        .report();
    assert!(opened(&ra).is_some());
    assert_eq!(rb.events, []); // it re-read an open breaker
    assert_eq!(rb.cas_retries, 1);
}

#[test]
fn two_workers_racing_for_one_probe_slot_get_one() {
    let c = cfg();
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    let wa = Worker::admit(&c, 30_000).step(&s); // get: open, elapsed
    let wb = Worker::admit(&c, 30_000).step(&s);
    let wa = wa.step(&s); // set half-open + lease: lands
    let wb = wb.step(&s).step(&s); // mismatch, get: half-open full
    let (a, b) = (wa.admission(), wb.admission());
    assert!(matches!(a.decision, Decision::Allow { probe: true, .. }));
    assert!(matches!(
        b.decision,
        Decision::Reject {
            retry_after_secs: 1
        }
    ));
    assert_eq!(a.report.events, [Event::HalfOpened, Event::ProbeStarted]);
    assert_eq!(
        b.report.events,
        [Event::Rejected {
            retry_after_secs: 1
        }]
    );
}

// ---------------------------------------------------------------- properties

/// A simulated worker running requests one after another, each an admit
/// then a record, one hostcall per scheduling step.
struct Sim<'a> {
    cfg: &'a BreakerConfig,
    now_ms: u64,
    outcomes: Vec<Outcome>,
    next: usize,
    current: Option<(Worker<'a>, Outcome)>,
    records: Vec<(Outcome, Report)>,
    admissions: Vec<Admission>,
    /// Admit only, never record (to watch probe slots being taken).
    admit_only: bool,
}

impl<'a> Sim<'a> {
    fn new(cfg: &'a BreakerConfig, now_ms: u64, outcomes: Vec<Outcome>) -> Self {
        Sim {
            cfg,
            now_ms,
            outcomes,
            next: 0,
            current: None,
            records: Vec::new(),
            admissions: Vec::new(),
            admit_only: false,
        }
    }

    fn finished(&self) -> bool {
        self.current.is_none() && self.next == self.outcomes.len()
    }

    /// Performs one hostcall (and whatever bookkeeping follows it).
    fn step(&mut self, store: &EnvoyStore) {
        let (w, outcome) = match self.current.take() {
            Some(c) => c,
            None => {
                let Some(&o) = self.outcomes.get(self.next) else {
                    return;
                };
                self.next += 1;
                (Worker::admit(self.cfg, self.now_ms), o)
            }
        };
        let w = w.step(store);
        if !w.is_done() {
            self.current = Some((w, outcome));
            return;
        }
        match w {
            Worker::Admit(..) => {
                let a = w.admission();
                match &a.decision {
                    Decision::Allow { snapshot, .. } if !self.admit_only => {
                        if outcome == Outcome::Abandoned && !snapshot.is_probe() {
                            self.records.push((outcome, Report::default()));
                        } else {
                            let rec =
                                Worker::record(self.cfg, self.now_ms, snapshot.clone(), outcome);
                            self.current = Some((rec, outcome));
                        }
                    }
                    _ => {}
                }
                self.admissions.push(a);
            }
            Worker::Record(..) => self.records.push((outcome, w.report())),
        }
        // A record may finish without a hostcall (nothing to write).
        if let Some((w, o)) = self.current.take() {
            if w.is_done() {
                self.records.push((o, w.report()));
            } else {
                self.current = Some((w, o));
            }
        }
    }
}

/// Runs the simulations in the order `schedule` picks (indices modulo the
/// number of unfinished workers), then to completion.
fn interleave(sims: &mut [Sim<'_>], schedule: &[usize], store: &EnvoyStore) {
    let mut picks = schedule.iter();
    loop {
        let live: Vec<usize> = (0..sims.len()).filter(|&i| !sims[i].finished()).collect();
        if live.is_empty() {
            return;
        }
        let i = match picks.next() {
            Some(p) => live[p % live.len()],
            None => live[0],
        };
        sims[i].step(store);
    }
}

fn outcome_strategy() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Success),
        4 => Just(Outcome::Failure),
        1 => Just(Outcome::Abandoned),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any interleaving of any number of workers: the window holds exactly
    /// the outcomes whose record reported success (not exhausted), and
    /// nothing is ever lost silently.
    #[test]
    fn counts_equal_recorded_outcomes_under_any_interleaving(
        workers in proptest::collection::vec(proptest::collection::vec(outcome_strategy(), 0..12), 1..6),
        schedule in proptest::collection::vec(any::<usize>(), 0..400),
        fresh_key in any::<bool>(),
    ) {
        let c = BreakerConfig {
            consecutive_failures: u32::MAX,
            min_requests: u32::MAX,
            ..cfg()
        };
        let store = EnvoyStore::new();
        if !fresh_key {
            request(&c, &store, 0, Outcome::Success);
        }
        let base = if fresh_key { 0 } else { 1 };
        let mut sims: Vec<Sim<'_>> = workers.into_iter().map(|o| Sim::new(&c, 0, o)).collect();
        interleave(&mut sims, &schedule, &store);
        let (mut failures, mut total, mut exhausted) = (0u64, 0u64, 0u64);
        for sim in &sims {
            prop_assert_eq!(sim.records.len(), sim.outcomes.len());
            for (o, r) in &sim.records {
                prop_assert!(r.store_error.is_none());
                prop_assert!(r.events.is_empty());
                if r.cas_exhausted {
                    exhausted += 1;
                    continue;
                }
                match o {
                    Outcome::Success => total += 1,
                    Outcome::Failure => { total += 1; failures += 1 }
                    Outcome::Abandoned => {}
                }
            }
        }
        let w = counts(&c, &store, 0);
        prop_assert_eq!(w.total, total + base);
        prop_assert_eq!(w.failures, failures);
        // An adversarial schedule can starve a worker past its retries;
        // that is reported (and then, and only then, the outcome is absent).
        prop_assert!(exhausted == 0 || sims.len() > 1);
    }

    /// However the failures interleave, a trip is reported exactly once,
    /// by the write that saw exactly `consecutive_failures` in a row.
    #[test]
    fn exactly_one_open_transition_per_trip(
        k in 1u32..6,
        per_worker in proptest::collection::vec(1usize..8, 2..5),
        schedule in proptest::collection::vec(any::<usize>(), 0..300),
    ) {
        let c = BreakerConfig { consecutive_failures: k, min_requests: u32::MAX, ..cfg() };
        let store = EnvoyStore::new();
        let mut sims: Vec<Sim<'_>> = per_worker
            .iter()
            .map(|&n| Sim::new(&c, 0, vec![Outcome::Failure; n]))
            .collect();
        interleave(&mut sims, &schedule, &store);
        let all: usize = per_worker.iter().sum();
        let opened: Vec<_> = sims.iter().flat_map(|s| &s.records).filter_map(|(_, r)| opened(r)).collect();
        if all >= k as usize {
            prop_assert_eq!(opened.len(), 1);
            prop_assert_eq!(opened[0].1, k);
            let is_open = matches!(state(&store), State::Open { .. });
            prop_assert!(is_open);
        } else {
            prop_assert!(opened.is_empty());
        }
    }

    /// Racing admissions into a half-open breaker hand out exactly
    /// `half_open_probes` slots (no more, and none lost to a race), every
    /// slot handed out is in the state, and one worker reports half-open.
    #[test]
    fn probe_slots_are_never_oversubscribed(
        probes in 1u32..4,
        per_worker in proptest::collection::vec(1usize..4, 1..6),
        schedule in proptest::collection::vec(any::<usize>(), 0..200),
    ) {
        let c = BreakerConfig { half_open_probes: probes, ..cfg() };
        let store = EnvoyStore::new();
        trip(&c, &store, 0);
        let mut sims: Vec<Sim<'_>> = per_worker
            .iter()
            .map(|&n| Sim { admit_only: true, ..Sim::new(&c, 30_000, vec![Outcome::Success; n]) })
            .collect();
        interleave(&mut sims, &schedule, &store);
        let admissions: Vec<&Admission> = sims.iter().flat_map(|s| &s.admissions).collect();
        let granted = admissions
            .iter()
            .filter(|a| matches!(a.decision, Decision::Allow { probe: true, .. }))
            .count();
        let attempts: usize = per_worker.iter().sum();
        prop_assert_eq!(granted, (probes as usize).min(attempts));
        prop_assert!(admissions.iter().all(|a| !a.report.cas_exhausted));
        let half_opened = admissions.iter().filter(|a| a.report.has(|e| *e == Event::HalfOpened)).count();
        prop_assert_eq!(half_opened, 1);
        match state(&store) {
            State::HalfOpen(h) => prop_assert_eq!(h.leases.len(), granted),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}

#[test]
fn concurrent_probe_admissions_never_exceed_the_limit() {
    // Deterministic companion of the property above, without releases:
    // every admission's get happens before any set.
    for probes in 1..=4u32 {
        let c = BreakerConfig {
            half_open_probes: probes,
            ..cfg()
        };
        let s = EnvoyStore::new();
        trip(&c, &s, 0);
        let mut ws: Vec<Worker<'_>> = (0..6).map(|_| Worker::admit(&c, 30_000).step(&s)).collect();
        let mut done = Vec::new();
        while !ws.is_empty() {
            let w = ws.remove(0).step(&s);
            if w.is_done() {
                done.push(w.admission());
            } else {
                ws.push(w);
            }
        }
        let granted = done
            .iter()
            .filter(|a| matches!(a.decision, Decision::Allow { probe: true, .. }))
            .count();
        assert_eq!(granted, probes as usize);
        let halfopened = done
            .iter()
            .filter(|a| a.report.has(|e| *e == Event::HalfOpened))
            .count();
        assert_eq!(halfopened, 1);
        let State::HalfOpen(h) = state(&s) else {
            panic!()
        };
        assert_eq!(h.leases.len(), probes as usize);
    }
}

// ---------------------------------------------------------- wrong clocks

/// A year, far beyond any window, open period or lease.
const YEAR_MS: u64 = 365 * 24 * 3_600_000;

/// A trip written by a worker whose clock ran far ahead must not keep the
/// breaker open (and hand out a Retry-After of years) for the others: an
/// end further ahead than the longest open period, plus a probe lease of
/// slack, counts as elapsed. At that bound exactly it still holds, so a
/// worker a moment behind the one that reopened at the cap still waits.
#[test]
fn an_open_period_ending_beyond_the_longest_possible_counts_as_elapsed() {
    let c = cfg(); // open 30 s, at most 300 s; lease 30 s
    let now = 1_000_000;
    let bound = c.open_duration_ms(u32::MAX) + c.probe_lease_ms();
    assert_eq!(bound, 330_000);
    let s = EnvoyStore::new();
    trip(&c, &s, now + bound - 30_000); // until now + 330 s
    assert_eq!(rejected_after(&c, &s, now), Some(330));
    let s = EnvoyStore::new();
    trip(&c, &s, now + bound - 30_000 + 1); // until now + 330.001 s
    probe(&c, &s, now);
    // Opened for the whole cap by a worker 1 ms ahead: still open here.
    let c = BreakerConfig {
        open_seconds: 300,
        ..cfg()
    };
    let s = EnvoyStore::new();
    trip(&c, &s, now + 1);
    assert_eq!(rejected_after(&c, &s, now), Some(301));
    let s = EnvoyStore::new();
    trip(&c, &s, now + YEAR_MS);
    probe(&c, &s, now);
}

/// The window's head written by a clock a whole window or more ahead would
/// swallow every later outcome into one bucket that never ages out; the
/// window starts again instead. Less than a window ahead, later outcomes
/// still count in the head bucket (a clock slightly behind).
#[test]
fn a_window_written_by_a_clock_far_ahead_starts_again() {
    let c = BreakerConfig {
        min_requests: 1_000,
        ..ratio_cfg()
    };
    let bucket = c.bucket_ms();
    let now = 1_000_000;
    let ahead = (WINDOW_BUCKETS as u64 - 1) * bucket;
    let s = EnvoyStore::new();
    request(&c, &s, now + ahead, Outcome::Failure);
    request(&c, &s, now, Outcome::Failure);
    assert_eq!(counts(&c, &s, now + ahead).failures, 2, "kept");

    let s = EnvoyStore::new();
    request(&c, &s, now + ahead + bucket, Outcome::Failure);
    request(&c, &s, now, Outcome::Failure);
    assert_eq!(counts(&c, &s, now).failures, 1, "started again at now");
    // And it slides from there: the failure at `now` ages out.
    assert_eq!(
        counts(&c, &s, now + WINDOW_BUCKETS as u64 * bucket).failures,
        0
    );
}

/// A probe lease taken by a clock far ahead must not hold its slot until
/// that time comes (every request would get `Retry-After: 1` meanwhile): a
/// lease is alive only within its length of now, either way.
#[test]
fn a_probe_lease_from_a_clock_far_ahead_frees_its_slot() {
    let c = cfg(); // one probe, lease 30 s
    let lease = c.probe_lease_ms();
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    probe(&c, &s, 30_000 + lease - 1);
    assert_eq!(
        rejected_after(&c, &s, 30_000),
        Some(1),
        "within a lease of now"
    );
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    probe(&c, &s, 30_000 + lease);
    probe(&c, &s, 30_000);
    let s = EnvoyStore::new();
    trip(&c, &s, 0);
    probe(&c, &s, YEAR_MS);
    probe(&c, &s, 30_000);
}
