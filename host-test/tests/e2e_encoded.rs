//! `on_encoded_body: inspect` through the real `.wasm`: gzip and deflate
//! bodies are judged as the JSON inside them, forwarded as sent, refused
//! when broken, and decoded in constant guest memory.

mod plugin;
use flate2::write::GzEncoder;
use flate2::Compression;
use plugin::{counter, gzip, post, try_host, zlib};
use std::io::Write;

/// Status, violation, offset and limit of an outcome (from its summary).
fn answer(
    o: &json_sanitizer_host::Outcome,
) -> (Option<u32>, Option<String>, Option<u64>, Option<u64>) {
    let s = o.summary();
    (s.status, s.violation, s.offset, s.limit)
}

fn example_requests() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/requests");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(out.len() >= 5, "the example requests are missing");
    out
}

#[test]
fn encoded_examples_get_their_plain_answers_and_go_upstream_as_sent() {
    let config =
        r#"{"on_encoded_body":"inspect","hold_bytes":512,"limits":{"max_body_bytes":65536}}"#;
    let (host, mut vm) = try_host(config).unwrap();
    let mut passed = 0;
    for (name, body) in example_requests() {
        let plain = answer(&vm.send(&post(&body)).unwrap());
        if plain.0.is_none() {
            passed += 1;
        }
        for (coding, encoded) in [("gzip", gzip(&body)), ("deflate", zlib(&body))] {
            for chunk in [7, 1024] {
                let req = post(&encoded)
                    .header("content-encoding", coding)
                    .chunk_size(chunk)
                    .capture_forwarded();
                let o = vm.send(&req).unwrap();
                assert_eq!(o.trap, None);
                assert_eq!(
                    answer(&o),
                    plain,
                    "{coding} of {name} in {chunk}-byte chunks"
                );
                if plain.0.is_none() {
                    passed += 1;
                    assert_eq!(o.forwarded_body.as_deref(), Some(&encoded[..]), "{name}");
                }
            }
        }
    }
    assert!(passed > 5, "some examples pass");
    assert_eq!(counter(&host, "requests_passed"), passed);
    let examples = example_requests().len() as u64;
    assert_eq!(counter(&host, "requests_decoded"), 4 * examples);
}

#[test]
fn broken_and_undecodable_encodings_are_refused() {
    let (host, mut vm) = try_host(r#"{"on_encoded_body":"inspect"}"#).unwrap();
    let good = gzip(br#"{"a":1}"#);
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xFF;
    let mut garbage_after = good.clone();
    garbage_after.extend_from_slice(b"\n");
    for (body, reason) in [
        (good[..n - 4].to_vec(), "ends inside a gzip trailer"),
        (bad_crc, "CRC-32"),
        (garbage_after, "magic"),
        (br#"{"a":1}"#.to_vec(), "magic"),
    ] {
        let o = vm
            .send(&post(&body).header("content-encoding", "gzip").chunk_size(3))
            .unwrap();
        assert_eq!(
            answer(&o),
            (Some(400), Some("malformed_encoding".into()), None, None),
            "{reason}"
        );
        assert!(o.logged(reason), "{reason}: {:?}", o.logs);
        assert_eq!(o.forwarded_bytes, 0, "within the hold window");
    }
    assert_eq!(counter(&host, "rejected.malformed_encoding"), 4);
    // A raw deflate stream is not HTTP's `deflate`, which is zlib.
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
    raw.write_all(b"[1]").unwrap();
    let o = vm
        .send(&post(raw.finish().unwrap()).header("content-encoding", "deflate"))
        .unwrap();
    assert_eq!(answer(&o).1.as_deref(), Some("malformed_encoding"));
    for coding in ["br", "gzip, gzip"] {
        let o = vm
            .send(&post(&good).header("content-encoding", coding))
            .unwrap();
        assert_eq!(
            answer(&o).1.as_deref(),
            Some("unsupported_encoding"),
            "{coding}"
        );
        assert_eq!(o.body_bytes_read, 0);
    }
}

/// A client flushing after every few bytes makes a deflate block (and an
/// empty one) per flush, each of which costs the inflater a table build:
/// one per 256 decoded bytes after the first 64 is allowed, and a flush
/// every 600 bytes stays well within it.
#[test]
fn deflate_blocks_beyond_what_the_data_justifies_are_malformed() {
    let (_host, mut vm) = try_host(r#"{"on_encoded_body":"inspect"}"#).unwrap();
    let flushed_every = |every: usize| {
        let body: String = format!("[{}0]", "1,".repeat(3_000));
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        for piece in body.as_bytes().chunks(every) {
            e.write_all(piece).unwrap();
            e.flush().unwrap();
        }
        e.finish().unwrap()
    };
    let send = |body: Vec<u8>| {
        post(body)
            .header("content-encoding", "gzip")
            .chunk_size(1024)
    };
    let o = vm.send(&send(flushed_every(600))).unwrap();
    assert_eq!(answer(&o), (None, None, None, None));
    let o = vm.send(&send(flushed_every(8))).unwrap();
    assert_eq!(
        answer(&o),
        (Some(400), Some("malformed_encoding".into()), None, None)
    );
    assert!(o.logged("more deflate blocks"), "{:?}", o.logs);
}

#[test]
fn a_gzip_bomb_is_refused_at_the_limit_in_flat_guest_memory() {
    // 256 MiB of whitespace and then an array, in about 256 KiB: refused at
    // the decoded limit after one read of the host's buffer.
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..256 {
        e.write_all(&spaces).unwrap();
    }
    e.write_all(b"[1]").unwrap();
    let bomb = e.finish().unwrap();
    let send_bomb = post(&bomb)
        .header("content-encoding", "gzip")
        .chunk_size(65536);
    let (_host, mut vm) = try_host(r#"{"on_encoded_body":"inspect"}"#).unwrap();
    let o = vm.send(&send_bomb).unwrap();
    assert_eq!(
        answer(&o),
        (
            Some(413),
            Some("body_too_large".into()),
            Some(2 << 20),
            Some(2 << 20)
        )
    );
    assert!(o.body_bytes_read <= 16 * 1024, "read {}", o.body_bytes_read);

    // Without limits the whole of it streams through, decoded and
    // inspected, in the memory a thousand times smaller encoded request
    // sent the same way (several 64 KiB chunks, so the same buffers) took.
    let unlimited = r#"{"on_encoded_body":"inspect","hold_bytes":0,
        "limits":{"max_body_bytes":null,"max_array_elements":null}}"#;
    let (_host, mut vm) = try_host(unlimited).unwrap();
    let mut x = 1u64;
    let numbers: Vec<String> = (0..40_000)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 34).to_string()
        })
        .collect();
    let small = format!("[{}]", numbers.join(","));
    assert!(gzip(small.as_bytes()).len() > 2 * 65536);
    let small = vm
        .send(
            &post(gzip(small.as_bytes()))
                .header("content-encoding", "gzip")
                .chunk_size(65536),
        )
        .unwrap();
    assert_eq!(small.status(), None);
    let memory = vm.memory_size();
    let o = vm.send(&send_bomb).unwrap();
    assert_eq!((o.status(), o.trap.as_deref()), (None, None));
    assert_eq!(o.forwarded_bytes, bomb.len() as u64);
    assert_eq!(vm.memory_size(), memory, "decoding grew guest memory");
}

#[test]
fn the_default_still_refuses_encoded_bodies_and_pass_passes_them_unread() {
    let body = gzip(b"[1,]");
    let (_h, mut vm) = try_host("{}").unwrap();
    let o = vm
        .send(&post(&body).header("content-encoding", "gzip"))
        .unwrap();
    assert_eq!(answer(&o).1.as_deref(), Some("unsupported_encoding"));
    let (_h, mut vm) = try_host(r#"{"on_encoded_body":"pass"}"#).unwrap();
    let o = vm
        .send(&post(&body).header("content-encoding", "gzip"))
        .unwrap();
    assert_eq!((o.status(), o.body_bytes_read), (None, 0));
}
