//! Coverage-guided fuzzing of the body decoder (`on_encoded_body: inspect`).
//!
//! For every input it checks that:
//!
//! - decoding never panics, and gives the same answer (every byte decoded,
//!   also before an error, and whether and why the body is malformed) for
//!   the body whole, cut at the fuzzer's positions, and one byte per piece:
//!   the filter's verdict on an encoded body must not depend on how the host
//!   cut it;
//! - a body compressed by another encoder (miniz_oxide's, at the fuzzer's
//!   level, in gzip or zlib framing) decodes to exactly what was compressed,
//!   however it is cut.
//!
//! Input layout: `[mode, cut, cut, body]`: bit 0 of `mode` picks gzip or
//! deflate, bit 1 whether `body` is taken as encoded bytes or as data to
//! compress first (at level `mode >> 2`, capped at 10).
//! Run with `cargo +nightly fuzz run --fuzz-dir plugin/fuzz decode`.

#![no_main]

use json_sanitizer::filter::decode::testing::{decode_pieces, member, zlib};
use json_sanitizer::filter::decode::{Coding, Malformed};
use libfuzzer_sys::fuzz_target;

/// Every byte decoded, and whether the body is well-formed, for `body` fed
/// in the pieces that end at `cuts`.
fn decode(coding: Coding, body: &[u8], cuts: &[usize]) -> (Vec<u8>, Result<(), Malformed>) {
    let mut from = 0;
    let ends = cuts.iter().copied().chain(std::iter::once(body.len()));
    let pieces = ends.map(|to| {
        let to = to.clamp(from, body.len());
        let piece = &body[from..to];
        from = to;
        piece
    });
    decode_pieces(coding, pieces)
}

fuzz_target!(|data: &[u8]| {
    let [mode, a, b, body @ ..] = data else {
        return;
    };
    let coding = if mode & 1 == 0 {
        Coding::Gzip
    } else {
        Coding::Deflate
    };
    let level = (mode >> 2).min(10);
    let encoded = if mode & 2 == 0 {
        body.to_vec()
    } else if coding == Coding::Gzip {
        member(body, level, None, None, false)
    } else {
        zlib(body, level)
    };
    let mut cuts = [usize::from(*a) * 7, usize::from(*b) * 13];
    cuts.sort_unstable();
    let whole = decode(coding, &encoded, &[]);
    assert_eq!(decode(coding, &encoded, &cuts), whole, "cut at {cuts:?}");
    let every: Vec<usize> = (1..encoded.len()).collect();
    assert_eq!(
        decode(coding, &encoded, &every),
        whole,
        "one byte at a time"
    );
    if mode & 2 != 0 {
        assert_eq!((&whole.0[..], whole.1), (body, Ok(())), "round trip");
    }
});
