//! `on_encoded_body: inspect`: gzip and deflate bodies are judged as the
//! JSON inside them, and a broken encoding is refused.

use super::*;
use crate::filter::decode::testing::{decode_pieces, gzip, gzip_member_of, member};
use crate::filter::decode::Coding;
use crate::inspector::{Inspector, JsonOptions, Limits};
use miniz_oxide::deflate::compress_to_vec_zlib;

const INSPECT: &str = r#"{"on_encoded_body":"inspect"}"#;

/// Status, violation, offset and limit of a request's reply (all `None`
/// when it passed).
type Answer = (Option<u16>, Option<String>, Option<u64>, Option<u64>);

fn answer(run: &Run) -> Answer {
    let Some(reply) = run.reply() else {
        return (None, None, None, None);
    };
    let doc: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    (
        Some(reply.status),
        doc["violation"].as_str().map(str::to_string),
        doc["offset"].as_u64(),
        doc["limit"].as_u64(),
    )
}

/// `body` sent in `cut`-byte chunks with `extra` headers.
fn send(
    p: &Rc<Plugin>,
    host: &mut FakeHost,
    extra: &[(&str, &str)],
    body: &[u8],
    cut: usize,
) -> Answer {
    let chunks: Vec<&[u8]> = body.chunks(cut.max(1)).collect();
    answer(&drive(p, host, &head(extra), &chunks, false))
}

#[test]
fn encoded_bodies_get_the_answer_their_json_would_get() {
    let p = plugin(r#"{"on_encoded_body":"inspect","limits":{"max_depth":5},"hold_bytes":16}"#);
    let bodies: [&[u8]; 8] = [
        br#"{"order":{"id":7,"items":[1,2,3]}}"#,
        b"[[[[[[1]]]]]]",
        br#"{"role":"user","role":"admin"}"#,
        b"[1,2,]",
        b"{} {}",
        b"\"caf\xC3\"",
        b"  ",
        b"[1,2",
    ];
    for body in bodies {
        let mut host = FakeHost::default();
        let plain = send(&p, &mut host, &[], body, body.len());
        assert_eq!(plain.0.is_some(), body != bodies[0], "{body:?}");
        for (coding, encoded) in [
            ("gzip", gzip(body)),
            ("deflate", compress_to_vec_zlib(body, 6)),
        ] {
            for cut in [1, 5, encoded.len()] {
                let mut host = FakeHost::default();
                let got = send(
                    &p,
                    &mut host,
                    &[("content-encoding", coding)],
                    &encoded,
                    cut,
                );
                assert_eq!(got, plain, "{coding} of {body:?} in {cut}-byte chunks");
                assert_eq!(host.metric("requests_inspected"), 1);
                assert_eq!(host.metric("requests_decoded"), 1);
                if got.0.is_none() {
                    // Counted as read, as sent; and as decoded.
                    assert_eq!(host.metric("bytes_inspected"), encoded.len() as u64);
                    assert_eq!(host.metric("bytes_decoded"), body.len() as u64);
                }
            }
        }
    }
}

#[test]
fn only_gzip_and_deflate_alone_are_decoded() {
    let p = plugin(INSPECT);
    let body = gzip(b"[1]");
    for (coding, status) in [
        ("gzip", None),
        ("x-gzip", None),
        ("identity, GZIP", None),
        ("br", Some(415)),
        ("zstd", Some(415)),
        ("gzip, gzip", Some(415)),
        ("gzip, br", Some(415)),
    ] {
        let mut host = FakeHost::default();
        let got = send(&p, &mut host, &[("content-encoding", coding)], &body, 4);
        assert_eq!(got.0, status, "{coding}");
        if status.is_some() {
            assert_eq!(got.1.as_deref(), Some("unsupported_encoding"));
            assert_eq!(host.reads, 0, "refused from the headers");
        }
    }
    // The other two settings are as before: refused or passed unread.
    for (config, status) in [("reject", Some(415)), ("pass", None)] {
        let p = plugin(&format!(r#"{{"on_encoded_body":"{config}"}}"#));
        let mut host = FakeHost::default();
        let got = send(
            &p,
            &mut host,
            &[("content-encoding", "gzip")],
            b"not even gzip",
            4,
        );
        assert_eq!(got.0, status, "{config}");
        assert_eq!(host.reads, 0);
    }
}

#[test]
fn a_broken_encoding_is_malformed_encoding_with_the_reason_logged() {
    let p = plugin(INSPECT);
    let good = gzip(b"{\"a\":1}");
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 1;
    for (body, reason) in [
        (b"{\"a\":1}".to_vec(), "magic"),
        (bad_crc, "CRC-32"),
        (good[..n - 1].to_vec(), "inside a gzip trailer"),
    ] {
        let mut host = FakeHost::default();
        let got = send(
            &p,
            &mut host,
            &[("content-encoding", "gzip"), ("x-request-id", "r1")],
            &body,
            3,
        );
        assert_eq!(
            got,
            (Some(400), Some("malformed_encoding".into()), None, None)
        );
        assert_eq!(host.metric("rejected.malformed_encoding"), 1);
        // One line, the refusal's, with the reason last.
        assert_eq!(host.logs.len(), 1, "{:?}", host.logs);
        let line = &host.logs[0].1;
        let prefix =
            "json-sanitizer: rejected request_id=r1 rule=default violation=malformed_encoding";
        assert!(line.starts_with(prefix), "{line}");
        let (_, why) = line.split_once(" status=400 reason=\"").expect("a reason");
        assert!(
            why.contains(reason) && why.ends_with('"'),
            "{reason}: {line}"
        );
    }
    // Report mode lets it through, reported.
    let p = plugin(r#"{"on_encoded_body":"inspect","mode":"report"}"#);
    let mut host = FakeHost::default();
    let got = send(&p, &mut host, &[("content-encoding", "gzip")], b"plain", 2);
    assert_eq!(got.0, None);
    assert_eq!(
        host.metric("report_only.would_reject.malformed_encoding"),
        1
    );
    assert!(host
        .noted
        .iter()
        .any(|(kind, _)| *kind == ViolationKind::MalformedEncoding));
}

/// A compressed stream cut short, with a `content-length` saying that is
/// all of it: refused with its last bytes, when Envoy hands them over
/// before the end of the stream (see `session_tests.rs`), even though all
/// the JSON it decodes to is whole.
#[test]
fn a_compressed_stream_cut_short_is_refused_with_its_declared_last_bytes() {
    let p = plugin(r#"{"on_encoded_body":"inspect","hold_bytes":0}"#);
    let good = gzip(b"{\"a\":1}");
    for (body, refused) in [(&good[..good.len() - 4], true), (&good[..], false)] {
        let length = body.len().to_string();
        let mut host = FakeHost::default();
        let headers = head(&[("content-encoding", "gzip"), ("content-length", &length)]);
        let (first, last) = body.split_at(body.len() / 2);
        let run = drive(&p, &mut host, &headers, &[first, last, b""], false);
        if refused {
            assert_eq!(run.body.len(), 2, "refused with its last bytes");
            assert_eq!(answer(&run).1.as_deref(), Some("malformed_encoding"));
        } else {
            assert_eq!(run.body, vec![Action::Continue; 3]);
            assert_eq!(host.metric("requests_passed"), 1);
        }
    }
}

#[test]
fn max_body_bytes_holds_for_the_decoded_body_and_for_the_body_as_sent() {
    // Decoded: at the limit passes, one over is body_too_large at the first
    // decoded byte over it.
    let p = plugin(r#"{"on_encoded_body":"inspect","limits":{"max_body_bytes":1000}}"#);
    let at_limit = format!("[{}10]", "0,".repeat(498));
    assert_eq!(at_limit.len(), 1000);
    let over = format!("[{}100]", "0,".repeat(498));
    let gz = [("content-encoding", "gzip")];
    let mut host = FakeHost::default();
    assert_eq!(
        send(&p, &mut host, &gz, &gzip(at_limit.as_bytes()), 7).0,
        None
    );
    let got = send(&p, &mut host, &gz, &gzip(over.as_bytes()), 7);
    assert_eq!(
        got,
        (
            Some(413),
            Some("body_too_large".into()),
            Some(1000),
            Some(1000)
        )
    );

    // As sent: a gzip body longer than the limit is refused (no offset: it
    // is not a position in the JSON) even when it decodes to little.
    let small = gzip(b"[1]");
    let limit = small.len();
    let config = |max: usize| {
        plugin(&format!(
            r#"{{"on_encoded_body":"inspect","limits":{{"max_body_bytes":{max}}}}}"#
        ))
    };
    for cut in [1, 4, limit] {
        let mut host = FakeHost::default();
        assert_eq!(
            send(&config(limit), &mut host, &gz, &small, cut).0,
            None,
            "cut {cut}"
        );
        let got = send(&config(limit - 1), &mut host, &gz, &small, cut);
        assert_eq!(
            got,
            (
                Some(413),
                Some("body_too_large".into()),
                None,
                Some(limit as u64 - 1)
            ),
            "cut {cut}"
        );
    }
    // A declared length over the limit is refused before a byte is read,
    // as for any body.
    let mut host = FakeHost::default();
    let len = limit.to_string();
    let got = send(
        &config(limit - 1),
        &mut host,
        &[("content-encoding", "gzip"), ("content-length", &len)],
        &small,
        4,
    );
    assert_eq!((got.0, host.reads), (Some(413), 0));
}

#[test]
fn a_decompression_bomb_costs_the_limit_not_the_ratio() {
    // 64 MiB of spaces in about 64 KiB: refused at the default 2 MiB of
    // decoded bytes, after reading only the part of the body that decodes
    // to them.
    let bomb = gzip(&vec![b' '; 64 << 20]);
    let p = plugin(INSPECT);
    let mut host = FakeHost::default();
    let got = send(
        &p,
        &mut host,
        &[("content-encoding", "gzip")],
        &bomb,
        16 * 1024,
    );
    assert_eq!(
        got,
        (
            Some(413),
            Some("body_too_large".into()),
            Some(2 << 20),
            Some(2 << 20)
        )
    );
    // One read of the host's buffer, of the 64 KiB, and the limit's worth
    // of decoding (in pieces of 32 KiB, the last one over it).
    assert_eq!(host.bytes_read, READ_SLICE);
    assert_eq!(host.metric("bytes_decoded"), (2 << 20) + 32 * 1024);
}

#[test]
fn sniffed_encoded_bodies_are_sniffed_decoded() {
    let p = plugin(r#"{"on_encoded_body":"inspect","on_other_content_type":"sniff"}"#);
    let text = [("content-type", "text/plain"), ("content-encoding", "gzip")];
    let mut host = FakeHost::default();
    let got = send(&p, &mut host, &text, &gzip(b"  {\"a\":1,\"a\":2}"), 3);
    assert_eq!(got.1.as_deref(), Some("duplicate_key"));
    assert_eq!(send(&p, &mut host, &text, &gzip(b"a,b\n1,2\n"), 3).0, None);
    assert_eq!(host.metric("requests_skipped"), 1);
    // A broken encoding is refused before the body shows what it is: a
    // decoder that skips what this one checks could read JSON there.
    let mut hcrc = member(b"{\"a\":1}", 6, None, None, true);
    hcrc[10] ^= 1;
    assert_eq!(
        send(&p, &mut host, &text, &hcrc, 3).1.as_deref(),
        Some("malformed_encoding")
    );
}

#[test]
fn a_sniffed_compressed_body_shows_what_it_is_within_the_limit() {
    // Whitespace keeps a sniffer undecided; compressed, it must not be
    // decoded without bound.
    let p = plugin(
        r#"{"on_encoded_body":"inspect","on_other_content_type":"sniff","limits":{"max_body_bytes":1000}}"#,
    );
    let text = [("content-type", "text/plain"), ("content-encoding", "gzip")];
    let spaces = |n: usize, then: &[u8]| [vec![b' '; n], then.to_vec()].concat();
    let too_large = (
        Some(413),
        Some("body_too_large".into()),
        Some(1000),
        Some(1000),
    );
    for (decoded, want) in [
        (spaces(999, b"x"), (None, None, None, None)),
        (
            spaces(999, b"{"),
            (Some(400), Some("truncated".into()), Some(1000), None),
        ),
        (spaces(1000, b"x"), too_large.clone()),
        (spaces(5000, b"{}"), too_large.clone()),
        (
            [b"\0".to_vec(), spaces(2000, b"x")].concat(),
            (Some(400), Some("syntax_error".into()), Some(0), None),
        ),
    ] {
        let body = gzip(&decoded);
        for cut in [1, 7, body.len()] {
            let mut host = FakeHost::default();
            assert_eq!(
                send(&p, &mut host, &text, &body, cut),
                want,
                "{} bytes, cut {cut}",
                decoded.len()
            );
        }
    }
    // At the limit on the body as sent, too, what the inspector found
    // comes first.
    let p30 = plugin(
        r#"{"on_encoded_body":"inspect","on_other_content_type":"sniff","limits":{"max_body_bytes":30}}"#,
    );
    let nul_then_more = [gzip(b"\0 "), gzip(b" ")].concat();
    assert!(nul_then_more.len() > 30);
    for cut in [1, 7, nul_then_more.len()] {
        let mut host = FakeHost::default();
        let got = send(&p30, &mut host, &text, &nul_then_more, cut);
        assert_eq!(
            got,
            (Some(400), Some("syntax_error".into()), Some(0), None),
            "cut {cut}"
        );
        let spaces = [gzip(b"  "), gzip(b" ")].concat();
        let got = send(&p30, &mut host, &text, &spaces, cut);
        assert_eq!(
            got,
            (Some(413), Some("body_too_large".into()), None, Some(30)),
            "cut {cut}"
        );
    }
    // A bomb of spaces costs one read and the limit's worth of decoding.
    let bomb = gzip(&vec![b' '; 64 << 20]);
    let p = plugin(r#"{"on_encoded_body":"inspect","on_other_content_type":"sniff"}"#);
    let mut host = FakeHost::default();
    let got = send(&p, &mut host, &text, &bomb, 64 * 1024);
    assert_eq!(got.1.as_deref(), Some("body_too_large"));
    assert_eq!(host.bytes_read, READ_SLICE);
}

/// A back-reference before the start of a member reads NUL bytes, never
/// another member's or another body's: well-formed in its coding, so the
/// inspector refuses it as the JSON it is.
#[test]
fn a_back_reference_before_the_start_decodes_to_nul_bytes_and_is_refused_as_json() {
    let p = plugin(r#"{"on_encoded_body":"inspect"}"#);
    // A fixed-Huffman block: length 3 at distance 1, with nothing before it.
    let reaching_back = gzip_member_of(&[0x03, 0x02, 0x00], b"\0\0\0");
    let alone = reaching_back.clone();
    let second = [gzip(br#"{"a":"#), reaching_back].concat();
    for (body, offset) in [(alone, 0), (second, 5)] {
        for cut in [1, 7, body.len()] {
            let mut host = FakeHost::default();
            let got = send(&p, &mut host, &[("content-encoding", "gzip")], &body, cut);
            assert_eq!(
                got,
                (Some(400), Some("syntax_error".into()), Some(offset), None),
                "cut {cut}"
            );
        }
    }
}

proptest::proptest! {
    /// Any small JSON-ish body gets the same answer gzipped (in one or two
    /// members) or deflated as plain, however the host cuts it; or, when
    /// the body as sent is over the limit, `body_too_large` without an
    /// offset if nothing before that was refused.
    #[test]
    fn encoded_answers_are_the_plain_answers_under_any_cut(
        body in proptest::collection::vec(
            proptest::sample::select(&b" {}[]\"a1,:-e.\\u\xC3\xA9\0"[..]),
            0..70,
        ),
        split in 0usize..70,
        cut in 1usize..30,
    ) {
        // An empty body is one the host says is there.
        proptest::prop_assume!(!body.is_empty());
        let p = plugin(r#"{"on_encoded_body":"inspect","limits":{"max_body_bytes":60,"max_depth":3},"hold_bytes":8}"#);
        let sniffing = plugin(r#"{"on_encoded_body":"inspect","on_other_content_type":"sniff","limits":{"max_body_bytes":20},"hold_bytes":8}"#);
        let mut host = FakeHost::default();
        let plain = send(&p, &mut host, &[], &body, body.len());
        let split = split.min(body.len());
        let mut two = gzip(&body[..split]);
        two.extend(gzip(&body[split..]));
        let too_large = (Some(413), Some("body_too_large".to_string()), None, Some(60));
        for (coding, encoded) in [("gzip", two), ("deflate", compress_to_vec_zlib(&body, 1))] {
            let mut host = FakeHost::default();
            let got = send(&p, &mut host, &[("content-encoding", coding)], &encoded, cut);
            if encoded.len() <= 60 || got != too_large {
                proptest::prop_assert_eq!(&got, &plain, "{} of {:?}", coding, body);
            } else {
                // Refused on the bytes as sent: what the first 60 of them
                // decode to held nothing to refuse.
                let c = if coding == "gzip" { Coding::Gzip } else { Coding::Deflate };
                let (within, _) = decode_pieces(c, [&encoded[..60]]);
                let limits = Limits { max_body_bytes: Some(60), max_depth: Some(3), ..Limits::default() };
                let found = Inspector::new(&limits, &JsonOptions::default()).feed(&within);
                proptest::prop_assert_eq!(found, Ok(()), "{} of {:?}", coding, body);
            }
            // Sniffed, the answer may differ from the plain body's at the
            // limit, but not from cut to cut.
            let text = [("content-type", "text/plain"), ("content-encoding", coding)];
            let whole = send(&sniffing, &mut host, &text, &encoded, encoded.len());
            let cut = send(&sniffing, &mut host, &text, &encoded, cut);
            proptest::prop_assert_eq!(cut, whole, "sniffed {} of {:?}", coding, body);
        }
    }
}
