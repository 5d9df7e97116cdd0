//! Keeps the README's configuration reference true: the "every field at its
//! default" block must parse and equal the empty configuration, the
//! reference table must list exactly the fields that block holds and every
//! field the parser takes, and the refusals table must list every violation
//! with its default status.

use json_sanitizer::policy::config::{Config, ReplyConfig};
use json_sanitizer::violation::ViolationKind;
use std::collections::BTreeSet;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap()
}

/// The JSON block following "Every field, at its default".
fn defaults_block(text: &str) -> String {
    let start = text
        .find("Every field, at its default")
        .expect("defaults block");
    let rest = &text[start..];
    let open = rest.find("```json\n").unwrap() + "```json\n".len();
    let close = rest[open..].find("```").unwrap();
    rest[open..open + close].to_string()
}

/// Dotted paths of every leaf field of a JSON object (`reply.statuses`, a
/// map, counts as a leaf).
fn paths(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if v.is_object() && k != "statuses" {
                paths(v, &path, out);
            } else {
                out.insert(path);
            }
        }
    }
}

/// Field names in the first column of the reference table.
fn documented(text: &str) -> BTreeSet<String> {
    let start = text.find("## Configuration reference").unwrap();
    let end = start + text[start..].find("Every field, at its default").unwrap();
    let mut out = BTreeSet::new();
    for line in text[start..end].lines().filter(|l| l.starts_with("| `")) {
        let first = line.split(" | ").next().unwrap_or("");
        for part in first.split('`').skip(1).step_by(2) {
            out.insert(part.to_string());
        }
    }
    out
}

#[test]
fn the_defaults_block_is_the_default_configuration() {
    let block = defaults_block(&readme());
    let documented_defaults = Config::parse(block.as_bytes()).expect("README defaults parse");
    assert_eq!(documented_defaults, Config::parse(b"").unwrap());
}

#[test]
fn the_reference_table_lists_every_field() {
    let text = readme();
    let block: serde_json::Value = serde_json::from_str(&defaults_block(&text)).unwrap();
    let mut fields = BTreeSet::new();
    paths(&block, "", &mut fields);
    let table = documented(&text);
    // Rule fields are documented as `rules[].x`; they are not in the block.
    let rule_fields: BTreeSet<String> = table
        .iter()
        .filter(|f| f.starts_with("rules[]"))
        .cloned()
        .collect();
    let top: BTreeSet<String> = table.difference(&rule_fields).cloned().collect();
    assert_eq!(top, fields, "README table vs defaults block");
    for f in [
        "rules[].name",
        "rules[].match.path_prefix",
        "rules[].match.path_exact",
        "rules[].match.path_separated_prefix",
        "rules[].match.methods",
        "rules[].match.authority",
        "rules[].skip",
        "rules[].mode",
        "rules[].hold_bytes",
        "rules[].limits",
        "rules[].json",
        "rules[].breaker",
    ] {
        assert!(rule_fields.contains(f), "{f} undocumented");
    }
    // And each documented rule field is accepted by the parser (one path
    // matcher per rule).
    for path in ["path_prefix", "path_exact", "path_separated_prefix"] {
        let rule = format!(
            r#"{{"rules":[{{"name":"r","match":{{"{path}":"/a","methods":["POST"],"authority":"x"}},
            "skip":false,"mode":"report","hold_bytes":1,"limits":{{}},"json":{{}},"breaker":{{}}}}]}}"#
        );
        Config::parse(rule.as_bytes()).unwrap();
    }
}

/// `(violation, status)` from the rows of the "What it refuses" table.
fn refusal_table(text: &str) -> Vec<(String, u16)> {
    let start = text.find("## What it refuses").expect("refusals section");
    let end = start + text[start..].find("\n## ").expect("next section");
    text[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let name = cells[0].trim_start_matches("| `").trim_end_matches('`');
            let status = cells[1].parse().unwrap_or_else(|_| panic!("status in {l}"));
            (name.to_string(), status)
        })
        .collect()
}

#[test]
fn the_refusals_table_lists_every_violation_with_its_default_status() {
    let table = refusal_table(&readme());
    let expected: Vec<(String, u16)> = ViolationKind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), ReplyConfig::default_status(*k)))
        .collect();
    assert_eq!(table, expected, "README refusals table vs the code");
    // And the empty configuration answers with those statuses.
    let config = Config::parse(b"").unwrap();
    for kind in ViolationKind::ALL {
        assert_eq!(config.reply.status(kind), ReplyConfig::default_status(kind));
    }
}

/// The other direction: every field the parser takes is in the reference
/// table. serde's refusal of an unknown field lists the fields it expected,
/// so each section is asked with one and its list checked against the table.
#[test]
fn every_field_the_parser_takes_is_documented() {
    let table = documented(&readme());
    let rule = |inner: &str| format!(r#"{{"rules":[{{"match":{{"path_prefix":"/a"}}{inner}}}]}}"#);
    let sections = [
        ("", r#"{"zzz":1}"#.to_string()),
        ("limits.", r#"{"limits":{"zzz":1}}"#.to_string()),
        ("json.", r#"{"json":{"zzz":1}}"#.to_string()),
        ("breaker.", r#"{"breaker":{"zzz":1}}"#.to_string()),
        ("reply.", r#"{"reply":{"zzz":1}}"#.to_string()),
        ("rules[].", rule(r#","zzz":1"#)),
        (
            "rules[].match.",
            r#"{"rules":[{"match":{"path_prefix":"/a","zzz":1}}]}"#.to_string(),
        ),
    ];
    for (prefix, config) in sections {
        let e = Config::parse(config.as_bytes()).unwrap_err();
        let expected = e
            .reason
            .rsplit_once("expected ")
            .unwrap_or_else(|| panic!("{prefix}: no field list in {e}"))
            .1;
        let fields: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        assert!(fields.len() > 1, "{prefix}: {e}");
        for field in fields {
            let name = format!("{prefix}{field}");
            let documented =
                table.contains(&name) || table.iter().any(|t| t.starts_with(&format!("{name}.")));
            assert!(
                documented,
                "`{name}` is taken by the parser but not in the README's table"
            );
        }
    }
}
