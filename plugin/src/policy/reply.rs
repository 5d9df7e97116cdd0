//! The local reply for a refused request: an RFC 9457 problem+json body
//! that tells the client what was wrong and where, never echoing payload.

use super::config::ReplyConfig;
use crate::violation::{Violation, ViolationKind};
use serde::Serialize;

/// A complete local reply, ready for `proxy_send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Envoy's response code details (`%RESPONSE_CODE_DETAILS%` in access
    /// logs, printed by Istio's default format): `json_sanitizer_` and the
    /// violation, so every refusal says why in the log line of its request.
    pub details: String,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The problem+json document.
    pub body: String,
}

/// Members of the problem document. `limit` and `offset` are always present
/// (null when they do not apply) so that clients can rely on the shape.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    violation: &'static str,
    limit: Option<u64>,
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

/// The problem `type` URI of a violation kind.
pub fn type_uri(kind: ViolationKind) -> String {
    format!("urn:json-sanitizer:problem:{}", kind.as_str())
}

/// A human sentence for `detail`: which rule was broken and where. Built from
/// the kind, limit and offset only.
pub fn detail(v: &Violation, retry_after: Option<u32>) -> String {
    use ViolationKind as K;
    let limit = v.limit.unwrap_or(0);
    let at = v
        .offset
        .map(|o| format!(" at byte {o}"))
        .unwrap_or_default();
    match v.kind {
        K::BodyTooLarge => format!("The request body exceeds the limit of {limit} bytes{at}."),
        K::TooDeep => format!("JSON nesting exceeds the limit of {limit} levels{at}."),
        K::ArrayTooLong => format!("A JSON array has more than {limit} elements{at}."),
        K::TooManyEntries => format!("A JSON object has more than {limit} members{at}."),
        K::KeyTooLong => format!("A JSON key is longer than {limit} bytes{at}."),
        K::StringTooLong => format!("A JSON string is longer than {limit} bytes{at}."),
        K::NumberTooLong => format!("A JSON number is longer than {limit} characters{at}."),
        K::ExponentTooLong => {
            format!("A JSON number's exponent has more than {limit} digits{at}.")
        }
        K::TooManyContainers => {
            format!("The JSON body has more than {limit} objects and arrays{at}.")
        }
        K::NumberOutOfRange if v.limit.is_some() => format!(
            "A JSON integer is beyond \u{b1}{limit}, where parsers that read numbers as doubles lose its value{at}."
        ),
        K::NumberOutOfRange => {
            format!("A JSON number is too large for a double; parsers read it as infinity or refuse it{at}.")
        }
        K::DuplicateKey => format!("A JSON object repeats a key{at}."),
        K::InvalidUtf8 => format!("A JSON string is not valid UTF-8{at}."),
        K::LoneSurrogate => format!("A \\u escape is half of a surrogate pair{at}."),
        K::SyntaxError => format!("The body is not valid JSON{at}."),
        K::Truncated => format!("The body ends inside a JSON value{at}."),
        K::TrailingData => format!("Unexpected data after the JSON value{at}."),
        K::Bom => "The body starts with a byte order mark.".to_string(),
        K::EmptyBody => "The request body is empty; a JSON value was expected.".to_string(),
        K::UnsupportedMediaType => {
            "This endpoint accepts JSON bodies only, in UTF-8 (see the content-type header)."
                .to_string()
        }
        K::UnsupportedEncoding => {
            "This content-encoding is not accepted here.".to_string()
        }
        K::MalformedEncoding => {
            "The request body is not valid data in its content-encoding.".to_string()
        }
        K::BreakerOpen => format!(
            "Too many invalid requests were received; retry in {} seconds.",
            retry_after.unwrap_or(1)
        ),
        K::BodyUnreadable => "The request body could not be inspected.".to_string(),
        K::AmbiguousPath => {
            "The request path resolves to another route than it is written; send it in plain form."
                .to_string()
        }
        K::AmbiguousHeader => {
            "A header was also sent with '_' or '.' in place of '-' in its name; send it once, with '-'."
                .to_string()
        }
        K::Overloaded => {
            "The proxy is inspecting too many request bodies at once; retry in a moment."
                .to_string()
        }
    }
}

/// The response code details of a reply for `kind`: `json_sanitizer_too_deep`.
/// Envoy requires them free of whitespace, as kind names are.
pub fn response_code_details(kind: ViolationKind) -> String {
    format!("json_sanitizer_{}", kind.as_str())
}

/// The request id to log and echo, when it is safe to as it is: printable
/// ASCII without spaces, quotes or backslashes, 1 to 128 characters. Any
/// other id is left out whole rather than trimmed: an altered id would
/// point at another request in the access log and the upstream's logs.
pub fn clean_request_id(raw: &str) -> Option<String> {
    let fits = (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    fits.then(|| raw.to_string())
}

/// Builds the reply for `v`. `retry_after` (seconds) adds a `retry-after`
/// header (breaker replies).
pub fn build(
    config: &ReplyConfig,
    v: &Violation,
    request_id: Option<&str>,
    retry_after: Option<u32>,
) -> Reply {
    let status = config.status(v.kind);
    let problem = Problem {
        type_uri: type_uri(v.kind),
        title: v.kind.title(),
        status,
        detail: config.detail.then(|| detail(v, retry_after)),
        violation: v.kind.as_str(),
        limit: v.limit,
        offset: v.offset,
        request_id,
    };
    let body = serde_json::to_string(&problem)
        .unwrap_or_else(|_| format!(r#"{{"status":{status},"violation":"{}"}}"#, v.kind.as_str()));
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/problem+json".to_string(),
        ),
        ("cache-control".to_string(), "no-store".to_string()),
    ];
    if let Some(secs) = retry_after {
        headers.push(("retry-after".to_string(), secs.to_string()));
    }
    Reply {
        status,
        details: response_code_details(v.kind),
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_document_has_the_contract_members() {
        let v = Violation::over(ViolationKind::TooDeep, 100, 100);
        let r = build(&ReplyConfig::default(), &v, Some("req-1"), None);
        assert_eq!(r.status, 400);
        let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(doc["type"], "urn:json-sanitizer:problem:too_deep");
        assert_eq!(doc["title"], "JSON nested too deeply");
        assert_eq!(doc["status"], 400);
        assert_eq!(doc["violation"], "too_deep");
        assert_eq!(doc["limit"], 100);
        assert_eq!(doc["offset"], 100);
        assert_eq!(doc["request_id"], "req-1");
        assert!(doc["detail"].as_str().unwrap().contains("100 levels"));
        assert!(r
            .headers
            .contains(&("content-type".into(), "application/problem+json".into())));
    }

    #[test]
    fn detail_can_be_omitted_and_nulls_are_kept() {
        let mut config = ReplyConfig::default();
        config.detail = false;
        let v = Violation {
            kind: ViolationKind::UnsupportedMediaType,
            limit: None,
            offset: None,
        };
        let r = build(&config, &v, None, None);
        let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(r.status, 415);
        assert!(doc.get("detail").is_none());
        assert!(doc.get("request_id").is_none());
        assert!(doc["limit"].is_null() && doc["offset"].is_null());
    }

    #[test]
    fn breaker_reply_carries_retry_after() {
        let v = Violation {
            kind: ViolationKind::BreakerOpen,
            limit: None,
            offset: None,
        };
        let r = build(&ReplyConfig::default(), &v, None, Some(30));
        assert_eq!(r.status, 503);
        assert!(r.headers.contains(&("retry-after".into(), "30".into())));
    }

    #[test]
    fn request_ids_are_cleaned() {
        assert_eq!(clean_request_id("abc-123").as_deref(), Some("abc-123"));
        assert_eq!(clean_request_id("a b\"c\n"), None);
        assert_eq!(clean_request_id("a b"), None);
        assert_eq!(clean_request_id("\"4f1c\""), None);
        assert_eq!(clean_request_id("a\\b"), None);
        assert_eq!(clean_request_id("ab\u{FFFD}cd"), None);
        assert_eq!(clean_request_id(" \t"), None);
        assert_eq!(clean_request_id(""), None);
        let longest = "x".repeat(128);
        assert_eq!(clean_request_id(&longest), Some(longest.clone()));
        assert_eq!(clean_request_id(&"x".repeat(129)), None);
    }

    #[test]
    fn every_kind_has_a_detail_without_payload() {
        for kind in ViolationKind::ALL {
            let d = detail(&Violation::over(kind, 7, 9), Some(3));
            assert!(!d.is_empty());
        }
    }
}
