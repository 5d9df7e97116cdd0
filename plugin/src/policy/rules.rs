//! Per-route rules: which requests a policy applies to.

use super::config::Policy;
use super::error::ConfigError;
use serde::Deserialize;

/// The word between the metrics prefix and a rule's name in its counters'
/// names (`json_sanitizer.rule.orders.requests_passed`).
pub const RULE_METRICS_WORD: &str = "rule";

/// A rule's name as it appears in metric names: ASCII letters, digits and
/// `_` kept, anything else `_`. Envoy reads dots in a stat name as levels,
/// and its Prometheus output turns every other character (`-` included)
/// into `_` anyway, so two names that differ only there would be one series.
pub fn metric_label(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A rule: a match, and what applies to the requests it matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Which requests.
    pub matcher: RuleMatch,
    /// Let matching requests through uninspected (uploads, webhooks...).
    pub skip: bool,
    /// The policy, with the top level's values where the rule said nothing.
    pub policy: Policy,
}

/// Conditions on the request line; all given conditions must hold.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMatch {
    /// `:path` (without the query string) starts with this.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// `:path` (without the query string) is exactly this.
    #[serde(default)]
    pub path_exact: Option<String>,
    /// `:path` (without the query string) is this, or this followed by `/`
    /// and more: `/upload` takes `/upload/a` but not `/uploads`, as Envoy's
    /// `path_separated_prefix` does. A skipping rule written with a plain
    /// prefix lets every path that merely starts alike around inspection.
    #[serde(default)]
    pub path_separated_prefix: Option<String>,
    /// `:method` is one of these (case-sensitive, as HTTP methods are).
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// `:authority` is this host, compared case-insensitively and without
    /// a trailing dot (`api.example.com.` is the same host); without a port
    /// in the rule, the request's port is ignored.
    #[serde(default)]
    pub authority: Option<String>,
}

impl RuleMatch {
    /// Refuses a match that would match everything or nothing by accident.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let paths = self.path_fields();
        if paths.iter().all(|(_, p)| p.is_none())
            && self.methods.is_none()
            && self.authority.is_none()
        {
            return Err(ConfigError::new(
                "",
                "is empty: give at least one of path_prefix, path_exact, path_separated_prefix, methods, authority",
            ));
        }
        let mut given = paths.iter().filter(|(_, p)| p.is_some()).map(|(f, _)| *f);
        if let (Some(first), Some(second)) = (given.next(), given.next()) {
            return Err(ConfigError::new(
                second,
                format!("cannot be given with {first}: a match takes one way of matching the path, as an Envoy route does"),
            ));
        }
        for (field, value) in paths {
            if let Some(p) = value {
                if !p.starts_with('/') {
                    return Err(ConfigError::new(
                        field,
                        format!("`{p}` must start with `/`"),
                    ));
                }
                let normal = super::path::normalize(p);
                if normal != p {
                    return Err(ConfigError::new(
                        field,
                        format!(
                            "`{p}` would never match: paths are matched normalized; write `{normal}`"
                        ),
                    ));
                }
                if field == "path_separated_prefix" && p.ends_with('/') {
                    let hint = match &p[..p.len() - 1] {
                        "" => "to take every path, give no path matcher".to_string(),
                        bare => format!("the separator is implied (`{bare}` takes `{p}…`)"),
                    };
                    return Err(ConfigError::new(
                        field,
                        format!("`{p}` must not end with `/`, as in Envoy: {hint}"),
                    ));
                }
            }
        }
        if let Some(methods) = &self.methods {
            if methods.is_empty() {
                return Err(ConfigError::new("methods", "must list at least one method"));
            }
            if let Some(m) = methods
                .iter()
                .find(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(ConfigError::new(
                    "methods",
                    format!("`{m}` is not an HTTP method"),
                ));
            }
        }
        if let Some(a) = &self.authority {
            if let Some(problem) = authority_problem(a) {
                return Err(ConfigError::new("authority", format!("`{a}` {problem}")));
            }
        }
        Ok(())
    }

    /// The three path matchers by field name (a valid match gives at most one).
    fn path_fields(&self) -> [(&'static str, Option<&str>); 3] {
        [
            ("path_prefix", self.path_prefix.as_deref()),
            ("path_exact", self.path_exact.as_deref()),
            (
                "path_separated_prefix",
                self.path_separated_prefix.as_deref(),
            ),
        ]
    }

    /// The path matcher, if any: its field name and its path.
    pub fn path(&self) -> Option<(&'static str, &str)> {
        self.path_fields()
            .into_iter()
            .find_map(|(field, p)| Some((field, p?)))
    }

    /// Whether a request with this method, path and authority matches.
    pub fn matches(&self, method: &str, path: &str, authority: &str) -> bool {
        self.matches_path(method, without_query(path), authority)
    }

    /// [`RuleMatch::matches`] for a path already without its query string
    /// and fragment, as [`Config::select`](super::config::Config::select)
    /// has it once for every rule.
    pub fn matches_path(&self, method: &str, path: &str, authority: &str) -> bool {
        self.matches_path_as(method, path, authority, false)
    }

    /// [`RuleMatch::matches_path`], comparing the path ignoring ASCII case
    /// when `ignore_case`: as a case-insensitive router (Express's default)
    /// would route it.
    pub fn matches_path_as(
        &self,
        method: &str,
        path: &str,
        authority: &str,
        ignore_case: bool,
    ) -> bool {
        let rest = |prefix: &str| -> Option<&str> {
            let head = path.get(..prefix.len())?;
            let same = if ignore_case {
                head.eq_ignore_ascii_case(prefix)
            } else {
                head == prefix
            };
            same.then(|| &path[prefix.len()..])
        };
        if let Some(prefix) = &self.path_prefix {
            if rest(prefix).is_none() {
                return false;
            }
        }
        if let Some(exact) = &self.path_exact {
            if rest(exact) != Some("") {
                return false;
            }
        }
        if let Some(prefix) = &self.path_separated_prefix {
            if !rest(prefix).is_some_and(|r| r.is_empty() || r.starts_with('/')) {
                return false;
            }
        }
        if let Some(methods) = &self.methods {
            if !methods.iter().any(|m| m == method) {
                return false;
            }
        }
        if let Some(want) = &self.authority {
            if !host(authority).eq_ignore_ascii_case(host(want)) {
                return false;
            }
            let wanted_port = port(want);
            if wanted_port.is_some() && port(authority) != wanted_port {
                return false;
            }
        }
        true
    }
}

/// `host:port` → `host`, leaving bracketed IPv6 literals intact.
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map_or(authority, |(h, _)| &authority[..h.len() + 1]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Why a rule's authority could never match a request's, if it could not:
/// no host, an IPv6 address without its brackets (read as a host and a
/// port), or a port that is not a number.
fn authority_problem(a: &str) -> Option<&'static str> {
    let h = host(a);
    if h.is_empty() {
        return Some("names no host");
    }
    if !h.starts_with('[') && h.contains(':') {
        return Some("has more than one `:`: write an IPv6 address in brackets (`[2001:db8::1]`)");
    }
    if h.starts_with('[') && !h.ends_with(']') {
        return Some("opens a `[` it does not close");
    }
    if let Some(p) = port(a) {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Some("has a port that is not a number");
        }
    }
    None
}

/// The host of an authority without its port and without a trailing dot:
/// `API.example.com.:443` and `api.example.com` name the same host, and an
/// upstream behind a catch-all route serves both.
fn host(authority: &str) -> &str {
    let h = strip_port(authority);
    h.strip_suffix('.').unwrap_or(h)
}

/// The port of an authority, if it has one (`[::1]:80` → `80`; `[::1]`,
/// whose colons are the address's, has none).
fn port(authority: &str) -> Option<&str> {
    authority
        .get(strip_port(authority).len()..)
        .and_then(|rest| rest.strip_prefix(':'))
}

/// `path` without its query string and fragment.
pub fn without_query(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(json: &str) -> RuleMatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn conditions_combine_and_ignore_the_query() {
        let r = m(r#"{"path_prefix":"/upload","methods":["POST","PUT"]}"#);
        assert!(r.matches("POST", "/upload/x?y=1", "a"));
        assert!(r.matches("PUT", "/upload", "a"));
        assert!(!r.matches("GET", "/upload", "a"));
        assert!(!r.matches("POST", "/up", "a"));
        assert!(!r.matches("post", "/upload", "a"));
        let e = m(r#"{"path_exact":"/api/v1/orders"}"#);
        assert!(e.matches("POST", "/api/v1/orders?dry=1", ""));
        assert!(!e.matches("POST", "/api/v1/orders/1", ""));
        assert!(!e.matches("POST", "/api/v1/order", ""));
    }

    #[test]
    fn authority_is_case_insensitive_and_port_aware() {
        let r = m(r#"{"authority":"api.example.com"}"#);
        assert!(r.matches("GET", "/", "API.example.com:8443"));
        assert!(r.matches("GET", "/", "api.example.com"));
        assert!(!r.matches("GET", "/", "www.example.com"));
        let p = m(r#"{"authority":"api.example.com:8443"}"#);
        assert!(p.matches("GET", "/", "api.example.com:8443"));
        assert!(!p.matches("GET", "/", "api.example.com:443"));
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn ipv6_authorities_match_with_and_without_ports() {
        let r = m(r#"{"authority":"[2001:db8::1]"}"#);
        assert!(r.matches("GET", "/", "[2001:db8::1]:8443"));
        assert!(r.matches("GET", "/", "[2001:DB8::1]"));
        assert!(!r.matches("GET", "/", "[2001:db8::2]:8443"));
        let p = m(r#"{"authority":"[2001:db8::1]:8443"}"#);
        assert!(p.matches("GET", "/", "[2001:db8::1]:8443"));
        assert!(!p.matches("GET", "/", "[2001:db8::1]:443"));
        assert!(!p.matches("GET", "/", "[2001:db8::1]"));
        assert_eq!(port("[::1]:80"), Some("80"));
        assert_eq!(port("[::1]"), None);
        assert_eq!(port("a.b:1"), Some("1"));
        assert_eq!(port("a.b"), None);
    }

    /// A fully qualified name is the same host: without this, a stricter
    /// rule for `api.example.com` is skipped by writing `api.example.com.`.
    #[test]
    fn a_trailing_dot_names_the_same_host() {
        let r = m(r#"{"authority":"api.example.com"}"#);
        assert!(r.matches("GET", "/", "api.example.com."));
        assert!(r.matches("GET", "/", "api.example.com.:8443"));
        assert!(!r.matches("GET", "/", "api.example.com.."));
        let dotted = m(r#"{"authority":"api.example.com.:8443"}"#);
        assert!(dotted.matches("GET", "/", "api.example.com:8443"));
        assert!(!dotted.matches("GET", "/", "api.example.com:443"));
        assert_eq!(
            m(r#"{"authority":"."}"#).validate().unwrap_err().field,
            "authority"
        );
        assert_eq!(
            m(r#"{"authority":":80"}"#).validate().unwrap_err().field,
            "authority"
        );
    }

    /// An authority that could never match is refused, not left to fall
    /// silently to the default policy.
    #[test]
    fn authorities_that_could_never_match_are_refused() {
        for bad in [
            "2001:db8::1",
            "api.example.com:",
            "api.example.com:https",
            "api.example.com:123456",
            "[2001:db8::1",
            "[::1]:",
        ] {
            let json = format!(r#"{{"authority":"{bad}"}}"#);
            let e = m(&json).validate().unwrap_err();
            assert_eq!(e.field, "authority", "{bad}");
        }
        for good in [
            "api.example.com",
            "api.example.com:8443",
            "[::1]",
            "[::1]:80",
            "10.0.0.1:443",
        ] {
            let json = format!(r#"{{"authority":"{good}"}}"#);
            assert!(m(&json).validate().is_ok(), "{good}");
        }
    }

    #[test]
    fn separated_prefixes_stop_at_a_segment() {
        let r = m(r#"{"path_separated_prefix":"/upload"}"#);
        assert!(r.validate().is_ok());
        assert!(r.matches("POST", "/upload", ""));
        assert!(r.matches("POST", "/upload/", ""));
        assert!(r.matches("POST", "/upload/a/b?x=1", ""));
        assert!(r.matches("POST", "/upload?x=1", ""));
        assert!(!r.matches("POST", "/uploads", ""));
        assert!(!r.matches("POST", "/uploadProfileJson", ""));
        assert!(!r.matches("POST", "/up", ""));
        let e = m(r#"{"path_separated_prefix":"/"}"#)
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "path_separated_prefix");
        assert!(e.reason.contains("give no path matcher"), "{e}");
        assert_eq!(
            m(r#"{"path_separated_prefix":"/upload/"}"#)
                .validate()
                .unwrap_err()
                .field,
            "path_separated_prefix"
        );
        assert_eq!(
            m(r#"{"path_separated_prefix":"upload"}"#)
                .validate()
                .unwrap_err()
                .field,
            "path_separated_prefix"
        );
    }

    #[test]
    fn paths_match_ignoring_case_only_when_asked() {
        for json in [
            r#"{"path_prefix":"/Api"}"#,
            r#"{"path_exact":"/api/search"}"#,
            r#"{"path_separated_prefix":"/upload"}"#,
        ] {
            let r = m(json);
            let path = if json.contains("search") {
                "/API/Search"
            } else {
                "/UPLOAD/x"
            };
            let path = if json.contains("Api") { "/api/x" } else { path };
            assert!(!r.matches_path_as("POST", path, "", false), "{json} {path}");
            assert!(r.matches_path_as("POST", path, "", true), "{json} {path}");
        }
        let r = m(r#"{"path_separated_prefix":"/upload"}"#);
        assert!(!r.matches_path_as("POST", "/UPLOADS", "", true));
    }

    /// Two ways of matching the path in one rule is a mistake (one of them
    /// would never match, or is redundant); Envoy's route match takes one.
    #[test]
    fn one_path_matcher_per_rule() {
        let e = m(r#"{"path_prefix":"/api","path_exact":"/v1/x"}"#)
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "path_exact");
        assert!(e.to_string().contains("path_prefix"), "{e}");
        let e = m(r#"{"path_exact":"/a","path_separated_prefix":"/a"}"#)
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "path_separated_prefix");
        assert!(m(r#"{"path_exact":"/a","methods":["POST"]}"#)
            .validate()
            .is_ok());
    }

    #[test]
    fn empty_or_odd_matches_are_refused() {
        assert_eq!(m("{}").validate().unwrap_err().field, "");
        assert_eq!(
            m(r#"{"methods":[]}"#).validate().unwrap_err().field,
            "methods"
        );
        assert_eq!(
            m(r#"{"path_prefix":"api"}"#).validate().unwrap_err().field,
            "path_prefix"
        );
        assert_eq!(
            m(r#"{"authority":""}"#).validate().unwrap_err().field,
            "authority"
        );
        assert!(m(r#"{"methods":["POST"]}"#).validate().is_ok());
    }
}
