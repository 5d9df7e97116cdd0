//! Configuration: defaults, inheritance, and an error naming the field for
//! every way a configuration can be wrong.

use super::*;
use crate::inspector::DuplicateKeys;

fn parse(json: &str) -> Result<Config, ConfigError> {
    Config::parse(json.as_bytes())
}

fn field_of(json: &str) -> String {
    match parse(json) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e.field,
    }
}

#[test]
fn empty_configuration_means_all_defaults() {
    for empty in ["", "  \n", "{}"] {
        let c = parse(empty).unwrap();
        let p = &c.default_policy;
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.hold_bytes, 65536);
        assert_eq!(p.limits, Limits::default());
        assert_eq!(p.json, JsonOptions::default());
        assert!(!p.breaker.enabled);
        assert!(c.rules.is_empty());
        assert_eq!(c.on_other_content_type, ContentTypeAction::Pass);
        assert_eq!(c.on_missing_content_type, ContentTypeAction::Inspect);
        assert_eq!(c.on_encoded_body, EncodedBodyAction::Reject);
        assert_eq!(c.on_unreadable_body, PassOrReject::Reject);
        assert!(!c.hold_headers);
        assert_eq!(c.max_memory_bytes, Some(256 << 20));
        assert!(c.reply.detail);
        assert_eq!(c.reply.status(ViolationKind::TooDeep), 400);
        assert_eq!(c.reply.status(ViolationKind::BodyTooLarge), 413);
        assert_eq!(c.reply.status(ViolationKind::UnsupportedEncoding), 415);
        assert_eq!(c.reply.status(ViolationKind::BreakerOpen), 503);
        assert_eq!(c.reply.status(ViolationKind::Overloaded), 503);
        assert_eq!(c.reply.status(ViolationKind::BodyUnreadable), 500);
        assert!(c.is_json_content_type("application/json; charset=utf-8"));
        assert!(c.is_json_content_type("application/merge-patch+json"));
        assert!(!c.is_json_content_type("text/plain"));
        // What Rails, ASP.NET Core, Fastify 4 and Echo read as JSON
        // unasked, and Koa's body parsers a CSP report.
        for alias in [
            "text/json",
            "Text/X-JSON; charset=utf-8",
            "application/x-json",
            "application/JSONRequest",
            "application/jsonx",
            "application/json5",
            "Application/JSONP",
            "text/x+json",
            "foo/bar+json; v=1",
            "application/csp-report",
        ] {
            assert!(c.is_json_content_type(alias), "{alias}");
        }
        for other in [
            "application/x-ndjson",
            "text/plain",
            "application/xjson",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=json",
        ] {
            assert!(!c.is_json_content_type(other), "{other}");
        }
    }
}

#[test]
fn encoded_bodies_are_refused_passed_or_inspected() {
    for (name, want) in [
        ("reject", EncodedBodyAction::Reject),
        ("pass", EncodedBodyAction::Pass),
        ("inspect", EncodedBodyAction::Inspect),
    ] {
        let c = parse(&format!(r#"{{"on_encoded_body":"{name}"}}"#)).unwrap();
        assert_eq!(c.on_encoded_body, want, "{name}");
    }
}

#[test]
fn the_issue_example_parses() {
    let c = parse(
        r#"{
      "mode": "enforce", "hold_bytes": 65536,
      "limits": { "max_body_bytes": 2097152, "max_depth": 100, "max_array_elements": 10000,
                  "max_object_entries": 1000, "max_key_bytes": 256, "max_string_bytes": 1048576,
                  "max_number_chars": 100 },
      "json": { "duplicate_keys": "reject", "allow_bom": false, "allow_lone_surrogates": false,
                "allow_empty_body": false, "numbers": "any" },
      "content_types": ["application/json", "application/*+json"],
      "on_other_content_type": "pass", "on_missing_content_type": "inspect",
      "on_encoded_body": "reject",
      "rules": [ { "name": "uploads", "match": { "path_prefix": "/upload", "methods": ["POST"] },
                   "skip": true } ],
      "reply": { "statuses": { "too_deep": 422 }, "detail": true },
      "breaker": { }
    }"#,
    )
    .unwrap();
    assert_eq!(c.reply.status(ViolationKind::TooDeep), 422);
    assert_eq!(c.rules.len(), 1);
    let Route {
        policy: index,
        skip,
        ..
    } = c.select(|| ["POST", "/upload/a", "x"]);
    let policy = c.policy(index);
    assert!(skip);
    assert_eq!(policy.name, "uploads");
    let Route {
        policy: index,
        skip,
        ..
    } = c.select(|| ["GET", "/upload/a", "x"]);
    let policy = c.policy(index);
    assert!(!skip);
    assert_eq!(policy.name, "default");
}

#[test]
fn rules_inherit_what_they_omit_and_first_match_wins() {
    let c = parse(
        r#"{
      "mode": "report", "hold_bytes": 1000,
      "limits": { "max_depth": 10, "max_body_bytes": 5000 },
      "json": { "allow_bom": true },
      "breaker": { "enabled": true, "open_seconds": 60 },
      "rules": [
        { "name": "strict", "match": { "path_prefix": "/api" }, "mode": "enforce",
          "limits": { "max_depth": 3 }, "json": { "duplicate_keys": "allow" },
          "breaker": { "consecutive_failures": 5 } },
        { "name": "shadowed", "match": { "path_prefix": "/api/v2" }, "skip": true },
        { "name": "unlimited", "match": { "authority": "bulk.internal" },
          "limits": { "max_body_bytes": null }, "hold_bytes": 4000 }
      ]
    }"#,
    )
    .unwrap();
    let strict = c.policy(c.select(|| ["POST", "/api/v2/x", "a"]).policy);
    assert_eq!(strict.name, "strict");
    assert_eq!(strict.mode, Mode::Enforce);
    assert_eq!(strict.hold_bytes, 1000);
    assert_eq!(strict.limits.max_depth, Some(3));
    assert_eq!(strict.limits.max_body_bytes, Some(5000));
    assert_eq!(strict.limits.max_key_bytes, Some(256));
    assert_eq!(strict.json.duplicate_keys, DuplicateKeys::Allow);
    assert!(strict.json.allow_bom);
    assert!(strict.breaker.enabled);
    assert_eq!(strict.breaker.open_seconds, 60);
    assert_eq!(strict.breaker.consecutive_failures, 5);
    assert_eq!(strict.breaker_id, 1);
    let unlimited = c.policy(c.select(|| ["POST", "/other", "bulk.internal:8080"]).policy);
    assert_eq!(unlimited.limits.max_body_bytes, None);
    assert_eq!(unlimited.limits.max_depth, Some(10));
    assert_eq!(unlimited.hold_bytes, 4000);
    assert_eq!(unlimited.mode, Mode::Report);
    assert_eq!(unlimited.breaker_id, 0);
    assert_eq!(
        c.policy(c.select(|| ["POST", "/x", "a"]).policy).name,
        "default"
    );
    assert_eq!(c.policies().count(), 4);
}

#[test]
fn duplicate_keys_take_each_documented_value() {
    for (text, want) in [
        ("reject", DuplicateKeys::Reject),
        (
            "reject_case_insensitive",
            DuplicateKeys::RejectCaseInsensitive,
        ),
        ("allow", DuplicateKeys::Allow),
    ] {
        let c = parse(&format!(r#"{{"json":{{"duplicate_keys":"{text}"}}}}"#)).unwrap();
        let policy = c.policy(c.select(|| ["POST", "/", "a"]).policy);
        assert_eq!(policy.json.duplicate_keys, want, "{text}");
    }
    let err = parse(r#"{"json":{"duplicate_keys":"case_insensitive"}}"#).unwrap_err();
    assert!(err.to_string().contains("reject_case_insensitive"), "{err}");
}

#[test]
fn without_rules_the_route_is_never_asked_for() {
    let c = Config::parse(b"{}").unwrap();
    let route = || -> [&str; 3] { panic!("looked up the route headers") };
    assert_eq!(c.select(route), Route::default());
}

#[test]
fn every_error_names_its_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"modes":"enforce"}"#, "modes"),
        (r#"{"mode":"block"}"#, "mode"),
        (r#"{"hold_bytes":-1}"#, "hold_bytes"),
        (r#"{"hold_bytes":"64k"}"#, "hold_bytes"),
        (r#"{"hold_bytes":3000000}"#, "hold_bytes"),
        (r#"{"limits":{"max_depth":0}}"#, "limits.max_depth"),
        (
            r#"{"limits":{"max_array_elements":0}}"#,
            "limits.max_array_elements",
        ),
        (
            r#"{"limits":{"max_object_entries":0}}"#,
            "limits.max_object_entries",
        ),
        (r#"{"limits":{"max_key_bytes":0}}"#, "limits.max_key_bytes"),
        (
            r#"{"limits":{"max_string_bytes":0}}"#,
            "limits.max_string_bytes",
        ),
        (
            r#"{"limits":{"max_number_chars":0}}"#,
            "limits.max_number_chars",
        ),
        (
            r#"{"limits":{"max_exponent_digits":2}}"#,
            "limits.max_exponent_digits",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"limits":{"max_exponent_digits":0}}]}"#,
            "rules[0].limits.max_exponent_digits",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"limits":{"max_key_bytes":0}}]}"#,
            "rules[0].limits.max_key_bytes",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"limits":{"max_number_chars":0}}]}"#,
            "rules[0].limits.max_number_chars",
        ),
        (r#"{"json":{"numbers":"double"}}"#, "json.numbers"),
        (r#"{"json":{"lines":"yes"}}"#, "json.lines"),
        (
            r#"{"json":{"allow_empty_body":1}}"#,
            "json.allow_empty_body",
        ),
        (
            r#"{"json":{"allow_lone_surrogates":null}}"#,
            "json.allow_lone_surrogates",
        ),
        (r#"{"on_other_charset":"sniff"}"#, "on_other_charset"),
        (r#"{"hold_headers":"true"}"#, "hold_headers"),
        (r#"{"case_insensitive_paths":1}"#, "case_insensitive_paths"),
        (r#"{"max_memory_bytes":1048575}"#, "max_memory_bytes"),
        (r#"{"max_memory_bytes":-1}"#, "max_memory_bytes"),
        (r#"{"max_memory_bytes":"1Gi"}"#, "max_memory_bytes"),
        (r#"{"metrics_prefix":7}"#, "metrics_prefix"),
        (
            r#"{"max_log_lines_per_second":0}"#,
            "max_log_lines_per_second",
        ),
        (
            r#"{"max_log_lines_per_second":-1}"#,
            "max_log_lines_per_second",
        ),
        (
            r#"{"max_log_lines_per_second":"100"}"#,
            "max_log_lines_per_second",
        ),
        (r#"{"metrics_prefix":null}"#, "metrics_prefix"),
        (r#"{"reply":{"detail":"no"}}"#, "reply.detail"),
        (r#"{"limits":{"max_depth":-5}}"#, "limits.max_depth"),
        (
            r#"{"limits":{"max_string_bytes":1.5}}"#,
            "limits.max_string_bytes",
        ),
        (r#"{"limits":{"max_dept":5}}"#, "limits.max_dept"),
        (
            r#"{"limits":{"max_body_bytes":0}}"#,
            "limits.max_body_bytes",
        ),
        (
            r#"{"json":{"duplicate_keys":"first"}}"#,
            "json.duplicate_keys",
        ),
        (r#"{"json":{"allow_bom":"yes"}}"#, "json.allow_bom"),
        (r#"{"content_types":[]}"#, "content_types"),
        (r#"{"content_types":["json"]}"#, "content_types[0]"),
        (
            r#"{"content_types":["application/json","x/"]}"#,
            "content_types[1]",
        ),
        (
            r#"{"on_other_content_type":"drop"}"#,
            "on_other_content_type",
        ),
        (
            r#"{"on_missing_content_type":1}"#,
            "on_missing_content_type",
        ),
        (r#"{"on_encoded_body":"decode"}"#, "on_encoded_body"),
        (r#"{"on_unreadable_body":"inspect"}"#, "on_unreadable_body"),
        (r#"{"on_unreadable_body":"ignore"}"#, "on_unreadable_body"),
        (
            r#"{"reply":{"statuses":{"too_deep":200}}}"#,
            "reply.statuses.too_deep",
        ),
        (
            r#"{"reply":{"statuses":{"too_deep":600}}}"#,
            "reply.statuses.too_deep",
        ),
        (
            r#"{"reply":{"statuses":{"too_deep":-400}}}"#,
            "reply.statuses.too_deep",
        ),
        (
            r#"{"reply":{"statuses":{"deep":400}}}"#,
            "reply.statuses.deep",
        ),
        (r#"{"reply":{"details":true}}"#, "reply.details"),
        (
            r#"{"breaker":{"failure_ratio":2}}"#,
            "breaker.failure_ratio",
        ),
        (r#"{"breaker":{"enable":true}}"#, "breaker.enable"),
        (r#"{"rules":[{"match":{}}]}"#, "rules[0].match"),
        (r#"{"rules":[{"name":"a"}]}"#, "rules[0]"),
        (
            r#"{"rules":[{"match":{"path":"/x"}}]}"#,
            "rules[0].match.path",
        ),
        (
            r#"{"rules":[{"match":{"methods":[]}}]}"#,
            "rules[0].match.methods",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"limits":{"max_depth":0}}]}"#,
            "rules[0].limits.max_depth",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"limits":{"max_depth":"x"}}]}"#,
            "rules[0].limits.max_depth",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"json":{"x":1}}]}"#,
            "rules[0].json.x",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"breaker":{"backoff":0.5}}]}"#,
            "rules[0].breaker.backoff",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"hold_bytes":9999999}]}"#,
            "rules[0].hold_bytes",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"skip":"yes"}]}"#,
            "rules[0].skip",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"mode":"x"}]}"#,
            "rules[0].mode",
        ),
        (
            r#"{"rules":[{"name":"a","match":{"path_prefix":"/a"}},{"name":"a","match":{"path_prefix":"/b"}}]}"#,
            "rules[1].name",
        ),
        (
            r#"{"rules":[{"name":"default","match":{"path_prefix":"/a"}}]}"#,
            "rules[0].name",
        ),
        (
            r#"{"rules":[{"name":"","match":{"path_prefix":"/a"}}]}"#,
            "rules[0].name",
        ),
        (
            r#"{"json":{"report_only":["too_deep"]}}"#,
            "json.report_only[0]",
        ),
        (r#"{"json":{"report_only":["nope"]}}"#, "json.report_only"),
        (
            r#"{"json":{"report_only":"duplicate_key"}}"#,
            "json.report_only",
        ),
        (
            r#"{"json":{"report_only":["duplicate_key","duplicate_key"]}}"#,
            "json.report_only[1]",
        ),
        (
            r#"{"json":{"report_only":["number_out_of_range"]}}"#,
            "json.report_only[0]",
        ),
        (
            r#"{"json":{"duplicate_keys":"allow","report_only":["duplicate_key"]}}"#,
            "json.report_only[0]",
        ),
        (
            r#"{"json":{"allow_lone_surrogates":true,"report_only":["duplicate_key","lone_surrogate"]}}"#,
            "json.report_only[1]",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"},"json":{"report_only":["bom"]}}]}"#,
            "rules[0].json.report_only[0]",
        ),
        // Two names, one metric name (Prometheus writes `-` as `_` too).
        (
            r#"{"rules":[{"name":"bulk-import","match":{"path_prefix":"/a"}},{"name":"bulk_import","match":{"path_prefix":"/b"}}]}"#,
            "rules[1].name",
        ),
        (
            r#"{"rules":[{"match":{"path_prefix":"/a"}},{"name":"rule_0","match":{"path_prefix":"/b"}}]}"#,
            "rules[1].name",
        ),
        (
            r#"{"rules":[{"name":"a.b","match":{"path_prefix":"/a"}},{"name":"a b","match":{"path_prefix":"/b"}}]}"#,
            "rules[1].name",
        ),
        (
            r#"{"rules":[{"name":"default!","match":{"path_prefix":"/a"}},{"name":"default?","match":{"path_prefix":"/b"}}]}"#,
            "rules[1].name",
        ),
        (r#"{"rules":{}}"#, "rules"),
        ("[]", "<configuration>"),
        ("{\"mode\":", "<configuration>"),
    ];
    for &(json, field) in cases {
        assert_eq!(field_of(json), field, "{json}");
    }
    let e = parse(r#"{"rules":[{"name":"a.b","match":{"path_prefix":"/a"}},{"name":"a_b","match":{"path_prefix":"/b"}}]}"#)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("`a_b` and `a.b` share the metric name `json_sanitizer.rule.a_b`"),
        "{e}"
    );
    let e = parse(r#"{"metrics_prefix":"edge","rules":[{"name":"a-b","match":{"path_prefix":"/a"}},{"name":"a_b","match":{"path_prefix":"/b"}}]}"#)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("`a_b` and `a-b` share the metric name `edge.rule.a_b`"),
        "{e}"
    );
    let e = parse(r#"{"json":{"report_only":["too_deep"]}}"#).unwrap_err();
    assert!(e.to_string().contains("use `mode: report`"), "{e}");
    let e = parse(r#"{"json":{"report_only":["number_out_of_range"]}}"#).unwrap_err();
    assert!(e.to_string().contains("never found: numbers is any"), "{e}");
    let e = parse(
        r#"{"json":{"report_only":["duplicate_key"]},
            "rules":[{"match":{"path_prefix":"/a"},"json":{"duplicate_keys":"allow"}}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.field, "rules[0].json.report_only[0]");
    assert!(
        e.to_string()
            .contains("give the rule its own `report_only`"),
        "{e}"
    );
    let c = parse(
        r#"{"json":{"numbers":"interoperable","report_only":["number_out_of_range","duplicate_key","lone_surrogate"]},
            "rules":[{"match":{"path_prefix":"/a"},"json":{"report_only":[]}}]}"#,
    )
    .unwrap();
    assert_eq!(c.default_policy.json.report_only.len(), 3);
    assert!(c.rules[0].policy.json.report_only.is_empty());
    // Names that stay apart in metrics are fine, whatever their characters.
    parse(r#"{"rules":[{"name":"Default","match":{"path_prefix":"/a"}},{"name":"orders v2","match":{"path_prefix":"/b"}}]}"#)
        .unwrap();
    let e = parse(r#"{"limits":{"max_depth":0}}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid configuration: field `limits.max_depth`: must be at least 1 (use null for no limit)"
    );
}

#[test]
fn limits_at_their_smallest_and_unset_are_accepted() {
    let c = parse(r#"{"hold_bytes":0,"limits":{"max_body_bytes":1,"max_depth":1,"max_array_elements":1,"max_object_entries":1,"max_key_bytes":1,"max_string_bytes":1,"max_number_chars":1}}"#).unwrap();
    assert_eq!(c.default_policy.limits.max_depth, Some(1));
    let c = parse(r#"{"limits":{"max_body_bytes":null,"max_depth":null}}"#).unwrap();
    assert_eq!(c.default_policy.limits.max_body_bytes, None);
    assert_eq!(c.default_policy.limits.max_depth, None);
    // Lowering the body limit alone lowers the default hold window with it.
    let c = parse(r#"{"limits":{"max_body_bytes":1000}}"#).unwrap();
    assert_eq!(c.default_policy.hold_bytes, 1000);
    let c = parse(r#"{"rules":[{"match":{"path_prefix":"/a"},"limits":{"max_body_bytes":10}}]}"#)
        .unwrap();
    assert_eq!(c.rules[0].policy.hold_bytes, 10);
    assert_eq!(c.default_policy.hold_bytes, 65536);
    // hold_bytes may equal max_body_bytes (full buffering).
    assert!(parse(r#"{"hold_bytes":2097152}"#).is_ok());
    assert!(parse(r#"{"hold_bytes":2097153}"#).is_err());
    // Statuses at the edges of the allowed range.
    assert!(parse(r#"{"reply":{"statuses":{"too_deep":400,"breaker_open":599}}}"#).is_ok());
    assert!(parse(r#"{"reply":{"statuses":{"too_deep":399}}}"#).is_err());
}

/// With `case_insensitive_paths`, a path that a case-insensitive router
/// (Express's default) reads under another rule than the filter would is
/// ambiguous: into the strict rule, out of the skipping one. Capitals that
/// change no rule are fine; rule paths that differ only in case are refused.
#[test]
fn case_insensitive_paths_add_a_case_folded_reading() {
    let text = include_str!("../../../../examples/per-route.json");
    let c = parse(&text.replacen('{', r#"{"case_insensitive_paths": true,"#, 1)).unwrap();
    let rule = |path: &str| {
        let r = c.select(|| ["POST", path, "api.example.com"]);
        (c.policy(r.policy).name.clone(), r.skip, r.ambiguous)
    };
    let ambiguous = |name: &str| (name.to_string(), false, true);
    assert_eq!(rule("/API/search"), ambiguous("default"));
    assert_eq!(rule("/api/Search?q=1"), ambiguous("default"));
    assert_eq!(rule("/Upload/x"), ambiguous("default"));
    assert_eq!(rule("/Orders/A1"), ("default".into(), false, false));
    assert_eq!(rule("/upload/Photo.JSON"), ("uploads".into(), true, false));
    assert_eq!(rule("/api/search"), ("search".into(), false, false));
    let e = parse(
        r#"{"case_insensitive_paths": true, "rules": [{"match": {"path_prefix": "/api"}},
            {"match": {"path_exact": "/API"}}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.field, "rules[1].match.path_exact");
    assert!(e.reason.contains("only in case"), "{e}");
    assert!(parse(
        r#"{"rules": [{"match": {"path_prefix": "/api"}}, {"match": {"path_exact": "/API"}}]}"#
    )
    .is_ok());
}

/// A lenient resolved reading is judged by whichever other reading is
/// enforced, as written or case-folded: a detour through a skipping rule's
/// path does not make the case-folded strict rule's request report-only.
#[test]
fn an_ambiguous_path_is_judged_by_an_enforcing_reading() {
    let c = parse(
        r#"{"mode": "report", "case_insensitive_paths": true, "rules": [
            {"name": "search", "match": {"path_exact": "/api/search"}, "mode": "enforce"},
            {"name": "uploads", "match": {"path_separated_prefix": "/upload"}, "skip": true}]}"#,
    )
    .unwrap();
    let r = c.select(|| ["POST", "/upload/x%2F..%2F..%2FAPI/search", "a"]);
    assert!(r.ambiguous);
    assert_eq!(c.policy(r.policy).name, "search");
}

/// A method override that would put a POST under another rule (`/upload`
/// skips POST and PUT, not PATCH) is another reading of it: ambiguous,
/// under the enforcing policy. Every value of every override header counts,
/// and `_method` in the query string; one naming a method of the same rule,
/// in any case, or no method at all, changes nothing, and neither does any
/// override of another method than POST. Without rules on methods nothing
/// is read.
#[test]
fn method_overrides_that_change_the_rule_are_ambiguous() {
    let c = parse(include_str!("../../../../examples/per-route.json")).unwrap();
    let read_as = |method: &str, path: &str, overrides: &[&str]| {
        let r = c.select_overridden(|| [method, path, "a"], || overrides.to_vec());
        (c.policy(r.policy).name.clone(), r.skip, r.ambiguous)
    };
    let read = |overrides: &[&str]| read_as("POST", "/upload/meta", overrides);
    let skipped = ("uploads".to_string(), true, false);
    let ambiguous = ("default".to_string(), false, true);
    assert_eq!(read(&[]), skipped);
    for overrides in [
        &["PATCH"][..],
        &["patch"],
        &[" DELETE "],
        &["PUT", "PATCH"],
        &["POST,PATCH"],
        &["", "PATCH"],
        &["PURGE"],
        &["search"],
        &["BOGUS"],
    ] {
        assert_eq!(read(overrides), ambiguous, "{overrides:?}");
    }
    for same in [
        &["PUT"][..],
        &["put", "POST"],
        &[""],
        &["PATCH!"],
        &["PUT, post"],
    ] {
        assert_eq!(read(same), skipped, "{same:?}");
    }
    // `_method` in the query string, percent-encoded or not.
    assert_eq!(
        read_as("POST", "/upload/meta?_method=PATCH", &[]),
        ambiguous
    );
    assert_eq!(
        read_as("POST", "/upload/meta?a=1&%5Fmethod=pat%63h", &[]),
        ambiguous
    );
    assert_eq!(read_as("POST", "/upload/meta?_method=PUT", &[]), skipped);
    assert_eq!(read_as("POST", "/upload/meta?x_method=PATCH", &[]), skipped);
    // Keys as PHP registers them: `.`, ` ` and an unclosed `[` become `_`.
    for key in [
        ".method",
        "%2Emethod",
        "+_method",
        "[method",
        "%20_method",
        "_method%00",
        "_method%00x%FF",
    ] {
        let path = format!("/upload/meta?{key}=PATCH");
        assert_eq!(read_as("POST", &path, &[]), ambiguous, "{key}");
    }
    assert_eq!(read_as("POST", "/upload/meta?[method]=PATCH", &[]), skipped);
    // Frameworks honour overrides on POST only.
    let put = read_as("PUT", "/upload/meta", &["PATCH"]);
    assert_eq!(put, skipped);
    let no_methods =
        parse(r#"{"rules":[{"name":"u","match":{"path_prefix":"/upload"},"skip":true}]}"#).unwrap();
    let r = no_methods.select_overridden(
        || ["POST", "/upload/meta", "a"],
        || -> Vec<&str> { panic!("read without rules on methods") },
    );
    assert!(r.skip && !r.ambiguous);
}

/// An override is read with every reading of the path: a POST to
/// `/API/orders/1` overridden to PATCH is, to Express (case-insensitive,
/// with method-override), a PATCH to `/api/orders/1`.
#[test]
fn method_overrides_are_crossed_with_the_readings_of_the_path() {
    let c = parse(
        r#"{"case_insensitive_paths":true,"mode":"report","rules":[
            {"name":"orders-patch","match":{"path_prefix":"/api/orders","methods":["PATCH"]},"mode":"enforce"}]}"#,
    )
    .unwrap();
    let read = |path: &str, overrides: &[&str]| {
        let r = c.select_overridden(|| ["POST", path, "a"], || overrides.to_vec());
        (c.policy(r.policy).name.clone(), r.ambiguous)
    };
    assert_eq!(read("/API/orders/1", &[]), ("default".into(), false));
    assert_eq!(
        read("/API/orders/1", &["PATCH"]),
        ("orders-patch".into(), true)
    );
    assert_eq!(
        read("/api/orders/1", &["PATCH"]),
        ("orders-patch".into(), true)
    );
    // As written: `/api/orders/../x` resolves to `/api/x`, which no rule
    // takes, but a router that does not resolve dot segments reads it under
    // `/api/orders`.
    assert_eq!(read("/api/orders/../x", &[]), ("default".into(), false));
    assert_eq!(
        read("/api/orders/../x", &["PATCH"]),
        ("orders-patch".into(), true)
    );
}

/// Rules match the normalized path, so dot segments, doubled slashes and
/// escapes land on the rule of the path they resolve to. A path whose
/// readings as written and as resolved fall under different rules is
/// ambiguous (an upstream could route it either way), judged under the
/// enforcing one of the two policies.
#[test]
fn rules_match_the_normalized_path_and_differing_readings_are_ambiguous() {
    let c = parse(include_str!("../../../../examples/per-route.json")).unwrap();
    let rule = |path: &str| {
        let r = c.select(|| ["POST", path, "api.example.com"]);
        (c.policy(r.policy).name.clone(), r.skip, r.ambiguous)
    };
    let plain = |name: &str, skip| (name.to_string(), skip, false);
    let ambiguous = |name: &str| (name.to_string(), false, true);
    // Both readings agree.
    assert_eq!(rule("/api/search?q=1"), plain("search", false));
    assert_eq!(rule("/upload/./x"), plain("uploads", true));
    assert_eq!(rule("/upload/x"), plain("uploads", true));
    assert_eq!(rule("/api/orders"), plain("default", false));
    assert_eq!(rule("/api/x/../orders"), plain("default", false));
    // They differ: out of the skipping rule, into the strict one, out of
    // the report-only one; the enforcing policy judges.
    assert_eq!(rule("/upload/../api/orders"), ambiguous("default"));
    assert_eq!(rule("/upload/..;/api/orders"), ambiguous("default"));
    assert_eq!(
        rule("/upload/x%2F..%2F..%2Fapi/orders"),
        ambiguous("default")
    );
    // Not under `/upload/` as written (the uploads rule's prefix is
    // separated), so both readings fall under the default policy.
    assert_eq!(rule("/upload%2F..%2Fapi/orders"), plain("default", false));
    // Under `/upload/` only once decoded: the readings differ, so it is not
    // skipped but judged as ambiguous by the default policy.
    assert_eq!(rule("/upload%2Fa.json"), ambiguous("default"));
    // Paths are matched as Envoy matches routes, case and all.
    assert_eq!(rule("/API/search"), plain("default", false));
    assert_eq!(rule("/upload;jsessionid=1/x"), ambiguous("default"));
    assert_eq!(rule("/api/search/../../upload/x"), ambiguous("default"));
    assert_eq!(rule("//api/search"), ambiguous("search"));
    assert_eq!(rule("/api/./search"), ambiguous("search"));
    assert_eq!(rule("/%61pi/search"), ambiguous("search"));
    assert_eq!(rule("/api/orders/../../v1/x"), ambiguous("default"));
    // Both lenient (report-only as written, skipped as resolved): still
    // refused, under the skipping rule's enforcing policy.
    assert_eq!(rule("/v1/../upload/x"), ambiguous("uploads"));
    // Escapes nested deeper than the decoding rounds: not settled, so
    // ambiguous even where both readings pick the same rule.
    let dot = "%%%33%32%%33%35%%%33%33%%33%32e";
    assert_eq!(rule(&format!("/x/{dot}{dot}/y")), ambiguous("default"));
}

/// A rule path that normalization would change can never match a request,
/// so it is refused with the spelling that would.
#[test]
fn rule_paths_must_be_normalized() {
    for (path, field) in [
        ("/api//orders", "path_prefix"),
        ("/api/./orders", "path_prefix"),
        ("/%61pi", "path_prefix"),
    ] {
        let json = format!(r#"{{"rules":[{{"match":{{"{field}":"{path}"}}}}]}}"#);
        let e = parse(&json).unwrap_err();
        assert_eq!(e.field, format!("rules[0].match.{field}"), "{path}");
        assert!(e.reason.contains("write `/api"), "{e}");
    }
    let e = parse(r#"{"rules":[{"match":{"path_exact":"/a/../b"}}]}"#).unwrap_err();
    assert_eq!(e.field, "rules[0].match.path_exact");
    assert!(parse(r#"{"rules":[{"match":{"path_prefix":"/api/"}}]}"#).is_ok());
}

/// With two bad members in one section one is named (the first in name
/// order), with its own
/// error (serde's message alone does not say which field it is about); a
/// rule whose body limit is below an inherited hold window is told which of
/// its own fields to change.
#[test]
fn errors_name_a_field_when_several_are_wrong_or_one_is_inherited() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"limits":{"max_depth":"x","max_array_elements":"y"}}"#,
            "limits.max_array_elements",
            "expected",
        ),
        (
            r#"{"mode":"x","hold_bytes":"y"}"#,
            "hold_bytes",
            "expected u64",
        ),
        (
            r#"{"json":{"allow_bom":1,"allow_empty_body":2}}"#,
            "json.allow_bom",
            "expected a boolean",
        ),
        (
            r#"{"hold_bytes":65536,"rules":[{"match":{"path_prefix":"/a"},"limits":{"max_body_bytes":1024}}]}"#,
            "rules[0].limits.max_body_bytes",
            "inherits from the top level (65536)",
        ),
    ];
    for (json, field, reason) in cases {
        let e = parse(json).unwrap_err();
        assert_eq!(e.field, *field, "{json}: {e}");
        assert!(e.reason.contains(reason), "{json}: {e}");
    }
    // A rule's own hold window over its own limit names its own field.
    let e = parse(
        r#"{"rules":[{"match":{"path_prefix":"/a"},"hold_bytes":2048,"limits":{"max_body_bytes":1024}}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.field, "rules[0].hold_bytes");
    // Two bad members in a rule, which cannot be tried without its `match`.
    let e = parse(r#"{"rules":[{"match":{"path_prefix":"/a"},"mode":"Report","skip":"yes"}]}"#)
        .unwrap_err();
    assert_eq!(e.field, "rules[0].mode", "{e}");
    assert!(e.reason.contains("unknown variant"), "{e}");
}

/// A rule that skips inspection has no use for a policy; giving it one is
/// a mistake to point out, not to ignore.
#[test]
fn skipping_rules_take_no_policy() {
    for (member, value) in [
        ("mode", r#""report""#),
        ("hold_bytes", "0"),
        ("limits", r#"{"max_depth":8}"#),
        ("json", r#"{"allow_bom":true}"#),
        ("breaker", r#"{"enabled":true}"#),
    ] {
        let json = format!(
            r#"{{"rules":[{{"match":{{"path_prefix":"/upload"}},"skip":true,"{member}":{value}}}]}}"#
        );
        let e = parse(&json).unwrap_err();
        assert_eq!(e.field, format!("rules[0].{member}"), "{json}");
        assert!(e.reason.contains("skip"), "{e}");
        let not_skipping = json.replace(r#""skip":true"#, r#""skip":false"#);
        assert!(parse(&not_skipping).is_ok(), "{not_skipping}");
    }
    assert!(parse(r#"{"rules":[{"match":{"path_prefix":"/upload"},"skip":true}]}"#).is_ok());
}

/// serde_json keeps the last of two equal keys; a configuration that says
/// two things about one field is refused, naming the key.
#[test]
fn a_key_given_twice_in_one_object_is_refused() {
    for (json, key) in [
        (
            r#"{"limits":{"max_depth":10,"max_depth":1000}}"#,
            r#""max_depth""#,
        ),
        (r#"{"mode":"report","mode":"enforce"}"#, r#""mode""#),
        (
            r#"{"rules":[{"match":{"path_exact":"/a","path_exact":"/b"}}]}"#,
            r#""path_exact""#,
        ),
        (
            r#"{"mode":"report","m\u006fde":"enforce"}"#,
            r#""m\u006fde""#,
        ),
    ] {
        let e = parse(json).unwrap_err();
        assert_eq!(e.field, "<configuration>", "{json}");
        assert!(
            e.reason.contains(&format!("the key {key} appears twice")),
            "{json}: {e}"
        );
    }
    // The same key in different objects is no duplicate.
    assert!(parse(r#"{"limits":{"max_depth":10},"rules":[{"match":{"path_exact":"/a"},"limits":{"max_depth":20}}]}"#).is_ok());
}

#[test]
fn route_scoped_rules_need_a_slot_each() {
    // Rules 0 and 1 and the top level under one route-scoped breaker: three
    // slots are enough, two are not (rule 1's index wraps onto the top
    // level's slot).
    let config = |max_keys: u32, own_breaker: bool, skip: bool, enabled: bool| {
        let own = if own_breaker {
            r#","breaker":{"max_keys":1}"#
        } else {
            ""
        };
        let skip = if skip { r#","skip":true"# } else { "" };
        format!(
            r#"{{"breaker":{{"enabled":{enabled},"scope":"route","max_keys":{max_keys}}},
                "rules":[{{"name":"a","match":{{"path_prefix":"/a"}}}},
                         {{"name":"b","match":{{"path_prefix":"/b"}}{own}{skip}}}]}}"#
        )
    };
    parse(&config(3, false, false, true)).unwrap();
    let e = parse(&config(2, false, false, true)).unwrap_err();
    assert_eq!(e.field, "breaker.max_keys");
    assert!(
        e.reason
            .contains("rules `default` and `b` would share one breaker; give at least 3"),
        "{}",
        e.reason
    );
    // With a breaker of its own, skipping (no breaker), or the breaker off,
    // rule `b` needs no slot of the top level's.
    parse(&config(2, true, false, true)).unwrap();
    parse(&config(2, false, true, true)).unwrap();
    parse(&config(2, false, false, false)).unwrap();
    // Nor in report mode, where no breaker is asked.
    let report = config(2, false, false, true).replace(r#""/b"}}"#, r#""/b"},"mode":"report"}"#);
    assert!(report.contains(r#""mode":"report""#), "{report}");
    parse(&report).unwrap();
    // Other scopes key on what only requests carry: not checked.
    let global = config(2, false, false, true).replace(r#""route""#, r#""global""#);
    parse(&global).unwrap();
}

/// `max_memory_bytes`: 1 MiB is the least it may be, `null` lifts the bound.
#[test]
fn max_memory_bytes_is_at_least_a_mebibyte_or_null() {
    let at = |v: &str| parse(&format!(r#"{{"max_memory_bytes": {v}}}"#));
    assert_eq!(at("1048576").unwrap().max_memory_bytes, Some(1 << 20));
    assert_eq!(at("null").unwrap().max_memory_bytes, None);
    let err = at("1048575").unwrap_err();
    assert_eq!(err.field, "max_memory_bytes");
    assert!(err.reason.contains("1048576"), "{}", err.reason);
}

/// `metrics_prefix`: one word of letters, digits and `_` that starts with a
/// letter, at most 64 characters.
#[test]
fn a_metrics_prefix_is_one_word_of_at_most_64_characters() {
    assert_eq!(parse("{}").unwrap().metrics_prefix, "json_sanitizer");
    let at = |v: &str| parse(&format!(r#"{{"metrics_prefix": "{v}"}}"#));
    let longest = format!("a{}", "_9".repeat(MAX_METRICS_PREFIX_CHARS / 2 - 1) + "Z");
    assert_eq!(longest.len(), MAX_METRICS_PREFIX_CHARS);
    for good in [
        "orders",
        "json_sanitizer_v2",
        "A1",
        "rules",
        "json_sanitizer_ruler",
        longest.as_str(),
    ] {
        assert_eq!(at(good).unwrap().metrics_prefix, good);
    }
    for (bad, why) in [
        (format!("{longest}x"), "more than 64"),
        (String::new(), "empty"),
        ("9lives".to_string(), "start with"),
        ("_x".to_string(), "start with"),
        ("json.sanitizer".to_string(), "only ASCII"),
        ("json-sanitizer".to_string(), "only ASCII"),
        ("caf\\u00e9".to_string(), "only ASCII"),
        // Forty characters but eighty bytes: the fault is the character.
        (format!("a{}", "\\u00e9".repeat(40)), "only ASCII"),
        ("rule".to_string(), "the word `rule`"),
        ("json_sanitizer_rule".to_string(), "the word `rule`"),
        ("json_sanitizer_rule_orders".to_string(), "the word `rule`"),
        ("rule_x".to_string(), "the word `rule`"),
    ] {
        let err = at(&bad).unwrap_err();
        assert_eq!(err.field, "metrics_prefix", "{bad}");
        assert!(err.reason.contains(why), "{bad}: {}", err.reason);
    }
}

/// No two instances' counters share a Prometheus name, whatever prefixes
/// and rule names they were given: Envoy's Prometheus output turns every
/// `.` into `_`, so `x.rule.orders.requests_passed` (rule `orders` under
/// prefix `x`) and `x_rule_orders.requests_passed` (prefix
/// `x_rule_orders`) would be one series, which is why a prefix may not hold
/// the word `rule`. Tried over every prefix and rule name of up to three
/// and two words from words that occur in counter names.
#[test]
fn no_two_prefixes_share_a_prometheus_name() {
    use crate::filter::metrics::{Metric, RuleCounter};
    use std::collections::HashMap;
    const WORDS: [&str; 8] = [
        "a", "rule", "x", "rejected", "breaker", "report", "only", "requests",
    ];
    let phrases = |most: usize| {
        let mut all: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
        let mut last = all.clone();
        for _ in 1..most {
            last = last
                .iter()
                .flat_map(|p| WORDS.iter().map(move |w| format!("{p}_{w}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    };
    let rule_names = phrases(2);
    let prometheus = |name: String| name.replace('.', "_");
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut accepted = 0;
    for prefix in phrases(3) {
        if check_metrics_prefix(&prefix).is_err() {
            continue;
        }
        accepted += 1;
        let names = Metric::all().map(|m| m.name(&prefix)).chain(
            rule_names
                .iter()
                .flat_map(|rule| RuleCounter::ALL.map(|c| c.name(&prefix, rule))),
        );
        for name in names {
            let series = prometheus(name.clone());
            if let Some(first) = owner.insert(series.clone(), prefix.clone()) {
                assert_eq!(
                    first, prefix,
                    "{series} under prefixes {first} and {prefix} ({name})"
                );
            }
        }
    }
    assert_eq!(
        accepted,
        7 + 7 * 7 + 7 * 7 * 7,
        "every prefix without `rule`"
    );
}

/// A policy that reads JSON Lines while `application/x-ndjson` passes
/// uninspected is valid but warned about, once, naming the policies;
/// adding the type or inspecting other types silences it.
#[test]
fn json_lines_that_ndjson_bodies_would_bypass_are_warned_about() {
    let warnings = |json: &str| parse(json).unwrap().warnings();
    assert!(warnings("{}").is_empty());
    let top = warnings(
        r#"{"json":{"lines":true},"rules":[{"name":"a","match":{"path_prefix":"/a"}},{"name":"up","match":{"path_prefix":"/up"},"skip":true}]}"#,
    );
    assert_eq!(top.len(), 1, "{top:?}");
    assert!(
        top[0].starts_with("json.lines is on (policies: default, a)"),
        "{top:?}"
    );
    assert!(top[0].contains("application/x-ndjson"), "{top:?}");
    let rule =
        r#"{"rules":[{"name":"bulk","match":{"path_prefix":"/_bulk"},"json":{"lines":true}}]"#;
    let on_rule = warnings(&format!("{rule}}}"));
    assert_eq!(on_rule.len(), 1, "{on_rule:?}");
    assert!(on_rule[0].contains("(policies: bulk)"), "{on_rule:?}");
    for quiet in [
        format!(r#"{rule},"content_types":["application/json","application/x-ndjson"]}}"#),
        format!(r#"{rule},"content_types":["application/*"]}}"#),
        format!(r#"{rule},"on_other_content_type":"inspect"}}"#),
        format!(r#"{rule},"on_other_content_type":"reject"}}"#),
    ] {
        assert!(warnings(&quiet).is_empty(), "{quiet}");
    }
}

/// `max_log_lines_per_second`: 100 by default, at least 1, `null` for no
/// bound.
#[test]
fn log_lines_per_second_are_bounded_from_one() {
    assert_eq!(parse("{}").unwrap().max_log_lines_per_second, Some(100));
    let at = |v: &str| parse(&format!(r#"{{"max_log_lines_per_second": {v}}}"#));
    assert_eq!(at("1").unwrap().max_log_lines_per_second, Some(1));
    assert_eq!(at("null").unwrap().max_log_lines_per_second, None);
    let err = at("0").unwrap_err();
    assert_eq!(err.field, "max_log_lines_per_second");
    assert!(err.reason.contains("at least 1"), "{}", err.reason);
}
