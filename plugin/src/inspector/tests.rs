//! Unit tests of the inspector: grammar, encoding, every limit at its
//! boundary, hand-written attacks, and split invariance on each of them.

use super::*;
use crate::violation::ViolationKind as K;

fn strict() -> JsonOptions {
    JsonOptions::default()
}

/// The verdict for `body` fed in chunks that end at `cuts` (ascending).
fn verdict_in_chunks(
    limits: &Limits,
    options: &JsonOptions,
    body: &[u8],
    cuts: &[usize],
) -> Result<(), Violation> {
    noted_in_chunks(limits, options, body, cuts).0
}

/// The verdict and the violation noted for `report_only`, for `body` fed
/// in chunks that end at `cuts` (ascending).
fn noted_in_chunks(
    limits: &Limits,
    options: &JsonOptions,
    body: &[u8],
    cuts: &[usize],
) -> (Result<(), Violation>, Option<Violation>) {
    let mut ins = Inspector::new(limits, options);
    let mut prev = 0;
    for &c in cuts.iter().chain(std::iter::once(&body.len())) {
        if ins.feed(&body[prev..c]).is_err() {
            break;
        }
        prev = c;
    }
    (ins.finish(), ins.noted())
}

/// The verdict for `body` fed whole, after checking that every 1-byte,
/// 2-way and 3-way split (small bodies) gives exactly the same verdict.
fn verdict_with(limits: &Limits, options: &JsonOptions, body: &[u8]) -> Result<(), Violation> {
    let whole = split_invariant(limits, options, body);
    assert_eq!(whole.0, Inspector::check(limits, options, body));
    whole.0
}

/// The verdict and the violation noted for `report_only`, for `body` fed
/// whole, after checking that every 1-byte, 2-way and 3-way split (small
/// bodies) gives exactly the same.
fn split_invariant(
    limits: &Limits,
    options: &JsonOptions,
    body: &[u8],
) -> (Result<(), Violation>, Option<Violation>) {
    let run = |cuts: &[usize]| noted_in_chunks(limits, options, body, cuts);
    let whole = run(&[]);
    let bytewise: Vec<usize> = (1..body.len()).collect();
    assert_eq!(
        run(&bytewise),
        whole,
        "1-byte chunks of {:?}",
        String::from_utf8_lossy(body)
    );
    if body.len() <= 64 {
        for a in 0..=body.len() {
            assert_eq!(
                run(&[a]),
                whole,
                "split at {a} of {:?}",
                String::from_utf8_lossy(body)
            );
            if body.len() <= 24 {
                for b in a..=body.len() {
                    assert_eq!(run(&[a, b]), whole, "splits {a},{b}");
                }
            }
        }
    }
    whole
}

fn verdict(body: &[u8]) -> Result<(), Violation> {
    verdict_with(&Limits::default(), &strict(), body)
}

fn kind_at(body: &[u8]) -> (ViolationKind, u64) {
    let v = verdict(body).expect_err("expected a violation");
    (v.kind, v.offset.expect("body violations carry an offset"))
}

#[test]
fn accepts_every_value_type_and_whitespace() {
    for doc in [
        "0",
        "-0",
        "12",
        "-12.5e+3",
        "1E-2",
        "0.0",
        "1e5",
        "true",
        "false",
        "null",
        "\"\"",
        "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\"",
        "[]",
        "{}",
        " \t\r\n[ 1 , 2 ] \n",
        "{\"a\":{\"b\":[1,{\"c\":null}]},\"d\":\"\"}",
        "\"\u{1F600} é 中\"",
        "\"\\ud83d\\ude00\"",
        "[[],[[]],{}]",
        // DEL and everything from U+0020 up are plain string content.
        "[\" \u{7f}~\",\"\u{7f}\"]",
    ] {
        assert_eq!(verdict(doc.as_bytes()), Ok(()), "{doc}");
    }
}

#[test]
fn rejects_what_rfc8259_forbids() {
    let cases: &[(&str, K, u64)] = &[
        ("[1,]", K::SyntaxError, 3),
        ("{\"a\":1,}", K::SyntaxError, 7),
        ("// c\n1", K::SyntaxError, 0),
        ("[1/*c*/]", K::SyntaxError, 2),
        ("'a'", K::SyntaxError, 0),
        ("{'a':1}", K::SyntaxError, 1),
        ("NaN", K::SyntaxError, 0),
        ("[Infinity]", K::SyntaxError, 1),
        ("-Infinity", K::SyntaxError, 1),
        ("01", K::SyntaxError, 1),
        ("-01", K::SyntaxError, 2),
        ("+1", K::SyntaxError, 0),
        (".5", K::SyntaxError, 0),
        ("[1.]", K::SyntaxError, 3),
        ("[1e]", K::SyntaxError, 3),
        ("[1e+]", K::SyntaxError, 4),
        ("[-]", K::SyntaxError, 2),
        ("\"a\u{1}b\"", K::SyntaxError, 2),
        ("\"\tb\"", K::SyntaxError, 1),
        ("[\"ab\u{0}\"]", K::SyntaxError, 4),
        ("\"\u{1f}\"", K::SyntaxError, 1),
        ("{\"k\u{0}\":1}", K::SyntaxError, 3),
        ("{\"a\":1,\"\nb\":2}", K::SyntaxError, 8),
        ("\"\\x\"", K::SyntaxError, 2),
        ("\"\\u12g4\"", K::SyntaxError, 5),
        ("\"\\U0041\"", K::SyntaxError, 2),
        ("tru", K::Truncated, 3),
        ("trux", K::SyntaxError, 3),
        ("nul", K::Truncated, 3),
        ("[1", K::Truncated, 2),
        ("{\"a\"", K::Truncated, 4),
        ("{\"a\":", K::Truncated, 5),
        ("\"abc", K::Truncated, 4),
        ("1.", K::Truncated, 2),
        ("-", K::Truncated, 1),
        ("1 2", K::TrailingData, 2),
        ("{}x", K::TrailingData, 2),
        ("[1]]", K::TrailingData, 3),
        ("truex", K::TrailingData, 4),
        ("[1}", K::SyntaxError, 2),
        ("{\"a\":1]", K::SyntaxError, 6),
        ("{1:2}", K::SyntaxError, 1),
        ("{\"a\" 1}", K::SyntaxError, 5),
        ("[1 2]", K::SyntaxError, 3),
        ("]", K::SyntaxError, 0),
        ("\u{a0}1", K::SyntaxError, 0),
        ("", K::EmptyBody, 0),
        (" \n\t\r ", K::EmptyBody, 5),
    ];
    for &(doc, kind, offset) in cases {
        assert_eq!(kind_at(doc.as_bytes()), (kind, offset), "{doc:?}");
    }
}

#[test]
fn utf8_errors_of_every_class_are_found_at_the_offending_byte() {
    let cases: &[(&[u8], u64)] = &[
        (b"\"\x80\"", 1),             // stray continuation byte
        (b"\"\xC0\xAF\"", 1),         // overlong 2-byte lead
        (b"\"\xC1\xBF\"", 1),         // overlong 2-byte lead
        (b"\"\xE0\x80\xAF\"", 2),     // overlong 3-byte
        (b"\"\xF0\x80\x80\xAF\"", 2), // overlong 4-byte
        (b"\"\xED\xA0\x80\"", 2),     // UTF-8 encoded surrogate D800
        (b"\"\xED\xBF\xBF\"", 2),     // UTF-8 encoded surrogate DFFF
        (b"\"\xF4\x90\x80\x80\"", 2), // above U+10FFFF
        (b"\"\xF5\x80\x80\x80\"", 1), // invalid lead
        (b"\"\xFF\"", 1),             // invalid byte
        (b"\"\xC3\"", 2),             // truncated by the closing quote
        (b"\"\xE2\x82\"", 3),         // truncated 3-byte
        (b"\"\xF0\x9F\x98\"", 4),     // truncated 4-byte
        (b"\"\xE2\x28\xA1\"", 2),     // bad continuation
        (b"{\"\xC3\x28\":1}", 3),     // in a key
    ];
    for &(doc, offset) in cases {
        assert_eq!(kind_at(doc), (K::InvalidUtf8, offset), "{doc:?}");
    }
    // Valid boundaries of each range.
    for ok in [
        &b"\"\xC2\x80\xDF\xBF\""[..],
        b"\"\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF\"",
        b"\"\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\"",
    ] {
        assert_eq!(verdict(ok), Ok(()), "{ok:?}");
    }
    // A truncated sequence at the very end of the body is a truncated body.
    assert_eq!(kind_at(b"\"\xE2\x82"), (K::Truncated, 3));
}

#[test]
fn surrogate_escapes_must_pair() {
    let cases: &[(&str, u64)] = &[
        ("\"\\ud800\"", 1),
        ("\"ab\\udc00\"", 3),
        ("\"\\ud800x\"", 1),
        ("\"\\ud800\\n\"", 1),
        ("\"\\ud800\\u0041\"", 1),
        ("\"\\ud800\\ud800\\udc00\"", 1),
        ("\"\\ude00\\ud83d\"", 1),
    ];
    for &(doc, offset) in cases {
        assert_eq!(kind_at(doc.as_bytes()), (K::LoneSurrogate, offset), "{doc}");
    }
    let allow = JsonOptions {
        allow_lone_surrogates: true,
        ..strict()
    };
    for &(doc, _) in cases {
        assert_eq!(
            verdict_with(&Limits::default(), &allow, doc.as_bytes()),
            Ok(()),
            "{doc}"
        );
    }
    assert_eq!(verdict(b"\"\\uD83D\\uDE00\""), Ok(()));
}

#[test]
fn bom_is_refused_unless_allowed_and_only_at_the_start() {
    let body = b"\xEF\xBB\xBF{\"a\":1}";
    assert_eq!(kind_at(body), (K::Bom, 0));
    let allow = JsonOptions {
        allow_bom: true,
        ..strict()
    };
    assert_eq!(verdict_with(&Limits::default(), &allow, body), Ok(()));
    assert_eq!(
        verdict_with(&Limits::default(), &allow, b"\xEF\xBB\xBF\xEF\xBB\xBF1")
            .unwrap_err()
            .kind,
        K::SyntaxError
    );
    assert_eq!(
        verdict_with(&Limits::default(), &allow, b"\xEF\xBB\xBF")
            .unwrap_err()
            .kind,
        K::EmptyBody
    );
    assert_eq!(kind_at(b" \xEF\xBB\xBF1"), (K::SyntaxError, 1));
    assert_eq!(kind_at(b"\xEF\xBB1"), (K::SyntaxError, 0));
    assert_eq!(kind_at(b"\xEF"), (K::SyntaxError, 0));
}

#[test]
fn empty_body_can_be_allowed() {
    let allow = JsonOptions {
        allow_empty_body: true,
        ..strict()
    };
    assert_eq!(verdict_with(&Limits::default(), &allow, b""), Ok(()));
    assert_eq!(verdict_with(&Limits::default(), &allow, b"  \n"), Ok(()));
}

fn only(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::UNLIMITED;
    f(&mut l);
    l
}

fn over(limits: &Limits, body: &str) -> (K, Option<u64>, u64) {
    let v = verdict_with(limits, &strict(), body.as_bytes()).expect_err(body);
    (v.kind, v.limit, v.offset.unwrap())
}

fn passes(limits: &Limits, body: &str) {
    assert_eq!(
        verdict_with(limits, &strict(), body.as_bytes()),
        Ok(()),
        "{body}"
    );
}

/// Each of `passing` passes under `limits`, and each of `refused` is
/// refused as `kind` with `limit`, at its offset.
fn judged(limits: &Limits, (kind, limit): (K, u64), passing: &[&str], refused: &[(&str, u64)]) {
    for body in passing {
        passes(limits, body);
    }
    for &(body, offset) in refused {
        assert_eq!(over(limits, body), (kind, Some(limit), offset), "{body}");
    }
}

#[test]
fn max_body_bytes_boundary() {
    let l = only(|l| l.max_body_bytes = Some(7));
    passes(&l, "[1,2,3]");
    assert_eq!(over(&l, "[1,2,3] "), (K::BodyTooLarge, Some(7), 7));
    assert_eq!(over(&l, "[1,2,3,4]"), (K::BodyTooLarge, Some(7), 7));
    // An earlier violation within the limit wins.
    assert_eq!(over(&l, "[1,,3,4]"), (K::SyntaxError, None, 3));
}

#[test]
fn max_depth_boundary() {
    let l = only(|l| l.max_depth = Some(3));
    passes(&l, "[[[]]]");
    passes(&l, "{\"a\":[{}]}");
    passes(&l, "7");
    assert_eq!(over(&l, "[[[[]]]]"), (K::TooDeep, Some(3), 3));
    assert_eq!(over(&l, "{\"a\":[{\"b\":{}}]}"), (K::TooDeep, Some(3), 11));
    let l1 = only(|l| l.max_depth = Some(1));
    passes(&l1, "[1,2]");
    assert_eq!(over(&l1, "[[]]"), (K::TooDeep, Some(1), 1));
}

#[test]
fn max_array_elements_boundary() {
    let l = only(|l| l.max_array_elements = Some(3));
    passes(&l, "[1,2,3]");
    passes(&l, "[[1,2,3],[4,5,6],[7,8,9]]");
    assert_eq!(over(&l, "[1,2,3,4]"), (K::ArrayTooLong, Some(3), 7));
    assert_eq!(
        over(&l, "[\"a\",\"b\",\"c\",\"dd\"]"),
        (K::ArrayTooLong, Some(3), 13)
    );
    // A trailing comma is a syntax error, not a fourth element.
    assert_eq!(over(&l, "[1,2,3,]"), (K::SyntaxError, None, 7));
    // Nested arrays of scalars (which the fast path takes whole) too.
    assert_eq!(over(&l, "[[1,2,3,4]]"), (K::ArrayTooLong, Some(3), 8));
    assert_eq!(
        over(&l, "{\"a\":[true, null ,\"x\",4]}"),
        (K::ArrayTooLong, Some(3), 22)
    );
}

#[test]
fn nested_arrays_of_scalars_get_the_same_verdicts_as_any_other() {
    passes(
        &Limits::default(),
        "[[1,2,{\"a\":1}],[3,[4]],[ ],[\"\\u00e9\"]]",
    );
    assert_eq!(kind_at(b"[[1,2,]]"), (K::SyntaxError, 6));
    assert_eq!(kind_at(b"[[1 2]]"), (K::SyntaxError, 4));
    assert_eq!(kind_at(b"[[01]]"), (K::SyntaxError, 3));
    assert_eq!(kind_at(b"[[\"\\ud800\"]]"), (K::LoneSurrogate, 3));
    assert_eq!(kind_at(b"[[1,2]"), (K::Truncated, 6));
    let l = only(|l| l.max_depth = Some(2));
    passes(&l, "{\"a\":[1,2]}");
    assert_eq!(over(&l, "{\"a\":[1,[2]]}"), (K::TooDeep, Some(2), 8));
    let l = only(|l| l.max_number_chars = Some(2));
    assert_eq!(over(&l, "[[12,123]]"), (K::NumberTooLong, Some(2), 7));
}

#[test]
fn max_object_entries_boundary() {
    let l = only(|l| l.max_object_entries = Some(2));
    passes(&l, "{\"a\":1,\"b\":{\"c\":1,\"d\":2}}");
    assert_eq!(
        over(&l, "{\"a\":1,\"b\":2,\"c\":3}"),
        (K::TooManyEntries, Some(2), 13)
    );
}

#[test]
fn max_key_bytes_boundary_counts_escapes_as_written() {
    let l = only(|l| l.max_key_bytes = Some(6));
    passes(&l, "{\"abcdef\":1}");
    passes(&l, "{\"\\u00e9\":1}");
    assert_eq!(over(&l, "{\"abcdefg\":1}"), (K::KeyTooLong, Some(6), 8));
    assert_eq!(over(&l, "{\"a\\u00e9\":1}"), (K::KeyTooLong, Some(6), 8));
    // Multi-byte characters count their bytes: é is two.
    passes(&l, "{\"ééé\":1}");
    assert_eq!(over(&l, "{\"ééé!\":1}"), (K::KeyTooLong, Some(6), 8));
    assert_eq!(over(&l, "{\"aéééé\":1}"), (K::KeyTooLong, Some(6), 8));
    // String values are not keys.
    passes(&l, "{\"k\":\"abcdefghijkl\"}");
}

#[test]
fn max_string_bytes_boundary() {
    let l = only(|l| l.max_string_bytes = Some(4));
    passes(&l, "[\"abcd\",\"\\n\\t\"]");
    assert_eq!(over(&l, "[\"abcde\"]"), (K::StringTooLong, Some(4), 6));
    assert_eq!(over(&l, "[\"abc\\n\"]"), (K::StringTooLong, Some(4), 6));
    passes(&l, "[\"ab\\n\"]");
    assert_eq!(over(&l, "[\"abc\\\"\"]"), (K::StringTooLong, Some(4), 6));
    passes(&l, "{\"longer-key\":\"abcd\"}");
    let long = format!("\"{}\"", "x".repeat(100));
    assert_eq!(over(&l, &long), (K::StringTooLong, Some(4), 5));
}

#[test]
fn max_number_chars_boundary() {
    let l = only(|l| l.max_number_chars = Some(4));
    passes(&l, "[1234,-123,1.25,1e10,-1.5]");
    assert_eq!(over(&l, "[12345]"), (K::NumberTooLong, Some(4), 5));
    assert_eq!(over(&l, "[-1234]"), (K::NumberTooLong, Some(4), 5));
    assert_eq!(over(&l, "[1.234]"), (K::NumberTooLong, Some(4), 5));
    assert_eq!(over(&l, "12345"), (K::NumberTooLong, Some(4), 4));
    passes(&l, "1234");
}

fn interoperable() -> JsonOptions {
    JsonOptions {
        numbers: Numbers::Interoperable,
        ..JsonOptions::default()
    }
}

#[test]
fn interoperable_numbers_boundary() {
    let max = MAX_EXACT_INTEGER;
    let at = |body: &str| verdict_with(&Limits::default(), &interoperable(), body.as_bytes());
    let out_of_range = |body: &str| at(body).unwrap_err();
    // At the limit passes, one over fails, in every container and position,
    // and any number passes by default.
    for body in [
        format!("{max}"),
        format!("-{max}"),
        format!("[{max},-{max}]"),
        format!("{{\"a\":{max}, \"b\":[ -{max} ]}}"),
        "[1.7976931348623157e308,-1.7976931348623157e308,1e-323,0e999]".into(),
        "[9007199254740990.5,1e20,2.5E+307,6.022e23]".into(),
    ] {
        assert_eq!(at(&body), Ok(()), "{body}");
    }
    for (body, limit, offset) in [
        (format!("{}", max + 1), Some(max), 0),
        (format!("-{}", max + 1), Some(max), 0),
        (format!("[1, {}]", max + 2), Some(max), 4),
        (format!("{{\"a\":1,\"b\":-{}}}", max + 1), Some(max), 11),
        (format!("[{}9]", max), Some(max), 1),
        ("[1.8e308]".into(), None, 1),
        ("{\"x\": -1e309 }".into(), None, 6),
        ("1E+309".into(), None, 0),
        ("[0.5, 123456789e301]".into(), None, 6),
        // An id beyond 2^53 written as a fraction or with an exponent, and
        // a value a double rounds to zero.
        ("[9007199254740993.5]".into(), None, 1),
        ("{\"id\":9.007199254740993e15}".into(), None, 6),
        ("[1e-400]".into(), None, 1),
    ] {
        let v = out_of_range(&body);
        assert_eq!(
            (v.kind, v.limit, v.offset),
            (K::NumberOutOfRange, limit, Some(offset)),
            "{body}"
        );
        assert_eq!(verdict(body.as_bytes()), Ok(()), "{body} by default");
    }
    // The length limit is decided first, inside the number.
    let short = only(|l| l.max_number_chars = Some(4));
    let v = verdict_with(&short, &interoperable(), b"[1e400]").unwrap_err();
    assert_eq!((v.kind, v.offset), (K::NumberTooLong, Some(5)));
    // A number is judged when it is complete: a truncated one is truncated.
    let v = verdict_with(&Limits::default(), &interoperable(), b"[1e400").unwrap_err();
    assert_eq!((v.kind, v.offset), (K::Truncated, Some(6)));
    // A complete one is judged before what follows it, even when that is
    // more of what could have been a number.
    for body in [&b"[1e400x]"[..], b"[1e400e5]", b"[1e400.5]"] {
        let v = verdict_with(&Limits::default(), &interoperable(), body).unwrap_err();
        assert_eq!((v.kind, v.offset), (K::NumberOutOfRange, Some(1)));
    }
    // A malformed one is a syntax error where the grammar breaks.
    let v = verdict_with(&Limits::default(), &interoperable(), b"[1e+]").unwrap_err();
    assert_eq!((v.kind, v.offset), (K::SyntaxError, Some(4)));
}

fn noted_with(options: &JsonOptions, body: &[u8]) -> (Result<(), Violation>, Option<Violation>) {
    split_invariant(&Limits::default(), options, body)
}

#[test]
fn report_only_kinds_are_noted_and_the_scan_goes_on() {
    let report = |kinds: &[K]| JsonOptions {
        numbers: Numbers::Interoperable,
        report_only: kinds.to_vec(),
        ..JsonOptions::default()
    };
    let all = report(&REPORTABLE);
    let at = |kind, offset| Some(Violation::at(kind, offset));
    let big = |offset| {
        Some(Violation::over(
            K::NumberOutOfRange,
            MAX_EXACT_INTEGER,
            offset,
        ))
    };
    for (body, noted) in [
        // Each kind alone: the body passes, the first is noted.
        (r#"{"a":1,"a":2}"#, at(K::DuplicateKey, 7)),
        (r#"["\udc00"]"#, at(K::LoneSurrogate, 2)),
        (r#"["x\ud800y"]"#, at(K::LoneSurrogate, 3)),
        (r#"{"\ud800":1,"\udbff":2}"#, at(K::LoneSurrogate, 2)),
        ("[1, 9007199254740992]", big(4)),
        ("1e400", at(K::NumberOutOfRange, 0)),
        // Only the first is kept, of whatever kind.
        (r#"[9007199254740993,{"b":1,"b":2},"\udc00"]"#, big(1)),
        (
            r#"[{"b":1,"b":2},9007199254740993,{"b":1,"b":2}]"#,
            at(K::DuplicateKey, 8),
        ),
        // The keys after a repeated one are still compared.
        (r#"{"a":1,"a":2,"c":3}"#, at(K::DuplicateKey, 7)),
        ("[1,2]", None),
    ] {
        assert_eq!(noted_with(&all, body.as_bytes()), (Ok(()), noted), "{body}");
    }
    // What is not reported is refused, even after something noted.
    let (verdict, noted) = noted_with(&all, br#"{"a":1,"a":2,"b":[}"#);
    assert_eq!(
        (verdict, noted),
        (
            Err(Violation::at(K::SyntaxError, 18)),
            at(K::DuplicateKey, 7)
        )
    );
    let only_surrogates = report(&[K::LoneSurrogate]);
    assert_eq!(
        noted_with(&only_surrogates, br#"{"a":1,"b":1,"b":2}"#),
        (Err(Violation::at(K::DuplicateKey, 13)), None)
    );
    // A later limit violation is still found behind a noted duplicate.
    let deep = format!(r#"{{"a":1,"a":{}}}"#, "[".repeat(101));
    let (verdict, noted) = noted_with(&all, deep.as_bytes());
    assert_eq!(verdict.map_err(|v| v.kind), Err(K::TooDeep));
    assert_eq!(noted, at(K::DuplicateKey, 7));
    // Keys with reported lone surrogates are still compared (both are
    // U+FFFD to a replacing parser), and a repeat is refused.
    assert_eq!(
        noted_with(&only_surrogates, br#"{"\udc00":1,"\udc01":2}"#),
        (
            Err(Violation::at(K::DuplicateKey, 12)),
            at(K::LoneSurrogate, 2)
        )
    );
    // A reset inspector has noted nothing.
    let mut ins = Inspector::new(&Limits::default(), &all);
    ins.feed(br#"{"a":1,"a":2}"#).unwrap();
    assert!(ins.noted().is_some());
    ins.reset();
    ins.feed(b"[1]").unwrap();
    ins.finish().unwrap();
    assert_eq!(ins.noted(), None);
}

#[test]
fn json_lines_are_values_on_lines_of_their_own() {
    let lines = JsonOptions {
        lines: true,
        ..JsonOptions::default()
    };
    let at = |body: &str| verdict_with(&Limits::default(), &lines, body.as_bytes());
    for body in [
        "{\"a\":1}\n{\"a\":2}\n",
        "[1]\n\n  [2]\r\n3\ntrue",
        "\"x\"\n  \n\t{}\r\n\r\n",
        // Bytes that end U+0085, U+2028 or U+2029 in other characters, the
        // escaped line separators, U+2027.
        "[\"caf\u{e9}\", \"\u{c5}\", \"\u{20ac}\u{2c9}\"]\n",
        "[\"\\u2028\\u0085\", \"\u{2027}\u{a0}\"]",
    ] {
        assert_eq!(at(body), Ok(()), "{body:?}");
    }
    for (body, kind, offset) in [
        ("{\"a\":1} {\"b\":2}", K::TrailingData, 8),
        ("1 2\n", K::TrailingData, 2),
        ("{\"a\":1}\n{\"a\":1,\"a\":2}", K::DuplicateKey, 15),
        ("[1]\n[1,]", K::SyntaxError, 7),
        ("[1]\nx", K::SyntaxError, 4),
        ("[1]\n[2", K::Truncated, 6),
        ("\n \r\n", K::EmptyBody, 4),
        ("[1]\n\u{feff}[2]", K::SyntaxError, 4),
        // Only `\n` separates values, not what `str.splitlines` also takes.
        ("[1]\r[2]", K::TrailingData, 4),
        ("[1]\u{2028}[2]", K::TrailingData, 3),
        ("[1]\u{0085}[2]", K::TrailingData, 3),
        ("[1]\u{000b}[2]", K::TrailingData, 3),
        // No line break inside a value, as NDJSON says: readers that split
        // lines and skip what they cannot parse would read its pieces.
        ("{\n  \"a\": [1,\n 2]\n}\n[3]", K::SyntaxError, 1),
        ("[1]\n[1,\r\n2]", K::SyntaxError, 7),
        ("[[1]\r]", K::SyntaxError, 4),
        // Nor, in a string, what `str.splitlines` ends a line at.
        ("{\"a\":\"x\u{2028}y\"}", K::SyntaxError, 7),
        ("1\n\"\u{2029}\"", K::SyntaxError, 3),
        ("\"\u{85}\"", K::SyntaxError, 1),
        ("[\"\u{e9}\u{85}\"]", K::SyntaxError, 4),
        // A line break before it wins, and a violation before that, also
        // one the line break itself brings to light.
        ("[\n\"\u{2028}\"]", K::SyntaxError, 1),
        ("[1,]\n", K::SyntaxError, 3),
        ("[\"\\ud800\n\"]", K::LoneSurrogate, 2),
    ] {
        let v = at(body).unwrap_err();
        assert_eq!((v.kind, v.offset), (kind, Some(offset)), "{body:?}");
    }
    // Separators in strings are fine when allowed; line breaks in values
    // never are.
    let separators = JsonOptions {
        allow_unicode_line_breaks: true,
        ..lines.clone()
    };
    let allowed = |body: &str| verdict_with(&Limits::default(), &separators, body.as_bytes());
    assert_eq!(
        allowed("{\"a\":\"x\u{2028}y\u{2029}\u{85}\"}\n\"\u{2028}\""),
        Ok(())
    );
    let v = allowed("[\"\u{2028}\",\n1]").unwrap_err();
    assert_eq!((v.kind, v.offset), (K::SyntaxError, Some(7)));
    let v = allowed("[1]\u{2028}").unwrap_err();
    assert_eq!((v.kind, v.offset), (K::TrailingData, Some(3)));
    // A number the line break ends is judged before the line break.
    let interoperable = JsonOptions {
        numbers: Numbers::Interoperable,
        ..lines.clone()
    };
    let v = verdict_with(&Limits::default(), &interoperable, b"[1e400\n]").unwrap_err();
    assert_eq!((v.kind, v.offset), (K::NumberOutOfRange, Some(1)));
    // Limits other than the body size apply to each value.
    let deep = only(|l| l.max_depth = Some(2));
    assert_eq!(verdict_with(&deep, &lines, b"[[1]]\n[[2]]"), Ok(()));
    let v = verdict_with(&deep, &lines, b"[[1]]\n[[[2]]]").unwrap_err();
    assert_eq!((v.kind, v.offset), (K::TooDeep, Some(8)));
    // The values are as many as an array's elements may be.
    let few = only(|l| l.max_array_elements = Some(3));
    assert_eq!(verdict_with(&few, &lines, b"1\n[2,3,4]\n{}\n"), Ok(()));
    let v = verdict_with(&few, &lines, b"1\n[2,3,4]\n{}\n\n 5").unwrap_err();
    assert_eq!(
        (v.kind, v.limit, v.offset),
        (K::ArrayTooLong, Some(3), Some(15))
    );
    let small = only(|l| l.max_body_bytes = Some(8));
    let v = verdict_with(&small, &lines, b"[1]\n[2]\n[3]").unwrap_err();
    assert_eq!((v.kind, v.offset), (K::BodyTooLarge, Some(8)));
    // Without `lines`, a second value is trailing data wherever it is.
    let v = verdict(b"1\n2").unwrap_err();
    assert_eq!((v.kind, v.offset), (K::TrailingData, Some(2)));
    // and line breaks inside a value are whitespace, U+2028 text.
    assert_eq!(
        verdict("{\n\"a\":\r\n\"\u{2028}\u{85}\"}".as_bytes()),
        Ok(())
    );
}

#[test]
fn interoperable_numbers_are_checked_in_long_bodies_on_every_path() {
    // Arrays of scalars taken whole, members read by their leads, objects
    // following a shape: an out-of-range number anywhere is found.
    let item = |n: &str| format!("{{\"id\":{n},\"price\":1.5,\"tags\":[1,2,3]}}");
    for n in ["9007199254740992", "1e999", "-9007199254740993"] {
        let mut items: Vec<String> = (0..40).map(|k| item(&k.to_string())).collect();
        items[37] = item(n);
        let body = format!("[{}]", items.join(","));
        let start = body.find(n).unwrap() as u64;
        let v = Inspector::check(&Limits::default(), &interoperable(), body.as_bytes());
        assert_eq!(
            v.map_err(|v| (v.kind, v.offset)),
            Err((K::NumberOutOfRange, Some(start)))
        );
        for cut in [start as usize, start as usize + 3, start as usize + n.len()] {
            assert_eq!(
                verdict_in_chunks(
                    &Limits::default(),
                    &interoperable(),
                    body.as_bytes(),
                    &[cut]
                )
                .map_err(|v| v.offset),
                Err(Some(start)),
                "cut at {cut}"
            );
        }
        let tags = format!("[[1,2,{n},4]]");
        let v = verdict_with(&Limits::default(), &interoperable(), tags.as_bytes());
        assert_eq!(
            v.map_err(|v| (v.kind, v.offset)),
            Err((K::NumberOutOfRange, Some(6)))
        );
    }
}

#[test]
fn duplicate_keys_compare_after_decoding_per_object() {
    for (doc, offset) in [
        ("{\"a\":1,\"a\":2}", 7),
        ("{\"a\":1,\"\\u0061\":2}", 7),
        ("{\"é\":1,\"\\u00e9\":2}", 8),
        ("{\"\\u00E9\":1,\"é\":2}", 12),
        ("{\"\\ud83d\\ude00\":1,\"\u{1F600}\":2}", 18),
        ("{\"/\":1,\"\\/\":2}", 7),
        ("{\"x\":{\"a\":1},\"y\":2,\"x\":3}", 19),
        ("[{\"a\":1,\"b\":[{\"a\":1}],\"a\":2}]", 22),
        // Up to a NUL, as C parsers read a key (cJSON, yajl, json-c).
        ("{\"role\\u0000x\":1,\"role\":2}", 17),
        ("{\"role\":1,\"role\\u0000x\":2}", 10),
        ("{\"a\\u0000b\":1,\"a\\u0000c\":2}", 14),
        ("{\"\\u0000\":4,\"\":5}", 12),
    ] {
        assert_eq!(kind_at(doc.as_bytes()), (K::DuplicateKey, offset), "{doc}");
    }
    for doc in [
        "{\"a\":{\"a\":{\"a\":1}}}",
        "[{\"a\":1},{\"a\":2}]",
        "{\"a\":1,\"A\":2,\"a \":3,\"\\u0001\":4,\"\":5}",
        // A NUL in a value, or a key with nothing before it, is no key cut.
        "{\"a\":\"x\\u0000y\",\"b\":\"x\",\"\\u0000\":1}",
        "{\"x\":{\"k\":1},\"y\":{\"k\":1}}",
    ] {
        assert_eq!(verdict(doc.as_bytes()), Ok(()), "{doc}");
    }
    let allow = JsonOptions {
        duplicate_keys: DuplicateKeys::Allow,
        ..strict()
    };
    assert_eq!(
        verdict_with(&Limits::default(), &allow, b"{\"a\":1,\"a\":2}"),
        Ok(())
    );
}

/// `reject_case_insensitive`: keys Go's `encoding/json` would match to one
/// struct field are duplicates (equal under Unicode simple case folding:
/// ASCII case, K for k, ſ for s, É for é, ς for σ, however spelled), at the
/// offset of the second one, for every split of the body, and the four i's
/// (I, i, ı, İ); the default `reject` lets them through, and what Go keeps
/// apart otherwise passes.
#[test]
fn case_insensitive_duplicates_are_the_keys_go_matches_to_one_field() {
    let folding = JsonOptions {
        duplicate_keys: DuplicateKeys::RejectCaseInsensitive,
        ..strict()
    };
    let folded = |doc: &str| verdict_with(&Limits::default(), &folding, doc.as_bytes());
    for (doc, offset) in [
        ("{\"role\":\"user\",\"Role\":\"admin\"}", 15),
        ("{\"role\":1,\"ROLE\":2}", 10),
        ("{\"Kind\":1,\"\u{212A}ind\":2}", 10),
        ("{\"kind\":1,\"\\u212Aind\":2}", 10),
        ("{\"kind\":1,\"\\u004Bind\":2}", 10),
        ("{\"size\":1,\"\u{17F}ize\":2}", 10),
        ("{\"SIZE\":1,\"\\u017fize\":2}", 10),
        ("{\"a\":{\"B\":1},\"A\":2}", 13),
        // Past the fast path's plain keys: long, escaped, non-ASCII.
        ("{\"accountNumberX\":1,\"ACCOUNTNUMBERx\":2}", 20),
        ("{\"caf\u{e9}\":1,\"CAF\u{e9}\":2}", 11),
        ("{\"caf\u{e9}\":1,\"CAF\u{c9}\":2}", 11),
        ("{\"\u{e9}\":1,\"\\u00C9\":2}", 8),
        ("{\"\u{3c3}\":1,\"\u{3c2}\":2}", 8),
        ("{\"stra\u{df}e\":1,\"STRA\\u1E9EE\":2}", 13),
        // Beyond Go, as Java matches them.
        ("{\"id\":1,\"\u{131}d\":2}", 8),
        ("{\"ID\":1,\"\u{130}d\":2}", 8),
    ] {
        assert_eq!(
            folded(doc).map_err(|v| (v.kind, v.offset)),
            Err((K::DuplicateKey, Some(offset))),
            "{doc}"
        );
        assert_eq!(verdict(doc.as_bytes()), Ok(()), "case-sensitive: {doc}");
    }
    for doc in [
        "{\"a\":{\"A\":1}}",
        "[{\"id\":1},{\"ID\":2}]",
        "{\"stra\u{df}e\":1,\"STRASSE\":2}",
        "{\"\u{e9}\":1,\"e\":2}",
        "{\"k\":1,\"\u{2126}\":2,\"\u{212B}\":3}",
        "{\"a\":1,\"a \":2,\"@\":3,\"`\":4,\"[\":5,\"{\":6}",
    ] {
        assert_eq!(folded(doc), Ok(()), "{doc}");
    }
}

/// With `allow_lone_surrogates`, a lone surrogate in a key counts as
/// U+FFFD, as parsers that replace it see the key: keys that differ only by
/// which lone surrogate, or by one against U+FFFD, are duplicates.
#[test]
fn lone_surrogates_in_keys_compare_as_the_replacement_character() {
    let lenient = JsonOptions {
        allow_lone_surrogates: true,
        ..strict()
    };
    for (doc, offset) in [
        (r#"{"a\ud800":1,"a\udbff":2}"#, 13),
        (r#"{"a\ud800":1,"a\ufffd":2}"#, 13),
        ("{\"\\udc00x\":1,\"\u{fffd}x\":2}", 13),
        (r#"{"\ud800\ud800":1,"\ufffd\ufffd":2}"#, 18),
    ] {
        assert_eq!(
            verdict_with(&Limits::default(), &lenient, doc.as_bytes())
                .map_err(|v| (v.kind, v.offset)),
            Err((K::DuplicateKey, Some(offset))),
            "{doc}"
        );
    }
    assert_eq!(
        verdict_with(
            &Limits::default(),
            &lenient,
            br#"{"a\ud800":1,"b\ud800":2}"#
        ),
        Ok(())
    );
}

#[test]
fn brackets_and_quotes_inside_strings_are_content() {
    let l = only(|l| l.max_depth = Some(1));
    passes(&l, "[\"[[[[{{{{\", \"]]]}}}\"]");
    passes(&l, "[\"\\\"[[[[\\\"\"]");
    passes(&l, "{\"{[\":\"]}\"}");
    // A depth scan that miscounts escaped quotes would see a string end here.
    assert_eq!(over(&l, "[\"\\\\\",[1]]"), (K::TooDeep, Some(1), 6));
}

#[test]
fn hundred_thousand_deep_nesting_is_stopped_at_the_limit() {
    let body = "[".repeat(100_000);
    let mut ins = Inspector::new(&Limits::default(), &strict());
    let v = ins.feed(body.as_bytes()).unwrap_err();
    assert_eq!(
        (v.kind, v.limit, v.offset),
        (K::TooDeep, Some(100), Some(100))
    );
    assert_eq!(ins.depth(), 100);
    // Unlimited depth still needs no recursion.
    let mut deep = Inspector::new(&Limits::UNLIMITED, &strict());
    deep.feed(body.as_bytes()).unwrap();
    deep.feed("]".repeat(100_000).as_bytes()).unwrap();
    assert_eq!(deep.finish(), Ok(()));
}

#[test]
fn a_verdict_is_sticky() {
    let mut ins = Inspector::new(&Limits::default(), &strict());
    let v = ins.feed(b"[1,]").unwrap_err();
    assert_eq!(ins.feed(b"]").unwrap_err(), v);
    assert_eq!(ins.finish().unwrap_err(), v);
    assert_eq!(ins.verdict(), Some(v));
    ins.reset();
    assert_eq!(ins.feed(b"[1]"), Ok(()));
    assert_eq!(ins.finish(), Ok(()));
}

#[test]
fn long_strings_take_the_word_at_a_time_path_exactly() {
    // Specials at every position relative to 16-byte blocks and 8-byte
    // words, up to past the second block.
    for pos in 0..40 {
        for special in [&b"\""[..], b"\\n", b"\x01", "é".as_bytes(), b"\xC3("] {
            let mut body = b"\"".to_vec();
            body.extend(std::iter::repeat_n(b'a', pos));
            body.extend_from_slice(special);
            body.extend(std::iter::repeat_n(b'b', 20));
            body.push(b'"');
            let whole = verdict(&body);
            let expected_ok = special != b"\x01" && special != b"\xC3(" && special != b"\"";
            assert_eq!(whole.is_ok(), expected_ok, "{pos} {special:?}");
        }
    }
}

/// Small objects check duplicates by scanning their key hashes, big ones in
/// the table; both sides of the switch, nested either way, with the repeat
/// spelled plainly or with an escape, whole or split anywhere.
#[test]
fn duplicate_keys_are_found_in_objects_of_every_size() {
    for n in [1usize, 2, 63, 64, 65, 66, 200] {
        let members =
            |v: &str| -> Vec<String> { (0..n).map(|k| format!("\"k{k}\":{v}")).collect() };
        let plain = format!("{{{}}}", members("0").join(","));
        assert_eq!(verdict(plain.as_bytes()), Ok(()), "{n} keys");
        // The same keys one level down are not duplicates.
        let nested = format!("{{{},\"o\":{plain}}}", members("1").join(","));
        assert_eq!(verdict(nested.as_bytes()), Ok(()), "{n} keys, nested");
        for dup in [0, n / 2, n - 1] {
            for spelling in [format!("\"k{dup}\""), format!("\"\\u006b{dup}\"")] {
                // A repeat after a nested object, and inside one.
                let outer = format!("{{{},\"o\":{plain},{spelling}:2}}", members("1").join(","));
                let at = outer.rfind(spelling.as_str()).unwrap() as u64;
                assert_eq!(
                    kind_at(outer.as_bytes()),
                    (K::DuplicateKey, at),
                    "{n} {spelling}"
                );
                let inner = format!("{{\"o\":{{{},{spelling}:2}}}}", members("1").join(","));
                let at = inner.rfind(spelling.as_str()).unwrap() as u64;
                assert_eq!(
                    kind_at(inner.as_bytes()),
                    (K::DuplicateKey, at),
                    "{n} {spelling}"
                );
            }
        }
    }
}

/// Objects that repeat a pretty-printed shape have their members read with
/// one compare each (the members' leads, see `shapes.rs`) once a second
/// object has shown them; a repeated key, one member too many or a changed
/// key in a later object is still found at its offset, for any chunking,
/// and the same shape at another indentation is read the ordinary way.
#[test]
fn members_read_by_their_leads_keep_every_check() {
    let object = |keys: &[&str], indent: usize| -> String {
        let pad = " ".repeat(indent);
        let values = ["1", "\"text\"", "[1, 2]", "null", "[]"];
        let members: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(n, k)| format!("\n{pad}  \"{k}\": {}", values[n % values.len()]))
            .collect();
        format!("{{{}\n{pad}}}", members.join(","))
    };
    let keys = ["id", "name", "in_reply_to_status_id_str", "x", "y"];
    let shown = format!("[{}, {}", object(&keys, 2), object(&keys, 2));
    let five = Limits {
        max_object_entries: Some(5),
        ..Limits::default()
    };
    // The third object's keys and indentation, and the violation with the
    // text its offset points at.
    type Case<'a> = (&'a [&'a str], usize, Option<(K, &'a str)>);
    let cases: [Case; 6] = [
        (&keys, 2, None),
        (
            &["id", "name", "in_reply_to_status_id_str", "x", "name"],
            2,
            Some((K::DuplicateKey, "\"name\"")),
        ),
        (
            &["id", "name", "in_reply_to_status_id_str", "x", "y", "id"],
            2,
            Some((K::TooManyEntries, "\"id\": 1")),
        ),
        (
            &["id", "name", "in_reply_to_status_id_str", "x", "y", "z"],
            2,
            Some((K::TooManyEntries, "\"z\"")),
        ),
        (
            &["id", "name", "in_reply_to_status_id_stx", "x", "id"],
            2,
            Some((K::DuplicateKey, "\"id\": []")),
        ),
        (
            &["id", "name", "in_reply_to_status_id_str", "x", "x"],
            6,
            Some((K::DuplicateKey, "\"x\": []")),
        ),
    ];
    for (third, indent, expected) in cases {
        let third = object(third, indent);
        let body = format!("{shown}, {third}, {}]", object(&keys, 2));
        assert_probe_verdict(&five, &body, shown.len() + 2, &third, expected);
    }
}

/// `body`, in which `probe` starts at byte `probe_at`, gets the `expected`
/// violation (its kind, and the text in the probe its offset points at, the
/// last occurrence), or none: whole, in 1-byte chunks, and cut in two
/// anywhere (inside a lead, a key or a value).
fn assert_probe_verdict(
    limits: &Limits,
    body: &str,
    probe_at: usize,
    probe: &str,
    expected: Option<(K, &str)>,
) {
    let whole = verdict_with(limits, &strict(), body.as_bytes());
    let expected = expected.map(|(kind, at)| {
        let offset = probe_at + probe.rfind(at).expect("the text is in the probe");
        (kind, Some(offset as u64))
    });
    assert_eq!(whole.err().map(|v| (v.kind, v.offset)), expected, "{body}");
    for cut in 0..=body.len() {
        let split = verdict_in_chunks(limits, &strict(), body.as_bytes(), &[cut]);
        assert_eq!(split, whole, "cut at {cut} of {body}");
    }
}

/// Objects whose keys are a variant of an earlier shape (an optional key in
/// the middle: a tweet with a retweet, a user with an extra field) stop
/// following it where they differ, and their keys so far go to the
/// duplicate table (see `shapes.rs`): a repeat of any key before or after
/// that point, a key of a third variant, or one member too many is found at
/// its offset, for any chunking, compact or pretty-printed.
#[test]
fn objects_that_differ_from_their_shape_midway_keep_every_check() {
    let object = |keys: &[&str], pretty: bool| -> String {
        let members: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(n, k)| {
                let value = ["1", "\"v\"", "[2,3]", "null"][n % 4];
                if pretty {
                    format!("\n    \"{k}\": {value}")
                } else {
                    format!("\"{k}\":{value}")
                }
            })
            .collect();
        format!("{{{}}}", members.join(","))
    };
    let a = ["id", "a", "b", "c", "d"];
    let b = ["id", "a", "x", "b", "c", "d"];
    let six = Limits {
        max_object_entries: Some(6),
        ..Limits::default()
    };
    // The probe's keys, and the violation with the text its offset points at
    // (the last occurrence in the probe).
    type Case<'a> = (&'a [&'a str], Option<(K, &'a str)>);
    let cases: [Case; 10] = [
        (&b, None),
        (&a, None),
        // Key 3 is B's key 3, but the keys before it are A's.
        (&["id", "a", "b", "b"], Some((K::DuplicateKey, "\"b\""))),
        (
            &["id", "a", "x", "b", "a"],
            Some((K::DuplicateKey, "\"a\"")),
        ),
        (&["id", "a", "x", "x"], Some((K::DuplicateKey, "\"x\""))),
        (&["id", "a", "x", "id"], Some((K::DuplicateKey, "\"id\""))),
        (
            &["id", "a", "x", "b", "c", "x"],
            Some((K::DuplicateKey, "\"x\"")),
        ),
        (
            &["id", "a", "b", "x", "a"],
            Some((K::DuplicateKey, "\"a\"")),
        ),
        (
            &["id", "a", "y", "b", "y"],
            Some((K::DuplicateKey, "\"y\"")),
        ),
        (
            &["id", "a", "x", "b", "c", "d", "e"],
            Some((K::TooManyEntries, "\"e\"")),
        ),
    ];
    for pretty in [false, true] {
        // A, then B (differs from A at its third key), then both again.
        let shown: Vec<String> = [&a[..], &b, &a, &b, &a]
            .iter()
            .map(|keys| object(keys, pretty))
            .collect();
        let shown = format!("[{}", shown.join(","));
        for (probe, expected) in cases {
            let probe = object(probe, pretty);
            let body = format!("{shown},{probe},{}]", object(&b, pretty));
            assert_probe_verdict(&six, &body, shown.len() + 1, &probe, expected);
        }
    }
}

/// With `allow_bom` the BOM is skipped but still counted: offsets stay
/// absolute in the body as sent, and so does the body size.
#[test]
fn offsets_count_a_skipped_bom() {
    let allow = JsonOptions {
        allow_bom: true,
        ..strict()
    };
    let at = |limits: &Limits, body: &[u8]| {
        let v = verdict_with(limits, &allow, body).unwrap_err();
        (v.kind, v.offset)
    };
    let bom = b"\xEF\xBB\xBF";
    let with_bom = |rest: &[u8]| [&bom[..], rest].concat();
    let d = Limits::default();
    assert_eq!(
        at(&d, &with_bom(b"\xEF\xBB\xBF1")),
        (K::SyntaxError, Some(3))
    );
    assert_eq!(at(&d, &with_bom(b"[1,]")), (K::SyntaxError, Some(6)));
    assert_eq!(at(&d, &with_bom(b"[1")), (K::Truncated, Some(5)));
    assert_eq!(at(&d, bom), (K::EmptyBody, Some(3)));
    let depth = only(|l| l.max_depth = Some(1));
    assert_eq!(at(&depth, &with_bom(b"[[1]]")), (K::TooDeep, Some(4)));
    // The BOM's three bytes count towards max_body_bytes: 3 + 3 fits 6.
    let size = only(|l| l.max_body_bytes = Some(6));
    assert_eq!(verdict_with(&size, &allow, &with_bom(b"[1]")), Ok(()));
    assert_eq!(at(&size, &with_bom(b"[12]")), (K::BodyTooLarge, Some(6)));
}

/// Every limit can be unset (`null`), and then nothing stops a body on that
/// count: each document here is over its default limit.
#[test]
fn each_limit_unset_is_unlimited() {
    let defaults = Limits::default();
    let wide = format!("[{}0]", "0,".repeat(10_000));
    let key = format!("{{\"{}\":1}}", "k".repeat(257));
    let number = "1".repeat(101);
    let string = format!("\"{}\"", "s".repeat((1 << 20) + 1));
    // Over 2 MiB in 2,000 strings of 1,100 bytes: within every other limit.
    let big = format!("[{}0]", format!("\"{}\",", "s".repeat(1_100)).repeat(2_000));
    let object = format!(
        "{{{}}}",
        (0..1001)
            .map(|i| format!("\"k{i}\":0"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let deep = format!("{}{}", "[".repeat(101), "]".repeat(101));
    let exponent = "1e-100000000".to_string();
    let cases = [
        (K::ExponentTooLong, &exponent),
        (K::ArrayTooLong, &wide),
        (K::KeyTooLong, &key),
        (K::NumberTooLong, &number),
        (K::StringTooLong, &string),
        (K::BodyTooLarge, &big),
        (K::TooManyEntries, &object),
        (K::TooDeep, &deep),
    ];
    for (kind, body) in cases {
        let refused = Inspector::check(&defaults, &strict(), body.as_bytes());
        assert_eq!(refused.map_err(|v| v.kind), Err(kind), "over its default");
        let mut unset = Limits::default();
        let limit = match kind {
            K::ArrayTooLong => &mut unset.max_array_elements,
            K::KeyTooLong => &mut unset.max_key_bytes,
            K::NumberTooLong => &mut unset.max_number_chars,
            K::StringTooLong => &mut unset.max_string_bytes,
            K::BodyTooLarge => &mut unset.max_body_bytes,
            K::TooManyEntries => &mut unset.max_object_entries,
            K::ExponentTooLong => &mut unset.max_exponent_digits,
            _ => &mut unset.max_depth,
        };
        *limit = None;
        assert_eq!(
            Inspector::check(&unset, &strict(), body.as_bytes()),
            Ok(()),
            "{kind:?} unset"
        );
    }
}

/// The defaults are the documented numbers (issue and README), not merely
/// whatever `Limits::default()` says.
#[test]
fn default_limits_are_the_documented_numbers() {
    assert_eq!(
        Limits::default(),
        Limits {
            max_body_bytes: Some(2 * 1024 * 1024),
            max_depth: Some(100),
            max_array_elements: Some(10_000),
            max_object_entries: Some(1_000),
            max_key_bytes: Some(256),
            max_string_bytes: Some(1024 * 1024),
            max_number_chars: Some(100),
            max_exponent_digits: Some(3),
            max_containers: None,
        }
    );
    // And each holds at its boundary in the default configuration.
    let d = Limits::default();
    let array = |n: usize| format!("[{}0]", "0,".repeat(n - 1));
    passes(&d, &array(10_000));
    assert_eq!(
        over(&d, &array(10_001)),
        (K::ArrayTooLong, Some(10_000), 20_001)
    );
    let object = |n: usize| {
        let members: Vec<String> = (0..n).map(|i| format!("\"{i:04}\":0")).collect();
        format!("{{{}}}", members.join(","))
    };
    passes(&d, &object(1_000));
    assert_eq!(
        over(&d, &object(1_001)),
        (K::TooManyEntries, Some(1_000), 9_001)
    );
    passes(&d, &"1".repeat(100));
    assert_eq!(
        over(&d, &"1".repeat(101)),
        (K::NumberTooLong, Some(100), 100)
    );
    passes(&d, "[1e999,1E-308,-2.5e+307]");
    assert_eq!(over(&d, "[1e-1000]"), (K::ExponentTooLong, Some(3), 7));
    let string = |n: usize| format!("\"{}\"", "s".repeat(n));
    passes(&d, &string(1 << 20));
    assert_eq!(
        over(&d, &string((1 << 20) + 1)),
        (K::StringTooLong, Some(1 << 20), (1 << 20) + 1)
    );
}

/// The exponent's digits are counted from the first (leading zeros too), in
/// every place a number may be, whole and in any chunks; the refusal points
/// at the first digit over the limit. The cost of an exponent to a big
/// decimal parser is in its value: `1e-100000000` takes Jackson 2.14 minutes.
#[test]
fn exponents_are_held_to_their_digit_limit() {
    let four = only(|l| l.max_exponent_digits = Some(4));
    judged(
        &four,
        (K::ExponentTooLong, 4),
        &[
            "1e9999",
            "-1.5E+0001",
            "[0e-9999,2E1234]",
            "{\"a\":1e1000}",
            "[[1e12],{\"b\":[3.0e-4567]}]",
        ],
        &[
            ("1e10000", 6),
            ("-1.5E+00001", 10),
            ("[0e-9999,2E12345]", 15),
            ("{\"a\":1e-100000000}", 12),
            ("[[1e12],{\"b\":[3.0e45678]}]", 22),
        ],
    );
    // In long bodies too, where numbers are read by the fast path, in
    // arrays of scalars and in members that follow a shape.
    let item = |e: &str| format!("{{\"id\":1,\"x\":1.5e{e},\"v\":[1,2e{e}]}}");
    for (e, refused) in [("999", false), ("1000", true), ("-0001", true)] {
        let items: Vec<String> = (0..40).map(|_| item("1")).chain([item(e)]).collect();
        let body = format!("[{}]", items.join(","));
        let got = verdict(body.as_bytes()).map_err(|v| v.kind);
        assert_eq!(got.is_err(), refused, "{e}");
        if refused {
            assert_eq!(got, Err(K::ExponentTooLong), "{e}");
        }
    }
    // Below three is refused by the configuration; the inspector reads it as
    // three.
    let one = only(|l| l.max_exponent_digits = Some(1));
    assert_eq!(verdict_with(&one, &strict(), b"1e100"), Ok(()));
}

/// Containers are counted over the whole body (arrays of scalars, which the
/// fast path otherwise takes whole, included): at the limit passes, one
/// over is refused at its opening bracket, in any chunking; in JSON Lines
/// the count runs over all the values.
#[test]
fn containers_are_counted_over_the_whole_body() {
    let five = only(|l| l.max_containers = Some(5));
    judged(
        &five,
        (K::TooManyContainers, 5),
        &[
            "[[],{},[1,2],{\"a\":3}]",
            "{\"a\":{\"b\":{\"c\":{\"d\":[]}}}}",
            "[1,2,3,\"[{\",{}]",
        ],
        &[
            ("[[],{},[1,2],{\"a\":[3]}]", 18),
            ("[[1],[2],[3],[4],[5]]", 17),
            ("{\"a\":{\"b\":{\"c\":{\"d\":[{}]}}}}", 21),
        ],
    );
    // In a long body, where the fast path reads items by their shape.
    let item = "{\"id\":1,\"tags\":[1,2],\"at\":{\"x\":1}}";
    let body = |n: usize| format!("[{}]", vec![item; n].join(","));
    let limit = only(|l| l.max_containers = Some(1 + 3 * 40));
    assert_eq!(verdict_with(&limit, &strict(), body(40).as_bytes()), Ok(()));
    let v = verdict_with(&limit, &strict(), body(41).as_bytes()).unwrap_err();
    assert_eq!(
        (v.kind, v.offset),
        (K::TooManyContainers, Some(1 + 40 * (item.len() as u64 + 1)))
    );
    // JSON Lines: one count for the body.
    let lines = JsonOptions {
        lines: true,
        ..strict()
    };
    let two = only(|l| l.max_containers = Some(2));
    assert_eq!(verdict_with(&two, &lines, b"[1]\n{}\n3"), Ok(()));
    let v = verdict_with(&two, &lines, b"[1]\n{}\n[]").unwrap_err();
    assert_eq!((v.kind, v.offset), (K::TooManyContainers, Some(7)));
    // Unset (the default), nothing counts them.
    assert_eq!(Limits::default().max_containers, None);
    assert_eq!(verdict(body(400).as_bytes()), Ok(()));
}
