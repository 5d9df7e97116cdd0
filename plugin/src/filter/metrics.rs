//! The metrics the filter reports, by name. Defined in `on_configure`;
//! Envoy files them in its `wasmcustom` stats namespace
//! (`wasmcustom.json_sanitizer...` in `/stats`), which its Prometheus
//! endpoint strips along with the `envoy_` prefix (`json_sanitizer_...`).
//!
//! With per-route rules, each policy (the top level, `default`, and every
//! rule) also has its own few [`RuleCounter`]s, so that a dashboard can tell
//! the search endpoint's refusals from the bulk import's.

use crate::policy::rules::{metric_label, RULE_METRICS_WORD};
use crate::violation::ViolationKind;

/// One counter. Per-kind counters carry their [`ViolationKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Requests whose body the filter set out to inspect.
    RequestsInspected,
    /// Inspected requests that passed.
    RequestsPassed,
    /// Requests refused (any reason, breaker included).
    RequestsRejected,
    /// Requests refused, by reason.
    Rejected(ViolationKind),
    /// Requests let through without inspection (rule skip, no body,
    /// non-JSON content type, encoded or unreadable body passed).
    RequestsSkipped,
    /// Body bytes inspected, as sent (compressed, for a decoded body).
    BytesInspected,
    /// Requests whose body was decoded to be inspected (`on_encoded_body:
    /// inspect`).
    RequestsDecoded,
    /// Bytes those bodies decoded to: with `bytes_inspected`, the ratio a
    /// dashboard watches for bombs.
    BytesDecoded,
    /// Requests that would have been refused: in `report` mode, or for a
    /// `json.report_only` kind.
    WouldReject,
    /// The same, by reason.
    WouldRejectKind(ViolationKind),
    /// Breaker: closed → open.
    BreakerOpened,
    /// Breaker: half-open → closed.
    BreakerClosed,
    /// Breaker: half-open → open again.
    BreakerReopened,
    /// Breaker: requests shed with 503.
    BreakerRejected,
    /// Breaker: half-open probes admitted.
    BreakerProbes,
    /// Breaker: compare-and-swap conflicts retried.
    BreakerCasRetries,
    /// Breaker: updates skipped after too many conflicts.
    BreakerCasExhausted,
}

const FIXED: [Metric; 15] = [
    Metric::RequestsInspected,
    Metric::RequestsPassed,
    Metric::RequestsRejected,
    Metric::RequestsSkipped,
    Metric::BytesInspected,
    Metric::RequestsDecoded,
    Metric::BytesDecoded,
    Metric::WouldReject,
    Metric::BreakerOpened,
    Metric::BreakerClosed,
    Metric::BreakerReopened,
    Metric::BreakerRejected,
    Metric::BreakerProbes,
    Metric::BreakerCasRetries,
    Metric::BreakerCasExhausted,
];

/// Number of distinct counters.
pub const COUNT: usize = FIXED.len() + 2 * ViolationKind::ALL.len();

impl Metric {
    /// Every counter, in a fixed order (the index of [`Metric::index`]).
    pub fn all() -> impl Iterator<Item = Metric> {
        FIXED
            .into_iter()
            .chain(ViolationKind::ALL.into_iter().map(Metric::Rejected))
            .chain(ViolationKind::ALL.into_iter().map(Metric::WouldRejectKind))
    }

    /// Dense index in `0..COUNT`, for a table of metric ids.
    pub fn index(self) -> usize {
        let kind = |k: ViolationKind| ViolationKind::ALL.iter().position(|x| *x == k).unwrap_or(0);
        match self {
            Metric::Rejected(k) => FIXED.len() + kind(k),
            Metric::WouldRejectKind(k) => FIXED.len() + ViolationKind::ALL.len() + kind(k),
            fixed => FIXED.iter().position(|m| *m == fixed).unwrap_or(0),
        }
    }

    /// The full metric name under `prefix`, e.g.
    /// `json_sanitizer.rejected.too_deep`.
    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}.{}", self.tail())
    }

    /// The name after the prefix, e.g. `rejected.too_deep` (per-rule
    /// counters put the rule between the two).
    fn tail(self) -> String {
        match self {
            Metric::RequestsInspected => "requests_inspected".to_string(),
            Metric::RequestsPassed => "requests_passed".to_string(),
            Metric::RequestsRejected => "requests_rejected".to_string(),
            Metric::Rejected(k) => format!("rejected.{k}"),
            Metric::RequestsSkipped => "requests_skipped".to_string(),
            Metric::BytesInspected => "bytes_inspected".to_string(),
            Metric::RequestsDecoded => "requests_decoded".to_string(),
            Metric::BytesDecoded => "bytes_decoded".to_string(),
            Metric::WouldReject => "report_only.would_reject".to_string(),
            Metric::WouldRejectKind(k) => format!("report_only.would_reject.{k}"),
            Metric::BreakerOpened => "breaker.opened".to_string(),
            Metric::BreakerClosed => "breaker.closed".to_string(),
            Metric::BreakerReopened => "breaker.reopened".to_string(),
            Metric::BreakerRejected => "breaker.rejected".to_string(),
            Metric::BreakerProbes => "breaker.probes".to_string(),
            Metric::BreakerCasRetries => "breaker.cas_retries".to_string(),
            Metric::BreakerCasExhausted => "breaker.cas_exhausted".to_string(),
        }
    }
}

/// A per-policy counter (`json_sanitizer.rule.<name>.<counter>`), kept only
/// when the configuration has rules: without them they would repeat the
/// totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleCounter {
    /// The policy's requests whose body was inspected.
    Inspected,
    /// Of those, the ones that passed.
    Passed,
    /// The policy's requests refused (any reason, breaker included).
    Rejected,
    /// The policy's requests let through uninspected (all of a `skip`
    /// rule's that are not refused for their path; others without a body,
    /// of a content type passed, or with an encoded or unreadable body
    /// passed).
    Skipped,
    /// The policy's requests that would have been refused (`report` mode,
    /// or a `json.report_only` kind).
    WouldReject,
}

impl RuleCounter {
    /// Every per-policy counter, in a fixed order (see [`RuleCounter::slot`]).
    pub const ALL: [RuleCounter; 5] = [
        Self::Inspected,
        Self::Passed,
        Self::Rejected,
        Self::Skipped,
        Self::WouldReject,
    ];

    /// The total this counter is the policy's share of.
    pub const fn total(self) -> Metric {
        match self {
            Self::Inspected => Metric::RequestsInspected,
            Self::Passed => Metric::RequestsPassed,
            Self::Rejected => Metric::RequestsRejected,
            Self::Skipped => Metric::RequestsSkipped,
            Self::WouldReject => Metric::WouldReject,
        }
    }

    /// Dense index of this counter of policy `policy` (its index in
    /// `Config::policies`), for a table of metric ids.
    pub const fn slot(self, policy: usize) -> usize {
        policy * Self::ALL.len() + self as usize
    }

    /// The full name under `prefix` for the policy named `policy`, e.g.
    /// `json_sanitizer.rule.search.requests_rejected`.
    pub fn name(self, prefix: &str, policy: &str) -> String {
        format!(
            "{prefix}.{RULE_METRICS_WORD}.{}.{}",
            metric_label(policy),
            self.total().tail()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::config::DEFAULT_METRICS_PREFIX as DEFAULT_PREFIX;
    use std::collections::HashSet;

    #[test]
    fn indexes_are_dense_and_names_unique() {
        let all: Vec<Metric> = Metric::all().collect();
        assert_eq!(all.len(), COUNT);
        let indexes: HashSet<usize> = all.iter().map(|m| m.index()).collect();
        assert_eq!(indexes, (0..COUNT).collect());
        let names: HashSet<String> = all.iter().map(|m| m.name(DEFAULT_PREFIX)).collect();
        assert_eq!(names.len(), COUNT);
        assert!(names.contains("json_sanitizer.rejected.too_deep"));
        assert!(names.contains("json_sanitizer.report_only.would_reject.duplicate_key"));
        assert!(names.contains("json_sanitizer.breaker.cas_exhausted"));
        assert!(names.contains("json_sanitizer.bytes_decoded"));
    }

    #[test]
    fn rule_counters_are_dense_per_policy_and_named_after_the_rule() {
        let slots: HashSet<usize> = (0..3)
            .flat_map(|p| RuleCounter::ALL.map(|c| c.slot(p)))
            .collect();
        assert_eq!(slots, (0..3 * RuleCounter::ALL.len()).collect());
        let names: Vec<String> = RuleCounter::ALL
            .map(|c| c.name(DEFAULT_PREFIX, "bulk.import-v2"))
            .to_vec();
        assert_eq!(
            names,
            [
                "json_sanitizer.rule.bulk_import_v2.requests_inspected",
                "json_sanitizer.rule.bulk_import_v2.requests_passed",
                "json_sanitizer.rule.bulk_import_v2.requests_rejected",
                "json_sanitizer.rule.bulk_import_v2.requests_skipped",
                "json_sanitizer.rule.bulk_import_v2.report_only.would_reject",
            ]
        );
    }
}
