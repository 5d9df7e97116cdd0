//! The `breaker` section of the plugin configuration: what the operator asked
//! for, validated once in `on_configure` so the per-request code can trust it.

use serde::{Deserialize, Deserializer};

use crate::policy::error::ConfigError;
use crate::violation::ViolationKind;

/// The `counts` shorthand for every JSON and size violation, and bodies that
/// do not decode (the kinds for which [`ViolationKind::is_body_violation`]
/// holds). It leaves out the
/// header-level refusals (media type, encoding) and unreadable bodies, which
/// say more about the client's or the proxy's setup than about an attack.
pub const ALL_JSON_VIOLATIONS: &str = "all_json_violations";

/// Why `kind` may not be named in `counts`, if it may not: every kind the
/// filter refuses a request for counts, except the breaker's own 503 and
/// `ambiguous_path` and `ambiguous_header` (refused before the request has a
/// rule, so before any breaker is asked: named alone, either would make a
/// breaker that never opens).
fn uncountable(kind: ViolationKind) -> Option<&'static str> {
    match kind {
        ViolationKind::BreakerOpen => Some("the breaker's own refusal would feed on itself"),
        ViolationKind::AmbiguousPath => Some(
            "an ambiguous path is refused before a rule and its breaker are chosen, so it never counts",
        ),
        ViolationKind::AmbiguousHeader => Some(
            "an ambiguous header is refused before a rule and its breaker are chosen, so it never counts",
        ),
        _ => None,
    }
}

/// Upper bound of `max_keys`: shared data holds one small value per slot and
/// is never shrunk (there is no delete), so its size must stay bounded.
pub const MAX_KEYS_LIMIT: u32 = 65_536;

/// Upper bound of `half_open_probes`: every probe in flight holds a lease in
/// the shared value, which is rewritten on every probe, so it must stay small.
pub const MAX_HALF_OPEN_PROBES: u32 = 32;

/// Upper bound of `window_seconds` (one hour): longer windows make a breaker
/// that reacts to stale history.
pub const MAX_WINDOW_SECONDS: u32 = 3_600;

/// Upper bound of `open_seconds` and `max_open_seconds` (one day): a longer
/// outage is a configuration mistake, not a breaker.
pub const MAX_OPEN_SECONDS: u32 = 86_400;

/// What one breaker guards: the key its state is kept under.
///
/// Written in JSON as `"global"`, `"route"`, `"source_ip"` or
/// `{"header": "x-api-key"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One breaker for the whole plugin: any flood trips it for everyone.
    Global,
    /// One breaker per rule name: a flood on one route leaves others served.
    Route,
    /// One breaker per value of this request header (e.g. an API key), so a
    /// misbehaving client is shed without affecting the others. Requests
    /// without the header share one breaker of their own. The name is
    /// lower-cased when read, as HTTP/2 and Envoy present header names.
    Header(#[serde(deserialize_with = "lowercase")] String),
    /// One breaker per client address (`source.address` with the port
    /// stripped). Behind another proxy this is that proxy's address.
    SourceIp,
}

/// The `breaker` section. Every field has a default, so `{}` is valid; the
/// breaker is opt-in (`enabled` defaults to `false`) because shedding traffic
/// is a decision the operator must make knowingly.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Whether the breaker runs at all. Default `false`.
    pub enabled: bool,
    /// Failures in a row (with no success in between) that open the breaker.
    /// Default 3.
    pub consecutive_failures: u32,
    /// The breaker opens when failures / total over the window is strictly
    /// greater than this, in (0, 1]. Default 0.5. At 1 the ratio condition
    /// can never hold, which leaves only `consecutive_failures`.
    pub failure_ratio: f64,
    /// The ratio is only judged once the window holds at least this many
    /// outcomes, so three unlucky requests on a quiet route do not trip it.
    /// Default 20.
    pub min_requests: u32,
    /// Length of the rolling window the ratio is computed over. Default 10.
    pub window_seconds: u32,
    /// How long the breaker stays open the first time. Default 30.
    pub open_seconds: u32,
    /// Cap of the open duration after repeated failed probes. Default 300.
    pub max_open_seconds: u32,
    /// Factor the open duration grows by after each failed probe (>= 1).
    /// Default 2.0.
    pub backoff: f64,
    /// Requests inspected at once while half-open. Default 1.
    pub half_open_probes: u32,
    /// What one breaker guards. Default `route`.
    pub scope: Scope,
    /// Number of shared-data slots the scope keys are hashed into. Two keys
    /// that land in the same slot share one breaker: with `source_ip` and
    /// 1024 slots, two clients may occasionally be shed together. Default 1024.
    pub max_keys: u32,
    /// Violation kinds that count as failures: names from
    /// [`ViolationKind`] (all but `breaker_open`), or `all_json_violations`. A single string is
    /// accepted for a one-element list. Default `["all_json_violations"]`.
    #[serde(deserialize_with = "one_or_many")]
    pub counts: Vec<String>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            consecutive_failures: 3,
            failure_ratio: 0.5,
            min_requests: 20,
            window_seconds: 10,
            open_seconds: 30,
            max_open_seconds: 300,
            backoff: 2.0,
            half_open_probes: 1,
            scope: Scope::Route,
            max_keys: 1024,
            counts: vec![ALL_JSON_VIOLATIONS.to_string()],
        }
    }
}

impl BreakerConfig {
    /// Checks every field, whether or not the breaker is enabled (a typo in a
    /// disabled section should surface before someone enables it). The error
    /// names the field relative to this section; the caller prefixes it
    /// (`breaker.`, `rules[1].breaker.`) with [`ConfigError::within`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn at_least_one(field: &str, v: u32) -> Result<(), ConfigError> {
            if v == 0 {
                Err(ConfigError::new(field, "must be at least 1"))
            } else {
                Ok(())
            }
        }
        at_least_one("consecutive_failures", self.consecutive_failures)?;
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            return Err(ConfigError::new(
                "failure_ratio",
                format!(
                    "must be greater than 0 and at most 1, got {}",
                    self.failure_ratio
                ),
            ));
        }
        at_least_one("min_requests", self.min_requests)?;
        at_least_one("window_seconds", self.window_seconds)?;
        if self.window_seconds > MAX_WINDOW_SECONDS {
            return Err(ConfigError::new(
                "window_seconds",
                format!("must be at most {MAX_WINDOW_SECONDS}"),
            ));
        }
        at_least_one("open_seconds", self.open_seconds)?;
        if self.open_seconds > MAX_OPEN_SECONDS {
            return Err(ConfigError::new(
                "open_seconds",
                format!("must be at most {MAX_OPEN_SECONDS}"),
            ));
        }
        if self.max_open_seconds < self.open_seconds {
            return Err(ConfigError::new(
                "max_open_seconds",
                format!("must be at least open_seconds ({})", self.open_seconds),
            ));
        }
        if self.max_open_seconds > MAX_OPEN_SECONDS {
            return Err(ConfigError::new(
                "max_open_seconds",
                format!("must be at most {MAX_OPEN_SECONDS}"),
            ));
        }
        if !(self.backoff.is_finite() && self.backoff >= 1.0) {
            return Err(ConfigError::new(
                "backoff",
                format!("must be a number of at least 1, got {}", self.backoff),
            ));
        }
        at_least_one("half_open_probes", self.half_open_probes)?;
        if self.half_open_probes > MAX_HALF_OPEN_PROBES {
            return Err(ConfigError::new(
                "half_open_probes",
                format!("must be at most {MAX_HALF_OPEN_PROBES}"),
            ));
        }
        if let Scope::Header(name) = &self.scope {
            validate_header_name(name).map_err(|e| e.within("scope"))?;
        }
        at_least_one("max_keys", self.max_keys)?;
        if self.max_keys > MAX_KEYS_LIMIT {
            return Err(ConfigError::new(
                "max_keys",
                format!("must be at most {MAX_KEYS_LIMIT}"),
            ));
        }
        if self.counts.is_empty() {
            return Err(ConfigError::new(
                "counts",
                "must name at least one violation kind (or all_json_violations)",
            ));
        }
        for (i, name) in self.counts.iter().enumerate() {
            let kind = ViolationKind::from_name(name);
            if let Some(why) = kind.and_then(uncountable) {
                return Err(ConfigError::new(
                    format!("counts[{i}]"),
                    format!("`{name}` cannot be counted: {why}"),
                ));
            }
            if name != ALL_JSON_VIOLATIONS && kind.is_none() {
                let names: Vec<&str> = ViolationKind::ALL
                    .into_iter()
                    .filter(|k| uncountable(*k).is_none())
                    .map(ViolationKind::as_str)
                    .collect();
                return Err(ConfigError::new(
                    format!("counts[{i}]"),
                    format!(
                        "unknown violation kind `{name}`; expected {ALL_JSON_VIOLATIONS} or one of: {}",
                        names.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether a rejection of this violation kind counts as a breaker
    /// failure. A rejection of a kind that does not count is neither success
    /// nor failure: record it as `Outcome::Abandoned` (so a probe slot is
    /// released) rather than as a success.
    pub fn counts_kind(&self, kind: ViolationKind) -> bool {
        self.counts
            .iter()
            .any(|c| c == kind.as_str() || (c == ALL_JSON_VIOLATIONS && kind.is_body_violation()))
    }

    /// Width of one bucket of the rolling window, in milliseconds. The window
    /// is made of [`super::state::WINDOW_BUCKETS`] buckets so that it slides
    /// in steps of a tenth of its length instead of resetting all at once.
    pub fn bucket_ms(&self) -> u64 {
        (u64::from(self.window_seconds.max(1)) * 1000).div_ceil(super::state::WINDOW_BUCKETS as u64)
    }

    /// How long the breaker stays open after `reopens` failed probes in a
    /// row: `open_seconds × backoff^reopens`, capped at `max_open_seconds`,
    /// in milliseconds (rounded to the nearest millisecond).
    pub fn open_duration_ms(&self, reopens: u32) -> u64 {
        let base = f64::from(self.open_seconds) * 1000.0;
        let cap = u64::from(self.max_open_seconds.max(self.open_seconds)) * 1000;
        let exp = i32::try_from(reopens).unwrap_or(i32::MAX);
        let d = (base * self.backoff.powi(exp)).round();
        if d.is_finite() && d < cap as f64 {
            d.max(0.0) as u64
        } else {
            cap
        }
    }

    /// How long a half-open probe may stay in flight before its slot is
    /// presumed lost (its request vanished without `on_done`, or its VM was
    /// torn down) and handed to another request: `max(open_seconds, 30 s)`.
    /// Without this, a lost probe would wedge the breaker half-open forever.
    /// Long enough that a slow but live probe is not doubled up in practice.
    pub fn probe_lease_ms(&self) -> u64 {
        u64::from(self.open_seconds).max(30) * 1000
    }
}

/// Header names must be non-empty, lower case and made of HTTP token
/// characters (a leading `:` is allowed for pseudo-headers such as
/// `:authority`), because they are looked up as Envoy stores them.
fn validate_header_name(name: &str) -> Result<(), ConfigError> {
    let field = "header";
    let rest = name.strip_prefix(':').unwrap_or(name);
    if rest.is_empty() {
        return Err(ConfigError::new(field, "header name must not be empty"));
    }
    if rest.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ConfigError::new(field, "header name must be lower case"));
    }
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !rest.bytes().all(tchar) {
        return Err(ConfigError::new(
            field,
            format!("`{name}` is not a valid header name"),
        ));
    }
    Ok(())
}

fn lowercase<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|s| s.to_ascii_lowercase())
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BreakerConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn field_of(json: &str) -> String {
        parse(json).unwrap().validate().unwrap_err().field
    }

    #[test]
    fn defaults_match_the_issue_but_disabled() {
        let c = parse("{}").unwrap();
        assert_eq!(c, BreakerConfig::default());
        assert!(!c.enabled);
        assert_eq!(c.consecutive_failures, 3);
        assert_eq!(c.failure_ratio, 0.5);
        assert_eq!(c.min_requests, 20);
        assert_eq!(c.window_seconds, 10);
        assert_eq!(c.open_seconds, 30);
        assert_eq!(c.max_open_seconds, 300);
        assert_eq!(c.backoff, 2.0);
        assert_eq!(c.half_open_probes, 1);
        assert_eq!(c.scope, Scope::Route);
        assert_eq!(c.max_keys, 1024);
        assert_eq!(c.counts, vec!["all_json_violations"]);
        c.validate().unwrap();
    }

    #[test]
    fn the_issue_example_parses() {
        let c = parse(
            r#"{"enabled": true, "consecutive_failures": 3,
                "failure_ratio": 0.5, "min_requests": 20, "window_seconds": 10,
                "open_seconds": 30, "max_open_seconds": 300, "backoff": 2.0,
                "half_open_probes": 1, "scope": "route", "max_keys": 1024,
                "counts": ["all_json_violations"]}"#,
        )
        .unwrap();
        assert!(c.enabled);
        c.validate().unwrap();
    }

    #[test]
    fn scopes_parse() {
        assert_eq!(parse(r#"{"scope":"global"}"#).unwrap().scope, Scope::Global);
        assert_eq!(parse(r#"{"scope":"route"}"#).unwrap().scope, Scope::Route);
        assert_eq!(
            parse(r#"{"scope":"source_ip"}"#).unwrap().scope,
            Scope::SourceIp
        );
        assert_eq!(
            parse(r#"{"scope":{"header":"X-Api-Key"}}"#).unwrap().scope,
            Scope::Header("x-api-key".into())
        );
        assert!(parse(r#"{"scope":"client"}"#).is_err());
        assert!(parse(r#"{"scope":{"header":"a","extra":1}}"#).is_err());
        assert!(parse(r#"{"scope":{"cookie":"a"}}"#).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = parse(r#"{"enabeld": true}"#).unwrap_err().to_string();
        assert!(err.contains("enabeld"), "{err}");
    }

    #[test]
    fn negative_numbers_are_refused_by_the_parser() {
        assert!(parse(r#"{"open_seconds": -1}"#).is_err());
        assert!(parse(r#"{"max_keys": -5}"#).is_err());
    }

    #[test]
    fn counts_accepts_a_single_string() {
        let c = parse(r#"{"counts": "too_deep"}"#).unwrap();
        assert_eq!(c.counts, vec!["too_deep"]);
        c.validate().unwrap();
    }

    #[test]
    fn each_validation_error_names_its_field() {
        let cases = [
            (r#"{"consecutive_failures":0}"#, "consecutive_failures"),
            (r#"{"failure_ratio":0}"#, "failure_ratio"),
            (r#"{"failure_ratio":-0.1}"#, "failure_ratio"),
            (r#"{"failure_ratio":1.0001}"#, "failure_ratio"),
            (r#"{"min_requests":0}"#, "min_requests"),
            (r#"{"window_seconds":0}"#, "window_seconds"),
            (r#"{"window_seconds":3601}"#, "window_seconds"),
            (r#"{"open_seconds":0}"#, "open_seconds"),
            (
                r#"{"open_seconds":86401,"max_open_seconds":90000}"#,
                "open_seconds",
            ),
            (
                r#"{"open_seconds":30,"max_open_seconds":29}"#,
                "max_open_seconds",
            ),
            (r#"{"max_open_seconds":86401}"#, "max_open_seconds"),
            (r#"{"backoff":0.99}"#, "backoff"),
            (r#"{"backoff":-2}"#, "backoff"),
            (r#"{"half_open_probes":0}"#, "half_open_probes"),
            (r#"{"half_open_probes":33}"#, "half_open_probes"),
            (r#"{"scope":{"header":""}}"#, "scope.header"),
            (r#"{"scope":{"header":":"}}"#, "scope.header"),
            (r#"{"scope":{"header":"x api"}}"#, "scope.header"),
            (r#"{"max_keys":0}"#, "max_keys"),
            (r#"{"max_keys":65537}"#, "max_keys"),
            (r#"{"counts":[]}"#, "counts"),
            (r#"{"counts":["too_deep","too_deap"]}"#, "counts[1]"),
            (r#"{"counts":["breaker_open"]}"#, "counts[0]"),
            (r#"{"counts":["too_deep","ambiguous_path"]}"#, "counts[1]"),
        ];
        for (json, field) in cases {
            assert_eq!(field_of(json), field, "{json}");
        }
        let e = parse(r#"{"failure_ratio":0}"#)
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.within("breaker").field, "breaker.failure_ratio");
    }

    #[test]
    fn boundaries_that_are_valid() {
        for json in [
            r#"{"failure_ratio":1}"#,
            r#"{"failure_ratio":0.0001}"#,
            r#"{"backoff":1}"#,
            r#"{"open_seconds":30,"max_open_seconds":30}"#,
            r#"{"max_keys":1}"#,
            r#"{"max_keys":65536}"#,
            r#"{"half_open_probes":32}"#,
            r#"{"window_seconds":1}"#,
            // Every range at both ends, as the README gives them.
            r#"{"window_seconds":3600}"#,
            r#"{"open_seconds":1,"max_open_seconds":1}"#,
            r#"{"open_seconds":86400,"max_open_seconds":86400}"#,
            r#"{"max_open_seconds":86400}"#,
            r#"{"half_open_probes":1}"#,
            r#"{"consecutive_failures":1}"#,
            r#"{"min_requests":1}"#,
            r#"{"scope":{"header":":authority"}}"#,
            r#"{"counts":["unsupported_media_type","body_unreadable"]}"#,
        ] {
            parse(json).unwrap().validate().unwrap();
        }
    }

    #[test]
    fn uppercase_header_built_in_code_is_refused() {
        let c = BreakerConfig {
            scope: Scope::Header("X-Key".into()),
            ..BreakerConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "scope.header");
    }

    #[test]
    fn counts_filter() {
        let all = BreakerConfig::default();
        use ViolationKind as K;
        let body_kinds: Vec<K> = K::ALL[..18].to_vec();
        assert_eq!(body_kinds.last(), Some(&K::EmptyBody));
        for k in body_kinds {
            assert!(all.counts_kind(k), "{k}");
        }
        for k in [
            K::UnsupportedMediaType,
            K::UnsupportedEncoding,
            K::BodyUnreadable,
            K::BreakerOpen,
        ] {
            assert!(!all.counts_kind(k), "{k}");
        }
        let some = parse(r#"{"counts":["too_deep","unsupported_encoding"]}"#).unwrap();
        assert!(some.counts_kind(K::TooDeep));
        assert!(some.counts_kind(K::UnsupportedEncoding));
        assert!(!some.counts_kind(K::SyntaxError));
        assert_eq!(ALL_JSON_VIOLATIONS, "all_json_violations");
    }

    #[test]
    fn open_duration_backs_off_and_caps() {
        let c = BreakerConfig::default(); // 30 s, ×2, cap 300 s
        let seq: Vec<u64> = (0..7).map(|n| c.open_duration_ms(n)).collect();
        assert_eq!(
            seq,
            [30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000]
        );
        assert_eq!(c.open_duration_ms(u32::MAX), 300_000);
        let flat = BreakerConfig {
            backoff: 1.0,
            ..c.clone()
        };
        assert_eq!(flat.open_duration_ms(50), 30_000);
        let odd = BreakerConfig {
            open_seconds: 10,
            backoff: 1.5,
            max_open_seconds: 100,
            ..c
        };
        let seq: Vec<u64> = (0..6).map(|n| odd.open_duration_ms(n)).collect();
        assert_eq!(seq, [10_000, 15_000, 22_500, 33_750, 50_625, 75_938]);
        assert_eq!(odd.open_duration_ms(6), 100_000);
    }

    #[test]
    fn bucket_width_and_lease() {
        let c = BreakerConfig::default();
        assert_eq!(c.bucket_ms(), 1_000);
        assert_eq!(
            BreakerConfig {
                window_seconds: 1,
                ..c.clone()
            }
            .bucket_ms(),
            100
        );
        assert_eq!(c.probe_lease_ms(), 30_000);
        assert_eq!(
            BreakerConfig {
                open_seconds: 5,
                ..c.clone()
            }
            .probe_lease_ms(),
            30_000
        );
        assert_eq!(
            BreakerConfig {
                open_seconds: 45,
                max_open_seconds: 60,
                ..c
            }
            .probe_lease_ms(),
            45_000
        );
    }
}
