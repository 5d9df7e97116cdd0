//! The plugin configuration: parsed once in `on_configure`, validated
//! completely, and turned into plain data the request path can use without
//! further checks. Every error names the offending field by its JSON path.

use super::breaker::{BreakerConfig, Scope, ScopeInput};
use super::error::ConfigError;
use super::media::{ContentTypeClass, ContentTypes, MediaRange};
use super::rules::{Rule, RuleMatch, RULE_METRICS_WORD};
use crate::ascii::CgiNames;
use crate::inspector::{
    DuplicateKeys, JsonOptions, Limits, Numbers, MIN_EXPONENT_DIGITS, REPORTABLE,
};
use crate::violation::ViolationKind;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Whether violations are enforced or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Reject violating requests with the configured status.
    #[default]
    Enforce,
    /// Log and count what would be rejected; let everything through. The
    /// way to roll the filter out safely in front of an existing service.
    Report,
}

/// What to do with a request whose content type is not in `content_types`
/// (or that has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentTypeAction {
    /// Let it through uninspected (counted as skipped).
    Pass,
    /// Inspect the body as JSON anyway.
    Inspect,
    /// Inspect the body if it looks like JSON (its first byte other than
    /// whitespace opens an object or an array), let it through uninspected
    /// otherwise: for routes that take forms or files beside JSON, served by
    /// code that may parse any body as JSON whatever its content type.
    Sniff,
    /// Refuse it with 415 `unsupported_media_type`.
    Reject,
}

/// What to do with a body sent in a `content-encoding` other than
/// `identity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodedBodyAction {
    /// Refuse it with 415 `unsupported_encoding`.
    #[default]
    Reject,
    /// Let it through uninspected.
    Pass,
    /// Decode `gzip`, `x-gzip` and `deflate` as the body streams and inspect
    /// the JSON inside (refusing other codings with 415): for senders that
    /// compress, such as OpenTelemetry exporters and bulk indexers.
    Inspect,
}

/// What to do with a body to be inspected whose `content-type` names a
/// charset other than UTF-8 (see
/// [`super::media::ContentTypes::foreign_charset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherCharsetAction {
    /// Refuse it with 415 `unsupported_media_type`.
    #[default]
    Reject,
    /// Let it through uninspected.
    Pass,
    /// Inspect its bytes as UTF-8 anyway (as RFC 8259 says a recipient
    /// should; right only when no upstream honours the charset).
    Inspect,
}

/// What to do with a body that the host does not hand over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassOrReject {
    /// Refuse it with 500 `body_unreadable`.
    #[default]
    Reject,
    /// Let it through uninspected, and log that it happened.
    Pass,
}

/// The headers that frameworks read a request's method from instead of
/// `:method` (Rails' `Rack::MethodOverride`, Symfony and Laravel, Express's
/// `method-override`, OData clients).
pub const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The headers the filter decides by whose `_` and `.` spellings PHP reads
/// as the same header (Rack the `_` ones of the method overrides): a request
/// that sends one so is `ambiguous_header`.
pub const TWINNED_HEADERS: [&str; 5] = [
    "content-type",
    "content-encoding",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// What one matched request is held to: everything a rule can override.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The rule's name (`default` for the top level); used in logs and in
    /// the breaker's `route` scope.
    pub name: String,
    /// Enforce or report.
    pub mode: Mode,
    /// Body bytes held back from the upstream while being inspected
    /// (default 64 KiB, capped at `max_body_bytes`).
    pub hold_bytes: u64,
    /// Size and shape limits.
    pub limits: Limits,
    /// Grammar options.
    pub json: JsonOptions,
    /// The circuit breaker.
    pub breaker: BreakerConfig,
    /// Which breaker namespace this policy's breaker state lives in: 0 for
    /// the top-level section, `i + 1` for a rule `i` that overrides it.
    pub breaker_id: usize,
}

/// The status and detail settings of local replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyConfig {
    statuses: [u16; ViolationKind::ALL.len()],
    /// Include the human-readable `detail` member in problem+json bodies.
    pub detail: bool,
}

impl ReplyConfig {
    /// The HTTP status a violation of `kind` is answered with.
    pub fn status(&self, kind: ViolationKind) -> u16 {
        let index = ViolationKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        self.statuses.get(index).copied().unwrap_or(400)
    }

    /// The documented default status for each kind.
    pub const fn default_status(kind: ViolationKind) -> u16 {
        match kind {
            ViolationKind::BodyTooLarge => 413,
            ViolationKind::UnsupportedMediaType | ViolationKind::UnsupportedEncoding => 415,
            ViolationKind::BreakerOpen | ViolationKind::Overloaded => 503,
            ViolationKind::BodyUnreadable => 500,
            _ => 400,
        }
    }
}

impl Default for ReplyConfig {
    fn default() -> Self {
        Self {
            statuses: ViolationKind::ALL.map(Self::default_status),
            detail: true,
        }
    }
}

/// The rule a request falls under: what [`Config::select`] answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Route {
    /// Index for [`Config::policy`]: 0 = top level, `i + 1` = rule `i`.
    pub policy: usize,
    /// The rule lets the request through uninspected.
    pub skip: bool,
    /// The path as written and as resolved fall under different rules; the
    /// filter refuses such a request (`ambiguous_path`).
    pub ambiguous: bool,
}

/// The whole, validated plugin configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The top-level policy, applied when no rule matches.
    pub default_policy: Policy,
    /// Rules in order; the first match wins.
    pub rules: Vec<Rule>,
    /// Media ranges that are JSON and get inspected.
    pub content_types: Vec<MediaRange>,
    /// A content type outside `content_types`.
    pub on_other_content_type: ContentTypeAction,
    /// No `content-type` header at all.
    pub on_missing_content_type: ContentTypeAction,
    /// A `content-encoding` other than `identity`.
    pub on_encoded_body: EncodedBodyAction,
    /// A body to be inspected whose `content-type` names another charset
    /// than UTF-8.
    pub on_other_charset: OtherCharsetAction,
    /// The host reports a body but hands over no bytes for it.
    pub on_unreadable_body: PassOrReject,
    /// Pause in the request headers callback while the body is held, so that
    /// a refused body's request never reaches the upstream at all. Only for
    /// an Envoy that sets `allow_on_headers_stop_iteration`: without it Envoy
    /// turns that pause into "stop everything" and the body callbacks never
    /// come, so every held request would stall.
    pub hold_headers: bool,
    /// The upstream routes paths ignoring case (Express's default, ASP.NET
    /// Core): a path such a router would put under another rule than the
    /// filter does is then ambiguous. Off by default, as in Envoy's routes:
    /// a case-sensitive service has no such second reading.
    pub case_insensitive_paths: bool,
    /// Some rule matches on `methods`: only then can a method override
    /// header change the rule (see [`Config::select_overridden`]).
    pub methods_matter: bool,
    /// The headers whose `_` or `.` spellings make a request
    /// `ambiguous_header`: [`TWINNED_HEADERS`] and the header any breaker
    /// is scoped by (PHP reads `x.api.key` as `x-api-key`: a client could
    /// be shed by one key and served by another).
    pub(crate) twinned_headers: CgiNames,
    /// Bytes the requests not yet judged may hold between them for their
    /// inspection (key tables, nesting stacks, decoders), in one VM for this
    /// configuration; `None` for no bound. The VM's memory is capped (1 GiB in
    /// Envoy's V8), and running out traps the plugin, which under
    /// `FAIL_CLOSED` fails every request on that worker from then on: a
    /// request that would take the total past this bound is refused with
    /// 503 `overloaded` instead.
    pub max_memory_bytes: Option<u64>,
    /// The most request lines (refusals, breaker sheds, requests reported
    /// only, the breaker's warnings about a request) each worker logs in a
    /// second for this configuration; `None` for no bound. Counters count
    /// every request; the log says how many lines it left out.
    pub max_log_lines_per_second: Option<u64>,
    /// What the counters' names start with (`json_sanitizer`). Envoy adds
    /// up every instance's counters of one name, whatever its listener,
    /// `vm_id` or configuration: instances that must be told apart on a
    /// dashboard need prefixes of their own.
    pub metrics_prefix: String,
    /// Local reply settings.
    pub reply: ReplyConfig,
}

/// The default `metrics_prefix`, the plugin's name.
pub const DEFAULT_METRICS_PREFIX: &str = "json_sanitizer";

/// The most characters `metrics_prefix` may have.
pub const MAX_METRICS_PREFIX_CHARS: usize = 64;

/// A `metrics_prefix` is a letter, then letters, digits and `_`: one word,
/// which Envoy's `/stats` and its Prometheus names keep as written (a `.`
/// would make it two segments of the stat name, and Prometheus turns `.`
/// and `-` into `_`, so `a.b` and `a_b` would be one series there). It may
/// not hold the word `rule`: Prometheus would read `x_rule_orders` as the
/// counters of rule `orders` under prefix `x` (`x.rule.orders.*`).
fn check_metrics_prefix(prefix: &str) -> Result<(), ConfigError> {
    let fault = if prefix.is_empty() {
        Some("is empty".to_string())
    } else if !prefix.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some("must start with an ASCII letter".to_string())
    } else if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Some("may hold only ASCII letters, digits and `_`".to_string())
    } else if prefix.len() > MAX_METRICS_PREFIX_CHARS {
        Some(format!(
            "has {} characters, more than {MAX_METRICS_PREFIX_CHARS}",
            prefix.len()
        ))
    } else if prefix.split('_').any(|word| word == RULE_METRICS_WORD) {
        Some(format!(
            "may not hold the word `{RULE_METRICS_WORD}`: in Prometheus, `x_{RULE_METRICS_WORD}_orders_requests_passed` would be the counters of rule `orders` under prefix `x`"
        ))
    } else {
        None
    };
    match fault {
        Some(why) => Err(ConfigError::new("metrics_prefix", why)),
        None => Ok(()),
    }
}

/// The default `max_memory_bytes`: 256 MiB, a quarter of the memory Envoy's
/// V8 gives a VM, which leaves the rest for everything else a request holds.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 256 << 20;

/// The least `max_memory_bytes` may be. One request within the default
/// limits can need about 5 MiB for its keys (and is refused under a smaller
/// bound); below 1 MiB even ordinary bodies would be.
pub const MIN_MAX_MEMORY_BYTES: u64 = 1 << 20;

/// The default `hold_bytes`: 64 KiB, the size of one Envoy read, so typical
/// API bodies are answered cleanly before the upstream sees a body byte.
pub const DEFAULT_HOLD_BYTES: u64 = 64 * 1024;

/// The media types that common frameworks read as JSON by default: besides
/// `application/json`, the `+json` suffix under any type (ASP.NET Core
/// takes `text/x+json`), anything starting with `application/json`
/// (Fastify 4 and Echo: `application/jsonx`, `application/json5`),
/// `text/json` (ASP.NET Core), `text/x-json` and `application/jsonrequest`
/// (Rails), `application/x-json`, and `application/csp-report` (Koa's body
/// parsers). Left out, they would be passed uninspected to a service that
/// parses them. `application/json` comes first: it matches with one compare.
fn default_content_types() -> Vec<String> {
    [
        "application/json",
        "application/json*",
        "*/*+json",
        "text/json",
        "text/x-json",
        "application/x-json",
        "application/csp-report",
    ]
    .map(String::from)
    .to_vec()
}
fn default_missing() -> ContentTypeAction {
    ContentTypeAction::Inspect
}
fn default_other() -> ContentTypeAction {
    ContentTypeAction::Pass
}
fn yes() -> bool {
    true
}
fn default_max_memory() -> Option<u64> {
    Some(DEFAULT_MAX_MEMORY_BYTES)
}

/// The default `max_log_lines_per_second`: 100 lines of about 300 bytes a
/// second per worker, enough to see every refusal of ordinary traffic and
/// little enough that a flood of refusals cannot fill the sidecar's log.
pub const DEFAULT_MAX_LOG_LINES_PER_SECOND: u64 = 100;

fn default_max_log_lines() -> Option<u64> {
    Some(DEFAULT_MAX_LOG_LINES_PER_SECOND)
}
fn default_metrics_prefix() -> String {
    DEFAULT_METRICS_PREFIX.to_string()
}

/// The configuration as written, before sections are merged and checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    hold_bytes: Option<u64>,
    #[serde(default)]
    limits: Map<String, Value>,
    #[serde(default)]
    json: Map<String, Value>,
    #[serde(default)]
    breaker: Map<String, Value>,
    #[serde(default = "default_content_types")]
    content_types: Vec<String>,
    #[serde(default = "default_other")]
    on_other_content_type: ContentTypeAction,
    #[serde(default = "default_missing")]
    on_missing_content_type: ContentTypeAction,
    #[serde(default)]
    on_encoded_body: EncodedBodyAction,
    #[serde(default)]
    on_other_charset: OtherCharsetAction,
    #[serde(default)]
    on_unreadable_body: PassOrReject,
    #[serde(default)]
    hold_headers: bool,
    #[serde(default)]
    case_insensitive_paths: bool,
    #[serde(default = "default_max_memory")]
    max_memory_bytes: Option<u64>,
    #[serde(default = "default_max_log_lines")]
    max_log_lines_per_second: Option<u64>,
    #[serde(default = "default_metrics_prefix")]
    metrics_prefix: String,
    #[serde(default)]
    rules: Vec<Value>,
    #[serde(default)]
    reply: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "match")]
    matcher: Value,
    #[serde(default)]
    skip: bool,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    hold_bytes: Option<u64>,
    #[serde(default)]
    limits: Option<Map<String, Value>>,
    #[serde(default)]
    json: Option<Map<String, Value>>,
    #[serde(default)]
    breaker: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReply {
    #[serde(default)]
    statuses: Map<String, Value>,
    #[serde(default = "yes")]
    detail: bool,
}

/// Deserializes `value` as `T`, turning a failure into an error that names
/// the field path under `parent`.
///
/// The configuration is only ever one level of plain fields per section, so
/// the field is found by probing: the member whose removal makes the section
/// valid is the culprit; failing that (two bad members), the first member
/// that is refused on its own in a section whose members are all optional,
/// reported with its own error. (This replaces a path-tracking deserializer
/// that cost a fifth of the module's size.)
fn typed<T: DeserializeOwned>(parent: &str, value: Value) -> Result<T, ConfigError> {
    serde_json::from_value::<T>(value.clone()).map_err(|e| {
        culprit(parent, value, e, &|v| {
            serde_json::from_value::<T>(v).map(drop)
        })
    })
}

/// The error for a section `value` that `accepts` refused with `e`. Not
/// generic, so the probing is in the module once rather than once per type.
fn culprit(
    parent: &str,
    value: Value,
    e: serde_json::Error,
    accepts: &dyn Fn(Value) -> Result<(), serde_json::Error>,
) -> ConfigError {
    let mut found = None;
    if let Value::Object(map) = &value {
        found = map
            .keys()
            .find(|k| {
                let mut without = map.clone();
                without.remove(k.as_str());
                accepts(Value::Object(without)).is_ok()
            })
            .map(|k| (k.clone(), e.to_string()));
        if found.is_none() {
            // Several members are wrong: try each on a base the type accepts,
            // nothing or one member alone (a rule needs its `match`).
            let base = std::iter::once(Map::new())
                .chain(
                    map.iter()
                        .map(|(k, v)| Map::from_iter([(k.clone(), v.clone())])),
                )
                .find(|base| accepts(Value::Object(base.clone())).is_ok());
            if let Some(base) = base {
                found = map
                    .iter()
                    .filter(|(k, _)| !base.contains_key(*k))
                    .find_map(|(k, v)| {
                        let mut probe = base.clone();
                        probe.insert(k.clone(), v.clone());
                        accepts(Value::Object(probe))
                            .err()
                            .map(|e| (k.clone(), e.to_string()))
                    });
            }
        }
    }
    let (field, reason) = match (found, parent.is_empty()) {
        (Some((k, reason)), true) => (k, reason),
        (Some((k, reason)), false) => (format!("{parent}.{k}"), reason),
        (None, true) => ("<configuration>".to_string(), e.to_string()),
        (None, false) => (parent.to_string(), e.to_string()),
    };
    ConfigError::new(field, reason)
}

/// Refuses a configuration that names a member twice in one object, which
/// serde_json would read as its last value: `{"max_depth":10,"max_depth":1000}`
/// runs with 1000, and whoever reads the file sees 10 first. The plugin's
/// own inspector finds it; the key is named as written.
fn refuse_duplicate_keys(bytes: &[u8]) -> Result<(), ConfigError> {
    let options = JsonOptions {
        allow_bom: true,
        allow_lone_surrogates: true,
        ..JsonOptions::default()
    };
    let mut inspector = crate::inspector::Inspector::new(&Limits::UNLIMITED, &options);
    let found = inspector.feed(bytes).and_then(|()| inspector.finish());
    let Err(v) = found else { return Ok(()) };
    if v.kind != ViolationKind::DuplicateKey {
        // serde_json accepted the document; anything else is its call.
        return Ok(());
    }
    let at = v.offset.and_then(|o| usize::try_from(o).ok()).unwrap_or(0);
    let key = bytes.get(at..).map_or(&[][..], |rest| {
        let mut escaped = false;
        let end = rest
            .iter()
            .enumerate()
            .skip(1)
            .find(|&(_, &b)| {
                let closes = b == b'"' && !escaped;
                escaped = b == b'\\' && !escaped;
                closes
            })
            .map_or(rest.len(), |(i, _)| i + 1);
        &rest[..end]
    });
    Err(ConfigError::new(
        "<configuration>",
        format!(
            "the key {} appears twice in one object (at byte {at}); give each field once",
            String::from_utf8_lossy(key)
        ),
    ))
}

/// `base` with the members of `over` replacing its own.
fn merged(base: &Map<String, Value>, over: Option<&Map<String, Value>>) -> Value {
    let mut out = base.clone();
    if let Some(over) = over {
        for (k, v) in over {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn check_limits(limits: &Limits) -> Result<(), ConfigError> {
    for (name, value) in limits.named() {
        if value == Some(0) {
            return Err(ConfigError::new(
                name,
                "must be at least 1 (use null for no limit)",
            ));
        }
    }
    if limits
        .max_exponent_digits
        .is_some_and(|d| d < MIN_EXPONENT_DIGITS)
    {
        return Err(ConfigError::new(
            "max_exponent_digits",
            format!(
                "must be at least {MIN_EXPONENT_DIGITS} (every double's exponent has up to three digits; use null for no limit)"
            ),
        ));
    }
    Ok(())
}

/// `report_only` names violations that can be reported instead of refused,
/// each once, and only ones whose check is on. `inherited`: a rule's list
/// that came from the top level, which the message then says.
fn check_json(json: &JsonOptions, inherited: bool) -> Result<(), ConfigError> {
    for (i, &kind) in json.report_only.iter().enumerate() {
        let field = format!("report_only[{i}]");
        if !REPORTABLE.contains(&kind) {
            return Err(ConfigError::new(
                field,
                format!(
                    "`{kind}` cannot be reported instead of refused (only duplicate_key, lone_surrogate and number_out_of_range can; for everything, use `mode: report`)"
                ),
            ));
        }
        if json.report_only[..i].contains(&kind) {
            return Err(ConfigError::new(field, format!("`{kind}` is listed twice")));
        }
        let off = match kind {
            ViolationKind::DuplicateKey => {
                (json.duplicate_keys == DuplicateKeys::Allow).then_some("duplicate_keys is allow")
            }
            ViolationKind::LoneSurrogate => json
                .allow_lone_surrogates
                .then_some("allow_lone_surrogates is true"),
            _ => (json.numbers == Numbers::Any).then_some("numbers is any"),
        };
        if let Some(off) = off {
            let from = if inherited {
                " (the list is the top level's: give the rule its own `report_only`)"
            } else {
                ""
            };
            return Err(ConfigError::new(
                field,
                format!("`{kind}` is never found: {off}{from}"),
            ));
        }
    }
    Ok(())
}

/// The hold window of a policy: as configured (and then at most the body
/// limit), or by default 64 KiB capped at the body limit, so that lowering
/// `max_body_bytes` alone never makes a configuration invalid.
fn hold_window(configured: Option<u64>, limits: &Limits) -> Result<u64, ConfigError> {
    let max = limits.max_body_bytes.unwrap_or(u64::MAX);
    match configured {
        Some(hold) if hold > max => Err(ConfigError::new(
            "hold_bytes",
            format!("{hold} is above limits.max_body_bytes ({max}); holding more than the body limit cannot help"),
        )),
        Some(hold) => Ok(hold),
        None => Ok(DEFAULT_HOLD_BYTES.min(max)),
    }
}

impl Config {
    /// Parses and validates the plugin configuration. An empty (or
    /// whitespace-only) configuration means all defaults.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(bytes)
                .map_err(|e| ConfigError::new("<configuration>", format!("not valid JSON: {e}")))?
        };
        if !value.is_object() {
            return Err(ConfigError::new("<configuration>", "must be a JSON object"));
        }
        refuse_duplicate_keys(bytes)?;
        let raw: RawConfig = typed("", value)?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        check_metrics_prefix(&raw.metrics_prefix)?;
        let limits: Limits = typed("limits", Value::Object(raw.limits.clone()))?;
        check_limits(&limits).map_err(|e| e.within("limits"))?;
        let json: JsonOptions = typed("json", Value::Object(raw.json.clone()))?;
        check_json(&json, false).map_err(|e| e.within("json"))?;
        let breaker: BreakerConfig = typed("breaker", Value::Object(raw.breaker.clone()))?;
        breaker.validate().map_err(|e| e.within("breaker"))?;
        let hold_bytes = hold_window(raw.hold_bytes, &limits)?;
        let default_policy = Policy {
            name: "default".into(),
            mode: raw.mode,
            hold_bytes,
            limits,
            json,
            breaker,
            breaker_id: 0,
        };

        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, rule) in raw.rules.into_iter().enumerate() {
            let at = format!("rules[{i}]");
            let rule: RawRule = typed(&at, rule)?;
            let matcher: RuleMatch = typed(&format!("{at}.match"), rule.matcher.clone())?;
            let name = rule.name.clone().unwrap_or_else(|| format!("rule-{i}"));
            if name.is_empty() {
                return Err(ConfigError::new(format!("{at}.name"), "must not be empty"));
            }
            if rules.iter().any(|r: &Rule| r.policy.name == name) || name == "default" {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    format!(
                        "`{name}` is already used; rule names must be unique and not `default`"
                    ),
                ));
            }
            let label = super::rules::metric_label(&name);
            if let Some(other) = rules
                .iter()
                .map(|r: &Rule| r.policy.name.as_str())
                .find(|other| super::rules::metric_label(other) == label)
            {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    format!(
                        "`{name}` and `{other}` share the metric name `{metrics_prefix}.{RULE_METRICS_WORD}.{label}` (characters other than ASCII letters and digits become `_`)",
                        metrics_prefix = raw.metrics_prefix,
                    ),
                ));
            }
            matcher
                .validate()
                .map_err(|e| e.within(&format!("{at}.match")))?;
            if raw.case_insensitive_paths {
                if let Some((field, path)) = matcher.path() {
                    let same = rules.iter().position(|r: &Rule| {
                        r.matcher
                            .path()
                            .is_some_and(|(_, p)| p != path && p.eq_ignore_ascii_case(path))
                    });
                    if let Some(j) = same {
                        return Err(ConfigError::new(
                            format!("{at}.match.{field}"),
                            format!("`{path}` differs from rules[{j}]'s path only in case, and case_insensitive_paths makes them one path"),
                        ));
                    }
                }
            }
            if rule.skip {
                let unused = [
                    ("mode", rule.mode.is_some()),
                    ("hold_bytes", rule.hold_bytes.is_some()),
                    ("limits", rule.limits.is_some()),
                    ("json", rule.json.is_some()),
                    ("breaker", rule.breaker.is_some()),
                ];
                if let Some((field, _)) = unused.iter().find(|(_, given)| *given) {
                    return Err(ConfigError::new(
                        format!("{at}.{field}"),
                        "is never used: the rule skips inspection (`skip: true`)",
                    ));
                }
            }
            // Type-check the rule's own sections first so errors name them.
            for (section, map) in [("limits", &rule.limits), ("json", &rule.json)] {
                if let Some(map) = map {
                    let path = format!("{at}.{section}");
                    if section == "limits" {
                        let own: Limits = typed(&path, Value::Object(map.clone()))?;
                        check_limits(&own).map_err(|e| e.within(&path))?;
                    } else {
                        typed::<JsonOptions>(&path, Value::Object(map.clone()))?;
                    }
                }
            }
            if let Some(map) = &rule.breaker {
                let path = format!("{at}.breaker");
                typed::<BreakerConfig>(&path, Value::Object(map.clone()))?;
            }
            let limits: Limits = typed(
                &format!("{at}.limits"),
                merged(&raw.limits, rule.limits.as_ref()),
            )?;
            check_limits(&limits).map_err(|e| e.within(&format!("{at}.limits")))?;
            let json: JsonOptions =
                typed(&format!("{at}.json"), merged(&raw.json, rule.json.as_ref()))?;
            let inherited = !rule
                .json
                .as_ref()
                .is_some_and(|own| own.contains_key("report_only"));
            check_json(&json, inherited).map_err(|e| e.within(&format!("{at}.json")))?;
            let breaker: BreakerConfig = typed(
                &format!("{at}.breaker"),
                merged(&raw.breaker, rule.breaker.as_ref()),
            )?;
            breaker
                .validate()
                .map_err(|e| e.within(&format!("{at}.breaker")))?;
            let hold_bytes = match (rule.hold_bytes, raw.hold_bytes) {
                (Some(own), _) => hold_window(Some(own), &limits).map_err(|e| e.within(&at))?,
                // Inherited: the rule's body limit is what must change (or
                // the rule needs a hold window of its own).
                (None, Some(top)) => hold_window(Some(top), &limits).map_err(|_| {
                    ConfigError::new(
                        format!("{at}.limits.max_body_bytes"),
                        format!(
                            "{} is below the hold_bytes this rule inherits from the top level ({top}); give the rule its own hold_bytes",
                            limits.max_body_bytes.unwrap_or(u64::MAX)
                        ),
                    )
                })?,
                (None, None) => hold_window(None, &limits)?,
            };
            rules.push(Rule {
                matcher,
                skip: rule.skip,
                policy: Policy {
                    name,
                    mode: rule.mode.unwrap_or(default_policy.mode),
                    hold_bytes,
                    limits,
                    json,
                    breaker_id: if rule.breaker.is_some() { i + 1 } else { 0 },
                    breaker,
                },
            });
        }

        route_slots_apart(&default_policy, &rules)?;

        if raw.content_types.is_empty() {
            return Err(ConfigError::new(
                "content_types",
                "must list at least one media range (e.g. application/json)",
            ));
        }
        let mut content_types = Vec::with_capacity(raw.content_types.len());
        for (i, text) in raw.content_types.iter().enumerate() {
            content_types.push(
                MediaRange::parse(text)
                    .map_err(|reason| ConfigError::new(format!("content_types[{i}]"), reason))?,
            );
        }

        let raw_reply: RawReply = typed("reply", Value::Object(raw.reply))?;
        let mut reply = ReplyConfig {
            detail: raw_reply.detail,
            ..ReplyConfig::default()
        };
        for (name, status) in &raw_reply.statuses {
            let field = format!("reply.statuses.{name}");
            let Some(index) = ViolationKind::ALL.iter().position(|k| k.as_str() == name) else {
                return Err(ConfigError::new(
                    field,
                    "not a violation name (see the README's list)",
                ));
            };
            let status = match status.as_u64() {
                Some(code @ 400..=599) => code as u16,
                _ => {
                    return Err(ConfigError::new(
                        field,
                        format!("{status} is not a 4xx or 5xx status"),
                    ))
                }
            };
            reply.statuses[index] = status;
        }

        if raw.max_log_lines_per_second == Some(0) {
            return Err(ConfigError::new(
                "max_log_lines_per_second",
                "must be at least 1 (use null for no bound)",
            ));
        }
        if let Some(bytes) = raw.max_memory_bytes {
            if bytes < MIN_MAX_MEMORY_BYTES {
                return Err(ConfigError::new(
                    "max_memory_bytes",
                    format!("{bytes} is below {MIN_MAX_MEMORY_BYTES} (1 MiB), too little for ordinary requests; null for no bound"),
                ));
            }
        }

        let methods_matter = rules.iter().any(|r| r.matcher.methods.is_some());
        let scope_headers = std::iter::once(&default_policy)
            .chain(rules.iter().map(|r| &r.policy))
            .filter_map(|policy| match &policy.breaker.scope {
                Scope::Header(name) if policy.breaker.enabled => Some(name.clone()),
                _ => None,
            });
        let twinned_headers = CgiNames::new(
            TWINNED_HEADERS
                .map(String::from)
                .into_iter()
                .chain(scope_headers),
        );
        Ok(Config {
            default_policy,
            rules,
            content_types,
            on_other_content_type: raw.on_other_content_type,
            on_missing_content_type: raw.on_missing_content_type,
            on_encoded_body: raw.on_encoded_body,
            on_other_charset: raw.on_other_charset,
            on_unreadable_body: raw.on_unreadable_body,
            hold_headers: raw.hold_headers,
            case_insensitive_paths: raw.case_insensitive_paths,
            methods_matter,
            twinned_headers,
            max_memory_bytes: raw.max_memory_bytes,
            max_log_lines_per_second: raw.max_log_lines_per_second,
            metrics_prefix: raw.metrics_prefix,
            reply,
        })
    }

    /// The rule for a request, from its method, path and authority (given
    /// by `route`, which is only called when there are rules to match: without
    /// rules every request gets the top level, and the filter need not look
    /// the headers up). First matching rule wins.
    ///
    /// Rules match the path as a resolving upstream reads it (see
    /// [`super::path::normalize`]). When the path as written would select
    /// another rule (or skip where the other does not), an upstream could
    /// route it either way: the request is [`Route::ambiguous`], under the
    /// enforcing one of the two policies if there is one.
    pub fn select<S: AsRef<str>>(&self, route: impl FnOnce() -> [S; 3]) -> Route {
        self.select_overridden(route, Vec::<&str>::new)
    }

    /// [`Config::select`], with every value of the [`METHOD_OVERRIDES`]
    /// headers (asked for only for a POST when a rule matches on methods):
    /// Rails, Symfony, Laravel, gorilla/handlers and Express's
    /// `method-override` route a POST by the method such a header names, or
    /// a `_method` in the query string, so a method there that would select
    /// another rule is another reading of the request, and as ambiguous as a
    /// path read two ways. Values that are no word of letters (empty,
    /// `PATCH!`) are ignored, as those frameworks ignore them.
    pub fn select_overridden<S: AsRef<str>, O: AsRef<str>>(
        &self,
        route: impl FnOnce() -> [S; 3],
        overrides: impl FnOnce() -> Vec<O>,
    ) -> Route {
        if self.rules.is_empty() {
            return Route::default();
        }
        let [method, path, authority] = route();
        let (method, with_query, authority) = (method.as_ref(), path.as_ref(), authority.as_ref());
        let raw = super::rules::without_query(with_query);
        let (normalized, settled) = super::path::resolve(raw);
        let first_as = |method: &str, path: &str, ignore_case: bool| {
            let index = self.rules.iter().position(|r| {
                r.matcher
                    .matches_path_as(method, path, authority, ignore_case)
            });
            Route {
                policy: index.map_or(0, |i| i + 1),
                skip: index.is_some_and(|i| self.rules[i].skip),
                ambiguous: false,
            }
        };
        let first = |path: &str, ignore_case: bool| first_as(method, path, ignore_case);
        let chosen = first(&normalized, false);
        // Three readings: as resolved, as written, and as a case-insensitive
        // router reads it (`/API/search` is `/api/search` to Express).
        let as_written = if normalized == raw {
            chosen
        } else {
            first(raw, false)
        };
        let folded = if self.case_insensitive_paths {
            first(&normalized, true)
        } else {
            chosen
        };
        // The methods an override names, upper-cased as those frameworks do
        // (rules match methods case and all), each with every reading of the
        // path. Empty unless there are overrides: no allocation.
        let mut overridden = Vec::new();
        let values = (self.methods_matter && method == "POST").then(overrides);
        // The usual POST has neither overrides nor a query: the iterators
        // below cost more than these tests.
        let has_query = with_query.len() != raw.len();
        if let Some(values) = values.filter(|v| !v.is_empty() || has_query) {
            let headers = values.iter().flat_map(|v| v.as_ref().split(','));
            let named = headers
                .map(str::to_owned)
                .chain(super::path::query_values(with_query, "_method"));
            for name in named {
                let name = name.trim_ascii().to_ascii_uppercase();
                if !Self::is_method(&name) {
                    continue;
                }
                overridden.push(first_as(&name, &normalized, false));
                if normalized != raw {
                    overridden.push(first_as(&name, raw, false));
                }
                if self.case_insensitive_paths {
                    overridden.push(first_as(&name, &normalized, true));
                }
            }
        }
        let overridden = overridden.into_iter();
        // Beyond the decoding rounds a path may still decode further: as
        // ambiguous as one whose readings differ.
        if settled
            && as_written == chosen
            && folded == chosen
            && overridden.clone().all(|r| r == chosen)
        {
            return chosen;
        }
        // The resolved reading's rule judges, unless it is lenient and
        // another reading's is not.
        let lenient = |r: &Route| r.skip || self.policy(r.policy).mode == Mode::Report;
        let policy = if lenient(&chosen) {
            [as_written, folded]
                .into_iter()
                .chain(overridden)
                .find(|r| !lenient(r))
                .unwrap_or(chosen)
                .policy
        } else {
            chosen.policy
        };
        Route {
            policy,
            skip: false,
            ambiguous: true,
        }
    }

    /// Whether `name` could be a method a framework routes by: a token of
    /// letters (Symfony takes any, Rack `LINK`, Express any of Node's, such
    /// as `SEARCH`), not an empty or garbled value, which they all ignore.
    fn is_method(name: &str) -> bool {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphabetic())
    }

    /// The policy at an index returned by [`Config::select`].
    pub fn policy(&self, index: usize) -> &Policy {
        index
            .checked_sub(1)
            .and_then(|i| self.rules.get(i))
            .map_or(&self.default_policy, |r| &r.policy)
    }

    /// Whether a `content-type` value names a media type we inspect.
    pub fn is_json_content_type(&self, content_type: &str) -> bool {
        self.read_content_types([content_type]).class == ContentTypeClass::Json
    }

    /// What a request's `content-type` values make of its body, and
    /// whether they name a charset other than UTF-8 (see
    /// [`super::media::read_content_types`]).
    pub fn read_content_types<S: AsRef<str>>(
        &self,
        values: impl IntoIterator<Item = S>,
    ) -> ContentTypes {
        super::media::read_content_types(&self.content_types, values)
    }

    /// Every policy: the top level, then each rule's.
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        std::iter::once(&self.default_policy).chain(self.rules.iter().map(|r| &r.policy))
    }

    /// What a valid configuration may still do other than meant, for
    /// `on_configure` to log: a policy that reads JSON Lines while
    /// `application/x-ndjson`, the usual JSON Lines type, is no JSON to
    /// `content_types` and other types pass, so that such bodies would go
    /// through uninspected.
    pub fn warnings(&self) -> Vec<String> {
        let ndjson_passes = self.on_other_content_type == ContentTypeAction::Pass
            && !self.content_types.iter().any(|r| r.matches(NDJSON));
        let reading_lines: Vec<&str> = std::iter::once(&self.default_policy)
            .chain(
                self.rules
                    .iter()
                    .filter(|rule| !rule.skip)
                    .map(|rule| &rule.policy),
            )
            .filter(|policy| policy.json.lines)
            .map(|policy| policy.name.as_str())
            .collect();
        if !ndjson_passes || reading_lines.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "json.lines is on (policies: {}), but `{NDJSON}` is not in content_types and on_other_content_type is pass: bodies sent so go through uninspected; add it to content_types",
            reading_lines.join(", ")
        )]
    }
}

/// The usual media type of JSON Lines (NDJSON's own).
const NDJSON: &str = "application/x-ndjson";

/// With `scope: route`, the top-level breaker gives each rule that uses it
/// a slot of its own, by its index: `max_keys` must leave room for them all,
/// or two rules would share a breaker (one rule's attack shedding the
/// other's traffic). Rules with a `breaker` section of their own have a
/// breaker each and are not counted.
fn route_slots_apart(default_policy: &Policy, rules: &[Rule]) -> Result<(), ConfigError> {
    let breaker = &default_policy.breaker;
    if !breaker.enabled || breaker.scope != Scope::Route {
        return Ok(());
    }
    let names = std::iter::once((0, default_policy.name.as_str())).chain(
        rules
            .iter()
            .enumerate()
            // Skipping and report-mode rules never ask a breaker.
            .filter(|(_, r)| !r.skip && r.policy.mode != Mode::Report && r.policy.breaker_id == 0)
            .map(|(i, r)| (i + 1, r.policy.name.as_str())),
    );
    let mut taken: Vec<(u32, &str)> = Vec::new();
    for (policy, name) in names {
        let input = ScopeInput {
            rule: name,
            policy,
            ..ScopeInput::default()
        };
        let slot = breaker.scope_key(&input).slot;
        if let Some((_, other)) = taken.iter().find(|(s, _)| *s == slot) {
            return Err(ConfigError::new(
                "breaker.max_keys",
                format!(
                    "{} slots are too few for scope route: rules `{other}` and `{name}` would share one breaker; give at least {}",
                    breaker.max_keys,
                    rules.len() + 1
                ),
            ));
        }
        taken.push((slot, name));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
