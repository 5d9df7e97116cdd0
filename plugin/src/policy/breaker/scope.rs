//! From a request to the shared-data key of its breaker: which slot the
//! scope key hashes to, how that slot is named in shared data, and how it is
//! described in logs without leaking what it was made from.

use std::fmt::Write as _;

use super::config::{BreakerConfig, Scope};
use super::hash::Fnv1a64;

/// What the filter knows about a request that a scope may be keyed on. All
/// of it must be read in the request-headers callback (headers cannot be read
/// later in Envoy).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeInput<'a> {
    /// Name of the rule the request matched (scope `route`, for logs).
    pub rule: &'a str,
    /// Index of the request's policy: 0 the top level, `i + 1` rule `i`
    /// (scope `route`: its slot, so that no two rules share one).
    pub policy: usize,
    /// Value of the configured header, `None` when absent (scope `header`).
    /// Raw bytes because header values need not be UTF-8.
    pub header: Option<&'a [u8]>,
    /// The `source.address` property as Envoy renders it (`10.0.0.1:5555`,
    /// `[::1]:5555`), `None` when the host did not provide it (scope
    /// `source_ip`).
    pub source_address: Option<&'a str>,
}

/// Where a request's breaker lives and how to name it in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeKey {
    /// Slot in `0..max_keys`. Distinct scope keys may share a slot (and then
    /// share a breaker): that is the price of bounded shared data.
    pub slot: u32,
    /// Human-readable description for log lines, e.g. `route "checkout"
    /// (slot 17)`. Header values appear only as a short digest: they are
    /// often credentials (`x-api-key`), and logs travel further than secrets
    /// should.
    pub description: String,
}

impl BreakerConfig {
    /// The slot and log description of the breaker guarding this request,
    /// according to [`BreakerConfig::scope`] and [`BreakerConfig::max_keys`].
    pub fn scope_key(&self, input: &ScopeInput<'_>) -> ScopeKey {
        scope_key(&self.scope, self.max_keys, input)
    }
}

/// Hashes the request's scope key into one of `max_keys` slots (FNV-1a 64,
/// deterministic in every worker) and describes it for logs.
///
/// - `global`: always slot 0.
/// - `route`: the policy's index, not hashed (rules are known at configure,
///   where two that would share a slot are refused).
/// - `header`: the header value; a missing header is its own key, distinct
///   from an empty value. The description carries a 32-bit digest of the
///   value, never the value.
/// - `source_ip`: the address with its port stripped (so one client's many
///   connections share a breaker); a missing address is its own key.
///
/// `max_keys` of 0 is treated as 1 (validation refuses it; this function
/// must not divide by zero regardless).
pub fn scope_key(scope: &Scope, max_keys: u32, input: &ScopeInput<'_>) -> ScopeKey {
    let mut h = Fnv1a64::default();
    let mut description = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let slots = u64::from(max_keys.max(1));
    let slot = match scope {
        Scope::Global => {
            description.push_str("global");
            Some(0)
        }
        Scope::Route => {
            let _ = write!(description, "route {:?}", input.rule);
            Some(input.policy as u64 % slots)
        }
        Scope::Header(name) => {
            h.field(b"header").field(name.as_bytes());
            match input.header {
                Some(value) => {
                    h.field(b"present").field(value);
                    let _ = write!(description, "header {name} #{:08x}", header_digest(value));
                }
                None => {
                    h.field(b"missing");
                    let _ = write!(description, "header {name} (missing)");
                }
            }
            None
        }
        Scope::SourceIp => {
            h.field(b"source_ip");
            match input.source_address.filter(|a| !a.is_empty()) {
                Some(addr) => {
                    let ip = strip_port(addr);
                    h.field(b"present").field(ip.as_bytes());
                    let _ = write!(description, "source_ip {ip:?}");
                }
                None => {
                    h.field(b"missing");
                    description.push_str("source_ip (unknown)");
                }
            }
            None
        }
    };
    // Below `max_keys`, so it fits in a u32.
    let slot = slot.unwrap_or_else(|| h.finish() % slots) as u32;
    let _ = write!(description, " (slot {slot})");
    ScopeKey { slot, description }
}

/// A short, non-reversible-for-real-secrets digest of a header value for
/// logs: enough to tell two clients apart and to correlate log lines, 32 bits
/// so it cannot serve as a lookup key for a credential. Low-entropy values
/// (small integers, short names) can still be guessed from it; do not key a
/// breaker on a header whose values are both secret and guessable.
fn header_digest(value: &[u8]) -> u32 {
    let h = Fnv1a64::default()
        .field(b"json_sanitizer.breaker.log")
        .field(value)
        .finish();
    (h ^ (h >> 32)) as u32
}

/// The address part of an Envoy socket address: `10.0.0.1:80` → `10.0.0.1`,
/// `[::1]:80` → `::1`, `[::1]` → `::1`. A bare IPv6 address (several colons,
/// no brackets), an address without port and anything else (a pipe path) is
/// returned unchanged.
pub fn strip_port(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => &rest[..end],
            None => address,
        };
    }
    match address.split_once(':') {
        Some((host, port)) if !port.contains(':') => host,
        _ => address,
    }
}

/// The namespace of this plugin instance's keys in shared data: FNV-1a 64 of
/// the way slots are assigned, the root id and the plugin configuration
/// bytes, as 16 hex digits.
///
/// Shared data is one map per `vm_id`, and Istio leaves `vm_id` empty, so
/// every plugin in the proxy shares it. Hashing the root id keeps two plugins
/// apart; hashing the configuration means that a configuration change starts
/// from fresh breakers (the old state was counted under other thresholds and
/// another window) and that old keys are simply abandoned (bounded: at most
/// `max_keys` small values per configuration ever loaded).
pub fn namespace(root_id: &str, config: &[u8]) -> String {
    let h = Fnv1a64::default()
        .field(b"json_sanitizer")
        // How slots are assigned: a plugin that assigned them otherwise
        // (route slots by a hash of the rule name, before 2026-12-01) keeps
        // other keys, so that neither reads the other's breakers as its own
        // while both run during a rolling upgrade.
        .field(b"slots: route by rule index")
        .field(root_id.as_bytes())
        .field(config)
        .finish();
    format!("{h:016x}")
}

/// The shared-data key of one breaker slot:
/// `json_sanitizer.<namespace>.breaker.<slot>`.
///
/// If rules override the breaker with differing settings, give each distinct
/// breaker configuration its own namespace (e.g. the plugin namespace plus the
/// rule index), or two configurations would share (and misread) one state.
pub fn shared_data_key(namespace: &str, slot: u32) -> String {
    format!("json_sanitizer.{namespace}.breaker.{slot}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scope: Scope, max_keys: u32, input: ScopeInput<'_>) -> ScopeKey {
        scope_key(&scope, max_keys, &input)
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("10.0.0.1:8080"), "10.0.0.1");
        assert_eq!(strip_port("10.0.0.1"), "10.0.0.1");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("[2001:db8::7]:443"), "2001:db8::7");
        assert_eq!(strip_port("[::1]"), "::1");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(strip_port("2001:db8::7"), "2001:db8::7");
        assert_eq!(strip_port("[::1"), "[::1");
        assert_eq!(strip_port("/var/run/sock"), "/var/run/sock");
        assert_eq!(strip_port(""), "");
    }

    #[test]
    fn same_ip_different_ports_share_a_breaker() {
        let a = key(
            Scope::SourceIp,
            1024,
            ScopeInput {
                source_address: Some("10.1.2.3:40000"),
                ..Default::default()
            },
        );
        let b = key(
            Scope::SourceIp,
            1024,
            ScopeInput {
                source_address: Some("10.1.2.3:40001"),
                ..Default::default()
            },
        );
        let c = key(
            Scope::SourceIp,
            1024,
            ScopeInput {
                source_address: Some("10.1.2.3"),
                ..Default::default()
            },
        );
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            a.description,
            format!("source_ip \"10.1.2.3\" (slot {})", a.slot)
        );
        let v6 = key(
            Scope::SourceIp,
            1024,
            ScopeInput {
                source_address: Some("[::1]:80"),
                ..Default::default()
            },
        );
        let v6b = key(
            Scope::SourceIp,
            1024,
            ScopeInput {
                source_address: Some("[::1]:81"),
                ..Default::default()
            },
        );
        assert_eq!(v6, v6b);
        let none = key(Scope::SourceIp, 1024, ScopeInput::default());
        let empty = key(
            Scope::SourceIp,
            1024,
            ScopeInput {
                source_address: Some(""),
                ..Default::default()
            },
        );
        assert_eq!(none, empty);
        assert!(none.description.starts_with("source_ip (unknown)"));
    }

    #[test]
    fn global_is_slot_zero() {
        let k = key(
            Scope::Global,
            1024,
            ScopeInput {
                rule: "r",
                ..Default::default()
            },
        );
        assert_eq!(
            k,
            ScopeKey {
                slot: 0,
                description: "global (slot 0)".into()
            }
        );
    }

    #[test]
    fn route_is_keyed_by_policy_index() {
        let route = |rule: &str, policy: usize| {
            let input = ScopeInput {
                rule,
                policy,
                ..Default::default()
            };
            key(Scope::Route, 4, input)
        };
        let a = route("checkout", 1);
        let b = route("search", 2);
        assert_eq!((a.slot, b.slot), (1, 2));
        assert_eq!(a.description, "route \"checkout\" (slot 1)");
        // Beyond `max_keys` (refused at configure) it wraps, never past it.
        assert_eq!(route("x", 6).slot, 2);
        // Control characters in a name cannot forge log lines.
        let c = key(
            Scope::Route,
            8,
            ScopeInput {
                rule: "a\nb",
                ..Default::default()
            },
        );
        assert!(!c.description.contains('\n'));
    }

    #[test]
    fn header_scope_never_logs_the_value() {
        let scope = Scope::Header("x-api-key".into());
        let secret = b"sk_live_0123456789abcdef";
        let k = key(
            scope.clone(),
            1024,
            ScopeInput {
                header: Some(secret),
                ..Default::default()
            },
        );
        assert!(!k.description.contains("sk_live"), "{}", k.description);
        assert!(
            !k.description.contains("0123456789abcdef"),
            "{}",
            k.description
        );
        assert!(k.description.starts_with("header x-api-key #"));
        // Deterministic, and distinct values get distinct digests.
        let again = key(
            scope.clone(),
            1024,
            ScopeInput {
                header: Some(secret),
                ..Default::default()
            },
        );
        assert_eq!(k, again);
        let other = key(
            scope.clone(),
            1024,
            ScopeInput {
                header: Some(b"sk_live_other"),
                ..Default::default()
            },
        );
        assert_ne!(k.description, other.description);
        // Missing is its own key, distinct from an empty value.
        let missing = key(scope.clone(), 1 << 16, ScopeInput::default());
        let empty = key(
            scope,
            1 << 16,
            ScopeInput {
                header: Some(b""),
                ..Default::default()
            },
        );
        assert_ne!(missing.slot, empty.slot);
        assert!(missing
            .description
            .starts_with("header x-api-key (missing)"));
    }

    #[test]
    fn slots_are_bounded_and_deterministic() {
        for max_keys in [1u32, 2, 3, 7, 1024, 65_536] {
            let mut seen = std::collections::HashSet::new();
            for i in 0..2_000 {
                let v = format!("client-{i}");
                let input = ScopeInput {
                    header: Some(v.as_bytes()),
                    rule: &v,
                    policy: i,
                    source_address: Some(&v),
                };
                for scope in [Scope::Route, Scope::SourceIp, Scope::Header("h".into())] {
                    let k = key(scope.clone(), max_keys, input);
                    assert!(k.slot < max_keys);
                    assert_eq!(k, key(scope, max_keys, input));
                    seen.insert(k.slot);
                }
            }
            // The hash spreads keys over the slots (6000 keys: every one of
            // a few slots is hit, and most of 1024).
            if max_keys <= 7 {
                assert_eq!(seen.len() as u32, max_keys, "max_keys {max_keys}");
            } else if max_keys == 1024 {
                assert!(seen.len() > 950, "only {} of 1024 slots used", seen.len());
            }
        }
        // Zero slots (refused by validation) does not divide by zero.
        assert_eq!(
            key(
                Scope::Route,
                0,
                ScopeInput {
                    rule: "x",
                    ..Default::default()
                }
            )
            .slot,
            0
        );
    }

    #[test]
    fn namespaces_separate_plugins_and_configurations() {
        let a = namespace("root_a", b"{}");
        assert_eq!(a.len(), 16);
        assert_eq!(a, namespace("root_a", b"{}"));
        assert_ne!(a, namespace("root_b", b"{}"));
        assert_ne!(a, namespace("root_a", b"{ }"));
        assert_ne!(namespace("ab", b"c"), namespace("a", b"bc"));
        assert_eq!(
            shared_data_key(&a, 7),
            format!("json_sanitizer.{a}.breaker.7")
        );
    }
}
